//! Operator sync through git, against real remotes: a bare repository on this machine and the
//! same over the harness's sshd (where `git-receive-pack` runs hooks, so a push can lose a race).
//! Potluck's changes arrive as commits by the people who made them; what an abra user pushes with
//! the git CLI arrives as an incoming change to apply or reject; a file changed on both sides is a
//! conflict that loses neither.

use potluck_app::model::*;
use potluck_tests::recipes::{fixture_recipe, publish};
use potluck_tests::{swarm, Browser, TestApp};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const SLUG: &str = "collective-a";
const ONE: &str = "servers/local/one.a.example.org.env";
const TWO: &str = "servers/local/two.a.example.org.env";

struct World {
    app: TestApp,
    admin: Browser,
    dir: tempfile::TempDir,
    remote: PathBuf,
}

/// collective-a with a server `local`, the fixture recipe `hello`, two apps, and a bare remote
/// an abra user already keeps the collective's notes in (a README on `main`).
async fn world() -> World {
    world_with(TestApp::spawn().await).await
}

async fn world_with(app: TestApp) -> World {
    let admin = app.bootstrap_admin().await;
    admin
        .call::<CollectiveSummary>("create_collective", &[("slug", SLUG), ("name", "A"), ("description", "")])
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
    let (_, recipe) = publish(&fixture_recipe("hello"), dir.path(), "hello");
    admin.call::<RecipeSummary>("register_recipe", &[("repository", &recipe.display().to_string())]).await.unwrap();
    for domain in ["one.a.example.org", "two.a.example.org"] {
        admin
            .call::<AppSummary>(
                "create_app",
                &[
                    ("slug", SLUG),
                    ("server", "local"),
                    ("recipe", "hello"),
                    ("domain", domain),
                    ("version", "0.1.0+1.0"),
                ],
            )
            .await
            .unwrap();
    }
    let remote = dir.path().join("ops.git");
    git(dir.path(), &["init", "-q", "--bare", "-b", "main", remote.to_str().unwrap()]);
    let laptop = clone(dir.path(), &remote, "seed");
    std::fs::write(laptop.join("README.md"), "Our servers, as abra sees them.\n").unwrap();
    git(&laptop, &["add", "-A"]);
    git(&laptop, &["commit", "-q", "-m", "notes"]);
    git(&laptop, &["push", "-q", "origin", "main"]);
    World { app, admin, dir, remote }
}

/// Runs the git CLI as an abra user on a laptop would (Lu, with her own name and address).
fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "Laptop Lu")
        .env("GIT_AUTHOR_EMAIL", "lu@example.org")
        .env("GIT_COMMITTER_NAME", "Laptop Lu")
        .env("GIT_COMMITTER_EMAIL", "lu@example.org")
        .env("GIT_SSH_COMMAND", ssh_command())
        .output()
        .expect("git");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim_end().to_string()
}

fn ssh_command() -> String {
    match std::env::var("POTLUCK_TEST_SSH_KEY") {
        Ok(key) => format!("ssh -i {key} -o IdentitiesOnly=yes -o BatchMode=yes"),
        Err(_) => "ssh".into(),
    }
}

fn clone(dir: &Path, remote: &Path, name: &str) -> PathBuf {
    let work = dir.join(name);
    git(dir, &["clone", "-q", remote.to_str().unwrap(), work.to_str().unwrap()]);
    work
}

/// The remote's `main`: a file's content, or `None`.
fn remote_file(remote: &Path, path: &str) -> Option<String> {
    let out = Command::new("git")
        .args(["--git-dir", remote.to_str().unwrap(), "show", &format!("main:{path}")])
        .output()
        .unwrap();
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn remote_log(remote: &Path, format: &str) -> String {
    git(remote, &["log", &format!("--format={format}"), "main"])
}

async fn wait_for<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    for _ in 0..300 {
        if let Some(t) = check().await {
            return t;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what}: not within 30 s");
}

async fn env_of(b: &Browser, domain: &str) -> String {
    b.call("export_app", &[("slug", SLUG), ("domain", domain)]).await.unwrap()
}

async fn detail(b: &Browser, domain: &str) -> AppDetail {
    b.call("get_app", &[("slug", SLUG), ("domain", domain)]).await.unwrap()
}

async fn sync_view(b: &Browser) -> SyncView {
    b.call("get_sync", &[("slug", SLUG)]).await.unwrap()
}

/// Signs a webhook body as GitHub, Gitea and Forgejo do.
fn signature(secret: &str, body: &[u8]) -> String {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn potluck_commits_each_change_and_an_abra_users_push_arrives_to_apply_or_reject() {
    let w = world().await;
    let b = &w.admin;
    let url = w.remote.display().to_string();
    let set: SyncConfigured = b.call("set_sync", &[("slug", SLUG), ("url", &url), ("branch", "main")]).await.unwrap();
    let secret = set.webhook_secret.expect("the webhook's secret, shown once").0;
    let again: SyncConfigured = b
        .call("set_sync", &[("slug", SLUG), ("url", &url), ("branch", "main"), ("auto_apply", "false")])
        .await
        .unwrap();
    assert!(again.webhook_secret.is_none(), "the secret is shown once");
    assert!(!w.app.texts("SELECT details FROM audit_events").await.join("\n").contains(&secret));

    // The first sync writes the apps, byte for byte what export_app gives, on top of the notes.
    let one = env_of(b, "one.a.example.org").await;
    let two = env_of(b, "two.a.example.org").await;
    wait_for("the first push", async || remote_file(&w.remote, TWO)).await;
    assert_eq!(remote_file(&w.remote, ONE).as_deref(), Some(one.as_str()));
    assert_eq!(remote_file(&w.remote, TWO).as_deref(), Some(two.as_str()));
    assert_eq!(remote_file(&w.remote, "README.md").as_deref(), Some("Our servers, as abra sees them.\n"));
    let v = wait_for("every file in sync", async || {
        let v = sync_view(b).await;
        v.files.iter().all(|f| f.state == "synced").then_some(v)
    })
    .await;
    assert_eq!(v.files.len(), 2);

    // An env edit in Potluck is a commit by who made it, naming the action and its audit event.
    let edited = format!("{one}GREETING=from-potluck\n");
    b.call::<()>("set_app_env", &[("slug", SLUG), ("domain", "one.a.example.org"), ("env", &edited)]).await.unwrap();
    wait_for("the edit pushed", async || (remote_file(&w.remote, ONE)? == edited).then_some(())).await;
    let seq = w.app.count("SELECT MAX(seq) FROM audit_events WHERE action = 'app.env.update'").await;
    let admin_name = w.app.texts("SELECT display_name FROM users").await.remove(0);
    let head = remote_log(&w.remote, "%an|%B");
    let newest = head.split("\n\n\n").next().unwrap_or(&head);
    assert!(newest.starts_with(&format!("{admin_name}|app.env.update one.a.example.org on local")), "{head}");
    assert!(newest.contains(&format!("Potluck-Audit-Event: {seq}")), "{head}");

    // Lu changes two on her laptop and pushes; the remote calls the webhook.
    let laptop = clone(w.dir.path(), &w.remote, "laptop");
    let from_laptop = format!("{two}GREETING=from-laptop\n");
    std::fs::write(laptop.join(TWO), &from_laptop).unwrap();
    git(&laptop, &["commit", "-q", "-am", "two: greet from the laptop"]);
    git(&laptop, &["push", "-q", "origin", "main"]);
    let lu_commit = git(&laptop, &["rev-parse", "HEAD"]);
    let hook = format!("{}/hooks/git/{SLUG}", w.app.base);
    let body = br#"{"ref":"refs/heads/main"}"#;
    let http = reqwest::Client::new();
    let refused =
        http.post(&hook).header("X-Hub-Signature-256", signature("guess", body)).body(&body[..]).send().await.unwrap();
    assert_eq!(refused.status(), 401, "a wrong signature asks for nothing");
    let unknown = http
        .post(format!("{}/hooks/git/nobody", w.app.base))
        .header("X-Hub-Signature-256", signature(&secret, body))
        .body(&body[..])
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 401, "nor does an unknown collective, alike");
    let accepted =
        http.post(&hook).header("X-Hub-Signature-256", signature(&secret, body)).body(&body[..]).send().await.unwrap();
    assert_eq!(accepted.status(), 202);

    // Two's page shows the change waiting: who, which commit, the diff. The app is unchanged.
    let d = wait_for("the incoming change", async || {
        let d = detail(b, "two.a.example.org").await;
        (!d.incoming.is_empty()).then_some(d)
    })
    .await;
    let change = &d.incoming[0];
    assert_eq!((change.kind.as_str(), change.path.as_str()), ("change", TWO));
    assert_eq!(change.author, "Laptop Lu <lu@example.org>");
    assert_eq!(change.commit, lu_commit);
    assert_eq!(change.summary, "two: greet from the laptop");
    assert!(change.diff.iter().any(|l| l.tag == "+" && l.text == "GREETING=from-laptop"), "{:?}", change.diff);
    assert_eq!(env_of(b, "two.a.example.org").await, two, "nothing applied before an operator says so");
    let page = b.get(&format!("/c/{SLUG}/apps/two.a.example.org")).await.text().await.unwrap();
    assert!(page.contains("Waiting in git") && page.contains("GREETING=from-laptop"), "the page reads without scripts");
    let sync_page = b.get(&format!("/c/{SLUG}/sync")).await.text().await.unwrap();
    assert!(sync_page.contains("sync-file sync-incoming"), "the picture marks the file");

    // Applied: the env is Lu's file, byte for byte; both sides agree without another commit.
    b.call::<()>("apply_incoming", &[("slug", SLUG), ("id", &change.id.to_string())]).await.unwrap();
    assert_eq!(env_of(b, "two.a.example.org").await, from_laptop);
    let again = b.call::<()>("apply_incoming", &[("slug", SLUG), ("id", &change.id.to_string())]).await.unwrap_err();
    assert_eq!(again.status, 409, "decided once");
    wait_for("two in sync", async || {
        let v = sync_view(b).await;
        v.files.iter().all(|f| f.state == "synced").then_some(())
    })
    .await;
    assert_eq!(git(&w.remote, &["rev-parse", "main"]), lu_commit, "nothing to push after applying");

    // Both sides change one: Lu pushes first (no webhook), then an operator edits in Potluck.
    let theirs = format!("{edited}COLOUR=laptop-blue\n");
    git(&laptop, &["pull", "-q", "--ff-only"]);
    std::fs::write(laptop.join(ONE), &theirs).unwrap();
    git(&laptop, &["commit", "-q", "-am", "one: blue"]);
    git(&laptop, &["push", "-q", "origin", "main"]);
    let ours = format!("{edited}COLOUR=potluck-green\n");
    b.call::<()>("set_app_env", &[("slug", SLUG), ("domain", "one.a.example.org"), ("env", &ours)]).await.unwrap();
    let d = wait_for("the conflict", async || {
        let d = detail(b, "one.a.example.org").await;
        (!d.incoming.is_empty()).then_some(d)
    })
    .await;
    let conflict = &d.incoming[0];
    assert_eq!(conflict.kind, "conflict");
    assert!(conflict.diff.iter().any(|l| l.tag == "-" && l.text == "COLOUR=potluck-green"));
    assert!(conflict.diff.iter().any(|l| l.tag == "+" && l.text == "COLOUR=laptop-blue"));
    // Neither side is lost: Potluck keeps its edit, the remote Lu's, and nothing is pushed over it.
    assert_eq!(env_of(b, "one.a.example.org").await, ours);
    assert_eq!(remote_file(&w.remote, ONE).as_deref(), Some(theirs.as_str()));
    let v = sync_view(b).await;
    assert_eq!(v.files.iter().find(|f| f.path == ONE).map(|f| f.state.as_str()), Some("conflict"));

    // Keeping Potluck's pushes it on top, attributed to who decided; Lu's commit stays in history.
    let lu_blue = git(&laptop, &["rev-parse", "HEAD"]);
    b.call::<()>("reject_incoming", &[("slug", SLUG), ("id", &conflict.id.to_string())]).await.unwrap();
    wait_for("Potluck's kept", async || (remote_file(&w.remote, ONE)? == ours).then_some(())).await;
    let log = remote_log(&w.remote, "%H %an %s");
    assert!(
        log.lines().next().unwrap().contains(&format!("{admin_name} sync.incoming.reject one.a.example.org on local")),
        "{log}"
    );
    assert!(log.contains(&lu_blue), "Lu's commit is in the history: {log}");
    assert!(detail(b, "one.a.example.org").await.incoming.is_empty());

    // A new app from the laptop imports on apply; a removed file deletes the (undeployed) app.
    git(&laptop, &["pull", "-q", "--ff-only"]);
    let new_app = "servers/local/three.a.example.org.env";
    std::fs::write(laptop.join(new_app), two.replace("two.a.example.org", "three.a.example.org")).unwrap();
    std::fs::remove_file(laptop.join(TWO)).unwrap();
    // And a file whose name and DOMAIN disagree: refused, then rejected (removed from git).
    let misnamed = "servers/local/four.a.example.org.env";
    std::fs::write(laptop.join(misnamed), two.replace("two.a.example.org", "five.a.example.org")).unwrap();
    git(&laptop, &["add", "-A"]);
    git(&laptop, &["commit", "-q", "-m", "three in, two out"]);
    git(&laptop, &["push", "-q", "origin", "main"]);
    let v: SyncView = b.call("sync_now", &[("slug", SLUG)]).await.unwrap();
    let kinds: Vec<(&str, &str)> = v.incoming.iter().map(|c| (c.path.as_str(), c.kind.as_str())).collect();
    assert_eq!(kinds, [(misnamed, "new"), (new_app, "new"), (TWO, "removed")]);
    // All at once: what can be applied is, the misnamed file is refused with why and waits.
    let all: AppliedChanges = b.call("apply_all_incoming", &[("slug", SLUG)]).await.unwrap();
    assert_eq!(all.applied, [TWO, new_app], "removals first");
    assert_eq!(all.refused.len(), 1);
    assert_eq!(all.refused[0].path, misnamed);
    assert!(all.refused[0].reason.contains("DOMAIN is five.a.example.org"), "{:?}", all.refused);
    let e = b.call::<()>("apply_incoming", &[("slug", SLUG), ("id", &v.incoming[0].id.to_string())]).await.unwrap_err();
    assert_eq!(e.status, 422, "{}", e.body);
    b.call::<()>("reject_incoming", &[("slug", SLUG), ("id", &v.incoming[0].id.to_string())]).await.unwrap();
    let apps: Vec<AppSummary> = b.call("list_apps", &[("slug", SLUG)]).await.unwrap();
    let domains: Vec<&str> = apps.iter().map(|a| a.domain.as_str()).collect();
    assert_eq!(domains, ["one.a.example.org", "three.a.example.org"]);
    let v: SyncView = b.call("sync_now", &[("slug", SLUG)]).await.unwrap();
    assert!(v.incoming.is_empty() && v.files.iter().all(|f| f.state == "synced"), "{:?}", v.files);
    assert_eq!(remote_file(&w.remote, misnamed), None, "the rejected file is removed from git");
    let decided = w.app.count("SELECT COUNT(*) FROM audit_events WHERE action LIKE 'sync.incoming.%'").await;
    assert_eq!(decided, 5, "each decision is audited");

    // A deploy writes the version it deploys into the env's TYPE line: a commit by who deployed.
    let domain = format!("sync-{}.example.org", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let path = format!("servers/local/{domain}.env");
    let _guard = swarm::StackGuard(domain.replace('.', "_"));
    b.call::<AppSummary>(
        "create_app",
        &[("slug", SLUG), ("server", "local"), ("recipe", "hello"), ("domain", &domain), ("version", "0.1.0+1.0")],
    )
    .await
    .unwrap();
    b.call::<Vec<GeneratedSecret>>("generate_secrets", &[("slug", SLUG), ("domain", &domain)]).await.unwrap();
    let job: JobSummary = b
        .call("start_job", &[("slug", SLUG), ("domain", &domain), ("kind", "deploy"), ("target", "0.2.0+1.1")])
        .await
        .unwrap();
    let (_, state, result) = b.watch_job(job.id).await;
    assert_eq!(state, "succeeded", "{result}");
    let deployed = wait_for("the deploy's commit", async || {
        remote_file(&w.remote, &path).filter(|f| f.contains("TYPE=hello:0.2.0+1.1"))
    })
    .await;
    assert_eq!(deployed, env_of(b, &domain).await);
    let log = git(&w.remote, &["log", "-1", "--format=%an %s", "main", "--", &path]);
    assert!(log.starts_with(&admin_name) && log.contains("app.deploy") && log.contains(&domain), "{log}");
    let job: JobSummary = b
        .call(
            "start_job",
            &[
                ("slug", SLUG),
                ("domain", &domain),
                ("kind", "undeploy"),
                ("options[remove_volumes]", "true"),
                ("options[remove_secrets]", "true"),
            ],
        )
        .await
        .unwrap();
    b.watch_job(job.id).await;
    // Deleting the app removes its file, in a commit of its own.
    b.call::<()>("delete_app", &[("slug", SLUG), ("domain", &domain)]).await.unwrap();
    wait_for("the file removed", async || remote_file(&w.remote, &path).is_none().then_some(())).await;
    let log = git(&w.remote, &["log", "-1", "--format=%an %s", "main"]);
    assert!(log.contains("app.delete") && log.contains(&domain), "{log}");
    w.app.stop().await;
}

/// Over SSH with the collective's own key: the remote's pre-receive hook lets a laptop push
/// first, so Potluck's push is refused; Potluck fetches, puts its commit on top of the laptop's
/// (a file it did not touch) and pushes again, never forcing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_push_over_ssh_is_fetched_and_rebased_onto_what_won_the_race() {
    let w = world().await;
    let b = &w.admin;
    let key = std::fs::read_to_string(potluck_tests::required_env("POTLUCK_TEST_SSH_KEY")).unwrap();
    let destination = potluck_tests::required_env("POTLUCK_TEST_SSH");
    let hook = w.remote.join("hooks/pre-receive");
    std::fs::write(&hook, RACE_HOOK).unwrap();
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let url = format!("ssh://{destination}{}", w.remote.display());

    // Without the key, the remote refuses and nothing is kept.
    let e = b.call::<SyncConfigured>("set_sync", &[("slug", SLUG), ("url", &url)]).await.unwrap_err();
    assert_eq!(e.status, 422, "{}", e.body);
    assert!(!sync_view(b).await.configured);

    let secret = b
        .call::<SyncConfigured>(
            "set_sync",
            &[
                ("slug", SLUG),
                ("url", &url),
                ("credential_kind", "ssh"),
                ("credential_username", "root"),
                ("credential_secret", &key),
            ],
        )
        .await
        .unwrap()
        .webhook_secret
        .unwrap()
        .0;
    let key_line = key.lines().nth(1).unwrap();
    assert!(!serde_json::to_string(&sync_view(b).await).unwrap().contains(key_line), "the key is never shown");
    // The kept key goes to no other remote (here the same sshd, which would take it).
    let elsewhere = w.dir.path().join("elsewhere.git");
    git(w.dir.path(), &["init", "-q", "--bare", "-b", "main", elsewhere.to_str().unwrap()]);
    let moved = format!("ssh://{destination}{}", elsewhere.display());
    let e = b.call::<SyncConfigured>("set_sync", &[("slug", SLUG), ("url", &moved)]).await.unwrap_err();
    assert_eq!(e.status, 422, "{}", e.body);
    assert!(e.body.contains("give the credential again"), "{}", e.body);
    assert_eq!(sync_view(b).await.url, url);

    // The first push lost the race to the hook's laptop commit, and went on top of it.
    wait_for("the push after the race", async || remote_file(&w.remote, ONE)).await;
    assert!(w.remote.join("raced").exists(), "the hook refused a push");
    let log = remote_log(&w.remote, "%an %s");
    let authors: Vec<&str> = log.lines().collect();
    assert_eq!(authors.len(), 3, "{log}");
    assert!(authors[0].starts_with("Potluck The collective's apps as Potluck has them"), "{log}");
    assert_eq!(authors[1], "Racer laptop: a new app");
    assert!(remote_file(&w.remote, TWO).is_some());
    // The racer's new app waits as incoming; nothing was forced over it.
    let v = wait_for("the racer's app", async || {
        let v = sync_view(b).await;
        (!v.incoming.is_empty()).then_some(v)
    })
    .await;
    assert_eq!(v.incoming[0].path, "servers/local/laptop.example.org.env");
    assert_eq!(v.incoming[0].kind, "new");
    assert_eq!(v.incoming[0].author, "Racer <racer@example.org>");
    assert!(v.last_error.is_none(), "{:?}", v.last_error);
    b.call::<()>("apply_incoming", &[("slug", SLUG), ("id", &v.incoming[0].id.to_string())]).await.unwrap();
    assert_eq!(detail(b, "laptop.example.org").await.app.domain, "laptop.example.org", "imported");

    // With auto-apply, a laptop's env change (pushed over SSH, announced by a Gitea-signed
    // webhook) is applied as it arrives, by the sync, and audited as such.
    let set: SyncConfigured =
        b.call("set_sync", &[("slug", SLUG), ("url", &url), ("auto_apply", "true")]).await.unwrap();
    assert!(set.sync.auto_apply && set.sync.credential_kind.as_deref() == Some("ssh"), "the key is kept");
    let laptop = clone(w.dir.path(), Path::new(&url), "laptop");
    let blue = format!("{}COLOUR=blue\n", env_of(b, "one.a.example.org").await);
    std::fs::write(laptop.join(ONE), &blue).unwrap();
    git(&laptop, &["commit", "-q", "-am", "one: blue"]);
    git(&laptop, &["push", "-q", "origin", "main"]);
    let body = br#"{"ref":"refs/heads/main"}"#;
    let hook = reqwest::Client::new()
        .post(format!("{}/hooks/git/{SLUG}", w.app.base))
        .header("X-Gitea-Signature", signature(&secret, body).trim_start_matches("sha256="))
        .body(&body[..])
        .send()
        .await
        .unwrap();
    assert_eq!(hook.status(), 202);
    wait_for("the change applied", async || (env_of(b, "one.a.example.org").await == blue).then_some(())).await;
    let by = w.app.texts("SELECT actor_name FROM audit_events WHERE action = 'sync.incoming.apply' ORDER BY seq").await;
    assert_eq!(by.last().map(String::as_str), Some("git sync (auto-apply)"));
    w.app.stop().await;
}

/// Applying a change replaces exactly the file Potluck had when it arrived: after an edit in
/// Potluck, applying it is refused (the edit is kept), and the next sync shows both as a
/// conflict. (No background worker here: each sync is the operator's "sync now".)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn applying_a_change_never_loses_an_edit_made_in_potluck_after_it_arrived() {
    let w = world_with(TestApp::spawn_with(|c| c.background = false).await).await;
    let b = &w.admin;
    let url = w.remote.display().to_string();
    b.call::<SyncConfigured>("set_sync", &[("slug", SLUG), ("url", &url)]).await.unwrap();
    let v: SyncView = b.call("sync_now", &[("slug", SLUG)]).await.unwrap();
    assert!(v.files.iter().all(|f| f.state == "synced"), "{:?}", v.files);
    let two = env_of(b, "two.a.example.org").await;

    let laptop = clone(w.dir.path(), &w.remote, "laptop");
    std::fs::write(laptop.join(TWO), format!("{two}FROM=laptop\n")).unwrap();
    git(&laptop, &["commit", "-q", "-am", "two: laptop"]);
    git(&laptop, &["push", "-q", "origin", "main"]);
    let v: SyncView = b.call("sync_now", &[("slug", SLUG)]).await.unwrap();
    let change = v.incoming.iter().find(|c| c.path == TWO).expect("the laptop's change").clone();
    assert_eq!(change.kind, "change");

    let ours = format!("{two}FROM=potluck\n");
    b.call::<()>("set_app_env", &[("slug", SLUG), ("domain", "two.a.example.org"), ("env", &ours)]).await.unwrap();
    let e = b.call::<()>("apply_incoming", &[("slug", SLUG), ("id", &change.id.to_string())]).await.unwrap_err();
    assert_eq!(e.status, 409, "{}", e.body);
    assert!(e.body.contains("changed in Potluck since"), "{}", e.body);
    assert_eq!(env_of(b, "two.a.example.org").await, ours, "the edit made in Potluck is kept");

    let v: SyncView = b.call("sync_now", &[("slug", SLUG)]).await.unwrap();
    let kinds: Vec<(&str, &str)> = v.incoming.iter().map(|c| (c.path.as_str(), c.kind.as_str())).collect();
    assert_eq!(kinds, [(TWO, "conflict")]);
    assert_eq!(remote_file(&w.remote, TWO), Some(format!("{two}FROM=laptop\n")), "the laptop's side is kept");
    w.app.stop().await;
}

/// Changing the remote while a sync of the old one is still pushing: that sync's findings are
/// not recorded into the new remote's (which would take Potluck's own apps for removed ones);
/// the new remote gets the apps.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_that_began_before_the_remote_changed_records_nothing_into_the_new_one() {
    let w = world().await;
    let b = &w.admin;
    let key = std::fs::read_to_string(potluck_tests::required_env("POTLUCK_TEST_SSH_KEY")).unwrap();
    let destination = potluck_tests::required_env("POTLUCK_TEST_SSH");
    let hook = w.remote.join("hooks/pre-receive");
    std::fs::write(&hook, "#!/bin/sh\ntouch \"$GIT_DIR/pushing\"\nsleep 4\n").unwrap();
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let old = format!("ssh://{destination}{}", w.remote.display());
    b.call::<SyncConfigured>(
        "set_sync",
        &[
            ("slug", SLUG),
            ("url", &old),
            ("credential_kind", "ssh"),
            ("credential_username", "root"),
            ("credential_secret", &key),
        ],
    )
    .await
    .unwrap();
    wait_for("the old remote's push under way", async || w.remote.join("pushing").exists().then_some(())).await;

    let new = w.dir.path().join("new.git");
    git(w.dir.path(), &["init", "-q", "--bare", "-b", "main", new.to_str().unwrap()]);
    let url = new.display().to_string();
    b.call::<SyncConfigured>("set_sync", &[("slug", SLUG), ("url", &url), ("credential_kind", "none")]).await.unwrap();
    wait_for("the new remote's apps", async || remote_file(&new, TWO)).await;
    let v = wait_for("every file in sync", async || {
        let v = sync_view(b).await;
        v.files.iter().all(|f| f.state == "synced").then_some(v)
    })
    .await;
    assert!(v.incoming.is_empty(), "nothing of the old remote's sync: {:?}", v.incoming);
    assert_eq!(remote_file(&new, ONE), Some(env_of(b, "one.a.example.org").await));
    w.app.stop().await;
}

/// A pre-receive hook that lets "a laptop" win the first push: it commits a new app file on
/// `main` itself (outside the push's quarantine) and refuses the push.
const RACE_HOOK: &str = r#"#!/bin/sh
[ -e "$GIT_DIR/raced" ] && exit 0
touch "$GIT_DIR/raced"
unset GIT_QUARANTINE_PATH GIT_OBJECT_DIRECTORY GIT_ALTERNATE_OBJECT_DIRECTORIES
parent=$(git rev-parse refs/heads/main)
blob=$(printf 'TYPE=hello:0.1.0+1.0\nDOMAIN=laptop.example.org\n' | git hash-object -w --stdin)
export GIT_INDEX_FILE="$GIT_DIR/race-index"
git read-tree "$parent"
git update-index --add --cacheinfo 100644,"$blob",servers/local/laptop.example.org.env
tree=$(git write-tree)
commit=$(GIT_AUTHOR_NAME=Racer GIT_AUTHOR_EMAIL=racer@example.org GIT_COMMITTER_NAME=Racer GIT_COMMITTER_EMAIL=racer@example.org git commit-tree "$tree" -p "$parent" -m "laptop: a new app")
git update-ref refs/heads/main "$commit" "$parent"
echo "someone pushed first" >&2
exit 1
"#;
