//! Configuration: one typed struct, loaded once from defaults, then an optional TOML file, then
//! `POTLUCK_*` environment variables. Every key also reads `POTLUCK_<KEY>_FILE` (the value is
//! the file's content), which is how secrets should be passed.

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use url::Url;

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `sqlite://path` (default `sqlite://data/potluck.db`) or `postgres://user:pass@host/db`.
    pub database_url: String,
    /// Address the HTTP server binds.
    pub listen: SocketAddr,
    /// The address people use to reach Potluck; defaults to `http://<listen>`. OIDC redirect
    /// URIs and links are built from it, and cookies are `Secure` when it is https.
    pub public_url: Option<Url>,
    /// Where Potluck keeps its files (recipe clones, the generated secret key).
    pub data_dir: PathBuf,
    /// The built site (wasm, JS, CSS, public files), as scripts/build.sh writes it.
    pub site_root: PathBuf,
    /// 32 bytes, base64: encrypts identity provider client secrets and other stored credentials.
    /// Generated into `<data_dir>/secret.key` on first start when unset.
    pub secret_key: Option<String>,
    /// A session ends after this many minutes without a request.
    pub session_idle_minutes: i64,
    /// A session ends this many minutes after sign-in, whatever happens.
    pub session_absolute_minutes: i64,
    /// Sign-in attempts allowed per client address and minute.
    pub login_attempts_per_minute: u32,
    /// Reverse proxies (CIDRs) whose `X-Forwarded-For` hop is believed: the client address is
    /// the last hop not added by one of them. Empty: the connection's own address.
    pub trusted_proxies: Vec<String>,
    /// Local Docker engines (a socket path on the Potluck machine) and the collectives (slugs,
    /// or `*` for all) that may register them as a server. Nobody else can: a local engine is
    /// root on the machine that holds every collective's keys.
    pub local_engines: std::collections::BTreeMap<String, Vec<String>>,
    /// Where repositories kept on the Potluck machine go (`<data_dir>/backups` when unset):
    /// a directory per collective, one per repository inside it.
    pub backups_dir: Option<PathBuf>,
    /// The collectives (slugs, or `*` for all) that may keep backup repositories on the Potluck
    /// machine, in `backups_dir`. Nobody else can: their data would fill the disk every
    /// collective shares.
    pub local_backups: Vec<String>,
    /// Hosts (as a repository's location writes them) that collectives' SFTP and S3
    /// repositories may name although they resolve to the Potluck machine itself (loopback) or
    /// to a link-local address (where clouds hand out instance credentials). Nobody else can.
    pub backup_hosts_allow: Vec<String>,
    /// The shortest time a backup schedule may leave between two runs, in seconds: a schedule
    /// that fires more often is refused (every backup reads the app's volumes whole).
    pub backup_min_interval_secs: u64,
    /// Hosts that webhooks and the mail relay may name although they resolve to the Potluck
    /// machine or a link-local address; these alone may also be reached without TLS (http, or
    /// a relay with `security: none`). Nobody else can.
    pub notify_hosts_allow: Vec<String>,
    /// A failed delivery is tried again after this many seconds, doubling each time (up to an
    /// hour between attempts), at most `notify_attempts` times in all.
    pub notify_retry_secs: f64,
    pub notify_attempts: u32,
    /// Leases a replica holds (running jobs, server monitors): renewed every third of this; what
    /// a dead replica held is taken over once its lease has run out.
    pub lease_secs: f64,
    /// The image a staging run's HTTP smoke check runs busybox's `wget` in (it must be on the
    /// staging server or pullable there).
    pub staging_probe_image: String,
    /// Sent and failed notifications are kept in the delivery log this many days.
    pub notify_log_days: u32,
    /// A server whose engine cannot be reached for this long is announced as unreachable.
    pub notify_unreachable_secs: u64,
    /// An unhealthy app whose containers have not failed for this long, and that runs every
    /// task it should, is announced as running again.
    pub notify_recovery_secs: f64,
    /// A container that dies this soon after one of its app's jobs ended is the job's doing (an
    /// old task stopped after the update converged), not news.
    pub notify_after_job_secs: u64,
    /// `text` or `json`.
    pub log_format: String,
    /// Fetch every recipe's remote this often, in minutes (fractions allowed; 0: only on request).
    pub recipe_fetch_minutes: f64,
    /// Fetch each collective's git sync remote this often, in minutes, besides its webhook and
    /// Potluck's own changes (fractions allowed; 0: only on those).
    pub sync_fetch_minutes: f64,
    /// Sign a checkpoint of the audit chain's head this often, in minutes (0: only by `potluck
    /// audit checkpoint`).
    pub audit_checkpoint_minutes: f64,
    /// Also append each checkpoint to this file, outside the database (where someone who can
    /// write to the database cannot remove it).
    pub audit_checkpoint_export: Option<PathBuf>,
    /// Keep rendered pages, per person and at the version of the data they show, in at most
    /// this many MiB (0: render every request).
    pub page_cache_mb: u64,
    /// Run background work (the deploy job worker, server monitors, recipe fetches). Only tests
    /// that drive one piece at a time turn it off.
    pub background: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            database_url: "sqlite://data/potluck.db".into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 3000)),
            public_url: None,
            data_dir: PathBuf::from("data"),
            site_root: PathBuf::from("target/site"),
            secret_key: None,
            session_idle_minutes: 120,
            session_absolute_minutes: 24 * 60,
            login_attempts_per_minute: 30,
            trusted_proxies: Vec::new(),
            local_engines: Default::default(),
            backups_dir: None,
            local_backups: Vec::new(),
            backup_hosts_allow: Vec::new(),
            backup_min_interval_secs: 900,
            notify_hosts_allow: Vec::new(),
            notify_retry_secs: 30.0,
            notify_attempts: 8,
            lease_secs: 30.0,
            staging_probe_image: "busybox:stable".into(),
            notify_log_days: 30,
            notify_unreachable_secs: 120,
            notify_recovery_secs: 300.0,
            notify_after_job_secs: 30,
            log_format: "text".into(),
            recipe_fetch_minutes: 30.0,
            sync_fetch_minutes: 5.0,
            audit_checkpoint_minutes: 10.0,
            audit_checkpoint_export: None,
            page_cache_mb: 16,
            background: true,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Figment(#[from] Box<figment::Error>),
    #[error("cannot read {var} from {path}: {source}")]
    SecretFile { var: String, path: String, source: std::io::Error },
    #[error("configuration: {0}")]
    Invalid(String),
}

impl Config {
    /// Defaults, then the TOML file (`file`, else `$POTLUCK_CONFIG`, else `potluck.toml` when it
    /// exists), then the environment.
    pub fn load(file: Option<PathBuf>) -> Result<Config, ConfigError> {
        let file = file
            .or_else(|| std::env::var_os("POTLUCK_CONFIG").map(PathBuf::from))
            .or_else(|| Some(PathBuf::from("potluck.toml")).filter(|p| p.exists()));
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            if !file.exists() {
                return Err(ConfigError::Invalid(format!("config file {} does not exist", file.display())));
            }
            figment = figment.merge(Toml::file(file));
        }
        // POTLUCK_CONFIG names the file, POTLUCK_*_FILE are read below, and POTLUCK_TEST_*
        // belong to the test harness; every other POTLUCK_* must be a known key.
        figment = figment.merge(Env::prefixed("POTLUCK_").filter(|k| {
            let k = k.as_str().to_ascii_lowercase();
            k != "config" && !k.ends_with("_file") && !k.starts_with("test_") && k != "bin"
        }));
        for (var, value) in std::env::vars() {
            let Some(key) = var.strip_prefix("POTLUCK_").and_then(|k| k.strip_suffix("_FILE")) else { continue };
            if key.starts_with("TEST_") {
                continue;
            }
            let content = std::fs::read_to_string(&value).map_err(|source| ConfigError::SecretFile {
                var: var.clone(),
                path: value.clone(),
                source,
            })?;
            figment = figment.merge(Serialized::default(&key.to_ascii_lowercase(), content.trim().to_string()));
        }
        let config: Config = figment.extract().map_err(|e| ConfigError::Figment(Box::new(e)))?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.session_idle_minutes <= 0 || self.session_absolute_minutes <= 0 {
            return Err(ConfigError::Invalid("session lifetimes must be positive".into()));
        }
        if !(self.audit_checkpoint_minutes >= 0.0 && self.audit_checkpoint_minutes.is_finite()) {
            return Err(ConfigError::Invalid("audit_checkpoint_minutes must be 0 (off) or positive".into()));
        }
        if !(self.sync_fetch_minutes >= 0.0 && self.sync_fetch_minutes.is_finite()) {
            return Err(ConfigError::Invalid("sync_fetch_minutes must be 0 (off) or positive".into()));
        }
        if !(self.recipe_fetch_minutes >= 0.0 && self.recipe_fetch_minutes.is_finite()) {
            return Err(ConfigError::Invalid("recipe_fetch_minutes must be 0 (off) or positive".into()));
        }
        if !(self.notify_retry_secs > 0.0 && self.notify_retry_secs.is_finite())
            || self.notify_attempts == 0
            || !(self.notify_recovery_secs >= 0.0 && self.notify_recovery_secs.is_finite())
        {
            return Err(ConfigError::Invalid(
                "notify_retry_secs and notify_attempts must be positive, notify_recovery_secs 0 or more".into(),
            ));
        }
        if !matches!(self.log_format.as_str(), "text" | "json") {
            return Err(ConfigError::Invalid(format!("log_format must be text or json, not {:?}", self.log_format)));
        }
        for cidr in &self.trusted_proxies {
            cidr.parse::<ipnet::IpNet>()
                .or_else(|_| cidr.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| ConfigError::Invalid(format!("trusted_proxies: {cidr:?} is not an address or CIDR")))?;
        }
        for path in self.local_engines.keys() {
            if !path.starts_with('/') {
                return Err(ConfigError::Invalid(format!("local_engines: {path:?} is not an absolute socket path")));
            }
        }
        if let Some(url) = &self.public_url {
            if !matches!(url.scheme(), "http" | "https") {
                return Err(ConfigError::Invalid(format!("public_url must be http(s), not {url}")));
            }
        }
        Ok(())
    }

    /// The public base URL without a trailing slash.
    pub fn public_base(&self) -> String {
        match &self.public_url {
            Some(url) => url.as_str().trim_end_matches('/').to_string(),
            None => format!("http://{}", self.listen),
        }
    }

    /// The trusted proxies as networks (checked by `validate`).
    pub fn proxy_networks(&self) -> Vec<ipnet::IpNet> {
        self.trusted_proxies
            .iter()
            .filter_map(|c| {
                c.parse::<ipnet::IpNet>().ok().or_else(|| c.parse::<std::net::IpAddr>().ok().map(Into::into))
            })
            .collect()
    }

    /// Whether collective `slug` may use the local engine at `socket`. Paths are compared after
    /// resolving symbolic links, so another name for a configured socket is the same socket.
    pub fn local_engine_allows(&self, socket: &str, slug: &str) -> bool {
        let canonical = |p: &str| std::fs::canonicalize(p).unwrap_or_else(|_| std::path::PathBuf::from(p));
        let wanted = canonical(socket);
        self.local_engines
            .iter()
            .filter(|(path, _)| canonical(path) == wanted)
            .any(|(_, slugs)| slugs.iter().any(|s| s == "*" || s == slug))
    }

    /// Whether `slug` may keep backup repositories on the Potluck machine.
    pub fn local_backups_allow(&self, slug: &str) -> bool {
        self.local_backups.iter().any(|s| s == "*" || s == slug)
    }

    /// The directory of repositories kept on the Potluck machine.
    pub fn backups_root(&self) -> PathBuf {
        self.backups_dir.clone().unwrap_or_else(|| self.data_dir.join("backups"))
    }

    pub fn secure_cookies(&self) -> bool {
        self.public_url.as_ref().is_some_and(|u| u.scheme() == "https")
    }

    /// The configuration as TOML, with secrets replaced.
    pub fn to_redacted_toml(&self) -> String {
        let mut shown = self.clone();
        if shown.secret_key.is_some() {
            shown.secret_key = Some("<redacted>".into());
        }
        shown.database_url = redact_url_password(&shown.database_url);
        toml_string(&shown)
    }
}

fn toml_string(c: &Config) -> String {
    // figment's TOML support is read-only; serde_json → a flat key = value listing is enough.
    fn toml_value(v: &serde_json::Value) -> String {
        match v {
            serde_json::Value::Object(m) => {
                let items: Vec<String> = m.iter().map(|(k, v)| format!("{k:?} = {}", toml_value(v))).collect();
                format!("{{ {} }}", items.join(", "))
            }
            serde_json::Value::Array(a) => format!("[{}]", a.iter().map(toml_value).collect::<Vec<_>>().join(", ")),
            other => other.to_string(),
        }
    }
    let value = serde_json::to_value(c).unwrap_or_default();
    let mut out = String::new();
    if let Some(map) = value.as_object() {
        for (k, v) in map {
            if !v.is_null() {
                out.push_str(&format!("{k} = {}\n", toml_value(v)));
            }
        }
    }
    out
}

fn redact_url_password(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("redacted"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_redacted_toml())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_secrets() {
        let c = Config {
            secret_key: Some("c2VjcmV0".into()),
            database_url: "postgres://potluck:hunter2@db/potluck".into(),
            ..Config::default()
        };
        let shown = format!("{c:?}");
        assert!(!shown.contains("c2VjcmV0"));
        assert!(!shown.contains("hunter2"));
        assert!(shown.contains("listen = \"127.0.0.1:3000\""));
    }

    #[test]
    fn public_base_defaults_to_listen_address() {
        let c = Config::default();
        assert_eq!(c.public_base(), "http://127.0.0.1:3000");
        let c = Config { public_url: Url::parse("https://potluck.example.org/").ok(), ..Config::default() };
        assert_eq!(c.public_base(), "https://potluck.example.org");
        assert!(c.secure_cookies());
    }
}
