//! HTTP: one router for the pages (Leptos SSR + server functions), the sign-in routes, the REST
//! API, the audit export and the health check, behind the middleware that identifies the caller.

pub mod api_v1;
pub mod auth;
pub mod context;
pub mod page_cache;

use crate::operations::registry::Dispatcher;
use crate::state::SharedState;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use leptos::prelude::*;
use leptos_axum::{generate_route_list, AxumRouteListing, LeptosRoutes};
use potluck_app::error::ApiError;
use potluck_app::{shell, App};
use tower_http::set_header::SetResponseHeaderLayer;

/// Leptos' options, built from Potluck's configuration (no Cargo metadata, no LEPTOS_* files).
/// A built site lists its fingerprinted file names in `hash.txt` (scripts/build.sh); the pages
/// then link those.
pub fn leptos_options(state: &SharedState) -> LeptosOptions {
    let builder = LeptosOptions::builder()
        .output_name("potluck")
        .site_root(state.config.site_root.display().to_string())
        .site_pkg_dir("pkg")
        .site_addr(state.config.listen);
    // Leptos reads the hash file beside the executable unless the path is absolute.
    let hashes = std::path::absolute(state.config.site_root.join("hash.txt")).ok().filter(|p| p.is_file());
    match hashes {
        Some(path) => builder.hash_files(true).hash_file(std::sync::Arc::from(path.display().to_string())).build(),
        None => builder.build(),
    }
}

/// The built site's scripts, wasm and stylesheet: brotli or gzip where the browser takes it
/// (scripts/build.sh writes both beside each file); a fingerprinted name never changes, so it
/// may be kept for a year; anything else is revalidated.
fn site_files(state: &SharedState) -> Router {
    let dir =
        tower_http::services::ServeDir::new(state.config.site_root.join("pkg")).precompressed_br().precompressed_gzip();
    Router::new().nest_service("/pkg", dir).layer(axum::middleware::from_fn(site_cache))
}

/// `potluck.0123456789abcdef.wasm`: a name carrying a fingerprint (16 hex digits).
fn fingerprinted(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or_default();
    name.split('.').any(|part| part.len() == 16 && part.bytes().all(|b| b.is_ascii_hexdigit()))
}

async fn site_cache(req: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    let immutable = fingerprinted(req.uri().path());
    let mut response = next.run(req).await;
    let value =
        if immutable && response.status().is_success() { "public, max-age=31536000, immutable" } else { "no-cache" };
    response.headers_mut().insert(axum::http::header::CACHE_CONTROL, HeaderValue::from_static(value));
    response
}

/// The page routes, generated once per process. Generating them runs the app with resource
/// loading switched off through a process-global flag (leptos_server's `SuppressResourceLoad`),
/// and a page of another router rendering at that moment would wait for ever
/// (leptos-rs/leptos#4773): the integration suites build many routers in one process.
fn page_routes() -> Vec<AxumRouteListing> {
    static ROUTES: std::sync::OnceLock<Vec<AxumRouteListing>> = std::sync::OnceLock::new();
    ROUTES.get_or_init(|| generate_route_list(App)).clone()
}

pub fn router(state: SharedState) -> Router {
    let options = leptos_options(&state);
    let ports: potluck_app::ports::Ports = std::sync::Arc::new(Dispatcher(state.clone()));
    let routes = page_routes();
    let pages: Router = Router::new()
        .leptos_routes_with_context(
            &options,
            routes,
            move || {
                provide_context(ports.clone());
                leptos::nonce::provide_nonce();
            },
            {
                let options = options.clone();
                move || shell(options.clone())
            },
        )
        .fallback(leptos_axum::file_and_error_handler(shell))
        .with_state(options)
        .layer(axum::middleware::from_fn(page_csp));
    let pages = match page_cache::PageCache::new(state.config.page_cache_mb) {
        Some(cache) => pages.layer(axum::middleware::from_fn_with_state((state.clone(), cache), page_cache::serve)),
        None => pages,
    };

    let site = site_files(&state);
    let rest: Router = Router::new()
        .route("/healthz", get(healthz))
        .route(
            "/hooks/git/{slug}",
            axum::routing::post(git_webhook)
                .layer(axum::extract::DefaultBodyLimit::max(crate::domain::apps::sync::MAX_WEBHOOK_BODY)),
        )
        .merge(auth::routes())
        .merge(api_v1::raw_routes())
        .nest("/api/v1", api_v1::routes())
        .with_state(state.clone());

    let hsts = state.config.secure_cookies();
    let router = rest
        .merge(pages)
        .merge(site)
        .layer(axum::middleware::from_fn(server_fn_status))
        .layer(axum::middleware::from_fn_with_state(state, context::identify))
        .layer(SetResponseHeaderLayer::if_not_present(
            axum::http::header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            axum::http::header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            axum::http::header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ))
        // Pages set their own policy with the page's nonce; everything else may load nothing.
        .layer(SetResponseHeaderLayer::if_not_present(
            axum::http::header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'; base-uri 'none'"),
        ));
    if hsts {
        router.layer(SetResponseHeaderLayer::if_not_present(
            axum::http::header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=63072000; includeSubDomains"),
        ))
    } else {
        router
    }
}

/// A page whose policy did not reach its response (the shell sets it through Leptos'
/// `ResponseOptions`, and once in a while a page arrived without it, so the browser refused its
/// scripts under the strict default and it never hydrated): the policy is made from the nonce
/// the page itself carries, read from the first chunk of the body, which Leptos has already
/// rendered when the response starts.
async fn page_csp(req: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    use axum::http::header::{CONTENT_SECURITY_POLICY, CONTENT_TYPE};
    use futures::StreamExt;
    let sign_out = req.extensions().get::<potluck_app::ports::Caller>().and_then(|c| c.sign_out_origin.clone());
    let mut response = next.run(req).await;
    let is_html =
        response.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("text/html"));
    // A page names the fingerprinted files of the build that served it: always asked again; and
    // it is rendered for one person: never kept by a shared cache on the way.
    if is_html && !response.headers().contains_key(axum::http::header::CACHE_CONTROL) {
        response.headers_mut().insert(axum::http::header::CACHE_CONTROL, HeaderValue::from_static("private, no-cache"));
    }
    if !is_html || response.headers().contains_key(CONTENT_SECURITY_POLICY) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let mut stream = body.into_data_stream();
    let first = match stream.next().await {
        Some(Ok(chunk)) => chunk,
        Some(Err(e)) => return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
        None => bytes::Bytes::new(),
    };
    if let Some(nonce) = page_nonce(&first) {
        tracing::warn!("a page's Content-Security-Policy was missing; made from the nonce the page carries");
        if let Ok(v) = HeaderValue::from_str(&potluck_app::content_security_policy(nonce, sign_out.as_deref())) {
            parts.headers.insert(CONTENT_SECURITY_POLICY, v);
        }
    }
    let body = futures::stream::once(async move { Ok::<_, axum::Error>(first) }).chain(stream);
    axum::response::Response::from_parts(parts, axum::body::Body::from_stream(body))
}

/// The nonce of the page's first script, when it is one Leptos made (URL-safe base64).
fn page_nonce(html: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(&html[..html.len().min(64 * 1024)]).ok()?;
    let start = text.find("<script")?;
    let rest = &text[start..];
    let at = rest[..rest.find('>')?].find(" nonce=\"")? + " nonce=\"".len();
    let value = &rest[at..];
    let value = &value[..value.find('"')?];
    (!value.is_empty()
        && value.len() <= 64
        && value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
    .then_some(value)
}

/// A server function whose arguments do not decode answers 500 from the framework, with our
/// `ApiError` as its body; give it the status that error stands for.
async fn server_fn_status(req: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    let is_server_fn = req.uri().path().starts_with("/api/fn/");
    let response = next.run(req).await;
    if !is_server_fn || response.status() != StatusCode::INTERNAL_SERVER_ERROR {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap_or_default();
    if let Ok(error) = serde_json::from_slice::<ApiError>(&bytes) {
        if let Ok(status) = StatusCode::from_u16(error.status()) {
            parts.status = status;
        }
    }
    axum::response::Response::from_parts(parts, axum::body::Body::from(bytes))
}

/// A git remote's push webhook for a collective's sync: 202 when its signature holds (a sync is
/// asked for), 401 otherwise, an unknown collective included (nothing to learn by guessing).
async fn git_webhook(
    State(state): State<SharedState>,
    axum::extract::Path(slug): axum::extract::Path<String>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> impl IntoResponse {
    match crate::domain::apps::sync::webhook(&state, &slug, &headers, &body).await {
        Ok(true) => (StatusCode::ACCEPTED, "a sync is on its way\n"),
        Ok(false) => (StatusCode::UNAUTHORIZED, "the signature does not hold\n"),
        Err(e) => {
            tracing::warn!(error = %e, "git webhook");
            (StatusCode::SERVICE_UNAVAILABLE, "try again\n")
        }
    }
}

async fn healthz(State(state): State<SharedState>) -> impl IntoResponse {
    match state.db.ping().await {
        Ok(()) => (StatusCode::OK, "ok\n"),
        Err(e) => {
            tracing::warn!(error = %e, "health check: database unreachable");
            (StatusCode::SERVICE_UNAVAILABLE, "database unreachable\n")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use tower::ServiceExt;

    #[test]
    fn the_nonce_is_read_from_the_first_script_only_when_it_is_one() {
        assert_eq!(page_nonce(b"<html><head><script type=\"module\" nonce=\"Ab-_9z\">x</script>"), Some("Ab-_9z"));
        assert_eq!(page_nonce(b"<script nonce=\"a b\">"), None);
        assert_eq!(page_nonce(b"<script nonce=\"'unsafe-inline'\">"), None);
        assert_eq!(page_nonce(b"<p>no script</p>"), None);
    }

    #[tokio::test]
    async fn a_page_without_its_policy_gets_one_made_from_its_nonce() {
        let page = "<!DOCTYPE html><html><head><script type=\"module\" nonce=\"n0nce123\">hydrate()</script></head><body>hi</body></html>";
        let app = Router::new()
            .route(
                "/",
                get(move || async move { ([(axum::http::header::CONTENT_TYPE, "text/html; charset=utf-8")], page) }),
            )
            .route("/api", get(|| async { axum::Json(1) }))
            .layer(axum::middleware::from_fn(page_csp));
        let res = app.clone().oneshot(axum::http::Request::get("/").body(Body::empty()).unwrap()).await.unwrap();
        let csp = res.headers()[axum::http::header::CONTENT_SECURITY_POLICY].to_str().unwrap().to_string();
        assert!(csp.contains("'nonce-n0nce123'"), "{csp}");
        let body = axum::body::to_bytes(res.into_body(), 1 << 20).await.unwrap();
        assert_eq!(body, page.as_bytes(), "the body is passed on whole");
        // Not a page: left to the strict default.
        let res = app.oneshot(axum::http::Request::get("/api").body(Body::empty()).unwrap()).await.unwrap();
        assert!(!res.headers().contains_key(axum::http::header::CONTENT_SECURITY_POLICY));
    }
}
