-- Recipe clones are per replica; the database says which branches and tags the newest fetch saw
-- (a digest of refs/heads/* and refs/tags/*). A replica whose clone differs fetches before it
-- reads, so the schedule fetches each recipe from its remote on one replica only.
ALTER TABLE recipes ADD COLUMN refs_digest TEXT;
