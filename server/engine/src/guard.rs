//! Deploy guardrails: what a stack asks of the host it runs on, checked against the server's
//! policy before anything is deployed. A recipe is untrusted input; on a server that several
//! collectives share (or that runs next to Potluck), a bind mount of `/` or of the Docker
//! socket is a way out of the collective's tenancy. Each finding names the service and field.

use super::convert::StackPlan;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeSet;
use std::fmt;

/// One kind of host access a server's policy may allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Guard {
    /// Bind mounts of host paths (also local volumes whose driver options bind a device).
    BindMounts,
    /// The Docker socket, which is root on the host.
    DockerSocket,
    /// `privileged: true` (swarm ignores it; a recipe asking for it is refused all the same).
    Privileged,
    /// `cap_add`.
    Capabilities,
    /// The host's network (and `pid`/`ipc`/`network_mode`/`userns_mode`, which swarm ignores).
    HostNamespaces,
    /// `devices` (ignored by swarm).
    Devices,
    /// Secrets, configs and volumes named outside the app's own stack (another app's).
    ForeignObjects,
}

impl Guard {
    pub const ALL: [Guard; 7] = [
        Guard::BindMounts,
        Guard::DockerSocket,
        Guard::Privileged,
        Guard::Capabilities,
        Guard::HostNamespaces,
        Guard::Devices,
        Guard::ForeignObjects,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Guard::BindMounts => "bind_mounts",
            Guard::DockerSocket => "docker_socket",
            Guard::Privileged => "privileged",
            Guard::Capabilities => "capabilities",
            Guard::HostNamespaces => "host_namespaces",
            Guard::Devices => "devices",
            Guard::ForeignObjects => "foreign_objects",
        }
    }

    pub fn parse(s: &str) -> Option<Guard> {
        Guard::ALL.into_iter().find(|g| g.as_str() == s.trim())
    }
}

impl fmt::Display for Guard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a server allows; everything else is refused (the default allows nothing).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    pub allow: BTreeSet<Guard>,
}

impl Policy {
    pub fn parse_list(list: &[String]) -> Result<Policy, String> {
        let mut allow = BTreeSet::new();
        for item in list {
            match Guard::parse(item) {
                Some(g) => {
                    allow.insert(g);
                }
                None => {
                    let known: Vec<&str> = Guard::ALL.iter().map(|g| g.as_str()).collect();
                    return Err(format!("{item:?} is not a guard: use {}", known.join(", ")));
                }
            }
        }
        Ok(Policy { allow })
    }

    pub fn from_json(text: &str) -> Policy {
        serde_json::from_str(text).unwrap_or_default()
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }
}

/// One thing a stack asks that the policy does not allow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub guard: Guard,
    pub service: String,
    pub field: String,
    pub detail: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "service {} asks for {} ({}: {}), which this server does not allow",
            self.service,
            describe(self.guard),
            self.field,
            self.detail
        )
    }
}

fn describe(g: Guard) -> &'static str {
    match g {
        Guard::BindMounts => "a host path",
        Guard::DockerSocket => "the Docker socket",
        Guard::Privileged => "privileged mode",
        Guard::Capabilities => "extra capabilities",
        Guard::HostNamespaces => "the host's namespaces",
        Guard::Devices => "host devices",
        Guard::ForeignObjects => "an object of another stack",
    }
}

/// Whether a host path is the Docker socket or a directory that holds it.
fn exposes_docker_socket(path: &str) -> bool {
    let p = path.trim_end_matches('/');
    let p = if p.is_empty() { "/" } else { p };
    p.ends_with("docker.sock") || ["/", "/var", "/var/run", "/run", "/var/run/docker", "/run/docker"].contains(&p)
}

/// Everything in `plan` that `policy` refuses. `stack` is the app's stack name: objects it may
/// reference are named `<stack>_…`.
pub fn check(plan: &StackPlan, policy: &Policy) -> Vec<Finding> {
    let mut out = Vec::new();
    let stack_prefix = format!("{}_", plan.namespace);
    let mut push = |guard: Guard, service: &str, field: String, detail: String| {
        if !policy.allow.contains(&guard) {
            out.push(Finding { guard, service: service.to_string(), field, detail });
        }
    };
    for s in &plan.services {
        let spec = &s.spec;
        let service = s.key.as_str();
        let mounts = spec.pointer("/TaskTemplate/ContainerSpec/Mounts").and_then(Value::as_array);
        for (i, m) in mounts.into_iter().flatten().enumerate() {
            let source = m["Source"].as_str().unwrap_or_default();
            let target = m["Target"].as_str().unwrap_or_default();
            let field = format!("volumes[{i}]");
            match m["Type"].as_str().unwrap_or_default() {
                "bind" => {
                    push(Guard::BindMounts, service, field.clone(), format!("{source}:{target}"));
                    if exposes_docker_socket(source) {
                        push(Guard::DockerSocket, service, field, format!("{source}:{target}"));
                    }
                }
                "volume" => {
                    let options = m.pointer("/VolumeOptions/DriverConfig/Options").and_then(Value::as_object);
                    let binds = options.is_some_and(|o| {
                        o.contains_key("device")
                            || o.get("o")
                                .and_then(Value::as_str)
                                .is_some_and(|v| v.split(',').any(|x| x.trim() == "bind"))
                    });
                    if binds {
                        let device = options.and_then(|o| o.get("device")).and_then(Value::as_str).unwrap_or("");
                        push(
                            Guard::BindMounts,
                            service,
                            format!("{field}.driver_opts"),
                            format!("volume {source} binds {}", if device.is_empty() { "a host path" } else { device }),
                        );
                    }
                    if !source.is_empty() && !source.starts_with(&stack_prefix) {
                        push(Guard::ForeignObjects, service, field, format!("volume {source}"));
                    }
                }
                _ => {}
            }
        }
        if let Some(caps) = spec.pointer("/TaskTemplate/ContainerSpec/CapabilityAdd").and_then(Value::as_array) {
            let names: Vec<&str> = caps.iter().filter_map(Value::as_str).collect();
            if !names.is_empty() {
                push(Guard::Capabilities, service, "cap_add".into(), names.join(", "));
            }
        }
        for n in spec.pointer("/TaskTemplate/Networks").and_then(Value::as_array).into_iter().flatten() {
            if n["Target"].as_str() == Some("host") {
                push(Guard::HostNamespaces, service, "networks".into(), "host".into());
            }
        }
        for (kind, pointer, name_key) in [
            ("secret", "/TaskTemplate/ContainerSpec/Secrets", "SecretName"),
            ("config", "/TaskTemplate/ContainerSpec/Configs", "ConfigName"),
        ] {
            for r in spec.pointer(pointer).and_then(Value::as_array).into_iter().flatten() {
                let name = r[name_key].as_str().unwrap_or_default();
                if !name.starts_with(&stack_prefix) {
                    push(Guard::ForeignObjects, service, format!("{kind}s"), format!("{kind} {name}"));
                }
            }
        }
    }
    for (service, key) in &plan.ignored {
        let guard = match key.as_str() {
            "privileged" => Guard::Privileged,
            "devices" => Guard::Devices,
            "pid" | "ipc" | "network_mode" | "userns_mode" | "cgroupns_mode" => Guard::HostNamespaces,
            "security_opt" => Guard::Privileged,
            _ => continue,
        };
        push(guard, service, key.clone(), "ignored by swarm, refused all the same".into());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::ServicePlan;
    use serde_json::json;

    fn plan(spec: Value) -> StackPlan {
        StackPlan {
            namespace: "app_example_org".into(),
            networks: Vec::new(),
            secrets: Vec::new(),
            configs: Vec::new(),
            services: vec![ServicePlan {
                key: "web".into(),
                name: "app_example_org_web".into(),
                image: "x".into(),
                spec,
            }],
            warnings: Vec::new(),
            ignored: Vec::new(),
        }
    }

    #[test]
    fn host_access_is_refused_by_default_and_named() {
        let p = plan(json!({ "TaskTemplate": { "ContainerSpec": {
            "Mounts": [
                { "Type": "bind", "Source": "/", "Target": "/host" },
                { "Type": "bind", "Source": "/var/run/docker.sock", "Target": "/var/run/docker.sock" },
                { "Type": "volume", "Source": "app_example_org_data", "Target": "/data" },
                { "Type": "volume", "Source": "app_example_org_raw", "Target": "/raw",
                  "VolumeOptions": { "DriverConfig": { "Options": { "type": "none", "o": "bind", "device": "/etc" } } } },
                { "Type": "volume", "Source": "other_example_org_data", "Target": "/stolen" }
            ],
            "CapabilityAdd": ["CAP_SYS_ADMIN"],
            "Secrets": [{ "SecretName": "app_example_org_db_v1" }, { "SecretName": "other_example_org_db_v1" }]
        }, "Networks": [{ "Target": "host" }] } }));
        let findings = check(&p, &Policy::default());
        let kinds: Vec<Guard> = findings.iter().map(|f| f.guard).collect();
        assert_eq!(
            kinds,
            vec![
                Guard::BindMounts,
                Guard::DockerSocket,
                Guard::BindMounts,
                Guard::DockerSocket,
                Guard::BindMounts,
                Guard::ForeignObjects,
                Guard::Capabilities,
                Guard::HostNamespaces,
                Guard::ForeignObjects
            ]
        );
        assert!(findings[0].to_string().contains("service web"), "{}", findings[0]);
        assert!(findings[0].to_string().contains("/:/host"), "{}", findings[0]);
        assert!(findings[4].detail.contains("/etc"));
        // A server whose admin allows everything: no findings.
        let all = Policy { allow: Guard::ALL.into_iter().collect() };
        assert!(check(&p, &all).is_empty());
        // Allowing bind mounts does not allow the Docker socket, nor `/`, which holds it.
        let binds = Policy::parse_list(&["bind_mounts".into()]).unwrap();
        let socket: Vec<String> =
            check(&p, &binds).iter().filter(|f| f.guard == Guard::DockerSocket).map(|f| f.detail.clone()).collect();
        assert_eq!(socket, vec!["/:/host", "/var/run/docker.sock:/var/run/docker.sock"]);
        assert!(!check(&p, &binds).iter().any(|f| f.guard == Guard::BindMounts));
    }

    #[test]
    fn ignored_options_count_too() {
        let mut p = plan(json!({}));
        p.ignored =
            vec![("web".into(), "privileged".into()), ("web".into(), "pid".into()), ("web".into(), "build".into())];
        let kinds: Vec<Guard> = check(&p, &Policy::default()).iter().map(|f| f.guard).collect();
        assert_eq!(kinds, vec![Guard::Privileged, Guard::HostNamespaces]);
    }

    #[test]
    fn policies_parse() {
        assert!(Policy::parse_list(&["root".into()]).is_err());
        let p = Policy::parse_list(&["devices".into(), " capabilities".into()]).unwrap();
        assert_eq!(Policy::from_json(&p.to_json()), p);
        assert_eq!(Policy::from_json("not json"), Policy::default());
    }
}
