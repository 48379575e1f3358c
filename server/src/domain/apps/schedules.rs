//! Backup schedules: per app, a cron pattern in UTC (as backup-bot-two's `CRON_SCHEDULE` takes
//! it), the repository the snapshots go to, and restic's keep rules for the snapshots the
//! schedule took (snapshots taken by hand or before an upgrade are never forgotten by it).
//!
//! The scheduler fires a due schedule as a backup job of the app. It moves the schedule's next
//! run on first, compared against the value it read, so that several Potluck replicas on one
//! database fire it once; a Potluck that was down fires a missed run once when it comes back,
//! not once per missed occurrence. A schedule that finds its app busy or not deployed records
//! why it did not run and waits for its next time.

use super::apps::{self, AppRow};
use super::backups::{self, Lines};
use super::jobs;
use crate::adapters::backup::repo::{Keep, Location, Password, Repo};
use crate::adapters::db::now_ms;
use crate::domain::audit::{self, Actor, Event, Origin};
use crate::domain::authz::{collective_by_id, Cap};
use crate::domain::notify::{self, Notice};
use crate::error::Result;
use crate::state::AppState;
use chrono::{DateTime, Utc};
use croner::parser::{CronParser, Seconds};
use croner::Cron;
use potluck_app::actions::AuditAction;
use potluck_app::api::{RemoveBackupSchedule, SetBackupSchedule};
use potluck_app::error::ApiError;
use potluck_app::model::*;
use potluck_app::ops::scope;
use serde_json::json;
use sqlx::Row;
use std::sync::Arc;
use std::time::Duration;

/// The longest pattern accepted.
const MAX_PATTERN: usize = 120;
/// How many upcoming runs are compared for the shortest gap between two.
const GAPS_CHECKED: usize = 64;

/// A checked cron pattern.
#[derive(Debug)]
pub struct Pattern {
    cron: Cron,
}

impl Pattern {
    /// Parses five fields (minute hour day month weekday), six with leading seconds, or a
    /// nickname (`@daily`), and refuses one that fires more often than `min_gap`.
    pub fn parse(raw: &str, min_gap: Duration) -> std::result::Result<Pattern, String> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err("give a cron pattern, e.g. 30 3 * * * (03:30 UTC every day)".into());
        }
        if raw.len() > MAX_PATTERN {
            return Err(format!("a cron pattern has at most {MAX_PATTERN} characters"));
        }
        let cron = CronParser::builder()
            .seconds(Seconds::Optional)
            .build()
            .parse(raw)
            .map_err(|e| format!("{raw}: {e} (a pattern reads minute hour day month weekday, e.g. 30 3 * * *)"))?;
        let p = Pattern { cron };
        let mut at = Utc::now();
        let mut shortest: Option<chrono::TimeDelta> = None;
        let mut previous: Option<DateTime<Utc>> = None;
        for _ in 0..GAPS_CHECKED {
            let Ok(next) = p.cron.find_next_occurrence(&at, false) else { break };
            if let Some(prev) = previous {
                let gap = next - prev;
                shortest = Some(shortest.map_or(gap, |s| s.min(gap)));
            }
            previous = Some(next);
            at = next;
        }
        if previous.is_none() {
            return Err(format!("{raw} never fires"));
        }
        if let Some(gap) = shortest {
            let min = chrono::TimeDelta::from_std(min_gap).unwrap_or(chrono::TimeDelta::MAX);
            if gap < min {
                return Err(format!(
                    "{raw} fires {} s apart at times; this federation allows one backup every {} s at most (backup_min_interval_secs)",
                    gap.num_seconds(),
                    min_gap.as_secs()
                ));
            }
        }
        Ok(p)
    }

    /// The first run after `after_ms` (milliseconds since the epoch).
    pub fn next_after(&self, after_ms: i64) -> Option<i64> {
        let at = DateTime::<Utc>::from_timestamp_millis(after_ms)?;
        self.cron.find_next_occurrence(&at, false).ok().map(|t| t.timestamp_millis())
    }

    /// In words: "At 03:30".
    pub fn describe(&self) -> String {
        self.cron.describe()
    }
}

fn keep_of(rules: &KeepRules) -> Keep {
    Keep {
        last: rules.last,
        hourly: rules.hourly,
        daily: rules.daily,
        weekly: rules.weekly,
        monthly: rules.monthly,
        yearly: rules.yearly,
    }
}

fn view_of(r: &sqlx::any::AnyRow) -> Result<BackupScheduleView> {
    let cron: String = r.try_get("cron")?;
    let described =
        CronParser::builder().seconds(Seconds::Optional).build().parse(&cron).map(|c| c.describe()).unwrap_or_default();
    Ok(BackupScheduleView {
        repo: r.try_get("repo_name")?,
        cron,
        described,
        keep: serde_json::from_str(&r.try_get::<String, _>("keep")?).unwrap_or_default(),
        drill: r.try_get::<i64, _>("drill")? != 0,
        next_run_at: r.try_get("next_run_at")?,
        last_run_at: r.try_get("last_run_at")?,
        last_job_id: r.try_get("last_job_id")?,
        last_result: r.try_get("last_result")?,
        set_by: r.try_get("set_by_name")?,
        updated_at: r.try_get("updated_at")?,
        overdue_since: r.try_get("backup_overdue_since")?,
    })
}

const SELECT: &str =
    "SELECT s.app_id, s.cron, s.keep, s.drill, s.next_run_at, s.last_run_at, s.last_job_id, s.last_result, \
     s.set_by_name, s.updated_at, s.repo_id, r.name AS repo_name, a.backup_overdue_since FROM backup_schedules s \
     JOIN backup_repos r ON r.id = s.repo_id JOIN apps a ON a.id = s.app_id";

/// The app's schedule, if it has one.
pub async fn of_app(st: &AppState, app: AppId) -> Result<Option<BackupScheduleView>> {
    let row = sqlx::query(&format!("{SELECT} WHERE s.app_id = $1")).bind(app).fetch_optional(st.db.pool()).await?;
    row.as_ref().map(view_of).transpose()
}

/// `set_backup_schedule`: checks the pattern, the rules and the repository, then records the
/// schedule (replacing the app's earlier one) with its audit event.
pub async fn set(st: &AppState, access: &Cap<scope::App>, input: SetBackupSchedule) -> Result<BackupScheduleView> {
    let app = access.app();
    let c = access.collective();
    let min_gap = Duration::from_secs(st.config.backup_min_interval_secs);
    let pattern = Pattern::parse(&input.cron, min_gap).map_err(|e| ApiError::invalid("cron", e))?;
    let keep = KeepRules {
        last: input.keep_last,
        hourly: input.keep_hourly,
        daily: input.keep_daily,
        weekly: input.keep_weekly,
        monthly: input.keep_monthly,
        yearly: input.keep_yearly,
    };
    for (field, n) in [
        ("keep_last", keep.last),
        ("keep_hourly", keep.hourly),
        ("keep_daily", keep.daily),
        ("keep_weekly", keep.weekly),
        ("keep_monthly", keep.monthly),
        ("keep_yearly", keep.yearly),
    ] {
        if n > Keep::MAX {
            return Err(ApiError::invalid(field, format!("at most {}", Keep::MAX)).into());
        }
    }
    let repo_name = Some(input.repo.trim()).filter(|r| !r.is_empty());
    let repo = backups::repo_for(st, c.id, repo_name).await?;
    let now = now_ms();
    let next = pattern.next_after(now).ok_or_else(|| ApiError::invalid("cron", "the pattern never fires again"))?;
    let cron = input.cron.trim().to_string();
    let actor = &access.origin().actor;
    let mut tx = audit::begin(&st.db).await?;
    sqlx::query(
        "INSERT INTO backup_schedules (app_id, collective_id, repo_id, cron, keep, drill, next_run_at, set_by_name, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (app_id) DO UPDATE SET repo_id = excluded.repo_id, cron = excluded.cron, keep = excluded.keep, \
         drill = excluded.drill, next_run_at = excluded.next_run_at, set_by_name = excluded.set_by_name, \
         updated_at = excluded.updated_at",
    )
    .bind(app.id)
    .bind(c.id)
    .bind(repo.id)
    .bind(&cron)
    .bind(serde_json::to_string(&keep).unwrap_or_else(|_| "{}".into()))
    .bind(i64::from(input.drill))
    .bind(next)
    .bind(&actor.name)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    // A new schedule starts a new clock: it is overdue only once its own runs are missed.
    sqlx::query("UPDATE apps SET backup_overdue_since = NULL WHERE id = $1").bind(app.id).execute(&mut *tx).await?;
    let event = Event::new(AuditAction::BackupScheduleSet, format!("app {}", app.domain))
        .in_collective(c.id, &c.slug)
        .details(json!({ "cron": cron, "repo": repo.name, "keep": keep, "drill": input.drill, "next_run_at": next }));
    tx.record(access.origin(), event).await?;
    tx.commit().await?;
    st.schedules.notify_one();
    of_app(st, app.id).await?.ok_or_else(|| ApiError::not_found("backup schedule").into())
}

/// `remove_backup_schedule`.
pub async fn remove(st: &AppState, access: &Cap<scope::App>, _input: RemoveBackupSchedule) -> Result<()> {
    let app = access.app();
    let c = access.collective();
    let mut tx = audit::begin(&st.db).await?;
    let gone = sqlx::query("DELETE FROM backup_schedules WHERE app_id = $1 AND collective_id = $2")
        .bind(app.id)
        .bind(c.id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if gone == 0 {
        return Err(ApiError::not_found(format!("a backup schedule of {}", app.domain)).into());
    }
    sqlx::query("UPDATE apps SET backup_overdue_since = NULL WHERE id = $1").bind(app.id).execute(&mut *tx).await?;
    let event =
        Event::new(AuditAction::BackupScheduleRemove, format!("app {}", app.domain)).in_collective(c.id, &c.slug);
    tx.record(access.origin(), event).await?;
    tx.commit().await?;
    Ok(())
}

/// Fires every due backup schedule once and moves the collectives' drill schedules on; returns
/// when the next one is due (ms), if any.
pub async fn fire_due(st: &AppState) -> Result<Option<i64>> {
    let now = now_ms();
    let due =
        sqlx::query("SELECT app_id, cron, next_run_at, repo_id, drill FROM backup_schedules WHERE next_run_at <= $1")
            .bind(now)
            .fetch_all(st.db.pool())
            .await?;
    for r in &due {
        let app_id: AppId = r.try_get("app_id")?;
        let cron: String = r.try_get("cron")?;
        let was: i64 = r.try_get("next_run_at")?;
        // A stored pattern was checked when it was set; the floor only guards a changed parser.
        let next = Pattern::parse(&cron, Duration::ZERO).ok().and_then(|p| p.next_after(now)).unwrap_or(i64::MAX);
        let claimed = sqlx::query(
            "UPDATE backup_schedules SET next_run_at = $1, last_run_at = $2 WHERE app_id = $3 AND next_run_at = $4",
        )
        .bind(next)
        .bind(now)
        .bind(app_id)
        .bind(was)
        .execute(st.db.pool())
        .await?
        .rows_affected();
        if claimed == 0 {
            continue; // another replica fired it
        }
        let drill = r.try_get::<i64, _>("drill")? != 0;
        let outcome = start(st, app_id, r.try_get("repo_id")?, drill).await;
        let (job, text) = match outcome {
            Ok(job) => (Some(job), None),
            Err(e) => (None, Some(format!("did not run: {e}"))),
        };
        if let Some(text) = &text {
            tracing::info!(app.id = app_id.0, reason = %text, "scheduled backup skipped");
        }
        sqlx::query("UPDATE backup_schedules SET last_job_id = $1, last_result = $2 WHERE app_id = $3")
            .bind(job)
            .bind(text.unwrap_or_else(|| "running".into()))
            .bind(app_id)
            .execute(st.db.pool())
            .await?;
    }
    let next: Option<i64> = sqlx::query("SELECT MIN(next_run_at) AS next FROM backup_schedules")
        .fetch_one(st.db.pool())
        .await?
        .try_get("next")?;
    if let Err(e) = check_overdue(st, now).await {
        tracing::warn!(error = %e, "overdue backups not checked");
    }
    let drills = super::drill_schedules::tick(st).await?;
    Ok(match (next, drills) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    })
}

/// When a schedule's backups are overdue: the third run after `base` (the newest snapshot of the
/// app, or when the schedule was set if that is later). By then the two runs after it have come
/// and gone, each with a whole period to finish, without a snapshot.
fn overdue_at(pattern: &Pattern, base: i64) -> Option<i64> {
    let first = pattern.next_after(base)?;
    let second = pattern.next_after(first)?;
    pattern.next_after(second)
}

/// Tells each collective, once per episode, of an app whose scheduled backups are overdue
/// (whatever the cause: failing backups, an undeployed app, a busy app, an unreachable
/// repository), and again when a snapshot is taken and the backups are on time again. Like the
/// health notices, the episode is opened and closed by compare-and-set on the app's row, so
/// that replicas tell it once.
async fn check_overdue(st: &AppState, now: i64) -> Result<()> {
    let rows = sqlx::query(
        "SELECT s.app_id, s.collective_id, s.cron, s.updated_at, s.last_result, a.domain, a.backup_overdue_since, c.slug, \
         (SELECT MAX(b.taken_at) FROM backups b WHERE b.app_id = s.app_id AND b.reason <> 'drill') AS newest \
         FROM backup_schedules s JOIN apps a ON a.id = s.app_id JOIN collectives c ON c.id = s.collective_id",
    )
    .fetch_all(st.db.pool())
    .await?;
    for r in rows {
        let cron: String = r.try_get("cron")?;
        let Ok(pattern) = Pattern::parse(&cron, Duration::ZERO) else { continue };
        let newest: Option<i64> = r.try_get("newest")?;
        let base = newest.unwrap_or(0).max(r.try_get("updated_at")?);
        let overdue = overdue_at(&pattern, base).is_some_and(|at| at <= now);
        let since: Option<i64> = r.try_get("backup_overdue_since")?;
        if overdue == since.is_some() {
            continue;
        }
        let (app, collective): (AppId, CollectiveId) = (r.try_get("app_id")?, r.try_get("collective_id")?);
        let (domain, slug): (String, String) = (r.try_get("domain")?, r.try_get("slug")?);
        let mut tx = st.db.begin().await?;
        let changed = if overdue {
            sqlx::query("UPDATE apps SET backup_overdue_since = $1 WHERE id = $2 AND backup_overdue_since IS NULL")
                .bind(now)
                .bind(app)
                .execute(&mut *tx)
                .await?
        } else {
            sqlx::query("UPDATE apps SET backup_overdue_since = NULL WHERE id = $1 AND backup_overdue_since = $2")
                .bind(app)
                .bind(since)
                .execute(&mut *tx)
                .await?
        }
        .rows_affected()
            == 1;
        let mut queued = 0;
        if changed {
            let last = newest.map_or_else(
                || "no snapshot yet".to_string(),
                |at| format!("the newest snapshot was taken {}", human_age(now - at)),
            );
            let notice = if overdue {
                Notice::new(NotifyEvent::BackupOverdue, format!("backups of {domain} are overdue"))
                    .text(format!(
                        "Two scheduled backups of {domain} ({}) came and went without a snapshot; {last}. The schedule's last run: {}.",
                        pattern.describe().trim_end_matches('.'),
                        r.try_get::<Option<String>, _>("last_result").ok().flatten().unwrap_or_else(|| "see the app's page".into())
                    ))
            } else {
                Notice::new(NotifyEvent::BackupOverdue, format!("backups of {domain} are on time again"))
                    .named("backup_on_time")
                    .text(format!("A snapshot of {domain} was taken; {last}."))
            }
            .path(format!("/c/{slug}/apps/{domain}"))
            .data(json!({ "app": domain, "overdue": overdue, "newest_snapshot_at": newest, "cron": cron }));
            queued = notify::emit(&mut tx, collective, &notice).await?;
            tracing::info!(app = %domain, overdue, "backup schedule overdue state changed");
        }
        notify::commit(st, tx, queued).await?;
    }
    Ok(())
}

fn human_age(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match s {
        0..=119 => format!("{s} s ago"),
        120..=7199 => format!("{} min ago", s / 60),
        7200..=172_799 => format!("{} h ago", s / 3600),
        _ => format!("{} days ago", s / 86_400),
    }
}

/// Queues the scheduled backup of an app, as Potluck's scheduler.
async fn start(st: &AppState, app_id: AppId, repo: BackupRepoId, drill: bool) -> Result<JobId> {
    let app = apps::by_id(st, app_id).await?.ok_or_else(|| ApiError::not_found("app"))?;
    let c = collective_by_id(&st.db, app.collective_id).await?.ok_or_else(|| ApiError::not_found("collective"))?;
    let repo = backups::repo_by_id(st, app.collective_id, repo).await?;
    let origin = Origin {
        actor: Actor::system("backup schedule"),
        request_id: format!("schedule-{}", app_id.0),
        client_addr: "potluck".into(),
    };
    let options = JobOptions { repo: Some(repo.name), scheduled: true, drill, ..JobOptions::default() };
    let job = jobs::enqueue(st, &c, &app, &origin, JobKind::Backup, None, options).await?;
    Ok(job.id)
}

/// Records how a scheduled backup ended (in the job's transaction).
pub async fn record_end(tx: &mut sqlx::AnyConnection, app: AppId, job: JobId, result: &str) -> Result<()> {
    sqlx::query("UPDATE backup_schedules SET last_result = $1 WHERE app_id = $2 AND last_job_id = $3")
        .bind(result)
        .bind(app)
        .bind(job)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// After a scheduled backup: the schedule's keep rules over the snapshots it took of this app
/// in `repo`, then a prune. Returns the snapshots forgotten (full ids), for the job to drop
/// from Potluck's record with its end.
pub async fn retain(
    st: &AppState,
    app: &AppRow,
    location: Location,
    password: Password,
    lines: &Lines,
) -> std::result::Result<Vec<String>, String> {
    let keep: Option<KeepRules> = sqlx::query("SELECT keep FROM backup_schedules WHERE app_id = $1")
        .bind(app.id)
        .fetch_optional(st.db.pool())
        .await
        .map_err(|e| e.to_string())?
        .and_then(|r| r.try_get::<String, _>("keep").ok())
        .and_then(|k| serde_json::from_str(&k).ok());
    let Some(keep) = keep.map(|k| keep_of(&k)).filter(|k| !k.is_empty()) else {
        (lines.step)("the schedule keeps every snapshot (no keep rules)".into());
        return Ok(Vec::new());
    };
    (lines.step)(format!("applying the schedule's keep rules: {}", keep.describe()));
    let tags = vec![format!("stack:{}", app.stack_name), "trigger:schedule".to_string()];
    let step = lines.step.clone();
    tokio::task::spawn_blocking(move || {
        let repo = Repo::open_or_init(&location, &password).map_err(|e| e.to_string())?;
        let gone = repo.forget(&tags, &keep).map_err(|e| e.to_string())?;
        step(format!("{} scheduled snapshots forgotten, {} kept", gone.removed.len(), gone.kept));
        if !gone.removed.is_empty() {
            let pruned = repo.prune().map_err(|e| format!("prune: {e}"))?;
            step(format!(
                "prune: {} packs ({}) no snapshot uses are marked, and go at a prune 23 h from now",
                pruned.packs_marked,
                human_bytes(pruned.bytes_marked)
            ));
        }
        Ok(gone.removed)
    })
    .await
    .map_err(|e| e.to_string())?
}

/// The scheduler: fires due backup and drill schedules, then sleeps until the next one is due (at most a
/// minute, so a schedule another replica set is seen), or until one is set here.
pub fn spawn_scheduler(st: Arc<AppState>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let wait = match fire_due(&st).await {
                Ok(Some(next)) => Duration::from_millis(u64::try_from(next - now_ms()).unwrap_or(0)),
                Ok(None) => Duration::from_secs(60),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot fire backup schedules");
                    Duration::from_secs(60)
                }
            };
            let wait = wait.clamp(Duration::from_millis(200), Duration::from_secs(60));
            tokio::select! {
                _ = st.schedules.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn patterns_as_backup_bot_two_takes_them() {
        let p = Pattern::parse("30 3 * * *", HOUR).unwrap();
        // 2026-12-01 10:00 UTC → 2026-12-02 03:30 UTC.
        let at = 1_796_119_200_000;
        assert_eq!(p.next_after(at), Some(1_796_182_200_000));
        assert!(p.describe().contains("03:30"), "{}", p.describe());
        assert!(Pattern::parse("@daily", HOUR).is_ok());
        assert!(Pattern::parse("*/20 * * * * *", Duration::from_secs(10)).is_ok(), "seconds are allowed");
    }

    #[test]
    fn bad_and_too_frequent_patterns_are_refused_with_the_reason() {
        assert!(Pattern::parse("", HOUR).unwrap_err().contains("give a cron pattern"));
        assert!(Pattern::parse("61 * * * *", HOUR).unwrap_err().contains("61 * * * *"));
        assert!(Pattern::parse(&"1 ".repeat(100), HOUR).unwrap_err().contains("at most"));
        let e = Pattern::parse("*/5 * * * *", HOUR).unwrap_err();
        assert!(e.contains("300 s apart") && e.contains("3600"), "{e}");
        // Irregular gaps are found too: 00 and 01 past each hour are a minute apart.
        assert!(Pattern::parse("0,1 * * * *", HOUR).unwrap_err().contains("60 s apart"));
    }

    #[test]
    fn backups_are_overdue_once_two_runs_after_the_newest_snapshot_had_their_whole_period() {
        let daily = Pattern::parse("30 3 * * *", HOUR).unwrap();
        // A snapshot at 2026-12-01 10:00 UTC: runs at 12-02 03:30 and 12-03 03:30 may fail;
        // overdue from 12-04 03:30.
        let at = 1_796_119_200_000;
        let day = 86_400_000;
        assert_eq!(overdue_at(&daily, at), Some(1_796_182_200_000 + 2 * day));
        // Weekdays only: Friday's and Monday's runs missed, overdue from Tuesday's.
        let weekdays = Pattern::parse("0 2 * * 1-5", HOUR).unwrap();
        // 2026-12-04 is a Friday; a snapshot at 01:00 that day.
        let friday_one = 1_796_346_000_000;
        assert_eq!(overdue_at(&weekdays, friday_one), Some(friday_one + HOUR.as_millis() as i64 + 4 * day));
        assert_eq!(human_age(90_000), "90 s ago");
        assert_eq!(human_age(3 * 3_600_000), "3 h ago");
    }
}
