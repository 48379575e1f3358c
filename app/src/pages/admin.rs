//! Federation administration: identity providers, people, the mail relay and staging servers.

use crate::api::{self, *};
use crate::components::{ActionResult, ErrorBox, Time};
use crate::model::MailSettingsView;
use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn ProvidersPage() -> impl IntoView {
    let add = ServerAction::<AddProvider>::new();
    let set_collectives = ServerAction::<SetProviderCollectives>::new();
    let remove = ServerAction::<RemoveProvider>::new();
    let overview = Resource::new(
        move || (add.version().get(), set_collectives.version().get(), remove.version().get()),
        |_| api::list_providers(),
    );
    view! {
        <Title text="Identity providers"/>
        <h1>"Identity providers"</h1>
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match overview.await {
                    Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                    Ok(o) => view! {
                        <p>"Register Potluck at each provider as a confidential OpenID Connect client with the redirect URI "
                            <code id="redirect-uri">{o.redirect_uri.clone()}</code> "."</p>
                        <ActionResult value=set_collectives.value() ok="Collectives saved."/>
                        <ActionResult value=remove.value() ok="Provider removed."/>
                        <table id="providers">
                            <thead><tr><th>"Name"</th><th>"Issuer"</th><th>"Client id"</th><th>"Groups claim"</th><th>"Serves collectives"</th><th>"Added"</th><th></th></tr></thead>
                            <tbody>
                                {o.providers.into_iter().map(|p| view! {
                                    <tr data-provider=p.id.to_string()>
                                        <td>{p.display_name.clone()}</td>
                                        <td><code>{p.issuer_url.clone()}</code></td>
                                        <td><code>{p.client_id.clone()}</code></td>
                                        <td><code>{p.groups_claim.clone()}</code></td>
                                        <td>
                                            <ActionForm action=set_collectives attr:class="inline">
                                                <input type="hidden" name="provider_id" value=p.id.to_string()/>
                                                <input name="collectives" value=p.collectives.join(", ") placeholder="collective-a, collective-b"/>
                                                <button type="submit">"Save"</button>
                                            </ActionForm>
                                        </td>
                                        <td><Time ms=p.created_at/></td>
                                        <td>
                                            <ActionForm action=remove attr:class="inline">
                                                <input type="hidden" name="provider_id" value=p.id.to_string()/>
                                                <button type="submit" class="danger">"Remove"</button>
                                            </ActionForm>
                                        </td>
                                    </tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                    }.into_any(),
                }
            })}
        </Suspense>
        <h2>"Add an identity provider"</h2>
        <p class="muted">"Potluck reads the issuer's discovery document now and refuses the provider if it cannot. The client secret is stored encrypted and never shown again."</p>
        <ActionForm action=add attr:id="add-provider">
            <label>"Display name " <input name="display_name" required placeholder="Collective A's Keycloak"/></label>
            <label>"Issuer URL " <input name="issuer_url" type="url" required placeholder="https://id.example.org/realms/a"/></label>
            <label>"Client id " <input name="client_id" required/></label>
            <label>"Client secret " <input name="client_secret" type="password" required autocomplete="off"/></label>
            <label>"Groups claim " <input name="groups_claim" value="groups"/></label>
            <label>"Serves collectives (slugs) " <input name="collectives" placeholder="collective-a"/></label>
            <button type="submit">"Add provider"</button>
        </ActionForm>
        <ActionResult value=add.value() ok="Provider added."/>
    }
}

#[component]
pub fn UsersPage() -> impl IntoView {
    let set_admin = ServerAction::<SetFederationAdmin>::new();
    let link = ServerAction::<LinkUsers>::new();
    let users = Resource::new(move || (set_admin.version().get(), link.version().get()), |_| api::list_users());
    view! {
        <Title text="People"/>
        <h1>"People"</h1>
        <ActionResult value=set_admin.value() ok="Saved."/>
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match users.await {
                    Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                    Ok(list) => view! {
                        <table id="users">
                            <thead><tr><th>"Id"</th><th>"Name"</th><th>"Email"</th><th>"Sign-ins"</th><th>"Last sign-in"</th><th>"Federation admin"</th></tr></thead>
                            <tbody>
                                {list.into_iter().map(|u| view! {
                                    <tr data-user=u.id.to_string()>
                                        <td>{u.id.0}</td>
                                        <td>{u.display_name.clone()}</td>
                                        <td>{u.email.clone().unwrap_or_default()}</td>
                                        <td>{u.identities.iter().map(|i| format!("{}: {}", i.provider_name, i.subject)).collect::<Vec<_>>().join("; ")}</td>
                                        <td>{u.last_login_at.map(|ms| view! { <Time ms/> })}</td>
                                        <td>
                                            <ActionForm action=set_admin attr:class="inline">
                                                <input type="hidden" name="user_id" value=u.id.to_string()/>
                                                <input type="hidden" name="admin" value=(!u.is_federation_admin).to_string()/>
                                                {if u.is_federation_admin { "yes " } else { "no " }}
                                                <button type="submit">{if u.is_federation_admin { "Revoke" } else { "Make admin" }}</button>
                                            </ActionForm>
                                        </td>
                                    </tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                    }.into_any(),
                }
            })}
        </Suspense>
        <h2>"Link two accounts"</h2>
        <p class="muted">"The same person at two identity providers is two accounts until you link them: the second account's sign-ins, memberships and tokens move to the first, and the second is removed."</p>
        <ActionForm action=link attr:id="link-users">
            <label>"Keep account id " <input name="keep_user_id" type="number" required/></label>
            <label>"Merge account id " <input name="merge_user_id" type="number" required/></label>
            <button type="submit">"Link"</button>
        </ActionForm>
        <ActionResult value=link.value() ok="Accounts linked."/>
    }
}

/// The federation's mail relay: every email notification goes through it.
#[component]
pub fn MailPage() -> impl IntoView {
    let set = ServerAction::<SetMailRelay>::new();
    let remove = ServerAction::<RemoveMailRelay>::new();
    let relay = Resource::new(move || (set.version().get(), remove.version().get()), |_| api::get_mail_relay());
    view! {
        <Title text="Mail relay"/>
        <h1>"Mail relay"</h1>
        <p class="muted">"Email notifications (collectives' email channels, and people who asked to hear of reviews) are sent through this SMTP relay. Its password is stored sealed and never shown."</p>
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match relay.await {
                    Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                    Ok(current) => {
                        let shown = match &current {
                            None => view! { <p class="warning" id="no-relay">"No relay is set: email notifications wait until one is."</p> }.into_any(),
                            Some(r) => view! {
                                <p id="relay">"Sending through " <code>{format!("{}:{}", r.host, r.port)}</code> " (" {r.security.clone()} ") as " <code>{r.sender.clone()}</code>
                                    {r.username.clone().map(|u| view! { ", signing in as " <code>{u}</code> })}
                                    {r.has_ca.then_some(", trusting its own CA")}
                                    <span class="muted">" · set by " {r.updated_by.clone()} " " <Time ms=r.updated_at/></span></p>
                            }.into_any(),
                        };
                        let c = current.clone();
                        let field = move |f: fn(&MailSettingsView) -> String| c.as_ref().map(f).unwrap_or_default();
                        let security = current.as_ref().map(|r| r.security.clone()).unwrap_or_else(|| "starttls".into());
                        let port = current.as_ref().map(|r| r.port).unwrap_or(587);
                        view! {
                            {shown}
                            <ActionResult value=set.value() ok="Relay saved."/>
                            <ActionResult value=remove.value() ok="Relay removed."/>
                            <ActionForm action=set attr:id="set-mail-relay">
                                <label>"Host " <input name="host" required maxlength="253" value=field(|r| r.host.clone())/></label>
                                <label>"Port " <input name="port" type="number" min="1" max="65535" required value=port.to_string()/></label>
                                <label>"Security "
                                    <select name="security">
                                        {["starttls", "tls", "none"].into_iter().map(|s| view! { <option value=s selected=security == s>{s}</option> }).collect_view()}
                                    </select>
                                </label>
                                <label>"Username " <input name="username" maxlength="256" autocomplete="off" value=field(|r| r.username.clone().unwrap_or_default())/></label>
                                <label>"Password (empty keeps the one set) " <input name="password" type="password" autocomplete="new-password" maxlength="512"/></label>
                                <label>"Sender " <input name="sender" required maxlength="320" placeholder="Potluck <potluck@example.org>" value=field(|r| r.sender.clone())/></label>
                                <label>"CA certificate to trust (PEM, for a relay with a private CA) " <textarea name="ca_pem" rows="3"></textarea></label>
                                <button type="submit">"Save relay"</button>
                            </ActionForm>
                            {current.is_some().then(|| view! {
                                <ActionForm action=remove attr:class="inline" attr:id="remove-mail-relay">
                                    <button type="submit" class="danger">"Remove relay"</button>
                                </ActionForm>
                            })}
                        }.into_any()
                    }
                }
            })}
        </Suspense>
    }
}

/// The servers the federation tries release proposals on.
#[component]
pub fn StagingServersPage() -> impl IntoView {
    let set = ServerAction::<SetStagingServer>::new();
    let list = Resource::new(move || set.version().get(), |_| api::list_staging_servers());
    view! {
        <Title text="Staging servers"/>
        <h1>"Staging servers"</h1>
        <p class="muted">"Every release proposal, and every new commit of one, is deployed on a staging server as a throw-away app before review: \
            install, smoke check, backup round trip, the upgrade from the previous release, and a checked cleanup. \
            A server runs under its own policy (what recipes may ask of the host)."</p>
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match list.await {
                    Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                    Ok(list) if list.is_empty() => view! { <p id="no-staging">"No staging server yet."</p> }.into_any(),
                    Ok(list) => view! {
                        <table id="staging-servers">
                            <thead><tr><th>"Server"</th><th>"Runs at once"</th><th>"Running"</th><th>"Designated by"</th></tr></thead>
                            <tbody>{list.into_iter().map(|s| view! {
                                <tr><td>{format!("{}/{}", s.collective, s.server)}</td><td>{s.max_runs}</td>
                                    <td>{s.running}</td><td>{s.designated_by.clone()}</td></tr>
                            }).collect_view()}</tbody>
                        </table>
                    }.into_any(),
                }
            })}
        </Suspense>
        <h2>"Designate a server"</h2>
        <ActionForm action=set attr:id="set-staging-server">
            <label>"Collective " <input name="slug" required/></label>
            <label>"Server " <input name="name" required/></label>
            <label>"Runs at once (0 withdraws it) " <input name="max_runs" value="1" inputmode="numeric"/></label>
            <button type="submit">"Save"</button>
        </ActionForm>
        <ActionResult value=set.value() ok="Saved."/>
    }
}
