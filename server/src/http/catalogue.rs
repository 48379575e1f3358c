//! The catalogue: `GET /catalogue.json` (Co-op Cloud's `recipes.json` shape, public recipes only)
//! and `POST /catalogue/import`, which registers the recipes of an existing `recipes.json`,
//! streaming one line per recipe as it goes.

use super::ErrorResponse;
use crate::authz::authorize_federation;
use crate::recipes::{catalogue, store};
use crate::state::SharedState;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Json, Router};
use futures::StreamExt;
use potluck_app::error::ApiError;
use potluck_app::ports::Caller;
use serde::Deserialize;

pub fn routes() -> Router<SharedState> {
    Router::new().route("/catalogue.json", get(catalogue_json)).route("/catalogue/import", post(import))
}

async fn catalogue_json(State(st): State<SharedState>, Extension(caller): Extension<Caller>) -> Response {
    match catalogue::of_store(&st).await {
        Ok(c) => ([(header::CACHE_CONTROL, "no-cache")], Json(c)).into_response(),
        Err(e) => ErrorResponse(e.into_api(&caller.request_id)).into_response(),
    }
}

#[derive(Deserialize)]
struct ImportForm {
    /// The content of a recipes.json.
    catalogue: String,
}

async fn import(
    State(st): State<SharedState>,
    Extension(caller): Extension<Caller>,
    Form(form): Form<ImportForm>,
) -> Response {
    if let Err(e) = authorize_federation(&caller) {
        return ErrorResponse(e.into_api(&caller.request_id)).into_response();
    }
    let entries: catalogue::Catalogue = match serde_json::from_str(&form.catalogue) {
        Ok(c) => c,
        Err(e) => {
            return ErrorResponse(ApiError::invalid("catalogue", format!("not a recipes.json: {e}"))).into_response()
        }
    };
    let stream = async_stream::stream! {
        let total = entries.len();
        let mut registered = 0;
        for (name, meta) in entries {
            let url = if meta.repository.is_empty() { meta.ssh_url.clone() } else { meta.repository.clone() };
            let line = match store::find(&st, &name).await {
                Ok(Some(_)) => format!("{name}: skipped, already registered\n"),
                Err(e) => format!("{name}: failed: {}\n", e.into_api(&caller.request_id)),
                Ok(None) if url.is_empty() => format!("{name}: failed: no repository given\n"),
                Ok(None) => match store::register(&st, &caller, &url, Some(&name), None, None).await {
                    Ok(_) => {
                        registered += 1;
                        format!("{name}: registered from {url}\n")
                    }
                    Err(e) => format!("{name}: failed: {}\n", e.into_api(&caller.request_id)),
                },
            };
            yield Ok::<_, std::io::Error>(line);
        }
        yield Ok(format!("imported {registered} of {total} recipes\n"));
    };
    super::apps::text_stream(stream.map(|line| line.map(bytes::Bytes::from)))
}
