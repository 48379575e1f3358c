//! The fleet: which version of each recipe runs where and what is behind, as a chart per recipe
//! and a table that sorts and filters by link (no script needed); and batch upgrades: choose
//! apps of one recipe, preview each, run them one after another and watch them go.

use crate::api::{self, *};
use crate::components::{ActionError, ErrorBox, Time};
use crate::model::*;
use leptos::prelude::*;
use leptos_meta::{Meta, Title};
use leptos_router::hooks::{use_params_map, use_query_map};

/// Colours of the version chart: the newest release green, older ones fading to red.
fn shade(behind: Option<i64>) -> &'static str {
    match behind {
        Some(0) => "v-current",
        Some(1) => "v-behind-1",
        Some(2..=3) => "v-behind-2",
        Some(_) => "v-behind-3",
        None => "v-unknown",
    }
}

fn health(a: &FleetApp) -> (&'static str, String) {
    match (&a.unhealthy, a.status) {
        (Some(reason), _) => ("chip chip-undeclared", format!("failing: {reason}")),
        (None, AppStatus::Failed) => ("chip chip-undeclared", "last deploy failed".into()),
        (None, AppStatus::Deployed) => ("chip chip-whole", "running".into()),
        (None, s) => ("chip chip-unknown", s.as_str().to_string()),
    }
}

#[component]
pub fn FleetPage() -> impl IntoView {
    let query = use_query_map();
    let data = Resource::new(|| (), |_| api::fleet());
    view! {
        <Title text="Fleet"/>
        <h1>"Fleet"</h1>
        <p class="muted">"Every app you can see, by recipe: the version it runs, how many releases it is behind, its health. Choose apps of one recipe to upgrade them together."</p>
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || {
                // Tracked: a sort or filter link re-renders the table from the same data.
                let q = query.get();
                let recipe = q.get("recipe").unwrap_or_default();
                let only_behind = q.get("behind").is_some_and(|b| b == "1");
                let sort = q.get("sort").unwrap_or_else(|| "behind".into());
                Suspend::new(async move {
                    match data.await {
                        Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                        Ok(f) => view! { <Overview f recipe only_behind sort/> }.into_any(),
                    }
                })
            }}
        </Suspense>
    }
}

#[component]
fn Overview(f: Fleet, recipe: String, only_behind: bool, sort: String) -> impl IntoView {
    if f.recipes.is_empty() {
        return view! { <p class="muted" id="no-apps">"No app runs anywhere you can see yet."</p> }.into_any();
    }
    let link = {
        let recipe = recipe.clone();
        move |sort: &str, behind: bool| {
            let mut q = vec![format!("sort={sort}")];
            if !recipe.is_empty() {
                q.push(format!("recipe={recipe}"));
            }
            if behind {
                q.push("behind=1".into());
            }
            format!("/fleet?{}", q.join("&"))
        }
    };
    let filters = view! {
        <form method="get" action="/fleet" class="filters" id="fleet-filter">
            <label>"Recipe "
                <select name="recipe">
                    <option value="" selected=recipe.is_empty()>"all"</option>
                    {f.recipes.iter().map(|r| view! { <option value=r.recipe.clone() selected=r.recipe == recipe>{r.recipe.clone()}</option> }).collect_view()}
                </select>
            </label>
            <label><input type="checkbox" name="behind" value="1" checked=only_behind/> " only apps behind"</label>
            <input type="hidden" name="sort" value=sort.clone()/>
            <button type="submit">"Show"</button>
        </form>
    };
    let sections = f
        .recipes
        .into_iter()
        .filter(|r| recipe.is_empty() || r.recipe == recipe)
        .map(|r| {
            let mut apps: Vec<FleetApp> =
                r.apps.iter().filter(|a| !only_behind || a.behind.is_some_and(|b| b > 0)).cloned().collect();
            match sort.as_str() {
                "domain" => apps.sort_by(|a, b| a.domain.cmp(&b.domain)),
                "collective" => apps.sort_by(|a, b| (&a.collective, &a.domain).cmp(&(&b.collective, &b.domain))),
                "version" => apps.sort_by(|a, b| a.version.cmp(&b.version)),
                _ => apps.sort_by_key(|a| (std::cmp::Reverse(a.behind.unwrap_or(-1)), a.domain.clone())),
            }
            let selectable = !recipe.is_empty();
            let rows = apps
                .iter()
                .map(|a| {
                    let (chip, words) = health(a);
                    let name = format!("{}/{}", a.collective, a.domain);
                    let pick = (selectable && a.can_operate && a.version.is_some()).then(|| {
                        view! { <input type="checkbox" name="apps" value=name.clone() checked=a.behind.is_some_and(|b| b > 0) aria-label=format!("upgrade {}", a.domain)/> }
                    });
                    view! {
                        <tr data-app=a.domain.clone() data-behind=a.behind.map(|b| b.to_string()).unwrap_or_default()>
                            <td>{pick}</td>
                            <td><a href=format!("/c/{}/apps/{}", a.collective, a.domain)>{a.domain.clone()}</a></td>
                            <td><a href=format!("/c/{}", a.collective)>{a.collective.clone()}</a> <div class="muted">{a.server.clone()}</div></td>
                            <td><code>{a.version.clone().unwrap_or_else(|| "not deployed".into())}</code></td>
                            <td class=shade(a.behind)>{match a.behind {
                                Some(0) => "newest".to_string(),
                                Some(1) => "1 release behind".to_string(),
                                Some(n) => format!("{n} releases behind"),
                                None => "—".to_string(),
                            }}</td>
                            <td>{if a.status == AppStatus::Deployed && (a.health.is_some() || a.unhealthy.is_some()) {
                                view! { <crate::pages::apps::HealthBadge health=a.health unhealthy=a.unhealthy.clone()/> }.into_any()
                            } else {
                                view! { <span class=chip>{words}</span> }.into_any()
                            }}</td>
                        </tr>
                    }
                })
                .collect_view();
            let upgrade = selectable.then(|| {
                let releases = r.releases.clone();
                view! {
                    <input type="hidden" name="recipe" value=r.recipe.clone()/>
                    <label>"Upgrade the chosen apps to "
                        <select name="target">
                            {releases.into_iter().map(|v| view! { <option value=v.clone()>{v.clone()}</option> }).collect_view()}
                        </select>
                    </label>
                    <button type="submit" id="preview-batch">"Preview the upgrades"</button>
                }
            });
            view! {
                <section class="fleet-recipe" data-recipe=r.recipe.clone()>
                    <h2><a href=format!("/recipes/{}", r.recipe)>{r.recipe.clone()}</a>
                        <span class="muted">{r.newest.clone().map(|n| format!(" · newest {n}")).unwrap_or_default()}</span></h2>
                    <VersionChart apps=r.apps.clone()/>
                    {(!selectable).then(|| view! { <p><a href=format!("/fleet?recipe={}", r.recipe)>"Choose apps of " {r.recipe.clone()} " to upgrade"</a></p> })}
                    <form method="get" action="/fleet/upgrade">
                        <table class="fleet">
                            <thead><tr>
                                <th></th>
                                <th><a href=link("domain", only_behind)>"App"</a></th>
                                <th><a href=link("collective", only_behind)>"Collective"</a></th>
                                <th><a href=link("version", only_behind)>"Version"</a></th>
                                <th><a href=link("behind", only_behind)>"Behind"</a></th>
                                <th>"Health"</th>
                            </tr></thead>
                            <tbody>{rows}</tbody>
                        </table>
                        {upgrade}
                    </form>
                </section>
            }
        })
        .collect_view();
    view! { {filters} {sections} }.into_any()
}

/// The apps of a recipe by the version they run, as one bar: each version a segment as wide as
/// its share, newest green, older redder.
#[component]
fn VersionChart(apps: Vec<FleetApp>) -> impl IntoView {
    let mut counts: Vec<(String, Option<i64>, usize)> = Vec::new();
    for a in &apps {
        let v = a.version.clone().unwrap_or_else(|| "not deployed".into());
        match counts.iter_mut().find(|(name, _, _)| *name == v) {
            Some(c) => c.2 += 1,
            None => counts.push((v, a.behind, 1)),
        }
    }
    counts.sort_by_key(|(_, behind, _)| behind.unwrap_or(i64::MAX));
    let total = apps.len().max(1);
    let mut x = 0usize;
    let label = counts.iter().map(|(v, _, n)| format!("{v}: {n}")).collect::<Vec<_>>().join(", ");
    let segments = counts
        .iter()
        .map(|(v, behind, n)| {
            let width = n * 1000 / total;
            let at = x;
            x += width;
            view! { <rect class=shade(*behind) x=at.to_string() y="0" width=width.to_string() height="20"><title>{format!("{v}: {n}")}</title></rect> }
        })
        .collect_view();
    view! {
        <figure class="version-chart">
            <svg viewBox="0 0 1000 20" preserveAspectRatio="none" role="img" aria-label=label.clone()>{segments}</svg>
            <figcaption class="muted">{label}</figcaption>
        </figure>
    }
}

/// The chosen apps' upgrades previewed; confirming starts the batch.
#[component]
pub fn BatchPreviewPage() -> impl IntoView {
    let query = use_query_map();
    let args = move || {
        let q = query.read();
        let apps = q.get_all("apps").unwrap_or_default().join(",");
        (q.get("recipe").unwrap_or_default(), apps, q.get("target").unwrap_or_default())
    };
    let data = Resource::new(args, |(recipe, apps, target)| api::preview_upgrade_batch(recipe, apps, target));
    let start = ServerAction::<StartUpgradeBatch>::new();
    Effect::new(move |_| {
        if let Some(Ok(b)) = start.value().get() {
            let navigate = leptos_router::hooks::use_navigate();
            navigate(&format!("/batches/{}", b.id), Default::default());
        }
    });
    view! {
        <Title text="Batch upgrade"/>
        <h1>"Batch upgrade"</h1>
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                let (recipe, apps, target) = args();
                match data.await {
                    Err(e) => view! { <ErrorBox error=e/> <p><a href="/fleet">"Back to the fleet"</a></p> }.into_any(),
                    Ok(items) => {
                        let blocked = items.iter().filter(|i| i.error.is_some()).count();
                        view! {
                            <p>{format!("{} apps of {recipe}, one after another, each as its own job.", items.len())}
                                {(blocked > 0).then(|| view! { <span class="warning">{format!(" {blocked} cannot be upgraded as things are (see below): they would fail.")}</span> })}</p>
                            <ol id="batch-preview">
                                {items.into_iter().map(|i| view! { <li><BatchItemPreview i/></li> }).collect_view()}
                            </ol>
                            <ActionForm action=start attr:id="start-batch">
                                <input type="hidden" name="recipe" value=recipe/>
                                <input type="hidden" name="apps" value=apps/>
                                <input type="hidden" name="target" value=target/>
                                <label><input type="checkbox" name="stop_on_failure" value="true" checked/> " Stop at the first failure (the apps after it are not upgraded)"</label>
                                <button type="submit">"Upgrade them"</button>
                            </ActionForm>
                            <ActionError value=start.value()/>
                        }.into_any()
                    }
                }
            })}
        </Suspense>
    }
}

#[component]
fn BatchItemPreview(i: BatchPreviewItem) -> impl IntoView {
    let head = view! { <strong>{i.domain.clone()}</strong> <span class="muted">" · " {i.collective.clone()}</span> };
    match (i.preview, i.error) {
        (_, Some(e)) => view! { <div class="batch-item blocked">{head} <p class="error">{e}</p></div> }.into_any(),
        (Some(p), None) => view! {
            <div class="batch-item" data-app=i.domain.clone()>
                {head} " " <code>{p.from_version.clone().unwrap_or_default()}</code> " → " <code>{p.to_version.clone().unwrap_or_default()}</code>
                <ul class="checks">{p.checks.iter().map(|c| view! { <li class=if c.level == "error" { "error" } else { "warning" }>{c.message.clone()}</li> }).collect_view()}</ul>
                <details><summary>{format!("{} changes on the swarm", p.changes.len())}</summary>
                    <ul>{p.changes.iter().map(|c| view! { <li><code>{c.clone()}</code></li> }).collect_view()}</ul></details>
                <details open=!p.release_notes.is_empty()><summary>{format!("release notes of {} versions", p.release_notes.len())}</summary>
                    {p.release_notes.iter().map(|(v, n)| view! { <h4>{v.clone()}</h4> <pre class="notes">{n.clone()}</pre> }).collect_view()}</details>
            </div>
        }.into_any(),
        (None, None) => head.into_any(),
    }
}

/// A batch as it goes: each app's state and job; the page reloads itself while it runs.
#[component]
pub fn BatchPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").and_then(|s| s.parse::<i64>().ok()).unwrap_or_default();
    let data = Resource::new(id, |id| api::get_upgrade_batch(BatchId(id)));
    view! {
        <Title text="Batch upgrade"/>
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                    Ok(b) => {
                        let running = b.state == "running";
                        let done = b.items.iter().filter(|i| matches!(i.state.as_str(), "succeeded" | "failed" | "skipped")).count();
                        view! {
                            {running.then(|| view! { <Meta http_equiv="refresh" content="2"/> })}
                            <h1>{format!("Upgrade of {} apps of {} to {}", b.items.len(), b.recipe, b.target)}</h1>
                            <p id="batch-state" data-state=b.state.clone()>{match b.state.as_str() {
                                "running" => format!("Under way: {done} of {} done.", b.items.len()),
                                "stopped" => "Stopped at a failure: the apps after it were not upgraded.".to_string(),
                                _ => "Done.".to_string(),
                            }} <span class="muted">" Started by " {b.created_by.clone()} " " <Time ms=b.created_at/>
                                {b.stop_on_failure.then_some(" · stops at the first failure")}</span></p>
                            <progress max=b.items.len().to_string() value=done.to_string()></progress>
                            <table id="batch-items">
                                <thead><tr><th>"#"</th><th>"App"</th><th>"From"</th><th>"State"</th><th>"Job"</th><th>"Result"</th></tr></thead>
                                <tbody>{b.items.iter().map(|i| view! {
                                    <tr data-app=i.domain.clone() data-state=i.state.clone()>
                                        <td>{i.position + 1}</td>
                                        <td><a href=format!("/c/{}/apps/{}", i.collective, i.domain)>{i.domain.clone()}</a></td>
                                        <td><code>{i.from_version.clone().unwrap_or_default()}</code></td>
                                        <td><span class=match i.state.as_str() { "succeeded" => "chip chip-whole", "failed" => "chip chip-undeclared", "running" => "chip chip-paths", _ => "chip chip-unknown" }>{i.state.clone()}</span></td>
                                        <td>{i.job.map(|j| view! { <a href=format!("/jobs/{j}")>{format!("#{j}")}</a> })}</td>
                                        <td class="muted">{i.result.clone().unwrap_or_default()}</td>
                                    </tr>
                                }).collect_view()}</tbody>
                            </table>
                        }.into_any()
                    }
                }
            })}
        </Suspense>
    }
}
