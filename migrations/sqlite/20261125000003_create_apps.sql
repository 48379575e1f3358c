-- Collectives' swarms, their apps, and the deploy jobs that change them.

CREATE TABLE servers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    collective_id BIGINT NOT NULL REFERENCES collectives (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    -- unix | tcp | ssh
    kind TEXT NOT NULL,
    -- a socket path, host:port, or user@host[:port]
    address TEXT NOT NULL,
    tls_ca TEXT,
    tls_cert TEXT,
    -- Sealed with the instance key: the TLS client key or the SSH private key.
    private_key_enc BLOB,
    engine_version TEXT,
    api_version TEXT,
    is_manager BIGINT NOT NULL DEFAULT 0,
    nodes BIGINT NOT NULL DEFAULT 0,
    last_checked_at BIGINT,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    UNIQUE (collective_id, name)
);

CREATE TABLE apps (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    collective_id BIGINT NOT NULL REFERENCES collectives (id) ON DELETE CASCADE,
    server_id BIGINT NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    recipe_id BIGINT NOT NULL REFERENCES recipes (id),
    domain TEXT NOT NULL,
    stack_name TEXT NOT NULL,
    -- The app's env file, exactly as abra keeps it (round-trips byte for byte).
    env TEXT NOT NULL,
    -- The version running (a tag), or NULL before the first deploy.
    version TEXT,
    chaos BIGINT NOT NULL DEFAULT 0,
    chaos_version TEXT,
    -- new | deployed | undeployed | failed
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    deployed_at BIGINT,
    UNIQUE (server_id, domain),
    UNIQUE (server_id, stack_name)
);

CREATE TABLE jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    app_id BIGINT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    collective_id BIGINT NOT NULL,
    -- deploy | upgrade | rollback | redeploy | chaos | undeploy
    kind TEXT NOT NULL,
    -- queued | running | succeeded | failed
    state TEXT NOT NULL,
    requested_by BIGINT,
    requested_by_name TEXT NOT NULL,
    target_version TEXT,
    options TEXT NOT NULL DEFAULT '{}',
    attempts BIGINT NOT NULL DEFAULT 0,
    result TEXT,
    created_at BIGINT NOT NULL,
    started_at BIGINT,
    finished_at BIGINT
);
-- At most one unfinished job per app.
CREATE UNIQUE INDEX jobs_one_active_per_app ON jobs (app_id) WHERE state IN ('queued', 'running');
CREATE INDEX jobs_state ON jobs (state);

CREATE TABLE job_events (
    job_id BIGINT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    at BIGINT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (job_id, seq)
);
