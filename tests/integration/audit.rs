//! The audit log: one event per change, a hash chain that `potluck audit verify` checks, who
//! may read which events, the JSON Lines export, and no secrets anywhere in it.

use potluck_app::model::{AuditPage, CreatedApiToken};
use potluck_tests::{potluck_bin, Browser, Idp, TestApp};
use std::process::Command;

fn verify(app: &TestApp) -> (i32, String) {
    let out = Command::new(potluck_bin())
        .args(["audit", "verify"])
        .env("POTLUCK_DATABASE_URL", &app.database_url)
        .env("POTLUCK_DATA_DIR", app.dir.path().join("data"))
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

async fn some_history(app: &TestApp) -> Browser {
    let admin = app.bootstrap_admin().await;
    for i in 0..5 {
        admin
            .call::<serde_json::Value>(
                "create_collective",
                &[("slug", &format!("c-{i}")), ("name", &format!("C {i}")), ("description", "")],
            )
            .await
            .unwrap();
    }
    admin
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_finds_the_first_edited_or_removed_event() {
    let app = TestApp::spawn().await;
    let _admin = some_history(&app).await;
    let total = app.count("SELECT COUNT(*) FROM audit_events").await;
    assert!(total >= 7, "bootstrap link, claim and five collectives");
    let (code, text) = verify(&app);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains(&format!("{total} events")), "{text}");

    // Edit one event: it is named.
    app.exec("UPDATE audit_events SET target = 'collective forged' WHERE seq = 4").await;
    let (code, text) = verify(&app);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("BROKEN at event 4") && text.contains("modified"), "{text}");
    app.exec("UPDATE audit_events SET target = 'collective c-1' WHERE seq = 4").await;
    assert_eq!(verify(&app).0, 0, "restoring the row restores the chain");

    // Re-hashing an edited row does not help: the next event no longer follows it.
    app.exec("UPDATE audit_events SET hash = 'ffff' WHERE seq = 5").await;
    let (code, text) = verify(&app);
    assert_eq!(code, 1);
    assert!(text.contains("BROKEN at event 5"), "{text}");
    let good = app.texts("SELECT prev_hash FROM audit_events WHERE seq = 6").await.remove(0);
    app.exec(&format!("UPDATE audit_events SET hash = '{good}' WHERE seq = 5")).await;
    assert_eq!(verify(&app).0, 0);

    // Remove one in the middle.
    app.exec("DELETE FROM audit_events WHERE seq = 3").await;
    let (code, text) = verify(&app);
    assert_eq!(code, 1);
    assert!(text.contains("BROKEN at event 3") && text.contains("missing"), "{text}");
    app.stop().await;
}

/// An append is one statement after the head this process last wrote; two replicas appending
/// at once, and a transaction that appended and rolled back, move the head under it. The chain
/// stays one: every event once, in sequence, verified.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_from_two_replicas_and_a_rollback_keep_one_chain() {
    use potluck_server::domain::audit::{self, AuditAction, Event, Origin};
    let app = TestApp::spawn().await;
    let replica = app.replica().await;
    let before = app.count("SELECT COUNT(*) FROM audit_events").await;
    let append = |db: potluck_server::adapters::db::Db, who: &'static str| async move {
        for i in 0..30 {
            let event = Event::new(AuditAction::RecipeFetch, format!("{who} {i}"));
            audit::record_alone(&db, &Origin::system(who), event).await.unwrap();
        }
    };
    // An append that does not land: this process's idea of the head is now ahead of the log.
    let mut tx = audit::begin(&app.state.db).await.unwrap();
    tx.record(&Origin::system("rolled back"), Event::new(AuditAction::RecipeFetch, "never")).await.unwrap();
    drop(tx);
    let handles = [
        tokio::spawn(append(app.state.db.clone(), "first-a")),
        tokio::spawn(append(app.state.db.clone(), "first-b")),
        tokio::spawn(append(replica.state.db.clone(), "second-a")),
        tokio::spawn(append(replica.state.db.clone(), "second-b")),
    ];
    for h in handles {
        h.await.unwrap();
    }
    let after = app.count("SELECT COUNT(*) FROM audit_events").await;
    assert_eq!(after - before, 120, "every append landed once, the rolled back one not at all");
    assert_eq!(app.count("SELECT MAX(seq) FROM audit_events").await, after, "no gap, no fork");
    assert_eq!(app.count("SELECT COUNT(*) FROM audit_events WHERE target = 'never'").await, 0);
    let (code, text) = verify(&app);
    assert_eq!(code, 0, "{text}");
    replica.stop().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_notices_a_removed_tail() {
    let app = TestApp::spawn().await;
    let _admin = some_history(&app).await;
    let total = app.count("SELECT COUNT(*) FROM audit_events").await;
    app.exec(&format!("DELETE FROM audit_events WHERE seq = {total}")).await;
    let (code, text) = verify(&app);
    assert_eq!(code, 1);
    assert!(text.contains(&format!("BROKEN at event {total}")) && text.contains("removed"), "{text}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collective_admins_read_their_collective_and_federation_admins_everything() {
    let app = TestApp::spawn().await;
    let admin = app.bootstrap_admin().await;
    for slug in ["collective-a", "collective-b"] {
        admin
            .call::<serde_json::Value>("create_collective", &[("slug", slug), ("name", slug), ("description", "")])
            .await
            .unwrap();
    }
    let a = app.add_provider(&admin, &Idp::a(), &["collective-a"]).await;
    for (group, role) in [("collective-a-admins", "admin"), ("collective-a-members", "viewer")] {
        admin
            .call::<serde_json::Value>(
                "add_group_mapping",
                &[("slug", "collective-a"), ("provider_id", &a.to_string()), ("value", group), ("role", role)],
            )
            .await
            .unwrap();
    }
    let alice = app.login(a, "alice", "alice-pw").await;
    let bob = app.login(a, "bob", "bob-pw").await;

    let all: AuditPage = admin.call("query_audit", &[("limit", "200")]).await.unwrap();
    assert!(all.events.iter().any(|e| e.collective.as_deref() == Some("collective-b")));
    assert!(all.events.iter().any(|e| e.action == "identity_provider.add"));
    assert!(all.events.windows(2).all(|w| w[0].seq > w[1].seq), "newest first");

    let mine: AuditPage = alice.call("query_audit", &[]).await.unwrap();
    assert!(!mine.events.is_empty());
    assert!(mine.events.iter().all(|e| e.collective.as_deref() == Some("collective-a")), "{:?}", mine.events);
    let other = alice.call::<AuditPage>("query_audit", &[("collective", "collective-b")]).await.unwrap_err();
    assert_eq!(other.status, 404);
    let viewer = bob.call::<AuditPage>("query_audit", &[]).await.unwrap_err();
    assert_eq!(viewer.status, 403);
    let anonymous = app.browser().call::<AuditPage>("query_audit", &[]).await.unwrap_err();
    assert_eq!(anonymous.status, 401);

    // Filters: action prefix, actor, time, and pages.
    let mappings: AuditPage = admin.call("query_audit", &[("action", "group_mapping")]).await.unwrap();
    assert_eq!(mappings.events.len(), 2);
    assert!(mappings.events.iter().all(|e| e.action == "group_mapping.add"));
    let by_alice: AuditPage = admin.call("query_audit", &[("actor", "ALICE")]).await.unwrap();
    assert!(!by_alice.events.is_empty() && by_alice.events.iter().all(|e| e.actor_name == "Alice Arden"));
    let future = (potluck_server::adapters::db::now_ms() + 86_400_000).to_string();
    let none: AuditPage = admin.call("query_audit", &[("from", &future)]).await.unwrap();
    assert!(none.events.is_empty());
    let page1: AuditPage = admin.call("query_audit", &[("limit", "3")]).await.unwrap();
    assert_eq!(page1.events.len(), 3);
    let before = page1.next_before.unwrap().to_string();
    let page2: AuditPage = admin.call("query_audit", &[("limit", "3"), ("before", &before)]).await.unwrap();
    assert_eq!(page2.events[0].seq, page1.events[2].seq - 1);

    // The page itself, server-rendered with the filter applied.
    let html = admin.get("/audit?action=collective.create").await.text().await.unwrap();
    assert!(html.contains("collective.create") && !html.contains(">group_mapping.add<"), "filtered page");

    // Export: JSON Lines with the chain hashes, scoped like the page.
    let export = alice.get("/audit/export.jsonl").await;
    assert_eq!(export.status(), 200);
    assert_eq!(export.headers()["content-type"], "application/jsonl; charset=utf-8");
    let text = export.text().await.unwrap();
    let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), mine.events.len());
    assert!(lines.iter().all(|l| l["collective"] == "collective-a" && l["hash"].as_str().unwrap().len() == 64));
    let denied = bob.get("/audit/export.jsonl").await;
    assert_eq!(denied.status(), 403);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_export_streams_long_logs_completely() {
    let app = TestApp::spawn().await;
    let admin = app.bootstrap_admin().await;
    let origin = potluck_server::domain::audit::Origin::system("test");
    for i in 0..2500 {
        potluck_server::domain::audit::record_alone(
            &app.state.db,
            &origin,
            potluck_server::domain::audit::Event::new(
                potluck_server::domain::audit::AuditAction::RecipeFetch,
                format!("thing {i}"),
            ),
        )
        .await
        .unwrap();
    }
    let total = app.count("SELECT COUNT(*) FROM audit_events").await;
    let text = admin.get("/audit/export.jsonl").await.text().await.unwrap();
    let seqs: Vec<i64> =
        text.lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs.len() as i64, total);
    assert!(seqs.windows(2).all(|w| w[0] == w[1] + 1), "every event once, newest first");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_lands_only_with_its_audit_event() {
    use potluck_server::domain::audit::{self, AuditAction, Event, Origin};
    let app = TestApp::spawn().await;
    let db = &app.state.db;
    let origin = Origin::system("test");
    let collectives = || app.count("SELECT COUNT(*) FROM collectives WHERE slug LIKE 'unaudited-%'");
    let insert = "INSERT INTO collectives (slug, name, description, created_at) VALUES ($1, 'x', '', 0)";

    // A change that forgets its event does not commit, and leaves nothing behind.
    let mut tx = audit::begin(db).await.unwrap();
    sqlx::query(insert).bind("unaudited-one").execute(&mut *tx).await.unwrap();
    let refused = tx.commit().await.unwrap_err();
    assert!(refused.to_string().contains("without an audit event"), "{refused}");
    assert_eq!(collectives().await, 0);

    // With its event, the change and the event land together.
    let events = app.count("SELECT COUNT(*) FROM audit_events").await;
    let mut tx = audit::begin(db).await.unwrap();
    sqlx::query(insert).bind("unaudited-two").execute(&mut *tx).await.unwrap();
    tx.record(&origin, Event::new(AuditAction::CollectiveCreate, "collective unaudited-two")).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(collectives().await, 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM audit_events").await, events + 1);
    assert!(audit::verify(db, None, None).await.unwrap().broken.is_none());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_reach_the_audit_log() {
    let app = TestApp::spawn().await;
    let admin = app.bootstrap_admin().await;
    admin
        .call::<serde_json::Value>("create_collective", &[("slug", "collective-a"), ("name", "A"), ("description", "")])
        .await
        .unwrap();
    let idp = Idp::a();
    let (client_id, secret) = idp.register_client(&app.base).await;
    app.add_provider_with(&admin, &idp, &client_id, &secret, &["collective-a"]).await.unwrap();
    let token = admin
        .call::<CreatedApiToken>(
            "create_api_token",
            &[("name", "t"), ("collective", "collective-a"), ("role", "viewer")],
        )
        .await
        .unwrap()
        .token
        .0;
    let invitation = admin
        .call::<potluck_app::model::CreatedInvitation>(
            "create_invitation",
            &[("slug", "collective-a"), ("role", "viewer")],
        )
        .await
        .unwrap();
    let invite_token = invitation.link.0.rsplit('/').next().unwrap().to_string();
    let everything = app
        .texts("SELECT actor_name || target || details || request_id || client_addr FROM audit_events")
        .await
        .join("\n");
    for s in [&secret, &token, &invite_token] {
        assert!(!everything.contains(s.as_str()), "a secret reached the audit log");
    }
    // Nor the database in clear.
    let stored = app.texts("SELECT token_hash FROM api_tokens").await;
    assert!(!stored.contains(&token));
    app.stop().await;
}

fn cli(app: &TestApp, args: &[&str], checkpoints: &std::path::Path) -> (i32, String) {
    let out = Command::new(potluck_bin())
        .args(args)
        .env("POTLUCK_DATABASE_URL", &app.database_url)
        .env("POTLUCK_DATA_DIR", app.dir.path().join("data"))
        .env("POTLUCK_AUDIT_CHECKPOINT_EXPORT", checkpoints)
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

/// What someone with write access to the database, but not the instance key, would do to hide
/// the last events: delete them and move the head back, so that the chain itself checks out.
async fn cut_tail(app: &TestApp, keep: i64) {
    app.exec(&format!("DELETE FROM audit_events WHERE seq > {keep}")).await;
    let hash = app.texts(&format!("SELECT hash FROM audit_events WHERE seq = {keep}")).await.remove(0);
    app.exec(&format!("UPDATE audit_head SET seq = {keep}, hash = '{hash}' WHERE id = 1")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_checkpoints_reveal_a_cut_tail_and_forged_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("checkpoints.jsonl");
    let app = TestApp::spawn().await;
    let admin = some_history(&app).await;
    let (code, text) = cli(&app, &["audit", "checkpoint"], &file);
    assert_eq!(code, 0, "{text}");
    let checkpointed = app.count("SELECT MAX(seq) FROM audit_checkpoints").await;
    assert_eq!(checkpointed, app.count("SELECT COUNT(*) FROM audit_events").await);
    assert!(std::fs::read_to_string(&file).unwrap().contains(&format!("\"seq\":{checkpointed}")), "exported");
    admin
        .call::<serde_json::Value>("create_collective", &[("slug", "c-late"), ("name", "Late"), ("description", "")])
        .await
        .unwrap();
    assert_eq!(cli(&app, &["audit", "verify"], &file).0, 0, "an intact log with checkpoints verifies");

    // A cut tail that the chain alone would not show: the head was moved back with it.
    let keep = checkpointed - 2;
    cut_tail(&app, keep).await;
    assert_eq!(verify(&app).0, 1, "the checkpoint in the database shows it");
    let (code, text) = cli(&app, &["audit", "verify"], &file);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains(&format!("BROKEN at event {}", keep + 1)) && text.contains("checkpoint"), "{text}");
    // Removing the checkpoints from the database too does not help: the file outside has them.
    app.exec("DELETE FROM audit_checkpoints").await;
    let (code, text) = cli(&app, &["audit", "verify"], &file);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("were removed"), "{text}");
    // A checkpoint cannot be made up without the instance key.
    std::fs::remove_file(&file).unwrap();
    let hash = app.texts(&format!("SELECT hash FROM audit_events WHERE seq = {keep}")).await.remove(0);
    app.exec(&format!(
        "INSERT INTO audit_checkpoints (seq, hash, at, signature) VALUES ({keep}, '{hash}', 1, 'forged')"
    ))
    .await;
    let (code, text) = cli(&app, &["audit", "verify"], &file);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("not signed with this instance's key"), "{text}");
    app.stop().await;
}
