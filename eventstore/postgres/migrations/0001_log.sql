-- Version 1: the log, its guards and the append functions.
--
-- The primary key (xid, position) is the global order readers follow, so it doubles as the
-- read index; UNIQUE (stream, version) orders each stream and is the last guard against two
-- writers taking the same version. UNIQUE (stream, id) finds a retried event with one probe
-- (on id alone, a planner without statistics may scan the stream's whole range beside it)
-- and guards the rule that an event ID is stored once per stream.
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
	locked := pg_advisory_xact_lock(1330398550, hashtext(p_stream))::text;

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
	locked := pg_advisory_xact_lock(1330398550, hashtext(p_stream))::text;

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
