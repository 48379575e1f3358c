//! Recipe lint: abra's rules (R001–R015, as Potluck reads them from real recipes and Docker's
//! behaviour) and the federation's policy checks (P001–P005). Each finding says the rule, its
//! level, the service, what is wrong and how to fix it. Error-level findings stop deploys.
//!
//! Where abra's recollected rules disagree with reality, reality wins: R001 accepts any 3.x
//! string (Docker's loader does), R010 only applies to recipes that join the `proxy` network,
//! and R015 is computed from Docker's 64-character limit with abra's 45-character stack names (a
//! warning: the deploy checks refuse the names that really overflow for an app's stack).
//!
//! R016–R018 read backup-bot-two's labels as `potluck-backup` does, in the stack the sample env
//! renders: a volume nothing backs up, a dump without a restore hook, a label that cannot be
//! followed (a path that leaves its volume).

use super::inspect::images;
use super::metadata;
use crate::adapters::engine::convert::StackPlan;
use crate::adapters::engine::envfile::{abra_sh_exports, EnvFile};
use crate::adapters::engine::load::RecipeFiles;
use crate::adapters::engine::yaml::{self, Node};
use crate::adapters::git::TagInfo;
use serde::Serialize;
use std::collections::BTreeSet;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub rule: String,
    /// `error` or `warning`.
    pub level: String,
    pub service: Option<String>,
    pub message: String,
    pub fix: String,
}

/// The stack name lint renders recipes with.
const LINT_STACK: &str = "lint_example_org";

/// The stack the recipe's `.env.sample` gives, as a deploy would render it.
fn sample_plan(files: &RecipeFiles) -> Option<StackPlan> {
    let sample = files.text(".env.sample").and_then(|t| EnvFile::parse(&t).ok())?;
    let env = crate::adapters::engine::app_environment(&sample, files.text("abra.sh").as_deref(), LINT_STACK);
    crate::adapters::engine::render(files, &env, LINT_STACK, None).ok()
}

/// R016–R018: backups as backup-bot-two's labels declare them, in the rendered sample stack.
fn backups(plan: &StackPlan) -> Vec<Finding> {
    let d = potluck_backup::declared(plan);
    let mut out = Vec::new();
    for (name, v) in &d.volumes {
        if v.coverage == potluck_backup::Coverage::Undeclared {
            let services: Vec<&str> = v.mounts.iter().map(|(s, _)| s.as_str()).collect();
            out.push(finding(
                "R016",
                "warning",
                services.first().copied(),
                format!("volume {name} (mounted by {}) is not backed up: no service that mounts it declares backups", services.join(", ")),
                "add `backupbot.backup=${ENABLE_BACKUPS:-true}` to the deploy labels of the service that owns the data, and `backupbot.backup.volumes.<volume>=false` for volumes with nothing worth keeping",
            ));
        }
    }
    for s in &d.services {
        if s.hooks.backup_pre.is_some() && s.hooks.restore_pre.is_none() && s.hooks.restore_post.is_none() {
            out.push(finding(
                "R017",
                "warning",
                Some(&s.service),
                format!("service {} writes a dump in its backup pre-hook but has no restore hook: a restore puts the dump back without loading it", s.service),
                "add `backupbot.restore.post-hook` that loads the dump (for Postgres, `/pg_backup.sh restore`)",
            ));
        }
    }
    for p in &d.problems {
        out.push(finding(
            "R018",
            "warning",
            None,
            format!("a backup label cannot be followed: {p}"),
            "backup paths are relative to the volume's root and stay inside it; name only volumes the service mounts",
        ));
    }
    out
}

/// P005 findings: the deploy guardrails' refusals under a server policy that allows nothing.
fn host_access(plan: &StackPlan) -> Vec<Finding> {
    crate::adapters::engine::guard::check(plan, &crate::adapters::engine::guard::Policy::default())
        .into_iter()
        .map(|f| {
            finding(
                "P005",
                "warning",
                Some(&f.service),
                format!("asks the host for {} ({}: {})", f.guard, f.field, f.detail.replace(LINT_STACK, "<stack>")),
                &format!(
                    "servers refuse this unless a federation admin allows `{}` for them; avoid it where you can",
                    f.guard
                ),
            )
        })
        .collect()
}

fn finding(rule: &str, level: &str, service: Option<&str>, message: String, fix: &str) -> Finding {
    Finding { rule: rule.into(), level: level.into(), service: service.map(String::from), message, fix: fix.into() }
}

/// The longest stack name abra makes (dots → underscores, cut at 45).
const MAX_STACK: usize = 45;
/// Docker's limit on secret and config names.
const MAX_NAME: usize = 64;

struct Compose {
    file: String,
    root: indexmap::IndexMap<String, Node>,
}

/// The compose files that parse, and the reasons the others do not.
fn compose_files(files: &RecipeFiles) -> (Vec<Compose>, Vec<(String, String)>) {
    let mut ok = Vec::new();
    let mut bad = Vec::new();
    for k in files.files.keys().filter(|k| super::inspect::is_compose_file(k)) {
        match yaml::parse(&files.text(k).unwrap_or_default()) {
            Ok(Node::Map(root)) => ok.push(Compose { file: k.clone(), root }),
            Ok(_) => bad.push((k.clone(), "the top level is not a mapping".to_string())),
            Err(e) => bad.push((k.clone(), e.to_string())),
        }
    }
    (ok, bad)
}

fn services(c: &Compose) -> Vec<(&String, &Node)> {
    match c.root.get("services") {
        Some(Node::Map(m)) => m.iter().collect(),
        _ => Vec::new(),
    }
}

fn labels_of(svc: &Node) -> Vec<(String, String)> {
    match svc.at(&["deploy", "labels"]) {
        Some(Node::Map(m)) => m.iter().map(|(k, v)| (k.clone(), v.scalar_text().unwrap_or_default())).collect(),
        Some(Node::Seq(items)) => items
            .iter()
            .filter_map(|i| i.as_str())
            .map(|s| s.split_once('=').map_or((s.to_string(), String::new()), |(k, v)| (k.to_string(), v.to_string())))
            .collect(),
        _ => Vec::new(),
    }
}

fn tag_of(image: &str) -> Option<&str> {
    let name = image.split('@').next().unwrap_or(image);
    let last = name.rsplit('/').next().unwrap_or(name);
    last.split_once(':').map(|(_, t)| t).filter(|t| !t.is_empty())
}

/// The rules that look at a version's files.
pub fn lint_files(files: &RecipeFiles, recipe: &str) -> Vec<Finding> {
    let _ = recipe;
    let mut out = Vec::new();
    let (composes, unreadable) = compose_files(files);
    for (file, reason) in &unreadable {
        out.push(finding("R011", "error", None, format!("{file} cannot be read: {reason}"), "fix the YAML"));
    }
    if unreadable.iter().any(|(f, _)| f == "compose.yml") {
        return out;
    }
    let main = composes.iter().find(|c| c.file == "compose.yml");

    // R001: a 3.x version string.
    if let Some(m) = main {
        match m.root.get("version").and_then(Node::as_str) {
            Some(v) if v.starts_with('3') => {}
            Some(v) => out.push(finding(
                "R001",
                "warning",
                None,
                format!("compose.yml declares version {v:?}"),
                "use version: \"3.8\"",
            )),
            None => {
                out.push(finding("R001", "warning", None, "compose.yml has no version".into(), "add version: \"3.8\""))
            }
        }
    } else {
        out.push(finding("R011", "error", None, "the recipe has no compose.yml".into(), "add compose.yml"));
        return out;
    }

    let sample_env = files.text(".env.sample").and_then(|t| EnvFile::parse(&t).ok());
    let resolved: std::collections::BTreeMap<String, String> =
        images(files).into_iter().map(|i| (i.service, i.image)).collect();
    let mut all_services: BTreeSet<String> = BTreeSet::new();
    let mut joins_proxy = false;
    let mut traefik = false;
    for c in &composes {
        for (name, svc) in services(c) {
            all_services.insert(name.clone());
            let replicas_zero = matches!(svc.at(&["deploy", "replicas"]), Some(Node::Int(0)));
            // R002: healthchecks (services scaled to 0, i.e. cron jobs, are exempt).
            if c.file == "compose.yml" && svc.get("healthcheck").is_none() && !replicas_zero {
                out.push(finding(
                    "R002",
                    "warning",
                    Some(name),
                    format!("service {name} has no healthcheck"),
                    "add a healthcheck: block",
                ));
            }
            // R011 / R003 / R004 / R005 / P004: images.
            match svc.get("image").and_then(Node::as_str) {
                None => {
                    // An overlay may extend a service without repeating its image.
                    let defined_elsewhere = composes.iter().any(|o| {
                        o.file != c.file && services(o).iter().any(|(n, s)| *n == name && s.get("image").is_some())
                    });
                    if !defined_elsewhere {
                        out.push(finding(
                            "R011",
                            "error",
                            Some(name),
                            format!("service {name} has no image ({})", c.file),
                            "give every service an image:",
                        ));
                    }
                }
                Some(raw) => {
                    let image = resolved.get(name.as_str()).cloned().unwrap_or_else(|| raw.to_string());
                    match tag_of(&image) {
                        None if !image.contains('@') => {
                            out.push(finding(
                                "R003",
                                "warning",
                                Some(name),
                                format!("image {image} has no tag"),
                                "pin a tag: image: name:1.2.3",
                            ));
                            out.push(finding(
                                "P004",
                                "error",
                                Some(name),
                                format!("federation policy: image {image} is not pinned (it follows :latest)"),
                                "pin a tag or a digest",
                            ));
                        }
                        None => {}
                        Some(tag) => {
                            if matches!(
                                tag,
                                "latest" | "edge" | "nightly" | "dev" | "develop" | "main" | "master" | "stable"
                            ) {
                                out.push(finding(
                                    "R004",
                                    "warning",
                                    Some(name),
                                    format!("image {image} uses the unstable tag {tag:?}"),
                                    "use a release tag",
                                ));
                            }
                            let semverish =
                                tag.trim_start_matches('v').chars().next().is_some_and(|ch| ch.is_ascii_digit());
                            if !semverish {
                                out.push(finding(
                                    "R005",
                                    "warning",
                                    Some(name),
                                    format!("image tag {tag:?} of {name} is not semver-like"),
                                    "use a version tag such as 1.2.3",
                                ));
                            }
                        }
                    }
                }
            }
            // Policy: docker.sock, privileged, host network.
            let volumes = svc.get("volumes").and_then(Node::as_seq).cloned().unwrap_or_default();
            if volumes.iter().any(|v| {
                v.as_str().is_some_and(|s| s.contains("docker.sock"))
                    || v.get("source").and_then(Node::as_str).is_some_and(|s| s.contains("docker.sock"))
            }) {
                out.push(finding(
                    "P001",
                    "warning",
                    Some(name),
                    format!("service {name} mounts the Docker socket: it controls the whole server"),
                    "prefer a socket proxy with only the API calls it needs",
                ));
            }
            if matches!(svc.get("privileged"), Some(Node::Bool(true))) {
                out.push(finding(
                    "P002",
                    "warning",
                    Some(name),
                    format!("service {name} asks to be privileged (swarm ignores it)"),
                    "remove privileged: true; use cap_add for what it needs",
                ));
            }
            let host_net = svc.get("network_mode").and_then(Node::as_str) == Some("host")
                || match svc.get("networks") {
                    Some(Node::Seq(n)) => n.iter().any(|x| x.as_str() == Some("host")),
                    Some(Node::Map(m)) => m.contains_key("host"),
                    _ => false,
                };
            if host_net {
                out.push(finding(
                    "P003",
                    "warning",
                    Some(name),
                    format!("service {name} uses the host network"),
                    "use the overlay networks (proxy, internal)",
                ));
            }
            let nets_proxy = match svc.get("networks") {
                Some(Node::Seq(n)) => n.iter().any(|x| x.as_str() == Some("proxy")),
                Some(Node::Map(m)) => m.contains_key("proxy"),
                _ => false,
            };
            joins_proxy |= nets_proxy;
            if labels_of(svc).iter().any(|(k, v)| k == "traefik.enable" && v == "true") {
                traefik = true;
            }
        }
    }
    // R008: .env.sample.
    if sample_env.is_none() {
        out.push(finding(
            "R008",
            "error",
            None,
            "the recipe has no (valid) .env.sample".into(),
            "add .env.sample with the app's settings",
        ));
    }
    // R009: a service named app.
    if !all_services.contains("app") {
        out.push(finding("R009", "error", None, "no service is named app".into(), "name the main service app"));
    }
    // R010: traefik routing, for recipes that are reached through the proxy.
    if joins_proxy && !traefik {
        out.push(finding(
            "R010",
            "error",
            None,
            "services join the proxy network but none sets traefik.enable=true".into(),
            "add the traefik.enable=true deploy label",
        ));
    }
    // R013: deploy labels on app.
    if let Some(app) = main.and_then(|m| services(m).into_iter().find(|(n, _)| *n == "app").map(|(_, s)| s)) {
        if app.at(&["deploy", "labels"]).is_none() {
            out.push(finding(
                "R013",
                "error",
                Some("app"),
                "service app has no deploy.labels".into(),
                "add deploy: labels: (with the version label)",
            ));
        }
    }
    let mut long_secrets: BTreeSet<String> = BTreeSet::new();
    // R012: config versions are vendored in abra.sh.
    let exports = files.text("abra.sh").map(|t| abra_sh_exports(&t)).unwrap_or_default();
    let sample_values = sample_env.as_ref().map(|e| e.values(&|_| None)).unwrap_or_default();
    for c in &composes {
        if let Some(Node::Map(configs)) = c.root.get("configs") {
            for (key, def) in configs {
                let Some(name) = def.get("name").and_then(Node::as_str) else { continue };
                for var in variables(name) {
                    if var.ends_with("_VERSION")
                        && !exports.contains_key(&var)
                        && !sample_values.contains_key(&var)
                        && !name.contains(&format!("{var}:-"))
                    {
                        out.push(finding(
                            "R012",
                            "error",
                            None,
                            format!("config {key} is named with {var}, which abra.sh does not export"),
                            "add `export <VAR>=v1` to abra.sh and bump it whenever the file changes",
                        ));
                    }
                }
            }
        }
        // R015: versioned secret names fit Docker's 64 characters. A warning: whether a
        // name overflows depends on the app's stack name, which the deploy checks compute.
        if let Some(Node::Map(secrets)) = c.root.get("secrets") {
            for (key, _) in secrets {
                if !long_secrets.insert(key.clone()) {
                    continue;
                }
                let longest = MAX_STACK + 1 + key.len() + 1 + 3;
                if longest > MAX_NAME {
                    out.push(finding(
                        "R015",
                        "warning",
                        None,
                        format!(
                            "secret {key}: <stack>_{key}_v<n> can reach {longest} characters, over Docker's {MAX_NAME}"
                        ),
                        "shorten the secret's name (at most 14 characters)",
                    ));
                }
            }
        }
    }
    // P005: what the recipe asks of the host (bind mounts, the Docker socket, capabilities…),
    // which servers refuse unless a federation admin allows it for them: rendered with the
    // sample's values, checked by the deploy guardrails themselves.
    if let Some(plan) = sample_plan(files) {
        out.extend(host_access(&plan));
        // R016–R018: what the sample stack's backup labels cover.
        out.extend(backups(&plan));
    }
    // R007: README metadata.
    let readme = files.text("README.md").unwrap_or_default();
    let meta = metadata::parse(&readme);
    if meta.is_empty()
        || metadata::get(&meta, "Category").is_none_or(str::is_empty)
        || metadata::get(&meta, "Status").is_none_or(str::is_empty)
    {
        out.push(finding(
            "R007",
            "warning",
            None,
            "README.md metadata (Category, Status…) is not filled in".into(),
            "fill in the <!-- metadata --> block",
        ));
    }
    out.sort_by(|a, b| a.rule.cmp(&b.rule).then(a.service.cmp(&b.service)));
    out.dedup();
    out
}

/// `${NAME…}` and `$NAME` variables of a string.
fn variables(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'$' {
            let start = if b.get(i + 1) == Some(&b'{') { i + 2 } else { i + 1 };
            let mut end = start;
            while end < b.len() && (b[end].is_ascii_alphanumeric() || b[end] == b'_') {
                end += 1;
            }
            if end > start {
                out.push(s[start..end].to_string());
            }
            i = end.max(i + 1);
        } else {
            i += 1;
        }
    }
    out
}

/// All rules, including those about the recipe's tags (R006, R014).
pub fn lint_recipe(files: &RecipeFiles, recipe: &str, tags: &[TagInfo]) -> Vec<Finding> {
    let mut out = lint_files(files, recipe);
    if tags.is_empty() {
        out.push(finding(
            "R006",
            "warning",
            None,
            "the recipe has no published version".into(),
            "publish a release (an annotated tag)",
        ));
    }
    for t in tags.iter().filter(|t| !t.annotated) {
        out.push(finding(
            "R014",
            "error",
            None,
            format!("version {} is a lightweight tag", t.name),
            "replace it with an annotated tag (git tag -a)",
        ));
    }
    out.sort_by(|a, b| a.rule.cmp(&b.rule).then(a.service.cmp(&b.service)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(list: &[(&str, &str)]) -> RecipeFiles {
        RecipeFiles {
            root: "/r".into(),
            files: list.iter().map(|(k, v)| (k.to_string(), v.as_bytes().to_vec())).collect(),
        }
    }

    #[test]
    fn a_clean_recipe_passes_the_error_rules() {
        let f = files(&[
            ("compose.yml", "version: \"3.8\"\nservices:\n  app:\n    image: nginx:1.25.3\n    networks: [proxy]\n    healthcheck: {test: [\"CMD\", \"true\"]}\n    deploy:\n      labels:\n        - traefik.enable=true\nnetworks:\n  proxy: {external: true}\n"),
            (".env.sample", "DOMAIN=x\n"),
            ("README.md", "<!-- metadata -->\n* **Category**: Apps\n* **Status**: 3, stable\n<!-- endmetadata -->\n"),
        ]);
        let findings = lint_files(&f, "x");
        assert!(findings.is_empty(), "{findings:?}");
    }

    #[test]
    fn catches_the_usual_mistakes() {
        let f = files(&[
            ("compose.yml", "version: \"3.8\"\nservices:\n  web:\n    image: nginx\n    networks: [proxy]\n    volumes: [\"/var/run/docker.sock:/var/run/docker.sock\"]\n  db:\n    image: postgres:latest\nconfigs:\n  conf:\n    name: ${STACK_NAME}_conf_${CONF_VERSION}\n    file: c.conf\nsecrets:\n  a_very_long_secret_name:\n    external: true\nnetworks:\n  proxy: {external: true}\n"),
        ]);
        let rules: BTreeSet<String> = lint_files(&f, "x").into_iter().map(|f| f.rule).collect();
        for r in ["R002", "R003", "R004", "R007", "R008", "R009", "R010", "R012", "R015", "P001", "P004"] {
            assert!(rules.contains(r), "{r} missing from {rules:?}");
        }
    }

    #[test]
    fn host_access_is_named_for_maintainers() {
        let f = files(&[
            ("compose.yml", "version: \"3.8\"\nservices:\n  web:\n    image: nginx:1.25\n    volumes: [\"/var/run/docker.sock:/var/run/docker.sock:ro\"]\n    cap_add: [NET_ADMIN]\n"),
            (".env.sample", "DOMAIN=x.example.org\n"),
        ]);
        let p005: Vec<Finding> = lint_files(&f, "x").into_iter().filter(|f| f.rule == "P005").collect();
        let text: Vec<String> = p005.iter().map(|f| format!("{} {}", f.message, f.fix)).collect();
        assert!(text.iter().any(|t| t.contains("docker_socket") && t.contains("/var/run/docker.sock")), "{text:?}");
        assert!(text.iter().any(|t| t.contains("capabilities") && t.contains("NET_ADMIN")), "{text:?}");
        assert!(p005.iter().all(|f| f.service.as_deref() == Some("web") && f.level == "warning"));
    }

    #[test]
    fn backups_as_the_labels_declare_them() {
        let with = |labels: &str| {
            files(&[
                ("compose.yml", &format!("version: \"3.8\"\nservices:\n  db:\n    image: postgres:16.2\n    volumes: [data:/var/lib/postgresql/data]\n    deploy:\n      labels:\n{labels}  app:\n    image: nginx:1.25.3\n    volumes: [uploads:/u]\nvolumes:\n  data:\n  uploads:\n")),
                (".env.sample", "DOMAIN=x\nENABLE_BACKUPS=true\n"),
            ])
        };
        let rules = |f: &RecipeFiles| -> Vec<(String, Option<String>, String)> {
            lint_files(f, "x")
                .into_iter()
                .filter(|f| ["R016", "R017", "R018"].contains(&f.rule.as_str()))
                .map(|f| (f.rule, f.service, f.message))
                .collect()
        };
        // Nothing declared: both volumes are named.
        let none = rules(&with("        a: b\n"));
        assert_eq!(none.iter().filter(|f| f.0 == "R016").count(), 2, "{none:?}");
        // The dump pattern without a restore hook: the mattermost-lts lesson.
        let dump = rules(&with(
            "        backupbot.backup: ${ENABLE_BACKUPS:-true}\n        backupbot.backup.pre-hook: /pg_backup.sh backup\n        backupbot.backup.volumes.data.path: backup.sql\n",
        ));
        assert!(dump.iter().any(|f| f.0 == "R017" && f.1.as_deref() == Some("db")), "{dump:?}");
        assert!(dump.iter().any(|f| f.0 == "R016" && f.2.contains("uploads")), "{dump:?}");
        assert!(!dump.iter().any(|f| f.0 == "R016" && f.2.contains("volume data")), "{dump:?}");
        // With the restore hook and a path that leaves the volume.
        let hostile = rules(&with(
            "        backupbot.backup: \"true\"\n        backupbot.backup.pre-hook: /pg_backup.sh backup\n        backupbot.restore.post-hook: /pg_backup.sh restore\n        backupbot.backup.volumes.data.path: ../../etc\n",
        ));
        assert!(!hostile.iter().any(|f| f.0 == "R017"), "{hostile:?}");
        assert!(hostile.iter().any(|f| f.0 == "R018" && f.2.contains("leaves the volume")), "{hostile:?}");
    }

    #[test]
    fn interpolated_images_and_defaults() {
        let f = files(&[
            ("compose.yml", "version: \"3.8\"\nservices:\n  app:\n    image: ${REG:-vendor/app}:${V:-1.0.6}\n    healthcheck: {test: [\"CMD\", \"true\"]}\n    deploy: {labels: [a=b]}\nconfigs:\n  e:\n    name: ${STACK_NAME}_e_${E_VERSION}\n    file: e\n"),
            (".env.sample", "DOMAIN=x\n"),
            ("abra.sh", "export E_VERSION=v2\n"),
        ]);
        let rules: Vec<String> = lint_files(&f, "x").into_iter().map(|f| f.rule).collect();
        assert!(!rules.contains(&"R003".to_string()) && !rules.contains(&"R012".to_string()), "{rules:?}");
    }
}
