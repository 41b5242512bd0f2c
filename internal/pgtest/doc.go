// Package pgtest gives tests and benchmarks a PostgreSQL database of their own on the server
// named by ORDERLEDGER_TEST_POSTGRES, and removes it when they end.
//
// Data flows from the test to the server: a fresh database is created, its DSN handed back, and
// the database dropped in the test's cleanup.
package pgtest
