//! The fleet and batch upgrades against the test swarm, on SQLite and PostgreSQL: apps of one
//! recipe in two collectives, the versions and releases behind each person sees, a batch that
//! upgrades two apps one after another, and one that stops at its first failure.

use potluck_app::model::*;
use potluck_tests::recipes::{fixture_recipe, publish};
use potluck_tests::{swarm, Browser, Idp, TestApp};
use std::time::Duration;

const A: &str = "collective-a";
const B: &str = "collective-b";

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}.example.org", &uuid::Uuid::new_v4().simple().to_string()[..8])
}

/// An app of `hello` at 0.1.0+1.0, deployed.
async fn deployed(admin: &Browser, slug: &str, prefix: &str) -> AppSummary {
    let domain = unique(prefix);
    let app: AppSummary = admin
        .call(
            "create_app",
            &[("slug", slug), ("server", "local"), ("recipe", "hello"), ("domain", &domain), ("version", "0.1.0+1.0")],
        )
        .await
        .unwrap();
    admin.call::<Vec<GeneratedSecret>>("generate_secrets", &[("slug", slug), ("domain", &domain)]).await.unwrap();
    let job: JobSummary =
        admin.call("start_job", &[("slug", slug), ("domain", &domain), ("kind", "deploy")]).await.unwrap();
    let (_, state, result) = admin.watch_job(job.id).await;
    assert_eq!(state, "succeeded", "{domain}: {result}");
    app
}

async fn batch_end(b: &Browser, id: BatchId) -> BatchView {
    for _ in 0..900 {
        let v: BatchView = b.call("get_upgrade_batch", &[("id", &id.to_string())]).await.unwrap();
        if v.state != "running" {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("batch {id} still running after 3 minutes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fleet_shows_what_is_behind_and_a_batch_upgrades_apps_one_after_another() {
    let app = TestApp::spawn().await;
    let admin = app.bootstrap_admin().await;
    for slug in [A, B] {
        admin
            .call::<CollectiveSummary>("create_collective", &[("slug", slug), ("name", slug), ("description", "")])
            .await
            .unwrap();
        admin
            .call::<ServerView>(
                "add_server",
                &[("slug", slug), ("name", "local"), ("kind", "unix"), ("address", swarm::SOCKET)],
            )
            .await
            .unwrap();
    }
    let pa = app.add_provider(&admin, &Idp::a(), &[A]).await;
    admin
        .call::<GroupMapping>(
            "add_group_mapping",
            &[("slug", A), ("provider_id", &pa.to_string()), ("value", "collective-a-operators"), ("role", "operator")],
        )
        .await
        .unwrap();
    let carol = app.login(pa, "carol", "carol-pw").await;
    let pb = app.add_provider(&admin, &Idp::b(), &[B]).await;
    admin
        .call::<GroupMapping>(
            "add_group_mapping",
            &[("slug", B), ("provider_id", &pb.to_string()), ("value", "collective-b-admins"), ("role", "admin")],
        )
        .await
        .unwrap();
    let bob_b = app.login(pb, "bob", "bob-b-pw").await;
    let recipes = tempfile::tempdir().unwrap();
    let (_, remote) = publish(&fixture_recipe("hello"), recipes.path(), "hello");
    admin.call::<RecipeSummary>("register_recipe", &[("repository", &remote.display().to_string())]).await.unwrap();
    let a1 = deployed(&admin, A, "fa1").await;
    let a2 = deployed(&admin, A, "fa2").await;
    let b1 = deployed(&admin, B, "fb1").await;
    let stacks: Vec<String> = [&a1, &a2, &b1].iter().map(|a| a.stack_name.clone()).collect();

    // The federation admin sees every app; each two releases behind the newest.
    let fleet: Fleet = admin.call("fleet", &[]).await.unwrap();
    let hello = fleet.recipes.iter().find(|r| r.recipe == "hello").unwrap();
    assert_eq!(hello.newest.as_deref(), Some("1.0.0+2.0"));
    assert_eq!(hello.apps.len(), 3);
    assert!(
        hello.apps.iter().all(|a| a.behind == Some(2) && a.version.as_deref() == Some("0.1.0+1.0")),
        "{:?}",
        hello.apps
    );
    // An operator of collective-a sees collective-a's apps only.
    let theirs: Fleet = carol.call("fleet", &[]).await.unwrap();
    let mut seen: Vec<String> = theirs.recipes.iter().flat_map(|r| r.apps.iter().map(|a| a.domain.clone())).collect();
    seen.sort();
    let mut expected = vec![a1.domain.clone(), a2.domain.clone()];
    expected.sort();
    assert_eq!(seen, expected);
    assert!(theirs.recipes[0].apps.iter().all(|a| a.can_operate));

    // A batch may not name another collective's app: as good as absent.
    let both = format!("{A}/{},{A}/{}", a1.domain, a2.domain);
    let foreign = carol
        .call::<Vec<BatchPreviewItem>>(
            "preview_upgrade_batch",
            &[("recipe", "hello"), ("apps", &format!("{both},{B}/{}", b1.domain)), ("target", "0.2.0+1.1")],
        )
        .await
        .unwrap_err();
    assert_eq!(foreign.status, 404, "{}", foreign.body);
    let started = carol
        .call::<BatchView>(
            "start_upgrade_batch",
            &[("recipe", "hello"), ("apps", &format!("{B}/{}", b1.domain)), ("target", "0.2.0+1.1")],
        )
        .await
        .unwrap_err();
    assert_eq!(started.status, 404);

    // Preview: each app's upgrade as a single upgrade shows it, with the release notes passed.
    let preview: Vec<BatchPreviewItem> = carol
        .call("preview_upgrade_batch", &[("recipe", "hello"), ("apps", &both), ("target", "0.2.0+1.1")])
        .await
        .unwrap();
    assert_eq!(preview.len(), 2);
    for p in &preview {
        let pv = p.preview.as_ref().unwrap_or_else(|| panic!("{}: {:?}", p.domain, p.error));
        assert_eq!((pv.from_version.as_deref(), pv.to_version.as_deref()), (Some("0.1.0+1.0"), Some("0.2.0+1.1")));
        assert!(pv.release_notes.iter().any(|(v, _)| v == "0.2.0+1.1"), "{:?}", pv.release_notes);
    }

    // Run: one after another, in order, each its own job, audited as carol's upgrade request.
    let batch: BatchView = carol
        .call(
            "start_upgrade_batch",
            &[("recipe", "hello"), ("apps", &both), ("target", "0.2.0+1.1"), ("stop_on_failure", "true")],
        )
        .await
        .unwrap();
    assert_eq!(batch.items.len(), 2);
    let done = batch_end(&carol, batch.id).await;
    assert_eq!(done.state, "done", "{done:?}");
    assert!(done.items.iter().all(|i| i.state == "succeeded"), "{:?}", done.items);
    let (j1, j2) = (done.items[0].job.unwrap(), done.items[1].job.unwrap());
    let first: JobDetail = carol.call("get_job", &[("id", &j1.to_string())]).await.unwrap();
    let second: JobDetail = carol.call("get_job", &[("id", &j2.to_string())]).await.unwrap();
    assert!(
        second.job.started_at.unwrap() >= first.job.finished_at.unwrap(),
        "the second upgrade began after the first ended"
    );
    let after: Fleet = carol.call("fleet", &[]).await.unwrap();
    assert!(after.recipes[0].apps.iter().all(|a| a.behind == Some(1)), "{:?}", after.recipes[0].apps);
    let requests =
        app.texts("SELECT actor_name FROM audit_events WHERE action = 'app.upgrade.request' ORDER BY seq").await;
    assert_eq!(requests, ["Carol Castro", "Carol Castro"]);
    assert_eq!(app.count("SELECT COUNT(*) FROM audit_events WHERE action = 'fleet.batch_upgrade.start'").await, 1);

    // 1.0.0+2.0 needs a secret nobody inserted: the first upgrade fails, the second is skipped.
    let failing: BatchView = carol
        .call(
            "start_upgrade_batch",
            &[("recipe", "hello"), ("apps", &both), ("target", "1.0.0+2.0"), ("stop_on_failure", "true")],
        )
        .await
        .unwrap();
    let stopped = batch_end(&carol, failing.id).await;
    assert_eq!(stopped.state, "stopped", "{stopped:?}");
    assert_eq!(stopped.items[0].state, "failed");
    assert_eq!(stopped.items[1].state, "skipped");
    assert!(stopped.items[1].job.is_none(), "nothing was started for a skipped app");
    // collective-b's admin cannot read collective-a's batch: as good as absent.
    let foreign = bob_b.call::<BatchView>("get_upgrade_batch", &[("id", &failing.id.to_string())]).await.unwrap_err();
    assert_eq!(foreign.status, 404, "{}", foreign.body);
    // A federation admin sees every batch.
    let hidden = admin.call::<BatchView>("get_upgrade_batch", &[("id", &failing.id.to_string())]).await;
    assert!(hidden.is_ok(), "the federation admin sees it");
    let docker = swarm::connect().await;
    for stack in &stacks {
        swarm::remove_stack_and_secrets(&docker, stack).await;
    }
    app.stop().await;
}
