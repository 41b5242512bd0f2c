// Command orderledger runs the order ledger: the HTTP service (serve) and the tools auditors and
// operators use on its stores. It only reads configuration and wires packages together.
//
// Data flows one way: flags and environment in, packages built and started (stores, commands,
// projections, readapi, integrations, follow), their errors out as exit codes and log lines.
package main
