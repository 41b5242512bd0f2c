package storetest

import (
	"context"
	"testing"

	"github.com/orderledger/orderledger/eventstore"
)

// Harness makes stores for the suite.
type Harness interface {
	// NewStore returns a new, empty store. The harness closes it (t.Cleanup) and removes
	// whatever it created when the test ends.
	NewStore(t *testing.T) eventstore.Store
}

// Transactional is implemented by harnesses whose adapter appends inside a database
// transaction. The suite uses it for the late-commit race and the rolled-back append; a
// harness without it skips those cases and says why.
type Transactional interface {
	// BeginAppend performs an append to store inside a transaction that stays open until
	// commit or rollback is called (exactly one of them, once).
	BeginAppend(ctx context.Context, t *testing.T, store eventstore.Store, stream string, expected eventstore.ExpectedRevision, events ...eventstore.EventData) (commit, rollback func() error, err error)
}

// Deleting is implemented by harnesses whose store can have a stream deleted by other means
// than the port, as KurrentDB's soft delete and tombstone do. The suite uses it for the
// deleted-stream case; a harness without it skips that case and says why.
type Deleting interface {
	// SoftDelete deletes stream so that it may be written again (KurrentDB's DeleteStream).
	SoftDelete(t *testing.T, store eventstore.Store, stream string)
	// Tombstone deletes stream for good (KurrentDB's TombstoneStream).
	Tombstone(t *testing.T, store eventstore.Store, stream string)
}
