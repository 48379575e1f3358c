//! Reaching a Docker Engine: a local Unix socket, TCP with TLS client certificates, or SSH (the
//! Engine API through `ssh … docker system dial-stdio`, as `docker -H ssh://` does). The API
//! version is negotiated, so Debian's 20.10 engine (API 1.41) and newer ones both work.

use bollard::Docker;
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Unix(PathBuf),
    Tcp { host: String, tls: Option<TlsFiles> },
    Ssh { destination: String },
}

/// PEM files for TLS client authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    #[error("unsupported Docker host {0:?}: use unix:///path, tcp://host:port or ssh://user@host")]
    BadHost(String),
    #[error("cannot connect to the Docker Engine at {endpoint}: {message}")]
    Connect { endpoint: String, message: String },
    #[error("{0}")]
    Api(String),
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Unix(p) => write!(f, "unix://{}", p.display()),
            Endpoint::Tcp { host, tls } => write!(f, "tcp://{host}{}", if tls.is_some() { " (TLS)" } else { "" }),
            Endpoint::Ssh { destination } => write!(f, "ssh://{destination}"),
        }
    }
}

impl Endpoint {
    /// Parses a `DOCKER_HOST`-style address; TLS files come from `DOCKER_CERT_PATH` when
    /// `DOCKER_TLS_VERIFY` is set, as with the Docker CLI.
    pub fn parse(host: &str, cert_path: Option<PathBuf>) -> Result<Endpoint, DockerError> {
        if let Some(p) = host.strip_prefix("unix://") {
            return Ok(Endpoint::Unix(PathBuf::from(p)));
        }
        if let Some(h) = host.strip_prefix("tcp://") {
            let tls =
                cert_path.map(|d| TlsFiles { ca: d.join("ca.pem"), cert: d.join("cert.pem"), key: d.join("key.pem") });
            return Ok(Endpoint::Tcp { host: h.to_string(), tls });
        }
        if let Some(d) = host.strip_prefix("ssh://") {
            if d.is_empty() {
                return Err(DockerError::BadHost(host.into()));
            }
            return Ok(Endpoint::Ssh { destination: d.to_string() });
        }
        Err(DockerError::BadHost(host.into()))
    }

    /// `DOCKER_HOST` (and `DOCKER_TLS_VERIFY` / `DOCKER_CERT_PATH`), else the local socket.
    pub fn from_env() -> Result<Endpoint, DockerError> {
        match std::env::var("DOCKER_HOST") {
            Ok(h) if !h.is_empty() => {
                let tls = std::env::var("DOCKER_TLS_VERIFY").ok().filter(|v| !v.is_empty() && v != "0");
                let cert_path = tls.map(|_| {
                    std::env::var_os("DOCKER_CERT_PATH")
                        .map(PathBuf::from)
                        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".docker"))
                });
                Endpoint::parse(&h, cert_path)
            }
            _ => Ok(Endpoint::Unix(PathBuf::from("/var/run/docker.sock"))),
        }
    }
}

/// Connects and negotiates the API version (the first request: unreachable engines fail here).
pub async fn connect(endpoint: &Endpoint, timeout_secs: u64) -> Result<Docker, DockerError> {
    let fail = |message: String| DockerError::Connect { endpoint: endpoint.to_string(), message };
    let docker = match endpoint {
        Endpoint::Unix(path) => {
            Docker::connect_with_unix(&path.to_string_lossy(), timeout_secs, bollard::API_DEFAULT_VERSION)
        }
        Endpoint::Tcp { host, tls: None } => {
            Docker::connect_with_http(&format!("tcp://{host}"), timeout_secs, bollard::API_DEFAULT_VERSION)
        }
        Endpoint::Tcp { host, tls: Some(t) } => Docker::connect_with_ssl(
            &format!("tcp://{host}"),
            &t.key,
            &t.cert,
            &t.ca,
            timeout_secs,
            bollard::API_DEFAULT_VERSION,
        ),
        Endpoint::Ssh { destination } => super::ssh::client(
            super::ssh::Target::parse(destination, super::ssh::Auth::System).map_err(fail)?,
            timeout_secs,
        ),
    }
    .map_err(|e| fail(e.to_string()))?;
    docker.negotiate_version().await.map_err(|e| fail(error_text(&e)))
}

/// A bollard error as a sentence (the Engine's own message when it sent one).
pub fn error_text(e: &bollard::errors::Error) -> String {
    match e {
        bollard::errors::Error::DockerResponseServerError { message, .. } => message.trim().to_string(),
        other => {
            let mut s = other.to_string();
            let mut src = std::error::Error::source(other);
            while let Some(inner) = src {
                s.push_str(": ");
                s.push_str(&inner.to_string());
                src = inner.source();
            }
            s
        }
    }
}

/// The HTTP status of an Engine error, if it answered.
pub fn status_of(e: &bollard::errors::Error) -> Option<u16> {
    match e {
        bollard::errors::Error::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_hosts() {
        assert_eq!(
            Endpoint::parse("unix:///var/run/docker.sock", None).unwrap(),
            Endpoint::Unix("/var/run/docker.sock".into())
        );
        assert_eq!(
            Endpoint::parse("ssh://ops@swarm.example.org", None).unwrap(),
            Endpoint::Ssh { destination: "ops@swarm.example.org".into() }
        );
        let tls = Endpoint::parse("tcp://10.0.0.1:2376", Some("/certs".into())).unwrap();
        assert!(matches!(tls, Endpoint::Tcp { tls: Some(ref t), .. } if t.ca == std::path::Path::new("/certs/ca.pem")));
        assert!(Endpoint::parse("http://x", None).is_err());
    }
}
