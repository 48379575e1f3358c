//! Potluck's server, in four layers whose imports run one way (docs/ARCHITECTURE.md):
//! `transport` (http, command line) → `operations` (the registry: authorize, audit, dispatch) →
//! `domain` (identity, collectives, authorization, audit, recipes, apps) → `adapters` (database,
//! crypto, git, the engine). `state`, `config`, `error` and `telemetry` are shared by all.

pub mod adapters;
pub mod config;
pub mod domain;
pub mod error;
#[cfg(test)]
mod layering;
pub mod operations;
#[cfg(test)]
mod properties;
pub mod state;
pub mod telemetry;
pub mod transport;
