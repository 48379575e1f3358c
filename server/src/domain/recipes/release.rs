//! What a release changes for the operators who run the recipe: the difference between the files
//! of the previous release and of the proposed commit, read as an operator needs it (services,
//! images, env variables, secrets, configs, volumes, lint), the bump it suggests, and the next
//! version. Pure functions over two [`RecipeFiles`]; the workflow lives in `review.rs`.

use super::lint;
use super::version::RecipeVersion;
use crate::adapters::engine::envfile::{abra_sh_exports, commented_entries, EnvFile};
use crate::adapters::engine::load::RecipeFiles;
use crate::adapters::engine::yaml::{self, Node};
use potluck_app::model::{ImageChange, LintFindingView, ReleaseDiff, VariableChange};
use regex::Regex;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

/// The objects of a recipe version that matter to operators, across all its compose files.
#[derive(Default)]
struct Shape {
    /// `service` → image (first definition wins: compose.yml before overlays).
    images: BTreeMap<String, String>,
    secrets: BTreeSet<String>,
    /// config → (name template, file path).
    configs: BTreeMap<String, (String, Option<String>)>,
    volumes: BTreeSet<String>,
    /// `${VAR…}` references: name → has a default.
    variables: BTreeMap<String, bool>,
    /// `.env.sample` keys (active and commented out) → value.
    sample: BTreeMap<String, String>,
    /// abra.sh exports.
    exports: BTreeMap<String, String>,
    malformed: Vec<String>,
}

static VARIABLE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:?[-?+])?[^}]*\}").unwrap_or_else(|e| panic!("variable pattern: {e}"))
});

fn compose_names(files: &RecipeFiles) -> Vec<String> {
    let mut names: Vec<String> = files.files.keys().filter(|k| super::inspect::is_compose_file(k)).cloned().collect();
    // compose.yml first, so that its definitions win over the overlays'.
    names.sort_by_key(|n| (n != "compose.yml", n.clone()));
    names
}

fn shape(files: &RecipeFiles) -> Shape {
    let mut s = Shape::default();
    for name in compose_names(files) {
        let text = files.text(&name).unwrap_or_default();
        for c in VARIABLE.captures_iter(&text) {
            let has_default = c.get(2).is_some_and(|m| m.as_str().ends_with('-'));
            let entry = s.variables.entry(c[1].to_string()).or_insert(has_default);
            *entry = *entry || has_default;
        }
        let root = match yaml::parse(&text) {
            Ok(Node::Map(m)) => m,
            Ok(_) => {
                s.malformed.push(format!("{name} is not a mapping"));
                continue;
            }
            Err(e) => {
                s.malformed.push(format!("{name}: {e}"));
                continue;
            }
        };
        if let Some(Node::Map(services)) = root.get("services") {
            for (svc, def) in services {
                if let Some(image) = def.get("image").and_then(Node::scalar_text) {
                    s.images.entry(svc.clone()).or_insert(image);
                }
            }
        }
        if let Some(Node::Map(secrets)) = root.get("secrets") {
            s.secrets.extend(secrets.keys().cloned());
        }
        if let Some(Node::Map(configs)) = root.get("configs") {
            for (cfg, def) in configs {
                let name_template = def.get("name").and_then(Node::scalar_text).unwrap_or_else(|| cfg.clone());
                let file = def.get("file").and_then(Node::scalar_text).map(|f| f.trim_start_matches("./").to_string());
                s.configs.entry(cfg.clone()).or_insert((name_template, file));
            }
        }
        if let Some(Node::Map(volumes)) = root.get("volumes") {
            s.volumes.extend(volumes.keys().cloned());
        }
    }
    if let Some(sample) = files.text(".env.sample") {
        match EnvFile::parse(&sample) {
            Ok(env) => {
                for e in env.entries() {
                    s.sample.insert(e.key.clone(), e.raw_value.clone());
                }
            }
            Err(e) => s.malformed.push(format!(".env.sample: {e}")),
        }
        for e in commented_entries(&sample) {
            s.sample.entry(e.key.clone()).or_insert(e.raw_value.clone());
        }
    }
    if let Some(sh) = files.text("abra.sh") {
        s.exports = abra_sh_exports(&sh).into_iter().collect();
    }
    s
}

/// The tag of an image reference (`nginx:1.27-alpine` → `1.27-alpine`), if any.
pub fn image_tag(image: &str) -> Option<&str> {
    let name = image.split('@').next().unwrap_or(image);
    let last = name.rsplit('/').next().unwrap_or(name);
    last.split_once(':').map(|(_, t)| t).filter(|t| !t.is_empty())
}

/// The leading number of a tag (`v2.4.8` → 2, `17-3.5-alpine` → 17).
fn major_of(tag: &str) -> Option<u64> {
    let t = tag.trim_start_matches('v');
    let digits: String = t.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// A secret's version variable, as abra names it (`db_password` → `SECRET_DB_PASSWORD_VERSION`).
fn secret_version_var(secret: &str) -> String {
    format!("SECRET_{}_VERSION", secret.to_ascii_uppercase())
}

/// The variables a config's name depends on (`${STACK_NAME}_entrypoint_${APP_ENTRYPOINT_VERSION}`
/// → `APP_ENTRYPOINT_VERSION`), with their values at a version.
fn name_inputs(template: &str, s: &Shape) -> Vec<(String, Option<String>)> {
    VARIABLE
        .captures_iter(template)
        .map(|c| c[1].to_string())
        .filter(|v| v != "STACK_NAME")
        .map(|v| {
            let value = s.exports.get(&v).or_else(|| s.sample.get(&v)).cloned();
            (v, value)
        })
        .collect()
}

/// The operator's view of what changes from `base` (the previous release, if any) to `head`.
pub fn diff(base: Option<&RecipeFiles>, head: &RecipeFiles, recipe: &str) -> ReleaseDiff {
    let empty = RecipeFiles { root: head.root.clone(), files: BTreeMap::new() };
    let old_files = base.unwrap_or(&empty);
    let old = shape(old_files);
    let new = shape(head);
    let mut d = ReleaseDiff {
        services_added: new.images.keys().filter(|k| !old.images.contains_key(*k)).cloned().collect(),
        services_removed: old.images.keys().filter(|k| !new.images.contains_key(*k)).cloned().collect(),
        ..ReleaseDiff::default()
    };
    for (svc, to) in &new.images {
        let Some(from) = old.images.get(svc) else { continue };
        if from == to {
            continue;
        }
        let major = match (image_tag(from).and_then(major_of), image_tag(to).and_then(major_of)) {
            (Some(a), Some(b)) => a != b,
            _ => false,
        };
        d.image_changes.push(ImageChange { service: svc.clone(), from: from.clone(), to: to.clone(), major });
    }

    for (key, value) in &new.sample {
        if !old.sample.contains_key(key) {
            d.env_added.push(VariableChange {
                key: key.clone(),
                default: Some(value.clone()).filter(|v| !v.is_empty()),
                in_sample: true,
            });
        }
    }
    for (var, has_default) in &new.variables {
        if !old.variables.contains_key(var)
            && !new.sample.contains_key(var)
            && var != "STACK_NAME"
            && !new.exports.contains_key(var)
        {
            d.env_added.push(VariableChange {
                key: var.clone(),
                default: has_default.then(|| "(compose default)".to_string()),
                in_sample: false,
            });
        }
    }
    d.env_removed = old.sample.keys().filter(|k| !new.sample.contains_key(*k)).cloned().collect();

    d.secrets_added = new.secrets.difference(&old.secrets).cloned().collect();
    for secret in new.secrets.intersection(&old.secrets) {
        let var = secret_version_var(secret);
        if let (Some(a), Some(b)) = (old.sample.get(&var), new.sample.get(&var)) {
            if a != b {
                d.secrets_rotated.push(format!("{secret}: {a} → {b}"));
            }
        }
    }

    for (cfg, (template, file)) in &new.configs {
        let Some((old_template, old_file)) = old.configs.get(cfg) else { continue };
        let (Some(file), Some(old_file)) = (file, old_file) else { continue };
        let changed = head.files.get(file) != old_files.files.get(old_file);
        if !changed {
            continue;
        }
        let inputs = name_inputs(template, &new);
        let old_inputs = name_inputs(old_template, &old);
        if template == old_template && inputs == old_inputs {
            let how = match inputs.first() {
                Some((var, value)) => format!("bump {var} (now {})", value.as_deref().unwrap_or("unset")),
                None => "give the config a versioned name".into(),
            };
            d.errors.push(format!(
                "config {cfg} ({file}) changed but its name did not: swarm configs are immutable, so deploys would fail; {how}"
            ));
        }
    }

    d.volumes_removed = old.volumes.difference(&new.volumes).cloned().collect();
    for m in &new.malformed {
        d.errors.push(format!("malformed: {m}"));
    }
    d.lint = lint::lint_files(head, recipe)
        .into_iter()
        .map(|f| LintFindingView { rule: f.rule, level: f.level, service: f.service, message: f.message, fix: f.fix })
        .collect();
    d.files_changed = head
        .files
        .iter()
        .filter(|(k, v)| old_files.files.get(*k) != Some(*v))
        .map(|(k, _)| k.clone())
        .chain(old_files.files.keys().filter(|k| !head.files.contains_key(*k)).map(|k| format!("{k} (removed)")))
        .collect();

    // Risks: what an operator must act on or could lose.
    for c in &d.image_changes {
        if c.major {
            d.risks.push(format!(
                "{}: major image upgrade {} → {} (read upstream's upgrade notes)",
                c.service, c.from, c.to
            ));
        }
    }
    for s in &d.services_removed {
        d.risks.push(format!("service {s} is removed"));
    }
    for v in &d.volumes_removed {
        d.risks.push(format!("volume {v} is no longer declared: its data is not used any more"));
    }
    for v in d.env_added.iter().filter(|v| v.default.is_none()) {
        d.risks.push(format!("{} is new and has no default: operators must set it", v.key));
    }
    for s in &d.secrets_added {
        d.risks.push(format!("secret {s} is new: operators must generate or insert it before upgrading"));
    }
    for s in &d.secrets_rotated {
        d.risks.push(format!("secret {s}: operators must generate the new version"));
    }
    for f in d.lint.iter().filter(|f| f.level == "error") {
        d.risks.push(format!("lint {}: {}", f.rule, f.message));
    }
    d.suggested_bump = if d.image_changes.iter().any(|c| c.major) {
        "major"
    } else if !d.image_changes.is_empty() {
        "minor"
    } else {
        "patch"
    }
    .into();
    d
}

/// The main service's image tag: `app` if there is one, else the first service of compose.yml.
pub fn main_image_tag(files: &RecipeFiles) -> Option<String> {
    let s = shape(files);
    let image = s.images.get("app").or_else(|| s.images.values().next())?;
    image_tag(image).map(String::from)
}

/// The next version after `base` for `bump`, keeping the upstream part in step with the main
/// image: when the previous upstream was the image's tag (or began with it, as in
/// `1.0.6-social-amd64`), the new tag takes its place; otherwise it is kept.
pub fn next_version(
    base: Option<&str>,
    base_files: Option<&RecipeFiles>,
    head: &RecipeFiles,
    bump: &str,
) -> Result<String, String> {
    let new_tag = main_image_tag(head);
    let Some(base) = base else {
        let first = semver::Version::new(0, 1, 0);
        return Ok(RecipeVersion::format(&first, new_tag.as_deref()));
    };
    let parsed = RecipeVersion::parse(base);
    let Some(mut v) = parsed.semver.clone() else {
        return Err(format!(
            "the previous version {base:?} has no semver part to bump; give the new version explicitly"
        ));
    };
    match bump {
        "major" => {
            v.major += 1;
            v.minor = 0;
            v.patch = 0;
        }
        "minor" => {
            v.minor += 1;
            v.patch = 0;
        }
        "patch" => v.patch += 1,
        other => return Err(format!("unknown bump {other:?}: choose major, minor or patch")),
    }
    v.pre = semver::Prerelease::EMPTY;
    v.build = semver::BuildMetadata::EMPTY;
    let old_tag = base_files.and_then(main_image_tag);
    let upstream = match (parsed.upstream.as_deref(), old_tag.as_deref(), new_tag.as_deref()) {
        (Some(up), Some(old), Some(new)) if up == old => Some(new.to_string()),
        (Some(up), Some(old), Some(new))
            if up.strip_prefix(old).is_some_and(|rest| rest.starts_with(['-', '_', '+'])) =>
        {
            Some(format!("{new}{}", &up[old.len()..]))
        }
        (Some(up), _, _) => Some(up.to_string()),
        (None, _, new) => new.map(String::from),
    };
    Ok(RecipeVersion::format(&v, upstream.as_deref()))
}

/// Writes `tag` into every `coop-cloud.${STACK_NAME}.version=` label of the compose files;
/// returns the changed files, or an error when no compose file carries the label.
pub fn with_version_label(files: &RecipeFiles, tag: &str) -> Result<Vec<(String, String)>, String> {
    static LABEL: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r#"(coop-cloud\.\$\{STACK_NAME\}\.version=)[^"'\s]*"#)
            .unwrap_or_else(|e| panic!("label pattern: {e}"))
    });
    let mut out = Vec::new();
    for name in compose_names(files) {
        let text = files.text(&name).unwrap_or_default();
        if LABEL.is_match(&text) {
            let replaced = LABEL.replace_all(&text, |c: &regex::Captures| format!("{}{tag}", &c[1])).into_owned();
            out.push((name, replaced));
        }
    }
    if out.is_empty() {
        return Err("no compose file carries the label coop-cloud.${STACK_NAME}.version=…: add it to the main service's deploy labels".into());
    }
    Ok(out)
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

    const BASE: &str = "version: \"3.8\"\nservices:\n  app:\n    image: nginx:1.27\n    secrets: [db]\n    configs:\n      - source: conf\n        target: /etc/x\n    deploy:\n      labels:\n        - \"coop-cloud.${STACK_NAME}.version=1.0.0+1.27\"\n  db:\n    image: postgres:15\n    volumes: [data:/var/lib/postgresql/data]\nsecrets:\n  db:\n    external: true\n    name: ${STACK_NAME}_db_${SECRET_DB_VERSION}\nconfigs:\n  conf:\n    name: ${STACK_NAME}_conf_${CONF_VERSION}\n    file: conf.tmpl\nvolumes:\n  data:\n";

    #[test]
    fn an_operators_view_of_a_release() {
        let base = files(&[
            ("compose.yml", BASE),
            (".env.sample", "DOMAIN=x\nSECRET_DB_VERSION=v1\n"),
            ("abra.sh", "export CONF_VERSION=v1\n"),
            ("conf.tmpl", "a"),
        ]);
        let head_compose = BASE
            .replace("postgres:15", "postgres:16")
            .replace("nginx:1.27", "nginx:1.28")
            .replace("volumes:\n  data:\n", "")
            .replace(
                "    volumes: [data:/var/lib/postgresql/data]\n",
                "    environment:\n      - LIMIT=${LIMIT}\n      - MODE=${MODE:-fast}\n",
            );
        let head = files(&[
            ("compose.yml", &head_compose),
            (".env.sample", "DOMAIN=x\nSECRET_DB_VERSION=v2\n# the admin's mail\nADMIN_EMAIL=\n"),
            ("abra.sh", "export CONF_VERSION=v1\n"),
            ("conf.tmpl", "b"),
        ]);
        let d = diff(Some(&base), &head, "x");
        assert_eq!(d.image_changes.len(), 2);
        assert!(d.image_changes.iter().any(|c| c.service == "db" && c.major));
        assert!(d.image_changes.iter().any(|c| c.service == "app" && !c.major));
        assert_eq!(d.suggested_bump, "major");
        assert_eq!(d.secrets_rotated, ["db: v1 → v2"]);
        assert_eq!(d.volumes_removed, ["data"]);
        let keys: Vec<(&str, bool)> = d.env_added.iter().map(|v| (v.key.as_str(), v.default.is_some())).collect();
        assert!(keys.contains(&("ADMIN_EMAIL", false)), "{keys:?}");
        assert!(keys.contains(&("LIMIT", false)), "{keys:?}");
        assert!(keys.contains(&("MODE", true)), "{keys:?}");
        assert_eq!(d.errors.len(), 1, "{:?}", d.errors);
        assert!(d.errors[0].contains("config conf") && d.errors[0].contains("CONF_VERSION"), "{}", d.errors[0]);
        assert!(d.risks.iter().any(|r| r.contains("LIMIT is new and has no default")));

        // Bumping the config's version clears the error.
        let head2 =
            files(&[("compose.yml", &head_compose), ("abra.sh", "export CONF_VERSION=v2\n"), ("conf.tmpl", "b")]);
        assert!(diff(Some(&base), &head2, "x").errors.is_empty());
    }

    #[test]
    fn bumps_follow_the_change() {
        let base = files(&[("compose.yml", BASE)]);
        let same = diff(Some(&base), &base, "x");
        assert_eq!(same.suggested_bump, "patch");
        let minor = files(&[("compose.yml", &BASE.replace("nginx:1.27", "nginx:1.28"))]);
        assert_eq!(diff(Some(&base), &minor, "x").suggested_bump, "minor");
    }

    #[test]
    fn next_versions() {
        let base = files(&[("compose.yml", BASE)]);
        let head = files(&[("compose.yml", &BASE.replace("nginx:1.27", "nginx:1.28"))]);
        assert_eq!(next_version(Some("1.0.0+1.27"), Some(&base), &head, "minor").unwrap(), "1.1.0+1.28");
        assert_eq!(next_version(Some("1.0.0+1.27"), Some(&base), &base, "patch").unwrap(), "1.0.1+1.27");
        assert_eq!(
            next_version(Some("2.0.1+1.27-social-amd64"), Some(&base), &head, "major").unwrap(),
            "3.0.0+1.28-social-amd64"
        );
        assert_eq!(next_version(None, None, &head, "minor").unwrap(), "0.1.0+1.28");
        assert!(next_version(Some("latest"), Some(&base), &head, "minor").is_err());
        assert!(next_version(Some("1.0.0+1.27"), Some(&base), &head, "huge").is_err());
    }

    #[test]
    fn writes_the_version_label() {
        let f = files(&[("compose.yml", BASE), ("compose.extra.yml", "services: {}\n")]);
        let out = with_version_label(&f, "1.1.0+1.28").unwrap();
        assert_eq!(out.len(), 1);
        assert!(out[0].1.contains("\"coop-cloud.${STACK_NAME}.version=1.1.0+1.28\""));
        assert!(with_version_label(&files(&[("compose.yml", "services: {}\n")]), "1.0.0").is_err());
    }
}
