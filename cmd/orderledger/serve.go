package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/orderledger/orderledger/audit"
	"github.com/orderledger/orderledger/commands"
	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/internal/httpx"
	"github.com/orderledger/orderledger/internal/openapi"
	"github.com/orderledger/orderledger/internal/stores"
)

type serveOptions struct {
	addr            string
	shutdownTimeout time.Duration
}

func newServeCmd(cfg *config) *cobra.Command {
	opts := &serveOptions{}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the HTTP service: write API, read API, projectors and the order-to-cash automation",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return serve(cmd.Context(), cfg, opts)
		},
	}
	cmd.Flags().StringVar(&opts.addr, "addr", envOr("ORDERLEDGER_ADDR", "127.0.0.1:8080"), "listen address (env ORDERLEDGER_ADDR)")
	cmd.Flags().DurationVar(&opts.shutdownTimeout, "shutdown-timeout", 30*time.Second, "how long in-flight requests may take to finish on SIGTERM/SIGINT")
	return cmd
}

func serve(ctx context.Context, cfg *config, opts *serveOptions) error {
	log := slog.Default()
	if _, err := cfg.readDSN(); err != nil {
		return err
	}
	events, err := stores.OpenEvents(ctx, cfg.events)
	if err != nil {
		return fmt.Errorf("open event store %s: %w", stores.Redact(cfg.events), err)
	}
	defer events.Close()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	router := newRouter(events, reg)

	listener, err := net.Listen("tcp", opts.addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", opts.addr, err)
	}
	srv := &http.Server{
		Handler:           httpx.Instrument(reg, router, log),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(listener) }()
	log.Info("orderledger serving", "addr", listener.Addr().String(), "events", stores.Redact(cfg.events))

	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing in-flight requests", "timeout", opts.shutdownTimeout)
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), opts.shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	log.Info("stopped")
	return nil
}

// newRouter mounts every route the service answers. The OpenAPI test walks the router it
// returns, so a route added here and not documented (or documented and gone) fails a test.
func newRouter(events eventstore.Store, reg *prometheus.Registry) *mux.Router {
	handler := commands.NewHandler(events, commands.WithMetrics(commands.NewMetrics(reg)))
	router := mux.NewRouter()
	commands.NewAPI(handler).Register(router)
	audit.NewAPI(events).Register(router)
	router.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		httpx.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}).Methods(http.MethodGet)
	router.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		checkCtx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		report := map[string]any{}
		status := http.StatusOK
		if _, err := events.Head(checkCtx); err != nil {
			status = http.StatusServiceUnavailable
			report["events"] = err.Error()
		} else {
			report["events"] = "ok"
		}
		report["status"] = map[bool]string{true: "ready", false: "not ready"}[status == http.StatusOK]
		httpx.WriteJSON(w, status, report)
	}).Methods(http.MethodGet)
	router.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})).Methods(http.MethodGet)
	router.Handle("/v1/openapi.json", openapi.Handler()).Methods(http.MethodGet)
	return router
}
