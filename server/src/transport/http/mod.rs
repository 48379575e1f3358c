//! HTTP: one router for the pages (Leptos SSR + server functions), the sign-in routes, the REST
//! API, the audit export and the health check, behind the middleware that identifies the caller.

pub mod api_v1;
pub mod auth;
pub mod context;

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
pub fn leptos_options(state: &SharedState) -> LeptosOptions {
    LeptosOptions::builder()
        .output_name("potluck")
        .site_root(state.config.site_root.display().to_string())
        .site_pkg_dir("pkg")
        .site_addr(state.config.listen)
        .build()
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
        .with_state(options);

    let rest: Router = Router::new()
        .route("/healthz", get(healthz))
        .merge(auth::routes())
        .merge(api_v1::raw_routes())
        .nest("/api/v1", api_v1::routes())
        .with_state(state.clone());

    let hsts = state.config.secure_cookies();
    let router = rest
        .merge(pages)
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

async fn healthz(State(state): State<SharedState>) -> impl IntoResponse {
    match state.db.ping().await {
        Ok(()) => (StatusCode::OK, "ok\n"),
        Err(e) => {
            tracing::warn!(error = %e, "health check: database unreachable");
            (StatusCode::SERVICE_UNAVAILABLE, "database unreachable\n")
        }
    }
}
