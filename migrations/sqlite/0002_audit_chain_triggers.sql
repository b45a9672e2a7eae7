-- The audit chain's head advances with every inserted event, inside the INSERT itself, and an
-- event that does not continue the head is refused: a writer appends a whole batch in one
-- statement (one round trip) and learns from a refusal that another writer moved the head.
CREATE TRIGGER audit_chain_check BEFORE INSERT ON audit_events
WHEN NEW.seq <> (SELECT last_seq + 1 FROM audit_head WHERE id = 1)
  OR NEW.prev_hash <> (SELECT last_hash FROM audit_head WHERE id = 1)
BEGIN
    SELECT RAISE(ABORT, 'audit chain head moved');
END;

CREATE TRIGGER audit_chain_advance AFTER INSERT ON audit_events
BEGIN
    UPDATE audit_head SET last_seq = NEW.seq, last_hash = NEW.hash WHERE id = 1;
END;
