//! Release review: a recipe's proposals, opening one, and one proposal with what it changes for
//! operators, its reviews and the policy's state.

use crate::api::{self, *};
use crate::components::{ActionResult, ErrorBox, Time};
use crate::model::*;
use crate::pages::recipes::LintTable;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

#[component]
pub fn ReleasesPage() -> impl IntoView {
    let params = use_params_map();
    let name = move || params.read().get("name").unwrap_or_default();
    let open = ServerAction::<OpenRelease>::new();
    let list = Resource::new(move || (name(), open.version().get()), |(n, _)| api::list_releases(n));
    Effect::new(move |_| {
        if let Some(Ok(d)) = open.value().get() {
            let navigate = leptos_router::hooks::use_navigate();
            navigate(&format!("/releases/{}", d.summary.id), Default::default());
        }
    });
    view! {
        <Title text="Release proposals"/>
        <h1><a href=move || format!("/recipes/{}", name())>{name}</a> ": release proposals"</h1>
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match list.await {
                    Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                    Ok(list) => view! {
                        <table id="releases">
                            <thead><tr><th>"Version"</th><th>"State"</th><th>"Approvals"</th><th>"Proposed by"</th><th>"Updated"</th></tr></thead>
                            <tbody>
                                {list.into_iter().map(|p| view! {
                                    <tr data-version=p.version.clone()>
                                        <td><a href=format!("/releases/{}", p.id)><code>{p.version.clone()}</code></a> " " <span class="muted">{p.bump.clone()}</span></td>
                                        <td class=format!("state-{}", p.state)>{p.state.clone()}{p.approved.then_some(" (approved)")}
                                            {p.publish_error.clone().map(|e| view! { <div class="error-text">{e}</div> })}</td>
                                        <td>{p.approvals}</td>
                                        <td>{p.proposed_by.clone()}</td>
                                        <td><Time ms=p.updated_at/></td>
                                    </tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                    }.into_any(),
                }
            })}
        </Suspense>
        <h2>"Propose a release"</h2>
        <p class="muted">"Empty fields take Potluck's suggestion: the default branch's newest commit, the bump the change suggests (image major → major, image change → minor, recipe only → patch), the next version."</p>
        <ActionForm action=open attr:id="open-release">
            <input type="hidden" name="recipe" value=name/>
            <label>"Commit " <input name="commit" placeholder="the branch's head"/></label>
            <label>"Bump "
                <select name="bump">
                    <option value="">"suggested"</option>
                    <option value="major">"major"</option>
                    <option value="minor">"minor"</option>
                    <option value="patch">"patch"</option>
                </select>
            </label>
            <label>"Version " <input name="version" placeholder="computed"/></label>
            <label>"Release notes " <textarea name="notes" required rows="6" placeholder="What operators need to know before upgrading"></textarea></label>
            <button type="submit">"Open proposal"</button>
        </ActionForm>
        <ActionResult value=open.value() ok="Proposal opened."/>
    }
}

#[derive(Clone, Copy)]
struct ReleaseActions {
    review: ServerAction<ReviewRelease>,
    update: ServerAction<UpdateRelease>,
    withdraw: ServerAction<WithdrawRelease>,
    publish: ServerAction<PublishRelease>,
    stage: ServerAction<StartStagingRun>,
}

#[component]
pub fn ReleasePage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").and_then(|i| i.parse::<ProposalId>().ok()).unwrap_or_default();
    let actions = ReleaseActions {
        review: ServerAction::new(),
        update: ServerAction::new(),
        withdraw: ServerAction::new(),
        publish: ServerAction::new(),
        stage: ServerAction::new(),
    };
    let detail = Resource::new(
        move || {
            (
                id(),
                actions.review.version().get(),
                actions.update.version().get(),
                actions.withdraw.version().get(),
                actions.publish.version().get(),
                actions.stage.version().get(),
            )
        },
        |(id, ..)| api::get_release(id),
    );
    view! {
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match detail.await {
                    Err(e) => view! { <Title text="Release"/><ErrorBox error=e/> }.into_any(),
                    Ok(d) => view! { <ReleaseView d actions/> }.into_any(),
                }
            })}
        </Suspense>
    }
}

fn list_or_none(items: Vec<String>) -> impl IntoView {
    if items.is_empty() {
        view! { <span class="muted">"none"</span> }.into_any()
    } else {
        view! { <ul class="plain">{items.into_iter().map(|i| view! { <li>{i}</li> }).collect_view()}</ul> }.into_any()
    }
}

#[component]
fn ReleaseView(d: ReleaseProposalDetail, actions: ReleaseActions) -> impl IntoView {
    let s = d.summary.clone();
    let id = s.id.to_string();
    let diff = d.diff.clone();
    let open = s.state == "open";
    let policy = format!(
        "{} of {} approvals, from {} of {} collectives{}",
        s.approvals,
        d.required_approvals,
        d.approving_collectives.len(),
        d.required_collectives,
        if d.approving_collectives.is_empty() {
            String::new()
        } else {
            format!(" ({})", d.approving_collectives.join(", "))
        }
    );
    let (id2, id3, id4) = (id.clone(), id.clone(), id.clone());
    view! {
        <Title text=format!("{} {}", s.recipe, s.version)/>
        <h1><a href=format!("/recipes/{}/releases", s.recipe)>{s.recipe.clone()}</a> " " <code id="release-version">{s.version.clone()}</code></h1>
        <p class="muted">{format!("{} bump from ", s.bump)} <code>{d.base_version.clone().unwrap_or_else(|| "nothing (first release)".into())}</code>
            " · commit " <code id="release-commit">{s.commit.chars().take(12).collect::<String>()}</code> " on " {d.branch.clone()}
            " · proposed by " {s.proposed_by.clone()} " · " <Time ms=s.created_at/></p>
        <p>"State: " <strong id="release-state">{s.state.clone()}</strong> " · " <span id="release-policy">{policy}</span>
            {d.changes_requested.then_some(" · changes requested")}
            {d.published_commit.clone().map(|c| view! { " · published as " <code>{c.chars().take(12).collect::<String>()}</code> })}</p>
        {s.publish_error.clone().map(|e| view! { <p class="error-text" id="publish-error">"Publishing failed: " {e}</p> })}
        <Staging d=d.clone() stage=actions.stage/>
        <h2>"Release notes"</h2>
        <pre class="note" id="release-notes">{d.notes.clone()}</pre>

        <h2>"What changes for operators"</h2>
        {(!diff.errors.is_empty()).then(|| view! {
            <div class="error" role="alert" id="release-errors">
                <p>"These block publishing:"</p>
                <ul>{diff.errors.iter().map(|e| view! { <li>{e.clone()}</li> }).collect_view()}</ul>
            </div>
        })}
        {(!diff.risks.is_empty()).then(|| view! {
            <div class="warning" id="release-risks"><p>"Risky:"</p>
                <ul>{diff.risks.iter().map(|r| view! { <li>{r.clone()}</li> }).collect_view()}</ul></div>
        })}
        <table id="release-diff" class="kv">
            <tbody>
                <tr><th>"Images"</th><td>{list_or_none(diff.image_changes.iter().map(|c| format!("{}: {} → {}{}", c.service, c.from, c.to, if c.major { " (major)" } else { "" })).collect())}</td></tr>
                <tr><th>"Services added"</th><td>{list_or_none(diff.services_added.clone())}</td></tr>
                <tr><th>"Services removed"</th><td>{list_or_none(diff.services_removed.clone())}</td></tr>
                <tr><th>"New settings"</th><td>{list_or_none(diff.env_added.iter().map(|v| match &v.default {
                    Some(def) => format!("{} (default {def})", v.key),
                    None => format!("{} (no default: must be set)", v.key),
                }).collect())}</td></tr>
                <tr><th>"Settings removed"</th><td>{list_or_none(diff.env_removed.clone())}</td></tr>
                <tr><th>"Secrets added"</th><td>{list_or_none(diff.secrets_added.clone())}</td></tr>
                <tr><th>"Secrets rotated"</th><td>{list_or_none(diff.secrets_rotated.clone())}</td></tr>
                <tr><th>"Volumes removed"</th><td>{list_or_none(diff.volumes_removed.clone())}</td></tr>
                <tr><th>"Files changed"</th><td>{list_or_none(diff.files_changed.clone())}</td></tr>
                <tr><th>"Suggested bump"</th><td>{diff.suggested_bump.clone()}</td></tr>
            </tbody>
        </table>
        <h3>"Lint"</h3>
        <LintTable findings=diff.lint.clone()/>

        <h2>"Reviews"</h2>
        <ul id="reviews">
            {d.reviews.iter().map(|r| view! {
                <li class=format!("verdict-{}", r.verdict) class:stale=!r.counts && r.verdict == "approve">
                    <strong>{r.reviewer.clone()}</strong>
                    {r.collective.clone().map(|c| format!(" ({c})"))} " "
                    {match r.verdict.as_str() { "approve" => "approved", "request_changes" => "requested changes", _ => "commented" }}
                    " on " <code>{r.commit.chars().take(8).collect::<String>()}</code> " · " <Time ms=r.created_at/>
                    {(r.verdict == "approve" && !r.counts).then_some(" · does not count (an older commit, or the proposer)")}
                    {(!r.comment.is_empty()).then(|| view! { <p>{r.comment.clone()}</p> })}
                </li>
            }).collect_view()}
        </ul>
        {(open && d.can_review).then(|| view! {
            <ActionForm action=actions.review attr:id="review-form">
                <input type="hidden" name="id" value=id.clone()/>
                <label>"Your review "
                    <select name="verdict" id="verdict">
                        <option value="approve">"Approve"</option>
                        <option value="request_changes">"Request changes"</option>
                        <option value="comment">"Comment only"</option>
                    </select>
                </label>
                <label>"Comment " <textarea name="comment" rows="3"></textarea></label>
                <button type="submit" id="submit-review">"Submit review"</button>
            </ActionForm>
            <ActionResult value=actions.review.value() ok="Review recorded."/>
            <details>
                <summary>"Point the proposal at a newer commit (approvals start over)"</summary>
                <ActionForm action=actions.update attr:id="update-release">
                    <input type="hidden" name="id" value=id2/>
                    <label>"Commit " <input name="commit" placeholder="the branch's head"/></label>
                    <label>"Release notes (empty: keep) " <textarea name="notes" rows="4"></textarea></label>
                    <button type="submit">"Update"</button>
                </ActionForm>
                <ActionResult value=actions.update.value() ok="Updated."/>
            </details>
            {s.approved.then(|| view! {
                <ActionForm action=actions.publish attr:id="publish-release">
                    <input type="hidden" name="id" value=id3/>
                    <button type="submit">"Publish again"</button>
                </ActionForm>
                <ActionResult value=actions.publish.value() ok="Published."/>
            })}
            <ActionForm action=actions.withdraw attr:id="withdraw-release">
                <input type="hidden" name="id" value=id4/>
                <button type="submit">"Withdraw"</button>
            </ActionForm>
        })}
    }
}

fn short(commit: &str) -> String {
    commit.chars().take(12).collect()
}

/// The proposal's staging runs: a strip of their outcomes (oldest left), the list, and asking
/// for another run.
#[component]
fn Staging(d: ReleaseProposalDetail, stage: ServerAction<StartStagingRun>) -> impl IntoView {
    let id = d.summary.id;
    let open = d.summary.state == "open";
    let policy = if d.require_green_run {
        if d.green {
            "A staging run of this commit passed: the policy to publish is met."
        } else {
            "The recipe's policy: publishing waits for a passed staging run of this commit."
        }
    } else {
        "Publishing does not wait for staging."
    };
    let mut oldest_first = d.staging.clone();
    oldest_first.reverse();
    let n = oldest_first.len();
    view! {
        <h2>"Staging"</h2>
        <p id="staging-policy" class:ok=d.green>{policy}</p>
        {(!d.staging_available).then(|| view! {
            <p class="muted">"The federation has no staging server: proposals are not tried before review."</p>
        })}
        {(n > 0).then(|| view! {
            <svg class="run-strip" width=(n * 18).to_string() height="16" role="img" aria-label="staging runs, oldest first">
                {oldest_first.iter().enumerate().map(|(i, r)| view! {
                    <a href=format!("/releases/{id}/runs/{}", r.id)>
                        <rect x=(i * 18).to_string() y="1" width="14" height="14" rx="3" class=format!("run-{}", r.state)>
                            <title>{format!("run {}: {} ({})", r.id, r.state, short(&r.commit))}</title>
                        </rect>
                    </a>
                }).collect_view()}
            </svg>
        })}
        {(n > 0).then(|| view! {
            <table id="staging-runs">
                <thead><tr><th>"Run"</th><th>"State"</th><th>"Commit"</th><th>"Upgrade from"</th><th>"Server"</th><th>"Asked"</th></tr></thead>
                <tbody>
                    {d.staging.iter().map(|r| view! {
                        <tr data-run=r.id.to_string() data-state=r.state.clone()>
                            <td><a href=format!("/releases/{id}/runs/{}", r.id)>{format!("#{}", r.id)}</a></td>
                            <td class=format!("state-{}", r.state)>{r.state.clone()}
                                {r.failure.clone().map(|f| view! { <div class="error-text">{f}</div> })}</td>
                            <td><code>{short(&r.commit)}</code>{(r.commit != d.summary.commit).then_some(" (older commit)")}</td>
                            <td>{r.upgrade_from.clone().map(|v| view! { <code>{v}</code> })}</td>
                            <td>{r.server.clone()}</td>
                            <td>{r.requested_by.clone()} " · " <Time ms=r.created_at/></td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
        })}
        {(open && d.staging_available && d.can_review).then(|| view! {
            <ActionForm action=stage attr:id="start-staging" attr:class="inline">
                <input type="hidden" name="id" value=id.to_string()/>
                <button type="submit">"Run on staging again"</button>
            </ActionForm>
            <ActionResult value=stage.value() ok="Queued."/>
        })}
    }
}

/// One staging run with its log; it reloads itself while the run is queued or running.
#[component]
pub fn StagingRunPage() -> impl IntoView {
    let params = use_params_map();
    let ids = move || {
        let p = params.read();
        (
            p.get("id").and_then(|i| i.parse::<ProposalId>().ok()).unwrap_or_default(),
            p.get("run").and_then(|i| i.parse::<StagingRunId>().ok()).unwrap_or_default(),
        )
    };
    let run = Resource::new(ids, |(id, run)| api::get_staging_run(id, run));
    view! {
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match run.await {
                    Err(e) => view! { <Title text="Staging run"/><ErrorBox error=e/> }.into_any(),
                    Ok(v) => {
                        let s = v.summary.clone();
                        let going = matches!(s.state.as_str(), "queued" | "running");
                        view! {
                            <Title text=format!("Staging run {} of {} {}", s.id, v.recipe, s.version)/>
                            {going.then(|| view! { <leptos_meta::Meta http_equiv="refresh" content="2"/> })}
                            <h1>"Staging run " {format!("#{}", s.id)} " of "
                                <a href=format!("/releases/{}", v.proposal_id)>{v.recipe.clone()} " " <code>{s.version.clone()}</code></a></h1>
                            <p>"State: " <strong id="run-state" class=format!("state-{}", s.state)>{s.state.clone()}</strong>
                                " · commit " <code>{short(&s.commit)}</code>
                                {s.upgrade_from.clone().map(|f| view! { " · upgrade from " <code>{f}</code> })}
                                {s.server.clone().map(|sv| format!(" · on {sv}"))}
                                " · stack " <code>{v.stack.clone()}</code>
                                " · asked by " {s.requested_by.clone()} " · " <Time ms=s.created_at/></p>
                            {s.failure.clone().map(|f| view! { <div class="error" role="alert" id="run-failure"><p>{f}</p>
                                {(!v.details.is_empty()).then(|| view! { <pre id="run-details">{v.details.join("\n")}</pre> })}</div> })}
                            {(!v.left_behind.is_empty()).then(|| view! {
                                <p class="error-text" id="run-left">"Left behind on the staging server: " {v.left_behind.join(", ")}</p>
                            })}
                            <h2>"Log"</h2>
                            <pre id="run-log" class="log">{v.log.iter().map(|l| l.text.clone()).collect::<Vec<_>>().join("\n")}</pre>
                        }.into_any()
                    }
                }
            })}
        </Suspense>
    }
}
