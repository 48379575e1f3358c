//! The live streams of the pages that show the swarm (Server-Sent Events): the app page's
//! services and tasks, the collective's apps list with each app's health, and its servers. Each
//! sends one event with the whole of what its page shows, first at once and then whenever it
//! differs, looked at when a server it depends on changed (see `domain::apps::live`) and every
//! `FALLBACK` regardless. A stream ends after `MAX_AGE`: the browser reconnects, and the caller is
//! authorized again.

use crate::domain::apps::{self, live::Seqs, servers, stack::Stack};
use crate::domain::authz::Cap;
use crate::error::Result;
use crate::state::SharedState;
use axum::response::sse::{self, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::future::BoxFuture;
use potluck_app::api::{AppLive, AppsLive, ServersLive};
use potluck_app::model::{AppLiveView, ServerId};
use potluck_app::ops::scope;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

/// Read again at least this often, changes or not (what no server's number tells: a new app).
const FALLBACK: Duration = Duration::from_secs(10);
/// How long one stream lasts before the browser reconnects (and is authorized again).
const MAX_AGE: Duration = Duration::from_secs(300);

/// What a stream shows (JSON) and the servers it depends on.
type Reading = Result<(String, Vec<ServerId>)>;

fn stream(
    st: SharedState,
    event: &'static str,
    mut read: impl FnMut() -> BoxFuture<'static, Reading> + Send + 'static,
) -> Response {
    let mut seqs = st.live.subscribe(&st);
    let mut stopping = st.live.stopping();
    let stream = async_stream::stream! {
        let until = tokio::time::Instant::now() + MAX_AGE;
        // Reconnect soon after the stream ends.
        yield Ok::<_, Infallible>(sse::Event::default().retry(Duration::from_secs(1)).comment("live"));
        let mut sent: Option<String> = None;
        loop {
            let watched = match read().await {
                Ok((json, watched)) => {
                    if sent.as_deref() != Some(json.as_str()) {
                        yield Ok(sse::Event::default().event(event).data(&json));
                        sent = Some(json);
                    }
                    watched
                }
                Err(e) => {
                    // Gone (the app was removed) or the database failed: say so and stop.
                    yield Ok(sse::Event::default().event("gone").data(serde_json::to_string(&e.to_string()).unwrap_or_default()));
                    return;
                }
            };
            let of = |s: &Seqs| watched.iter().map(|id| s.get(id).copied()).collect::<Vec<_>>();
            let seen = of(&seqs.borrow_and_update());
            let wake = (tokio::time::Instant::now() + FALLBACK).min(until);
            loop {
                tokio::select! {
                    changed = seqs.changed() => {
                        if changed.is_err() {
                            return;
                        }
                        if of(&seqs.borrow_and_update()) != seen {
                            break;
                        }
                    }
                    _ = tokio::time::sleep_until(wake) => break,
                    _ = stopping.wait_for(|stop| *stop) => return,
                }
            }
            if tokio::time::Instant::now() >= until {
                return;
            }
        }
    };
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))).into_response()
}

/// `app_live`: the app's row (status, health) and its services and tasks.
pub async fn app(st: SharedState, cap: Cap<scope::App>, _: AppLive) -> Result<Response> {
    let (id, server) = (cap.app().id, cap.app().server_id);
    let state = st.clone();
    Ok(stream(st, "app", move || {
        let st = state.clone();
        Box::pin(async move {
            let Some(app) = apps::apps::by_id(&st, id).await? else {
                return Err(potluck_app::error::ApiError::not_found("the app was removed").into());
            };
            let (services, live_error) = match Stack::of(&st, &app).await {
                Ok(stack) => match stack.services().await {
                    Ok(s) => (s, None),
                    Err(e) => (Vec::new(), Some(e)),
                },
                Err(e) => (Vec::new(), Some(e.to_string())),
            };
            let view = AppLiveView { app: app.summary(), services, live_error };
            Ok((serde_json::to_string(&view).unwrap_or_default(), vec![server]))
        })
    }))
}

/// `apps_live`: the collective's apps, as the apps list shows them.
pub async fn apps(st: SharedState, cap: Cap<scope::Collective>, _: AppsLive) -> Result<Response> {
    let cap = Arc::new(cap);
    let state = st.clone();
    Ok(stream(st, "apps", move || {
        let (st, cap) = (state.clone(), cap.clone());
        Box::pin(async move {
            let list = apps::apps::list(&st, &cap).await?;
            let servers = servers::in_collective(&st, cap.collective().id).await?.iter().map(|s| s.id).collect();
            Ok((serde_json::to_string(&list).unwrap_or_default(), servers))
        })
    }))
}

/// `servers_live`: the collective's servers, as the servers page shows them.
pub async fn servers(st: SharedState, cap: Cap<scope::Collective>, _: ServersLive) -> Result<Response> {
    let cap = Arc::new(cap);
    let state = st.clone();
    Ok(stream(st, "servers", move || {
        let (st, cap) = (state.clone(), cap.clone());
        Box::pin(async move {
            let list = servers::list(&st, &cap).await?;
            let ids = list.iter().map(|s| s.id).collect();
            Ok((serde_json::to_string(&list).unwrap_or_default(), ids))
        })
    }))
}
