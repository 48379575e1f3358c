//! Real recipe repositories for the tests, built with git2 from a recipe directory in the
//! layout of ../shared/recipes: top-level files (the default branch's last commit), `TAGS`
//! (tag, kind, object, date, subject per line) and `versions/<tag>/` snapshots. Each snapshot
//! becomes a commit tagged as `TAGS` says (annotated or lightweight, with its date and subject),
//! carrying the `release/<tag>` notes published up to then.

use git2::{IndexAddOption, Oid, Repository, RepositoryInitOptions, Signature, Time};
use std::path::{Path, PathBuf};

/// One line of a `TAGS` file.
#[derive(Debug, Clone)]
pub struct TagLine {
    pub name: String,
    pub annotated: bool,
    /// Seconds since the epoch and the UTC offset in minutes.
    pub time: (i64, i32),
    pub subject: String,
}

pub fn read_tags(recipe_dir: &Path) -> Vec<TagLine> {
    let Ok(text) = std::fs::read_to_string(recipe_dir.join("TAGS")) else { return Vec::new() };
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            let when = time::OffsetDateTime::parse(cols[3], &time::format_description::well_known::Rfc3339)
                .unwrap_or_else(|e| panic!("date {:?} in {}: {e}", cols[3], recipe_dir.display()));
            TagLine {
                name: cols[0].to_string(),
                annotated: cols[1] == "tag",
                time: (when.unix_timestamp(), when.offset().whole_minutes().into()),
                subject: cols.get(4).map(|s| s.to_string()).unwrap_or_default(),
            }
        })
        .collect()
}

/// The directory of a shared recipe; fails loudly when ../shared is missing.
pub fn shared_recipe(name: &str) -> PathBuf {
    let dir = crate::swarm::shared_dir().join("recipes").join(name);
    assert!(dir.is_dir(), "shared recipe {} is missing (../shared must be present)", dir.display());
    dir
}

/// The directory of one of the project's own fixture recipes (tests/fixtures/recipes).
pub fn fixture_recipe(name: &str) -> PathBuf {
    crate::workspace_root().join("tests/fixtures/recipes").join(name)
}

fn signature(time: (i64, i32)) -> Signature<'static> {
    Signature::new("Recipe Maintainer", "maintainer@example.org", &Time::new(time.0, time.1)).expect("signature")
}

fn clear_worktree(root: &Path) {
    for entry in std::fs::read_dir(root).expect("worktree") {
        let entry = entry.expect("entry");
        if entry.file_name() == ".git" {
            continue;
        }
        let path = entry.path();
        if path.is_dir() {
            std::fs::remove_dir_all(&path).expect("remove dir");
        } else {
            std::fs::remove_file(&path).expect("remove file");
        }
    }
}

/// Copies `from` into `to` (file contents only, so read-only sources stay copyable).
fn copy_tree(from: &Path, to: &Path, skip_top: &[&str]) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let name = entry.file_name();
        if skip_top.iter().any(|s| name == *s) {
            continue;
        }
        let path = entry.path();
        if path.is_dir() {
            copy_tree(&path, &to.join(&name), &[]);
        } else {
            std::fs::write(to.join(&name), std::fs::read(&path).expect("read")).expect("write");
        }
    }
}

fn commit_all(repo: &Repository, message: &str, time: (i64, i32)) -> Oid {
    let mut index = repo.index().expect("index");
    index.clear().expect("clear index");
    index.add_all(["*"], IndexAddOption::DEFAULT, None).expect("add");
    index.write().expect("write index");
    let tree = repo.find_tree(index.write_tree().expect("tree")).expect("find tree");
    let parent = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
    let parents: Vec<&git2::Commit> = parent.iter().collect();
    let sig = signature(time);
    repo.commit(Some("HEAD"), &sig, &sig, message, &tree, &parents).expect("commit")
}

/// Builds a working repository at `dest` from `recipe_dir` (see the module doc). Returns it.
pub fn build_repo(recipe_dir: &Path, dest: &Path) -> Repository {
    let mut opts = RepositoryInitOptions::new();
    opts.initial_head("main");
    let repo = Repository::init_opts(dest, &opts).expect("init");
    let tags = read_tags(recipe_dir);
    let release_dir = recipe_dir.join("release");
    for (i, tag) in tags.iter().enumerate() {
        clear_worktree(dest);
        let snapshot = recipe_dir.join("versions").join(&tag.name);
        assert!(snapshot.is_dir(), "{} has no snapshot for {}", recipe_dir.display(), tag.name);
        copy_tree(&snapshot, dest, &[]);
        for published in &tags[..=i] {
            let note = release_dir.join(&published.name);
            if note.is_file() {
                std::fs::create_dir_all(dest.join("release")).expect("mkdir release");
                std::fs::write(dest.join("release").join(&published.name), std::fs::read(&note).expect("note"))
                    .expect("write note");
            }
        }
        let message = if tag.subject.is_empty() { format!("chore: publish {}", tag.name) } else { tag.subject.clone() };
        let oid = commit_all(&repo, &message, tag.time);
        let target = repo.find_object(oid, None).expect("commit object");
        if tag.annotated {
            repo.tag(&tag.name, &target, &signature(tag.time), &message, false).expect("annotated tag");
        } else {
            repo.tag_lightweight(&tag.name, &target, false).expect("lightweight tag");
        }
    }
    // The default branch moves on after the last release: the recipe as it is today.
    clear_worktree(dest);
    copy_tree(recipe_dir, dest, &["SOURCE", "TAGS", "versions"]);
    let last = tags.last().map(|t| (t.time.0 + 3600, t.time.1)).unwrap_or((1_767_225_600, 0));
    let head_tree = repo.head().ok().and_then(|h| h.peel_to_tree().ok()).map(|t| t.id());
    let mut index = repo.index().expect("index");
    index.clear().expect("clear");
    index.add_all(["*"], IndexAddOption::DEFAULT, None).expect("add");
    let tree = index.write_tree().expect("tree");
    if head_tree != Some(tree) {
        commit_all(&repo, "chore: the recipe as it is today", last);
    }
    repo
}

/// A bare "remote" cloned from a built repository, as a forge would hold it.
pub fn bare_remote(work: &Path, dest: &Path) -> PathBuf {
    git2::build::RepoBuilder::new().bare(true).clone(&work.display().to_string(), dest).expect("bare clone");
    // A clone copies branches as remote-tracking refs; a forge's repository has them as heads.
    let bare = Repository::open_bare(dest).expect("open bare");
    let src = Repository::open(work).expect("open work");
    for b in src.branches(Some(git2::BranchType::Local)).expect("branches") {
        let (b, _) = b.expect("branch");
        let name = b.name().expect("name").expect("utf-8").to_string();
        let oid = b.get().target().expect("target");
        bare.reference(&format!("refs/heads/{name}"), oid, true, "mirror").expect("head");
    }
    bare.set_head("refs/heads/main").expect("HEAD");
    dest.to_path_buf()
}

/// Builds `recipe_dir` under `root/<name>` and its bare remote under `root/<name>.git`;
/// returns (work tree, remote).
pub fn publish(recipe_dir: &Path, root: &Path, name: &str) -> (PathBuf, PathBuf) {
    let work = root.join(name);
    build_repo(recipe_dir, &work);
    let remote = bare_remote(&work, &root.join(format!("{name}.git")));
    (work, remote)
}

/// Adds an annotated tag on a new commit in `work` (files written first) and pushes branch and
/// tag to its bare `remote`.
pub fn release(work: &Path, remote: &Path, files: &[(&str, &str)], tag: &str) {
    let repo = Repository::open(work).expect("open");
    for (path, content) in files {
        let p = work.join(path);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, content).expect("write");
    }
    let now = (time::OffsetDateTime::now_utc().unix_timestamp(), 0);
    let oid = commit_all(&repo, &format!("chore: publish {tag} release"), now);
    let target = repo.find_object(oid, None).expect("object");
    repo.tag(tag, &target, &signature(now), &format!("chore: publish {tag} release"), false).expect("tag");
    let mut r = repo.remote_anonymous(&remote.display().to_string()).expect("remote");
    r.push(&["+refs/heads/main:refs/heads/main", &format!("refs/tags/{tag}:refs/tags/{tag}")], None).expect("push");
}

/// A bare repository on this machine as a remote that someone other than a federation admin may
/// register: `ssh://` through the harness's sshd, with the harness's key as the recipe's
/// credential (local paths are for federation admins only).
pub fn over_ssh(remote: &Path) -> Vec<(&'static str, String)> {
    let destination = crate::required_env("POTLUCK_TEST_SSH");
    let key = std::fs::read_to_string(crate::required_env("POTLUCK_TEST_SSH_KEY")).expect("the harness's SSH key");
    vec![
        ("repository", format!("ssh://{destination}{}", remote.display())),
        ("credential_kind", "ssh".into()),
        ("credential_username", "root".into()),
        ("credential_secret", key),
    ]
}

/// Commits `files` on main in the work tree `work` (as Dave Dunn) and pushes main to `remote`;
/// returns the commit.
pub fn push_commit(work: &Path, remote: &Path, files: &[(&str, &str)], message: &str) -> String {
    let repo = Repository::open(work).unwrap();
    for (path, content) in files {
        std::fs::write(work.join(path), content).unwrap();
    }
    let mut index = repo.index().unwrap();
    index.add_all(["*"], IndexAddOption::DEFAULT, None).unwrap();
    index.write().unwrap();
    let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
    let parent = repo.head().unwrap().peel_to_commit().unwrap();
    let sig = git2::Signature::now("Dave Dunn", "dave@a.test").unwrap();
    let oid = repo.commit(Some("HEAD"), &sig, &sig, message, &tree, &[&parent]).unwrap();
    let mut r = repo.remote_anonymous(&remote.display().to_string()).unwrap();
    r.push(&["+refs/heads/main:refs/heads/main"], None).unwrap();
    oid.to_string()
}
