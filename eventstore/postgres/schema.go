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

// streamLockSpace is the first key of the two-int4 advisory lock taken per stream by the
// append functions; the two-key form keeps stream locks apart from SchemaLockKey.
const streamLockSpace = 0x4f4c4556 // "OLEV"

// migrations[i] brings the schema from version i to version i+1. Released entries never
// change: a database records the version it reached, not the text it ran.
var migrations = []string{
	// Version 1: the log, its guards and the append functions.
	//
	// The primary key (xid, position) is the global order readers follow, so it doubles as the
	// read index; UNIQUE (stream, version) orders each stream and is the last guard against two
	// writers taking the same version. UNIQUE (stream, id) finds a retried event with one probe
	// (on id alone, a planner without statistics may scan the stream's whole range beside it)
	// and guards the rule that an event ID is stored once per stream.
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
	CONSTRAINT events_stream_version_key UNIQUE (stream, version),
	CONSTRAINT events_stream_id_key UNIQUE (stream, id)
);

CREATE FUNCTION orderledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
	RAISE EXCEPTION 'orderledger: events are immutable, % refused', TG_OP
		USING ERRCODE = 'OLIMM';
END
$fn$;
CREATE TRIGGER events_immutable BEFORE UPDATE OR DELETE OR TRUNCATE ON events
	FOR EACH STATEMENT EXECUTE FUNCTION orderledger_refuse_change();

-- orderledger_event_body is what an event contributes to its hash, and orderledger_event_hash
-- the hash chained to the previous one: together the bytes eventstore.Hash documents, byte for
-- byte. Being plain SQL expressions, they are inlined where they are called.
CREATE FUNCTION orderledger_event_body(
	version bigint, stream text, id uuid, type text, recorded_at timestamptz, metadata bytea, data bytea)
RETURNS bytea LANGUAGE sql STABLE AS $fn$
	SELECT int8send(version)
		|| int4send(octet_length(convert_to(stream, 'UTF8'))) || convert_to(stream, 'UTF8')
		|| uuid_send(id)
		|| int4send(octet_length(convert_to(type, 'UTF8'))) || convert_to(type, 'UTF8')
		|| int8send((extract(epoch FROM recorded_at) * 1000000)::bigint)
		|| int4send(octet_length(metadata)) || metadata
		|| int4send(octet_length(data)) || data
$fn$;

CREATE FUNCTION orderledger_event_hash(prev bytea, body bytea)
RETURNS bytea LANGUAGE sql IMMUTABLE AS $fn$
	SELECT sha256('\x6f726465726c65646765722f6576656e742f7631'::bytea || prev || body) -- "orderledger/event/v1"
$fn$;

-- The append functions answer in one row:
--   outcome 0 appended, 1 a retry of a stored batch (nothing appended), with the stream version,
--   transaction id and position of the batch's last event;
--   outcome 2 wrong expected revision, with the stream's last version (-1 for no stream);
--   outcome 3 (batches only) a first event already stored but followed by other events than the
--   batch's.
--   xid and position are NULL unless the outcome is 0 or 1.
-- p_expected: >= 0 exact version, -1 no stream, -2 any, -3 stream exists, -4 a version no stream
-- can reach.
--
-- Appends to one stream queue on the advisory lock; appends to other streams do not wait (up to
-- a hash collision, which only costs a wait). The lock is taken before any read, in an
-- assignment rather than PERFORM so that PL/pgSQL evaluates it without starting an executor; the
-- statements after it, under READ COMMITTED, then see what the previous holder committed.

-- orderledger_append_one appends a single event: the common case, kept to two statements (the
-- lock, then one INSERT that reads the stream's head, checks for a retry and for the expected
-- revision, and chains the hash); only when it inserts nothing does it look at why.
CREATE FUNCTION orderledger_append_one(
	p_stream text, p_expected bigint,
	p_id uuid, p_type text, p_data bytea, p_metadata bytea, p_recorded_at timestamptz,
	OUT outcome int, OUT last_version bigint, OUT last_xid xid8, OUT last_position bigint)
LANGUAGE plpgsql AS $fn$
DECLARE
	locked text;
BEGIN
	locked := pg_advisory_xact_lock(` + fmt.Sprint(streamLockSpace) + `, hashtext(p_stream))::text;

	INSERT INTO events (stream, version, id, type, data, metadata, recorded_at, hash)
	SELECT p_stream, h.version + 1, p_id, p_type, p_data, p_metadata, p_recorded_at,
		orderledger_event_hash(h.hash,
			orderledger_event_body(h.version + 1, p_stream, p_id, p_type, p_recorded_at, p_metadata, p_data))
	FROM (
		SELECT coalesce(last.version, -1) AS version,
			coalesce(last.hash, '\x0000000000000000000000000000000000000000000000000000000000000000') AS hash
		FROM (SELECT) AS one
		LEFT JOIN LATERAL (
			SELECT e.version, e.hash FROM events e WHERE e.stream = p_stream ORDER BY e.version DESC LIMIT 1
		) AS last ON true
	) AS h
	WHERE (p_expected = h.version OR p_expected = -2 OR (p_expected = -3 AND h.version >= 0))
		AND NOT EXISTS (SELECT FROM events e WHERE e.id = p_id AND e.stream = p_stream)
	RETURNING 0, version, xid, position INTO outcome, last_version, last_xid, last_position;
	IF FOUND THEN
		RETURN;
	END IF;

	SELECT 1, e.version, e.xid, e.position INTO outcome, last_version, last_xid, last_position
	FROM events e WHERE e.id = p_id AND e.stream = p_stream;
	IF FOUND THEN
		RETURN;
	END IF;
	outcome := 2;
	last_version := coalesce((SELECT max(e.version) FROM events e WHERE e.stream = p_stream), -1);
END
$fn$;

-- orderledger_append appends a batch of events, given as parallel arrays.
CREATE FUNCTION orderledger_append(
	p_stream text, p_expected bigint,
	p_ids uuid[], p_types text[], p_data bytea[], p_metadata bytea[], p_recorded_at timestamptz[],
	OUT outcome int, OUT last_version bigint, OUT last_xid xid8, OUT last_position bigint)
LANGUAGE plpgsql AS $fn$
DECLARE
	n          int := cardinality(p_ids);
	retried_at bigint;
	prev_hash  bytea;
	bodies     bytea[];
	body       bytea;
	hashes     bytea[] := '{}';
	locked     text;
BEGIN
	locked := pg_advisory_xact_lock(` + fmt.Sprint(streamLockSpace) + `, hashtext(p_stream))::text;

	-- A batch whose first event is stored is a retry if the stream holds exactly the batch from
	-- there on, and a duplicate otherwise. A later event of the batch already in the stream is
	-- left to events_stream_id_key, which the insert probes anyway.
	SELECT e.version INTO retried_at FROM events e WHERE e.id = p_ids[1] AND e.stream = p_stream;
	IF FOUND THEN
		last_version := retried_at + n - 1;
		IF (SELECT array_agg(e.id ORDER BY e.version) FROM events e
		    WHERE e.stream = p_stream AND e.version BETWEEN retried_at AND last_version) IS DISTINCT FROM p_ids THEN
			outcome := 3;
			RETURN;
		END IF;
		SELECT 1, e.xid, e.position INTO outcome, last_xid, last_position
		FROM events e WHERE e.stream = p_stream AND e.version = last_version;
		RETURN;
	END IF;

	SELECT e.version, e.hash INTO last_version, prev_hash FROM events e
	WHERE e.stream = p_stream ORDER BY e.version DESC LIMIT 1;
	IF NOT FOUND THEN
		last_version := -1;
		prev_hash := '\x0000000000000000000000000000000000000000000000000000000000000000';
	END IF;

	IF NOT (p_expected = last_version OR p_expected = -2 OR (p_expected = -3 AND last_version >= 0)) THEN
		outcome := 2;
		RETURN;
	END IF;

	-- The bodies in one pass over the arrays; the chain, which is sequential, in a loop.
	SELECT array_agg(orderledger_event_body(last_version + b.ord, p_stream, b.id, b.type, b.recorded_at,
		b.metadata, b.data) ORDER BY b.ord)
	INTO bodies
	FROM unnest(p_ids, p_types, p_data, p_metadata, p_recorded_at)
		WITH ORDINALITY AS b(id, type, data, metadata, recorded_at, ord);
	FOREACH body IN ARRAY bodies LOOP
		prev_hash := orderledger_event_hash(prev_hash, body);
		hashes := hashes || prev_hash;
	END LOOP;

	-- ORDER BY keeps positions in version order within the batch.
	INSERT INTO events (stream, version, id, type, data, metadata, recorded_at, hash)
	SELECT p_stream, last_version + b.ord, b.id, b.type, b.data, b.metadata, b.recorded_at, b.hash
	FROM unnest(p_ids, p_types, p_data, p_metadata, p_recorded_at, hashes)
		WITH ORDINALITY AS b(id, type, data, metadata, recorded_at, hash, ord)
	ORDER BY b.ord;

	outcome := 0;
	last_version := last_version + n;
	last_xid := pg_current_xact_id();
	last_position := currval('events_position_seq');
END
$fn$;
`,

	// Version 2: orderledger_append_group, which group commit (lane.go) uses to apply the
	// appends queued meanwhile in one round trip and one transaction.
	//
	// The appends come in arrival order as parallel arrays: p_streams and p_expected, one entry
	// per append, and p_offsets, the index in the event arrays of each append's first event (an
	// append's events run up to the next one's first). It returns one row per append, in that
	// order, with the outcomes of orderledger_append and one more:
	//   outcome 4 (batches only) a later event of the batch, not its first, is already stored.
	// Each append is judged on its own against its stream as the appends before it in the group
	// left it, by the rules of orderledger_append_one and orderledger_append: a refusal writes
	// nothing and leaves the others in place. Every refusal is found by a read before any insert,
	// since a failed statement would abort the whole group.
	//
	// Every stream lock is taken before the first insert, because the transaction id, which
	// leads the global order, is assigned at the first insert: it must come after every earlier
	// append to each of the group's streams has committed, or one stream's later events would
	// sort before its earlier ones. The locks are taken in key order, so that groups sharing
	// streams cannot deadlock.
	//
	// The common append, a single event to a stream that no other append of the group touches
	// (a solo append), is applied with all the others like it in one statement, which costs a
	// fraction of a statement each; the rest go one at a time, in arrival order. Solo appends
	// touch streams of their own, so applying them last changes no outcome.
	`
CREATE FUNCTION orderledger_append_group(
	p_streams text[], p_expected bigint[], p_offsets int[],
	p_ids uuid[], p_types text[], p_data bytea[], p_metadata bytea[], p_recorded_at timestamptz[])
RETURNS TABLE (outcome int, last_version bigint, last_xid xid8, last_position bigint)
LANGUAGE plpgsql
-- Planned for the arrays' sizes, the statements would be planned again at every call.
SET plan_cache_mode = force_generic_plan
AS $fn$
DECLARE
	lock_key   int;
	locked     text;
	solo       int[];
	rest       int[];
	-- The answers to the appends in rest, by arrival index.
	o_outcome  int[];
	o_version  bigint[];
	o_xid      xid8[];
	o_position bigint[];
	i          int;
	a_stream   text;
	a_expected bigint;
	a_ids      uuid[];
	a_first    int;
	a_last     int;
	head       bigint;
	retried_at bigint;
	-- Where a retried append's last event is.
	retried_xid      xid8;
	retried_position bigint;
	prev_hash  bytea;
	bodies     bytea[];
	body       bytea;
	hashes     bytea[];
BEGIN
	FOREACH lock_key IN ARRAY (SELECT array_agg(DISTINCT hashtext(s) ORDER BY hashtext(s)) FROM unnest(p_streams) AS s) LOOP
		locked := pg_advisory_xact_lock(` + fmt.Sprint(streamLockSpace) + `, lock_key)::text;
	END LOOP;

	SELECT coalesce(array_agg(g.ord ORDER BY g.ord) FILTER (WHERE g.solo), '{}'),
		coalesce(array_agg(g.ord ORDER BY g.ord) FILTER (WHERE NOT g.solo), '{}')
	INTO solo, rest
	FROM (
		SELECT u.ord::int AS ord,
			coalesce(p_offsets[u.ord + 1], cardinality(p_ids) + 1) - u.first = 1
				AND count(*) OVER (PARTITION BY u.stream) = 1 AS solo
		FROM unnest(p_streams, p_offsets) WITH ORDINALITY AS u(stream, first, ord)
	) AS g;

	FOREACH i IN ARRAY rest LOOP
		a_stream := p_streams[i];
		a_expected := p_expected[i];
		a_first := p_offsets[i];
		a_last := coalesce(p_offsets[i + 1], cardinality(p_ids) + 1) - 1;
		a_ids := p_ids[a_first:a_last];

		-- A stored first event makes the append a retry if the stream holds exactly its events
		-- from there on, and a partial repeat otherwise.
		SELECT e.version INTO retried_at FROM events e WHERE e.id = a_ids[1] AND e.stream = a_stream;
		IF FOUND THEN
			head := retried_at + cardinality(a_ids) - 1;
			IF (SELECT array_agg(e.id ORDER BY e.version) FROM events e
			    WHERE e.stream = a_stream AND e.version BETWEEN retried_at AND head) IS DISTINCT FROM a_ids THEN
				o_outcome[i] := 3;
				o_version[i] := head;
			ELSE
				SELECT e.xid, e.position INTO retried_xid, retried_position
				FROM events e WHERE e.stream = a_stream AND e.version = head;
				o_outcome[i] := 1;
				o_version[i] := head;
				o_xid[i] := retried_xid;
				o_position[i] := retried_position;
			END IF;
			CONTINUE;
		END IF;

		SELECT e.version, e.hash INTO head, prev_hash FROM events e
		WHERE e.stream = a_stream ORDER BY e.version DESC LIMIT 1;
		IF NOT FOUND THEN
			head := -1;
			prev_hash := '\x0000000000000000000000000000000000000000000000000000000000000000';
		END IF;
		IF NOT (a_expected = head OR a_expected = -2 OR (a_expected = -3 AND head >= 0)) THEN
			o_outcome[i] := 2;
			o_version[i] := head;
			CONTINUE;
		END IF;
		IF cardinality(a_ids) > 1 AND EXISTS (SELECT FROM events e WHERE e.stream = a_stream AND e.id = ANY (a_ids)) THEN
			o_outcome[i] := 4;
			o_version[i] := head;
			CONTINUE;
		END IF;

		SELECT array_agg(orderledger_event_body(head + b.ord, a_stream, b.id, b.type, b.recorded_at,
			b.metadata, b.data) ORDER BY b.ord)
		INTO bodies
		FROM unnest(a_ids, p_types[a_first:a_last], p_data[a_first:a_last], p_metadata[a_first:a_last],
			p_recorded_at[a_first:a_last]) WITH ORDINALITY AS b(id, type, data, metadata, recorded_at, ord);
		hashes := '{}';
		FOREACH body IN ARRAY bodies LOOP
			prev_hash := orderledger_event_hash(prev_hash, body);
			hashes := hashes || prev_hash;
		END LOOP;

		INSERT INTO events (stream, version, id, type, data, metadata, recorded_at, hash)
		SELECT a_stream, head + b.ord, b.id, b.type, b.data, b.metadata, b.recorded_at, b.hash
		FROM unnest(a_ids, p_types[a_first:a_last], p_data[a_first:a_last], p_metadata[a_first:a_last],
			p_recorded_at[a_first:a_last], hashes) WITH ORDINALITY AS b(id, type, data, metadata, recorded_at, hash, ord)
		ORDER BY b.ord;
		o_outcome[i] := 0;
		o_version[i] := head + cardinality(a_ids);
		o_xid[i] := pg_current_xact_id();
		o_position[i] := currval('events_position_seq');
	END LOOP;

	-- The solo appends, each as orderledger_append_one would, and every answer in arrival order.
	-- The statement's snapshot does not see its own inserts, so stored finds only events stored
	-- before: a retry.
	RETURN QUERY
	WITH s AS (
		SELECT u.ord, u.stream, u.expected, p_ids[u.first] AS id, p_types[u.first] AS type,
			p_data[u.first] AS data, p_metadata[u.first] AS metadata, p_recorded_at[u.first] AS recorded_at,
			coalesce(tip.version, -1) AS head,
			coalesce(tip.hash, '\x0000000000000000000000000000000000000000000000000000000000000000') AS head_hash,
			stored.version AS stored_version, stored.xid AS stored_xid, stored.position AS stored_position
		FROM unnest(p_streams, p_expected, p_offsets) WITH ORDINALITY AS u(stream, expected, first, ord)
		LEFT JOIN LATERAL (
			SELECT e.version, e.hash FROM events e WHERE e.stream = u.stream ORDER BY e.version DESC LIMIT 1
		) AS tip ON true
		LEFT JOIN LATERAL (
			SELECT e.version, e.xid, e.position FROM events e WHERE e.id = p_ids[u.first] AND e.stream = u.stream
		) AS stored ON true
		WHERE u.ord = ANY (solo)
	), inserted AS (
		INSERT INTO events (stream, version, id, type, data, metadata, recorded_at, hash)
		SELECT s.stream, s.head + 1, s.id, s.type, s.data, s.metadata, s.recorded_at,
			orderledger_event_hash(s.head_hash,
				orderledger_event_body(s.head + 1, s.stream, s.id, s.type, s.recorded_at, s.metadata, s.data))
		FROM s
		WHERE s.stored_version IS NULL
			AND (s.expected = s.head OR s.expected = -2 OR (s.expected = -3 AND s.head >= 0))
		ORDER BY s.ord
		RETURNING events.stream, events.version, events.xid, events.position
	)
	SELECT
		CASE WHEN s.ord IS NULL THEN o_outcome[n.ord]
			WHEN ins.stream IS NOT NULL THEN 0 WHEN s.stored_version IS NOT NULL THEN 1 ELSE 2 END,
		CASE WHEN s.ord IS NULL THEN o_version[n.ord] ELSE coalesce(ins.version, s.stored_version, s.head) END,
		CASE WHEN s.ord IS NULL THEN o_xid[n.ord] ELSE coalesce(ins.xid, s.stored_xid) END,
		CASE WHEN s.ord IS NULL THEN o_position[n.ord] ELSE coalesce(ins.position, s.stored_position) END
	FROM generate_series(1, cardinality(p_streams)) AS n(ord)
	LEFT JOIN s ON s.ord = n.ord
	LEFT JOIN inserted AS ins ON ins.stream = s.stream
	ORDER BY n.ord;
END
$fn$;
`,

	// Version 3: orderledger_append_group as in version 2, but for the LIMIT on the lookup of a
	// solo append's event among those stored. Without it the planner pulls that lookup up into
	// a join, and the generic plan the function is held to, made once per connection and
	// typically while the table is still small, joins by hashing the whole events table: a
	// sequential scan per group, whose cost grew with the log until a group of 16 appends took
	// 20ms at 20k events. Kept in a lateral subquery of its own, the lookup is one probe of
	// events_stream_id_key per append, whatever the table's size or statistics.
	`
CREATE OR REPLACE FUNCTION orderledger_append_group(
	p_streams text[], p_expected bigint[], p_offsets int[],
	p_ids uuid[], p_types text[], p_data bytea[], p_metadata bytea[], p_recorded_at timestamptz[])
RETURNS TABLE (outcome int, last_version bigint, last_xid xid8, last_position bigint)
LANGUAGE plpgsql
-- Planned for the arrays' sizes, the statements would be planned again at every call.
SET plan_cache_mode = force_generic_plan
AS $fn$
DECLARE
	lock_key   int;
	locked     text;
	solo       int[];
	rest       int[];
	-- The answers to the appends in rest, by arrival index.
	o_outcome  int[];
	o_version  bigint[];
	o_xid      xid8[];
	o_position bigint[];
	i          int;
	a_stream   text;
	a_expected bigint;
	a_ids      uuid[];
	a_first    int;
	a_last     int;
	head       bigint;
	retried_at bigint;
	-- Where a retried append's last event is.
	retried_xid      xid8;
	retried_position bigint;
	prev_hash  bytea;
	bodies     bytea[];
	body       bytea;
	hashes     bytea[];
BEGIN
	FOREACH lock_key IN ARRAY (SELECT array_agg(DISTINCT hashtext(s) ORDER BY hashtext(s)) FROM unnest(p_streams) AS s) LOOP
		locked := pg_advisory_xact_lock(` + fmt.Sprint(streamLockSpace) + `, lock_key)::text;
	END LOOP;

	SELECT coalesce(array_agg(g.ord ORDER BY g.ord) FILTER (WHERE g.solo), '{}'),
		coalesce(array_agg(g.ord ORDER BY g.ord) FILTER (WHERE NOT g.solo), '{}')
	INTO solo, rest
	FROM (
		SELECT u.ord::int AS ord,
			coalesce(p_offsets[u.ord + 1], cardinality(p_ids) + 1) - u.first = 1
				AND count(*) OVER (PARTITION BY u.stream) = 1 AS solo
		FROM unnest(p_streams, p_offsets) WITH ORDINALITY AS u(stream, first, ord)
	) AS g;

	FOREACH i IN ARRAY rest LOOP
		a_stream := p_streams[i];
		a_expected := p_expected[i];
		a_first := p_offsets[i];
		a_last := coalesce(p_offsets[i + 1], cardinality(p_ids) + 1) - 1;
		a_ids := p_ids[a_first:a_last];

		-- A stored first event makes the append a retry if the stream holds exactly its events
		-- from there on, and a partial repeat otherwise.
		SELECT e.version INTO retried_at FROM events e WHERE e.id = a_ids[1] AND e.stream = a_stream;
		IF FOUND THEN
			head := retried_at + cardinality(a_ids) - 1;
			IF (SELECT array_agg(e.id ORDER BY e.version) FROM events e
			    WHERE e.stream = a_stream AND e.version BETWEEN retried_at AND head) IS DISTINCT FROM a_ids THEN
				o_outcome[i] := 3;
				o_version[i] := head;
			ELSE
				SELECT e.xid, e.position INTO retried_xid, retried_position
				FROM events e WHERE e.stream = a_stream AND e.version = head;
				o_outcome[i] := 1;
				o_version[i] := head;
				o_xid[i] := retried_xid;
				o_position[i] := retried_position;
			END IF;
			CONTINUE;
		END IF;

		SELECT e.version, e.hash INTO head, prev_hash FROM events e
		WHERE e.stream = a_stream ORDER BY e.version DESC LIMIT 1;
		IF NOT FOUND THEN
			head := -1;
			prev_hash := '\x0000000000000000000000000000000000000000000000000000000000000000';
		END IF;
		IF NOT (a_expected = head OR a_expected = -2 OR (a_expected = -3 AND head >= 0)) THEN
			o_outcome[i] := 2;
			o_version[i] := head;
			CONTINUE;
		END IF;
		IF cardinality(a_ids) > 1 AND EXISTS (SELECT FROM events e WHERE e.stream = a_stream AND e.id = ANY (a_ids)) THEN
			o_outcome[i] := 4;
			o_version[i] := head;
			CONTINUE;
		END IF;

		SELECT array_agg(orderledger_event_body(head + b.ord, a_stream, b.id, b.type, b.recorded_at,
			b.metadata, b.data) ORDER BY b.ord)
		INTO bodies
		FROM unnest(a_ids, p_types[a_first:a_last], p_data[a_first:a_last], p_metadata[a_first:a_last],
			p_recorded_at[a_first:a_last]) WITH ORDINALITY AS b(id, type, data, metadata, recorded_at, ord);
		hashes := '{}';
		FOREACH body IN ARRAY bodies LOOP
			prev_hash := orderledger_event_hash(prev_hash, body);
			hashes := hashes || prev_hash;
		END LOOP;

		INSERT INTO events (stream, version, id, type, data, metadata, recorded_at, hash)
		SELECT a_stream, head + b.ord, b.id, b.type, b.data, b.metadata, b.recorded_at, b.hash
		FROM unnest(a_ids, p_types[a_first:a_last], p_data[a_first:a_last], p_metadata[a_first:a_last],
			p_recorded_at[a_first:a_last], hashes) WITH ORDINALITY AS b(id, type, data, metadata, recorded_at, hash, ord)
		ORDER BY b.ord;
		o_outcome[i] := 0;
		o_version[i] := head + cardinality(a_ids);
		o_xid[i] := pg_current_xact_id();
		o_position[i] := currval('events_position_seq');
	END LOOP;

	-- The solo appends, each as orderledger_append_one would, and every answer in arrival order.
	-- The statement's snapshot does not see its own inserts, so stored finds only events stored
	-- before: a retry.
	RETURN QUERY
	WITH s AS (
		SELECT u.ord, u.stream, u.expected, p_ids[u.first] AS id, p_types[u.first] AS type,
			p_data[u.first] AS data, p_metadata[u.first] AS metadata, p_recorded_at[u.first] AS recorded_at,
			coalesce(tip.version, -1) AS head,
			coalesce(tip.hash, '\x0000000000000000000000000000000000000000000000000000000000000000') AS head_hash,
			stored.version AS stored_version, stored.xid AS stored_xid, stored.position AS stored_position
		FROM unnest(p_streams, p_expected, p_offsets) WITH ORDINALITY AS u(stream, expected, first, ord)
		LEFT JOIN LATERAL (
			SELECT e.version, e.hash FROM events e WHERE e.stream = u.stream ORDER BY e.version DESC LIMIT 1
		) AS tip ON true
		LEFT JOIN LATERAL (
			SELECT e.version, e.xid, e.position FROM events e WHERE e.id = p_ids[u.first] AND e.stream = u.stream
			LIMIT 1
		) AS stored ON true
		WHERE u.ord = ANY (solo)
	), inserted AS (
		INSERT INTO events (stream, version, id, type, data, metadata, recorded_at, hash)
		SELECT s.stream, s.head + 1, s.id, s.type, s.data, s.metadata, s.recorded_at,
			orderledger_event_hash(s.head_hash,
				orderledger_event_body(s.head + 1, s.stream, s.id, s.type, s.recorded_at, s.metadata, s.data))
		FROM s
		WHERE s.stored_version IS NULL
			AND (s.expected = s.head OR s.expected = -2 OR (s.expected = -3 AND s.head >= 0))
		ORDER BY s.ord
		RETURNING events.stream, events.version, events.xid, events.position
	)
	SELECT
		CASE WHEN s.ord IS NULL THEN o_outcome[n.ord]
			WHEN ins.stream IS NOT NULL THEN 0 WHEN s.stored_version IS NOT NULL THEN 1 ELSE 2 END,
		CASE WHEN s.ord IS NULL THEN o_version[n.ord] ELSE coalesce(ins.version, s.stored_version, s.head) END,
		CASE WHEN s.ord IS NULL THEN o_xid[n.ord] ELSE coalesce(ins.xid, s.stored_xid) END,
		CASE WHEN s.ord IS NULL THEN o_position[n.ord] ELSE coalesce(ins.position, s.stored_position) END
	FROM generate_series(1, cardinality(p_streams)) AS n(ord)
	LEFT JOIN s ON s.ord = n.ord
	LEFT JOIN inserted AS ins ON ins.stream = s.stream
	ORDER BY n.ord;
END
$fn$;
`,

	// Version 4: snapshots of long streams' folded state, beside the log and outside its hash
	// chains (see eventstore.Snapshot): one row per stream, replaced as the stream grows.
	`
CREATE TABLE snapshots (
	stream   text   PRIMARY KEY,
	version  bigint NOT NULL CHECK (version >= 0),
	event_id uuid   NOT NULL,
	schema   text   NOT NULL,
	state    bytea  NOT NULL
);
`,
}

// migrate creates or upgrades the schema to the version reached by steps (migrations, or in
// tests a prefix of it, to make a database as an older release left it). Two processes opening
// the same database at once serialise on SchemaLockKey, so the second finds the work done.
func migrate(ctx context.Context, pool *pgxpool.Pool, steps []string) error {
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
		if version > len(steps) {
			return fmt.Errorf("schema version %d is newer than this program knows (%d)", version, len(steps))
		}
		for v := version; v < len(steps); v++ {
			if _, err := tx.Exec(ctx, steps[v]); err != nil {
				return fmt.Errorf("migrate to version %d: %w", v+1, err)
			}
		}
		_, err = tx.Exec(ctx, `INSERT INTO schema_migrations (component, version) VALUES ($1, $2)
			ON CONFLICT (component) DO UPDATE SET version = EXCLUDED.version`, schemaComponent, len(steps))
		return err
	})
}
