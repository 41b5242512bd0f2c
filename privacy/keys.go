package privacy

import (
	"context"
	"crypto/cipher"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
	_ "modernc.org/sqlite"             // the "sqlite" database/sql driver

	"github.com/orderledger/orderledger/domain"
)

// Keys is the key store: each customer's data key, wrapped by the master key, in the table
// privacy_keys of the database that holds the event store; and the master key, read from its
// file. A destroyed key leaves a row with no key in it, so the customer stays erased.
type Keys struct {
	db       *sql.DB
	postgres bool
	path     string // the master key file
	master   cipher.AEAD
	log      *slog.Logger

	mu    sync.Mutex
	cache map[string]cachedKey
}

// cachedKey is a customer's data key as last read: aead is nil when the customer has none
// (erased, or a key this store never held).
type cachedKey struct {
	aead   cipher.AEAD
	erased bool
	at     time.Time
}

// keyTTL bounds how long a process trusts a data key it read: a key destroyed by another
// process is no longer used here after at most this long.
const keyTTL = 5 * time.Second

// maxCached bounds the cache; past it the cache starts again empty.
const maxCached = 200_000

// masterCheck is what the store seals with the master key when it is first set up: opening it
// tells a wrong master key from a right one before any data key is touched.
var masterCheck = []byte("orderledger master key check")

// Option configures Open.
type Option func(*options)

type options struct {
	log    *slog.Logger
	create bool
}

// WithLogger sets where Open says that it created a master key.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// CreateIfNew lets Open create the master key file when the key store is new (has never been
// set up with a master key) and the file does not exist.
func CreateIfNew() Option { return func(o *options) { o.create = true } }

// DefaultMasterKeyFile is where a store keeps its master key when none is configured: beside
// a SQLite database file, "<file>.master-key"; "" for PostgreSQL, whose processes may run on
// several machines and must be given the one key they share.
func DefaultMasterKeyFile(sqlitePath string) string {
	if sqlitePath == "" {
		return ""
	}
	return sqlitePath + ".master-key"
}

// Open opens the key store in the database dsn names ("sqlite:PATH" or "postgres://…"),
// creating its tables if missing, with the master key in masterKeyFile. A missing or wrong
// master key is a *MasterKeyError naming the file.
func Open(ctx context.Context, dsn, masterKeyFile string, opts ...Option) (*Keys, error) {
	o := options{log: slog.Default()}
	for _, opt := range opts {
		opt(&o)
	}
	if masterKeyFile == "" {
		return nil, &MasterKeyError{Reason: "no master key file: give --master-key-file or ORDERLEDGER_MASTER_KEY_FILE (a PostgreSQL store has no default: every process that shares it must use the same key)"}
	}
	k := &Keys{path: masterKeyFile, log: o.log, cache: map[string]cachedKey{}}
	var err error
	switch {
	case strings.HasPrefix(dsn, "sqlite:"):
		abs, err := filepath.Abs(strings.TrimPrefix(dsn, "sqlite:"))
		if err != nil {
			return nil, err
		}
		// secure_delete overwrites what a DELETE or UPDATE frees, so a destroyed data key does
		// not linger in the database's free pages.
		params := url.Values{"_pragma": {"busy_timeout(10000)", "secure_delete(1)", "journal_mode(WAL)"}, "_txlock": {"immediate"}}
		u := url.URL{Scheme: "file", Path: filepath.ToSlash(abs), RawQuery: params.Encode()}
		if k.db, err = sql.Open("sqlite", u.String()); err != nil {
			return nil, fmt.Errorf("privacy: open %s: %w", abs, err)
		}
		k.db.SetMaxOpenConns(2)
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		// pgxpool's own settings (pool_max_conns…) are not connection parameters.
		if u, perr := url.Parse(dsn); perr == nil {
			q := u.Query()
			for name := range q {
				if strings.HasPrefix(name, "pool_") {
					q.Del(name)
				}
			}
			u.RawQuery = q.Encode()
			dsn = u.String()
		}
		if k.db, err = sql.Open("pgx", dsn); err != nil {
			return nil, fmt.Errorf("privacy: %w", err)
		}
		k.db.SetMaxOpenConns(4)
		k.postgres = true
	default:
		return nil, fmt.Errorf("privacy: the key store lives in SQLite or PostgreSQL")
	}
	if err := k.migrate(ctx); err != nil {
		k.db.Close()
		return nil, err
	}
	if err := k.loadMaster(ctx, o.create); err != nil {
		k.db.Close()
		return nil, err
	}
	return k, nil
}

// Close closes the connections.
func (k *Keys) Close() error { return k.db.Close() }

// MasterKeyFile is the file the master key was read from.
func (k *Keys) MasterKeyFile() string { return k.path }

func (k *Keys) blob() string {
	if k.postgres {
		return "BYTEA"
	}
	return "BLOB"
}

// q rewrites ? placeholders as $n for PostgreSQL.
func (k *Keys) q(query string) string {
	if !k.postgres {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func (k *Keys) migrate(ctx context.Context) error {
	for _, stmt := range []string{
		`CREATE TABLE IF NOT EXISTS privacy_master (
			id          INTEGER PRIMARY KEY CHECK (id = 1),
			check_value ` + k.blob() + ` NOT NULL,
			created_at  BIGINT NOT NULL,
			rotated_at  BIGINT NOT NULL
		)`,
		`CREATE TABLE IF NOT EXISTS privacy_keys (
			customer_id TEXT PRIMARY KEY,
			wrapped     ` + k.blob() + `,
			created_at  BIGINT NOT NULL,
			erased_at   BIGINT
		)`,
	} {
		if _, err := k.db.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("privacy: create the key tables: %w", err)
		}
	}
	return nil
}

// loadMaster reads the master key file and checks it against the store; on a new store it
// records the key's check value, first creating the file when create is set.
func (k *Keys) loadMaster(ctx context.Context, create bool) error {
	var check []byte
	err := k.db.QueryRowContext(ctx, `SELECT check_value FROM privacy_master WHERE id = 1`).Scan(&check)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("privacy: read the key store: %w", err)
	}
	isNew := errors.Is(err, sql.ErrNoRows)
	key, err := readMasterKey(k.path)
	switch {
	case errors.Is(err, fs.ErrNotExist) && isNew && create:
		if err := writeMasterKeyFile(k.path, newMasterKey(), false); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
		// Another process may have written it first: use whichever file is there.
		if key, err = readMasterKey(k.path); err != nil {
			return err
		}
		k.log.Info("privacy: created a master key for this new store; back it up apart from the database — without it the personal data is lost",
			"master_key_file", k.path)
	case errors.Is(err, fs.ErrNotExist):
		reason := "missing"
		if !isNew {
			reason = "missing, and the store's personal data is encrypted under a master key: restore the file from its backup"
		} else if !create {
			reason = "missing (create one with: orderledger keys init)"
		}
		return &MasterKeyError{Path: k.path, Reason: reason}
	case err != nil:
		return err
	}
	master := newGCM(key)
	if isNew {
		now := time.Now().UnixMicro()
		if _, err := k.db.ExecContext(ctx, k.q(`INSERT INTO privacy_master (id, check_value, created_at, rotated_at) VALUES (1, ?, ?, ?)
			ON CONFLICT (id) DO NOTHING`), seal(master, masterCheck, nil), now, now); err != nil {
			return fmt.Errorf("privacy: set up the key store: %w", err)
		}
		if err := k.db.QueryRowContext(ctx, `SELECT check_value FROM privacy_master WHERE id = 1`).Scan(&check); err != nil {
			return fmt.Errorf("privacy: read the key store: %w", err)
		}
	}
	if plain, err := open(master, check, nil); err != nil || string(plain) != string(masterCheck) {
		hint := ""
		if _, statErr := os.Stat(k.path + ".new"); statErr == nil {
			hint = "; " + k.path + ".new exists: a key rotation was interrupted after the store took the new key, so move that file to " + k.path
		}
		return &MasterKeyError{Path: k.path, Reason: "wrong key: the store's data keys are wrapped by another master key" + hint}
	}
	k.master = master
	return nil
}

// wrapAAD binds a wrapped data key to its customer, so that keys swapped between rows do not
// open.
func wrapAAD(customerID string) []byte { return []byte("orderledger data key\x00" + customerID) }

// ErrNoKey: the customer has no data key here (never had one, or it was destroyed).
var errNoKey = errors.New("privacy: no data key")

// dataKey returns the customer's data key. With create, a customer without a row gets a new
// key; an erased customer is domain.ErrCustomerErased.
func (k *Keys) dataKey(ctx context.Context, customerID string, create bool) (cipher.AEAD, error) {
	now := time.Now()
	k.mu.Lock()
	c, ok := k.cache[customerID]
	k.mu.Unlock()
	if !ok || now.Sub(c.at) > keyTTL {
		var err error
		if c, err = k.load(ctx, customerID); err != nil {
			return nil, err
		}
	}
	if c.erased {
		return nil, fmt.Errorf("%w: customer %s", domain.ErrCustomerErased, customerID)
	}
	if c.aead != nil || !create {
		if c.aead == nil {
			return nil, errNoKey
		}
		return c.aead, nil
	}
	key := newMasterKey()
	if _, err := k.db.ExecContext(ctx, k.q(`INSERT INTO privacy_keys (customer_id, wrapped, created_at) VALUES (?, ?, ?)
		ON CONFLICT (customer_id) DO NOTHING`), customerID, seal(k.master, key, wrapAAD(customerID)), now.UnixMicro()); err != nil {
		return nil, fmt.Errorf("privacy: keep a data key: %w", err)
	}
	// Another process may have kept one first: use the one stored.
	c, err := k.load(ctx, customerID)
	if err != nil {
		return nil, err
	}
	if c.erased {
		return nil, fmt.Errorf("%w: customer %s", domain.ErrCustomerErased, customerID)
	}
	return c.aead, nil
}

// load reads the customer's row into the cache.
func (k *Keys) load(ctx context.Context, customerID string) (cachedKey, error) {
	var (
		wrapped  []byte
		erasedAt sql.NullInt64
	)
	c := cachedKey{at: time.Now()}
	err := k.db.QueryRowContext(ctx, k.q(`SELECT wrapped, erased_at FROM privacy_keys WHERE customer_id = ?`), customerID).Scan(&wrapped, &erasedAt)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return c, fmt.Errorf("privacy: read a data key: %w", err)
	case erasedAt.Valid:
		c.erased = true
	default:
		key, err := open(k.master, wrapped, wrapAAD(customerID))
		if err != nil {
			return c, &MasterKeyError{Path: k.path, Reason: "the data key of customer " + customerID + " does not open with this master key"}
		}
		c.aead = newGCM(key)
	}
	k.put(customerID, c)
	return c, nil
}

func (k *Keys) put(customerID string, c cachedKey) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.cache) >= maxCached {
		k.cache = map[string]cachedKey{}
	}
	k.cache[customerID] = c
}

// forget drops a customer's cached key, so the next use reads the store.
func (k *Keys) forget(customerID string) {
	k.mu.Lock()
	delete(k.cache, customerID)
	k.mu.Unlock()
}

// Erased reports whether the customer's data key was destroyed.
func (k *Keys) Erased(ctx context.Context, customerID string) (bool, error) {
	c, err := k.load(ctx, customerID)
	return c.erased, err
}

// Destroy destroys the customer's data key for good, leaving a row that says when, so that
// the customer is never given a new key. It is idempotent.
func (k *Keys) Destroy(ctx context.Context, customerID string) error {
	now := time.Now().UnixMicro()
	if _, err := k.db.ExecContext(ctx, k.q(`INSERT INTO privacy_keys (customer_id, wrapped, created_at, erased_at) VALUES (?, NULL, ?, ?)
		ON CONFLICT (customer_id) DO UPDATE SET wrapped = NULL, erased_at = COALESCE(privacy_keys.erased_at, excluded.erased_at)`),
		customerID, now, now); err != nil {
		return fmt.Errorf("privacy: destroy the data key of %s: %w", customerID, err)
	}
	k.put(customerID, cachedKey{erased: true, at: time.Now()})
	// secure_delete zeroed the freed bytes in the database file; the old page may still sit in
	// the write-ahead log until a checkpoint copies it back, so checkpoint now. PostgreSQL
	// keeps the old row version until VACUUM reclaims it. Both are best effort: the key is
	// destroyed either way as far as every reader is concerned.
	if k.postgres {
		_, _ = k.db.ExecContext(ctx, `VACUUM privacy_keys`)
	} else {
		_, _ = k.db.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`)
	}
	return nil
}

// Rotate re-wraps every data key with a new master key, in one transaction, and replaces the
// master key file. The log is not touched. It returns how many data keys it re-wrapped.
//
// The new key is first written to "<file>.new"; the transaction then re-wraps; the new file
// then takes the old one's place. A crash between the commit and the rename leaves the key in
// "<file>.new", which Open names in its error.
func (k *Keys) Rotate(ctx context.Context) (int, error) {
	newKey := newMasterKey()
	staged := k.path + ".new"
	_ = os.Remove(staged)
	if err := writeMasterKeyFile(staged, newKey, false); err != nil {
		return 0, err
	}
	next := newGCM(newKey)
	tx, err := k.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `SELECT customer_id, wrapped FROM privacy_keys WHERE wrapped IS NOT NULL`)
	if err != nil {
		return 0, err
	}
	type rewrap struct {
		id      string
		wrapped []byte
	}
	var all []rewrap
	for rows.Next() {
		var r rewrap
		if err := rows.Scan(&r.id, &r.wrapped); err != nil {
			rows.Close()
			return 0, err
		}
		all = append(all, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	for _, r := range all {
		key, err := open(k.master, r.wrapped, wrapAAD(r.id))
		if err != nil {
			return 0, &MasterKeyError{Path: k.path, Reason: "the data key of customer " + r.id + " does not open with this master key"}
		}
		if _, err := tx.ExecContext(ctx, k.q(`UPDATE privacy_keys SET wrapped = ? WHERE customer_id = ?`), seal(next, key, wrapAAD(r.id)), r.id); err != nil {
			return 0, err
		}
	}
	if _, err := tx.ExecContext(ctx, k.q(`UPDATE privacy_master SET check_value = ?, rotated_at = ? WHERE id = 1`),
		seal(next, masterCheck, nil), time.Now().UnixMicro()); err != nil {
		return 0, err
	}
	if err := tx.Commit(); err != nil {
		return 0, err
	}
	if err := os.Rename(staged, k.path); err != nil {
		return len(all), &MasterKeyError{Path: k.path, Reason: "the store now uses the new key in " + staged + ", which could not replace this file: " + err.Error()}
	}
	k.master = next
	k.mu.Lock()
	k.cache = map[string]cachedKey{}
	k.mu.Unlock()
	return len(all), nil
}
