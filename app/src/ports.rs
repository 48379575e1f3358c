//! The server side of server functions: who is calling, and the one port they call through.
//!
//! `app` cannot depend on `server` (the server depends on `app` for its pages), so the server
//! implements [`Dispatch`] with its operation registry and hands it to Leptos through context.

use crate::error::ApiError;
use crate::model::*;
use async_trait::async_trait;
use std::any::Any;
use std::sync::Arc;

/// Who is calling and from where: built once per request by the server's authentication
/// middleware and stored in the request's extensions. Nothing else reads cookies or tokens.
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Principal,
    pub request_id: String,
    pub client_addr: String,
    /// Where the signed-in person's provider ends its own session (an origin), if it does:
    /// the sign-out form is redirected there.
    pub sign_out_origin: Option<String>,
}

#[derive(Debug, Clone)]
pub enum Principal {
    Anonymous,
    /// A person signed in through a browser session.
    User(UserPrincipal),
    /// An API token: acts for its creator, in one collective, with at most the token's role.
    Token(TokenPrincipal),
}

#[derive(Debug, Clone)]
pub struct UserPrincipal {
    pub user_id: UserId,
    pub display_name: String,
    pub is_federation_admin: bool,
}

#[derive(Debug, Clone)]
pub struct TokenPrincipal {
    pub token_id: TokenId,
    pub user_id: UserId,
    pub display_name: String,
    pub collective_id: CollectiveId,
    pub role: Role,
    /// A federation admin's token still acts only in its collective, as at most its role.
    pub owner_is_federation_admin: bool,
}

impl Caller {
    pub fn user_id(&self) -> Option<UserId> {
        match &self.principal {
            Principal::Anonymous => None,
            Principal::User(u) => Some(u.user_id),
            Principal::Token(t) => Some(t.user_id),
        }
    }
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Caller {
    type Rejection = (http::StatusCode, &'static str);

    async fn from_request_parts(parts: &mut http::request::Parts, _: &S) -> Result<Self, Self::Rejection> {
        // Only missing when the authentication middleware is not installed: a wiring bug.
        parts.extensions.get::<Caller>().cloned().ok_or((http::StatusCode::INTERNAL_SERVER_ERROR, "no caller"))
    }
}

/// The one way into the server: the registry runs an operation's authorization and handler.
/// `input` is the operation's own type (see `ops::Op`), boxed; so is the answer.
#[async_trait]
pub trait Dispatch: Send + Sync {
    async fn dispatch(
        &self,
        caller: &Caller,
        operation: &'static str,
        input: Box<dyn Any + Send>,
    ) -> Result<Box<dyn Any + Send>, ApiError>;
}

/// What the server functions reach, provided through Leptos context.
pub type Ports = Arc<dyn Dispatch>;
