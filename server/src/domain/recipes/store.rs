//! The recipe store: recipes registered by git URL (https, ssh or a local path), each kept as a
//! bare clone under `<data_dir>/recipes/<id>.git`, fetched on demand and on a schedule. Reads
//! always come from a tag's or a commit's tree; there is no working tree to share.

use super::version::RecipeVersion;
use crate::adapters::db::now_ms;
use crate::adapters::git::{self, files_at, GitError};
use crate::domain::audit::Origin;
use crate::domain::audit::{self, AuditAction, Event};
use crate::domain::authz::{Cap, CollectiveRef};
use crate::domain::notify::{self, Notice};
use crate::error::{Error, Result};
use crate::state::AppState;
use git2::{build::RepoBuilder, Cred, FetchOptions, RemoteCallbacks, Repository};
use potluck_app::api::{FetchRecipe, RegisterRecipe, SetRecipeMaintainers};
use potluck_app::error::ApiError;
use potluck_app::model::{CollectiveId, NotifyEvent, RecipeId, UserId};
use potluck_app::model::{MaintainerView, Permission};
use potluck_app::ops::scope;
use serde_json::json;
use sqlx::Row;
use std::path::{Path, PathBuf};

/// A recipe as stored.
#[derive(Debug, Clone)]
pub struct RecipeRow {
    pub id: RecipeId,
    pub name: String,
    pub repository: String,
    pub default_branch: String,
    pub credential_enc: Option<Vec<u8>>,
    pub credential_kind: Option<String>,
    pub last_fetched_at: Option<i64>,
    pub fetch_error: Option<String>,
    /// The branches and tags the newest fetch saw ([`refs_digest`]); a clone that differs is
    /// behind (another replica fetched or published) and fetches before it is read.
    pub refs_digest: Option<String>,
    pub required_approvals: i64,
    pub required_collectives: i64,
    /// A release is published only after a passed staging run of its current commit.
    pub require_green_run: bool,
}

const COLUMNS: &str =
    "id, name, repository, default_branch, credential_enc, credential_kind, last_fetched_at, fetch_error, refs_digest, \
                       required_approvals, required_collectives, require_green_run";

impl RecipeRow {
    fn from_row(r: &sqlx::any::AnyRow) -> Result<RecipeRow> {
        Ok(RecipeRow {
            id: r.try_get("id")?,
            name: r.try_get("name")?,
            repository: r.try_get("repository")?,
            default_branch: r.try_get("default_branch")?,
            credential_enc: r.try_get("credential_enc")?,
            credential_kind: r.try_get("credential_kind")?,
            last_fetched_at: r.try_get("last_fetched_at")?,
            fetch_error: r.try_get("fetch_error")?,
            refs_digest: r.try_get("refs_digest")?,
            required_approvals: r.try_get("required_approvals")?,
            required_collectives: r.try_get("required_collectives")?,
            require_green_run: r.try_get::<i64, _>("require_green_run")? != 0,
        })
    }
}

pub async fn find(st: &AppState, name: &str) -> Result<Option<RecipeRow>> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM recipes WHERE name = $1"))
        .bind(name)
        .fetch_optional(st.db.pool())
        .await?;
    row.as_ref().map(RecipeRow::from_row).transpose()
}

pub async fn get(st: &AppState, name: &str) -> Result<RecipeRow> {
    find(st, name).await?.ok_or_else(|| ApiError::not_found(format!("recipe {name:?}")).into())
}

pub async fn all(st: &AppState) -> Result<Vec<RecipeRow>> {
    let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM recipes ORDER BY name")).fetch_all(st.db.pool()).await?;
    rows.iter().map(RecipeRow::from_row).collect()
}

/// Where a recipe's bare clone lives.
pub fn clone_path(st: &AppState, id: RecipeId) -> PathBuf {
    st.config.data_dir.join("recipes").join(format!("{id}.git"))
}

/// The recipe's bare clone on this machine, cloned first where it is missing: each replica (and
/// a Potluck whose data directory was replaced) keeps its own clones of the recipes registered
/// in the shared database.
///
/// A clone whose branches and tags differ from what the newest fetch recorded (another replica
/// fetched on schedule, or published a release) fetches first. When that fails (the remote is
/// down, or out of this replica's reach), the clone is read as it is, the failure is this
/// replica's alone (not recorded on the recipe), and the next try waits
/// [`CATCH_UP_AFTER_FAILURE`], so that reads do not queue behind a remote that does not answer.
pub async fn local_clone(st: &AppState, recipe: &RecipeRow) -> Result<PathBuf> {
    let path = clone_path(st, recipe.id);
    let behind = || async { recipe.refs_digest.is_some() && local_digest(&path).await != recipe.refs_digest };
    if path.exists() && !behind().await {
        return Ok(path);
    }
    let (lock, failed_at) = {
        let mut clones = CLONES.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let c = clones.entry(path.clone()).or_default();
        (c.lock.clone(), c.failed_at)
    };
    if path.exists() && failed_at.is_some_and(|t| t.elapsed() < CATCH_UP_AFTER_FAILURE) {
        return Ok(path);
    }
    let _one_at_a_time = lock.lock().await;
    if !path.exists() {
        tracing::info!(recipe.name = %recipe.name, "no clone of the recipe on this machine: cloning it");
        fetch(st, recipe).await?.map_err(|e| ApiError::unavailable(format!("recipe {}: {e}", recipe.name)))?;
    } else if behind().await {
        tracing::info!(recipe.name = %recipe.name, "the recipe's clone on this machine is behind: fetching it");
        let caught_up = fetch_as(st, recipe, Fetching::CatchUp).await?;
        let mut clones = CLONES.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let c = clones.entry(path.clone()).or_default();
        match caught_up {
            Ok(()) => c.failed_at = None,
            Err(e) => {
                c.failed_at = Some(std::time::Instant::now());
                tracing::warn!(recipe.name = %recipe.name, error = %e, "reading the recipe's clone as it is");
            }
        }
    }
    Ok(path)
}

/// After a failed catch-up, reads use the clone as it is this long before fetching again.
const CATCH_UP_AFTER_FAILURE: std::time::Duration = std::time::Duration::from_secs(60);

/// Each clone on this machine (by path: several Potlucks may share a process in tests): one
/// fetch at a time, and when its last catch-up failed.
#[derive(Default)]
struct CloneState {
    lock: std::sync::Arc<tokio::sync::Mutex<()>>,
    failed_at: Option<std::time::Instant>,
}

static CLONES: std::sync::LazyLock<std::sync::Mutex<std::collections::HashMap<PathBuf, CloneState>>> =
    std::sync::LazyLock::new(Default::default);

/// Why a fetch runs: its failure is the recipe's news only when it was meant for the recipe
/// (a person's, the schedule's, a first clone), not when a replica was catching up.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fetching {
    ForTheRecipe,
    CatchUp,
}

/// Where a clone keeps the digest of its own branches and tags.
const DIGEST_FILE: &str = "potluck-refs";

async fn local_digest(clone: &Path) -> Option<String> {
    tokio::fs::read_to_string(clone.join(DIGEST_FILE)).await.ok().map(|d| d.trim().to_string())
}

/// A digest of a clone's branches and tags, the same on every replica that fetched the same
/// remote state (blocking). Potluck's own working refs are not part of it.
pub fn refs_digest(repo: &Repository) -> std::result::Result<String, String> {
    use sha2::{Digest, Sha256};
    let mut refs = Vec::new();
    for glob in ["refs/heads/*", "refs/tags/*"] {
        for r in repo.references_glob(glob).map_err(|e| e.message().to_string())? {
            let r = r.map_err(|e| e.message().to_string())?;
            let target =
                r.target().map(|o| o.to_string()).or_else(|| r.symbolic_target().ok().flatten().map(String::from));
            refs.push(format!("{} {}", r.name().unwrap_or_default(), target.unwrap_or_default()));
        }
    }
    refs.sort();
    Ok(hex::encode(Sha256::digest(refs.join("\n"))))
}

/// Records a clone's digest in the clone (blocking); returns it.
fn keep_digest(repo: &Repository) -> std::result::Result<String, String> {
    let digest = refs_digest(repo)?;
    std::fs::write(repo.path().join(DIGEST_FILE), &digest).map_err(|e| format!("cannot write the digest: {e}"))?;
    Ok(digest)
}

/// After Potluck changed a recipe's clone itself (a published release): records its branches and
/// tags as the newest, so other replicas fetch them before they read.
pub async fn note_refs(st: &AppState, recipe: RecipeId) -> Result<()> {
    let path = clone_path(st, recipe);
    let digest =
        tokio::task::spawn_blocking(move || git::open(&path).map_err(|e| e.to_string()).and_then(|r| keep_digest(&r)))
            .await
            .map_err(Error::internal)?;
    match digest {
        Ok(d) => {
            sqlx::query("UPDATE recipes SET refs_digest = $1 WHERE id = $2")
                .bind(d)
                .bind(recipe)
                .execute(st.db.pool())
                .await?;
        }
        Err(e) => tracing::warn!(recipe.id = %recipe, error = %e, "cannot read the recipe's clone"),
    }
    Ok(())
}

/// A recipe name: lower-case letters, digits, `-` and `_`, 1 to 64 characters.
pub fn check_name(name: &str) -> std::result::Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        && name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid("name", format!("{name:?} is not a recipe name: use a-z, 0-9, '-' and '_'")))
    }
}

/// The name a repository URL suggests: its last path segment without `.git`.
pub fn name_from_url(url: &str) -> String {
    url.trim_end_matches('/')
        .rsplit(['/', ':'])
        .next()
        .unwrap_or_default()
        .trim_end_matches(".git")
        .to_ascii_lowercase()
}

/// Credentials for a remote: an HTTPS token (`user:token`) or an SSH private key (PEM).
#[derive(Clone)]
pub enum Credential {
    Https { username: String, token: String },
    SshKey { username: String, key: String },
}

impl Credential {
    /// The credential a maintainer typed in, if any.
    pub fn from_input(input: &RegisterRecipe) -> std::result::Result<Option<Credential>, ApiError> {
        Credential::new(&input.credential_kind, &input.credential_username, &input.credential_secret)
    }

    /// A credential from a form's kind (`https`, `ssh`, or none), user name and secret.
    pub fn new(kind: &str, username: &str, secret: &str) -> std::result::Result<Option<Credential>, ApiError> {
        let username = username.trim().to_string();
        let secret = secret.to_string();
        match kind.trim() {
            "" | "none" => Ok(None),
            _ if secret.trim().is_empty() => Err(ApiError::invalid("credential", "give the token or the private key")),
            "https" => Ok(Some(Credential::Https {
                username: if username.is_empty() { "git".into() } else { username },
                token: secret.trim().to_string(),
            })),
            "ssh" => Ok(Some(Credential::SshKey {
                username: if username.is_empty() { "git".into() } else { username },
                key: secret,
            })),
            other => {
                Err(ApiError::invalid("credential", format!("unknown credential kind {other:?}: choose https or ssh")))
            }
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Credential::Https { .. } => "https",
            Credential::SshKey { .. } => "ssh",
        }
    }

    pub fn encode(&self) -> String {
        match self {
            Credential::Https { username, token } => {
                json!({ "kind": "https", "username": username, "secret": token }).to_string()
            }
            Credential::SshKey { username, key } => {
                json!({ "kind": "ssh", "username": username, "secret": key }).to_string()
            }
        }
    }

    pub fn decode(text: &str) -> Option<Credential> {
        let v: serde_json::Value = serde_json::from_str(text).ok()?;
        let username = v["username"].as_str()?.to_string();
        let secret = v["secret"].as_str()?.to_string();
        match v["kind"].as_str()? {
            "https" => Some(Credential::Https { username, token: secret }),
            "ssh" => Some(Credential::SshKey { username, key: secret }),
            _ => None,
        }
    }
}

pub fn credential_of(st: &AppState, r: &RecipeRow) -> Option<Credential> {
    let sealed = r.credential_enc.as_ref()?;
    Credential::decode(&st.secrets.open(sealed).ok()?)
}

/// Callbacks that answer the remote's authentication with the recipe's credential, once.
pub fn callbacks(credential: Option<Credential>) -> RemoteCallbacks<'static> {
    let mut cb = RemoteCallbacks::new();
    let mut tried = false;
    cb.credentials(move |_url, username_from_url, allowed| {
        if tried {
            return Err(git2::Error::from_str("the remote refused the recipe's credentials"));
        }
        tried = true;
        match &credential {
            Some(Credential::Https { username, token })
                if allowed.contains(git2::CredentialType::USER_PASS_PLAINTEXT) =>
            {
                Cred::userpass_plaintext(username, token)
            }
            Some(Credential::SshKey { username, key }) if allowed.contains(git2::CredentialType::SSH_KEY) => {
                Cred::ssh_key_from_memory(username_from_url.unwrap_or(username), None, key, None)
            }
            _ => Err(git2::Error::from_str("the remote asks for credentials and none are configured for this recipe")),
        }
    });
    cb
}

/// A clone or fetch may receive at most this much (a recipe is text; this is generous).
pub const MAX_TRANSFER_BYTES: usize = 256 << 20;
/// ... and take at most this long.
pub const MAX_TRANSFER_SECS: u64 = 300;

fn fetch_options(credential: Option<Credential>) -> FetchOptions<'static> {
    let mut cb = callbacks(credential);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(MAX_TRANSFER_SECS);
    // Returning false aborts the transfer: too big, or too slow.
    cb.transfer_progress(move |p| p.received_bytes() <= MAX_TRANSFER_BYTES && std::time::Instant::now() < deadline);
    let mut fo = FetchOptions::new();
    fo.remote_callbacks(cb);
    fo.prune(git2::FetchPrune::On);
    fo.download_tags(git2::AutotagOption::All);
    fo
}

const REFSPECS: &[&str] = &["+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"];

/// Clones `url` bare into `path` (blocking).
pub fn clone_bare(url: &str, path: &Path, credential: Option<Credential>) -> std::result::Result<Repository, String> {
    let _ = std::fs::remove_dir_all(path);
    let repo = RepoBuilder::new()
        .bare(true)
        .fetch_options(fetch_options(credential.clone()))
        .clone(url, path)
        .map_err(|e| format!("cannot clone {url}: {}", e.message()))?;
    // Mirror every branch and tag (a bare clone only tracks what the remote's HEAD pointed to).
    {
        let mut remote = repo.find_remote("origin").map_err(|e| e.message().to_string())?;
        remote
            .fetch(REFSPECS, Some(&mut fetch_options(credential)), None)
            .map_err(|e| format!("cannot fetch {url}: {}", e.message()))?;
    }
    Ok(repo)
}

/// Fetches every branch and tag of `origin` into the bare clone (blocking).
pub fn fetch_bare(path: &Path, credential: Option<Credential>) -> std::result::Result<(), String> {
    let repo = Repository::open_bare(path).map_err(|e| format!("the recipe's clone is damaged: {}", e.message()))?;
    let mut remote = repo.find_remote("origin").map_err(|e| e.message().to_string())?;
    let url = remote.url().map(String::from).unwrap_or_default();
    remote
        .fetch(REFSPECS, Some(&mut fetch_options(credential)), None)
        .map_err(|e| format!("cannot fetch {url}: {}", e.message()))
}

/// The branch the remote's HEAD names (or the first of main/master).
pub fn default_branch(repo: &Repository) -> String {
    if let Ok(head) = repo.find_reference("HEAD") {
        if let Ok(Some(target)) = head.symbolic_target() {
            return target.trim_start_matches("refs/heads/").to_string();
        }
    }
    for b in ["main", "master"] {
        if repo.find_reference(&format!("refs/heads/{b}")).is_ok() {
            return b.to_string();
        }
    }
    String::new()
}

/// Whether a repository looks like a recipe: a `compose.yml` on its default branch or any tag.
fn looks_like_a_recipe(repo: &Repository, branch: &str, root: &Path) -> bool {
    let mut revs = vec![format!("refs/heads/{branch}")];
    if let Ok(tags) = git::tags(repo) {
        revs.extend(tags.into_iter().map(|t| format!("refs/tags/{}", t.name)));
    }
    revs.iter().any(|rev| files_at(repo, rev, root).is_ok_and(|f| f.get("compose.yml").is_some()))
}

pub async fn maintainers(st: &AppState, recipe_id: RecipeId) -> Result<Vec<MaintainerView>> {
    let rows = sqlx::query(
        "SELECT m.user_id, u.display_name, m.collective_id, c.slug FROM recipe_maintainers m \
         LEFT JOIN users u ON u.id = m.user_id LEFT JOIN collectives c ON c.id = m.collective_id \
         WHERE m.recipe_id = $1 ORDER BY m.id",
    )
    .bind(recipe_id)
    .fetch_all(st.db.pool())
    .await?;
    let mut out = Vec::new();
    for r in &rows {
        if let Some(uid) = r.try_get::<Option<i64>, _>("user_id")? {
            out.push(MaintainerView {
                kind: "user".into(),
                id: uid,
                name: r.try_get::<Option<String>, _>("display_name")?.unwrap_or_default(),
            });
        } else if let Some(cid) = r.try_get::<Option<i64>, _>("collective_id")? {
            out.push(MaintainerView {
                kind: "collective".into(),
                id: cid,
                name: r.try_get::<Option<String>, _>("slug")?.unwrap_or_default(),
            });
        }
    }
    Ok(out)
}

/// Where a recipe may come from. Anyone who may register recipes gives an `https://` or
/// `ssh://` URL (or git's `user@host:path`); a path on this machine (or `file://`) only a
/// federation admin, and never inside Potluck's data directory, where other recipes' private
/// clones and the instance key live.
pub fn check_source(url: &str, federation_admin: bool, data_dir: &Path) -> std::result::Result<(), ApiError> {
    let lower = url.to_ascii_lowercase();
    let remote = if let Some(rest) = lower.strip_prefix("https://").or_else(|| lower.strip_prefix("ssh://")) {
        !rest.is_empty() && !rest.starts_with('/') && !rest.starts_with('-')
    } else {
        // scp-like `user@host:path` (no scheme, a `:` before any `/`)
        match url.split_once(':') {
            Some((host, path)) => {
                !host.is_empty()
                    && !host.contains('/')
                    && !host.starts_with('-')
                    && !path.is_empty()
                    && !path.starts_with("//")
                    && host.contains('@')
            }
            None => false,
        }
    };
    if remote {
        return Ok(());
    }
    if lower.starts_with("http://") {
        return if federation_admin {
            Ok(())
        } else {
            Err(ApiError::invalid("repository", "give an https:// URL (plain http is for federation admins)"))
        };
    }
    let local = url.strip_prefix("file://").unwrap_or(url);
    let is_path = !local.contains("://") && (local.starts_with('/') || local.starts_with('.') || !local.contains(':'));
    if !is_path {
        return Err(ApiError::invalid("repository", "give an https:// or ssh:// URL (or user@host:path)"));
    }
    if !federation_admin {
        return Err(ApiError::invalid(
            "repository",
            "only a federation admin can register a recipe from a path on the Potluck machine: give an https:// or ssh:// URL",
        ));
    }
    let canonical =
        std::fs::canonicalize(local).map_err(|e| ApiError::invalid("repository", format!("{local}: {e}")))?;
    let data = std::fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
    if canonical.starts_with(&data) {
        return Err(ApiError::invalid(
            "repository",
            "a recipe cannot be registered from inside Potluck's data directory",
        ));
    }
    Ok(())
}

/// Registers a recipe for a person who may: a federation admin, or someone who maintains
/// recipes in some collective (and in `collective`, when they name one).
pub async fn register_recipe(st: &AppState, cap: &Cap<scope::SignedIn>, input: RegisterRecipe) -> Result<RecipeRow> {
    let collective = match input.collective.trim() {
        "" => None,
        slug => Some(cap.collective_access(&st.db, slug, Permission::MaintainRecipes).await?.0),
    };
    let credential = Credential::from_input(&input)?;
    let name = Some(input.name.as_str()).filter(|n| !n.trim().is_empty());
    let registrar =
        Registrar { user_id: cap.user(), federation_admin: cap.is_federation_admin(), origin: cap.origin() };
    register(st, &registrar, &input.repository, name, collective, credential).await
}

/// Who registers a recipe (its first maintainer).
pub struct Registrar<'a> {
    pub user_id: UserId,
    pub federation_admin: bool,
    pub origin: &'a Origin,
}

/// Registers a recipe: clones it, checks it is one, records it with the registrar (and
/// `collective`, when given) as maintainers.
pub async fn register(
    st: &AppState,
    registrar: &Registrar<'_>,
    url: &str,
    name: Option<&str>,
    collective: Option<CollectiveRef>,
    credential: Option<Credential>,
) -> Result<RecipeRow> {
    let url = url.trim().to_string();
    if url.is_empty() {
        return Err(ApiError::invalid("repository", "give the recipe's git URL or path").into());
    }
    check_source(&url, registrar.federation_admin, &st.config.data_dir)?;
    let name = name.map(str::trim).filter(|n| !n.is_empty()).map(String::from).unwrap_or_else(|| name_from_url(&url));
    check_name(&name)?;
    if find(st, &name).await?.is_some() {
        return Err(ApiError::conflict(format!("a recipe named {name:?} is already registered")).into());
    }
    let staging = st.config.data_dir.join("recipes").join(format!("staging-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(staging.parent().unwrap_or(&staging)).map_err(Error::internal)?;
    let (url2, staging2, cred2) = (url.clone(), staging.clone(), credential.clone());
    let checked = tokio::task::spawn_blocking(move || -> std::result::Result<(String, String), String> {
        let repo = clone_bare(&url2, &staging2, cred2)?;
        let branch = default_branch(&repo);
        if !looks_like_a_recipe(&repo, &branch, &staging2) {
            return Err(format!(
                "{url2} is not a recipe: there is no compose.yml on {} or any tag",
                if branch.is_empty() { "its default branch" } else { &branch }
            ));
        }
        Ok((branch, keep_digest(&repo)?))
    })
    .await
    .map_err(Error::internal)?;
    let (branch, digest) = match checked {
        Ok(b) => b,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(ApiError::invalid("repository", e).into());
        }
    };
    let sealed = credential.as_ref().map(|c| st.secrets.seal(&c.encode()));
    let now = now_ms();
    let mut tx = audit::begin(&st.db).await?;
    let id: RecipeId = sqlx::query(
        "INSERT INTO recipes (name, repository, default_branch, credential_enc, credential_kind, created_by, created_at, last_fetched_at, refs_digest) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8) RETURNING id",
    )
    .bind(&name)
    .bind(&url)
    .bind(&branch)
    .bind(sealed)
    .bind(credential.as_ref().map(Credential::kind))
    .bind(registrar.user_id)
    .bind(now)
    .bind(&digest)
    .fetch_one(&mut *tx)
    .await?
    .try_get("id")?;
    sqlx::query("INSERT INTO recipe_maintainers (recipe_id, user_id, added_at) VALUES ($1, $2, $3)")
        .bind(id)
        .bind(registrar.user_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    if let Some(c) = &collective {
        sqlx::query("INSERT INTO recipe_maintainers (recipe_id, collective_id, added_at) VALUES ($1, $2, $3)")
            .bind(id)
            .bind(c.id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
    }
    let event = Event::new(AuditAction::RecipeRegister, format!("recipe {name}")).details(json!({
        "recipe_id": id,
        "repository": url,
        "credential": credential.as_ref().map(Credential::kind),
        "maintainer_collective": collective.as_ref().map(|c| &c.slug),
    }));
    tx.record(registrar.origin, event).await?;
    let target = clone_path(st, id);
    let _ = std::fs::remove_dir_all(&target);
    std::fs::rename(&staging, &target).map_err(Error::internal)?;
    tx.commit().await?;
    get(st, &name).await
}

/// Fetches a recipe's remote now; records when and how it went.
pub async fn fetch(st: &AppState, recipe: &RecipeRow) -> Result<std::result::Result<(), String>> {
    fetch_as(st, recipe, Fetching::ForTheRecipe).await
}

async fn fetch_as(st: &AppState, recipe: &RecipeRow, why: Fetching) -> Result<std::result::Result<(), String>> {
    let path = clone_path(st, recipe.id);
    let credential = credential_of(st, recipe);
    let url = recipe.repository.clone();
    let fetched = tokio::task::spawn_blocking(move || {
        let (before, after) = if path.exists() {
            let before = super::review::latest_release(&path).ok().flatten();
            fetch_bare(&path, credential)?;
            (before, super::review::latest_release(&path).ok().flatten())
        } else {
            clone_bare(&url, &path, credential)?;
            (None, None)
        };
        let digest = git::open(&path).map_err(|e| e.to_string()).and_then(|r| keep_digest(&r))?;
        Ok::<_, String>((before, after, digest))
    })
    .await
    .map_err(Error::internal)?;
    let result = fetched.as_ref().map(|_| ()).map_err(Clone::clone);
    let digest = fetched.as_ref().ok().map(|(_, _, d)| d.clone());
    // A release that appeared on the remote (pushed by a maintainer with git, or by abra).
    if let Ok((Some(before), Some(after), _)) = &fetched {
        if RecipeVersion::parse(after) > RecipeVersion::parse(before) {
            announce_release(st, recipe.id, &recipe.name, after, "").await?;
        }
    }
    let error = result.as_ref().err().cloned();
    if error.is_some() && why == Fetching::CatchUp {
        return Ok(result);
    }
    sqlx::query(
        "UPDATE recipes SET last_fetched_at = $1, fetch_error = $2, refs_digest = COALESCE($3, refs_digest) WHERE id = $4",
    )
    .bind(now_ms())
    .bind(&error)
    .bind(&digest)
    .bind(recipe.id)
        .execute(st.db.pool())
        .await?;
    if let Some(e) = &error {
        tracing::warn!(recipe.name = %recipe.name, error = %e, "recipe fetch failed");
    }
    Ok(result)
}

/// Tells the collectives whose apps run the recipe that it has a new release (once per
/// release, whichever replica or path saw it first).
pub async fn announce_release(st: &AppState, recipe: RecipeId, name: &str, version: &str, notes: &str) -> Result<()> {
    let mut tx = st.db.begin().await?;
    let first = sqlx::query(
        "UPDATE recipes SET announced_version = $1 WHERE id = $2 AND (announced_version IS NULL OR announced_version <> $1)",
    )
    .bind(version)
    .bind(recipe)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    let mut queued = 0;
    if first {
        let rows = sqlx::query(
            "SELECT a.collective_id, c.slug, a.domain, a.version FROM apps a JOIN collectives c ON c.id = a.collective_id \
             WHERE a.recipe_id = $1 AND a.version IS NOT NULL ORDER BY a.collective_id, a.domain",
        )
        .bind(recipe)
        .fetch_all(&mut *tx)
        .await?;
        let mut by_collective: std::collections::BTreeMap<CollectiveId, (String, Vec<String>)> = Default::default();
        for r in &rows {
            let running: String = r.try_get("version")?;
            if RecipeVersion::parse(&running) >= RecipeVersion::parse(version) {
                continue;
            }
            let e = by_collective
                .entry(r.try_get("collective_id")?)
                .or_insert_with(|| (r.try_get("slug").unwrap_or_default(), Vec::new()));
            e.1.push(format!("{} ({running})", r.try_get::<String, _>("domain")?));
        }
        for (collective, (slug, apps)) in by_collective {
            let mut text = format!("{name} {version} is released. Your apps on an older version: {}.", apps.join(", "));
            if !notes.trim().is_empty() {
                text.push_str(&format!("\n\nRelease notes:\n{}", notes.trim()));
            }
            let notice = Notice::new(NotifyEvent::NewRelease, format!("{name} {version} is released"))
                .text(text)
                .path(format!("/recipes/{name}/v/{version}"))
                .data(json!({ "recipe": name, "version": version, "apps": apps, "collective": slug }));
            queued += notify::emit(&mut tx, collective, &notice).await?;
        }
    }
    notify::commit(st, tx, queued).await?;
    Ok(())
}

/// Fetches on request of a maintainer (audited).
pub async fn fetch_now(st: &AppState, cap: &Cap<scope::Recipe>, _input: FetchRecipe) -> Result<()> {
    let recipe = cap.recipe();
    let name = &recipe.name;
    let result = fetch(st, recipe).await?;
    let mut tx = audit::begin(&st.db).await?;
    let event = Event::new(AuditAction::RecipeFetch, format!("recipe {name}"))
        .outcome(if result.is_ok() { "success" } else { "failure" })
        .details(json!({ "error": result.as_ref().err() }));
    tx.record(cap.origin(), event).await?;
    tx.commit().await?;
    result.map_err(|e| ApiError::unavailable(e).into())
}

/// Replaces a recipe's maintainers (federation admins and maintainers).
pub async fn set_maintainers(st: &AppState, cap: &Cap<scope::Recipe>, input: SetRecipeMaintainers) -> Result<()> {
    let recipe = cap.recipe();
    let name = &recipe.name;
    let mut users = Vec::new();
    for u in potluck_app::api::split_list(&input.users) {
        users.push(u.parse::<UserId>().map_err(|_| ApiError::invalid("users", format!("{u:?} is not a user id")))?);
    }
    let collectives = potluck_app::api::split_list(&input.collectives);
    if users.is_empty() && collectives.is_empty() {
        return Err(ApiError::invalid("maintainers", "a recipe needs at least one maintainer").into());
    }
    let mut collective_ids = Vec::new();
    for slug in &collectives {
        let c = crate::domain::authz::find_collective(&st.db, slug)
            .await?
            .ok_or_else(|| ApiError::invalid("collectives", format!("there is no collective {slug:?}")))?;
        collective_ids.push(c.id);
    }
    let now = now_ms();
    let mut tx = audit::begin(&st.db).await?;
    sqlx::query("DELETE FROM recipe_maintainers WHERE recipe_id = $1").bind(recipe.id).execute(&mut *tx).await?;
    for u in &users {
        sqlx::query("INSERT INTO recipe_maintainers (recipe_id, user_id, added_at) VALUES ($1, $2, $3)")
            .bind(recipe.id)
            .bind(u)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(|e| {
                if crate::adapters::db::is_unique_violation(&e) {
                    Error::from(e)
                } else {
                    ApiError::invalid("users", format!("no user {u}")).into()
                }
            })?;
    }
    for c in &collective_ids {
        sqlx::query("INSERT INTO recipe_maintainers (recipe_id, collective_id, added_at) VALUES ($1, $2, $3)")
            .bind(recipe.id)
            .bind(c)
            .bind(now)
            .execute(&mut *tx)
            .await?;
    }
    let event = Event::new(AuditAction::RecipeSetMaintainers, format!("recipe {name}"))
        .details(json!({ "users": users, "collectives": collectives }));
    tx.record(cap.origin(), event).await?;
    tx.commit().await?;
    Ok(())
}

/// Opens a recipe's bare clone (blocking).
pub fn open_clone(st: &AppState, recipe: &RecipeRow) -> std::result::Result<Repository, GitError> {
    git::open(&clone_path(st, recipe.id))
}

/// How many recipes the schedule fetches at once.
const FETCH_CONCURRENCY: usize = 4;

/// Fetches every recipe whose last fetch is older than `every` (the background schedule), a few
/// at a time: each fetch is bounded in time and size, and one slow remote does not hold the rest.
/// Each is claimed first (a compare-and-set on the last fetch's time), so of several replicas
/// only one fetches a recipe from its remote; the others catch up before they read it
/// ([`local_clone`]). Returns how many this replica fetched.
pub async fn fetch_stale(st: &AppState, every_ms: i64) -> Result<usize> {
    use futures::StreamExt;
    let now = now_ms();
    let stale: Vec<RecipeRow> =
        all(st).await?.into_iter().filter(|r| r.last_fetched_at.is_none_or(|t| now - t >= every_ms)).collect();
    let mut fetches = futures::stream::iter(stale)
        .map(|r| async move {
            let claimed = sqlx::query(
                "UPDATE recipes SET last_fetched_at = $1 WHERE id = $2 AND COALESCE(last_fetched_at, -1) = $3",
            )
            .bind(now)
            .bind(r.id)
            .bind(r.last_fetched_at.unwrap_or(-1))
            .execute(st.db.pool())
            .await?
            .rows_affected()
                == 1;
            if claimed {
                // How it went is recorded on the recipe (and logged).
                let _outcome = fetch(st, &r).await?;
            }
            Ok::<_, Error>(claimed as usize)
        })
        .buffer_unordered(FETCH_CONCURRENCY);
    let mut n = 0;
    while let Some(done) = fetches.next().await {
        n += done?;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_by_who_registers() {
        let data = std::env::temp_dir().join(format!("potluck-data-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(data.join("recipes/1.git")).unwrap();
        for ok in ["https://git.coopcloud.tech/coop-cloud/x.git", "ssh://git@host:2222/x.git", "git@host:x/y.git"] {
            assert!(check_source(ok, false, &data).is_ok(), "{ok}");
        }
        for local in ["/srv/recipes/x", "file:///srv/recipes/x", "./x", "x"] {
            let e = check_source(local, false, &data).unwrap_err();
            assert!(e.to_string().contains("only a federation admin"), "{local}: {e}");
        }
        assert!(check_source("http://host/x.git", false, &data).is_err());
        assert!(check_source("http://host/x.git", true, &data).is_ok());
        assert!(check_source("ext::sh -c evil", false, &data).is_err());
        assert!(check_source("ssh://-oProxyCommand=evil/x", false, &data).is_err());
        // Inside the data directory (another recipe's clone, the instance key): never.
        let inside = data.join("recipes/1.git").display().to_string();
        let e = check_source(&inside, true, &data).unwrap_err();
        assert!(e.to_string().contains("data directory"), "{e}");
        let dotted = format!("{}/recipes/../recipes/1.git", data.display());
        assert!(check_source(&dotted, true, &data).is_err());
        let _ = std::fs::remove_dir_all(&data);
    }

    #[test]
    fn names() {
        assert_eq!(name_from_url("https://git.coopcloud.tech/coop-cloud/bonfire.git"), "bonfire");
        assert_eq!(name_from_url("ssh://git@git.coopcloud.tech:2222/coop-cloud/Traefik.git"), "traefik");
        assert_eq!(name_from_url("/srv/recipes/gitea/"), "gitea");
        assert!(check_name("bonfire").is_ok());
        assert!(check_name("Bad Name").is_err());
        assert!(check_name("").is_err());
    }

    #[test]
    fn credentials_round_trip() {
        let c = Credential::Https { username: "bot".into(), token: "t0k3n".into() };
        assert!(matches!(Credential::decode(&c.encode()), Some(Credential::Https { token, .. }) if token == "t0k3n"));
    }
}
