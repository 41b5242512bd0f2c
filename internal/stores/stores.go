package stores

import (
	"context"
	"fmt"
	"strings"

	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/eventstore/kurrentdb"
	"github.com/orderledger/orderledger/eventstore/postgres"
	"github.com/orderledger/orderledger/eventstore/sqlite"
)

// DefaultEventsDSN is the embedded default: a SQLite file under ./data, created if missing.
const DefaultEventsDSN = "sqlite:./data/orderledger.db"

// Kind is the backend a DSN names.
type Kind string

const (
	SQLite    Kind = "sqlite"
	Postgres  Kind = "postgres"
	KurrentDB Kind = "kurrentdb"
)

// KindOf classifies a DSN by its scheme.
func KindOf(dsn string) (Kind, error) {
	switch {
	case strings.HasPrefix(dsn, "sqlite:"):
		if strings.TrimPrefix(dsn, "sqlite:") == "" {
			return "", fmt.Errorf("DSN %q: sqlite: needs a file path, e.g. sqlite:./data/orderledger.db", dsn)
		}
		return SQLite, nil
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		return Postgres, nil
	case strings.HasPrefix(dsn, "esdb://"), strings.HasPrefix(dsn, "esdb+discover://"),
		strings.HasPrefix(dsn, "kurrentdb://"), strings.HasPrefix(dsn, "kurrentdb+discover://"),
		strings.HasPrefix(dsn, "kdb://"), strings.HasPrefix(dsn, "kdb+discover://"):
		return KurrentDB, nil
	}
	return "", fmt.Errorf("DSN %q: want sqlite:PATH, postgres://… or esdb://… (KurrentDB, events only)", redact(dsn))
}

// SQLitePath returns the file path of a sqlite: DSN.
func SQLitePath(dsn string) string { return strings.TrimPrefix(dsn, "sqlite:") }

// ReadDSN returns the read store's DSN: the one given, or the events DSN where that is SQLite
// or PostgreSQL (read models can't live in KurrentDB).
func ReadDSN(eventsDSN, readDSN string) (string, error) {
	if readDSN != "" {
		kind, err := KindOf(readDSN)
		if err != nil {
			return "", err
		}
		if kind == KurrentDB {
			return "", fmt.Errorf("--read %q: read models live in SQLite or PostgreSQL, not KurrentDB", redact(readDSN))
		}
		return readDSN, nil
	}
	kind, err := KindOf(eventsDSN)
	if err != nil {
		return "", err
	}
	if kind == KurrentDB {
		return "", fmt.Errorf("--events is KurrentDB, so --read (ORDERLEDGER_READ) must name a SQLite or PostgreSQL store for the read models")
	}
	return eventsDSN, nil
}

// OpenEvents opens the event store a DSN names.
func OpenEvents(ctx context.Context, dsn string) (eventstore.Store, error) {
	kind, err := KindOf(dsn)
	if err != nil {
		return nil, err
	}
	// Each adapter returns a typed pointer; a failed open must come back as a nil interface,
	// not as a non-nil interface holding a nil pointer that a caller would then Close.
	var store eventstore.Store
	switch kind {
	case SQLite:
		s, err := sqlite.Open(ctx, SQLitePath(dsn))
		if err != nil {
			return nil, err
		}
		store = s
	case Postgres:
		s, err := postgres.Open(ctx, dsn)
		if err != nil {
			return nil, err
		}
		store = s
	default:
		s, err := kurrentdb.Open(ctx, dsn)
		if err != nil {
			return nil, err
		}
		store = s
	}
	return store, nil
}

// redact hides a password in a DSN before it is printed.
func redact(dsn string) string {
	scheme, rest, ok := strings.Cut(dsn, "://")
	if !ok {
		return dsn
	}
	userinfo, host, ok := strings.Cut(rest, "@")
	if !ok {
		return dsn
	}
	if user, _, hasPass := strings.Cut(userinfo, ":"); hasPass {
		return scheme + "://" + user + ":***@" + host
	}
	return dsn
}

// Redact hides a password in a DSN for logs.
func Redact(dsn string) string { return redact(dsn) }
