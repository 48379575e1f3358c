-- Release review: a maintainer proposes a commit of a recipe's default branch as a new version;
-- maintainers of several collectives review it; Potluck tags and pushes it once approved.

CREATE TABLE release_proposals (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    recipe_id BIGINT NOT NULL REFERENCES recipes (id) ON DELETE CASCADE,
    -- The tag it will create.
    version TEXT NOT NULL,
    bump TEXT NOT NULL,
    -- The previous release it is compared with (none for a first release).
    base_version TEXT,
    -- The reviewed commit (full hex) on the default branch; a new commit resets approvals.
    commit_id TEXT NOT NULL,
    notes TEXT NOT NULL,
    -- open | published | withdrawn
    state TEXT NOT NULL,
    proposed_by BIGINT NOT NULL REFERENCES users (id),
    proposed_by_name TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    published_at BIGINT,
    published_commit TEXT,
    publish_error TEXT
);
-- One open proposal per version, and a version is published once.
CREATE UNIQUE INDEX release_proposals_open_version ON release_proposals (recipe_id, version) WHERE state = 'open';
CREATE UNIQUE INDEX release_proposals_published_version ON release_proposals (recipe_id, version) WHERE state = 'published';

CREATE TABLE release_reviews (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    proposal_id BIGINT NOT NULL REFERENCES release_proposals (id) ON DELETE CASCADE,
    user_id BIGINT NOT NULL REFERENCES users (id),
    user_name TEXT NOT NULL,
    -- The collective the reviewer maintains the recipe through (for the policy's count).
    collective_id BIGINT REFERENCES collectives (id) ON DELETE SET NULL,
    collective_slug TEXT,
    -- approve | request_changes | comment
    verdict TEXT NOT NULL,
    comment TEXT NOT NULL,
    commit_id TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX release_reviews_proposal ON release_reviews (proposal_id);
