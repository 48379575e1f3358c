//! Potluck's server: the axum application, the domain (identity, collectives, authorization,
//! audit) and the adapters to the database and identity providers.

pub mod apps;
pub mod audit;
pub mod audit_service;
pub mod authz;
pub mod cli;
pub mod collectives;
pub mod config;
pub mod crypto;
pub mod db;
/// The deploy engine, its own crate (`server/engine`): no database, no web.
pub use potluck_engine as engine;
pub mod error;
pub mod http;
pub mod identity;
pub mod operations;
#[cfg(test)]
mod properties;
pub mod recipe_cli;
pub mod recipes;
pub mod registry;
pub mod serve;
pub mod stack_cli;
pub mod state;
pub mod telemetry;
