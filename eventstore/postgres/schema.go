package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// SchemaLockKey is the key of the transaction-level advisory lock (the one-bigint form of
// pg_advisory_xact_lock) held while a schema is created or migrated. Other packages that keep
// their schema version in schema_migrations, such as the projections, take the same lock so
// that no two processes ever create that table or migrate at once.
const SchemaLockKey int64 = 0x6f6c5f736368656d // "ol_schem"

// schemaComponent is this package's row in schema_migrations.
const schemaComponent = "eventstore"

// streamLockSpace is the first key of the two-int4 advisory lock taken per stream by
// orderledger_append; the two-key form keeps stream locks apart from SchemaLockKey.
const streamLockSpace = 0x4f4c4556 // "OLEV"

// migrations[i] brings the schema from version i to version i+1. Released entries never
// change: a database records the version it reached, not the text it ran.
var migrations = []string{
	// Version 1: the log, its guards and the append function.
	//
	// The primary key (xid, position) is the global order readers follow, so it doubles as the
	// read index; UNIQUE (stream, version) orders each stream and is the last guard against two
	// writers taking the same version. The id index finds a retried event: event IDs are random
	// UUIDs, so the id alone is selective and its entries are smaller than (stream, id).
	`
CREATE TABLE events (
	position    bigserial   NOT NULL,
	xid         xid8        NOT NULL DEFAULT pg_current_xact_id(),
	stream      text        NOT NULL,
	version     bigint      NOT NULL,
	id          uuid        NOT NULL,
	type        text        NOT NULL,
	data        bytea       NOT NULL,
	metadata    bytea       NOT NULL,
	recorded_at timestamptz NOT NULL,
	hash        bytea       NOT NULL,
	CONSTRAINT events_pkey PRIMARY KEY (xid, position),
	CONSTRAINT events_stream_version_key UNIQUE (stream, version)
);
CREATE INDEX events_id ON events (id);

CREATE FUNCTION orderledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
	RAISE EXCEPTION 'orderledger: events are immutable, % refused', TG_OP
		USING ERRCODE = 'OLIMM';
END
$fn$;
CREATE TRIGGER events_immutable BEFORE UPDATE OR DELETE OR TRUNCATE ON events
	FOR EACH STATEMENT EXECUTE FUNCTION orderledger_refuse_change();

-- orderledger_append appends a batch to one stream and answers in one row:
--   outcome 0 appended, 1 a retry of a stored batch (nothing appended), with the stream version,
--   transaction id and position of the batch's last event;
--   outcome 2 wrong expected revision, 3 duplicate event id, with the stream's last version
--   (-1 for no stream) and NULL xid and position.
-- p_expected: >= 0 exact version, -1 no stream, -2 any, -3 stream exists, -4 a version no stream
-- can reach.
CREATE FUNCTION orderledger_append(
	p_stream text, p_expected bigint,
	p_ids uuid[], p_types text[], p_data bytea[], p_metadata bytea[], p_recorded_at timestamptz[])
RETURNS TABLE (outcome int, last_version bigint, last_xid xid8, last_position bigint)
LANGUAGE plpgsql AS $fn$
DECLARE
	n            int   := cardinality(p_ids);
	stream_bytes bytea := convert_to(p_stream, 'UTF8');
	type_bytes   bytea;
	retried_at   bigint;
	stored_ids   uuid[];
	prev_version bigint;
	prev_hash    bytea;
	hashes       bytea[];
BEGIN
	-- Appends to one stream queue here; appends to other streams do not wait (up to a hash
	-- collision, which only costs a wait).
	PERFORM pg_advisory_xact_lock(` + fmt.Sprint(streamLockSpace) + `, hashtext(p_stream));

	SELECT e.version INTO retried_at FROM events e WHERE e.id = p_ids[1] AND e.stream = p_stream;
	IF FOUND THEN
		SELECT array_agg(e.id ORDER BY e.version) INTO stored_ids FROM events e
		WHERE e.stream = p_stream AND e.version BETWEEN retried_at AND retried_at + n - 1;
		IF stored_ids IS DISTINCT FROM p_ids THEN
			RETURN QUERY SELECT 3, retried_at, NULL::xid8, NULL::bigint;
			RETURN;
		END IF;
		RETURN QUERY SELECT 1, e.version, e.xid, e.position FROM events e
			WHERE e.stream = p_stream AND e.version = retried_at + n - 1;
		RETURN;
	END IF;

	SELECT e.version, e.hash INTO prev_version, prev_hash FROM events e
	WHERE e.stream = p_stream ORDER BY e.version DESC LIMIT 1;
	IF NOT FOUND THEN
		prev_version := -1;
		prev_hash := decode(repeat('00', 32), 'hex');
	END IF;

	IF n > 1 AND EXISTS (SELECT 1 FROM events e WHERE e.id = ANY (p_ids[2:n]) AND e.stream = p_stream) THEN
		RETURN QUERY SELECT 3, prev_version, NULL::xid8, NULL::bigint;
		RETURN;
	END IF;

	IF NOT (p_expected = prev_version OR p_expected = -2 OR (p_expected = -3 AND prev_version >= 0)) THEN
		RETURN QUERY SELECT 2, prev_version, NULL::xid8, NULL::bigint;
		RETURN;
	END IF;

	-- The chain, byte for byte as eventstore.Hash documents it.
	FOR i IN 1..n LOOP
		type_bytes := convert_to(p_types[i], 'UTF8');
		prev_hash := sha256(
			'\x6f726465726c65646765722f6576656e742f7631'::bytea -- "orderledger/event/v1"
			|| prev_hash
			|| int8send(prev_version + i)
			|| int4send(octet_length(stream_bytes)) || stream_bytes
			|| uuid_send(p_ids[i])
			|| int4send(octet_length(type_bytes)) || type_bytes
			|| int8send((extract(epoch FROM p_recorded_at[i]) * 1000000)::bigint)
			|| int4send(octet_length(p_metadata[i])) || p_metadata[i]
			|| int4send(octet_length(p_data[i])) || p_data[i]);
		hashes[i] := prev_hash;
	END LOOP;

	-- ORDER BY keeps positions in version order within the batch.
	INSERT INTO events (stream, version, id, type, data, metadata, recorded_at, hash)
	SELECT p_stream, prev_version + b.ord, b.id, b.type, b.data, b.metadata, b.recorded_at, b.hash
	FROM unnest(p_ids, p_types, p_data, p_metadata, p_recorded_at, hashes)
		WITH ORDINALITY AS b(id, type, data, metadata, recorded_at, hash, ord)
	ORDER BY b.ord;

	RETURN QUERY SELECT 0, prev_version + n, pg_current_xact_id(), currval('events_position_seq');
END
$fn$;
`,
}

// migrate creates or upgrades the schema. Two processes opening the same database at once
// serialise on SchemaLockKey, so the second finds the work done.
func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", SchemaLockKey); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			component text PRIMARY KEY,
			version   int  NOT NULL)`); err != nil {
			return err
		}
		var version int
		err := tx.QueryRow(ctx, "SELECT version FROM schema_migrations WHERE component = $1", schemaComponent).Scan(&version)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if version > len(migrations) {
			return fmt.Errorf("schema version %d is newer than this program knows (%d)", version, len(migrations))
		}
		for v := version; v < len(migrations); v++ {
			if _, err := tx.Exec(ctx, migrations[v]); err != nil {
				return fmt.Errorf("migrate to version %d: %w", v+1, err)
			}
		}
		_, err = tx.Exec(ctx, `INSERT INTO schema_migrations (component, version) VALUES ($1, $2)
			ON CONFLICT (component) DO UPDATE SET version = EXCLUDED.version`, schemaComponent, len(migrations))
		return err
	})
}
