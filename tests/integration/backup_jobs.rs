//! Backups through Potluck, on SQLite and PostgreSQL: a collective's repository (its password
//! sealed, shown once), an app of the `backed-up` fixture recipe deployed to the test swarm,
//! backup and restore as jobs with their audit events, the coverage page's data, a snapshot
//! downloaded as a tar, and Debian's `restic` reading the repository Potluck keeps.

use potluck_app::model::*;
use potluck_tests::recipes::{fixture_recipe, publish, release};
use potluck_tests::swarm::{self, sh};
use potluck_tests::{Browser, TestApp};
use std::path::PathBuf;
use std::process::Command;

const SLUG: &str = "collective-a";
const OTHER: &str = "collective-b";

async fn job(b: &Browser, domain: &str, kind: &str, options: &[(&str, &str)]) -> (String, String, Vec<JobEventView>) {
    let mut form = vec![("slug", SLUG), ("domain", domain), ("kind", kind)];
    form.extend_from_slice(options);
    let started: JobSummary = b.call("start_job", &form).await.unwrap_or_else(|e| panic!("{kind}: {e:?}"));
    let (events, state, result) = b.watch_job(started.id).await;
    (state, result, events)
}

async fn actions(app: &TestApp) -> Vec<String> {
    app.texts("SELECT action FROM audit_events ORDER BY seq").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_is_backed_up_restored_and_downloaded_through_potluck() {
    let app = TestApp::spawn_with(|c| c.local_backups = vec![SLUG.to_string()]).await;
    let admin = app.bootstrap_admin().await;
    for slug in [SLUG, OTHER] {
        admin
            .call::<CollectiveSummary>("create_collective", &[("slug", slug), ("name", slug), ("description", "")])
            .await
            .unwrap();
    }
    admin
        .call::<ServerView>(
            "add_server",
            &[("slug", SLUG), ("name", "local"), ("kind", "unix"), ("address", swarm::SOCKET)],
        )
        .await
        .unwrap();
    let recipes = tempfile::tempdir().unwrap();
    let (work, remote) = publish(&fixture_recipe("backed-up"), recipes.path(), "backed-up");
    release(&work, &remote, &[], "1.0.0+1");
    admin.call::<RecipeSummary>("register_recipe", &[("repository", &remote.display().to_string())]).await.unwrap();
    let domain = format!("bk-{}.example.org", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let created: AppSummary = admin
        .call(
            "create_app",
            &[
                ("slug", SLUG),
                ("server", "local"),
                ("recipe", "backed-up"),
                ("domain", &domain),
                ("version", "1.0.0+1"),
            ],
        )
        .await
        .unwrap();
    let stack = created.stack_name.clone();
    let _cleanup = swarm::StackGuard(stack.clone());

    // Before the first deploy there is nothing to back up, and no repository to back up into.
    let early = admin.call::<JobSummary>("start_job", &[("slug", SLUG), ("domain", &domain), ("kind", "backup")]).await;
    assert_eq!(early.unwrap_err().status, 409);
    let (state, result, _) = job(&admin, &domain, "deploy", &[]).await;
    assert_eq!(state, "succeeded", "deploy: {result}");
    let no_repo = admin
        .call::<JobSummary>("start_job", &[("slug", SLUG), ("domain", &domain), ("kind", "backup")])
        .await
        .unwrap_err();
    assert_eq!(no_repo.status, 409);
    assert!(no_repo.body.contains("no backup repository"), "{}", no_repo.body);

    // The deploy recorded what the labels cover: the page shows it before any backup.
    let page: CollectiveBackups = admin.call("list_backups", &[("slug", SLUG)]).await.unwrap();
    let cov = page.apps[0].coverage.clone().expect("coverage after the deploy");
    let state_of = |v: &str| cov.iter().find(|c| c.volume == v).map(|c| c.state);
    assert_eq!(state_of("files"), Some(VolumeState::Whole));
    assert_eq!(state_of("db-data"), Some(VolumeState::Paths));
    assert_eq!(state_of("cache"), Some(VolumeState::Excluded));
    assert!(page.local_allowed && page.repos.is_empty());

    // Repositories: names are directories of the collective's own; only granted collectives
    // keep them on the Potluck machine.
    for bad in ["../escape", "a/b", "", "UPPER", &"x".repeat(41)] {
        let refused =
            admin.call::<AddedBackupRepo>("add_backup_repo", &[("slug", SLUG), ("name", bad)]).await.unwrap_err();
        assert_eq!(refused.status, 422, "name {bad:?}: {}", refused.body);
    }
    let not_granted =
        admin.call::<AddedBackupRepo>("add_backup_repo", &[("slug", OTHER), ("name", "main")]).await.unwrap_err();
    assert_eq!(not_granted.status, 403, "{}", not_granted.body);
    assert!(not_granted.body.contains("local_backups"), "{}", not_granted.body);
    let added: AddedBackupRepo = admin.call("add_backup_repo", &[("slug", SLUG), ("name", "main")]).await.unwrap();
    let password = added.password.clone().expect("a made password is shown once").0;
    assert!(password.len() >= 32);
    let location = std::path::PathBuf::from(&added.repo.location);
    assert!(location.starts_with(app.config().backups_root()), "{}", location.display());
    assert!(location.join("config").is_file(), "the repository was made when it was added");
    let clear = format!("SELECT COUNT(*) FROM backup_repos WHERE CAST(password_enc AS TEXT) LIKE '%{password}%'");
    assert_eq!(app.count(&clear).await, 0, "the password is stored in clear");
    assert_eq!(app.count("SELECT COUNT(*) FROM backup_repos").await, 1);
    let twice = admin.call::<AddedBackupRepo>("add_backup_repo", &[("slug", SLUG), ("name", "main")]).await;
    assert_eq!(twice.unwrap_err().status, 409);
    let later: CollectiveBackups = admin.call("list_backups", &[("slug", SLUG)]).await.unwrap();
    assert!(!format!("{later:?}").contains(&password), "the password is shown again");

    // Data in every volume, then a backup job: progress as it goes, a checked snapshot recorded.
    sh(&stack, "db", "printf 'row 1\\n' > /var/lib/db/table.1 && printf 'row 2\\n' > /var/lib/db/table.2");
    sh(
        &stack,
        "app",
        "mkdir -p /srv/files/sub && printf 'hello\\n' > /srv/files/a.txt && \
         dd if=/dev/urandom of=/srv/files/sub/big.bin bs=1M count=6 2>/dev/null && printf junk > /cache/junk",
    );
    let before = sh(&stack, "app", "cd /srv/files && sha256sum a.txt sub/big.bin");
    let (state, result, events) = job(&admin, &domain, "backup", &[]).await;
    assert_eq!(state, "succeeded", "backup: {result}\n{events:?}");
    assert!(result.contains("checked"), "{result}");
    assert!(events.iter().any(|e| e.text.contains("into repository main")), "{events:?}");
    let page: CollectiveBackups = admin.call("list_backups", &[("slug", SLUG)]).await.unwrap();
    let taken = page.apps[0].backups.clone();
    assert_eq!(taken.len(), 1, "{taken:?}");
    let snap = taken[0].clone();
    assert!(snap.bytes > 6 << 20, "the snapshot holds the files: {snap:?}");
    assert_eq!((snap.reason.as_str(), snap.version.as_deref()), ("manual", Some("1.0.0+1")));
    assert_eq!(page.repos[0].snapshots, 1);

    // The backups page reads without JavaScript: each volume's state, the snapshot, its size.
    let html = admin.get(&format!("/c/{SLUG}/backups")).await.text().await.unwrap();
    for needle in [
        "id=\"coverage\"",
        "chip chip-whole",
        "chip chip-paths",
        "chip chip-excluded",
        "aria-label=\"sizes of the last 1 snapshots",
        "1 covered",
        "id=\"backup-repos\"",
    ] {
        assert!(html.contains(needle), "the backups page lacks {needle}");
    }
    assert!(html.contains(&domain), "the backups page lists the app");
    let app_html = admin.get(&format!("/c/{SLUG}/apps/{domain}")).await.text().await.unwrap();
    assert!(
        app_html.contains(snap.short_id()) && app_html.contains("Download (tar)"),
        "the app page lists the snapshot"
    );

    // restic reads Potluck's repository with the password it was shown.
    let restic = Command::new("restic")
        .args(["-r", location.to_str().unwrap(), "snapshots", "--json"])
        .env("RESTIC_PASSWORD", &password)
        .env("RESTIC_CACHE_DIR", recipes.path().join("restic-cache"))
        .output()
        .expect("restic is installed by scripts/setup.sh");
    assert!(restic.status.success(), "{}", String::from_utf8_lossy(&restic.stderr));
    let listed: serde_json::Value = serde_json::from_slice(&restic.stdout).unwrap();
    assert_eq!(listed[0]["id"].as_str(), Some(snap.snapshot.as_str()));
    let tags = listed[0]["tags"].to_string();
    for t in [format!("app:{domain}"), "recipe:backed-up".into(), "version:1.0.0+1".into(), "trigger:manual".into()] {
        assert!(tags.contains(&t), "{t} missing from {tags}");
    }

    // The snapshot as a tar: the dump and the files, never the excluded cache.
    let url = format!("{}/c/{SLUG}/apps/{domain}/backups/{}", app.base, snap.short_id());
    let r = admin.client.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/x-tar");
    let archive = r.bytes().await.unwrap();
    let tar_file = recipes.path().join("snapshot.tar");
    std::fs::write(&tar_file, &archive).unwrap();
    let listing = Command::new("tar").arg("-tf").arg(&tar_file).output().unwrap();
    assert!(listing.status.success(), "the download is a whole tar archive");
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert!(listing.contains(&format!("var/lib/docker/volumes/{stack}_files/_data/sub/big.bin")), "{listing}");
    assert!(listing.contains(&format!("var/lib/docker/volumes/{stack}_db-data/_data/dump.sql")), "{listing}");
    assert!(!listing.contains("junk"), "{listing}");
    let missing = admin.client.get(format!("{}/c/{SLUG}/apps/{domain}/backups/deadbeef", app.base)).send().await;
    assert_eq!(missing.unwrap().status(), 404);

    // The data is lost; the restore job brings it back byte for byte, with the restore hook.
    sh(&stack, "app", "rm -rf /srv/files/*");
    sh(&stack, "db", "rm -f /var/lib/db/*");
    let (state, result, _) = job(&admin, &domain, "restore", &[("options[snapshot]", snap.short_id())]).await;
    assert_eq!(state, "succeeded", "restore: {result}");
    assert_eq!(sh(&stack, "app", "cd /srv/files && sha256sum a.txt sub/big.bin"), before);
    assert_eq!(sh(&stack, "db", "cat /var/lib/db/table.restored"), "row 1\nrow 2\n");
    let detail: AppDetail = admin.call("get_app", &[("slug", SLUG), ("domain", &domain)]).await.unwrap();
    assert_eq!(detail.app.status, AppStatus::Deployed, "a backup or restore leaves the app's state as it was");
    assert_eq!(detail.backups.len(), 1, "a restore takes no snapshot");
    let unknown = admin
        .call::<JobSummary>(
            "start_job",
            &[("slug", SLUG), ("domain", &domain), ("kind", "restore"), ("options[snapshot]", "0000ffff")],
        )
        .await
        .unwrap_err();
    assert_eq!(unknown.status, 404, "{}", unknown.body);
    // Another collective's app is no source for a clone, even by its exact domain.
    admin
        .call::<ServerView>(
            "add_server",
            &[("slug", OTHER), ("name", "local"), ("kind", "unix"), ("address", swarm::SOCKET)],
        )
        .await
        .unwrap();
    let theirs = format!("theirs-{domain}");
    admin
        .call::<AppSummary>(
            "create_app",
            &[
                ("slug", OTHER),
                ("server", "local"),
                ("recipe", "backed-up"),
                ("domain", &theirs),
                ("version", "1.0.0+1"),
            ],
        )
        .await
        .unwrap();
    let cloned = admin
        .call::<JobSummary>(
            "start_job",
            &[("slug", SLUG), ("domain", &domain), ("kind", "restore"), ("options[from_app]", &theirs)],
        )
        .await
        .unwrap_err();
    assert_eq!(cloned.status, 404, "{}", cloned.body);

    // An upgrade backs the app up first (the snapshot is kept with the version it was of).
    release(&work, &remote, &[("CHANGELOG", "1.0.1\n")], "1.0.1+1");
    admin.call::<()>("fetch_recipe", &[("name", "backed-up")]).await.unwrap();
    let (state, result, events) = job(&admin, &domain, "upgrade", &[]).await;
    assert_eq!(state, "succeeded", "upgrade: {result}");
    assert!(events.iter().any(|e| e.text.contains("taken before the upgrade")), "{events:?}");
    let detail: AppDetail = admin.call("get_app", &[("slug", SLUG), ("domain", &domain)]).await.unwrap();
    assert_eq!(detail.app.version.as_deref(), Some("1.0.1+1"));
    let first = &detail.backups[0];
    assert_eq!((first.reason.as_str(), first.version.as_deref()), ("before-upgrade", Some("1.0.0+1")));
    assert_eq!(detail.backups.len(), 2);

    // Every step is in the audit log, by whom it was asked.
    let logged = actions(&app).await;
    for a in [
        "backup_repo.add",
        "app.backup.request",
        "app.backup",
        "app.backup.download",
        "app.restore.request",
        "app.restore",
    ] {
        assert!(logged.iter().any(|l| l == a), "{a} missing from {logged:?}");
    }

    // Forgetting the repository keeps its files (restic still reads them).
    admin.call::<()>("remove_backup_repo", &[("slug", SLUG), ("name", "main")]).await.unwrap();
    assert!(location.join("config").is_file());
    let page: CollectiveBackups = admin.call("list_backups", &[("slug", SLUG)]).await.unwrap();
    assert!(page.repos.is_empty() && page.apps[0].backups.is_empty());

    // Without a repository an upgrade goes on without a backup, and says so.
    let (state, result, events) = job(&admin, &domain, "rollback", &[]).await;
    assert_eq!(state, "succeeded", "rollback: {result}");
    assert!(!events.iter().any(|e| e.text.contains("backing up")), "a rollback takes no backup: {events:?}");
    let (state, result, events) = job(&admin, &domain, "upgrade", &[]).await;
    assert_eq!(state, "succeeded", "upgrade: {result}");
    assert!(events.iter().any(|e| e.text.contains("no backup repository: upgrading without a backup")), "{events:?}");
}

/// An app of the `backed-up` fixture (version 1.0.0+1) in collective-a, deployed to the test
/// swarm by the federation admin, a table in its database; no repository yet.
pub(crate) struct Deployed {
    pub app: TestApp,
    pub admin: Browser,
    pub domain: String,
    pub stack: String,
    pub work: PathBuf,
    pub remote: PathBuf,
    pub dir: tempfile::TempDir,
    _stack: swarm::StackGuard,
}

/// Backs the app up into `repo`, overwrites its file, restores: the file says `text` again.
async fn round_trip(admin: &Browser, domain: &str, stack: &str, repo: &str, text: &str) {
    sh(stack, "app", &format!("printf '{text}\\n' > /srv/files/a.txt"));
    let (state, result, _) = job(admin, domain, "backup", &[("options[repo]", repo)]).await;
    assert_eq!(state, "succeeded", "backup into {repo}: {result}");
    sh(stack, "app", "printf 'lost\\n' > /srv/files/a.txt");
    let (state, result, _) = job(admin, domain, "restore", &[]).await;
    assert_eq!(state, "succeeded", "restore from {repo}: {result}");
    assert_eq!(sh(stack, "app", "cat /srv/files/a.txt"), format!("{text}\n"));
}

pub(crate) async fn deployed(prefix: &str, adjust: impl FnOnce(&mut potluck_server::config::Config)) -> Deployed {
    let app = TestApp::spawn_with(|c| {
        c.local_backups = vec![SLUG.to_string()];
        adjust(c);
    })
    .await;
    let admin = app.bootstrap_admin().await;
    admin
        .call::<CollectiveSummary>("create_collective", &[("slug", SLUG), ("name", SLUG), ("description", "")])
        .await
        .unwrap();
    admin
        .call::<ServerView>(
            "add_server",
            &[("slug", SLUG), ("name", "local"), ("kind", "unix"), ("address", swarm::SOCKET)],
        )
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (work, remote) = publish(&fixture_recipe("backed-up"), dir.path(), "backed-up");
    release(&work, &remote, &[], "1.0.0+1");
    admin.call::<RecipeSummary>("register_recipe", &[("repository", &remote.display().to_string())]).await.unwrap();
    let domain = format!("{prefix}-{}.example.org", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let created: AppSummary = admin
        .call(
            "create_app",
            &[
                ("slug", SLUG),
                ("server", "local"),
                ("recipe", "backed-up"),
                ("domain", &domain),
                ("version", "1.0.0+1"),
            ],
        )
        .await
        .unwrap();
    let guard = swarm::StackGuard(created.stack_name.clone());
    let (state, result, _) = job(&admin, &domain, "deploy", &[]).await;
    assert_eq!(state, "succeeded", "deploy: {result}");
    // A table for the database's pre-hook to dump.
    sh(&created.stack_name, "db", "printf 'row 1\\n' > /var/lib/db/table.1");
    Deployed { app, admin, domain, stack: created.stack_name, work, remote, dir, _stack: guard }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_upgrade_is_rolled_back_and_offers_the_snapshot_taken_before_it() {
    let d = deployed("rb", |_| {}).await;
    let (admin, domain, stack) = (&d.admin, d.domain.as_str(), d.stack.as_str());
    admin.call::<AddedBackupRepo>("add_backup_repo", &[("slug", SLUG), ("name", "main")]).await.unwrap();
    sh(stack, "app", "printf 'before\\n' > /srv/files/a.txt");

    // 1.0.1+1 crashes on start: the upgrade backs up, fails to converge, and puts 1.0.0+1 back.
    let compose = std::fs::read_to_string(d.work.join("compose.yml")).unwrap();
    let broken =
        compose.replace(r#"command: ["sh", "-c", "exec sleep 2147483647"]"#, r#"command: ["sh", "-c", "exit 3"]"#);
    assert_ne!(broken, compose, "the fixture's app command changed: update this test");
    release(&d.work, &d.remote, &[("compose.yml", &broken)], "1.0.1+1");
    admin.call::<()>("fetch_recipe", &[("name", "backed-up")]).await.unwrap();
    let (state, result, events) = job(admin, domain, "upgrade", &[("options[timeout_secs]", "40")]).await;
    assert_eq!(state, "failed", "{result}");
    assert!(result.contains("rolled back to 1.0.0+1, which runs again"), "{result}");
    assert!(result.contains("taken before the upgrade"), "{result}");
    assert!(events.iter().any(|e| e.text.contains("rolling") && e.text.contains("back to 1.0.0+1")), "{events:?}");
    let detail: AppDetail = admin.call("get_app", &[("slug", SLUG), ("domain", domain)]).await.unwrap();
    assert_eq!(detail.app.status, AppStatus::Deployed, "rolled back: the app runs as before");
    assert_eq!(detail.app.version.as_deref(), Some("1.0.0+1"));
    assert!(detail.env.contains("backed-up:1.0.0+1"), "the env still names the version that runs");
    // The old app container runs again (the broken one could not be exec'd into).
    assert_eq!(sh(stack, "app", "cat /srv/files/a.txt"), "before\n");

    // The app page offers the snapshot taken before the upgrade, in one action.
    let before = detail.backups.iter().find(|b| b.reason == "before-upgrade").expect("a snapshot before the upgrade");
    let html = admin.get(&format!("/c/{SLUG}/apps/{domain}")).await.text().await.unwrap();
    assert!(html.contains("id=\"restore-offer\""), "no restore offer on the app page");
    assert!(html.contains(&format!("Restore snapshot {}, taken before the upgrade", before.short_id())));
    sh(stack, "app", "printf 'changed\\n' > /srv/files/a.txt");
    let (state, result, _) = job(admin, domain, "restore", &[("options[snapshot]", &before.snapshot)]).await;
    assert_eq!(state, "succeeded", "restore: {result}");
    assert_eq!(sh(stack, "app", "cat /srv/files/a.txt"), "before\n");

    // Asked not to roll back, the failed upgrade stays, and the app says it failed.
    let (state, result, _) = job(
        admin,
        domain,
        "upgrade",
        &[("options[timeout_secs]", "20"), ("options[no_rollback]", "true"), ("options[skip_backup]", "true")],
    )
    .await;
    assert_eq!(state, "failed", "{result}");
    assert!(!result.contains("rolled back"), "{result}");
    let detail: AppDetail = admin.call("get_app", &[("slug", SLUG), ("domain", domain)]).await.unwrap();
    assert_eq!(detail.app.status, AppStatus::Failed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_drill_proves_a_snapshot_in_a_throw_away_stack_and_leaves_nothing() {
    let d = deployed("verify", |c| c.backup_min_interval_secs = 1).await;
    let (app, admin, domain, stack) = (&d.app, &d.admin, d.domain.as_str(), d.stack.as_str());
    let at = [("slug", SLUG), ("domain", domain)];
    let none = admin.call::<JobSummary>("start_job", &[("slug", SLUG), ("domain", domain), ("kind", "drill")]).await;
    let none = none.unwrap_err();
    assert_eq!(none.status, 409, "no snapshot to drill yet: {}", none.body);
    admin.call::<AddedBackupRepo>("add_backup_repo", &[("slug", SLUG), ("name", "main")]).await.unwrap();
    sh(stack, "app", "printf 'live\\n' > /srv/files/a.txt");
    let (state, result, _) = job(admin, domain, "backup", &[]).await;
    assert_eq!(state, "succeeded", "backup: {result}");

    // The drill restores into a stack of its own, which converges; then everything of it goes.
    let (state, result, events) = job(admin, domain, "drill", &[]).await;
    assert_eq!(state, "succeeded", "drill: {result}\n{events:?}");
    assert!(result.contains("restore drill passed"), "{result}");
    let drill_stack = events
        .iter()
        .find_map(|e| e.text.split("throw-away stack ").nth(1).map(str::to_string))
        .expect("the drill names its stack");
    assert!(drill_stack.starts_with("drill") && drill_stack != stack, "{drill_stack}");
    let leftovers = |what: &str| -> Vec<String> {
        swarm::docker(&[what, "ls", "--format", "{{.Name}}"])
            .lines()
            .filter(|l| l.starts_with(&drill_stack))
            .map(str::to_string)
            .collect()
    };
    assert!(leftovers("stack").is_empty() && leftovers("volume").is_empty() && leftovers("secret").is_empty());
    assert_eq!(sh(stack, "app", "cat /srv/files/a.txt"), "live\n", "the app itself is untouched");
    let detail: AppDetail = admin.call("get_app", &at).await.unwrap();
    assert_eq!(detail.backups[0].drill_ok, Some(true), "{:?}", detail.backups[0]);
    let page: CollectiveBackups = admin.call("list_backups", &[("slug", SLUG)]).await.unwrap();
    let verified = page.apps[0].last_verified.expect("the app has a verified restore");
    let html = admin.get(&format!("/c/{SLUG}/backups")).await.text().await.unwrap();
    assert!(html.contains("restore verified"), "the backups page shows the verified restore");

    // A schedule that drills: its snapshot is drilled in the same job.
    admin
        .call::<BackupScheduleView>(
            "set_backup_schedule",
            &[("slug", SLUG), ("domain", domain), ("cron", "*/2 * * * * *"), ("keep_last", "5"), ("drill", "true")],
        )
        .await
        .unwrap();
    let scheduled = format!(
        "SELECT COUNT(*) FROM jobs j JOIN apps a ON a.id = j.app_id WHERE a.domain = '{domain}' \
         AND j.requested_by_name = 'backup schedule' AND j.state IN ('succeeded', 'failed')"
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(240);
    while app.count(&scheduled).await < 1 {
        assert!(std::time::Instant::now() < deadline, "no scheduled backup ran");
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    admin.call::<()>("remove_backup_schedule", &at).await.unwrap();
    let active = format!(
        "SELECT COUNT(*) FROM jobs j JOIN apps a ON a.id = j.app_id WHERE a.domain = '{domain}' AND j.state IN ('queued', 'running')"
    );
    while app.count(&active).await > 0 {
        assert!(std::time::Instant::now() < deadline, "the scheduled job did not end");
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    let detail: AppDetail = admin.call("get_app", &at).await.unwrap();
    let by_schedule = detail.backups.iter().find(|b| b.reason == "schedule").expect("a scheduled snapshot");
    assert_eq!(by_schedule.drill_ok, Some(true), "{by_schedule:?}");

    // A snapshot whose restored data leaves the database unhealthy fails its drill, and says so;
    // the drill's stack goes all the same, and the last verified restore stays the earlier one.
    sh(stack, "db", "printf 'BROKEN\\n' > /var/lib/db/table.1");
    let (state, result, _) = job(admin, domain, "backup", &[]).await;
    assert_eq!(state, "succeeded", "backup: {result}");
    let (state, result, _) = job(admin, domain, "drill", &[("options[timeout_secs]", "60")]).await;
    assert_eq!(state, "failed", "{result}");
    assert!(result.contains("restore drill failed"), "{result}");
    assert!(swarm::docker(&["stack", "ls", "--format", "{{.Name}}"]).lines().all(|l| !l.starts_with("drill")));
    let detail: AppDetail = admin.call("get_app", &at).await.unwrap();
    assert_eq!(detail.backups[0].drill_ok, Some(false), "{:?}", detail.backups[0]);
    assert_eq!(detail.app.status, AppStatus::Deployed, "a failed drill leaves the app as it was");
    let page: CollectiveBackups = admin.call("list_backups", &[("slug", SLUG)]).await.unwrap();
    assert!(page.apps[0].last_verified >= Some(verified));
    let logged = actions(app).await;
    assert!(logged.iter().any(|l| l == "app.drill.request") && logged.iter().any(|l| l == "app.drill"));
}

/// A collective's repository over SFTP (the harness's sshd): the host key is never trusted on
/// first use (Potluck names the one presented, and the admin pins it), a wrong one is refused,
/// a path on the Potluck machine cannot be named, the key is stored sealed and never shown; a
/// backup and a restore go through it, and restic reads what Potluck wrote.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repository_over_sftp_pins_the_host_key_and_keeps_the_key_sealed() {
    let d = deployed("sftp", |c| c.backup_hosts_allow = vec!["127.0.0.1".into()]).await;
    let (app, admin, domain, stack) = (&d.app, &d.admin, d.domain.as_str(), d.stack.as_str());
    let ssh = potluck_tests::required_env("POTLUCK_TEST_SSH");
    let key_file = potluck_tests::required_env("POTLUCK_TEST_SSH_KEY");
    let key = std::fs::read_to_string(&key_file).unwrap();
    let (user_host, port) = ssh.rsplit_once(':').unwrap();
    let remote = d.dir.path().join("over-sftp");
    let location = format!("sftp://{user_host}:{port}/{}", remote.display());
    let add = |host_key: &str, location: &str| {
        let form = [
            ("slug", SLUG.to_string()),
            ("name", "remote".to_string()),
            ("location", location.to_string()),
            ("ssh_key", key.clone()),
            ("host_key", host_key.to_string()),
        ];
        async move {
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            admin.call::<AddedBackupRepo>("add_backup_repo", &form).await
        }
    };

    // No host key given: Potluck reads it and names it, exactly as ssh-keygen prints it.
    let unpinned = add("", &location).await.unwrap_err();
    assert_eq!(unpinned.status, 422, "{}", unpinned.body);
    let host_pub = std::path::Path::new(&key_file).with_file_name("host_ed25519.pub");
    let printed = Command::new("ssh-keygen").arg("-lf").arg(&host_pub).output().unwrap();
    let expected = String::from_utf8_lossy(&printed.stdout).split_whitespace().nth(1).unwrap().to_string();
    assert!(unpinned.body.contains(&format!("presents the host key {expected}")), "{}", unpinned.body);

    // Another key pinned: refused before the key is offered; a local path: refused.
    let wrong = add("SHA256:ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0", &location).await.unwrap_err();
    assert_eq!(wrong.status, 422);
    assert!(wrong.body.contains("not the pinned"), "{}", wrong.body);
    let local = add(&expected, "/etc").await.unwrap_err();
    assert_eq!(local.status, 422);
    assert!(local.body.contains("location"), "{}", local.body);
    assert_eq!(app.count("SELECT COUNT(*) FROM backup_repos").await, 0, "nothing was recorded");

    // Pinned: added, created over SFTP, its key sealed.
    let added = add(&expected, &location).await.unwrap();
    assert_eq!(added.repo.kind, "sftp");
    assert_eq!(added.repo.host_key.as_deref(), Some(expected.as_str()));
    let password = added.password.expect("Potluck made the password").0;
    assert!(remote.join("config").exists(), "the repository was made over SFTP");
    {
        use sqlx::Row;
        let row = sqlx::query("SELECT ssh_key_enc FROM backup_repos").fetch_one(app.state.db.pool()).await.unwrap();
        let sealed: Vec<u8> = row.try_get("ssh_key_enc").unwrap();
        assert!(!String::from_utf8_lossy(&sealed).contains("PRIVATE KEY"), "the key is stored sealed");
    }
    let page: CollectiveBackups = admin.call("list_backups", &[("slug", SLUG)]).await.unwrap();
    assert!(!serde_json::to_string(&page).unwrap().contains("PRIVATE KEY"), "the key is never shown");

    // A backup and a restore through it; restic reads what Potluck wrote.
    round_trip(admin, domain, stack, "remote", "remote copy").await;
    let out = Command::new("restic")
        .args(["-r", remote.to_str().unwrap(), "snapshots", "--json"])
        .env("RESTIC_PASSWORD", &password)
        .env("RESTIC_CACHE_DIR", d.dir.path().join("cache"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let listed: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed.len(), 1);
    let logged = app.texts("SELECT details FROM audit_events WHERE action = 'backup_repo.add'").await;
    assert_eq!(logged.len(), 1, "{logged:?}");
    assert!(
        logged[0].contains(&expected) && !logged[0].contains("PRIVATE KEY"),
        "the pinned key, no secret: {logged:?}"
    );
}

/// A collective's repository in an S3 bucket: added with its keys (the secret sealed, never
/// listed or audited), backed up into and restored from as jobs; a repository naming the
/// Potluck machine or a link-local address is refused unless the configuration allows the host.
#[tokio::test]
async fn a_repository_in_a_bucket_keeps_its_secret_sealed_and_may_not_name_the_potluck_machine() {
    let d = deployed("s3", |c| c.backup_hosts_allow = vec!["127.0.0.1".into()]).await;
    let (app, admin, domain, stack) = (&d.app, &d.admin, d.domain.as_str(), d.stack.as_str());
    let (endpoint, bucket) = potluck_tests::new_s3_bucket("jobs-s3");
    let [(_, key_id), (_, secret)] = potluck_tests::S3_KEYS;
    let add = |location: String, secret: &'static str| async move {
        let form = [
            ("slug", SLUG),
            ("name", "bucket"),
            ("location", location.as_str()),
            ("s3_key_id", key_id),
            ("s3_secret", secret),
            ("s3_region", "eu-central-1"),
        ];
        admin.call::<AddedBackupRepo>("add_backup_repo", &form).await
    };

    // The Potluck machine by another name, the cloud's metadata address, no secret: refused.
    let port = endpoint.rsplit_once(':').unwrap().1;
    let loopback = add(format!("s3:http://localhost:{port}/{bucket}/coop"), secret).await.unwrap_err();
    assert_eq!(loopback.status, 422, "{}", loopback.body);
    assert!(loopback.body.contains("backup_hosts_allow"), "{}", loopback.body);
    let metadata = add("s3:http://169.254.169.254/latest/meta-data".into(), secret).await.unwrap_err();
    assert_eq!(metadata.status, 422, "{}", metadata.body);
    assert!(metadata.body.contains("link-local"), "{}", metadata.body);
    let no_secret = add(format!("s3:{endpoint}/{bucket}/coop"), "").await.unwrap_err();
    assert_eq!(no_secret.status, 422, "{}", no_secret.body);
    assert!(no_secret.body.contains("s3_secret"), "{}", no_secret.body);
    assert_eq!(app.count("SELECT COUNT(*) FROM backup_repos").await, 0, "nothing was recorded");

    let added = add(format!("s3:{endpoint}/{bucket}/coop"), secret).await.unwrap();
    assert_eq!(added.repo.kind, "s3");
    assert_eq!(added.repo.s3_key_id.as_deref(), Some(key_id));
    let password = added.password.expect("Potluck made the password").0;
    {
        use sqlx::Row;
        let row = sqlx::query("SELECT s3_secret_enc, s3_region FROM backup_repos")
            .fetch_one(app.state.db.pool())
            .await
            .unwrap();
        let sealed: Vec<u8> = row.try_get("s3_secret_enc").unwrap();
        assert!(!String::from_utf8_lossy(&sealed).contains(secret), "the secret is stored sealed");
        assert_eq!(row.try_get::<String, _>("s3_region").unwrap(), "eu-central-1");
    }
    let page: CollectiveBackups = admin.call("list_backups", &[("slug", SLUG)]).await.unwrap();
    assert!(!serde_json::to_string(&page).unwrap().contains(secret), "the secret is never shown");
    let logged = app.texts("SELECT details FROM audit_events WHERE action = 'backup_repo.add'").await;
    assert_eq!(logged.len(), 1, "{logged:?}");
    assert!(logged[0].contains(key_id) && !logged[0].contains(secret), "the key id, no secret: {logged:?}");

    // A backup and a restore through the bucket; restic's own S3 client reads what Potluck wrote.
    round_trip(admin, domain, stack, "bucket", "in the bucket").await;
    let out = Command::new("restic")
        .args(["-r", &format!("s3:{endpoint}/{bucket}/coop"), "snapshots", "--json"])
        .env("RESTIC_PASSWORD", &password)
        .env("AWS_ACCESS_KEY_ID", key_id)
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .env("RESTIC_CACHE_DIR", d.dir.path().join("cache"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let listed: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed.len(), 1);
}
