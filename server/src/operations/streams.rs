//! The app endpoints that stream: a job's progress (Server-Sent Events), a service's logs, a
//! command run in a service's container, and the env file download. They are operations like
//! any other (declared in `potluck_app::api`, registered in `operations.rs`): each receives the
//! capability for its app or job, and reaches the app's containers only through its [`Stack`].

use crate::adapters::engine::docker::error_text;
use crate::domain::apps::stack::Stack;
use crate::domain::apps::{backups, jobs};
use crate::domain::audit::{self, AuditAction, Event};
use crate::domain::authz::Cap;
use crate::error::Result;
use crate::state::SharedState;
use axum::body::Body;
use axum::http::header;
use axum::response::sse::{self, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use bollard::exec::StartExecResults;
use futures::{Stream, StreamExt};
use potluck_app::api::{DownloadBackup, DownloadEnv, JobEvents, RunCommand, ServiceLogs};
use potluck_app::error::ApiError;
use potluck_app::model::JobEventView;
use potluck_app::ops::scope;
use serde_json::json;
use std::convert::Infallible;
use std::time::Duration;

/// How often a job's stream reads what other replicas wrote.
const CATCH_UP: Duration = Duration::from_millis(500);

/// `event: progress` for each job event after `after`, then `event: end` with the final state.
pub async fn job_events(st: SharedState, cap: Cap<scope::Job>, input: JobEvents) -> Result<Response> {
    let id = cap.job().id;
    // Subscribe before reading what is stored (the capability was made just before), so
    // nothing falls between the two.
    let mut live = st.jobs.events.subscribe();
    let q = input;
    let stream = async_stream::stream! {
        let mut last = q.after;
        let mut first = true;
        // Events come from this replica's broadcast as they are written here; what another
        // replica writes (or a burst this one was too slow for) is read from the table, by
        // sequence number, at least every `CATCH_UP`: the stream stays in order and whole.
        let mut catch_up = tokio::time::interval(CATCH_UP);
        catch_up.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            match jobs::events_after(&st, id, last).await {
                Ok(stored) => {
                    for e in stored {
                        last = e.seq;
                        yield Ok::<_, Infallible>(progress(&e));
                    }
                }
                Err(e) if first => {
                    yield Ok(sse::Event::default().event("end").data(json!({ "state": "unknown", "result": e.to_string() }).to_string()));
                    return;
                }
                Err(_) => {}
            }
            first = false;
            if let Ok(Some(job)) = jobs::get(&st, id).await {
                if job.finished_at.is_some() {
                    // It may have written more between the two reads.
                    for e in jobs::events_after(&st, id, last).await.unwrap_or_default() {
                        yield Ok(progress(&e));
                    }
                    yield Ok(end(job.state.as_str(), job.result.as_deref().unwrap_or_default()));
                    return;
                }
            }
            // Follow the broadcast until the table is to be read again: at the tick, at a gap,
            // or at the job's end (whose state the table then gives).
            loop {
                tokio::select! {
                    got = live.recv() => match got {
                        Ok((job_id, e)) if job_id == id => {
                            if e.kind == "succeeded" || e.kind == "failed" || e.seq > last + 1 {
                                break;
                            }
                            if e.seq == last + 1 {
                                last = e.seq;
                                yield Ok(progress(&e));
                            }
                        }
                        Ok(_) => {}
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => break,
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                    },
                    _ = catch_up.tick() => break,
                }
            }
        }
    };
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))).into_response())
}

fn progress(e: &JobEventView) -> sse::Event {
    sse::Event::default().event("progress").id(e.seq.to_string()).data(serde_json::to_string(e).unwrap_or_default())
}

fn end(state: &str, result: &str) -> sse::Event {
    sse::Event::default().event("end").data(json!({ "state": state, "result": result }).to_string())
}

/// A service's logs as plain text; `follow=1` keeps the answer open and streams new lines.
pub async fn logs(st: SharedState, cap: Cap<scope::App>, q: ServiceLogs) -> Result<Response> {
    let stack = Stack::of(&st, cap.app()).await?;
    let service = stack.service(&q.service).await?;
    let follow = q.follow.as_deref().is_some_and(|f| f != "0" && f != "false");
    let tail = q.tail.clone().filter(|t| t == "all" || t.parse::<u32>().is_ok()).unwrap_or_else(|| "200".into());
    let stream = stack.logs(&service, follow, &tail).map(|item| match item {
        Ok(out) => Ok::<_, std::io::Error>(out.into_bytes()),
        Err(e) => Ok(format!("\n[potluck: the log stream ended: {}]\n", error_text(&e)).into()),
    });
    Ok(text_stream(stream))
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

/// `abra app run`: runs a command in a running container of one of the app's services,
/// streaming its output and ending with its exit code. Audited (the command line, not its output).
pub async fn run(st: SharedState, cap: Cap<scope::App>, form: RunCommand) -> Result<Response> {
    let app = cap.app();
    let argv = match shell_words::split(form.command.trim()) {
        Ok(a) if !a.is_empty() => a,
        Ok(_) => return Err(ApiError::invalid("command", "give a command to run").into()),
        Err(e) => return Err(ApiError::invalid("command", format!("cannot split the command: {e}")).into()),
    };
    if form.command.len() > 8192 {
        return Err(ApiError::invalid("command", "at most 8192 characters").into());
    }
    let stack = Stack::of(&st, app).await?;
    let service = stack.service(&form.service).await?;
    let container = stack.running_container(&service).await.map_err(ApiError::conflict)?;
    let c = cap.collective();
    let mut tx = audit::begin(&st.db).await?;
    let event = Event::new(AuditAction::AppRun, format!("app {}", app.domain))
        .in_collective(c.id, &c.slug)
        .details(json!({ "service": service, "command": argv }));
    tx.record(cap.origin(), event).await?;
    tx.commit().await?;
    let (exec, started) = stack.exec(&container, argv).await.map_err(ApiError::unavailable)?;
    let output = match started {
        StartExecResults::Attached { output, .. } => output,
        StartExecResults::Detached => return Err(ApiError::unavailable("the command detached").into()),
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
        let code = stack.exec_exit_code(&exec).await;
        yield Ok(match code {
            Some(c) => format!("\n[exit code {c}]\n"),
            None => "\n[exit code unknown]\n".to_string(),
        }.into());
    };
    Ok(text_stream(stream))
}

/// The app's env file, as abra keeps it in `~/.abra/servers/<server>/<domain>.env`.
pub async fn env_file(_st: SharedState, cap: Cap<scope::App>, _input: DownloadEnv) -> Result<Response> {
    let app = cap.app();
    Ok((
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8".to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{}.env\"", app.domain.replace('"', ""))),
        ],
        app.env.clone(),
    )
        .into_response())
}

/// A snapshot of the app as a tar archive, read out of its repository as it is sent. The
/// download is in the audit log before the first byte leaves.
pub async fn backup_tar(st: SharedState, cap: Cap<scope::App>, input: DownloadBackup) -> Result<Response> {
    let app = cap.app();
    let snapshot = input.snapshot.trim_end_matches(".tar");
    let (found, repo_id) = backups::find(&st, app.id, snapshot).await?;
    let repo = backups::repo_by_id(&st, app.collective_id, repo_id).await?;
    let (location, password) = repo.open(&st).await.map_err(ApiError::unavailable)?;
    let c = cap.collective();
    let mut tx = audit::begin(&st.db).await?;
    let event = Event::new(AuditAction::BackupDownload, format!("app {}", app.domain))
        .in_collective(c.id, &c.slug)
        .details(json!({ "snapshot": found.snapshot, "repo": repo.name }));
    tx.record(cap.origin(), event).await?;
    tx.commit().await?;
    let (chunks, mut rx) = tokio::sync::mpsc::channel(8);
    let (outcome, ended) = tokio::sync::oneshot::channel();
    let id = found.snapshot.clone();
    tokio::task::spawn_blocking(move || {
        let _ = outcome.send(crate::adapters::backup::run::export_tar(&location, &password, &id, chunks));
    });
    let domain = app.domain.clone();
    // A snapshot that cannot be read to the end breaks the download rather than ending it: a
    // truncated archive must not look whole.
    let stream = async_stream::stream! {
        while let Some(chunk) = rx.recv().await {
            yield Ok::<_, std::io::Error>(chunk);
        }
        match ended.await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::warn!(app = %domain, error = %e, "snapshot download stopped");
                yield Err(std::io::Error::other(e));
            }
            Err(_) => yield Err(std::io::Error::other("the export stopped")),
        }
    };
    let body = Body::from_stream(stream);
    let name = format!("{}-{}.tar", app.domain, found.short_id()).replace('"', "");
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-tar".to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")),
        ],
        body,
    )
        .into_response())
}
