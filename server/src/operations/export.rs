//! `GET /audit/export.jsonl`: the audit log (with the same filters as the page) as JSON Lines,
//! one event per line with its chain hashes, streamed a thousand events at a time.

use crate::domain::audit_service;
use crate::domain::authz::Cap;
use crate::error::Result;
use crate::state::SharedState;
use axum::body::Body;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use futures::stream;
use potluck_app::api::ExportAudit;
use potluck_app::ops::scope;
use std::sync::Arc;

const CHUNK: i64 = 1000;

pub async fn export(st: SharedState, cap: Cap<scope::SignedIn>, q: ExportAudit) -> Result<Response> {
    let params = leptos_router::params::ParamsMap::from_iter(
        [("collective", q.collective), ("actor", q.actor), ("action", q.action), ("from", q.from), ("to", q.to)]
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k.to_string(), v))),
    );
    let mut filter = potluck_app::pages::audit::filter_from_query(&params);
    filter.limit = Some(CHUNK);
    filter.before = None;
    // The first page decides the answer's status (not signed in, not allowed…).
    let first = audit_service::query_rows(&st, &cap, &filter).await?;
    let cap = Arc::new(cap);
    let body = stream::unfold((Some(first), st, cap, filter), |(page, st, cap, mut filter)| async move {
        let rows = match page {
            Some(rows) => rows,
            None => match audit_service::query_rows(&st, &*cap, &filter).await {
                Ok(rows) => rows,
                Err(e) => {
                    let e = e.into_api(&cap.origin().request_id);
                    return Some((Err(std::io::Error::other(e.to_string())), (Some(Vec::new()), st, cap, filter)));
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
        Some((Ok::<_, std::io::Error>(chunk), (next, st, cap, filter)))
    });
    Ok((
        [
            (header::CONTENT_TYPE, "application/jsonl; charset=utf-8"),
            (header::CONTENT_DISPOSITION, "attachment; filename=\"potluck-audit.jsonl\""),
        ],
        Body::from_stream(body),
    )
        .into_response())
}
