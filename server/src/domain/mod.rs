//! The domain layer: what Potluck knows and decides. Identity and sessions, collectives and
//! roles, authorization (`authz` builds the capabilities handlers take), the audit chain, recipes
//! (catalogue, lint, releases and their review) and apps (servers, plans, secrets, jobs).
//! It uses the adapters below it and never the operations or transport above it.

pub mod apps;
pub mod audit;
pub mod audit_service;
pub mod authz;
pub mod collectives;
pub mod idempotency;
pub mod identity;
pub mod notify;
pub mod recipes;
