-- The audit chain's head advances with every inserted event, inside the INSERT itself, and an
-- event that does not continue the head is refused: a writer appends a whole batch in one
-- statement (one round trip); replicas serialise on the head row's lock and a writer that lost
-- the race learns it from the refusal, re-reads the head and chains again.
CREATE FUNCTION audit_chain_advance() RETURNS trigger AS $$
DECLARE
    head RECORD;
BEGIN
    SELECT last_seq, last_hash INTO head FROM audit_head WHERE id = 1 FOR UPDATE;
    IF NEW.seq <> head.last_seq + 1 OR NEW.prev_hash <> head.last_hash THEN
        RAISE EXCEPTION 'audit chain head moved' USING ERRCODE = '40001';
    END IF;
    UPDATE audit_head SET last_seq = NEW.seq, last_hash = NEW.hash WHERE id = 1;
    RETURN NEW;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER audit_chain BEFORE INSERT ON audit_events
FOR EACH ROW EXECUTE FUNCTION audit_chain_advance();
