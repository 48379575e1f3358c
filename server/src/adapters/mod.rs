//! The adapters layer: the outside world, with no knowledge of the domain. The database (`db`),
//! sealing and hashing (`crypto`), git repositories (`git`) and the container engine
//! (`engine`, its own crate: compose loading, conversion, deploy, converge, engine connections)
//! and backups (`backup`, its own crate).

pub mod crypto;
pub mod db;
/// The deploy engine, its own crate (`server/engine`): no database, no web.
pub use potluck_engine as engine;
pub mod git;
/// Which hosts a collective may make Potluck connect to (backup repositories, webhooks, mail).
pub mod reach;
/// The backup engine, its own crate (`server/backup`): backup-bot-two's labels, restic
/// repositories (rustic), streaming volumes through the engine's archive API.
pub use potluck_backup as backup;
