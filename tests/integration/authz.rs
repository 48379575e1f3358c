//! The authorization matrix: every mutating operation × {anonymous, member of another
//! collective, viewer, maintainer, operator, admin, federation admin}. Refusals must leave the
//! database exactly as it was and say why; the permitted call must write exactly one audit
//! event naming the caller.

use potluck_app::error::ApiError;
use potluck_app::model::{
    AppDetail, AppSummary, CreatedApiToken, CreatedInvitation, GroupMapping, Me, RecipeSummary, ServerView,
};
use potluck_tests::recipes::{fixture_recipe, publish};
use potluck_tests::{swarm, Browser, Idp, TestApp};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Anonymous,
    Foreign,
    Viewer,
    Maintainer,
    Operator,
    Admin,
    FederationAdmin,
}

const EVERYONE: [Who; 7] =
    [Who::Anonymous, Who::Foreign, Who::Viewer, Who::Maintainer, Who::Operator, Who::Admin, Who::FederationAdmin];

/// What an operation needs.
#[derive(Debug, Clone, Copy)]
enum Need {
    /// At least this role in collective-a (a federation admin may too).
    Role(Who),
    /// A federation admin.
    Federation,
}

impl Need {
    fn allows(self, who: Who) -> bool {
        match self {
            Need::Role(min) => who == Who::FederationAdmin || (rank(who) >= rank(min) && rank(who) > 1),
            Need::Federation => who == Who::FederationAdmin,
        }
    }

    /// The refusal a caller who is not allowed gets: (status, variant).
    fn refusal(self, who: Who) -> (u16, &'static str) {
        match (self, who) {
            (_, Who::Anonymous) => (401, "unauthenticated"),
            // Tenants do not see each other: another collective's member is told it does not exist.
            (Need::Role(_), Who::Foreign) => (404, "not_found"),
            _ => (403, "forbidden"),
        }
    }
}

fn rank(who: Who) -> u8 {
    match who {
        Who::Anonymous => 0,
        Who::Foreign => 1,
        Who::Viewer => 2,
        Who::Maintainer => 3,
        Who::Operator => 4,
        Who::Admin => 5,
        Who::FederationAdmin => 6,
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
    provider_a: i64,
    provider_b: i64,
    grace: i64,
    zoe: i64,
    invitation: i64,
    mapping: i64,
    spare_client: (String, String),
    /// The env file of collective-a's app `matrix.example.org`.
    app_env: String,
    _recipes: tempfile::TempDir,
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

async fn world() -> World {
    let app = TestApp::spawn().await;
    let fed = app.bootstrap_admin().await;
    for (slug, name) in [("collective-a", "Collective A"), ("collective-b", "Collective B")] {
        fed.call::<serde_json::Value>("create_collective", &[("slug", slug), ("name", name), ("description", "")])
            .await
            .unwrap();
    }
    let provider_a = app.add_provider(&fed, &Idp::a(), &["collective-a", "collective-b"]).await;
    let provider_b = app.add_provider(&fed, &Idp::b(), &["collective-b"]).await;
    let pa = provider_a.to_string();
    for (group, role) in [
        ("collective-a-admins", "admin"),
        ("collective-a-operators", "operator"),
        ("collective-a-maintainers", "maintainer"),
        ("collective-a-members", "viewer"),
    ] {
        fed.call::<GroupMapping>(
            "add_group_mapping",
            &[("slug", "collective-a"), ("provider_id", &pa), ("value", group), ("role", role)],
        )
        .await
        .unwrap();
    }
    let mapping = fed
        .call::<GroupMapping>(
            "add_group_mapping",
            &[("slug", "collective-a"), ("provider_id", &pa), ("value", "extra-group"), ("role", "viewer")],
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
    // erin belongs to collective-b only; grace is a plain viewer of collective-a (the target).
    fed.call::<()>(
        "set_member_role",
        &[("slug", "collective-b"), ("user_id", &erin_id.to_string()), ("role", "admin")],
    )
    .await
    .unwrap();
    fed.call::<()>(
        "set_member_role",
        &[("slug", "collective-a"), ("user_id", &grace_id.to_string()), ("role", "viewer")],
    )
    .await
    .unwrap();
    let invitation = fed
        .call::<CreatedInvitation>("create_invitation", &[("slug", "collective-a"), ("role", "viewer")])
        .await
        .unwrap()
        .id;
    // zoe (Collective B's provider) has no role anywhere: the target of the federation-wide operations.
    let zoe_id = me(&app.login(provider_b, "zoe", "zoe-pw").await).await.user_id;
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
    let spare_client = Idp::b().register_client(&app.base).await;
    // collective-a's swarm (the harness's engine), a recipe, and an app on it.
    let fed = &browsers.last().unwrap().1;
    fed.call::<ServerView>(
        "add_server",
        &[("slug", "collective-a"), ("name", "local"), ("kind", "unix"), ("address", swarm::SOCKET)],
    )
    .await
    .unwrap();
    let recipes = tempfile::tempdir().unwrap();
    let (_, remote) = publish(&fixture_recipe("hello"), recipes.path(), "hello");
    fed.call::<RecipeSummary>("register_recipe", &[("repository", &remote.display().to_string())]).await.unwrap();
    fed.call::<AppSummary>("create_app", &app_form("matrix.example.org")).await.unwrap();
    let app_env = fed
        .call::<AppDetail>("get_app", &[("slug", "collective-a"), ("domain", "matrix.example.org")])
        .await
        .unwrap()
        .env;
    World {
        app,
        browsers,
        provider_a,
        provider_b,
        grace: grace_id,
        zoe: zoe_id,
        invitation,
        mapping,
        spare_client,
        app_env,
        _recipes: recipes,
    }
}

fn app_form(domain: &'static str) -> [(&'static str, &'static str); 5] {
    [("slug", "collective-a"), ("server", "local"), ("recipe", "hello"), ("domain", domain), ("version", "0.1.0+1.0")]
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
        "SELECT name || '|' || kind || '|' || address FROM servers ORDER BY 1",
        "SELECT domain || '|' || env FROM apps ORDER BY 1",
        "SELECT CAST(COUNT(*) AS TEXT) FROM audit_events",
    ] {
        out.extend(app.texts(q).await);
        out.push("--".into());
    }
    out
}

/// The form fields of a call, given the world.
type Args = Box<dyn Fn(&World) -> Vec<(&'static str, String)>>;

struct Op {
    endpoint: &'static str,
    need: Need,
    action: &'static str,
    scoped: bool,
    args: Args,
}

fn op(
    endpoint: &'static str,
    need: Need,
    action: &'static str,
    args: impl Fn(&World) -> Vec<(&'static str, String)> + 'static,
) -> Op {
    Op { endpoint, need, action, scoped: matches!(need, Need::Role(_)), args: Box::new(args) }
}

fn operations() -> Vec<Op> {
    let a = || ("slug", "collective-a".to_string());
    vec![
        op("update_collective", Need::Role(Who::Admin), "collective.update", move |_| {
            vec![a(), ("name", "Collective A, renamed".into()), ("description", "new".into())]
        }),
        op("set_member_role", Need::Role(Who::Admin), "member.set_role", move |w| {
            vec![a(), ("user_id", w.grace.to_string()), ("role", "maintainer".into())]
        }),
        op("create_invitation", Need::Role(Who::Admin), "invitation.create", move |_| {
            vec![a(), ("role", "viewer".into())]
        }),
        op("revoke_invitation", Need::Role(Who::Admin), "invitation.revoke", move |w| {
            vec![a(), ("invitation_id", w.invitation.to_string())]
        }),
        op("add_group_mapping", Need::Role(Who::Admin), "group_mapping.add", move |w| {
            vec![
                a(),
                ("provider_id", w.provider_a.to_string()),
                ("value", "new-group".into()),
                ("role", "viewer".into()),
            ]
        }),
        op("remove_group_mapping", Need::Role(Who::Admin), "group_mapping.remove", move |w| {
            vec![a(), ("mapping_id", w.mapping.to_string())]
        }),
        op("remove_member", Need::Role(Who::Admin), "member.remove", move |w| {
            vec![a(), ("user_id", w.grace.to_string())]
        }),
        op("add_server", Need::Role(Who::Admin), "server.add", move |_| {
            vec![a(), ("name", "second".into()), ("kind", "unix".into()), ("address", swarm::SOCKET.into())]
        }),
        op("remove_server", Need::Role(Who::Admin), "server.remove", move |_| vec![a(), ("name", "second".into())]),
        op("create_app", Need::Role(Who::Operator), "app.create", move |_| {
            app_form("matrix-new.example.org").into_iter().map(|(k, v)| (k, v.to_string())).collect()
        }),
        op("set_app_env", Need::Role(Who::Operator), "app.env.update", move |w| {
            vec![a(), ("domain", "matrix.example.org".into()), ("env", format!("{}\nGREETING=matrix\n", w.app_env))]
        }),
        op("delete_app", Need::Role(Who::Operator), "app.delete", move |_| {
            vec![a(), ("domain", "matrix-new.example.org".into())]
        }),
        op("create_api_token", Need::Role(Who::Viewer), "api_token.create", move |_| {
            vec![("name", "ci".into()), ("collective", "collective-a".into()), ("role", "viewer".into())]
        }),
        op("create_collective", Need::Federation, "collective.create", move |_| {
            vec![("slug", "collective-c".into()), ("name", "C".into()), ("description", String::new())]
        }),
        op("set_provider_collectives", Need::Federation, "identity_provider.set_collectives", move |w| {
            vec![("provider_id", w.provider_b.to_string()), ("collectives", "collective-a collective-b".into())]
        }),
        op("set_federation_admin", Need::Federation, "user.federation_admin.grant", move |w| {
            vec![("user_id", w.zoe.to_string()), ("admin", "true".into())]
        }),
        op("link_users", Need::Federation, "user.link", move |w| {
            vec![("keep_user_id", w.grace.to_string()), ("merge_user_id", w.zoe.to_string())]
        }),
        op("remove_provider", Need::Federation, "identity_provider.remove", move |w| {
            vec![("provider_id", w.provider_b.to_string())]
        }),
        op("add_provider", Need::Federation, "identity_provider.add", move |w| {
            vec![
                ("display_name", "Collective B SSO".into()),
                ("issuer_url", Idp::b().issuer),
                ("client_id", w.spare_client.0.clone()),
                ("client_secret", w.spare_client.1.clone()),
                ("groups_claim", "groups".into()),
                ("collectives", "collective-b".into()),
            ]
        }),
    ]
}

#[tokio::test]
async fn every_mutation_is_checked_for_every_kind_of_caller() {
    let w = world().await;
    let mut rows = Vec::new();
    for op in operations() {
        let args = (op.args)(&w);
        let form: Vec<(&str, &str)> = args.iter().map(|(k, v)| (*k, v.as_str())).collect();
        // Refusals first (they must change nothing), then the least privileged allowed caller.
        let allowed = EVERYONE.into_iter().find(|who| op.need.allows(*who)).unwrap();
        for who in EVERYONE.into_iter().filter(|who| !op.need.allows(*who)).chain([allowed]) {
            let before = snapshot(&w.app).await;
            let result = w.browser(who).call::<serde_json::Value>(op.endpoint, &form).await;
            if who == allowed {
                let value = result.unwrap_or_else(|f| {
                    panic!("{} as {who:?}: expected success, got {} {}", op.endpoint, f.status, f.body)
                });
                let after = snapshot(&w.app).await;
                assert_ne!(before, after, "{} as {who:?} changed nothing", op.endpoint);
                let events = w.app.count("SELECT COUNT(*) FROM audit_events").await;
                let before_events: i64 = before[before.len() - 2].parse().unwrap();
                assert_eq!(events, before_events + 1, "{}: exactly one audit event", op.endpoint);
                let last = w
                    .app
                    .texts("SELECT action || '|' || actor_name || '|' || COALESCE(collective, '-') FROM audit_events ORDER BY seq DESC LIMIT 1")
                    .await;
                let collective = if op.scoped { "collective-a" } else { "-" };
                let expected = format!("{}|{}|", op.action, w.name(who));
                assert!(
                    last[0].starts_with(&expected),
                    "{}: audit row {:?}, expected {expected}…",
                    op.endpoint,
                    last[0]
                );
                if op.scoped {
                    assert!(
                        last[0].ends_with(collective),
                        "{}: audit row {:?} names the collective",
                        op.endpoint,
                        last[0]
                    );
                }
                let _ = value;
                rows.push(format!("{:<26} {who:?}: ok", op.endpoint));
            } else {
                let failure = result.err().unwrap_or_else(|| panic!("{} as {who:?} was allowed", op.endpoint));
                let (status, kind) = op.need.refusal(who);
                assert_eq!(failure.status, status, "{} as {who:?}: {}", op.endpoint, failure.body);
                let error = failure
                    .error
                    .unwrap_or_else(|| panic!("{} as {who:?}: no error body: {}", op.endpoint, failure.body));
                assert_eq!(variant(&error), kind, "{} as {who:?}: {error:?}", op.endpoint);
                assert!(!error.to_string().is_empty());
                assert_eq!(
                    before,
                    snapshot(&w.app).await,
                    "{} as {who:?} was refused but changed something",
                    op.endpoint
                );
                rows.push(format!("{:<26} {who:?}: {status}", op.endpoint));
            }
        }
    }
    println!("{}", rows.join("\n"));
    w.app.stop().await;
}

#[tokio::test]
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

#[tokio::test]
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
