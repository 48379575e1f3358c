-- Live state (issue 10). The replica holding a server's monitor reads the swarm after the
-- engine's events (and every half minute) and writes what the pages show here; every replica's
-- pages and live streams read it, and follow `live_seq`, bumped at each change.
ALTER TABLE servers ADD COLUMN live_seq BIGINT NOT NULL DEFAULT 0;
-- JSON: nodes ready/total, services converged/total, tasks running/desired, events seen.
ALTER TABLE servers ADD COLUMN live_summary TEXT;

-- An app's tasks at a glance: running and desired tasks of its stack, tasks that failed or were
-- rejected in the last hour, and when that was read.
ALTER TABLE apps ADD COLUMN live_running BIGINT;
ALTER TABLE apps ADD COLUMN live_desired BIGINT;
ALTER TABLE apps ADD COLUMN live_restarts BIGINT;
ALTER TABLE apps ADD COLUMN live_at BIGINT;
