package sqlite

import (
	"context"
	"time"

	"github.com/orderledger/orderledger/eventstore"
)

// subscribeBatch is how many events one handler call gets at most.
const subscribeBatch = 500

// dataVersionInterval is how often a Store with subscribers checks whether another connection
// (another Store, another process) has written to the file. Appends through this Store wake
// subscribers at once.
const dataVersionInterval = 250 * time.Millisecond

// Subscribe delivers every event after from to handle, in batches: it reads until it is caught
// up, then waits for a commit and reads again. It continues from the last event delivered, so
// nothing is delivered twice and, commits being in rowid order, nothing is skipped.
func (s *Store) Subscribe(ctx context.Context, from eventstore.Position, handle func(ctx context.Context, batch []eventstore.Event) error) error {
	defer s.watch()()
	position := from
	expect := subscribeBatch
	for {
		// Take the signal before reading, so that a commit after the read still wakes us.
		grown := s.signal()
		batch, err := s.readAll(ctx, position, subscribeBatch, expect)
		if err != nil {
			return err
		}
		// Catching up, batches are full; following live, each brings the few latest events.
		expect = min(subscribeBatch, 2*len(batch)+8)
		if len(batch) > 0 {
			if err := handle(ctx, batch); err != nil {
				return err
			}
			position = batch[len(batch)-1].Position
			continue
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.closing:
			return errClosed
		case <-grown:
		}
	}
}

// watch makes sure the data_version watcher runs while there are subscribers; the returned
// function releases this subscriber's hold on it.
func (s *Store) watch() (release func()) {
	s.signalMu.Lock()
	defer s.signalMu.Unlock()
	s.subscribers++
	if s.subscribers == 1 && !s.watchingEnded {
		ctx, cancel := context.WithCancel(s.life)
		s.stopWatching = cancel
		s.watchers.Add(1)
		go func() {
			defer s.watchers.Done()
			s.watchDataVersion(ctx)
		}()
	}
	return func() {
		s.signalMu.Lock()
		defer s.signalMu.Unlock()
		s.subscribers--
		if s.subscribers == 0 && s.stopWatching != nil {
			s.stopWatching()
			s.stopWatching = nil
		}
	}
}

// watchDataVersion wakes subscribers when PRAGMA data_version, which changes whenever another
// connection commits to the file, has changed. It must ask the same connection each time.
func (s *Store) watchDataVersion(ctx context.Context) {
	conn, err := s.read.Conn(ctx)
	if err != nil {
		return // ctx is done, or the pool is closed: the Store is closing
	}
	defer conn.Close()
	ticker := time.NewTicker(dataVersionInterval)
	defer ticker.Stop()
	var last int64
	for first := true; ; first = false {
		var version int64
		if err := conn.QueryRowContext(ctx, "PRAGMA data_version").Scan(&version); err != nil {
			if ctx.Err() != nil {
				return
			}
			// Let the subscribers read: they meet and report whatever is wrong with the file.
			s.notify()
		} else if first || version != last {
			// The first reading notifies too: a commit between a subscriber's last read and
			// this reading would otherwise go unnoticed.
			s.notify()
			last = version
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}
