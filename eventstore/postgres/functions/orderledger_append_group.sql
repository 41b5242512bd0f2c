-- A repeatable migration: applied after the numbered ones each time a store opens, so that the
-- function is always this text and a change to it is an edit of this file. Versions 2 and 3
-- of the schema created it (3 added the LIMIT on the lookup of a solo append's stored event,
-- noted below); their numbered files are now empty.
--
-- orderledger_append_group, which group commit (lane.go) uses to apply the
-- appends queued meanwhile in one round trip and one transaction.
--
-- The appends come in arrival order as parallel arrays: p_streams and p_expected, one entry
-- per append, and p_offsets, the index in the event arrays of each append's first event (an
-- append's events run up to the next one's first). It returns one row per append, in that
-- order, with the outcomes of orderledger_append and one more:
-- outcome 4 (batches only) a later event of the batch, not its first, is already stored.
-- Each append is judged on its own against its stream as the appends before it in the group
-- left it, by the rules of orderledger_append_one and orderledger_append: a refusal writes
-- nothing and leaves the others in place. Every refusal is found by a read before any insert,
-- since a failed statement would abort the whole group.
--
-- Every stream lock is taken before the first insert, because the transaction id, which
-- leads the global order, is assigned at the first insert: it must come after every earlier
-- append to each of the group's streams has committed, or one stream's later events would
-- sort before its earlier ones. The locks are taken in key order, so that groups sharing
-- streams cannot deadlock.
--
-- The common append, a single event to a stream that no other append of the group touches
-- (a solo append), is applied with all the others like it in one statement, which costs a
-- fraction of a statement each; the rest go one at a time, in arrival order. Solo appends
-- touch streams of their own, so applying them last changes no outcome.
--
-- The lookup of a solo append's event among those stored has a LIMIT: without it the planner
-- pulls that lookup up into a join, and the generic plan the function is held to, made once
-- per connection and typically while the table is still small, joins by hashing the whole
-- events table: a sequential scan per group, whose cost grew with the log until a group of 16
-- appends took 20ms at 20k events. Kept in a lateral subquery of its own, the lookup is one
-- probe of events_stream_id_key per append, whatever the table's size or statistics.
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
		locked := pg_advisory_xact_lock(1330398550, lock_key)::text;
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
			-- The stream's events from retried_at to head, read backwards from head in version
			-- order with a LIMIT, the shape the generic plan serves from events_stream_version_key.
			-- Written as a version range or an equality, the plan made while streams hold an
			-- event or two each takes events_stream_id_key on the stream alone and filters by
			-- version: a read of the whole stream (see the check for stored IDs below).
			IF (SELECT array_agg(x.id ORDER BY x.version)
			    FROM (SELECT e.id, e.version FROM events e WHERE e.stream = a_stream AND e.version <= head
			          ORDER BY e.version DESC LIMIT cardinality(a_ids)) AS x
			    WHERE x.version >= retried_at) IS DISTINCT FROM a_ids THEN
				o_outcome[i] := 3;
				o_version[i] := head;
			ELSE
				SELECT e.xid, e.position INTO retried_xid, retried_position
				FROM events e WHERE e.stream = a_stream AND e.version <= head ORDER BY e.version DESC LIMIT 1;
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
		-- One probe per ID, each kept in a lateral subquery with a LIMIT (see the solo lookup
		-- below): written as e.id = ANY (a_ids), the generic plan made while streams hold a few
		-- events each reads the stream's every event and filters by ID, so each batch to a busy
		-- stream cost as much as the stream was long.
		IF cardinality(a_ids) > 1 AND EXISTS (
			SELECT FROM unnest(a_ids) AS x(id)
			CROSS JOIN LATERAL (SELECT FROM events e WHERE e.stream = a_stream AND e.id = x.id LIMIT 1) AS hit
		) THEN
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
