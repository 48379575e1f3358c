//! The compose model after loading: one file's interpolated, validated YAML turned into typed
//! services, networks, volumes, secrets and configs, with the short syntaxes (ports, volumes,
//! secret references, environment lists…) expanded the way docker/cli's loader does.

use super::yaml::Node;
use indexmap::IndexMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct LoadError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, LoadError> {
    Err(LoadError(msg.into()))
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Config {
    pub services: Vec<Service>,
    pub networks: IndexMap<String, NetworkDef>,
    pub volumes: IndexMap<String, VolumeDef>,
    pub secrets: IndexMap<String, FileObjectDef>,
    pub configs: IndexMap<String, FileObjectDef>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Service {
    pub name: String,
    pub image: String,
    pub command: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    /// `None` for `KEY` without a value.
    pub environment: IndexMap<String, Option<String>>,
    pub labels: IndexMap<String, String>,
    pub deploy: Deploy,
    pub healthcheck: Option<Healthcheck>,
    pub hostname: String,
    pub extra_hosts: Vec<String>,
    pub dns: Vec<String>,
    pub dns_search: Vec<String>,
    pub working_dir: String,
    pub user: String,
    pub stop_grace_period: Option<i64>,
    pub stop_signal: String,
    pub tty: bool,
    pub stdin_open: bool,
    pub read_only: bool,
    pub init: Option<bool>,
    pub isolation: String,
    pub sysctls: IndexMap<String, String>,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub ulimits: IndexMap<String, Ulimit>,
    pub oom_score_adj: i64,
    pub volumes: Vec<VolumeMount>,
    pub secrets: Vec<FileRef>,
    pub configs: Vec<FileRef>,
    pub credential_spec: Option<CredentialSpec>,
    pub logging: Option<Logging>,
    /// `None` when the service has no `networks:` key (it joins `default`).
    pub networks: Option<IndexMap<String, Option<NetworkAttachment>>>,
    pub ports: Vec<Port>,
    pub restart: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Deploy {
    pub mode: String,
    pub replicas: Option<u64>,
    pub labels: IndexMap<String, String>,
    pub update_config: Option<UpdateConfig>,
    pub rollback_config: Option<UpdateConfig>,
    pub resources: Resources,
    pub restart_policy: Option<RestartPolicy>,
    pub placement: Placement,
    pub endpoint_mode: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct UpdateConfig {
    pub parallelism: Option<u64>,
    pub delay: Option<i64>,
    pub failure_action: String,
    pub monitor: Option<i64>,
    pub max_failure_ratio: f64,
    pub order: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resources {
    pub limits: Option<ResourceLimit>,
    pub reservations: Option<ResourceLimit>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResourceLimit {
    pub nano_cpus: i64,
    pub memory_bytes: i64,
    pub pids: i64,
    pub generic_resources: Vec<(String, i64)>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct RestartPolicy {
    pub condition: String,
    pub delay: Option<i64>,
    pub max_attempts: Option<u64>,
    pub window: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Placement {
    pub constraints: Vec<String>,
    pub preferences: Vec<String>,
    pub max_replicas: u64,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Healthcheck {
    pub test: Vec<String>,
    pub interval: Option<i64>,
    pub timeout: Option<i64>,
    pub start_period: Option<i64>,
    pub start_interval: Option<i64>,
    pub retries: Option<u64>,
    pub disable: bool,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ulimit {
    pub single: i64,
    pub soft: i64,
    pub hard: i64,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct VolumeMount {
    pub kind: String,
    pub source: String,
    pub target: String,
    pub read_only: bool,
    pub consistency: String,
    pub bind_propagation: Option<String>,
    pub volume_nocopy: Option<bool>,
    pub tmpfs_size: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct FileRef {
    pub source: String,
    pub target: String,
    pub uid: String,
    pub gid: String,
    pub mode: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct CredentialSpec {
    pub config: String,
    pub file: String,
    pub registry: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Logging {
    pub driver: String,
    pub options: IndexMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct NetworkAttachment {
    pub aliases: Vec<String>,
    pub driver_opts: IndexMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Port {
    pub mode: String,
    pub target: u32,
    pub published: u32,
    pub protocol: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct NetworkDef {
    pub name: String,
    pub driver: String,
    pub driver_opts: IndexMap<String, String>,
    pub external: bool,
    pub internal: bool,
    pub attachable: bool,
    pub labels: IndexMap<String, String>,
    pub ipam_driver: String,
    pub ipam_subnets: Vec<String>,
    pub ipam_set: bool,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct VolumeDef {
    pub name: String,
    pub driver: String,
    pub driver_opts: Option<IndexMap<String, String>>,
    pub external: bool,
    pub labels: IndexMap<String, String>,
}

/// A top-level secret or config.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FileObjectDef {
    pub name: String,
    /// Absolute path (resolved against the working directory).
    pub file: Option<PathBuf>,
    pub external: bool,
    pub labels: IndexMap<String, String>,
    pub template_driver: String,
    pub driver: String,
    pub driver_opts: IndexMap<String, String>,
}

/// A Go duration (`1m30s`, `2m`, `10s`, `1.5h`, `300ms`) in nanoseconds.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    let bad = || format!("time: invalid duration \"{s}\"");
    let mut rest = s.trim();
    let neg = rest.starts_with('-');
    rest = rest.trim_start_matches(['-', '+']);
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        if num_end == 0 {
            return Err(bad());
        }
        let value: f64 = rest[..num_end].parse().map_err(|_| bad())?;
        rest = &rest[num_end..];
        let unit_end = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let unit = match &rest[..unit_end] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "" => return Err(format!("time: missing unit in duration \"{s}\"")),
            other => return Err(format!("time: unknown unit \"{other}\" in duration \"{s}\"")),
        };
        total += value * unit;
        rest = &rest[unit_end..];
    }
    Ok(if neg { -(total.round() as i64) } else { total.round() as i64 })
}

/// Docker's RAM sizes: `256M`, `1g`, `1.5G`, plain bytes; binary multiples, any case.
pub fn parse_ram(s: &str) -> Result<i64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num.parse().map_err(|_| format!("invalid size: '{s}'"))?;
    let mult: f64 = match unit.to_ascii_lowercase().trim_end_matches('b').trim_end_matches('i') {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024f64.powi(4),
        "p" => 1024f64.powi(5),
        _ => return Err(format!("invalid size: '{s}'")),
    };
    Ok((value * mult) as i64)
}

/// `"0.50"` CPUs → nano CPUs, exactly (at most 9 decimals).
pub fn parse_cpus(s: &str) -> Result<i64, String> {
    let t = s.trim();
    let (int, frac) = t.split_once('.').unwrap_or((t, ""));
    if frac.len() > 9 {
        return Err(format!("value is too precise: {s}"));
    }
    let int: i64 = if int.is_empty() { 0 } else { int.parse().map_err(|_| format!("invalid cpus: {s}"))? };
    let frac_val: i64 =
        if frac.is_empty() { 0 } else { format!("{frac:0<9}").parse().map_err(|_| format!("invalid cpus: {s}"))? };
    Ok(int * 1_000_000_000 + frac_val)
}

/// Splits like a POSIX shell would (quotes, escapes), without expansion.
pub fn shell_split(s: &str) -> Result<Vec<String>, String> {
    shlex::split(s).ok_or_else(|| format!("invalid command line: {s}"))
}

fn text(n: &Node) -> String {
    n.scalar_text().unwrap_or_default()
}

fn string_map(n: Option<&Node>) -> IndexMap<String, String> {
    let mut out = IndexMap::new();
    match n {
        Some(Node::Map(m)) => {
            for (k, v) in m {
                out.insert(k.clone(), text(v));
            }
        }
        Some(Node::Seq(items)) => {
            for item in items {
                let s = text(item);
                match s.split_once('=') {
                    Some((k, v)) => out.insert(k.to_string(), v.to_string()),
                    None => out.insert(s, String::new()),
                };
            }
        }
        _ => {}
    }
    out
}

fn string_list(n: Option<&Node>) -> Vec<String> {
    match n {
        Some(Node::Seq(items)) => items.iter().map(text).collect(),
        Some(Node::Null) | None => Vec::new(),
        Some(other) => vec![text(other)],
    }
}

fn duration(n: Option<&Node>, path: &str) -> Result<Option<i64>, LoadError> {
    match n {
        None | Some(Node::Null) => Ok(None),
        Some(v) => parse_duration(&text(v)).map(Some).map_err(|e| LoadError(format!("{path}: {e}"))),
    }
}

fn uint(n: Option<&Node>) -> Option<u64> {
    match n {
        Some(Node::Int(i)) if *i >= 0 => Some(*i as u64),
        Some(Node::Float(f)) if *f >= 0.0 => Some(*f as u64),
        _ => None,
    }
}

fn boolean(n: Option<&Node>) -> bool {
    matches!(n, Some(Node::Bool(true)))
}

/// The environment of one service in one file: `env_file` (literal values), then
/// `environment`; an entry without a value (or with an empty one) takes the value from
/// `lookup` when it is defined there.
pub fn resolve_environment(
    svc: &Node,
    working_dir: &Path,
    read_file: &dyn Fn(&Path) -> Result<String, String>,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<IndexMap<String, Option<String>>, LoadError> {
    let mut env: IndexMap<String, Option<String>> = IndexMap::new();
    for file in string_list(svc.get("env_file")) {
        let path = working_dir.join(&file);
        let content = read_file(&path).map_err(|e| LoadError(format!("Failed to load {}: {e}", path.display())))?;
        for line in content.lines() {
            let line = line.strip_prefix('\u{feff}').unwrap_or(line).trim_start();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            match line.split_once('=') {
                Some((k, v)) => {
                    if k.contains(char::is_whitespace) {
                        return err(format!("variable '{k}' contains whitespaces"));
                    }
                    env.insert(k.to_string(), Some(v.to_string()));
                }
                None => {
                    env.insert(line.to_string(), None);
                }
            }
        }
    }
    match svc.get("environment") {
        Some(Node::Map(m)) => {
            for (k, v) in m {
                env.insert(k.clone(), if v.is_null() { None } else { Some(text(v)) });
            }
        }
        Some(Node::Seq(items)) => {
            for item in items {
                let s = text(item);
                match s.split_once('=') {
                    Some((k, v)) => env.insert(k.to_string(), Some(v.to_string())),
                    None => env.insert(s, None),
                };
            }
        }
        _ => {}
    }
    for (k, v) in env.iter_mut() {
        if v.as_deref().is_none_or(str::is_empty) {
            if let Some(found) = lookup(k) {
                *v = Some(found);
            }
        }
    }
    Ok(env)
}

fn is_windows_path(s: &str) -> bool {
    let b = s.as_bytes();
    (b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':') || s.starts_with("\\\\")
}

/// `[SOURCE:]TARGET[:OPTIONS]`.
pub fn parse_volume_short(spec: &str) -> Result<VolumeMount, LoadError> {
    // Split on ':' but keep a one-letter "drive" (v:/data) together, as the CLI does.
    let mut parts: Vec<String> = Vec::new();
    let mut current = String::new();
    for (i, c) in spec.char_indices() {
        if c == ':' {
            if current.len() == 1
                && current.chars().all(|c| c.is_ascii_alphabetic())
                && parts.is_empty()
                && spec[i + 1..].starts_with(['/', '\\'])
            {
                current.push(c);
                continue;
            }
            parts.push(std::mem::take(&mut current));
        } else {
            current.push(c);
        }
    }
    parts.push(current);
    let mut m = VolumeMount::default();
    match parts.len() {
        1 => {
            m.kind = "volume".into();
            m.target = parts[0].clone();
        }
        2 | 3 => {
            let (source, target) = (parts[0].clone(), parts[1].clone());
            if source.is_empty() {
                return err(format!("invalid spec: {spec}: empty section between colons"));
            }
            m.source = source.clone();
            m.target = target;
            m.kind = if source.starts_with(['.', '/', '~']) || is_windows_path(&source) {
                "bind".into()
            } else {
                "volume".into()
            };
            if parts.len() == 3 {
                for opt in parts[2].split(',') {
                    match opt {
                        "ro" => m.read_only = true,
                        "rw" => m.read_only = false,
                        "nocopy" => m.volume_nocopy = Some(true),
                        "rprivate" | "private" | "rshared" | "shared" | "rslave" | "slave" => {
                            m.bind_propagation = Some(opt.to_string())
                        }
                        _ => {}
                    }
                }
            }
        }
        _ => return err(format!("invalid spec: {spec}: too many colons")),
    }
    if m.target.is_empty() {
        return err(format!("invalid spec: {spec}: empty section between colons"));
    }
    Ok(m)
}

fn volume_long(n: &Node) -> Result<VolumeMount, LoadError> {
    let mut m = VolumeMount {
        kind: n.get("type").map(text).unwrap_or_default(),
        source: n.get("source").map(text).unwrap_or_default(),
        target: n.get("target").map(text).unwrap_or_default(),
        read_only: boolean(n.get("read_only")),
        consistency: n.get("consistency").map(text).unwrap_or_default(),
        ..VolumeMount::default()
    };
    if m.kind.is_empty() {
        m.kind = "volume".into();
    }
    if let Some(b) = n.get("bind") {
        if m.kind != "bind" {
            return err(format!("bind options are incompatible with type {}", m.kind));
        }
        m.bind_propagation = Some(b.get("propagation").map(text).unwrap_or_default());
    }
    if let Some(v) = n.get("volume") {
        if m.kind != "volume" {
            return err(format!("volume options are incompatible with type {}", m.kind));
        }
        m.volume_nocopy = Some(boolean(v.get("nocopy")));
    }
    if let Some(t) = n.get("tmpfs") {
        if m.kind != "tmpfs" {
            return err(format!("tmpfs options are incompatible with type {}", m.kind));
        }
        m.tmpfs_size = Some(match t.get("size") {
            Some(Node::Int(i)) => *i,
            Some(other) => parse_ram(&text(other)).map_err(LoadError)?,
            None => 0,
        });
    }
    Ok(m)
}

/// Docker's port spec: `[ip:][published[-range]:]target[-range][/proto]`.
pub fn parse_port_short(spec: &str) -> Result<Vec<Port>, LoadError> {
    let bad = || LoadError(format!("Invalid port specification: \"{spec}\""));
    let (rest, proto) = match spec.rsplit_once('/') {
        Some((r, p)) => (r, p.to_ascii_lowercase()),
        None => (spec, "tcp".to_string()),
    };
    let parts: Vec<&str> = rest.split(':').collect();
    let (published, target) = match parts.as_slice() {
        [t] => ("", *t),
        [p, t] => (*p, *t),
        [_ip, p, t] => (*p, *t),
        _ => return Err(bad()),
    };
    // Ports are 0-65535 and a range runs upwards (as go-connections' ParsePortRange checks),
    // so a range never makes more than 65536 ports.
    let port = |s: &str| -> Result<u32, LoadError> { s.parse::<u16>().map(u32::from).map_err(|_| bad()) };
    let range = |s: &str| -> Result<(u32, u32), LoadError> {
        let (a, b) = match s.split_once('-') {
            Some((a, b)) => (port(a)?, port(b)?),
            None => {
                let v = port(s)?;
                (v, v)
            }
        };
        if b < a {
            return Err(bad());
        }
        Ok((a, b))
    };
    let (t0, t1) = range(target)?;
    let (p0, p1) = if published.is_empty() { (0, 0) } else { range(published)? };
    if p1 - p0 != 0 && p1 - p0 != t1 - t0 {
        return Err(bad());
    }
    Ok((0..=(t1 - t0))
        .map(|i| Port {
            mode: "ingress".into(),
            target: t0 + i,
            published: if published.is_empty() { 0 } else { p0 + i.min(p1 - p0) },
            protocol: proto.clone(),
        })
        .collect())
}

fn file_ref(n: &Node) -> FileRef {
    match n {
        Node::Map(_) => FileRef {
            source: n.get("source").map(text).unwrap_or_default(),
            target: n.get("target").map(text).unwrap_or_default(),
            uid: n.get("uid").map(text).unwrap_or_default(),
            gid: n.get("gid").map(text).unwrap_or_default(),
            mode: match n.get("mode") {
                Some(Node::Int(i)) => Some(*i as u32),
                Some(Node::Float(f)) => Some(*f as u32),
                _ => None,
            },
        },
        other => FileRef { source: text(other), ..FileRef::default() },
    }
}

fn update_config(n: Option<&Node>, path: &str) -> Result<Option<UpdateConfig>, LoadError> {
    let Some(n) = n.filter(|n| !n.is_null()) else { return Ok(None) };
    Ok(Some(UpdateConfig {
        parallelism: uint(n.get("parallelism")),
        delay: duration(n.get("delay"), &format!("{path}.delay"))?,
        failure_action: n.get("failure_action").map(text).unwrap_or_default(),
        monitor: duration(n.get("monitor"), &format!("{path}.monitor"))?,
        max_failure_ratio: match n.get("max_failure_ratio") {
            Some(Node::Float(f)) => *f,
            Some(Node::Int(i)) => *i as f64,
            _ => 0.0,
        },
        order: n.get("order").map(text).unwrap_or_default(),
    }))
}

fn resource_limit(n: Option<&Node>) -> Result<Option<ResourceLimit>, LoadError> {
    let Some(n) = n.filter(|n| !n.is_null()) else { return Ok(None) };
    let mut r = ResourceLimit::default();
    if let Some(c) = n.get("cpus") {
        r.nano_cpus = parse_cpus(&text(c)).map_err(LoadError)?;
    }
    if let Some(m) = n.get("memory") {
        r.memory_bytes = match m {
            Node::Int(i) => *i,
            other => parse_ram(&text(other)).map_err(LoadError)?,
        };
    }
    if let Some(Node::Int(p)) = n.get("pids") {
        r.pids = *p;
    }
    if let Some(Node::Seq(items)) = n.get("generic_resources") {
        for g in items {
            if let Some(spec) = g.get("discrete_resource_spec") {
                let kind = spec.get("kind").map(text).unwrap_or_default();
                let value = match spec.get("value") {
                    Some(Node::Int(i)) => *i,
                    _ => 0,
                };
                r.generic_resources.push((kind, value));
            }
        }
    }
    Ok(Some(r))
}

fn load_service(
    name: &str,
    n: &Node,
    working_dir: &Path,
    read_file: &dyn Fn(&Path) -> Result<String, String>,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Service, LoadError> {
    let p = format!("services.{name}");
    let command = |key: &str| -> Result<Option<Vec<String>>, LoadError> {
        match n.get(key) {
            None | Some(Node::Null) => Ok(None),
            Some(Node::Seq(items)) => Ok(Some(items.iter().map(text).collect())),
            Some(other) => shell_split(&text(other)).map(Some).map_err(LoadError),
        }
    };
    let mut s = Service {
        name: name.to_string(),
        image: n.get("image").map(text).unwrap_or_default(),
        command: command("command")?,
        entrypoint: command("entrypoint")?,
        environment: resolve_environment(n, working_dir, read_file, lookup)?,
        labels: string_map(n.get("labels")),
        hostname: n.get("hostname").map(text).unwrap_or_default(),
        dns: string_list(n.get("dns")),
        dns_search: string_list(n.get("dns_search")),
        working_dir: n.get("working_dir").map(text).unwrap_or_default(),
        user: n.get("user").map(text).unwrap_or_default(),
        stop_grace_period: duration(n.get("stop_grace_period"), &format!("{p}.stop_grace_period"))?,
        stop_signal: n.get("stop_signal").map(text).unwrap_or_default(),
        tty: boolean(n.get("tty")),
        stdin_open: boolean(n.get("stdin_open")),
        read_only: boolean(n.get("read_only")),
        init: match n.get("init") {
            Some(Node::Bool(b)) => Some(*b),
            _ => None,
        },
        isolation: n.get("isolation").map(text).unwrap_or_default(),
        sysctls: string_map(n.get("sysctls")),
        cap_add: string_list(n.get("cap_add")),
        cap_drop: string_list(n.get("cap_drop")),
        oom_score_adj: match n.get("oom_score_adj") {
            Some(Node::Int(i)) => *i,
            _ => 0,
        },
        restart: n.get("restart").map(text).unwrap_or_default(),
        ..Service::default()
    };
    // extra_hosts: list as is, map form sorted, `host=ip` accepted.
    s.extra_hosts = match n.get("extra_hosts") {
        Some(Node::Map(m)) => {
            let mut v: Vec<String> = m.iter().map(|(k, v)| format!("{k}:{}", text(v))).collect();
            v.sort();
            v
        }
        other => string_list(other),
    };
    if let Some(h) = n.get("healthcheck") {
        let hp = format!("{p}.healthcheck");
        let test = match h.get("test") {
            Some(Node::Seq(items)) => items.iter().map(text).collect(),
            Some(Node::Str(s)) => vec!["CMD-SHELL".into(), s.clone()],
            _ => Vec::new(),
        };
        s.healthcheck = Some(Healthcheck {
            test,
            interval: duration(h.get("interval"), &format!("{hp}.interval"))?,
            timeout: duration(h.get("timeout"), &format!("{hp}.timeout"))?,
            start_period: duration(h.get("start_period"), &format!("{hp}.start_period"))?,
            start_interval: duration(h.get("start_interval"), &format!("{hp}.start_interval"))?,
            retries: uint(h.get("retries")),
            disable: boolean(h.get("disable")),
        });
    }
    if let Some(Node::Map(u)) = n.get("ulimits") {
        for (k, v) in u {
            let ul = match v {
                Node::Int(i) => Ulimit { single: *i, soft: 0, hard: 0 },
                other => Ulimit {
                    single: 0,
                    soft: match other.get("soft") {
                        Some(Node::Int(i)) => *i,
                        _ => 0,
                    },
                    hard: match other.get("hard") {
                        Some(Node::Int(i)) => *i,
                        _ => 0,
                    },
                },
            };
            s.ulimits.insert(k.clone(), ul);
        }
    }
    if let Some(Node::Seq(items)) = n.get("volumes") {
        for v in items {
            s.volumes.push(match v {
                Node::Str(spec) => parse_volume_short(spec)?,
                other => volume_long(other)?,
            });
        }
    }
    if let Some(Node::Seq(items)) = n.get("secrets") {
        s.secrets = items.iter().map(file_ref).collect();
    }
    if let Some(Node::Seq(items)) = n.get("configs") {
        s.configs = items.iter().map(file_ref).collect();
    }
    if let Some(c) = n.get("credential_spec") {
        s.credential_spec = Some(CredentialSpec {
            config: c.get("config").map(text).unwrap_or_default(),
            file: c.get("file").map(text).unwrap_or_default(),
            registry: c.get("registry").map(text).unwrap_or_default(),
        });
    }
    if let Some(l) = n.get("logging") {
        s.logging = Some(Logging {
            driver: l.get("driver").map(text).unwrap_or_default(),
            options: string_map(l.get("options")),
        });
    }
    s.networks = match n.get("networks") {
        None => None,
        Some(Node::Seq(items)) => Some(items.iter().map(|i| (text(i), None)).collect()),
        Some(Node::Map(m)) => Some(
            m.iter()
                .map(|(k, v)| {
                    let att = (!v.is_null()).then(|| NetworkAttachment {
                        aliases: string_list(v.get("aliases")),
                        driver_opts: string_map(v.get("driver_opts")),
                    });
                    (k.clone(), att)
                })
                .collect(),
        ),
        Some(_) => Some(IndexMap::new()),
    };
    if let Some(Node::Seq(items)) = n.get("ports") {
        for item in items {
            match item {
                Node::Int(i) => s.ports.extend(parse_port_short(&i.to_string())?),
                Node::Str(spec) => s.ports.extend(parse_port_short(spec)?),
                other => s.ports.push(Port {
                    mode: other.get("mode").map(text).unwrap_or_default(),
                    target: uint(other.get("target")).unwrap_or(0) as u32,
                    published: uint(other.get("published")).unwrap_or(0) as u32,
                    protocol: other.get("protocol").map(text).unwrap_or_default(),
                }),
            }
        }
    }
    if let Some(d) = n.get("deploy") {
        let dp = format!("{p}.deploy");
        s.deploy = Deploy {
            mode: d.get("mode").map(text).unwrap_or_default(),
            replicas: uint(d.get("replicas")),
            labels: string_map(d.get("labels")),
            update_config: update_config(d.get("update_config"), &format!("{dp}.update_config"))?,
            rollback_config: update_config(d.get("rollback_config"), &format!("{dp}.rollback_config"))?,
            resources: Resources {
                limits: resource_limit(d.at(&["resources", "limits"]))?,
                reservations: resource_limit(d.at(&["resources", "reservations"]))?,
            },
            restart_policy: match d.get("restart_policy").filter(|r| !r.is_null()) {
                None => None,
                Some(r) => Some(RestartPolicy {
                    condition: r.get("condition").map(text).unwrap_or_default(),
                    delay: duration(r.get("delay"), &format!("{dp}.restart_policy.delay"))?,
                    max_attempts: uint(r.get("max_attempts")),
                    window: duration(r.get("window"), &format!("{dp}.restart_policy.window"))?,
                }),
            },
            placement: Placement {
                constraints: string_list(d.at(&["placement", "constraints"])),
                preferences: match d.at(&["placement", "preferences"]) {
                    Some(Node::Seq(items)) => {
                        items.iter().map(|i| i.get("spread").map(text).unwrap_or_default()).collect()
                    }
                    _ => Vec::new(),
                },
                max_replicas: uint(d.at(&["placement", "max_replicas_per_node"])).unwrap_or(0),
            },
            endpoint_mode: d.get("endpoint_mode").map(text).unwrap_or_default(),
        };
    }
    Ok(s)
}

fn external_and_name(key: &str, n: &Node, kind: &str) -> Result<(bool, String), LoadError> {
    let name = n.get("name").map(text).unwrap_or_default();
    match n.get("external") {
        Some(Node::Bool(b)) => Ok((*b, name)),
        Some(Node::Map(m)) => {
            let ext_name = m.get("name").map(text).unwrap_or_default();
            if !ext_name.is_empty() && !name.is_empty() {
                return err(format!("{kind} {key}: external.name and name conflict; only use name"));
            }
            Ok((true, if ext_name.is_empty() { name } else { ext_name }))
        }
        _ => Ok((false, name)),
    }
}

/// Loads one validated, interpolated file.
pub fn load_file(
    root: &IndexMap<String, Node>,
    working_dir: &Path,
    read_file: &dyn Fn(&Path) -> Result<String, String>,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, LoadError> {
    let mut c = Config::default();
    if let Some(Node::Map(services)) = root.get("services") {
        for (name, n) in services {
            c.services.push(load_service(name, n, working_dir, read_file, lookup)?);
        }
    }
    if let Some(Node::Map(nets)) = root.get("networks") {
        for (key, n) in nets {
            let (external, name) = external_and_name(key, n, "network")?;
            let ipam = n.get("ipam");
            c.networks.insert(
                key.clone(),
                NetworkDef {
                    name,
                    external,
                    driver: n.get("driver").map(text).unwrap_or_default(),
                    driver_opts: string_map(n.get("driver_opts")),
                    internal: boolean(n.get("internal")),
                    attachable: boolean(n.get("attachable")),
                    labels: string_map(n.get("labels")),
                    ipam_driver: ipam.and_then(|i| i.get("driver")).map(text).unwrap_or_default(),
                    ipam_subnets: match ipam.and_then(|i| i.get("config")) {
                        Some(Node::Seq(items)) => items.iter().filter_map(|i| i.get("subnet").map(text)).collect(),
                        _ => Vec::new(),
                    },
                    ipam_set: ipam.is_some_and(|i| i.get("driver").is_some() || i.get("config").is_some()),
                },
            );
        }
    }
    if let Some(Node::Map(vols)) = root.get("volumes") {
        for (key, n) in vols {
            let (external, name) = external_and_name(key, n, "volume")?;
            let driver = n.get("driver").map(text).unwrap_or_default();
            let driver_opts = n.get("driver_opts").map(|d| string_map(Some(d)));
            let labels = string_map(n.get("labels"));
            if external && !driver.is_empty() {
                return err(format!(
                    "conflicting parameters \"external\" and \"driver\" specified for volume \"{key}\""
                ));
            }
            if external && driver_opts.is_some() {
                return err(format!(
                    "conflicting parameters \"external\" and \"driver_opts\" specified for volume \"{key}\""
                ));
            }
            if external && !labels.is_empty() {
                return err(format!(
                    "conflicting parameters \"external\" and \"labels\" specified for volume \"{key}\""
                ));
            }
            c.volumes.insert(key.clone(), VolumeDef { name, driver, driver_opts, external, labels });
        }
    }
    for (section, target) in [("secrets", &mut c.secrets), ("configs", &mut c.configs)] {
        if let Some(Node::Map(objs)) = root.get(section) {
            for (key, n) in objs {
                let kind = &section[..section.len() - 1];
                let (external, name) = external_and_name(key, n, kind)?;
                let file = n.get("file").map(|f| working_dir.join(text(f)));
                let driver = n.get("driver").map(text).unwrap_or_default();
                if !driver.is_empty() && file.is_some() {
                    return err(format!("{kind} {key}: driver and file cannot both be set"));
                }
                target.insert(
                    key.clone(),
                    FileObjectDef {
                        name,
                        file,
                        external,
                        labels: string_map(n.get("labels")),
                        template_driver: n.get("template_driver").map(text).unwrap_or_default(),
                        driver,
                        driver_opts: string_map(n.get("driver_opts")),
                    },
                );
            }
        }
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_like_go() {
        assert_eq!(parse_duration("1m30s").unwrap(), 90_000_000_000);
        assert_eq!(parse_duration("2m").unwrap(), 120_000_000_000);
        assert_eq!(parse_duration("300ms").unwrap(), 300_000_000);
        assert_eq!(parse_duration("1.5h").unwrap(), 5_400_000_000_000);
        assert_eq!(parse_duration("0").unwrap(), 0);
        assert!(parse_duration("10").unwrap_err().contains("missing unit"));
        assert!(parse_duration("5x").unwrap_err().contains("unknown unit"));
    }

    #[test]
    fn sizes_and_cpus() {
        assert_eq!(parse_ram("256M").unwrap(), 268_435_456);
        assert_eq!(parse_ram("64m").unwrap(), 67_108_864);
        assert_eq!(parse_ram("1.5G").unwrap(), 1_610_612_736);
        assert_eq!(parse_ram("1024").unwrap(), 1024);
        assert_eq!(parse_cpus("0.50").unwrap(), 500_000_000);
        assert_eq!(parse_cpus("2").unwrap(), 2_000_000_000);
        assert!(parse_cpus("0.0000000001").unwrap_err().contains("too precise"));
    }

    #[test]
    fn volume_short_syntax() {
        let v = parse_volume_short("db-data:/var/lib/postgresql/data").unwrap();
        assert_eq!(
            (v.kind.as_str(), v.source.as_str(), v.target.as_str()),
            ("volume", "db-data", "/var/lib/postgresql/data")
        );
        let b = parse_volume_short("./conf:/etc/conf:ro,rshared").unwrap();
        assert_eq!(b.kind, "bind");
        assert!(b.read_only);
        assert_eq!(b.bind_propagation.as_deref(), Some("rshared"));
        let anon = parse_volume_short("/cache").unwrap();
        assert_eq!((anon.kind.as_str(), anon.source.as_str()), ("volume", ""));
        let root = parse_volume_short("/:/host:ro").unwrap();
        assert_eq!(
            (root.kind.as_str(), root.source.as_str(), root.target.as_str(), root.read_only),
            ("bind", "/", "/host", true)
        );
        let drive = parse_volume_short("v:/data").unwrap();
        assert_eq!(
            (drive.source.as_str(), drive.target.as_str()),
            ("", "v:/data"),
            "a one-letter name reads as a drive"
        );
        assert!(parse_volume_short("a:b:c:d").is_err());
    }

    #[test]
    fn port_short_syntax() {
        let p = parse_port_short("8080:80").unwrap();
        assert_eq!(
            (p[0].published, p[0].target, p[0].protocol.as_str(), p[0].mode.as_str()),
            (8080, 80, "tcp", "ingress")
        );
        let r = parse_port_short("19000-19001:9000-9001/UDP").unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!((r[1].published, r[1].target, r[1].protocol.as_str()), (19001, 9001, "udp"));
        assert_eq!(parse_port_short("7000").unwrap()[0].published, 0);
        assert_eq!(parse_port_short("127.0.0.1:5000:5000").unwrap()[0].published, 5000);
        assert!(parse_port_short("abc").is_err());
        // Found by fuzzing: a reversed range underflowed, and a huge one made billions of ports.
        assert!(parse_port_short("9-1:1-9").is_err());
        assert!(parse_port_short("1-4294967295").is_err());
        assert!(parse_port_short("70000:80").is_err());
        assert_eq!(parse_port_short("0-65535").unwrap().len(), 65536);
    }

    #[test]
    fn environment_takes_empty_values_from_the_process() {
        let svc = super::super::yaml::parse("environment:\n  - A=1\n  - FROM_ENV\n  - EMPTY=\n  - MISSING\n").unwrap();
        let lookup = |k: &str| match k {
            "FROM_ENV" => Some("x".to_string()),
            "EMPTY" => Some("filled".to_string()),
            _ => None,
        };
        let env = resolve_environment(&svc, Path::new("/"), &|_| Err("no files".into()), &lookup).unwrap();
        assert_eq!(env["A"].as_deref(), Some("1"));
        assert_eq!(env["FROM_ENV"].as_deref(), Some("x"));
        assert_eq!(env["EMPTY"].as_deref(), Some("filled"));
        assert_eq!(env["MISSING"], None);
    }
}
