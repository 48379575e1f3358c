//! Collectives: the list, one collective (members, group mappings, invitations), and accepting
//! an invitation.

use crate::api::{self, *};
use crate::components::{use_me, ActionResult, ErrorBox, RoleSelect, Time};
use crate::model::*;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

#[component]
pub fn CollectivesPage() -> impl IntoView {
    let me = use_me();
    let create = ServerAction::<CreateCollective>::new();
    let list = Resource::new(move || create.version().get(), |_| api::list_collectives());
    view! {
        <Title text="Collectives"/>
        <h1>"Collectives"</h1>
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                let me = me.await;
                let list = list.await;
                let fed_admin = matches!(&me, Ok(Some(m)) if m.is_federation_admin);
                match list {
                    Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                    Ok(list) => view! {
                        <table id="collectives">
                            <thead><tr><th>"Collective"</th><th>"Slug"</th><th>"Members"</th><th>"Your role"</th></tr></thead>
                            <tbody>
                                {list.into_iter().map(|c| view! {
                                    <tr>
                                        <td><a href=format!("/c/{}", c.slug)>{c.name.clone()}</a></td>
                                        <td><code>{c.slug.clone()}</code></td>
                                        <td>{c.member_count}</td>
                                        <td>{c.my_role.map(|r| r.to_string()).unwrap_or_else(|| "—".into())}</td>
                                    </tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                        {fed_admin.then(|| view! {
                            <section>
                                <h2>"Create a collective"</h2>
                                <ActionForm action=create attr:id="create-collective">
                                    <label>"Slug " <input name="slug" required placeholder="collective-a" pattern="[a-z0-9][a-z0-9\\-]{1,62}"/></label>
                                    <label>"Name " <input name="name" required/></label>
                                    <label>"Description " <textarea name="description"></textarea></label>
                                    <button type="submit">"Create"</button>
                                </ActionForm>
                                <ActionResult value=create.value() ok="Collective created."/>
                            </section>
                        })}
                    }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
pub fn CollectivePage() -> impl IntoView {
    let params = use_params_map();
    let slug = move || params.read().get("slug").unwrap_or_default();
    let update = ServerAction::<UpdateCollective>::new();
    let set_role = ServerAction::<SetMemberRole>::new();
    let remove = ServerAction::<RemoveMember>::new();
    let add_mapping = ServerAction::<AddGroupMapping>::new();
    let remove_mapping = ServerAction::<RemoveGroupMapping>::new();
    let invite = ServerAction::<CreateInvitation>::new();
    let revoke = ServerAction::<RevokeInvitation>::new();
    let detail = Resource::new(
        move || {
            (
                slug(),
                update.version().get(),
                set_role.version().get(),
                remove.version().get(),
                add_mapping.version().get(),
                remove_mapping.version().get(),
                invite.version().get(),
                revoke.version().get(),
            )
        },
        |(slug, ..)| api::get_collective(slug),
    );
    let me = use_me();
    let actions = CollectiveActions { update, set_role, remove, add_mapping, remove_mapping, invite, revoke };

    view! {
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                let me = me.await.ok().flatten();
                match detail.await {
                    Err(e) => view! { <Title text="Collective"/><ErrorBox error=e/> }.into_any(),
                    Ok(c) => {
                        let can = |p: Permission| me.as_ref().is_some_and(|m| m.can(&c.slug, p));
                        let audit = can(Permission::ViewAudit);
                        let edit = can(Permission::EditCollective);
                        let manage_members = can(Permission::ManageMembers);
                        let manage_mappings = can(Permission::ManageGroupMappings);
                        let audit_href = format!("/audit?collective={}", c.slug);
                        view! {
                            <Title text=c.name.clone()/>
                            <h1 id="collective-name">{c.name.clone()}</h1>
                            <p class="muted"><code>{c.slug.clone()}</code> " · your role: "
                                <span id="my-role">{c.my_role.map(|r| r.to_string()).unwrap_or_else(|| "federation admin".into())}</span>
                                {audit.then(|| view! { " · " <a href=audit_href>"audit log"</a> })}
                                " · " <a href=format!("/c/{}/apps", c.slug) id="collective-apps">"apps"</a>
                                " · " <a href=format!("/c/{}/servers", c.slug) id="collective-servers">"servers"</a>
                                " · " <a href=format!("/c/{}/backups", c.slug) id="collective-backups">"backups"</a>
                                " · " <a href=format!("/c/{}/notifications", c.slug) id="collective-notifications">"notifications"</a>
                            </p>
                            <p>{c.description.clone()}</p>
                            {edit.then(|| view! { <EditCollective c=c.clone() action=actions.update/> })}
                            <Members c=c.clone() manage=manage_members actions/>
                            {manage_members.then(|| view! { <Invitations c=c.clone() actions/> })}
                            <Mappings c=c.clone() manage=manage_mappings actions/>
                        }.into_any()
                    }
                }
            })}
        </Suspense>
    }
}

#[derive(Clone, Copy)]
struct CollectiveActions {
    update: ServerAction<UpdateCollective>,
    set_role: ServerAction<SetMemberRole>,
    remove: ServerAction<RemoveMember>,
    add_mapping: ServerAction<AddGroupMapping>,
    remove_mapping: ServerAction<RemoveGroupMapping>,
    invite: ServerAction<CreateInvitation>,
    revoke: ServerAction<RevokeInvitation>,
}

#[component]
fn EditCollective(c: CollectiveDetail, action: ServerAction<UpdateCollective>) -> impl IntoView {
    view! {
        <details>
            <summary>"Edit name and description"</summary>
            <ActionForm action attr:id="edit-collective">
                <input type="hidden" name="slug" value=c.slug/>
                <label>"Name " <input name="name" value=c.name required/></label>
                <label>"Description " <textarea name="description" prop:value=c.description></textarea></label>
                <button type="submit">"Save"</button>
            </ActionForm>
            <ActionResult value=action.value() ok="Saved."/>
        </details>
    }
}

#[component]
fn Members(c: CollectiveDetail, manage: bool, actions: CollectiveActions) -> impl IntoView {
    let rows = c
        .members
        .into_iter()
        .map(|m| {
            let source = match (m.manual_role, m.idp_role) {
                (Some(a), Some(b)) => format!("admin: {a}, identity provider groups: {b}"),
                (Some(a), None) => format!("admin: {a}"),
                (None, Some(b)) => format!("identity provider groups: {b}"),
                (None, None) => String::new(),
            };
            let slug = c.slug.clone();
            let user_id = m.user_id.to_string();
            let controls = manage.then(|| {
                let (slug2, user_id2) = (slug.clone(), user_id.clone());
                view! {
                    <td class="actions">
                        <ActionForm action=actions.set_role attr:class="inline">
                            <input type="hidden" name="slug" value=slug2/>
                            <input type="hidden" name="user_id" value=user_id2/>
                            <RoleSelect name="role" selected=m.manual_role.unwrap_or(m.role)/>
                            <button type="submit">"Set role"</button>
                        </ActionForm>
                        <ActionForm action=actions.remove attr:class="inline">
                            <input type="hidden" name="slug" value=slug/>
                            <input type="hidden" name="user_id" value=user_id/>
                            <button type="submit" class="danger">"Remove"</button>
                        </ActionForm>
                    </td>
                }
            });
            view! {
                <tr data-user=m.user_id.to_string()>
                    <td>{m.display_name}</td>
                    <td>{m.email.unwrap_or_default()}</td>
                    <td class="role">{m.role.to_string()}</td>
                    <td class="muted">{source}</td>
                    {controls}
                </tr>
            }
        })
        .collect_view();
    view! {
        <h2>"Members"</h2>
        <ActionResult value=actions.set_role.value() ok="Role changed."/>
        <ActionResult value=actions.remove.value() ok="Member removed."/>
        <table id="members">
            <thead><tr><th>"Name"</th><th>"Email"</th><th>"Role"</th><th>"Granted by"</th>{manage.then(|| view! { <th>"Change"</th> })}</tr></thead>
            <tbody>{rows}</tbody>
        </table>
    }
}

#[component]
fn Invitations(c: CollectiveDetail, actions: CollectiveActions) -> impl IntoView {
    let invite = actions.invite;
    let rows = c
        .invitations
        .into_iter()
        .map(|i| {
            let slug = c.slug.clone();
            view! {
                <li>{i.role.to_string()} " · by " {i.created_by} " · expires " <Time ms=i.expires_at/>
                    <ActionForm action=actions.revoke attr:class="inline">
                        <input type="hidden" name="slug" value=slug/>
                        <input type="hidden" name="invitation_id" value=i.id.to_string()/>
                        <button type="submit">"Revoke"</button>
                    </ActionForm>
                </li>
            }
        })
        .collect_view();
    let slug = c.slug.clone();
    view! {
        <h2>"Invitations"</h2>
        <p class="muted">"An invitation link makes whoever opens it while signed in a member with the chosen role. It works once and expires after 7 days."</p>
        <ActionForm action=invite attr:id="create-invitation">
            <input type="hidden" name="slug" value=slug/>
            <label>"Role " <RoleSelect name="role"/></label>
            <button type="submit">"Create invitation link"</button>
        </ActionForm>
        {move || match invite.value().get() {
            Some(Ok(created)) => view! {
                <p class="ok" role="status">"Copy this link now; it is not shown again: " <code id="invitation-link">{created.link.0.clone()}</code></p>
            }.into_any(),
            Some(Err(e)) => view! { <ErrorBox error=e/> }.into_any(),
            None => ().into_any(),
        }}
        <ActionResult value=actions.revoke.value() ok="Invitation revoked."/>
        <ul id="invitations">{rows}</ul>
    }
}

#[component]
fn Mappings(c: CollectiveDetail, manage: bool, actions: CollectiveActions) -> impl IntoView {
    let rows = c
        .group_mappings
        .into_iter()
        .map(|g| {
            let slug = c.slug.clone();
            let remove = manage.then(|| {
                view! {
                    <td>
                        <ActionForm action=actions.remove_mapping attr:class="inline">
                            <input type="hidden" name="slug" value=slug/>
                            <input type="hidden" name="mapping_id" value=g.id.to_string()/>
                            <button type="submit">"Remove"</button>
                        </ActionForm>
                    </td>
                }
            });
            view! {
                <tr>
                    <td>{g.provider_name}</td>
                    <td><code>{g.claim}</code></td>
                    <td><code>{g.value}</code></td>
                    <td>{g.role.to_string()}</td>
                    {remove}
                </tr>
            }
        })
        .collect_view();
    let form = manage.then(|| {
        if c.providers.is_empty() {
            view! { <p>"No identity provider serves this collective yet; a federation admin assigns one on the identity providers page."</p> }.into_any()
        } else {
            view! {
                <ActionForm action=actions.add_mapping attr:id="add-mapping">
                    <input type="hidden" name="slug" value=c.slug.clone()/>
                    <label>"Provider "
                        <select name="provider_id">
                            {c.providers.iter().map(|p| view! { <option value=p.id.to_string()>{p.display_name.clone()}</option> }).collect_view()}
                        </select>
                    </label>
                    <label>"Group " <input name="value" required placeholder="collective-a-admins"/></label>
                    <label>"Role " <RoleSelect name="role"/></label>
                    <button type="submit">"Map group"</button>
                </ActionForm>
            }.into_any()
        }
    });
    view! {
        <h2>"Identity provider groups"</h2>
        <p class="muted">"People who sign in through one of this collective's identity providers get the mapped role while their groups claim contains the value. It is checked at every sign-in: removing someone from the group at the provider removes the role at their next sign-in."</p>
        <ActionResult value=actions.add_mapping.value() ok="Mapping added."/>
        <ActionResult value=actions.remove_mapping.value() ok="Mapping removed."/>
        <table id="group-mappings">
            <thead><tr><th>"Provider"</th><th>"Claim"</th><th>"Value"</th><th>"Role"</th>{manage.then(|| view! { <th></th> })}</tr></thead>
            <tbody>{rows}</tbody>
        </table>
        {form}
    }
}

#[component]
pub fn InvitePage() -> impl IntoView {
    let params = use_params_map();
    let token = params.read_untracked().get("token").unwrap_or_default();
    let me = use_me();
    let accept = ServerAction::<AcceptInvitation>::new();
    view! {
        <Title text="Invitation"/>
        <h1>"Invitation to a collective"</h1>
        <Suspense fallback=|| ()>
            {move || {
                let token = token.clone();
                Suspend::new(async move {
                    match me.await {
                        Ok(Some(_)) => view! {
                            <ActionForm action=accept attr:id="accept-invitation">
                                <input type="hidden" name="token" value=token/>
                                <button type="submit">"Join the collective"</button>
                            </ActionForm>
                            {move || match accept.value().get() {
                                Some(Ok(c)) => view! { <p class="ok" role="status">"You are now a member of " <a href=format!("/c/{}", c.slug)>{c.name.clone()}</a></p> }.into_any(),
                                Some(Err(e)) => view! { <ErrorBox error=e/> }.into_any(),
                                None => ().into_any(),
                            }}
                        }.into_any(),
                        _ => view! {
                            <p>"Sign in first; you come back here afterwards."</p>
                            <crate::pages::home::SignIn return_to=format!("/invite/{token}")/>
                        }.into_any(),
                    }
                })
            }}
        </Suspense>
    }
}
