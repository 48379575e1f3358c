//! One module per area; each page loads its data through server functions.

pub mod account;
pub mod admin;
pub mod apps;
pub mod audit;
pub mod backups;
pub mod collectives;
pub mod fleet;
pub mod home;
pub mod notifications;
pub mod recipes;
pub mod releases;
pub mod sync;

use leptos::prelude::*;

/// Pages whose code the browser loads when one of them is first shown: Leptos' lazy routes,
/// split out of the main module by scripts/build.sh. Each area's pages load together as one
/// module (per-page modules would split the code they share into hundreds of small files), so a
/// visit fetches the shell with the start and sign-in pages, then each area it opens once. On
/// the server a lazy page renders as any other, and names its area's files in the page's head
/// for the browser to fetch while it reads the page.
macro_rules! lazy_areas {
    ($($area:ident($pages:ident, $preload:ident) { $($route:ident => $page:path),* $(,)? })*) => {$(
        #[derive(Clone, Copy)]
        pub enum $pages { $($route),* }

        /// Renders one of the area's pages; in the browser its code and theirs are one lazily
        /// loaded module.
        #[cfg_attr(feature = "hydrate", leptos::lazy)]
        fn $area(page: $pages) -> AnyView {
            match page {
                $($pages::$route => $page().into_any()),*
            }
        }

        $(
            pub struct $route;

            impl leptos_router::LazyRoute for $route {
                fn data() -> Self {
                    $route
                }

                async fn view(_: Self) -> AnyView {
                    #[cfg(feature = "hydrate")]
                    return $area($pages::$route).await;
                    #[cfg(not(feature = "hydrate"))]
                    {
                        preload_area(stringify!($area));
                        $area($pages::$route)
                    }
                }

                /// The router awaits this before it hydrates or shows the page: the area's
                /// module must be there by then (its preload function comes with `#[lazy]`).
                async fn preload() {
                    #[cfg(feature = "hydrate")]
                    $preload().await;
                }
            }
        )*
    )*};
}

/// Links the modules of `area` in the page's head, `<link rel="preload">` each and the loader
/// as a `modulepreload`, from the build's split manifest (which Leptos' HydrationScripts reads).
/// Leptos would add them itself for a `#[lazy]` function called on the server, but it looks up
/// its contexts there outside the page's owner, and so finds them only by chance.
#[cfg(not(feature = "hydrate"))]
fn preload_area(area: &str) {
    use leptos_meta::Link;
    let Some(manifest) = use_context::<leptos::WasmSplitManifest>() else { return };
    manifest.0.with_value(|(pkg, modules, loader)| {
        // The splitter names an area's entry `<function>_<hash of where it is declared>`.
        let is_area = |key: &str| {
            key.rsplit_once('_').is_some_and(|(name, hash)| name == area && hash.bytes().all(|b| b.is_ascii_digit()))
        };
        let Some((_, files)) = modules.iter().find(|(key, _)| is_area(key)) else { return };
        for file in files {
            let href = format!("{pkg}/{file}.wasm");
            // Rendering a leptos_meta link registers it with the page's head.
            _ = view! { <Link rel="preload" href=href as_="fetch" type_="application/wasm" crossorigin="anonymous"/> }
                .to_html();
        }
        _ = view! { <Link rel="modulepreload" href=format!("{pkg}/{loader}") crossorigin="anonymous"/> }.to_html();
    });
}

lazy_areas! {
    // Collectives and the people in them, one's own account, the federation's settings and its
    // audit log.
    governance(GovernanceArea, __preload_governance) {
        InviteRoute => collectives::InvitePage,
        CollectivesRoute => collectives::CollectivesPage,
        CollectiveRoute => collectives::CollectivePage,
        AccountRoute => account::AccountPage,
        ProvidersRoute => admin::ProvidersPage,
        UsersRoute => admin::UsersPage,
        MailRoute => admin::MailPage,
        StagingServersRoute => admin::StagingServersPage,
        AuditRoute => audit::AuditPage,
    }
    // A collective's servers and apps, and the jobs that deploy them.
    apps(AppsArea, __preload_apps) {
        ServersRoute => apps::ServersPage,
        AppsRoute => apps::AppsPage,
        AppRoute => apps::AppPage,
        AbraImportRoute => apps::AbraImportPage,
        JobRoute => apps::JobPage,
    }
    // What looks after the apps: backups, notifications, the git sync beside abra and upgrades
    // across the federation.
    care(CareArea, __preload_care) {
        BackupsRoute => backups::BackupsPage,
        NotificationsRoute => notifications::NotificationsPage,
        SyncRoute => sync::SyncPage,
        FleetRoute => fleet::FleetPage,
        BatchPreviewRoute => fleet::BatchPreviewPage,
        BatchRoute => fleet::BatchPage,
    }
    // The catalogue, its versions and their release reviews.
    catalogue(CatalogueArea, __preload_catalogue) {
        RecipesRoute => recipes::RecipesPage,
        RecipeRoute => recipes::RecipePage,
        RecipeVersionRoute => recipes::RecipeVersionPage,
        ReleasesRoute => releases::ReleasesPage,
        ReleaseRoute => releases::ReleasePage,
        StagingRunRoute => releases::StagingRunPage,
    }
}

#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(options) = use_context::<leptos_axum::ResponseOptions>() {
        options.set_status(http::StatusCode::NOT_FOUND);
    }
    view! {
        <h1>"Not found"</h1>
        <p>"There is no page at this address. " <a href="/">"Go to the start page"</a></p>
    }
}
