package main

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/orderledger/orderledger/eventstore/sqlite"
	"github.com/orderledger/orderledger/internal/historygen"
	"github.com/orderledger/orderledger/internal/pgtest"
)

// TestAuditCommands runs the built binary, as an auditor would, on SQLite files: verify,
// digest, export and import, with their exit statuses and outputs.
func TestAuditCommands(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	events := "sqlite:" + filepath.Join(dir, "events.db")
	generate(t, filepath.Join(dir, "events.db"), 300)

	var digest string
	t.Run("verify a clean log", func(t *testing.T) {
		out := run(t, bin, nil, 0, "audit", "verify", "--events", events)
		if !strings.Contains(out.stdout, "ok: 300 events in 7 streams") {
			t.Errorf("stdout %q", out.stdout)
		}
		if !strings.Contains(out.stderr, "verified 300 events in") || !strings.Contains(out.stderr, "events/s") {
			t.Errorf("stderr %q should end with the count and rate", out.stderr)
		}
	})
	t.Run("digest is the last line", func(t *testing.T) {
		out := run(t, bin, nil, 0, "audit", "digest", "--events", events)
		lines := strings.Split(strings.TrimSpace(out.stdout), "\n")
		digest = lines[len(lines)-1]
		if !regexp.MustCompile(`^oldigest1:\d+-\d+:7:300:[0-9a-f]{64}$`).MatchString(digest) {
			t.Fatalf("last line %q is not a digest of 7 streams and 300 events", digest)
		}
	})
	generate(t, filepath.Join(dir, "events.db"), 20)
	t.Run("the digest holds after more events", func(t *testing.T) {
		out := run(t, bin, nil, 0, "audit", "verify", "--events", events, "--digest", digest)
		if !strings.Contains(out.stdout, "matches the digest: 300 events in 7 streams") {
			t.Errorf("stdout %q", out.stdout)
		}
	})

	var export, copyDigest string
	t.Run("export then import", func(t *testing.T) {
		out := run(t, bin, nil, 0, "export", "--events", events)
		export = out.stdout
		if n := strings.Count(export, "\n"); n != 320 {
			t.Fatalf("export has %d lines, want 320", n)
		}
		copyDSN := "sqlite:" + filepath.Join(dir, "copy.db")
		run(t, bin, strings.NewReader(export), 0, "import", "--events", copyDSN)
		again := run(t, bin, strings.NewReader(export), 1, "import", "--events", copyDSN)
		if !strings.Contains(again.stderr, "not empty") {
			t.Errorf("a second import into the same store: stderr %q", again.stderr)
		}
		original := lastLine(run(t, bin, nil, 0, "audit", "digest", "--events", events).stdout)
		copyDigest = lastLine(run(t, bin, nil, 0, "audit", "digest", "--events", copyDSN, "--heads", filepath.Join(dir, "copy.heads")).stdout)
		if digestRoot(original) != digestRoot(copyDigest) {
			t.Errorf("digest of the copy %s, of the original %s", copyDigest, original)
		}
	})
	t.Run("import into postgres", func(t *testing.T) {
		dsn := pgtest.NewDatabase(t)
		run(t, bin, strings.NewReader(export), 0, "import", "--events", dsn)
		out := run(t, bin, nil, 0, "audit", "verify", "--events", dsn)
		if !strings.Contains(out.stdout, "ok: 320 events in 7 streams") {
			t.Errorf("verify the copy: stdout %q", out.stdout)
		}
	})

	t.Run("tampered log", func(t *testing.T) {
		tamper(t, filepath.Join(dir, "events.db"), `UPDATE events SET data = CAST('{"forged":1}' AS BLOB) WHERE stream = 'order-gen-3' AND version = 4`)
		out := run(t, bin, nil, 1, "audit", "verify", "--events", events)
		if !strings.Contains(out.stderr, `stream "order-gen-3" version 4`) || !strings.Contains(out.stderr, "recomputed") {
			t.Errorf("verify: stderr %q should name order-gen-3 version 4 and the hashes", out.stderr)
		}
		out = run(t, bin, nil, 1, "audit", "verify", "--events", events, "--digest", digest)
		if !strings.Contains(out.stderr, `stream "order-gen-3" version 4`) {
			t.Errorf("verify --digest: stderr %q", out.stderr)
		}
		run(t, bin, nil, 1, "audit", "digest", "--events", events)
	})
	t.Run("truncated stream fails the digest", func(t *testing.T) {
		copyDB := filepath.Join(dir, "copy.db")
		tamper(t, copyDB, `DELETE FROM events WHERE stream = 'order-gen-6' AND version = (SELECT max(version) FROM events WHERE stream = 'order-gen-6')`)
		run(t, bin, nil, 0, "audit", "verify", "--events", "sqlite:"+copyDB)
		out := run(t, bin, nil, 1, "audit", "verify", "--events", "sqlite:"+copyDB, "--digest", copyDigest)
		if !strings.Contains(out.stderr, "events: digest 320, the log now has 319") || !strings.Contains(out.stderr, "root:") {
			t.Errorf("stderr %q should give the event counts and the roots", out.stderr)
		}
		out = run(t, bin, nil, 1, "audit", "verify", "--events", "sqlite:"+copyDB, "--digest", copyDigest, "--heads", filepath.Join(dir, "copy.heads"))
		if !regexp.MustCompile(`stream "order-gen-6": version (\d+) \(hash [0-9a-f]+\) at the digest, version \d+ \(hash`).MatchString(out.stderr) {
			t.Errorf("with --heads, stderr %q should name order-gen-6 and its versions", out.stderr)
		}
		// A heads file that is not the digest's is refused: it could name the wrong streams.
		if err := os.WriteFile(filepath.Join(dir, "forged.heads"), []byte("0\t"+strings.Repeat("00", 32)+"\torder-gen-6\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		run(t, bin, nil, 2, "audit", "verify", "--events", "sqlite:"+copyDB, "--digest", copyDigest, "--heads", filepath.Join(dir, "forged.heads"))
	})

	t.Run("cannot run", func(t *testing.T) {
		for _, args := range [][]string{
			{"audit", "verify", "--events", "sqlite:" + filepath.Join(dir, "missing.db")},
			{"audit", "verify", "--events", "postgres://postgres@127.0.0.1:1/none?sslmode=disable&connect_timeout=5"},
			{"audit", "verify", "--events", events, "--digest", "oldigest1:nonsense"},
			{"audit", "verify", "--events", events, "--no-such-flag"},
			{"audit", "digest", "--events", "sqlite:" + filepath.Join(dir, "missing.db")},
		} {
			out := run(t, bin, nil, 2, args...)
			if !strings.HasPrefix(out.stderr, "orderledger: ") && !strings.Contains(out.stderr, "\norderledger: ") {
				t.Errorf("%v: stderr %q should say why", args, out.stderr)
			}
		}
		if _, err := os.Stat(filepath.Join(dir, "missing.db")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("verify created the missing store: %v", err)
		}
	})
}

func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "orderledger")
	cmd := exec.CommandContext(t.Context(), "go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// generate appends n synthetic events over 7 streams to the SQLite file at path.
func generate(t *testing.T, path string, n int) {
	t.Helper()
	store, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if _, err := historygen.Synthetic(t.Context(), store, historygen.SyntheticOptions{Events: n, Streams: 7, Batch: 3, Writers: 1}); err != nil {
		t.Fatal(err)
	}
}

type output struct{ stdout, stderr string }

// run runs the binary and fails the test unless it exits with want.
func run(t *testing.T, bin string, stdin *strings.Reader, want int, args ...string) output {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if stdin != nil {
		cmd.Stdin = stdin
	}
	err := cmd.Run()
	code := 0
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		code = exitErr.ExitCode()
	} else if err != nil {
		t.Fatalf("run %v: %v", args, err)
	}
	if code != want {
		t.Fatalf("%v exited %d, want %d\nstdout: %s\nstderr: %s", args, code, want, stdout.String(), stderr.String())
	}
	return output{stdout.String(), stderr.String()}
}

// tamper runs query on the SQLite file with the triggers that refuse it dropped for the time.
func tamper(t *testing.T, path, query string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.WithoutCancel(t.Context())
	for _, stmt := range []string{
		`DROP TRIGGER events_refuse_update`, `DROP TRIGGER events_refuse_delete`, query,
		`CREATE TRIGGER events_refuse_update BEFORE UPDATE ON events BEGIN SELECT RAISE(ABORT, 'events are immutable: UPDATE refused'); END`,
		`CREATE TRIGGER events_refuse_delete BEFORE DELETE ON events BEGIN SELECT RAISE(ABORT, 'events are immutable: DELETE refused'); END`,
	} {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// digestRoot drops a digest's position, which differs between a store and its copy.
func digestRoot(d string) string {
	_, rest, _ := strings.Cut(strings.TrimPrefix(d, "oldigest1:"), ":")
	return rest
}
