//! The Docker API over SSH, as `docker -H ssh://user@host:port` does it: every HTTP connection is
//! an `ssh … docker system dial-stdio` process whose stdin and stdout carry the API to the remote
//! engine (whatever `DOCKER_HOST` is there). Connections are pooled by hyper, so one SSH session
//! serves many requests.
//!
//! Why not bollard's own SSH transport: it hands `user@host:port` to OpenSSH without its port.
//!
//! Two ways to authenticate:
//! - [`Auth::System`] (the command line, `DOCKER_HOST=ssh://…`): OpenSSH as the user running it
//!   configured it, as `docker -H ssh://` does (new hosts are added to `known_hosts`).
//! - [`Auth::Own`] (a collective's server): nothing of the Potluck user's is used — no
//!   `ssh_config`, no agent, no default identities, no `known_hosts`. The server's own key and its
//!   pinned host key are written to a private temporary directory for the one `ssh` process, and
//!   the key file is removed as soon as the connection answers (or ends). On first contact the
//!   host key is learned (`accept-new` into an empty file) for the caller to pin.
//!
//! `BatchMode` means a missing or wrong key fails instead of prompting.

use bollard::{BollardRequest, Docker};
use bytes::Bytes;
use http_body_util::{Either, Full, StreamBody};
use hyper::body::Frame;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::task::JoinHandle;

/// Where to connect: `[user@]host[:port]` (IPv6 hosts in brackets), and how to authenticate.
#[derive(Clone)]
pub struct Target {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
    pub auth: Auth,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target").field("user", &self.user).field("host", &self.host).field("port", &self.port).finish()
    }
}

/// The alias pinned host keys are written under (so that host, port and IPv6 forms never matter).
const HOST_ALIAS: &str = "potluck-server";

#[derive(Clone)]
pub enum Auth {
    /// OpenSSH as the user running Potluck configured it (the command line only).
    System,
    /// Only this private key (PEM) and these host keys.
    Own { key: Arc<String>, host_keys: HostKeys },
}

/// The host keys an [`Auth::Own`] connection accepts.
#[derive(Clone)]
pub enum HostKeys {
    /// Exactly these (`<type> <base64>` lines).
    Pinned(String),
    /// First contact: whatever the host presents, recorded here for the caller to pin.
    Learn(Arc<std::sync::Mutex<Option<String>>>),
}

impl Target {
    pub fn parse(destination: &str, auth: Auth) -> Result<Target, String> {
        let d = destination.trim().trim_start_matches("ssh://").trim_end_matches('/');
        let (user, rest) = match d.rsplit_once('@') {
            Some((u, r)) => (Some(u.to_string()), r),
            None => (None, d),
        };
        let (host, port) = if let Some(inner) = rest.strip_prefix('[') {
            let (h, after) = inner.split_once(']').ok_or_else(|| format!("unclosed [ in {destination:?}"))?;
            let port = match after.strip_prefix(':') {
                Some(p) => Some(p.parse::<u16>().map_err(|_| format!("bad port in {destination:?}"))?),
                None if after.is_empty() => None,
                None => return Err(format!("unexpected {after:?} in {destination:?}")),
            };
            (h.to_string(), port)
        } else {
            match rest.rsplit_once(':') {
                Some((h, p)) => {
                    (h.to_string(), Some(p.parse::<u16>().map_err(|_| format!("bad port in {destination:?}"))?))
                }
                None => (rest.to_string(), None),
            }
        };
        let bad =
            |s: &str| s.is_empty() || s.starts_with('-') || s.chars().any(|c| c.is_whitespace() || c.is_control());
        if bad(&host) || user.as_deref().is_some_and(bad) {
            return Err(format!("give user@host or user@host:port, not {destination:?}"));
        }
        Ok(Target { user, host, port, auth })
    }

    /// The `ssh` command line for one connection; `files` holds an [`Auth::Own`] connection's
    /// key and known hosts.
    fn command(&self, files: Option<&OwnFiles>) -> Command {
        let mut cmd = Command::new("ssh");
        if let Some(f) = files {
            // Nothing of the Potluck user's: no config file, no agent, no default keys.
            cmd.arg("-F").arg("/dev/null");
            cmd.args(["-o", "IdentityAgent=none", "-o", "IdentitiesOnly=yes", "-o", "PasswordAuthentication=no"]);
            cmd.args(["-o", "KbdInteractiveAuthentication=no", "-o", "ControlMaster=no", "-o", "ControlPath=none"]);
            cmd.args(["-o", "GlobalKnownHostsFile=/dev/null", "-o", "UpdateHostKeys=no", "-o", "HashKnownHosts=no"]);
            cmd.arg("-o").arg(format!("HostKeyAlias={HOST_ALIAS}"));
            cmd.arg("-o").arg(format!("UserKnownHostsFile={}", f.known_hosts.display()));
            cmd.arg("-o").arg(if f.learn { "StrictHostKeyChecking=accept-new" } else { "StrictHostKeyChecking=yes" });
            cmd.arg("-i").arg(&f.key);
        } else {
            cmd.args(["-o", "StrictHostKeyChecking=accept-new"]);
        }
        cmd.args(["-T", "-x", "-o", "BatchMode=yes", "-o", "ConnectTimeout=15", "-o", "ServerAliveInterval=30"]);
        if let Some(port) = self.port {
            cmd.arg("-p").arg(port.to_string());
        }
        if let Some(user) = &self.user {
            cmd.arg("-l").arg(user);
        }
        cmd.arg("--").arg(&self.host).args(["docker", "system", "dial-stdio"]);
        cmd.stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        cmd
    }
}

/// The private files of one [`Auth::Own`] connection: a directory only Potluck's user can
/// read, the key (removed once the connection answered) and the known hosts.
struct OwnFiles {
    dir: tempfile::TempDir,
    key: PathBuf,
    known_hosts: PathBuf,
    learn: bool,
}

impl OwnFiles {
    fn write(key: &str, host_keys: &HostKeys) -> io::Result<OwnFiles> {
        use std::io::Write;
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let dir = tempfile::Builder::new().prefix("potluck-ssh-").tempdir()?;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))?;
        let write = |name: &str, content: &str| -> io::Result<PathBuf> {
            let path = dir.path().join(name);
            let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path)?;
            f.write_all(content.as_bytes())?;
            Ok(path)
        };
        let mut pem = key.trim_end().to_string();
        pem.push('\n');
        let key = write("id", &pem)?;
        let (known, learn) = match host_keys {
            HostKeys::Pinned(lines) => (
                lines
                    .lines()
                    .filter(|l| !l.trim().is_empty())
                    .map(|l| format!("{HOST_ALIAS} {}\n", l.trim()))
                    .collect(),
                false,
            ),
            HostKeys::Learn(_) => (String::new(), true),
        };
        let known_hosts = write("known_hosts", &known)?;
        Ok(OwnFiles { dir, key, known_hosts, learn })
    }

    /// The host keys ssh recorded on first contact, as `<type> <base64>` lines.
    fn learned(&self) -> String {
        std::fs::read_to_string(&self.known_hosts)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let mut parts = l.split_whitespace();
                let (_host, kind, key) = (parts.next()?, parts.next()?, parts.next()?);
                Some(format!("{kind} {key}\n"))
            })
            .collect()
    }

    fn forget_key(&self) {
        let _ = std::fs::remove_file(&self.key);
    }
}

/// One `dial-stdio` process as a byte stream. When it ends before saying anything, the read
/// fails with what ssh printed on stderr (the reason: host key, permission, no docker there…).
struct DialStdio {
    _child: Child,
    stdin: ChildStdin,
    stdout: ChildStdout,
    stderr: Option<JoinHandle<String>>,
    received: bool,
    /// Removed at the first answer or the end, whichever comes first (and with this value).
    files: Option<OwnFiles>,
    learned: Option<Arc<std::sync::Mutex<Option<String>>>>,
}

impl DialStdio {
    /// The connection answered or ended: ssh has read the key; keep what it learned.
    fn settle(&mut self) {
        if let Some(files) = self.files.take() {
            if let Some(slot) = &self.learned {
                let learned = files.learned();
                if !learned.is_empty() {
                    if let Ok(mut s) = slot.lock() {
                        *s = Some(learned);
                    }
                }
            }
            files.forget_key();
            drop(files.dir);
        }
    }
}

impl AsyncRead for DialStdio {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stdout).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(_)) {
            self.settle();
        }
        match polled {
            Poll::Ready(Ok(())) if buf.filled().len() == before && !self.received => {
                // End of stream before any byte: the ssh process failed; report why.
                let Some(handle) = self.stderr.as_mut() else { return Poll::Ready(Ok(())) };
                match Pin::new(handle).poll(cx) {
                    Poll::Pending => Poll::Pending,
                    Poll::Ready(text) => {
                        self.stderr = None;
                        let text = text.unwrap_or_default();
                        let text = text.trim();
                        Poll::Ready(Err(io::Error::other(if text.is_empty() {
                            "ssh ended the connection".to_string()
                        } else {
                            format!("ssh: {text}")
                        })))
                    }
                }
            }
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    self.received = true;
                }
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

impl AsyncWrite for DialStdio {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stdin).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stdin).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stdin).poll_shutdown(cx)
    }
}

impl Connection for DialStdio {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

/// hyper's connector: a new `dial-stdio` process per pooled connection.
#[derive(Clone)]
struct Connector(Arc<Target>);

impl tower::Service<hyper::Uri> for Connector {
    type Response = TokioIo<DialStdio>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: hyper::Uri) -> Self::Future {
        let target = self.0.clone();
        Box::pin(async move {
            let (files, learned) = match &target.auth {
                Auth::System => (None, None),
                Auth::Own { key, host_keys } => {
                    let files = OwnFiles::write(key, host_keys)?;
                    let learned = match host_keys {
                        HostKeys::Learn(slot) => Some(slot.clone()),
                        HostKeys::Pinned(_) => None,
                    };
                    (Some(files), learned)
                }
            };
            let mut child =
                target.command(files.as_ref()).spawn().map_err(|e| io::Error::other(format!("cannot run ssh: {e}")))?;
            let (Some(stdin), Some(stdout), Some(mut stderr)) =
                (child.stdin.take(), child.stdout.take(), child.stderr.take())
            else {
                return Err(io::Error::other("ssh without pipes"));
            };
            let stderr = tokio::spawn(async move {
                let mut text = String::new();
                let _ = stderr.read_to_string(&mut text).await;
                text
            });
            Ok(TokioIo::new(DialStdio {
                _child: child,
                stdin,
                stdout,
                stderr: Some(stderr),
                received: false,
                files,
                learned,
            }))
        })
    }
}

/// bollard's request body type (`BollardRequest`'s body), spelled out for the client.
type Body =
    Either<Full<Bytes>, StreamBody<Pin<Box<dyn futures::Stream<Item = Result<Frame<Bytes>, io::Error>> + Send>>>>;

/// A bollard client speaking to the engine behind `target` (not yet negotiated).
pub fn client(target: Target, timeout_secs: u64) -> Result<Docker, bollard::errors::Error> {
    let http: Client<Connector, Body> = Client::builder(TokioExecutor::new()).build(Connector(Arc::new(target)));
    Docker::connect_with_custom_transport(
        move |req: BollardRequest| {
            let http = http.clone();
            async move { http.request(req).await.map_err(bollard::errors::Error::from) }
        },
        Some("http://docker"),
        timeout_secs,
        bollard::API_DEFAULT_VERSION,
    )
}

/// OpenSSH's fingerprint of a host key line (`<type> <base64>`): `SHA256:<base64, unpadded>`.
pub fn fingerprint(line: &str) -> Option<String> {
    use base64::Engine;
    use sha2::Digest;
    let blob = line.split_whitespace().nth(1)?;
    let bytes = base64::engine::general_purpose::STANDARD.decode(blob).ok()?;
    Some(format!("SHA256:{}", base64::engine::general_purpose::STANDARD_NO_PAD.encode(sha2::Sha256::digest(&bytes))))
}

/// The fingerprints of pinned host key lines.
pub fn fingerprints(lines: &str) -> Vec<String> {
    lines.lines().filter_map(fingerprint).collect()
}

/// When ssh refused a host because its key changed: the fingerprint it was shown.
pub fn changed_host_key(ssh_error: &str) -> Option<String> {
    if !ssh_error.contains("REMOTE HOST IDENTIFICATION HAS CHANGED")
        && !ssh_error.contains("Host key verification failed")
    {
        return None;
    }
    let start = ssh_error.find("SHA256:")?;
    let tail = &ssh_error[start + 7..];
    let end = tail.find(|c: char| !(c.is_ascii_alphanumeric() || c == '+' || c == '/')).unwrap_or(tail.len());
    Some(format!("SHA256:{}", &tail[..end]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_as_openssh_prints_them() {
        // `ssh-keygen -lf` of this public key prints the same fingerprint.
        let line = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAr2Ujk3E94aLklR4BsVxE+F/+MhxAsMiz+F1rioVvUX root@vm";
        assert_eq!(fingerprint(line).unwrap(), "SHA256:sMpMRfdQgMsRgWBbWXEgMoeSlf1zkIBRi+G7fJHKiRY");
        assert_eq!(fingerprint("ssh-ed25519 !!!"), None);
        let text = "@@@ WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED! @@@\nThe fingerprint for the ED25519 key sent by the remote host is\nSHA256:abc+/9xyz.\nHost key verification failed.";
        assert_eq!(changed_host_key(text).as_deref(), Some("SHA256:abc+/9xyz"));
        assert_eq!(changed_host_key("Permission denied (publickey)."), None);
    }

    #[test]
    fn destinations() {
        let t = Target::parse("root@127.0.0.1:22022", Auth::System).unwrap();
        assert_eq!((t.user.as_deref(), t.host.as_str(), t.port), (Some("root"), "127.0.0.1", Some(22022)));
        let t = Target::parse("ssh://deploy@swarm.example.org", Auth::System).unwrap();
        assert_eq!((t.user.as_deref(), t.host.as_str(), t.port), (Some("deploy"), "swarm.example.org", None));
        let t = Target::parse("[2001:db8::1]:2222", Auth::System).unwrap();
        assert_eq!((t.user, t.host.as_str(), t.port), (None, "2001:db8::1", Some(2222)));
        for bad in ["", "root@", "-oProxyCommand=x", "a b", "host:port", "[::1"] {
            assert!(Target::parse(bad, Auth::System).is_err(), "{bad:?} is refused");
        }
    }
}
