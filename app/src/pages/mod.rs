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
