-- Backup repositories in S3-compatible buckets: the access key id (shown, like a user name),
-- the secret key (sealed with the instance key, like the repository's password) and the region
-- requests are signed for. All NULL for other repositories.
ALTER TABLE backup_repos ADD COLUMN s3_key_id TEXT;
ALTER TABLE backup_repos ADD COLUMN s3_secret_enc BLOB;
ALTER TABLE backup_repos ADD COLUMN s3_region TEXT;
