//! What a recipe holds at each version, read from the tag's tree: compose files, `.env.sample`
//! (with its modifiers and commented options), `abra.sh` exports, the release note, the README
//! metadata, and the services with their images.

use super::metadata;
use super::store::{self, RecipeRow};
use super::version::RecipeVersion;
use crate::adapters::engine::envfile::{abra_sh_exports, commented_entries, EnvFile};
use crate::adapters::engine::interpolate::interpolate;
use crate::adapters::engine::load::RecipeFiles;
use crate::adapters::engine::yaml::{self, Node};
use crate::adapters::git::{self, files_at, TagInfo};
use crate::domain::authz::Cap;
use crate::error::{Error, Result};
use crate::state::AppState;
use indexmap::IndexMap;
use potluck_app::api::GetRecipeVersion;
use potluck_app::error::ApiError;
use potluck_app::model::*;
use potluck_app::ops::scope;
use std::path::Path;

/// The images of a recipe's services at one version: the compose files its `.env.sample`
/// selects, interpolated with the sample's values (a later file's image wins).
pub fn images(files: &RecipeFiles) -> Vec<ServiceImage> {
    let sample = files.text(".env.sample").and_then(|t| EnvFile::parse(&t).ok()).unwrap_or_default();
    let mut env = sample.values(&|_| None);
    if let Some(sh) = files.text("abra.sh") {
        env.extend(abra_sh_exports(&sh));
    }
    env.insert("STACK_NAME".into(), "stack".into());
    let mut out: IndexMap<String, String> = IndexMap::new();
    for f in crate::adapters::engine::compose_files(&env) {
        let Some(text) = files.text(&f) else { continue };
        let Ok(Node::Map(mut root)) = yaml::parse(&text) else { continue };
        let raw = root.clone();
        let lookup = |k: &str| env.get(k).cloned();
        let root = if interpolate(&mut root, &lookup).is_ok() { root } else { raw };
        if let Some(Node::Map(services)) = root.get("services") {
            for (name, svc) in services {
                if let Some(image) = svc.get("image").and_then(Node::as_str) {
                    out.insert(name.clone(), image.to_string());
                }
            }
        }
    }
    out.into_iter().map(|(service, image)| ServiceImage { service, image }).collect()
}

fn version_view(repo: &git2::Repository, tag: &TagInfo, root: &Path) -> VersionView {
    let parsed = RecipeVersion::parse(&tag.name);
    let files = files_at(repo, &format!("refs/tags/{}", tag.name), root).ok();
    VersionView {
        tag: tag.name.clone(),
        semver: parsed.semver.as_ref().map(|v| v.to_string()),
        canonical: parsed.is_canonical(),
        annotated: tag.annotated,
        commit: tag.commit.clone(),
        time: tag.time,
        message: tag.message.clone(),
        release_note: files
            .as_ref()
            .and_then(|f| f.text(&format!("release/{}", tag.name)))
            .map(|t| t.trim().to_string()),
        images: files.as_ref().map(images).unwrap_or_default(),
    }
}

/// Every version of a recipe, newest first (blocking).
pub fn versions(repo: &git2::Repository, root: &Path) -> std::result::Result<Vec<VersionView>, git::GitError> {
    let mut tags = git::tags(repo)?;
    tags.sort_by(|a, b| RecipeVersion::parse(&b.name).cmp(&RecipeVersion::parse(&a.name)));
    Ok(tags.iter().map(|t| version_view(repo, t, root)).collect())
}

/// The default branch's files (blocking), for metadata and description.
fn head_files(repo: &git2::Repository, recipe: &RecipeRow, root: &Path) -> Option<RecipeFiles> {
    files_at(repo, &format!("refs/heads/{}", recipe.default_branch), root)
        .or_else(|_| files_at(repo, "HEAD", root))
        .ok()
}

/// The recipes the caller may see (private ones only for their maintainers and runners).
pub async fn list(st: &AppState, cap: &Cap<scope::SignedIn>) -> Result<Vec<RecipeSummary>> {
    let mut out = Vec::new();
    for r in store::all(st).await? {
        if cap.sees_recipe(st, &r).await? {
            out.push(summary(st, r).await?);
        }
    }
    Ok(out)
}

/// One line of the recipe list: latest version and README facts from the default branch.
pub async fn summary(st: &AppState, r: RecipeRow) -> Result<RecipeSummary> {
    let path = store::local_clone(st, &r).await?;
    let r2 = r.clone();
    let (latest, count, description, category) = tokio::task::spawn_blocking(move || {
        let Ok(repo) = git::open(&path) else { return (None, 0, String::new(), String::new()) };
        let mut tags: Vec<RecipeVersion> =
            git::tags(&repo).unwrap_or_default().iter().map(|t| RecipeVersion::parse(&t.name)).collect();
        tags.sort();
        let files = head_files(&repo, &r2, &path);
        let readme = files.as_ref().and_then(|f| f.text("README.md")).unwrap_or_default();
        let meta = metadata::parse(&readme);
        (
            tags.last().map(|t| t.tag.clone()),
            tags.len() as i64,
            metadata::description(&readme),
            metadata::get(&meta, "Category").unwrap_or_default().to_string(),
        )
    })
    .await
    .map_err(Error::internal)?;
    let maintainers = store::maintainers(st, r.id).await?.into_iter().map(|m| m.name).collect();
    Ok(RecipeSummary {
        name: r.name,
        repository: r.repository,
        description,
        category,
        latest_version: latest,
        version_count: count,
        maintainers,
        last_fetched_at: r.last_fetched_at,
        fetch_error: r.fetch_error,
    })
}

pub async fn detail(st: &AppState, cap: &Cap<scope::Recipe>) -> Result<RecipeDetail> {
    let r = cap.recipe().clone();
    let name = r.name.clone();
    let path = store::local_clone(st, &r).await?;
    let r2 = r.clone();
    let (versions, meta, description) = tokio::task::spawn_blocking(move || -> std::result::Result<_, String> {
        let repo = git::open(&path).map_err(|e| e.to_string())?;
        let versions = versions(&repo, &path).map_err(|e| e.to_string())?;
        let readme = head_files(&repo, &r2, &path).and_then(|f| f.text("README.md")).unwrap_or_default();
        Ok((versions, metadata::parse(&readme), metadata::description(&readme)))
    })
    .await
    .map_err(Error::internal)?
    .map_err(|e| ApiError::unavailable(format!("recipe {name} cannot be read: {e}")))?;
    Ok(RecipeDetail {
        name: r.name.clone(),
        repository: r.repository.clone(),
        default_branch: r.default_branch.clone(),
        description,
        metadata: meta,
        maintainers: store::maintainers(st, r.id).await?,
        versions,
        last_fetched_at: r.last_fetched_at,
        fetch_error: r.fetch_error.clone(),
        can_maintain: cap.maintains(),
        required_approvals: r.required_approvals,
        required_collectives: r.required_collectives,
        deployments: crate::domain::apps::deployments_of(st, cap, &r).await?,
    })
}

/// The `.env.sample` entries, active and commented out, in file order.
pub fn env_sample_entries(text: &str) -> Vec<EnvSampleEntry> {
    let active = EnvFile::parse(text).map(|f| f.entries().cloned().collect::<Vec<_>>()).unwrap_or_default();
    let mut all: Vec<(usize, EnvSampleEntry)> = active
        .into_iter()
        .map(|e| (e.line, entry(&e, false)))
        .chain(commented_entries(text).into_iter().map(|e| (e.line, entry(&e, true))))
        .collect();
    all.sort_by_key(|(line, _)| *line);
    all.into_iter().map(|(_, e)| e).collect()
}

fn entry(e: &crate::adapters::engine::envfile::Entry, commented: bool) -> EnvSampleEntry {
    EnvSampleEntry {
        key: e.key.clone(),
        value: e.raw_value.clone(),
        doc: e.doc.clone(),
        modifiers: e.modifiers().into_iter().collect(),
        commented,
    }
}

/// The files of `name` at `tag` (blocking work on the bare clone).
pub async fn files_of(st: &AppState, recipe: &RecipeRow, rev: &str) -> Result<RecipeFiles> {
    let path = store::local_clone(st, recipe).await?;
    let rev = rev.to_string();
    let name = recipe.name.clone();
    tokio::task::spawn_blocking(move || {
        let repo = git::open(&path)?;
        files_at(&repo, &format!("refs/tags/{rev}"), &path).or_else(|_| files_at(&repo, &rev, &path))
    })
    .await
    .map_err(Error::internal)?
    .map_err(|e| match e {
        git::GitError::NoSuchVersion(v) => ApiError::not_found(format!("version {v:?} of recipe {name}")).into(),
        other => Error::internal(other),
    })
}

pub async fn version_detail(st: &AppState, cap: &Cap<scope::Recipe>, input: GetRecipeVersion) -> Result<VersionDetail> {
    let r = cap.recipe().clone();
    let (name, tag) = (r.name.clone(), input.tag.as_str());
    let path = store::local_clone(st, &r).await?;
    let tag_owned = tag.to_string();
    let view = tokio::task::spawn_blocking(move || -> std::result::Result<Option<VersionView>, String> {
        let repo = git::open(&path).map_err(|e| e.to_string())?;
        let tags = git::tags(&repo).map_err(|e| e.to_string())?;
        Ok(tags.iter().find(|t| t.name == tag_owned).map(|t| version_view(&repo, t, &path)))
    })
    .await
    .map_err(Error::internal)?
    .map_err(ApiError::unavailable)?
    .ok_or_else(|| ApiError::not_found(format!("version {tag:?} of recipe {name}")))?;
    let files = files_of(st, &r, tag).await?;
    let compose_files: Vec<String> = files.files.keys().filter(|k| is_compose_file(k)).cloned().collect();
    Ok(VersionDetail {
        recipe: r.name.clone(),
        version: view,
        compose_files,
        env_sample: files.text(".env.sample").map(|t| env_sample_entries(&t)).unwrap_or_default(),
        abra_exports: files.text("abra.sh").map(|t| abra_sh_exports(&t).into_iter().collect()).unwrap_or_default(),
        readme_metadata: files.text("README.md").map(|t| metadata::parse(&t)).unwrap_or_default(),
        lint: super::lint::lint_files(&files, &r.name)
            .into_iter()
            .map(|f| LintFindingView {
                rule: f.rule,
                level: f.level,
                service: f.service,
                message: f.message,
                fix: f.fix,
            })
            .collect(),
    })
}

/// `compose.yml`, `compose.*.yml`, also in subfolders (`postgres/compose.postgres.tune.yml`).
pub fn is_compose_file(path: &str) -> bool {
    let file = path.rsplit('/').next().unwrap_or(path);
    file == "compose.yml" || (file.starts_with("compose.") && (file.ends_with(".yml") || file.ends_with(".yaml")))
}
