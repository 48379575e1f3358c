-- Backup repositories over SFTP: the private key Potluck signs in with (sealed with the
-- instance key, like the repository's password) and the server's pinned host key fingerprint
-- (SHA256:…, as ssh-keygen -lf prints it). Both are NULL for local repositories.
ALTER TABLE backup_repos ADD COLUMN ssh_key_enc BYTEA;
ALTER TABLE backup_repos ADD COLUMN host_key TEXT;
