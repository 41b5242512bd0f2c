// Package openapi holds orderledger's API reference, an OpenAPI 3.1 document of every route the
// service answers, embedded so that the binary serves the document of its own version at
// GET /v1/openapi.json.
//
// Data flows out only: the document is read by the route that serves it and by the tests that
// hold the routes, docs/api.md and test/genclient to it.
package openapi
