//! The domain's error: either something the caller should hear about (`ApiError`) or a failure
//! of ours, logged once at the boundary and answered with an opaque 500.

use potluck_app::error::ApiError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("{0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn internal(e: impl std::fmt::Display) -> Self {
        Error::Internal(e.to_string())
    }

    /// What the caller is told. Internal causes are logged here, once, with the request id.
    pub fn into_api(self, request_id: &str) -> ApiError {
        match self {
            Error::Api(e) => e,
            Error::Db(e) if crate::adapters::db::is_unique_violation(&e) => ApiError::conflict("that already exists"),
            Error::Db(sqlx::Error::PoolTimedOut) => {
                tracing::error!(request.id = request_id, "database pool timed out");
                ApiError::unavailable("the database is busy; try again")
            }
            other => {
                tracing::error!(request.id = request_id, error = %other, "request failed");
                ApiError::Internal { request_id: request_id.to_string() }
            }
        }
    }
}
