package httpx

import (
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
)

// Instrument wraps a router: it counts and times every request by route template, logs it,
// turns a panic into a 500 problem (the process keeps serving) and answers unknown routes and
// methods with problem+json. Each of guards wraps the router inside the instrumentation (the
// first outermost), so that what a guard refuses is counted and logged too.
func Instrument(reg prometheus.Registerer, r *mux.Router, log *slog.Logger, guards ...func(http.Handler) http.Handler) http.Handler {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "orderledger_http_requests_total",
		Help: "HTTP requests by route template, method and status.",
	}, []string{"route", "method", "status"})
	latency := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "orderledger_http_request_duration_seconds",
		Help:    "HTTP request latency by route template and method.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 15),
	}, []string{"route", "method"})
	reg.MustRegister(requests, latency)

	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		WriteProblem(w, req, http.StatusNotFound, "route_not_found", fmt.Sprintf("no route %s %s", Clip(req.Method), Clip(req.URL.Path)))
	})
	r.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		allowed := allowedMethods(r, req)
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		WriteProblem(w, req, http.StatusMethodNotAllowed, "method_not_allowed",
			fmt.Sprintf("%s is not allowed on %s; it takes %s", Clip(req.Method), Clip(req.URL.Path), strings.Join(allowed, ", ")))
	})

	// The router names the matched route for the metrics as it dispatches, so a request is
	// matched once, not once for the label and again to serve it.
	r.Use(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if rec, ok := w.(*statusRecorder); ok {
				if tpl, err := mux.CurrentRoute(req).GetPathTemplate(); err == nil {
					rec.route = tpl
				}
			}
			next.ServeHTTP(w, req)
		})
	})

	var inner http.Handler = r
	for i := len(guards) - 1; i >= 0; i-- {
		inner = guards[i](inner)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		started := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK, route: "unmatched"}
		defer func() {
			if p := recover(); p != nil {
				log.Error("panic serving request", "method", req.Method, "path", req.URL.Path, "panic", fmt.Sprint(p))
				if !rec.wrote {
					WriteProblem(rec, req, http.StatusInternalServerError, "internal", "internal error; the server log has the details")
				}
			}
			elapsed := time.Since(started)
			if req.Context().Err() != nil && (rec.status >= 500 || !rec.wrote) {
				// The client hung up: whatever the handler made of its cancelled work, no
				// one got the answer, and it is no failure of the server.
				rec.status = StatusClientClosedRequest
			}
			method := methodLabel(req.Method)
			requests.WithLabelValues(rec.route, method, strconv.Itoa(rec.status)).Inc()
			latency.WithLabelValues(rec.route, method).Observe(elapsed.Seconds())
			level := slog.LevelDebug
			if rec.status >= 500 && rec.status != StatusClientClosedRequest {
				level = slog.LevelWarn
			}
			log.Log(req.Context(), level, "request", "method", req.Method, "path", req.URL.Path, "status", rec.status, "duration_ms", float64(elapsed.Microseconds())/1000)
		}()
		setSecurityHeaders(rec.Header())
		inner.ServeHTTP(rec, asGet(r, req))
	})
}

// methodLabel is a request's method as the metrics label it: one the router knows, or
// "other", so that made-up methods cannot grow /metrics without bound.
func methodLabel(method string) string {
	if slices.Contains(methodsToTry, method) || method == http.MethodOptions {
		return method
	}
	return "other"
}

// setSecurityHeaders sets what every answer carries: no content sniffing, a policy that lets
// an API answer load and run nothing if a browser renders it, and no caching, since answers
// hold personal data (names, e-mail addresses, shipping addresses). A handler whose answer
// may be cached or rendered (the OpenAPI document, a dashboard page) sets its own.
func setSecurityHeaders(h http.Header) {
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
}

// methodsToTry are the methods a 405's Allow header is computed from.
var methodsToTry = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

// allowedMethods lists the methods the router answers on req's path; HEAD goes with GET.
func allowedMethods(r *mux.Router, req *http.Request) []string {
	var allowed []string
	for _, m := range methodsToTry {
		probe := req.Clone(req.Context())
		probe.Method = m
		if m == http.MethodHead {
			probe.Method = http.MethodGet
		}
		var match mux.RouteMatch
		if r.Match(probe, &match) && match.MatchErr == nil {
			allowed = append(allowed, m)
		}
	}
	return allowed
}

// asGet returns a HEAD request as the GET it stands for when the router has a GET route for
// its path: HTTP says HEAD answers as GET does, without the body. net/http drops the body of
// an answer to a HEAD request, so the handler writes it as for GET and nothing is sent.
func asGet(r *mux.Router, req *http.Request) *http.Request {
	if req.Method != http.MethodHead {
		return req
	}
	get := req.Clone(req.Context())
	get.Method = http.MethodGet
	var match mux.RouteMatch
	if r.Match(get, &match) && match.MatchErr == nil {
		return get
	}
	return req
}

type statusRecorder struct {
	http.ResponseWriter
	status int
	wrote  bool
	route  string // the matched route's template, for the metrics
}

func (s *statusRecorder) WriteHeader(code int) {
	if !s.wrote {
		s.status, s.wrote = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the connection: a stream flushes and lifts the
// server's write timeout through it.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (s *statusRecorder) Write(b []byte) (int, error) {
	s.wrote = true
	return s.ResponseWriter.Write(b)
}
