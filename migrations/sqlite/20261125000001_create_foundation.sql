-- Identity, collectives, sessions, tokens and the hash-chained audit log (SQLite).
-- Times are milliseconds since the Unix epoch; roles are lower-case role names.

CREATE TABLE users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    display_name TEXT NOT NULL,
    email TEXT,
    -- 0 or 1: sqlx's Any driver has no boolean that both backends share.
    is_federation_admin BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    last_login_at BIGINT
);

CREATE TABLE identity_providers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    display_name TEXT NOT NULL,
    issuer_url TEXT NOT NULL UNIQUE,
    client_id TEXT NOT NULL,
    client_secret_enc BLOB NOT NULL,
    groups_claim TEXT NOT NULL,
    end_session_endpoint TEXT,
    created_at BIGINT NOT NULL
);

CREATE TABLE collectives (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    slug TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE provider_collectives (
    provider_id BIGINT NOT NULL REFERENCES identity_providers (id) ON DELETE CASCADE,
    collective_id BIGINT NOT NULL REFERENCES collectives (id) ON DELETE CASCADE,
    PRIMARY KEY (provider_id, collective_id)
);

CREATE TABLE identities (
    provider_id BIGINT NOT NULL REFERENCES identity_providers (id) ON DELETE CASCADE,
    subject TEXT NOT NULL,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    email TEXT,
    name TEXT,
    groups TEXT NOT NULL DEFAULT '[]',
    last_login_at BIGINT,
    PRIMARY KEY (provider_id, subject)
);
CREATE INDEX identities_user ON identities (user_id);

-- source: 'manual' (granted by an admin or an invitation; provider_id 0) or 'idp' (from the
-- groups claim of provider_id at the last sign-in). The effective role is the highest row.
CREATE TABLE memberships (
    collective_id BIGINT NOT NULL REFERENCES collectives (id) ON DELETE CASCADE,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    source TEXT NOT NULL,
    provider_id BIGINT NOT NULL DEFAULT 0,
    role TEXT NOT NULL,
    granted_at BIGINT NOT NULL,
    PRIMARY KEY (collective_id, user_id, source, provider_id)
);
CREATE INDEX memberships_user ON memberships (user_id);

CREATE TABLE group_mappings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    collective_id BIGINT NOT NULL REFERENCES collectives (id) ON DELETE CASCADE,
    provider_id BIGINT NOT NULL REFERENCES identity_providers (id) ON DELETE CASCADE,
    claim_value TEXT NOT NULL,
    role TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (collective_id, provider_id, claim_value)
);

CREATE TABLE invitations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    collective_id BIGINT NOT NULL REFERENCES collectives (id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_by BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT,
    used_by BIGINT,
    revoked_at BIGINT
);

CREATE TABLE sessions (
    id_hash TEXT PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    provider_id BIGINT,
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE login_states (
    state_hash TEXT PRIMARY KEY,
    provider_id BIGINT NOT NULL REFERENCES identity_providers (id) ON DELETE CASCADE,
    browser_hash TEXT NOT NULL,
    pkce_verifier TEXT NOT NULL,
    nonce TEXT NOT NULL,
    mode TEXT NOT NULL,
    link_user_id BIGINT,
    return_to TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE api_tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    collective_id BIGINT NOT NULL REFERENCES collectives (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT,
    expires_at BIGINT,
    revoked_at BIGINT
);

CREATE TABLE bootstrap_tokens (
    token_hash TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT,
    used_by BIGINT
);

-- The audit log: no foreign keys (history outlives what it talks about). Each row stores the
-- hash of the previous one; audit_head holds the newest (seq, hash) so that a removed tail shows.
CREATE TABLE audit_events (
    seq BIGINT PRIMARY KEY,
    at BIGINT NOT NULL,
    actor_kind TEXT NOT NULL,
    actor_id BIGINT,
    actor_name TEXT NOT NULL,
    collective_id BIGINT,
    collective TEXT,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    outcome TEXT NOT NULL,
    request_id TEXT NOT NULL,
    client_addr TEXT NOT NULL,
    details TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX audit_events_collective ON audit_events (collective_id, seq);
CREATE INDEX audit_events_action ON audit_events (action, seq);
CREATE INDEX audit_events_at ON audit_events (at);

CREATE TABLE audit_head (
    id BIGINT PRIMARY KEY,
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');
