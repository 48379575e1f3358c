-- Scheduled restore drills per collective (issue 8): on a cron pattern, the newest snapshot of
-- every app of the collective that has not passed a drill yet is drilled, one job per app.
CREATE TABLE drill_schedules (
    collective_id BIGINT PRIMARY KEY REFERENCES collectives (id) ON DELETE CASCADE,
    -- in UTC, as backup schedules take it
    cron TEXT NOT NULL,
    -- when it fires next (ms); a replica fires it only by moving this on first
    next_run_at BIGINT NOT NULL,
    last_run_at BIGINT,
    -- what its last round drilled, passed, failed and skipped, in words (or how far one is)
    last_result TEXT,
    -- the round under way (JSON: apps still to drill with their snapshots, the current job,
    -- outcomes so far); NULL between rounds
    round TEXT,
    -- moved on by every change of the round: a replica changes it only by moving this first
    round_seq BIGINT NOT NULL DEFAULT 0,
    set_by_name TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX drill_schedules_next ON drill_schedules (next_run_at);
