//! `ApiError`: the one error that crosses the wire, for server functions and the REST API alike.

use serde::{Deserialize, Serialize};
use server_fn::codec::JsonEncoding;
use server_fn::error::{FromServerFnError, ServerFnErrorErr};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// What went wrong, in words a person can act on. 5xx variants carry no cause: the server logs it
/// once, at the boundary, with the request id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(tag = "error", rename_all = "snake_case")]
pub enum ApiError {
    #[error("sign in first")]
    Unauthenticated,
    #[error("forbidden: {reason}")]
    Forbidden { reason: String },
    #[error("not found: {what}")]
    NotFound { what: String },
    #[error("conflict: {reason}")]
    Conflict { reason: String },
    #[error("{}", describe_fields(fields))]
    Validation { fields: Vec<FieldError> },
    #[error("too many requests: try again in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    #[error("unavailable: {reason}")]
    Unavailable { reason: String },
    #[error("internal error (request {request_id})")]
    Internal { request_id: String },
    /// The server function machinery itself failed (network, decoding).
    #[error("request failed: {message}")]
    Transport { message: String },
}

fn describe_fields(fields: &[FieldError]) -> String {
    let parts: Vec<String> = fields.iter().map(|f| format!("{}: {}", f.field, f.message)).collect();
    format!("invalid input: {}", parts.join("; "))
}

impl ApiError {
    pub fn forbidden(reason: impl fmt::Display) -> Self {
        ApiError::Forbidden { reason: reason.to_string() }
    }
    pub fn not_found(what: impl fmt::Display) -> Self {
        ApiError::NotFound { what: what.to_string() }
    }
    pub fn conflict(reason: impl fmt::Display) -> Self {
        ApiError::Conflict { reason: reason.to_string() }
    }
    pub fn invalid(field: impl Into<String>, message: impl fmt::Display) -> Self {
        ApiError::Validation { fields: vec![FieldError { field: field.into(), message: message.to_string() }] }
    }
    pub fn unavailable(reason: impl fmt::Display) -> Self {
        ApiError::Unavailable { reason: reason.to_string() }
    }

    /// The HTTP status this error is answered with.
    pub fn status(&self) -> u16 {
        match self {
            ApiError::Unauthenticated => 401,
            ApiError::Forbidden { .. } => 403,
            ApiError::NotFound { .. } => 404,
            ApiError::Conflict { .. } => 409,
            ApiError::Validation { .. } => 422,
            ApiError::RateLimited { .. } => 429,
            ApiError::Unavailable { .. } => 503,
            ApiError::Internal { .. } => 500,
            ApiError::Transport { .. } => 400,
        }
    }
}

impl FromServerFnError for ApiError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        match value {
            // Arguments that do not decode are the caller's mistake, not ours.
            ServerFnErrorErr::Args(message) | ServerFnErrorErr::Deserialization(message) => {
                ApiError::Validation { fields: vec![FieldError { field: "request".into(), message }] }
            }
            other => ApiError::Transport { message: other.to_string() },
        }
    }
}
