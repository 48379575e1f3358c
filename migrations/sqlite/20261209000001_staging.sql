-- Release CI (issue 9): servers the federation admin designates for staging runs, each run of a
-- proposal's commit (a throw-away install, the upgrade from the previous release, a smoke check
-- and a backup round trip), its log, and each recipe's test settings and publishing policy.
CREATE TABLE staging_servers (
    server_id BIGINT PRIMARY KEY REFERENCES servers (id) ON DELETE CASCADE,
    -- how many runs it takes at once
    max_runs BIGINT NOT NULL,
    designated_by_name TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE staging_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    recipe_id BIGINT NOT NULL REFERENCES recipes (id) ON DELETE CASCADE,
    proposal_id BIGINT NOT NULL REFERENCES release_proposals (id) ON DELETE CASCADE,
    -- the commit tested (full hex) and the version it will be published as
    commit_id TEXT NOT NULL,
    version TEXT NOT NULL,
    -- the release the upgrade path starts from (none for a first release)
    upgrade_from TEXT,
    -- queued | running | passed | failed | cancelled
    state TEXT NOT NULL,
    -- chosen when a staging server takes it
    server_id BIGINT REFERENCES servers (id) ON DELETE SET NULL,
    stack_name TEXT NOT NULL,
    requested_by_name TEXT NOT NULL,
    -- the runner holding it renews this; a run whose lease ran out was interrupted
    lease_until BIGINT,
    -- what failed, the failing service's task errors and last log lines, what was left behind
    failure TEXT,
    details TEXT NOT NULL DEFAULT '[]',
    left_behind TEXT NOT NULL DEFAULT '[]',
    created_at BIGINT NOT NULL,
    started_at BIGINT,
    finished_at BIGINT
);
CREATE INDEX staging_runs_state ON staging_runs (state);
CREATE INDEX staging_runs_proposal ON staging_runs (proposal_id);

CREATE TABLE staging_run_lines (
    run_id BIGINT NOT NULL REFERENCES staging_runs (id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    at BIGINT NOT NULL,
    text TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
);

-- KEY=VALUE lines over the recipe's .env.sample for its staging runs.
ALTER TABLE recipes ADD COLUMN test_env TEXT NOT NULL DEFAULT '';
-- {"kind": "http", "service", "port", "path"} | {"kind": "command", "service", "command"} | {}
ALTER TABLE recipes ADD COLUMN smoke_check TEXT NOT NULL DEFAULT '{}';
-- 1: a release is published only after a passed staging run of its current commit
ALTER TABLE recipes ADD COLUMN require_green_run BIGINT NOT NULL DEFAULT 0;
-- when the overdue-backup notice was sent for an app's schedule (once per overdue episode)
ALTER TABLE apps ADD COLUMN backup_overdue_since BIGINT;
