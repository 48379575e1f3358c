//! A collective's operator sync through git: where its apps' files go, each file's state at a
//! glance, the remote's changes waiting (with their diffs) to apply or reject, and what the sync
//! did lately.

use crate::api::{self, *};
use crate::components::{ActionError, ActionResult, ErrorBox, Time};
use crate::model::*;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

#[component]
pub fn SyncPage() -> impl IntoView {
    let params = use_params_map();
    let slug = move || params.read().get("slug").unwrap_or_default();
    let set = ServerAction::<SetSync>::new();
    let remove = ServerAction::<RemoveSync>::new();
    let run = ServerAction::<SyncNow>::new();
    let apply = ServerAction::<ApplyIncoming>::new();
    let apply_all = ServerAction::<ApplyAllIncoming>::new();
    let reject = ServerAction::<RejectIncoming>::new();
    let data = Resource::new(
        move || {
            (
                slug(),
                set.version().get(),
                remove.version().get(),
                run.version().get(),
                apply.version().get(),
                apply_all.version().get(),
                reject.version().get(),
            )
        },
        |(s, ..)| api::get_sync(s),
    );
    view! {
        <Title text="Git sync"/>
        <h1>"Git sync of " <a href=move || format!("/c/{}", slug())>{slug}</a></h1>
        <p class="muted">"The collective's apps kept in a git repository in abra's own layout, "
            <code>"servers/<server>/<domain>.env"</code>
            ": every change Potluck makes is a commit by the person who made it, and what abra users push arrives here to apply or reject."</p>
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                    Ok(v) => view! { <Overview v set remove run apply apply_all reject/> }.into_any(),
                }
            })}
        </Suspense>
    }
}

/// A file's state in words: short for the legend's counts, long for a chip's title.
fn state_label(state: &str) -> (&'static str, &'static str) {
    match state {
        "synced" => ("in sync", "the same in Potluck and in git"),
        "outgoing" => ("to push", "Potluck's change, on its way to git"),
        "incoming" => ("waiting", "a change from git, waiting for an operator"),
        "conflict" => ("in conflict", "changed in Potluck and in git"),
        _ => ("not synced yet", "not synced yet"),
    }
}

#[component]
fn Overview(
    v: SyncView,
    set: ServerAction<SetSync>,
    remove: ServerAction<RemoveSync>,
    run: ServerAction<SyncNow>,
    apply: ServerAction<ApplyIncoming>,
    apply_all: ServerAction<ApplyAllIncoming>,
    reject: ServerAction<RejectIncoming>,
) -> impl IntoView {
    let slug = use_params_map().read_untracked().get("slug").unwrap_or_default();
    let status = v.configured.then(|| {
        let head = v.remote_head.clone().map(|h| h.chars().take(10).collect::<String>());
        let run_form = v.can_apply.then(|| {
            let slug = slug.clone();
            view! {
                <ActionForm action=run attr:id="sync-now" attr:class="inline">
                    <input type="hidden" name="slug" value=slug/>
                    <button type="submit">"Sync now"</button>
                </ActionForm>
                <ActionResult value=run.value() ok="Synced."/>
            }
        });
        view! {
            <section id="sync-status">
                <dl class="meta">
                    <dt>"Remote"</dt><dd><code id="sync-url">{v.url.clone()}</code> " · branch " <code>{v.branch.clone()}</code></dd>
                    <dt>"Credential"</dt><dd>{v.credential_kind.clone().unwrap_or_else(|| "none".into())}</dd>
                    <dt>"Remote changes"</dt><dd>{if v.auto_apply { "env changes applied as they arrive" } else { "applied by an operator" }}</dd>
                    <dt>"Last synced"</dt><dd>{match v.synced_at { Some(t) => view! { <Time ms=t/> }.into_any(), None => "not yet".into_any() }}
                        {head.map(|h| view! { " at " <code id="sync-head">{h}</code> })}</dd>
                    <dt>"Webhook"</dt><dd><code>{v.webhook_url.clone()}</code></dd>
                </dl>
                {v.last_error.clone().map(|e| view! { <p class="error" role="alert" id="sync-error">"The last sync failed: " {e}</p> })}
                {run_form}
            </section>
        }
    });
    let files = (!v.files.is_empty()).then(|| {
        let mut servers: Vec<String> = v.files.iter().map(|f| f.server.clone()).collect();
        servers.dedup();
        let counts = ["synced", "outgoing", "incoming", "conflict", "unsynced"]
            .map(|s| (s, v.files.iter().filter(|f| f.state == s).count()));
        view! {
            <section id="sync-files">
                <h2>"Files"</h2>
                <p class="legend">{counts.iter().filter(|(_, n)| *n > 0).map(|(s, n)| view! {
                    <span class=format!("sync-file sync-{s}")>{format!("{n} {}", state_label(s).0)}</span> " "
                }).collect_view()}</p>
                {servers.into_iter().map(|server| {
                    let mine: Vec<SyncFile> = v.files.iter().filter(|f| f.server == server).cloned().collect();
                    view! {
                        <div class="sync-server">
                            <h3><code>{format!("servers/{server}/")}</code></h3>
                            <ul class="sync-files">{mine.into_iter().map(|f| view! {
                                <li class=format!("sync-file sync-{}", f.state) data-path=f.path.clone() data-state=f.state.clone()
                                    title=format!("{}: {}", f.path, state_label(&f.state).1)>{f.domain.clone()}</li>
                            }).collect_view()}</ul>
                        </div>
                    }
                }).collect_view()}
            </section>
        }
    });
    let waiting = v.incoming.len();
    let all_form = (v.can_apply && waiting > 1).then(|| {
        let slug = slug.clone();
        view! {
            <ActionForm action=apply_all attr:id="apply-all">
                <input type="hidden" name="slug" value=slug/>
                <button type="submit">{format!("Apply all {waiting} changes")}</button>
            </ActionForm>
        }
    });
    let all_result = move || {
        match apply_all.value().get() {
        Some(Ok(done)) => view! {
            <div class="ok" role="status" id="applied-all">
                {format!("{} applied.", done.applied.len())}
                <ul>{done.refused.into_iter().map(|r| view! { <li class="error"><code>{r.path}</code> ": " {r.reason}</li> }).collect_view()}</ul>
            </div>
        }
        .into_any(),
        Some(Err(e)) => view! { <ErrorBox error=e/> }.into_any(),
        None => ().into_any(),
    }
    };
    let incoming = v.configured.then(|| {
        view! {
            <h2>"Waiting from the remote"</h2>
            {all_form}
            {all_result}
            {v.incoming.is_empty().then(|| view! { <p class="muted" id="no-incoming">"Nothing: Potluck has every change the remote has."</p> })}
            <IncomingChanges changes=v.incoming.clone() slug=slug.clone() can_apply=v.can_apply apply reject/>
        }
    });
    let activity = (!v.activity.is_empty()).then(|| {
        view! {
            <h2>"Lately"</h2>
            <table id="sync-activity">
                <thead><tr><th>"When"</th><th>"What"</th><th>"Who"</th><th></th></tr></thead>
                <tbody>{v.activity.iter().map(|a| view! {
                    <tr><td><Time ms=a.at/></td><td><code>{a.action.clone()}</code></td><td>{a.actor.clone()}</td><td>{a.what.clone()}</td></tr>
                }).collect_view()}</tbody>
            </table>
        }
    });
    let settings = v.can_configure.then(|| {
        let slug2 = slug.clone();
        let configured = v.configured;
        view! {
            <details class="sync-form" open=!configured>
                <summary>{if configured { "Change the remote" } else { "Set up a remote" }}</summary>
                <ActionForm action=set attr:id="sync-settings">
                    <input type="hidden" name="slug" value=slug.clone()/>
                    <label>"Repository " <input name="url" required maxlength="2048" value=v.url.clone()
                        placeholder="ssh://git@git.example.org/ops/abra-servers.git"/></label>
                    <label>"Branch " <input name="branch" maxlength="200" value=v.branch.clone() placeholder="main"/></label>
                    <fieldset>
                        <legend>"Credential"</legend>
                        {configured.then(|| view! { <label><input type="radio" name="credential_kind" value="" checked/> "keep the one set"</label> })}
                        <label><input type="radio" name="credential_kind" value="none" checked=!configured/> "none"</label>
                        <label><input type="radio" name="credential_kind" value="https"/> "an https token"</label>
                        <label><input type="radio" name="credential_kind" value="ssh"/> "an SSH private key"</label>
                        <label>"User name " <input name="credential_username" maxlength="200" placeholder="git"/></label>
                        <label>"Token or private key " <textarea name="credential_secret" rows="3" maxlength="16384"></textarea></label>
                    </fieldset>
                    <label><input type="checkbox" name="auto_apply" value="true" checked=v.auto_apply/>
                        " Apply the remote's changes to existing apps' env files as they arrive (new and removed apps always wait for an operator)"</label>
                    <p class="muted">"The repository is reached with the credential before anything is kept; the credential is stored sealed and never shown again."</p>
                    <button type="submit">"Save"</button>
                </ActionForm>
                {move || match set.value().get() {
                    Some(Ok(done)) => view! {
                        <div class="ok" role="status" id="sync-saved">
                            "Saved."
                            {done.webhook_secret.map(|k| view! {
                                <p>"Point the repository's push webhook at " <code>{done.sync.webhook_url.clone()}</code>
                                   " with this secret, shown this once: " <code id="webhook-secret">{k.0}</code></p>
                            })}
                        </div>
                    }.into_any(),
                    Some(Err(e)) => view! { <ErrorBox error=e/> }.into_any(),
                    None => ().into_any(),
                }}
                {configured.then(|| view! {
                    <ActionForm action=remove attr:id="sync-remove">
                        <input type="hidden" name="slug" value=slug2/>
                        <button type="submit" class="danger">"Stop syncing"</button>
                    </ActionForm>
                    <ActionError value=remove.value()/>
                })}
            </details>
        }
    });
    view! {
        {(!v.configured).then(|| view! { <p id="sync-off">"This collective's apps are not synced to git."</p> })}
        {status}
        {files}
        {incoming}
        {activity}
        {settings}
    }
}

/// The remote's changes waiting, each with its commit and its diff against Potluck's file, and
/// the buttons that decide it (the app page shows its own).
#[component]
pub fn IncomingChanges(
    changes: Vec<IncomingChange>,
    slug: String,
    can_apply: bool,
    apply: ServerAction<ApplyIncoming>,
    reject: ServerAction<RejectIncoming>,
) -> impl IntoView {
    let items = changes
        .into_iter()
        .map(|c| {
            let (title, take, keep) = match c.kind.as_str() {
                "new" => ("A new app in git", "Import the app", "Reject (remove it from git)"),
                "removed" => ("Removed in git", "Delete the app", "Reject (put Potluck's back)"),
                "conflict" => ("Changed in git and in Potluck", "Take the remote's", "Keep Potluck's (push it)"),
                _ => ("Changed in git", "Apply to Potluck", "Reject (push Potluck's back)"),
            };
            let buttons = can_apply.then(|| {
                let (slug, slug2, id, id2) = (slug.clone(), slug.clone(), c.id.to_string(), c.id.to_string());
                view! {
                    <ActionForm action=apply attr:class="inline apply-incoming">
                        <input type="hidden" name="slug" value=slug/>
                        <input type="hidden" name="id" value=id/>
                        <button type="submit">{take}</button>
                    </ActionForm>
                    <ActionForm action=reject attr:class="inline reject-incoming">
                        <input type="hidden" name="slug" value=slug2/>
                        <input type="hidden" name="id" value=id2/>
                        <button type="submit" class="secondary">{keep}</button>
                    </ActionForm>
                }
            });
            let commit: String = c.commit.chars().take(10).collect();
            view! {
                <article class=format!("incoming incoming-{}", c.kind) data-path=c.path.clone() data-kind=c.kind.clone()>
                    <h3>{title} ": " <code>{c.path.clone()}</code></h3>
                    <p class="muted">{c.author.clone()} " · " <code class="commit">{commit}</code> " " {c.summary.clone()}
                        " · committed " <Time ms=c.committed_at/></p>
                    <pre class="diff" aria-label="Potluck's file against the remote's">{c.diff.iter().map(|l| {
                        let class = match l.tag.as_str() { "+" => "diff-add", "-" => "diff-del", " " => "diff-same", _ => "diff-gap" };
                        view! { <span class=class>{format!("{} {}\n", l.tag, l.text)}</span> }
                    }).collect_view()}</pre>
                    {buttons}
                </article>
            }
        })
        .collect_view();
    view! {
        <div class="incoming-changes">{items}</div>
        <ActionError value=apply.value()/>
        <ActionError value=reject.value()/>
    }
}
