package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"slices"
	"time"
)

// failoverRounds is how many times each failover is measured; the figure is the median.
const failoverRounds = 5

// failover measures, on a stage of its own, with real serve processes taking the roles
// write, read and project:
//   - failover_ms: from kill -9 of the process whose projectors are active to the standby
//     process's read model holding an event written right after the kill (a write to the
//     standby answered, and a read of it with ?after= answered 200): the standby has taken
//     the lease over and committed a batch;
//   - failover_restart_ms: from starting a single serve again after a kill -9 to its read
//     model holding an event written as soon as it listens.
//
// Each is the median of failoverRounds.
func (r *run) failover(ctx context.Context, st Stores) error {
	if r.cfg.ServeRolesCommand == nil {
		return errors.New("bench: failover_ms needs Config.ServeRolesCommand")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := func() (*benchProcess, error) {
		return startProcess(ctx, r.cfg.ServeRolesCommand, st, "write,read,project")
	}
	var procs []*benchProcess
	defer func() {
		for _, p := range procs {
			p.kill()
		}
	}()
	r.logf("measuring %s: two serve processes (write,read,project); the one whose projectors are active is killed %d times", Failover, failoverRounds)
	for range 2 {
		p, err := start()
		if err != nil {
			return err
		}
		procs = append(procs, p)
	}
	var takeovers, restarts []time.Duration
	for round := range failoverRounds {
		active, standby, err := activeAndStandby(ctx, procs[0], procs[1])
		if err != nil {
			return err
		}
		active.kill()
		killed := time.Now()
		if err := standby.writeAndReadBack(ctx, fmt.Sprintf("FAILOVER-%d", round)); err != nil {
			return fmt.Errorf("bench: %s round %d: %w", Failover, round+1, err)
		}
		takeovers = append(takeovers, time.Since(killed))
		r.logf("%s round %d: %.0f ms", Failover, round+1, ms(takeovers[round]))
		// The read-back needed one projector; the standby takes the others' leases on its
		// next tries. A replacement started before then would take some of them, and the
		// two processes would share the projectors, neither active for all of them.
		if err := allActive(ctx, standby); err != nil {
			return fmt.Errorf("bench: %s round %d: %w", Failover, round+1, err)
		}
		replacement, err := start()
		if err != nil {
			return err
		}
		procs = []*benchProcess{standby, replacement}
	}
	for _, p := range procs {
		p.kill()
	}
	procs = nil
	r.logf("measuring %s: a single serve killed and started again %d times", FailoverRestart, failoverRounds)
	for round := range failoverRounds {
		began := time.Now()
		p, err := start()
		if err != nil {
			return err
		}
		procs = []*benchProcess{p}
		if err := p.writeAndReadBack(ctx, fmt.Sprintf("RESTART-%d", round)); err != nil {
			return fmt.Errorf("bench: %s round %d: %w", FailoverRestart, round+1, err)
		}
		restarts = append(restarts, time.Since(began))
		r.logf("%s round %d: %.0f ms", FailoverRestart, round+1, ms(restarts[round]))
		p.kill()
		procs = nil
	}
	if err := r.add(Failover, ms(median(takeovers)), "ms", 0); err != nil {
		return err
	}
	return r.add(FailoverRestart, ms(median(restarts)), "ms", 0)
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// benchProcess is a serve process of the failover figures.
type benchProcess struct {
	base   string
	cmd    *exec.Cmd
	out    *tail
	exited chan struct{}
	client *http.Client
}

// startProcess starts serve with roles and returns once it answers /readyz (any status: a
// process standing by is up).
func startProcess(ctx context.Context, command func(context.Context, Stores, string, string) *exec.Cmd, st Stores, roles string) (*benchProcess, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	p := &benchProcess{base: "http://" + addr, out: &tail{max: 16 << 10}, exited: make(chan struct{}),
		client: &http.Client{Timeout: 15 * time.Second}}
	p.cmd = command(ctx, st, addr, roles)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start serve: %w", err)
	}
	go func() { _ = p.cmd.Wait(); close(p.exited) }()
	deadline := time.Now().Add(readyTimeout)
	for {
		if _, err := p.readiness(ctx); err == nil {
			return p, nil
		}
		select {
		case <-p.exited:
			return nil, fmt.Errorf("bench: serve exited while starting: %s", p.out.String())
		case <-ctx.Done():
			p.kill()
			return nil, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.kill()
			return nil, fmt.Errorf("bench: serve did not answer /readyz within %s", readyTimeout)
		}
	}
}

// kill ends the process with SIGKILL, as a crash does, and waits until it is gone.
func (p *benchProcess) kill() {
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// readiness is the process's /readyz, whatever its status.
func (p *benchProcess) readiness(ctx context.Context) (map[string]any, error) {
	status, body, err := p.request(ctx, http.MethodGet, "/readyz", nil)
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK && status != http.StatusServiceUnavailable {
		return nil, fmt.Errorf("/readyz answered %d", status)
	}
	var doc map[string]any
	return doc, json.Unmarshal(body, &doc)
}

func (p *benchProcess) projectRole(ctx context.Context) string {
	doc, err := p.readiness(ctx)
	if err != nil {
		return ""
	}
	roles, _ := doc["roles"].(map[string]any)
	s, _ := roles["project"].(string)
	return s
}

// allActive waits until p runs every projector.
func allActive(ctx context.Context, p *benchProcess) error {
	deadline := time.Now().Add(readyTimeout)
	for {
		role := p.projectRole(ctx)
		if role == "active" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the process that took over does not run every projector after %s (role %q)", readyTimeout, role)
		}
		if err := sleep(ctx, 5*time.Millisecond); err != nil {
			return err
		}
	}
}

// activeAndStandby waits until one of a and b projects and the other stands by.
func activeAndStandby(ctx context.Context, a, b *benchProcess) (active, standby *benchProcess, err error) {
	deadline := time.Now().Add(readyTimeout)
	for {
		ra, rb := a.projectRole(ctx), b.projectRole(ctx)
		switch {
		case ra == "active" && rb == "standby":
			return a, b, nil
		case rb == "active" && ra == "standby":
			return b, a, nil
		}
		if time.Now().After(deadline) {
			return nil, nil, fmt.Errorf("bench: no process projects while the other stands by (roles %q and %q)", ra, rb)
		}
		if err := sleep(ctx, 5*time.Millisecond); err != nil {
			return nil, nil, err
		}
	}
}

// writeAndReadBack receives stock of a new SKU and reads it back with ?after= until the
// inventory read model holds it, retrying a 504 (the read model did not catch up in time).
func (p *benchProcess) writeAndReadBack(ctx context.Context, sku string) error {
	status, body, err := p.request(ctx, http.MethodPost, "/v1/inventory/"+sku+"/receipts", map[string]any{"quantity": 1})
	if err != nil || status != http.StatusOK {
		return fmt.Errorf("receive %s: %d %s %v", sku, status, body, err)
	}
	var written struct {
		Position string `json:"position"`
	}
	if err := json.Unmarshal(body, &written); err != nil {
		return err
	}
	for {
		status, body, err := p.request(ctx, http.MethodGet, "/v1/inventory/"+sku+"?after="+url.QueryEscape(written.Position), nil)
		switch {
		case err != nil:
			return err
		case status == http.StatusOK:
			return nil
		case status != http.StatusGatewayTimeout:
			return fmt.Errorf("read %s back: %d %s", sku, status, body)
		}
	}
}

func (p *benchProcess) request(ctx context.Context, method, path string, body any) (int, []byte, error) {
	var reader io.Reader
	if body != nil {
		encoded, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		reader = bytes.NewReader(encoded)
	}
	req, err := http.NewRequestWithContext(ctx, method, p.base+path, reader)
	if err != nil {
		return 0, nil, err
	}
	if body != nil || method == http.MethodPost || method == http.MethodPut {
		req.Header.Set("Content-Type", "application/json") // a body-less write too: 415 otherwise
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return resp.StatusCode, data, err
}
