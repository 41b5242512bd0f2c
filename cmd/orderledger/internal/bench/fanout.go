package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"sync"
	"sync/atomic"
	"time"
)

// StreamListeners is how many GET /v1/stream clients stream_fanout keeps connected.
const StreamListeners = 200

// streamFanout measures POST /v1/orders from the clients with StreamListeners clients reading
// GET /v1/stream, beside the same without them: the ratio says what a crowd of live listeners
// costs the order intake. The listeners connect before each of their turns and leave after it;
// only the posting is timed.
func (r *run) streamFanout(ctx context.Context, h *httpLoad, turnLength time.Duration) error {
	r.logf("measuring %s: %d clients posting orders with %d stream listeners connected, beside none (%s)",
		StreamFanout, r.cfg.Clients, StreamListeners, r.cfg.Duration)
	intake := crew(r.cfg.Clients, turnLength, func(ctx context.Context, _ int, _ int64) error {
		_, err := h.placeOrder(ctx)
		return err
	})
	var received, cut atomic.Int64
	listened := func(ctx context.Context) (int64, time.Duration, error) {
		stop, err := listen(ctx, h.base, h.token, StreamListeners, &received, &cut)
		if err != nil {
			return 0, 0, err
		}
		defer stop()
		return intake(ctx)
	}
	value, baseline, err := alternate(ctx, r.cfg.Duration, listened, intake)
	if err != nil {
		return fmt.Errorf("bench: %s: %w", StreamFanout, err)
	}
	r.logf("%s: the listeners received %d events in all; %d were cut for falling behind", StreamFanout, received.Load(), cut.Load())
	if received.Load() == 0 {
		return fmt.Errorf("bench: %s: the stream listeners received no event", StreamFanout)
	}
	if err := r.add(StreamFanout, value, "orders/s", baseline); err != nil || r.cfg.ListenCommand == nil {
		return err
	}

	// The same with the listeners in a process of their own, as a deployment's are: they
	// still share the machine's cores, but not the server's Go runtime.
	r.logf("measuring %s: the same with the %d listeners in a process of their own (%s)", StreamFanoutApart, StreamListeners, r.cfg.Duration)
	var apartReceived, apartCut int64
	apart := func(ctx context.Context) (int64, time.Duration, error) {
		stop, err := listenApart(ctx, r.cfg.ListenCommand(ctx, h.base, h.token))
		if err != nil {
			return 0, 0, err
		}
		ops, elapsed, err := intake(ctx)
		got, lost, serr := stop()
		apartReceived, apartCut = apartReceived+got, apartCut+lost
		return ops, elapsed, errors.Join(err, serr)
	}
	value, baseline, err = alternate(ctx, r.cfg.Duration, apart, intake)
	if err != nil {
		return fmt.Errorf("bench: %s: %w", StreamFanoutApart, err)
	}
	r.logf("%s: the listeners received %d events in all; %d were cut for falling behind", StreamFanoutApart, apartReceived, apartCut)
	if apartReceived == 0 {
		return fmt.Errorf("bench: %s: the stream listeners received no event", StreamFanoutApart)
	}
	return r.add(StreamFanoutApart, value, "orders/s", baseline)
}

// listenApart starts cmd (`orderledger bench listen`) and returns once it says its listeners
// are connected; stop ends it and returns what its listeners received and how many were cut.
func listenApart(ctx context.Context, cmd *exec.Cmd) (stop func() (received, cut int64, err error), err error) {
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the listeners' process: %w", err)
	}
	lines := bufio.NewScanner(out)
	fail := func(err error) error {
		_ = in.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return fmt.Errorf("the listeners' process: %w: %s", err, bytes.TrimSpace(stderr.Bytes()))
	}
	if !lines.Scan() || lines.Text() != listenersConnected {
		return nil, fail(errors.New("it did not connect its listeners"))
	}
	return func() (int64, int64, error) {
		_ = in.Close() // its cue to disconnect and report
		var received, cut int64
		if !lines.Scan() {
			return 0, 0, fail(errors.New("it ended without a report"))
		}
		if _, err := fmt.Sscanf(lines.Text(), listenersReport, &received, &cut); err != nil {
			return 0, 0, fail(fmt.Errorf("its report %q: %w", lines.Text(), err))
		}
		if err := cmd.Wait(); err != nil {
			return received, cut, fmt.Errorf("the listeners' process: %w: %s", err, bytes.TrimSpace(stderr.Bytes()))
		}
		return received, cut, nil
	}, nil
}

// What `orderledger bench listen` writes on its standard output: a line once its listeners are
// connected, and a report once its standard input ends and they have disconnected.
const (
	listenersConnected = "connected"
	listenersReport    = "received %d cut %d"
)

// RunListeners is `orderledger bench listen`: StreamListeners clients of GET /v1/stream on the
// server at base, each reading every message, until stdin ends; then it reports on out how
// many messages they received and how many the server cut for falling behind.
func RunListeners(ctx context.Context, base, token string, stdin io.Reader, out io.Writer) error {
	var received, cut atomic.Int64
	stop, err := listen(ctx, base, token, StreamListeners, &received, &cut)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintln(out, listenersConnected); err != nil {
		stop()
		return err
	}
	_, _ = io.Copy(io.Discard, stdin)
	stop()
	_, err = fmt.Fprintf(out, listenersReport+"\n", received.Load(), cut.Load())
	return err
}

// listen connects n clients to GET /v1/stream (live, from the head of the log), each reading
// every message, and returns once all are connected; stop disconnects them.
func listen(ctx context.Context, base, token string, n int, received, cut *atomic.Int64) (stop func(), err error) {
	ctx, cancel := context.WithCancel(ctx)
	// Large reads, as a listener on another machine would make them: the default 4 KiB
	// buffer costs this machine, which serves the orders too, a system call per 4 KiB.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true, ReadBufferSize: 64 << 10}}
	var wg sync.WaitGroup
	connected := make(chan error, n)
	for range n {
		wg.Go(func() {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/stream", nil)
			if err != nil {
				connected <- err
				return
			}
			if token != "" {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			resp, err := client.Do(req)
			if err != nil {
				connected <- err
				return
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				connected <- fmt.Errorf("GET /v1/stream: %d", resp.StatusCode)
				return
			}
			connected <- nil
			received.Add(countMessages(resp.Body))
			if ctx.Err() == nil {
				cut.Add(1) // the server ended the stream: this listener fell too far behind
			}
		})
	}
	stop = func() {
		cancel()
		wg.Wait()
		client.CloseIdleConnections()
	}
	for range n {
		var err error
		select {
		case err = <-connected:
		case <-ctx.Done():
			err = ctx.Err()
		}
		if err != nil {
			stop()
			return nil, errors.Join(errors.New("connect the stream listeners"), err)
		}
	}
	return stop, nil
}

// countMessages reads a stream to its end and counts its messages (their "id: " lines), in
// large reads and without splitting lines: the listeners share the machine with the server.
func countMessages(r io.Reader) int64 {
	marker := []byte("\nid: ")
	buf := make([]byte, 64<<10)
	var n int64
	carry := 0 // bytes kept from the previous read, so a marker split across reads counts
	for {
		m, err := r.Read(buf[carry:])
		end := carry + m
		n += int64(bytes.Count(buf[:end], marker))
		if err != nil {
			return n
		}
		carry = min(len(marker)-1, end)
		copy(buf, buf[end-carry:end])
	}
}
