// Package integrations tells other systems what happens in the log, as it happens.
//
// Data flows one way, from the event store out: a Broadcaster follows the log once per process
// (one subscription, no lease) and keeps the latest events; every GET /v1/stream client takes
// them from there through a bounded buffer of its own, so a slow client is disconnected rather
// than slowing the others, and a client resuming from an older position first reads the store
// and then joins the live feed without a gap or a repeat. Each event goes out as a Message,
// the same JSON object the webhooks POST, with personal data nulled for callers that may not
// see it.
package integrations
