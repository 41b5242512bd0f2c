// Package readapi serves the read routes of the HTTP API (docs/api.md, "Read routes"): documents from
// the read models the projections keep, and an order's history from the event store.
//
// Every route accepts ?after=<position>, the token a write answered with: the route answers
// only once the read models it reads include that position (at most the after timeout, 10 s by
// default, then 504). GET /v1/orders/{id} and GET /v1/inventory/{sku} also accept ?as_of=T:
// the same document as it was at T, folded from the event store (projections.OrderAsOf), so
// ?after= is checked there but not waited for. Query parameters are checked strictly: one the
// route does not know, one given twice, or a malformed value is a 400 naming the parameter.
//
// GET /v1/customers/{id} and GET /v1/inventory/{sku} answer from the read store's cache of
// rendered documents (projections.ReadStore.CachedDocument) when the projectors of this
// process keep it; it is then exactly as fresh as the read models.
//
// A caller who may not see personal data (WithPersonalData) gets customers' name, email and
// phone, and the personal fields of the events of a history, as null.
package readapi
