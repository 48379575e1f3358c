//! Integration suites: the real router, on SQLite or PostgreSQL (`POTLUCK_TEST_DATABASE`),
//! against the real identity providers started by scripts/test-services.sh.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests: a failed step is a failed test")]

mod abra;
mod api;
mod apps;
mod audit;
mod authz;
mod backup_jobs;
mod backup_schedules;
mod backups;
mod catalogue;
mod cli;
mod conformance;
mod fleet;
mod hostile;
mod identity;
mod notifications;
mod recipes;
mod releases;
mod replicas;
mod servers;
mod staging;
mod sync;
mod tenant;
mod web;
