// Package bench measures orderledger end to end — the event store's appends, the write and
// read routes of a real server with its projectors and automation, projection rebuilds and the
// audit tools — each figure beside a baseline measured in the same run, on the same server,
// in turns with it, so that load from elsewhere on a shared machine falls on both alike. It
// works only in scratch space it creates on the server a DSN names and removes at the end:
// the `orderledger bench` command.
package bench
