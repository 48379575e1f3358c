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
/// the server a lazy page renders as any other, and names its area's files in the response's
/// headers for the browser to fetch while it reads the page.
macro_rules! lazy_areas {
    ($($area:ident($pages:ident, $preload:ident) { $($route:ident => $page:path),* $(,)? })*) => {$(
        #[derive(Clone, Copy)]
        pub enum $pages { $($route),* }

        /// Renders one of the area's pages; in the browser its code and theirs are one lazily
        /// loaded module, named after the area, whose fetch may fail (`Err`) rather than panic.
        #[cfg_attr(
            feature = "hydrate",
            leptos::wasm_split::wasm_split($area, wasm_split_path = ::leptos::wasm_split, preload($preload), fallible)
        )]
        fn $area(page: $pages) -> Result<AnyView, leptos::wasm_split::SplitLoaderError> {
            Ok(match page {
                $($pages::$route => $page().into_any()),*
            })
        }

        $(
            pub struct $route;

            impl leptos_router::LazyRoute for $route {
                fn data() -> Self {
                    $route
                }

                async fn view(_: Self) -> AnyView {
                    #[cfg(feature = "hydrate")]
                    let shown = $area($pages::$route).await;
                    #[cfg(not(feature = "hydrate"))]
                    let shown = {
                        #[cfg(feature = "ssr")]
                        preload_area(stringify!($area));
                        $area($pages::$route)
                    };
                    shown.unwrap_or_else(|_| crate::components::load_anew())
                }

                /// The router awaits this before it hydrates or shows the page, so the area's
                /// module is there by then (the function comes with `wasm_split`). When it
                /// could not be fetched, `view` tries once more and then loads the page anew.
                async fn preload() {
                    #[cfg(feature = "hydrate")]
                    let _ = $preload().await;
                }
            }
        )*
    )*};
}

/// Names the modules of `area` in `Link: <…>; rel=preload` headers of the page, from the
/// build's split manifest (which Leptos' HydrationScripts reads), so the browser fetches them
/// while it reads the page. (Leptos adds `<link>`s for a `#[lazy]` function called on the
/// server, but looks up its contexts there outside the page's owner and so finds them only by
/// chance; and `<link>`s added while the page renders would come before the page's own head
/// tags, which leptos_meta then hydrates onto the wrong elements.)
#[cfg(feature = "ssr")]
fn preload_area(area: &str) {
    let (Some(manifest), Some(response)) =
        (use_context::<leptos::WasmSplitManifest>(), use_context::<leptos_axum::ResponseOptions>())
    else {
        return;
    };
    manifest.0.with_value(|(pkg, modules, _)| {
        // The splitter's entry for a split is named as the split, here the area.
        let Some(files) = modules.get(area) else { return };
        for file in files {
            let link = format!("<{pkg}/{file}.wasm>; rel=preload; as=fetch; type=\"application/wasm\"; crossorigin");
            if let Ok(value) = http::HeaderValue::from_str(&link) {
                response.append_header(http::header::LINK, value);
            }
        }
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
