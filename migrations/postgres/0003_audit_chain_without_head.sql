-- The audit chain needs no head row and no per-row trigger: `seq` is the primary key, and a
-- writer chains each batch on the last row it knows. Two replicas appending at once both try
-- the same next `seq`; the unique index makes the second wait for the first and then fail, and
-- it re-reads the last row and chains again.
DROP TRIGGER audit_chain ON audit_events;
DROP FUNCTION audit_chain_advance();
DROP TABLE audit_head;
