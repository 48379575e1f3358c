//! Release review against real repositories: maintainers of two collectives review a proposal,
//! Potluck writes the label and note, tags (annotated) and pushes to the recipe's bare remote.
//! Refusals (policy, bad input, a moved branch, an existing tag, a locked ref) leave the remote
//! exactly as it was.

use git2::Repository;
use potluck_app::model::*;
use potluck_tests::recipes::{fixture_recipe, publish, push_commit};
use potluck_tests::{Browser, Idp, TestApp};
use std::path::{Path, PathBuf};

struct World {
    app: TestApp,
    fed: Browser,
    dave: Browser,  // maintainer in collective-a: the proposer
    alice: Browser, // admin in collective-a
    bob_b: Browser, // admin in collective-b
    bob: Browser,   // viewer in collective-a
    work: PathBuf,
    remote: PathBuf,
    _dir: tempfile::TempDir,
}

async fn world() -> World {
    // Notifications go to a receiver on this machine (the notification test's).
    let app = TestApp::spawn_with(|c| {
        c.notify_hosts_allow = vec!["127.0.0.1".into()];
        c.notify_retry_secs = 0.3;
    })
    .await;
    let fed = app.bootstrap_admin().await;
    for slug in ["collective-a", "collective-b"] {
        fed.call::<CollectiveSummary>("create_collective", &[("slug", slug), ("name", slug), ("description", "")])
            .await
            .unwrap();
    }
    let pa = app.add_provider(&fed, &Idp::a(), &["collective-a"]).await;
    let pb = app.add_provider(&fed, &Idp::b(), &["collective-b"]).await;
    for (slug, provider, group, role) in [
        ("collective-a", pa, "collective-a-maintainers", "maintainer"),
        ("collective-a", pa, "collective-a-admins", "admin"),
        ("collective-a", pa, "collective-a-members", "viewer"),
        ("collective-b", pb, "collective-b-admins", "admin"),
    ] {
        fed.call::<GroupMapping>(
            "add_group_mapping",
            &[("slug", slug), ("provider_id", &provider.to_string()), ("value", group), ("role", role)],
        )
        .await
        .unwrap();
    }
    let dave = app.login(pa, "dave", "dave-pw").await;
    let alice = app.login(pa, "alice", "alice-pw").await;
    let bob = app.login(pa, "bob", "bob-pw").await;
    let bob_b = app.login(pb, "bob", "bob-b-pw").await;
    let dir = tempfile::tempdir().unwrap();
    let (work, remote) = publish(&fixture_recipe("hello"), dir.path(), "hello");
    // dave maintains recipes but is no federation admin: he gives a remote URL (over the
    // harness's sshd, with its key as the recipe's credential), not a path on this machine.
    let mut form = potluck_tests::recipes::over_ssh(&remote);
    form.push(("name", "hello".into()));
    form.push(("collective", "collective-a".into()));
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    dave.call::<RecipeSummary>("register_recipe", &form).await.unwrap();
    dave.call::<()>("set_recipe_maintainers", &[("name", "hello"), ("collectives", "collective-a,collective-b")])
        .await
        .unwrap();
    World { app, fed, dave, alice, bob_b, bob, work, remote, _dir: dir }
}

fn remote_head(remote: &Path) -> String {
    Repository::open_bare(remote).unwrap().refname_to_id("refs/heads/main").unwrap().to_string()
}

fn remote_tags(remote: &Path) -> Vec<String> {
    let repo = Repository::open_bare(remote).unwrap();
    let mut tags: Vec<String> = repo.tag_names(None).unwrap().iter().flatten().flatten().map(String::from).collect();
    tags.sort();
    tags
}

fn changed_compose(work: &Path) -> String {
    std::fs::read_to_string(work.join("compose.yml"))
        .unwrap()
        .replace("image: potluck-test/busybox:2", "image: potluck-test/busybox:2.1")
        .replace("      - DOMAIN\n", "      - DOMAIN\n      - EXTRA=${EXTRA}\n")
}

async fn open(b: &Browser, fields: &[(&str, &str)]) -> Result<ReleaseProposalDetail, potluck_tests::Failure> {
    let mut form = vec![("recipe", "hello")];
    form.extend_from_slice(fields);
    b.call("open_release", &form).await
}

async fn review(
    b: &Browser,
    id: potluck_app::model::ProposalId,
    verdict: &str,
    comment: &str,
) -> ReleaseProposalDetail {
    b.call("review_release", &[("id", &id.to_string()), ("verdict", verdict), ("comment", comment)]).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_collectives_approve_and_potluck_tags_and_pushes() {
    let w = world().await;
    let first = push_commit(
        &w.work,
        &w.remote,
        &[("compose.yml", &changed_compose(&w.work))],
        "feat: busybox 2.1, EXTRA setting",
    );
    w.dave.call::<()>("fetch_recipe", &[("name", "hello")]).await.unwrap();

    // Opening with Potluck's suggestions: the branch head, a minor bump (an image change).
    let d = open(&w.dave, &[("notes", "Busybox 2.1. Set EXTRA before upgrading.")]).await.unwrap();
    let id = d.summary.id;
    assert_eq!(d.summary.commit, first);
    assert_eq!(d.summary.bump, "minor");
    assert_eq!(
        d.summary.version, "1.1.0+2.0",
        "minor bump of 1.0.0+2.0 (its upstream part is not the image's tag, so it stays)"
    );
    assert_eq!(d.base_version.as_deref(), Some("1.0.0+2.0"));
    assert_eq!(
        d.diff.image_changes,
        [ImageChange {
            service: "app".into(),
            from: "potluck-test/busybox:2".into(),
            to: "potluck-test/busybox:2.1".into(),
            major: false
        }]
    );
    assert!(
        d.diff.env_added.iter().any(|v| v.key == "EXTRA" && v.default.is_none() && !v.in_sample),
        "{:?}",
        d.diff.env_added
    );
    assert!(d.diff.risks.iter().any(|r| r.contains("EXTRA is new and has no default")), "{:?}", d.diff.risks);
    assert!(d.diff.errors.is_empty(), "{:?}", d.diff.errors);
    assert!(d.is_proposer && d.can_review);

    // The same version cannot be proposed twice; a maintainer withdraws and reopens with a version.
    let twice = open(&w.alice, &[("notes", "again"), ("version", "1.1.0+2.0")]).await.unwrap_err();
    assert_eq!(twice.status, 409, "{}", twice.body);
    assert!(twice.body.contains(&format!("#{id}")) && twice.body.contains("Dave Dunn"), "{}", twice.body);
    w.dave.call::<()>("withdraw_release", &[("id", &id.to_string())]).await.unwrap();
    let d = open(&w.dave, &[("notes", "Busybox 2.1. Set EXTRA before upgrading."), ("version", "1.1.0+2.1")])
        .await
        .unwrap();
    let id = d.summary.id;
    assert_eq!(d.summary.version, "1.1.0+2.1");

    // The proposer's own approval does not count; one collective is not enough.
    let d = review(&w.dave, id, "approve", "").await;
    assert_eq!(d.summary.approvals, 0);
    assert!(!d.reviews[0].counts);
    let d = review(&w.alice, id, "approve", "looks right").await;
    assert_eq!((d.summary.approvals, d.approving_collectives.clone()), (1, vec!["collective-a".to_string()]));
    assert!(!d.summary.approved);
    let d = review(&w.bob_b, id, "request_changes", "EXTRA needs a default").await;
    assert!(d.changes_requested);
    assert_eq!(d.summary.state, "open");

    // A new commit: approvals start over.
    let fixed = changed_compose(&w.work).replace("EXTRA=${EXTRA}", "EXTRA=${EXTRA:-none}");
    let second = push_commit(&w.work, &w.remote, &[("compose.yml", &fixed)], "fix: default for EXTRA");
    w.dave.call::<()>("fetch_recipe", &[("name", "hello")]).await.unwrap();
    let d: ReleaseProposalDetail = w.dave.call("update_release", &[("id", &id.to_string())]).await.unwrap();
    assert_eq!(d.summary.commit, second);
    assert_eq!(d.summary.approvals, 0, "approvals of the old commit do not count");
    assert!(!d.changes_requested);
    assert!(d.diff.env_added.iter().any(|v| v.key == "EXTRA" && v.default.is_some()));
    assert_eq!(remote_tags(&w.remote), ["0.1.0+1.0", "0.2.0+1.1", "1.0.0+2.0"], "nothing is pushed before approval");

    let d = review(&w.alice, id, "approve", "").await;
    assert_eq!(d.summary.state, "open");
    let d = review(&w.bob_b, id, "approve", "thanks").await;
    assert_eq!(d.summary.state, "published", "{:?}", d.summary.publish_error);
    assert_eq!(d.approving_collectives, ["collective-a", "collective-b"]);
    let published = d.published_commit.clone().unwrap();

    // The remote: an annotated tag on a commit whose parent is the reviewed one, on main.
    let repo = Repository::open_bare(&w.remote).unwrap();
    assert_eq!(remote_head(&w.remote), published);
    let tag_ref = repo.find_reference("refs/tags/1.1.0+2.1").unwrap();
    let tag = repo.find_tag(tag_ref.target().unwrap()).expect("an annotated tag");
    assert_eq!(tag.target_id().to_string(), published);
    assert!(tag.message().unwrap().unwrap().contains("Set EXTRA before upgrading"));
    let commit = repo.find_commit(tag.target_id()).unwrap();
    assert_eq!(commit.parent_id(0).unwrap().to_string(), second);
    assert_eq!(commit.author().name().ok(), Some("Bob Berger"), "the maintainer whose approval published it");
    let tree = commit.tree().unwrap();
    let blob = |path: &str| {
        String::from_utf8(
            tree.get_path(Path::new(path))
                .unwrap()
                .to_object(&repo)
                .unwrap()
                .peel_to_blob()
                .unwrap()
                .content()
                .to_vec(),
        )
        .unwrap()
    };
    assert!(blob("compose.yml").contains("coop-cloud.${STACK_NAME}.version=1.1.0+2.1"), "{}", blob("compose.yml"));
    assert_eq!(blob("release/1.1.0+2.1"), "Busybox 2.1. Set EXTRA before upgrading.\n");

    // Potluck's own view follows: the new version is the newest.
    let r: RecipeDetail = w.bob.call("get_recipe", &[("name", "hello")]).await.unwrap();
    assert_eq!(r.versions[0].tag, "1.1.0+2.1");
    assert!(r.versions[0].annotated);

    // Published proposals take no more reviews; every step is audited.
    let e = w
        .alice
        .call::<ReleaseProposalDetail>("review_release", &[("id", &id.to_string()), ("verdict", "approve")])
        .await
        .unwrap_err();
    assert_eq!(e.status, 409);
    let actions = w
        .app
        .texts("SELECT action || ':' || outcome FROM audit_events WHERE action LIKE 'release.%' ORDER BY seq")
        .await;
    for expected in [
        "release.open:success",
        "release.withdraw:success",
        "release.review:success",
        "release.update:success",
        "release.publish:success",
    ] {
        assert!(actions.contains(&expected.to_string()), "{expected} missing from {actions:?}");
    }
    w.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_leave_the_remote_untouched() {
    let w = world().await;
    let tags_before = remote_tags(&w.remote);

    // Who may propose.
    assert_eq!(open(&w.bob, &[("notes", "x")]).await.unwrap_err().status, 403, "viewers do not propose releases");
    assert_eq!(open(&w.app.browser(), &[("notes", "x")]).await.unwrap_err().status, 401);

    // Bad input, each with its reason.
    for (fields, status, says) in [
        (vec![("notes", "  ")], 422, "release notes"),
        (vec![("notes", "x"), ("bump", "huge")], 422, "major, minor or patch"),
        (vec![("notes", "x"), ("version", "banana")], 422, "<semver>+<upstream>"),
        (vec![("notes", "x"), ("version", "0.9.0+1.0")], 422, "not newer"),
        (vec![("notes", "x"), ("version", "1.0.0+2.0")], 409, "already has a tag"),
        (vec![("notes", "x"), ("commit", "deadbeef")], 422, "no commit"),
    ] {
        let e = open(&w.dave, &fields).await.unwrap_err();
        assert_eq!(e.status, status, "{fields:?}: {}", e.body);
        assert!(e.body.contains(says), "{fields:?}: {}", e.body);
    }

    // A tag that someone already pushed by hand.
    let repo = Repository::open(&w.work).unwrap();
    let head = repo.head().unwrap().peel_to_commit().unwrap();
    let sig = git2::Signature::now("Someone", "someone@example.org").unwrap();
    repo.tag("1.0.1+2.0", head.as_object(), &sig, "by hand", false).unwrap();
    repo.remote_anonymous(&w.remote.display().to_string())
        .unwrap()
        .push(&["refs/tags/1.0.1+2.0:refs/tags/1.0.1+2.0"], None)
        .unwrap();
    w.dave.call::<()>("fetch_recipe", &[("name", "hello")]).await.unwrap();
    let e = open(&w.dave, &[("notes", "x"), ("version", "1.0.1+2.0")]).await.unwrap_err();
    assert_eq!(e.status, 409, "{}", e.body);

    // The branch moves on between approval and publishing: the proposal stays open with why.
    let d = open(&w.dave, &[("notes", "A fix."), ("version", "1.0.2+2.0")]).await.unwrap();
    let id = d.summary.id;
    review(&w.alice, id, "approve", "").await;
    let moved = push_commit(&w.work, &w.remote, &[("README.md", "# Hello\n\nmoved on\n")], "docs: unrelated");
    let tags_now = remote_tags(&w.remote);
    let d = review(&w.bob_b, id, "approve", "").await;
    assert_eq!(d.summary.state, "open");
    let error = d.summary.publish_error.clone().unwrap();
    assert!(error.contains("moved on"), "{error}");
    assert_eq!(remote_head(&w.remote), moved);
    assert_eq!(remote_tags(&w.remote), tags_now);

    // The remote refuses the branch update (its ref is locked): nothing half-written.
    w.dave.call::<()>("fetch_recipe", &[("name", "hello")]).await.unwrap();
    let d: ReleaseProposalDetail = w.dave.call("update_release", &[("id", &id.to_string())]).await.unwrap();
    assert_eq!(d.summary.commit, moved);
    review(&w.alice, id, "approve", "").await;
    let lock = w.remote.join("refs/heads/main.lock");
    std::fs::write(&lock, "locked by another push\n").unwrap();
    let d = review(&w.bob_b, id, "approve", "").await;
    std::fs::remove_file(&lock).unwrap();
    assert_eq!(d.summary.state, "open");
    let error = d.summary.publish_error.clone().unwrap_or_default();
    assert!(!error.is_empty());
    assert_eq!(remote_head(&w.remote), moved, "main is where it was");
    assert_eq!(remote_tags(&w.remote), tags_now, "no tag without its branch: {error}");
    let failures =
        w.app.count("SELECT COUNT(*) FROM audit_events WHERE action = 'release.publish' AND outcome = 'failure'").await;
    assert_eq!(failures, 2);

    // Once the remote accepts again, a maintainer publishes the approved proposal.
    let d: ReleaseProposalDetail = w.alice.call("publish_release", &[("id", &id.to_string())]).await.unwrap();
    assert_eq!(d.summary.state, "published", "{:?}", d.summary.publish_error);
    assert!(remote_tags(&w.remote).contains(&"1.0.2+2.0".to_string()));
    assert!(tags_before.len() < remote_tags(&w.remote).len());
    let _ = &w.fed;
    w.app.stop().await;
}

/// A recipe reached over SSH with its own key (the harness's sshd): Potluck clones and fetches
/// with the key, and publishing pushes label commit and annotated tag over SSH. The key is sealed
/// and never shown again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recipe_over_ssh_is_fetched_and_published_with_its_key() {
    let w = world().await;
    let key = std::fs::read_to_string(potluck_tests::required_env("POTLUCK_TEST_SSH_KEY")).unwrap();
    let destination = potluck_tests::required_env("POTLUCK_TEST_SSH");
    let (work, remote) = publish(&fixture_recipe("hello"), w._dir.path(), "sshhello");
    let url = format!("ssh://{destination}{}", remote.display());

    // Without a key the server refuses; nothing is registered.
    let e = w.dave.call::<RecipeSummary>("register_recipe", &[("repository", &url)]).await.unwrap_err();
    assert_eq!(e.status, 422, "{}", e.body);
    assert_eq!(w.app.count("SELECT COUNT(*) FROM recipes WHERE name = 'sshhello'").await, 0);

    let r: RecipeSummary = w
        .dave
        .call(
            "register_recipe",
            &[
                ("repository", &url),
                ("collective", "collective-a"),
                ("credential_kind", "ssh"),
                ("credential_username", "root"),
                ("credential_secret", &key),
            ],
        )
        .await
        .unwrap();
    assert_eq!(r.name, "sshhello");
    assert_eq!(r.latest_version.as_deref(), Some("1.0.0+2.0"));
    let key_line = key.lines().nth(1).unwrap();
    let detail: RecipeDetail = w.dave.call("get_recipe", &[("name", "sshhello")]).await.unwrap();
    assert!(!serde_json::to_string(&detail).unwrap().contains(key_line), "the key is never shown again");
    let audit = w.app.texts("SELECT details FROM audit_events").await.join("\n");
    assert!(!audit.contains(key_line));
    w.dave
        .call::<()>("set_recipe_maintainers", &[("name", "sshhello"), ("collectives", "collective-a,collective-b")])
        .await
        .unwrap();

    let head = push_commit(&work, &remote, &[("compose.yml", &changed_compose(&work))], "feat: busybox 2.1");
    w.dave.call::<()>("fetch_recipe", &[("name", "sshhello")]).await.unwrap();
    let d: ReleaseProposalDetail = w
        .dave
        .call("open_release", &[("recipe", "sshhello"), ("notes", "Over SSH."), ("version", "1.1.0+2.1")])
        .await
        .unwrap();
    assert_eq!(d.summary.commit, head, "the fetch over SSH brought the new commit");
    review(&w.alice, d.summary.id, "approve", "").await;
    let d = review(&w.bob_b, d.summary.id, "approve", "").await;
    assert_eq!(d.summary.state, "published", "{:?}", d.summary.publish_error);
    assert!(remote_tags(&remote).contains(&"1.1.0+2.1".to_string()), "{:?}", remote_tags(&remote));
    assert_eq!(remote_head(&remote), d.published_commit.unwrap());
    w.app.stop().await;
}

/// The bodies a webhook receiver got, as the notification test's receiver records them.
async fn receiver() -> (String, std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>) {
    let got: std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>> = Default::default();
    let g = got.clone();
    let router = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: String| {
            let g = g.clone();
            async move {
                g.lock().unwrap().push(serde_json::from_str(&body).unwrap());
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://127.0.0.1:{}/hook", listener.local_addr().unwrap().port());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (url, got)
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..300 {
        if done() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("{what}: not in 30 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reviewers_hear_of_a_proposal_and_collectives_whose_apps_run_the_recipe_of_its_release() {
    let w = world().await;
    let since = time::OffsetDateTime::now_utc().unix_timestamp() as f64 - 1.0;
    // The federation's relay (the harness's SMTP server, STARTTLS under its CA).
    let smtp = potluck_tests::required_env("POTLUCK_TEST_SMTP");
    let (host, port) = smtp.split_once(':').unwrap();
    let ca = std::fs::read_to_string(format!("{}/ca.pem", potluck_tests::required_env("POTLUCK_TEST_DOCKER_TLS_DIR")))
        .unwrap();
    w.fed
        .call::<MailSettingsView>(
            "set_mail_relay",
            &[
                ("host", host),
                ("port", port),
                ("username", &potluck_tests::required_env("POTLUCK_TEST_SMTP_USER")),
                ("password", &potluck_tests::required_env("POTLUCK_TEST_SMTP_PASSWORD")),
                ("sender", "potluck@example.org"),
                ("ca_pem", &ca),
            ],
        )
        .await
        .unwrap();
    // Who asked to hear of reviews: two who may review, a viewer who may not, the proposer.
    for b in [&w.alice, &w.bob_b, &w.bob, &w.dave] {
        let mine: MyNotifications = b.call("set_my_notifications", &[("review_email", "true")]).await.unwrap();
        assert!(mine.review_email && mine.mail_ready);
    }
    // collective-b maintains the recipe and runs an app of it on an older release.
    let (url, got) = receiver().await;
    w.bob_b
        .call::<AddedChannel>(
            "add_notification_channel",
            &[
                ("slug", "collective-b"),
                ("name", "b hook"),
                ("kind", "webhook"),
                ("target", &url),
                ("events[0]", "review_requested"),
                ("events[1]", "new_release"),
            ],
        )
        .await
        .unwrap();
    w.fed
        .call::<ServerView>(
            "add_server",
            &[
                ("slug", "collective-b"),
                ("name", "b-local"),
                ("kind", "unix"),
                ("address", potluck_tests::swarm::SOCKET),
            ],
        )
        .await
        .unwrap();
    w.fed
        .call::<Vec<AppSummary>>(
            "import_app",
            &[
                ("slug", "collective-b"),
                ("server", "b-local"),
                ("file_name", "old.b.example.org.env"),
                ("content", "TYPE=hello:1.0.0+2.0\nDOMAIN=old.b.example.org\n"),
            ],
        )
        .await
        .unwrap();

    push_commit(&w.work, &w.remote, &[("compose.yml", &changed_compose(&w.work))], "feat: busybox 2.1");
    w.dave.call::<()>("fetch_recipe", &[("name", "hello")]).await.unwrap();
    let d = open(&w.dave, &[("notes", "Busybox 2.1."), ("version", "1.1.0+2.1")]).await.unwrap();
    let id = d.summary.id;

    // Reviewers by email (not the viewer, not the proposer), the maintaining collective's channel.
    for address in ["alice@a.test", "bob@b.test"] {
        wait_until(address, || !potluck_tests::mail_to(address, since).is_empty()).await;
        let mail = &potluck_tests::mail_to(address, since)[0];
        let data = mail["data"].as_str().unwrap();
        assert!(data.contains("Subject: [Potluck] hello 1.1.0+2.1 awaits your review"), "{data}");
        assert!(data.contains(&format!("/releases/{id}")), "{data}");
    }
    wait_until("the review request on the channel", || !got.lock().unwrap().is_empty()).await;
    let first = got.lock().unwrap()[0].clone();
    assert_eq!(first["name"], "review_requested");
    assert_eq!(first["data"]["proposal_id"], id.0);
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    assert!(potluck_tests::mail_to("bob@a.test", since).is_empty(), "a viewer cannot review: no email");
    assert!(potluck_tests::mail_to("dave@a.test", since).is_empty(), "the proposer is not asked to review");

    // Published: collective-b's apps run an older release, so its channel hears of it.
    review(&w.alice, id, "approve", "").await;
    let d = review(&w.bob_b, id, "approve", "").await;
    assert_eq!(d.summary.state, "published", "{:?}", d.summary.publish_error);
    wait_until("the release on the channel", || got.lock().unwrap().len() >= 2).await;
    let release = got.lock().unwrap()[1].clone();
    assert_eq!(release["name"], "new_release");
    assert_eq!(release["data"]["version"], "1.1.0+2.1");
    assert_eq!(release["data"]["apps"][0], "old.b.example.org (1.0.0+2.0)");

    // A release pushed to the remote with git (not through Potluck) is seen at the next fetch,
    // and announced once however often it is fetched.
    potluck_tests::recipes::release(&w.work, &w.remote, &[], "1.2.0+2.1");
    w.dave.call::<()>("fetch_recipe", &[("name", "hello")]).await.unwrap();
    w.dave.call::<()>("fetch_recipe", &[("name", "hello")]).await.unwrap();
    wait_until("the pushed release on the channel", || got.lock().unwrap().len() >= 3).await;
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let all = got.lock().unwrap().clone();
    assert_eq!(all.len(), 3, "{all:?}");
    assert_eq!(all[2]["data"]["version"], "1.2.0+2.1");
    w.app.stop().await;
}
