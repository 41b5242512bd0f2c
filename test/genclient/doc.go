// Package genclient is a Go client of the orderledger HTTP API generated from
// internal/openapi/openapi.json by ogen, a maintained OpenAPI 3 generator (its version is
// pinned by the tool line of go.mod). It exists to prove that the document is one a client
// generator can read and trust: tour_test.go drives the README's five-minute tour with it
// against the real binary. Regenerate after changing the document:
//
//	go generate ./test/genclient
package genclient

//go:generate go tool ogen --config ogen.yml --target . --package genclient --clean ../../internal/openapi/openapi.json
