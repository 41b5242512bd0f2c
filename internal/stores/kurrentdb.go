package stores

import (
	"context"

	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/eventstore/kurrentdb"
)

func openKurrentDB(ctx context.Context, dsn string) (eventstore.Store, error) {
	return kurrentdb.Open(ctx, dsn)
}
