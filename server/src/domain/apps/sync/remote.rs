//! The git side of a sync, blocking (run it with `spawn_blocking`): one bare clone per
//! collective under `data/sync/<id>.git`, fetched from and pushed to the collective's remote.
//! Everything read from the remote is untrusted and bounded: the transfer (size and time, as
//! for recipes), the files (how many, each one's size, all of them), the commits walked.

use super::{decide, split_path, FileState};
use crate::domain::apps::tree::{MAX_ENTRIES, MAX_FILE, MAX_UNPACKED};
use crate::domain::recipes::store::{self, Credential};
use git2::{build::TreeUpdateBuilder, FetchOptions, FileMode, ObjectType, Oid, PushOptions, Repository, Signature};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// How many commits are walked back to find who changed a file ...
const WALK_LIMIT: usize = 1_000;
/// ... for at most this many files a round (the others name the head).
const ORIGINS: usize = 100;
/// A tree of the remote read at most this big (an entry is about 30 bytes and its name).
const MAX_TREE: u64 = (MAX_ENTRIES as u64) * 300;
/// A commit object read at most this big (its message is shown, cut, on a page).
const MAX_COMMIT: u64 = 1 << 20;
/// A collective's clone is made again from nothing when it grows beyond this.
const MAX_CLONE_BYTES: u64 = 512 << 20;
/// Where Potluck's commits wait for their push.
const OUTGOING_REF: &str = "refs/potluck/outgoing";

/// A collective's remote, as the sync reaches it.
#[derive(Clone)]
pub struct Remote {
    pub url: String,
    pub branch: String,
    pub credential: Option<Credential>,
}

/// A file of the remote's tree: its blob id and its text.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteFile {
    pub blob: String,
    pub text: String,
}

/// One commit Potluck makes: the files it writes (`None` removes one), by whom and why.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub files: Vec<(String, Option<String>)>,
    pub author: String,
    pub email: String,
    /// When the change was made (milliseconds).
    pub at: i64,
    pub message: String,
}

/// The commit on the remote that last changed a file, for an incoming change.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    pub commit: String,
    pub author: String,
    pub summary: String,
    /// Seconds.
    pub at: i64,
}

/// What one round with the remote found and did.
pub struct Round {
    /// The remote's head after the round (Potluck's last commit when it pushed).
    pub head: Option<String>,
    /// The remote's files before Potluck's commits.
    pub remote: BTreeMap<String, RemoteFile>,
    /// Each path's state.
    pub states: BTreeMap<String, FileState>,
    /// The commits pushed: (commit id, the paths it wrote).
    pub pushed: Vec<(String, Vec<String>)>,
    /// Who last changed each incoming or conflicting path on the remote.
    pub origins: BTreeMap<String, Origin>,
    /// The push was refused (someone pushed first): fetch and try again.
    pub refused: Option<String>,
}

/// The sides Potluck knows before a round: its own files and the base, as blob ids.
pub struct Sides {
    pub potluck: BTreeMap<String, String>,
    pub base: BTreeMap<String, String>,
    /// Paths whose remote change is already waiting with this blob (no need to walk again).
    pub known: BTreeSet<(String, String)>,
}

pub fn blob_id(text: &str) -> String {
    Oid::hash_object(ObjectType::Blob, text.as_bytes()).map(|o| o.to_string()).unwrap_or_default()
}

/// How much a directory holds on disk.
fn size_of(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => size_of(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map(|m| m.len()).unwrap_or(0),
            _ => 0,
        })
        .sum()
}

fn open(dir: &Path) -> Result<Repository, String> {
    // Each fetch may bring up to its bound of objects: a clone that grew too big starts over.
    if size_of(dir) > MAX_CLONE_BYTES {
        let _ = std::fs::remove_dir_all(dir);
    }
    let repo = match Repository::open_bare(dir) {
        Ok(r) => r,
        Err(_) => {
            std::fs::create_dir_all(dir).map_err(|e| format!("cannot make {}: {e}", dir.display()))?;
            Repository::init_bare(dir).map_err(|e| e.message().to_string())?
        }
    };
    // No remote is kept in the clone's configuration: every fetch and push names the URL of its
    // own run, so a run never sends its credential to a URL another run set.
    let _ = repo.remote_delete("origin");
    Ok(repo)
}

fn fetch_options(credential: Option<Credential>) -> FetchOptions<'static> {
    let mut cb = store::callbacks(credential);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(store::MAX_TRANSFER_SECS);
    cb.transfer_progress(move |p| {
        p.received_bytes() <= store::MAX_TRANSFER_BYTES && std::time::Instant::now() < deadline
    });
    let mut fo = FetchOptions::new();
    fo.remote_callbacks(cb);
    fo.download_tags(git2::AutotagOption::None);
    // The credential goes to the URL given, never where a redirect points.
    fo.follow_redirects(git2::RemoteRedirect::None);
    fo
}

/// Reaches the remote with the credential (a fetch of the branch into a throw-away clone, so
/// redirects are refused as in a sync): set-up checks this before anything is kept.
pub fn probe(remote: &Remote, scratch: &Path) -> Result<(), String> {
    let dir = scratch.join(format!("probe-{}", uuid::Uuid::new_v4().simple()));
    let outcome = open(&dir).and_then(|repo| fetch(&repo, remote).map(|_| ()));
    let _ = std::fs::remove_dir_all(&dir);
    outcome
}

/// Fetches the branch; its head, or `None` while the remote has no such branch.
fn fetch(repo: &Repository, remote: &Remote) -> Result<Option<Oid>, String> {
    let tracking = format!("refs/remotes/origin/{}", remote.branch);
    // A branch removed at the remote must not be read from a stale tracking ref.
    if let Ok(mut r) = repo.find_reference(&tracking) {
        let _ = r.delete();
    }
    let mut origin = repo.remote_anonymous(&remote.url).map_err(|e| e.message().to_string())?;
    let spec = format!("+refs/heads/{}:{tracking}", remote.branch);
    origin
        .fetch(&[spec.as_str()], Some(&mut fetch_options(remote.credential.clone())), None)
        .map_err(|e| format!("cannot fetch {}: {}", remote.url, e.message()))?;
    Ok(repo.refname_to_id(&tracking).ok())
}

/// The app files of a commit's tree (`servers/<server>/<domain>.env`), bounded: every entry
/// under `servers/` counts, and an object's size is read from its header before the object;
/// anything that is not an app file is left alone.
pub fn files(repo: &Repository, commit: Option<Oid>) -> Result<BTreeMap<String, RemoteFile>, String> {
    let mut out = BTreeMap::new();
    let Some(commit) = commit else { return Ok(out) };
    let odb = repo.odb().map_err(|e| e.message().to_string())?;
    let size = |id: Oid| odb.read_header(id).map(|(n, _)| n as u64).map_err(|e| e.message().to_string());
    let commit = checked_commit(repo, commit)?;
    let tree = checked_tree(repo, commit.tree_id())?;
    let Ok(servers) = tree.get_path(Path::new("servers")) else { return Ok(out) };
    if servers.kind() != Some(ObjectType::Tree) || size(servers.id())? > MAX_TREE {
        return Err("the remote's servers/ directory is not a directory of server directories".into());
    }
    let Ok(servers) = repo.find_tree(servers.id()) else { return Ok(out) };
    let (mut total, mut entries) = (0u64, servers.len());
    for dir in servers.iter() {
        if dir.kind() != Some(ObjectType::Tree) {
            continue;
        }
        if size(dir.id())? > MAX_TREE {
            return Err(format!("the remote's servers/{} holds too many entries", dir.name().unwrap_or("?")));
        }
        let Ok(sub) = repo.find_tree(dir.id()) else { continue };
        entries += sub.len();
        if entries > MAX_ENTRIES {
            return Err(format!("the remote holds more than {MAX_ENTRIES} entries under servers/"));
        }
        for f in sub.iter() {
            let path = format!("servers/{}/{}", dir.name().unwrap_or(""), f.name().unwrap_or(""));
            if f.kind() != Some(ObjectType::Blob)
                || f.filemode() == i32::from(FileMode::Link)
                || split_path(&path).is_none()
            {
                continue;
            }
            let n = size(f.id())?;
            if n > MAX_FILE {
                return Err(format!("the remote's {path} is larger than {} KiB", MAX_FILE >> 10));
            }
            total += n;
            if total > MAX_UNPACKED {
                return Err(format!("the remote's app files are larger than {} MiB", MAX_UNPACKED >> 20));
            }
            let blob = repo.find_blob(f.id()).map_err(|e| e.message().to_string())?;
            let text = match std::str::from_utf8(blob.content()) {
                Ok(t) if !t.contains('\0') => t,
                _ => return Err(format!("the remote's {path} is not a text file (UTF-8, no NUL bytes)")),
            };
            out.insert(path, RemoteFile { blob: f.id().to_string(), text: text.to_string() });
        }
    }
    Ok(out)
}

/// A commit of the remote, its size checked before it is read.
fn checked_commit(repo: &Repository, id: Oid) -> Result<git2::Commit<'_>, String> {
    let odb = repo.odb().map_err(|e| e.message().to_string())?;
    match odb.read_header(id) {
        Ok((n, ObjectType::Commit)) if n as u64 <= MAX_COMMIT => {
            repo.find_commit(id).map_err(|e| e.message().to_string())
        }
        Ok(_) => Err(format!("the remote's commit {id} is not a commit of at most {} KiB", MAX_COMMIT >> 10)),
        Err(e) => Err(e.message().to_string()),
    }
}

/// A tree of the remote, its size checked before it is read.
fn checked_tree(repo: &Repository, id: Oid) -> Result<git2::Tree<'_>, String> {
    let odb = repo.odb().map_err(|e| e.message().to_string())?;
    match odb.read_header(id) {
        Ok((n, ObjectType::Tree)) if n as u64 <= MAX_TREE => repo.find_tree(id).map_err(|e| e.message().to_string()),
        Ok(_) => Err(format!("the remote's tree {id} is larger than {} KiB", MAX_TREE >> 10)),
        Err(e) => Err(e.message().to_string()),
    }
}

/// The blob at `servers/<server>/<file>` of a commit, each tree on the way checked.
fn blob_at(repo: &Repository, commit: &git2::Commit, path: &str) -> Option<Oid> {
    let mut tree = checked_tree(repo, commit.tree_id()).ok()?;
    let parts: Vec<&str> = path.split('/').collect();
    for (i, part) in parts.iter().enumerate() {
        let entry = tree.get_name(part)?;
        if i + 1 == parts.len() {
            return Some(entry.id());
        }
        if entry.kind() != Some(ObjectType::Tree) {
            return None;
        }
        let id = entry.id();
        drop(entry);
        tree = checked_tree(repo, id).ok()?;
    }
    None
}

/// The newest commit (from `head`, back to `since` and at most [`WALK_LIMIT`] commits along
/// first parents) that gave `path` the content it has; the head when none is found.
fn origin_of(repo: &Repository, head: Oid, since: Option<Oid>, path: &str) -> Origin {
    let describe = |c: &git2::Commit| {
        let a = c.author();
        Origin {
            commit: c.id().to_string(),
            author: format!(
                "{} <{}>",
                String::from_utf8_lossy(a.name_bytes()).chars().take(100).collect::<String>(),
                String::from_utf8_lossy(a.email_bytes()).chars().take(100).collect::<String>()
            ),
            summary: String::from_utf8_lossy(c.message_bytes())
                .lines()
                .next()
                .unwrap_or("")
                .chars()
                .take(200)
                .collect(),
            at: c.time().seconds(),
        }
    };
    let head_origin = || checked_commit(repo, head).map(|c| describe(&c)).unwrap_or_default();
    // No `hide` and no sorting: either makes libgit2 walk the whole range before the first
    // commit, and the limit would hold nothing.
    let Ok(mut walk) = repo.revwalk() else { return head_origin() };
    let _ = walk.simplify_first_parent();
    let _ = walk.push(head);
    for oid in walk.take(WALK_LIMIT).flatten() {
        if Some(oid) == since {
            break;
        }
        let Ok(c) = checked_commit(repo, oid) else { break };
        let mine = blob_at(repo, &c, path);
        let parent =
            c.parent_id(0).ok().and_then(|p| checked_commit(repo, p).ok()).and_then(|p| blob_at(repo, &p, path));
        if mine != parent {
            return describe(&c);
        }
    }
    head_origin()
}

/// One round: fetch, compare the three sides, write Potluck's changes as commits on the
/// remote's head and push them (not forced: a refusal is reported for another round).
/// `outgoing` turns the outgoing paths into commits (attribution is the caller's).
pub fn round(
    dir: &Path,
    remote: &Remote,
    since: Option<&str>,
    sides: &Sides,
    outgoing: impl FnOnce(&BTreeMap<String, FileState>) -> Vec<Outgoing>,
    committer: &str,
) -> Result<Round, String> {
    let repo = open(dir)?;
    let head = fetch(&repo, remote)?;
    let remote_files = files(&repo, head)?;
    let paths: BTreeSet<&String> = sides.potluck.keys().chain(sides.base.keys()).chain(remote_files.keys()).collect();
    let states: BTreeMap<String, FileState> = paths
        .into_iter()
        .map(|p| {
            let state = decide(
                sides.potluck.get(p).map(String::as_str),
                sides.base.get(p).map(String::as_str),
                remote_files.get(p).map(|f| f.blob.as_str()),
            );
            (p.clone(), state)
        })
        .collect();
    let since = since.and_then(|s| Oid::from_str(s).ok()).filter(|s| repo.find_commit(*s).is_ok());
    let mut origins = BTreeMap::new();
    if let Some(h) = head {
        for (path, state) in &states {
            if matches!(state, FileState::Incoming | FileState::Conflict) {
                let blob = remote_files.get(path).map(|f| f.blob.clone()).unwrap_or_default();
                if !sides.known.contains(&(path.clone(), blob)) {
                    let origin = if origins.len() < ORIGINS {
                        origin_of(&repo, h, since, path)
                    } else {
                        origin_of(&repo, h, Some(h), path)
                    };
                    origins.insert(path.clone(), origin);
                }
            }
        }
    }
    let commits = outgoing(&states);
    let mut round = Round {
        head: head.map(|h| h.to_string()),
        remote: remote_files,
        states,
        pushed: Vec::new(),
        origins,
        refused: None,
    };
    if commits.is_empty() {
        return Ok(round);
    }
    let mut parent = head.map(|h| repo.find_commit(h)).transpose().map_err(|e| e.message().to_string())?;
    let mut tree = match &parent {
        Some(p) => p.tree().map_err(|e| e.message().to_string())?,
        None => {
            let empty = repo.treebuilder(None).and_then(|b| b.write()).map_err(|e| e.message().to_string())?;
            repo.find_tree(empty).map_err(|e| e.message().to_string())?
        }
    };
    let now = git2::Time::new(time::OffsetDateTime::now_utc().unix_timestamp(), 0);
    let committer_email = committer;
    let committer = Signature::new("Potluck", committer, &now).map_err(|e| e.message().to_string())?;
    let mut pushed = Vec::new();
    for c in &commits {
        let mut update = TreeUpdateBuilder::new();
        for (path, text) in &c.files {
            match text {
                Some(text) => {
                    let blob = repo.blob(text.as_bytes()).map_err(|e| e.message().to_string())?;
                    update.upsert(path.as_str(), blob, FileMode::Blob);
                }
                None => {
                    update.remove(path.as_str());
                }
            }
        }
        let new_tree = update.create_updated(&repo, &tree).map_err(|e| e.message().to_string())?;
        let new_tree = repo.find_tree(new_tree).map_err(|e| e.message().to_string())?;
        let when = git2::Time::new(c.at.div_euclid(1000), 0);
        // Names come from identity providers: what git cannot take in a signature is dropped,
        // and a name it still refuses is Potluck's (attribution never stops a sync).
        let author = Signature::new(&signable(&c.author, "Potluck"), &signable(&c.email, committer_email), &when)
            .or_else(|_| Signature::new("Potluck", committer_email, &when))
            .map_err(|e| e.message().to_string())?;
        let parents: Vec<&git2::Commit> = parent.iter().collect();
        let oid = repo
            .commit(None, &author, &committer, &c.message, &new_tree, &parents)
            .map_err(|e| e.message().to_string())?;
        pushed.push((oid.to_string(), c.files.iter().map(|(p, _)| p.clone()).collect()));
        parent = Some(repo.find_commit(oid).map_err(|e| e.message().to_string())?);
        tree = new_tree;
    }
    let last = parent.map(|p| p.id()).ok_or("no commit")?;
    repo.reference(OUTGOING_REF, last, true, "potluck sync").map_err(|e| e.message().to_string())?;
    match push(&repo, remote) {
        Ok(()) => {
            round.head = Some(last.to_string());
            round.pushed = pushed;
        }
        Err(why) => round.refused = Some(why),
    }
    Ok(round)
}

/// A name or address as a signature may hold it: no angle brackets or control characters,
/// at most 200 characters, `fallback` when nothing is left.
fn signable(text: &str, fallback: &str) -> String {
    let kept: String = text
        .chars()
        .filter(|c| !c.is_control() && *c != '<' && *c != '>')
        .take(200)
        .collect::<String>()
        .trim()
        .to_string();
    if kept.is_empty() {
        fallback.to_string()
    } else {
        kept
    }
}

/// Pushes the outgoing commits to the branch, never forced; `Err` says why the remote refused.
fn push(repo: &Repository, remote: &Remote) -> Result<(), String> {
    let mut origin = repo.remote_anonymous(&remote.url).map_err(|e| e.message().to_string())?;
    let refused = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let mut cb = store::callbacks(remote.credential.clone());
    let seen = refused.clone();
    cb.push_update_reference(move |name, status| {
        if let Some(why) = status {
            if let Ok(mut s) = seen.lock() {
                s.push(format!("{name}: {why}"));
            }
        }
        Ok(())
    });
    let mut options = PushOptions::new();
    options.remote_callbacks(cb);
    options.follow_redirects(git2::RemoteRedirect::None);
    let spec = format!("{OUTGOING_REF}:refs/heads/{}", remote.branch);
    origin.push(&[spec.as_str()], Some(&mut options)).map_err(|e| e.message().to_string())?;
    let refused = refused.lock().map(|r| r.clone()).unwrap_or_default();
    if refused.is_empty() {
        Ok(())
    } else {
        Err(refused.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A repository whose one commit holds `files` (path, bytes).
    fn repo_with(files: &[(&str, &[u8])]) -> (tempfile::TempDir, Repository, Oid) {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init_bare(dir.path()).unwrap();
        let empty = repo.treebuilder(None).unwrap().write().unwrap();
        let mut update = TreeUpdateBuilder::new();
        for (path, bytes) in files {
            update.upsert(*path, repo.blob(bytes).unwrap(), FileMode::Blob);
        }
        let tree = update.create_updated(&repo, &repo.find_tree(empty).unwrap()).unwrap();
        let sig = Signature::now("Lu", "lu@example.org").unwrap();
        let commit = repo.commit(None, &sig, &sig, "files", &repo.find_tree(tree).unwrap(), &[]).unwrap();
        (dir, repo, commit)
    }

    #[test]
    fn only_app_files_are_read_and_each_is_bounded() {
        let env: &[u8] = b"TYPE=hello:0.1.0+1.0\n";
        let (_d, repo, c) = repo_with(&[
            ("README.md", b"notes"),
            ("servers/local/cloud.example.org.env", env),
            ("servers/local/notes.md", b"not an app"),
            ("servers/local/bad name.env", env),
            ("servers/.hidden/x.example.org.env", env),
            ("elsewhere/local/x.example.org.env", env),
        ]);
        let read = files(&repo, Some(c)).unwrap();
        assert_eq!(read.keys().collect::<Vec<_>>(), ["servers/local/cloud.example.org.env"]);
        assert_eq!(read["servers/local/cloud.example.org.env"].blob, blob_id("TYPE=hello:0.1.0+1.0\n"));

        // A megabyte of zeros packs small; its size is read before its content, and refused.
        let zeros = vec![b'0'; 1 << 20];
        let (_d, repo, c) = repo_with(&[("servers/local/bomb.example.org.env", &zeros)]);
        assert!(files(&repo, Some(c)).unwrap_err().contains("larger than 256 KiB"));
        let (_d, repo, c) = repo_with(&[("servers/local/nul.example.org.env", b"A=1\0")]);
        assert!(files(&repo, Some(c)).unwrap_err().contains("not a text file"));
        let (_d, repo, c) = repo_with(&[("servers/local/latin.example.org.env", b"A=\xe9")]);
        assert!(files(&repo, Some(c)).unwrap_err().contains("not a text file"));
    }

    #[test]
    fn names_from_identity_providers_are_made_signable() {
        assert_eq!(signable("Ada <Lovelace>\nInjected: header", "x"), "Ada LovelaceInjected: header");
        assert_eq!(signable(" <> ", "Potluck"), "Potluck");
        assert_eq!(signable(&"a".repeat(500), "x").len(), 200);
        let when = git2::Time::new(0, 0);
        assert!(Signature::new(&signable("Eve <evil>", "x"), &signable("e<v>e@example.org", "x"), &when).is_ok());
    }
}
