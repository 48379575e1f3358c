//! Identity: providers (several OIDC issuers at once), the sign-in flow, sessions, people,
//! API tokens and the bootstrap link.

pub mod bootstrap;
pub mod login;
pub mod providers;
pub mod sessions;
pub mod tokens;
pub mod users;
