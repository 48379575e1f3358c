-- The tenant wall (issue 7).
-- A server's uid is random and never reused (row ids can be, after a rollback): engine clients
-- are cached by it. host_key: the pinned SSH host key lines (`<type> <base64>`). policy: what
-- deploys to it may ask of the host (JSON; the default allows nothing).
ALTER TABLE servers ADD COLUMN uid TEXT;
ALTER TABLE servers ADD COLUMN host_key TEXT;
ALTER TABLE servers ADD COLUMN policy TEXT NOT NULL DEFAULT '{}';
UPDATE servers SET uid = md5(random()::text || id::text) WHERE uid IS NULL;
CREATE UNIQUE INDEX servers_uid ON servers (uid);

-- Signed checkpoints of the audit chain's head: a truncated tail is found even by someone who
-- can write to the database (they cannot sign with the instance key).
CREATE TABLE audit_checkpoints (
    seq BIGINT PRIMARY KEY,
    hash TEXT NOT NULL,
    at BIGINT NOT NULL,
    signature TEXT NOT NULL
);
