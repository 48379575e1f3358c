//! Release review: maintainers of several collectives prepare a recipe release together. A
//! proposal names a commit of the default branch, a bump and notes; reviewers approve or request
//! changes (a new commit resets approvals); once the recipe's policy is met, Potluck writes the
//! version label and the release note in a commit, tags it (annotated) and pushes both.

use super::release;
use super::staging;
use super::store::{self, RecipeRow};
use super::version::RecipeVersion;
use crate::adapters::db::now_ms;
use crate::adapters::engine::load::RecipeFiles;
use crate::adapters::git::{self, files_at};
use crate::domain::audit::Origin;
use crate::domain::audit::{self, AuditAction, Event};
use crate::domain::authz::{effective_role, Cap};
use crate::domain::notify::{self, Notice};
use crate::error::{Error, Result};
use crate::state::AppState;
use potluck_app::api::{OpenRelease, ReviewRelease, UpdateRelease};
use potluck_app::error::ApiError;
use potluck_app::model::*;
use potluck_app::ops::scope;
use serde_json::json;
use sqlx::Row;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

#[derive(Debug, Clone)]
pub struct ProposalRow {
    pub id: ProposalId,
    pub recipe: String,
    pub version: String,
    pub bump: String,
    pub base_version: Option<String>,
    pub commit: String,
    pub notes: String,
    pub state: String,
    pub proposed_by: UserId,
    pub proposed_by_name: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub published_commit: Option<String>,
    pub publish_error: Option<String>,
}

const SELECT: &str = "SELECT p.id, r.name AS recipe_name, p.version, p.bump, p.base_version, p.commit_id, p.notes, \
     p.state, p.proposed_by, p.proposed_by_name, p.created_at, p.updated_at, p.published_commit, p.publish_error \
     FROM release_proposals p JOIN recipes r ON r.id = p.recipe_id";

impl ProposalRow {
    fn from_row(r: &sqlx::any::AnyRow) -> Result<ProposalRow> {
        Ok(ProposalRow {
            id: r.try_get("id")?,
            recipe: r.try_get("recipe_name")?,
            version: r.try_get("version")?,
            bump: r.try_get("bump")?,
            base_version: r.try_get("base_version")?,
            commit: r.try_get("commit_id")?,
            notes: r.try_get("notes")?,
            state: r.try_get("state")?,
            proposed_by: r.try_get("proposed_by")?,
            proposed_by_name: r.try_get("proposed_by_name")?,
            created_at: r.try_get("created_at")?,
            updated_at: r.try_get("updated_at")?,
            published_commit: r.try_get("published_commit")?,
            publish_error: r.try_get("publish_error")?,
        })
    }
}

/// The capability's proposal, which must still be open, and its recipe.
fn open_proposal(cap: &Cap<scope::Proposal>) -> Result<(ProposalRow, RecipeRow)> {
    let p = cap.proposal().clone();
    if p.state != "open" {
        return Err(ApiError::conflict(format!("proposal {} is {}", p.id, p.state)).into());
    }
    Ok((p, cap.recipe().clone()))
}

/// A proposal by id (authorization resolves it; see `authz`).
pub async fn find_row(st: &AppState, id: ProposalId) -> Result<Option<ProposalRow>> {
    let row = sqlx::query(&format!("{SELECT} WHERE p.id = $1")).bind(id).fetch_optional(st.db.pool()).await?;
    row.as_ref().map(ProposalRow::from_row).transpose()
}

async fn get_row(st: &AppState, id: ProposalId) -> Result<ProposalRow> {
    find_row(st, id).await?.ok_or_else(|| ApiError::not_found(format!("release proposal {id}")).into())
}

struct Review {
    view: ReleaseReviewView,
    user_id: UserId,
}

async fn reviews(st: &AppState, p: &ProposalRow) -> Result<Vec<Review>> {
    let rows = sqlx::query(
        "SELECT id, user_id, user_name, collective_slug, verdict, comment, commit_id, created_at FROM release_reviews WHERE proposal_id = $1 ORDER BY id",
    )
    .bind(p.id)
    .fetch_all(st.db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            let user_id: UserId = r.try_get("user_id")?;
            let verdict: String = r.try_get("verdict")?;
            let commit: String = r.try_get("commit_id")?;
            Ok(Review {
                view: ReleaseReviewView {
                    id: r.try_get("id")?,
                    reviewer: r.try_get("user_name")?,
                    collective: r.try_get("collective_slug")?,
                    counts: false,
                    verdict,
                    comment: r.try_get("comment")?,
                    commit,
                    created_at: r.try_get("created_at")?,
                },
                user_id,
            })
        })
        .collect()
}

/// The policy's view of the reviews: each reviewer's latest verdict on the current commit.
struct Tally {
    approvals: i64,
    collectives: BTreeSet<String>,
    changes_requested: bool,
    counted: BTreeSet<ReviewId>,
}

fn tally(p: &ProposalRow, reviews: &[Review]) -> Tally {
    let mut latest: BTreeMap<UserId, &Review> = BTreeMap::new();
    for r in reviews.iter().filter(|r| r.view.commit == p.commit && r.view.verdict != "comment") {
        latest.insert(r.user_id, r);
    }
    let mut t =
        Tally { approvals: 0, collectives: BTreeSet::new(), changes_requested: false, counted: BTreeSet::new() };
    for (user, r) in latest {
        match r.view.verdict.as_str() {
            "request_changes" => t.changes_requested = true,
            "approve" if user != p.proposed_by => {
                t.approvals += 1;
                t.counted.insert(r.view.id);
                if let Some(c) = &r.view.collective {
                    t.collectives.insert(c.clone());
                }
            }
            _ => {}
        }
    }
    t
}

fn approved(t: &Tally, recipe: &RecipeRow) -> bool {
    !t.changes_requested
        && t.approvals >= recipe.required_approvals
        && t.collectives.len() as i64 >= recipe.required_collectives
}

fn summary(p: &ProposalRow, t: &Tally, recipe: &RecipeRow) -> ReleaseProposalSummary {
    ReleaseProposalSummary {
        id: p.id,
        recipe: p.recipe.clone(),
        version: p.version.clone(),
        bump: p.bump.clone(),
        state: p.state.clone(),
        commit: p.commit.clone(),
        proposed_by: p.proposed_by_name.clone(),
        created_at: p.created_at,
        updated_at: p.updated_at,
        approvals: t.approvals,
        approved: approved(t, recipe),
        publish_error: p.publish_error.clone(),
    }
}

/// The collective a reviewer speaks for: one that maintains the recipe and where they are a
/// maintainer (or more), else any collective where they are, alphabetically first.
async fn reviewer_collective(
    st: &AppState,
    recipe_id: RecipeId,
    user_id: UserId,
) -> Result<Option<(CollectiveId, String)>> {
    let rows = sqlx::query("SELECT c.id, c.slug FROM collectives c JOIN memberships m ON m.collective_id = c.id WHERE m.user_id = $1 ORDER BY c.slug")
        .bind(user_id)
        .fetch_all(st.db.pool())
        .await?;
    let maintaining: BTreeSet<CollectiveId> =
        sqlx::query("SELECT collective_id FROM recipe_maintainers WHERE recipe_id = $1 AND collective_id IS NOT NULL")
            .bind(recipe_id)
            .fetch_all(st.db.pool())
            .await?
            .iter()
            .filter_map(|r| r.try_get::<CollectiveId, _>("collective_id").ok())
            .collect();
    let mut candidates = Vec::new();
    for r in &rows {
        let id: CollectiveId = r.try_get("id")?;
        let slug: String = r.try_get("slug")?;
        if effective_role(&st.db, id, user_id).await?.is_some_and(|role| role >= Role::Maintainer) {
            candidates.push((maintaining.contains(&id), id, slug));
        }
    }
    candidates.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.2.cmp(&b.2)));
    Ok(candidates.into_iter().next().map(|(_, id, slug)| (id, slug)))
}

/// Reads what a proposal needs from the clone (blocking): the files of the base version and of
/// the commit, and whether the commit is on the default branch.
fn read_versions(
    path: &Path,
    branch: &str,
    base: Option<&str>,
    commit: &str,
) -> std::result::Result<(Option<RecipeFiles>, RecipeFiles, String), String> {
    let repo = git::open(path).map_err(|e| e.to_string())?;
    let branch_ref = format!("refs/heads/{branch}");
    let head = repo.refname_to_id(&branch_ref).map_err(|_| format!("the recipe has no branch {branch}"))?;
    let wanted = if commit.trim().is_empty() {
        head
    } else {
        repo.revparse_single(commit.trim())
            .and_then(|o| o.peel_to_commit())
            .map(|c| c.id())
            .map_err(|_| format!("no commit {commit:?} in the recipe (fetch it first?)"))?
    };
    if wanted != head && !repo.graph_descendant_of(head, wanted).unwrap_or(false) {
        return Err(format!("commit {} is not on the branch {branch}", &wanted.to_string()[..8]));
    }
    let head_files = files_at(&repo, &wanted.to_string(), path).map_err(|e| e.to_string())?;
    let base_files = match base {
        Some(tag) => Some(files_at(&repo, &format!("refs/tags/{tag}"), path).map_err(|e| e.to_string())?),
        None => None,
    };
    Ok((base_files, head_files, wanted.to_string()))
}

/// The release a new one is compared with: the highest version with a semver part.
pub(crate) fn latest_release(path: &Path) -> std::result::Result<Option<String>, String> {
    let repo = git::open(path).map_err(|e| e.to_string())?;
    let mut versions: Vec<RecipeVersion> = git::tags(&repo)
        .map_err(|e| e.to_string())?
        .iter()
        .map(|t| RecipeVersion::parse(&t.name))
        .filter(|v| v.semver.is_some())
        .collect();
    versions.sort();
    Ok(versions.pop().map(|v| v.tag))
}

fn tag_exists(path: &Path, tag: &str) -> bool {
    git::open(path).is_ok_and(|r| r.find_reference(&format!("refs/tags/{tag}")).is_ok())
}

pub async fn list(st: &AppState, cap: &Cap<scope::Recipe>) -> Result<Vec<ReleaseProposalSummary>> {
    let r = cap.recipe().clone();
    let rows = sqlx::query(&format!("{SELECT} WHERE p.recipe_id = $1 ORDER BY p.id DESC"))
        .bind(r.id)
        .fetch_all(st.db.pool())
        .await?;
    let mut out = Vec::new();
    for row in &rows {
        let p = ProposalRow::from_row(row)?;
        let t = tally(&p, &reviews(st, &p).await?);
        out.push(summary(&p, &t, &r));
    }
    Ok(out)
}

/// The person acting on a proposal (always a maintainer in a browser session).
struct Person<'a> {
    user_id: UserId,
    origin: &'a Origin,
}

pub async fn open(st: &AppState, cap: &Cap<scope::Recipe>, input: OpenRelease) -> Result<ReleaseProposalDetail> {
    let r = cap.recipe().clone();
    let me = Person { user_id: cap.user_id().unwrap_or_default(), origin: cap.origin() };
    if input.notes.trim().is_empty() {
        return Err(ApiError::invalid("notes", "write release notes: operators read them before upgrading").into());
    }
    let path = store::local_clone(st, &r).await?;
    let (branch, commit) = (r.default_branch.clone(), input.commit.clone());
    let p2 = path.clone();
    let (base, base_files, head_files, full) =
        tokio::task::spawn_blocking(move || -> std::result::Result<_, String> {
            let base = latest_release(&p2)?;
            let (b, h, full) = read_versions(&p2, &branch, base.as_deref(), &commit)?;
            Ok((base, b, h, full))
        })
        .await
        .map_err(Error::internal)?
        .map_err(|e| ApiError::invalid("commit", e))?;
    let diff = release::diff(base_files.as_ref(), &head_files, &r.name);
    let bump = match input.bump.trim() {
        "" => diff.suggested_bump.clone(),
        b @ ("major" | "minor" | "patch") => b.to_string(),
        other => return Err(ApiError::invalid("bump", format!("{other:?}: choose major, minor or patch")).into()),
    };
    let version = match input.version.trim() {
        "" => release::next_version(base.as_deref(), base_files.as_ref(), &head_files, &bump)
            .map_err(|e| ApiError::invalid("version", e))?,
        v => {
            let parsed = RecipeVersion::parse(v);
            if !parsed.is_canonical() {
                return Err(ApiError::invalid(
                    "version",
                    format!("{v:?} is not <semver>+<upstream> (e.g. 1.2.0+3.4.5)"),
                )
                .into());
            }
            if tag_exists(&path, v) {
                return Err(ApiError::conflict(format!("{} already has a tag {v}", r.name)).into());
            }
            if let Some(b) = base.as_deref().map(RecipeVersion::parse) {
                if parsed <= b {
                    return Err(ApiError::invalid("version", format!("{v} is not newer than {}", b.tag)).into());
                }
            }
            v.to_string()
        }
    };
    if !git2::Reference::is_valid_name(&format!("refs/tags/{version}")) {
        return Err(ApiError::invalid("version", format!("{version:?} cannot be a git tag")).into());
    }
    if tag_exists(&path, &version) {
        return Err(ApiError::conflict(format!("{} already has a tag {version}", r.name)).into());
    }
    let now = now_ms();
    let name = display_name(st, me.user_id).await?;
    let mut tx = audit::begin(&st.db).await?;
    let inserted = sqlx::query(
        "INSERT INTO release_proposals (recipe_id, version, bump, base_version, commit_id, notes, state, proposed_by, proposed_by_name, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, 'open', $7, $8, $9, $9) RETURNING id",
    )
    .bind(r.id)
    .bind(&version)
    .bind(&bump)
    .bind(&base)
    .bind(&full)
    .bind(input.notes.trim())
    .bind(me.user_id)
    .bind(&name)
    .bind(now)
    .fetch_one(&mut *tx)
    .await;
    let id: ProposalId = match inserted {
        Ok(row) => row.try_get("id")?,
        Err(e) if crate::adapters::db::is_unique_violation(&e) => {
            drop(tx);
            let other = sqlx::query("SELECT id, proposed_by_name FROM release_proposals WHERE recipe_id = $1 AND version = $2 AND state IN ('open', 'published')")
                .bind(r.id)
                .bind(&version)
                .fetch_optional(st.db.pool())
                .await?;
            let who = other.map(|o| {
                format!(
                    " (#{} by {})",
                    o.try_get::<ProposalId, _>("id").unwrap_or_default(),
                    o.try_get::<String, _>("proposed_by_name").unwrap_or_default()
                )
            });
            return Err(ApiError::conflict(format!(
                "{version} of {} is already proposed{}",
                r.name,
                who.unwrap_or_default()
            ))
            .into());
        }
        Err(e) => return Err(e.into()),
    };
    let row = ProposalRow {
        id,
        recipe: r.name.clone(),
        version: version.clone(),
        bump: bump.clone(),
        base_version: base.clone(),
        commit: full.clone(),
        notes: String::new(),
        state: "open".into(),
        proposed_by: me.user_id,
        proposed_by_name: name.clone(),
        created_at: now,
        updated_at: now,
        published_commit: None,
        publish_error: None,
    };
    let run = staging::enqueue(&mut tx, r.id, &row, &name).await?;
    let event = Event::new(AuditAction::ReleaseOpen, format!("recipe {} {version}", r.name)).details(json!({
        "proposal_id": id, "commit": full, "bump": bump, "base_version": base, "staging_run": run,
    }));
    tx.record(me.origin, event).await?;
    let notice = Notice::new(NotifyEvent::ReviewRequested, format!("{} {version} awaits reviews", r.name))
        .text(format!(
            "{name} proposes {version} of {} ({bump}, after {}). Release notes:\n\n{}",
            r.name,
            base.as_deref().unwrap_or("no release yet"),
            input.notes.trim()
        ))
        .path(format!("/releases/{id}"))
        .data(json!({ "recipe": r.name, "version": version, "proposal_id": id, "proposed_by": name, "commit": full }));
    let queued = request_reviews(&mut tx, r.id, me.user_id, &notice).await?;
    tx.commit().await?;
    if queued > 0 {
        notify::deliver::wake(st);
    }
    if run.is_some() {
        st.staging.notify_one();
    }
    detail_of(st, get_row(st, id).await?, &r, me.user_id, cap.maintains()).await
}

/// Tells the collectives that maintain the recipe (their channels) and the people who may review
/// it (by email, when they asked for it), except the proposer, that a proposal awaits reviews.
async fn request_reviews(
    conn: &mut sqlx::AnyConnection,
    recipe: RecipeId,
    proposer: UserId,
    notice: &Notice,
) -> Result<usize> {
    let collectives: Vec<CollectiveId> =
        sqlx::query("SELECT collective_id FROM recipe_maintainers WHERE recipe_id = $1 AND collective_id IS NOT NULL")
            .bind(recipe)
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(|r| r.try_get("collective_id"))
            .collect::<std::result::Result<_, _>>()?;
    let mut queued = 0;
    for c in &collectives {
        queued += notify::emit(&mut *conn, *c, notice).await?;
    }
    let reviewers = sqlx::query(
        "SELECT user_id FROM recipe_maintainers WHERE recipe_id = $1 AND user_id IS NOT NULL \
         UNION SELECT m.user_id FROM memberships m JOIN recipe_maintainers rm ON rm.collective_id = m.collective_id \
         WHERE rm.recipe_id = $1 AND m.role IN ('maintainer', 'operator', 'admin')",
    )
    .bind(recipe)
    .fetch_all(&mut *conn)
    .await?;
    let mut people: Vec<UserId> =
        reviewers.iter().map(|r| r.try_get("user_id")).collect::<std::result::Result<_, _>>()?;
    people.sort();
    people.dedup();
    people.retain(|p| *p != proposer);
    let personal = Notice { subject: notice.subject.replace("awaits reviews", "awaits your review"), ..notice.clone() };
    queued += notify::emit_to_people(&mut *conn, &people, &personal).await?;
    Ok(queued)
}

async fn display_name(st: &AppState, user_id: UserId) -> Result<String> {
    Ok(sqlx::query("SELECT display_name FROM users WHERE id = $1")
        .bind(user_id)
        .fetch_one(st.db.pool())
        .await?
        .try_get("display_name")?)
}

pub async fn detail(st: &AppState, cap: &Cap<scope::Proposal>) -> Result<ReleaseProposalDetail> {
    detail_of(st, cap.proposal().clone(), cap.recipe(), cap.user_id().unwrap_or_default(), cap.reviews()).await
}

/// A proposal as its page shows it to `user_id` (`reviews`: whether they may review it).
async fn detail_of(
    st: &AppState,
    p: ProposalRow,
    r: &RecipeRow,
    user_id: UserId,
    reviews_it: bool,
) -> Result<ReleaseProposalDetail> {
    let path = store::local_clone(st, r).await?;
    let (branch, base, commit) = (r.default_branch.clone(), p.base_version.clone(), p.commit.clone());
    let read = tokio::task::spawn_blocking(move || read_versions(&path, &branch, base.as_deref(), &commit))
        .await
        .map_err(Error::internal)?;
    let diff = match read {
        Ok((b, h, _)) => release::diff(b.as_ref(), &h, &r.name),
        Err(e) => {
            ReleaseDiff { errors: vec![format!("cannot read the proposal's commit: {e}")], ..ReleaseDiff::default() }
        }
    };
    let mut all = reviews(st, &p).await?;
    let t = tally(&p, &all);
    for rv in &mut all {
        rv.view.counts = t.counted.contains(&rv.view.id);
    }
    Ok(ReleaseProposalDetail {
        summary: summary(&p, &t, r),
        notes: p.notes.clone(),
        base_version: p.base_version.clone(),
        branch: r.default_branch.clone(),
        diff,
        reviews: all.into_iter().map(|r| r.view).collect(),
        required_approvals: r.required_approvals,
        required_collectives: r.required_collectives,
        approving_collectives: t.collectives.iter().cloned().collect(),
        changes_requested: t.changes_requested,
        can_review: p.state == "open" && reviews_it,
        is_proposer: p.proposed_by == user_id,
        published_commit: p.published_commit.clone(),
        staging: staging::of_proposal(st, p.id).await?,
        require_green_run: r.require_green_run,
        green: staging::green(st, p.id, &p.commit).await?,
        staging_available: staging::available(st).await?,
    })
}

/// Records a review; when it completes the policy, the release is published at once.
pub async fn review(st: &AppState, cap: &Cap<scope::Proposal>, input: ReviewRelease) -> Result<ReleaseProposalDetail> {
    let (p, r) = open_proposal(cap)?;
    let (id, verdict, comment) = (p.id, input.verdict.as_str(), input.comment.as_str());
    let me = Person { user_id: cap.user_id().unwrap_or_default(), origin: cap.origin() };
    if !matches!(verdict, "approve" | "request_changes" | "comment") {
        return Err(ApiError::invalid("verdict", "approve, request_changes or comment").into());
    }
    if verdict != "approve" && comment.trim().is_empty() {
        return Err(ApiError::invalid("comment", "say what should change (or what you noticed)").into());
    }
    let collective = reviewer_collective(st, r.id, me.user_id).await?;
    let name = display_name(st, me.user_id).await?;
    let mut tx = audit::begin(&st.db).await?;
    sqlx::query(
        "INSERT INTO release_reviews (proposal_id, user_id, user_name, collective_id, collective_slug, verdict, comment, commit_id, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(id)
    .bind(me.user_id)
    .bind(&name)
    .bind(collective.as_ref().map(|c| c.0))
    .bind(collective.as_ref().map(|c| c.1.clone()))
    .bind(verdict)
    .bind(comment.trim())
    .bind(&p.commit)
    .bind(now_ms())
    .execute(&mut *tx)
    .await?;
    let event = Event::new(AuditAction::ReleaseReview, format!("recipe {} {}", r.name, p.version)).details(json!({
        "proposal_id": id, "verdict": verdict, "commit": p.commit, "collective": collective.as_ref().map(|c| &c.1),
        "counts": verdict == "approve" && me.user_id != p.proposed_by,
    }));
    tx.record(me.origin, event).await?;
    tx.commit().await?;
    let t = tally(&p, &reviews(st, &p).await?);
    if verdict == "approve" && approved(&t, &r) {
        publish_now(st, &me, &p, &r).await?;
    }
    detail_of(st, get_row(st, id).await?, &r, me.user_id, cap.reviews()).await
}

/// Points the proposal at a newer commit and/or new notes; approvals start over.
pub async fn update(st: &AppState, cap: &Cap<scope::Proposal>, input: UpdateRelease) -> Result<ReleaseProposalDetail> {
    let (p, r) = open_proposal(cap)?;
    let (id, commit, notes) = (p.id, input.commit.as_str(), input.notes.as_str());
    let path = store::local_clone(st, &r).await?;
    let (branch, c) = (r.default_branch.clone(), commit.to_string());
    let full = tokio::task::spawn_blocking(move || read_versions(&path, &branch, None, &c).map(|(_, _, full)| full))
        .await
        .map_err(Error::internal)?
        .map_err(|e| ApiError::invalid("commit", e))?;
    let notes = if notes.trim().is_empty() { p.notes.clone() } else { notes.trim().to_string() };
    let mut tx = audit::begin(&st.db).await?;
    sqlx::query(
        "UPDATE release_proposals SET commit_id = $1, notes = $2, updated_at = $3, publish_error = NULL WHERE id = $4",
    )
    .bind(&full)
    .bind(&notes)
    .bind(now_ms())
    .bind(id)
    .execute(&mut *tx)
    .await?;
    // A new commit is tried on staging again.
    let run = if full != p.commit {
        let name = display_name(st, cap.user_id().unwrap_or_default()).await?;
        staging::enqueue(&mut tx, r.id, &ProposalRow { commit: full.clone(), ..p.clone() }, &name).await?
    } else {
        None
    };
    let event = Event::new(AuditAction::ReleaseUpdate, format!("recipe {} {}", r.name, p.version)).details(json!({
        "proposal_id": id, "from_commit": p.commit, "to_commit": full, "approvals_reset": full != p.commit,
        "staging_run": run,
    }));
    tx.record(cap.origin(), event).await?;
    tx.commit().await?;
    if run.is_some() {
        st.staging.notify_one();
    }
    detail_of(st, get_row(st, id).await?, &r, cap.user_id().unwrap_or_default(), cap.reviews()).await
}

pub async fn withdraw(st: &AppState, cap: &Cap<scope::Proposal>) -> Result<()> {
    let (p, r) = open_proposal(cap)?;
    let id = p.id;
    let mut tx = audit::begin(&st.db).await?;
    sqlx::query("UPDATE release_proposals SET state = 'withdrawn', updated_at = $1 WHERE id = $2")
        .bind(now_ms())
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.record(
        cap.origin(),
        Event::new(AuditAction::ReleaseWithdraw, format!("recipe {} {}", r.name, p.version))
            .details(json!({ "proposal_id": id })),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Publishes an approved proposal whose last attempt failed (e.g. the push was rejected).
pub async fn publish(st: &AppState, cap: &Cap<scope::Proposal>) -> Result<ReleaseProposalDetail> {
    let (p, r) = open_proposal(cap)?;
    let id = p.id;
    let me = Person { user_id: cap.user_id().unwrap_or_default(), origin: cap.origin() };
    let t = tally(&p, &reviews(st, &p).await?);
    if !approved(&t, &r) {
        return Err(ApiError::conflict(format!(
            "proposal {id} is not approved: {} of {} approvals from {} of {} collectives{}",
            t.approvals,
            r.required_approvals,
            t.collectives.len(),
            r.required_collectives,
            if t.changes_requested { ", and changes are requested" } else { "" }
        ))
        .into());
    }
    publish_now(st, &me, &p, &r).await?;
    detail_of(st, get_row(st, id).await?, &r, me.user_id, cap.reviews()).await
}

/// Writes, tags and pushes; records the outcome on the proposal (a failure leaves it open with
/// the reason) and in the audit log.
async fn publish_now(st: &AppState, me: &Person<'_>, p: &ProposalRow, r: &RecipeRow) -> Result<()> {
    let (name, email): (String, Option<String>) = {
        let row = sqlx::query("SELECT display_name, email FROM users WHERE id = $1")
            .bind(me.user_id)
            .fetch_one(st.db.pool())
            .await?;
        (row.try_get("display_name")?, row.try_get("email")?)
    };
    // This replica's clone, caught up: the proposal's commit may have been fetched elsewhere.
    let clone = store::local_clone(st, r).await?;
    let job = super::publish::PublishJob {
        path: clone.clone(),
        credential: store::credential_of(st, r),
        branch: r.default_branch.clone(),
        commit: p.commit.clone(),
        tag: p.version.clone(),
        notes: p.notes.clone(),
        recipe: r.name.clone(),
        author: (name, email.unwrap_or_else(|| "potluck@localhost".into())),
        temp_ref: format!("refs/potluck/release-{}", p.id),
    };
    // What the review page shows as blocking does block: a proposal whose diff has errors
    // (e.g. a config changed without a new name) is not pushed.
    let (path, branch, base, commit) = (clone, r.default_branch.clone(), p.base_version.clone(), p.commit.clone());
    let recipe_name = r.name.clone();
    let blocking = tokio::task::spawn_blocking(move || {
        read_versions(&path, &branch, base.as_deref(), &commit)
            .map(|(b, h, _)| release::diff(b.as_ref(), &h, &recipe_name).errors)
    })
    .await
    .map_err(Error::internal)?;
    let green = !r.require_green_run || staging::green(st, p.id, &p.commit).await?;
    let outcome = match blocking {
        Ok(errors) if !errors.is_empty() => Err(format!("the release has errors to fix first: {}", errors.join("; "))),
        Ok(_) if !green => Err(format!(
            "{}'s policy asks for a passed staging run of commit {} first",
            r.name,
            &p.commit[..12.min(p.commit.len())]
        )),
        Err(e) => Err(format!("cannot read the proposal's commit: {e}")),
        Ok(_) => {
            // The intent is on record before anything leaves Potluck; the outcome follows.
            let intent = Event::new(AuditAction::ReleasePublishIntent, format!("recipe {} {}", r.name, p.version))
                .details(json!({ "proposal_id": p.id, "commit": p.commit, "tag": p.version }));
            audit::record_alone(&st.db, me.origin, intent).await?;
            let pushed = tokio::task::spawn_blocking(move || job.run()).await.map_err(Error::internal)?;
            // Other replicas' clones fetch the new tag before they read the recipe. Whatever
            // happens to that note, the push's outcome is recorded below.
            if let Err(e) = store::note_refs(st, r.id).await {
                tracing::warn!(recipe.name = %r.name, error = %e, "cannot note the published release's refs");
            }
            pushed
        }
    };
    let now = now_ms();
    let mut tx = audit::begin(&st.db).await?;
    match &outcome {
        Ok(commit) => {
            sqlx::query("UPDATE release_proposals SET state = 'published', published_at = $1, published_commit = $2, publish_error = NULL, updated_at = $1 WHERE id = $3")
                .bind(now)
                .bind(commit)
                .bind(p.id)
                .execute(&mut *tx)
                .await?;
        }
        Err(reason) => {
            sqlx::query("UPDATE release_proposals SET publish_error = $1, updated_at = $2 WHERE id = $3")
                .bind(reason)
                .bind(now)
                .bind(p.id)
                .execute(&mut *tx)
                .await?;
        }
    }
    let event = Event::new(AuditAction::ReleasePublish, format!("recipe {} {}", r.name, p.version))
        .outcome(if outcome.is_ok() { "success" } else { "failure" })
        .details(json!({ "proposal_id": p.id, "commit": outcome.as_ref().ok(), "error": outcome.as_ref().err() }));
    tx.record(me.origin, event).await?;
    tx.commit().await?;
    match &outcome {
        Ok(_) => store::announce_release(st, r.id, &r.name, &p.version, &p.notes).await?,
        Err(e) => {
            tracing::warn!(recipe.name = %r.name, release.version = %p.version, error = %e, "release not published")
        }
    }
    Ok(())
}
