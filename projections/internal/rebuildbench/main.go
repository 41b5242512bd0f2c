package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/eventstore/postgres"
	"github.com/orderledger/orderledger/eventstore/sqlite"
	"github.com/orderledger/orderledger/internal/historygen"
	"github.com/orderledger/orderledger/projections"
)

func main() {
	eventsDSN := flag.String("events", "postgres://postgres@127.0.0.1:5432/orderledger_bench?sslmode=disable", "event store DSN (postgres://… or sqlite:PATH)")
	readDSN := flag.String("read", "", "read store DSN (default: the event store's)")
	n := flag.Int("n", 1_000_000, "events to generate when the event store is empty")
	only := flag.String("only", "", "comma-separated projectors to rebuild (default: all)")
	writers := flag.Int("writers", 4, "appends running at once while generating")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the rebuild to this file")
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "rebuildbench:", err)
			os.Exit(1)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "rebuildbench:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	if *readDSN == "" {
		*readDSN = *eventsDSN
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *eventsDSN, *readDSN, *n, *only, *writers); err != nil {
		fmt.Fprintln(os.Stderr, "rebuildbench:", err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

func run(ctx context.Context, eventsDSN, readDSN string, n int, only string, writers int) error {
	var (
		store eventstore.Store
		err   error
	)
	if path, ok := strings.CutPrefix(eventsDSN, "sqlite:"); ok {
		store, err = sqlite.Open(ctx, path)
	} else {
		store, err = postgres.Open(ctx, eventsDSN)
	}
	if err != nil {
		return err
	}
	defer store.Close()
	head, err := store.Head(ctx)
	if err != nil {
		return err
	}
	if head.IsZero() {
		start := time.Now()
		appended, err := generate(ctx, store, n, writers)
		if err != nil {
			return err
		}
		fmt.Printf("generated %d events in %s\n", appended, time.Since(start).Round(time.Millisecond))
	}
	read, err := projections.OpenReadStore(ctx, readDSN)
	if err != nil {
		return err
	}
	defer read.Close()

	var names []string
	if only != "" {
		names = strings.Split(only, ",")
	}
	slog.SetLogLoggerLevel(slog.LevelWarn)
	start := time.Now()
	var replayed int64
	last := time.Now()
	err = projections.Rebuild(ctx, store, read, names, func(done, total int64) {
		replayed = done
		if time.Since(last) > 5*time.Second {
			last = time.Now()
			fmt.Fprintf(os.Stderr, "  %d events, %.0f events/s\n", done, float64(done)/time.Since(start).Seconds())
		}
	})
	if err != nil {
		return err
	}
	elapsed := time.Since(start)
	fmt.Printf("rebuilt %s from %d events in %s: %.0f events/s\n", strings.Join(orAll(names), ","), replayed,
		elapsed.Round(time.Millisecond), float64(replayed)/elapsed.Seconds())
	return nil
}

func orAll(names []string) []string {
	if len(names) == 0 {
		return projections.Names()
	}
	return names
}

// generate appends about n events of a realistic history. The history is cut into windows;
// in each, the events of one stream go in appends of up to 100, customer registrations first
// (orders name them), the other streams by several writers at once, as a busy server would.
func generate(ctx context.Context, store eventstore.Store, n, writers int) (int, error) {
	g := historygen.New(historygen.Config{Seed: 1, Start: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), Customers: 2000, SKUs: 300})
	const window = 20000
	appended := 0
	for appended < n {
		var records []historygen.Record
		for len(records) < min(window, n-appended) {
			records = append(records, g.Step()...)
		}
		var (
			order    []string
			byStream = map[string][]historygen.Record{}
		)
		for _, r := range records {
			if _, seen := byStream[r.Stream]; !seen {
				order = append(order, r.Stream)
			}
			byStream[r.Stream] = append(byStream[r.Stream], r)
		}
		var customers, others []string
		for _, s := range order {
			if strings.HasPrefix(s, "customer-") {
				customers = append(customers, s)
			} else {
				others = append(others, s)
			}
		}
		for _, group := range [][]string{customers, others} {
			if err := appendStreams(ctx, store, group, byStream, writers); err != nil {
				return appended, err
			}
		}
		appended += len(records)
		fmt.Fprintf(os.Stderr, "  appended %d events\n", appended)
	}
	return appended, nil
}

func appendStreams(ctx context.Context, store eventstore.Store, streams []string, byStream map[string][]historygen.Record, writers int) error {
	work := make(chan string)
	errs := make(chan error, writers)
	var wg sync.WaitGroup
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for stream := range work {
				records := byStream[stream]
				for len(records) > 0 {
					k := min(len(records), 100)
					batch := make([]eventstore.EventData, k)
					for i, r := range records[:k] {
						typ, data, err := domain.EncodeEvent(r.Event)
						if err != nil {
							errs <- err
							return
						}
						batch[i] = eventstore.EventData{ID: uuid.New(), Type: typ, Data: data}
					}
					if _, err := store.Append(ctx, stream, eventstore.Any(), batch...); err != nil {
						errs <- fmt.Errorf("append to %s: %w", stream, err)
						return
					}
					records = records[k:]
				}
			}
		}()
	}
	var err error
feed:
	for _, s := range streams {
		select {
		case work <- s:
		case err = <-errs:
			break feed
		}
	}
	close(work)
	wg.Wait()
	if err != nil {
		return err
	}
	select {
	case err = <-errs:
		return err
	default:
		return nil
	}
}
