//! Recipes: the federation's list, one recipe (versions, notes, images, who runs what), one
//! version in full (files, env sample, exports, lint), and registering a recipe.

use crate::api::{self, *};
use crate::components::{ActionResult, ErrorBox, Time};
use crate::model::*;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

#[component]
pub fn RecipesPage() -> impl IntoView {
    let register = ServerAction::<RegisterRecipe>::new();
    let list = Resource::new(move || register.version().get(), |_| api::list_recipes());
    view! {
        <Title text="Recipes"/>
        <h1>"Recipes"</h1>
        <p class="muted">"The recipes the federation maintains together, read from each recipe's git tags. "
            <a href="/catalogue.json" rel="external">"Catalogue (JSON)"</a></p>
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match list.await {
                    Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                    Ok(list) => view! {
                        <table id="recipes">
                            <thead><tr><th>"Recipe"</th><th>"Category"</th><th>"Latest version"</th><th>"Versions"</th><th>"Maintainers"</th><th>"Fetched"</th></tr></thead>
                            <tbody>
                                {list.into_iter().map(|r| view! {
                                    <tr data-recipe=r.name.clone()>
                                        <td><a href=format!("/recipes/{}", r.name)>{r.name.clone()}</a>
                                            <div class="muted">{r.description.clone()}</div></td>
                                        <td>{r.category.clone()}</td>
                                        <td><code>{r.latest_version.clone().unwrap_or_else(|| "—".into())}</code></td>
                                        <td>{r.version_count}</td>
                                        <td>{r.maintainers.join(", ")}</td>
                                        <td>{r.last_fetched_at.map(|ms| view! { <Time ms/> })}
                                            {r.fetch_error.clone().map(|e| view! { <div class="error-text">{e}</div> })}</td>
                                    </tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                    }.into_any(),
                }
            })}
        </Suspense>
        <details>
            <summary>"Import a catalogue"</summary>
            <p class="muted">"Federation admins seed registrations from an existing recipes.json (Co-op Cloud's catalogue): each recipe with a repository is registered; names already registered are skipped. The result arrives line by line."</p>
            <form method="post" action="/catalogue/import" id="import-catalogue">
                <label>"recipes.json " <textarea name="catalogue" rows="6" required placeholder="{\"gitea\": {\"name\": \"gitea\", \"repository\": \"https://git.coopcloud.tech/coop-cloud/gitea.git\"}}"></textarea></label>
                <button type="submit">"Import"</button>
            </form>
        </details>
        <details>
            <summary>"Register a recipe"</summary>
            <p class="muted">"Federation admins and maintainers register recipes by git URL (https:// or ssh://; a path on the Potluck machine only for federation admins). A recipe registered with a credential is private: only its maintainers and the collectives that run it see it. The credential is kept sealed and never shown again."</p>
            <ActionForm action=register attr:id="register-recipe">
                <label>"Repository " <input name="repository" required placeholder="https://git.coopcloud.tech/coop-cloud/gitea.git"/></label>
                <label>"Name (default: from the URL) " <input name="name"/></label>
                <label>"Maintained with collective (slug) " <input name="collective" placeholder="collective-a"/></label>
                <label>"Credential "
                    <select name="credential_kind">
                        <option value="">"none (public)"</option>
                        <option value="https">"HTTPS token"</option>
                        <option value="ssh">"SSH key"</option>
                    </select>
                </label>
                <label>"Username " <input name="credential_username" autocomplete="off"/></label>
                <label>"Token or private key " <textarea name="credential_secret" autocomplete="off"></textarea></label>
                <button type="submit">"Register"</button>
            </ActionForm>
            <ActionResult value=register.value() ok="Recipe registered."/>
        </details>
    }
}

#[component]
pub fn RecipePage() -> impl IntoView {
    let params = use_params_map();
    let name = move || params.read().get("name").unwrap_or_default();
    let fetch = ServerAction::<FetchRecipe>::new();
    let maintainers = ServerAction::<SetRecipeMaintainers>::new();
    let detail = Resource::new(
        move || (name(), fetch.version().get(), maintainers.version().get()),
        |(name, ..)| api::get_recipe(name),
    );
    view! {
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match detail.await {
                    Err(e) => view! { <Title text="Recipe"/><ErrorBox error=e/> }.into_any(),
                    Ok(r) => {
                        let name = r.name.clone();
                        view! {
                            <Title text=r.name.clone()/>
                            <h1 id="recipe-name">{r.name.clone()}</h1>
                            <p>{r.description.clone()}</p>
                            <p class="muted"><code>{r.repository.clone()}</code> " · branch " <code>{r.default_branch.clone()}</code>
                                " · fetched " {r.last_fetched_at.map(|ms| view! { <Time ms/> })}
                                " · " <a href=format!("/recipes/{}/releases", r.name) id="release-proposals">"Release proposals"</a></p>
                            {r.fetch_error.clone().map(|e| view! { <p class="error-text">"Last fetch failed: " {e}</p> })}
                            <dl class="meta">
                                {r.metadata.iter().map(|(k, v)| view! { <dt>{k.clone()}</dt><dd>{v.clone()}</dd> }).collect_view()}
                            </dl>
                            <h2>"Maintainers"</h2>
                            <ul id="maintainers">
                                {r.maintainers.iter().map(|m| view! { <li>{m.name.clone()} <span class="muted">" (" {m.kind.clone()} ")"</span></li> }).collect_view()}
                            </ul>
                            <p class="muted">"Releases need " {r.required_approvals} " approvals from maintainers of at least " {r.required_collectives} " collectives."</p>
                            {r.can_maintain.then(|| {
                                let n1 = name.clone();
                                let n2 = name.clone();
                                view! {
                                    <ActionForm action=fetch attr:class="inline" attr:id="fetch-recipe">
                                        <input type="hidden" name="name" value=n1/>
                                        <button type="submit">"Fetch now"</button>
                                    </ActionForm>
                                    <ActionResult value=fetch.value() ok="Fetched."/>
                                    <details>
                                        <summary>"Change maintainers"</summary>
                                        <ActionForm action=maintainers attr:id="set-maintainers">
                                            <input type="hidden" name="name" value=n2/>
                                            <label>"People (user ids) " <input name="users"/></label>
                                            <label>"Collectives (slugs) " <input name="collectives"/></label>
                                            <button type="submit">"Save"</button>
                                        </ActionForm>
                                        <ActionResult value=maintainers.value() ok="Maintainers saved."/>
                                    </details>
                                    <TestingForm name=name.clone()/>
                                }
                            })}
                            <h2>"Running in the federation"</h2>
                            {if r.deployments.is_empty() {
                                view! { <p class="muted">"No app you can see runs this recipe."</p> }.into_any()
                            } else {
                                view! {
                                    <table id="deployments">
                                        <thead><tr><th>"Collective"</th><th>"App"</th><th>"Version"</th></tr></thead>
                                        <tbody>{r.deployments.iter().map(|d| view! {
                                            <tr><td>{d.collective.clone()}</td>
                                                <td><a href=format!("/c/{}/apps/{}", d.collective, d.app)>{d.app.clone()}</a></td>
                                                <td><code>{d.version.clone()}</code></td></tr>
                                        }).collect_view()}</tbody>
                                    </table>
                                }.into_any()
                            }}
                            <h2>"Versions"</h2>
                            <table id="versions">
                                <thead><tr><th>"Version"</th><th>"Published"</th><th>"Images"</th><th>"Release note"</th></tr></thead>
                                <tbody>
                                    {r.versions.iter().map(|v| view! {
                                        <tr data-version=v.tag.clone()>
                                            <td><a href=format!("/recipes/{}/v/{}", name, urlencoding::encode(&v.tag))><code>{v.tag.clone()}</code></a>
                                                <div class="muted">{if v.annotated { "annotated tag" } else { "lightweight tag" }}
                                                    {(!v.canonical).then_some(" · not x.y.z+upstream")}</div></td>
                                            <td><Time ms=v.time * 1000/></td>
                                            <td><ul class="plain">{v.images.iter().map(|i| view! { <li>{i.service.clone()} ": " <code>{i.image.clone()}</code></li> }).collect_view()}</ul></td>
                                            <td>{v.release_note.clone().map(|n| view! { <pre class="note">{n}</pre> })}</td>
                                        </tr>
                                    }).collect_view()}
                                </tbody>
                            </table>
                        }.into_any()
                    }
                }
            })}
        </Suspense>
    }
}

#[component]
pub fn RecipeVersionPage() -> impl IntoView {
    let params = use_params_map();
    let key = move || {
        let p = params.read();
        (p.get("name").unwrap_or_default(), p.get("tag").unwrap_or_default())
    };
    let detail = Resource::new(key, |(name, tag)| api::get_recipe_version(name, tag));
    view! {
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match detail.await {
                    Err(e) => view! { <Title text="Version"/><ErrorBox error=e/> }.into_any(),
                    Ok(v) => view! {
                        <Title text=format!("{} {}", v.recipe, v.version.tag)/>
                        <h1><a href=format!("/recipes/{}", v.recipe)>{v.recipe.clone()}</a> " " <code>{v.version.tag.clone()}</code></h1>
                        <p class="muted">"commit " <code>{v.version.commit.chars().take(12).collect::<String>()}</code> " · " <Time ms=v.version.time * 1000/>
                            " · " {v.version.message.clone()}</p>
                        {v.version.release_note.clone().map(|n| view! { <h2>"Release note"</h2><pre class="note">{n}</pre> })}
                        <h2>"Lint"</h2>
                        <LintTable findings=v.lint.clone()/>
                        <h2>"Compose files"</h2>
                        <ul id="compose-files">{v.compose_files.iter().map(|f| view! { <li><code>{f.clone()}</code></li> }).collect_view()}</ul>
                        <h2>"Images"</h2>
                        <ul>{v.version.images.iter().map(|i| view! { <li>{i.service.clone()} ": " <code>{i.image.clone()}</code></li> }).collect_view()}</ul>
                        <h2>".env.sample"</h2>
                        <table id="env-sample">
                            <thead><tr><th>"Key"</th><th>"Default"</th><th>"Notes"</th></tr></thead>
                            <tbody>
                                {v.env_sample.iter().map(|e| view! {
                                    <tr class:commented=e.commented>
                                        <td><code>{e.key.clone()}</code>{e.commented.then_some(" (optional)")}</td>
                                        <td><code>{e.value.clone()}</code></td>
                                        <td>{e.doc.join(" ")}
                                            {e.modifiers.iter().map(|(k, v)| view! { " " <span class="tag">{format!("{k}={v}")}</span> }).collect_view()}</td>
                                    </tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                        <h2>"abra.sh exports"</h2>
                        <ul>{v.abra_exports.iter().map(|(k, val)| view! { <li><code>{format!("{k}={val}")}</code></li> }).collect_view()}</ul>
                    }.into_any(),
                }
            })}
        </Suspense>
    }
}

/// Lint findings: rule, level, service, what is wrong, how to fix it.
#[component]
pub fn LintTable(findings: Vec<LintFindingView>) -> impl IntoView {
    if findings.is_empty() {
        return view! { <p class="ok">"No findings."</p> }.into_any();
    }
    view! {
        <table class="lint">
            <thead><tr><th>"Rule"</th><th>"Level"</th><th>"Service"</th><th>"Finding"</th><th>"Fix"</th></tr></thead>
            <tbody>
                {findings.into_iter().map(|f| {
                    let class = format!("level-{}", f.level);
                    view! {
                    <tr class=class>
                        <td><code>{f.rule}</code></td><td>{f.level}</td><td>{f.service.unwrap_or_default()}</td>
                        <td>{f.message}</td><td>{f.fix}</td>
                    </tr>
                }}).collect_view()}
            </tbody>
        </table>
    }
    .into_any()
}

/// A recipe's staging settings, for its maintainers.
#[component]
fn TestingForm(name: String) -> impl IntoView {
    let set = ServerAction::<SetRecipeTesting>::new();
    let n = name.clone();
    let testing = Resource::new(move || (n.clone(), set.version().get()), |(n, _)| api::get_recipe_testing(n));
    view! {
        <h2>"Release CI"</h2>
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || {
                let name = name.clone();
                Suspend::new(async move {
                    match testing.await {
                        Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                        Ok(t) => {
                            let (kind, service, port, path, command) = match &t.smoke {
                                SmokeCheck::None => ("none", String::new(), String::new(), String::new(), String::new()),
                                SmokeCheck::Http { service, port, path } => ("http", service.clone(), port.to_string(), path.clone(), String::new()),
                                SmokeCheck::Command { service, command } => ("command", service.clone(), String::new(), String::new(), command.clone()),
                            };
                            view! {
                                <p class="muted" id="testing-summary">"Each proposal is deployed on a staging server before review. Smoke check: "
                                    {t.smoke.describe()} ". "
                                    {if t.require_green_run { "Publishing needs a passed staging run of the proposal's commit." } else { "Publishing does not wait for staging." }}</p>
                                <details>
                                    <summary>"Change how releases are tested"</summary>
                                    <ActionForm action=set attr:id="set-testing">
                                        <input type="hidden" name="name" value=name/>
                                        <label>"Env over .env.sample (KEY=VALUE lines) " <textarea name="test_env" rows="4">{t.test_env.clone()}</textarea></label>
                                        <label>"Smoke check "
                                            <select name="smoke_kind">
                                                <option value="none" selected=kind == "none">"none"</option>
                                                <option value="http" selected=kind == "http">"an HTTP path answers"</option>
                                                <option value="command" selected=kind == "command">"a command exits 0"</option>
                                            </select>
                                        </label>
                                        <label>"Service " <input name="smoke_service" value=service/></label>
                                        <label>"Port " <input name="smoke_port" value=port inputmode="numeric"/></label>
                                        <label>"Path " <input name="smoke_path" value=path placeholder="/"/></label>
                                        <label>"Command " <input name="smoke_command" value=command/></label>
                                        <label><input type="checkbox" name="require_green_run" value="true" checked=t.require_green_run/>
                                            " Publish only after a passed staging run of the proposal's commit"</label>
                                        <button type="submit">"Save"</button>
                                    </ActionForm>
                                </details>
                            }.into_any()
                        }
                    }
                })
            }}
        </Suspense>
        <ActionResult value=set.value() ok="Saved."/>
    }
}
