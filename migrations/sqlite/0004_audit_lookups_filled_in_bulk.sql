-- The audit log's two lookups, by agent and by time, leave the hot path. As indexes on
-- `audit_events` they cost every commit of the token path a page each (the leaf the new
-- entries go to), written to the WAL and copied back: about an eighth of the commit's work.
-- As tables, the writer fills them in bulk, every few tens of milliseconds, hundreds of rows
-- at a time (`sqlite_writer.rs`). `audit_indexed.upto` is the last `seq` they cover; reads
-- look the rest up in `audit_events` itself, so an event is found the moment it is committed.
DROP INDEX audit_events_agent;
DROP INDEX audit_events_at;

CREATE TABLE audit_by_agent (
    agent_id TEXT NOT NULL,
    seq      INTEGER NOT NULL,
    PRIMARY KEY (agent_id, seq)
) WITHOUT ROWID;

CREATE TABLE audit_by_time (
    at_ms BIGINT NOT NULL,
    seq   INTEGER NOT NULL,
    PRIMARY KEY (at_ms, seq)
) WITHOUT ROWID;

CREATE TABLE audit_indexed (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    upto INTEGER NOT NULL
);

INSERT INTO audit_by_agent (agent_id, seq)
    SELECT agent_id, seq FROM audit_events WHERE agent_id IS NOT NULL;
INSERT INTO audit_by_time (at_ms, seq) SELECT at_ms, seq FROM audit_events;
INSERT INTO audit_indexed (id, upto) SELECT 1, COALESCE(max(seq), 0) FROM audit_events;
