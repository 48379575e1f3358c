//! abra's `~/.abra/servers` tree, whole: exported as the files abra reads, uploaded through the
//! apps page's form (no script), previewed with what it creates and refuses, imported in one
//! go, and the same through `potluck abra export|import` with an API token.

use potluck_app::model::*;
use potluck_server::domain::apps::tree;
use potluck_tests::recipes::{fixture_recipe, publish};
use potluck_tests::{location, potluck_bin, swarm, Browser, TestApp};
use std::process::Command;

const SLUG: &str = "collective-a";

struct World {
    app: TestApp,
    admin: Browser,
    _recipes: tempfile::TempDir,
}

/// collective-a with two servers (`local` and `second`, both the harness's swarm), the fixture
/// recipe `hello`, and three apps.
async fn world() -> World {
    let app = TestApp::spawn().await;
    let admin = app.bootstrap_admin().await;
    admin
        .call::<CollectiveSummary>("create_collective", &[("slug", SLUG), ("name", "A"), ("description", "")])
        .await
        .unwrap();
    for name in ["local", "second"] {
        admin
            .call::<ServerView>(
                "add_server",
                &[("slug", SLUG), ("name", name), ("kind", "unix"), ("address", swarm::SOCKET)],
            )
            .await
            .unwrap();
    }
    let recipes = tempfile::tempdir().unwrap();
    let (_, remote) = publish(&fixture_recipe("hello"), recipes.path(), "hello");
    admin.call::<RecipeSummary>("register_recipe", &[("repository", &remote.display().to_string())]).await.unwrap();
    for (server, domain) in
        [("local", "one.a.example.org"), ("local", "two.a.example.org"), ("second", "three.a.example.org")]
    {
        admin
            .call::<AppSummary>(
                "create_app",
                &[
                    ("slug", SLUG),
                    ("server", server),
                    ("recipe", "hello"),
                    ("domain", domain),
                    ("version", "0.1.0+1.0"),
                ],
            )
            .await
            .unwrap();
    }
    World { app, admin, _recipes: recipes }
}

async fn export(b: &Browser) -> tree::Tree {
    let r = b.get(&format!("/c/{SLUG}/abra/servers.tar.gz")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/gzip");
    tree::read_archive(&r.bytes().await.unwrap()).unwrap()
}

/// A tar.gz of these entries (path, content; `None` for a symlink to /etc/passwd).
fn archive(entries: &[(&str, Option<&str>)]) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut b = tar::Builder::new(gz);
    for (path, content) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        match content {
            Some(text) => {
                h.set_size(text.len() as u64);
                b.append_data(&mut h, path, text.as_bytes()).unwrap();
            }
            None => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_size(0);
                b.append_link(&mut h, path, "/etc/passwd").unwrap();
            }
        }
    }
    b.into_inner().unwrap().finish().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abra_tree_is_previewed_and_imported_whole_through_the_page_form() {
    let w = world().await;
    let b = &w.admin;

    // The export: every app, at servers/<server>/<domain>.env, each exactly its env file.
    let exported = export(b).await;
    let paths: Vec<String> = exported.files.iter().map(|f| format!("{}/{}", f.dir, f.name)).collect();
    assert_eq!(paths, ["local/one.a.example.org.env", "local/two.a.example.org.env", "second/three.a.example.org.env"]);
    for f in &exported.files {
        let domain = f.name.trim_end_matches(".env");
        let env: String = b.call("export_app", &[("slug", SLUG), ("domain", domain)]).await.unwrap();
        assert_eq!(f.text, env, "{domain}: byte for byte what export_app gives");
    }

    // A laptop's tree: new apps under a directory named like no Potluck server, one already
    // here, one of an unknown recipe, and what is not an app.
    let one = &exported.files[0].text;
    let new_a = one.replace("one.a.example.org", "new-a.example.org");
    let new_b = one.replace("one.a.example.org", "new-b.example.org").replace("TYPE=hello:0.1.0+1.0", "TYPE=hello");
    let tarball = archive(&[
        (".abra/servers/laptop-server/new-a.example.org.env", Some(&new_a)),
        (".abra/servers/laptop-server/new-b.example.org.env", Some(&new_b)),
        (".abra/servers/local/one.a.example.org.env", Some(one)),
        (".abra/servers/local/mystery.example.org.env", Some("TYPE=mystery:1.0.0\nDOMAIN=mystery.example.org\n")),
        (".abra/servers/local/notes.md", Some("remember the milk")),
        (".abra/servers/local/passwd.env", None),
    ]);

    // A viewer's token may export but not upload; nothing is kept.
    let viewer: CreatedApiToken = b
        .call("create_api_token", &[("name", "ro"), ("collective", SLUG), ("role", "viewer"), ("expires_in_days", "1")])
        .await
        .unwrap();
    let form = || {
        reqwest::multipart::Form::new()
            .text("slug", SLUG)
            .part("archive", reqwest::multipart::Part::bytes(tarball.clone()).file_name("servers.tar.gz"))
    };
    let refused = reqwest::Client::new()
        .post(b.url(&format!("/c/{SLUG}/abra/upload")))
        .bearer_auth(&viewer.token.0)
        .multipart(form())
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    assert_eq!(w.app.count("SELECT COUNT(*) FROM abra_uploads").await, 0);
    let r = reqwest::Client::new()
        .get(b.url(&format!("/c/{SLUG}/abra/servers.tar.gz")))
        .bearer_auth(&viewer.token.0)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "viewers may export");

    // The page's form (multipart, no script): kept, and the browser sent to its preview.
    let r = b.client.post(b.url(&format!("/c/{SLUG}/abra/upload"))).multipart(form()).send().await.unwrap();
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap());
    let page = location(&r);
    assert!(page.starts_with(&format!("/c/{SLUG}/abra/")), "{page}");
    let upload: i64 = page.rsplit('/').next().unwrap().parse().unwrap();

    // The preview reads without JavaScript: what is created, what is refused and why.
    let html = b.get(&page).await.text().await.unwrap();
    assert!(html.contains("Apps: 0 to create, 4 refused"), "laptop-server is no server of ours yet");
    assert!(html.contains("no server chosen for laptop-server"));
    assert!(html.contains("server local already has an app one.a.example.org"));
    assert!(
        html.contains("recipe &quot;mystery&quot; is not registered")
            || html.contains("recipe \"mystery\" is not registered")
    );
    assert!(html.contains("servers/local/passwd.env: a link (links are not followed)"));
    assert!(html.contains("servers/local/notes.md: not an env file"));

    // Mapping the laptop's directory to `second` (the page's GET form): two to create.
    let mapped = b.get(&format!("{page}?servers%5Blaptop-server%5D=second")).await.text().await.unwrap();
    assert!(mapped.contains("Apps: 2 to create, 2 refused"), "{mapped}");
    let upload_s = upload.to_string();
    let mapping = [("slug", SLUG), ("upload", upload_s.as_str()), ("servers[laptop-server]", "second")];
    let preview: AbraTreePreview = b.call("preview_abra_tree", &mapping).await.unwrap();
    assert_eq!(preview.creates(), 2);
    let laptop = preview.dirs.iter().find(|d| d.dir == "laptop-server").unwrap();
    assert_eq!((laptop.server.as_deref(), laptop.apps), (Some("second"), 2));
    assert_eq!(w.app.count("SELECT COUNT(*) FROM apps").await, 3, "a preview creates nothing");

    // Import: the two apps, in one transaction, one audit event for the server.
    let events_before = w.app.count("SELECT COUNT(*) FROM audit_events WHERE action = 'app.import'").await;
    let done: AbraTreeImported = b.call("import_abra_tree", &mapping).await.unwrap();
    let mut created: Vec<(String, String, Option<String>)> =
        done.created.iter().map(|a| (a.domain.clone(), a.server.clone(), a.version.clone())).collect();
    created.sort();
    assert_eq!(
        created,
        [
            ("new-a.example.org".into(), "second".into(), Some("0.1.0+1.0".into())),
            ("new-b.example.org".into(), "second".into(), None),
        ]
    );
    assert_eq!(done.refused.len(), 2);
    assert_eq!(w.app.count("SELECT COUNT(*) FROM audit_events WHERE action = 'app.import'").await, events_before + 1);
    let again = b.call::<AbraTreeImported>("import_abra_tree", &mapping).await.unwrap_err();
    assert_eq!(again.status, 409, "{}", again.body);
    assert!(b.get(&page).await.text().await.unwrap().contains("apps created."));

    // And the export gives back the imported files byte for byte.
    let after = export(b).await;
    let get = |name: &str| after.files.iter().find(|f| f.dir == "second" && f.name == name).unwrap().text.clone();
    assert_eq!(get("new-a.example.org.env"), new_a);
    assert_eq!(get("new-b.example.org.env"), new_b);

    // A broken archive is refused at the upload with why, and nothing is kept.
    let kept = w.app.count("SELECT COUNT(*) FROM abra_uploads").await;
    let garbage = reqwest::multipart::Form::new()
        .text("slug", SLUG)
        .part("archive", reqwest::multipart::Part::bytes(b"\x1f\x8bnot really gzip".to_vec()).file_name("x.tar.gz"));
    let r = b.client.post(b.url(&format!("/c/{SLUG}/abra/upload"))).multipart(garbage).send().await.unwrap();
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("not a tar or tar.gz archive"));
    assert_eq!(w.app.count("SELECT COUNT(*) FROM abra_uploads").await, kept);
    w.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_is_its_uploaders_and_its_collectives_only() {
    let w = world().await;
    let b = &w.admin;
    b.call::<CollectiveSummary>("create_collective", &[("slug", "collective-b"), ("name", "B"), ("description", "")])
        .await
        .unwrap();
    let tarball =
        tree::write_archive(&[("local".into(), "up.a.example.org".into(), "TYPE=hello\n".into(), 0)]).unwrap();
    let form = reqwest::multipart::Form::new()
        .part("archive", reqwest::multipart::Part::bytes(tarball).file_name("servers.tar.gz"));
    let r = b.client.post(b.url(&format!("/c/{SLUG}/abra/upload"))).multipart(form).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let upload = location(&r).rsplit('/').next().unwrap().to_string();
    // Read through collective-b (where the admin may manage apps too): not found.
    let e = b
        .call::<AbraTreePreview>("preview_abra_tree", &[("slug", "collective-b"), ("upload", &upload)])
        .await
        .unwrap_err();
    assert_eq!(e.status, 404, "{}", e.body);
    // Another person of collective-a: not found either.
    w.app.exec(&format!("UPDATE abra_uploads SET user_id = user_id + 1000 WHERE id = {upload}")).await;
    let e = b.call::<AbraTreePreview>("preview_abra_tree", &[("slug", SLUG), ("upload", &upload)]).await.unwrap_err();
    assert_eq!(e.status, 404, "{}", e.body);
    w.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn potluck_abra_exports_to_and_imports_from_a_directory_with_a_token() {
    let w = world().await;
    let b = &w.admin;
    let token: CreatedApiToken = b
        .call("create_api_token", &[("name", "cli"), ("collective", SLUG), ("role", "admin"), ("expires_in_days", "1")])
        .await
        .unwrap();
    let home = tempfile::tempdir().unwrap();
    let abra = home.path().join(".abra");
    let potluck = |args: &[&str]| {
        let out = Command::new(potluck_bin())
            .args(args)
            .env("POTLUCK_URL", &w.app.base)
            .env("POTLUCK_TOKEN", &token.token.0)
            .output()
            .unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(!text.contains(&token.token.0), "the token is never printed");
        (out.status.code(), text)
    };

    let (code, text) = potluck(&["abra", "export", "-c", SLUG, "--dir", abra.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{text}");
    let one = std::fs::read_to_string(abra.join("servers/local/one.a.example.org.env")).unwrap();
    let env: String = b.call("export_app", &[("slug", SLUG), ("domain", "one.a.example.org")]).await.unwrap();
    assert_eq!(one, env);
    assert!(abra.join("servers/second/three.a.example.org.env").is_file());

    // An abra user adds an app on their laptop, in a server directory of another name.
    std::fs::create_dir_all(abra.join("servers/laptop")).unwrap();
    let added = one.replace("one.a.example.org", "cli.a.example.org");
    std::fs::write(abra.join("servers/laptop/cli.a.example.org.env"), &added).unwrap();

    // A link in the tree (to a key, say) is not followed, nor uploaded.
    std::os::unix::fs::symlink("/etc/hostname", abra.join("servers/laptop/leak.a.example.org.env")).unwrap();
    let (code, text) = potluck(&["abra", "import", "-c", SLUG, abra.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("leak.a.example.org.env: not a regular file (links are not followed)"), "{text}");
    assert!(!text.contains("  laptop/leak"), "not in the preview: {text}");
    assert!(text.contains("laptop/ → no server"), "{text}");
    assert!(text.contains("0 to create, 4 refused"), "{text}");
    let (code, text) = potluck(&["abra", "import", "-c", SLUG, abra.to_str().unwrap(), "--server", "laptop=local"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("create  cli.a.example.org (hello 0.1.0+1.0)"), "{text}");
    assert!(text.contains("run again with --yes"), "{text}");
    assert_eq!(w.app.count("SELECT COUNT(*) FROM apps").await, 3, "nothing imported without --yes");
    let (code, text) =
        potluck(&["abra", "import", "-c", SLUG, abra.to_str().unwrap(), "--server", "laptop=local", "--yes"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("imported 1 apps (3 refused)"), "{text}");
    let back: String = b.call("export_app", &[("slug", SLUG), ("domain", "cli.a.example.org")]).await.unwrap();
    assert_eq!(back, added);

    // A mistyped server, and a wrong token: a clear error and a non-zero exit.
    let (code, text) = potluck(&["abra", "import", "-c", SLUG, abra.to_str().unwrap(), "--server", "laptop=nope"]);
    assert_ne!(code, Some(0));
    assert!(text.contains("404") && text.contains("nope"), "{text}");
    let out = Command::new(potluck_bin())
        .args(["abra", "export", "-c", SLUG, "--out", "-"])
        .env("POTLUCK_URL", &w.app.base)
        .env("POTLUCK_TOKEN", "plk_wrong")
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("401"), "{}", String::from_utf8_lossy(&out.stderr));
    w.app.stop().await;
}
