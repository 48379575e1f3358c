//! Restic repositories over SFTP, as restic lays them out (`config`, `keys/`, `snapshots/`,
//! `index/`, `data/<2 hex>/`), written through libssh2 (the `ssh2` crate; git2 links the same
//! library). The server's host key is checked before anything is sent: against a fingerprint
//! pinned with the repository (`SHA256:…`, as `ssh-keygen -lf` prints it) or, for the command
//! line, against `~/.ssh/known_hosts`. The private key stays in memory; no `ssh` process, no
//! file holds it.

use bytes::Bytes;
use rustic_core::{BytesList, ErrorKind, FileType, Id, ReadBackend, RusticError, RusticResult, WriteBackend};
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

/// Where an SFTP repository is: restic's `sftp:user@host:/path` or
/// `sftp://user@host:port//absolute/path` (a single slash: relative to the user's home).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub user: String,
    pub host: String,
    pub port: u16,
    pub path: String,
}

impl Target {
    /// Parses what follows `sftp:`.
    pub fn parse(rest: &str) -> Result<Target, String> {
        let bad = |why: &str| {
            format!("sftp:{rest}: {why} (restic's forms: sftp:user@host:/path, sftp://user@host:port//path)")
        };
        let (user_host, port, path) = if let Some(url) = rest.strip_prefix("//") {
            let (authority, path) = url.split_once('/').ok_or_else(|| bad("no path"))?;
            let (user_host, port) = match authority.rsplit_once(':') {
                Some((uh, p)) => (uh, p.parse::<u16>().map_err(|_| bad("the port is not a number"))?),
                None => (authority, 22),
            };
            (user_host, port, path.to_string())
        } else {
            let (user_host, path) = rest.split_once(':').ok_or_else(|| bad("no path"))?;
            (user_host, 22, path.to_string())
        };
        let (user, host) = user_host.split_once('@').ok_or_else(|| bad("no user"))?;
        if user.is_empty() || host.is_empty() || path.is_empty() {
            return Err(bad("user, host and path are all needed"));
        }
        if host.contains(['/', ' ']) || user.contains(['/', ' ', ':']) {
            return Err(bad("not a host name"));
        }
        Ok(Target { user: user.into(), host: host.into(), port, path })
    }

    pub fn display(&self) -> String {
        // An absolute path shows as `//path`, as restic writes it.
        format!("sftp://{}@{}:{}/{}", self.user, self.host, self.port, self.path)
    }
}

/// How the server's host key is trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostKey {
    /// `SHA256:<base64>`, the fingerprint `ssh-keygen -lf` prints.
    Pinned(String),
    /// An OpenSSH known_hosts file.
    KnownHosts(PathBuf),
}

/// How Potluck signs in.
#[derive(Clone)]
pub struct Auth {
    /// An OpenSSH or PEM private key, without a passphrase.
    pub private_key: String,
    pub host_key: HostKey,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth").field("private_key", &"…").field("host_key", &self.host_key).finish()
    }
}

impl Auth {
    /// The command line's conventions: the key in `POTLUCK_SFTP_KEY_FILE` (else `~/.ssh/id_ed25519`,
    /// `id_ecdsa`, `id_rsa`, the first that exists), the host in `POTLUCK_SFTP_KNOWN_HOSTS` (else
    /// `~/.ssh/known_hosts`).
    pub fn from_env() -> Result<Auth, String> {
        let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/root"));
        let key_file = match std::env::var_os("POTLUCK_SFTP_KEY_FILE") {
            Some(f) => PathBuf::from(f),
            None => ["id_ed25519", "id_ecdsa", "id_rsa"]
                .iter()
                .map(|n| home.join(".ssh").join(n))
                .find(|p| p.exists())
                .ok_or("no SSH key: set POTLUCK_SFTP_KEY_FILE or create ~/.ssh/id_ed25519")?,
        };
        let private_key =
            std::fs::read_to_string(&key_file).map_err(|e| format!("SSH key {}: {e}", key_file.display()))?;
        let known = std::env::var_os("POTLUCK_SFTP_KNOWN_HOSTS")
            .map(PathBuf::from)
            .unwrap_or_else(|| home.join(".ssh/known_hosts"));
        Ok(Auth { private_key, host_key: HostKey::KnownHosts(known) })
    }
}

/// The SHA-256 fingerprint of a host key blob, as OpenSSH prints it.
pub fn fingerprint(blob: &[u8]) -> String {
    use base64::Engine;
    use sha2::Digest;
    format!("SHA256:{}", base64::engine::general_purpose::STANDARD_NO_PAD.encode(sha2::Sha256::digest(blob)))
}

/// Seconds libssh2 waits for any one answer of the server.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Opens the TCP connection and the SSH handshake: the session and the host key it presented.
fn handshake(target: &Target) -> Result<(ssh2::Session, Vec<u8>), String> {
    let at = format!("{}:{}", target.host, target.port);
    let addr =
        at.to_socket_addrs().map_err(|e| format!("{at}: {e}"))?.next().ok_or_else(|| format!("{at}: no address"))?;
    let tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(20)).map_err(|e| format!("{at}: {e}"))?;
    let mut session = ssh2::Session::new().map_err(|e| e.to_string())?;
    session.set_timeout(TIMEOUT.as_millis() as u32);
    session.set_tcp_stream(tcp);
    session.handshake().map_err(|e| format!("{at}: SSH handshake: {e}"))?;
    let blob = session.host_key().ok_or_else(|| format!("{at}: the server sent no host key"))?.0.to_vec();
    Ok((session, blob))
}

/// The fingerprint of the host key the server presents, for a person to check and pin. Nothing
/// is sent beyond the handshake.
pub fn probe(target: &Target) -> Result<String, String> {
    let (session, blob) = handshake(target)?;
    let _ = session.disconnect(None, "host key read", None);
    Ok(fingerprint(&blob))
}

/// Whether `s` reads as an OpenSSH SHA-256 fingerprint.
pub fn is_fingerprint(s: &str) -> bool {
    s.strip_prefix("SHA256:")
        .is_some_and(|b| b.len() == 43 && b.chars().all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '/'))
}

/// Connects, checks the host key, signs in. The error says which step failed; a host key that
/// does not match names the one the server presented.
pub fn connect(target: &Target, auth: &Auth) -> Result<(ssh2::Session, ssh2::Sftp), String> {
    let at = format!("{}:{}", target.host, target.port);
    let (session, blob) = handshake(target)?;
    let blob = blob.as_slice();
    let presented = fingerprint(blob);
    match &auth.host_key {
        HostKey::Pinned(pinned) => {
            if pinned.trim() != presented {
                return Err(format!(
                    "{at}: the server's host key is {presented}, not the pinned {}: refusing to connect",
                    pinned.trim()
                ));
            }
        }
        HostKey::KnownHosts(file) => {
            let mut known = session.known_hosts().map_err(|e| e.to_string())?;
            known
                .read_file(file, ssh2::KnownHostFileKind::OpenSSH)
                .map_err(|e| format!("known hosts {}: {e}", file.display()))?;
            match known.check_port(&target.host, target.port, blob) {
                ssh2::CheckResult::Match => {}
                ssh2::CheckResult::Mismatch => {
                    return Err(format!(
                        "{at}: the server's host key {presented} differs from the one in {}: refusing to connect",
                        file.display()
                    ))
                }
                _ => {
                    return Err(format!(
                        "{at}: the server's host key {presented} is not in {}: add it (ssh-keyscan) after checking it",
                        file.display()
                    ))
                }
            }
        }
    }
    session
        .userauth_pubkey_memory(&target.user, None, &auth.private_key, None)
        .map_err(|e| format!("{at}: signing in as {} with the key: {e}", target.user))?;
    if !session.authenticated() {
        return Err(format!("{at}: the server did not accept the key for {}", target.user));
    }
    let sftp = session.sftp().map_err(|e| format!("{at}: SFTP: {e}"))?;
    Ok((session, sftp))
}

/// A restic repository over one SFTP session (rustic's threads take turns on it).
pub struct SftpBackend {
    location: String,
    root: PathBuf,
    conn: Mutex<(ssh2::Session, ssh2::Sftp)>,
}

/// SFTP's "no such file" (`SSH_FX_NO_SUCH_FILE`): the only error that means "absent"; any other
/// (a timeout, a refusal) is an error, never taken for an empty repository.
fn absent(e: &ssh2::Error) -> bool {
    e.code() == ssh2::ErrorCode::SFTP(2)
}

/// The largest file read whole or in part: restic's config, keys, snapshots and index files are
/// small, its packs a few hundred MiB at most. A server that claims more is not believed.
pub(crate) const MAX_READ: u64 = 1 << 30;
/// The most entries one directory may list (a repository of 4 TiB in 16 MiB packs is 256 Ki
/// packs over 256 directories).
pub(crate) const MAX_ENTRIES: usize = 1_000_000;

fn io_error(what: String) -> impl FnOnce(ssh2::Error) -> Box<RusticError> {
    move |e| RusticError::with_source(ErrorKind::Backend, format!("SFTP: {what}"), e)
}

impl SftpBackend {
    pub fn new(target: &Target, auth: &Auth) -> Result<SftpBackend, String> {
        let conn = connect(target, auth)?;
        Ok(SftpBackend { location: target.display(), root: PathBuf::from(&target.path), conn: Mutex::new(conn) })
    }

    fn path(&self, tpe: FileType, id: &Id) -> PathBuf {
        let hex = id.to_hex();
        match tpe {
            FileType::Config => self.root.join("config"),
            FileType::Pack => self.root.join("data").join(&hex[..2]).join(&*hex),
            _ => self.root.join(tpe.dirname()).join(&*hex),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&ssh2::Sftp) -> RusticResult<T>) -> RusticResult<T> {
        let conn = self
            .conn
            .lock()
            .map_err(|_| RusticError::new(ErrorKind::Backend, "SFTP: the session was poisoned by a panic"))?;
        f(&conn.1)
    }

    fn read(&self, path: &Path, range: Option<(u64, usize)>) -> RusticResult<Bytes> {
        self.with(|sftp| {
            let shown = path.display().to_string();
            let too_large = |n: u64| {
                RusticError::new(
                    ErrorKind::Backend,
                    format!("SFTP: {shown}: {n} bytes is more than a repository file holds ({MAX_READ} at most)"),
                )
            };
            let mut file = sftp.open(path).map_err(io_error(format!("open {shown}")))?;
            let mut buf = Vec::new();
            let read = match range {
                None => {
                    let size = file.stat().map_err(io_error(format!("stat {shown}")))?.size.unwrap_or(0);
                    if size > MAX_READ {
                        return Err(too_large(size));
                    }
                    // Never more than the size stated, whatever the server sends.
                    buf.reserve(size as usize);
                    (&mut file).take(MAX_READ + 1).read_to_end(&mut buf).map(drop)
                }
                Some((offset, length)) => {
                    if length as u64 > MAX_READ {
                        return Err(too_large(length as u64));
                    }
                    buf.resize(length, 0);
                    file.seek(SeekFrom::Start(offset)).and_then(|_| file.read_exact(&mut buf))
                }
            };
            if buf.len() as u64 > MAX_READ {
                return Err(too_large(buf.len() as u64));
            }
            read.map_err(|e| RusticError::with_source(ErrorKind::Backend, format!("SFTP: read {shown}"), e))?;
            Ok(Bytes::from(buf))
        })
    }
}

/// Lists a directory (name, stat), at most [`MAX_ENTRIES`]; an absent directory lists nothing.
fn entries(sftp: &ssh2::Sftp, dir: &Path) -> RusticResult<Vec<(String, ssh2::FileStat)>> {
    let shown = dir.display().to_string();
    let mut handle = match sftp.opendir(dir) {
        Ok(h) => h,
        Err(e) if absent(&e) => return Ok(Vec::new()),
        Err(e) => return Err(io_error(format!("list {shown}"))(e)),
    };
    let mut out = Vec::new();
    loop {
        match handle.readdir() {
            Ok((name, stat)) => {
                let Some(name) = name.to_str().map(str::to_string) else { continue };
                if name == "." || name == ".." {
                    continue;
                }
                if out.len() >= MAX_ENTRIES {
                    return Err(RusticError::new(
                        ErrorKind::Backend,
                        format!("SFTP: {shown} lists more than {MAX_ENTRIES} entries"),
                    ));
                }
                out.push((name, stat));
            }
            // libssh2's end of the listing.
            Err(e) if e.code() == ssh2::ErrorCode::Session(-16) => break,
            Err(e) => return Err(io_error(format!("list {shown}"))(e)),
        }
    }
    Ok(out)
}

impl ReadBackend for SftpBackend {
    fn location(&self) -> String {
        self.location.clone()
    }

    fn list_with_size(&self, tpe: FileType) -> RusticResult<Vec<(Id, u32)>> {
        self.with(|sftp| {
            if tpe == FileType::Config {
                let config = self.root.join("config");
                return match sftp.stat(&config) {
                    Ok(st) => Ok(vec![(Id::default(), st.size.unwrap_or(0) as u32)]),
                    Err(e) if absent(&e) => Ok(Vec::new()),
                    Err(e) => Err(io_error(format!("stat {}", config.display()))(e)),
                };
            }
            let dir = self.root.join(tpe.dirname());
            let dirs: Vec<PathBuf> = if tpe == FileType::Pack {
                entries(sftp, &dir)?.into_iter().filter(|(_, st)| st.is_dir()).map(|(n, _)| dir.join(n)).collect()
            } else {
                vec![dir]
            };
            let mut found = Vec::new();
            for d in dirs {
                for (name, st) in entries(sftp, &d)? {
                    if !st.is_file() {
                        continue;
                    }
                    if let Some(id) = Id::parse_some(&name, tpe) {
                        found.push((id, st.size.unwrap_or(0) as u32));
                    }
                }
            }
            Ok(found)
        })
    }

    fn read_full(&self, tpe: FileType, id: &Id) -> RusticResult<Bytes> {
        self.read(&self.path(tpe, id), None)
    }

    fn read_partial(&self, tpe: FileType, id: &Id, _cacheable: bool, offset: u32, length: u32) -> RusticResult<Bytes> {
        self.read(&self.path(tpe, id), Some((u64::from(offset), length as usize)))
    }

    fn warmup_path(&self, tpe: FileType, id: &Id) -> String {
        self.path(tpe, id).display().to_string()
    }
}

impl WriteBackend for SftpBackend {
    fn create(&self) -> RusticResult<()> {
        self.with(|sftp| {
            let mut dirs = vec![self.root.clone()];
            for t in [FileType::Key, FileType::Snapshot, FileType::Index, FileType::Pack] {
                dirs.push(self.root.join(t.dirname()));
            }
            dirs.extend((0..=255u8).map(|i| self.root.join("data").join(format!("{i:02x}"))));
            for d in dirs {
                match sftp.stat(&d) {
                    Ok(_) => {}
                    Err(e) if absent(&e) => {
                        sftp.mkdir(&d, 0o700).map_err(io_error(format!("create {}", d.display())))?;
                    }
                    Err(e) => return Err(io_error(format!("stat {}", d.display()))(e)),
                }
            }
            Ok(())
        })
    }

    fn write_bytes(&self, tpe: FileType, id: &Id, _cacheable: bool, content: BytesList) -> RusticResult<()> {
        let path = self.path(tpe, id);
        // Written under a temporary name and renamed: a reader never sees half a file.
        let partial = path.with_extension("partial");
        self.with(|sftp| {
            let shown = path.display().to_string();
            let mut file = sftp.create(&partial).map_err(io_error(format!("create {shown}")))?;
            for chunk in content.into_vec() {
                file.write_all(&chunk)
                    .map_err(|e| RusticError::with_source(ErrorKind::Backend, format!("SFTP: write {shown}"), e))?;
            }
            file.fsync().ok();
            drop(file);
            match sftp.rename(&partial, &path, Some(ssh2::RenameFlags::OVERWRITE | ssh2::RenameFlags::ATOMIC)) {
                Ok(()) => Ok(()),
                // SFTP v3 servers (OpenSSH) refuse to rename over an existing file. Files but the
                // config are named by their content: the one there is the same, keep it. The
                // config alone is replaced, by removing it first.
                Err(e) if matches!(e.code(), ssh2::ErrorCode::SFTP(4) | ssh2::ErrorCode::SFTP(11)) => {
                    if tpe != FileType::Config && sftp.stat(&path).is_ok() {
                        let _ = sftp.unlink(&partial);
                        return Ok(());
                    }
                    sftp.unlink(&path)
                        .or_else(|e| if absent(&e) { Ok(()) } else { Err(e) })
                        .map_err(io_error(format!("replace {shown}")))?;
                    sftp.rename(&partial, &path, None).map_err(io_error(format!("rename into {shown}")))
                }
                Err(e) => Err(io_error(format!("rename into {shown}"))(e)),
            }
        })
    }

    fn remove(&self, tpe: FileType, id: &Id, _cacheable: bool) -> RusticResult<()> {
        let path = self.path(tpe, id);
        self.with(|sftp| sftp.unlink(&path).map_err(io_error(format!("remove {}", path.display()))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restics_sftp_forms() {
        let t = Target::parse("backup@host.example:/srv/restic").unwrap();
        assert_eq!(
            (t.user.as_str(), t.host.as_str(), t.port, t.path.as_str()),
            ("backup", "host.example", 22, "/srv/restic")
        );
        let t = Target::parse("backup@host.example:repos/a").unwrap();
        assert_eq!(t.path, "repos/a", "relative to the user's home");
        let t = Target::parse("//backup@10.0.0.2:2222//srv/restic").unwrap();
        assert_eq!((t.port, t.path.as_str()), (2222, "/srv/restic"));
        let t = Target::parse("//backup@10.0.0.2/repo").unwrap();
        assert_eq!((t.port, t.path.as_str()), (22, "repo"));
        for bad in ["host:/srv", "backup@host", "//backup@host:port//x", "@host:/x", "backup@:/x", "//backup@host"] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn fingerprints_as_ssh_keygen_prints_them() {
        // ssh-keygen -lf of a key whose blob is these bytes prints the SHA-256, base64 unpadded.
        let f = fingerprint(b"abc");
        assert_eq!(f, "SHA256:ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0");
        assert!(
            format!("{:?}", Auth { private_key: "SECRET".into(), host_key: HostKey::Pinned(f.clone()) }).contains('…')
        );
        assert!(!format!("{:?}", Auth { private_key: "SECRET".into(), host_key: HostKey::KnownHosts("/x".into()) })
            .contains("SECRET"));
        assert!(is_fingerprint(&f));
        assert!(!is_fingerprint("SHA256:short") && !is_fingerprint("MD5:ab:cd") && !is_fingerprint(&format!("{f}=")));
    }
}
