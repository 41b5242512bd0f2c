// Package client is a typed Go client of orderledger's HTTP API (docs/api.md): requests with
// the bearer token, Idempotency-Key and correlation headers the API takes, retries of what a
// retry can fix (a broken connection, 503, 504), problems as *APIError with their code, and
// the documents callers read most (Written, Order) with AwaitOrder, which reads an order until
// the server has done its part. The demo and bench programs use it, and so can users.
//
// Data flows from the caller to the server as JSON requests and back as decoded documents; the
// package imports nothing of orderledger's, so it depends on the API's contract only.
package client
