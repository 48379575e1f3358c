//! Compose variable interpolation, as `docker stack deploy` does it (docker/cli `template` and
//! `interpolation`): every string *value* (never a key) is substituted from the environment,
//! per file, before validation; some paths are then cast to numbers or booleans.
//!
//! `$$` is a literal `$`; `$VAR` / `${VAR}` a value (empty when unset); `${VAR:-d}` / `${VAR-d}`
//! defaults (when unset or empty / when unset); `${VAR:?m}` / `${VAR?m}` errors. The unbraced
//! form takes modifiers too and runs to the end of the text (`$HOST-x` is `${HOST-x}`), braces do
//! not nest (`${A:-${B}}` gives the literal `${B}` when A is unset), and any other `$` is an error.

use super::yaml::Node;
use indexmap::IndexMap;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InterpolationError {
    #[error("invalid interpolation format for {path}: {template:?}; you may need to escape any $ with another $")]
    Invalid { path: String, template: String },
    #[error("invalid interpolation format for {path}: \"required variable {name} is missing a value: {message}\"; you may need to escape any $ with another $")]
    Required { path: String, name: String, message: String },
    #[error("error while interpolating {path}: failed to cast to expected type: {message}")]
    Cast { path: String, message: String },
    #[error("error while interpolating {path}: the file's variables expand to more than {limit_mib} MiB")]
    TooLarge { path: String, limit_mib: usize },
}

/// Why one string could not be substituted.
enum SubstError {
    /// A `$` that starts nothing usable.
    Invalid,
    /// `${VAR:?message}` with VAR unset.
    Required(String, String),
    /// The result outgrew what is left of the file's budget.
    TooLarge,
}

/// Substitutes one string. Like docker/cli's template engine, one error slot is shared by all
/// the `$` expressions of the string and each valid one resets it, so only an error in the last
/// non-escaped expression is reported.
fn substitute(template: &str, lookup: &dyn Fn(&str) -> Option<String>, limit: usize) -> Result<String, SubstError> {
    let b = template.as_bytes();
    let mut out = String::with_capacity(template.len());
    let mut error: Option<Option<(String, String)>> = None;
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'$' {
            let len = template[i..].chars().next().map_or(1, char::len_utf8);
            out.push_str(&template[i..i + len]);
            i += len;
            continue;
        }
        // `$$`
        if b.get(i + 1) == Some(&b'$') {
            out.push('$');
            i += 2;
            continue;
        }
        let matched = if b.get(i + 1) == Some(&b'{') {
            match match_substitution(template, i + 2) {
                Some(end) if b.get(end) == Some(&b'}') => Some((&template[i + 2..end], end + 1)),
                _ => None,
            }
        } else {
            match_substitution(template, i + 1).map(|end| (&template[i + 1..end], end))
        };
        match matched {
            // `$` followed by nothing usable: the match is the `$` alone.
            None => {
                error = Some(None);
                i += 1;
            }
            Some((substitution, next)) => {
                match resolve(substitution, lookup) {
                    Ok(v) => {
                        if out.len().saturating_add(v.len()) > limit {
                            return Err(SubstError::TooLarge);
                        }
                        out.push_str(&v);
                        error = None;
                    }
                    Err(e) => error = Some(e),
                }
                i = next;
            }
        }
    }
    match error {
        Some(None) => Err(SubstError::Invalid),
        Some(Some((name, message))) => Err(SubstError::Required(name, message)),
        None => Ok(out),
    }
}

/// `[_a-z][_a-z0-9]*(?::?[-?][^}]*)?`, case-insensitive, starting at `start`; returns its end.
fn match_substitution(s: &str, start: usize) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = start;
    if i >= b.len() || !(b[i].is_ascii_alphabetic() || b[i] == b'_') {
        return None;
    }
    i += 1;
    while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
        i += 1;
    }
    let mut j = i;
    if j < b.len() && b[j] == b':' {
        j += 1;
    }
    if j < b.len() && (b[j] == b'-' || b[j] == b'?') {
        j += 1;
        while j < b.len() && b[j] != b'}' {
            j += 1;
        }
        return Some(j);
    }
    Some(i)
}

fn resolve(substitution: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, Option<(String, String)>> {
    if let Some((name, default)) = substitution.split_once(":-") {
        return Ok(lookup(name).filter(|v| !v.is_empty()).unwrap_or_else(|| default.to_string()));
    }
    if let Some((name, default)) = substitution.split_once('-') {
        return Ok(lookup(name).unwrap_or_else(|| default.to_string()));
    }
    if let Some((name, message)) = substitution.split_once(":?") {
        return lookup(name).filter(|v| !v.is_empty()).ok_or_else(|| Some((name.to_string(), message.to_string())));
    }
    if let Some((name, message)) = substitution.split_once('?') {
        return lookup(name).ok_or_else(|| Some((name.to_string(), message.to_string())));
    }
    Ok(lookup(substitution).unwrap_or_default())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cast {
    Int,
    Float,
    Bool,
}

/// The paths whose interpolated strings are cast (`*` any key, `[]` any list item).
const CASTS: &[(&str, Cast)] = &[
    ("services.*.build.args.*", Cast::Int),
    ("services.*.deploy.replicas", Cast::Int),
    ("services.*.deploy.update_config.parallelism", Cast::Int),
    ("services.*.deploy.update_config.max_failure_ratio", Cast::Float),
    ("services.*.deploy.rollback_config.parallelism", Cast::Int),
    ("services.*.deploy.rollback_config.max_failure_ratio", Cast::Float),
    ("services.*.deploy.restart_policy.max_attempts", Cast::Int),
    ("services.*.deploy.placement.max_replicas_per_node", Cast::Int),
    ("services.*.healthcheck.retries", Cast::Int),
    ("services.*.healthcheck.disable", Cast::Bool),
    ("services.*.ports.[].target", Cast::Int),
    ("services.*.ports.[].published", Cast::Int),
    ("services.*.ulimits.*", Cast::Int),
    ("services.*.ulimits.*.hard", Cast::Int),
    ("services.*.ulimits.*.soft", Cast::Int),
    ("services.*.privileged", Cast::Bool),
    ("services.*.read_only", Cast::Bool),
    ("services.*.stdin_open", Cast::Bool),
    ("services.*.tty", Cast::Bool),
    ("services.*.volumes.[].read_only", Cast::Bool),
    ("services.*.volumes.[].volume.nocopy", Cast::Bool),
    ("services.*.oom_score_adj", Cast::Int),
    ("services.*.configs.[].mode", Cast::Int),
    ("services.*.secrets.[].mode", Cast::Int),
    ("networks.*.external", Cast::Bool),
    ("networks.*.internal", Cast::Bool),
    ("networks.*.attachable", Cast::Bool),
    ("volumes.*.external", Cast::Bool),
    ("secrets.*.external", Cast::Bool),
    ("configs.*.external", Cast::Bool),
];

fn path_matches(pattern: &str, path: &[String]) -> bool {
    let parts: Vec<&str> = pattern.split('.').collect();
    parts.len() == path.len() && parts.iter().zip(path).all(|(p, k)| *p == "*" || *p == k)
}

fn cast(kind: Cast, s: &str) -> Result<Node, String> {
    match kind {
        Cast::Int => {
            s.parse::<i64>().map(Node::Int).map_err(|_| format!("strconv.Atoi: parsing {s:?}: invalid syntax"))
        }
        Cast::Float => {
            s.parse::<f64>().map(Node::Float).map_err(|_| format!("strconv.ParseFloat: parsing {s:?}: invalid syntax"))
        }
        Cast::Bool => match s.to_ascii_lowercase().as_str() {
            "y" | "yes" | "true" | "on" => Ok(Node::Bool(true)),
            "n" | "no" | "false" | "off" => Ok(Node::Bool(false)),
            _ => Err(format!("invalid boolean: {s}")),
        },
    }
}

/// What substituting may add to a compose file in all (a recipe's `${VAR}` repeated a million
/// times with a long value would otherwise take all memory).
pub const MAX_INTERPOLATED_BYTES: usize = 16 * 1024 * 1024;

/// Interpolates every string value of a parsed compose file in place.
pub fn interpolate(
    root: &mut IndexMap<String, Node>,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(), InterpolationError> {
    let mut budget = MAX_INTERPOLATED_BYTES;
    for (key, value) in root.iter_mut() {
        walk(value, &mut vec![key.clone()], lookup, &mut budget)?;
    }
    Ok(())
}

fn walk(
    node: &mut Node,
    path: &mut Vec<String>,
    lookup: &dyn Fn(&str) -> Option<String>,
    budget: &mut usize,
) -> Result<(), InterpolationError> {
    match node {
        Node::Str(s) => {
            let dotted = || path.join(".");
            let new = substitute(s, lookup, s.len().saturating_add(*budget)).map_err(|e| match e {
                SubstError::Invalid => InterpolationError::Invalid { path: dotted(), template: s.clone() },
                SubstError::Required(name, message) => InterpolationError::Required { path: dotted(), name, message },
                SubstError::TooLarge => {
                    InterpolationError::TooLarge { path: dotted(), limit_mib: MAX_INTERPOLATED_BYTES >> 20 }
                }
            })?;
            *budget = budget.saturating_sub(new.len().saturating_sub(s.len()));
            if &new == s {
                return Ok(());
            }
            match CASTS.iter().find(|(p, _)| path_matches(p, path)) {
                Some((_, kind)) => {
                    *node =
                        cast(*kind, &new).map_err(|message| InterpolationError::Cast { path: dotted(), message })?;
                }
                None => *s = new,
            }
        }
        Node::Map(m) => {
            for (k, v) in m.iter_mut() {
                path.push(k.clone());
                walk(v, path, lookup, budget)?;
                path.pop();
            }
        }
        Node::Seq(items) => {
            for v in items.iter_mut() {
                path.push("[]".into());
                walk(v, path, lookup, budget)?;
                path.pop();
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(k: &str) -> Option<String> {
        match k {
            "HOST" => Some("h.example".into()),
            "EMPTY" => Some(String::new()),
            "N" => Some("3".into()),
            _ => None,
        }
    }

    fn sub(s: &str) -> Result<String, Option<(String, String)>> {
        substitute(s, &env, usize::MAX).map_err(|e| match e {
            SubstError::Invalid => None,
            SubstError::Required(n, m) => Some((n, m)),
            SubstError::TooLarge => Some(("".into(), "too large".into())),
        })
    }

    #[test]
    fn a_file_cannot_expand_without_bound() {
        let big = "x".repeat(60 * 1024);
        let lookup = |k: &str| (k == "BIG").then(|| big.clone());
        // A thousand references to a 60 KiB value in one string, and spread over many.
        let mut root: IndexMap<String, Node> = IndexMap::new();
        root.insert("one".into(), Node::Str("${BIG}".repeat(1000)));
        let e = interpolate(&mut root, &lookup).unwrap_err();
        assert!(matches!(e, InterpolationError::TooLarge { .. }), "{e}");
        let mut root: IndexMap<String, Node> = IndexMap::new();
        root.insert("many".into(), Node::Seq((0..400).map(|_| Node::Str("${BIG}".into())).collect()));
        let e = interpolate(&mut root, &lookup).unwrap_err();
        assert!(e.to_string().contains("expand to more than 16 MiB"), "{e}");
        // Within the budget it works.
        let mut root: IndexMap<String, Node> = IndexMap::new();
        root.insert("some".into(), Node::Seq((0..100).map(|_| Node::Str("${BIG}".into())).collect()));
        interpolate(&mut root, &lookup).unwrap();
    }

    #[test]
    fn forms() {
        assert_eq!(sub("$HOST and ${HOST}").unwrap(), "h.example and h.example");
        assert_eq!(sub("$$HOST costs $$5").unwrap(), "$HOST costs $5");
        assert_eq!(sub("${NOPE}|$NOPE|").unwrap(), "||");
        assert_eq!(sub("${EMPTY:-d}|${EMPTY-d}|${NOPE-d}").unwrap(), "d||d");
        assert_eq!(sub("${HOST:-d}").unwrap(), "h.example");
        assert_eq!(sub("${NOPE:?must set NOPE}").unwrap_err(), Some(("NOPE".into(), "must set NOPE".into())));
        assert_eq!(sub("${EMPTY?x}").unwrap(), "");
        assert!(sub("${EMPTY:?x}").is_err());
        assert_eq!(sub("$ x").unwrap_err(), None);
        assert_eq!(sub("${}").unwrap_err(), None);
        assert_eq!(sub("cost: 5$").unwrap_err(), None);
        // One error slot per string: a later valid expression clears an earlier error.
        assert_eq!(sub("${NOPE?x} $HOST").unwrap(), " h.example");
        assert_eq!(sub("$ $HOST").unwrap(), " h.example");
    }

    #[test]
    fn quirks_of_the_docker_cli() {
        // The unbraced form takes a modifier and runs to the end.
        assert_eq!(sub("$HOST-suffix").unwrap(), "h.example");
        assert_eq!(sub("$NOPE-suffix").unwrap(), "suffix");
        // No nesting: the default stops at the first '}', the rest stays.
        assert_eq!(sub("${NOPE:-${HOST}}").unwrap(), "${HOST}");
        // Names are case-insensitive in the pattern (lookup is exact).
        assert_eq!(sub("$host").unwrap(), "");
    }

    #[test]
    fn casts_only_changed_strings_at_typed_paths() {
        let mut root: IndexMap<String, Node> = IndexMap::new();
        let doc = super::super::yaml::parse(
            "services:\n  web:\n    deploy:\n      replicas: ${N}\n      labels:\n        n: ${N}\n    read_only: \"${NOPE:-yes}\"\n    ports:\n      - target: \"80\"\n        published: $N\n",
        )
        .unwrap();
        if let Node::Map(m) = doc {
            root = m;
        }
        interpolate(&mut root, &env).unwrap();
        let root = Node::Map(root);
        assert_eq!(root.at(&["services", "web", "deploy", "replicas"]), Some(&Node::Int(3)));
        assert_eq!(root.at(&["services", "web", "deploy", "labels", "n"]), Some(&Node::Str("3".into())));
        assert_eq!(root.at(&["services", "web", "read_only"]), Some(&Node::Bool(true)));
        let port = &root.at(&["services", "web", "ports"]).unwrap().as_seq().unwrap()[0];
        assert_eq!(port.get("target"), Some(&Node::Str("80".into())), "unchanged strings are not cast");
        assert_eq!(port.get("published"), Some(&Node::Int(3)));
    }

    #[test]
    fn errors_name_the_path() {
        let doc = super::super::yaml::parse(
            "services:\n  s:\n    image: ${NOPE?must set NOPE}\n    deploy:\n      replicas: ${NOPE}\n",
        )
        .unwrap();
        let Node::Map(mut m) = doc else { panic!() };
        let e = interpolate(&mut m, &env).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid interpolation format for services.s.image: \"required variable NOPE is missing a value: must set NOPE\"; you may need to escape any $ with another $"
        );
        let doc = super::super::yaml::parse("services:\n  s:\n    deploy:\n      replicas: ${NOPE}\n").unwrap();
        let Node::Map(mut m) = doc else { panic!() };
        let e = interpolate(&mut m, &env).unwrap_err();
        assert_eq!(
            e.to_string(),
            "error while interpolating services.s.deploy.replicas: failed to cast to expected type: strconv.Atoi: parsing \"\": invalid syntax"
        );
    }
}
