//! The operations layer: every operation declared in `potluck_app::api` runs here. The registry
//! authorizes the caller (building the `Cap` the handler takes), opens the audit scope of the
//! declaration and calls the handler; `handlers` names the handler of each operation. Most
//! handlers are domain functions; the operations whose answer is a stream or a download
//! (`streams`, `catalogue`, `export`) are written here, over the domain.
//!
//! Imports run down only: transport → operations → domain → adapters (see docs/ARCHITECTURE.md).

pub mod abra;
pub mod catalogue;
pub mod export;
mod handlers;
pub mod live;
pub mod registry;
pub mod streams;

use axum::http::{HeaderValue, StatusCode};
use axum::response::IntoResponse;
use potluck_app::error::ApiError;

/// An [`ApiError`] as an HTTP response: its status and a JSON body.
pub struct ErrorResponse(pub ApiError);

impl IntoResponse for ErrorResponse {
    fn into_response(self) -> axum::response::Response {
        let status = StatusCode::from_u16(self.0.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, axum::Json(&self.0)).into_response();
        if let ApiError::RateLimited { retry_after_secs } = self.0 {
            if let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string()) {
                response.headers_mut().insert(axum::http::header::RETRY_AFTER, v);
            }
        }
        response
    }
}

impl From<ApiError> for ErrorResponse {
    fn from(e: ApiError) -> Self {
        ErrorResponse(e)
    }
}
