package projections_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/orderledger/orderledger/follow"
	"github.com/orderledger/orderledger/internal/pgtest"
	"github.com/orderledger/orderledger/projections"
	"github.com/orderledger/orderledger/projections/projectionstest"
)

// TestNeverTwoWritersWhenTheHolderIsCutOffWhileItCommits: the active runner's lease session
// is terminated (pg_terminate_backend) while one of its batches is on its way to commit. A
// standby in another process takes the projector over, and the cut-off runner — which has not
// noticed, as a holder behind a slow network would not — then sends its commit. The commit
// is refused (the row carries the new term's token), so no batch is applied twice: the read
// models equal a rebuild from the log, event for event.
func TestNeverTwoWritersWhenTheHolderIsCutOffWhileItCommits(t *testing.T) {
	env := projectionstest.OpenPostgres(t)
	ctx := t.Context()
	_, records := generate(31, 1200)
	head := projectionstest.Append(t, env.Store, records[:400])

	quiet := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	// A's lease session is never checked, so A learns of its loss only from the fence.
	leasesA, err := follow.Open(ctx, env.ReadDSN, follow.WithHolder("holder-a"), follow.WithHealthCheck(time.Hour), follow.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { leasesA.Close() })
	var logA syncBuffer
	// A runs only the projector whose commit is cut: another of its projectors finding the
	// session dead would end every term on it, and the commit would then be cancelled by A
	// itself rather than refused by the fence, which is what this test is about.
	a := projectionstest.StartRunner(t, env, projections.WithLeases(leasesA), projections.WithProjectors("sales"),
		projections.WithLogger(slog.New(slog.NewTextHandler(io.MultiWriter(&logA, t.Output()), nil))))
	projectionstest.CatchUp(t, a, head)

	readB, err := projections.OpenReadStore(ctx, env.ReadDSN)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { readB.Close() })
	b := projectionstest.StartRunner(t, &projectionstest.Env{Backend: env.Backend, Store: env.Store, Read: readB, ReadDSN: env.ReadDSN},
		projections.WithOwner("holder-b"))
	waitStatus(t, b, "b to stand by for sales", func(p projections.ProjectorStatus) bool {
		return p.Name != "sales" || p.State == projections.StateStandby
	})

	admin, err := pgx.Connect(ctx, env.ReadDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	var (
		cutOnce   sync.Once
		cut       atomic.Bool
		cutErr    atomic.Value
		committed = make(chan struct{})
	)
	projections.SetBeforeCommit(env.Read, func(name string) error {
		if name != "sales" {
			return nil
		}
		cutOnce.Do(func() {
			defer close(committed)
			var n int
			if err := admin.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1`,
				follow.ApplicationName("holder-a")).Scan(&n); err != nil || n != 1 {
				cutErr.Store(err)
				return
			}
			cut.Store(true)
			// The standby takes the projector over while this batch waits to commit.
			deadline := time.Now().Add(10 * time.Second)
			for projectorState(b, "sales") != projections.StateActive && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
		})
		return nil
	})
	head = projectionstest.Append(t, env.Store, records[400:])
	select {
	case <-committed:
	case <-time.After(30 * time.Second):
		t.Fatal("a never committed a sales batch")
	}
	if err, _ := cutErr.Load().(error); err != nil || !cut.Load() {
		t.Fatalf("cutting a's lease session: %v", err)
	}
	if st := projectorState(b, "sales"); st != projections.StateActive {
		t.Fatalf("b's sales projector is %s after a was cut off; want active", st)
	}
	projectionstest.CatchUp(t, b, head)
	// a learns from the refused commit that it was taken over, and stands by.
	waitStatus(t, a, "a to stand by for sales", func(p projections.ProjectorStatus) bool {
		return p.Name != "sales" || p.State == projections.StateStandby
	})
	if !strings.Contains(logA.String(), `msg="projector taken over by another process; standing by" projector=sales`) {
		t.Fatalf("a's sales batch was not refused by the fence; a's log:\n%s", logA.String())
	}

	// The read models are exactly what a rebuild from the log makes.
	fresh, err := projections.OpenReadStore(ctx, pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	if err := projections.Rebuild(ctx, env.Store, fresh, nil, nil); err != nil {
		t.Fatal(err)
	}
	live, err := projections.DumpTables(ctx, readB)
	if err != nil {
		t.Fatal(err)
	}
	rebuilt, err := projections.DumpTables(ctx, fresh)
	if err != nil {
		t.Fatal(err)
	}
	for table, rows := range rebuilt {
		if !reflect.DeepEqual(live[table], rows) {
			t.Errorf("%s differs from a rebuild: %d live rows, %d rebuilt", table, len(live[table]), len(rows))
		}
	}
}

// syncBuffer is a bytes.Buffer safe for a logger's concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func projectorState(r *projections.Runner, name string) string {
	for _, p := range r.Status().Projectors {
		if p.Name == name {
			return p.State
		}
	}
	return ""
}

// waitStatus waits until every projector of r satisfies ok.
func waitStatus(t *testing.T, r *projections.Runner, what string, ok func(projections.ProjectorStatus) bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	for {
		all := true
		for _, p := range r.Status().Projectors {
			all = all && ok(p)
		}
		if all {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s: %+v", what, r.Status())
		case <-time.After(20 * time.Millisecond):
		}
	}
}
