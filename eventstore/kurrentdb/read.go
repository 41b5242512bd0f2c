package kurrentdb

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"github.com/orderledger/orderledger/eventstore"
)

// allPage bounds one read of $all; ReadAll and Head page through it.
const allPage = 512

// ReadStream returns up to limit events of stream from version from on.
func (s *Store) ReadStream(ctx context.Context, stream string, from uint64, limit int) ([]eventstore.Event, error) {
	if err := eventstore.ValidateStreamName(stream); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, fmt.Errorf("%w: read limit %d, want > 0", eventstore.ErrInvalidEvent, limit)
	}
	events, _, err := s.readStream(ctx, s.prefix+stream, esdb.ReadStreamOptions{Direction: esdb.Forwards, From: esdb.Revision(from)}, uint64(limit))
	return events, err
}

// streamState is what a read learnt of a stream besides its events.
type streamState int

const (
	streamFound      streamState = iota
	streamNotFound               // no events, or soft-deleted: the server answers StreamNotFound
	streamTombstoned             // hard-deleted: the server answers StreamDeleted
)

// readStream reads the stream named name (prefix included) as the options say. A stream that
// does not exist, was soft-deleted or was tombstoned reads as empty; state says which.
func (s *Store) readStream(ctx context.Context, name string, opts esdb.ReadStreamOptions, count uint64) ([]eventstore.Event, streamState, error) {
	var events []eventstore.Event
	state := streamFound
	err := s.call(ctx, func(c *esdb.Client, connected func()) error {
		rs, err := c.ReadStream(ctx, name, opts, count)
		if err != nil {
			return err
		}
		defer rs.Close()
		connected()
		for {
			r, err := rs.Recv()
			switch {
			case errors.Is(err, io.EOF):
				return nil
			case isStreamNotFound(err):
				state = streamNotFound
				return nil
			case hasCode(err, esdb.ErrorCodeStreamDeleted):
				state = streamTombstoned
				return nil
			case err != nil:
				return err
			}
			events = append(events, toEvent(r.OriginalEvent(), s.prefix))
		}
	})
	if err != nil {
		return nil, streamFound, err
	}
	return events, state, nil
}

// readAll reads up to count records of $all from from in direction dir, system events and
// other prefixes included, so that the caller can page on.
func (s *Store) readAll(ctx context.Context, dir esdb.Direction, from esdb.AllPosition, count uint64) ([]*esdb.RecordedEvent, error) {
	var records []*esdb.RecordedEvent
	err := s.call(ctx, func(c *esdb.Client, connected func()) error {
		rs, err := c.ReadAll(ctx, esdb.ReadAllOptions{Direction: dir, From: from}, count)
		if err != nil {
			return err
		}
		defer rs.Close()
		connected()
		for {
			r, err := rs.Recv()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
			records = append(records, r.OriginalEvent())
		}
	})
	if err != nil {
		return nil, err
	}
	return records, nil
}

// ReadAll returns up to limit of the store's events after from, in $all order. KurrentDB
// writes $all in commit order, so no later read can find an event before one returned here.
// from must be the zero Position or one this store returned.
func (s *Store) ReadAll(ctx context.Context, from eventstore.Position, limit int) ([]eventstore.Event, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("%w: read limit %d, want > 0", eventstore.ErrInvalidEvent, limit)
	}
	var events []eventstore.Event
	cursor := from
	for {
		// One more than wanted: a read from a position starts with the event at it.
		count := uint64(min(limit-len(events), allPage-1) + 1)
		page, err := s.readAll(ctx, esdb.Forwards, toClientPosition(cursor), count)
		if err != nil {
			return nil, err
		}
		moved := false
		for _, r := range page {
			p := fromClientPosition(r.Position)
			if p.Compare(cursor) <= 0 {
				continue
			}
			cursor, moved = p, true
			if inStore(r, s.prefix) {
				events = append(events, toEvent(r, s.prefix))
				if len(events) == limit {
					return events, nil
				}
			}
		}
		if uint64(len(page)) < count || !moved {
			return events, nil
		}
	}
}

// Head is the position of the store's newest event in $all, found by reading $all backwards
// past system events (and, with a stream prefix, past other stores' events). The first read
// asks for one record, which is usually the store's own; each further read asks for eight
// times more, up to allPage.
func (s *Store) Head(ctx context.Context) (eventstore.Position, error) {
	var from esdb.AllPosition = esdb.End{}
	var before *eventstore.Position // the oldest record seen so far
	want := uint64(1)               // records wanted beyond those already seen
	for {
		count := want
		if before != nil {
			count++ // a backward read from a position may start with the record at it
		}
		page, err := s.readAll(ctx, esdb.Backwards, from, count)
		if err != nil {
			return eventstore.Position{}, err
		}
		moved := false
		for _, r := range page {
			p := fromClientPosition(r.Position)
			if before != nil && p.Compare(*before) >= 0 {
				continue
			}
			before, moved = &p, true
			if inStore(r, s.prefix) {
				return p, nil
			}
		}
		if uint64(len(page)) < count || !moved {
			return eventstore.Position{}, nil
		}
		from = esdb.Position{Commit: before.Commit, Prepare: before.Prepare}
		want = min(want*8, allPage)
	}
}
