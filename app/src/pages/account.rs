//! The signed-in person's own page: linked sign-ins, notifications and API tokens.

use crate::api::{self, *};
use crate::components::{use_me, ActionResult, ErrorBox, RoleSelect, Time};
use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn AccountPage() -> impl IntoView {
    let me = use_me();
    let create = ServerAction::<CreateApiToken>::new();
    let revoke = ServerAction::<RevokeApiToken>::new();
    let identities = Resource::new(|| (), |_| api::my_identities());
    let tokens = Resource::new(move || (create.version().get(), revoke.version().get()), |_| api::list_api_tokens());
    let providers = Resource::new(|| (), |_| api::public_providers());
    let set_notifications = ServerAction::<SetMyNotifications>::new();
    let notifications = Resource::new(move || set_notifications.version().get(), |_| api::my_notifications());
    view! {
        <Title text="Your account"/>
        <h1>"Your account"</h1>
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                let me = match me.await {
                    Ok(Some(me)) => me,
                    Ok(None) => return view! { <ErrorBox error=crate::error::ApiError::Unauthenticated/> }.into_any(),
                    Err(e) => return view! { <ErrorBox error=e/> }.into_any(),
                };
                let identities = identities.await;
                let tokens = tokens.await;
                let providers = providers.await.unwrap_or_default();
                let notifications = notifications.await;
                view! {
                    <p>{me.display_name.clone()} " · " {me.email.clone().unwrap_or_default()}
                        {me.is_federation_admin.then_some(" · federation admin")}</p>
                    <h2>"Sign-ins linked to this account"</h2>
                    {match identities {
                        Ok(list) => view! {
                            <ul id="identities">
                                {list.into_iter().map(|i| view! {
                                    <li>{i.provider_name.clone()} ": " <code>{i.subject.clone()}</code> " " {i.email.clone().unwrap_or_default()}
                                        <span class="muted">" groups: " {i.groups.join(", ")}</span></li>
                                }).collect_view()}
                            </ul>
                        }.into_any(),
                        Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                    }}
                    <p class="muted">"Link another identity provider account to this one; afterwards either sign-in opens this account."</p>
                    <div class="buttons">
                        {providers.into_iter().map(|p| view! {
                            <form method="post" action=format!("/auth/link/{}", p.id) class="inline">
                                <button type="submit" data-link-provider=p.id.to_string()>"Link " {p.display_name}</button>
                            </form>
                        }).collect_view()}
                    </div>

                    <h2>"Notifications"</h2>
                    {match notifications {
                        Ok(n) => view! {
                            <ActionForm action=set_notifications attr:id="my-notifications">
                                <label><input type="checkbox" name="review_email" value="true" checked=n.review_email/>
                                    " Email me when a release proposal awaits my review"</label>
                                <p class="muted">{match (&n.email, n.mail_ready) {
                                    (None, _) => "Your identity provider gave no email address: nothing can be sent to you.".to_string(),
                                    (Some(e), true) => format!("Sent to {e}."),
                                    (Some(e), false) => format!("Sent to {e} once a federation admin sets the mail relay."),
                                }}</p>
                                <button type="submit">"Save"</button>
                            </ActionForm>
                            <ActionResult value=set_notifications.value() ok="Saved."/>
                        }.into_any(),
                        Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                    }}

                    <h2>"API tokens"</h2>
                    <p class="muted">"A token acts for you in one collective, with at most your role there, on the REST API at " <code>"/api/v1"</code> " (" <a href="/api/v1/openapi.json" rel="external">"OpenAPI"</a> "). It is shown once."</p>
                    {match tokens {
                        Ok(list) => view! {
                            <table id="api-tokens">
                                <thead><tr><th>"Name"</th><th>"Collective"</th><th>"Role"</th><th>"Created"</th><th>"Last used"</th><th>"State"</th><th></th></tr></thead>
                                <tbody>
                                    {list.into_iter().map(|t| view! {
                                        <tr>
                                            <td>{t.name.clone()}</td>
                                            <td>{t.collective_slug.clone()}</td>
                                            <td>{t.role.to_string()}</td>
                                            <td><Time ms=t.created_at/></td>
                                            <td>{t.last_used_at.map(|ms| view! { <Time ms/> })}</td>
                                            <td>{if t.revoked { "revoked" } else { "active" }}</td>
                                            <td>{(!t.revoked).then(|| view! {
                                                <ActionForm action=revoke attr:class="inline">
                                                    <input type="hidden" name="token_id" value=t.id.to_string()/>
                                                    <button type="submit">"Revoke"</button>
                                                </ActionForm>
                                            })}</td>
                                        </tr>
                                    }).collect_view()}
                                </tbody>
                            </table>
                        }.into_any(),
                        Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                    }}
                    <ActionForm action=create attr:id="create-token">
                        <label>"Name " <input name="name" required placeholder="ci deploys"/></label>
                        <label>"Collective "
                            <select name="collective">
                                {me.memberships.iter().map(|m| view! { <option value=m.collective_slug.clone()>{m.collective_name.clone()}</option> }).collect_view()}
                            </select>
                        </label>
                        <label>"Role " <RoleSelect name="role"/></label>
                        <label>"Expires after (days, empty for never) " <input name="expires_in_days" type="number" min="1"/></label>
                        <button type="submit">"Create token"</button>
                    </ActionForm>
                    {move || match create.value().get() {
                        Some(Ok(created)) => view! {
                            <p class="ok" role="status">"Copy the token now; it is not shown again: " <code id="new-token">{created.token.0.clone()}</code></p>
                        }.into_any(),
                        Some(Err(e)) => view! { <ErrorBox error=e/> }.into_any(),
                        None => ().into_any(),
                    }}
                    <ActionResult value=revoke.value() ok="Token revoked."/>
                }.into_any()
            })}
        </Suspense>
    }
}
