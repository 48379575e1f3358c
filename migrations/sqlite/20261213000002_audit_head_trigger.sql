-- An append is one statement (issue 10's benchmark: appends within 0.9x of plain inserts): the
-- event is inserted only after the head it names, and this trigger moves the head with it.
-- (PostgreSQL moves the head in the append's own statement; see domain/audit.rs.)
CREATE TRIGGER audit_head_follows AFTER INSERT ON audit_events
BEGIN
    UPDATE audit_head SET seq = NEW.seq, hash = NEW.hash WHERE id = 1;
END;
