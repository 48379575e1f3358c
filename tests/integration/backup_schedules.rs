//! Scheduled backups, on SQLite and PostgreSQL: a schedule set by who manages the app fires as
//! backup jobs of Potluck's scheduler on the test swarm, its keep rules forget the older
//! scheduled snapshots (in the repository, as Debian's `restic` sees it, and in Potluck's
//! record) and never one taken by hand; bad patterns and requests are refused with the reason.
//! A collective's drill schedule drills, round after round, the newest snapshot of each app not
//! verified yet, and says what it left out.

use potluck_app::model::*;
use std::process::Command;
use std::time::{Duration, Instant};

const SLUG: &str = "collective-a";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_backs_up_on_time_and_forgets_by_its_keep_rules() {
    let d = crate::backup_jobs::deployed("sched", |c| c.backup_min_interval_secs = 2).await;
    let (app, admin, domain) = (&d.app, &d.admin, d.domain.clone());
    let at = [("slug", SLUG), ("domain", domain.as_str())];
    let set = |extra: &[(&'static str, &'static str)]| {
        let mut form = at.to_vec();
        form.extend_from_slice(extra);
        form
    };

    // No repository yet: nothing to schedule into.
    let none = admin.call::<BackupScheduleView>("set_backup_schedule", &set(&[("cron", "30 3 * * *")])).await;
    let none = none.unwrap_err();
    assert_eq!(none.status, 409, "{}", none.body);
    assert!(none.body.contains("no backup repository"), "{}", none.body);
    let added: AddedBackupRepo = admin.call("add_backup_repo", &[("slug", SLUG), ("name", "main")]).await.unwrap();
    let password = added.password.expect("a made password is shown once").0;

    // Patterns that are not cron, or fire more often than the federation allows, are refused.
    for (cron, says) in [
        ("every day", "minute hour day month weekday"),
        ("61 * * * *", "61 * * * *"),
        ("* * * * * *", "backup_min_interval_secs"),
    ] {
        let bad = admin.call::<BackupScheduleView>("set_backup_schedule", &set(&[("cron", cron)])).await.unwrap_err();
        assert_eq!(bad.status, 422, "{cron}: {}", bad.body);
        assert!(bad.body.contains(says), "{cron}: {}", bad.body);
    }
    let big = admin
        .call::<BackupScheduleView>("set_backup_schedule", &set(&[("cron", "30 3 * * *"), ("keep_daily", "99999")]))
        .await
        .unwrap_err();
    assert_eq!(big.status, 422, "{}", big.body);
    // Only the scheduler starts a scheduled backup.
    let forged = admin
        .call::<JobSummary>("start_job", &set(&[("kind", "backup"), ("options[scheduled]", "true")]))
        .await
        .unwrap_err();
    assert_eq!(forged.status, 422, "{}", forged.body);

    // A snapshot taken by hand, which the schedule's rules never forget.
    let (_, state, result) = {
        let started: JobSummary = admin.call("start_job", &set(&[("kind", "backup")])).await.unwrap();
        admin.watch_job(started.id).await
    };
    assert_eq!(state, "succeeded", "manual backup: {result}");

    // Every four seconds, keeping the last scheduled snapshot only.
    let before = now_ms();
    let schedule: BackupScheduleView = admin
        .call("set_backup_schedule", &set(&[("cron", "*/4 * * * * *"), ("repo", "main"), ("keep_last", "1")]))
        .await
        .unwrap();
    assert_eq!((schedule.repo.as_str(), schedule.keep.last), ("main", 1));
    assert!(schedule.next_run_at > before && schedule.next_run_at <= before + 5_000, "{schedule:?}");
    assert!(!schedule.described.is_empty());

    // Wait for two scheduled backups to have run to the end.
    let scheduled_done = format!(
        "SELECT COUNT(*) FROM jobs j JOIN apps a ON a.id = j.app_id WHERE a.domain = '{domain}' \
         AND j.kind = 'backup' AND j.state = 'succeeded' AND j.requested_by_name = 'backup schedule'"
    );
    let deadline = Instant::now() + Duration::from_secs(240);
    while app.count(&scheduled_done).await < 2 {
        assert!(Instant::now() < deadline, "two scheduled backups did not run within 4 minutes");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let detail: AppDetail = admin.call("get_app", &at).await.unwrap();
    let shown = detail.backup_schedule.clone().expect("the app page shows its schedule");
    assert!(shown.last_run_at.is_some() && shown.last_job_id.is_some(), "{shown:?}");
    let html = admin.get(&format!("/c/{SLUG}/apps/{domain}")).await.text().await.unwrap();
    assert!(html.contains("data-cron=\"*/4 * * * * *\"") && html.contains("Set the schedule"), "the page shows it");

    // Stopped, and the job it may have started is waited for.
    admin.call::<()>("remove_backup_schedule", &at).await.unwrap();
    let active = format!(
        "SELECT COUNT(*) FROM jobs j JOIN apps a ON a.id = j.app_id WHERE a.domain = '{domain}' AND j.state IN ('queued', 'running')"
    );
    while app.count(&active).await > 0 {
        assert!(Instant::now() < deadline, "the last scheduled backup did not end");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let again = admin.call::<()>("remove_backup_schedule", &at).await.unwrap_err();
    assert_eq!(again.status, 404, "{}", again.body);

    // One scheduled snapshot left, and the one taken by hand: in Potluck's record …
    let detail: AppDetail = admin.call("get_app", &at).await.unwrap();
    assert!(detail.backup_schedule.is_none());
    let reasons: Vec<&str> = detail.backups.iter().map(|b| b.reason.as_str()).collect();
    assert_eq!(reasons.iter().filter(|r| **r == "schedule").count(), 1, "{reasons:?}");
    assert_eq!(reasons.iter().filter(|r| **r == "manual").count(), 1, "{reasons:?}");
    // … and in the repository, as restic lists it.
    let restic = Command::new("restic")
        .args(["-r", &added.repo.location, "snapshots", "--json"])
        .env("RESTIC_PASSWORD", &password)
        .env("RESTIC_CACHE_DIR", d.dir.path().join("restic-cache"))
        .output()
        .expect("restic is installed by scripts/setup.sh");
    assert!(restic.status.success(), "{}", String::from_utf8_lossy(&restic.stderr));
    let listed: Vec<serde_json::Value> = serde_json::from_slice(&restic.stdout).unwrap();
    let with_tag = |t: &str| -> Vec<String> {
        listed
            .iter()
            .filter(|s| s["tags"].as_array().is_some_and(|a| a.iter().any(|x| x == t)))
            .map(|s| s["id"].as_str().unwrap().to_string())
            .collect()
    };
    let kept = detail.backups.iter().find(|b| b.reason == "schedule").unwrap();
    assert_eq!(with_tag("trigger:schedule"), vec![kept.snapshot.clone()]);
    assert_eq!(with_tag("trigger:manual").len(), 1);

    // A later scheduled job said what its rules did.
    let results = app
        .texts(&format!(
            "SELECT j.result FROM jobs j JOIN apps a ON a.id = j.app_id WHERE a.domain = '{domain}' \
             AND j.requested_by_name = 'backup schedule' AND j.state = 'succeeded' ORDER BY j.id"
        ))
        .await;
    assert!(results.iter().skip(1).any(|r| r.contains("older scheduled snapshots forgotten")), "{results:?}");

    // The audit log: the schedule by the person who set it, its backups by the scheduler.
    let logged = app.texts("SELECT action || '|' || actor_name FROM audit_events ORDER BY seq").await;
    assert!(logged.iter().any(|l| l.starts_with("app.backup_schedule.set|") && !l.ends_with("|backup schedule")));
    assert!(logged.iter().any(|l| l == "app.backup.request|backup schedule"), "{logged:?}");
    assert!(logged.iter().any(|l| l.starts_with("app.backup_schedule.remove|")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drill_schedule_proves_each_apps_newest_snapshot_once_a_round() {
    let d = crate::backup_jobs::deployed("dsched", |c| c.backup_min_interval_secs = 2).await;
    let (app, admin, domain) = (&d.app, &d.admin, d.domain.clone());
    let at = [("slug", SLUG), ("domain", domain.as_str())];
    // A second app of the collective, never deployed nor backed up: nothing to drill.
    let idle = format!("idle-{domain}");
    admin
        .call::<AppSummary>(
            "create_app",
            &[("slug", SLUG), ("server", "local"), ("recipe", "backed-up"), ("domain", &idle), ("version", "1.0.0+1")],
        )
        .await
        .unwrap();
    admin.call::<AddedBackupRepo>("add_backup_repo", &[("slug", SLUG), ("name", "main")]).await.unwrap();
    let started: JobSummary = admin.call("start_job", &[at[0], at[1], ("kind", "backup")]).await.unwrap();
    let (_, state, result) = admin.watch_job(started.id).await;
    assert_eq!(state, "succeeded", "backup: {result}");

    // Patterns are checked as a backup schedule's are.
    for (cron, says) in [("weekly", "minute hour day month weekday"), ("* * * * * *", "backup_min_interval_secs")] {
        let bad =
            admin.call::<DrillScheduleView>("set_drill_schedule", &[("slug", SLUG), ("cron", cron)]).await.unwrap_err();
        assert_eq!(bad.status, 422, "{cron}: {}", bad.body);
        assert!(bad.body.contains(says), "{cron}: {}", bad.body);
    }
    let set: DrillScheduleView =
        admin.call("set_drill_schedule", &[("slug", SLUG), ("cron", "*/3 * * * * *")]).await.unwrap();
    assert!(!set.described.is_empty() && set.last_run_at.is_none(), "{set:?}");

    // The first round drills the deployed app's snapshot and names the idle app it left out.
    let deadline = Instant::now() + Duration::from_secs(240);
    let round_ended = |want: &'static str| async move {
        loop {
            let page: CollectiveBackups = admin.call("list_backups", &[("slug", SLUG)]).await.unwrap();
            let s = page.drill_schedule.expect("the schedule is listed");
            if let Some(r) = s.last_result.as_deref().filter(|r| !s.running && r.contains(want)) {
                return r.to_string();
            }
            assert!(Instant::now() < deadline, "no drill round ended with {want:?}: {s:?}");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    };
    let first = round_ended("drilled and passed").await;
    assert!(first.starts_with("2 apps: 1 drilled and passed"), "{first}");
    assert!(first.contains(&format!("{idle}: no snapshot")), "{first}");
    let detail: AppDetail = admin.call("get_app", &at).await.unwrap();
    assert_eq!(detail.backups[0].drill_ok, Some(true), "{:?}", detail.backups[0]);
    let drills = format!(
        "SELECT COUNT(*) FROM jobs j JOIN apps a ON a.id = j.app_id WHERE a.domain = '{domain}' \
         AND j.kind = 'drill' AND j.requested_by_name = 'drill schedule'"
    );
    assert_eq!(app.count(&drills).await, 1);

    // The next round finds that snapshot verified and drills nothing again.
    let second = round_ended("1 already verified").await;
    assert!(second.starts_with("2 apps: 0 drilled and passed"), "{second}");
    assert_eq!(app.count(&drills).await, 1, "a verified snapshot is not drilled twice");
    let html = admin.get(&format!("/c/{SLUG}/backups")).await.text().await.unwrap();
    assert!(html.contains("id=\"drill-schedule\"") && html.contains("1 already verified"), "the page shows it");

    admin.call::<()>("remove_drill_schedule", &[("slug", SLUG)]).await.unwrap();
    let page: CollectiveBackups = admin.call("list_backups", &[("slug", SLUG)]).await.unwrap();
    assert!(page.drill_schedule.is_none());
    let again = admin.call::<()>("remove_drill_schedule", &[("slug", SLUG)]).await.unwrap_err();
    assert_eq!(again.status, 404, "{}", again.body);
    let logged = app.texts("SELECT action || '|' || actor_name FROM audit_events ORDER BY seq").await;
    assert!(logged.iter().any(|l| l.starts_with("collective.drill_schedule.set|") && !l.ends_with("|drill schedule")));
    assert!(logged.iter().any(|l| l == "app.drill.request|drill schedule"), "{logged:?}");
    assert!(logged.iter().any(|l| l.starts_with("collective.drill_schedule.remove|")));
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overdue_backups_are_announced_once_and_again_when_a_snapshot_is_taken() {
    let d = crate::backup_jobs::deployed("overdue", |c| {
        c.backup_min_interval_secs = 2;
        c.notify_hosts_allow = vec!["127.0.0.1".into()];
        c.notify_retry_secs = 0.3;
    })
    .await;
    let (app, admin, domain) = (&d.app, &d.admin, d.domain.clone());
    let at = [("slug", SLUG), ("domain", domain.as_str())];
    let receiver = crate::notifications::Receiver::start(&[200]).await;
    crate::notifications::add_webhook(admin, "backups", &receiver.url, &["backup_overdue"]).await;
    admin.call::<AddedBackupRepo>("add_backup_repo", &[("slug", SLUG), ("name", "main")]).await.unwrap();
    let run = |kind: &'static str| {
        let form = [("slug", SLUG), ("domain", domain.as_str()), ("kind", kind)];
        async move {
            let started: JobSummary = admin.call("start_job", &form).await.unwrap();
            let (_, state, result) = admin.watch_job(started.id).await;
            assert_eq!(state, "succeeded", "{kind}: {result}");
        }
    };

    // Undeployed, the schedule's runs cannot back it up: after two missed runs, one notice.
    run("undeploy").await;
    let mut form = at.to_vec();
    form.extend([("cron", "*/5 * * * * *"), ("repo", "main")]);
    admin.call::<BackupScheduleView>("set_backup_schedule", &form).await.unwrap();
    let got = receiver.wait_for(1, 60).await;
    assert_eq!(got[0].name(), "backup_overdue");
    let body = got[0].json();
    assert_eq!(body["data"]["app"], domain.as_str());
    assert!(body["text"].as_str().unwrap().contains("did not run"), "the last run's reason: {body}");
    let detail: AppDetail = admin.call("get_app", &at).await.unwrap();
    assert!(detail.backup_schedule.as_ref().unwrap().overdue_since.is_some(), "{:?}", detail.backup_schedule);
    let html = admin.get(&format!("/c/{SLUG}/apps/{domain}")).await.text().await.unwrap();
    assert!(html.contains("backups overdue since"), "the app page shows it");
    // Still overdue over the next runs: the same episode, no second notice.
    tokio::time::sleep(Duration::from_secs(12)).await;
    assert_eq!(receiver.received().len(), 1, "{:?}", receiver.received().iter().map(|r| r.name()).collect::<Vec<_>>());

    // Deployed again and backed up: on time again, said once.
    run("deploy").await;
    let got = receiver.wait_for(2, 60).await;
    assert_eq!(got[1].name(), "backup_on_time");
    let detail: AppDetail = admin.call("get_app", &at).await.unwrap();
    assert_eq!(detail.backup_schedule.as_ref().unwrap().overdue_since, None);
    admin.call::<()>("remove_backup_schedule", &at).await.unwrap();
    let active = format!(
        "SELECT COUNT(*) FROM jobs j JOIN apps a ON a.id = j.app_id WHERE a.domain = '{domain}' AND j.state IN ('queued', 'running')"
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    while app.count(&active).await > 0 {
        assert!(Instant::now() < deadline, "the last scheduled backup did not end");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let names: Vec<String> = receiver.received().iter().map(|r| r.name()).collect();
    assert_eq!(names, ["backup_overdue", "backup_on_time"]);
}
