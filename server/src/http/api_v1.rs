//! The REST API for automation at `/api/v1`, authenticated by API tokens (`Authorization:
//! Bearer plk_…`) or a browser session. Its OpenAPI document is served at
//! `/api/v1/openapi.json`. Every handler calls the same service functions as the pages.

use super::ErrorResponse;
use crate::state::SharedState;
use crate::{audit_service, collectives, identity};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, put};
use axum::{Extension, Json, Router};
use potluck_app::error::ApiError;
use potluck_app::model::*;
use potluck_app::ports::Caller;
use serde::Deserialize;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoParams, Modify, OpenApi, ToSchema};

pub fn routes() -> Router<SharedState> {
    Router::new()
        .route("/openapi.json", get(openapi))
        .route("/me", get(me))
        .route("/collectives", get(list_collectives))
        .route("/collectives/{slug}", get(get_collective))
        .route("/collectives/{slug}/members/{user_id}", put(set_member_role).delete(remove_member))
        .route("/audit", get(audit))
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Potluck API", description = "Automation API of a Potluck federation. Authenticate with an API token: `Authorization: Bearer plk_…`."),
    paths(me, list_collectives, get_collective, set_member_role, remove_member, audit),
    components(schemas(ApiError, RoleBody)),
    modifiers(&BearerAuth),
    security(("bearer" = []))
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

type ApiResult<T> = Result<Json<T>, ErrorResponse>;

fn api<T>(caller: &Caller, r: crate::error::Result<T>) -> ApiResult<T> {
    r.map(Json).map_err(|e| ErrorResponse(e.into_api(&caller.request_id)))
}

/// The person (or token) calling.
#[utoipa::path(get, path = "/api/v1/me", responses((status = 200, body = Me), (status = 401, body = ApiError)))]
async fn me(State(st): State<SharedState>, Extension(caller): Extension<Caller>) -> ApiResult<Me> {
    match identity::users::me(&st, &caller).await {
        Ok(Some(me)) => Ok(Json(me)),
        Ok(None) => Err(ErrorResponse(ApiError::Unauthenticated)),
        Err(e) => Err(ErrorResponse(e.into_api(&caller.request_id))),
    }
}

/// Collectives the caller belongs to (all of them for a federation admin).
#[utoipa::path(get, path = "/api/v1/collectives", responses((status = 200, body = Vec<CollectiveSummary>), (status = 401, body = ApiError)))]
async fn list_collectives(
    State(st): State<SharedState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<Vec<CollectiveSummary>> {
    api(&caller, collectives::list_collectives(&st, &caller).await)
}

/// One collective: members, group mappings, identity providers.
#[utoipa::path(get, path = "/api/v1/collectives/{slug}", params(("slug" = String, Path)),
    responses((status = 200, body = CollectiveDetail), (status = 404, body = ApiError)))]
async fn get_collective(
    State(st): State<SharedState>,
    Extension(caller): Extension<Caller>,
    Path(slug): Path<String>,
) -> ApiResult<CollectiveDetail> {
    api(&caller, collectives::get_collective(&st, &caller, &slug).await)
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct RoleBody {
    pub role: Role,
}

/// Sets a member's role (collective admins).
#[utoipa::path(put, path = "/api/v1/collectives/{slug}/members/{user_id}", params(("slug" = String, Path), ("user_id" = i64, Path)),
    request_body = RoleBody,
    responses((status = 204), (status = 403, body = ApiError), (status = 404, body = ApiError), (status = 409, body = ApiError)))]
async fn set_member_role(
    State(st): State<SharedState>,
    Extension(caller): Extension<Caller>,
    Path((slug, user_id)): Path<(String, i64)>,
    body: Result<Json<RoleBody>, axum::extract::rejection::JsonRejection>,
) -> Result<StatusCode, ErrorResponse> {
    let Json(body) = body.map_err(|e| ErrorResponse(ApiError::invalid("body", e.body_text())))?;
    collectives::set_member_role(&st, &caller, &slug, user_id, body.role)
        .await
        .map(|()| StatusCode::NO_CONTENT)
        .map_err(|e| ErrorResponse(e.into_api(&caller.request_id)))
}

/// Removes a member (collective admins).
#[utoipa::path(delete, path = "/api/v1/collectives/{slug}/members/{user_id}", params(("slug" = String, Path), ("user_id" = i64, Path)),
    responses((status = 204), (status = 403, body = ApiError), (status = 404, body = ApiError), (status = 409, body = ApiError)))]
async fn remove_member(
    State(st): State<SharedState>,
    Extension(caller): Extension<Caller>,
    Path((slug, user_id)): Path<(String, i64)>,
) -> Result<StatusCode, ErrorResponse> {
    collectives::remove_member(&st, &caller, &slug, user_id)
        .await
        .map(|()| StatusCode::NO_CONTENT)
        .map_err(|e| ErrorResponse(e.into_api(&caller.request_id)))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct AuditQuery {
    collective: Option<String>,
    actor: Option<String>,
    action: Option<String>,
    /// Milliseconds since the epoch.
    from: Option<i64>,
    to: Option<i64>,
    before: Option<i64>,
    limit: Option<i64>,
}

impl From<AuditQuery> for AuditFilter {
    fn from(q: AuditQuery) -> Self {
        AuditFilter {
            collective: q.collective,
            actor: q.actor,
            action: q.action,
            from: q.from,
            to: q.to,
            before: q.before,
            limit: q.limit,
        }
    }
}

/// A page of the audit log, newest first.
#[utoipa::path(get, path = "/api/v1/audit", params(AuditQuery), responses((status = 200, body = AuditPage), (status = 403, body = ApiError)))]
async fn audit(
    State(st): State<SharedState>,
    Extension(caller): Extension<Caller>,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<AuditPage> {
    let Query(q) = query.map_err(|e| ErrorResponse(ApiError::invalid("query", e.body_text())))?;
    api(&caller, audit_service::query_audit(&st, &caller, q.into()).await)
}
