//! Backups the way Co-op Cloud recipes declare them, stored where backup-bot-two stores them.
//!
//! - [`declared`]: what a stack's `backupbot.*` labels ask for, volume by volume.
//! - [`repo`]: restic repositories (opened, or created when absent), with restic's own password
//!   conventions; [`sftp`]: the same repositories over SFTP (libssh2, host key checked); [`s3`]:
//!   in an S3-compatible bucket (given keys only).
//! - [`stream`]: tar streams from the engine's archive API written into a snapshot as they
//!   arrive (files larger than a few MiB spill to an anonymous temporary file, so memory stays
//!   flat), and a snapshot's subtree written back out as a tar stream.
//! - [`run`]: a backup or a restore of a running stack through one engine connection: hooks in
//!   the services' containers, the copy, and the checks that make a backup worth having.
//!
//! Snapshots use backup-bot-two's layout (`/var/lib/docker/volumes/<volume>/_data/...`), so the
//! `restic` CLI and backup-bot-two read them, and Potluck reads theirs.

pub mod declared;
pub mod repo;
pub mod run;
pub mod s3;
pub mod sftp;
pub mod stream;

pub use declared::{declared, Coverage, Declared};
