//! The Docker API over SSH, as `docker -H ssh://user@host:port` does it: every HTTP connection is
//! an `ssh … docker system dial-stdio` process whose stdin and stdout carry the API to the remote
//! engine (whatever `DOCKER_HOST` is there). Connections are pooled by hyper, so one SSH session
//! serves many requests.
//!
//! Why not bollard's own SSH transport: it hands `user@host:port` to OpenSSH without its port.
//! Host keys: OpenSSH's own `known_hosts` files decide; a host seen for the first time is added
//! (`StrictHostKeyChecking=accept-new`, what `docker -H ssh://` users get), and a changed key is
//! refused. `BatchMode` means a missing or wrong key fails instead of prompting.

use bollard::{BollardRequest, Docker};
use bytes::Bytes;
use http_body_util::{Either, Full, StreamBody};
use hyper::body::Frame;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::task::JoinHandle;

/// Where to connect: `[user@]host[:port]` (IPv6 hosts in brackets), with an optional key file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
    pub key: Option<PathBuf>,
}

impl Target {
    pub fn parse(destination: &str, key: Option<&Path>) -> Result<Target, String> {
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
        Ok(Target { user, host, port, key: key.map(Path::to_path_buf) })
    }

    /// The `ssh` command line for one connection.
    fn command(&self) -> Command {
        let mut cmd = Command::new("ssh");
        cmd.args(["-T", "-x", "-o", "BatchMode=yes", "-o", "ConnectTimeout=15", "-o", "ServerAliveInterval=30"]);
        cmd.args(["-o", "StrictHostKeyChecking=accept-new"]);
        if let Some(port) = self.port {
            cmd.arg("-p").arg(port.to_string());
        }
        if let Some(user) = &self.user {
            cmd.arg("-l").arg(user);
        }
        if let Some(key) = &self.key {
            cmd.arg("-i").arg(key).args(["-o", "IdentitiesOnly=yes"]);
        }
        cmd.arg("--").arg(&self.host).args(["docker", "system", "dial-stdio"]);
        cmd.stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        cmd
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
}

impl AsyncRead for DialStdio {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.stdout).poll_read(cx, buf) {
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
            let mut child = target.command().spawn().map_err(|e| io::Error::other(format!("cannot run ssh: {e}")))?;
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
            Ok(TokioIo::new(DialStdio { _child: child, stdin, stdout, stderr: Some(stderr), received: false }))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations() {
        let t = Target::parse("root@127.0.0.1:22022", None).unwrap();
        assert_eq!((t.user.as_deref(), t.host.as_str(), t.port), (Some("root"), "127.0.0.1", Some(22022)));
        let t = Target::parse("ssh://deploy@swarm.example.org", None).unwrap();
        assert_eq!((t.user.as_deref(), t.host.as_str(), t.port), (Some("deploy"), "swarm.example.org", None));
        let t = Target::parse("[2001:db8::1]:2222", None).unwrap();
        assert_eq!((t.user, t.host.as_str(), t.port), (None, "2001:db8::1", Some(2222)));
        for bad in ["", "root@", "-oProxyCommand=x", "a b", "host:port", "[::1"] {
            assert!(Target::parse(bad, None).is_err(), "{bad:?} is refused");
        }
    }
}
