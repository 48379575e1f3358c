//! The app endpoints that stream: a job's progress (Server-Sent Events), a service's logs, a
//! command run in a service's container, and the env file download. Each checks the caller's
//! permission in the app's collective exactly like the server functions do.

use super::ErrorResponse;
use crate::apps::{apps, jobs, live, plan};
use crate::audit::{self, Event};
use crate::authz::{authorize, can};
use crate::engine::docker::error_text;
use crate::error::Error;
use crate::state::SharedState;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::sse::{self, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use bollard::exec::{CreateExecOptions, StartExecResults};
use futures::{Stream, StreamExt};
use potluck_app::error::ApiError;
use potluck_app::model::JobEventView;
use potluck_app::ports::Caller;
use serde::Deserialize;
use serde_json::json;
use std::convert::Infallible;
use std::time::Duration;

pub fn routes() -> Router<SharedState> {
    Router::new()
        .route("/jobs/{id}/events", get(job_events))
        .route("/c/{slug}/apps/{domain}/logs", get(logs))
        .route("/c/{slug}/apps/{domain}/run", post(run))
        .route("/c/{slug}/apps/{domain}/env", get(env_file))
}

fn error(caller: &Caller, e: Error) -> Response {
    ErrorResponse(e.into_api(&caller.request_id)).into_response()
}

#[derive(Deserialize)]
struct After {
    #[serde(default)]
    after: i64,
}

/// `event: progress` for each job event after `after`, then `event: end` with the final state.
async fn job_events(
    State(st): State<SharedState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<i64>,
    Query(q): Query<After>,
) -> Response {
    // Subscribe before reading what is stored, so nothing falls between the two.
    let mut live = st.jobs.events.subscribe();
    if let Err(e) = jobs::detail(&st, &caller, id).await {
        return error(&caller, e);
    }
    let stream = async_stream::stream! {
        let mut last = q.after;
        match jobs::events_after(&st, id, last).await {
            Ok(stored) => {
                for e in stored {
                    last = e.seq;
                    yield Ok::<_, Infallible>(progress(&e));
                }
            }
            Err(e) => {
                yield Ok(sse::Event::default().event("end").data(json!({ "state": "unknown", "result": e.to_string() }).to_string()));
                return;
            }
        }
        if let Ok(Some(job)) = jobs::get(&st, id).await {
            if job.finished_at.is_some() {
                // It may have finished after the read above: send what it wrote since.
                for e in jobs::events_after(&st, id, last).await.unwrap_or_default() {
                    yield Ok(progress(&e));
                }
                yield Ok(end(&job.state, job.result.as_deref().unwrap_or_default()));
                return;
            }
        }
        loop {
            match live.recv().await {
                Ok((job_id, e)) if job_id == id => {
                    if e.kind == "succeeded" || e.kind == "failed" {
                        yield Ok(end(&e.kind, &e.text));
                        return;
                    }
                    if e.seq > last {
                        last = e.seq;
                        yield Ok(progress(&e));
                    }
                }
                Ok(_) => {}
                // Too slow to keep up: catch up from the database.
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    for e in jobs::events_after(&st, id, last).await.unwrap_or_default() {
                        last = e.seq;
                        yield Ok(progress(&e));
                    }
                    if let Ok(Some(job)) = jobs::get(&st, id).await {
                        if job.finished_at.is_some() {
                            for e in jobs::events_after(&st, id, last).await.unwrap_or_default() {
                                yield Ok(progress(&e));
                            }
                            yield Ok(end(&job.state, job.result.as_deref().unwrap_or_default()));
                            return;
                        }
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    };
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))).into_response()
}

fn progress(e: &JobEventView) -> sse::Event {
    sse::Event::default().event("progress").id(e.seq.to_string()).data(serde_json::to_string(e).unwrap_or_default())
}

fn end(state: &str, result: &str) -> sse::Event {
    sse::Event::default().event("end").data(json!({ "state": state, "result": result }).to_string())
}

#[derive(Deserialize)]
struct LogsQuery {
    service: String,
    #[serde(default)]
    follow: Option<String>,
    #[serde(default)]
    tail: Option<String>,
}

/// A service's logs as plain text; `follow=1` keeps the answer open and streams new lines.
async fn logs(
    State(st): State<SharedState>,
    Extension(caller): Extension<Caller>,
    Path((slug, domain)): Path<(String, String)>,
    Query(q): Query<LogsQuery>,
) -> Response {
    // Logs can carry anything an app prints: operators only.
    let access = match authorize::<can::OperateApps>(&st.db, &caller, &slug).await {
        Ok(a) => a,
        Err(e) => return error(&caller, e),
    };
    let app = match apps::in_collective(&st, &access.collective, &domain).await {
        Ok(a) => a,
        Err(e) => return error(&caller, e),
    };
    let service = q.service.trim();
    let full = if service.starts_with(&format!("{}_", app.stack_name)) {
        service.to_string()
    } else {
        format!("{}_{service}", app.stack_name)
    };
    let docker = match plan::docker_for_app(&st, &app).await {
        Ok(d) => d,
        Err(e) => return ErrorResponse(e).into_response(),
    };
    if let Err(e) = docker.inspect_service(&full, None).await {
        let e = ApiError::not_found(format!("service {full} ({})", error_text(&e)));
        return ErrorResponse(e).into_response();
    }
    let follow = q.follow.as_deref().is_some_and(|f| f != "0" && f != "false");
    let tail = q.tail.clone().filter(|t| t == "all" || t.parse::<u32>().is_ok()).unwrap_or_else(|| "200".into());
    let options = bollard::query_parameters::LogsOptionsBuilder::default()
        .stdout(true)
        .stderr(true)
        .follow(follow)
        .tail(&tail)
        .timestamps(true)
        .build();
    let stream = docker.service_logs(&full, Some(options)).map(|item| match item {
        Ok(out) => Ok::<_, std::io::Error>(out.into_bytes()),
        Err(e) => Ok(format!("\n[potluck: the log stream ended: {}]\n", error_text(&e)).into()),
    });
    text_stream(stream)
}

pub(super) fn text_stream(
    stream: impl Stream<Item = Result<bytes::Bytes, std::io::Error>> + Send + 'static,
) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            // Lets proxies pass each chunk on at once.
            (header::HeaderName::from_static("x-accel-buffering"), "no"),
        ],
        Body::from_stream(stream),
    )
        .into_response()
}

#[derive(Deserialize)]
struct RunForm {
    service: String,
    command: String,
}

/// `abra app run`: runs a command in a running container of the service, streaming its output
/// and ending with its exit code. Audited (the command line, not its output).
async fn run(
    State(st): State<SharedState>,
    Extension(caller): Extension<Caller>,
    Path((slug, domain)): Path<(String, String)>,
    Form(form): Form<RunForm>,
) -> Response {
    let access = match authorize::<can::RunCommands>(&st.db, &caller, &slug).await {
        Ok(a) => a,
        Err(e) => return error(&caller, e),
    };
    let app = match apps::in_collective(&st, &access.collective, &domain).await {
        Ok(a) => a,
        Err(e) => return error(&caller, e),
    };
    let argv = match shell_words::split(form.command.trim()) {
        Ok(a) if !a.is_empty() => a,
        Ok(_) => return ErrorResponse(ApiError::invalid("command", "give a command to run")).into_response(),
        Err(e) => {
            return ErrorResponse(ApiError::invalid("command", format!("cannot split the command: {e}")))
                .into_response()
        }
    };
    let service = form.service.trim();
    let full = format!("{}_{service}", app.stack_name);
    let docker = match plan::docker_for_app(&st, &app).await {
        Ok(d) => d,
        Err(e) => return ErrorResponse(e).into_response(),
    };
    let container = match live::running_container(&docker, &full).await {
        Ok(c) => c,
        Err(e) => return ErrorResponse(ApiError::conflict(e)).into_response(),
    };
    let audited = async {
        let c = &access.collective;
        let mut tx = st.db.begin().await?;
        let event = Event::new("app.run", format!("app {}", app.domain))
            .in_collective(c.id, &c.slug)
            .details(json!({ "service": service, "command": argv }));
        audit::append(&mut tx, &access.origin, event).await?;
        tx.commit().await?;
        Ok::<_, Error>(())
    };
    if let Err(e) = audited.await {
        return error(&caller, e);
    }
    let exec = docker
        .create_exec(
            &container,
            CreateExecOptions::<String> {
                cmd: Some(argv),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                ..Default::default()
            },
        )
        .await;
    let exec = match exec {
        Ok(e) => e.id,
        Err(e) => return ErrorResponse(ApiError::unavailable(error_text(&e))).into_response(),
    };
    let output = match docker.start_exec(&exec, None).await {
        Ok(StartExecResults::Attached { output, .. }) => output,
        Ok(StartExecResults::Detached) => {
            return ErrorResponse(ApiError::unavailable("the command detached")).into_response()
        }
        Err(e) => return ErrorResponse(ApiError::unavailable(error_text(&e))).into_response(),
    };
    let stream = async_stream::stream! {
        let mut output = output;
        while let Some(item) = output.next().await {
            match item {
                Ok(out) => yield Ok::<_, std::io::Error>(out.into_bytes()),
                Err(e) => {
                    yield Ok(format!("\n[potluck: the output ended: {}]\n", error_text(&e)).into());
                    break;
                }
            }
        }
        let code = docker.inspect_exec(&exec).await.ok().and_then(|i| i.exit_code);
        yield Ok(match code {
            Some(c) => format!("\n[exit code {c}]\n"),
            None => "\n[exit code unknown]\n".to_string(),
        }.into());
    };
    text_stream(stream)
}

/// The app's env file, as abra keeps it in `~/.abra/servers/<server>/<domain>.env`.
async fn env_file(
    State(st): State<SharedState>,
    Extension(caller): Extension<Caller>,
    Path((slug, domain)): Path<(String, String)>,
) -> Response {
    match apps::export(&st, &caller, &slug, &domain).await {
        Ok(text) => (
            [
                (header::CONTENT_TYPE, "text/plain; charset=utf-8".to_string()),
                (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{}.env\"", domain.replace('"', ""))),
            ],
            text,
        )
            .into_response(),
        Err(e) => error(&caller, e),
    }
}
