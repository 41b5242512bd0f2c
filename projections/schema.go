package projections

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	pgstore "github.com/orderledger/orderledger/eventstore/postgres"
)

// schemaComponent is this package's row in schema_migrations, the table the event store
// adapters share with it.
const schemaComponent = "projections"

// migrations returns, for a dialect, the statements that bring the schema from version i to
// i+1 at index i. Released versions never change. {key} is the dialect's identifier type.
//
// Times are microseconds since the Unix epoch (UTC), amounts and counts BIGINT, booleans 0/1,
// and nested lists (order lines, credit notes, ledger lines) JSON text: they are always read and
// written with their row.
func migrations(d dialect) [][]string {
	v1 := []string{
		// One row per projector (and "log", the log counter): its checkpoint, the number of
		// events up to it, the time the last of them was recorded, and who may write it.
		`CREATE TABLE rm_projector_state (
			name             {key}   PRIMARY KEY,
			generation       BIGINT  NOT NULL,
			pos_commit       BIGINT  NOT NULL,
			pos_prepare      BIGINT  NOT NULL,
			events           BIGINT  NOT NULL,
			last_recorded_at BIGINT  NOT NULL,
			lease_owner      TEXT    NOT NULL,
			lease_expires    BIGINT  NOT NULL,
			updated_at       BIGINT  NOT NULL
		)`,

		`CREATE TABLE rm_orders (
			order_id           {key}  PRIMARY KEY,
			customer_id        {key}  NOT NULL,
			channel            {key}  NOT NULL,
			currency           TEXT   NOT NULL,
			status             {key}  NOT NULL,
			payment_status     TEXT   NOT NULL,
			fulfillment_status TEXT   NOT NULL,
			lines              TEXT   NOT NULL,
			subtotal           BIGINT NOT NULL,
			tax                BIGINT NOT NULL,
			total              BIGINT NOT NULL,
			paid               BIGINT NOT NULL,
			refunded           BIGINT NOT NULL,
			credited           BIGINT NOT NULL,
			outstanding        BIGINT NOT NULL,
			invoice_number     TEXT   NOT NULL,
			credit_notes       TEXT   NOT NULL,
			carrier            TEXT   NOT NULL,
			tracking_number    TEXT   NOT NULL,
			shipped_units      BIGINT NOT NULL,
			returned_units     BIGINT NOT NULL,
			placed_at          BIGINT NOT NULL,
			updated_at         BIGINT NOT NULL
		)`,

		`CREATE TABLE rm_customers (
			customer_id         {key}   PRIMARY KEY,
			name                TEXT    NOT NULL,
			email               TEXT    NOT NULL,
			phone               TEXT    NOT NULL,
			payment_preference  TEXT    NOT NULL,
			order_count         BIGINT  NOT NULL,
			lifetime_value      BIGINT  NOT NULL,
			outstanding_balance BIGINT  NOT NULL,
			first_order_at      BIGINT,
			last_order_at       BIGINT,
			web_orders          BIGINT  NOT NULL,
			store_orders        BIGINT  NOT NULL,
			phone_orders        BIGINT  NOT NULL
		)`,
		// What the customers projector knows of each order: enough to keep outstanding
		// balances and list recent orders.
		`CREATE TABLE rm_customer_orders (
			order_id    {key}   PRIMARY KEY,
			customer_id {key}   NOT NULL,
			status      TEXT    NOT NULL,
			total       BIGINT  NOT NULL,
			credited    BIGINT  NOT NULL,
			paid        BIGINT  NOT NULL,
			refunded    BIGINT  NOT NULL,
			invoiced    INTEGER NOT NULL,
			placed_at   BIGINT  NOT NULL
		)`,

		`CREATE TABLE rm_stock (
			sku              {key}   PRIMARY KEY,
			on_hand          BIGINT  NOT NULL,
			reserved         BIGINT  NOT NULL,
			backordered      BIGINT  NOT NULL,
			incoming         BIGINT  NOT NULL,
			has_policy       INTEGER NOT NULL,
			reorder_point    BIGINT  NOT NULL,
			reorder_quantity BIGINT  NOT NULL,
			supplier         TEXT    NOT NULL,
			low_stock        INTEGER NOT NULL
		)`,
		// Purchase orders a SKU's stream requested, with what is still incoming: the stock
		// stream's own view, which the purchase order streams follow only later.
		`CREATE TABLE rm_stock_replenishments (
			purchase_order_id {key}  PRIMARY KEY,
			sku               {key}  NOT NULL,
			incoming          BIGINT NOT NULL
		)`,
		`CREATE TABLE rm_purchase_orders (
			purchase_order_id {key}  PRIMARY KEY,
			sku               {key}  NOT NULL,
			supplier          TEXT   NOT NULL,
			quantity          BIGINT NOT NULL,
			status            {key}  NOT NULL,
			raised_at         BIGINT NOT NULL,
			received_at       BIGINT
		)`,

		// One fact per dated document (order placed, invoice, credit note, payment, refund),
		// so that a period of any bounds sums exactly. fact_id is the ID of the event that
		// made the fact; it has no index, since nothing looks a fact up, and the checkpoint
		// written with the facts already makes each event count once.
		`CREATE TABLE rm_sales_facts (
			fact_id     {key}  NOT NULL,
			occurred_at BIGINT NOT NULL,
			day         TEXT   NOT NULL,
			channel     TEXT   NOT NULL,
			orders      BIGINT NOT NULL,
			invoiced    BIGINT NOT NULL,
			credited    BIGINT NOT NULL,
			invoice_tax BIGINT NOT NULL,
			credit_tax  BIGINT NOT NULL,
			payments    BIGINT NOT NULL,
			refunds     BIGINT NOT NULL
		)`,
		`CREATE TABLE rm_sales_order_channels (
			order_id {key} PRIMARY KEY,
			channel  TEXT  NOT NULL
		)`,

		`CREATE TABLE rm_ledger_entries (
			entry_id  {key}  PRIMARY KEY,
			order_id  {key}  NOT NULL,
			kind      TEXT   NOT NULL,
			document  TEXT   NOT NULL,
			posted_at BIGINT NOT NULL,
			lines     TEXT   NOT NULL
		)`,
		`CREATE TABLE rm_ledger_accounts (
			account {key}  PRIMARY KEY,
			debit   BIGINT NOT NULL,
			credit  BIGINT NOT NULL
		)`,
	}
	// v2 keeps the books per currency, in sums that never overflow, and decides payment_status
	// by the new rule. The read models whose shape or meaning changed are dropped, created
	// anew and emptied, and their projectors' checkpoints go back to the start of the log
	// (the generation moves on, fencing off a process of the older version still running
	// them): the projectors replay the log into them as they start, or `orderledger
	// projections rebuild` does it at once. The inventory read model is untouched.
	v2 := []string{
		`DROP TABLE rm_customers`,
		`DROP TABLE rm_customer_orders`,
		`DROP TABLE rm_sales_facts`,
		`DROP TABLE rm_sales_order_channels`,
		`DROP TABLE rm_ledger_entries`,
		`DROP TABLE rm_ledger_accounts`,
		`DELETE FROM rm_orders`,
		`CREATE TABLE rm_customers (
			customer_id         {key}   PRIMARY KEY,
			name                TEXT    NOT NULL,
			email               TEXT    NOT NULL,
			phone               TEXT    NOT NULL,
			payment_preference  TEXT    NOT NULL,
			order_count         BIGINT  NOT NULL,
			first_order_at      BIGINT,
			last_order_at       BIGINT,
			web_orders          BIGINT  NOT NULL,
			store_orders        BIGINT  NOT NULL,
			phone_orders        BIGINT  NOT NULL
		)`,
		// A customer's money per currency, each amount exact as its two parts (Amount):
		// hi × 10^18 + lo.
		`CREATE TABLE rm_customer_balances (
			balance_id     {key}  PRIMARY KEY,
			customer_id    {key}  NOT NULL,
			currency       {key}  NOT NULL,
			lifetime_hi    BIGINT NOT NULL,
			lifetime_lo    BIGINT NOT NULL,
			outstanding_hi BIGINT NOT NULL,
			outstanding_lo BIGINT NOT NULL
		)`,
		`CREATE TABLE rm_customer_orders (
			order_id    {key}   PRIMARY KEY,
			customer_id {key}   NOT NULL,
			status      TEXT    NOT NULL,
			currency    TEXT    NOT NULL,
			total       BIGINT  NOT NULL,
			credited    BIGINT  NOT NULL,
			paid        BIGINT  NOT NULL,
			refunded    BIGINT  NOT NULL,
			invoiced    INTEGER NOT NULL,
			placed_at   BIGINT  NOT NULL
		)`,
		`CREATE TABLE rm_sales_facts (
			fact_id     {key}  NOT NULL,
			occurred_at BIGINT NOT NULL,
			day         TEXT   NOT NULL,
			currency    {key}  NOT NULL,
			channel     TEXT   NOT NULL,
			orders      BIGINT NOT NULL,
			invoiced    BIGINT NOT NULL,
			credited    BIGINT NOT NULL,
			invoice_tax BIGINT NOT NULL,
			credit_tax  BIGINT NOT NULL,
			payments    BIGINT NOT NULL,
			refunds     BIGINT NOT NULL
		)`,
		`CREATE TABLE rm_sales_order_channels (
			order_id {key} PRIMARY KEY,
			channel  TEXT  NOT NULL,
			currency TEXT  NOT NULL
		)`,
		// An entry's postings are in lines (JSON, as the entries route shows them) and, for
		// sums, in a column pair per account.
		`CREATE TABLE rm_ledger_entries (
			entry_id           {key}  PRIMARY KEY,
			order_id           {key}  NOT NULL,
			currency           {key}  NOT NULL,
			kind               TEXT   NOT NULL,
			document           TEXT   NOT NULL,
			posted_at          BIGINT NOT NULL,
			lines              TEXT   NOT NULL,
			receivable_debit   BIGINT NOT NULL,
			receivable_credit  BIGINT NOT NULL,
			cash_debit         BIGINT NOT NULL,
			cash_credit        BIGINT NOT NULL,
			revenue_debit      BIGINT NOT NULL,
			revenue_credit     BIGINT NOT NULL,
			tax_payable_debit  BIGINT NOT NULL,
			tax_payable_credit BIGINT NOT NULL
		)`,
		`CREATE TABLE rm_ledger_orders (
			order_id {key} PRIMARY KEY,
			currency TEXT  NOT NULL
		)`,
		`CREATE TABLE rm_ledger_currencies (
			currency {key} PRIMARY KEY
		)`,
		`UPDATE rm_projector_state SET generation = generation + 1, pos_commit = 0, pos_prepare = 0, events = 0,
			last_recorded_at = 0, lease_owner = '', lease_expires = 0
			WHERE name IN ('orders', 'customers', 'sales', 'ledger')`,
	}
	v3 := []string{
		// Whether the customer's personal data was erased (CustomerErased): name, email and
		// phone are then empty here and null in the answers.
		`ALTER TABLE rm_customers ADD COLUMN erased INTEGER NOT NULL DEFAULT 0`,
	}
	all := [][]string{v1, v2, v3}
	for _, version := range all {
		for i, stmt := range version {
			version[i] = strings.ReplaceAll(stmt, "{key}", d.keyType())
		}
	}
	return all
}

// index is a secondary index of a read model table. Indexes are not part of the versioned
// migrations: a rebuild drops its tables' indexes, since building an index once at the end
// costs far less than keeping it up to date through a replay, and ensureIndexes puts back any
// that is missing, at every open and after every rebuild, so one that a crashed rebuild left
// out comes back by itself.
type index struct {
	name, table, columns string
}

// indexes serve every filter and sort the read routes offer.
var indexes = []index{
	// GET /v1/orders lists newest first, by (placed_at, order_id) descending, filtered by at
	// most one of these at a time through its index (the others filter the rows read).
	{"rm_orders_placed", "rm_orders", "placed_at DESC, order_id DESC"},
	{"rm_orders_customer", "rm_orders", "customer_id, placed_at DESC, order_id DESC"},
	{"rm_orders_status", "rm_orders", "status, placed_at DESC, order_id DESC"},
	{"rm_orders_channel", "rm_orders", "channel, placed_at DESC, order_id DESC"},
	{"rm_customer_balances_rank", "rm_customer_balances", "currency, lifetime_hi DESC, lifetime_lo DESC, customer_id"},
	{"rm_customer_balances_customer", "rm_customer_balances", "customer_id"},
	{"rm_customer_orders_recent", "rm_customer_orders", "customer_id, placed_at DESC, order_id DESC"},
	{"rm_stock_low", "rm_stock", "low_stock, sku"},
	{"rm_purchase_orders_raised", "rm_purchase_orders", "raised_at DESC, purchase_order_id DESC"},
	{"rm_purchase_orders_sku", "rm_purchase_orders", "sku, raised_at DESC, purchase_order_id DESC"},
	{"rm_purchase_orders_status", "rm_purchase_orders", "status, raised_at DESC, purchase_order_id DESC"},
	{"rm_sales_facts_currency", "rm_sales_facts", "currency, occurred_at"},
	{"rm_ledger_entries_order", "rm_ledger_entries", "order_id, posted_at, entry_id"},
	{"rm_ledger_entries_posted", "rm_ledger_entries", "posted_at, entry_id"},
	{"rm_ledger_entries_currency", "rm_ledger_entries", "currency, posted_at, entry_id"},
}

// ensureIndexes creates the indexes of tables (all tables when none is named) that are missing.
func (s *ReadStore) ensureIndexes(ctx context.Context, tables ...string) error {
	existing := map[string]bool{}
	err := queryRows(ctx, s.writes, s.dialect, s.dialect.indexNamesQuery(), nil, func(r *sql.Rows) error {
		var name string
		err := r.Scan(&name)
		existing[name] = true
		return err
	})
	if err != nil {
		return err
	}
	for _, ix := range indexes {
		if existing[ix.name] || (len(tables) > 0 && !slices.Contains(tables, ix.table)) {
			continue
		}
		if _, err := s.writes.ExecContext(ctx, "CREATE INDEX IF NOT EXISTS "+ix.name+" ON "+ix.table+" ("+ix.columns+")"); err != nil {
			return fmt.Errorf("create index %s: %w", ix.name, err)
		}
	}
	return nil
}

// dropIndexes drops the secondary indexes of tables, before a rebuild fills them.
func (s *ReadStore) dropIndexes(ctx context.Context, tx *sql.Tx, tables []string) error {
	for _, ix := range indexes {
		if slices.Contains(tables, ix.table) {
			if _, err := tx.ExecContext(ctx, "DROP INDEX IF EXISTS "+ix.name); err != nil {
				return err
			}
		}
	}
	return nil
}

// migrate creates or upgrades the schema in one transaction. On PostgreSQL it holds the lock
// the event store adapter takes for its own migration, so that no two processes create
// schema_migrations or migrate at once; on SQLite the write transaction is that lock.
func (s *ReadStore) migrate(ctx context.Context) error {
	tx, err := s.beginWrite(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op once committed
	if s.dialect.postgres {
		if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", pgstore.SchemaLockKey); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		component TEXT PRIMARY KEY,
		version   INTEGER NOT NULL)`); err != nil {
		return err
	}
	var version int
	err = tx.QueryRowContext(ctx, s.dialect.sql("SELECT version FROM schema_migrations WHERE component = ?"), schemaComponent).Scan(&version)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	all := migrations(s.dialect)
	if version > len(all) {
		return fmt.Errorf("the %s schema is at version %d, newer than this build knows (%d)", schemaComponent, version, len(all))
	}
	if version == len(all) {
		// On SQLite the transaction holds the one write connection ensureIndexes needs.
		if err := tx.Commit(); err != nil {
			return err
		}
		return s.ensureIndexes(ctx)
	}
	for v := version; v < len(all); v++ {
		for _, stmt := range all[v] {
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("migrate %s to version %d: %w", schemaComponent, v+1, err)
			}
		}
	}
	if _, err := tx.ExecContext(ctx, s.dialect.sql(`INSERT INTO schema_migrations (component, version) VALUES (?, ?)
		ON CONFLICT (component) DO UPDATE SET version = excluded.version`), schemaComponent, len(all)); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	return s.ensureIndexes(ctx)
}
