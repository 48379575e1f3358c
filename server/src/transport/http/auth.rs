//! Sign-in routes outside Leptos: they redirect browsers and set cookies.
//!
//! `GET /auth/login/{provider}` → the provider → `GET /auth/callback` → a new session.
//! `POST /auth/link/{provider}` attaches another sign-in to the current account.
//! `POST /auth/logout` ends the session, and the provider's too when it supports
//! RP-initiated logout. `POST /auth/bootstrap` claims the bootstrap link.

use super::context::SESSION_COOKIE;
use crate::domain::identity::login::{self, Callback, LoginError, Mode};
use crate::domain::identity::{bootstrap, providers, sessions};
use crate::state::SharedState;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use openidconnect::{ClientId, EndSessionUrl, LogoutRequest, PostLogoutRedirectUrl};
use potluck_app::model::ProviderId;
use potluck_app::ports::{Caller, Principal};
use serde::Deserialize;

const LOGIN_COOKIE: &str = "potluck_login";

pub fn routes() -> Router<SharedState> {
    Router::new()
        .route("/auth/login/{provider}", get(start_login))
        .route("/auth/link/{provider}", post(start_link))
        .route("/auth/callback", get(callback))
        .route("/auth/logout", post(logout))
        .route("/auth/bootstrap", post(claim_bootstrap))
}

#[derive(Debug, Deserialize)]
struct StartQuery {
    return_to: Option<String>,
}

/// Sends the person to the sign-in page with a reason they can read.
fn login_error(reason: &str) -> Response {
    Redirect::to(&format!("/login?error={}", urlencoding::encode(reason))).into_response()
}

async fn limited(state: &SharedState, caller: &Caller) -> Option<Response> {
    // A database that cannot count does not lock everyone out: the attempt goes on.
    let allowed = login::attempt_allowed(state, &caller.client_addr).await.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "cannot count a sign-in attempt");
        true
    });
    if !allowed {
        tracing::warn!(client.addr = %caller.client_addr, "sign-in attempts rate-limited");
        let mut r = (StatusCode::TOO_MANY_REQUESTS, "Too many sign-in attempts from your address; wait a minute.\n")
            .into_response();
        r.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from_static("60"));
        return Some(r);
    }
    None
}

fn login_cookie(state: &SharedState, value: String) -> Cookie<'static> {
    Cookie::build((LOGIN_COOKIE, value))
        .path("/auth")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(state.config.secure_cookies())
        .max_age(time::Duration::minutes(10))
        .build()
}

pub fn session_cookie(state: &SharedState, value: String) -> Cookie<'static> {
    Cookie::build((SESSION_COOKIE, value))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(state.config.secure_cookies())
        .max_age(time::Duration::minutes(state.config.session_absolute_minutes))
        .build()
}

async fn begin(
    state: SharedState,
    caller: Caller,
    jar: CookieJar,
    provider: ProviderId,
    mode: Mode,
    return_to: Option<String>,
) -> Response {
    if let Some(r) = limited(&state, &caller).await {
        return r;
    }
    match login::start(&state, &caller, provider, mode, return_to.as_deref()).await {
        Ok(started) => {
            let jar = jar.add(login_cookie(&state, started.browser_token));
            (jar, Redirect::to(&started.authorize_url)).into_response()
        }
        Err(e) => login_error(&e.into_api(&caller.request_id).to_string()),
    }
}

async fn start_login(
    State(state): State<SharedState>,
    Extension(caller): Extension<Caller>,
    jar: CookieJar,
    Path(provider): Path<String>,
    Query(q): Query<StartQuery>,
) -> Response {
    let Ok(provider) = provider.parse::<ProviderId>() else {
        return login_error("unknown identity provider");
    };
    begin(state, caller, jar, provider, Mode::Login, q.return_to).await
}

async fn start_link(
    State(state): State<SharedState>,
    Extension(caller): Extension<Caller>,
    jar: CookieJar,
    Path(provider): Path<ProviderId>,
) -> Response {
    if !matches!(caller.principal, Principal::User(_)) {
        return login_error("sign in first, then link another account");
    }
    begin(state, caller, jar, provider, Mode::Link, Some("/account".into())).await
}

async fn callback(
    State(state): State<SharedState>,
    Extension(caller): Extension<Caller>,
    jar: CookieJar,
    Query(cb): Query<Callback>,
) -> Response {
    if let Some(r) = limited(&state, &caller).await {
        return r;
    }
    let browser = jar.get(LOGIN_COOKIE).map(|c| c.value().to_string());
    let jar = jar.remove(Cookie::build(LOGIN_COOKIE).path("/auth"));
    match login::finish(&state, &caller, cb, browser.as_deref()).await {
        Ok(done) => {
            // A new session id at every sign-in; the old session (if any) ends.
            if let Some(old) = jar.get(SESSION_COOKIE) {
                let _ = sessions::end(&state, old.value()).await;
            }
            let jar = jar.add(session_cookie(&state, done.session_token));
            (jar, Redirect::to(&done.return_to)).into_response()
        }
        Err(LoginError::Refused(reason)) => {
            tracing::info!(request.id = %caller.request_id, reason = %reason, "sign-in refused");
            (jar, login_error(&reason)).into_response()
        }
        Err(LoginError::Other(e)) => {
            let e = e.into_api(&caller.request_id);
            (jar, login_error(&e.to_string())).into_response()
        }
    }
}

async fn logout(State(state): State<SharedState>, Extension(caller): Extension<Caller>, jar: CookieJar) -> Response {
    let Some(cookie) = jar.get(SESSION_COOKIE) else {
        return Redirect::to("/").into_response();
    };
    let ended = sessions::end(&state, cookie.value()).await;
    let jar = jar.remove(Cookie::build(SESSION_COOKIE).path("/"));
    let provider_id = match ended {
        Ok(Some((_, provider))) => provider,
        Ok(None) => None,
        Err(e) => {
            e.into_api(&caller.request_id);
            None
        }
    };
    let mut target = "/".to_string();
    if let Some(id) = provider_id {
        if let Ok(Some(p)) = providers::find_provider(&state, id).await {
            if let Some(end) = p.end_session_endpoint.as_deref().and_then(|u| EndSessionUrl::new(u.to_string()).ok()) {
                let mut request = LogoutRequest::from(end).set_client_id(ClientId::new(p.client_id.clone()));
                if let Ok(back) = PostLogoutRedirectUrl::new(format!("{}/", state.config.public_base())) {
                    request = request.set_post_logout_redirect_uri(back);
                }
                target = request.http_get_url().to_string();
            }
        }
    }
    (jar, Redirect::to(&target)).into_response()
}

#[derive(Debug, Deserialize)]
struct BootstrapForm {
    token: String,
}

async fn claim_bootstrap(
    State(state): State<SharedState>,
    Extension(caller): Extension<Caller>,
    jar: CookieJar,
    Form(form): Form<BootstrapForm>,
) -> Response {
    if let Some(r) = limited(&state, &caller).await {
        return r;
    }
    match bootstrap::claim(&state, &caller, form.token.trim()).await {
        Ok(claimed) => {
            let jar = match claimed.session_token {
                Some(token) => jar.add(session_cookie(&state, token)),
                None => jar,
            };
            (jar, Redirect::to("/admin/providers")).into_response()
        }
        Err(e) => login_error(&e.into_api(&caller.request_id).to_string()),
    }
}
