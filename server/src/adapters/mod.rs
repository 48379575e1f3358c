//! The adapters layer: the outside world, with no knowledge of the domain. The database (`db`),
//! sealing and hashing (`crypto`), git repositories (`git`) and the container engine
//! (`engine`, its own crate: compose loading, conversion, deploy, converge, engine connections).

pub mod crypto;
pub mod db;
/// The deploy engine, its own crate (`server/engine`): no database, no web.
pub use potluck_engine as engine;
pub mod git;
