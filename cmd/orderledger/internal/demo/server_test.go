package demo

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gorilla/mux"

	"github.com/orderledger/orderledger/commands"
	"github.com/orderledger/orderledger/commands/automation"
	"github.com/orderledger/orderledger/eventstore/sqlite"
	"github.com/orderledger/orderledger/follow"
	"github.com/orderledger/orderledger/projections"
	"github.com/orderledger/orderledger/readapi"
)

// TestRunAgainstAServer drives the demo against the real routes in this process: the write
// API, the read API over the projections, and the automation, on one SQLite file as
// `orderledger serve` keeps them by default.
func TestRunAgainstAServer(t *testing.T) {
	ctx, stop := context.WithCancel(t.Context())
	path := filepath.Join(t.TempDir(), "orderledger.db")
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))

	events, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	read, err := projections.OpenReadStore(ctx, "sqlite:"+path)
	if err != nil {
		t.Fatal(err)
	}
	projectors, err := projections.NewRunner(events, read, projections.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	checkpoints, err := follow.Open(ctx, "sqlite:"+path, follow.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	h := commands.NewHandler(events)
	runner := automation.New(h, checkpoints, automation.WithLogger(slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))))
	done := make(chan struct{}, 2)
	go func() { projectors.Run(ctx); done <- struct{}{} }()
	go func() { runner.Run(ctx); done <- struct{}{} }()

	router := mux.NewRouter()
	commands.NewAPI(h).Register(router)
	readapi.New(read, events, projectors).Register(router)
	srv := httptest.NewServer(router)
	t.Cleanup(func() {
		srv.Close()
		stop()
		<-done
		<-done
		checkpoints.Close()
		read.Close()
		events.Close()
	})

	var out, progress bytes.Buffer
	s, err := Run(ctx, Config{BaseURL: srv.URL, Orders: 30, Concurrency: 6, Seed: 42, Prefix: "t", Out: &out, Progress: &progress})
	if err != nil {
		t.Fatalf("demo: %v\nautomation: %+v", err, runner.Status())
	}
	t.Logf("summary:\n%s", out.String())

	if s.ByStatus["completed"]+s.ByStatus["cancelled"] != 30 {
		t.Errorf("orders by status %v: want all 30 completed or cancelled", s.ByStatus)
	}
	if len(s.Invoices) == 0 || numberRange(s.Invoices) != s.Invoices[0]+" … "+s.Invoices[len(s.Invoices)-1]+", consecutive" {
		t.Errorf("invoices %v: want consecutive numbers (the run is alone on this server)", s.Invoices)
	}
	if len(s.CreditNotes) < s.Returned+s.CancelledInvoiced || s.Returned == 0 {
		t.Errorf("%d credit notes for %d returns and %d invoiced cancellations", len(s.CreditNotes), s.Returned, s.CancelledInvoiced)
	}
	if s.PurchaseOrdersRaised == 0 || s.PurchaseOrdersReceived != s.PurchaseOrdersRaised {
		t.Errorf("purchase orders: %d raised, %d received; the plan over-orders, so some must be raised and all received", s.PurchaseOrdersRaised, s.PurchaseOrdersReceived)
	}
	for _, l := range s.Stock {
		if l.Reserved > l.OnHand || l.Backordered != 0 {
			t.Errorf("stock %+v: reserved above on hand, or backorders left", l)
		}
	}
	if s.TrialBalance.TotalDebit != s.TrialBalance.TotalCredit || s.TrialBalance.TotalDebit == 0 {
		t.Errorf("trial balance %+v: want balanced and not empty", s.TrialBalance)
	}
	if s.Sales.NetSales != s.Sales.Invoiced-s.Sales.Credited || s.Sales.Invoiced == 0 {
		t.Errorf("sales %+v", s.Sales)
	}
	if !strings.Contains(progress.String(), "30/30") {
		t.Errorf("the progress bar never showed 30/30: %q", progress.String())
	}
}
