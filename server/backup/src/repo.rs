//! Restic repositories: opened when they exist, created when they do not, with restic's password
//! conventions. Snapshots carry Potluck's tags (`stack:`, `app:`, `recipe:`, `version:`,
//! `trigger:`) so that backups of one app are found among a collective's others.

use rustic_backend::LocalBackend;
use rustic_core::{
    ConfigOptions, Credentials, IndexedFullStatus, IndexedIdsStatus, KeyOptions, OpenStatus, Repository,
    RepositoryBackends, RepositoryOptions,
};
use serde::Serialize;
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

/// Where a repository is. Only local directories for now; `sftp:` and `s3:` locations are
/// refused by name so that a typo is not taken for a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Local(PathBuf),
}

impl Location {
    /// Parses restic's forms: `/path`, `local:/path`.
    pub fn parse(raw: &str) -> Result<Location, RepoError> {
        let raw = raw.trim();
        if let Some(path) = raw.strip_prefix("local:") {
            return Location::parse_path(path);
        }
        if let Some((scheme, _)) = raw.split_once(':') {
            if !scheme.contains('/') && scheme.len() > 1 {
                return Err(RepoError::Config(format!(
                    "repository {raw:?}: {scheme}: repositories are not supported yet; use a local directory"
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

    pub fn display(&self) -> String {
        match self {
            Location::Local(p) => p.display().to_string(),
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
        let be = match location {
            Location::Local(path) => {
                std::fs::create_dir_all(path)
                    .map_err(|e| RepoError::Repository { location: name.clone(), message: e.to_string() })?;
                LocalBackend::new(path.to_string_lossy(), Vec::<(String, String)>::new()).map_err(failed(&name))?
            }
        };
        let backends = RepositoryBackends::new(Arc::new(be), None);
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
        assert!(Location::parse("s3:https://x/bucket").unwrap_err().to_string().contains("not supported yet"));
        assert!(Location::parse("").is_err());
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
}
