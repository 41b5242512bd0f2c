// Package httpx holds what every HTTP handler of orderledger shares: strict JSON request
// decoding with the 1 MiB body limit, JSON answers, and RFC 9457 problem+json errors from the
// one table that maps error classes to statuses.
//
// Data flows in as request bodies and query strings (decoded and checked here) and out as
// answers; handlers in commands, readapi, audit and integrations call it, it calls none of them.
package httpx
