//! Loading a stack the way `docker stack deploy -c A -c B …` does: per file, parse → forbidden
//! keys → interpolate → validate against the file's schema version → load; then merge the files
//! left to right, check images, and collect the warnings the CLI prints.

use super::compose::{self, Config};
use super::interpolate::interpolate;
use super::merge::merge;
use super::schema;
use super::yaml::{self, Node};
use indexmap::IndexMap;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct StackError(pub String);

/// A recipe's files at one version (read from a git tree or a directory), addressed by paths
/// relative to the recipe root. Recipes are small; they are read whole.
#[derive(Debug, Clone, Default)]
pub struct RecipeFiles {
    /// Where the recipe "is" for path resolution (bind mounts are relative to it).
    pub root: PathBuf,
    pub files: BTreeMap<String, Vec<u8>>,
}

impl RecipeFiles {
    /// Reads a directory (skipping `.git`).
    pub fn from_dir(dir: &Path) -> std::io::Result<RecipeFiles> {
        let root = dir.canonicalize()?;
        let mut files = BTreeMap::new();
        let mut stack = vec![root.clone()];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d)? {
                let entry = entry?;
                let path = entry.path();
                let ft = entry.file_type()?;
                if ft.is_dir() {
                    if entry.file_name() != ".git" {
                        stack.push(path);
                    }
                } else if ft.is_file() && entry.metadata()?.len() <= 4 * 1024 * 1024 {
                    let rel = path.strip_prefix(&root).map_err(std::io::Error::other)?.to_string_lossy().into_owned();
                    files.insert(rel, std::fs::read(&path)?);
                }
            }
        }
        Ok(RecipeFiles { root, files })
    }

    pub fn get(&self, rel: &str) -> Option<&[u8]> {
        self.files.get(rel.trim_start_matches("./")).map(Vec::as_slice)
    }

    pub fn text(&self, rel: &str) -> Option<String> {
        self.get(rel).map(|b| String::from_utf8_lossy(b).into_owned())
    }

    /// Reads an absolute path inside the recipe.
    pub fn read_abs(&self, path: &Path) -> Result<Vec<u8>, String> {
        let rel = normalize_rel(path.strip_prefix(&self.root).map_err(|_| "outside the recipe".to_string())?);
        self.files.get(&rel).cloned().ok_or_else(|| "no such file in the recipe".to_string())
    }
}

fn normalize_rel(p: &Path) -> String {
    let mut parts: Vec<String> = Vec::new();
    for c in p.components() {
        match c {
            std::path::Component::ParentDir => {
                parts.pop();
            }
            std::path::Component::Normal(s) => parts.push(s.to_string_lossy().into_owned()),
            _ => {}
        }
    }
    parts.join("/")
}

/// The result of loading: the merged model, the schema version, and the CLI's warnings.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    pub version: String,
    pub warnings: Vec<String>,
    /// (service, key) of the options swarm ignores, for the deploy guardrails: a recipe that
    /// asks for `privileged` or `devices` is refused on servers that do not allow them.
    pub ignored: Vec<(String, String)>,
    pub working_dir: PathBuf,
}

const FORBIDDEN: &[(&str, &str)] = &[
    ("extends", "Support for `extends` is not implemented yet."),
    ("volume_driver", "Instead of setting the volume driver on the service, define a volume using the top-level `volumes` option and specify the driver there."),
    ("volumes_from", "To share a volume between services, define it using the top-level `volumes` option and reference it from each service that shares it using the service-level `volumes` option."),
    ("cpu_quota", "Set resource limits using deploy.resources"),
    ("cpu_shares", "Set resource limits using deploy.resources"),
    ("cpuset", "Set resource limits using deploy.resources"),
    ("mem_limit", "Set resource limits using deploy.resources"),
    ("memswap_limit", "Set resource limits using deploy.resources"),
];

const UNSUPPORTED: &[&str] = &[
    "build",
    "cgroupns_mode",
    "cgroup_parent",
    "devices",
    "domainname",
    "external_links",
    "ipc",
    "links",
    "mac_address",
    "network_mode",
    "pid",
    "privileged",
    "restart",
    "security_opt",
    "shm_size",
    "userns_mode",
];

const DEPRECATED: &[(&str, &str)] = &[
    ("container_name", "Setting the container name is not supported."),
    (
        "expose",
        "Exposing ports is unnecessary - services on the same network can access each other's containers on any port.",
    ),
];

fn services_of(root: &IndexMap<String, Node>) -> Vec<(&String, &Node)> {
    match root.get("services") {
        Some(Node::Map(m)) => m.iter().collect(),
        _ => Vec::new(),
    }
}

/// Loads `compose_files` (relative to the recipe root) with `env` as the process environment.
pub fn load(
    files: &RecipeFiles,
    compose_files: &[String],
    env: &IndexMap<String, String>,
) -> Result<Loaded, StackError> {
    if compose_files.is_empty() {
        return Err(StackError("no compose file given".into()));
    }
    let lookup = |k: &str| env.get(k).cloned();
    let first = files.root.join(&compose_files[0]);
    let working_dir = first.parent().map(Path::to_path_buf).unwrap_or_else(|| files.root.clone());
    let read_text = |p: &Path| files.read_abs(p).map(|b| String::from_utf8_lossy(&b).into_owned());
    let mut merged: Option<Config> = None;
    let mut version: Option<String> = None;
    let mut warnings = Vec::new();
    let mut unsupported: BTreeMap<String, ()> = BTreeMap::new();
    let mut ignored: Vec<(String, String)> = Vec::new();
    let mut deprecated: BTreeMap<String, ()> = BTreeMap::new();
    for rel in compose_files {
        let text = files
            .text(rel)
            .ok_or_else(|| StackError(format!("open {}: no such file or directory", files.root.join(rel).display())))?;
        let doc = yaml::parse(&text).map_err(|e| StackError(format!("{rel}: {e}")))?;
        let mut root = match doc {
            Node::Map(m) => m,
            Node::Null => return Err(StackError("top-level object must be a mapping".into())),
            _ => return Err(StackError("top-level object must be a mapping".into())),
        };
        // The schema version (checked against the known ones at validation, after interpolation).
        let file_version = schema::version_of(&root.get("version").and_then(Node::scalar_text).unwrap_or_default());
        match &version {
            None => version = Some(file_version.clone()),
            Some(v) if *v != file_version => {
                return Err(StackError(format!(
                    "version mismatched between two composefiles : {v} and {file_version}"
                )));
            }
            _ => {}
        }
        // Forbidden keys, before interpolation.
        let mut forbidden: BTreeMap<&str, &str> = BTreeMap::new();
        for (_, svc) in services_of(&root) {
            for (key, hint) in FORBIDDEN {
                if svc.get(key).is_some() {
                    forbidden.insert(key, hint);
                }
            }
        }
        if !forbidden.is_empty() {
            let lines: Vec<String> = forbidden.iter().map(|(k, h)| format!("{k}: {h}")).collect();
            return Err(StackError(format!("Compose file contains unsupported options:\n\n{}\n", lines.join("\n\n"))));
        }
        interpolate(&mut root, &lookup).map_err(|e| StackError(e.to_string()))?;
        schema::validate(&file_version, &root).map_err(StackError)?;
        for (name, svc) in services_of(&root) {
            // (`restart` is reported too, even where it serves as the restart-policy fallback.)
            for key in UNSUPPORTED {
                if svc.get(key).is_some() {
                    unsupported.insert(key.to_string(), ());
                    ignored.push((name.clone(), key.to_string()));
                }
            }
            for (key, text) in DEPRECATED {
                if svc.get(key).is_some() {
                    deprecated.insert(format!("{key}: {text}"), ());
                }
            }
        }
        let config = compose::load_file(&root, &working_dir, &read_text, &lookup).map_err(|e| StackError(e.0))?;
        merged = Some(match merged {
            None => config,
            Some(base) => merge(base, config),
        });
    }
    let mut config = merged.unwrap_or_default();
    config.services.sort_by(|a, b| a.name.cmp(&b.name));
    if !unsupported.is_empty() {
        warnings.push(format!(
            "Ignoring unsupported options: {}",
            unsupported.keys().cloned().collect::<Vec<_>>().join(", ")
        ));
    }
    if !deprecated.is_empty() {
        warnings.push(format!(
            "Ignoring deprecated options:\n\n{}",
            deprecated.keys().cloned().collect::<Vec<_>>().join("\n\n")
        ));
    }
    Ok(Loaded { config, version: version.unwrap_or_default(), warnings, ignored, working_dir })
}
