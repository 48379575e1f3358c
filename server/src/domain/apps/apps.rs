//! Apps: a recipe version with a domain and an env file on one of the collective's servers.
//! Created from the recipe's `.env.sample` (as `abra app new`), edited as text or through the
//! overlay checkboxes, imported from and exported to abra's `~/.abra/servers/<server>/*.env`.

use super::servers;
use crate::adapters::db::now_ms;
use crate::adapters::engine::envfile::{commented_entries, EnvFile};
use crate::adapters::engine::{self, stack_name_for};
use crate::domain::audit::{self, AuditAction, Event};
use crate::domain::authz::{Cap, CollectiveRef};
use crate::domain::recipes::{inspect, store};
use crate::error::{Error, Result};
use crate::state::AppState;
use potluck_app::api::{CreateApp, ImportApp, SetAppEnv, SetAppOverlays};
use potluck_app::error::ApiError;
use potluck_app::model::*;
use potluck_app::ops::scope;
use serde_json::json;
use sqlx::Row;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone)]
pub struct AppRow {
    pub id: AppId,
    pub collective_id: CollectiveId,
    pub collective: String,
    pub server_id: ServerId,
    pub server: String,
    pub recipe_id: RecipeId,
    pub recipe: String,
    pub domain: String,
    pub stack_name: String,
    pub env: String,
    pub version: Option<String>,
    pub chaos: bool,
    pub chaos_version: Option<String>,
    pub status: AppStatus,
    pub updated_at: i64,
    /// Why it is failing (`apps.unhealthy_reason`), while it is (see `health.rs`).
    pub unhealthy: Option<String>,
    /// Its tasks as its server's monitor last read them (`live.rs`).
    pub health: Option<AppHealth>,
    /// Its stack, changed outside Potluck (`drift.rs`).
    pub drift: Option<AppDrift>,
    /// Objects of its stack another tool made that its operator took over (ids, `drift.rs`).
    pub adopted: BTreeSet<String>,
}

/// `apps.live_*` of a row that selected them: none until the monitor first read the app.
pub fn health_of(r: &sqlx::any::AnyRow) -> Result<Option<AppHealth>> {
    let Some(at) = r.try_get::<Option<i64>, _>("live_at")? else { return Ok(None) };
    Ok(Some(AppHealth {
        running: r.try_get::<Option<i64>, _>("live_running")?.unwrap_or(0),
        desired: r.try_get::<Option<i64>, _>("live_desired")?.unwrap_or(0),
        restarts: r.try_get::<Option<i64>, _>("live_restarts")?.unwrap_or(0),
        at,
    }))
}

const SELECT: &str = "SELECT a.id, a.collective_id, c.slug, a.server_id, s.name AS server_name, a.recipe_id, r.name AS recipe_name, \
     a.domain, a.stack_name, a.env, a.version, a.chaos, a.chaos_version, a.status, a.updated_at, \
     a.unhealthy_since, a.unhealthy_reason, a.live_running, a.live_desired, a.live_restarts, a.live_at, a.drift, a.adopted_objects \
     FROM apps a JOIN collectives c ON c.id = a.collective_id JOIN servers s ON s.id = a.server_id JOIN recipes r ON r.id = a.recipe_id";

impl AppRow {
    fn from_row(r: &sqlx::any::AnyRow) -> Result<AppRow> {
        Ok(AppRow {
            id: r.try_get("id")?,
            collective_id: r.try_get("collective_id")?,
            collective: r.try_get("slug")?,
            server_id: r.try_get("server_id")?,
            server: r.try_get("server_name")?,
            recipe_id: r.try_get("recipe_id")?,
            recipe: r.try_get("recipe_name")?,
            domain: r.try_get("domain")?,
            stack_name: r.try_get("stack_name")?,
            env: r.try_get("env")?,
            version: r.try_get("version")?,
            chaos: r.try_get::<i64, _>("chaos")? != 0,
            chaos_version: r.try_get("chaos_version")?,
            status: crate::adapters::db::stored(r, "status")?,
            updated_at: r.try_get("updated_at")?,
            unhealthy: unhealthy_of(r)?,
            health: health_of(r)?,
            drift: drift_of(r)?,
            adopted: r
                .try_get::<Option<String>, _>("adopted_objects")?
                .and_then(|t| serde_json::from_str(&t).ok())
                .unwrap_or_default(),
        })
    }

    pub fn summary(&self) -> AppSummary {
        AppSummary {
            id: self.id,
            collective: self.collective.clone(),
            domain: self.domain.clone(),
            recipe: self.recipe.clone(),
            server: self.server.clone(),
            stack_name: self.stack_name.clone(),
            version: self.version.clone(),
            chaos: self.chaos,
            status: self.status,
            unhealthy: self.unhealthy.clone(),
            health: self.health,
            drift: self.drift.clone(),
            updated_at: self.updated_at,
        }
    }

    /// The labels Potluck puts on every object of this app, and checks before touching one.
    pub fn ownership(&self) -> std::collections::BTreeMap<String, String> {
        [("potluck.collective".to_string(), self.collective.clone()), ("potluck.app".to_string(), self.id.to_string())]
            .into_iter()
            .collect()
    }
}

pub async fn by_id(st: &AppState, id: AppId) -> Result<Option<AppRow>> {
    let row = sqlx::query(&format!("{SELECT} WHERE a.id = $1")).bind(id).fetch_optional(st.db.pool()).await?;
    row.as_ref().map(AppRow::from_row).transpose()
}

/// The app `domain` of collective `c` (an app of another collective is not found).
pub async fn in_collective(st: &AppState, c: &CollectiveRef, domain: &str) -> Result<AppRow> {
    let row = sqlx::query(&format!("{SELECT} WHERE a.collective_id = $1 AND a.domain = $2"))
        .bind(c.id)
        .bind(domain)
        .fetch_optional(st.db.pool())
        .await?;
    row.as_ref()
        .map(AppRow::from_row)
        .transpose()?
        .ok_or_else(|| ApiError::not_found(format!("app {domain:?} in {}", c.slug)).into())
}

pub async fn list(st: &AppState, access: &Cap<scope::Collective>) -> Result<Vec<AppSummary>> {
    let rows = sqlx::query(&format!("{SUMMARY_SELECT} WHERE a.collective_id = $1 ORDER BY a.domain"))
        .bind(access.collective().id)
        .fetch_all(st.db.pool())
        .await?;
    rows.iter().map(summary_of).collect()
}

/// What a list shows of each app: the row without its env file (which a list of hundreds would
/// read whole for nothing).
const SUMMARY_SELECT: &str = "SELECT a.id, c.slug, s.name AS server_name, r.name AS recipe_name, \
     a.domain, a.stack_name, a.version, a.chaos, a.status, a.updated_at, \
     a.unhealthy_since, a.unhealthy_reason, a.live_running, a.live_desired, a.live_restarts, a.live_at, a.drift \
     FROM apps a JOIN collectives c ON c.id = a.collective_id JOIN servers s ON s.id = a.server_id JOIN recipes r ON r.id = a.recipe_id";

fn summary_of(r: &sqlx::any::AnyRow) -> Result<AppSummary> {
    Ok(AppSummary {
        id: r.try_get("id")?,
        collective: r.try_get("slug")?,
        domain: r.try_get("domain")?,
        recipe: r.try_get("recipe_name")?,
        server: r.try_get("server_name")?,
        stack_name: r.try_get("stack_name")?,
        version: r.try_get("version")?,
        chaos: r.try_get::<i64, _>("chaos")? != 0,
        status: crate::adapters::db::stored(r, "status")?,
        unhealthy: unhealthy_of(r)?,
        health: health_of(r)?,
        drift: drift_of(r)?,
        updated_at: r.try_get("updated_at")?,
    })
}

/// `apps.drift` (JSON), while the stack differs from what Potluck deployed.
fn drift_of(r: &sqlx::any::AnyRow) -> Result<Option<AppDrift>> {
    Ok(r.try_get::<Option<String>, _>("drift")?.and_then(|t| serde_json::from_str(&t).ok()))
}

/// Why the app is failing, while it is (`apps.unhealthy_*`).
fn unhealthy_of(r: &sqlx::any::AnyRow) -> Result<Option<String>> {
    Ok(r.try_get::<Option<i64>, _>("unhealthy_since")?
        .map(|_| r.try_get::<Option<String>, _>("unhealthy_reason").ok().flatten().unwrap_or_default()))
}

/// Which apps run a recipe, in the collectives where the caller sees apps (all for federation
/// admins).
pub async fn deployments_of<S: crate::domain::authz::Resolve>(
    st: &AppState,
    cap: &crate::domain::authz::Cap<S>,
    recipe: &store::RecipeRow,
) -> Result<Vec<RecipeDeployment>> {
    let visible = cap.collectives_with(&st.db, Permission::ViewApps).await?;
    let rows =
        sqlx::query(&format!("{SELECT} WHERE a.recipe_id = $1 AND a.status = 'deployed' ORDER BY c.slug, a.domain"))
            .bind(recipe.id)
            .fetch_all(st.db.pool())
            .await?;
    let mut out = Vec::new();
    for r in &rows {
        let a = AppRow::from_row(r)?;
        if visible.as_ref().is_none_or(|ids| ids.contains(&a.collective_id)) {
            out.push(RecipeDeployment {
                collective: a.collective.clone(),
                app: a.domain.clone(),
                version: a.version.clone().unwrap_or_else(|| a.chaos_version.clone().unwrap_or_default()),
            });
        }
    }
    Ok(out)
}

fn check_domain(domain: &str) -> std::result::Result<(), ApiError> {
    let ok = !domain.is_empty()
        && domain.len() <= 253
        && domain.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        });
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid("domain", format!("{domain:?} is not a domain name")))
    }
}

/// A new app from the recipe's `.env.sample` at `version` (the newest when none), with `DOMAIN`
/// and `TYPE` set, as `abra app new` does.
pub async fn create(st: &AppState, access: &Cap<scope::Collective>, input: CreateApp) -> Result<AppSummary> {
    let c = access.collective();
    let domain = input.domain.trim().to_ascii_lowercase();
    let version = Some(input.version.as_str());
    check_domain(&domain)?;
    let server = servers::by_name(st, c, input.server.trim()).await?;
    // A private recipe is used only by who may see it (its maintainers, the collectives running it).
    let recipe_row = match store::find(st, input.recipe.trim()).await? {
        Some(r) if access.sees_recipe(st, &r).await? => r,
        _ => return Err(ApiError::not_found(format!("recipe {:?}", input.recipe.trim())).into()),
    };
    let versions = super::plan::versions(st, &recipe_row).await?;
    let version = match version.map(str::trim).filter(|v| !v.is_empty()) {
        Some(v) if versions.iter().any(|x| x == v) => Some(v.to_string()),
        Some(v) => {
            return Err(ApiError::invalid("version", format!("recipe {} has no version {v:?}", recipe_row.name)).into())
        }
        None => versions.first().cloned(),
    };
    let files = inspect::files_of(st, &recipe_row, version.as_deref().unwrap_or(&recipe_row.default_branch)).await?;
    let sample = files
        .text(".env.sample")
        .ok_or_else(|| ApiError::invalid("recipe", format!("recipe {} has no .env.sample", recipe_row.name)))?;
    let mut env = EnvFile::parse(&sample)
        .map_err(|e| ApiError::invalid("recipe", format!(".env.sample of {}: {e}", recipe_row.name)))?;
    env.set("DOMAIN", &domain);
    // abra pins the version after the recipe's name; a deploy without a version uses it.
    let pinned = match &version {
        Some(v) => format!("{}:{v}", recipe_row.name),
        None => recipe_row.name.clone(),
    };
    env.set(if env.entry("RECIPE").is_some() { "RECIPE" } else { "TYPE" }, &pinned);
    let stack = stack_name_for(&domain);
    let now = now_ms();
    let mut tx = audit::begin(&st.db).await?;
    let id: AppId = sqlx::query(
        "INSERT INTO apps (collective_id, server_id, recipe_id, domain, stack_name, env, version, status, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'new', $8, $8) RETURNING id",
    )
    .bind(c.id)
    .bind(server.id)
    .bind(recipe_row.id)
    .bind(&domain)
    .bind(&stack)
    .bind(env.to_string())
    .bind(&version)
    .bind(now)
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| {
        if crate::adapters::db::is_unique_violation(&e) {
            ApiError::conflict(format!("server {} already has an app {domain} (stack {stack})", server.name)).into()
        } else {
            Error::from(e)
        }
    })?
    .try_get("id")?;
    let event = Event::new(AuditAction::AppCreate, format!("app {domain}"))
        .in_collective(c.id, &c.slug)
        .details(json!({ "app_id": id, "recipe": recipe_row.name, "server": server.name, "version": version }));
    tx.record(access.origin(), event).await?;
    tx.commit().await?;
    let created = by_id(st, id).await?.ok_or_else(|| ApiError::not_found("app"))?;
    super::live::touch(st, created.server_id).await;
    Ok(created.summary())
}

/// Replaces the env file (it must parse). Only keys are audited, never values.
pub async fn set_env(st: &AppState, access: &Cap<scope::App>, input: SetAppEnv) -> Result<()> {
    write_env(st, access, &input.env).await
}

/// A new env file for `app`, checked: it must parse and keep the app's domain. Returns the keys
/// whose values change (what the audit log names, never the values).
pub fn check_env(app: &AppRow, text: &str) -> std::result::Result<BTreeSet<String>, ApiError> {
    let new = EnvFile::parse(text).map_err(|e| ApiError::invalid("env", e.to_string()))?;
    let old = EnvFile::parse(&app.env).unwrap_or_default();
    let old_values = old.values(&|_| None);
    let new_values = new.values(&|_| None);
    if new_values.get("DOMAIN").is_some_and(|d| *d != app.domain) {
        return Err(ApiError::invalid("env", "DOMAIN is the app's identity; create a new app for another domain"));
    }
    Ok(old_values
        .keys()
        .chain(new_values.keys())
        .filter(|k| old_values.get(*k) != new_values.get(*k))
        .cloned()
        .collect())
}

async fn write_env(st: &AppState, access: &Cap<scope::App>, text: &str) -> Result<()> {
    let app = access.app();
    let text = text.replace("\r\n", "\n");
    let changed = check_env(app, &text)?;
    let mut tx = audit::begin(&st.db).await?;
    sqlx::query("UPDATE apps SET env = $1, updated_at = $2 WHERE id = $3")
        .bind(&text)
        .bind(now_ms())
        .bind(app.id)
        .execute(&mut *tx)
        .await?;
    let c = access.collective();
    let event = Event::new(AuditAction::AppEnvUpdate, format!("app {}", app.domain))
        .in_collective(c.id, &c.slug)
        .details(json!({ "changed_keys": changed }));
    tx.record(access.origin(), event).await?;
    tx.commit().await?;
    Ok(())
}

/// The overlays a `COMPOSE_FILE` line (active or commented out) adds, and whether it extends
/// the earlier value (`$COMPOSE_FILE:…`) or replaces it (`compose.yml:…`).
fn overlay_line(body: &str) -> Option<(Vec<String>, bool)> {
    let stripped = body.trim_start().trim_start_matches('#').trim_start();
    let value = stripped.strip_prefix("COMPOSE_FILE=")?;
    let value = value.split(" #").next().unwrap_or(value).trim().trim_matches('"').trim_matches('\'');
    let (rest, extends) = match value.strip_prefix("$COMPOSE_FILE").or_else(|| value.strip_prefix("${COMPOSE_FILE}")) {
        Some(r) => (r, true),
        None => (value, false),
    };
    let files: Vec<String> =
        rest.split(':').map(str::trim).filter(|f| !f.is_empty() && *f != "compose.yml").map(String::from).collect();
    Some((files, extends))
}

fn effective_overlays(env_text: &str) -> Option<BTreeSet<String>> {
    let values = EnvFile::parse(env_text).ok()?.values(&|_| None);
    Some(engine::compose_files(&values).into_iter().filter(|f| f != "compose.yml").collect())
}

/// The overlay checkboxes edit `COMPOSE_FILE` lines in place, so the file keeps the sample's
/// layout: a line (in either form, `COMPOSE_FILE="$COMPOSE_FILE:compose.mail.yml"` or
/// `COMPOSE_FILE="compose.yml:compose.mail.yml"`) is active exactly when everything it adds is
/// enabled. When the lines cannot express the choice (alternatives that replace each other, an
/// overlay without a line), one line stating the whole list is appended instead.
pub fn toggle_overlays(env_text: &str, enabled: &BTreeSet<String>) -> String {
    let toggled: String = env_text
        .split_inclusive('\n')
        .map(|line| {
            let (body, newline) = line.strip_suffix('\n').map_or((line, ""), |b| (b, "\n"));
            match overlay_line(body) {
                Some((files, _)) if !files.is_empty() => {
                    let uncommented = body.trim_start().trim_start_matches('#').trim_start();
                    if files.iter().all(|f| enabled.contains(f)) {
                        format!("{uncommented}{newline}")
                    } else if body.trim_start().starts_with('#') {
                        line.to_string()
                    } else {
                        format!("#{uncommented}{newline}")
                    }
                }
                _ => line.to_string(),
            }
        })
        .collect();
    if effective_overlays(&toggled).as_ref() == Some(enabled) {
        return toggled;
    }
    // Comment out every overlay line and state the list once.
    let mut text: String = toggled
        .split_inclusive('\n')
        .map(|line| {
            let body = line.strip_suffix('\n').unwrap_or(line);
            match overlay_line(body) {
                Some((files, _)) if !files.is_empty() && !body.trim_start().starts_with('#') => format!("#{line}"),
                _ => line.to_string(),
            }
        })
        .collect();
    if enabled.is_empty() {
        return text;
    }
    if !text.ends_with('\n') && !text.is_empty() {
        text.push('\n');
    }
    let list: Vec<&str> = std::iter::once("compose.yml").chain(enabled.iter().map(String::as_str)).collect();
    text.push_str(&format!("COMPOSE_FILE=\"{}\"\n", list.join(":")));
    text
}

pub async fn set_overlays(st: &AppState, access: &Cap<scope::App>, input: SetAppOverlays) -> Result<()> {
    let app = access.app();
    let enabled: BTreeSet<String> =
        input.files.into_iter().map(|f| f.trim().to_string()).filter(|f| !f.is_empty()).collect();
    let recipe = store::get(st, &app.recipe).await?;
    let rev = match &app.version {
        Some(v) => v.clone(),
        None => {
            super::plan::versions(st, &recipe).await?.first().cloned().unwrap_or_else(|| recipe.default_branch.clone())
        }
    };
    let files = inspect::files_of(st, &recipe, &rev).await?;
    for f in &enabled {
        if f == "compose.yml" || !inspect::is_compose_file(f) || !files.files.contains_key(f) {
            return Err(
                ApiError::invalid("overlays", format!("{f:?} is not an overlay of {} {rev}", recipe.name)).into()
            );
        }
    }
    let text = toggle_overlays(&app.env, &enabled);
    write_env(st, access, &text).await
}

/// The env file, exactly as stored (import → export gives back the same bytes).
pub async fn export(access: &Cap<scope::App>) -> Result<String> {
    Ok(access.app().env.clone())
}

/// An abra env file read for import: the app it would become.
pub struct Imported {
    pub file: String,
    pub text: String,
    pub domain: String,
    pub recipe: store::RecipeRow,
    pub version: Option<String>,
}

/// Reads an abra env file (`<domain>.env`) for import: the recipe from `TYPE`/`RECIPE` (with the
/// deployed version after `:`), the domain from `DOMAIN` or the file name. `Ok(Err(why))` when
/// the file cannot be imported.
pub async fn read_import(
    st: &AppState,
    access: &Cap<scope::Collective>,
    file: &str,
    text: String,
) -> Result<std::result::Result<Imported, String>> {
    let env = match EnvFile::parse(&text) {
        Ok(env) => env,
        Err(e) => return Ok(Err(format!("not an env file: {e}"))),
    };
    let values = env.values(&|_| None);
    let domain = values
        .get("DOMAIN")
        .cloned()
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| file.rsplit('/').next().unwrap_or(file).trim_end_matches(".env").to_string());
    if let Err(e) = check_domain(&domain) {
        return Ok(Err(e.to_string()));
    }
    let type_value = values.get("RECIPE").or_else(|| values.get("TYPE")).cloned().unwrap_or_default();
    let (recipe, version) = match type_value.split_once(':') {
        Some((r, v)) => (r.to_string(), Some(v.to_string()).filter(|v| !v.is_empty())),
        None => (type_value.clone(), None),
    };
    if recipe.is_empty() {
        return Ok(Err("no TYPE= or RECIPE= line names the recipe".into()));
    }
    let recipe_row = match store::find(st, &recipe).await? {
        Some(r) if access.sees_recipe(st, &r).await? => r,
        _ => return Ok(Err(format!("recipe {recipe:?} is not registered in Potluck yet"))),
    };
    Ok(Ok(Imported { file: file.to_string(), text, domain, recipe: recipe_row, version }))
}

/// The stacks that run on a server now, asked before a write transaction: an unreachable or
/// slow engine must not hold the database's write lock. Empty when the engine cannot be asked.
pub async fn running_stacks(st: &AppState, server: &servers::ServerRow) -> BTreeMap<String, super::drift::Live> {
    super::drift::read(st, server, None).await.unwrap_or_default()
}

/// Inserts an imported app (in the caller's transaction): deployed when its stack runs (taken as
/// it runs, with the objects another tool made that it takes over, `claimed`), else undeployed
/// when the file names a deployed version, else new.
pub async fn insert_imported(
    tx: &mut audit::Audited,
    collective: CollectiveId,
    server: &servers::ServerRow,
    app: &Imported,
    running: &BTreeMap<String, super::drift::Live>,
    claimed: &BTreeSet<String>,
) -> Result<AppId> {
    let stack = stack_name_for(&app.domain);
    // A running stack is taken as it runs: what changes after the import is drift.
    let services = running.get(&stack).filter(|l| !l.services.is_empty()).map(super::drift::services_json);
    let status = if services.is_some() {
        "deployed"
    } else if app.version.is_some() {
        "undeployed"
    } else {
        "new"
    };
    let id: AppId = sqlx::query(
        "INSERT INTO apps (collective_id, server_id, recipe_id, domain, stack_name, env, version, status, created_at, updated_at, deployed_services, adopted_objects) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $10, $11) RETURNING id",
    )
    .bind(collective)
    .bind(server.id)
    .bind(app.recipe.id)
    .bind(&app.domain)
    .bind(&stack)
    .bind(&app.text)
    .bind(&app.version)
    .bind(status)
    .bind(now_ms())
    .bind(services)
    .bind((!claimed.is_empty()).then(|| serde_json::to_string(claimed).unwrap_or_default()))
    .fetch_one(&mut **tx)
    .await
    .map_err(|e| {
        if crate::adapters::db::is_unique_violation(&e) {
            ApiError::conflict(format!("{}: server {} already has an app {}", app.file, server.name, app.domain)).into()
        } else {
            Error::from(e)
        }
    })?
    .try_get("id")?;
    Ok(id)
}

/// What an import of one app asks the server's engine before its write transaction: the stacks
/// that run there, and the objects of the app's own stack the import may take over.
pub async fn engine_before_import(
    st: &AppState,
    server: &servers::ServerRow,
    domain: &str,
) -> (BTreeMap<String, super::drift::Live>, BTreeSet<String>) {
    let running = running_stacks(st, server).await;
    let stack = stack_name_for(domain);
    let claimed = if running.contains_key(&stack) {
        super::drift::claim_for_import(st, server, &stack).await
    } else {
        BTreeSet::new()
    };
    (running, claimed)
}

/// Imports one abra env file (`<domain>.env`, see [`read_import`]). Returns the created app.
pub async fn import(st: &AppState, access: &Cap<scope::Collective>, input: ImportApp) -> Result<Vec<AppSummary>> {
    let c = access.collective();
    let server = servers::by_name(st, c, input.server.trim()).await?;
    let file = input.file_name;
    let app = read_import(st, access, &file, input.content)
        .await?
        .map_err(|why| ApiError::invalid("files", format!("{file}: {why}")))?;
    let (running, claimed) = engine_before_import(st, &server, &app.domain).await;
    let mut tx = audit::begin(&st.db).await?;
    let id = insert_imported(&mut tx, c.id, &server, &app, &running, &claimed).await?;
    let event = Event::new(AuditAction::AppImport, format!("1 app(s) on {}", server.name))
        .in_collective(c.id, &c.slug)
        .details(json!({ "app_ids": [id], "domains": [&app.domain] }));
    tx.record(access.origin(), event).await?;
    tx.commit().await?;
    super::live::touch(st, server.id).await;
    Ok(by_id(st, id).await?.map(|a| vec![a.summary()]).unwrap_or_default())
}

pub async fn delete(st: &AppState, access: &Cap<scope::App>) -> Result<()> {
    let app = access.app();
    if app.status == AppStatus::Deployed {
        return Err(ApiError::conflict(format!("{} is deployed: undeploy it first", app.domain)).into());
    }
    let c = access.collective();
    let mut tx = audit::begin(&st.db).await?;
    sqlx::query("DELETE FROM apps WHERE id = $1").bind(app.id).execute(&mut *tx).await?;
    tx.record(
        access.origin(),
        Event::new(AuditAction::AppDelete, format!("app {}", app.domain)).in_collective(c.id, &c.slug),
    )
    .await?;
    tx.commit().await?;
    super::live::touch(st, app.server_id).await;
    Ok(())
}

/// The env of an app, as editable entries with the sample's documentation, its overlay options,
/// and the sample keys it lacks.
pub fn editing_view(
    env_text: &str,
    sample_text: Option<&str>,
    compose_files: &[String],
) -> (Vec<EnvEditEntry>, Vec<OverlayOption>, Vec<String>) {
    let env = EnvFile::parse(env_text).unwrap_or_default();
    let sample = sample_text.and_then(|s| EnvFile::parse(s).ok()).unwrap_or_default();
    let values = env.values(&|_| None);
    let mut entries = Vec::new();
    let mut seen = BTreeSet::new();
    for e in env.entries() {
        if !seen.insert(e.key.clone()) || e.key == "COMPOSE_FILE" {
            continue;
        }
        let doc_source = sample.entry(&e.key).unwrap_or(e);
        entries.push(EnvEditEntry {
            key: e.key.clone(),
            value: values.get(&e.key).cloned().unwrap_or_default(),
            doc: doc_source.doc.clone(),
            modifiers: e.modifiers().into_iter().collect(),
            in_sample: sample.entry(&e.key).is_some(),
        });
    }
    let missing: Vec<String> = sample
        .entries()
        .map(|e| e.key.clone())
        .filter(|k| !values.contains_key(k))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let enabled: BTreeSet<String> = engine::compose_files(&values).into_iter().collect();
    let mut overlays: Vec<OverlayOption> = Vec::new();
    let mut docs: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for e in sample.entries().chain(commented_entries(sample_text.unwrap_or_default()).iter()) {
        if e.key == "COMPOSE_FILE" {
            if let Some((files, _)) = overlay_line(&format!("COMPOSE_FILE={}", e.raw_value)) {
                for f in files {
                    docs.entry(f).or_insert_with(|| e.doc.clone());
                }
            }
        }
    }
    for f in compose_files.iter().filter(|f| f.as_str() != "compose.yml") {
        overlays.push(OverlayOption {
            file: f.clone(),
            enabled: enabled.contains(f),
            doc: docs.get(f).cloned().unwrap_or_default(),
        });
    }
    (entries, overlays, missing)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENV: &str = "TYPE=bonfire\nDOMAIN=b.example\nCOMPOSE_FILE=\"compose.yml\"\n\n# DATABASE\nCOMPOSE_FILE=\"$COMPOSE_FILE:compose.postgres.yml\"\n# COMPOSE_FILE=\"$COMPOSE_FILE:compose.mail.yml\"\n";

    #[test]
    fn overlay_checkboxes_edit_the_env_in_place() {
        let enabled: BTreeSet<String> = ["compose.mail.yml".to_string()].into_iter().collect();
        let out = toggle_overlays(ENV, &enabled);
        assert_eq!(
            out,
            "TYPE=bonfire\nDOMAIN=b.example\nCOMPOSE_FILE=\"compose.yml\"\n\n# DATABASE\n#COMPOSE_FILE=\"$COMPOSE_FILE:compose.postgres.yml\"\nCOMPOSE_FILE=\"$COMPOSE_FILE:compose.mail.yml\"\n"
        );
        let values = EnvFile::parse(&out).unwrap().values(&|_| None);
        assert_eq!(values["COMPOSE_FILE"], "compose.yml:compose.mail.yml");
        let both: BTreeSet<String> =
            ["compose.mail.yml".to_string(), "compose.sonic.yml".to_string()].into_iter().collect();
        let out = toggle_overlays(ENV, &both);
        assert!(out.ends_with("COMPOSE_FILE=\"compose.yml:compose.mail.yml:compose.sonic.yml\"\n"), "{out}");
        assert_eq!(
            EnvFile::parse(&out).unwrap().values(&|_| None)["COMPOSE_FILE"],
            "compose.yml:compose.mail.yml:compose.sonic.yml"
        );
        // Nothing enabled, nothing changed twice: toggling back restores the original.
        let back: BTreeSet<String> = ["compose.postgres.yml".to_string()].into_iter().collect();
        assert_eq!(toggle_overlays(ENV, &back), ENV);
    }

    #[test]
    fn overlay_lines_in_the_full_form_and_alternatives() {
        const SAMPLE: &str = "DOMAIN=h.example\n## A worker\n#COMPOSE_FILE=\"compose.yml:compose.worker.yml\"\n#COMPOSE_FILE=\"compose.yml:compose.other.yml\"\n";
        let worker: BTreeSet<String> = ["compose.worker.yml".to_string()].into_iter().collect();
        let on = toggle_overlays(SAMPLE, &worker);
        assert_eq!(on, "DOMAIN=h.example\n## A worker\nCOMPOSE_FILE=\"compose.yml:compose.worker.yml\"\n#COMPOSE_FILE=\"compose.yml:compose.other.yml\"\n");
        assert_eq!(toggle_overlays(&on, &BTreeSet::new()), SAMPLE);
        // Both alternatives at once: the lines replace each other, so one list line is written.
        let both: BTreeSet<String> =
            ["compose.worker.yml".to_string(), "compose.other.yml".to_string()].into_iter().collect();
        let out = toggle_overlays(SAMPLE, &both);
        assert_eq!(effective_overlays(&out), Some(both));
        assert!(out.contains("#COMPOSE_FILE=\"compose.yml:compose.worker.yml\""), "{out}");
    }

    #[test]
    fn domains() {
        assert!(check_domain("bonfire.example.com").is_ok());
        assert!(check_domain("-bad.example").is_err());
        assert!(check_domain("with space.example").is_err());
    }

    #[test]
    fn editing_view_lists_docs_overlays_and_missing_keys() {
        let sample = "# The domain\nDOMAIN=x\nLETS_ENCRYPT_ENV=production\nCOMPOSE_FILE=\"compose.yml\"\n## Mail\n#COMPOSE_FILE=\"$COMPOSE_FILE:compose.mail.yml\"\n";
        let (entries, overlays, missing) = editing_view(
            ENV,
            Some(sample),
            &["compose.yml".into(), "compose.mail.yml".into(), "compose.postgres.yml".into()],
        );
        assert_eq!(entries.iter().find(|e| e.key == "DOMAIN").unwrap().doc, vec!["The domain"]);
        assert_eq!(missing, vec!["LETS_ENCRYPT_ENV"]);
        assert_eq!(overlays.len(), 2);
        assert!(overlays.iter().any(|o| o.file == "compose.postgres.yml" && o.enabled));
        assert!(overlays.iter().any(|o| o.file == "compose.mail.yml" && !o.enabled && o.doc == vec!["# Mail"]));
    }
}
