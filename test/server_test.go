package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/orderledger/orderledger/internal/pgtest"
)

// backend is an event store the binary runs on in these tests.
type backend struct {
	name string
	// newEvents returns the --events DSN of an empty store that lives as long as the test.
	newEvents func(t *testing.T) string
}

var backends = []backend{
	{"sqlite", func(t *testing.T) string { return "sqlite:" + filepath.Join(t.TempDir(), "orderledger.db") }},
	{"postgres", func(t *testing.T) string { return pgtest.NewDatabase(t) }},
}

// forEachBackend runs f as a subtest per backend, each on an empty store of its own. The
// backends run in parallel: most of a test's time is spent waiting on the server.
func forEachBackend(t *testing.T, f func(t *testing.T, events string)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			f(t, b.newEvents(t))
		})
	}
}

// startTimeout bounds how long the binary may take to listen and become ready.
const startTimeout = 60 * time.Second

// server is one running orderledger process.
type server struct {
	events  string
	dir     string
	base    string // http://127.0.0.1:port
	cmd     *exec.Cmd
	log     *syncBuffer
	exited  chan struct{} // closed when the process has exited
	waitErr error
}

// servingLine is the log line serve writes once it listens; it names the real address, so
// the binary can be given port 0 and no port is raced for.
var servingLine = regexp.MustCompile(`msg="orderledger serving" addr=(\S+)`)

// startServer starts `orderledger serve` on the events DSN and waits until /readyz answers 200.
// The process is stopped when the test ends (if nothing stopped it before).
func startServer(t *testing.T, events string) *server {
	t.Helper()
	return startServerWith(t, events)
}

// startServerWith is startServer with more arguments to serve, such as --roles.
func startServerWith(t *testing.T, events string, args ...string) *server {
	t.Helper()
	s := &server{events: events, dir: t.TempDir(), log: &syncBuffer{}, exited: make(chan struct{})}
	s.cmd = exec.Command(binary, append([]string{"serve", "--addr", "127.0.0.1:0", "--events", events}, args...)...)
	s.cmd.Dir = s.dir
	s.cmd.Env = cleanEnv()
	stderr, err := s.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	s.cmd.Stdout = s.log
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", binary, err)
	}
	addr := make(chan string, 1)
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		scanner := bufio.NewScanner(stderr)
		scanner.Buffer(make([]byte, 64*1024), 1024*1024)
		for scanner.Scan() {
			line := scanner.Text()
			s.log.WriteString(line + "\n")
			if m := servingLine.FindStringSubmatch(line); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
		}
		_, _ = io.Copy(s.log, stderr)
	}()
	go func() {
		<-copied // Wait closes the pipe: read it to the end first
		s.waitErr = s.cmd.Wait()
		close(s.exited)
	}()
	t.Cleanup(func() {
		s.stop(t)
		if t.Failed() {
			t.Logf("server log (%s):\n%s", s.events, tail(s.log.String(), 60))
		}
	})

	select {
	case a := <-addr:
		s.base = "http://" + a
	case <-s.exited:
		t.Fatalf("orderledger serve exited before listening (%v):\n%s", s.waitErr, s.log.String())
	case <-time.After(startTimeout):
		t.Fatalf("orderledger serve did not listen within %s:\n%s", startTimeout, s.log.String())
	}
	s.waitReady(t)
	return s
}

// cleanEnv is the environment without ORDERLEDGER_* variables, so that only the flags the
// test passes configure the binary, but for the master key file all of them share.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ORDERLEDGER_") {
			env = append(env, kv)
		}
	}
	return append(env, "ORDERLEDGER_MASTER_KEY_FILE="+masterKeyFile)
}

func (s *server) waitReady(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(startTimeout)
	for {
		resp, err := http.Get(s.base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz did not answer 200 within %s (last: %v)", startTimeout, err)
		}
		select {
		case <-s.exited:
			t.Fatalf("orderledger serve exited while starting (%v):\n%s", s.waitErr, s.log.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// stop ends the process gracefully (SIGTERM, as an orchestrator would) and waits for it; a
// process that is already gone is left alone.
func (s *server) stop(t *testing.T) {
	t.Helper()
	select {
	case <-s.exited:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
		if s.waitErr != nil {
			t.Errorf("orderledger serve exited with %v after SIGTERM", s.waitErr)
		}
	case <-time.After(45 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
		t.Errorf("orderledger serve did not stop within 45s of SIGTERM")
	}
}

// kill ends the process with SIGKILL, as a crash would, and waits until it is gone.
func (s *server) kill(t *testing.T) {
	t.Helper()
	if err := s.cmd.Process.Kill(); err != nil {
		t.Fatalf("kill: %v", err)
	}
	<-s.exited
}

// response is what the server answered.
type response struct {
	status int
	header http.Header
	body   []byte
}

// client is shared so connections are reused; its timeout bounds any one request. Every
// exchange it makes is checked against the OpenAPI document (conformance_test.go).
var client = &http.Client{Timeout: 60 * time.Second, Transport: validatingTransport{base: http.DefaultTransport}}

// send makes one request. body is sent as is when it is a string or []byte, JSON-encoded
// otherwise, and not at all when nil; headers are name, value pairs.
func (s *server) send(ctx context.Context, method, path string, body any, headers ...string) (response, error) {
	var reader io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		reader = strings.NewReader(b)
	case []byte:
		reader = bytes.NewReader(b)
	default:
		encoded, err := json.Marshal(b)
		if err != nil {
			return response{}, err
		}
		reader = bytes.NewReader(encoded)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.base+path, reader)
	if err != nil {
		return response{}, err
	}
	if reader != nil || method == http.MethodPost || method == http.MethodPut {
		// Every write says it is JSON, a body-less one too (415 otherwise).
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if http.CanonicalHeaderKey(headers[i]) == "Content-Type" {
			req.Header.Del("Content-Type")
		}
		req.Header.Add(headers[i], headers[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, err
	}
	return response{status: resp.StatusCode, header: resp.Header, body: data}, nil
}

// do is send that fails the test on a transport error.
func (s *server) do(t testing.TB, method, path string, body any, headers ...string) response {
	t.Helper()
	resp, err := s.send(t.Context(), method, path, body, headers...)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp
}

// expect makes a request and fails the test unless it gets status; it returns the answer
// decoded as a JSON object.
func (s *server) expect(t testing.TB, status int, method, path string, body any, headers ...string) map[string]any {
	t.Helper()
	resp := s.do(t, method, path, body, headers...)
	if resp.status != status {
		t.Fatalf("%s %s: status %d, want %d; body %s", method, path, resp.status, status, resp.body)
	}
	return resp.object(t)
}

// object decodes the body as a JSON object.
func (r response) object(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("answer is not a JSON object: %v: %s", err, r.body)
	}
	return m
}

// syncBuffer collects the process's output; the copying goroutine and the test read it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) WriteString(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.WriteString(s)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func tail(s string, lines int) string {
	all := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(all) > lines {
		all = append([]string{fmt.Sprintf("… %d lines before", len(all)-lines)}, all[len(all)-lines:]...)
	}
	return strings.Join(all, "\n")
}
