//! A collective's servers and apps: registering swarm managers, creating and importing apps,
//! the app page (env, overlays, secrets, services, logs, commands, deploy actions with their
//! preview) and the live job page.

use crate::api::{self, *};
use crate::components::{use_me, ActionResult, ErrorBox, Time};
use crate::model::*;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

fn slug_param() -> impl Fn() -> String + Copy + Send + Sync + 'static {
    let params = use_params_map();
    move || params.read().get("slug").unwrap_or_default()
}

#[component]
pub fn ServersPage() -> impl IntoView {
    let slug = slug_param();
    let me = use_me();
    let add = ServerAction::<AddServer>::new();
    let remove = ServerAction::<RemoveServer>::new();
    let trust = ServerAction::<TrustHostKey>::new();
    let policy = ServerAction::<SetServerPolicy>::new();
    let list = Resource::new(
        move || (slug(), add.version().get(), remove.version().get(), trust.version().get(), policy.version().get()),
        |(s, ..)| api::list_servers(s),
    );
    view! {
        <Title text="Servers"/>
        <h1>"Servers of " <a href=move || format!("/c/{}", slug())>{slug}</a></h1>
        <p class="muted">"The collective's swarm managers. Potluck talks to them through the Docker API and watches their event streams."</p>
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                let me = me.await.ok().flatten();
                let manage = me.as_ref().is_some_and(|m| m.can(&slug(), Permission::ManageServers));
                let federation = me.as_ref().is_some_and(|m| m.is_federation_admin);
                match list.await {
                    Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                    Ok(list) => {
                    // Each row's connection and swarm follow the servers' live stream.
                    let live = RwSignal::new(list.clone());
                    let url = format!("/c/{}/live/servers", slug());
                    #[cfg(feature = "hydrate")]
                    crate::live::follow(url.clone(), "servers", live);
                    view! {
                        <table id="servers" data-live=url>
                            <thead><tr><th>"Server"</th><th>"Address"</th><th>"Engine"</th><th>"Swarm"</th><th>"Live"</th><th>"Host key · allowed"</th><th></th></tr></thead>
                            <tbody>
                                {list.into_iter().map(|s| {
                                    let (server_name, server_collective) = (s.name.clone(), s.collective.clone());
                                    let (trust_name, trust_collective) = (s.name.clone(), s.collective.clone());
                                    let (policy_name, policy_collective) = (s.name.clone(), s.collective.clone());
                                    let allowed = s.policy_allows.join(", ");
                                    let is_ssh = s.kind == "ssh";
                                    view! {
                                    <tr data-server=s.name.clone()>
                                        <td>{s.name.clone()}</td>
                                        <td><code>{format!("{}://{}", s.kind, s.address)}</code>{s.tls.then_some(" (TLS)")}</td>
                                        <td>{s.engine_version.clone().unwrap_or_default()} <span class="muted">" API " {s.api_version.clone().unwrap_or_default()}</span></td>
                                        <td>{if s.is_manager { format!("manager, {} node(s)", s.nodes) } else { "not a manager".into() }}</td>
                                        <td class="live">{
                                            let id = s.id;
                                            move || live.read().iter().find(|l| l.id == id).cloned().map(|s| view! { <ServerGlance s/> })
                                        }</td>
                                        <td class="guard">
                                            {s.host_key_fingerprints.iter().map(|f| view! { <div><code class="fingerprint">{f.clone()}</code></div> }).collect_view()}
                                            <div class="policy">{if allowed.is_empty() { "no host access allowed".to_string() } else { format!("allows {allowed}") }}</div>
                                            {(manage && is_ssh).then(move || view! {
                                                <details>
                                                    <summary>"Trust a new host key"</summary>
                                                    <ActionForm action=trust attr:class="trust-host-key">
                                                        <input type="hidden" name="slug" value=trust_collective/>
                                                        <input type="hidden" name="name" value=trust_name/>
                                                        <label>"Its fingerprint, checked on the server " <input name="fingerprint" required placeholder="SHA256:…"/></label>
                                                        <button type="submit">"Trust"</button>
                                                    </ActionForm>
                                                </details>
                                            })}
                                            {federation.then(move || view! {
                                                <ActionForm action=policy attr:class="server-policy">
                                                    <input type="hidden" name="slug" value=policy_collective/>
                                                    <input type="hidden" name="name" value=policy_name/>
                                                    <label>"Allow " <input name="allow" value=allowed.clone() placeholder="bind_mounts, docker_socket, privileged, capabilities, host_namespaces, devices, foreign_objects"/></label>
                                                    <button type="submit">"Set"</button>
                                                </ActionForm>
                                            })}
                                        </td>
                                        <td>{manage.then(move || view! {
                                            <ActionForm action=remove attr:class="inline">
                                                <input type="hidden" name="slug" value=server_collective/>
                                                <input type="hidden" name="name" value=server_name/>
                                                <button type="submit">"Remove"</button>
                                            </ActionForm>
                                        })}</td>
                                    </tr>
                                }}).collect_view()}
                            </tbody>
                        </table>
                        <ActionResult value=remove.value() ok="Server removed."/>
                        <ActionResult value=trust.value() ok="Host key pinned."/>
                        <ActionResult value=policy.value() ok="Policy set."/>
                        {manage.then(|| view! {
                            <h2>"Add a server"</h2>
                            <ActionForm action=add attr:id="add-server">
                                <input type="hidden" name="slug" value=slug()/>
                                <label>"Name " <input name="name" required placeholder="swarm.example.org"/></label>
                                <label>"Connection "
                                    <select name="kind">
                                        <option value="ssh">"SSH (the server's own key)"</option>
                                        <option value="tcp">"TCP (TLS client certificates)"</option>
                                        <option value="unix">"Local engine (granted by the federation's configuration)"</option>
                                    </select>
                                </label>
                                <label>"Address " <input name="address" required placeholder="user@host[:port] · host:2376 · /var/run/docker.sock"/></label>
                                <label>"SSH host key fingerprint, if you have it " <input name="host_key" placeholder="SHA256:…"/></label>
                                <details>
                                    <summary>"TLS certificates / SSH key"</summary>
                                    <label>"CA certificate (PEM) " <textarea name="tls_ca"></textarea></label>
                                    <label>"Client certificate (PEM) " <textarea name="tls_cert"></textarea></label>
                                    <label>"Client key or SSH private key (PEM, kept sealed, never shown again) " <textarea name="private_key" autocomplete="off"></textarea></label>
                                </details>
                                <p class="muted">"Potluck pins the SSH host key the server presents now and shows its fingerprint; a later change is refused until you trust the new one."</p>
                                <button type="submit">"Check and add"</button>
                            </ActionForm>
                            <ActionResult value=add.value() ok="Server added."/>
                        })}
                    }.into_any()
                    }
                }
            })}
        </Suspense>
    }
}

/// A server's connection and its swarm at a glance: nodes ready, services converged, tasks
/// running, restarts in the last hour.
#[component]
fn ServerGlance(s: ServerView) -> impl IntoView {
    let g = s.summary.clone();
    view! {
        <span class=if s.connected { "connected" } else { "disconnected" }>{if s.connected { "connected" } else { "disconnected" }}</span>
        {s.last_event_at.map(|ms| view! { <div class="muted">"last event " <Time ms/></div> })}
        {s.last_error.clone().map(|e| view! { <div class="error-text">{e}</div> })}
        {g.map(|g| view! {
            <div class="glance" data-nodes=format!("{}/{}", g.nodes_ready, g.nodes) data-tasks=format!("{}/{}", g.tasks_running, g.tasks_desired)>
                <span>{format!("nodes {}/{} ready", g.nodes_ready, g.nodes)}</span>
                <meter min="0" max=g.nodes.max(1).to_string() value=g.nodes_ready.to_string()></meter>
                <span>{format!("services {}/{} converged", g.services_converged, g.services)}</span>
                <meter min="0" max=g.services.max(1).to_string() value=g.services_converged.to_string()></meter>
                <span>{format!("tasks {}/{} running", g.tasks_running, g.tasks_desired)}</span>
                <meter min="0" max=g.tasks_desired.max(1).to_string() value=g.tasks_running.to_string()></meter>
                {(g.restarts > 0).then(|| view! { <span class="error-text">{format!("{} restart(s) in the last hour", g.restarts)}</span> })}
            </div>
        })}
    }
}

#[component]
pub fn AppsPage() -> impl IntoView {
    let slug = slug_param();
    let me = use_me();
    let create = ServerAction::<CreateApp>::new();
    let import = ServerAction::<ImportApp>::new();
    let apps =
        Resource::new(move || (slug(), create.version().get(), import.version().get()), |(s, ..)| api::list_apps(s));
    let servers = Resource::new(slug, api::list_servers);
    let recipes = Resource::new(|| (), |_| api::list_recipes());
    view! {
        <Title text="Apps"/>
        <h1>"Apps of " <a href=move || format!("/c/{}", slug())>{slug}</a></h1>
        <p class="muted"><a href=move || format!("/c/{}/servers", slug())>"Servers"</a>
            " · " <a href=move || format!("/c/{}/abra/servers.tar.gz", slug()) download>"Download as an abra servers tree"</a>
            " · " <a href=move || format!("/c/{}/sync", slug()) id="sync-link">"Git sync"</a></p>
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                let me = me.await.ok().flatten();
                let manage = me.as_ref().is_some_and(|m| m.can(&slug(), Permission::ManageApps));
                let servers = servers.await.unwrap_or_default();
                let recipes = recipes.await.unwrap_or_default();
                match apps.await {
                    Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                    Ok(list) => view! {
                        <AppsTable slug=slug() list/>
                        {manage.then(|| {
                            let server_options = servers.iter().map(|s| view! { <option value=s.name.clone()>{s.name.clone()}</option> }).collect_view();
                            let server_options2 = servers.iter().map(|s| view! { <option value=s.name.clone()>{s.name.clone()}</option> }).collect_view();
                            view! {
                                <h2>"New app"</h2>
                                <ActionForm action=create attr:id="create-app">
                                    <input type="hidden" name="slug" value=slug()/>
                                    <label>"Recipe "
                                        <select name="recipe">
                                            {recipes.iter().map(|r| view! { <option value=r.name.clone()>{r.name.clone()}</option> }).collect_view()}
                                        </select>
                                    </label>
                                    <label>"Server " <select name="server">{server_options}</select></label>
                                    <label>"Domain " <input name="domain" required placeholder="cloud.example.org"/></label>
                                    <label>"Version (empty: the newest) " <input name="version"/></label>
                                    <button type="submit">"Create"</button>
                                </ActionForm>
                                {move || match create.value().get() {
                                    Some(Ok(a)) => view! { <p class="ok" role="status">"Created " <a href=format!("/c/{}/apps/{}", a.collective, a.domain)>{a.domain.clone()}</a></p> }.into_any(),
                                    Some(Err(e)) => view! { <ErrorBox error=e/> }.into_any(),
                                    None => ().into_any(),
                                }}
                                <details>
                                    <summary>"Import from abra"</summary>
                                    <p class="muted">"Paste an app's env file from " <code>"~/.abra/servers/<server>/<domain>.env"</code> "."</p>
                                    <ActionForm action=import attr:id="import-app">
                                        <input type="hidden" name="slug" value=slug()/>
                                        <label>"Server " <select name="server">{server_options2}</select></label>
                                        <label>"File name " <input name="file_name" required placeholder="cloud.example.org.env"/></label>
                                        <label>"Content " <textarea name="content" required rows="12"></textarea></label>
                                        <button type="submit">"Import"</button>
                                    </ActionForm>
                                    <ActionResult value=import.value() ok="Imported."/>
                                </details>
                                <details>
                                    <summary>"Import a whole abra servers tree"</summary>
                                    <p class="muted">"A tar.gz of " <code>"~/.abra/servers"</code> " (" <code>"tar czf servers.tar.gz -C ~/.abra servers"</code>
                                        "): you see what it creates and what it refuses before anything is imported."</p>
                                    <form method="post" enctype="multipart/form-data" action=format!("/c/{}/abra/upload", slug()) id="upload-abra-tree">
                                        <input type="hidden" name="slug" value=slug()/>
                                        <label>"Archive " <input type="file" name="archive" required accept=".tar.gz,.tgz,.tar,application/gzip,application/x-tar"/></label>
                                        <button type="submit">"Preview the import"</button>
                                    </form>
                                </details>
                            }
                        })}
                    }.into_any(),
                }
            })}
        </Suspense>
    }
}

/// The servers a preview maps directories to, from the page's query (`servers[<dir>]=<server>`).
fn chosen_servers(q: &leptos_router::params::ParamsMap) -> std::collections::BTreeMap<String, String> {
    q.latest_values()
        .filter_map(|(k, v)| {
            let dir = k.strip_prefix("servers[")?.strip_suffix(']')?;
            Some((dir.to_string(), v.to_string()))
        })
        .collect()
}

/// An uploaded abra servers tree: which server each directory goes to (changeable), each env
/// file as the app it becomes or why it is refused, and the button that imports them all.
#[component]
pub fn AbraImportPage() -> impl IntoView {
    let params = use_params_map();
    let query = leptos_router::hooks::use_query_map();
    let slug = slug_param();
    let upload = move || params.read().get("id").and_then(|s| s.parse::<i64>().ok());
    let args = move || (slug(), upload(), chosen_servers(&query.read()));
    let import = ServerAction::<ImportAbraTree>::new();
    let preview = Resource::new(
        move || (args(), import.version().get()),
        |((slug, upload, servers), _)| api::preview_abra_tree(slug, upload, String::new(), servers),
    );
    view! {
        <Title text="Import an abra tree"/>
        <h1>"Import an abra servers tree into " <a href=move || format!("/c/{}/apps", slug())>{slug}</a></h1>
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                let (slug, upload, _) = args();
                match preview.await {
                    Err(e) => view! { <ErrorBox error=e/> <p><a href=format!("/c/{slug}/apps")>"Back to the apps"</a></p> }.into_any(),
                    Ok(p) => {
                        let creates = p.creates();
                        let refused = p.apps.len() - creates;
                        let mapping = p.dirs.iter().map(|d| (d.dir.clone(), d.server.clone().unwrap_or_default())).collect::<Vec<_>>();
                        let done = p.imported.map(|(at, n)| view! {
                            <p class="ok" role="status">"Imported " <Time ms=at/> ": " {format!("{n} apps created. ")}
                                <a href=format!("/c/{slug}/apps")>"See the apps"</a></p>
                        });
                        view! {
                            {done}
                            <h2>"Servers"</h2>
                            <form method="get" id="abra-servers">
                                <table class="list">
                                    <thead><tr><th>"Directory"</th><th>"Apps"</th><th>"Goes to"</th></tr></thead>
                                    <tbody>{p.dirs.iter().map(|d| {
                                        let chosen = d.server.clone().unwrap_or_default();
                                        view! {
                                            <tr><td><code>{d.dir.clone()}</code></td><td>{d.apps}</td>
                                                <td><select name=format!("servers[{}]", d.dir)>
                                                    <option value="" selected=chosen.is_empty()>"— none (not imported) —"</option>
                                                    {p.servers.iter().map(|s| view! { <option value=s.clone() selected=*s == chosen>{s.clone()}</option> }).collect_view()}
                                                </select></td></tr>
                                        }
                                    }).collect_view()}</tbody>
                                </table>
                                <button type="submit">"Preview again"</button>
                            </form>
                            <h2>{format!("Apps: {creates} to create, {refused} refused")}</h2>
                            <table class="list" id="abra-apps">
                                <thead><tr><th>"File"</th><th>"Domain"</th><th>"Recipe"</th><th>"Version"</th><th>"Outcome"</th></tr></thead>
                                <tbody>{p.apps.iter().map(|a| view! {
                                    <tr class=if a.refused.is_some() { "refused" } else { "creates" }>
                                        <td><code>{format!("{}/{}", a.dir, a.file)}</code></td>
                                        <td>{a.domain.clone()}</td><td>{a.recipe.clone()}</td>
                                        <td>{a.version.clone().unwrap_or_default()}</td>
                                        <td>{match a.refused.clone() {
                                            Some(why) => view! { <span class="error-text">"refused: " {why}</span> }.into_any(),
                                            None => view! { <span class="ok">"to create"</span> }.into_any(),
                                        }}</td>
                                    </tr>
                                }).collect_view()}</tbody>
                            </table>
                            {(!p.ignored.is_empty()).then(|| view! {
                                <details><summary>{format!("{} other entries of the archive, not apps", p.ignored.len())}</summary>
                                    <ul>{p.ignored.iter().map(|i| view! { <li><code>{i.clone()}</code></li> }).collect_view()}</ul></details>
                            })}
                            {(p.imported.is_none() && creates > 0).then(|| view! {
                                <ActionForm action=import attr:id="import-abra-tree">
                                    <input type="hidden" name="slug" value=slug.clone()/>
                                    <input type="hidden" name="upload" value=upload.map(|u| u.to_string()).unwrap_or_default()/>
                                    {mapping.iter().map(|(dir, server)| view! { <input type="hidden" name=format!("servers[{dir}]") value=server.clone()/> }).collect_view()}
                                    <button type="submit">{if creates == 1 { "Import 1 app".to_string() } else { format!("Import {creates} apps") }}</button>
                                </ActionForm>
                            })}
                            <ActionResult value=import.value() ok="Imported."/>
                        }.into_any()
                    }
                }
            })}
        </Suspense>
    }
}

/// The collective's apps, updated in place from their live stream (status, version, health).
#[component]
fn AppsTable(slug: String, list: Vec<AppSummary>) -> impl IntoView {
    let list = RwSignal::new(list);
    let url = format!("/c/{slug}/live/apps");
    #[cfg(feature = "hydrate")]
    crate::live::follow(url.clone(), "apps", list);
    view! {
        <table id="apps" data-live=url>
            <thead><tr><th>"App"</th><th>"Recipe"</th><th>"Version"</th><th>"Server"</th><th>"Status"</th><th>"Changed"</th></tr></thead>
            <tbody>
                {move || list.get().into_iter().map(|a| view! {
                    <tr data-app=a.domain.clone()>
                        <td><a href=format!("/c/{}/apps/{}", a.collective, a.domain)>{a.domain.clone()}</a></td>
                        <td><a href=format!("/recipes/{}", a.recipe)>{a.recipe.clone()}</a></td>
                        <td><code>{a.version.clone().unwrap_or_default()}</code>{a.chaos.then_some(" (chaos)")}</td>
                        <td>{a.server.clone()}</td>
                        <td class=format!("status status-{}", a.status)>{a.status.as_str()}
                            " " <HealthBadge health=a.health unhealthy=a.unhealthy.clone()/>
                            {a.drift.as_ref().map(|d| view! { " " <span class="chip drift-badge" title=d.changes.join("; ")>"changed outside Potluck"</span> })}</td>
                        <td><Time ms=a.updated_at/></td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
    }
}

#[derive(Clone, Copy)]
struct AppActions {
    set_env: ServerAction<SetAppEnv>,
    overlays: ServerAction<SetAppOverlays>,
    generate: ServerAction<GenerateSecrets>,
    insert: ServerAction<InsertSecret>,
    rotate: ServerAction<RotateSecret>,
    preview: ServerAction<PreviewJob>,
    start: ServerAction<StartJob>,
    delete: ServerAction<DeleteApp>,
    adopt: ServerAction<AdoptApp>,
    apply: ServerAction<ApplyIncoming>,
    reject: ServerAction<RejectIncoming>,
}

#[component]
pub fn AppPage() -> impl IntoView {
    let params = use_params_map();
    let key = move || {
        let p = params.read();
        (p.get("slug").unwrap_or_default(), p.get("domain").unwrap_or_default())
    };
    let actions = AppActions {
        set_env: ServerAction::new(),
        overlays: ServerAction::new(),
        generate: ServerAction::new(),
        insert: ServerAction::new(),
        rotate: ServerAction::new(),
        preview: ServerAction::new(),
        start: ServerAction::new(),
        delete: ServerAction::new(),
        adopt: ServerAction::new(),
        apply: ServerAction::new(),
        reject: ServerAction::new(),
    };
    let detail = Resource::new(
        move || {
            (
                key(),
                actions.set_env.version().get(),
                actions.overlays.version().get(),
                actions.generate.version().get(),
                actions.insert.version().get(),
                actions.rotate.version().get(),
                actions.start.version().get(),
                actions.adopt.version().get(),
                actions.apply.version().get(),
                actions.reject.version().get(),
            )
        },
        |((slug, domain), ..)| api::get_app(slug, domain),
    );
    // A started job opens its live page.
    Effect::new(move |_| {
        if let Some(Ok(job)) = actions.start.value().get() {
            let navigate = leptos_router::hooks::use_navigate();
            navigate(&format!("/jobs/{}", job.id), Default::default());
        }
    });
    view! {
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match detail.await {
                    Err(e) => view! { <Title text="App"/><ErrorBox error=e/> }.into_any(),
                    Ok(d) => view! { <AppView d actions/> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn AppView(d: AppDetail, actions: AppActions) -> impl IntoView {
    let a = d.app.clone();
    let base = format!("/c/{}/apps/{}", a.collective, a.domain);
    // The app's status, health and services follow its live stream once the page hydrated.
    let live =
        RwSignal::new(AppLiveView { app: a.clone(), services: d.services.clone(), live_error: d.live_error.clone() });
    #[cfg(feature = "hydrate")]
    crate::live::follow(format!("{base}/live"), "app", live);
    view! {
        <Title text=a.domain.clone()/>
        <h1 id="app-domain">{a.domain.clone()}</h1>
        <p class="muted">
            <a href=format!("/recipes/{}", a.recipe)>{a.recipe.clone()}</a> " "
            <code id="app-version">{a.version.clone().unwrap_or_else(|| "—".into())}</code>{a.chaos.then_some(" (chaos)")}
            " on " <a href=format!("/c/{}/servers", a.collective)>{a.server.clone()}</a>
            " · stack " <code id="app-stack">{a.stack_name.clone()}</code>
            " · " {move || {
                let now = live.read().app.clone();
                view! {
                    <span id="app-status" class=format!("status status-{}", now.status)>{now.status.as_str()}</span>
                    " " <HealthBadge health=now.health unhealthy=now.unhealthy/>
                }
            }}
            " · " <a href=format!("{base}/env") rel="external" id="export-env">"Download env file"</a>
        </p>
        <Drift d=d.clone() live actions/>
        {(!d.incoming.is_empty()).then(|| view! {
            <section id="incoming" class="drift" role="status">
                <h2>"Waiting in git"</h2>
                <p class="muted">"The collective's " <a href=format!("/c/{}/sync", d.app.collective)>"git remote"</a>
                    " has a change to this app's file that Potluck has not taken. Applying it changes the env; deploying is up to you."</p>
                <crate::pages::sync::IncomingChanges changes=d.incoming.clone() slug=d.app.collective.clone()
                    can_apply=d.can_manage apply=actions.apply reject=actions.reject/>
            </section>
        })}
        {d.can_operate.then(|| view! { <Actions d=d.clone() actions/> })}
        <Services d=d.clone() live/>
        <Secrets d=d.clone() actions/>
        <Env d=d.clone() actions/>
        <crate::pages::backups::AppBackupsSection d=d.clone() start=actions.start/>
        <h2>"Jobs"</h2>
        <table id="jobs">
            <thead><tr><th>"Job"</th><th>"Action"</th><th>"Version"</th><th>"By"</th><th>"State"</th><th>"Requested"</th><th>"Result"</th></tr></thead>
            <tbody>
                {d.jobs.iter().map(|j| view! {
                    <tr>
                        <td><a href=format!("/jobs/{}", j.id)>{format!("#{}", j.id)}</a></td>
                        <td>{j.kind.as_str()}</td>
                        <td><code>{j.target_version.clone().unwrap_or_default()}</code></td>
                        <td>{j.requested_by.clone()}</td>
                        <td class=format!("state-{}", j.state)>{j.state.as_str()}</td>
                        <td><Time ms=j.created_at/></td>
                        <td>{j.result.clone().unwrap_or_default()}</td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
        {(d.can_manage && a.status != AppStatus::Deployed).then(|| view! {
            <h2>"Delete"</h2>
            <ActionForm action=actions.delete attr:id="delete-app">
                <input type="hidden" name="slug" value=a.collective.clone()/>
                <input type="hidden" name="domain" value=a.domain.clone()/>
                <button type="submit">"Delete this app from Potluck"</button>
            </ActionForm>
            <ActionResult value=actions.delete.value() ok="Deleted."/>
        })}
    }
}

/// "Changed outside Potluck": what differs, live, and (for those who manage the app) adopting
/// what runs. Redeploying Potluck's own is the Redeploy action.
#[component]
fn Drift(d: AppDetail, live: RwSignal<AppLiveView>, actions: AppActions) -> impl IntoView {
    let (slug, domain) = (d.app.collective.clone(), d.app.domain.clone());
    let (can_manage, can_operate) = (d.can_manage, d.can_operate);
    move || {
        let drift = live.read().app.drift.clone()?;
        let (slug, domain) = (slug.clone(), domain.clone());
        let (slug2, domain2) = (slug.clone(), domain.clone());
        Some(view! {
            <section id="drift" class="drift" role="status">
                <h2>"Changed outside Potluck"</h2>
                <p>"Since " <Time ms=drift.since/> ", the stack is not what Potluck deployed (an " <code>"abra app deploy"</code>
                    " from a laptop, or a change by hand):"</p>
                <ul>{drift.changes.iter().map(|c| view! { <li>{c.clone()}</li> }).collect_view()}</ul>
                {can_manage.then(|| view! {
                    <p class="muted">"Adopt it to make what runs Potluck's record"
                        {drift.live_version.clone().map(|v| format!(" (version {v})"))} "."</p>
                    <ActionForm action=actions.adopt attr:id="adopt-app">
                        <input type="hidden" name="slug" value=slug/>
                        <input type="hidden" name="domain" value=domain/>
                        <button type="submit">"Adopt what runs"</button>
                    </ActionForm>
                    <ActionResult value=actions.adopt.value() ok="Adopted."/>
                })}
                {can_operate.then(|| view! {
                    <p class="muted">"Or put Potluck's version back: a redeploy that takes over what the other tool made
                        (which Potluck otherwise refuses to touch)."</p>
                    <ActionForm action=actions.start attr:id="take-over">
                        <input type="hidden" name="slug" value=slug2/>
                        <input type="hidden" name="domain" value=domain2/>
                        <input type="hidden" name="kind" value="redeploy"/>
                        <input type="hidden" name="options[take_over]" value="true"/>
                        <button type="submit">"Take over and redeploy Potluck's"</button>
                    </ActionForm>
                })}
            </section>
        })
    }
}

#[component]
fn Actions(d: AppDetail, actions: AppActions) -> impl IntoView {
    let a = d.app.clone();
    let (slug, domain) = (a.collective.clone(), a.domain.clone());
    view! {
        <section id="actions">
            <h2>"Change what runs"</h2>
            <ActionForm action=actions.preview attr:id="preview-form">
                <input type="hidden" name="slug" value=a.collective.clone()/>
                <input type="hidden" name="domain" value=a.domain.clone()/>
                <label>"Action "
                    <select name="kind" id="action-kind">
                        {JobKind::DEPLOYS.iter().map(|k| view! { <option value=k.as_str()>{k.label()}</option> }).collect_view()}
                    </select>
                </label>
                <label>"Version or commit (empty: the default) "
                    <input name="target" id="action-target" list="app-versions"/>
                </label>
                <datalist id="app-versions">
                    {d.versions.iter().map(|v| view! { <option value=v.clone()></option> }).collect_view()}
                </datalist>
                <button type="submit">"Preview"</button>
            </ActionForm>
            {move || match actions.preview.value().get() {
                None => ().into_any(),
                Some(Err(e)) => view! { <ErrorBox error=e/> }.into_any(),
                Some(Ok(p)) => view! { <Preview p slug=slug.clone() domain=domain.clone() start=actions.start/> }.into_any(),
            }}
            {move || match actions.start.value().get() {
                Some(Ok(job)) => view! { <p class="ok" role="status">"Started: " <a href=format!("/jobs/{}", job.id) id="job-link">{format!("job #{}", job.id)}</a></p> }.into_any(),
                Some(Err(e)) => view! { <ErrorBox error=e/> }.into_any(),
                None => ().into_any(),
            }}
        </section>
    }
}

#[component]
fn Preview(p: DeployPreview, slug: String, domain: String, start: ServerAction<StartJob>) -> impl IntoView {
    let blocked = p.checks.iter().any(|c| c.level == "error");
    let undeploy = p.kind == JobKind::Undeploy;
    let label = p.kind.label();
    view! {
        <div id="preview" class="panel">
            <h3>{label} " " <code>{p.from_version.clone().unwrap_or_else(|| "—".into())}</code> " → " <code>{p.to_version.clone().unwrap_or_else(|| "—".into())}</code></h3>
            {(!p.checks.is_empty()).then(|| view! {
                <ul id="checks">{p.checks.iter().map(|c| view! { <li class=format!("level-{}", c.level)>{format!("{}: {}", c.level, c.message)}</li> }).collect_view()}</ul>
            })}
            {p.notes.iter().map(|n| view! { <p class="note">{n.clone()}</p> }).collect_view()}
            <h4>"What changes on the swarm"</h4>
            <pre id="changes">{p.changes.join("\n")}</pre>
            {(!p.release_notes.is_empty()).then(|| view! {
                <h4>"Release notes"</h4>
                <div id="release-notes">{p.release_notes.iter().map(|(v, n)| view! { <h5><code>{v.clone()}</code></h5><pre class="note">{n.clone()}</pre> }).collect_view()}</div>
            })}
            <ActionForm action=start attr:id="confirm-form">
                <input type="hidden" name="slug" value=slug/>
                <input type="hidden" name="domain" value=domain/>
                <input type="hidden" name="kind" value=p.kind.as_str()/>
                <input type="hidden" name="target" value=p.to_version.clone().unwrap_or_default()/>
                {(p.kind == JobKind::Upgrade).then(|| view! {
                    <label><input type="checkbox" name="options[skip_backup]" value="true"/> " upgrade without taking a backup first"</label>
                })}
                {undeploy.then(|| view! {
                    <label><input type="checkbox" name="options[remove_volumes]" value="true"/> " also remove the volumes (data is lost)"</label>
                    <label><input type="checkbox" name="options[remove_secrets]" value="true"/> " also remove the secrets"</label>
                })}
                <button type="submit" id="confirm" disabled=blocked>{if blocked { "Blocked by the checks above".to_string() } else { format!("Confirm: {label}") }}</button>
            </ActionForm>
        </div>
    }
}

#[component]
fn Services(d: AppDetail, live: RwSignal<AppLiveView>) -> impl IntoView {
    let a = d.app.clone();
    let base = format!("/c/{}/apps/{}", a.collective, a.domain);
    let prefix = format!("{}_", a.stack_name);
    let short = move |n: &str| n.strip_prefix(&prefix).unwrap_or(n).to_string();
    let names: Vec<String> = d.services.iter().map(|s| short(&s.name)).collect();
    let can_operate = d.can_operate;
    let logs_base = base.clone();
    view! {
        <h2>"Services"</h2>
        {move || live.read().live_error.clone().map(|e| view! { <p class="error-text">"Cannot read the swarm: " {e}</p> })}
        {move || if live.read().services.is_empty() {
            view! { <p class="muted" id="no-services">"Nothing runs for this app."</p> }.into_any()
        } else {
            let (short, base) = (short.clone(), logs_base.clone());
            view! {
                <table id="services">
                    <thead><tr><th>"Service"</th><th>"Image"</th><th>"Replicas"</th><th>"Version"</th><th>"Tasks"</th><th></th></tr></thead>
                    <tbody>
                        {live.read().services.iter().map(|s| {
                            let name = short(&s.name);
                            let logs = format!("{base}/logs?service={name}&follow=1");
                            view! {
                                <tr data-service=name.clone()>
                                    <td>{name.clone()}</td>
                                    <td><code>{s.image.clone()}</code></td>
                                    <td class="replicas">{format!("{}/{}", s.running, s.desired)} {(!s.update_state.is_empty()).then(|| format!(" ({})", s.update_state))}</td>
                                    <td><code>{s.version_label.clone()}</code></td>
                                    <td><ul class="plain">{s.tasks.iter().take(5).map(|t| view! {
                                        <li class=format!("task-{}", t.state) data-task=t.id.clone()>{format!("{} {} ", t.slot, t.state)}
                                            {(!t.error.is_empty()).then(|| view! { <span class="error-text">{t.error.clone()}</span> })}
                                            <span class="muted">{t.message.clone()}</span></li>
                                    }).collect_view()}</ul></td>
                                    <td>{can_operate.then(|| view! {
                                        <a href=logs rel="external" target="_blank">"Logs"</a>
                                    })}</td>
                                </tr>
                            }
                        }).collect_view()}
                    </tbody>
                </table>
            }.into_any()
        }}
        {(d.can_run && !names.is_empty()).then(|| view! {
            <h3>"Run a command"</h3>
            <p class="muted">"Runs in a running container of the service (as " <code>"abra app run"</code> "); the output opens in a new tab. The command line is audited."</p>
            <form method="post" action=format!("{base}/run") target="_blank" id="run-form" class="inline">
                <select name="service">{names.iter().map(|n| view! { <option value=n.clone()>{n.clone()}</option> }).collect_view()}</select>
                <input name="command" required placeholder="ls /data"/>
                <button type="submit">"Run"</button>
            </form>
        })}
    }
}

#[component]
fn Secrets(d: AppDetail, actions: AppActions) -> impl IntoView {
    let a = d.app.clone();
    let manage = d.can_manage_secrets;
    let (slug, domain) = (a.collective.clone(), a.domain.clone());
    view! {
        <h2>"Secrets"</h2>
        <table id="secrets">
            <thead><tr><th>"Secret"</th><th>"Version"</th><th>"Docker secret"</th><th>"Exists"</th><th>"Generated"</th><th></th></tr></thead>
            <tbody>
                {d.secrets.clone().into_iter().map(|s| {
                    let exists = match s.exists { Some(true) => "yes", Some(false) => "missing", None => "unknown" };
                    let (slug, domain) = (slug.clone(), domain.clone());
                    let (slug2, domain2, name2) = (slug.clone(), domain.clone(), s.name.clone());
                    let can_rotate = s.generate && s.exists == Some(true) && d.can_operate;
                    let name1 = s.name.clone();
                    view! {
                        <tr data-secret=s.name.clone()>
                            <td>{s.name.clone()}</td>
                            <td><code>{s.version.clone()}</code></td>
                            <td><code>{s.docker_name.clone()}</code></td>
                            <td class=format!("exists-{exists}")>{exists}</td>
                            <td>{if s.generate {
                                format!("length {}{}", s.length.map(|l| l.to_string()).unwrap_or_else(|| "default".into()), s.charset.clone().map(|c| format!(", {c}")).unwrap_or_default())
                            } else { "by hand (generate=false)".into() }}</td>
                            <td>{manage.then(|| view! {
                                {can_rotate.then(|| view! {
                                    <ActionForm action=actions.rotate attr:class="inline">
                                        <input type="hidden" name="slug" value=slug.clone()/>
                                        <input type="hidden" name="domain" value=domain.clone()/>
                                        <input type="hidden" name="name" value=name1.clone()/>
                                        <button type="submit">"Rotate"</button>
                                    </ActionForm>
                                })}
                                {(s.exists != Some(true)).then(move || view! {
                                    <ActionForm action=actions.insert attr:class="inline">
                                        <input type="hidden" name="slug" value=slug2/>
                                        <input type="hidden" name="domain" value=domain2/>
                                        <input type="hidden" name="name" value=name2/>
                                        <input type="password" name="value" required autocomplete="off" placeholder="value"/>
                                        <button type="submit">"Insert"</button>
                                    </ActionForm>
                                })}
                            })}</td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
        {manage.then(|| view! {
            <ActionForm action=actions.generate attr:id="generate-secrets">
                <input type="hidden" name="slug" value=slug.clone()/>
                <input type="hidden" name="domain" value=domain.clone()/>
                <button type="submit">"Generate missing secrets"</button>
            </ActionForm>
        })}
        {move || match actions.generate.value().get() {
            Some(Ok(list)) if list.is_empty() => view! { <p class="ok" role="status">"Nothing to generate."</p> }.into_any(),
            Some(Ok(list)) => view! { <OneTimeValues list/> }.into_any(),
            Some(Err(e)) => view! { <ErrorBox error=e/> }.into_any(),
            None => ().into_any(),
        }}
        {move || match actions.rotate.value().get() {
            Some(Ok(r)) => view! {
                <OneTimeValues list=vec![r.secret.clone()]/>
                {r.job.map(|j| view! { <p>"Redeploying: " <a href=format!("/jobs/{}", j.id)>{format!("job #{}", j.id)}</a></p> })}
            }.into_any(),
            Some(Err(e)) => view! { <ErrorBox error=e/> }.into_any(),
            None => ().into_any(),
        }}
        <ActionResult value=actions.insert.value() ok="Secret inserted."/>
    }
}

/// Generated values, shown this once.
#[component]
fn OneTimeValues(list: Vec<GeneratedSecret>) -> impl IntoView {
    view! {
        <div class="ok" role="status" id="generated">
            <p>"Copy these values now: Potluck does not keep them and cannot show them again."</p>
            <dl>{list.into_iter().map(|g| view! { <dt><code>{g.docker_name}</code></dt><dd><code class="secret-value">{g.value.0}</code></dd> }).collect_view()}</dl>
        </div>
    }
}

#[component]
fn Env(d: AppDetail, actions: AppActions) -> impl IntoView {
    let a = d.app.clone();
    let manage = d.can_manage;
    let (slug2, domain2) = (a.collective.clone(), a.domain.clone());
    let env_text = d.env.clone();
    view! {
        <h2>"Configuration"</h2>
        {(!d.missing_keys.is_empty()).then(|| view! {
            <p class="warning" id="missing-keys">"Missing from the env (the recipe's sample has them): " {d.missing_keys.join(", ")}</p>
        })}
        {(!d.overlays.is_empty()).then(|| view! {
            <h3>"Optional parts"</h3>
            <ActionForm action=actions.overlays attr:id="overlays-form">
                <input type="hidden" name="slug" value=a.collective.clone()/>
                <input type="hidden" name="domain" value=a.domain.clone()/>
                {d.overlays.iter().enumerate().map(|(i, o)| view! {
                    <label class="check">
                        <input type="checkbox" name=format!("files[{i}]") value=o.file.clone() checked=o.enabled disabled=!manage/>
                        " " <code>{o.file.clone()}</code> " " <span class="muted">{o.doc.join(" ").trim_start_matches('#').trim().to_string()}</span>
                    </label>
                }).collect_view()}
                {manage.then(|| view! { <button type="submit">"Save parts"</button> })}
            </ActionForm>
            <ActionResult value=actions.overlays.value() ok="Saved."/>
        })}
        <h3>"Settings"</h3>
        <table id="env-entries">
            <thead><tr><th>"Key"</th><th>"Value"</th><th>"From the recipe"</th></tr></thead>
            <tbody>
                {d.entries.iter().map(|e| view! {
                    <tr class:extra=!e.in_sample>
                        <td><code>{e.key.clone()}</code></td>
                        <td><code>{e.value.clone()}</code></td>
                        <td>{e.doc.iter().map(|l| l.trim_start_matches('#').trim().to_string()).collect::<Vec<_>>().join(" ")}
                            {e.modifiers.iter().map(|(k, v)| view! { " " <span class="tag">{format!("{k}={v}")}</span> }).collect_view()}</td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
        {manage.then(move || view! {
            <details>
                <summary>"Edit the env file"</summary>
                <ActionForm action=actions.set_env attr:id="env-form">
                    <input type="hidden" name="slug" value=slug2/>
                    <input type="hidden" name="domain" value=domain2/>
                    <textarea name="env" rows="24" id="env-text" spellcheck="false" prop:value=env_text.clone()>{env_text.clone()}</textarea>
                    <button type="submit">"Save env"</button>
                </ActionForm>
                <ActionResult value=actions.set_env.value() ok="Saved."/>
            </details>
        })}
    }
}

#[component]
pub fn JobPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").and_then(|i| i.parse::<JobId>().ok()).unwrap_or_default();
    let detail = Resource::new(id, api::get_job);
    view! {
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match detail.await {
                    Err(e) => view! { <Title text="Job"/><ErrorBox error=e/> }.into_any(),
                    Ok(d) => view! { <JobLive d/> }.into_any(),
                }
            })}
        </Suspense>
    }
}

/// A job's progress: what the server rendered, then (in the browser) each event as it happens.
#[component]
fn JobLive(d: JobDetail) -> impl IntoView {
    let events = RwSignal::new(d.events.clone());
    let state = RwSignal::new(d.job.state);
    let result = RwSignal::new(d.job.result.clone().unwrap_or_default());
    #[cfg(feature = "hydrate")]
    {
        let job_id = d.job.id;
        let finished = d.job.finished_at.is_some();
        Effect::new(move |started: Option<()>| {
            if started.is_none() && !finished {
                let after = events.get_untracked().last().map(|e| e.seq).unwrap_or(0);
                live::follow(job_id, after, events, state, result);
            }
        });
    }
    let j = d.job.clone();
    let app_href = format!("/c/{}/apps/{}", d.collective, d.app_domain);
    view! {
        <Title text=format!("Job #{}", j.id)/>
        <h1>{format!("Job #{}: {} ", j.id, j.kind)} <a href=app_href>{d.app_domain.clone()}</a></h1>
        <p class="muted">"to " <code>{j.target_version.clone().unwrap_or_default()}</code> " · requested by " {j.requested_by.clone()} " · " <Time ms=j.created_at/></p>
        <p>"State: " <strong id="job-state" class=move || format!("state-{}", state.get())>{move || state.get().as_str()}</strong>
            " " <span id="job-result">{move || result.get()}</span></p>
        <ol id="job-events">
            {move || events.get().into_iter().map(|e| view! {
                <li class=format!("event-{}", e.kind) data-seq=e.seq.to_string()><span class="muted">{crate::components::format_time(e.at)}</span> " " {e.text}</li>
            }).collect_view()}
        </ol>
        <noscript><p class="muted">"Reload the page to see new progress."</p></noscript>
    }
}

#[cfg(feature = "hydrate")]
mod live {
    use crate::model::{JobEventView, JobId, JobState};
    use leptos::prelude::*;
    use wasm_bindgen::closure::Closure;
    use wasm_bindgen::JsCast;

    /// Subscribes to `/jobs/{id}/events` and appends what arrives until the job ends.
    pub fn follow(
        id: JobId,
        after: i64,
        events: RwSignal<Vec<JobEventView>>,
        state: RwSignal<JobState>,
        result: RwSignal<String>,
    ) {
        let Ok(source) = web_sys::EventSource::new(&format!("/jobs/{id}/events?after={after}")) else { return };
        if state.get_untracked() == JobState::Queued {
            state.set(JobState::Running);
        }
        let on_progress = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |m: web_sys::MessageEvent| {
            if let Some(text) = m.data().as_string() {
                if let Ok(e) = serde_json::from_str::<JobEventView>(&text) {
                    events.update(|list| {
                        if list.last().is_none_or(|l| l.seq < e.seq) {
                            list.push(e);
                        }
                    });
                }
            }
        });
        let closer = source.clone();
        let on_end = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |m: web_sys::MessageEvent| {
            if let Some(text) = m.data().as_string() {
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) {
                    if let Ok(s) = serde_json::from_value::<JobState>(v["state"].clone()) {
                        state.set(s);
                    }
                    result.set(v["result"].as_str().unwrap_or_default().to_string());
                }
            }
            closer.close();
        });
        let _ = source.add_event_listener_with_callback("progress", on_progress.as_ref().unchecked_ref());
        let _ = source.add_event_listener_with_callback("end", on_end.as_ref().unchecked_ref());
        // The page owns the subscription for as long as it is open.
        on_progress.forget();
        on_end.forget();
    }
}

/// An app at a glance: how many of its tasks run of those meant to, restarts in the last hour,
/// and red while its containers keep failing (the monitor's reason) or its tasks keep restarting.
#[component]
pub fn HealthBadge(health: Option<AppHealth>, unhealthy: Option<String>) -> impl IntoView {
    let verdict = AppHealth::verdict(health.as_ref(), unhealthy.as_deref());
    let counts = health.map(|h| {
        let restarts = match h.restarts {
            0 => String::new(),
            1 => ", 1 restart in the last hour".to_string(),
            n => format!(", {n} restarts in the last hour"),
        };
        format!("{}/{} running{restarts}", h.running, h.desired)
    });
    let text = match (verdict, &unhealthy, &counts) {
        (Verdict::Unknown, ..) => return None,
        (Verdict::Failing, Some(reason), _) => format!("failing: {reason}"),
        (Verdict::Failing, None, Some(c)) => format!("failing: {c}"),
        (Verdict::Stopped, ..) => "nothing runs".to_string(),
        (_, _, Some(c)) => c.clone(),
        _ => return None,
    };
    let title = match (&unhealthy, &counts) {
        (Some(reason), Some(c)) => format!("{reason} ({c})"),
        _ => text.clone(),
    };
    Some(view! {
        <span class=format!("chip health-badge health-{}", verdict.as_str()) data-health=verdict.as_str() title=title>{text}</span>
    })
}
