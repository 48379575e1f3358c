-- Nothing to change on PostgreSQL: an append moves the head in its own statement (a
-- data-modifying WITH), where SQLite needs the trigger of this migration (see domain/audit.rs).
SELECT 1;
