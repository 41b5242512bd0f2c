// Package stores turns the DSNs users give (`sqlite:PATH`, `postgres://…`, `esdb://…`) into
// open stores, so every command of the CLI reads its configuration the same way.
//
// Data flows from a DSN string in to an opened eventstore.Store and read store out; the adapters
// themselves live in eventstore/{sqlite,postgres,kurrentdb}.
package stores
