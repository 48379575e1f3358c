//! Reading recipes from git with git2, never through a shared working tree: every read is from a
//! tag's or a commit's tree. (A plain directory can be read too, for `--chaos` and local work.)

use crate::adapters::engine::load::RecipeFiles;
use git2::{ObjectType, Repository};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("{path} is not a git repository: {message}")]
    NotARepo { path: String, message: String },
    #[error("no version {0:?} in this recipe")]
    NoSuchVersion(String),
    #[error("git: {0}")]
    Git(#[from] git2::Error),
}

/// A tag of a recipe repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagInfo {
    pub name: String,
    pub annotated: bool,
    /// The commit it points to (hex).
    pub commit: String,
    /// The annotation's message (empty for lightweight tags).
    pub message: String,
    /// Seconds since the epoch: the tagger's time, else the commit's.
    pub time: i64,
}

pub fn open(path: &Path) -> Result<Repository, GitError> {
    Repository::open(path)
        .map_err(|e| GitError::NotARepo { path: path.display().to_string(), message: e.message().to_string() })
}

pub fn tags(repo: &Repository) -> Result<Vec<TagInfo>, GitError> {
    let mut out = Vec::new();
    let names = repo.tag_names(None)?;
    for name in names.iter().flatten().flatten() {
        let reference = repo.find_reference(&format!("refs/tags/{name}"))?;
        let object = reference.peel(ObjectType::Any)?;
        let (annotated, message, tag_time) = match repo.find_tag(reference.target().unwrap_or(git2::Oid::ZERO_SHA1)) {
            Ok(tag) => (
                true,
                tag.message().ok().flatten().unwrap_or_default().trim().to_string(),
                tag.tagger().map(|s| s.when().seconds()),
            ),
            Err(_) => (false, String::new(), None),
        };
        let commit = object.peel_to_commit()?;
        out.push(TagInfo {
            name: name.to_string(),
            annotated,
            commit: commit.id().to_string(),
            message,
            time: tag_time.unwrap_or_else(|| commit.time().seconds()),
        });
    }
    Ok(out)
}

/// Every file of the tree at `rev` (a tag, branch or commit), read without a checkout.
pub fn files_at(repo: &Repository, rev: &str, root: &Path) -> Result<RecipeFiles, GitError> {
    let object = repo.revparse_single(rev).map_err(|_| GitError::NoSuchVersion(rev.to_string()))?;
    let tree = object.peel_to_tree()?;
    let mut files = std::collections::BTreeMap::new();
    let mut failure = None;
    tree.walk(git2::TreeWalkMode::PreOrder, |dir, entry| {
        if entry.kind() == Some(ObjectType::Blob) {
            match entry.to_object(repo).and_then(|o| o.peel_to_blob()) {
                Ok(blob) if blob.size() <= 4 * 1024 * 1024 => {
                    files.insert(format!("{dir}{}", entry.name().unwrap_or_default()), blob.content().to_vec());
                }
                Ok(_) => {}
                Err(e) => {
                    failure = Some(e);
                    return git2::TreeWalkResult::Abort;
                }
            }
        }
        git2::TreeWalkResult::Ok
    })?;
    if let Some(e) = failure {
        return Err(e.into());
    }
    Ok(RecipeFiles { root: root.to_path_buf(), files })
}

/// HEAD's commit as abra shows it for chaos deploys: 8 hex digits, `+U` when the working tree
/// has uncommitted changes.
pub fn chaos_version(repo: &Repository) -> Result<String, GitError> {
    let head = repo.head()?.peel_to_commit()?;
    let short = head.id().to_string()[..8].to_string();
    let dirty = if repo.is_bare() {
        false
    } else {
        let mut opts = git2::StatusOptions::new();
        opts.include_untracked(true).include_ignored(false);
        !repo.statuses(Some(&mut opts))?.is_empty()
    };
    Ok(if dirty { format!("{short}+U") } else { short })
}

/// A recipe given on the command line: a directory (with or without git) or a repository.
pub struct LocalRecipe {
    pub path: PathBuf,
    pub repo: Option<Repository>,
}

impl LocalRecipe {
    pub fn open(path: &Path) -> Result<LocalRecipe, GitError> {
        let path = path
            .canonicalize()
            .map_err(|e| GitError::NotARepo { path: path.display().to_string(), message: e.to_string() })?;
        let repo = Repository::open(&path).ok();
        Ok(LocalRecipe { path, repo })
    }

    /// The recipe's name: its directory's name without `.git`.
    pub fn name(&self) -> String {
        let n = self.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        n.trim_end_matches(".git").to_string()
    }

    /// The names of the recipe's tags (none for a plain directory).
    pub fn tag_names(&self) -> Result<Vec<String>, GitError> {
        let Some(repo) = &self.repo else { return Ok(Vec::new()) };
        Ok(tags(repo)?.into_iter().map(|t| t.name).collect())
    }

    /// The files at `version`, or the working directory when `None`.
    pub fn files(&self, version: Option<&str>) -> Result<RecipeFiles, GitError> {
        match (version, &self.repo) {
            (Some(v), Some(repo)) => {
                files_at(repo, &format!("refs/tags/{v}"), &self.path).or_else(|_| files_at(repo, v, &self.path))
            }
            (Some(v), None) => Err(GitError::NoSuchVersion(v.to_string())),
            (None, _) if self.repo.as_ref().is_some_and(Repository::is_bare) => {
                let repo = self.repo.as_ref().ok_or_else(|| GitError::NoSuchVersion("HEAD".into()))?;
                files_at(repo, "HEAD", &self.path)
            }
            (None, _) => RecipeFiles::from_dir(&self.path)
                .map_err(|e| GitError::NotARepo { path: self.path.display().to_string(), message: e.to_string() }),
        }
    }
}

/// libgit2's socket timeouts, process-wide: a remote that accepts and never answers fails
/// within a minute instead of holding a thread forever. Called once at start-up (`main`,
/// `serve::prepare`) before Potluck uses libgit2.
#[allow(unsafe_code)]
pub fn set_network_timeouts() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: these only store an integer in libgit2's global options; git2 marks them
        // unsafe because they must not race with other libgit2 calls, and they run once,
        // before any recipe is cloned or fetched.
        unsafe {
            let _ = git2::opts::set_server_connect_timeout_in_milliseconds(20_000);
            let _ = git2::opts::set_server_timeout_in_milliseconds(30_000);
        }
    });
}
