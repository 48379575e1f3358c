//! Validation of compose files against the compose v3 schema of their `version` (3.0–3.13), with
//! the Docker CLI's messages (`services.web.deploy.resources.limits Additional property pids is
//! not allowed`, `services.web.deploy.replicas must be a integer`, `… Does not match format
//! 'duration'`). The schema is described here as a table: each property with the 3.x minor
//! version that introduced it. Like the CLI, one error is reported: the most specific (deepest)
//! one, a type error winning a tie.

use super::compose::{parse_duration, parse_port_short};
use super::yaml::Node;
use indexmap::IndexMap;
use std::sync::LazyLock;

/// The latest 3.x schema the Docker CLI ships; a missing, empty or `"3"` version means it.
pub const LATEST: &str = "3.13";
const KNOWN: &[&str] =
    &["3.0", "3.1", "3.2", "3.3", "3.4", "3.5", "3.6", "3.7", "3.8", "3.9", "3.10", "3.11", "3.12", "3.13"];

/// The version a file is validated against (`""` and `"3"` mean the latest).
pub fn version_of(raw: &str) -> String {
    let v = raw.trim();
    if v.is_empty() || v == "3" {
        LATEST.to_string()
    } else {
        v.to_string()
    }
}

/// Checks the version is one the CLI has a schema for.
pub fn normalize_version(v: &str) -> Result<String, String> {
    let v = version_of(v);
    if KNOWN.contains(&v.as_str()) {
        Ok(v)
    } else {
        Err(format!("unsupported Compose file version: {v}"))
    }
}

fn minor(v: &str) -> u32 {
    v.split('.').nth(1).and_then(|m| m.parse().ok()).unwrap_or(0)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Duration,
}

/// A schema node.
#[derive(Debug, Clone)]
enum S {
    Any,
    Str,
    Int,
    Num,
    Bool,
    Null,
    /// A string with a checked format.
    Fmt(Format),
    /// A number or string with the `ports` format.
    PortNumber,
    /// One of these strings.
    Enum(&'static [&'static str]),
    /// An integer with a minimum.
    IntMin(i64),
    /// A JSON-schema type list (`["string","null"]`): "must be a string or null".
    Types(Vec<S>),
    /// A `oneOf`: the first alternative whose type fits decides; a value of no fitting type is
    /// reported with the first alternative's type.
    OneOf(Vec<S>),
    /// An object with known properties (since which 3.x minor). `x_since`: `x-*` keys allowed
    /// from that minor; `closed`: unknown keys are errors; `required` in order.
    Obj {
        props: Vec<(&'static str, u32, S)>,
        x_since: Option<u32>,
        closed: bool,
        required: Vec<&'static str>,
        nullable: bool,
    },
    /// An object of user-named entries: keys matching `key_pattern` follow `value`; other keys
    /// are errors when `closed`.
    Map {
        value: Box<S>,
        key_pattern: KeyPattern,
        closed: bool,
    },
    /// A list of `S`; `unique` as the schema's `uniqueItems`.
    List {
        item: Box<S>,
        unique: bool,
    },
}

#[derive(Debug, Clone, Copy)]
enum KeyPattern {
    /// `.+`
    Any,
    /// `^[a-zA-Z0-9._-]+$`
    Name,
    /// `^[a-z]+$`
    Lower,
}

impl KeyPattern {
    fn matches(self, k: &str) -> bool {
        match self {
            KeyPattern::Any => !k.is_empty(),
            KeyPattern::Name => !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)),
            KeyPattern::Lower => !k.is_empty() && k.chars().all(|c| c.is_ascii_lowercase()),
        }
    }
}

fn obj(props: Vec<(&'static str, u32, S)>) -> S {
    S::Obj { props, x_since: None, closed: true, required: Vec::new(), nullable: false }
}

fn open_obj(props: Vec<(&'static str, u32, S)>) -> S {
    S::Obj { props, x_since: None, closed: false, required: Vec::new(), nullable: false }
}

fn list(s: S) -> S {
    S::List { item: Box::new(s), unique: false }
}

fn unique_list(s: S) -> S {
    S::List { item: Box::new(s), unique: true }
}

fn dict(value: S) -> S {
    S::Map { value: Box::new(value), key_pattern: KeyPattern::Any, closed: true }
}

fn list_of_strings() -> S {
    unique_list(S::Str)
}

fn string_or_list() -> S {
    S::OneOf(vec![S::Str, list_of_strings()])
}

fn list_or_dict() -> S {
    S::OneOf(vec![dict(S::Types(vec![S::Str, S::Num, S::Null])), list_of_strings()])
}

fn duration() -> S {
    S::Fmt(Format::Duration)
}

fn update_config(v_order: u32) -> S {
    obj(vec![
        ("parallelism", 0, S::Int),
        ("delay", 0, duration()),
        ("failure_action", 0, S::Str),
        ("monitor", 0, duration()),
        ("max_failure_ratio", 0, S::Num),
        ("order", v_order, S::Enum(&["start-first", "stop-first"])),
    ])
}

fn file_reference(since: u32) -> S {
    let _ = since;
    S::OneOf(vec![
        S::Str,
        open_obj(vec![
            ("source", 0, S::Str),
            ("target", 0, S::Str),
            ("uid", 0, S::Str),
            ("gid", 0, S::Str),
            ("mode", 0, S::Num),
        ]),
    ])
}

fn service(minor: u32) -> S {
    let healthcheck_duration = || if minor >= 4 { duration() } else { S::Str };
    let healthcheck = obj(vec![
        ("disable", 0, S::Bool),
        ("interval", 0, healthcheck_duration()),
        ("retries", 0, S::Num),
        ("test", 0, S::OneOf(vec![S::Str, list(S::Str)])),
        ("timeout", 0, healthcheck_duration()),
        ("start_period", 4, duration()),
        ("start_interval", 12, duration()),
    ]);
    let limits = obj(vec![("cpus", 0, S::Str), ("memory", 0, S::Str), ("pids", 9, S::Int)]);
    let reservations = obj(vec![
        ("cpus", 0, S::Str),
        ("memory", 0, S::Str),
        (
            "generic_resources",
            5,
            list(obj(vec![("discrete_resource_spec", 5, obj(vec![("kind", 5, S::Str), ("value", 5, S::Num)]))])),
        ),
    ]);
    let deploy = S::Obj {
        props: vec![
            ("mode", 0, S::Str),
            ("endpoint_mode", 2, S::Str),
            ("replicas", 0, S::Int),
            ("labels", 0, list_or_dict()),
            ("rollback_config", 7, update_config(7)),
            ("update_config", 0, update_config(4)),
            ("resources", 0, obj(vec![("limits", 0, limits), ("reservations", 0, reservations)])),
            (
                "restart_policy",
                0,
                obj(vec![
                    ("condition", 0, S::Str),
                    ("delay", 0, duration()),
                    ("max_attempts", 0, S::Int),
                    ("window", 0, duration()),
                ]),
            ),
            (
                "placement",
                0,
                obj(vec![
                    ("constraints", 0, list(S::Str)),
                    ("preferences", 3, list(obj(vec![("spread", 3, S::Str)]))),
                    ("max_replicas_per_node", 8, S::Int),
                ]),
            ),
        ],
        x_since: None,
        closed: true,
        required: Vec::new(),
        nullable: true,
    };
    let volume_long = S::Obj {
        props: vec![
            ("type", 2, S::Str),
            ("source", 2, S::Str),
            ("target", 2, S::Str),
            ("read_only", 2, S::Bool),
            ("consistency", 2, S::Str),
            ("bind", 2, open_obj(vec![("propagation", 2, S::Str)])),
            ("volume", 2, open_obj(vec![("nocopy", 2, S::Bool)])),
            ("tmpfs", 6, open_obj(vec![("size", 6, S::IntMin(0))])),
        ],
        x_since: None,
        closed: true,
        required: vec!["type"],
        nullable: false,
    };
    let ports = if minor >= 2 {
        unique_list(S::OneOf(vec![
            S::PortNumber,
            S::PortNumber,
            obj(vec![("mode", 2, S::Str), ("target", 2, S::Int), ("published", 2, S::Int), ("protocol", 2, S::Str)]),
        ]))
    } else {
        unique_list(S::PortNumber)
    };
    let volumes = if minor >= 2 { list(S::OneOf(vec![S::Str, volume_long])) } else { unique_list(S::Str) };
    let ulimit = S::OneOf(vec![
        S::Int,
        S::Obj {
            props: vec![("hard", 0, S::Int), ("soft", 0, S::Int)],
            x_since: None,
            closed: true,
            required: vec!["soft", "hard"],
            nullable: false,
        },
    ]);
    let network_attachment = S::OneOf(vec![
        obj(vec![
            ("aliases", 0, list_of_strings()),
            ("ipv4_address", 0, S::Str),
            ("ipv6_address", 0, S::Str),
            ("driver_opts", 13, dict(S::Types(vec![S::Str, S::Num]))),
        ]),
        S::Null,
    ]);
    let build_props = vec![
        ("context", 0, S::Str),
        ("dockerfile", 0, S::Str),
        ("args", 0, list_or_dict()),
        ("labels", 3, list_or_dict()),
        ("cache_from", 2, list_of_strings()),
        ("network", 4, S::Str),
        ("target", 4, S::Str),
        ("shm_size", 5, S::Types(vec![S::Int, S::Str])),
        ("extra_hosts", 9, list_or_dict()),
    ];
    let build = S::OneOf(vec![
        S::Str,
        S::Obj { props: build_props, x_since: None, closed: minor < 11, required: Vec::new(), nullable: false },
    ]);
    S::Obj {
        props: vec![
            ("deploy", 0, deploy),
            ("build", 0, build),
            ("cap_add", 0, unique_list(S::Str)),
            ("cap_drop", 0, unique_list(S::Str)),
            ("cgroupns_mode", 9, S::Str),
            ("cgroup_parent", 0, S::Str),
            ("command", 0, S::OneOf(vec![S::Str, list(S::Str)])),
            ("configs", 3, list(file_reference(3))),
            ("container_name", 0, S::Str),
            ("credential_spec", 3, obj(vec![("config", 8, S::Str), ("file", 3, S::Str), ("registry", 3, S::Str)])),
            ("depends_on", 0, list_of_strings()),
            ("devices", 0, unique_list(S::Str)),
            ("dns", 0, string_or_list()),
            ("dns_search", 0, string_or_list()),
            ("domainname", 0, S::Str),
            ("entrypoint", 0, S::OneOf(vec![S::Str, list(S::Str)])),
            ("env_file", 0, string_or_list()),
            ("environment", 0, list_or_dict()),
            ("expose", 0, unique_list(S::Types(vec![S::Str, S::Num]))),
            ("external_links", 0, unique_list(S::Str)),
            ("extra_hosts", 0, list_or_dict()),
            ("healthcheck", 0, healthcheck),
            ("hostname", 0, S::Str),
            ("image", 0, S::Str),
            ("init", 7, S::Bool),
            ("ipc", 0, S::Str),
            ("isolation", 5, S::Str),
            ("labels", 0, list_or_dict()),
            ("links", 0, unique_list(S::Str)),
            (
                "logging",
                0,
                obj(vec![("driver", 0, S::Str), ("options", 0, dict(S::Types(vec![S::Str, S::Num, S::Null])))]),
            ),
            ("mac_address", 0, S::Str),
            ("network_mode", 0, S::Str),
            (
                "networks",
                0,
                S::OneOf(vec![
                    list_of_strings(),
                    S::Map { value: Box::new(network_attachment), key_pattern: KeyPattern::Name, closed: true },
                ]),
            ),
            ("oom_score_adj", 13, S::Int),
            ("pid", 0, S::Types(vec![S::Str, S::Null])),
            ("ports", 0, ports),
            ("privileged", 0, S::Bool),
            ("read_only", 0, S::Bool),
            ("restart", 0, S::Str),
            ("secrets", 1, list(file_reference(1))),
            ("security_opt", 0, unique_list(S::Str)),
            ("shm_size", 0, S::Types(vec![S::Num, S::Str])),
            ("sysctls", 0, list_or_dict()),
            ("stdin_open", 0, S::Bool),
            ("stop_grace_period", 0, duration()),
            ("stop_signal", 0, S::Str),
            ("tmpfs", 0, string_or_list()),
            ("tty", 0, S::Bool),
            ("ulimits", 0, S::Map { value: Box::new(ulimit), key_pattern: KeyPattern::Lower, closed: false }),
            ("user", 0, S::Str),
            ("userns_mode", 0, S::Str),
            ("volumes", 0, volumes),
            ("working_dir", 0, S::Str),
        ],
        x_since: Some(7),
        closed: true,
        required: Vec::new(),
        nullable: false,
    }
}

fn top_level(minor: u32) -> S {
    let driver_opts = || dict(S::Types(vec![S::Str, S::Num]));
    let closed_external = || S::OneOf(vec![S::Bool, obj(vec![("name", 0, S::Str)])]);
    let open_external = || S::OneOf(vec![S::Bool, open_obj(vec![("name", 0, S::Str)])]);
    let network = S::Obj {
        props: vec![
            ("name", 5, S::Str),
            ("driver", 0, S::Str),
            ("driver_opts", 0, driver_opts()),
            ("ipam", 0, obj(vec![("driver", 0, S::Str), ("config", 0, list(obj(vec![("subnet", 0, S::Str)])))])),
            ("external", 0, closed_external()),
            ("internal", 0, S::Bool),
            ("attachable", 2, S::Bool),
            ("labels", 0, list_or_dict()),
        ],
        x_since: Some(7),
        closed: true,
        required: Vec::new(),
        nullable: true,
    };
    let volume = S::Obj {
        props: vec![
            ("name", 4, S::Str),
            ("driver", 0, S::Str),
            ("driver_opts", 0, driver_opts()),
            ("external", 0, closed_external()),
            ("labels", 0, list_or_dict()),
            ("x-cluster-spec", 10, S::Any),
        ],
        x_since: Some(7),
        closed: true,
        required: Vec::new(),
        nullable: true,
    };
    let secret = S::Obj {
        props: vec![
            ("name", 5, S::Str),
            ("file", 1, S::Str),
            ("external", 1, open_external()),
            ("labels", 1, list_or_dict()),
            ("driver", 8, S::Str),
            ("driver_opts", 8, driver_opts()),
            ("template_driver", 8, S::Str),
        ],
        x_since: Some(7),
        closed: true,
        required: Vec::new(),
        nullable: false,
    };
    let config = S::Obj {
        props: vec![
            ("name", 5, S::Str),
            ("file", 3, S::Str),
            ("external", 3, open_external()),
            ("labels", 3, list_or_dict()),
            ("template_driver", 8, S::Str),
        ],
        x_since: Some(7),
        closed: true,
        required: Vec::new(),
        nullable: false,
    };
    let named = |value: S, closed: bool| S::Map { value: Box::new(value), key_pattern: KeyPattern::Name, closed };
    S::Obj {
        props: vec![
            ("version", 0, S::Str),
            ("services", 0, named(service(minor), true)),
            ("networks", 0, named(network, false)),
            ("volumes", 0, named(volume, true)),
            ("secrets", 1, named(secret, true)),
            ("configs", 3, named(config, true)),
        ],
        x_since: Some(4),
        closed: true,
        required: Vec::new(),
        nullable: false,
    }
}

static SCHEMAS: LazyLock<Vec<S>> = LazyLock::new(|| (0..=13).map(top_level).collect());

/// A validation failure: where, what, and whether it is a type error (those win ties).
#[derive(Debug, Clone)]
struct Failure {
    depth: usize,
    type_error: bool,
    message: String,
}

fn type_matches(s: &S, n: &Node) -> bool {
    match (s, n) {
        (S::Any, _) => true,
        (S::Str | S::Fmt(_) | S::Enum(_), Node::Str(_)) | (S::Bool, Node::Bool(_)) | (S::Null, Node::Null) => true,
        (S::Int | S::IntMin(_), Node::Int(_)) => true,
        (S::Int | S::IntMin(_), Node::Float(f)) => f.fract() == 0.0,
        (S::Num, Node::Int(_) | Node::Float(_)) => true,
        (S::PortNumber, Node::Int(_) | Node::Float(_) | Node::Str(_)) => true,
        (S::Obj { nullable: true, .. }, Node::Null) => true,
        (S::Obj { .. } | S::Map { .. }, Node::Map(_)) => true,
        (S::List { .. }, Node::Seq(_)) => true,
        (S::Types(opts) | S::OneOf(opts), n) => opts.iter().any(|o| type_matches(o, n)),
        _ => false,
    }
}

fn type_name(s: &S) -> String {
    match s {
        S::Any => "any".into(),
        S::Str | S::Fmt(_) | S::Enum(_) => "string".into(),
        S::Int | S::IntMin(_) => "integer".into(),
        S::Num | S::PortNumber => "number".into(),
        S::Bool => "boolean".into(),
        S::Null => "null".into(),
        S::Obj { nullable: true, .. } => "mapping or null".into(),
        S::Obj { .. } | S::Map { .. } => "mapping".into(),
        S::List { .. } => "list".into(),
        S::OneOf(opts) => opts.first().map(type_name).unwrap_or_default(),
        S::Types(opts) => {
            let mut names: Vec<String> = opts.iter().map(type_name).collect();
            names.dedup();
            match names.len() {
                0 => String::new(),
                1 => names.remove(0),
                _ => {
                    let last = names.pop().unwrap_or_default();
                    format!("{} or {last}", names.join(", "))
                }
            }
        }
    }
}

fn depth_of(path: &str) -> usize {
    if path.is_empty() {
        0
    } else {
        path.split('.').count()
    }
}

fn field(path: &str) -> &str {
    if path.is_empty() {
        "(root)"
    } else {
        path
    }
}

fn child(path: &str, k: &str) -> String {
    if path.is_empty() {
        k.to_string()
    } else {
        format!("{path}.{k}")
    }
}

fn fail(out: &mut Vec<Failure>, path: &str, type_error: bool, description: String) {
    out.push(Failure { depth: depth_of(path), type_error, message: format!("{} {description}", field(path)) });
}

fn check(s: &S, n: &Node, path: &str, minor: u32, out: &mut Vec<Failure>) {
    if !type_matches(s, n) {
        fail(out, path, true, format!("must be a {}", type_name(s)));
        return;
    }
    match s {
        S::OneOf(opts) | S::Types(opts) => {
            if let Some(o) = opts.iter().find(|o| type_matches(o, n)) {
                check(o, n, path, minor, out);
            }
        }
        S::Fmt(Format::Duration) => {
            if let Node::Str(v) = n {
                if parse_duration(v).is_err() {
                    fail(out, path, false, "Does not match format 'duration'".into());
                }
            }
        }
        S::PortNumber => {
            let spec = n.scalar_text().unwrap_or_default();
            if parse_port_short(&spec).is_err() {
                fail(out, path, false, "Does not match format 'ports'".into());
            }
        }
        S::Enum(values) => {
            if let Node::Str(v) = n {
                if !values.contains(&v.as_str()) {
                    let allowed: Vec<String> = values.iter().map(|v| format!("\"{v}\"")).collect();
                    fail(
                        out,
                        path,
                        false,
                        format!("{} must be one of the following: {}", field(path), allowed.join(", ")),
                    );
                }
            }
        }
        S::IntMin(min) => {
            if let Node::Int(v) = n {
                if v < min {
                    fail(out, path, false, format!("Must be greater than or equal to {min}"));
                }
            }
        }
        S::Obj { props, x_since, closed, required, .. } => {
            let Node::Map(m) = n else { return };
            for r in required {
                if !m.contains_key(*r) {
                    fail(out, path, false, format!("{r} is required"));
                }
            }
            for (k, v) in m {
                match props.iter().find(|(name, since, _)| name == k && *since <= minor) {
                    Some((_, _, ps)) => check(ps, v, &child(path, k), minor, out),
                    None if x_since.is_some_and(|x| x <= minor) && k.starts_with("x-") => {}
                    None if *closed => fail(out, path, false, format!("Additional property {k} is not allowed")),
                    None => {}
                }
            }
        }
        S::Map { value, key_pattern, closed } => {
            let Node::Map(m) = n else { return };
            for (k, v) in m {
                if key_pattern.matches(k) {
                    check(value, v, &child(path, k), minor, out);
                } else if *closed {
                    fail(out, path, false, format!("Additional property {k} is not allowed"));
                }
            }
        }
        S::List { item, unique } => {
            let Node::Seq(items) = n else { return };
            for (i, v) in items.iter().enumerate() {
                check(item, v, &child(path, &i.to_string()), minor, out);
            }
            if *unique {
                'outer: for i in 0..items.len() {
                    for j in i + 1..items.len() {
                        if items[i] == items[j] {
                            fail(out, path, false, format!("array items[{i},{j}] must be unique"));
                            break 'outer;
                        }
                    }
                }
            }
        }
        _ => {}
    }
}

/// Validates an interpolated file against the schema of `version` (as normalized).
pub fn validate(version: &str, root: &IndexMap<String, Node>) -> Result<(), String> {
    let v = normalize_version(version)?;
    let schema = &SCHEMAS[minor(&v) as usize];
    let mut failures = Vec::new();
    check(schema, &Node::Map(root.clone()), "", minor(&v), &mut failures);
    // The most specific error: the deepest; on a tie the first, a type error before others.
    let mut best: Option<Failure> = None;
    for f in failures {
        let better = match &best {
            None => true,
            Some(b) => f.depth > b.depth || (f.depth == b.depth && f.type_error && !b.type_error),
        };
        if better {
            best = Some(f);
        }
    }
    match best {
        Some(f) => Err(f.message),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn validate_text(yaml: &str) -> Result<(), String> {
        let Node::Map(m) = super::super::yaml::parse(yaml).unwrap() else { panic!() };
        let v = version_of(m.get("version").and_then(Node::as_str).unwrap_or(""));
        validate(&v, &m)
    }

    #[test]
    fn versions() {
        assert_eq!(normalize_version("").unwrap(), "3.13");
        assert_eq!(normalize_version("3").unwrap(), "3.13");
        assert_eq!(normalize_version("3.8").unwrap(), "3.8");
        assert_eq!(normalize_version("2.4").unwrap_err(), "unsupported Compose file version: 2.4");
    }

    #[test]
    fn unknown_keys_depend_on_the_version() {
        let y = "version: \"3.8\"\nservices:\n  web:\n    image: a\n    deploy:\n      resources:\n        limits:\n          pids: 10\n";
        assert_eq!(
            validate_text(y).unwrap_err(),
            "services.web.deploy.resources.limits Additional property pids is not allowed"
        );
        assert!(validate_text(&y.replace("3.8", "3.9")).is_ok());
        assert_eq!(
            validate_text("name: x\nservices: {}\n").unwrap_err(),
            "(root) Additional property name is not allowed"
        );
        assert!(validate_text("x-anchors: {a: 1}\nservices:\n  s:\n    image: a\n    x-note: hi\n").is_ok());
        assert_eq!(
            validate_text("version: \"3.6\"\nservices:\n  s:\n    image: a\n    x-note: hi\n").unwrap_err(),
            "services.s Additional property x-note is not allowed"
        );
        assert_eq!(
            validate_text("version: \"3.3\"\nx-a: 1\nservices: {}\n").unwrap_err(),
            "(root) Additional property x-a is not allowed"
        );
        assert_eq!(
            validate_text("services:\n  my@svc:\n    image: a\n").unwrap_err(),
            "services Additional property my@svc is not allowed"
        );
    }

    #[test]
    fn types_and_formats() {
        assert_eq!(
            validate_text("services:\n  web:\n    image: a\n    deploy:\n      replicas: two\n").unwrap_err(),
            "services.web.deploy.replicas must be a integer"
        );
        assert_eq!(
            validate_text("services:\n  web:\n    image: [a]\n").unwrap_err(),
            "services.web.image must be a string"
        );
        assert_eq!(
            validate_text("services:\n  web:\n    image: a\n    environment: 3\n").unwrap_err(),
            "services.web.environment must be a mapping"
        );
        assert_eq!(
            validate_text("services:\n  web:\n    image: a\n    environment:\n      FOO: true\n").unwrap_err(),
            "services.web.environment.FOO must be a string, number or null"
        );
        assert_eq!(
            validate_text("services:\n  web:\n    image: a\n    volumes:\n      - target: /x\n").unwrap_err(),
            "services.web.volumes.0 type is required"
        );
        assert_eq!(
            validate_text("services:\n  web:\n    image: a\n    stop_grace_period: 10\n").unwrap_err(),
            "services.web.stop_grace_period must be a string"
        );
        assert_eq!(
            validate_text("services:\n  web:\n    image: a\n    stop_grace_period: ten\n").unwrap_err(),
            "services.web.stop_grace_period Does not match format 'duration'"
        );
        assert_eq!(
            validate_text("services:\n  web:\n    image: a\n    ports:\n      - \"80:eighty\"\n").unwrap_err(),
            "services.web.ports.0 Does not match format 'ports'"
        );
        assert_eq!(
            validate_text("services:\n  web:\n    image: a\n    deploy:\n      update_config:\n        order: random\n").unwrap_err(),
            "services.web.deploy.update_config.order services.web.deploy.update_config.order must be one of the following: \"start-first\", \"stop-first\""
        );
        assert_eq!(
            validate_text("services:\n  web:\n    image: a\n    deploy:\n      resources:\n        limits:\n          cpus: 0.5\n").unwrap_err(),
            "services.web.deploy.resources.limits.cpus must be a string"
        );
        assert_eq!(validate_text("version: 3.8\nservices: {}\n").unwrap_err(), "version must be a string");
        assert_eq!(
            validate_text("services:\n  web:\n    image: a\n    pid: 3\n").unwrap_err(),
            "services.web.pid must be a string or null"
        );
        assert!(validate_text("networks:\n  default:\nvolumes:\n  data:\n").is_ok());
        assert_eq!(validate_text("secrets:\n  s:\n").unwrap_err(), "secrets.s must be a mapping");
    }
}
