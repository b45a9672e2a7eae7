-- The audit log's two lookups, by agent and by time, leave the audit table. As its indexes they
-- cost every commit of the token path a page each (the leaf the new entries go to), written to
-- the WAL and copied back — with many agents, a page per agent in the batch. They now live in
-- a file of their own beside the database, filled in the background every 100 ms
-- (`src/store/audit_lookups.rs`); the first start after this migration fills it from the rows
-- already here.
DROP INDEX audit_events_agent;
DROP INDEX audit_events_at;
