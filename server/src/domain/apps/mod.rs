//! Deploying to a collective's own swarm: servers, apps, secrets, persisted deploy jobs, and what
//! runs now.

#[allow(clippy::module_inception)]
pub mod apps;
pub mod backups;
pub mod drift;
pub mod drill_schedules;
pub mod drills;
pub mod fleet;
pub mod health;
pub mod jobs;
pub mod live;
pub mod plan;
pub mod schedules;
pub mod secrets;
pub mod servers;
pub mod stack;
pub mod sync;
pub mod target;
pub mod tree;

pub use apps::deployments_of;

use crate::adapters::engine::envfile::EnvFile;
use crate::domain::authz::Cap;
use crate::domain::recipes::{inspect, store};
use crate::error::Result;
use crate::state::AppState;
use potluck_app::api::PreviewJob;
use potluck_app::error::ApiError;
use potluck_app::model::*;
use potluck_app::ops::scope;
use stack::Stack;

/// Everything the app page shows.
pub async fn detail(st: &AppState, access: &Cap<scope::App>) -> Result<AppDetail> {
    let app = access.app().clone();
    let recipe = store::get(st, &app.recipe).await?;
    let versions = plan::versions(st, &recipe).await.unwrap_or_default();
    let rev =
        app.version.clone().or_else(|| versions.first().cloned()).unwrap_or_else(|| recipe.default_branch.clone());
    let files = inspect::files_of(st, &recipe, &rev).await.ok();
    let compose_files: Vec<String> = files
        .as_ref()
        .map(|f| f.files.keys().filter(|k| inspect::is_compose_file(k)).cloned().collect())
        .unwrap_or_default();
    let sample = files.as_ref().and_then(|f| f.text(".env.sample"));
    let (entries, overlays, missing_keys) = apps::editing_view(&app.env, sample.as_deref(), &compose_files);
    let stack = Stack::of(st, &app).await;
    let (services, live_error) = match &stack {
        Ok(s) => match s.services().await {
            Ok(s) => (s, None),
            Err(e) => (Vec::new(), Some(e)),
        },
        Err(e) => (Vec::new(), Some(e.to_string())),
    };
    let secrets = secrets::statuses(st, &app, stack.as_ref().ok()).await.unwrap_or_default();
    let role = access.role().unwrap_or(Role::Viewer);
    Ok(AppDetail {
        app: app.summary(),
        env: app.env.clone(),
        entries,
        overlays,
        missing_keys,
        versions,
        secrets,
        services,
        live_error,
        jobs: jobs::for_app(st, app.id, 20).await?,
        coverage: backups::coverage_of(st, app.id).await?,
        backups: backups::for_app(st, app.id).await?,
        backup_repos: backups::repo_names(st, app.collective_id).await?,
        backup_schedule: schedules::of_app(st, app.id).await?,
        incoming: sync::incoming_for_app(st, &app).await?,
        can_manage: role.grants(Permission::ManageApps),
        can_operate: role.grants(Permission::OperateApps),
        can_manage_secrets: role.grants(Permission::ManageSecrets),
        can_run: role.grants(Permission::RunCommands),
    })
}

/// What an action would do, before it is confirmed: the version it goes to (decided as the job
/// decides it), the checks, the changes on the swarm, the release notes of every version passed.
pub async fn preview(st: &AppState, access: &Cap<scope::App>, input: PreviewJob) -> Result<DeployPreview> {
    let app = access.app().clone();
    let kind = JobKind::parse(&input.kind).map_err(|e| ApiError::invalid("kind", e))?;
    if !kind.is_deploy() {
        return Err(
            ApiError::invalid("kind", format!("{kind} changes no service: start it from the app's backups")).into()
        );
    }
    let mut notes = Vec::new();
    if kind == JobKind::Undeploy {
        notes.push("Services, networks and configs of the stack are removed; volumes and secrets stay unless you tick the boxes.".into());
        return Ok(DeployPreview {
            kind,
            from_version: app.version.clone(),
            to_version: None,
            checks: Vec::new(),
            changes: vec![format!("remove stack {}", app.stack_name)],
            release_notes: Vec::new(),
            notes,
        });
    }
    let resolved = target::resolve(st, &app, kind, Some(&input.target)).await?;
    let to = resolved.version.unwrap_or_default();
    let target_enum =
        if kind == JobKind::Chaos { plan::Target::Chaos(to.clone()) } else { plan::Target::Version(to.clone()) };
    let p = plan::build(st, &app, &resolved.recipe, &target_enum).await?;
    let stack = Stack::of(st, &app).await.ok();
    let checks = plan::checks(st, &app, &p, stack.as_ref(), kind).await;
    let changes = match &stack {
        Some(s) => {
            s.dry_run(&p.plan, &app.ownership()).await.unwrap_or_else(|e| vec![format!("cannot read the swarm: {e}")])
        }
        None => vec![format!("server {} is unreachable", app.server)],
    };
    let release_notes = if matches!(kind, JobKind::Upgrade | JobKind::Deploy) {
        plan::release_notes_between(st, &app, app.version.as_deref(), &to).await.unwrap_or_default()
    } else {
        Vec::new()
    };
    if kind == JobKind::Upgrade {
        notes.push(
            "A backup is taken first where the recipe declares backups and the collective has a repository; if it fails, nothing is upgraded.".into(),
        );
        notes.push(
            "If the upgraded stack does not converge, the version running now is deployed again, and the snapshot taken first is offered for restore.".into(),
        );
    }
    if kind == JobKind::Rollback {
        notes.push(
            "A rollback changes the services' specs only: volumes (databases, uploads) are not rolled back.".into(),
        );
    }
    if kind == JobKind::Chaos {
        notes.push(
            "A chaos deploy runs a commit that is not a release; the version label keeps the last release.".into(),
        );
    }
    Ok(DeployPreview {
        kind,
        from_version: app.version.clone(),
        to_version: Some(to),
        checks,
        changes,
        release_notes,
        notes,
    })
}

/// Reads the secret-free env file for display.
pub fn env_keys(env: &str) -> Vec<String> {
    EnvFile::parse(env).map(|e| e.entries().map(|x| x.key.clone()).collect()).unwrap_or_default()
}

pub use jobs::JobOptions;
