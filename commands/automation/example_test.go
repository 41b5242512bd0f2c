package automation_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/orderledger/orderledger/commands"
	"github.com/orderledger/orderledger/commands/automation"
	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/follow"
	"github.com/orderledger/orderledger/internal/httpx"
)

// How `orderledger serve` runs the automation beside the write API: one handler for both (so
// their caches agree), the lease and checkpoint in the read store's database (package follow),
// the metrics on the server's registry, and the runner's status in /readyz.
func Example() {
	ctx := context.Background()
	var (
		events  eventstore.Store // opened from --events
		readDSN = "sqlite:./data/orderledger.db"
		reg     = prometheus.NewRegistry()
		mux     = http.NewServeMux()
	)
	handler := commands.NewHandler(events)

	leases, err := follow.Open(ctx, readDSN)
	if err != nil {
		slog.Error("open the followers' leases and checkpoints", "error", err)
		return
	}
	defer leases.Close()
	runner := automation.New(handler, leases, automation.WithMetrics(automation.NewMetrics(reg)), automation.WithLogger(slog.Default()))
	go func() {
		// Run returns ctx's error at shutdown, or the *Failure that stopped it; the server
		// keeps serving and /readyz reports the failure.
		if err := runner.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			slog.Error("automation stopped", "error", err)
		}
	}()

	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		st := runner.Status()
		status := http.StatusOK
		if st.Err() != nil {
			status = http.StatusServiceUnavailable
		}
		httpx.WriteJSON(w, status, map[string]any{"automation": st})
	})
}
