package httpx

import (
	"bytes"
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gorilla/mux"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/orderledger/orderledger/eventstore"
)

// A store that cannot be reached answers 503 unavailable with Retry-After, never 500; a bug
// still answers 500.
func TestStoreOutagesAnswer503WithRetryAfter(t *testing.T) {
	cases := map[string]struct {
		err    error
		status int
		code   string
	}{
		"event store":        {fmt.Errorf("append: %w", eventstore.ErrUnavailable), 503, "unavailable"},
		"backend terminated": {fmt.Errorf("read: %w", &pgconn.PgError{Code: "57P01"}), 503, "unavailable"},
		"cannot connect now": {&pgconn.PgError{Code: "57P03"}, 503, "unavailable"},
		"connection failure": {&pgconn.PgError{Code: "08006"}, 503, "unavailable"},
		"bad connection":     {fmt.Errorf("query: %w", driver.ErrBadConn), 503, "unavailable"},
		"refused":            {&net.OpError{Op: "dial", Err: errors.New("connection refused")}, 503, "unavailable"},
		"unique violation":   {&pgconn.PgError{Code: "23505"}, 500, "internal"},
		"a bug":              {errors.New("nil map"), 500, "internal"},
		"deadline":           {fmt.Errorf("wait: %w", context.DeadlineExceeded), 504, "timeout"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			WriteError(rec, httptest.NewRequest("GET", "/v1/orders/x", nil), c.err)
			if rec.Code != c.status || !strings.Contains(rec.Body.String(), `"code":"`+c.code+`"`) {
				t.Fatalf("%v answered %d %s; want %d %s", c.err, rec.Code, rec.Body, c.status, c.code)
			}
			if got := rec.Header().Get("Retry-After"); (c.status == 503) != (got != "") {
				t.Fatalf("status %d with Retry-After %q", rec.Code, got)
			}
		})
	}
}

// A client that hangs up is logged and counted as 499, not as a server error.
func TestAClientThatHangsUpIsLoggedAs499(t *testing.T) {
	var logged bytes.Buffer
	router := mux.NewRouter()
	router.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
		WriteError(w, r, fmt.Errorf("query: %w", r.Context().Err()))
	})
	h := Instrument(prometheus.NewRegistry(), router, slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelDebug})))
	ctx, hangUp := context.WithCancel(t.Context())
	req := httptest.NewRequest("GET", "/slow", nil).WithContext(ctx)
	hangUp()
	h.ServeHTTP(httptest.NewRecorder(), req)
	if !strings.Contains(logged.String(), "status=499") || strings.Contains(logged.String(), "level=WARN") || strings.Contains(logged.String(), "level=ERROR") {
		t.Fatalf("log: %s; want the request at status 499, not as a failure", logged.String())
	}
}
