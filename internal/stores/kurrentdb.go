package stores

import (
	"context"
	"errors"

	"github.com/orderledger/orderledger/eventstore"
)

// openKurrentDB is wired to eventstore/kurrentdb once that adapter lands.
func openKurrentDB(ctx context.Context, dsn string) (eventstore.Store, error) {
	return nil, errors.New("KurrentDB support is not built into this binary yet")
}
