//! Release CI against the test swarm, on SQLite and PostgreSQL: the federation admin designates
//! a staging server; opening a proposal queues a run that installs the proposal's commit as a
//! throw-away app, smoke-checks it over HTTP from inside its network, upgrades to it from the
//! previous release and removes everything; a recipe whose image does not exist fails with the
//! task's error, tells the maintaining collective, and is cleaned up too; a smoke check that finds
//! no answer is red; a recipe that requires a green run is not published before one.

use git2::Repository;
use potluck_app::model::*;
use potluck_tests::recipes::{fixture_recipe, publish, push_commit};
use potluck_tests::{swarm, Browser, Idp, TestApp};
use std::time::Duration;

const A: &str = "collective-a";

/// Waits for the proposal's newest run to end; answers it with its log.
async fn run_end(b: &Browser, proposal: ProposalId) -> StagingRunView {
    for _ in 0..1500 {
        let d: ReleaseProposalDetail = b.call("get_release", &[("id", &proposal.to_string())]).await.unwrap();
        if let Some(r) = d.staging.first().filter(|r| !matches!(r.state.as_str(), "queued" | "running")) {
            return b
                .call("get_staging_run", &[("id", &proposal.to_string()), ("run", &r.id.to_string())])
                .await
                .unwrap();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("the staging run of proposal {proposal} did not end in 5 minutes");
}

fn log_of(v: &StagingRunView) -> String {
    v.log.iter().map(|l| l.text.as_str()).collect::<Vec<_>>().join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proposals_are_tried_on_staging_and_the_policy_waits_for_a_green_run() {
    let app = TestApp::spawn_with(|c| {
        c.staging_probe_image = "potluck-test/busybox:1".into();
        c.notify_hosts_allow = vec!["127.0.0.1".into()];
    })
    .await;
    let fed = app.bootstrap_admin().await;
    fed.call::<CollectiveSummary>("create_collective", &[("slug", A), ("name", A), ("description", "")]).await.unwrap();
    fed.call::<ServerView>(
        "add_server",
        &[("slug", A), ("name", "local"), ("kind", "unix"), ("address", swarm::SOCKET)],
    )
    .await
    .unwrap();
    let pa = app.add_provider(&fed, &Idp::a(), &[A]).await;
    for (group, role) in [("collective-a-maintainers", "maintainer"), ("collective-a-admins", "admin")] {
        fed.call::<GroupMapping>(
            "add_group_mapping",
            &[("slug", A), ("provider_id", &pa.to_string()), ("value", group), ("role", role)],
        )
        .await
        .unwrap();
    }
    let dave = app.login(pa, "dave", "dave-pw").await;
    let alice = app.login(pa, "alice", "alice-pw").await;
    let dir = tempfile::tempdir().unwrap();
    let (work, remote) = publish(&fixture_recipe("hello"), dir.path(), "hello");
    let (_, faulty_remote) = publish(&fixture_recipe("faulty"), dir.path(), "faulty");
    let (_, hostile_remote) = publish(&fixture_recipe("hostile"), dir.path(), "hostile");
    for r in [&remote, &faulty_remote, &hostile_remote] {
        fed.call::<RecipeSummary>("register_recipe", &[("repository", &r.display().to_string()), ("collective", A)])
            .await
            .unwrap();
    }
    // One approval from one collective, so that the staging policy is what decides.
    app.exec("UPDATE recipes SET required_approvals = 1, required_collectives = 1").await;
    // The collective hears of failed runs.
    fed.call::<AddedChannel>(
        "add_notification_channel",
        &[
            ("slug", A),
            ("name", "ci"),
            ("kind", "webhook"),
            ("target", "http://127.0.0.1:9/hook"),
            ("events[0]", "staging_failed"),
        ],
    )
    .await
    .unwrap();

    // Without a staging server a proposal is not tried, and asking is refused with the reason.
    push_commit(&work, &remote, &[("README.md", "# hello\n\nTried on staging.\n")], "docs: staging");
    let p =
        dave.call::<ReleaseProposalDetail>("open_release", &[("recipe", "hello"), ("notes", "Docs.")]).await.unwrap();
    assert!(!p.staging_available && p.staging.is_empty());
    let refused =
        dave.call::<StagingRunSummary>("start_staging_run", &[("id", &p.summary.id.to_string())]).await.unwrap_err();
    assert_eq!(refused.status, 409, "{}", refused.body);
    assert!(refused.body.contains("no staging server"), "{}", refused.body);

    // A maintainer may not designate staging servers; the federation admin does.
    let denied = alice
        .call::<Vec<StagingServerView>>("set_staging_server", &[("slug", A), ("name", "local"), ("max_runs", "1")])
        .await
        .unwrap_err();
    assert_eq!(denied.status, 403, "{}", denied.body);
    let servers: Vec<StagingServerView> =
        fed.call("set_staging_server", &[("slug", A), ("name", "local"), ("max_runs", "1")]).await.unwrap();
    assert_eq!(servers.len(), 1);

    // The maintainers' test settings: env over .env.sample, an HTTP smoke check, the policy.
    let bad = dave
        .call::<RecipeTesting>(
            "set_recipe_testing",
            &[
                ("name", "hello"),
                ("smoke_kind", "http"),
                ("smoke_service", "app"),
                ("smoke_port", "8080"),
                ("smoke_path", "/'; rm -rf /"),
            ],
        )
        .await
        .unwrap_err();
    assert_eq!(bad.status, 422, "{}", bad.body);
    let testing: RecipeTesting = dave
        .call(
            "set_recipe_testing",
            &[
                ("name", "hello"),
                ("test_env", "GREETING=staging"),
                ("smoke_kind", "http"),
                ("smoke_service", "app"),
                ("smoke_port", "8080"),
                ("smoke_path", "/"),
                ("require_green_run", "true"),
            ],
        )
        .await
        .unwrap();
    assert!(testing.require_green_run);

    // Green: the run installs, smoke-checks, upgrades from 1.0.0+2.0 and leaves nothing.
    let run: StagingRunSummary = dave.call("start_staging_run", &[("id", &p.summary.id.to_string())]).await.unwrap();
    assert!(matches!(run.state.as_str(), "queued" | "running"), "{}", run.state);
    let green = run_end(&dave, p.summary.id).await;
    let log = log_of(&green);
    assert_eq!(green.summary.state, "passed", "{:?} {:?}\n{log}", green.summary.failure, green.details);
    assert_eq!(green.summary.upgrade_from.as_deref(), Some("1.0.0+2.0"));
    assert!(log.contains("smoke check passed: http://app:8080/ answered"), "{log}");
    assert!(log.contains("1.0.0+2.0 converged; upgrading to"), "{log}");
    assert!(log.contains("converged after the upgrade"), "{log}");
    assert_eq!(swarm::leftovers(&green.stack), "", "{log}");
    assert_eq!(green.summary.server.as_deref(), Some("collective-a/local"));
    // The run belongs to its proposal: asked through another, it does not exist.
    let faulty: ReleaseProposalDetail =
        dave.call("open_release", &[("recipe", "faulty"), ("notes", "Try.")]).await.unwrap();
    let absent = dave
        .call::<StagingRunView>(
            "get_staging_run",
            &[("id", &faulty.summary.id.to_string()), ("run", &green.summary.id.to_string())],
        )
        .await
        .unwrap_err();
    assert_eq!(absent.status, 404);

    // Red: faulty's image does not exist. The run names the task's error, tells the collective,
    // and leaves nothing.
    let red = run_end(&dave, faulty.summary.id).await;
    assert_eq!(red.summary.state, "failed");
    let failure = red.summary.failure.clone().unwrap_or_default();
    assert!(failure.contains("did not converge"), "{failure}");
    assert!(red.details.iter().any(|d| d.contains("does-not-exist")), "{:?}", red.details);
    assert_eq!(swarm::leftovers(&red.stack), "");
    assert_eq!(app.count("SELECT COUNT(*) FROM notification_deliveries WHERE event = 'staging_failed'").await, 1);
    // A hostile recipe (the host's root, the Docker socket, capabilities …) is refused by the
    // staging server's guardrails before anything reaches its engine.
    let hostile: ReleaseProposalDetail =
        dave.call("open_release", &[("recipe", "hostile"), ("notes", "Try.")]).await.unwrap();
    let refused = run_end(&dave, hostile.summary.id).await;
    assert_eq!(refused.summary.state, "failed");
    assert!(
        refused.summary.failure.clone().unwrap_or_default().contains("policy refuses"),
        "{:?}",
        refused.summary.failure
    );
    assert!(refused.details.iter().any(|d| d.contains("docker.sock")), "{:?}", refused.details);
    assert!(!log_of(&refused).contains("Creating"), "nothing was created: {}", log_of(&refused));
    assert_eq!(swarm::leftovers(&refused.stack), "");
    // Its policy does not wait for staging; hello's does.
    let d: ReleaseProposalDetail = dave.call("get_release", &[("id", &p.summary.id.to_string())]).await.unwrap();
    assert!(d.require_green_run && d.green);

    // A new commit resets the green: the policy holds the approved release back until a run of
    // that commit passes. The smoke check now asks a path nobody serves.
    dave.call::<RecipeTesting>(
        "set_recipe_testing",
        &[
            ("name", "hello"),
            ("smoke_kind", "http"),
            ("smoke_service", "app"),
            ("smoke_port", "8081"),
            ("smoke_path", "/"),
            ("require_green_run", "true"),
        ],
    )
    .await
    .unwrap();
    push_commit(&work, &remote, &[("README.md", "# hello\n\nTried on staging, again.\n")], "docs: staging");
    dave.call::<()>("fetch_recipe", &[("name", "hello")]).await.unwrap();
    let moved: ReleaseProposalDetail = dave.call("update_release", &[("id", &p.summary.id.to_string())]).await.unwrap();
    assert!(!moved.green);
    let red = run_end(&dave, p.summary.id).await;
    assert_eq!(red.summary.state, "failed", "{}", log_of(&red));
    assert!(red.summary.failure.clone().unwrap_or_default().contains("smoke check"), "{:?}", red.summary.failure);
    assert_eq!(swarm::leftovers(&red.stack), "");
    let approved: ReleaseProposalDetail =
        alice.call("review_release", &[("id", &p.summary.id.to_string()), ("verdict", "approve")]).await.unwrap();
    assert_eq!(approved.summary.state, "open");
    assert!(
        approved.summary.publish_error.clone().unwrap_or_default().contains("passed staging run"),
        "{:?}",
        approved.summary.publish_error
    );
    let repo = Repository::open_bare(&remote).unwrap();
    assert!(repo.tag_names(None).unwrap().iter().flatten().flatten().all(|t| t != approved.summary.version));

    // The smoke check fixed and the run green, the release publishes.
    dave.call::<RecipeTesting>(
        "set_recipe_testing",
        &[
            ("name", "hello"),
            ("smoke_kind", "command"),
            ("smoke_service", "app"),
            ("smoke_command", "wget -q -O - http://127.0.0.1:8080/ | grep -q ."),
            ("require_green_run", "true"),
        ],
    )
    .await
    .unwrap();
    dave.call::<StagingRunSummary>("start_staging_run", &[("id", &p.summary.id.to_string())]).await.unwrap();
    let green = run_end(&dave, p.summary.id).await;
    assert_eq!(green.summary.state, "passed", "{}", log_of(&green));
    assert!(log_of(&green).contains("smoke check passed"), "{}", log_of(&green));
    let published: ReleaseProposalDetail =
        dave.call("publish_release", &[("id", &p.summary.id.to_string())]).await.unwrap();
    assert_eq!(published.summary.state, "published", "{:?}", published.summary.publish_error);

    // The pages read without scripts: the proposal's runs and a run's log.
    let page = dave.get(&format!("/releases/{}", p.summary.id)).await.text().await.unwrap();
    assert!(page.contains("id=\"staging-runs\"") && page.contains("run-passed"), "{page}");
    let page = dave.get(&format!("/releases/{}/runs/{}", p.summary.id, green.summary.id)).await.text().await.unwrap();
    assert!(page.contains("smoke check passed"), "{page}");
    app.stop().await;
}
