-- Version 4: snapshots of long streams' folded state, beside the log and outside its hash
-- chains (see eventstore.Snapshot): one row per stream, replaced as the stream grows.
CREATE TABLE snapshots (
	stream   text   PRIMARY KEY,
	version  bigint NOT NULL CHECK (version >= 0),
	event_id uuid   NOT NULL,
	schema   text   NOT NULL,
	state    bytea  NOT NULL
);
