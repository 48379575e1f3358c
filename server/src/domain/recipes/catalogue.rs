//! The recipe catalogue in the shape of Co-op Cloud's `recipes.json`: per recipe its README
//! metadata (category, features, image), repository and, for every tag, each service's image
//! and tag. Built straight from git objects: each tag's tree is read without a checkout, and a
//! compose file is parsed once per distinct content (blob id), however many tags share it.

use super::metadata;
use super::version::RecipeVersion;
use crate::adapters::engine::envfile::{abra_sh_exports, EnvFile};
use crate::adapters::engine::interpolate::interpolate;
use crate::adapters::engine::yaml::{self, Node};
use crate::adapters::git::{self, TagInfo};
use git2::{ObjectType, Oid, Repository};
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageMeta {
    #[serde(default)]
    pub image: String,
    #[serde(default)]
    pub rating: String,
    #[serde(default)]
    pub source: String,
    #[serde(default)]
    pub url: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Features {
    #[serde(default)]
    pub backups: String,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub healthcheck: String,
    #[serde(default)]
    pub image: ImageMeta,
    #[serde(default)]
    pub status: i64,
    #[serde(default)]
    pub tests: String,
    #[serde(default)]
    pub sso: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServiceMeta {
    /// Empty when unknown: Potluck does not ask registries.
    #[serde(default)]
    pub digest: String,
    pub image: String,
    pub tag: String,
}

/// One recipe's entry, field for field as abra's `RecipeMeta`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RecipeMeta {
    #[serde(default)]
    pub category: String,
    #[serde(default)]
    pub default_branch: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub features: Features,
    #[serde(default)]
    pub icon: String,
    pub name: String,
    #[serde(default)]
    pub repository: String,
    #[serde(default)]
    pub ssh_url: String,
    /// Oldest first: `[{ "<tag>": { "<service>": ServiceMeta } }]`.
    #[serde(default)]
    pub versions: Vec<BTreeMap<String, BTreeMap<String, ServiceMeta>>>,
    #[serde(default)]
    pub website: String,
}

/// `recipes.json`: recipe name → entry.
pub type Catalogue = BTreeMap<String, RecipeMeta>;

/// One tag's services and their images.
type Services = BTreeMap<String, ServiceMeta>;
/// The environment compose files are interpolated with.
type Env = Arc<IndexMap<String, String>>;

/// What was read and derived from blobs, by blob id, shared across tags and recipes: texts,
/// parsed compose files, the environment a `.env.sample` + `abra.sh` pair gives, and the
/// services a tag's files give (a tag whose files are all known costs a lookup).
#[derive(Default)]
pub struct ParseCache {
    composes: HashMap<Oid, Option<Arc<IndexMap<String, Node>>>>,
    texts: HashMap<Oid, Arc<str>>,
    envs: HashMap<(Option<Oid>, Option<Oid>), Env>,
    services: HashMap<Vec<Option<Oid>>, Services>,
}

impl ParseCache {
    fn text(&mut self, repo: &Repository, id: Oid) -> Option<Arc<str>> {
        if let Some(t) = self.texts.get(&id) {
            return Some(t.clone());
        }
        let blob = repo.find_blob(id).ok()?;
        let text: Arc<str> = String::from_utf8_lossy(blob.content()).into();
        self.texts.insert(id, text.clone());
        Some(text)
    }

    fn compose(&mut self, repo: &Repository, id: Oid) -> Option<Arc<IndexMap<String, Node>>> {
        if let Some(c) = self.composes.get(&id) {
            return c.clone();
        }
        let parsed = self.text(repo, id).and_then(|t| match yaml::parse(&t) {
            Ok(Node::Map(m)) => Some(Arc::new(m)),
            _ => None,
        });
        self.composes.insert(id, parsed.clone());
        parsed
    }

    /// The sample's values with abra.sh's exports, as the compose files see them.
    fn env(&mut self, repo: &Repository, sample: Option<Oid>, abra: Option<Oid>) -> Env {
        if let Some(e) = self.envs.get(&(sample, abra)) {
            return e.clone();
        }
        let parsed =
            sample.and_then(|id| self.text(repo, id)).and_then(|t| EnvFile::parse(&t).ok()).unwrap_or_default();
        let mut env = parsed.values(&|_| None);
        if let Some(sh) = abra.and_then(|id| self.text(repo, id)) {
            env.extend(abra_sh_exports(&sh));
        }
        env.insert("STACK_NAME".into(), "stack".into());
        let env = Arc::new(env);
        self.envs.insert((sample, abra), env.clone());
        env
    }
}

/// `bonfirenetworks/bonfire:1.0.6-amd64` → (`bonfirenetworks/bonfire`, `1.0.6-amd64`).
pub fn split_image(image: &str) -> (String, String) {
    let name = image.split('@').next().unwrap_or(image);
    let slash = name.rfind('/').map_or(0, |i| i + 1);
    match name[slash..].rfind(':') {
        Some(i) => (name[..slash + i].to_string(), name[slash + i + 1..].to_string()),
        None => (name.to_string(), "latest".to_string()),
    }
}

/// The services and images of one tag: the compose files its `.env.sample` selects, with the
/// sample's values and abra.sh's exports interpolated (a later file's image wins).
fn services_at(repo: &Repository, tree: &git2::Tree, cache: &mut ParseCache) -> Services {
    let blob_at = |path: &str| -> Option<Oid> {
        let entry = tree.get_path(std::path::Path::new(path)).ok()?;
        (entry.kind() == Some(ObjectType::Blob)).then(|| entry.id())
    };
    let (sample, abra) = (blob_at(".env.sample"), blob_at("abra.sh"));
    let env = cache.env(repo, sample, abra);
    let files: Vec<Option<Oid>> = crate::adapters::engine::compose_files(&env).iter().map(|f| blob_at(f)).collect();
    let key: Vec<Option<Oid>> = [sample, abra].into_iter().chain(files.iter().copied()).collect();
    if let Some(known) = cache.services.get(&key) {
        return known.clone();
    }
    let mut out = BTreeMap::new();
    for id in files.into_iter().flatten() {
        let Some(root) = cache.compose(repo, id) else { continue };
        let Some(Node::Map(services)) = root.get("services") else { continue };
        for (name, svc) in services {
            let Some(raw) = svc.get("image") else { continue };
            let mut one = IndexMap::from([("image".to_string(), raw.clone())]);
            let lookup = |k: &str| env.get(k).cloned();
            if interpolate(&mut one, &lookup).is_err() {
                one.insert("image".into(), raw.clone());
            }
            if let Some(image) = one.get("image").and_then(Node::as_str) {
                let (image, tag) = split_image(image);
                out.insert(name.clone(), ServiceMeta { digest: String::new(), image, tag });
            }
        }
    }
    cache.services.insert(key, out.clone());
    out
}

/// The README metadata's `Image` line: `` [`owner/name`](url), 4, upstream ``.
fn image_meta(value: &str) -> ImageMeta {
    let image = value.split('`').nth(1).unwrap_or_default().to_string();
    let url = value.split("](").nth(1).and_then(|r| r.split(')').next()).unwrap_or_default().to_string();
    let after = value.rsplit(')').next().unwrap_or(value);
    let parts: Vec<&str> = after.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
    ImageMeta {
        image,
        url,
        rating: parts.first().map(|s| s.to_string()).unwrap_or_default(),
        source: parts.get(1).map(|s| s.to_string()).unwrap_or_default(),
    }
}

/// A markdown link's target, or the text itself.
fn link_target(value: &str) -> String {
    value
        .split("](")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .map(String::from)
        .unwrap_or_else(|| value.trim().to_string())
}

/// One recipe's entry, read from the repository (blocking).
pub fn recipe_meta(
    repo: &Repository,
    name: &str,
    repository: &str,
    default_branch: &str,
    cache: &mut ParseCache,
) -> Result<RecipeMeta, git::GitError> {
    let mut tags: Vec<TagInfo> = git::tags(repo)?;
    tags.sort_by(|a, b| RecipeVersion::parse(&a.name).cmp(&RecipeVersion::parse(&b.name)));
    let mut versions = Vec::new();
    for tag in &tags {
        let Ok(commit) = repo.find_commit(Oid::from_str(&tag.commit)?) else { continue };
        let tree = commit.tree()?;
        versions.push(BTreeMap::from([(tag.name.clone(), services_at(repo, &tree, cache))]));
    }
    let head = repo
        .revparse_single(&format!("refs/heads/{default_branch}"))
        .or_else(|_| repo.revparse_single("HEAD"))
        .and_then(|o| o.peel_to_tree())
        .ok();
    let readme = head
        .as_ref()
        .and_then(|t| t.get_path(std::path::Path::new("README.md")).ok())
        .and_then(|e| cache.text(repo, e.id()))
        .unwrap_or_default();
    let meta = metadata::parse(&readme);
    let get = |k: &str| metadata::get(&meta, k).unwrap_or_default().to_string();
    let status = get("Status").split([',', ' ']).next().and_then(|s| s.trim().parse().ok()).unwrap_or(0);
    let ssh_url = if repository.starts_with("ssh://") || repository.contains('@') {
        repository.to_string()
    } else {
        String::new()
    };
    Ok(RecipeMeta {
        category: get("Category"),
        default_branch: default_branch.to_string(),
        description: metadata::description(&readme),
        features: Features {
            backups: get("Backups"),
            email: get("Email"),
            healthcheck: get("Healthcheck"),
            image: image_meta(&get("Image")),
            status,
            tests: get("Tests"),
            sso: get("SSO"),
        },
        icon: String::new(),
        name: name.to_string(),
        repository: repository.to_string(),
        ssh_url,
        versions,
        website: link_target(&get("Website")),
    })
}

/// What every reference of a repository points to, as one string: a catalogue entry built from
/// the same refs is still right.
pub fn refs_fingerprint(repo: &Repository) -> String {
    let mut refs: Vec<String> = repo
        .references()
        .map(|it| {
            it.flatten()
                .map(|r| {
                    format!(
                        "{}={}",
                        r.name().unwrap_or_default(),
                        r.target().map(|o| o.to_string()).unwrap_or_default()
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    refs.sort();
    refs.join("\n")
}

/// The catalogue of the recipes registered in Potluck, skipping private ones (registered with a
/// credential). Entries are rebuilt only when a recipe's refs changed.
pub async fn of_store(st: &crate::state::AppState) -> crate::error::Result<Catalogue> {
    let mut out = Catalogue::new();
    for r in super::store::all(st).await? {
        if r.credential_enc.is_some() {
            continue;
        }
        let path = super::store::local_clone(st, &r).await?;
        let cached = st.catalogue.lock().ok().and_then(|c| c.get(&r.id).cloned());
        let r2 = r.clone();
        let built = tokio::task::spawn_blocking(move || -> Option<(String, RecipeMeta)> {
            let repo = git::open(&path).ok()?;
            let fingerprint = refs_fingerprint(&repo);
            if let Some((f, meta)) = cached {
                if f == fingerprint {
                    return Some((f, meta));
                }
            }
            let meta =
                recipe_meta(&repo, &r2.name, &r2.repository, &r2.default_branch, &mut ParseCache::default()).ok()?;
            Some((fingerprint, meta))
        })
        .await
        .map_err(crate::error::Error::internal)?;
        if let Some((fingerprint, meta)) = built {
            if let Ok(mut c) = st.catalogue.lock() {
                c.insert(r.id, (fingerprint, meta.clone()));
            }
            out.insert(r.name.clone(), meta);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_and_metadata_lines() {
        assert_eq!(
            split_image("bonfirenetworks/bonfire:1.0.6-amd64"),
            ("bonfirenetworks/bonfire".into(), "1.0.6-amd64".into())
        );
        assert_eq!(split_image("localhost:5000/x/y"), ("localhost:5000/x/y".into(), "latest".into()));
        assert_eq!(split_image("nginx:1.27@sha256:abc"), ("nginx".into(), "1.27".into()));
        let m = image_meta(
            "[`bonfirenetworks/bonfire`](https://hub.docker.com/r/bonfirenetworks/bonfire/tags), 4, upstream",
        );
        assert_eq!(m.image, "bonfirenetworks/bonfire");
        assert_eq!(m.url, "https://hub.docker.com/r/bonfirenetworks/bonfire/tags");
        assert_eq!((m.rating.as_str(), m.source.as_str()), ("4", "upstream"));
        assert_eq!(link_target("[site](https://example.org)"), "https://example.org");
    }
}
