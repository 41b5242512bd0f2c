// Command rebuildbench measures how fast projections.Rebuild replays a large log.
//
//	go run ./projections/internal/rebuildbench -events postgres://postgres@127.0.0.1:5432/bench -n 1000000
//
// If the event store is empty it first appends a realistic order-to-cash history of about n
// events (historygen, appends of up to 100 events of one stream); a log already there is
// reused, so the measurement can be repeated. It then rebuilds every projector (or -only) and
// prints the events per second.
package main
