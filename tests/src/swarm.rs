//! The real swarm for the suites: the Docker CLI as the reference (`docker stack deploy`),
//! normalized dumps of a stack's objects read from the raw Engine API, and a field-level diff.
//!
//! A dump holds each service's stored `Spec` (not `docker service inspect`, which inserts
//! defaults), with network, secret and config IDs replaced by names and the lists whose order the
//! Engine does not care about sorted; networks without their allocated details; secret and config
//! specs. Two tools that produce the same dump produced the same stack.

use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

pub const SOCKET: &str = "/var/run/docker.sock";

/// The Docker CLI used as the reference: the newest one on the machine.
pub fn docker_cli() -> PathBuf {
    for p in ["/usr/local/bin/docker", "/usr/bin/docker"] {
        if Path::new(p).exists() {
            return PathBuf::from(p);
        }
    }
    panic!("no docker CLI found: run the suites through `make test` (scripts/setup.sh installs docker.io)")
}

/// `../shared` (the federation's shared checkout); the suites that read it fail without it.
pub fn shared_dir() -> PathBuf {
    let dir = PathBuf::from(crate::required_env("POTLUCK_TEST_SHARED"));
    assert!(dir.join("recipes").is_dir(), "{} has no recipes/: the conformance suite needs ../shared", dir.display());
    dir
}

/// GET on the Engine API over the Unix socket, raw JSON (nothing dropped or defaulted).
pub fn api_get(path: &str) -> Value {
    let out = Command::new("curl")
        .args(["-sS", "--fail", "--unix-socket", SOCKET, &format!("http://localhost{path}")])
        .output()
        .unwrap();
    assert!(out.status.success(), "GET {path}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn label_filter(ns: &str) -> String {
    let f = json!({ "label": [format!("com.docker.stack.namespace={ns}")] }).to_string();
    url::form_urlencoded::byte_serialize(f.as_bytes()).collect()
}

fn sort_by(list: &mut Value, key: impl Fn(&Value) -> String) {
    if let Some(items) = list.as_array_mut() {
        items.sort_by_key(|a| key(a));
    }
}

fn sort_scalars(list: &mut Value) {
    if let Some(items) = list.as_array_mut() {
        items.sort_by_key(|v| v.to_string());
    }
}

fn text(v: &Value, path: &str) -> String {
    v.pointer(path).map(|x| x.to_string()).unwrap_or_default()
}

fn in_default_pool(subnet: &str) -> bool {
    // The swarm's default address pool, 10.0.0.0/8 in /24 networks.
    subnet.starts_with("10.") && subnet.ends_with("/24")
}

/// The normalized dump of stack `ns`.
pub fn dump(ns: &str) -> Value {
    let filter = label_filter(ns);
    let networks_all = api_get("/networks");
    let secrets_all = api_get("/secrets");
    let configs_all = api_get("/configs");
    let name_of = |list: &Value, id: &str, spec: bool| -> String {
        list.as_array()
            .and_then(|items| items.iter().find(|i| i["ID"] == id || i["Id"] == id))
            .and_then(|i| if spec { i["Spec"]["Name"].as_str() } else { i["Name"].as_str() })
            .map(String::from)
            .unwrap_or_else(|| format!("<unknown-id:{id}>"))
    };
    let mut services = Map::new();
    for s in api_get(&format!("/services?filters={filter}")).as_array().cloned().unwrap_or_default() {
        let mut spec = s["Spec"].clone();
        let name = spec["Name"].as_str().unwrap_or_default().to_string();
        if let Some(nets) = spec.pointer_mut("/TaskTemplate/Networks").and_then(Value::as_array_mut) {
            for n in nets.iter_mut() {
                let id = n["Target"].as_str().unwrap_or_default().to_string();
                n["Target"] = json!(name_of(&networks_all, &id, false));
                if let Some(a) = n.get_mut("Aliases") {
                    sort_scalars(a);
                }
            }
        }
        if let Some(cs) = spec.pointer_mut("/TaskTemplate/ContainerSpec") {
            if let Some(list) = cs.get_mut("Secrets").and_then(Value::as_array_mut) {
                for r in list.iter_mut() {
                    let id = r["SecretID"].as_str().unwrap_or_default().to_string();
                    r["SecretID"] = json!(name_of(&secrets_all, &id, true));
                }
            }
            if let Some(list) = cs.get_mut("Configs").and_then(Value::as_array_mut) {
                for r in list.iter_mut() {
                    let id = r["ConfigID"].as_str().unwrap_or_default().to_string();
                    r["ConfigID"] = json!(name_of(&configs_all, &id, true));
                }
            }
            if let Some(l) = cs.get_mut("Secrets") {
                sort_by(l, |r| format!("{}@{}", text(r, "/SecretName"), text(r, "/File/Name")));
            }
            if let Some(l) = cs.get_mut("Configs") {
                sort_by(l, |r| format!("{}@{}", text(r, "/ConfigName"), text(r, "/File/Name")));
            }
            if let Some(l) = cs.get_mut("Mounts") {
                sort_by(l, |m| text(m, "/Target"));
            }
            if let Some(l) = cs.get_mut("Ulimits") {
                sort_by(l, |u| text(u, "/Name"));
            }
            for key in ["CapabilityAdd", "CapabilityDrop", "Groups"] {
                if let Some(l) = cs.get_mut(key) {
                    sort_scalars(l);
                }
            }
        }
        if let Some(l) = spec.pointer_mut("/TaskTemplate/Networks") {
            sort_by(l, |n| text(n, "/Target"));
        }
        for p in ["/TaskTemplate/Placement/Constraints", "/TaskTemplate/Placement/Platforms"] {
            if let Some(l) = spec.pointer_mut(p) {
                sort_scalars(l);
            }
        }
        if let Some(l) = spec.pointer_mut("/EndpointSpec/Ports") {
            sort_by(l, |p| {
                format!(
                    "{:>8}/{:>8}/{}/{}",
                    text(p, "/PublishedPort"),
                    text(p, "/TargetPort"),
                    text(p, "/Protocol"),
                    text(p, "/PublishMode")
                )
            });
        }
        services.insert(name, spec);
    }
    let mut networks = Map::new();
    for n in api_get(&format!("/networks?filters={filter}")).as_array().cloned().unwrap_or_default() {
        let mut options = n["Options"].clone();
        if let Some(o) = options.as_object_mut() {
            o.remove("com.docker.network.driver.overlay.vxlanid_list");
        }
        let mut ipam = n["IPAM"].clone();
        if let Some(configs) = ipam.get_mut("Config").and_then(Value::as_array_mut) {
            for c in configs.iter_mut() {
                let subnet = c["Subnet"].as_str().unwrap_or_default().to_string();
                if in_default_pool(&subnet) {
                    c["Subnet"] = json!("<auto>");
                    if c.get("Gateway").is_some() {
                        c["Gateway"] = json!("<auto>");
                    }
                } else if let Some(gw) = c.get("Gateway").and_then(Value::as_str) {
                    // A gateway at the subnet's first host is the default one.
                    let first =
                        subnet.split('/').next().unwrap_or_default().rsplit_once('.').map(|(p, _)| format!("{p}.1"));
                    if first.as_deref() == Some(gw) {
                        c["Gateway"] = json!("<auto>");
                    }
                }
            }
            sort_by(ipam.get_mut("Config").unwrap_or(&mut Value::Null), |c| c.to_string());
        }
        let name = n["Name"].as_str().unwrap_or_default().to_string();
        let mut kept = Map::new();
        for k in [
            "Name",
            "Driver",
            "Scope",
            "Internal",
            "Attachable",
            "Ingress",
            "EnableIPv6",
            "ConfigOnly",
            "ConfigFrom",
            "Labels",
        ] {
            kept.insert(k.to_string(), n[k].clone());
        }
        kept.insert("Options".into(), options);
        kept.insert("IPAM".into(), ipam);
        networks.insert(name, Value::Object(kept));
    }
    let objects = |all: Value| -> Map<String, Value> {
        all.as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|o| o["Spec"]["Labels"]["com.docker.stack.namespace"] == ns)
            .map(|o| (o["Spec"]["Name"].as_str().unwrap_or_default().to_string(), json!({ "Spec": o["Spec"] })))
            .collect()
    };
    json!({
        "services": services,
        "networks": networks,
        "secrets": objects(secrets_all.clone()),
        "configs": objects(configs_all.clone()),
    })
}

/// Field-level differences between two dumps (`path: a -> b`), empty when equal.
pub fn diff(a: &Value, b: &Value) -> Vec<String> {
    let mut out = Vec::new();
    walk_diff(a, b, String::new(), &mut out);
    out
}

fn walk_diff(a: &Value, b: &Value, path: String, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let p = format!("{path}/{k}");
                match (x.get(k), y.get(k)) {
                    (Some(av), Some(bv)) => walk_diff(av, bv, p, out),
                    (Some(av), None) => out.push(format!("- {p}: {av}")),
                    (None, Some(bv)) => out.push(format!("+ {p}: {bv}")),
                    (None, None) => {}
                }
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (av, bv)) in x.iter().zip(y).enumerate() {
                walk_diff(av, bv, format!("{path}[{i}]"), out);
            }
        }
        _ if a != b => out.push(format!("~ {path}: {a} -> {b}")),
        _ => {}
    }
}

/// The IDs of the stack's tasks, except those of job services (every update of a job service
/// runs the job again, with the CLI as with Potluck).
pub fn task_ids(ns: &str) -> Vec<String> {
    let filter = label_filter(ns);
    let jobs: Vec<String> = api_get(&format!("/services?filters={filter}"))
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter(|s| s["Spec"]["Mode"].get("ReplicatedJob").is_some() || s["Spec"]["Mode"].get("GlobalJob").is_some())
        .filter_map(|s| s["ID"].as_str().map(String::from))
        .collect();
    let mut ids: Vec<String> = api_get(&format!("/tasks?filters={filter}"))
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter(|t| !jobs.iter().any(|j| t["ServiceID"] == j.as_str()))
        .filter_map(|t| t["ID"].as_str().map(String::from))
        .collect();
    ids.sort();
    ids
}

/// Deploys with the real `docker stack deploy`, its environment being the app's (as abra does).
pub fn cli_deploy(
    dir: &Path,
    compose_files: &[String],
    env: &indexmap::IndexMap<String, String>,
    stack: &str,
) -> Result<String, String> {
    let mut cmd = Command::new(docker_cli());
    cmd.env_clear();
    for k in ["PATH", "HOME"] {
        if let Ok(v) = std::env::var(k) {
            cmd.env(k, v);
        }
    }
    // `-H`: the app's env may set DOCKER_HOST for its own services; it only feeds interpolation.
    cmd.envs(env.iter()).args(["-H", &format!("unix://{SOCKET}")]).arg("stack").arg("deploy").args([
        "--resolve-image",
        "never",
        "--detach=true",
    ]);
    for f in compose_files {
        cmd.arg("-c").arg(dir.join(f));
    }
    cmd.arg(stack);
    let out = cmd.output().map_err(|e| e.to_string())?;
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if out.status.success() {
        Ok(text)
    } else {
        Err(text)
    }
}

/// Removes a stack and waits until none of its objects is left.
pub async fn remove_stack(docker: &bollard::Docker, ns: &str) {
    let _ = potluck_server::adapters::engine::deploy::remove(
        docker,
        ns,
        &BTreeMap::new(),
        &Default::default(),
        Some(std::time::Duration::from_secs(60)),
        &|_| {},
    )
    .await;
    for _ in 0..240 {
        let d = dump(ns);
        let empty =
            ["services", "networks", "secrets", "configs"].iter().all(|k| d[k].as_object().is_none_or(Map::is_empty));
        if empty {
            return;
        }
        let _ = potluck_server::adapters::engine::deploy::remove(
            docker,
            ns,
            &BTreeMap::new(),
            &Default::default(),
            None,
            &|_| {},
        )
        .await;
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    panic!("stack {ns} could not be removed");
}

/// Creates the external secrets a plan's services reference but do not create themselves.
pub async fn ensure_external_secrets(
    docker: &bollard::Docker,
    plan: &potluck_server::adapters::engine::convert::StackPlan,
) {
    let own: Vec<&str> = plan.secrets.iter().map(|s| s.name.as_str()).collect();
    let existing: HashMap<String, ()> = docker
        .list_secrets(None::<bollard::query_parameters::ListSecretsOptions>)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|s| s.spec?.name)
        .map(|n| (n, ()))
        .collect();
    for svc in &plan.services {
        for r in svc
            .spec
            .pointer("/TaskTemplate/ContainerSpec/Secrets")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
        {
            let name = r["SecretName"].as_str().unwrap_or_default().to_string();
            if own.contains(&name.as_str()) || existing.contains_key(&name) {
                continue;
            }
            use base64::Engine;
            let spec = bollard::models::SecretSpec {
                name: Some(name.clone()),
                data: Some(base64::engine::general_purpose::STANDARD.encode(b"external")),
                ..Default::default()
            };
            let _ = docker.create_secret(spec).await;
        }
    }
}

pub async fn connect() -> bollard::Docker {
    potluck_server::adapters::engine::docker::connect(
        &potluck_server::adapters::engine::docker::Endpoint::Unix(SOCKET.into()),
        60,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}: run the suites through `make test`, which starts dockerd and the swarm"))
}

/// A Unix socket in front of the Docker Engine's, which a test can cut: to Potluck, the engine
/// went away mid-conversation (connections drop, new ones are refused).
pub struct EngineProxy {
    pub path: PathBuf,
    accept: tokio::task::JoinHandle<()>,
    connections: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl EngineProxy {
    pub fn start(dir: &std::path::Path) -> EngineProxy {
        let path = dir.join("docker-proxy.sock");
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
        let connections: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>> = Default::default();
        let conns = connections.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let task = tokio::spawn(async move {
                    if let Ok(mut engine) = tokio::net::UnixStream::connect(SOCKET).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut engine).await;
                    }
                });
                conns.lock().unwrap().push(task);
            }
        });
        EngineProxy { path, accept, connections }
    }

    /// Drops every connection and stops accepting new ones.
    pub fn cut(&self) {
        self.accept.abort();
        for c in self.connections.lock().unwrap().drain(..) {
            c.abort();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A Unix socket in front of the real engine that answers the first request whose line names
/// `refuse` (e.g. `/info`) with an error, and forwards everything else: an engine a hostile
/// collective admin controls, which answers just enough to be cached and then fails a check.
pub struct RefusingProxy {
    pub path: PathBuf,
    accept: tokio::task::JoinHandle<()>,
}

impl RefusingProxy {
    pub fn start(dir: &std::path::Path, refuse: &'static str) -> RefusingProxy {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let path = dir.join("refusing.sock");
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
        let refused_once = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let refused_once = refused_once.clone();
                tokio::spawn(async move {
                    let Ok(engine) = tokio::net::UnixStream::connect(SOCKET).await else { return };
                    let (mut client_r, client_w) = client.into_split();
                    let (mut engine_r, mut engine_w) = engine.into_split();
                    let client_w = std::sync::Arc::new(tokio::sync::Mutex::new(client_w));
                    let back = client_w.clone();
                    let pump = tokio::spawn(async move {
                        let mut buf = vec![0u8; 65536];
                        while let Ok(n) = engine_r.read(&mut buf).await {
                            if n == 0 || back.lock().await.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    });
                    let mut buf = vec![0u8; 65536];
                    while let Ok(n) = client_r.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                        let first_line = buf[..n].split(|b| *b == b'\n').next().unwrap_or_default();
                        let hit = String::from_utf8_lossy(first_line).contains(refuse);
                        if hit && !refused_once.swap(true, std::sync::atomic::Ordering::SeqCst) {
                            let body = r#"{"message":"refused by the test's engine proxy"}"#;
                            let answer = format!(
                                "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                                body.len()
                            );
                            let _ = client_w.lock().await.write_all(answer.as_bytes()).await;
                            break;
                        }
                        if engine_w.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                    pump.abort();
                });
            }
        });
        RefusingProxy { path, accept }
    }
}

impl Drop for RefusingProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// A TCP address that accepts connections and never answers: an engine (or git remote) that
/// hangs.
pub struct BlackHole {
    pub addr: std::net::SocketAddr,
    accept: tokio::task::JoinHandle<()>,
}

impl BlackHole {
    pub async fn start() -> BlackHole {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accept = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        BlackHole { addr, accept }
    }
}

impl Drop for BlackHole {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Runs the Docker CLI; fails the test when it fails. Returns its standard output.
pub fn docker(args: &[&str]) -> String {
    let out = Command::new(docker_cli()).args(args).output().unwrap();
    assert!(out.status.success(), "docker {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// The running container of one of the stack's services (waiting up to a minute for it).
pub fn container(stack: &str, service: &str) -> String {
    for _ in 0..120 {
        let id = docker(&["ps", "-q", "--filter", &format!("label=com.docker.swarm.service.name={stack}_{service}")]);
        if let Some(id) = id.lines().next() {
            return id.to_string();
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    panic!("{stack}_{service} has no running container");
}

/// Runs a shell script in the running container of one of the stack's services.
pub fn sh(stack: &str, service: &str, script: &str) -> String {
    docker(&["exec", &container(stack, service), "sh", "-c", script])
}

/// A test's stack: removed with its volumes when the guard drops, pass or fail.
pub struct StackGuard(pub String);

impl Drop for StackGuard {
    fn drop(&mut self) {
        remove_stack_and_volumes(&self.0);
    }
}

/// Removes a stack with the CLI, then its volumes once its containers are gone.
pub fn remove_stack_and_volumes(name: &str) {
    let _ = Command::new(docker_cli()).args(["stack", "rm", name]).output();
    // The volumes go once the containers are gone.
    for _ in 0..60 {
        let left = Command::new(docker_cli())
            .args(["volume", "ls", "-q", "--filter", &format!("label=com.docker.stack.namespace={name}")])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
            .unwrap_or_default();
        if left.trim().is_empty() {
            return;
        }
        let vols: Vec<&str> = left.lines().collect();
        let _ = Command::new(docker_cli()).arg("volume").arg("rm").args(&vols).output();
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}

/// Removes a stack and the secrets named after it (`<stack>_…`), which a stack removal leaves.
pub async fn remove_stack_and_secrets(docker: &bollard::Docker, stack: &str) {
    remove_stack(docker, stack).await;
    for s in docker.list_secrets(None::<bollard::query_parameters::ListSecretsOptions>).await.unwrap() {
        if s.spec.and_then(|s| s.name).is_some_and(|n| n.starts_with(&format!("{stack}_"))) {
            let _ = docker.delete_secret(&s.id.unwrap_or_default()).await;
        }
    }
}

/// What the swarm still holds of a stack (services, networks, secrets, configs, volumes), one
/// "kind name" line each; empty when nothing. Removal is eventually consistent on the engine (an
/// overlay network goes a moment after its last task), so this looks again for up to 20 s
/// before answering what stays.
pub fn leftovers(stack: &str) -> String {
    let label = format!("label=com.docker.stack.namespace={stack}");
    let mut left = String::new();
    for _ in 0..40 {
        left.clear();
        for what in ["service", "network", "secret", "config", "volume"] {
            for name in docker(&[what, "ls", "--filter", &label, "--format", "{{.Name}}"]).lines() {
                left.push_str(&format!("{what} {name}\n"));
            }
        }
        if left.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    left.trim().to_string()
}

/// How many services the swarm runs in the stack.
pub async fn services_of(docker: &bollard::Docker, stack: &str) -> usize {
    let label = format!("com.docker.stack.namespace={stack}");
    let filters = std::collections::HashMap::from([("label".to_string(), vec![label])]);
    let options = bollard::query_parameters::ListServicesOptions { filters: Some(filters), ..Default::default() };
    docker.list_services(Some(options)).await.unwrap().len()
}
