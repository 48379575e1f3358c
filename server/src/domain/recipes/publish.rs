//! Writing an approved release into the recipe's repository: the version label and the release
//! note in a commit on the default branch, an annotated tag, both pushed with the recipe's
//! credentials; on any refusal the refs it made are removed again, here and at the remote.
//! Blocking (libgit2); the review module runs it off the async workers and records the outcome.

use super::release;
use super::store;
use crate::adapters::git::files_at;
use git2::{Oid, PushOptions, Repository, Signature};
use std::collections::BTreeMap;

/// What one publication needs, read before it leaves the async side.
pub(super) struct PublishJob {
    pub(super) path: std::path::PathBuf,
    pub(super) credential: Option<store::Credential>,
    pub(super) branch: String,
    pub(super) commit: String,
    pub(super) tag: String,
    pub(super) notes: String,
    pub(super) recipe: String,
    pub(super) author: (String, String),
    pub(super) temp_ref: String,
}

impl PublishJob {
    /// Blocking: fetch, check, write the release commit and tag, push both; `Ok` is the new
    /// commit. On any failure the local refs it made are removed again.
    pub(super) fn run(&self) -> std::result::Result<String, String> {
        store::fetch_bare(&self.path, self.credential.clone())?;
        let repo =
            Repository::open_bare(&self.path).map_err(|e| format!("the recipe's clone is damaged: {}", e.message()))?;
        let tag_ref = format!("refs/tags/{}", self.tag);
        if repo.find_reference(&tag_ref).is_ok() {
            return Err(format!("the remote already has a tag {}", self.tag));
        }
        let branch_ref = format!("refs/heads/{}", self.branch);
        let head =
            repo.refname_to_id(&branch_ref).map_err(|e| format!("no branch {}: {}", self.branch, e.message()))?;
        if head.to_string() != self.commit {
            return Err(format!(
                "{} moved on since this proposal (now {}): point the proposal at the new commit and review again",
                self.branch,
                &head.to_string()[..8]
            ));
        }
        let files = files_at(&repo, &self.commit, &self.path).map_err(|e| e.to_string())?;
        let mut changes = release::with_version_label(&files, &self.tag)?;
        changes.push((format!("release/{}", self.tag), format!("{}\n", self.notes.trim_end())));
        let parent = repo.find_commit(head).map_err(|e| e.message().to_string())?;
        let tree = tree_with(&repo, &parent.tree().map_err(|e| e.message().to_string())?, &changes)
            .map_err(|e| e.message().to_string())?;
        let tree = repo.find_tree(tree).map_err(|e| e.message().to_string())?;
        let sig = Signature::now(&self.author.0, &self.author.1).map_err(|e| e.message().to_string())?;
        let message = format!("chore: publish {} release", self.tag);
        let new_commit =
            repo.commit(None, &sig, &sig, &message, &tree, &[&parent]).map_err(|e| e.message().to_string())?;
        let cleanup = |repo: &Repository| {
            for r in [&tag_ref, &self.temp_ref] {
                if let Ok(mut reference) = repo.find_reference(r) {
                    let _ = reference.delete();
                }
            }
        };
        let object = repo.find_object(new_commit, None).map_err(|e| e.message().to_string())?;
        let tag_message = format!("chore: publish {} release\n\n{}\n", self.tag, self.notes.trim_end());
        if let Err(e) = repo.tag(&self.tag, &object, &sig, &tag_message, false) {
            cleanup(&repo);
            return Err(format!("cannot create tag {}: {}", self.tag, e.message()));
        }
        if let Err(e) = repo.reference(&self.temp_ref, new_commit, true, "potluck release") {
            cleanup(&repo);
            return Err(e.message().to_string());
        }
        let pushed = self.push(&repo, &branch_ref, &tag_ref);
        if let Err(e) = pushed {
            cleanup(&repo);
            return Err(e);
        }
        // The mirror follows the remote.
        let _ = repo.reference(&branch_ref, new_commit, true, "potluck release published");
        if let Ok(mut t) = repo.find_reference(&self.temp_ref) {
            let _ = t.delete();
        }
        tracing::info!(recipe.name = %self.recipe, release.version = %self.tag, "release published");
        Ok(new_commit.to_string())
    }

    /// Pushes the release commit to the branch and the tag. When the remote takes one and
    /// refuses the other, the one it took is undone, so nothing is left half-written.
    fn push(&self, repo: &Repository, branch_ref: &str, tag_ref: &str) -> std::result::Result<(), String> {
        let specs = [format!("{}:{branch_ref}", self.temp_ref), format!("{tag_ref}:{tag_ref}")];
        let rejected = self.push_specs(repo, &specs)?;
        if rejected.is_empty() {
            return Ok(());
        }
        let refused: Vec<String> = rejected.iter().map(|(r, why)| format!("{r} ({why})")).collect();
        let mut undone = Vec::new();
        if !rejected.iter().any(|(r, _)| r == tag_ref) {
            let _ = self.push_specs(repo, &[format!(":{tag_ref}")]);
            undone.push(format!("removed the tag {} again", self.tag));
        }
        if !rejected.iter().any(|(r, _)| r == branch_ref) {
            let undo = format!("{}-undo", self.temp_ref);
            if let Ok(old) = Oid::from_str(&self.commit) {
                if repo.reference(&undo, old, true, "potluck release undo").is_ok() {
                    let _ = self.push_specs(repo, &[format!("+{undo}:{branch_ref}")]);
                    if let Ok(mut r) = repo.find_reference(&undo) {
                        let _ = r.delete();
                    }
                    undone.push(format!("moved {} back", self.branch));
                }
            }
        }
        let undone = if undone.is_empty() { String::new() } else { format!("; {}", undone.join(", ")) };
        Err(format!("the remote rejected {}{undone}", refused.join(", ")))
    }

    /// One push; `Ok` lists the references the remote refused, with its reason.
    fn push_specs(&self, repo: &Repository, specs: &[String]) -> std::result::Result<Vec<(String, String)>, String> {
        let mut remote = repo.find_remote("origin").map_err(|e| e.message().to_string())?;
        let rejected = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(String, String)>::new()));
        let mut callbacks = store::callbacks(self.credential.clone());
        let r2 = rejected.clone();
        callbacks.push_update_reference(move |refname, status| {
            if let Some(reason) = status {
                if let Ok(mut list) = r2.lock() {
                    list.push((refname.to_string(), reason.to_string()));
                }
            }
            Ok(())
        });
        let mut options = PushOptions::new();
        options.remote_callbacks(callbacks);
        remote.push(specs, Some(&mut options)).map_err(|e| format!("the push failed: {}", e.message()))?;
        Ok(rejected.lock().map(|l| l.clone()).unwrap_or_default())
    }
}

/// `base` with files replaced or added (paths may be nested), as a new tree.
fn tree_with(
    repo: &Repository,
    base: &git2::Tree,
    changes: &[(String, String)],
) -> std::result::Result<Oid, git2::Error> {
    let mut here: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut below: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for (path, content) in changes {
        match path.split_once('/') {
            Some((dir, rest)) => below.entry(dir.to_string()).or_default().push((rest.to_string(), content.clone())),
            None => {
                here.insert(path.clone(), content.clone().into_bytes());
            }
        }
    }
    let mut builder = repo.treebuilder(Some(base))?;
    for (name, content) in here {
        let blob = repo.blob(&content)?;
        builder.insert(&name, blob, 0o100644)?;
    }
    for (dir, nested) in below {
        let sub = match base.get_name(&dir).map(|e| e.to_object(repo)) {
            Some(Ok(obj)) => obj.peel_to_tree()?,
            _ => repo.find_tree(repo.treebuilder(None)?.write()?)?,
        };
        let oid = tree_with(repo, &sub, &nested)?;
        builder.insert(&dir, oid, 0o040000)?;
    }
    builder.write()
}
