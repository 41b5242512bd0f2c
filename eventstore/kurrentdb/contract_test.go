package kurrentdb

import (
	"os"
	"strings"
	"testing"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"

	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/eventstore/storetest"
)

// liveHarness gives every store of the suite its own stream prefix on one live server: $all
// is shared, and KurrentDB has no way to start a test from an empty log. The prefix is an
// ordinary Store option, so the suite exercises the same code a deployment runs. KurrentDB
// cannot drop streams for good, so what a test wrote stays on the server under its prefix.
// KurrentDB has no transactions: the harness does not implement storetest.Transactional.
type liveHarness struct{ connString string }

func (h liveHarness) NewStore(t *testing.T) eventstore.Store {
	t.Helper()
	prefix := "ol-test-" + uuid.NewString()[:8] + "-"
	s, err := Open(t.Context(), h.connString, WithStreamPrefix(prefix))
	if err != nil {
		t.Fatalf("Open %s: %v", h.connString, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestContract runs the contract suite against the KurrentDB server that
// ORDERLEDGER_TEST_KURRENTDB names.
func TestContract(t *testing.T) {
	conn := os.Getenv("ORDERLEDGER_TEST_KURRENTDB")
	if conn == "" {
		t.Skip("ORDERLEDGER_TEST_KURRENTDB not set: the contract suite against KurrentDB needs a server, e.g. ORDERLEDGER_TEST_KURRENTDB='esdb://localhost:2113?tls=false'")
	}
	storetest.Run(t, liveHarness{connString: conn})
}

// fakeHarness gives every store a fake server of its own.
type fakeHarness struct{}

func (fakeHarness) NewStore(t *testing.T) eventstore.Store {
	t.Helper()
	if testing.Short() && strings.Contains(t.Name(), "/Concurrency") {
		t.Skip("-short: the 8000-append concurrency case takes minutes against the fake on a loaded machine")
	}
	f := newFakeServer(t)
	s, err := Open(t.Context(), f.connString())
	if err != nil {
		t.Fatalf("Open against the fake: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestContractOnFake runs the contract suite against the in-process fake server: it checks
// the adapter's logic and its use of the client end to end, on the fake's model of KurrentDB.
func TestContractOnFake(t *testing.T) {
	storetest.Run(t, fakeHarness{})
}

// SoftDelete and Tombstone delete a stream through the client, as an operator would; both
// harnesses so implement storetest.Deleting.
func (liveHarness) SoftDelete(t *testing.T, store eventstore.Store, stream string) {
	deleteStream(t, store, stream, false)
}

func (liveHarness) Tombstone(t *testing.T, store eventstore.Store, stream string) {
	deleteStream(t, store, stream, true)
}

func (fakeHarness) SoftDelete(t *testing.T, store eventstore.Store, stream string) {
	deleteStream(t, store, stream, false)
}

func (fakeHarness) Tombstone(t *testing.T, store eventstore.Store, stream string) {
	deleteStream(t, store, stream, true)
}

func deleteStream(t *testing.T, store eventstore.Store, stream string, hard bool) {
	t.Helper()
	s := store.(*Store)
	ctx := t.Context()
	err := s.call(ctx, func(c *esdb.Client, connected func()) error {
		var err error
		if hard {
			_, err = c.TombstoneStream(ctx, s.prefix+stream, esdb.TombstoneStreamOptions{ExpectedRevision: esdb.Any{}})
		} else {
			_, err = c.DeleteStream(ctx, s.prefix+stream, esdb.DeleteStreamOptions{ExpectedRevision: esdb.Any{}})
		}
		connected()
		return err
	})
	if err != nil {
		t.Fatalf("deleting %q (hard %v): %v", stream, hard, err)
	}
}
