//! The transport layer: how requests reach Potluck. `http` is the axum application (pages, the
//! sign-in routes, `/api/v1`, the middleware that identifies a caller); `serve` starts it with the
//! workers; `cli`, `stack_cli`, `backup_cli`, `recipe_cli`, `recipe_test_cli` and `remote_cli` (against a remote Potluck) are the command line.

pub mod backup_cli;
pub mod cli;
pub mod http;
pub mod recipe_cli;
pub mod recipe_test_cli;
pub mod remote_cli;
pub mod serve;
pub mod stack_cli;
