//! A stack's containers on the engine Potluck talks to: finding a service's running one, and
//! running a command in it to the end (hooks, checks). Commands whose output streams to a
//! browser use the engine's exec API directly.

use crate::convert::NAMESPACE_LABEL;
use crate::docker::error_text;
use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::models::TaskState;
use bollard::query_parameters::ListTasksOptions;
use bollard::Docker;
use futures::StreamExt;
use std::collections::HashMap;

/// A running container of `service` (its full name, `<stack>_<service>`) of `stack`, on the node
/// this engine connection reaches: exec and the archive API work only there.
pub async fn running(docker: &Docker, stack: &str, service: &str) -> Result<String, String> {
    let tasks = docker
        .list_tasks(Some(ListTasksOptions {
            filters: Some(HashMap::from([
                ("service".to_string(), vec![service.to_string()]),
                ("label".to_string(), vec![format!("{NAMESPACE_LABEL}={stack}")]),
                ("desired-state".to_string(), vec!["running".to_string()]),
            ])),
        }))
        .await
        .map_err(|e| error_text(&e))?;
    let task = tasks
        .into_iter()
        .find(|t| t.status.as_ref().and_then(|s| s.state) == Some(TaskState::RUNNING))
        .ok_or_else(|| format!("service {service} has no running task"))?;
    let id = task
        .status
        .and_then(|s| s.container_status)
        .and_then(|c| c.container_id)
        .ok_or_else(|| format!("the task of {service} has no container yet"))?;
    match docker.inspect_container(&id, None::<bollard::query_parameters::InspectContainerOptions>).await {
        Ok(c) => {
            let ns = c.config.and_then(|c| c.labels).and_then(|l| l.get(NAMESPACE_LABEL).cloned());
            if ns.as_deref() != Some(stack) {
                return Err(format!("the container of {service} is not part of stack {stack}"));
            }
            Ok(id)
        }
        Err(_) => Err(format!(
            "the container of {service} runs on another node ({}); Potluck reaches only the node it is connected to",
            task.node_id.unwrap_or_default()
        )),
    }
}

/// How a command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ran {
    pub exit_code: Option<i64>,
    /// The end of its output (stdout and stderr, as they came), at most [`OUTPUT_TAIL`] bytes.
    pub output: String,
}

impl Ran {
    pub fn ok(&self) -> bool {
        self.exit_code == Some(0)
    }

    /// The last lines of the output, for an error message.
    pub fn tail(&self, lines: usize) -> String {
        let all: Vec<&str> = self.output.lines().filter(|l| !l.trim().is_empty()).collect();
        all[all.len().saturating_sub(lines)..].join(" / ")
    }
}

pub const OUTPUT_TAIL: usize = 16 * 1024;

/// Starts `argv` in `container` with its output attached; returns the exec's id and the stream.
pub async fn start(docker: &Docker, container: &str, argv: Vec<String>) -> Result<(String, StartExecResults), String> {
    let exec = docker
        .create_exec(
            container,
            CreateExecOptions::<String> {
                cmd: Some(argv),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| error_text(&e))?
        .id;
    let started = docker.start_exec(&exec, None).await.map_err(|e| error_text(&e))?;
    Ok((exec, started))
}

/// Runs `argv` in `container` to the end and returns its exit code and the end of its output.
pub async fn run(docker: &Docker, container: &str, argv: Vec<String>) -> Result<Ran, String> {
    let (exec, started) = start(docker, container, argv).await?;
    let mut output = Vec::new();
    if let StartExecResults::Attached { output: mut stream, .. } = started {
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| error_text(&e))?;
            output.extend_from_slice(&chunk.into_bytes());
            if output.len() > 2 * OUTPUT_TAIL {
                output.drain(..output.len() - OUTPUT_TAIL);
            }
        }
    }
    let start = output.len().saturating_sub(OUTPUT_TAIL);
    let exit_code = docker.inspect_exec(&exec).await.map_err(|e| error_text(&e))?.exit_code;
    Ok(Ran { exit_code, output: String::from_utf8_lossy(&output[start..]).into_owned() })
}
