-- Backup schedules and restore drills (issue 8): per app, a cron pattern, the repository its
-- snapshots go to, and restic's keep rules applied to the snapshots the schedule took (the
-- scheduler fires them); and the last restore drill of each snapshot.

CREATE TABLE backup_schedules (
    app_id INTEGER PRIMARY KEY REFERENCES apps (id) ON DELETE CASCADE,
    collective_id BIGINT NOT NULL REFERENCES collectives (id) ON DELETE CASCADE,
    repo_id BIGINT NOT NULL REFERENCES backup_repos (id) ON DELETE CASCADE,
    -- as backup-bot-two's CRON_SCHEDULE takes it, in UTC (an optional leading seconds field)
    cron TEXT NOT NULL,
    -- JSON: {"last":0,"hourly":0,"daily":7,"weekly":4,"monthly":6,"yearly":0}
    keep TEXT NOT NULL,
    -- when it fires next (ms); a replica fires it only by moving this on first
    next_run_at BIGINT NOT NULL,
    last_run_at BIGINT,
    last_job_id BIGINT,
    last_result TEXT,
    set_by_name TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX backup_schedules_next ON backup_schedules (next_run_at);
-- 1: each snapshot the schedule takes is restore-drilled
ALTER TABLE backup_schedules ADD COLUMN drill BIGINT NOT NULL DEFAULT 0;

-- Restore drills (issue 8): the last drill of a snapshot, kept with it.
ALTER TABLE backups ADD COLUMN drilled_at BIGINT;
-- 1 passed, 0 failed
ALTER TABLE backups ADD COLUMN drill_ok BIGINT;
ALTER TABLE backups ADD COLUMN drill_result TEXT;
ALTER TABLE backups ADD COLUMN drill_job_id BIGINT;
