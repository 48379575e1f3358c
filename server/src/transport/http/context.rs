//! The middleware that identifies every request: a request id, the client address, and who is
//! calling (session cookie or bearer token). Nothing else reads cookies or tokens. It also
//! refuses cross-origin writes that carry a session cookie.

use crate::domain::identity::{sessions, tokens::TOKEN_PREFIX};
use crate::operations::ErrorResponse;
use crate::state::SharedState;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar};
use potluck_app::error::ApiError;
use potluck_app::ports::{Caller, Principal};
use std::net::{IpAddr, SocketAddr};
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

/// The client's address: the connection's, unless it comes from a trusted proxy; then the
/// `X-Forwarded-For` hops are read from the right (each was added by the proxy after it), and
/// the first one that is not a trusted proxy is the client. The leftmost entries are whatever
/// the client sent and are never believed on their own.
pub fn client_addr(proxies: &[ipnet::IpNet], peer: Option<IpAddr>, forwarded: &[&str]) -> String {
    let Some(peer) = peer else { return "unknown".into() };
    let trusted = |ip: &IpAddr| proxies.iter().any(|n| n.contains(ip));
    if !trusted(&peer) {
        return peer.to_string();
    }
    let hops: Vec<&str> =
        forwarded.iter().flat_map(|h| h.split(',')).map(str::trim).filter(|h| !h.is_empty()).collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        match hop.parse::<IpAddr>() {
            Ok(ip) if trusted(&ip) => client = ip,
            Ok(ip) => return ip.to_string(),
            // Not an address: written by the client, not by a proxy. The last proxy's view stands.
            Err(_) => break,
        }
    }
    client.to_string()
}

fn client_addr_of(state: &SharedState, req: &Request) -> String {
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(a)| a.ip());
    let forwarded: Vec<&str> =
        req.headers().get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok()).collect();
    client_addr(&state.proxies, peer, &forwarded)
}

/// Whether a write that carries the session cookie comes from Potluck's own pages: its `Origin`
/// is Potluck's (not `null`, not another site), or, when a browser sends no `Origin`, its
/// `Sec-Fetch-Site` says same-origin. A request with neither is refused.
pub fn same_origin_write(headers: &axum::http::HeaderMap, public_origin: &str) -> Result<(), String> {
    match headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        Some(origin) if origin.trim_end_matches('/') == public_origin => Ok(()),
        Some(origin) => Err(format!("cross-origin request from {origin} refused")),
        None => match headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
            Some("same-origin") => Ok(()),
            Some(site) => Err(format!("a {site} request carrying the session cookie was refused")),
            None => Err("a write carrying the session cookie must say where it comes from (Origin)".into()),
        },
    }
}

pub async fn identify(State(state): State<SharedState>, jar: CookieJar, mut req: Request, next: Next) -> Response {
    let request_id = request_id(&req);
    let client_addr = client_addr_of(&state, &req);
    let span = tracing::info_span!("request", request.id = %request_id, http.method = %req.method(), http.path = %req.uri().path());

    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_string());
    let mut clear_cookie = false;
    let mut sign_out_origin = None;
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
            Ok(Some((user, origin))) => {
                sign_out_origin = origin;
                Principal::User(user)
            }
            Ok(None) => {
                clear_cookie = true;
                Principal::Anonymous
            }
            Err(e) => return with_id(ErrorResponse(e.into_api(&request_id)).into_response(), &request_id),
        }
    } else {
        Principal::Anonymous
    };

    // SameSite=Lax already keeps the cookie off cross-site POSTs; a write that carries it must
    // also come from Potluck's own origin.
    if matches!(principal, Principal::User(_)) && !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS)
    {
        if let Err(reason) = same_origin_write(req.headers(), &public_origin(&state)) {
            tracing::info!(request.id = %request_id, "refused: {reason}");
            return with_id(ErrorResponse(ApiError::forbidden(reason)).into_response(), &request_id);
        }
    }

    req.extensions_mut().insert(Caller { principal, request_id: request_id.clone(), client_addr, sign_out_origin });
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_for_is_read_from_the_trusted_end() {
        let proxies: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().unwrap(), "127.0.0.1/32".parse().unwrap()];
        let peer = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        // Not behind a trusted proxy: the header is ignored.
        assert_eq!(client_addr(&proxies, peer("203.0.113.9"), &["1.2.3.4"]), "203.0.113.9");
        // Behind one: the hop it added, not the client's own first entry.
        assert_eq!(client_addr(&proxies, peer("127.0.0.1"), &["6.6.6.6, 198.51.100.7"]), "198.51.100.7");
        // Two proxies: both skipped.
        assert_eq!(client_addr(&proxies, peer("127.0.0.1"), &["6.6.6.6, 198.51.100.7", "10.1.2.3"]), "198.51.100.7");
        // Garbage on the client's side does not become the address.
        assert_eq!(client_addr(&proxies, peer("127.0.0.1"), &["evil, 10.1.2.3"]), "10.1.2.3");
        assert_eq!(client_addr(&[], peer("127.0.0.1"), &["1.2.3.4"]), "127.0.0.1");
    }

    #[test]
    fn writes_must_come_from_the_same_origin() {
        let h = |pairs: &[(&'static str, &'static str)]| {
            let mut m = axum::http::HeaderMap::new();
            for (k, v) in pairs {
                m.insert(*k, HeaderValue::from_static(v));
            }
            m
        };
        let me = "https://potluck.example";
        assert!(same_origin_write(&h(&[("origin", "https://potluck.example")]), me).is_ok());
        assert!(same_origin_write(&h(&[("sec-fetch-site", "same-origin")]), me).is_ok());
        assert!(same_origin_write(&h(&[("origin", "null")]), me).is_err());
        assert!(same_origin_write(&h(&[("origin", "https://evil.example")]), me).is_err());
        assert!(same_origin_write(&h(&[]), me).is_err());
        assert!(same_origin_write(&h(&[("sec-fetch-site", "cross-site")]), me).is_err());
    }
}
