//! Scheduled restore drills, per collective: on a cron pattern (UTC) a round begins that drills
//! the newest snapshot of every app of the collective that has not passed a drill yet, one app
//! after another (a drill deploys a throw-away stack; a collective's server runs one at a time).
//!
//! A round is kept with the schedule (`drill_schedules.round`): the apps still to drill with the
//! snapshot chosen when the round began, the drill job under way, and the outcomes so far. The
//! scheduler advances it whenever the current drill job has ended. Every change of a round
//! moves `round_seq` on first, compared against the value read, so that several Potluck
//! replicas on one database queue each drill once. A run that comes due while a round is still
//! under way is skipped and counted.

use super::apps;
use super::backups;
use super::jobs;
use super::schedules::Pattern;
use crate::adapters::db::now_ms;
use crate::domain::audit::{self, Actor, Event, Origin};
use crate::domain::authz::{collective_by_id, Cap};
use crate::error::Result;
use crate::state::AppState;
use potluck_app::actions::AuditAction;
use potluck_app::api::{RemoveDrillSchedule, SetDrillSchedule};
use potluck_app::error::ApiError;
use potluck_app::model::*;
use potluck_app::ops::scope;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::Row;
use std::collections::VecDeque;
use std::time::Duration;

/// How often a round under way is looked at (the drill job's end is seen within this).
const ROUND_POLL: Duration = Duration::from_secs(5);
/// The most apps named in a round's summary (the rest are counted).
const NAMED: usize = 5;

/// An app still to drill in a round.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Pending {
    app: AppId,
    domain: String,
    snapshot: String,
}

/// The drill under way.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Current {
    job: JobId,
    domain: String,
}

/// A round of drills, as kept between scheduler ticks.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
struct Round {
    started_at: i64,
    /// Apps in the collective when the round began.
    apps: usize,
    pending: VecDeque<Pending>,
    current: Option<Current>,
    passed: Vec<String>,
    failed: Vec<String>,
    /// Newest snapshot had passed a drill already.
    verified: Vec<String>,
    /// `domain: why`.
    skipped: Vec<String>,
    /// Runs that came due while this round was under way.
    missed: u32,
}

fn names(list: &[String]) -> String {
    let mut shown = list.iter().take(NAMED).cloned().collect::<Vec<_>>().join(", ");
    if list.len() > NAMED {
        shown.push_str(&format!(" and {} more", list.len() - NAMED));
    }
    shown
}

impl Round {
    fn done(&self) -> usize {
        self.passed.len() + self.failed.len() + self.skipped.len() + self.verified.len()
    }

    /// The round under way, in a line.
    fn progress(&self) -> String {
        let Some(c) = &self.current else { return "starting".into() };
        format!(
            "drilling {} ({} of {}; {} passed, {} failed so far)",
            c.domain,
            self.done() + 1,
            self.apps,
            self.passed.len(),
            self.failed.len()
        )
    }

    /// How the round ended, in a line.
    fn summary(&self) -> String {
        if self.apps == 0 {
            return "no app to drill".into();
        }
        let mut parts = vec![format!("{} drilled and passed", self.passed.len())];
        if !self.failed.is_empty() {
            parts.push(format!("{} FAILED ({})", self.failed.len(), names(&self.failed)));
        }
        if !self.verified.is_empty() {
            parts.push(format!("{} already verified", self.verified.len()));
        }
        if !self.skipped.is_empty() {
            parts.push(format!("{} not drilled ({})", self.skipped.len(), names(&self.skipped)));
        }
        let mut text = format!("{} apps: {}", self.apps, parts.join(", "));
        if self.missed > 0 {
            text.push_str(&format!("; {} scheduled runs came while it ran and were skipped", self.missed));
        }
        text
    }
}

fn view_of(r: &sqlx::any::AnyRow) -> Result<DrillScheduleView> {
    let cron: String = r.try_get("cron")?;
    let described = Pattern::parse(&cron, Duration::ZERO).map(|p| p.describe()).unwrap_or_default();
    Ok(DrillScheduleView {
        cron,
        described,
        next_run_at: r.try_get("next_run_at")?,
        last_run_at: r.try_get("last_run_at")?,
        last_result: r.try_get("last_result")?,
        running: r.try_get::<Option<String>, _>("round")?.is_some(),
        set_by: r.try_get("set_by_name")?,
        updated_at: r.try_get("updated_at")?,
    })
}

/// The collective's drill schedule, if it has one.
pub async fn of_collective(st: &AppState, collective: CollectiveId) -> Result<Option<DrillScheduleView>> {
    let row = sqlx::query(
        "SELECT cron, next_run_at, last_run_at, last_result, round, set_by_name, updated_at \
         FROM drill_schedules WHERE collective_id = $1",
    )
    .bind(collective)
    .fetch_optional(st.db.pool())
    .await?;
    row.as_ref().map(view_of).transpose()
}

/// `set_drill_schedule`: checks the pattern (no more often than backups may run), then records
/// the schedule with its audit event. A round under way goes on.
pub async fn set(st: &AppState, access: &Cap<scope::Collective>, input: SetDrillSchedule) -> Result<DrillScheduleView> {
    let c = access.collective();
    let min_gap = Duration::from_secs(st.config.backup_min_interval_secs);
    let pattern = Pattern::parse(&input.cron, min_gap).map_err(|e| ApiError::invalid("cron", e))?;
    let now = now_ms();
    let next = pattern.next_after(now).ok_or_else(|| ApiError::invalid("cron", "the pattern never fires again"))?;
    let cron = input.cron.trim().to_string();
    let mut tx = audit::begin(&st.db).await?;
    sqlx::query(
        "INSERT INTO drill_schedules (collective_id, cron, next_run_at, set_by_name, updated_at) \
         VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (collective_id) DO UPDATE SET cron = excluded.cron, next_run_at = excluded.next_run_at, \
         set_by_name = excluded.set_by_name, updated_at = excluded.updated_at",
    )
    .bind(c.id)
    .bind(&cron)
    .bind(next)
    .bind(&access.origin().actor.name)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    let event = Event::new(AuditAction::DrillScheduleSet, format!("collective {}", c.slug))
        .in_collective(c.id, &c.slug)
        .details(json!({ "cron": cron, "next_run_at": next }));
    tx.record(access.origin(), event).await?;
    tx.commit().await?;
    st.schedules.notify_one();
    of_collective(st, c.id).await?.ok_or_else(|| ApiError::not_found("drill schedule").into())
}

/// `remove_drill_schedule`: the drill under way (if any) finishes; the rest of its round is
/// not drilled.
pub async fn remove(st: &AppState, access: &Cap<scope::Collective>, _input: RemoveDrillSchedule) -> Result<()> {
    let c = access.collective();
    let mut tx = audit::begin(&st.db).await?;
    let gone = sqlx::query("DELETE FROM drill_schedules WHERE collective_id = $1")
        .bind(c.id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if gone == 0 {
        return Err(ApiError::not_found(format!("a drill schedule of {}", c.slug)).into());
    }
    let event =
        Event::new(AuditAction::DrillScheduleRemove, format!("collective {}", c.slug)).in_collective(c.id, &c.slug);
    tx.record(access.origin(), event).await?;
    tx.commit().await?;
    Ok(())
}

/// A new round: every app of the collective, and the snapshot each will be drilled from.
async fn begin_round(st: &AppState, collective: CollectiveId, now: i64) -> Result<Round> {
    let ids = sqlx::query("SELECT id FROM apps WHERE collective_id = $1 ORDER BY domain")
        .bind(collective)
        .fetch_all(st.db.pool())
        .await?;
    let mut round = Round { started_at: now, apps: ids.len(), ..Round::default() };
    for r in ids {
        let Some(app) = apps::by_id(st, r.try_get("id")?).await? else { continue };
        if app.version.is_none() {
            round.skipped.push(format!("{}: never deployed", app.domain));
            continue;
        }
        match backups::for_app(st, app.id).await?.into_iter().next() {
            None => round.skipped.push(format!("{}: no snapshot", app.domain)),
            Some(b) if b.drill_ok == Some(true) => round.verified.push(app.domain),
            Some(b) => round.pending.push_back(Pending { app: app.id, domain: app.domain, snapshot: b.snapshot }),
        }
    }
    Ok(round)
}

/// Queues the drill of one app of a round, as Potluck's scheduler.
async fn queue_drill(st: &AppState, collective: CollectiveId, p: &Pending) -> Result<JobId> {
    let app = apps::by_id(st, p.app)
        .await?
        .filter(|a| a.collective_id == collective)
        .ok_or_else(|| ApiError::not_found(format!("app {} (removed since the round began)", p.domain)))?;
    let c = collective_by_id(&st.db, collective).await?.ok_or_else(|| ApiError::not_found("collective"))?;
    let origin = Origin {
        actor: Actor::system("drill schedule"),
        request_id: format!("drill-schedule-{}", collective.0),
        client_addr: "potluck".into(),
    };
    let options = JobOptions { snapshot: Some(p.snapshot.clone()), ..JobOptions::default() };
    Ok(jobs::enqueue(st, &c, &app, &origin, JobKind::Drill, None, options).await?.id)
}

/// Whether the drill job has ended, and if so whether it passed.
async fn job_outcome(st: &AppState, job: JobId) -> Result<Option<bool>> {
    let state: Option<String> = sqlx::query("SELECT state FROM jobs WHERE id = $1")
        .bind(job)
        .fetch_optional(st.db.pool())
        .await?
        .map(|r| r.try_get("state"))
        .transpose()?;
    Ok(match state.as_deref() {
        Some("queued" | "running") => None,
        Some("succeeded") => Some(true),
        _ => Some(false),
    })
}

/// Fires due drill schedules and moves rounds under way on. Returns when it wants to be called
/// again (ms), if ever.
pub async fn tick(st: &AppState) -> Result<Option<i64>> {
    let now = now_ms();
    let rows = sqlx::query(
        "SELECT collective_id, cron, next_run_at, round, round_seq FROM drill_schedules \
         WHERE next_run_at <= $1 OR round IS NOT NULL",
    )
    .bind(now)
    .fetch_all(st.db.pool())
    .await?;
    let mut busy = false;
    for r in &rows {
        let collective: CollectiveId = r.try_get("collective_id")?;
        match advance(st, collective, r, now).await {
            Ok(still) => busy |= still,
            Err(e) => tracing::warn!(collective.id = collective.0, error = %e, "cannot move the drill schedule on"),
        }
    }
    let next: Option<i64> = sqlx::query("SELECT MIN(next_run_at) AS next FROM drill_schedules")
        .fetch_one(st.db.pool())
        .await?
        .try_get("next")?;
    let poll = busy.then(|| now + i64::try_from(ROUND_POLL.as_millis()).unwrap_or(5_000));
    Ok(match (next, poll) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    })
}

/// One schedule's tick; returns whether a round is still under way.
async fn advance(st: &AppState, collective: CollectiveId, r: &sqlx::any::AnyRow, now: i64) -> Result<bool> {
    let seq: i64 = r.try_get("round_seq")?;
    let was_next: i64 = r.try_get("next_run_at")?;
    let mut round: Option<Round> =
        r.try_get::<Option<String>, _>("round")?.and_then(|text| serde_json::from_str(&text).ok());
    let due = was_next <= now;
    // Nothing to do while the drill under way runs, unless a run came due.
    let current_ended = match round.as_ref().and_then(|r| r.current.as_ref()) {
        Some(c) => job_outcome(st, c.job).await?,
        None => Some(true),
    };
    if !due && current_ended.is_none() {
        return Ok(true);
    }
    // A due run moves the next one on with the claim, so a round that cannot begin (the
    // database failing meanwhile) waits for its next time rather than being retried at once.
    let next_run = if due {
        let cron: String = r.try_get("cron")?;
        Pattern::parse(&cron, Duration::ZERO).ok().and_then(|p| p.next_after(now)).unwrap_or(i64::MAX)
    } else {
        was_next
    };
    // Claim this change before doing it.
    let claimed = sqlx::query(
        "UPDATE drill_schedules SET round_seq = $1, next_run_at = $2 \
         WHERE collective_id = $3 AND round_seq = $4 AND next_run_at = $5",
    )
    .bind(seq + 1)
    .bind(next_run)
    .bind(collective)
    .bind(seq)
    .bind(was_next)
    .execute(st.db.pool())
    .await?
    .rows_affected();
    if claimed == 0 {
        return Ok(true); // another replica moved it on
    }
    let mut last_run: Option<i64> = None;
    if due {
        match round.as_mut() {
            Some(running) => running.missed += 1,
            None => {
                last_run = Some(now);
                round = Some(begin_round(st, collective, now).await.map_err(|e| {
                    tracing::warn!(collective.id = collective.0, error = %e, "a drill round could not begin");
                    e
                })?);
            }
        }
    }
    let mut result = None;
    if let Some(run) = round.as_mut() {
        let ended = if run.current.is_some() { current_ended } else { None };
        if let (Some(passed), Some(c)) = (ended, run.current.take_if(|_| ended.is_some())) {
            if passed {
                run.passed.push(c.domain);
            } else {
                run.failed.push(format!("{} (job {})", c.domain, c.job.0));
            }
        }
        while run.current.is_none() {
            let Some(p) = run.pending.pop_front() else { break };
            match queue_drill(st, collective, &p).await {
                Ok(job) => run.current = Some(Current { job, domain: p.domain }),
                Err(e) => run.skipped.push(format!("{}: {e}", p.domain)),
            }
        }
        if run.current.is_none() {
            let summary = run.summary();
            tracing::info!(collective.id = collective.0, result = %summary, "drill round ended");
            result = Some(summary);
            round = None;
        } else {
            result = Some(run.progress());
        }
    }
    let round_text = round.as_ref().map(|r| serde_json::to_string(r).unwrap_or_default());
    sqlx::query(
        "UPDATE drill_schedules SET round = $1, round_seq = $2, next_run_at = $3, \
         last_run_at = COALESCE($4, last_run_at), last_result = COALESCE($5, last_result) \
         WHERE collective_id = $6 AND round_seq = $7",
    )
    .bind(round_text)
    .bind(seq + 2)
    .bind(next_run)
    .bind(last_run)
    .bind(result)
    .bind(collective)
    .bind(seq + 1)
    .execute(st.db.pool())
    .await?;
    Ok(round.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_round_reads_as_people_would_say_it() {
        let mut r = Round { apps: 4, ..Round::default() };
        r.current = Some(Current { job: JobId(7), domain: "wiki.example.org".into() });
        r.passed.push("cloud.example.org".into());
        assert_eq!(r.progress(), "drilling wiki.example.org (2 of 4; 1 passed, 0 failed so far)");
        r.current = None;
        r.failed.push("wiki.example.org (job 7)".into());
        r.verified.push("chat.example.org".into());
        r.skipped.push("new.example.org: no snapshot".into());
        r.missed = 1;
        assert_eq!(
            r.summary(),
            "4 apps: 1 drilled and passed, 1 FAILED (wiki.example.org (job 7)), 1 already verified, \
             1 not drilled (new.example.org: no snapshot); 1 scheduled runs came while it ran and were skipped"
        );
        assert_eq!(Round::default().summary(), "no app to drill");
        let many: Vec<String> = (0..8).map(|i| format!("a{i}")).collect();
        assert_eq!(names(&many), "a0, a1, a2, a3, a4 and 3 more");
    }
}
