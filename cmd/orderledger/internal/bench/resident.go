package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/internal/historygen"
)

// readyTimeout bounds how long serve may take to answer /readyz, and catchUpTimeout how long
// its projectors may take to build their read models from the whole log; either running out
// means something is wrong, not slow.
const (
	readyTimeout   = time.Minute
	catchUpTimeout = 10 * time.Minute
)

// serveOverLog runs `orderledger serve` as a process of its own over the generated log, with
// read models it builds from scratch, as a new server over an existing ledger does, and
// measures:
//   - serve_startup: from starting the process to its first 200 from /readyz;
//   - serve_catchup: the log's events per second of the projectors' catch-up, from then until
//     every projector has reached the head;
//   - serve_rss: the process's peak resident memory (VmHWM) over all of that and then d of
//     reads from the clients (customers and SKUs of the generated business).
//
// Its automation does not run: the generated history already holds the automation's work,
// which a runner starting from the beginning of the log would try to do again.
func (r *run) serveOverLog(ctx context.Context, st Stores, size int64, head eventstore.Position) error {
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd := r.cfg.ServeCommand(ctx, st, addr)
	output := &tail{max: 16 << 10}
	cmd.Stdout, cmd.Stderr = output, output
	r.logf("measuring %s: starting orderledger serve over the log with empty read models (%s)", ServeRSS, addr)
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start serve: %w", err)
	}
	// exited closes when the process has ended; waitErr is then how it ended.
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	exitErr := func() error { <-exited; return waitErr }
	// stop ends the process once, with SIGTERM (a clean shutdown), else SIGKILL; it also runs
	// when the run ends early, so that no server outlives it.
	var (
		stopOnce sync.Once
		stopErr  error
	)
	stop := func() error {
		stopOnce.Do(func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
				stopErr = waitErr
			case <-time.After(15 * time.Second):
				_ = cmd.Process.Kill()
				stopErr = errors.Join(errors.New("serve did not stop within 15 s of SIGTERM; killed"), exitErr())
			}
		})
		return stopErr
	}
	defer stop()
	failed := func(err error) error {
		stopErr := stop()
		return fmt.Errorf("%w (serve: %v; its last output: %s)", err, stopErr, output.String())
	}

	h := newHTTPLoad("http://"+addr, r.cfg.Clients)
	defer h.close()
	status := func(ctx context.Context) (int, readiness, error) {
		code, body, err := h.get(ctx, "/readyz")
		var ready readiness
		if err == nil && len(body) > 0 {
			_ = json.Unmarshal(body, &ready)
		}
		return code, ready, err
	}
	// Ready: the first 200 from /readyz.
	for {
		if err := poll(ctx, exited, exitErr, start, readyTimeout, "answer 200 from /readyz"); err != nil {
			return failed(err)
		}
		if code, _, err := status(ctx); err == nil && code == http.StatusOK {
			break
		}
	}
	ready := time.Since(start)
	pid := cmd.Process.Pid

	// Caught up: every projector at the head of the log.
	caughtUpFrom, reported := time.Now(), time.Now()
	for {
		if err := poll(ctx, exited, exitErr, caughtUpFrom, catchUpTimeout, "build its read models"); err != nil {
			return failed(err)
		}
		_, st, err := status(ctx)
		if err != nil {
			continue
		}
		if st.caughtUp(head.String()) {
			break
		}
		if broken := st.broken(); broken != "" {
			return failed(fmt.Errorf("a projector stopped: %s", broken))
		}
		if time.Since(reported) >= progressEvery {
			reported = time.Now()
			r.logf("serve's projectors have read %d of %d events", st.leastEvents(), size)
		}
	}
	catchUp := time.Since(caughtUpFrom)

	r.logf("reading customers and SKUs from %d clients (%s)", r.cfg.Clients, r.cfg.Duration)
	customers, skus := historygen.Sized(size)
	reads := crew(r.cfg.Clients, r.cfg.Duration, func(ctx context.Context, c int, n int64) error {
		path := "/v1/customers/C" + strconv.Itoa(1+rand.IntN(customers))
		if n%2 == 1 {
			path = "/v1/inventory/SKU-" + strconv.Itoa(1+rand.IntN(skus))
		}
		_, err := h.do(ctx, http.MethodGet, path, nil)
		return err
	})
	if _, _, err := reads(ctx); err != nil {
		return failed(err)
	}
	peak, err := peakResidentMB(pid)
	if err != nil {
		return failed(err)
	}
	if err := stop(); err != nil {
		return fmt.Errorf("serve stopped with %v; its last output: %s", err, output.String())
	}
	return errors.Join(
		r.add(ServeStartup, ms(ready), "ms", 0),
		r.add(ServeCatchUp, float64(size)/catchUp.Seconds(), "events/s", 0),
		r.add(ServeRSS, peak, "MB", 0),
	)
}

// poll waits a little before the next look at the process, and fails when it has exited, ctx
// has ended, or timeout has passed since from.
func poll(ctx context.Context, exited <-chan struct{}, exitErr func() error, from time.Time, timeout time.Duration, what string) error {
	select {
	case <-exited:
		return fmt.Errorf("serve exited (%v) before it could %s", exitErr(), what)
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-time.After(10 * time.Millisecond):
	}
	if time.Since(from) > timeout {
		return fmt.Errorf("serve did not %s within %s", what, timeout)
	}
	return nil
}

// readiness is as much of /readyz as serveOverLog reads.
type readiness struct {
	Projections struct {
		Projectors []struct {
			Name        string          `json:"name"`
			Position    string          `json:"position"`
			Events      int64           `json:"events"`
			BrokenEvent json.RawMessage `json:"broken_event"`
		} `json:"projectors"`
	} `json:"projections"`
}

func (r readiness) caughtUp(head string) bool {
	for _, p := range r.Projections.Projectors {
		if p.Position != head {
			return false
		}
	}
	return len(r.Projections.Projectors) > 0
}

func (r readiness) broken() string {
	for _, p := range r.Projections.Projectors {
		if len(p.BrokenEvent) > 0 && string(p.BrokenEvent) != "null" {
			return p.Name + ": " + string(p.BrokenEvent)
		}
	}
	return ""
}

func (r readiness) leastEvents() int64 {
	var least int64 = -1
	for _, p := range r.Projections.Projectors {
		if least < 0 || p.Events < least {
			least = p.Events
		}
	}
	return max(least, 0)
}

// freeAddr returns a loopback address no one listens on now.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := l.Addr().String()
	return addr, l.Close()
}

// peakResidentMB is a process's peak resident set size so far (VmHWM of /proc/PID/status), in
// MiB.
func peakResidentMB(pid int) (float64, error) { return procStatusMB(pid, "VmHWM") }

// procStatusMB reads one kB-valued field (VmRSS, VmHWM…) of /proc/PID/status, in MiB.
func procStatusMB(pid int, field string) (float64, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, fmt.Errorf("%s is read from /proc (Linux): %w", field, err)
	}
	defer f.Close()
	lines := bufio.NewScanner(f)
	for lines.Scan() {
		if rest, ok := strings.CutPrefix(lines.Text(), field+":"); ok {
			kB, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 64)
			if err != nil {
				return 0, fmt.Errorf("%s %q: %w", field, rest, err)
			}
			return kB / 1024, nil
		}
	}
	if err := lines.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no %s line in /proc/PID/status", field)
}

// tail keeps the last max bytes written to it: a child's output, quoted when it fails.
type tail struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = t.buf[over:]
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.buf) == 0 {
		return "(none)"
	}
	return strings.TrimSpace(string(t.buf))
}
