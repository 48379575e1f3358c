-- The recipe store: recipes registered by git URL, kept as bare clones under <data_dir>/recipes.

CREATE TABLE recipes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    repository TEXT NOT NULL,
    default_branch TEXT NOT NULL DEFAULT '',
    -- Sealed with the instance key (push credentials: a token or an SSH key); never shown again.
    credential_enc BLOB,
    credential_kind TEXT,
    created_by BIGINT,
    created_at BIGINT NOT NULL,
    last_fetched_at BIGINT,
    fetch_error TEXT,
    -- Approval policy for releases: approvals needed, from how many different collectives.
    required_approvals BIGINT NOT NULL DEFAULT 2,
    required_collectives BIGINT NOT NULL DEFAULT 2
);

-- Maintainers: a person (user_id) or a whole collective (collective_id; its maintainers and above).
CREATE TABLE recipe_maintainers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    recipe_id BIGINT NOT NULL REFERENCES recipes (id) ON DELETE CASCADE,
    user_id BIGINT REFERENCES users (id) ON DELETE CASCADE,
    collective_id BIGINT REFERENCES collectives (id) ON DELETE CASCADE,
    added_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX recipe_maintainers_user ON recipe_maintainers (recipe_id, user_id);
CREATE UNIQUE INDEX recipe_maintainers_collective ON recipe_maintainers (recipe_id, collective_id);
