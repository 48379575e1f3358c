//! Sign-in against several issuers, group mappings, sessions, linking, and the sign-in errors.

use potluck_app::error::ApiError;
use potluck_app::model::{Me, ProviderAdmin, Role};
use potluck_tests::{location, Browser, Idp, TestApp};

async fn me(b: &potluck_tests::Browser) -> Option<Me> {
    b.call::<Option<Me>>("me", &[]).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bootstrap_link_makes_the_first_admin_once() {
    let app = TestApp::spawn().await;
    let link = potluck_server::domain::identity::bootstrap::create_link(&app.state.db, &app.base).await.unwrap();
    assert!(link.starts_with(&format!("{}/bootstrap/", app.base)));
    let token = link.rsplit('/').next().unwrap();
    // The link itself only shows a confirmation page (link previews cannot use it up).
    let page = app.browser().get(&format!("/bootstrap/{token}")).await;
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("Make me federation admin"));

    let admin = app.browser();
    let r = admin.post_form("/auth/bootstrap", &[("token", token)]).await;
    assert_eq!(r.status(), 303);
    assert!(me(&admin).await.unwrap().is_federation_admin);

    let again = app.browser().post_form("/auth/bootstrap", &[("token", token)]).await;
    assert_eq!(again.status(), 303);
    assert!(location(&again).starts_with("/login?error="), "a used link is refused: {}", location(&again));
    assert_eq!(app.count("SELECT COUNT(*) FROM users WHERE is_federation_admin = 1").await, 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adding_a_provider_checks_its_discovery_document() {
    let app = TestApp::spawn().await;
    let admin = app.bootstrap_admin().await;
    let unreachable = admin
        .call::<ProviderAdmin>(
            "add_provider",
            &[
                ("display_name", "Gone"),
                ("issuer_url", "http://127.0.0.1:9"),
                ("client_id", "x"),
                ("client_secret", "y"),
                ("groups_claim", ""),
                ("collectives", ""),
            ],
        )
        .await
        .unwrap_err();
    assert_eq!(unreachable.status, 422);
    assert!(unreachable.body.contains("cannot reach"), "{}", unreachable.body);

    // Potluck itself is reachable but is no OpenID issuer.
    let not_oidc = admin
        .call::<ProviderAdmin>(
            "add_provider",
            &[
                ("display_name", "Nope"),
                ("issuer_url", &app.base),
                ("client_id", "x"),
                ("client_secret", "y"),
                ("groups_claim", ""),
                ("collectives", ""),
            ],
        )
        .await
        .unwrap_err();
    assert_eq!(not_oidc.status, 422);
    assert!(not_oidc.body.contains("HTTP 404"), "{}", not_oidc.body);

    let bad = admin
        .call::<ProviderAdmin>(
            "add_provider",
            &[
                ("display_name", ""),
                ("issuer_url", "ftp://x"),
                ("client_id", ""),
                ("client_secret", ""),
                ("groups_claim", ""),
                ("collectives", ""),
            ],
        )
        .await
        .unwrap_err();
    match bad.error {
        Some(ApiError::Validation { fields }) => {
            let names: Vec<_> = fields.iter().map(|f| f.field.as_str()).collect();
            assert_eq!(names, ["display_name", "issuer_url", "client_id", "client_secret"]);
        }
        other => panic!("expected validation errors, got {other:?}"),
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM identity_providers").await, 0);

    let idp = Idp::a();
    let (client_id, secret) = idp.register_client(&app.base).await;
    let added = app.add_provider_with(&admin, &idp, &client_id, &secret, &[]).await.unwrap();
    assert_eq!(added.issuer_url, idp.issuer);
    assert!(added.end_session_supported);
    // The secret is stored encrypted, and never sent back.
    let stored = app.texts("SELECT display_name FROM identity_providers").await;
    assert_eq!(stored, ["Collective A SSO"]);
    let overview =
        admin.client.post(format!("{}/api/fn/list_providers", app.base)).send().await.unwrap().text().await.unwrap();
    assert!(!overview.contains(&secret));
    let raw: Vec<u8> = {
        use sqlx::Row;
        sqlx::query("SELECT client_secret_enc FROM identity_providers")
            .fetch_one(app.state.db.pool())
            .await
            .unwrap()
            .get(0)
    };
    assert!(!String::from_utf8_lossy(&raw).contains(&secret));
    let dup = app.add_provider_with(&admin, &idp, &client_id, &secret, &[]).await.unwrap_err();
    assert_eq!(dup.status, 409);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_name_at_two_issuers_is_two_people() {
    let app = TestApp::spawn().await;
    let admin = app.bootstrap_admin().await;
    let a = app.add_provider(&admin, &Idp::a(), &[]).await;
    let b = app.add_provider(&admin, &Idp::b(), &[]).await;
    let alice_a = me(&app.login(a, "alice", "alice-pw").await).await.unwrap();
    let alice_b = me(&app.login(b, "alice", "alice-b-pw").await).await.unwrap();
    assert_ne!(alice_a.user_id, alice_b.user_id);
    assert_eq!(alice_a.display_name, "Alice Arden");
    assert_eq!(alice_b.display_name, "Alice Bauer");
    // Signing in again finds the same person.
    let again = me(&app.login(a, "alice", "alice-pw").await).await.unwrap();
    assert_eq!(again.user_id, alice_a.user_id);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_claims_map_to_roles_at_every_sign_in() {
    let app = TestApp::spawn().await;
    let idp = Idp::a();
    let admin = app.bootstrap_admin().await;
    admin
        .call::<serde_json::Value>(
            "create_collective",
            &[("slug", "collective-a"), ("name", "Collective A"), ("description", "")],
        )
        .await
        .unwrap();
    let a = app.add_provider(&admin, &idp, &["collective-a"]).await;
    for (group, role) in [("collective-a-admins", "admin"), ("collective-a-members", "viewer")] {
        admin
            .call::<serde_json::Value>(
                "add_group_mapping",
                &[("slug", "collective-a"), ("provider_id", &a.to_string()), ("value", group), ("role", role)],
            )
            .await
            .unwrap();
    }
    let alice = me(&app.login(a, "alice", "alice-pw").await).await.unwrap();
    assert_eq!(alice.role_in("collective-a"), Some(Role::Admin));
    let bob = me(&app.login(a, "bob", "bob-pw").await).await.unwrap();
    assert_eq!(bob.role_in("collective-a"), Some(Role::Viewer));

    idp.set_groups("frank", &["collective-a-members"]).await;
    let frank = me(&app.login(a, "frank", "frank-pw").await).await.unwrap();
    assert_eq!(frank.role_in("collective-a"), Some(Role::Viewer));
    // Removed from the group at the provider: the role goes at the next sign-in.
    idp.set_groups("frank", &[]).await;
    let frank_b = app.login(a, "frank", "frank-pw").await;
    assert_eq!(me(&frank_b).await.unwrap().role_in("collective-a"), None);
    let denied = frank_b.call::<serde_json::Value>("get_collective", &[("slug", "collective-a")]).await.unwrap_err();
    assert_eq!(denied.status, 404);
    // A manual grant by an admin is not touched by the provider's groups.
    admin
        .call::<serde_json::Value>(
            "set_member_role",
            &[("slug", "collective-a"), ("user_id", &frank.user_id.to_string()), ("role", "operator")],
        )
        .await
        .unwrap();
    let frank_c = me(&app.login(a, "frank", "frank-pw").await).await.unwrap();
    assert_eq!(frank_c.role_in("collective-a"), Some(Role::Operator));
    // Mappings of a provider apply only to the collectives it serves.
    let b = app.add_provider(&admin, &Idp::b(), &[]).await;
    let e = admin
        .call::<serde_json::Value>(
            "add_group_mapping",
            &[("slug", "collective-a"), ("provider_id", &b.to_string()), ("value", "x"), ("role", "admin")],
        )
        .await
        .unwrap_err();
    assert_eq!(e.status, 422);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_is_bound_to_its_provider_and_browser() {
    let app = TestApp::spawn().await;
    let admin = app.bootstrap_admin().await;
    let a = app.add_provider(&admin, &Idp::a(), &[]).await;
    let _b = app.add_provider(&admin, &Idp::b(), &[]).await;
    let login_error = |r: &reqwest::Response| {
        let l = location(r);
        assert!(l.starts_with("/login?error="), "expected a sign-in error, got {} {l}", r.status());
        urlencoding_decode(l.trim_start_matches("/login?error="))
    };

    // A forged state.
    let browser = app.browser();
    let forged = browser.get("/auth/callback?code=abc&state=forged").await;
    assert!(login_error(&forged).contains("unknown or already used sign-in attempt"));

    // A real state, but the answer claims to come from the other issuer (mix-up).
    let start = browser.get(&format!("/auth/login/{a}")).await;
    let state = query_param(&location(&start), "state");
    let mixup =
        browser.get(&format!("/auth/callback?code=abc&state={state}&iss={}", urlencode(&Idp::b().issuer))).await;
    assert!(login_error(&mixup).contains("issuer mix-up"), "{}", login_error(&mixup));

    // A real state presented by another browser (login CSRF).
    let start = browser.get(&format!("/auth/login/{a}")).await;
    let state = query_param(&location(&start), "state");
    let other = app.browser().get(&format!("/auth/callback?code=abc&state={state}")).await;
    assert!(login_error(&other).contains("another browser"));

    // The provider's own refusal is shown too.
    let start = browser.get(&format!("/auth/login/{a}")).await;
    let state = query_param(&location(&start), "state");
    let refused =
        browser.get(&format!("/auth/callback?error=access_denied&error_description=nope&state={state}")).await;
    assert!(login_error(&refused).contains("access_denied"));

    // A state is used once.
    let end = browser.sign_in(a, "alice", "alice-pw").await;
    assert!(!end.contains("error"), "{end}");
    assert_eq!(app.count("SELECT COUNT(*) FROM login_states").await, 0);

    // An unknown provider.
    let unknown = app.browser().get("/auth/login/999").await;
    assert!(login_error(&unknown).contains("not found"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_client_secret_is_a_sign_in_error() {
    let app = TestApp::spawn().await;
    let admin = app.bootstrap_admin().await;
    let idp = Idp::a();
    let (client_id, _) = idp.register_client(&app.base).await;
    let p = app.add_provider_with(&admin, &idp, &client_id, "not-the-secret", &[]).await.unwrap();
    let end = app.browser().sign_in(p.id, "alice", "alice-pw").await;
    assert!(end.contains("/login?error="), "{end}");
    assert!(urlencoding_decode(&end).contains("invalid_client"), "{}", urlencoding_decode(&end));
    assert_eq!(app.count("SELECT COUNT(*) FROM sessions").await, 1, "only the bootstrap admin's session");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_expire_and_tampered_cookies_are_anonymous() {
    let app = TestApp::spawn().await;
    let admin = app.bootstrap_admin().await;
    let a = app.add_provider(&admin, &Idp::a(), &[]).await;
    let alice = app.login(a, "alice", "alice-pw").await;
    assert_eq!(alice.get("/api/v1/me").await.status(), 200);
    let cookie = alice.cookie("potluck_session").unwrap();

    // Tampered cookie.
    let r = app
        .browser()
        .client
        .get(format!("{}/api/v1/me", app.base))
        .header("cookie", format!("potluck_session={cookie}x"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let body: ApiError = r.json().await.unwrap();
    assert_eq!(body, ApiError::Unauthenticated);

    // Idle expiry: the session was last seen three hours ago (idle limit two hours).
    let three_hours_ago = potluck_server::adapters::db::now_ms() - 3 * 3600 * 1000;
    app.exec(&format!(
        "UPDATE sessions SET last_seen_at = {three_hours_ago} WHERE user_id <> (SELECT MIN(id) FROM users)"
    ))
    .await;
    let expired = alice.get("/api/v1/me").await;
    assert_eq!(expired.status(), 401);
    let cleared =
        expired.headers().get_all("set-cookie").iter().any(|v| v.to_str().unwrap().starts_with("potluck_session=;"));
    assert!(cleared, "the dead cookie is cleared");

    // Absolute expiry, whatever the activity.
    let alice = app.login(a, "alice", "alice-pw").await;
    app.exec(&format!(
        "UPDATE sessions SET expires_at = {} WHERE user_id <> (SELECT MIN(id) FROM users)",
        potluck_server::adapters::db::now_ms() - 1
    ))
    .await;
    assert_eq!(alice.get("/api/v1/me").await.status(), 401);
    // The page sends her to sign in, and back.
    let page = alice.get("/account").await;
    assert_eq!(page.status(), 303);
    assert_eq!(potluck_tests::location(&page), "/login?return_to=%2Faccount");
    assert!(page.text().await.unwrap().contains("Please sign in"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_in_again_gives_a_new_session_and_logout_ends_both_sessions() {
    let app = TestApp::spawn().await;
    let admin = app.bootstrap_admin().await;
    let a = app.add_provider(&admin, &Idp::a(), &[]).await;
    let alice = app.login(a, "alice", "alice-pw").await;
    let first = alice.cookie("potluck_session").unwrap();
    let end = alice.sign_in(a, "alice", "alice-pw").await;
    assert_eq!(end, format!("{}/", app.base));
    let second = alice.cookie("potluck_session").unwrap();
    assert_ne!(first, second);
    let r = app
        .browser()
        .client
        .get(format!("{}/api/v1/me", app.base))
        .header("cookie", format!("potluck_session={first}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "the old session ended");

    // The sign-out form is redirected to the provider, and browsers hold every redirect of a
    // form submission to the page's `form-action`: her pages allow her provider, and no other.
    let idp_origin = url::Url::parse(&Idp::a().issuer).unwrap().origin().ascii_serialization();
    let csp = alice.get("/account").await.headers()["content-security-policy"].to_str().unwrap().to_string();
    let form_action = csp.split(';').map(str::trim).find(|d| d.starts_with("form-action")).unwrap().to_string();
    assert_eq!(form_action, format!("form-action 'self' {idp_origin}"), "{csp}");
    let anonymous = app.browser().get("/").await.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(anonymous.contains("form-action 'self';"), "{anonymous}");

    let out = alice.post_form("/auth/logout", &[]).await;
    assert_eq!(out.status(), 303);
    let to = location(&out);
    assert!(to.starts_with(&format!("{}/session/end?", Idp::a().issuer)), "RP-initiated logout at the provider: {to}");
    assert!(to.contains("client_id="));
    assert!(to.contains("post_logout_redirect_uri="));
    assert_eq!(alice.get("/api/v1/me").await.status(), 401);
    // The provider really ends its session: the next sign-in asks for the password again.
    let (page, url) = alice.follow(alice.get(&to).await).await;
    assert!(url.contains("/session/end"), "{url}");
    let html = page.text().await.unwrap();
    let xsrf = regex::Regex::new(r#"name="xsrf" value="([^"]+)""#).unwrap().captures(&html).unwrap()[1].to_string();
    let done = alice
        .client
        .post(format!("{}/session/end/confirm", Idp::a().issuer))
        .form(&[("xsrf", xsrf.as_str()), ("logout", "yes")])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&done), format!("{}/", app.base));
    let start = alice.get(&format!("/auth/login/{a}")).await;
    let (page, _) = alice.follow(start).await;
    assert!(page.text().await.unwrap().contains("id=\"password\""), "signed out at the provider");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_attempts_are_rate_limited_per_client() {
    let app = TestApp::spawn_with(|c| c.login_attempts_per_minute = 3).await;
    let admin = app.bootstrap_admin().await;
    let a = app.add_provider(&admin, &Idp::a(), &[]).await;
    let b = app.browser();
    for _ in 0..2 {
        assert_eq!(b.get(&format!("/auth/login/{a}")).await.status(), 303);
    }
    let limited = b.get(&format!("/auth/login/{a}")).await;
    assert_eq!(limited.status(), 429);
    assert_eq!(limited.headers().get("retry-after").unwrap(), "60");
    // A replica on the same database counts the same attempts.
    let replica = app.replica().await;
    let elsewhere = Browser { base: replica.base.clone(), client: b.client.clone(), jar: b.jar.clone() };
    assert_eq!(elsewhere.get(&format!("/auth/login/{a}")).await.status(), 429, "limited on every replica");
    // Another client address is not limited by this one's attempts.
    app.exec("UPDATE login_attempts SET client_addr = 'somebody else'").await;
    assert_eq!(elsewhere.get(&format!("/auth/login/{a}")).await.status(), 303);
    replica.stop().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_are_linked_by_their_owner_or_by_an_admin() {
    let app = TestApp::spawn().await;
    let admin = app.bootstrap_admin().await;
    let a = app.add_provider(&admin, &Idp::a(), &[]).await;
    let b = app.add_provider(&admin, &Idp::b(), &[]).await;
    let admin_id = me(&admin).await.unwrap().user_id;

    // The bootstrap account links its Collective A sign-in.
    let start = admin.post_form(&format!("/auth/link/{a}"), &[]).await;
    let end = admin.complete_at_idp(start, "carol", "carol-pw").await;
    assert_eq!(end, format!("{}/account", app.base));
    let carol = app.login(a, "carol", "carol-pw").await;
    assert_eq!(me(&carol).await.unwrap().user_id, admin_id, "carol's sign-in opens the admin account");

    // An identity that already has an account cannot be linked by someone else.
    let alice_a = app.login(a, "alice", "alice-pw").await;
    let bob = app.login(a, "bob", "bob-pw").await;
    let bob_id = me(&bob).await.unwrap().user_id;
    let start = alice_a.post_form(&format!("/auth/link/{a}"), &[]).await;
    let end = alice_a.complete_at_idp(start, "bob", "bob-pw").await;
    assert!(urlencoding_decode(&end).contains("already belongs to another account"), "{end}");
    assert_ne!(me(&alice_a).await.unwrap().user_id, bob_id);

    // A federation admin links alice@B into alice@A.
    let alice_a_id = me(&alice_a).await.unwrap().user_id;
    let alice_b_id = me(&app.login(b, "alice", "alice-b-pw").await).await.unwrap().user_id;
    admin
        .call::<()>(
            "link_users",
            &[("keep_user_id", &alice_a_id.to_string()), ("merge_user_id", &alice_b_id.to_string())],
        )
        .await
        .unwrap();
    let again = me(&app.login(b, "alice", "alice-b-pw").await).await.unwrap();
    assert_eq!(again.user_id, alice_a_id);
    assert_eq!(app.count(&format!("SELECT COUNT(*) FROM users WHERE id = {alice_b_id}")).await, 0);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_read_without_javascript() {
    let app = TestApp::spawn().await;
    let admin = app.bootstrap_admin().await;
    admin
        .call::<serde_json::Value>(
            "create_collective",
            &[("slug", "collective-a"), ("name", "Collective A"), ("description", "Bakers")],
        )
        .await
        .unwrap();
    let a = app.add_provider(&admin, &Idp::a(), &["collective-a"]).await;
    admin
        .call::<serde_json::Value>(
            "add_group_mapping",
            &[
                ("slug", "collective-a"),
                ("provider_id", &a.to_string()),
                ("value", "collective-a-members"),
                ("role", "viewer"),
            ],
        )
        .await
        .unwrap();
    let home = app.browser().get("/").await.text().await.unwrap();
    assert!(home.contains("Sign in with") && home.contains("Collective A SSO"), "{home}");
    let bob = app.login(a, "bob", "bob-pw").await;
    // The server-rendered HTML already holds the data (no wasm needed to read it).
    let page = bob.get("/c/collective-a").await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("Collective A") && html.contains("Bob Brandt") && html.contains("Bakers"), "{html}");
    assert!(!html.contains("Create invitation link"), "a viewer sees no admin forms");
    let missing = bob.get("/c/nope").await;
    assert_eq!(missing.status(), 404);
    let unknown_page = bob.get("/no/such/page").await;
    assert_eq!(unknown_page.status(), 404);
    app.stop().await;
}

fn query_param(url: &str, name: &str) -> String {
    url::Url::parse(url).unwrap().query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.to_string()).unwrap()
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn urlencoding_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.to_string())
        .unwrap_or_default()
}
