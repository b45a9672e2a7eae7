-- The audit chain needs no head table and no per-row triggers: `seq` is unique, and a writer
-- chains each batch on the last row it knows, so a writer whose view is stale collides on `seq`
-- and the whole statement fails; it re-reads the last row and chains again. `seq` becomes the
-- rowid (INTEGER PRIMARY KEY), which saves a second B-tree per event.
DROP TRIGGER audit_chain_check;
DROP TRIGGER audit_chain_advance;
DROP TABLE audit_head;

CREATE TABLE audit_events_new (
    seq       INTEGER PRIMARY KEY,
    id        TEXT NOT NULL,
    at_ms     BIGINT NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    outcome   TEXT NOT NULL,
    agent_id  TEXT,
    reason    TEXT,
    detail    TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);
INSERT INTO audit_events_new
    SELECT seq, id, at_ms, actor, action, outcome, agent_id, reason, detail, prev_hash, hash
    FROM audit_events;
DROP TABLE audit_events;
ALTER TABLE audit_events_new RENAME TO audit_events;
CREATE INDEX audit_events_agent ON audit_events (agent_id, seq);
CREATE INDEX audit_events_at ON audit_events (at_ms);
