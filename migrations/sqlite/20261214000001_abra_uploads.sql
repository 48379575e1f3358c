-- abra `servers/` trees uploaded on the apps page, waiting for their preview and import
-- (a day at most; base64 of the tar.gz, at most 1 MiB of it).
CREATE TABLE abra_uploads (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    collective_id INTEGER NOT NULL REFERENCES collectives(id) ON DELETE CASCADE,
    user_id INTEGER NOT NULL,
    archive TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    -- When it was imported, and how many apps that created (the page says so; no second import).
    imported_at BIGINT,
    imported_apps BIGINT
);
CREATE INDEX abra_uploads_user ON abra_uploads (user_id, id);
