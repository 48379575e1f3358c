//! From the merged compose model to the swarm objects `docker stack deploy` would create,
//! field for field (see shared/docs/COMPOSE-TO-SWARM.md §5–§11). Specs are built as the Engine
//! API's JSON (PascalCase, exactly the fields the Docker CLI sends) so that what Potluck renders
//! is what it sends and what the Engine stores.

use super::compose::*;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

pub const NAMESPACE_LABEL: &str = "com.docker.stack.namespace";
pub const IMAGE_LABEL: &str = "com.docker.stack.image";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConvertError(pub String);

/// A network the stack uses.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct NetworkPlan {
    pub name: String,
    /// External networks must exist (and be swarm-scoped); they are never created.
    pub external: bool,
    /// The `NetworkCreate` request for the stack's own networks.
    pub create: Option<Value>,
}

/// A secret or config the stack creates (never an external one).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FileObjectPlan {
    pub name: String,
    /// `SecretSpec` / `ConfigSpec`; `Data` is base64.
    pub spec: Value,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ServicePlan {
    /// The compose service name.
    pub key: String,
    /// `<stack>_<service>`.
    pub name: String,
    /// The image exactly as written in the compose file (after interpolation).
    pub image: String,
    /// The `ServiceSpec`; secret and config references carry names, their IDs are filled in at
    /// deploy time.
    pub spec: Value,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StackPlan {
    pub namespace: String,
    pub networks: Vec<NetworkPlan>,
    pub secrets: Vec<FileObjectPlan>,
    pub configs: Vec<FileObjectPlan>,
    pub services: Vec<ServicePlan>,
    /// What the Docker CLI would warn about (ignored options…).
    pub warnings: Vec<String>,
    /// (service, key) of the options swarm ignores (`privileged`, `devices`…).
    pub ignored: Vec<(String, String)>,
}

fn scope(ns: &str, key: &str) -> String {
    format!("{ns}_{key}")
}

fn labels_with_ns(labels: &indexmap::IndexMap<String, String>, ns: &str) -> Value {
    let mut m: BTreeMap<String, String> = labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    m.insert(NAMESPACE_LABEL.into(), ns.into());
    json!(m)
}

fn is_user_defined_network(name: &str) -> bool {
    !matches!(name, "host" | "bridge" | "none" | "default") && !name.starts_with("container:")
}

/// The image as the Docker API client sends it: the "familiar" name (no `docker.io/library/`)
/// with `:latest` when there is neither tag nor digest.
pub fn normalize_image(image: &str) -> Result<String, ConvertError> {
    let invalid = |why: &str| ConvertError(format!("invalid reference format: {why}"));
    if image.is_empty() {
        return Err(invalid("empty image"));
    }
    let (name_part, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (image, None),
    };
    // A tag is after the last ':' that comes after the last '/'.
    let last_slash = name_part.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match name_part[last_slash..].rfind(':') {
        Some(i) => (&name_part[..last_slash + i], Some(&name_part[last_slash + i + 1..])),
        None => (name_part, None),
    };
    if name.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(invalid("repository name must be lowercase"));
    }
    let valid_path = |s: &str| {
        !s.is_empty() && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-/".contains(c))
    };
    let (domain, path) = match name.split_once('/') {
        Some((d, rest)) if d.contains('.') || d.contains(':') || d == "localhost" => (Some(d), rest),
        _ => (None, name),
    };
    if !valid_path(path) || path.starts_with(['.', '-', '_', '/']) || path.ends_with(['.', '-', '_', '/']) {
        return Err(invalid(&format!("{image:?}")));
    }
    if let Some(t) = tag {
        if t.is_empty() || t.len() > 128 || !t.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)) {
            return Err(invalid(&format!("{image:?}")));
        }
    }
    let familiar = match domain {
        None | Some("docker.io") | Some("index.docker.io") => {
            path.strip_prefix("library/").filter(|p| !p.contains('/')).unwrap_or(path).to_string()
        }
        Some(d) => format!("{d}/{path}"),
    };
    let mut out = familiar;
    match (tag, digest) {
        (Some(t), _) => {
            out.push(':');
            out.push_str(t);
        }
        (None, None) => out.push_str(":latest"),
        (None, Some(_)) => {}
    }
    if let Some(d) = digest {
        out.push('@');
        out.push_str(d);
    }
    Ok(out)
}

/// `host:ip`, `host=ip` or `[::1]` forms → `"ip host"`.
fn convert_extra_host(entry: &str) -> String {
    let (host, ip) = match entry.split_once('=') {
        Some((h, i)) => (h, i),
        None => entry.split_once(':').unwrap_or((entry, "")),
    };
    let ip = ip.trim_start_matches('[').trim_end_matches(']');
    format!("{ip} {host}")
}

fn capabilities(add: &[String], drop: &[String]) -> (Vec<String>, Vec<String>) {
    let norm = |c: &String| {
        let up = c.trim().to_ascii_uppercase();
        if up == "ALL" || up.starts_with("CAP_") {
            up
        } else {
            format!("CAP_{up}")
        }
    };
    let mut add: Vec<String> = add.iter().map(norm).filter(|c| c != "CAP_RESET").collect();
    let mut drop: Vec<String> = drop.iter().map(norm).filter(|c| c != "CAP_RESET").collect();
    if add.iter().any(|c| c == "ALL") {
        add = vec!["ALL".into()];
    }
    drop.retain(|c| !add.contains(c));
    add.sort();
    add.dedup();
    drop.sort();
    drop.dedup();
    (add, drop)
}

fn restart_policy(s: &Service) -> Result<Option<Value>, ConvertError> {
    if let Some(r) = &s.deploy.restart_policy {
        let mut m = Map::new();
        if !r.condition.is_empty() {
            m.insert("Condition".into(), json!(r.condition));
        }
        if let Some(d) = r.delay {
            m.insert("Delay".into(), json!(d));
        }
        if let Some(a) = r.max_attempts {
            m.insert("MaxAttempts".into(), json!(a));
        }
        if let Some(w) = r.window {
            m.insert("Window".into(), json!(w));
        }
        return Ok(Some(Value::Object(m)));
    }
    match s.restart.as_str() {
        "" | "no" => Ok(None),
        "always" | "unless-stopped" => Ok(Some(json!({ "Condition": "any" }))),
        other => match other.strip_prefix("on-failure") {
            Some("") => Ok(Some(json!({ "Condition": "on-failure", "MaxAttempts": 0 }))),
            Some(n) => {
                let n: u64 = n
                    .strip_prefix(':')
                    .and_then(|n| n.parse().ok())
                    .ok_or_else(|| ConvertError(format!("invalid restart policy: {other}")))?;
                Ok(Some(json!({ "Condition": "on-failure", "MaxAttempts": n })))
            }
            None => Err(ConvertError(format!("unknown restart policy: {other}"))),
        },
    }
}

fn update_config(u: &Option<UpdateConfig>) -> Option<Value> {
    let u = u.as_ref()?;
    let mut m = Map::new();
    m.insert("Parallelism".into(), json!(u.parallelism.unwrap_or(1)));
    if let Some(d) = u.delay {
        m.insert("Delay".into(), json!(d));
    }
    if !u.failure_action.is_empty() {
        m.insert("FailureAction".into(), json!(u.failure_action));
    }
    if let Some(d) = u.monitor {
        m.insert("Monitor".into(), json!(d));
    }
    m.insert("MaxFailureRatio".into(), json!(u.max_failure_ratio));
    if !u.order.is_empty() {
        m.insert("Order".into(), json!(u.order));
    }
    Some(Value::Object(m))
}

fn resource_object(r: &ResourceLimit, limits: bool) -> Value {
    let mut m = Map::new();
    if r.nano_cpus != 0 {
        m.insert("NanoCPUs".into(), json!(r.nano_cpus));
    }
    if r.memory_bytes != 0 {
        m.insert("MemoryBytes".into(), json!(r.memory_bytes));
    }
    if limits && r.pids != 0 {
        m.insert("Pids".into(), json!(r.pids));
    }
    if !limits && !r.generic_resources.is_empty() {
        let g: Vec<Value> = r
            .generic_resources
            .iter()
            .map(|(k, v)| json!({ "DiscreteResourceSpec": { "Kind": k, "Value": v } }))
            .collect();
        m.insert("GenericResources".into(), json!(g));
    }
    Value::Object(m)
}

fn mounts(
    s: &Service,
    c: &Config,
    ns: &str,
    working_dir: &std::path::Path,
    home: &str,
) -> Result<Vec<Value>, ConvertError> {
    let mut out = Vec::new();
    for v in &s.volumes {
        let mut m = Map::new();
        m.insert("Type".into(), json!(v.kind));
        m.insert("Target".into(), json!(v.target));
        if v.read_only {
            m.insert("ReadOnly".into(), json!(true));
        }
        if !v.consistency.is_empty() {
            m.insert("Consistency".into(), json!(v.consistency));
        }
        match v.kind.as_str() {
            "volume" if !v.source.is_empty() => {
                let def = c
                    .volumes
                    .get(&v.source)
                    .ok_or_else(|| ConvertError(format!("service {}: undefined volume \"{}\"", s.name, v.source)))?;
                let source = if !def.name.is_empty() {
                    def.name.clone()
                } else if def.external {
                    v.source.clone()
                } else {
                    scope(ns, &v.source)
                };
                m.insert("Source".into(), json!(source));
                let mut opts = Map::new();
                if let Some(nocopy) = v.volume_nocopy {
                    if nocopy {
                        opts.insert("NoCopy".into(), json!(true));
                    }
                }
                if !def.external {
                    opts.insert("Labels".into(), labels_with_ns(&def.labels, ns));
                    if !def.driver.is_empty() || def.driver_opts.is_some() {
                        let mut dc = Map::new();
                        if !def.driver.is_empty() {
                            dc.insert("Name".into(), json!(def.driver));
                        }
                        if let Some(o) = &def.driver_opts {
                            if !o.is_empty() {
                                dc.insert("Options".into(), json!(o.iter().collect::<BTreeMap<_, _>>()));
                            }
                        }
                        opts.insert("DriverConfig".into(), Value::Object(dc));
                    }
                }
                m.insert("VolumeOptions".into(), Value::Object(opts));
            }
            "volume" => {
                if v.volume_nocopy == Some(true) {
                    m.insert("VolumeOptions".into(), json!({ "NoCopy": true }));
                }
            }
            "bind" => {
                if v.source.is_empty() {
                    return Err(ConvertError(
                        "invalid mount config for type \"bind\": field Source must not be empty".into(),
                    ));
                }
                let source = if let Some(rest) = v.source.strip_prefix('~') {
                    format!("{home}{rest}")
                } else if v.source.starts_with('/') {
                    v.source.clone()
                } else {
                    clean_path(&working_dir.join(&v.source))
                };
                m.insert("Source".into(), json!(source));
                if let Some(p) = &v.bind_propagation {
                    let mut b = Map::new();
                    if !p.is_empty() {
                        b.insert("Propagation".into(), json!(p));
                    }
                    m.insert("BindOptions".into(), Value::Object(b));
                }
            }
            "tmpfs" => {
                if !v.source.is_empty() {
                    return Err(ConvertError("invalid tmpfs source, source must be empty".into()));
                }
                if let Some(size) = v.tmpfs_size {
                    let mut t = Map::new();
                    if size != 0 {
                        t.insert("SizeBytes".into(), json!(size));
                    }
                    m.insert("TmpfsOptions".into(), Value::Object(t));
                }
            }
            _ => {
                if !v.source.is_empty() {
                    m.insert("Source".into(), json!(v.source));
                }
            }
        }
        out.push(Value::Object(m));
    }
    Ok(out)
}

/// Lexically cleans an absolute path (`a/./b/../c` → `a/c`), like Go's `filepath.Clean`.
fn clean_path(p: &std::path::Path) -> String {
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
    format!("/{}", parts.join("/"))
}

fn file_refs(
    service: &str,
    refs: &[FileRef],
    defs: &indexmap::IndexMap<String, FileObjectDef>,
    ns: &str,
    kind: &str,
) -> Result<Vec<Value>, ConvertError> {
    let mut out: Vec<(String, Value)> = Vec::new();
    let mut targets = std::collections::HashSet::new();
    for r in refs {
        let def = defs
            .get(&r.source)
            .ok_or_else(|| ConvertError(format!("service {service}: undefined {kind} \"{}\"", r.source)))?;
        let name = if !def.name.is_empty() {
            def.name.clone()
        } else if def.external {
            r.source.clone()
        } else {
            scope(ns, &r.source)
        };
        let target = if r.target.is_empty() { r.source.clone() } else { r.target.clone() };
        if !targets.insert(target.clone()) {
            return Err(ConvertError(format!("service {service}: duplicate {kind} target for {name} not allowed")));
        }
        let file = json!({
            "Name": target,
            "UID": if r.uid.is_empty() { "0".to_string() } else { r.uid.clone() },
            "GID": if r.gid.is_empty() { "0".to_string() } else { r.gid.clone() },
            "Mode": r.mode.unwrap_or(0o444),
        });
        let key = if kind == "secret" { "SecretName" } else { "ConfigName" };
        let id = if kind == "secret" { "SecretID" } else { "ConfigID" };
        out.push((name.clone(), json!({ "File": file, key: name, id: "" })));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out.into_iter().map(|(_, v)| v).collect())
}

/// Which networks the stack's services use (`default` for services without `networks:`).
pub fn used_networks(c: &Config) -> Vec<String> {
    let mut used: Vec<String> = Vec::new();
    for s in &c.services {
        match &s.networks {
            None => used.push("default".into()),
            Some(n) if n.is_empty() => used.push("default".into()),
            Some(n) => used.extend(n.keys().cloned()),
        }
    }
    used.sort();
    used.dedup();
    used
}

fn service_networks(s: &Service, c: &Config, ns: &str) -> Result<Vec<Value>, ConvertError> {
    let default_only: indexmap::IndexMap<String, Option<NetworkAttachment>> =
        [("default".to_string(), None)].into_iter().collect();
    let nets = match &s.networks {
        Some(n) if !n.is_empty() => n,
        _ => &default_only,
    };
    let mut out: Vec<(String, Value)> = Vec::new();
    for (key, att) in nets {
        let def = c.networks.get(key);
        if def.is_none() && key != "default" {
            return Err(ConvertError(format!("service {}: undefined network \"{key}\"", s.name)));
        }
        let target = match def {
            Some(d) if !d.name.is_empty() => d.name.clone(),
            Some(d) if d.external => key.clone(),
            _ => scope(ns, key),
        };
        let mut aliases: Vec<String> = att.as_ref().map(|a| a.aliases.clone()).unwrap_or_default();
        if is_user_defined_network(&target) {
            aliases.push(s.name.clone());
        }
        let mut m = Map::new();
        m.insert("Target".into(), json!(target));
        if !aliases.is_empty() {
            m.insert("Aliases".into(), json!(aliases));
        }
        if let Some(a) = att {
            if !a.driver_opts.is_empty() {
                m.insert("DriverOpts".into(), json!(a.driver_opts.iter().collect::<BTreeMap<_, _>>()));
            }
        }
        out.push((target, Value::Object(m)));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out.into_iter().map(|(_, v)| v).collect())
}

fn convert_service(
    s: &Service,
    c: &Config,
    ns: &str,
    working_dir: &std::path::Path,
    home: &str,
) -> Result<ServicePlan, ConvertError> {
    if s.image.is_empty() {
        return Err(ConvertError(format!("invalid image reference for service {}: no image specified", s.name)));
    }
    let image = normalize_image(&s.image)
        .map_err(|e| ConvertError(format!("invalid image reference for service {}: {e}", s.name)))?;
    let mut cs = Map::new();
    cs.insert("Image".into(), json!(image));
    cs.insert("Labels".into(), labels_with_ns(&s.labels, ns));
    if let Some(e) = s.entrypoint.as_ref().filter(|e| !e.is_empty()) {
        cs.insert("Command".into(), json!(e));
    }
    if let Some(a) = s.command.as_ref().filter(|a| !a.is_empty()) {
        cs.insert("Args".into(), json!(a));
    }
    if !s.hostname.is_empty() {
        cs.insert("Hostname".into(), json!(s.hostname));
    }
    let mut env: Vec<String> = s
        .environment
        .iter()
        .map(|(k, v)| match v {
            Some(v) => format!("{k}={v}"),
            None => k.clone(),
        })
        .collect();
    env.sort();
    if !env.is_empty() {
        cs.insert("Env".into(), json!(env));
    }
    if !s.working_dir.is_empty() {
        cs.insert("Dir".into(), json!(s.working_dir));
    }
    if !s.user.is_empty() {
        cs.insert("User".into(), json!(s.user));
    }
    let mut privileges = Map::new();
    let mut credential_config_ref: Option<FileRef> = None;
    if let Some(cr) = &s.credential_spec {
        let set: Vec<&str> = [("Config", &cr.config), ("File", &cr.file), ("Registry", &cr.registry)]
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, _)| *k)
            .collect();
        match set.as_slice() {
            [a, b] => {
                return Err(ConvertError(format!("invalid credential spec: cannot specify both \"{a}\" and \"{b}\"")))
            }
            [_, _, _] => {
                return Err(ConvertError(
                    "invalid credential spec: cannot specify both \"Config\", \"File\", and \"Registry\"".into(),
                ))
            }
            _ => {}
        }
        let mut m = Map::new();
        if !cr.config.is_empty() {
            m.insert("Config".into(), json!(cr.config));
            credential_config_ref = Some(FileRef { source: cr.config.clone(), ..FileRef::default() });
        }
        if !cr.file.is_empty() {
            m.insert("File".into(), json!(cr.file));
        }
        if !cr.registry.is_empty() {
            m.insert("Registry".into(), json!(cr.registry));
        }
        privileges.insert("CredentialSpec".into(), Value::Object(m));
    }
    cs.insert("Privileges".into(), Value::Object(privileges));
    if let Some(i) = s.init {
        cs.insert("Init".into(), json!(i));
    }
    if s.tty {
        cs.insert("TTY".into(), json!(true));
    }
    if s.stdin_open {
        cs.insert("OpenStdin".into(), json!(true));
    }
    if s.read_only {
        cs.insert("ReadOnly".into(), json!(true));
    }
    let m = mounts(s, c, ns, working_dir, home)?;
    if !m.is_empty() {
        cs.insert("Mounts".into(), json!(m));
    }
    if !s.stop_signal.is_empty() {
        cs.insert("StopSignal".into(), json!(s.stop_signal));
    }
    if let Some(g) = s.stop_grace_period {
        cs.insert("StopGracePeriod".into(), json!(g));
    }
    if let Some(h) = &s.healthcheck {
        let mut hc = Map::new();
        if h.disable {
            if !h.test.is_empty() {
                return Err(ConvertError(format!(
                    "test and disable can't be set at the same time (service {})",
                    s.name
                )));
            }
            hc.insert("Test".into(), json!(["NONE"]));
        } else if !h.test.is_empty() {
            hc.insert("Test".into(), json!(h.test));
        }
        for (key, v) in [
            ("Interval", h.interval),
            ("Timeout", h.timeout),
            ("StartPeriod", h.start_period),
            ("StartInterval", h.start_interval),
        ] {
            if let Some(v) = v {
                hc.insert(key.into(), json!(v));
            }
        }
        if let Some(r) = h.retries {
            hc.insert("Retries".into(), json!(r));
        }
        cs.insert("Healthcheck".into(), Value::Object(hc));
    }
    if !s.extra_hosts.is_empty() {
        cs.insert("Hosts".into(), json!(s.extra_hosts.iter().map(|h| convert_extra_host(h)).collect::<Vec<_>>()));
    }
    if !s.dns.is_empty() || !s.dns_search.is_empty() {
        let mut d = Map::new();
        if !s.dns.is_empty() {
            d.insert("Nameservers".into(), json!(s.dns));
        }
        if !s.dns_search.is_empty() {
            d.insert("Search".into(), json!(s.dns_search));
        }
        cs.insert("DNSConfig".into(), Value::Object(d));
    }
    let secrets = file_refs(&s.name, &s.secrets, &c.secrets, ns, "secret")?;
    if !secrets.is_empty() {
        cs.insert("Secrets".into(), json!(secrets));
    }
    let mut config_refs = s.configs.clone();
    if let Some(r) = credential_config_ref {
        config_refs.push(r);
    }
    let configs = file_refs(&s.name, &config_refs, &c.configs, ns, "config")?;
    if !configs.is_empty() {
        cs.insert("Configs".into(), json!(configs));
    }
    if !s.isolation.is_empty() {
        cs.insert("Isolation".into(), json!(s.isolation));
    }
    if !s.sysctls.is_empty() {
        cs.insert("Sysctls".into(), json!(s.sysctls.iter().collect::<BTreeMap<_, _>>()));
    }
    let (add, drop) = capabilities(&s.cap_add, &s.cap_drop);
    if !add.is_empty() {
        cs.insert("CapabilityAdd".into(), json!(add));
    }
    if !drop.is_empty() {
        cs.insert("CapabilityDrop".into(), json!(drop));
    }
    if !s.ulimits.is_empty() {
        let mut names: Vec<&String> = s.ulimits.keys().collect();
        names.sort();
        let u: Vec<Value> = names
            .into_iter()
            .map(|n| {
                let l = &s.ulimits[n];
                let (soft, hard) = if l.single != 0 { (l.single, l.single) } else { (l.soft, l.hard) };
                json!({ "Name": n, "Soft": soft, "Hard": hard })
            })
            .collect();
        cs.insert("Ulimits".into(), json!(u));
    }
    // `oom_score_adj` is accepted by the 3.13 schema but never reaches the spec in the Docker CLI
    // (its loader drops the field); `docker stack deploy` is the reference, so it is dropped here too.

    let mut task = Map::new();
    task.insert("ContainerSpec".into(), Value::Object(cs));
    let mut resources = Map::new();
    if let Some(l) = &s.deploy.resources.limits {
        resources.insert("Limits".into(), resource_object(l, true));
    }
    if let Some(r) = &s.deploy.resources.reservations {
        resources.insert("Reservations".into(), resource_object(r, false));
    }
    task.insert("Resources".into(), Value::Object(resources));
    if let Some(r) = restart_policy(s)? {
        task.insert("RestartPolicy".into(), r);
    }
    let mut placement = Map::new();
    if !s.deploy.placement.constraints.is_empty() {
        placement.insert("Constraints".into(), json!(s.deploy.placement.constraints));
    }
    if !s.deploy.placement.preferences.is_empty() {
        let p: Vec<Value> =
            s.deploy.placement.preferences.iter().map(|p| json!({ "Spread": { "SpreadDescriptor": p } })).collect();
        placement.insert("Preferences".into(), json!(p));
    }
    if s.deploy.placement.max_replicas != 0 {
        placement.insert("MaxReplicas".into(), json!(s.deploy.placement.max_replicas));
    }
    task.insert("Placement".into(), Value::Object(placement));
    task.insert("Networks".into(), json!(service_networks(s, c, ns)?));
    if let Some(l) = &s.logging {
        let mut ld = Map::new();
        if !l.driver.is_empty() {
            ld.insert("Name".into(), json!(l.driver));
        }
        if !l.options.is_empty() {
            ld.insert("Options".into(), json!(l.options.iter().collect::<BTreeMap<_, _>>()));
        }
        task.insert("LogDriver".into(), Value::Object(ld));
    }

    let mut spec = Map::new();
    spec.insert("Name".into(), json!(scope(ns, &s.name)));
    let mut labels: BTreeMap<String, String> = s.deploy.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    labels.insert(NAMESPACE_LABEL.into(), ns.into());
    labels.insert(IMAGE_LABEL.into(), s.image.clone());
    spec.insert("Labels".into(), json!(labels));
    spec.insert("TaskTemplate".into(), Value::Object(task));
    let mode = match s.deploy.mode.as_str() {
        "global" => {
            if s.deploy.replicas.is_some() {
                return Err(ConvertError("replicas can only be used with replicated or replicated-job mode".into()));
            }
            json!({ "Global": {} })
        }
        "" | "replicated" => match s.deploy.replicas {
            Some(r) => json!({ "Replicated": { "Replicas": r } }),
            None => json!({ "Replicated": {} }),
        },
        "replicated-job" => {
            let r = s.deploy.replicas.unwrap_or(1);
            json!({ "ReplicatedJob": { "MaxConcurrent": r, "TotalCompletions": r } })
        }
        "global-job" => {
            if s.deploy.replicas.is_some() {
                return Err(ConvertError("replicas can only be used with replicated or replicated-job mode".into()));
            }
            json!({ "GlobalJob": {} })
        }
        other => return Err(ConvertError(format!("Unknown mode: {other}"))),
    };
    spec.insert("Mode".into(), mode);
    if let Some(u) = update_config(&s.deploy.update_config) {
        spec.insert("UpdateConfig".into(), u);
    }
    if let Some(u) = update_config(&s.deploy.rollback_config) {
        spec.insert("RollbackConfig".into(), u);
    }
    let mut endpoint = Map::new();
    if !s.deploy.endpoint_mode.is_empty() {
        endpoint.insert("Mode".into(), json!(s.deploy.endpoint_mode.to_ascii_lowercase()));
    }
    if !s.ports.is_empty() {
        let mut ports = s.ports.clone();
        ports.sort_by_key(|p| p.published);
        let p: Vec<Value> = ports
            .iter()
            .map(|p| {
                let mut m = Map::new();
                if !p.protocol.is_empty() {
                    m.insert("Protocol".into(), json!(p.protocol));
                }
                m.insert("TargetPort".into(), json!(p.target));
                if p.published != 0 {
                    m.insert("PublishedPort".into(), json!(p.published));
                }
                if !p.mode.is_empty() {
                    m.insert("PublishMode".into(), json!(p.mode));
                }
                Value::Object(m)
            })
            .collect();
        endpoint.insert("Ports".into(), json!(p));
    }
    spec.insert("EndpointSpec".into(), Value::Object(endpoint));
    Ok(ServicePlan { key: s.name.clone(), name: scope(ns, &s.name), image: s.image.clone(), spec: Value::Object(spec) })
}

/// Converts a merged, loaded stack. `read_file` reads secret and config files (absolute paths).
pub fn convert(
    c: &Config,
    ns: &str,
    working_dir: &std::path::Path,
    home: &str,
    read_file: &dyn Fn(&std::path::Path) -> Result<Vec<u8>, String>,
) -> Result<StackPlan, ConvertError> {
    use base64::Engine;
    let b64 = |d: &[u8]| base64::engine::general_purpose::STANDARD.encode(d);
    let mut networks = Vec::new();
    for key in used_networks(c) {
        let def = c.networks.get(&key).cloned().unwrap_or_default();
        if def.external {
            let name = if def.name.is_empty() { key.clone() } else { def.name.clone() };
            networks.push(NetworkPlan { name, external: true, create: None });
            continue;
        }
        let name = if def.name.is_empty() { scope(ns, &key) } else { def.name.clone() };
        let mut req = Map::new();
        req.insert("Name".into(), json!(name));
        req.insert("Labels".into(), labels_with_ns(&def.labels, ns));
        req.insert("Driver".into(), json!(if def.driver.is_empty() { "overlay" } else { def.driver.as_str() }));
        if !def.driver_opts.is_empty() {
            req.insert("Options".into(), json!(def.driver_opts.iter().collect::<BTreeMap<_, _>>()));
        }
        if def.internal {
            req.insert("Internal".into(), json!(true));
        }
        if def.attachable {
            req.insert("Attachable".into(), json!(true));
        }
        if def.ipam_set {
            let mut ipam = Map::new();
            if !def.ipam_driver.is_empty() {
                ipam.insert("Driver".into(), json!(def.ipam_driver));
            }
            if !def.ipam_subnets.is_empty() {
                ipam.insert(
                    "Config".into(),
                    json!(def.ipam_subnets.iter().map(|s| json!({ "Subnet": s })).collect::<Vec<_>>()),
                );
            }
            req.insert("IPAM".into(), Value::Object(ipam));
        }
        req.insert("CheckDuplicate".into(), json!(true));
        networks.push(NetworkPlan { name, external: false, create: Some(Value::Object(req)) });
    }
    let file_objects =
        |defs: &indexmap::IndexMap<String, FileObjectDef>, kind: &str| -> Result<Vec<FileObjectPlan>, ConvertError> {
            let mut out = Vec::new();
            for (key, def) in defs {
                if def.external {
                    continue;
                }
                let name = if def.name.is_empty() { scope(ns, key) } else { def.name.clone() };
                let mut spec = Map::new();
                spec.insert("Name".into(), json!(name));
                spec.insert("Labels".into(), labels_with_ns(&def.labels, ns));
                if !def.driver.is_empty() {
                    let mut d = Map::new();
                    d.insert("Name".into(), json!(def.driver));
                    if !def.driver_opts.is_empty() {
                        d.insert("Options".into(), json!(def.driver_opts.iter().collect::<BTreeMap<_, _>>()));
                    }
                    spec.insert("Driver".into(), Value::Object(d));
                } else {
                    let file = def.file.as_ref().ok_or_else(|| ConvertError(format!("{kind} {key}: no file given")))?;
                    let data = read_file(file)
                        .map_err(|e| ConvertError(format!("{kind} {key}: cannot read {}: {e}", file.display())))?;
                    spec.insert("Data".into(), json!(b64(&data)));
                }
                if !def.template_driver.is_empty() {
                    spec.insert("Templating".into(), json!({ "Name": def.template_driver }));
                }
                out.push(FileObjectPlan { name, spec: Value::Object(spec) });
            }
            Ok(out)
        };
    let secrets = file_objects(&c.secrets, "secret")?;
    let configs = file_objects(&c.configs, "config")?;
    let mut services = Vec::new();
    for s in &c.services {
        services.push(convert_service(s, c, ns, working_dir, home)?);
    }
    Ok(StackPlan {
        namespace: ns.to_string(),
        networks,
        secrets,
        configs,
        services,
        warnings: Vec::new(),
        ignored: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_are_normalized_like_the_docker_client() {
        assert_eq!(normalize_image("nginx").unwrap(), "nginx:latest");
        assert_eq!(normalize_image("docker.io/library/alpine").unwrap(), "alpine:latest");
        assert_eq!(
            normalize_image("bonfirenetworks/bonfire:1.0.6-social-amd64").unwrap(),
            "bonfirenetworks/bonfire:1.0.6-social-amd64"
        );
        assert_eq!(normalize_image("ghcr.io/baosystems/postgis:17-3.5").unwrap(), "ghcr.io/baosystems/postgis:17-3.5");
        assert_eq!(normalize_image("localhost:5000/x").unwrap(), "localhost:5000/x:latest");
        assert_eq!(normalize_image("docker.io/traefik:v2.4.8").unwrap(), "traefik:v2.4.8");
        let d = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
        assert_eq!(normalize_image(&format!("redis@{d}")).unwrap(), format!("redis@{d}"));
        assert!(normalize_image("Upper/Case").unwrap_err().0.contains("lowercase"));
        assert!(normalize_image("bad image").is_err());
    }

    #[test]
    fn capabilities_and_hosts() {
        let (add, drop) = capabilities(&["sys_time".into(), "NET_ADMIN".into()], &["NET_ADMIN".into(), "chown".into()]);
        assert_eq!(add, ["CAP_NET_ADMIN", "CAP_SYS_TIME"]);
        assert_eq!(drop, ["CAP_CHOWN"]);
        assert_eq!(capabilities(&["ALL".into(), "X".into()], &[]).0, ["ALL"]);
        assert_eq!(convert_extra_host("somehost:162.242.195.82"), "162.242.195.82 somehost");
        assert_eq!(convert_extra_host("h=[::1]"), "::1 h");
    }
}

#[cfg(test)]
mod engine_model_tests {
    use super::super::compose::*;
    use super::super::deploy::typed;
    use super::*;

    fn lower_keys(v: &Value) -> Value {
        match v {
            Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.to_ascii_lowercase(), lower_keys(v))).collect()),
            Value::Array(a) => Value::Array(a.iter().map(lower_keys).collect()),
            other => other.clone(),
        }
    }

    /// Every field Potluck renders survives bollard's typed model (nothing is silently dropped
    /// on the way to the Engine).
    #[test]
    fn rendered_specs_survive_the_engine_api_model() {
        let yaml = r#"
services:
  app:
    image: nginx
    command: ["a", "b"]
    entrypoint: /entry.sh
    environment: {A: "1", B: null}
    labels: {l: v}
    hostname: h
    extra_hosts: ["h:1.2.3.4"]
    dns: [8.8.8.8]
    dns_search: [example.org]
    working_dir: /w
    user: "1000"
    stop_grace_period: 1m30s
    stop_signal: SIGINT
    tty: true
    stdin_open: true
    read_only: true
    init: true
    sysctls: {net.core.somaxconn: 1024}
    cap_add: [NET_ADMIN]
    cap_drop: [CHOWN]
    ulimits: {nofile: {soft: 10, hard: 20}}
    healthcheck: {test: ["CMD", "true"], interval: 10s, timeout: 5s, retries: 3, start_period: 1s}
    logging: {driver: json-file, options: {max-size: 10m}}
    volumes: ["data:/data:ro", "/host:/host", {type: tmpfs, target: /t, tmpfs: {size: 1000}}]
    secrets: [{source: s, target: t, mode: 0400}]
    configs: [c]
    networks: {n: {aliases: [x]}}
    ports: ["8080:80/udp", {target: 81, published: 8081, mode: host}]
    deploy:
      mode: replicated
      replicas: 2
      endpoint_mode: dnsrr
      labels: {a: b}
      update_config: {parallelism: 2, delay: 1s, failure_action: rollback, monitor: 2s, max_failure_ratio: 0.5, order: start-first}
      rollback_config: {parallelism: 0, order: stop-first}
      resources:
        limits: {cpus: "0.5", memory: 64M, pids: 100}
        reservations: {cpus: "0.1", memory: 32M, generic_resources: [{discrete_resource_spec: {kind: gpu, value: 1}}]}
      restart_policy: {condition: on-failure, delay: 5s, max_attempts: 3, window: 1m}
      placement: {constraints: [node.role==manager], preferences: [{spread: node.id}], max_replicas_per_node: 1}
networks:
  n: {driver: overlay, attachable: true, labels: {x: y}, ipam: {config: [{subnet: 172.28.0.0/24}]}}
volumes:
  data: {driver_opts: {type: tmpfs}}
secrets:
  s: {file: ./s.txt}
configs:
  c: {file: ./c.txt, template_driver: golang}
"#;
        let super::super::yaml::Node::Map(mut root) = super::super::yaml::parse(yaml).unwrap() else { panic!() };
        super::super::schema::validate("3.13", &root).unwrap();
        super::super::interpolate::interpolate(&mut root, &|_| None).unwrap();
        let c = load_file(&root, std::path::Path::new("/r"), &|_| Ok(String::new()), &|_| None).unwrap();
        let plan = convert(&c, "st", std::path::Path::new("/r"), "/root", &|_| Ok(b"data".to_vec())).unwrap();
        for s in &plan.services {
            let model: bollard::models::ServiceSpec = typed(s.spec.clone(), "service").unwrap();
            let back = serde_json::to_value(&model).unwrap();
            assert_eq!(lower_keys(&back), lower_keys(&s.spec), "service {}", s.name);
        }
        for n in plan.networks.iter().filter_map(|n| n.create.clone()) {
            let model: bollard::models::NetworkCreateRequest = typed(n.clone(), "network").unwrap();
            let mut expected = n.clone();
            expected.as_object_mut().unwrap().remove("CheckDuplicate");
            assert_eq!(lower_keys(&serde_json::to_value(&model).unwrap()), lower_keys(&expected));
        }
        for c in &plan.configs {
            let model: bollard::models::ConfigSpec = typed(c.spec.clone(), "config").unwrap();
            assert_eq!(lower_keys(&serde_json::to_value(&model).unwrap()), lower_keys(&c.spec));
        }
    }
}
