-- Several replicas on one database (issue 10). Each lease names the process holding it and is
-- renewed by it; what a dead replica held is taken over with a compare-and-set once its lease
-- has run out.

-- A running job: the replica running it.
ALTER TABLE jobs ADD COLUMN lease_until BIGINT;
ALTER TABLE jobs ADD COLUMN lease_holder TEXT;

-- A server's event-stream monitor: held by one replica at a time, which also records here whether
-- it is connected (the other replicas' pages read it from this row).
ALTER TABLE servers ADD COLUMN monitor_holder TEXT;
ALTER TABLE servers ADD COLUMN monitor_lease_until BIGINT;
ALTER TABLE servers ADD COLUMN monitor_connected BIGINT NOT NULL DEFAULT 0;

-- Sign-in attempts per client address over the last minute, counted by every replica alike.
CREATE TABLE login_attempts (
    client_addr TEXT NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX login_attempts_by_client ON login_attempts (client_addr, at);
