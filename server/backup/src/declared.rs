//! Backups as recipes declare them: backup-bot-two's `backupbot.*` service labels, read from a
//! rendered stack (labels interpolated, volumes named as Docker will name them).
//!
//! The rules are backup-bot-two's:
//! - a service with `backupbot.backup=true` has every volume it mounts backed up;
//! - `backupbot.backup.volumes.<volume>=false` leaves a volume out;
//! - `backupbot.backup.volumes.<volume>.path=a,b` limits a volume to paths relative to its root;
//! - `backupbot.backup.pre-hook` / `post-hook` run in the service's running container around the
//!   copy, `backupbot.restore.pre-hook` / `post-hook` around a restore;
//! - the older form `backupbot.backup.path=/data,/other` names paths inside the container, which
//!   are mapped here to the volumes mounted there.
//!
//! A volume mounted only by services without the label is *undeclared*: nothing backs it up.
//! Recipe paths are untrusted: a path that leaves its volume (`..`) is refused, not followed.

use potluck_engine::convert::StackPlan;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

pub const ENABLE: &str = "backupbot.backup";
const VOLUMES: &str = "backupbot.backup.volumes.";
const LEGACY_PATH: &str = "backupbot.backup.path";
const LEGACY_COMMAND: &str = "backupbot.backup.command";
const BACKUP_PRE: &str = "backupbot.backup.pre-hook";
const BACKUP_POST: &str = "backupbot.backup.post-hook";
const RESTORE_PRE: &str = "backupbot.restore.pre-hook";
const RESTORE_POST: &str = "backupbot.restore.post-hook";

/// Paths per volume and characters per hook: a recipe is untrusted input.
const MAX_PATHS: usize = 64;
const MAX_HOOK: usize = 4096;

/// What a stack declares about its backups.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Declared {
    /// Services with `backupbot.backup=true`, in the stack's order.
    pub services: Vec<BackedUpService>,
    /// Every named volume the stack's services mount, by its compose name.
    pub volumes: BTreeMap<String, Volume>,
    /// Labels that could not be followed, with the reason (a bad path, an unknown volume).
    pub problems: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BackedUpService {
    /// The compose service name.
    pub service: String,
    pub hooks: Hooks,
    /// `backupbot.backup.command` of backup-bot v1: shown, never run.
    pub legacy_command: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Hooks {
    pub backup_pre: Option<String>,
    pub backup_post: Option<String>,
    pub restore_pre: Option<String>,
    pub restore_post: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Volume {
    /// The volume's name on the engine (`<stack>_<volume>` unless the recipe names it).
    pub docker_name: String,
    /// Services mounting it, with the path they mount it at.
    pub mounts: Vec<(String, String)>,
    pub coverage: Coverage,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Coverage {
    /// Backed up whole, through `service`'s container.
    Whole { service: String },
    /// Only these paths, relative to the volume's root.
    Paths { service: String, paths: Vec<String> },
    /// Left out on purpose (`backupbot.backup.volumes.<volume>=false`).
    Excluded { service: String },
    /// No service that mounts it declares backups.
    Undeclared,
}

impl Coverage {
    /// The service whose container the volume is read through, when it is backed up.
    pub fn service(&self) -> Option<&str> {
        match self {
            Coverage::Whole { service } | Coverage::Paths { service, .. } => Some(service),
            Coverage::Excluded { .. } | Coverage::Undeclared => None,
        }
    }
}

impl Declared {
    /// Whether the stack declares backups at all.
    pub fn enabled(&self) -> bool {
        !self.services.is_empty()
    }

    /// The service a hook set belongs to.
    pub fn service(&self, name: &str) -> Option<&BackedUpService> {
        self.services.iter().find(|s| s.service == name)
    }
}

/// backup-bot-two's reading of a switch: `true` in any case, nothing else.
fn truthy(v: &str) -> bool {
    v.trim().eq_ignore_ascii_case("true")
}

fn hook(labels: &BTreeMap<String, String>, key: &str, service: &str, problems: &mut Vec<String>) -> Option<String> {
    let v = labels.get(key)?.trim();
    if v.is_empty() {
        return None;
    }
    if v.len() > MAX_HOOK {
        problems.push(format!("service {service}: {key} is longer than {MAX_HOOK} characters"));
        return None;
    }
    Some(v.to_string())
}

/// A path inside a volume, as the recipe wrote it, made relative to the volume's root:
/// `./a/b/` → `a/b`; `/a` → `a`; `.` → `` (the whole volume). `..` anywhere is refused.
pub fn volume_path(raw: &str) -> Result<String, String> {
    let mut parts = Vec::new();
    for part in raw.trim().split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(format!("{raw:?} leaves the volume")),
            p if p.contains('\0') => return Err(format!("{raw:?} is not a path")),
            p => parts.push(p),
        }
    }
    Ok(parts.join("/"))
}

fn labels_of(spec: &Value) -> BTreeMap<String, String> {
    spec.get("Labels")
        .and_then(Value::as_object)
        .map(|m| m.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string()))).collect())
        .unwrap_or_default()
}

/// (compose volume name, docker name, target) of each named volume a service mounts.
fn volume_mounts(spec: &Value, namespace: &str) -> Vec<(String, String, String)> {
    let mounts = spec.pointer("/TaskTemplate/ContainerSpec/Mounts").and_then(Value::as_array);
    mounts
        .into_iter()
        .flatten()
        .filter(|m| m.get("Type").and_then(Value::as_str) == Some("volume"))
        .filter_map(|m| {
            let source = m.get("Source").and_then(Value::as_str).filter(|s| !s.is_empty())?;
            let target = m.get("Target").and_then(Value::as_str).unwrap_or_default();
            let compose = source.strip_prefix(&format!("{namespace}_")).unwrap_or(source);
            Some((compose.to_string(), source.to_string(), target.to_string()))
        })
        .collect()
}

/// The declarations of a stack that runs: its services' specs as the engine returns them
/// (`docker service inspect`), which carry the same labels and mounts a rendered plan does.
pub fn of_services(namespace: &str, services: &[(String, Value)]) -> Declared {
    let prefix = format!("{namespace}_");
    let mut plan = StackPlan {
        namespace: namespace.to_string(),
        networks: Vec::new(),
        secrets: Vec::new(),
        configs: Vec::new(),
        services: Vec::new(),
        warnings: Vec::new(),
        ignored: Vec::new(),
    };
    for (name, spec) in services {
        plan.services.push(potluck_engine::convert::ServicePlan {
            key: name.strip_prefix(&prefix).unwrap_or(name).to_string(),
            name: name.clone(),
            image: spec.pointer("/TaskTemplate/ContainerSpec/Image").and_then(Value::as_str).unwrap_or_default().into(),
            spec: spec.clone(),
        });
    }
    plan.services.sort_by(|a, b| a.key.cmp(&b.key));
    declared(&plan)
}

/// Reads the backup declarations of a rendered stack.
pub fn declared(plan: &StackPlan) -> Declared {
    let mut out = Declared::default();
    // Every volume first, undeclared until a backed-up service claims it.
    for s in &plan.services {
        for (name, docker_name, target) in volume_mounts(&s.spec, &plan.namespace) {
            let v = out.volumes.entry(name).or_insert_with(|| Volume {
                docker_name,
                mounts: Vec::new(),
                coverage: Coverage::Undeclared,
            });
            v.mounts.push((s.key.clone(), target));
        }
    }
    for s in &plan.services {
        let labels = labels_of(&s.spec);
        if !labels.get(ENABLE).is_some_and(|v| truthy(v)) {
            continue;
        }
        let problems = &mut out.problems;
        let hooks = Hooks {
            backup_pre: hook(&labels, BACKUP_PRE, &s.key, problems),
            backup_post: hook(&labels, BACKUP_POST, &s.key, problems),
            restore_pre: hook(&labels, RESTORE_PRE, &s.key, problems),
            restore_post: hook(&labels, RESTORE_POST, &s.key, problems),
        };
        let mounts = volume_mounts(&s.spec, &plan.namespace);
        // Per-volume labels name volumes by their compose name.
        for key in labels.range(VOLUMES.to_string()..).map(|(k, _)| k) {
            let Some(rest) = key.strip_prefix(VOLUMES) else { break };
            let volume = rest.strip_suffix(".path").unwrap_or(rest);
            if !mounts.iter().any(|(name, ..)| name == volume) {
                problems.push(format!("service {}: {key} names volume {volume:?}, which it does not mount", s.key));
            }
        }
        for (name, _, target) in &mounts {
            let excluded =
                labels.get(&format!("{VOLUMES}{name}")).is_some_and(|v| v.trim().eq_ignore_ascii_case("false"));
            let paths_label = labels.get(&format!("{VOLUMES}{name}.path"));
            let coverage = if excluded {
                Coverage::Excluded { service: s.key.clone() }
            } else if let Some(raw) = paths_label {
                let mut paths = Vec::new();
                for p in raw.split(',').filter(|p| !p.trim().is_empty()).take(MAX_PATHS) {
                    match volume_path(p) {
                        Ok(p) if p.is_empty() => {}
                        Ok(p) => paths.push(p),
                        Err(e) => problems.push(format!("service {}: volume {name}: path {e}", s.key)),
                    }
                }
                if paths.is_empty() {
                    Coverage::Whole { service: s.key.clone() }
                } else {
                    Coverage::Paths { service: s.key.clone(), paths }
                }
            } else if let Some(legacy) = labels.get(LEGACY_PATH) {
                // backup-bot v1: container paths; keep those under this volume's mount point.
                let mut paths = Vec::new();
                let mut whole = false;
                for p in legacy.split(',').map(str::trim).filter(|p| !p.is_empty()).take(MAX_PATHS) {
                    let Ok(inside) = volume_path(p) else {
                        problems.push(format!("service {}: {LEGACY_PATH} {p:?} leaves the container's paths", s.key));
                        continue;
                    };
                    let root = volume_path(target).unwrap_or_default();
                    if inside == root {
                        whole = true;
                    } else if let Some(rel) = inside.strip_prefix(&format!("{root}/")).filter(|_| !root.is_empty()) {
                        paths.push(rel.to_string());
                    }
                }
                match (whole, paths.is_empty()) {
                    (true, _) => Coverage::Whole { service: s.key.clone() },
                    (false, false) => Coverage::Paths { service: s.key.clone(), paths },
                    // The legacy paths are elsewhere in the container: this volume is not named.
                    (false, true) => Coverage::Excluded { service: s.key.clone() },
                }
            } else {
                Coverage::Whole { service: s.key.clone() }
            };
            if let Some(v) = out.volumes.get_mut(name) {
                // A volume backed up through one service is covered, whatever another says.
                let better = matches!(
                    (&v.coverage, &coverage),
                    (Coverage::Undeclared, _)
                        | (Coverage::Excluded { .. }, Coverage::Whole { .. } | Coverage::Paths { .. })
                );
                if better {
                    v.coverage = coverage;
                }
            }
        }
        out.services.push(BackedUpService {
            service: s.key.clone(),
            hooks,
            legacy_command: labels.get(LEGACY_COMMAND).map(|c| c.trim().to_string()).filter(|c| !c.is_empty()),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use potluck_engine::convert::ServicePlan;
    use serde_json::json;

    fn service(key: &str, labels: Value, mounts: Value) -> ServicePlan {
        ServicePlan {
            key: key.into(),
            name: format!("app_{key}"),
            image: "busybox".into(),
            spec: json!({ "Labels": labels, "TaskTemplate": { "ContainerSpec": { "Mounts": mounts } } }),
        }
    }

    fn plan(services: Vec<ServicePlan>) -> StackPlan {
        StackPlan {
            namespace: "app".into(),
            networks: Vec::new(),
            secrets: Vec::new(),
            configs: Vec::new(),
            services,
            warnings: Vec::new(),
            ignored: Vec::new(),
        }
    }

    fn vol(name: &str, target: &str) -> Value {
        json!({ "Type": "volume", "Source": format!("app_{name}"), "Target": target })
    }

    #[test]
    fn the_postgres_pattern_backs_up_the_dump_only() {
        let p = plan(vec![
            service(
                "db",
                json!({
                    "backupbot.backup": "true",
                    "backupbot.backup.pre-hook": "/pg_backup.sh backup",
                    "backupbot.backup.volumes.db-data.path": "backup.sql",
                    "backupbot.restore.post-hook": "/pg_backup.sh restore",
                }),
                json!([vol("db-data", "/var/lib/postgresql/data")]),
            ),
            service(
                "app",
                json!({}),
                json!([vol("uploads", "/uploads"), { "Type": "bind", "Source": "/etc", "Target": "/h" }]),
            ),
        ]);
        let d = declared(&p);
        assert!(d.enabled());
        let db = d.service("db").unwrap();
        assert_eq!(db.hooks.backup_pre.as_deref(), Some("/pg_backup.sh backup"));
        assert_eq!(db.hooks.restore_post.as_deref(), Some("/pg_backup.sh restore"));
        assert_eq!(
            d.volumes["db-data"].coverage,
            Coverage::Paths { service: "db".into(), paths: vec!["backup.sql".into()] }
        );
        assert_eq!(d.volumes["db-data"].docker_name, "app_db-data");
        // A volume no backed-up service mounts is undeclared; bind mounts are not volumes.
        assert_eq!(d.volumes["uploads"].coverage, Coverage::Undeclared);
        assert_eq!(d.volumes.len(), 2);
        assert!(d.problems.is_empty(), "{:?}", d.problems);
    }

    #[test]
    fn exclusions_templated_switches_and_whole_volumes() {
        let p = plan(vec![service(
            "app",
            json!({ "backupbot.backup": "True", "backupbot.backup.volumes.cache": "false" }),
            json!([vol("data", "/data"), vol("cache", "/cache")]),
        )]);
        let d = declared(&p);
        assert_eq!(d.volumes["data"].coverage, Coverage::Whole { service: "app".into() });
        assert_eq!(d.volumes["cache"].coverage, Coverage::Excluded { service: "app".into() });
        // `${ENABLE_BACKUPS:-true}` set to false by the operator turns backups off.
        let off = plan(vec![service("app", json!({ "backupbot.backup": "false" }), json!([vol("data", "/data")]))]);
        let d = declared(&off);
        assert!(!d.enabled());
        assert_eq!(d.volumes["data"].coverage, Coverage::Undeclared);
    }

    #[test]
    fn legacy_paths_map_to_the_volumes_mounted_there() {
        let p = plan(vec![service(
            "app",
            json!({ "backupbot.backup": "true", "backupbot.backup.path": "/data/db,/srv/files" }),
            json!([vol("data", "/data"), vol("files", "/srv/files"), vol("tmp", "/tmp")]),
        )]);
        let d = declared(&p);
        assert_eq!(d.volumes["data"].coverage, Coverage::Paths { service: "app".into(), paths: vec!["db".into()] });
        assert_eq!(d.volumes["files"].coverage, Coverage::Whole { service: "app".into() });
        assert_eq!(d.volumes["tmp"].coverage, Coverage::Excluded { service: "app".into() });
    }

    #[test]
    fn paths_that_leave_the_volume_are_refused() {
        assert_eq!(volume_path("./a//b/").unwrap(), "a/b");
        assert_eq!(volume_path("/a").unwrap(), "a");
        assert_eq!(volume_path(".").unwrap(), "");
        assert!(volume_path("a/../../etc").is_err());
        let p = plan(vec![service(
            "app",
            json!({
                "backupbot.backup": "true",
                "backupbot.backup.volumes.data.path": "ok.sql,../../etc/shadow",
                "backupbot.backup.volumes.ghost": "false",
            }),
            json!([vol("data", "/data")]),
        )]);
        let d = declared(&p);
        assert_eq!(d.volumes["data"].coverage, Coverage::Paths { service: "app".into(), paths: vec!["ok.sql".into()] });
        assert_eq!(d.problems.len(), 2, "{:?}", d.problems);
        assert!(d.problems.iter().any(|p| p.contains("leaves the volume")));
        assert!(d.problems.iter().any(|p| p.contains("\"ghost\"")));
    }
}
