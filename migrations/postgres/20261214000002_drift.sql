-- Changed outside Potluck: the stack's services as Potluck left them after its last job (JSON,
-- service name to the swarm's spec version), and what differs now (JSON, NULL when nothing).
ALTER TABLE apps ADD COLUMN deployed_services TEXT;
ALTER TABLE apps ADD COLUMN drift TEXT;
-- Objects of the stack another tool made (an abra deploy) that the app's operator took over
-- (JSON list of ids): Potluck touches them though they lack its labels.
ALTER TABLE apps ADD COLUMN adopted_objects TEXT;
-- The swarm a server's engine belongs to (its cluster id): two collectives' servers on one
-- swarm share its objects, and taking objects over is refused then.
ALTER TABLE servers ADD COLUMN swarm_id TEXT;
