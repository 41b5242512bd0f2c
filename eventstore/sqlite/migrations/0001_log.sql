-- 1: the log. position is the rowid, which a single writer hands out in commit order.
-- recorded_at is microseconds since the Unix epoch; metadata is eventstore.EncodeMetadata's
-- bytes, which the hash covers. The triggers make the log append-only for every connection.
CREATE TABLE events (
	position    INTEGER PRIMARY KEY,
	stream      TEXT    NOT NULL,
	version     INTEGER NOT NULL CHECK (version >= 0),
	id          BLOB    NOT NULL CHECK (length(id) = 16),
	type        TEXT    NOT NULL,
	data        BLOB    NOT NULL,
	metadata    BLOB    NOT NULL,
	recorded_at INTEGER NOT NULL,
	hash        BLOB    NOT NULL CHECK (length(hash) = 32),
	UNIQUE (stream, version)
) STRICT;
CREATE UNIQUE INDEX events_stream_id ON events (stream, id);
CREATE TRIGGER events_refuse_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'events are immutable: UPDATE refused'); END;
CREATE TRIGGER events_refuse_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'events are immutable: DELETE refused'); END;
