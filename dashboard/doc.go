// Package dashboard serves the web dashboard of a read process: server-rendered pages at / and
// /ui/... over the same read store queries the JSON read routes answer from (package
// projections), the order histories of the event store, and the audit package's verification
// and digest.
//
// Data flows one way: read store and event store → page handlers → html/template → browser.
// Every asset (htmx and uPlot, pinned, with their licences; the stylesheet; two small scripts)
// is embedded in the binary, so a page loads nothing from anywhere but this server. Pages update
// live: static/live.js subscribes to GET /v1/stream and fires an htmx trigger per event
// category ("ol:order", "ol:stock", …), and each live region of a page re-fetches its own URL
// and swaps in its part of the answer.
package dashboard
