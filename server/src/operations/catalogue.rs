//! The catalogue: `GET /catalogue.json` (Co-op Cloud's `recipes.json` shape, public recipes only)
//! and `POST /catalogue/import`, which registers the recipes of an existing `recipes.json`,
//! streaming one line per recipe as it goes.

use crate::domain::authz::Cap;
use crate::domain::recipes::{catalogue, store};
use crate::error::Result;
use crate::state::SharedState;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::StreamExt;
use potluck_app::api::{CatalogueJson, ImportCatalogue};
use potluck_app::error::ApiError;
use potluck_app::ops::scope;

pub async fn catalogue_json(st: SharedState, _cap: Cap<scope::Public>, _input: CatalogueJson) -> Result<Response> {
    let c = catalogue::of_store(&st).await?;
    Ok(([(header::CACHE_CONTROL, "no-cache")], Json(c)).into_response())
}

pub async fn import(st: SharedState, cap: Cap<scope::Federation>, form: ImportCatalogue) -> Result<Response> {
    let entries: catalogue::Catalogue = serde_json::from_str(&form.catalogue)
        .map_err(|e| ApiError::invalid("catalogue", format!("not a recipes.json: {e}")))?;
    let request_id = cap.origin().request_id.clone();
    let stream = async_stream::stream! {
        let total = entries.len();
        let mut registered = 0;
        for (name, meta) in entries {
            let url = if meta.repository.is_empty() { meta.ssh_url.clone() } else { meta.repository.clone() };
            let line = match store::find(&st, &name).await {
                Ok(Some(_)) => format!("{name}: skipped, already registered\n"),
                Err(e) => format!("{name}: failed: {}\n", e.into_api(&request_id)),
                Ok(None) if url.is_empty() => format!("{name}: failed: no repository given\n"),
                Ok(None) => match store::register(
                    &st,
                    &store::Registrar { user_id: cap.user(), federation_admin: true, origin: cap.origin() },
                    &url,
                    Some(&name),
                    None,
                    None,
                )
                .await
                {
                    Ok(_) => {
                        registered += 1;
                        format!("{name}: registered from {url}\n")
                    }
                    Err(e) => format!("{name}: failed: {}\n", e.into_api(&request_id)),
                },
            };
            yield Ok::<_, std::io::Error>(line);
        }
        yield Ok(format!("imported {registered} of {total} recipes\n"));
    };
    Ok(super::streams::text_stream(stream.map(|line| line.map(bytes::Bytes::from))))
}
