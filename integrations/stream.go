package integrations

import (
	"bufio"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gorilla/mux"

	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/internal/httpx"
)

// Defaults of the stream route.
const (
	// DefaultHeartbeat is how often an idle stream gets a comment line; the contract promises
	// one at least every 15 s, and a margin keeps timer slack from breaking it.
	DefaultHeartbeat = 10 * time.Second
	// streamWriteTimeout bounds one write to a client: a client that takes no bytes for that
	// long is gone or stuck, and is disconnected even if its buffer is not yet full.
	streamWriteTimeout = 30 * time.Second
	// streamBufferSize is how much of a batch is written to a client at once.
	streamBufferSize = 64 << 10
)

// Categories are the stream categories the log holds, which ?category= may name.
var Categories = []string{
	"credit_note_series", "customer", "idempotency", "invoice_series", "order", "purchase_order", "stock", "webhook",
}

// StreamAPI serves GET /v1/stream from a Broadcaster.
type StreamAPI struct {
	broadcaster *Broadcaster
	heartbeat   time.Duration
	// seesPersonalData reports whether the caller of a request may see personal data.
	seesPersonalData func(*http.Request) bool
}

// StreamOption configures a StreamAPI.
type StreamOption func(*StreamAPI)

// WithHeartbeat sets how long a stream may stay silent before a comment line is sent.
func WithHeartbeat(d time.Duration) StreamOption {
	return func(a *StreamAPI) {
		if d > 0 {
			a.heartbeat = d
		}
	}
}

// WithPersonalData sets who may see personal data: callers for which sees returns false get
// the personal fields of every event as null. Without it everyone sees them.
func WithPersonalData(sees func(*http.Request) bool) StreamOption {
	return func(a *StreamAPI) { a.seesPersonalData = sees }
}

// NewStreamAPI serves the stream of b.
func NewStreamAPI(b *Broadcaster, opts ...StreamOption) *StreamAPI {
	a := &StreamAPI{broadcaster: b, heartbeat: DefaultHeartbeat, seesPersonalData: func(*http.Request) bool { return true }}
	for _, o := range opts {
		o(a)
	}
	return a
}

// Register mounts GET /v1/stream.
func (a *StreamAPI) Register(r *mux.Router) {
	r.Handle("/v1/stream", a).Methods(http.MethodGet)
}

// streamRequest is a checked GET /v1/stream.
type streamRequest struct {
	after  *eventstore.Position
	filter Filter
}

// parseStreamRequest checks the query and Last-Event-ID; a Last-Event-ID (sent by a client
// reconnecting with the URL it first used) takes precedence over ?after=.
func parseStreamRequest(r *http.Request) (streamRequest, error) {
	var req streamRequest
	values, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return req, httpx.BadRequest("malformed query string: %v", err)
	}
	for name, vs := range values {
		if !slices.Contains([]string{"after", "types", "category"}, name) {
			return req, httpx.BadRequest("unknown parameter %s; this route takes after, types and category", name)
		}
		if len(vs) > 1 {
			return req, httpx.BadRequest("parameter %s is given %d times; give it once (a list is comma-separated)", name, len(vs))
		}
	}
	if raw, ok := values["after"]; ok {
		p, err := eventstore.ParsePosition(raw[0])
		if err != nil {
			return req, httpx.BadRequest("parameter after: %v; pass the position of an event or of a write's answer", err)
		}
		req.after = &p
	}
	if raw := r.Header.Get("Last-Event-ID"); raw != "" {
		p, err := eventstore.ParsePosition(strings.TrimSpace(raw))
		if err != nil {
			return req, httpx.BadRequest("header Last-Event-ID: %v; send the id of the last message received", err)
		}
		req.after = &p
	}
	if raw, ok := values["types"]; ok {
		req.filter.Types = map[string]bool{}
		for _, t := range strings.Split(raw[0], ",") {
			if !domain.KnownEventType(t) {
				known := domain.EventTypes()
				sort.Strings(known)
				return req, httpx.BadRequest("parameter types: unknown event type %q; known types are %s", t, strings.Join(known, ", "))
			}
			req.filter.Types[t] = true
		}
	}
	if raw, ok := values["category"]; ok {
		req.filter.Categories = map[string]bool{}
		for _, c := range strings.Split(raw[0], ",") {
			if !slices.Contains(Categories, c) {
				return req, httpx.BadRequest("parameter category: unknown category %q; known categories are %s", c, strings.Join(Categories, ", "))
			}
			req.filter.Categories[c] = true
		}
	}
	return req, nil
}

// ServeHTTP streams the log as Server-Sent Events until the client leaves, the server stops,
// or the client falls too far behind.
func (a *StreamAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	req, err := parseStreamRequest(r)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	rc := http.NewResponseController(w)
	// The server's write timeout suits requests that end; this one lasts as long as the client
	// stays, and each write below gets a deadline of its own instead.
	if err := rc.SetWriteDeadline(time.Time{}); err != nil && !errors.Is(err, http.ErrNotSupported) {
		httpx.WriteError(w, r, fmt.Errorf("integrations: stream: %w", err))
		return
	}
	_ = rc.SetReadDeadline(time.Time{})
	redact := !a.seesPersonalData(r)

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // a proxy in front must not hold the events back
	w.WriteHeader(http.StatusOK)

	var cut atomic.Bool
	out := bufio.NewWriterSize(w, streamBufferSize)
	write := func(b []byte) error {
		_ = rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
		if cut.Load() {
			return ErrTooSlow
		}
		_, err := out.Write(b)
		return err
	}
	flush := func() error {
		if cut.Load() {
			return ErrTooSlow
		}
		if err := out.Flush(); err != nil {
			return err
		}
		return rc.Flush()
	}
	// The opening comment sends the headers now, so a client knows it is connected.
	if err := write([]byte(": orderledger stream\nretry: 2000\n\n")); err != nil {
		return
	}
	if err := flush(); err != nil {
		return
	}
	err = a.broadcaster.follow(r.Context(), req.after, req.filter, sink{
		send: func(batch []*entry) error {
			// Through a buffer of the stream's own, larger than net/http's 4 KiB: a batch
			// costs a system call per 64 KiB, not one per 4 KiB.
			_ = rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
			for _, e := range batch {
				if cut.Load() {
					return ErrTooSlow
				}
				if _, err := out.Write(e.frame(redact)); err != nil {
					return err
				}
			}
			return flush()
		},
		heartbeat: func() error {
			if err := write([]byte(": heartbeat\n\n")); err != nil {
				return err
			}
			return flush()
		},
		idle: a.heartbeat,
		cut: func() {
			cut.Store(true)
			_ = rc.SetWriteDeadline(time.Now())
		},
	})
	if err != nil && r.Context().Err() == nil {
		a.broadcaster.log.Info("stream client disconnected", "remote", r.RemoteAddr, "reason", err.Error())
	}
}
