//! Small building blocks shared by the pages: navigation, error display, times, role pickers.

use crate::error::ApiError;
use crate::model::{Me, Role};
use leptos::prelude::*;

/// The signed-in person (or `None`), loaded once per page and shared through context.
pub type MeResource = Resource<Result<Option<Me>, ApiError>>;

pub fn use_me() -> MeResource {
    expect_context::<MeResource>()
}

#[component]
pub fn Nav() -> impl IntoView {
    let me = use_me();
    view! {
        <header class="top">
            <a class="brand" href="/">"Potluck"</a>
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    match me.await {
                        Ok(Some(me)) => {
                            let admin = me.is_federation_admin;
                            view! {
                                <nav>
                                    <a href="/collectives">"Collectives"</a>
                                    <a href="/recipes">"Recipes"</a>
                                    <a href="/fleet">"Fleet"</a>
                                    <a href="/audit">"Audit log"</a>
                                    <Show when=move || admin>
                                        <a href="/admin/providers">"Identity providers"</a>
                                        <a href="/admin/users">"People"</a>
                                        <a href="/admin/mail">"Mail relay"</a>
                                        <a href="/admin/staging">"Staging"</a>
                                    </Show>
                                </nav>
                                <div class="who">
                                    <a href="/account" id="whoami">{me.display_name.clone()}</a>
                                    <form method="post" action="/auth/logout" class="inline">
                                        <button type="submit" id="logout">"Sign out"</button>
                                    </form>
                                </div>
                            }
                                .into_any()
                        }
                        _ => view! {
                            <nav></nav>
                            <div class="who"><a href="/login" id="login">"Sign in"</a></div>
                        }
                            .into_any(),
                    }
                })}
            </Suspense>
        </header>
    }
}

/// Shows an error the way a person can act on it.
#[component]
pub fn ErrorBox(error: ApiError) -> impl IntoView {
    let text = match &error {
        ApiError::Unauthenticated => "Please sign in to see this page.".to_string(),
        other => other.to_string(),
    };
    let signin = matches!(error, ApiError::Unauthenticated);
    // A page that needs a session, opened without one, sends the browser to sign in and back.
    #[cfg(feature = "ssr")]
    if signin {
        if let (Some(parts), Some(response)) =
            (use_context::<http::request::Parts>(), use_context::<leptos_axum::ResponseOptions>())
        {
            if !parts.uri.path().starts_with("/api/") {
                let here = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
                let to = format!("/login?return_to={}", urlencoding::encode(here));
                if let Ok(v) = http::HeaderValue::from_str(&to) {
                    response.insert_header(http::header::LOCATION, v);
                    response.set_status(http::StatusCode::SEE_OTHER);
                }
            }
        }
    }
    view! {
        <div class="error" role="alert">
            <p>{text}</p>
            <Show when=move || signin><p><a href="/login">"Sign in"</a></p></Show>
        </div>
    }
}

/// The outcome of the last submission of a form: nothing, a success note, or the error.
#[component]
pub fn ActionResult<T, S>(value: S, #[prop(into)] ok: String) -> impl IntoView
where
    T: Clone + Send + Sync + 'static,
    S: Get<Value = Option<Result<T, ApiError>>> + Send + Sync + 'static,
{
    move || match value.get() {
        None => ().into_any(),
        Some(Ok(_)) => view! { <p class="ok" role="status">{ok.clone()}</p> }.into_any(),
        Some(Err(e)) => view! { <ErrorBox error=e/> }.into_any(),
    }
}

/// The error of the last submission of a form, if it failed (a success shows elsewhere).
#[component]
pub fn ActionError<T, S>(value: S) -> impl IntoView
where
    T: Clone + Send + Sync + 'static,
    S: Get<Value = Option<Result<T, ApiError>>> + Send + Sync + 'static,
{
    move || match value.get() {
        Some(Err(e)) => view! { <ErrorBox error=e/> }.into_any(),
        _ => ().into_any(),
    }
}

/// `2026-11-25 21:03:22 UTC` from milliseconds since the epoch.
pub fn format_time(ms: i64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| ms.to_string())
}

#[component]
pub fn Time(ms: i64) -> impl IntoView {
    view! { <time data-ms=ms.to_string()>{format_time(ms)}</time> }
}

/// A `<select name=...>` of roles.
#[component]
pub fn RoleSelect(
    #[prop(into)] name: String,
    #[prop(optional)] selected: Option<Role>,
    #[prop(optional, into)] id: String,
) -> impl IntoView {
    let selected = selected.unwrap_or(Role::Viewer);
    view! {
        <select name=name id=id>
            {Role::ALL
                .into_iter()
                .map(|r| view! { <option value=r.as_str() selected=r == selected>{r.as_str()}</option> })
                .collect_view()}
        </select>
    }
}

/// What a lazily loaded page shows when its area's module could not be fetched (a newer build
/// replaced it under an open tab, or the network failed): the browser loads the address anew,
/// which names the current modules, at most once a minute so that a module that stays missing
/// cannot reload the page forever; the link does the same by hand.
pub fn load_anew() -> AnyView {
    let location = leptos_router::hooks::use_location();
    let search = location.search.get_untracked();
    let search = search.trim_start_matches('?');
    let target = if search.is_empty() {
        location.pathname.get_untracked()
    } else {
        format!("{}?{search}", location.pathname.get_untracked())
    };
    #[cfg(feature = "hydrate")]
    reload_at_most_once_a_minute(&target);
    view! {
        <p role="alert" id="load-anew">
            "This page's code could not be loaded. " <a href=target rel="external">"Load the page again"</a>
        </p>
    }
    .into_any()
}

#[cfg(feature = "hydrate")]
fn reload_at_most_once_a_minute(target: &str) {
    const KEY: &str = "potluck-loaded-anew-at";
    let window = window();
    let now = js_sys::Date::now();
    let storage = window.session_storage().ok().flatten();
    let last = storage.as_ref().and_then(|s| s.get_item(KEY).ok().flatten()).and_then(|v| v.parse::<f64>().ok());
    if last.is_some_and(|at| now - at < 60_000.0) {
        return;
    }
    if let Some(storage) = &storage {
        _ = storage.set_item(KEY, &now.to_string());
    }
    _ = window.location().set_href(target);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_times_in_utc() {
        assert_eq!(format_time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_time(1_764_104_602_000), "2025-11-25 21:03:22 UTC");
    }
}
