package bench

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"time"

	"github.com/orderledger/orderledger/audit"
	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/internal/historygen"
	"github.com/orderledger/orderledger/internal/stores"
	"github.com/orderledger/orderledger/projections"
)

// generateWriters is how many appends run at once while a log is generated, as on a busy
// server (historygen.Append).
const generateWriters = 32

// progressEvery is how often long work reports how far it has come.
const progressEvery = 5 * time.Second

// readAllPage is how many events a ReadAll baseline asks for at a time: audit.DefaultBatchSize,
// what verify and export ask the store for.
const readAllPage = 8192

// logStage generates a log and measures what reads all of it — a projection rebuild beside
// 100-row INSERT transactions into raw_events on the same database (the rebuild's work is
// writing read models); an audit verification and an export, each beside the store's own
// ReadAll of the same events — and then a serve process over it.
func (r *run) logStage(ctx context.Context, st, fresh Stores) error {
	size := int64(r.cfg.LogEvents)
	customers, skus := historygen.Sized(size)
	r.logf("generating a log of %d events (an order-to-cash history of %d customers and %d SKUs)", size, customers, skus)
	if err := r.generateLog(ctx, st, size, customers, skus); err != nil {
		return fmt.Errorf("bench: generate the log: %w", err)
	}
	if err := r.add(LogEvents, float64(size), "events", 0); err != nil {
		return err
	}
	store, err := openEvents(ctx, st)
	if err != nil {
		return fmt.Errorf("bench: open the scratch event store: %w", err)
	}
	defer store.Close()
	readAll := passes(size, "ReadAll", func(ctx context.Context) (int64, error) {
		var n int64
		for from := (eventstore.Position{}); ; {
			page, err := store.ReadAll(ctx, from, readAllPage)
			if err != nil || len(page) == 0 {
				return n, err
			}
			n += int64(len(page))
			from = page[len(page)-1].Position
		}
	})
	// A pass over a large log outlasts any warm-up it could need; the two sides alternate
	// from the first pass.
	const warmUp = false

	if r.selected[ProjectionRebuild] {
		// The rebuild reads the log as a server's projectors do, opening personal data;
		// verify and export read it as stored.
		private, err := r.openPrivate(ctx, st)
		if err != nil {
			return fmt.Errorf("bench: open the scratch event store: %w", err)
		}
		defer private.Close()
		read, err := projections.OpenReadStore(ctx, st.ReadDSN)
		if err != nil {
			return fmt.Errorf("bench: open the scratch read store: %w", err)
		}
		defer read.Close()
		base, err := openIntakeRaw(ctx, st, 2)
		if err != nil {
			return fmt.Errorf("bench: open the baseline's table: %w", err)
		}
		if base != nil {
			defer base.close()
		}
		r.logf("measuring %s: rebuilding every projection from the log, beside %d-row INSERT transactions (%s, whole passes)", ProjectionRebuild, batchSize, r.cfg.Duration)
		rebuild := passes(size, "the rebuild", func(ctx context.Context) (int64, error) {
			var replayed int64
			start, reported := time.Now(), time.Now()
			err := projections.Rebuild(ctx, private, read, nil, func(done, _ int64) {
				replayed = done
				if time.Since(reported) >= progressEvery {
					reported = time.Now()
					r.logf("rebuilt %d of %d events (%.0f events/s)", done, size, float64(done)/time.Since(start).Seconds())
				}
			})
			return replayed, err
		})
		var value, baseline float64
		if base == nil {
			value, err = only(ctx, r.cfg.Duration, rebuild)
		} else {
			turnLength := r.cfg.Duration / (2 * turns)
			value, baseline, err = alternateTurns(ctx, r.cfg.Duration, warmUp, rebuild,
				crew(1, turnLength, func(ctx context.Context, _ int, n int64) error {
					events := make([]eventstore.EventData, batchSize)
					for i := range events {
						events[i] = orderEvent(0, int64(i))
					}
					return base.insertBatch(ctx, "rebuild-baseline"+strconv.FormatInt(n, 10), 0, events)
				}))
			baseline *= batchSize
		}
		if err != nil {
			return fmt.Errorf("bench: %s: %w", ProjectionRebuild, err)
		}
		if err := r.add(ProjectionRebuild, value, "events/s", baseline); err != nil {
			return err
		}
	}

	if r.selected[AuditVerify] {
		r.logf("measuring %s: checking every hash chain, beside ReadAll of the same events (%s, whole passes)", AuditVerify, r.cfg.Duration)
		value, baseline, err := alternateTurns(ctx, r.cfg.Duration, warmUp, passes(size, "the verification", func(ctx context.Context) (int64, error) {
			report, err := audit.Verify(ctx, store, audit.Options{})
			if err == nil && !report.OK {
				err = fmt.Errorf("the generated log fails verification: %s", report.FirstFailure)
			}
			return int64(report.Events), err
		}), readAll)
		if err != nil {
			return fmt.Errorf("bench: %s: %w", AuditVerify, err)
		}
		if err := r.add(AuditVerify, value, "events/s", baseline); err != nil {
			return err
		}
	}

	if r.selected[Export] {
		r.logf("measuring %s: writing every event as a JSON line to nowhere, beside ReadAll of the same events (%s, whole passes)", Export, r.cfg.Duration)
		value, baseline, err := alternateTurns(ctx, r.cfg.Duration, warmUp, passes(size, "the export", func(ctx context.Context) (int64, error) {
			result, err := audit.Export(ctx, store, io.Discard, audit.ExportOptions{})
			return int64(result.Events), err
		}), readAll)
		if err != nil {
			return fmt.Errorf("bench: %s: %w", Export, err)
		}
		if err := r.add(Export, value, "events/s", baseline); err != nil {
			return err
		}
	}

	if r.selected[ServeRSS] {
		head, err := store.Head(ctx)
		if err != nil {
			return fmt.Errorf("bench: %s: %w", ServeRSS, err)
		}
		if err := r.serveOverLog(ctx, Stores{EventsDSN: st.EventsDSN, ReadDSN: fresh.ReadDSN}, size, head); err != nil {
			return fmt.Errorf("bench: %s: %w", ServeRSS, err)
		}
	}
	return nil
}

// generateLog appends a history of exactly size events, one the write side could have
// written, so that every projector has real work and nothing to refuse (historygen.Append).
func (r *run) generateLog(ctx context.Context, st Stores, size int64, customers, skus int) error {
	logf := r.logf
	store, err := openGenerator(ctx, st)
	if err == nil && r.cfg.PrivateEvents != nil {
		store, err = r.cfg.PrivateEvents(ctx, st, store)
	}
	if err != nil {
		return err
	}
	defer store.Close()
	start, reported := time.Now(), time.Now()
	cfg := historygen.Config{Seed: 1, Start: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), Customers: customers, SKUs: skus}
	err = historygen.Append(ctx, store, size, cfg, generateWriters, func(appended int64) {
		if time.Since(reported) >= progressEvery {
			reported = time.Now()
			logf("generated %d of %d events (%.0f events/s)", appended, size, float64(appended)/time.Since(start).Seconds())
		}
	})
	if err != nil {
		return err
	}
	logf("generated %d events in %s", size, time.Since(start).Round(time.Millisecond))
	return nil
}

// openGenerator opens the stage's event store for generating the log. On PostgreSQL its
// sessions commit without waiting for the WAL flush (synchronous_commit=off): a scratch log
// that a crash would lose loses nothing, and the generation, which no figure measures, then
// takes seconds instead of minutes. The figures read the log through a store opened as usual.
func openGenerator(ctx context.Context, st Stores) (eventstore.Store, error) {
	if kind, _ := stores.KindOf(st.EventsDSN); kind == stores.Postgres && st.StreamPrefix == "" {
		u, err := url.Parse(st.EventsDSN)
		if err != nil {
			return nil, err
		}
		q := u.Query()
		q.Set("synchronous_commit", "off")
		q.Set("pool_max_conns", strconv.Itoa(generateWriters+2))
		u.RawQuery = q.Encode()
		st.EventsDSN = u.String()
	}
	return openEvents(ctx, st)
}
