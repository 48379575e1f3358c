//! Restic repositories: opened when they exist, created when they do not, with restic's password
//! conventions. Snapshots carry Potluck's tags (`stack:`, `app:`, `recipe:`, `version:`,
//! `trigger:`) so that backups of one app are found among a collective's others.

use crate::{s3, sftp};
use rustic_backend::LocalBackend;
use rustic_core::{
    ConfigOptions, Credentials, IndexedFullStatus, IndexedIdsStatus, KeepOptions, KeyOptions, OpenStatus, PruneOptions,
    Repository, RepositoryBackends, RepositoryOptions, WriteBackend,
};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    #[error("{0}")]
    Config(String),
    #[error("repository {location}: {message}")]
    Repository { location: String, message: String },
}

fn failed(location: &str) -> impl Fn(Box<rustic_core::RusticError>) -> RepoError + '_ {
    move |e| RepoError::Repository { location: location.to_string(), message: e.display_log() }
}

/// Where a repository is: a local directory, a directory over SFTP or a bucket's prefix over
/// S3, with what signs in to it. Other restic schemes (`rest:`, `b2:`, …) are refused by name,
/// so that a typo is not taken for a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Local(PathBuf),
    /// `auth` is filled in by whoever holds the credentials (the command line from `~/.ssh`, the
    /// server from the repository's sealed key); without it the repository cannot be opened.
    Sftp {
        target: sftp::Target,
        auth: Option<SftpAuth>,
    },
    /// `auth` as for SFTP: the keys come from the environment or the repository's sealed keys.
    S3 {
        target: s3::Target,
        auth: Option<s3::Auth>,
    },
}

/// [`sftp::Auth`], compared by its host key only (the private key is never compared or shown).
#[derive(Debug, Clone)]
pub struct SftpAuth(pub sftp::Auth);

impl PartialEq for SftpAuth {
    fn eq(&self, other: &Self) -> bool {
        self.0.host_key == other.0.host_key
    }
}
impl Eq for SftpAuth {}

impl Location {
    /// Parses restic's forms: `/path`, `local:/path`, `sftp:user@host:/path`,
    /// `sftp://user@host:port//path`, `s3:https://host[:port]/bucket/path`, `s3:host/bucket/path`.
    pub fn parse(raw: &str) -> Result<Location, RepoError> {
        let raw = raw.trim();
        if let Some(path) = raw.strip_prefix("local:") {
            return Location::parse_path(path);
        }
        if let Some(rest) = raw.strip_prefix("sftp:") {
            let target = sftp::Target::parse(rest).map_err(RepoError::Config)?;
            return Ok(Location::Sftp { target, auth: None });
        }
        if let Some(rest) = raw.strip_prefix("s3:") {
            let target = s3::Target::parse(rest).map_err(RepoError::Config)?;
            return Ok(Location::S3 { target, auth: None });
        }
        if let Some((scheme, _)) = raw.split_once(':') {
            if !scheme.contains('/') && scheme.len() > 1 {
                return Err(RepoError::Config(format!(
                    "repository {raw:?}: {scheme}: repositories are not supported; use a local directory, sftp: or s3:"
                )));
            }
        }
        Location::parse_path(raw)
    }

    fn parse_path(path: &str) -> Result<Location, RepoError> {
        if path.is_empty() {
            return Err(RepoError::Config("the repository location is empty".into()));
        }
        Ok(Location::Local(PathBuf::from(path)))
    }

    /// The same location, signed in to with `auth` where it is remote.
    pub fn with_sftp_auth(self, auth: sftp::Auth) -> Location {
        match self {
            Location::Sftp { target, .. } => Location::Sftp { target, auth: Some(SftpAuth(auth)) },
            other => other,
        }
    }

    /// The same location, signed in to with `auth` where it is a bucket.
    pub fn with_s3_auth(self, auth: s3::Auth) -> Location {
        match self {
            Location::S3 { target, .. } => Location::S3 { target, auth: Some(auth) },
            other => other,
        }
    }

    /// The host and port a remote repository is reached at.
    pub fn remote_host(&self) -> Option<(String, u16)> {
        match self {
            Location::Local(_) => None,
            Location::Sftp { target, .. } => Some((target.host.clone(), target.port)),
            Location::S3 { target, .. } => Some((target.host().to_string(), target.port())),
        }
    }

    pub fn is_remote(&self) -> bool {
        !matches!(self, Location::Local(_))
    }

    pub fn display(&self) -> String {
        match self {
            Location::Local(p) => p.display().to_string(),
            Location::Sftp { target, .. } => target.display(),
            Location::S3 { target, .. } => target.display(),
        }
    }
}

/// The repository password, never printed.
#[derive(Clone)]
pub struct Password(String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(…)")
    }
}

impl Password {
    pub fn new(password: impl Into<String>) -> Result<Password, RepoError> {
        let p = password.into();
        if p.is_empty() {
            return Err(RepoError::Config("the repository password is empty".into()));
        }
        Ok(Password(p))
    }

    /// restic's conventions: `RESTIC_PASSWORD`, else the first line of `RESTIC_PASSWORD_FILE`.
    pub fn from_env() -> Result<Password, RepoError> {
        if let Ok(p) = std::env::var("RESTIC_PASSWORD") {
            return Password::new(p);
        }
        if let Ok(file) = std::env::var("RESTIC_PASSWORD_FILE") {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| RepoError::Config(format!("RESTIC_PASSWORD_FILE {file}: {e}")))?;
            return Password::new(text.lines().next().unwrap_or_default());
        }
        Err(RepoError::Config("set RESTIC_PASSWORD or RESTIC_PASSWORD_FILE to the repository's password".into()))
    }
}

/// An opened repository.
pub struct Repo {
    pub location: String,
    repo: Repository<OpenStatus>,
}

impl Repo {
    /// Opens the repository at `location`, creating it when there is none (restic's format
    /// version 2, which restic reads since 0.14). A wrong password is an error, never a new
    /// repository.
    pub fn open_or_init(location: &Location, password: &Password) -> Result<Repo, RepoError> {
        let name = location.display();
        let be: Arc<dyn WriteBackend> = match location {
            Location::Local(path) => {
                std::fs::create_dir_all(path)
                    .map_err(|e| RepoError::Repository { location: name.clone(), message: e.to_string() })?;
                Arc::new(
                    LocalBackend::new(path.to_string_lossy(), Vec::<(String, String)>::new()).map_err(failed(&name))?,
                )
            }
            Location::Sftp { target, auth } => {
                let auth = auth.as_ref().ok_or_else(|| RepoError::Repository {
                    location: name.clone(),
                    message: "no SSH key to sign in with".into(),
                })?;
                let be = sftp::SftpBackend::new(target, &auth.0)
                    .map_err(|message| RepoError::Repository { location: name.clone(), message })?;
                Arc::new(be)
            }
            Location::S3 { target, auth } => {
                let auth = auth.as_ref().ok_or_else(|| RepoError::Repository {
                    location: name.clone(),
                    message: "no access key to sign in with".into(),
                })?;
                let be = s3::S3Backend::new(target, auth)
                    .map_err(|message| RepoError::Repository { location: name.clone(), message })?;
                Arc::new(be)
            }
        };
        let backends = RepositoryBackends::new(be, None);
        let repo = Repository::new(&RepositoryOptions::default(), &backends).map_err(failed(&name))?;
        let credentials = Credentials::password(&password.0);
        let repo = if repo.config_id().map_err(failed(&name))?.is_some() {
            repo.open(&credentials).map_err(failed(&name))?
        } else {
            repo.init(&credentials, &KeyOptions::default(), &ConfigOptions::default()).map_err(failed(&name))?
        };
        Ok(Repo { location: name, repo })
    }

    /// Snapshots of a stack (tag `stack:<stack>`; every snapshot when `None`), oldest first.
    pub fn snapshots(&self, stack: Option<&str>) -> Result<Vec<Snapshot>, RepoError> {
        let tag = stack.map(|s| format!("stack:{s}"));
        let mut list: Vec<Snapshot> = self
            .repo
            .get_matching_snapshots(|s| tag.as_deref().is_none_or(|t| s.tags.contains(t)))
            .map_err(failed(&self.location))?
            .into_iter()
            .map(|s| Snapshot::of(&s))
            .collect();
        list.sort_by(|a, b| a.time.cmp(&b.time).then_with(|| a.id.cmp(&b.id)));
        Ok(list)
    }

    pub(crate) fn snapshot_file(&self, id: &str) -> Result<rustic_core::repofile::SnapshotFile, RepoError> {
        self.repo.get_snapshot_from_str(id, |_| true).map_err(failed(&self.location))
    }

    pub(crate) fn delete(&self, id: &str) -> Result<(), RepoError> {
        let snap = self.snapshot_file(id)?;
        self.repo.delete_snapshots(&[snap.id]).map_err(failed(&self.location))
    }

    /// Applies restic's keep rules to the snapshots that carry every one of `tags` (taken as one
    /// group, newest first) and removes the rest. The data they alone held stays until
    /// [`Repo::prune`].
    pub fn forget(&self, tags: &[String], keep: &Keep) -> Result<Forgotten, RepoError> {
        let options = keep.options()?;
        let snapshots = self
            .repo
            .get_matching_snapshots(|s| tags.iter().all(|t| s.tags.contains(t)))
            .map_err(failed(&self.location))?;
        let now = rustic_core::jiff::Zoned::now();
        let decided = options.apply(snapshots, &now).map_err(failed(&self.location))?;
        let (kept, gone): (Vec<_>, Vec<_>) = decided.into_iter().partition(|f| f.keep);
        let ids: Vec<_> = gone.iter().map(|f| f.snapshot.id).collect();
        if !ids.is_empty() {
            self.repo.delete_snapshots(&ids).map_err(failed(&self.location))?;
        }
        Ok(Forgotten {
            removed: gone.iter().map(|f| f.snapshot.id.to_hex().as_str().to_string()).collect(),
            kept: kept.len(),
        })
    }

    /// Frees what no snapshot uses any more, the way rustic does it without a lock: packs are
    /// marked now and deleted by a prune at least 23 hours later, so a backup writing beside it
    /// (another app into the same repository) never loses a pack it counts on.
    pub fn prune(&self) -> Result<Pruned, RepoError> {
        let options = PruneOptions::default();
        let plan = self.repo.prune_plan(&options).map_err(failed(&self.location))?;
        let stats = &plan.stats;
        let pruned = Pruned {
            packs_marked: stats.packs_to_delete.remove,
            bytes_marked: stats.size_to_delete.remove,
            packs_unused: stats.packs_unref,
        };
        self.repo.prune(&options, plan).map_err(failed(&self.location))?;
        Ok(pruned)
    }

    /// The repository, indexed for writing a backup.
    pub(crate) fn for_backup(self) -> Result<(String, Repository<IndexedIdsStatus>), RepoError> {
        let location = self.location;
        let repo = self.repo.to_indexed_ids().map_err(failed(&location))?;
        Ok((location, repo))
    }

    /// The repository, indexed for reading files.
    pub(crate) fn for_reading(self) -> Result<(String, Repository<IndexedFullStatus>), RepoError> {
        let location = self.location;
        let repo = self.repo.to_indexed().map_err(failed(&location))?;
        Ok((location, repo))
    }
}

/// restic's keep rules (`--keep-last`, `--keep-hourly`, …); 0 leaves a rule out. At least one
/// rule is needed: an empty set would forget everything.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Keep {
    pub last: u32,
    pub hourly: u32,
    pub daily: u32,
    pub weekly: u32,
    pub monthly: u32,
    pub yearly: u32,
}

impl Keep {
    /// The most any rule keeps (a century of daily snapshots).
    pub const MAX: u32 = 36_500;

    pub fn is_empty(&self) -> bool {
        self.rules().iter().all(|(_, n)| *n == 0)
    }

    fn rules(&self) -> [(&'static str, u32); 6] {
        [
            ("last", self.last),
            ("hourly", self.hourly),
            ("daily", self.daily),
            ("weekly", self.weekly),
            ("monthly", self.monthly),
            ("yearly", self.yearly),
        ]
    }

    /// As restic's flags read: `--keep-daily 7 --keep-weekly 4`.
    pub fn describe(&self) -> String {
        let parts: Vec<String> =
            self.rules().iter().filter(|(_, n)| *n > 0).map(|(rule, n)| format!("--keep-{rule} {n}")).collect();
        if parts.is_empty() {
            "keep everything".into()
        } else {
            parts.join(" ")
        }
    }

    fn options(&self) -> Result<KeepOptions, RepoError> {
        if self.is_empty() {
            return Err(RepoError::Config("give at least one keep rule (last, hourly, daily, …)".into()));
        }
        if let Some((rule, n)) = self.rules().into_iter().find(|(_, n)| *n > Keep::MAX) {
            return Err(RepoError::Config(format!("keep {rule} {n}: at most {}", Keep::MAX)));
        }
        let n = |v: u32| (v > 0).then(|| i32::try_from(v).unwrap_or(i32::MAX));
        let mut o = KeepOptions::default();
        o.keep_last = n(self.last);
        o.keep_hourly = n(self.hourly);
        o.keep_daily = n(self.daily);
        o.keep_weekly = n(self.weekly);
        o.keep_monthly = n(self.monthly);
        o.keep_yearly = n(self.yearly);
        Ok(o)
    }
}

/// What [`Repo::forget`] removed (full snapshot ids) and how many it kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forgotten {
    pub removed: Vec<String>,
    pub kept: usize,
}

/// What [`Repo::prune`] marked for deletion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pruned {
    pub packs_marked: u64,
    pub bytes_marked: u64,
    /// Packs no index names (left by an interrupted backup).
    pub packs_unused: u64,
}

/// A snapshot as Potluck shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Snapshot {
    /// The full id (restic prints its first eight characters).
    pub id: String,
    /// RFC 3339.
    pub time: String,
    pub hostname: String,
    pub tags: Vec<String>,
    pub paths: Vec<String>,
    pub files: u64,
    pub bytes: u64,
}

impl Snapshot {
    pub(crate) fn of(s: &rustic_core::repofile::SnapshotFile) -> Snapshot {
        let summary = s.summary.as_ref();
        Snapshot {
            id: s.id.to_hex().as_str().to_string(),
            time: s.time.timestamp().to_string(),
            hostname: s.hostname.clone(),
            tags: s.tags.iter().cloned().collect(),
            paths: s.paths.iter().cloned().collect(),
            files: summary.map_or(0, |x| x.total_files_processed),
            bytes: summary.map_or(0, |x| x.total_bytes_processed),
        }
    }

    /// The value of one of Potluck's `key:value` tags.
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags.iter().find_map(|t| t.strip_prefix(key)?.strip_prefix(':'))
    }

    pub fn short_id(&self) -> &str {
        &self.id[..self.id.len().min(8)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_and_passwords() {
        assert_eq!(Location::parse("/srv/restic").unwrap(), Location::Local("/srv/restic".into()));
        assert_eq!(Location::parse("local:/srv/r").unwrap(), Location::Local("/srv/r".into()));
        assert!(Location::parse("rest:https://x/repo").unwrap_err().to_string().contains("not supported"));
        let bucket = Location::parse("s3:http://127.0.0.1:9000/bucket/coop").unwrap();
        assert_eq!(bucket.remote_host(), Some(("127.0.0.1".to_string(), 9000)));
        let err = Repo::open_or_init(&bucket, &Password::new("x").unwrap()).err().expect("no keys, no repository");
        assert!(err.to_string().contains("no access key"), "{err}");
        assert!(Location::parse("").is_err());
        let remote = Location::parse("sftp:backup@host:/srv/r").unwrap();
        assert!(remote.is_remote());
        assert_eq!(remote.display(), "sftp://backup@host:22//srv/r");
        let err = Repo::open_or_init(&remote, &Password::new("x").unwrap()).err().expect("no key, no repository");
        assert!(err.to_string().contains("no SSH key"), "{err}");
        assert!(!format!("{:?}", Password::new("hunter2").unwrap()).contains("hunter2"));
        assert!(Password::new("").is_err());
    }

    #[test]
    fn a_repository_is_created_once_and_refuses_a_wrong_password() {
        let dir = tempfile::tempdir().unwrap();
        let at = Location::Local(dir.path().join("repo"));
        let pw = Password::new("correct horse").unwrap();
        let first = Repo::open_or_init(&at, &pw).unwrap();
        assert!(first.snapshots(None).unwrap().is_empty());
        drop(first);
        // Opening again finds the same repository rather than creating another.
        Repo::open_or_init(&at, &pw).unwrap();
        let wrong = Repo::open_or_init(&at, &Password::new("battery staple").unwrap());
        assert!(wrong.is_err(), "a wrong password opened the repository");
    }

    /// A snapshot of one small file, with `tags`.
    fn snapshot_with(at: &Location, pw: &Password, tags: &str, content: &[u8]) -> String {
        use crate::stream::{OnProgress, Part, TarSource};
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_size(content.len() as u64);
        b.append_data(&mut h, "data/file", content).unwrap();
        let tarball = b.into_inner().unwrap();
        let root = PathBuf::from("/var/lib/docker/volumes/s_data/_data");
        let part = Part {
            snapshot_path: root.clone(),
            open: Box::new(move || Ok(Box::new(std::io::Cursor::new(tarball)) as Box<dyn std::io::Read + Send>)),
        };
        let (_, repo) = Repo::open_or_init(at, pw).unwrap().for_backup().unwrap();
        let progress: OnProgress = Arc::new(|_| {});
        let source = TarSource::start(vec![part], progress);
        let mut opts = rustic_core::BackupOptions::default();
        opts.parent_opts.force = true;
        opts.no_scan = true;
        let snap = rustic_core::SnapshotOptions::default().add_tags(tags).unwrap().to_snapshot().unwrap();
        let snap = repo.archive(&opts, &source, snap, std::slice::from_ref(&root)).unwrap();
        source.finish().unwrap();
        snap.id.to_hex().as_str().to_string()
    }

    #[test]
    fn keep_rules_read_like_restic_flags_and_refuse_nothing_kept() {
        let k = Keep { daily: 7, weekly: 4, ..Keep::default() };
        assert_eq!(k.describe(), "--keep-daily 7 --keep-weekly 4");
        assert!(Keep::default().options().unwrap_err().to_string().contains("at least one keep rule"));
        assert!(Keep { last: Keep::MAX + 1, ..Keep::default() }.options().is_err());
    }

    #[test]
    fn forget_keeps_the_rules_within_the_tagged_group_and_prune_runs_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        let at = Location::Local(dir.path().join("repo"));
        let pw = Password::new("pw").unwrap();
        let scheduled: Vec<String> =
            (0..3u8).map(|i| snapshot_with(&at, &pw, "stack:s,trigger:schedule", &[i; 100])).collect();
        let manual = snapshot_with(&at, &pw, "stack:s,trigger:manual", b"by hand");
        let other = snapshot_with(&at, &pw, "stack:t,trigger:schedule", b"another app");
        let repo = Repo::open_or_init(&at, &pw).unwrap();
        let tags = ["stack:s".to_string(), "trigger:schedule".to_string()];
        let gone = repo.forget(&tags, &Keep { last: 1, ..Keep::default() }).unwrap();
        assert_eq!(gone.kept, 1);
        let mut removed = gone.removed.clone();
        removed.sort();
        let mut expected = scheduled[..2].to_vec();
        expected.sort();
        assert_eq!(removed, expected, "the two older scheduled snapshots go");
        let left: Vec<String> = repo.snapshots(None).unwrap().into_iter().map(|s| s.id).collect();
        for id in [&scheduled[2], &manual, &other] {
            assert!(left.contains(id), "{id} should stay: {left:?}");
        }
        assert_eq!(left.len(), 3);
        // Forgetting again keeps the same one; prune marks what the forgotten ones alone held.
        assert!(repo.forget(&tags, &Keep { last: 1, ..Keep::default() }).unwrap().removed.is_empty());
        let pruned = repo.prune().unwrap();
        assert!(pruned.packs_marked <= 2, "{pruned:?}");
        // The kept snapshot still reads back whole after the prune.
        let (_, reading) = Repo::open_or_init(&at, &pw).unwrap().for_reading().unwrap();
        let snap = reading.get_snapshot_from_str(&scheduled[2], |_| true).unwrap();
        reading.node_from_snapshot_and_path(&snap, "/var/lib/docker/volumes/s_data/_data/file").unwrap();
    }
}
