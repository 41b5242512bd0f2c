-- 2: snapshots of long streams' folded state, beside the log and outside its hash chains
-- (see eventstore.Snapshot): one row per stream, replaced as the stream grows.
CREATE TABLE snapshots (
	stream   TEXT    PRIMARY KEY,
	version  INTEGER NOT NULL CHECK (version >= 0),
	event_id BLOB    NOT NULL CHECK (length(event_id) = 16),
	schema   TEXT    NOT NULL,
	state    BLOB    NOT NULL
) STRICT;
