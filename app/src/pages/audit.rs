//! The audit log: filters, pages of events (newest first) and the JSON Lines export.

use crate::api;
use crate::components::{ErrorBox, Time};
use crate::model::AuditFilter;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;
use leptos_router::params::ParamsMap;

/// Reads `YYYY-MM-DD` as the start of that day (UTC), in milliseconds.
fn day_start_ms(s: &str) -> Option<i64> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let date = time::Date::parse(s.trim(), &format).ok()?;
    Some(date.midnight().assume_utc().unix_timestamp() * 1000)
}

const DAY_MS: i64 = 86_400_000;

pub fn filter_from_query(q: &ParamsMap) -> AuditFilter {
    let text = |k: &str| q.get(k).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    AuditFilter {
        collective: text("collective"),
        actor: text("actor"),
        action: text("action"),
        from: text("from").and_then(|d| day_start_ms(&d)),
        // "to" is inclusive: up to the end of that day.
        to: text("to").and_then(|d| day_start_ms(&d)).map(|t| t + DAY_MS - 1),
        before: text("before").and_then(|b| b.parse().ok()),
        limit: text("limit").and_then(|l| l.parse().ok()),
    }
}

#[component]
pub fn AuditPage() -> impl IntoView {
    let query = use_query_map();
    let events = Resource::new(move || filter_from_query(&query.read()), api::audit_page);
    let value = move |k: &'static str| query.read().get(k).unwrap_or_default();
    // The query string without `before`, for the export and "older" links.
    let base_query = move || {
        let q = query.read();
        ["collective", "actor", "action", "from", "to"]
            .into_iter()
            .filter_map(|k| q.get(k).filter(|v| !v.is_empty()).map(|v| format!("{k}={}", urlencoding::encode(&v))))
            .collect::<Vec<_>>()
            .join("&")
    };
    view! {
        <Title text="Audit log"/>
        <h1>"Audit log"</h1>
        <p class="muted">"Every change in Potluck, in order. Each event carries the hash of the one before it: `potluck audit verify` proves that none was edited or removed."</p>
        <form method="get" action="/audit" class="filters" id="audit-filters">
            <label>"Collective " <input name="collective" value=move || value("collective")/></label>
            <label>"Actor " <input name="actor" value=move || value("actor")/></label>
            <label>"Action " <input name="action" value=move || value("action") placeholder="collective.create"/></label>
            <label>"From " <input type="date" name="from" value=move || value("from")/></label>
            <label>"To " <input type="date" name="to" value=move || value("to")/></label>
            <button type="submit">"Filter"</button>
            <a href=move || format!("/audit/export.jsonl?{}", base_query()) id="audit-export" rel="external">"Export as JSON Lines"</a>
        </form>
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match events.await {
                    Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                    Ok(page) => {
                        let older = page.next_before.map(|b| {
                            let q = base_query();
                            if q.is_empty() { format!("/audit?before={b}") } else { format!("/audit?{q}&before={b}") }
                        });
                        view! {
                            <table id="audit-events">
                                <thead><tr><th>"#"</th><th>"Time"</th><th>"Actor"</th><th>"Collective"</th><th>"Action"</th><th>"Target"</th><th>"Outcome"</th><th>"Request"</th></tr></thead>
                                <tbody>
                                    {page.events.into_iter().map(|e| view! {
                                        <tr data-action=e.action.clone()>
                                            <td>{e.seq}</td>
                                            <td><Time ms=e.at/></td>
                                            <td>{e.actor_name.clone()} <span class="muted">" (" {e.actor_kind.clone()} ")"</span></td>
                                            <td>{e.collective.clone().unwrap_or_default()}</td>
                                            <td><code>{e.action.clone()}</code></td>
                                            <td>{e.target.clone()}</td>
                                            <td>{e.outcome.clone()}</td>
                                            <td class="muted" title=e.details.clone()>{e.request_id.clone()} " from " {e.client_addr.clone()}</td>
                                        </tr>
                                    }).collect_view()}
                                </tbody>
                            </table>
                            {older.map(|href| view! { <p><a href=href id="audit-older">"Older events →"</a></p> })}
                        }.into_any()
                    }
                }
            })}
        </Suspense>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_filter_whole_days() {
        let mut q = ParamsMap::new();
        q.insert("from", "2026-11-25".to_string());
        q.insert("to", "2026-11-25".to_string());
        q.insert("actor", "  ".to_string());
        let f = filter_from_query(&q);
        assert_eq!(f.from, Some(1_795_564_800_000));
        assert_eq!(f.to, Some(1_795_564_800_000 + DAY_MS - 1));
        assert_eq!(f.actor, None);
    }
}
