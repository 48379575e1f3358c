//! An app's Docker secrets at the versions its env names (`SECRET_<NAME>_VERSION=v1`):
//! generated as the sample's modifiers say (`length=`, `charset=`, `generate=false`), inserted,
//! rotated (new version, new secret, redeploy). A generated value is shown once to the person
//! who asked and is never stored, logged or audited by Potluck.

use super::apps::AppRow;
use super::plan::{self, Target};
use super::stack::Stack;
use crate::adapters::engine::envfile::EnvFile;
use crate::adapters::engine::{self, load};
use crate::domain::audit::{self, AuditAction, Event, Origin};
use crate::domain::authz::{Cap, CollectiveRef};
use crate::error::{Error, Result};
use crate::state::AppState;
use potluck_app::api::{GenerateSecrets, InsertSecret, RotateSecret};
use potluck_app::error::ApiError;
use potluck_app::model::{AppStatus, GeneratedSecret, JobKind, JobSummary, OneTimeSecret, Permission, SecretStatus};
use potluck_app::ops::scope;
use rand::Rng;
use serde_json::json;
use std::collections::{BTreeSet, HashMap};

/// A secret the app's compose files declare as external (the ones abra manages).
#[derive(Debug, Clone)]
pub struct Declared {
    pub key: String,
    pub version: String,
    pub docker_name: String,
    pub generate: bool,
    pub length: Option<usize>,
    pub charset: Option<String>,
}

fn version_var(key: &str) -> String {
    format!("SECRET_{}_VERSION", key.to_ascii_uppercase())
}

/// The external secrets of the app's compose files at its version, with their modifiers.
pub async fn declared(st: &AppState, app: &AppRow) -> Result<Vec<Declared>> {
    let recipe = crate::domain::recipes::store::get(st, &app.recipe).await?;
    let version = match &app.version {
        Some(v) => v.clone(),
        None => plan::versions(st, &recipe).await?.first().cloned().unwrap_or_default(),
    };
    let target = if version.is_empty() { Target::Chaos("HEAD".into()) } else { Target::Version(version) };
    let p = plan::build(st, app, &recipe, &target).await?;
    let loaded = load::load(&p.files, &engine::compose_files(&p.env), &p.env)
        .map_err(|e| ApiError::invalid("recipe", e.to_string()))?;
    let env = EnvFile::parse(&app.env).unwrap_or_default();
    let used: BTreeSet<String> = plan::external_secrets(&p.plan).into_iter().collect();
    let mut out = Vec::new();
    for (key, def) in &loaded.config.secrets {
        if !def.external {
            continue;
        }
        let docker_name = if def.name.is_empty() { key.clone() } else { def.name.clone() };
        if !used.contains(&docker_name) {
            continue;
        }
        let var = version_var(key);
        let entry = env.entry(&var);
        let modifiers = entry.map(|e| e.modifiers()).unwrap_or_default();
        let version =
            p.env.get(&var).cloned().unwrap_or_else(|| docker_name.rsplit('_').next().unwrap_or("v1").to_string());
        out.push(Declared {
            key: key.clone(),
            version,
            docker_name,
            generate: modifiers.get("generate").map(String::as_str) != Some("false"),
            length: modifiers.get("length").and_then(|l| l.parse().ok()),
            charset: modifiers.get("charset").cloned(),
        });
    }
    out.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(out)
}

pub async fn statuses(st: &AppState, app: &AppRow, stack: Option<&Stack>) -> Result<Vec<SecretStatus>> {
    let existing: Option<BTreeSet<String>> = match stack {
        Some(s) => s.secret_names().await.ok(),
        None => None,
    };
    Ok(declared(st, app)
        .await?
        .into_iter()
        .map(|d| SecretStatus {
            exists: existing.as_ref().map(|e| e.contains(&d.docker_name)),
            name: d.key,
            version: d.version,
            docker_name: d.docker_name,
            generate: d.generate,
            length: d.length.map(|l| l as i64),
            charset: d.charset,
        })
        .collect())
}

/// A new secret value: `length` random characters of `charset` (alnum by default, also `hex`,
/// `base64`, `special`), or 32 alphanumerics when the sample gives no length.
pub fn generate_value(length: Option<usize>, charset: Option<&str>) -> std::result::Result<String, String> {
    const ALNUM: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let alphabet: String = match charset.unwrap_or("alnum") {
        "alnum" | "default" => ALNUM.into(),
        "hex" => "0123456789abcdef".into(),
        "base64" => format!("{ALNUM}+/"),
        "special" | "default,special" | "alnum,special" => format!("{ALNUM}!#%&()*+,-.:;<=>?@[]^_{{|}}~"),
        other => return Err(format!("unknown charset {other:?} (use alnum, hex, base64 or special)")),
    };
    let length = length.unwrap_or(32);
    if !(8..=4096).contains(&length) {
        return Err(format!("length {length} is out of range (8 to 4096)"));
    }
    let chars: Vec<char> = alphabet.chars().collect();
    let mut rng = rand::rngs::OsRng;
    Ok((0..length).map(|_| chars[rng.gen_range(0..chars.len())]).collect())
}

async fn create_secret(stack: &Stack, d: &Declared, value: &str) -> std::result::Result<(), ApiError> {
    let mut labels: HashMap<String, String> = HashMap::new();
    labels.insert("potluck.secret".into(), d.key.clone());
    labels.insert("potluck.secret.version".into(), d.version.clone());
    stack.create_secret(&d.docker_name, labels, value).await
}

/// Records, before a secret is created on the swarm, that it is about to be (the outcome
/// follows in its own event): a crash in between leaves the intent on record.
async fn record_intent(
    st: &AppState,
    c: &CollectiveRef,
    app: &AppRow,
    origin: &Origin,
    action: AuditAction,
    names: &[String],
) -> Result<()> {
    let event = Event::new(action, format!("app {}", app.domain))
        .in_collective(c.id, &c.slug)
        .details(json!({ "secrets": names }));
    audit::record_alone(&st.db, origin, event).await?;
    Ok(())
}

/// Generates the missing secrets (or the one named), returning each value once.
pub async fn generate(st: &AppState, access: &Cap<scope::App>, input: GenerateSecrets) -> Result<Vec<GeneratedSecret>> {
    let app = access.app();
    let c = access.collective();
    let stack = Stack::of(st, app).await?;
    let statuses = statuses(st, app, Some(&stack)).await?;
    let declared = declared(st, app).await?;
    let only = Some(input.only.trim()).filter(|o| !o.is_empty());
    if let Some(name) = only {
        if !declared.iter().any(|d| d.key == name) {
            return Err(ApiError::not_found(format!("secret {name:?} in {}", app.domain)).into());
        }
    }
    let mut wanted = Vec::new();
    for d in &declared {
        if only.is_some_and(|o| o != d.key) {
            continue;
        }
        let exists = statuses.iter().any(|s| s.name == d.key && s.exists == Some(true));
        if exists {
            if only.is_some() {
                return Err(ApiError::conflict(format!(
                    "secret {} exists: rotate it to make a new version",
                    d.docker_name
                ))
                .into());
            }
            continue;
        }
        if !d.generate {
            if only.is_some() {
                return Err(
                    ApiError::conflict(format!("secret {} is marked generate=false: insert its value", d.key)).into()
                );
            }
            continue;
        }
        let value = generate_value(d.length, d.charset.as_deref())
            .map_err(|e| ApiError::invalid("modifiers", format!("{}: {e}", d.key)))?;
        wanted.push((d, value));
    }
    let names: Vec<String> = wanted.iter().map(|(d, _)| d.docker_name.clone()).collect();
    record_intent(st, c, app, access.origin(), AuditAction::SecretGenerateIntent, &names).await?;
    let mut out = Vec::new();
    let mut failure = None;
    for (d, value) in wanted {
        match create_secret(&stack, d, &value).await {
            Ok(()) => out.push(GeneratedSecret {
                name: d.key.clone(),
                docker_name: d.docker_name.clone(),
                value: OneTimeSecret(value),
            }),
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    let mut tx = audit::begin(&st.db).await?;
    let event = Event::new(AuditAction::SecretGenerate, format!("app {}", app.domain))
        .in_collective(c.id, &c.slug)
        .outcome(if failure.is_none() { "success" } else { "failure" })
        .details(json!({
            "secrets": out.iter().map(|g| &g.docker_name).collect::<Vec<_>>(),
            "error": failure.as_ref().map(|e| e.to_string()),
        }));
    tx.record(access.origin(), event).await?;
    tx.commit().await?;
    match failure {
        Some(e) => Err(e.into()),
        None => Ok(out),
    }
}

/// Inserts a value given by the operator (e.g. a third-party API key).
pub async fn insert(st: &AppState, access: &Cap<scope::App>, input: InsertSecret) -> Result<()> {
    let app = access.app();
    let c = access.collective();
    if input.value.is_empty() {
        return Err(ApiError::invalid("value", "the secret's value is empty").into());
    }
    if input.value.len() > 500_000 {
        return Err(ApiError::invalid("value", "a secret is at most 500 kB (Docker's limit)").into());
    }
    let name = input.name.trim();
    let d = declared(st, app)
        .await?
        .into_iter()
        .find(|d| d.key == name)
        .ok_or_else(|| ApiError::not_found(format!("secret {name:?} in {}", app.domain)))?;
    let stack = Stack::of(st, app).await?;
    record_intent(st, c, app, access.origin(), AuditAction::SecretInsertIntent, std::slice::from_ref(&d.docker_name))
        .await?;
    let created = create_secret(&stack, &d, &input.value).await;
    let mut tx = audit::begin(&st.db).await?;
    let event = Event::new(AuditAction::SecretInsert, format!("app {}", app.domain))
        .in_collective(c.id, &c.slug)
        .outcome(if created.is_ok() { "success" } else { "failure" })
        .details(json!({ "secret": d.docker_name, "error": created.as_ref().err().map(|e| e.to_string()) }));
    tx.record(access.origin(), event).await?;
    tx.commit().await?;
    created.map_err(Into::into)
}

/// `v7` → `v8` (any other shape gets `v2`).
pub fn next_version(v: &str) -> String {
    match v.strip_prefix('v').and_then(|n| n.parse::<u64>().ok()) {
        Some(n) => format!("v{}", n + 1),
        None => "v2".into(),
    }
}

/// Rotates one secret: bumps its version in the env, creates the new secret, redeploys (which
/// needs the operator's permission as well).
pub async fn rotate(
    st: &AppState,
    access: &Cap<scope::App>,
    input: RotateSecret,
) -> Result<(GeneratedSecret, Option<JobSummary>)> {
    access.require(Permission::OperateApps)?;
    let app = access.app();
    let c = access.collective();
    let name = input.name.trim();
    let d = declared(st, app)
        .await?
        .into_iter()
        .find(|d| d.key == name)
        .ok_or_else(|| ApiError::not_found(format!("secret {name:?} in {}", app.domain)))?;
    if !d.generate {
        return Err(ApiError::conflict(format!(
            "secret {} is marked generate=false: insert a new version by hand",
            d.key
        ))
        .into());
    }
    let new_version = next_version(&d.version);
    let mut env = EnvFile::parse(&app.env).map_err(|e| ApiError::invalid("env", e.to_string()))?;
    env.set(&version_var(&d.key), &new_version);
    let new_env = env.to_string();
    // The Docker name of the new version, as the compose file computes it.
    let mut rotated_app = app.clone();
    rotated_app.env = new_env.clone();
    let nd = declared(st, &rotated_app)
        .await?
        .into_iter()
        .find(|x| x.key == d.key)
        .ok_or_else(|| Error::internal("rotated secret vanished"))?;
    let value = generate_value(nd.length, nd.charset.as_deref()).map_err(|e| ApiError::invalid("modifiers", e))?;
    let stack = Stack::of(st, app).await?;
    record_intent(st, c, app, access.origin(), AuditAction::SecretRotateIntent, std::slice::from_ref(&nd.docker_name))
        .await?;
    let created = create_secret(&stack, &nd, &value).await;
    let mut tx = audit::begin(&st.db).await?;
    if created.is_ok() {
        sqlx::query("UPDATE apps SET env = $1, updated_at = $2 WHERE id = $3")
            .bind(&new_env)
            .bind(crate::adapters::db::now_ms())
            .bind(app.id)
            .execute(&mut *tx)
            .await?;
    }
    let event = Event::new(AuditAction::SecretRotate, format!("app {}", app.domain))
        .in_collective(c.id, &c.slug)
        .outcome(if created.is_ok() { "success" } else { "failure" })
        .details(json!({
            "secret": d.key, "from": d.docker_name, "to": nd.docker_name,
            "error": created.as_ref().err().map(|e| e.to_string()),
        }));
    tx.record(access.origin(), event).await?;
    tx.commit().await?;
    created?;
    let job = if app.status == AppStatus::Deployed {
        let mut updated = app.clone();
        updated.env = new_env;
        Some(
            super::jobs::enqueue(
                st,
                c,
                &updated,
                access.origin(),
                JobKind::Redeploy,
                app.version.as_deref(),
                super::jobs::JobOptions::default(),
            )
            .await?,
        )
    } else {
        None
    };
    Ok((GeneratedSecret { name: d.key, docker_name: nd.docker_name, value: OneTimeSecret(value) }, job))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_values_follow_the_modifiers() {
        let v = generate_value(Some(128), None).unwrap();
        assert_eq!(v.len(), 128);
        assert!(v.chars().all(|c| c.is_ascii_alphanumeric()));
        let h = generate_value(Some(64), Some("hex")).unwrap();
        assert!(h.len() == 64 && h.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(generate_value(None, None).unwrap().len(), 32);
        assert_ne!(generate_value(None, None).unwrap(), generate_value(None, None).unwrap());
        assert!(generate_value(Some(16), Some("emoji")).is_err());
    }

    #[test]
    fn versions_advance() {
        assert_eq!(next_version("v1"), "v2");
        assert_eq!(next_version("v19"), "v20");
        assert_eq!(next_version("latest"), "v2");
    }
}
