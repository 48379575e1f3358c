//! The middleware that identifies every request: a request id, the client address, and who is
//! calling (session cookie or bearer token). Nothing else reads cookies or tokens. It also
//! refuses cross-origin writes that carry a session cookie.

use super::ErrorResponse;
use crate::identity::{sessions, tokens::TOKEN_PREFIX};
use crate::state::SharedState;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar};
use potluck_app::error::ApiError;
use potluck_app::ports::{Caller, Principal};
use std::net::SocketAddr;
use tracing::Instrument;

pub const SESSION_COOKIE: &str = "potluck_session";
pub const REQUEST_ID_HEADER: &str = "x-request-id";

fn request_id(req: &Request) -> String {
    req.headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        .map(String::from)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string())
}

fn client_addr(state: &SharedState, req: &Request) -> String {
    if state.config.trust_forwarded_for {
        if let Some(first) = req
            .headers()
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(str::trim)
            .filter(|v| !v.is_empty())
        {
            return first.to_string();
        }
    }
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(a)| a.ip().to_string())
        .unwrap_or_else(|| "unknown".into())
}

pub async fn identify(State(state): State<SharedState>, jar: CookieJar, mut req: Request, next: Next) -> Response {
    let request_id = request_id(&req);
    let client_addr = client_addr(&state, &req);
    let span = tracing::info_span!("request", request.id = %request_id, http.method = %req.method(), http.path = %req.uri().path());

    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_string());
    let mut clear_cookie = false;
    let principal = if let Some(token) = bearer {
        let found =
            if token.starts_with(TOKEN_PREFIX) { sessions::resolve_token(&state, &token).await } else { Ok(None) };
        match found {
            Ok(Some(t)) => Principal::Token(t),
            Ok(None) => return with_id(ErrorResponse(ApiError::Unauthenticated).into_response(), &request_id),
            Err(e) => return with_id(ErrorResponse(e.into_api(&request_id)).into_response(), &request_id),
        }
    } else if let Some(cookie) = jar.get(SESSION_COOKIE) {
        match sessions::resolve(&state, cookie.value()).await {
            Ok(Some((user, _))) => Principal::User(user),
            Ok(None) => {
                clear_cookie = true;
                Principal::Anonymous
            }
            Err(e) => return with_id(ErrorResponse(e.into_api(&request_id)).into_response(), &request_id),
        }
    } else {
        Principal::Anonymous
    };

    // SameSite=Lax already keeps the cookie off cross-site POSTs; a mismatching Origin on a
    // write is refused as well.
    if matches!(principal, Principal::User(_)) && !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS)
    {
        if let Some(origin) = req.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
            if origin != "null" && origin.trim_end_matches('/') != public_origin(&state) {
                let e = ApiError::forbidden(format!("cross-origin request from {origin} refused"));
                return with_id(ErrorResponse(e).into_response(), &request_id);
            }
        }
    }

    req.extensions_mut().insert(Caller { principal, request_id: request_id.clone(), client_addr });
    let mut response = next.run(req).instrument(span).await;
    if clear_cookie {
        let removal = Cookie::build((SESSION_COOKIE, "")).path("/").max_age(time::Duration::ZERO).build();
        if let Ok(v) = HeaderValue::from_str(&removal.to_string()) {
            response.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    with_id(response, &request_id)
}

fn public_origin(state: &SharedState) -> String {
    let base = state.config.public_base();
    match url::Url::parse(&base) {
        Ok(u) => u.origin().ascii_serialization(),
        Err(_) => base,
    }
}

fn with_id(mut response: Response, request_id: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(request_id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, v);
    }
    response
}
