//! Potluck's Leptos application: the HTML shell, the routes and the pages. Pages render on the
//! server (every route waits for its data, so a page reads fine without JavaScript) and hydrate
//! in the browser.

#![recursion_limit = "256"]

pub mod actions;
pub mod api;
pub mod components;
pub mod error;
#[cfg(feature = "hydrate")]
pub mod live;
pub mod model;
pub mod ops;
pub mod pages;
#[cfg(feature = "ssr")]
pub mod ports;

use components::{MeResource, Nav};
use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Title};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::{path, Lazy, SsrMode};

/// The Content-Security-Policy of every page: scripts only from this site or carrying the
/// page's nonce (the hydration script), the wasm, nothing framed, no plugins. Forms submit only
/// here, and to the signed-in person's provider: the sign-out form is redirected to it, and
/// browsers hold every redirect of a form submission to `form-action`.
pub fn content_security_policy(nonce: &str, sign_out_origin: Option<&str>) -> String {
    // The origin comes from the provider's discovery document; anything that could end the
    // directive early is left out rather than trusted.
    let provider = sign_out_origin
        .filter(|o| o.bytes().all(|b| b.is_ascii_graphic() && b != b';' && b != b',' && b != b'\''))
        .map(|o| format!(" {o}"))
        .unwrap_or_default();
    format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; style-src 'self'; \
         img-src 'self' data:; connect-src 'self'; form-action 'self'{provider}; frame-ancestors 'none'; \
         base-uri 'none'; object-src 'none'"
    )
}

/// The stylesheet's address: its fingerprinted name from the build's hash file (a `css:` line,
/// written by scripts/build.sh), else the plain one.
#[cfg_attr(not(feature = "ssr"), allow(unused_variables))]
pub fn stylesheet_href(options: &LeptosOptions) -> String {
    #[cfg(feature = "ssr")]
    if options.hash_files {
        if let Ok(text) = std::fs::read_to_string(&*options.hash_file) {
            if let Some(h) = text.lines().find_map(|l| l.trim().strip_prefix("css:")).map(str::trim) {
                return format!("/{}/potluck.{h}.css", options.site_pkg_dir);
            }
        }
    }
    format!("/{}/potluck.css", options.site_pkg_dir)
}

/// The document around the app, rendered by the server.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    let stylesheet = stylesheet_href(&options);
    #[cfg(feature = "ssr")]
    if let (Some(nonce), Some(response)) = (leptos::nonce::use_nonce(), use_context::<leptos_axum::ResponseOptions>()) {
        let sign_out = use_context::<http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<ports::Caller>().and_then(|c| c.sign_out_origin.clone()));
        if let Ok(v) = http::HeaderValue::from_str(&content_security_policy(&nonce.to_string(), sign_out.as_deref())) {
            response.insert_header(http::header::CONTENT_SECURITY_POLICY, v);
        }
    }
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <link rel="icon" href="/favicon.svg"/>
                <link rel="stylesheet" href=stylesheet/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    let me: MeResource = Resource::new(|| (), |_| api::get_me());
    provide_context(me);
    view! {
        <Title formatter=|t: String| if t.is_empty() { "Potluck".to_string() } else { format!("{t} · Potluck") }/>
        <Router>
            <div id="app" data-hydrated="false">
                <Nav/>
                <main>
                    <Routes fallback=pages::NotFound>
                        <Route path=path!("") view=pages::home::HomePage ssr=SsrMode::Async/>
                        <Route path=path!("login") view=pages::home::LoginPage ssr=SsrMode::Async/>
                        <Route path=path!("bootstrap/:token") view=pages::home::BootstrapPage ssr=SsrMode::Async/>
                        <Route path=path!("invite/:token") view={Lazy::<pages::InviteRoute>::new()} ssr=SsrMode::Async/>
                        <Route path=path!("collectives") view={Lazy::<pages::CollectivesRoute>::new()} ssr=SsrMode::Async/>
                        <Route path=path!("c/:slug") view={Lazy::<pages::CollectiveRoute>::new()} ssr=SsrMode::Async/>
                        <Route path=path!("c/:slug/servers") view={Lazy::<pages::ServersRoute>::new()} ssr=SsrMode::Async/>
                        <Route path=path!("c/:slug/apps") view={Lazy::<pages::AppsRoute>::new()} ssr=SsrMode::Async/>
                        <Route path=path!("c/:slug/backups") view={Lazy::<pages::BackupsRoute>::new()} ssr=SsrMode::Async/>
                        <Route path=path!("c/:slug/notifications") view={Lazy::<pages::NotificationsRoute>::new()} ssr=SsrMode::Async/>
                        <Route path=path!("c/:slug/apps/:domain") view={Lazy::<pages::AppRoute>::new()} ssr=SsrMode::Async/>
                        <Route path=path!("c/:slug/abra/:id") view={Lazy::<pages::AbraImportRoute>::new()} ssr=SsrMode::Async/>
                        <Route path=path!("c/:slug/sync") view={Lazy::<pages::SyncRoute>::new()} ssr=SsrMode::Async/>
                        <Route path=path!("jobs/:id") view={Lazy::<pages::JobRoute>::new()} ssr=SsrMode::Async/>
                        <Route path=path!("recipes") view={Lazy::<pages::RecipesRoute>::new()} ssr=SsrMode::Async/>
                        <Route path=path!("recipes/:name") view={Lazy::<pages::RecipeRoute>::new()} ssr=SsrMode::Async/>
                        <Route path=path!("recipes/:name/v/:tag") view={Lazy::<pages::RecipeVersionRoute>::new()} ssr=SsrMode::Async/>
                        <Route path=path!("recipes/:name/releases") view={Lazy::<pages::ReleasesRoute>::new()} ssr=SsrMode::Async/>
                        <Route path=path!("releases/:id") view={Lazy::<pages::ReleaseRoute>::new()} ssr=SsrMode::Async/>
                        <Route path=path!("releases/:id/runs/:run") view={Lazy::<pages::StagingRunRoute>::new()} ssr=SsrMode::Async/>
                        <Route path=path!("audit") view={Lazy::<pages::AuditRoute>::new()} ssr=SsrMode::Async/>
                        <Route path=path!("fleet") view={Lazy::<pages::FleetRoute>::new()} ssr=SsrMode::Async/>
                        <Route path=path!("fleet/upgrade") view={Lazy::<pages::BatchPreviewRoute>::new()} ssr=SsrMode::Async/>
                        <Route path=path!("batches/:id") view={Lazy::<pages::BatchRoute>::new()} ssr=SsrMode::Async/>
                        <Route path=path!("account") view={Lazy::<pages::AccountRoute>::new()} ssr=SsrMode::Async/>
                        <Route path=path!("admin/providers") view={Lazy::<pages::ProvidersRoute>::new()} ssr=SsrMode::Async/>
                        <Route path=path!("admin/users") view={Lazy::<pages::UsersRoute>::new()} ssr=SsrMode::Async/>
                        <Route path=path!("admin/mail") view={Lazy::<pages::MailRoute>::new()} ssr=SsrMode::Async/>
                        <Route path=path!("admin/staging") view={Lazy::<pages::StagingServersRoute>::new()} ssr=SsrMode::Async/>
                    </Routes>
                </main>
            </div>
        </Router>
    }
}

/// The wasm entry point: loads the shown page's module if it is a lazy one, then attaches the
/// event handlers to the server-rendered page and marks `#app` hydrated (tests wait for the
/// marker before they click).
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    // What leptos::mount::hydrate_lazy does, with the marker set once hydration is whole.
    wasm_bindgen_futures::spawn_local(async {
        let document = leptos::prelude::document();
        let Some(body) = document.body() else { return };
        leptos::mount::hydrate_from_async(body, App).await.forget();
        if let Some(app) = document.get_element_by_id("app") {
            _ = app.set_attribute("data-hydrated", "true");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::content_security_policy;

    #[test]
    fn forms_go_only_here_and_to_the_sign_out_origin() {
        let csp = content_security_policy("n0nce", Some("https://sso.example:8443"));
        assert!(csp.contains("form-action 'self' https://sso.example:8443;"), "{csp}");
        assert!(csp.contains("script-src 'self' 'nonce-n0nce' 'wasm-unsafe-eval';"), "{csp}");
        assert!(content_security_policy("n", None).contains("form-action 'self';"));
        // Nothing that could close the directive or add a keyword gets in.
        for hostile in ["https://a.example; script-src *", "'unsafe-inline'", "https://a.example,https://b", "a b"] {
            let csp = content_security_policy("n", Some(hostile));
            assert!(csp.contains("form-action 'self';"), "{hostile}: {csp}");
        }
    }
}
