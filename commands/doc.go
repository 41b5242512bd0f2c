// Package commands is orderledger's write side: the command handler that loads a stream,
// folds it, decides and appends with the loaded version as the expected revision; idempotency
// keys; the order-to-cash process managers; and the HTTP write routes.
//
// Data flows in from the HTTP routes and the automation (commands/automation), through the
// domain's Decide functions, and out to the eventstore port as appended events; nothing here
// reads a read model.
package commands
