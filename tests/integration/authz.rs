//! The authorization matrix, generated from the operation registry: every registered operation
//! (reads, writes and the streaming endpoints) × {anonymous, an API token with a lower role,
//! a member of another collective, viewer, maintainer, operator, admin, federation admin}, and
//! each operation that names an object again with another collective's object in its place.
//! What each caller should get is derived from the operation's declaration (scope, need,
//! sessions only) and the one role table; refusals must change nothing and write no audit
//! event; the allowed call must do what it says and write only the audit actions it declares.
//! A registered operation without a row here fails the suite.

use potluck_app::error::ApiError;
use potluck_app::model::*;
use potluck_app::ops::{Need, OpInfo};
use potluck_tests::recipes::{fixture_recipe, over_ssh, publish};
use potluck_tests::{required_env, swarm, Browser, Idp, TestApp};
use std::collections::BTreeSet;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Anonymous,
    /// collective-a's admin's API token, made with the viewer role.
    Token,
    /// An admin of collective-b only.
    Foreign,
    Viewer,
    Maintainer,
    Operator,
    Admin,
    FederationAdmin,
}

/// From the least to the most privileged: the first allowed caller is the one whose call must
/// succeed.
const EVERYONE: [Who; 8] = [
    Who::Anonymous,
    Who::Token,
    Who::Foreign,
    Who::Viewer,
    Who::Maintainer,
    Who::Operator,
    Who::Admin,
    Who::FederationAdmin,
];

const A: &str = "collective-a";
const B: &str = "collective-b";

/// The role a caller acts with in collective-a.
fn role_in_a(who: Who) -> Option<Role> {
    match who {
        Who::Token | Who::Viewer => Some(Role::Viewer),
        Who::Maintainer => Some(Role::Maintainer),
        Who::Operator => Some(Role::Operator),
        Who::Admin | Who::FederationAdmin => Some(Role::Admin),
        Who::Anonymous | Who::Foreign => None,
    }
}

/// The highest role a caller acts with anywhere (a token: in its collective only).
fn best_role(who: Who) -> Option<Role> {
    match who {
        Who::Foreign => Some(Role::Admin),
        other => role_in_a(other),
    }
}

/// What the declaration says `who` gets: `None` when allowed, else (status, error variant).
/// Recipe scopes act on `hello`, which collective-a maintains (with the federation admin who
/// registered it).
fn expected(info: &OpInfo, who: Who) -> Option<(u16, &'static str)> {
    let forbidden = Some((403, "forbidden"));
    if info.scope == "public" {
        return None;
    }
    if who == Who::Anonymous {
        return Some((401, "unauthenticated"));
    }
    if who == Who::Token && info.session_only {
        return forbidden;
    }
    if who == Who::FederationAdmin {
        return None;
    }
    if info.scope == "federation" || info.need == Need::FederationAdmin {
        return forbidden;
    }
    match (info.scope, info.need) {
        ("signed_in", Need::Anywhere(p)) => best_role(who).filter(|r| r.grants(p)).map_or(forbidden, |_| None),
        ("signed_in", _) => None,
        ("recipe" | "proposal", Need::SeeRecipe) => None,
        ("recipe" | "proposal", Need::MaintainRecipe | Need::ReviewRelease) => {
            role_in_a(who).filter(|r| r.grants(Permission::MaintainRecipes)).map_or(forbidden, |_| None)
        }
        // Collective scopes: another collective's member is told it does not exist.
        (_, Need::Permission(p)) => match role_in_a(who) {
            None => Some((404, "not_found")),
            Some(r) if r.grants(p) => None,
            Some(_) => forbidden,
        },
        (_, need) => panic!("{}: no expectation for scope {} with {need:?}", info.name, info.scope),
    }
}

fn variant(e: &ApiError) -> &'static str {
    match e {
        ApiError::Unauthenticated => "unauthenticated",
        ApiError::Forbidden { .. } => "forbidden",
        ApiError::NotFound { .. } => "not_found",
        ApiError::Conflict { .. } => "conflict",
        ApiError::Validation { .. } => "validation",
        _ => "other",
    }
}

struct World {
    app: TestApp,
    browsers: Vec<(Who, Browser, String)>,
    /// collective-a's admin's viewer token.
    token: String,
    provider_a: potluck_app::model::ProviderId,
    provider_b: potluck_app::model::ProviderId,
    grace: potluck_app::model::UserId,
    zoe: potluck_app::model::UserId,
    invitation: potluck_app::model::InvitationId,
    invitation_b: potluck_app::model::InvitationId,
    accept_link: String,
    mapping: potluck_app::model::MappingId,
    mapping_b: potluck_app::model::MappingId,
    spare_client: (String, String),
    app_env: String,
    /// collective-a's deployed app (unique: the suites share one swarm).
    a_domain: String,
    b_domain: String,
    job_a: potluck_app::model::JobId,
    job_b: potluck_app::model::JobId,
    proposal: potluck_app::model::ProposalId,
    private_proposal: potluck_app::model::ProposalId,
    erin_token: potluck_app::model::TokenId,
    alice_token_to_revoke: potluck_app::model::TokenId,
    host_fingerprint: String,
    /// Each collective's email channel.
    channel_a: potluck_app::model::ChannelId,
    channel_b: potluck_app::model::ChannelId,
    /// A change waiting from each collective's git remote (to a's app; to b's).
    incoming_a: IncomingId,
    incoming_b: IncomingId,
    stack: String,
    dir: tempfile::TempDir,
    /// Every test of the matrix deploys the stack: it goes when the world does, pass or fail.
    _cleanup: swarm::StackGuard,
}

impl World {
    fn browser(&self, who: Who) -> &Browser {
        &self.browsers.iter().find(|(w, _, _)| *w == who).unwrap().1
    }

    fn name(&self, who: Who) -> &str {
        &self.browsers.iter().find(|(w, _, _)| *w == who).unwrap().2
    }
}

async fn me(b: &Browser) -> Me {
    b.call::<Option<Me>>("me", &[]).await.unwrap().unwrap()
}

async fn wait_for_job(app: &TestApp, id: potluck_app::model::JobId) {
    for _ in 0..600 {
        let state = app.texts(&format!("SELECT state FROM jobs WHERE id = {id}")).await.remove(0);
        if state == "succeeded" || state == "failed" {
            assert_eq!(state, "succeeded", "job {id}");
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("job {id} did not finish");
}

async fn world() -> World {
    let app = TestApp::spawn_with(|c| {
        c.recipe_fetch_minutes = 0.0;
        c.audit_checkpoint_minutes = 0.0;
        c.local_backups = vec!["*".into()];
        c.notify_hosts_allow = vec!["127.0.0.1".into()];
    })
    .await;
    let fed = app.bootstrap_admin().await;
    for (slug, name) in [(A, "Collective A"), (B, "Collective B")] {
        fed.call::<CollectiveSummary>("create_collective", &[("slug", slug), ("name", name), ("description", "")])
            .await
            .unwrap();
    }
    let provider_a = app.add_provider(&fed, &Idp::a(), &[A, B]).await;
    let provider_b = app.add_provider(&fed, &Idp::b(), &[B]).await;
    let pa = provider_a.to_string();
    for (group, role) in [
        ("collective-a-admins", "admin"),
        ("collective-a-operators", "operator"),
        ("collective-a-maintainers", "maintainer"),
        ("collective-a-members", "viewer"),
    ] {
        fed.call::<GroupMapping>(
            "add_group_mapping",
            &[("slug", A), ("provider_id", &pa), ("value", group), ("role", role)],
        )
        .await
        .unwrap();
    }
    fed.call::<AddedBackupRepo>("add_backup_repo", &[("slug", B), ("name", "b-repo")]).await.unwrap();
    let mut channels = Vec::new();
    for slug in [A, B] {
        let added: AddedChannel = fed
            .call(
                "add_notification_channel",
                &[
                    ("slug", slug),
                    ("name", "mail"),
                    ("kind", "email"),
                    ("target", "ops@example.org"),
                    ("events[0]", "deploy_failed"),
                ],
            )
            .await
            .unwrap();
        channels.push(added.channel.id);
    }
    let (channel_a, channel_b) = (channels[0], channels[1]);
    let mapping = fed
        .call::<GroupMapping>(
            "add_group_mapping",
            &[("slug", A), ("provider_id", &pa), ("value", "extra-group"), ("role", "viewer")],
        )
        .await
        .unwrap()
        .id;
    let mapping_b = fed
        .call::<GroupMapping>(
            "add_group_mapping",
            &[("slug", B), ("provider_id", &pa), ("value", "b-extra-group"), ("role", "viewer")],
        )
        .await
        .unwrap()
        .id;
    let alice = app.login(provider_a, "alice", "alice-pw").await;
    let carol = app.login(provider_a, "carol", "carol-pw").await;
    let dave = app.login(provider_a, "dave", "dave-pw").await;
    let bob = app.login(provider_a, "bob", "bob-pw").await;
    let erin = app.login(provider_a, "erin", "erin-pw").await;
    let grace = app.login(provider_a, "grace", "grace-pw").await;
    let erin_id = me(&erin).await.user_id;
    let grace_id = me(&grace).await.user_id;
    fed.call::<()>("set_member_role", &[("slug", B), ("user_id", &erin_id.to_string()), ("role", "admin")])
        .await
        .unwrap();
    fed.call::<()>("set_member_role", &[("slug", A), ("user_id", &grace_id.to_string()), ("role", "viewer")])
        .await
        .unwrap();
    let invitation =
        fed.call::<CreatedInvitation>("create_invitation", &[("slug", A), ("role", "viewer")]).await.unwrap().id;
    let invitation_b =
        fed.call::<CreatedInvitation>("create_invitation", &[("slug", B), ("role", "viewer")]).await.unwrap().id;
    let accept_link =
        fed.call::<CreatedInvitation>("create_invitation", &[("slug", A), ("role", "viewer")]).await.unwrap().link.0;
    let zoe = me(&app.login(provider_b, "zoe", "zoe-pw").await).await.user_id;
    let spare_client = Idp::b().register_client(&app.base).await;

    // Servers: collective-a's local engine and an SSH server; collective-b's own.
    for (b, slug, name) in [(&fed, A, "local"), (&fed, B, "b-local")] {
        b.call::<ServerView>(
            "add_server",
            &[("slug", slug), ("name", name), ("kind", "unix"), ("address", swarm::SOCKET)],
        )
        .await
        .unwrap();
    }
    let key = std::fs::read_to_string(required_env("POTLUCK_TEST_SSH_KEY")).unwrap();
    let ssh: ServerView = fed
        .call(
            "add_server",
            &[
                ("slug", A),
                ("name", "a-ssh"),
                ("kind", "ssh"),
                ("address", &required_env("POTLUCK_TEST_SSH")),
                ("private_key", &key),
            ],
        )
        .await
        .unwrap();
    let host_fingerprint = ssh.host_key_fingerprints[0].clone();

    // Recipes: `hello`, public, maintained by collective-a; `private`, registered with
    // credentials by collective-b.
    let dir = tempfile::tempdir().unwrap();
    let (_, remote) = publish(&fixture_recipe("hello"), dir.path(), "hello");
    fed.call::<RecipeSummary>("register_recipe", &[("repository", &remote.display().to_string()), ("collective", A)])
        .await
        .unwrap();
    let (_, private_remote) = publish(&fixture_recipe("hello"), dir.path(), "private");
    let mut form = over_ssh(&private_remote);
    form.push(("collective", B.into()));
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    erin.call::<RecipeSummary>("register_recipe", &form).await.unwrap();
    let proposal = dave
        .call::<ReleaseProposalDetail>(
            "open_release",
            &[("recipe", "hello"), ("notes", "Matrix."), ("version", "1.1.0+2.0")],
        )
        .await
        .unwrap()
        .summary
        .id;
    let private_proposal = erin
        .call::<ReleaseProposalDetail>(
            "open_release",
            &[("recipe", "private"), ("notes", "B's."), ("version", "1.1.0+2.0")],
        )
        .await
        .unwrap()
        .summary
        .id;

    // Apps: collective-a's, deployed; collective-b's, with a job.
    let a_domain = format!("matrix-{}.example.org", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let a_app: AppSummary = carol
        .call(
            "create_app",
            &[("slug", A), ("server", "local"), ("recipe", "hello"), ("domain", &a_domain), ("version", "0.1.0+1.0")],
        )
        .await
        .unwrap();
    carol.call::<Vec<GeneratedSecret>>("generate_secrets", &[("slug", A), ("domain", &a_domain)]).await.unwrap();
    let job_a = carol
        .call::<JobSummary>("start_job", &[("slug", A), ("domain", &a_domain), ("kind", "deploy")])
        .await
        .unwrap()
        .id;
    wait_for_job(&app, job_a).await;
    let b_domain = format!("b-{}.example.org", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    erin.call::<AppSummary>(
        "create_app",
        &[("slug", B), ("server", "b-local"), ("recipe", "hello"), ("domain", &b_domain), ("version", "0.1.0+1.0")],
    )
    .await
    .unwrap();
    let job_b = erin
        .call::<JobSummary>("start_job", &[("slug", B), ("domain", &b_domain), ("kind", "undeploy")])
        .await
        .unwrap()
        .id;
    wait_for_job(&app, job_b).await;
    let app_env = carol.call::<AppDetail>("get_app", &[("slug", A), ("domain", &a_domain)]).await.unwrap().env;

    // Tokens: alice's viewer token (the "lower role" caller), one of hers to revoke, erin's.
    let token = alice
        .call::<CreatedApiToken>("create_api_token", &[("name", "lower"), ("collective", A), ("role", "viewer")])
        .await
        .unwrap()
        .token
        .0;
    let alice_token_to_revoke = alice
        .call::<CreatedApiToken>("create_api_token", &[("name", "spare"), ("collective", A), ("role", "viewer")])
        .await
        .unwrap()
        .summary
        .id;
    let erin_token = erin
        .call::<CreatedApiToken>("create_api_token", &[("name", "b"), ("collective", B), ("role", "viewer")])
        .await
        .unwrap()
        .summary
        .id;

    let mut browsers = Vec::new();
    for (who, b) in [
        (Who::Anonymous, app.browser()),
        (Who::Foreign, erin),
        (Who::Viewer, bob),
        (Who::Maintainer, dave),
        (Who::Operator, carol),
        (Who::Admin, alice),
        (Who::FederationAdmin, fed),
    ] {
        let name = if who == Who::Anonymous { String::new() } else { me(&b).await.display_name };
        browsers.push((who, b, name));
    }
    let admin_name = browsers.iter().find(|(w, _, _)| *w == Who::Admin).unwrap().2.clone();
    browsers.push((Who::Token, app.browser(), admin_name));
    let mut incoming = Vec::new();
    for (slug, server, domain) in [(A, "local", &a_domain), (B, "b-local", &b_domain)] {
        app.exec(&format!(
            "INSERT INTO git_sync_incoming (collective_id, path, server, domain, kind, content, blob, commit_id, author, \
             summary, committed_at, status, created_at) SELECT id, 'servers/{server}/{domain}.env', '{server}', '{domain}', \
             'change', 'DOMAIN={domain}', 'b10b', 'c0ffee', 'Lu <lu@example.org>', 'a laptop edit', 0, 'pending', 0 \
             FROM collectives WHERE slug = '{slug}'"
        ))
        .await;
        incoming.push(IncomingId(app.count("SELECT MAX(id) FROM git_sync_incoming").await));
    }
    // And a file the remote removed whose app Potluck no longer has: applying it only decides it.
    app.exec(&format!(
        "INSERT INTO git_sync_incoming (collective_id, path, server, domain, kind, commit_id, author, summary, \
         committed_at, status, created_at) SELECT id, 'servers/local/gone.example.org.env', 'local', \
         'gone.example.org', 'removed', 'c0ffee', 'Lu <lu@example.org>', 'gone', 0, 'pending', 0 \
         FROM collectives WHERE slug = '{A}'"
    ))
    .await;
    World {
        app,
        browsers,
        token,
        provider_a,
        provider_b,
        grace: grace_id,
        zoe,
        invitation,
        invitation_b,
        accept_link,
        mapping,
        mapping_b,
        spare_client,
        app_env,
        a_domain,
        b_domain,
        job_a,
        job_b,
        proposal,
        private_proposal,
        erin_token,
        alice_token_to_revoke,
        host_fingerprint,
        channel_a,
        channel_b,
        incoming_a: incoming[0],
        incoming_b: incoming[1],
        _cleanup: swarm::StackGuard(a_app.stack_name.clone()),
        stack: a_app.stack_name,
        dir,
    }
}

/// Everything the operations could change, as text.
async fn snapshot(app: &TestApp) -> Vec<String> {
    let mut out = Vec::new();
    for q in [
        "SELECT slug || '|' || name || '|' || description FROM collectives ORDER BY 1",
        "SELECT CAST(collective_id AS TEXT) || '|' || CAST(user_id AS TEXT) || '|' || source || '|' || role FROM memberships ORDER BY 1",
        "SELECT CAST(id AS TEXT) || '|' || claim_value || '|' || role FROM group_mappings ORDER BY 1",
        "SELECT CAST(id AS TEXT) || '|' || COALESCE(CAST(revoked_at AS TEXT), '-') || '|' || COALESCE(CAST(used_at AS TEXT), '-') FROM invitations ORDER BY 1",
        "SELECT CAST(id AS TEXT) || '|' || display_name FROM identity_providers ORDER BY 1",
        "SELECT CAST(provider_id AS TEXT) || '|' || CAST(collective_id AS TEXT) FROM provider_collectives ORDER BY 1",
        "SELECT CAST(id AS TEXT) || '|' || COALESCE(CAST(revoked_at AS TEXT), '-') FROM api_tokens ORDER BY 1",
        "SELECT CAST(id AS TEXT) || '|' || display_name || '|' || CAST(is_federation_admin AS TEXT) FROM users ORDER BY 1",
        "SELECT name || '|' || kind || '|' || address || '|' || policy || '|' || COALESCE(host_key, '-') FROM servers ORDER BY 1",
        "SELECT domain || '|' || env || '|' || status FROM apps ORDER BY 1",
        "SELECT name FROM recipes ORDER BY 1",
        "SELECT CAST(recipe_id AS TEXT) || '|' || COALESCE(CAST(user_id AS TEXT), '-') || '|' || COALESCE(CAST(collective_id AS TEXT), '-') FROM recipe_maintainers ORDER BY 1",
        "SELECT CAST(id AS TEXT) || '|' || state || '|' || commit_id || '|' || notes FROM release_proposals ORDER BY 1",
        "SELECT CAST(COUNT(*) AS TEXT) FROM release_reviews",
        "SELECT CAST(COUNT(*) AS TEXT) FROM jobs",
        "SELECT CAST(collective_id AS TEXT) || '|' || name || '|' || location FROM backup_repos ORDER BY 1",
        "SELECT CAST(app_id AS TEXT) || '|' || cron || '|' || keep FROM backup_schedules ORDER BY 1",
        "SELECT CAST(collective_id AS TEXT) || '|' || cron FROM drill_schedules ORDER BY 1",
        "SELECT CAST(collective_id AS TEXT) || '|' || name || '|' || events FROM notification_channels ORDER BY 1",
        "SELECT CAST(COUNT(*) AS TEXT) FROM notification_deliveries",
        "SELECT CAST(COUNT(*) AS TEXT) FROM upgrade_batches",
        "SELECT CAST(server_id AS TEXT) || '|' || CAST(max_runs AS TEXT) FROM staging_servers ORDER BY 1",
        "SELECT CAST(COUNT(*) AS TEXT) FROM staging_runs",
        "SELECT name || '|' || test_env || '|' || smoke_check || '|' || CAST(require_green_run AS TEXT) FROM recipes ORDER BY 1",
        "SELECT host || '|' || sender FROM mail_settings",
        "SELECT CAST(id AS TEXT) || '|' || CAST(notify_reviews AS TEXT) FROM users ORDER BY 1",
        "SELECT CAST(collective_id AS TEXT) || '|' || url || '|' || branch FROM git_sync ORDER BY 1",
        "SELECT CAST(id AS TEXT) || '|' || status FROM git_sync_incoming ORDER BY 1",
        "SELECT CAST(COUNT(*) AS TEXT) FROM git_sync_base",
        "SELECT CAST(COUNT(*) AS TEXT) FROM audit_events",
    ] {
        out.extend(app.texts(q).await);
        out.push("--".into());
    }
    out
}

type Args = Box<dyn Fn(&World) -> Vec<(&'static str, String)>>;

/// One row of the matrix: the arguments with which the first allowed caller succeeds, and,
/// for operations that name an object, the same call with another collective's object.
struct Row {
    name: &'static str,
    args: Args,
    foreign: Option<Args>,
    /// The caller who makes the allowed call, when not the least privileged allowed one.
    by: Option<Who>,
    /// What the allowed call answers when it is not a success (a business rule, not a refusal).
    allowed_status: Option<u16>,
    /// A job the allowed call starts: waited for before the next row.
    starts_job: bool,
}

fn row(name: &'static str, args: impl Fn(&World) -> Vec<(&'static str, String)> + 'static) -> Row {
    Row { name, args: Box::new(args), foreign: None, by: None, allowed_status: None, starts_job: false }
}

impl Row {
    fn foreign(mut self, args: impl Fn(&World) -> Vec<(&'static str, String)> + 'static) -> Row {
        self.foreign = Some(Box::new(args));
        self
    }
    fn by(mut self, who: Who) -> Row {
        self.by = Some(who);
        self
    }
    fn answers(mut self, status: u16) -> Row {
        self.allowed_status = Some(status);
        self
    }
    fn starts_job(mut self) -> Row {
        self.starts_job = true;
        self
    }
}

fn s(v: &str) -> String {
    v.to_string()
}

fn in_a() -> (&'static str, String) {
    ("slug", s(A))
}

fn app_a(w: &World) -> Vec<(&'static str, String)> {
    vec![in_a(), ("domain", w.a_domain.clone())]
}

fn app_b(w: &World) -> Vec<(&'static str, String)> {
    vec![in_a(), ("domain", w.b_domain.clone())]
}

/// An abra servers tree of one app (base64 of its tar.gz, as the API takes it).
fn abra_tree(server: &str, domain: &str) -> String {
    use base64::Engine as _;
    let env = format!("TYPE=hello:0.1.0+1.0\nDOMAIN={domain}\n");
    let archive = potluck_server::domain::apps::tree::write_archive(&[(s(server), s(domain), env, 0)]).unwrap();
    base64::engine::general_purpose::STANDARD.encode(archive)
}

fn with(mut base: Vec<(&'static str, String)>, more: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
    base.extend(more.iter().map(|(k, v)| (*k, v.to_string())));
    base
}

/// The matrix, in the order the rows run (later rows use what earlier ones made or left).
fn rows() -> Vec<Row> {
    vec![
        // Identity and tokens.
        row("me", |_| vec![]),
        row("whoami", |_| vec![]),
        row("public_providers", |_| vec![]),
        row("catalogue_json", |_| vec![]),
        row("list_providers", |_| vec![]),
        row("list_users", |_| vec![]),
        row("my_identities", |_| vec![]),
        row("list_api_tokens", |_| vec![]),
        row("create_api_token", |_| vec![("name", s("ci")), ("collective", s(A)), ("role", s("viewer"))])
            .foreign(|_| vec![("name", s("ci")), ("collective", s(B)), ("role", s("viewer"))]),
        row("revoke_api_token", |w| vec![("token_id", w.alice_token_to_revoke.to_string())])
            .by(Who::Admin)
            .foreign(|w| vec![("token_id", w.erin_token.to_string())]),
        // Collectives.
        row("list_collectives", |_| vec![]),
        row("get_collective", |_| vec![in_a()]).foreign(|_| vec![("slug", s(B))]),
        row("update_collective", |_| vec![in_a(), ("name", s("Collective A, renamed")), ("description", s("new"))]),
        row("set_member_role", |w| vec![in_a(), ("user_id", w.grace.to_string()), ("role", s("maintainer"))])
            .foreign(|w| vec![in_a(), ("user_id", w.zoe.to_string()), ("role", s("maintainer"))]),
        row("create_invitation", |_| vec![in_a(), ("role", s("viewer"))]),
        row("revoke_invitation", |w| vec![in_a(), ("invitation_id", w.invitation.to_string())])
            .foreign(|w| vec![in_a(), ("invitation_id", w.invitation_b.to_string())]),
        row("accept_invitation", |w| vec![("token", w.accept_link.rsplit('/').next().unwrap().to_string())])
            .by(Who::FederationAdmin),
        row("add_group_mapping", |w| {
            vec![in_a(), ("provider_id", w.provider_a.to_string()), ("value", s("new-group")), ("role", s("viewer"))]
        }),
        row("remove_group_mapping", |w| vec![in_a(), ("mapping_id", w.mapping.to_string())])
            .foreign(|w| vec![in_a(), ("mapping_id", w.mapping_b.to_string())]),
        row("remove_member", |w| vec![in_a(), ("user_id", w.grace.to_string())]),
        // Audit.
        row("query_audit", |_| vec![]).foreign(|_| vec![("collective", s(B))]),
        row("export_audit", |_| vec![]).foreign(|_| vec![("collective", s(B))]),
        // Recipes and releases.
        row("list_recipes", |_| vec![]),
        row("get_recipe", |_| vec![("name", s("hello"))]).foreign(|_| vec![("name", s("private"))]),
        row("get_recipe_version", |_| vec![("name", s("hello")), ("tag", s("0.1.0+1.0"))])
            .foreign(|_| vec![("name", s("private")), ("tag", s("0.1.0+1.0"))]),
        row("register_recipe", |w| {
            let (_, remote) = publish(&fixture_recipe("faulty"), w.dir.path(), "faulty");
            vec![("repository", remote.display().to_string())]
        })
        .by(Who::FederationAdmin),
        row("import_catalogue", |w| {
            let (_, remote) = publish(&fixture_recipe("hostile"), w.dir.path(), "hostile");
            let catalogue =
                serde_json::json!({ "hostile": { "name": "hostile", "repository": remote.display().to_string() } });
            vec![("catalogue", catalogue.to_string())]
        }),
        row("fetch_recipe", |_| vec![("name", s("hello"))]).foreign(|_| vec![("name", s("private"))]),
        row("set_recipe_maintainers", |_| vec![("name", s("hello")), ("collectives", s(A))])
            .foreign(|_| vec![("name", s("private")), ("collectives", s(A))]),
        row("list_releases", |_| vec![("recipe", s("hello"))]).foreign(|_| vec![("recipe", s("private"))]),
        row("open_release", |_| vec![("recipe", s("hello")), ("notes", s("Next.")), ("version", s("1.2.0+2.0"))])
            .foreign(|_| vec![("recipe", s("private")), ("notes", s("Mine.")), ("version", s("1.2.0+2.0"))]),
        row("get_release", |w| vec![("id", w.proposal.to_string())])
            .foreign(|w| vec![("id", w.private_proposal.to_string())]),
        row("review_release", |w| {
            vec![("id", w.proposal.to_string()), ("verdict", s("comment")), ("comment", s("ok"))]
        })
        .foreign(|w| vec![("id", w.private_proposal.to_string()), ("verdict", s("approve"))]),
        row("update_release", |w| vec![("id", w.proposal.to_string()), ("notes", s("Matrix, again."))])
            .foreign(|w| vec![("id", w.private_proposal.to_string()), ("notes", s("Taken."))]),
        row("publish_release", |w| vec![("id", w.proposal.to_string())])
            .answers(409)
            .foreign(|w| vec![("id", w.private_proposal.to_string())]),
        // Release CI: the world has no staging server, so asking for a run is refused (409)
        // after the caller is checked, and no run exists.
        row("get_recipe_testing", |_| vec![("name", s("hello"))]).foreign(|_| vec![("name", s("private"))]),
        row("set_recipe_testing", |_| vec![("name", s("hello")), ("test_env", s("A=1")), ("smoke_kind", s("none"))])
            .foreign(|_| vec![("name", s("private")), ("smoke_kind", s("none"))]),
        row("start_staging_run", |w| vec![("id", w.proposal.to_string())])
            .answers(409)
            .foreign(|w| vec![("id", w.private_proposal.to_string())]),
        row("get_staging_run", |w| vec![("id", w.proposal.to_string()), ("run", s("1"))])
            .answers(404)
            .foreign(|w| vec![("id", w.private_proposal.to_string()), ("run", s("1"))]),
        row("withdraw_release", |w| vec![("id", w.proposal.to_string())])
            .foreign(|w| vec![("id", w.private_proposal.to_string())]),
        // Servers.
        row("list_servers", |_| vec![in_a()]),
        row("add_server", |_| vec![in_a(), ("name", s("second")), ("kind", s("unix")), ("address", s(swarm::SOCKET))]),
        row("remove_server", |_| vec![in_a(), ("name", s("second"))]).foreign(|_| vec![in_a(), ("name", s("b-local"))]),
        row("trust_host_key", |w| vec![in_a(), ("name", s("a-ssh")), ("fingerprint", w.host_fingerprint.clone())])
            .foreign(|w| vec![in_a(), ("name", s("b-local")), ("fingerprint", w.host_fingerprint.clone())]),
        row("set_server_policy", |_| vec![in_a(), ("name", s("local")), ("allow", s(""))]),
        // Apps, secrets, jobs and what streams.
        row("list_apps", |_| vec![in_a()]),
        row("create_app", |_| {
            vec![
                in_a(),
                ("server", s("local")),
                ("recipe", s("hello")),
                ("domain", s("matrix-new.example.org")),
                ("version", s("0.1.0+1.0")),
            ]
        })
        .foreign(|_| {
            vec![in_a(), ("server", s("b-local")), ("recipe", s("hello")), ("domain", s("stolen.example.org"))]
        }),
        row("get_app", app_a).foreign(app_b),
        row("set_app_env", |w| {
            let env = w.app_env.replace("SECRET_DB_PASSWORD_VERSION=v1", "SECRET_DB_PASSWORD_VERSION=v2");
            with(app_a(w), &[("env", &format!("{env}\nGREETING=matrix\n"))])
        })
        .foreign(|w| with(app_b(w), &[("env", "DOMAIN=x\n")])),
        row("set_app_overlays", app_a).foreign(app_b),
        row("import_app", |_| {
            vec![
                in_a(),
                ("server", s("local")),
                ("file_name", s("imported.example.org.env")),
                ("content", s("TYPE=hello:0.1.0+1.0\nDOMAIN=imported.example.org\n")),
            ]
        })
        .foreign(|_| {
            vec![
                in_a(),
                ("server", s("b-local")),
                ("file_name", s("elsewhere.example.org.env")),
                ("content", s("TYPE=hello:0.1.0+1.0\nDOMAIN=elsewhere.example.org\n")),
            ]
        }),
        row("preview_abra_tree", |_| vec![in_a(), ("archive", abra_tree("local", "matrix-tree.example.org"))]).foreign(
            |_| {
                vec![
                    in_a(),
                    ("archive", abra_tree("there", "matrix-tree.example.org")),
                    ("servers[there]", s("b-local")),
                ]
            },
        ),
        row("import_abra_tree", |_| vec![in_a(), ("archive", abra_tree("local", "matrix-tree.example.org"))]).foreign(
            |_| {
                vec![
                    in_a(),
                    ("archive", abra_tree("there", "stolen-tree.example.org")),
                    ("servers[there]", s("b-local")),
                ]
            },
        ),
        // Kept for its preview page, which the answer redirects to.
        row("upload_abra_tree", |_| vec![in_a(), ("archive", abra_tree("local", "uploaded.example.org"))]).answers(303),
        row("export_abra_tree", |_| vec![in_a()]),
        // Nothing changed outside Potluck: nothing to adopt (after the caller is checked).
        row("adopt_app", app_a).answers(409).foreign(app_b),
        // Git sync: no remote answers at port 1 (refused after the caller is checked); another
        // collective's incoming change is not found.
        row("get_sync", |_| vec![in_a()]),
        row("set_sync", |_| vec![in_a(), ("url", s("https://127.0.0.1:1/ops.git"))]).answers(422),
        row("sync_now", |_| vec![in_a()]).answers(409),
        row("remove_sync", |_| vec![in_a()]).answers(404),
        row("reject_incoming", |w| vec![in_a(), ("id", w.incoming_a.to_string())])
            .foreign(|w| vec![in_a(), ("id", w.incoming_b.to_string())]),
        row("apply_all_incoming", |_| vec![in_a()]),
        row("apply_incoming", |w| vec![in_a(), ("id", w.incoming_a.to_string())])
            .answers(409)
            .foreign(|w| vec![in_a(), ("id", w.incoming_b.to_string())]),
        row("export_app", app_a).foreign(app_b),
        row("download_env", app_a).foreign(app_b),
        row("delete_app", |_| vec![in_a(), ("domain", s("matrix-new.example.org"))]).foreign(app_b),
        row("insert_secret", |w| with(app_a(w), &[("name", "db_password"), ("value", "inserted-by-the-matrix")]))
            .foreign(|w| with(app_b(w), &[("name", "db_password"), ("value", "x")])),
        row("generate_secrets", app_a).foreign(app_b),
        row("preview_job", |w| with(app_a(w), &[("kind", "redeploy")]))
            .foreign(|w| with(app_b(w), &[("kind", "deploy")])),
        row("start_job", |w| with(app_a(w), &[("kind", "redeploy")]))
            .foreign(|w| with(app_b(w), &[("kind", "deploy")]))
            .starts_job(),
        row("get_job", |w| vec![("id", w.job_a.to_string())]).foreign(|w| vec![("id", w.job_b.to_string())]),
        row("job_events", |w| vec![("id", w.job_a.to_string())]).foreign(|w| vec![("id", w.job_b.to_string())]),
        row("app_live", app_a).foreign(app_b),
        row("apps_live", |_| vec![in_a()]).foreign(|_| vec![("slug", s(B))]),
        row("servers_live", |_| vec![in_a()]).foreign(|_| vec![("slug", s(B))]),
        row("service_logs", |w| with(app_a(w), &[("service", "app")]))
            .foreign(|w| with(app_b(w), &[("service", "app")])),
        row("run_command", |w| with(app_a(w), &[("service", "app"), ("command", "true")]))
            .foreign(|w| with(app_b(w), &[("service", "app"), ("command", "true")])),
        row("rotate_secret", |w| with(app_a(w), &[("name", "db_password")]))
            .foreign(|w| with(app_b(w), &[("name", "db_password")]))
            .starts_job(),
        // Backups (the download of a real snapshot is in backup_jobs).
        row("list_backups", |_| vec![in_a()]).foreign(|_| vec![("slug", s(B))]),
        row("add_backup_repo", |_| vec![in_a(), ("name", s("matrix"))]),
        // A schedule into another collective's repository, named by its name: as good as absent.
        row("set_backup_schedule", |w| {
            with(app_a(w), &[("cron", "30 3 * * *"), ("repo", "matrix"), ("keep_daily", "7")])
        })
        .foreign(|w| with(app_a(w), &[("cron", "30 3 * * *"), ("repo", "b-repo")])),
        row("remove_backup_schedule", app_a).foreign(app_b),
        row("set_drill_schedule", |_| vec![in_a(), ("cron", s("0 4 * * 0"))])
            .foreign(|_| vec![("slug", s(B)), ("cron", s("0 4 * * 0"))]),
        row("remove_drill_schedule", |_| vec![in_a()]).foreign(|_| vec![("slug", s(B))]),
        row("remove_backup_repo", |_| vec![in_a(), ("name", s("matrix"))])
            .foreign(|_| vec![in_a(), ("name", s("b-repo"))]),
        row("download_backup", |w| with(app_a(w), &[("snapshot", "0123abcd")]))
            .answers(404)
            .foreign(|w| with(app_b(w), &[("snapshot", "0123abcd")])),
        // The fleet: a batch names apps of several collectives, each checked as an app scope is.
        row("fleet", |_| vec![]),
        row("preview_upgrade_batch", |w| {
            vec![("recipe", s("hello")), ("apps", format!("{A}/{}", w.a_domain)), ("target", s("0.1.0+1.0"))]
        })
        .by(Who::Operator)
        .foreign(|w| vec![("recipe", s("hello")), ("apps", format!("{B}/{}", w.b_domain))]),
        // A release that does not exist: refused after the apps are checked, so nothing starts.
        row("start_upgrade_batch", |w| {
            vec![("recipe", s("hello")), ("apps", format!("{A}/{}", w.a_domain)), ("target", s("9.9.9+9"))]
        })
        .by(Who::Operator)
        .answers(422)
        .foreign(|w| vec![("recipe", s("hello")), ("apps", format!("{B}/{}", w.b_domain)), ("target", s("9.9.9+9"))]),
        row("get_upgrade_batch", |_| vec![("id", s("1"))]).answers(404),
        // Notifications.
        row("list_notifications", |_| vec![in_a()]).foreign(|_| vec![("slug", s(B))]),
        row("add_notification_channel", |_| {
            vec![
                in_a(),
                ("name", s("matrix")),
                ("kind", s("email")),
                ("target", s("m@example.org")),
                ("events[0]", s("drill_failed")),
            ]
        })
        .foreign(|_| {
            vec![
                ("slug", s(B)),
                ("name", s("matrix")),
                ("kind", s("email")),
                ("target", s("m@example.org")),
                ("events[0]", s("drill_failed")),
            ]
        }),
        row("test_notification_channel", |w| vec![in_a(), ("channel", w.channel_a.to_string())])
            .foreign(|w| vec![in_a(), ("channel", w.channel_b.to_string())]),
        row("remove_notification_channel", |w| vec![in_a(), ("channel", w.channel_a.to_string())])
            .foreign(|w| vec![in_a(), ("channel", w.channel_b.to_string())]),
        row("my_notifications", |_| vec![]),
        row("set_my_notifications", |_| vec![("review_email", s("true"))]),
        // The federation's own.
        row("get_mail_relay", |_| vec![]),
        row("set_mail_relay", |_| {
            vec![
                ("host", s("127.0.0.1")),
                ("port", s("25")),
                ("security", s("none")),
                ("sender", s("potluck@example.org")),
            ]
        }),
        row("remove_mail_relay", |_| vec![]),
        row("list_staging_servers", |_| vec![]),
        // Withdrawing a server that is not designated: the federation admin's call succeeds
        // (audited) and designates nothing, so the runner never deploys in this world.
        row("set_staging_server", |_| vec![("slug", s(A)), ("name", s("local")), ("max_runs", s("0"))]),
        row("create_collective", |_| vec![("slug", s("collective-c")), ("name", s("C")), ("description", s(""))]),
        row("set_provider_collectives", |w| {
            vec![("provider_id", w.provider_b.to_string()), ("collectives", format!("{A} {B}"))]
        }),
        row("set_federation_admin", |w| vec![("user_id", w.zoe.to_string()), ("admin", s("true"))]),
        row("link_users", |w| vec![("keep_user_id", w.grace.to_string()), ("merge_user_id", w.zoe.to_string())]),
        row("remove_provider", |w| vec![("provider_id", w.provider_b.to_string())]),
        row("add_provider", |w| {
            vec![
                ("display_name", s("Collective B SSO")),
                ("issuer_url", Idp::b().issuer),
                ("client_id", w.spare_client.0.clone()),
                ("client_secret", w.spare_client.1.clone()),
                ("groups_claim", s("groups")),
                ("collectives", s(B)),
            ]
        }),
    ]
}

/// A call's outcome: the status and the error the body carried (if any).
struct Answer {
    status: u16,
    error: Option<ApiError>,
    body: String,
}

/// Calls `info` as `who`: a session through the pages' server function (or the streaming
/// endpoint), the token through the REST API (the route the registry mounted).
async fn call(w: &World, who: Who, info: &OpInfo, args: &[(&'static str, String)]) -> Answer {
    let b = w.browser(who);
    let use_rest = who == Who::Token || info.raw;
    let rest_route = info.http.filter(|_| use_rest);
    let request = if let Some(http) = rest_route {
        let mut path = http.path.to_string();
        let mut rest = Vec::new();
        for (k, v) in args {
            let placeholder = format!("{{{k}}}");
            if path.contains(&placeholder) {
                let encoded: String = url::form_urlencoded::byte_serialize(v.as_bytes()).collect();
                path = path.replace(&placeholder, &encoded);
            } else {
                rest.push((*k, v.as_str()));
            }
        }
        let url = if info.raw { format!("{}{path}", w.app.base) } else { format!("{}/api/v1{path}", w.app.base) };
        let mut r = match http.method {
            "GET" => b.client.get(url).query(&rest),
            "DELETE" => b.client.delete(url).query(&rest),
            "PUT" => b.client.put(url).form(&rest),
            _ => b.client.post(url).form(&rest),
        };
        if who == Who::Token {
            r = r.bearer_auth(&w.token);
        }
        r
    } else {
        let form: Vec<(&str, &str)> = args.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let mut r = b
            .client
            .post(format!("{}/api/fn/{}", w.app.base, info.name))
            .header("accept", "application/json")
            .form(&form);
        if who == Who::Token {
            r = r.bearer_auth(&w.token);
        }
        r
    };
    let r = request.timeout(Duration::from_secs(60)).send().await.unwrap();
    let status = r.status().as_u16();
    // A live stream (job events of a job that runs on) is answered once its head is.
    let streaming =
        r.headers().get("content-type").is_some_and(|v| v.to_str().unwrap_or("").starts_with("text/event-stream"));
    let body = if streaming { String::new() } else { r.text().await.unwrap_or_default() };
    Answer { status, error: serde_json::from_str(&body).ok(), body }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_is_checked_for_every_kind_of_caller_and_tenant() {
    let w = world().await;
    let registry: Vec<OpInfo> = potluck_server::operations::registry::registry().entries().map(|e| e.info).collect();
    let rows = rows();
    let covered: BTreeSet<&str> = rows.iter().map(|r| r.name).collect();
    let registered: BTreeSet<&str> = registry.iter().map(|i| i.name).collect();
    let missing: Vec<&&str> = registered.difference(&covered).collect();
    let unknown: Vec<&&str> = covered.difference(&registered).collect();
    assert!(missing.is_empty(), "operations without a row in the authorization matrix: {missing:?}");
    assert!(unknown.is_empty(), "rows for operations that are not registered: {unknown:?}");
    let mut table = Vec::new();
    for row in &rows {
        let info = *registry.iter().find(|i| i.name == row.name).unwrap();
        let args = (row.args)(&w);
        let allowed: Vec<Who> = EVERYONE.into_iter().filter(|who| expected(&info, *who).is_none()).collect();
        let chosen = row.by.unwrap_or_else(|| allowed[0]);
        assert!(allowed.contains(&chosen), "{}: {chosen:?} is not allowed", row.name);
        let mut line = format!("{:<26}", row.name);

        // Everyone the declaration refuses: refused, and nothing changes.
        for who in EVERYONE.into_iter().filter(|who| !allowed.contains(who)) {
            let (status, kind) = expected(&info, who).unwrap();
            let before = snapshot(&w.app).await;
            let a = call(&w, who, &info, &args).await;
            assert_eq!(a.status, status, "{} as {who:?}: {}", row.name, a.body);
            let error = a.error.unwrap_or_else(|| panic!("{} as {who:?}: no error body: {}", row.name, a.body));
            assert_eq!(variant(&error), kind, "{} as {who:?}: {error:?}", row.name);
            assert_eq!(before, snapshot(&w.app).await, "{} as {who:?} was refused but changed something", row.name);
            line.push_str(&format!(" {who:?}:{status}"));
        }

        // Another collective's object in place of collective-a's: as good as absent.
        if let Some(foreign) = &row.foreign {
            let fargs = foreign(&w);
            let who = if allowed.contains(&Who::Admin) { Who::Admin } else { chosen };
            let before = snapshot(&w.app).await;
            let a = call(&w, who, &info, &fargs).await;
            assert_eq!(a.status, 404, "{} as {who:?} with another collective's object: {}", row.name, a.body);
            assert_eq!(
                before,
                snapshot(&w.app).await,
                "{} with another collective's object changed something",
                row.name
            );
            line.push_str(" foreign:404");
        }

        // The allowed call.
        let before = snapshot(&w.app).await;
        let events_before = w.app.count("SELECT COUNT(*) FROM audit_events").await;
        let a = call(&w, chosen, &info, &args).await;
        match row.allowed_status {
            Some(status) => {
                assert_eq!(a.status, status, "{} as {chosen:?}: {}", row.name, a.body);
                assert_eq!(
                    before,
                    snapshot(&w.app).await,
                    "{} as {chosen:?} answered {status} but changed something",
                    row.name
                );
            }
            None => {
                assert!(
                    (200..300).contains(&a.status),
                    "{} as {chosen:?}: expected success, got {} {}",
                    row.name,
                    a.status,
                    a.body
                );
                let events: Vec<String> = w
                    .app
                    .texts(&format!(
                        "SELECT action || '|' || actor_name || '|' || COALESCE(collective, '-') FROM audit_events WHERE seq > {events_before} ORDER BY seq"
                    ))
                    .await;
                if info.writes() {
                    assert!(!events.is_empty(), "{} as {chosen:?} wrote no audit event", row.name);
                    for e in &events {
                        let action = e.split('|').next().unwrap();
                        assert!(
                            info.audit.iter().any(|a| a.as_str() == action),
                            "{}: undeclared audit action in {e}",
                            row.name
                        );
                        assert!(
                            e.contains(&format!("|{}|", w.name(chosen))) || action.starts_with("app.redeploy"),
                            "{}: the event names the caller: {e}",
                            row.name
                        );
                    }
                } else {
                    assert!(events.is_empty(), "{} is a read but wrote {events:?}", row.name);
                    assert_eq!(before, snapshot(&w.app).await, "{} is a read but changed something", row.name);
                }
            }
        }
        if row.starts_job {
            let id = w.app.count("SELECT MAX(id) FROM jobs").await;
            wait_for_job(&w.app, potluck_app::model::JobId(id)).await;
        }
        line.push_str(&format!(" {chosen:?}:{}", a.status));
        table.push(line);
    }
    println!("{}", table.join("\n"));
    let docker = swarm::connect().await;
    swarm::remove_stack(&docker, &w.stack).await;
    for sec in docker.list_secrets(None::<bollard::query_parameters::ListSecretsOptions>).await.unwrap() {
        if let Some(name) = sec.spec.and_then(|s| s.name) {
            if name.starts_with(&format!("{}_", w.stack)) {
                let _ = docker.delete_secret(&name).await;
            }
        }
    }
    w.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_tokens_act_with_at_most_their_role_in_their_collective() {
    let w = world().await;
    let mut tokens = Vec::new();
    for who in [Who::Foreign, Who::Viewer, Who::Operator, Who::Admin] {
        let (collective, role) = match who {
            Who::Foreign => ("collective-b", "admin"),
            Who::Viewer => ("collective-a", "viewer"),
            Who::Operator => ("collective-a", "operator"),
            _ => ("collective-a", "admin"),
        };
        let t = w
            .browser(who)
            .call::<CreatedApiToken>(
                "create_api_token",
                &[("name", "matrix"), ("collective", collective), ("role", role)],
            )
            .await
            .unwrap();
        tokens.push((who, t.token.0));
    }
    // A viewer cannot mint a token above their own role.
    let over = w
        .browser(Who::Viewer)
        .call::<CreatedApiToken>(
            "create_api_token",
            &[("name", "x"), ("collective", "collective-a"), ("role", "admin")],
        )
        .await
        .unwrap_err();
    assert_eq!(over.status, 403);

    let client = reqwest::Client::new();
    let url = format!("{}/api/v1/collectives/collective-a/members/{}", w.app.base, w.grace);
    let anon = client.put(&url).json(&serde_json::json!({"role": "operator"})).send().await.unwrap();
    assert_eq!(anon.status(), 401);
    for (who, token) in &tokens {
        let before = snapshot(&w.app).await;
        let r =
            client.put(&url).bearer_auth(token).json(&serde_json::json!({"role": "operator"})).send().await.unwrap();
        let status = r.status().as_u16();
        match who {
            Who::Admin => {
                assert_eq!(status, 204);
                assert_ne!(before, snapshot(&w.app).await);
                let last = w.app.texts("SELECT action || '|' || actor_kind || '|' || details FROM audit_events ORDER BY seq DESC LIMIT 1").await;
                assert!(last[0].starts_with("member.set_role|token|"), "{}", last[0]);
                assert!(last[0].contains("api_token_id"), "{}", last[0]);
            }
            other => {
                let expected = if *other == Who::Foreign { 404 } else { 403 };
                let body: ApiError = r.json().await.unwrap();
                assert_eq!(status, expected, "{other:?}: {body:?}");
                assert_eq!(before, snapshot(&w.app).await);
            }
        }
    }
    // A token cannot leave its collective, even when its owner could.
    let admin_token = &tokens.iter().find(|(w, _)| *w == Who::Admin).unwrap().1;
    let r = client
        .get(format!("{}/api/v1/collectives/collective-b", w.app.base))
        .bearer_auth(admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    // Federation operations are never open to tokens.
    let fed_token = w
        .browser(Who::FederationAdmin)
        .call::<CreatedApiToken>(
            "create_api_token",
            &[("name", "fed"), ("collective", "collective-a"), ("role", "admin")],
        )
        .await
        .unwrap();
    let me: Me = client
        .get(format!("{}/api/v1/me", w.app.base))
        .bearer_auth(&fed_token.token.0)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(!me.is_federation_admin);
    w.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nobody_removes_the_last_admin() {
    let w = world().await;
    let alice = w.browser(Who::Admin);
    let alice_id = me(alice).await.user_id;
    // alice is the only admin (through her provider's groups): she cannot remove herself.
    let before = snapshot(&w.app).await;
    let demote = alice
        .call::<()>("remove_member", &[("slug", "collective-a"), ("user_id", &alice_id.to_string())])
        .await
        .unwrap_err();
    assert_eq!(demote.status, 409, "{}", demote.body);
    assert_eq!(before, snapshot(&w.app).await);
    // With a second admin it works.
    let fed = w.browser(Who::FederationAdmin);
    let bob = me(w.browser(Who::Viewer)).await.user_id;
    fed.call::<()>("set_member_role", &[("slug", "collective-a"), ("user_id", &bob.to_string()), ("role", "admin")])
        .await
        .unwrap();
    alice.call::<()>("remove_member", &[("slug", "collective-a"), ("user_id", &alice_id.to_string())]).await.unwrap();
    // The last federation admin stays too.
    let fed_id = me(fed).await.user_id;
    let last = fed
        .call::<()>("set_federation_admin", &[("user_id", &fed_id.to_string()), ("admin", "false")])
        .await
        .unwrap_err();
    assert_eq!(last.status, 409);
    w.app.stop().await;
}
