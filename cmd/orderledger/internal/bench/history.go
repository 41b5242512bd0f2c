package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/orderledger/orderledger/client"
	"github.com/orderledger/orderledger/commands/automation"
	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/follow"
	"github.com/orderledger/orderledger/internal/historygen"
)

// The business of the histories behind rss_after_orders and cold_first_invoice_ms: a large
// shop, so that a million orders spread over streams as a real one's would.
const (
	historyCustomers = 2000
	historySKUs      = 300
)

// DefaultHistoryOrders are the history sizes rss_after_orders and cold_first_invoice_ms are
// measured after: the figures' targets compare the two.
var DefaultHistoryOrders = []int{100_000, 1_000_000}

// historyStages names the stages of the history sizes, one each (at most two sizes).
var historyStages = []string{stageHistory1, stageHistory2}

// historyStage measures, for each size N of Config.HistoryOrders, a server after a history of
// N orders: rss_after_orders_<N> and cold_first_invoice_ms_<N>. The history is generated
// (historygen: what the clients and the automation would have appended, with the automation's
// checkpoint at its end), then a serve process with every role starts over it, builds its read
// models, takes orders through the automation for --duration and then measures its resident
// memory; it is stopped, started again, and the time from posting one order on the history's
// busiest SKU to reading it back invoiced is the cold first invoice. The second size's figures
// have the first's as their baseline: their ratio is how much the history's growth costs.
func (r *run) historyStage(ctx context.Context, sp *space) error {
	var baseRSS, baseInvoice float64
	for i, n := range r.cfg.HistoryOrders {
		st := sp.stores(historyStages[i])
		label := orderCount(n)
		r.logf("generating a history of %d orders (%d customers, %d SKUs)", n, historyCustomers, historySKUs)
		busiest, events, err := generateOrders(ctx, st, n, r.logf)
		if err != nil {
			return fmt.Errorf("bench: generate %d orders: %w", n, err)
		}
		r.logf("the history holds %d events; the busiest SKU is %s", events, busiest)
		rss, invoice, err := r.serveAfterHistory(ctx, st, busiest, events)
		if err != nil {
			return fmt.Errorf("bench: %s after %s orders: %w", RSSAfterOrders, label, err)
		}
		if err := errors.Join(
			r.add(RSSAfterOrders+"_"+label, rss, "MB", baseRSS),
			r.add(ColdFirstInvoice+"_"+label, ms(invoice), "ms", baseInvoice),
		); err != nil {
			return err
		}
		if i == 0 {
			baseRSS, baseInvoice = rss, ms(invoice)
		}
	}
	return nil
}

// orderCount names a history size as the figures do: 100k, 1m.
func orderCount(n int) string {
	switch {
	case n%1_000_000 == 0:
		return strconv.Itoa(n/1_000_000) + "m"
	case n%1000 == 0:
		return strconv.Itoa(n/1000) + "k"
	}
	return strconv.Itoa(n)
}

// generateOrders appends a history of n orders and returns its busiest SKU (the one whose stock
// stream is longest) and how many events it holds. The automation's checkpoint is set to the
// history's end: its work is in the history already.
func generateOrders(ctx context.Context, st Stores, n int, logf func(string, ...any)) (busiest string, events int64, err error) {
	store, err := openGenerator(ctx, st)
	if err != nil {
		return "", 0, err
	}
	defer store.Close()
	g := historygen.New(historygen.Config{Seed: 1, Start: time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC), Customers: historyCustomers, SKUs: historySKUs})
	lengths := map[string]int{}
	start, reported := time.Now(), time.Now()
	for done := false; !done; {
		var window []historygen.Record
		for len(window) < historygen.Window && !done {
			window = append(window, g.Step()...)
			done = len(g.Orders()) >= n
		}
		if err := historygen.AppendWindow(ctx, store, window, generateWriters); err != nil {
			return "", 0, err
		}
		for _, rec := range window {
			lengths[rec.Stream]++
		}
		events += int64(len(window))
		if time.Since(reported) >= progressEvery {
			reported = time.Now()
			logf("generated %d of %d orders (%d events, %.0f events/s)", len(g.Orders()), n, events, float64(events)/time.Since(start).Seconds())
		}
	}
	most := 0
	for stream, length := range lengths {
		if sku, ok := strings.CutPrefix(stream, domain.StockStream("")); ok && length > most {
			busiest, most = sku, length
		}
	}
	head, err := store.Head(ctx)
	if err != nil {
		return "", 0, err
	}
	checkpoints, err := follow.Open(ctx, st.ReadDSN)
	if err != nil {
		return "", 0, err
	}
	defer checkpoints.Close()
	return busiest, events, checkpoints.StartAt(ctx, automation.Name, head)
}

// serveAfterHistory runs serve with every role over a generated history (see historyStage) and
// returns its resident memory after taking orders, and the time its first order after a
// restart took to be invoiced.
func (r *run) serveAfterHistory(ctx context.Context, st Stores, busiest string, events int64) (rssMB float64, firstInvoice time.Duration, err error) {
	srv, err := r.startServe(ctx, st, events)
	if err != nil {
		return 0, 0, err
	}
	defer srv.stop()
	h := newHTTPLoad(srv.base, r.cfg.Clients)
	defer h.close()
	// Stock enough on the busiest SKU that the order after the restart is served at once,
	// whatever backorders the history left there.
	if err := h.post(ctx, "/v1/inventory/"+busiest+"/receipts", map[string]any{"quantity": seedStock, "reference": "bench"}, nil); err != nil {
		return 0, 0, srv.failed(err)
	}
	r.logf("taking orders through the automation from %d clients (%s)", r.cfg.Clients, r.cfg.Duration)
	orders := crew(r.cfg.Clients, r.cfg.Duration, func(ctx context.Context, _ int, _ int64) error {
		_, err := h.placeOrderOn(ctx, "C"+strconv.Itoa(1+rand.IntN(historyCustomers)), "SKU-"+strconv.Itoa(1+rand.IntN(historySKUs)))
		return err
	})
	placed, _, err := orders(ctx)
	if err != nil {
		return 0, 0, srv.failed(err)
	}
	r.logf("placed %d orders; letting the automation finish them", placed)
	if err := sleep(ctx, 5*time.Second); err != nil {
		return 0, 0, err
	}
	if rssMB, err = residentMB(srv.pid); err != nil {
		return 0, 0, srv.failed(err)
	}
	if err := srv.stop(); err != nil {
		return 0, 0, err
	}

	r.logf("restarting serve; then one order on %s, waited for until invoiced", busiest)
	srv, err = r.startServe(ctx, st, events)
	if err != nil {
		return 0, 0, err
	}
	defer srv.stop()
	h2 := newHTTPLoad(srv.base, 1)
	defer h2.close()
	start := time.Now()
	placedOrder, err := h2.placeOrderOn(ctx, "C1", busiest)
	if err != nil {
		return 0, 0, srv.failed(err)
	}
	if _, err := h2.await(ctx, placedOrder.OrderID, placedOrder.Position, "its invoice", func(d client.Order) bool { return d.InvoiceNumber != nil }); err != nil {
		return 0, 0, srv.failed(err)
	}
	firstInvoice = time.Since(start)
	return rssMB, firstInvoice, srv.stop()
}

// placeOrderOn posts an order of one line on sku for customer.
func (h *httpLoad) placeOrderOn(ctx context.Context, customer, sku string) (client.Written, error) {
	var w client.Written
	err := h.post(ctx, "/v1/orders", map[string]any{
		"customer_id": customer, "channel": "web", "currency": "EUR",
		"lines":        []domain.OrderLine{{SKU: sku, Quantity: 1, UnitPrice: 1999}},
		"tax_rate_bps": 2000, "payment_method": "card", "shipping_address": shippingAddress,
	}, &w)
	if err == nil && (w.OrderID == "" || w.Position == "") {
		err = errors.New("POST /v1/orders answered without order_id or position")
	}
	return w, err
}

// serveProcess is a serve process the bench started.
type serveProcess struct {
	base     string
	pid      int
	output   *tail
	stopOnce sync.Once
	stopErr  error
	cmd      *exec.Cmd
	exited   chan struct{}
	waitErr  error
}

// startServe starts serve with every role on st and waits until it answers /readyz with 200
// and its projectors have read the whole log.
func (r *run) startServe(ctx context.Context, st Stores, events int64) (*serveProcess, error) {
	if r.cfg.ServeAllCommand == nil {
		return nil, errors.New("bench: rss_after_orders and cold_first_invoice_ms need Config.ServeAllCommand")
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	p := &serveProcess{base: "http://" + addr, output: &tail{max: 16 << 10}, exited: make(chan struct{})}
	p.cmd = r.cfg.ServeAllCommand(context.WithoutCancel(ctx), st, addr)
	p.cmd.Stdout, p.cmd.Stderr = p.output, p.output
	start := time.Now()
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start serve: %w", err)
	}
	p.pid = p.cmd.Process.Pid
	go func() { p.waitErr = p.cmd.Wait(); close(p.exited) }()
	exitErr := func() error { <-p.exited; return p.waitErr }
	store, err := openEvents(ctx, st)
	if err != nil {
		return nil, p.failed(err)
	}
	head, err := store.Head(ctx)
	store.Close()
	if err != nil {
		return nil, p.failed(err)
	}
	h := newHTTPLoad(p.base, 1)
	defer h.close()
	// A history of a million orders is tens of millions of events: give the catch-up as long
	// as a slow machine's 500 events/s would take, and at least catchUpTimeout.
	timeout := max(catchUpTimeout, time.Duration(events/500)*time.Second)
	reported := time.Now()
	for {
		if err := poll(ctx, p.exited, exitErr, start, timeout, "build its read models"); err != nil {
			return nil, p.failed(err)
		}
		code, body, err := h.get(ctx, "/readyz")
		if err != nil || code != http.StatusOK {
			continue
		}
		var ready readiness
		_ = json.Unmarshal(body, &ready)
		if ready.caughtUp(head.String()) {
			return p, nil
		}
		if broken := ready.broken(); broken != "" {
			return nil, p.failed(fmt.Errorf("a projector stopped: %s", broken))
		}
		if time.Since(reported) >= progressEvery {
			reported = time.Now()
			r.logf("serve's projectors have read %d of %d events", ready.leastEvents(), events)
		}
	}
}

// stop ends the process once, with SIGTERM, else SIGKILL after 15 s.
func (p *serveProcess) stop() error {
	p.stopOnce.Do(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
			p.stopErr = p.waitErr
		case <-time.After(15 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.exited
			p.stopErr = errors.New("serve did not stop within 15 s of SIGTERM; killed")
		}
	})
	return p.stopErr
}

func (p *serveProcess) failed(err error) error {
	stopErr := p.stop()
	return fmt.Errorf("%w (serve: %v; its last output: %s)", err, stopErr, p.output.String())
}

// residentMB is a process's resident set size now (VmRSS of /proc/PID/status), in MiB.
func residentMB(pid int) (float64, error) { return procStatusMB(pid, "VmRSS") }
