-- Operator sync through git: per collective, a remote holding its apps in abra's layout
-- (`servers/<server>/<domain>.env`).
CREATE TABLE git_sync (
    collective_id INTEGER PRIMARY KEY REFERENCES collectives(id) ON DELETE CASCADE,
    url TEXT NOT NULL,
    branch TEXT NOT NULL,
    credential_kind TEXT,
    credential_enc BLOB,
    -- The webhook's shared secret, sealed (HMAC signatures need it in clear to check).
    webhook_enc BLOB NOT NULL,
    -- 1: remote changes to an existing app's env are applied as they arrive.
    auto_apply BIGINT NOT NULL DEFAULT 0,
    -- The remote's head at the last sync, and the newest audit event that sync accounted for.
    remote_head TEXT,
    audit_seq BIGINT NOT NULL DEFAULT 0,
    -- A sync is wanted (a webhook, a request) since then; the last one began and ended then.
    wanted_at BIGINT,
    started_at BIGINT,
    synced_at BIGINT,
    last_error TEXT,
    -- The sync running (a token of its own), until then; `generation` moves when the remote
    -- changes or sync stops, so a sync that began before cannot record into the new one.
    holder TEXT,
    generation BIGINT NOT NULL DEFAULT 0,
    lease_until BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- What both sides last agreed on, per file: the git blob id of its content.
CREATE TABLE git_sync_base (
    collective_id INTEGER NOT NULL REFERENCES collectives(id) ON DELETE CASCADE,
    path TEXT NOT NULL,
    blob TEXT NOT NULL,
    PRIMARY KEY (collective_id, path)
);

-- A change the remote has that Potluck has not taken: to an app's env (`change`), a new file
-- (`new`), a removed one (`removed`), or one Potluck changed too (`conflict`). Kept with the
-- remote's content and the commit that made it until an operator applies or rejects it (or
-- both sides agree again: `superseded`).
CREATE TABLE git_sync_incoming (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    collective_id INTEGER NOT NULL REFERENCES collectives(id) ON DELETE CASCADE,
    path TEXT NOT NULL,
    server TEXT NOT NULL,
    domain TEXT NOT NULL,
    kind TEXT NOT NULL,
    content TEXT,
    blob TEXT,
    -- Potluck's file (its blob) when the change was recorded: applying it replaces exactly that.
    base_blob TEXT,
    commit_id TEXT NOT NULL,
    author TEXT NOT NULL,
    summary TEXT NOT NULL,
    committed_at BIGINT NOT NULL,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    decided_by TEXT,
    decided_at BIGINT
);
CREATE INDEX git_sync_incoming_pending ON git_sync_incoming (collective_id, status, path);
