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
use leptos_router::{path, SsrMode};

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
    // Effects run only in the browser: tests wait for this marker before they click.
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));

    view! {
        <Title formatter=|t: String| if t.is_empty() { "Potluck".to_string() } else { format!("{t} · Potluck") }/>
        <Router>
            <div id="app" data-hydrated=move || hydrated.get().to_string()>
                <Nav/>
                <main>
                    <Routes fallback=pages::NotFound>
                        <Route path=path!("") view=pages::home::HomePage ssr=SsrMode::Async/>
                        <Route path=path!("login") view=pages::home::LoginPage ssr=SsrMode::Async/>
                        <Route path=path!("bootstrap/:token") view=pages::home::BootstrapPage ssr=SsrMode::Async/>
                        <Route path=path!("invite/:token") view=pages::collectives::InvitePage ssr=SsrMode::Async/>
                        <Route path=path!("collectives") view=pages::collectives::CollectivesPage ssr=SsrMode::Async/>
                        <Route path=path!("c/:slug") view=pages::collectives::CollectivePage ssr=SsrMode::Async/>
                        <Route path=path!("c/:slug/servers") view=pages::apps::ServersPage ssr=SsrMode::Async/>
                        <Route path=path!("c/:slug/apps") view=pages::apps::AppsPage ssr=SsrMode::Async/>
                        <Route path=path!("c/:slug/backups") view=pages::backups::BackupsPage ssr=SsrMode::Async/>
                        <Route path=path!("c/:slug/notifications") view=pages::notifications::NotificationsPage ssr=SsrMode::Async/>
                        <Route path=path!("c/:slug/apps/:domain") view=pages::apps::AppPage ssr=SsrMode::Async/>
                        <Route path=path!("c/:slug/abra/:id") view=pages::apps::AbraImportPage ssr=SsrMode::Async/>
                        <Route path=path!("c/:slug/sync") view=pages::sync::SyncPage ssr=SsrMode::Async/>
                        <Route path=path!("jobs/:id") view=pages::apps::JobPage ssr=SsrMode::Async/>
                        <Route path=path!("recipes") view=pages::recipes::RecipesPage ssr=SsrMode::Async/>
                        <Route path=path!("recipes/:name") view=pages::recipes::RecipePage ssr=SsrMode::Async/>
                        <Route path=path!("recipes/:name/v/:tag") view=pages::recipes::RecipeVersionPage ssr=SsrMode::Async/>
                        <Route path=path!("recipes/:name/releases") view=pages::releases::ReleasesPage ssr=SsrMode::Async/>
                        <Route path=path!("releases/:id") view=pages::releases::ReleasePage ssr=SsrMode::Async/>
                        <Route path=path!("releases/:id/runs/:run") view=pages::releases::StagingRunPage ssr=SsrMode::Async/>
                        <Route path=path!("audit") view=pages::audit::AuditPage ssr=SsrMode::Async/>
                        <Route path=path!("fleet") view=pages::fleet::FleetPage ssr=SsrMode::Async/>
                        <Route path=path!("fleet/upgrade") view=pages::fleet::BatchPreviewPage ssr=SsrMode::Async/>
                        <Route path=path!("batches/:id") view=pages::fleet::BatchPage ssr=SsrMode::Async/>
                        <Route path=path!("account") view=pages::account::AccountPage ssr=SsrMode::Async/>
                        <Route path=path!("admin/providers") view=pages::admin::ProvidersPage ssr=SsrMode::Async/>
                        <Route path=path!("admin/users") view=pages::admin::UsersPage ssr=SsrMode::Async/>
                        <Route path=path!("admin/mail") view=pages::admin::MailPage ssr=SsrMode::Async/>
                        <Route path=path!("admin/staging") view=pages::admin::StagingServersPage ssr=SsrMode::Async/>
                    </Routes>
                </main>
            </div>
        </Router>
    }
}

/// The wasm entry point: attaches the event handlers to the server-rendered page.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(App);
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
