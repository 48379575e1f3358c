-- Batch upgrades (issue 9): apps of one recipe upgraded one after another, as jobs queued by a
-- runner that waits for each to end (and stops at the first failure when asked).
CREATE TABLE upgrade_batches (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    recipe_id BIGINT NOT NULL REFERENCES recipes (id) ON DELETE CASCADE,
    -- the version every app goes to
    target TEXT NOT NULL,
    stop_on_failure BIGINT NOT NULL,
    -- running | done | stopped
    state TEXT NOT NULL,
    -- moved on by every step of the runner: a replica acts only by moving this first
    seq BIGINT NOT NULL DEFAULT 0,
    created_by BIGINT,
    created_by_name TEXT NOT NULL,
    -- the request that started it (the jobs it queues are audited under it)
    request_id TEXT NOT NULL,
    client_addr TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    finished_at BIGINT
);
CREATE INDEX upgrade_batches_state ON upgrade_batches (state);

CREATE TABLE upgrade_batch_items (
    batch_id BIGINT NOT NULL REFERENCES upgrade_batches (id) ON DELETE CASCADE,
    position BIGINT NOT NULL,
    app_id BIGINT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    collective_id BIGINT NOT NULL,
    domain TEXT NOT NULL,
    from_version TEXT,
    job_id BIGINT,
    -- pending | running | succeeded | failed | skipped
    state TEXT NOT NULL,
    result TEXT,
    PRIMARY KEY (batch_id, position)
);
