//! The REST API, its OpenAPI document, the health check, and answers to bad input.

use potluck_app::error::ApiError;
use potluck_app::model::{ApiTokenSummary, CollectiveSummary, CreatedApiToken};
use potluck_tests::TestApp;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_openapi() {
    let app = TestApp::spawn().await;
    let b = app.browser();
    let health = b.get("/healthz").await;
    assert_eq!(health.status(), 200);
    assert!(health.headers().contains_key("x-request-id"));
    let doc: serde_json::Value = b.get("/api/v1/openapi.json").await.json().await.unwrap();
    assert_eq!(doc["info"]["title"], "Potluck API");
    for path in ["/api/v1/me", "/api/v1/collectives", "/api/v1/collectives/{slug}/members/{user_id}", "/api/v1/audit"] {
        assert!(doc["paths"].get(path).is_some(), "{path} in the OpenAPI document");
    }
    assert!(doc["components"]["securitySchemes"].get("bearer").is_some());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_tokens_are_shown_once_stored_hashed_and_revocable() {
    let app = TestApp::spawn().await;
    let admin = app.bootstrap_admin().await;
    admin
        .call::<CollectiveSummary>("create_collective", &[("slug", "collective-a"), ("name", "A"), ("description", "")])
        .await
        .unwrap();
    let created: CreatedApiToken = admin
        .call(
            "create_api_token",
            &[("name", "deploys"), ("collective", "collective-a"), ("role", "operator"), ("expires_in_days", "30")],
        )
        .await
        .unwrap();
    let token = created.token.0.clone();
    assert!(token.starts_with("plk_"));
    let listed: Vec<ApiTokenSummary> = admin.call("list_api_tokens", &[]).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(!serde_json::to_string(&listed).unwrap().contains(&token), "never shown again");
    assert!(!app.texts("SELECT token_hash FROM api_tokens").await.contains(&token));

    let client = reqwest::Client::new();
    let list = |t: String| {
        let client = client.clone();
        let url = format!("{}/api/v1/collectives", app.base);
        async move { client.get(url).bearer_auth(t).send().await.unwrap() }
    };
    let ok = list(token.clone()).await;
    assert_eq!(ok.status(), 200);
    let cs: Vec<CollectiveSummary> = ok.json().await.unwrap();
    assert_eq!(cs.iter().map(|c| c.slug.as_str()).collect::<Vec<_>>(), ["collective-a"]);
    assert!(app.count("SELECT COUNT(*) FROM api_tokens WHERE last_used_at IS NOT NULL").await == 1);

    let wrong = list("plk_not-a-token".into()).await;
    assert_eq!(wrong.status(), 401);
    assert_eq!(wrong.json::<ApiError>().await.unwrap(), ApiError::Unauthenticated);

    // Expired.
    app.exec(&format!("UPDATE api_tokens SET expires_at = {}", potluck_server::adapters::db::now_ms() - 1)).await;
    assert_eq!(list(token.clone()).await.status(), 401);
    app.exec("UPDATE api_tokens SET expires_at = NULL").await;
    assert_eq!(list(token.clone()).await.status(), 200);

    // Revoked.
    admin.call::<()>("revoke_api_token", &[("token_id", &created.summary.id.to_string())]).await.unwrap();
    assert_eq!(list(token.clone()).await.status(), 401);
    // Tokens cannot mint tokens.
    let r = client.post(format!("{}/api/fn/create_api_token", app.base)).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), 401);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_clear_4xx() {
    let app = TestApp::spawn().await;
    let admin = app.bootstrap_admin().await;
    admin
        .call::<CollectiveSummary>("create_collective", &[("slug", "collective-a"), ("name", "A"), ("description", "")])
        .await
        .unwrap();

    let malformed = admin
        .call::<CollectiveSummary>("create_collective", &[("slug", "Not A Slug"), ("name", "x"), ("description", "")])
        .await
        .unwrap_err();
    assert_eq!(malformed.status, 422);
    assert!(malformed.body.contains("not a valid slug"), "{}", malformed.body);

    let duplicate = admin
        .call::<CollectiveSummary>("create_collective", &[("slug", "collective-a"), ("name", "x"), ("description", "")])
        .await
        .unwrap_err();
    assert_eq!(duplicate.status, 409);

    let unknown = admin.call::<serde_json::Value>("get_collective", &[("slug", "collective-zz")]).await.unwrap_err();
    assert_eq!(unknown.status, 404);
    assert!(matches!(unknown.error, Some(ApiError::NotFound { .. })));

    let bad_slug = admin.get("/api/v1/collectives/BAD%20SLUG").await;
    assert_eq!(bad_slug.status(), 422);

    let missing_args =
        admin.call::<serde_json::Value>("set_member_role", &[("slug", "collective-a")]).await.unwrap_err();
    assert_eq!(missing_args.status, 422, "{}", missing_args.body);

    let bad_role = admin
        .call::<serde_json::Value>("set_member_role", &[("slug", "collective-a"), ("user_id", "1"), ("role", "owner")])
        .await
        .unwrap_err();
    assert_eq!(bad_role.status, 422, "{}", bad_role.body);

    let bad_json = admin
        .client
        .put(format!("{}/api/v1/collectives/collective-a/members/1", app.base))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(bad_json.status(), 422);

    // A cross-site form post with the session cookie is refused.
    let cross = admin
        .client
        .post(format!("{}/api/fn/create_collective", app.base))
        .header("origin", "https://evil.example")
        .form(&[("slug", "evil"), ("name", "evil"), ("description", "")])
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), 403);
    assert_eq!(app.count("SELECT COUNT(*) FROM collectives WHERE slug = 'evil'").await, 0);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_post_with_an_idempotency_key_runs_once() {
    use potluck_app::model::{AppSummary, RecipeSummary, ServerView};
    use potluck_tests::recipes::{fixture_recipe, publish};
    let app = TestApp::spawn().await;
    let admin = app.bootstrap_admin().await;
    admin
        .call::<CollectiveSummary>("create_collective", &[("slug", "collective-a"), ("name", "A"), ("description", "")])
        .await
        .unwrap();
    admin
        .call::<ServerView>(
            "add_server",
            &[("slug", "collective-a"), ("name", "local"), ("kind", "unix"), ("address", potluck_tests::swarm::SOCKET)],
        )
        .await
        .unwrap();
    let recipes = tempfile::tempdir().unwrap();
    let (_, remote) = publish(&fixture_recipe("hello"), recipes.path(), "hello");
    admin.call::<RecipeSummary>("register_recipe", &[("repository", &remote.display().to_string())]).await.unwrap();
    let token: CreatedApiToken = admin
        .call(
            "create_api_token",
            &[("name", "ci"), ("collective", "collective-a"), ("role", "operator"), ("expires_in_days", "1")],
        )
        .await
        .unwrap();
    let client = reqwest::Client::new();
    let url = format!("{}/api/v1/collectives/collective-a/apps", app.base);
    let create = |key: &str, domain: &str| {
        client
            .post(&url)
            .bearer_auth(&token.token.0)
            .header("idempotency-key", key)
            .json(
                &serde_json::json!({ "server": "local", "recipe": "hello", "domain": domain, "version": "0.1.0+1.0" }),
            )
            .send()
    };

    // Two retries racing, then a third after the answer: one app, one audit event, one answer.
    let (a, b) = tokio::join!(create("try-1", "once.example.org"), create("try-1", "once.example.org"));
    let (a, b) = (a.unwrap(), b.unwrap());
    let statuses = [a.status().as_u16(), b.status().as_u16()];
    assert!(statuses.contains(&200), "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == 200 || *s == 409), "the loser hears the first still runs: {statuses:?}");
    let first: AppSummary = if a.status() == 200 { a.json().await.unwrap() } else { b.json().await.unwrap() };
    let again = create("try-1", "once.example.org").await.unwrap();
    assert_eq!(again.status(), 200);
    assert_eq!(again.headers().get("idempotent-replayed").map(|v| v.to_str().unwrap()), Some("true"));
    let replayed: AppSummary = again.json().await.unwrap();
    assert_eq!(replayed, first, "the first answer, again");
    assert_eq!(app.count("SELECT COUNT(*) FROM apps").await, 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM audit_events WHERE action = 'app.create'").await, 1);

    // A first request whose replica stopped before it answered frees its key after a while:
    // the retry runs (here it finds the app made, and says so).
    app.exec("UPDATE idempotency_keys SET status = NULL, body = NULL, created_at = 0 WHERE idem_key = 'try-1'").await;
    let taken_over = create("try-1", "once.example.org").await.unwrap();
    assert_eq!(taken_over.status(), 409, "ran again");
    assert!(taken_over.headers().get("idempotent-replayed").is_none());

    // Without a key, a retry is a second request (and this one conflicts).
    let plain = client
        .post(&url)
        .bearer_auth(&token.token.0)
        .json(&serde_json::json!({ "server": "local", "recipe": "hello", "domain": "once.example.org" }))
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), 409);
    // The same key with another request is refused; a malformed key too.
    let other = create("try-1", "other.example.org").await.unwrap();
    assert_eq!(other.status(), 422);
    assert!(other.text().await.unwrap().contains("came first with another request"));
    let bad = create("has spaces", "bad.example.org").await.unwrap();
    assert_eq!(bad.status(), 422);
    assert_eq!(app.count("SELECT COUNT(*) FROM apps").await, 1);

    // Keys are the caller's own: the admin's session using the same key runs its own request.
    let own = admin
        .client
        .post(&url)
        .header("idempotency-key", "try-1")
        .json(&serde_json::json!({ "server": "local", "recipe": "hello", "domain": "mine.example.org" }))
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), 200);
    assert_eq!(app.count("SELECT COUNT(*) FROM apps").await, 2);
    // An answer holding a value shown once (a new token) is never kept: its retry hears that it
    // was answered, and nothing of it is stored.
    let mint = || {
        admin
            .client
            .post(format!("{}/api/v1/tokens", app.base))
            .header("idempotency-key", "mint-1")
            .json(&serde_json::json!({ "name": "deploys", "collective": "collective-a", "role": "viewer", "expires_in_days": 1 }))
            .send()
    };
    let minted = mint().await.unwrap();
    assert_eq!(minted.status(), 200);
    let minted: CreatedApiToken = minted.json().await.unwrap();
    let again = mint().await.unwrap();
    assert_eq!(again.status(), 409);
    let said = again.text().await.unwrap();
    assert!(said.contains("its answer is not kept") && !said.contains(&minted.token.0), "{said}");
    assert_eq!(app.count("SELECT COUNT(*) FROM api_tokens WHERE name = 'deploys'").await, 1, "minted once");
    let kept = app.texts("SELECT COALESCE(body, '') FROM idempotency_keys").await.join("\n");
    assert!(!kept.contains("plk_"), "no token in the kept answers");

    let doc: serde_json::Value = admin.get("/api/v1/openapi.json").await.json().await.unwrap();
    let params = doc["paths"]["/api/v1/collectives/{slug}/apps"]["post"]["parameters"].as_array().unwrap();
    assert!(params.iter().any(|p| p["name"] == "Idempotency-Key" && p["in"] == "header"));
    app.stop().await;
}

/// Everything the pages can do (every operation they call) has a REST route in the served
/// OpenAPI document, with its answer's schema.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_action_has_a_documented_api_route() {
    // Operations the pages use that the API has in another form, and why.
    let elsewhere = [("me", "the API's `GET /api/v1/me` (whoami) answers the same for tokens and sessions")];
    let app = TestApp::spawn().await;
    let doc: serde_json::Value = app.browser().get("/api/v1/openapi.json").await.json().await.unwrap();
    let mut missing = Vec::new();
    for op in potluck_app::api::all_operations() {
        if elsewhere.iter().any(|(name, _)| *name == op.name) {
            continue;
        }
        let Some(http) = op.http else {
            missing.push(format!("{}: no HTTP route", op.name));
            continue;
        };
        let path = if op.raw { http.path.to_string() } else { format!("/api/v1{}", http.path) };
        let route = &doc["paths"][&path][http.method.to_ascii_lowercase()];
        if !route.is_object() {
            missing.push(format!("{}: {} {path} is not in the document", op.name, http.method));
        } else if !op.raw && !route["responses"]["200"]["content"]["application/json"]["schema"].is_object() {
            missing.push(format!("{}: {} {path} has no answer schema", op.name, http.method));
        } else if route["operationId"] != op.name {
            missing.push(format!("{}: {} {path} is documented as {}", op.name, http.method, route["operationId"]));
        }
    }
    assert!(missing.is_empty(), "page actions without a documented API route:\n{}", missing.join("\n"));
    app.stop().await;
}
