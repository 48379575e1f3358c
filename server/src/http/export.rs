//! `GET /audit/export.jsonl`: the audit log (with the same filters as the page) as JSON Lines,
//! one event per line with its chain hashes, streamed a thousand events at a time.

use super::ErrorResponse;
use crate::audit_service;
use crate::state::SharedState;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use futures::stream;
use potluck_app::ports::Caller;
use std::collections::HashMap;

const CHUNK: i64 = 1000;

pub fn routes() -> Router<SharedState> {
    Router::new().route("/audit/export.jsonl", get(export))
}

async fn export(
    State(st): State<SharedState>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let params = leptos_router::params::ParamsMap::from_iter(q);
    let mut filter = potluck_app::pages::audit::filter_from_query(&params);
    filter.limit = Some(CHUNK);
    filter.before = None;
    // The first page decides the answer's status (not signed in, not allowed…).
    let first = match audit_service::query_rows(&st, &caller, &filter).await {
        Ok(rows) => rows,
        Err(e) => return ErrorResponse(e.into_api(&caller.request_id)).into_response(),
    };
    let body = stream::unfold((Some(first), st, caller, filter), |(page, st, caller, mut filter)| async move {
        let rows = match page {
            Some(rows) => rows,
            None => match audit_service::query_rows(&st, &caller, &filter).await {
                Ok(rows) => rows,
                Err(e) => {
                    let e = e.into_api(&caller.request_id);
                    return Some((Err(std::io::Error::other(e.to_string())), (Some(Vec::new()), st, caller, filter)));
                }
            },
        };
        if rows.is_empty() {
            return None;
        }
        filter.before = rows.last().map(|r| r.view.seq);
        let mut chunk = String::new();
        for r in &rows {
            if let Ok(line) = serde_json::to_string(r) {
                chunk.push_str(&line);
                chunk.push('\n');
            }
        }
        let next = if (rows.len() as i64) < CHUNK { Some(Vec::new()) } else { None };
        Some((Ok::<_, std::io::Error>(chunk), (next, st, caller, filter)))
    });
    (
        [
            (header::CONTENT_TYPE, "application/jsonl; charset=utf-8"),
            (header::CONTENT_DISPOSITION, "attachment; filename=\"potluck-audit.jsonl\""),
        ],
        Body::from_stream(body),
    )
        .into_response()
}
