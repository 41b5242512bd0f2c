// Package e2e (folder test/) holds the end-to-end suite: it builds the orderledger binary, starts `serve` on
// SQLite and on PostgreSQL (ORDERLEDGER_TEST_POSTGRES), and drives it over HTTP as a client
// would — the five-minute tour, crashes and restarts, several processes failing over, hledger
// reading the journal — checking every exchange against the OpenAPI document.
//
// Data flows from the tests to the server over HTTP and the CLI, and back as answers; beyond
// that the tests only open the stores directly (eventstore, internal/stores) to check what was
// stored, and read the OpenAPI document to check every answer.
package e2e
