//! The web layer as an attacker's browser or proxy meets it: cookie-carrying writes from other
//! origins, forged `X-Forwarded-For` hops, sign-in redirects that lead off-site, and what every
//! page says about itself (Content-Security-Policy with the page's nonce, HSTS over https), the
//! public start page and the pages that send a visitor to sign in; the built site's files
//! under fingerprinted names, precompressed and cached for good.

use potluck_app::model::{CollectiveSummary, GroupMapping, Me};
use potluck_tests::{location, Idp, TestApp};
use std::collections::{BTreeMap, BTreeSet};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookie_carrying_writes_must_come_from_potluck_itself() {
    let app = TestApp::spawn().await;
    let admin = app.bootstrap_admin().await;
    let cookie = admin.cookie("potluck_session").unwrap();
    let plain = reqwest::Client::new();
    let write = |origin: Option<&'static str>, fetch_site: Option<&'static str>, slug: &'static str| {
        let mut r = plain
            .post(format!("{}/api/fn/create_collective", app.base))
            .header("cookie", format!("potluck_session={cookie}"))
            .header("accept", "application/json")
            .form(&[("slug", slug), ("name", slug), ("description", "")]);
        if let Some(o) = origin {
            r = r.header("origin", o);
        }
        if let Some(s) = fetch_site {
            r = r.header("sec-fetch-site", s);
        }
        r.send()
    };
    let refused = [
        (Some("null"), None, "from an opaque origin (a sandboxed frame, a data: page)"),
        (Some("https://evil.example"), None, "from another site"),
        (None, None, "without saying where it comes from"),
        (None, Some("cross-site"), "that the browser marks cross-site"),
    ];
    for (origin, site, what) in refused {
        let r = write(origin, site, "c-refused").await.unwrap();
        assert_eq!(r.status(), 403, "a write {what} is refused");
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM collectives").await, 0, "nothing was written");
    let base: &'static str = Box::leak(app.base.clone().into_boxed_str());
    assert_eq!(write(Some(base), None, "c-origin").await.unwrap().status(), 200);
    assert_eq!(write(None, Some("same-origin"), "c-fetch-site").await.unwrap().status(), 200);
    // Server functions are POSTs, reads included: a cookie-carrying one needs its origin too.
    let r = plain
        .post(format!("{}/api/fn/list_collectives", app.base))
        .header("cookie", format!("potluck_session={cookie}"))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_for_is_believed_only_from_trusted_proxies() {
    for (proxies, expected) in [(vec![], "127.0.0.1"), (vec!["127.0.0.1/32".to_string()], "198.51.100.7")] {
        let app = TestApp::spawn_with(|c| c.trusted_proxies = proxies.clone()).await;
        let link = potluck_server::domain::identity::bootstrap::create_link(&app.state.db, &app.base).await.unwrap();
        let token = link.rsplit('/').next().unwrap().to_string();
        // The client's own entry (first) is whatever it likes; the proxy appended the address
        // it saw.
        let r = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .post(format!("{}/auth/bootstrap", app.base))
            .header("x-forwarded-for", "6.6.6.6, 198.51.100.7")
            .form(&[("token", token.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303);
        let addr = app.texts("SELECT client_addr FROM audit_events WHERE action = 'bootstrap.claim'").await.remove(0);
        assert_eq!(addr, expected, "trusted proxies {proxies:?}");
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_returns_only_to_paths_of_this_site() {
    let app = TestApp::spawn().await;
    let admin = app.bootstrap_admin().await;
    let provider = app.add_provider(&admin, &Idp::a(), &[] as &[&str]).await;
    for (return_to, expected) in [
        ("/%09/evil.example", "/"),
        ("//evil.example", "/"),
        ("/%5Cevil.example", "/"),
        ("https://evil.example/", "/"),
        ("/account", "/account"),
    ] {
        let b = app.browser();
        let encoded: String = url::form_urlencoded::byte_serialize(return_to.as_bytes()).collect();
        let start = b.get(&format!("/auth/login/{provider}?return_to={encoded}")).await;
        let end = b.complete_at_idp(start, "grace", "grace-pw").await;
        assert_eq!(end, format!("{}{expected}", app.base), "return_to {return_to:?}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_say_what_may_run_and_who_may_see_them() {
    let app = TestApp::spawn().await;
    let anonymous = app.browser();
    // The start page is public.
    let r = anonymous.get("/").await;
    assert_eq!(r.status(), 200);
    let csp = r.headers()["content-security-policy"].to_str().unwrap().to_string();
    let html = r.text().await.unwrap();
    let nonce = csp.split("'nonce-").nth(1).and_then(|s| s.split('\'').next()).unwrap().to_string();
    assert!(nonce.len() >= 16, "{csp}");
    assert!(html.contains(&format!("nonce=\"{nonce}\"")), "the hydration script carries the page's nonce");
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("object-src 'none'"), "{csp}");
    let again = anonymous.get("/").await.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert_ne!(again, csp, "a new nonce for every page");
    // A page that needs a session sends the visitor to sign in, and back.
    let r = anonymous.get("/account").await;
    assert!(r.status().is_redirection(), "{}", r.status());
    assert_eq!(location(&r), "/login?return_to=%2Faccount");
    let r = anonymous.get("/c/collective-a/apps").await;
    assert!(r.status().is_redirection(), "{}", r.status());
    // Not a page: JSON answers keep their status.
    assert_eq!(anonymous.get("/api/v1/me").await.status(), 401);
    // No HSTS over plain http…
    assert!(anonymous.get("/healthz").await.headers().get("strict-transport-security").is_none());
    app.stop().await;
    // …and HSTS when people reach Potluck over https.
    let https = TestApp::spawn_with(|c| c.public_url = Some(url::Url::parse("https://potluck.example").unwrap())).await;
    let r = reqwest::get(format!("{}/healthz", https.base)).await.unwrap();
    assert!(r.headers()["strict-transport-security"].to_str().unwrap().contains("max-age="));
    https.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_in_start_page_lists_the_collectives() {
    let app = TestApp::spawn().await;
    let admin = app.bootstrap_admin().await;
    admin
        .call::<CollectiveSummary>("create_collective", &[("slug", "c-one"), ("name", "C One"), ("description", "")])
        .await
        .unwrap();
    let me: Option<Me> = admin.call("me", &[]).await.unwrap();
    assert!(me.unwrap().is_federation_admin);
    let r = admin.get("/").await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("C One"));
    app.stop().await;
}

/// Anonymous visitors arrive together (a link posted to a chat) while another Potluck in the
/// same process builds its router (the integration suites do that all the time; a process that
/// serves several listeners would too): every visitor gets the start page with its sign-in
/// buttons, the sign-in page and an invitation page, and none waits for ever. Generating the
/// page routes runs the app with resource loading switched off process-wide, and a page whose
/// resource first ran in that moment never finished (leptos-rs/leptos#4773); the route list is
/// now generated once per process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_visitors_arriving_together_all_get_their_pages() {
    use futures_util::future::join_all;
    use std::sync::atomic::{AtomicBool, Ordering};
    let app = TestApp::spawn().await;
    let admin = app.bootstrap_admin().await;
    app.add_provider(&admin, &Idp::a(), &[]).await;
    let done = std::sync::Arc::new(AtomicBool::new(false));
    let builder = {
        let (state, done) = (app.state.clone(), done.clone());
        let runtime = tokio::runtime::Handle::current();
        std::thread::spawn(move || {
            let _runtime = runtime.enter();
            let mut built = 0u32;
            while !done.load(Ordering::Relaxed) {
                drop(potluck_server::transport::http::router(state.clone()));
                built += 1;
            }
            built
        })
    };
    for round in 0..6 {
        let pages = (0..48).map(|i| {
            let path = ["/", "/login?return_to=/recipes", "/invite/not-a-token"][i % 3];
            let b = app.browser();
            async move {
                let r = tokio::time::timeout(std::time::Duration::from_secs(20), b.get(path))
                    .await
                    .unwrap_or_else(|_| panic!("round {round}: {path} did not answer within 20 s"));
                assert_eq!(r.status(), 200, "{path}");
                let csp = r.headers()["content-security-policy"].to_str().unwrap().to_string();
                let html = r.text().await.unwrap();
                // Text nodes are separated by hydration markers (`<!>`), which say nothing here.
                assert!(
                    html.replace("<!>", "")
                        .contains(r#"data-provider="1" class="button">Sign in with Collective A SSO</a>"#),
                    "{path} shows the sign-in button: {html}"
                );
                // Every script of the page, the streamed resources too, carries this page's nonce.
                let nonces: std::collections::BTreeSet<&str> =
                    html.split("nonce=\"").skip(1).filter_map(|s| s.split('"').next()).collect();
                assert_eq!(nonces.len(), 1, "{path}: one nonce per page: {nonces:?}");
                let nonce = nonces.first().unwrap();
                assert!(csp.contains(&format!("'nonce-{nonce}'")), "{path}: {csp}");
            }
        });
        join_all(pages).await;
    }
    done.store(true, Ordering::Relaxed);
    assert!(builder.join().unwrap() > 0, "routers were built while the visitors arrived");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sites_files_are_fingerprinted_precompressed_and_cached_for_good() {
    let app = TestApp::spawn().await;
    assert!(
        potluck_tests::workspace_root().join("target/site/hash.txt").is_file(),
        "the site is not built: scripts/build.sh (make test builds it) writes target/site/hash.txt"
    );
    let plain = reqwest::Client::new();
    let page = plain.get(format!("{}/", app.base)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(
        page.headers()["cache-control"],
        "private, no-cache",
        "a page is asked for again every time, and kept by no shared cache"
    );
    let html = page.text().await.unwrap();
    let named = |ext: &str| -> String {
        let re = regex::Regex::new(&format!(r"/pkg/potluck\.[0-9a-f]{{16}}\.{ext}\b")).unwrap();
        re.find(&html).unwrap_or_else(|| panic!("the page links no fingerprinted .{ext}: {html}")).as_str().to_string()
    };
    for path in [named("wasm"), named("js"), named("css")] {
        let get = |encoding: &'static str| {
            plain.get(format!("{}{path}", app.base)).header("accept-encoding", encoding).send()
        };
        let whole = get("identity").await.unwrap();
        assert_eq!(whole.status(), 200, "{path}");
        assert_eq!(whole.headers()["cache-control"], "public, max-age=31536000, immutable", "{path}");
        assert!(whole.headers().get("content-encoding").is_none(), "{path}");
        let content_type = whole.headers()["content-type"].clone();
        let size = whole.bytes().await.unwrap().len();
        for encoding in ["br", "gzip"] {
            let packed = get(encoding).await.unwrap();
            assert_eq!(packed.headers()["content-encoding"], encoding, "{path}");
            assert_eq!(packed.headers()["content-type"], content_type, "{path} keeps its type");
            assert_eq!(packed.headers()["cache-control"], "public, max-age=31536000, immutable");
            let packed_size = packed.bytes().await.unwrap().len();
            assert!(packed_size < size, "{path}: {encoding} {packed_size} B, whole {size} B");
        }
    }
    // A name the build did not make is not found, and not kept.
    let missing = plain.get(format!("{}/pkg/potluck.0123456789abcdef.wasm", app.base)).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(missing.headers()["cache-control"], "no-cache");
}

/// The modules of each lazily loaded area, from the build's split manifest (`hash.txt` names it).
fn split_manifest() -> std::collections::BTreeMap<String, Vec<String>> {
    let site = potluck_tests::workspace_root().join("target/site");
    let hashes = std::fs::read_to_string(site.join("hash.txt")).expect("a built site (scripts/build.sh)");
    let hash = hashes.lines().find_map(|l| l.strip_prefix("manifest: ")).expect("the build splits the bundle");
    let text = std::fs::read_to_string(site.join(format!("pkg/__wasm_split_manifest.{hash}.json"))).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_names_its_areas_modules_for_the_browser_and_the_start_page_none() {
    let app = TestApp::spawn().await;
    let fed = app.bootstrap_admin().await;
    fed.call::<CollectiveSummary>("create_collective", &[("slug", "lazy"), ("name", "Lazy"), ("description", "")])
        .await
        .unwrap();
    let manifest = split_manifest();
    let areas: BTreeSet<&str> = manifest.keys().map(String::as_str).collect();
    assert_eq!(areas, BTreeSet::from(["apps", "care", "catalogue", "governance"]), "every area is checked below");
    let plain = reqwest::Client::new();
    let cases = [
        ("/", None),
        ("/login", None),
        ("/collectives", Some("governance")),
        ("/audit", Some("governance")),
        ("/c/lazy/apps", Some("apps")),
        ("/c/lazy/servers", Some("apps")),
        ("/c/lazy/backups", Some("care")),
        ("/fleet", Some("care")),
        ("/recipes", Some("catalogue")),
    ];
    for (path, area) in cases {
        // Each time anew (a query is part of the page cache's key): Leptos' own links for a
        // lazy page came only now and then.
        for round in 0..4 {
            let response = fed.get(&format!("{path}?round={round}")).await;
            let links: Vec<String> =
                response.headers().get_all("link").iter().map(|v| v.to_str().unwrap().to_string()).collect();
            let named: BTreeSet<String> = links
                .iter()
                .map(|link| {
                    let module = link.strip_prefix("</pkg/").and_then(|l| l.split_once(".wasm>")).map(|(m, _)| m);
                    assert!(link.contains("; rel=preload; as=fetch;") && link.ends_with("; crossorigin"), "{link}");
                    module.unwrap_or_else(|| panic!("{path}: {link}")).to_string()
                })
                .collect();
            let expected: BTreeSet<String> = area.map(|a| manifest[a].iter().cloned().collect()).unwrap_or_default();
            assert_eq!(named, expected, "{path} (round {round}) preloads its area's modules and no other");
            let html = response.text().await.unwrap();
            assert!(
                !html.contains("rel=\"preload\" type=\"application/wasm\""),
                "{path}: no <link> in the head either"
            );
        }
    }
    for module in manifest.values().flatten() {
        let served = plain.get(format!("{}/pkg/{module}.wasm", app.base)).send().await.unwrap();
        assert_eq!(served.status(), 200, "{module}");
        assert_eq!(served.headers()["content-type"], "application/wasm", "{module}");
        assert_eq!(served.headers()["cache-control"], "public, max-age=31536000, immutable", "{module}");
    }
}

async fn page(b: &potluck_tests::Browser, path: &str) -> (String, String, String) {
    let r = b.get(path).await;
    assert_eq!(r.status(), 200, "{path}");
    let kept = r.headers().get("x-potluck-cache").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    let headers = r.headers().clone();
    let body = r.text().await.unwrap();
    let policy = headers["content-security-policy"].to_str().unwrap();
    let at = policy.find("'nonce-").expect("the policy names a nonce") + "'nonce-".len();
    let named = policy[at..].split('\'').next().unwrap().to_string();
    let carried: Vec<&str> =
        body.match_indices(" nonce=\"").map(|(i, m)| body[i + m.len()..].split('"').next().unwrap()).collect();
    assert!(!carried.is_empty() && carried.iter().all(|n| *n == named), "every script carries the policy's nonce");
    let body = body.replace(&named, "NONCE");
    (kept, named, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_page_shows_every_change_to_its_own_person_with_a_nonce_of_its_own() {
    let app = TestApp::spawn().await;
    let fed = app.bootstrap_admin().await;
    fed.call::<CollectiveSummary>("create_collective", &[("slug", "kept"), ("name", "Kept"), ("description", "")])
        .await
        .unwrap();
    let provider = app.add_provider(&fed, &Idp::a(), &["kept"]).await;
    fed.call::<GroupMapping>(
        "add_group_mapping",
        &[
            ("slug", "kept"),
            ("provider_id", &provider.to_string()),
            ("value", "collective-a-members"),
            ("role", "viewer"),
        ],
    )
    .await
    .unwrap();
    let bob = app.login(provider, "bob", "bob-pw").await;

    // Rendered once, then served again with a nonce of its own each time.
    let (kept, first_nonce, first) = page(&fed, "/c/kept").await;
    assert_eq!(kept, "miss");
    let (kept, second_nonce, second) = page(&fed, "/c/kept").await;
    assert_eq!(kept, "hit", "the same page at the same version is served again");
    assert_ne!(first_nonce, second_nonce, "each response has its own nonce");
    assert_eq!(first, second, "the same page, but for its nonce");

    // Another person never gets it: bob renders his own, without the admin's forms.
    let (kept, _, bobs) = page(&bob, "/c/kept").await;
    assert_eq!(kept, "miss", "another person's copy is not served to bob");
    assert!(first.contains("Edit name and description") && !bobs.contains("Edit name and description"));

    // A write no Potluck code made (and no audit event records) shows on the next request.
    app.exec("UPDATE collectives SET name = 'Renamed behind its back' WHERE slug = 'kept'").await;
    let (kept, _, after) = page(&fed, "/c/kept").await;
    assert_eq!(kept, "miss");
    assert!(after.contains("Renamed behind its back"), "the page shows the write");
    let (kept, _, bobs) = page(&bob, "/c/kept").await;
    assert_eq!(kept, "miss");
    assert!(bobs.contains("Renamed behind its back"));

    // A change through Potluck shows too; so does a role taken away (bob's page is gone).
    fed.call::<CollectiveSummary>(
        "update_collective",
        &[("slug", "kept"), ("name", "Kept again"), ("description", "")],
    )
    .await
    .unwrap();
    assert!(page(&fed, "/c/kept").await.2.contains("Kept again"));
    app.exec("DELETE FROM memberships WHERE user_id IN (SELECT user_id FROM identities WHERE subject = 'a-bob')").await;
    let r = bob.get("/c/kept").await;
    let body = r.text().await.unwrap();
    assert!(!body.contains("Kept again"), "a person without a role no longer sees the collective");

    // Pages that send a visitor elsewhere are not kept.
    let anonymous = app.browser();
    let r = anonymous.get("/c/kept").await;
    assert_eq!(r.status(), 303);
    assert!(r.headers().get("x-potluck-cache").is_none(), "anonymous visitors are not told what was kept");
    app.stop().await;
}

/// Tables no page shows, whose writes leave the pages' version alone (the audit tables move
/// the audit head, which the version includes).
const UNWATCHED: [&str; 7] = [
    "sessions",
    "login_attempts",
    "login_states",
    "idempotency_keys",
    "audit_events",
    "audit_head",
    "audit_checkpoints",
];

/// Columns a holder renews every few seconds, and which no page shows: an update that sets only
/// these leaves the pages' version alone.
const LEASES: [(&str, &[&str]); 4] = [
    ("servers", &["monitor_holder", "monitor_lease_until"]),
    ("jobs", &["lease_until", "lease_holder"]),
    ("staging_runs", &["lease_until"]),
    ("git_sync", &["holder", "lease_until"]),
];

/// Every table's columns, and the columns its `page_version` update trigger is limited to (none:
/// every update).
async fn page_version_triggers(app: &TestApp) -> (Vec<String>, BTreeMap<String, (Vec<String>, Option<Vec<String>>)>) {
    let sqlite = potluck_tests::backend() == potluck_tests::Backend::Sqlite;
    let tables = if sqlite {
        app.texts("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_sqlx%'")
            .await
    } else {
        app.texts(
            "SELECT tablename::text FROM pg_tables WHERE schemaname = current_schema() AND tablename NOT LIKE '_sqlx%'",
        )
        .await
    };
    let mut watched = BTreeMap::new();
    for table in &tables {
        let columns = if sqlite {
            app.texts(&format!("SELECT name FROM pragma_table_info('{table}')")).await
        } else {
            app.texts(&format!(
                "SELECT column_name::text FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = '{table}'"
            ))
            .await
        };
        let update = if sqlite {
            let found = app
                .texts(&format!(
                    "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = '{table}' AND name LIKE 'page_version_%'"
                ))
                .await;
            if found.len() != 3 {
                continue;
            }
            let Some(sql) = found.iter().find(|s| s.contains(" AFTER UPDATE")) else { continue };
            sql.split_once(" UPDATE OF ").map(|(_, rest)| {
                rest.split(" ON ").next().unwrap().split(',').map(|c| c.trim().to_string()).collect::<Vec<_>>()
            })
        } else {
            let found = app
                .texts(&format!(
                    "SELECT COALESCE((SELECT string_agg(a.attname::text, ',') FROM pg_attribute a \
                     WHERE a.attrelid = t.tgrelid AND a.attnum = ANY (t.tgattr::int2[])), '') \
                     FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid \
                     WHERE t.tgname = 'page_version' AND c.relname = '{table}' AND c.relnamespace = current_schema()::regnamespace"
                ))
                .await;
            let Some(limited) = found.first() else { continue };
            (!limited.is_empty()).then(|| limited.split(',').map(str::to_string).collect())
        };
        watched.insert(table.clone(), (columns, update));
    }
    (tables, watched)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_table_a_page_may_show_moves_the_pages_version() {
    let app = TestApp::spawn().await;
    let (tables, watched) = page_version_triggers(&app).await;
    let missing: Vec<&String> = tables
        .iter()
        .filter(|t| t.as_str() != "page_version" && !UNWATCHED.contains(&t.as_str()) && !watched.contains_key(*t))
        .collect();
    assert!(
        missing.is_empty(),
        "tables whose writes would leave kept pages stale (give them page_version triggers): {missing:?}"
    );
    assert!(watched.len() > 30, "{watched:?}");
    // An update moves the version whatever it sets, except on tables with leases: there, whatever
    // it sets but the lease (a column added later must be listed too).
    for (table, (columns, limited)) in &watched {
        let lease = LEASES.iter().find(|(t, _)| t == table).map(|(_, l)| *l);
        match (lease, limited) {
            (None, None) => {}
            (None, Some(_)) => panic!("{table}: only some updates move the pages' version"),
            (Some(_), None) => panic!("{table}: its lease renewals would move the pages' version"),
            (Some(lease), Some(limited)) => {
                let mut wanted: Vec<&String> = columns.iter().filter(|c| !lease.contains(&c.as_str())).collect();
                let mut listed: Vec<&String> = limited.iter().collect();
                wanted.sort();
                listed.sort();
                assert_eq!(listed, wanted, "{table}: an update of any column but the lease's moves the pages' version");
            }
        }
    }

    // A write moves it, once per transaction and at its commit.
    let before = app.state.db.page_version().await.unwrap();
    let mut tx = app.state.db.begin().await.unwrap();
    for slug in ["v-one", "v-two"] {
        sqlx::query("INSERT INTO collectives (slug, name, description, created_at) VALUES ($1, $1, '', 0)")
            .bind(slug)
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    assert_eq!(app.state.db.page_version().await.unwrap(), before, "not before the transaction commits");
    tx.commit().await.unwrap();
    let after = app.state.db.page_version().await.unwrap();
    assert!(after.0 > before.0 && after.1 == before.1, "{before:?} → {after:?}");

    // A lease renewal does not; an end that also clears the lease does.
    sqlx::query(
        "INSERT INTO git_sync (collective_id, url, branch, webhook_enc, created_at, updated_at) \
         SELECT id, 'https://git.example.org/a.git', 'main', $1, 0, 0 FROM collectives WHERE slug = 'v-one'",
    )
    .bind(vec![0u8; 4])
    .execute(app.state.db.pool())
    .await
    .unwrap();
    let before = app.state.db.page_version().await.unwrap();
    app.exec("UPDATE git_sync SET holder = 'run', lease_until = 99 WHERE url = 'https://git.example.org/a.git'").await;
    assert_eq!(app.state.db.page_version().await.unwrap(), before, "a lease renewal shows on no page");
    app.exec("UPDATE git_sync SET holder = NULL, lease_until = NULL, last_error = 'refused' WHERE url = 'https://git.example.org/a.git'")
        .await;
    assert!(app.state.db.page_version().await.unwrap().0 > before.0, "a sync's end shows");
    app.stop().await;
}
