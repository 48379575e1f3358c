-- Backups (issue 8): each collective's restic repositories, the snapshots Potluck took (only
-- after their checks passed), and what each app's backup labels cover.

CREATE TABLE backup_repos (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    collective_id BIGINT NOT NULL REFERENCES collectives (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    -- local: a directory under Potluck's backups_dir
    kind TEXT NOT NULL,
    -- as `restic -r` takes it
    location TEXT NOT NULL,
    -- The repository's password, sealed with the instance key.
    password_enc BLOB NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (collective_id, name)
);

CREATE TABLE backups (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    collective_id BIGINT NOT NULL REFERENCES collectives (id) ON DELETE CASCADE,
    app_id BIGINT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    repo_id BIGINT NOT NULL REFERENCES backup_repos (id) ON DELETE CASCADE,
    job_id BIGINT,
    snapshot_id TEXT NOT NULL,
    stack TEXT NOT NULL,
    -- manual | schedule | before-upgrade | drill
    reason TEXT NOT NULL,
    version TEXT,
    taken_at BIGINT NOT NULL,
    files BIGINT NOT NULL,
    bytes BIGINT NOT NULL,
    -- JSON: the paths the snapshot holds, and what its checks warned of
    paths TEXT NOT NULL,
    warnings TEXT NOT NULL DEFAULT '[]',
    UNIQUE (repo_id, snapshot_id)
);
CREATE INDEX backups_app ON backups (app_id, taken_at);

-- JSON: each volume's coverage, from the last deploy or backup.
ALTER TABLE apps ADD COLUMN backup_coverage TEXT;
