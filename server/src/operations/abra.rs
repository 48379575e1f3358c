//! abra's `servers/` tree: `GET /c/{slug}/abra/servers.tar.gz` (the collective's apps as the
//! files abra reads) and `POST /c/{slug}/abra/upload` (a tree from a form's file field, kept for
//! the preview page it redirects to).

use crate::domain::apps::tree;
use crate::domain::authz::Cap;
use crate::error::Result;
use crate::state::SharedState;
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use potluck_app::api::{ExportAbraTree, UploadAbraTree};
use potluck_app::ops::scope;

pub async fn export(st: SharedState, cap: Cap<scope::Collective>, _input: ExportAbraTree) -> Result<Response> {
    let archive = tree::export(&st, &cap).await?;
    let name = format!("attachment; filename=\"{}-servers.tar.gz\"", cap.collective().slug);
    Ok((
        [
            (header::CONTENT_TYPE, "application/gzip".to_string()),
            (header::CONTENT_DISPOSITION, name),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        archive,
    )
        .into_response())
}

pub async fn upload(st: SharedState, cap: Cap<scope::Collective>, input: UploadAbraTree) -> Result<Response> {
    let id = tree::upload(&st, &cap, &input.archive).await?;
    Ok(Redirect::to(&format!("/c/{}/abra/{id}", cap.collective().slug)).into_response())
}
