package integrations

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/eventstore/postgres"
	"github.com/orderledger/orderledger/follow"
)

// Webhook statuses.
const (
	StatusActive  = "active"  // delivering, or retrying within the 24 h it is given
	StatusFailing = "failing" // one event failed for 24 h: deliveries stop until resumed
)

// Webhook is a webhook as GET /v1/webhooks/{id} answers it.
type Webhook struct {
	WebhookID string   `json:"webhook_id"`
	URL       string   `json:"url"`
	Types     []string `json:"types"`
	Status    string   `json:"status"`
	// Position is the position delivered up to: every matching event up to it was
	// acknowledged with a 2xx.
	Position     string     `json:"position"`
	Attempts     int64      `json:"attempts"`
	LastError    *string    `json:"last_error"`
	LastErrorAt  *time.Time `json:"last_error_at"`
	FailingSince *time.Time `json:"failing_since"`
	RegisteredAt time.Time  `json:"registered_at"`
}

// webhookStore keeps the webhooks and their delivery state in the read store's database, in
// the follow store's connection: a worker's checkpoint is written in the transaction of the
// fenced follow checkpoint, so a process that lost its lease writes nothing.
type webhookStore struct {
	leases *follow.Store
	db     *sql.DB
	// key derives every webhook's secret: the log never holds a secret, and a webhook's
	// secret is the same whenever it is computed.
	key []byte
}

// The tables, one statement each: a driver runs one at a time.
var webhookSchema = []string{`CREATE TABLE IF NOT EXISTS webhooks (
	webhook_id    TEXT    NOT NULL PRIMARY KEY,
	url           TEXT    NOT NULL,
	types         TEXT    NOT NULL,
	registered_at TEXT    NOT NULL,
	deleted       INTEGER NOT NULL DEFAULT 0,
	status        TEXT    NOT NULL DEFAULT 'active',
	position      TEXT    NOT NULL,
	attempts      BIGINT  NOT NULL DEFAULT 0,
	last_error    TEXT,
	last_error_at TEXT,
	failing_since TEXT
)`, `CREATE TABLE IF NOT EXISTS webhook_key (
	id         INTEGER NOT NULL PRIMARY KEY,
	secret_key TEXT    NOT NULL
)`}

func openWebhookStore(ctx context.Context, leases *follow.Store, isPostgres bool) (*webhookStore, error) {
	s := &webhookStore{leases: leases, db: leases.DB()}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("integrations: webhooks: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op once committed
	if isPostgres {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, postgres.SchemaLockKey); err != nil {
			return nil, fmt.Errorf("integrations: webhooks: lock schema: %w", err)
		}
	}
	for _, stmt := range webhookSchema {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return nil, fmt.Errorf("integrations: webhooks: create tables: %w", err)
		}
	}
	fresh := make([]byte, 32)
	if _, err := rand.Read(fresh); err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO webhook_key (id, secret_key) VALUES (1, $1) ON CONFLICT (id) DO NOTHING`, hex.EncodeToString(fresh)); err != nil {
		return nil, fmt.Errorf("integrations: webhooks: create key: %w", err)
	}
	var key string
	if err := tx.QueryRowContext(ctx, `SELECT secret_key FROM webhook_key WHERE id = 1`).Scan(&key); err != nil {
		return nil, fmt.Errorf("integrations: webhooks: read key: %w", err)
	}
	if s.key, err = hex.DecodeString(key); err != nil || len(s.key) != 32 {
		return nil, errors.New("integrations: webhooks: the key in webhook_key is damaged")
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("integrations: webhooks: %w", err)
	}
	return s, nil
}

// secret is webhook id's signing secret: an HMAC of its id under the store's key.
func (s *webhookStore) secret(id string) string {
	mac := hmac.New(sha256.New, s.key)
	mac.Write([]byte("orderledger webhook secret\x00" + id))
	return "whsec_" + hex.EncodeToString(mac.Sum(nil))
}

// register records a registration, once: a repeat (the fold after the API) changes nothing.
func (s *webhookStore) register(ctx context.Context, e domain.WebhookRegistered, at eventstore.Position) error {
	types, _ := json.Marshal(e.Types)
	_, err := s.db.ExecContext(ctx, `INSERT INTO webhooks (webhook_id, url, types, registered_at, position)
		VALUES ($1, $2, $3, $4, $5) ON CONFLICT (webhook_id) DO NOTHING`,
		e.WebhookID, e.URL, string(types), e.RegisteredAt.UTC().Format(time.RFC3339Nano), at.String())
	if err != nil {
		return fmt.Errorf("integrations: record webhook %s: %w", e.WebhookID, err)
	}
	return nil
}

func (s *webhookStore) markDeleted(ctx context.Context, id string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE webhooks SET deleted = 1 WHERE webhook_id = $1`, id)
	return err
}

// markResumed makes a failing webhook active again, retrying the event it failed on afresh.
func (s *webhookStore) markResumed(ctx context.Context, id string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE webhooks SET status = 'active', attempts = 0, failing_since = NULL
		WHERE webhook_id = $1 AND status = 'failing'`, id)
	return err
}

const webhookColumns = `webhook_id, url, types, registered_at, status, position, attempts, last_error, last_error_at, failing_since`

func scanWebhook(row interface{ Scan(...any) error }) (Webhook, error) {
	var (
		w                                    Webhook
		types, registered                    string
		lastError, lastErrorAt, failingSince sql.NullString
	)
	if err := row.Scan(&w.WebhookID, &w.URL, &types, &registered, &w.Status, &w.Position, &w.Attempts, &lastError, &lastErrorAt, &failingSince); err != nil {
		return w, err
	}
	_ = json.Unmarshal([]byte(types), &w.Types)
	if w.Types == nil {
		w.Types = []string{}
	}
	w.RegisteredAt, _ = time.Parse(time.RFC3339Nano, registered)
	if lastError.Valid {
		w.LastError = &lastError.String
	}
	w.LastErrorAt = parseOptionalTime(lastErrorAt)
	w.FailingSince = parseOptionalTime(failingSince)
	return w, nil
}

func parseOptionalTime(s sql.NullString) *time.Time {
	if !s.Valid {
		return nil
	}
	t, err := time.Parse(time.RFC3339Nano, s.String)
	if err != nil {
		return nil
	}
	return &t
}

// get returns webhook id, or sql.ErrNoRows if there is none (or it was deleted).
func (s *webhookStore) get(ctx context.Context, id string) (Webhook, error) {
	return scanWebhook(s.db.QueryRowContext(ctx, `SELECT `+webhookColumns+` FROM webhooks WHERE webhook_id = $1 AND deleted = 0`, id))
}

// list returns the webhooks not deleted, oldest first.
func (s *webhookStore) list(ctx context.Context) ([]Webhook, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+webhookColumns+` FROM webhooks WHERE deleted = 0 ORDER BY registered_at, webhook_id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Webhook{}
	for rows.Next() {
		w, err := scanWebhook(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, w)
	}
	return out, rows.Err()
}

// delivered records, fenced by term t, that webhook id has everything up to p.
func (s *webhookStore) delivered(ctx context.Context, t *follow.Term, registry eventstore.Position, id string, p eventstore.Position) error {
	return s.fenced(ctx, t, registry, `UPDATE webhooks SET position = $1, attempts = 0, failing_since = NULL WHERE webhook_id = $2`, p.String(), id)
}

// failed records, fenced by term t, a failed attempt, and whether the webhook is now failing.
func (s *webhookStore) failed(ctx context.Context, t *follow.Term, registry eventstore.Position, id string, attempts int64, msg string, at, since time.Time, failing bool) error {
	status := StatusActive
	if failing {
		status = StatusFailing
	}
	return s.fenced(ctx, t, registry, `UPDATE webhooks SET attempts = $1, last_error = $2, last_error_at = $3, failing_since = $4, status = $5
		WHERE webhook_id = $6`, attempts, msg, at.UTC().Format(time.RFC3339Nano), since.UTC().Format(time.RFC3339Nano), status, id)
}

// fenced runs one update in a transaction with the deliverer's fenced checkpoint: a process
// that lost the lease commits neither.
func (s *webhookStore) fenced(ctx context.Context, t *follow.Term, registry eventstore.Position, query string, args ...any) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op once committed
	if err := s.leases.SaveIn(ctx, tx, t, registry); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, query, args...); err != nil {
		return err
	}
	return tx.Commit()
}
