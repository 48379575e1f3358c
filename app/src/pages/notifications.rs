//! A collective's notifications: its channels (signed webhooks, email), the events each
//! receives, how their deliveries went, and the log of what was sent.

use crate::api::{self, *};
use crate::components::{ActionError, ErrorBox, Time};
use crate::model::*;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

#[component]
pub fn NotificationsPage() -> impl IntoView {
    let params = use_params_map();
    let slug = move || params.read().get("slug").unwrap_or_default();
    let add = ServerAction::<AddNotificationChannel>::new();
    let remove = ServerAction::<RemoveNotificationChannel>::new();
    let test = ServerAction::<TestNotificationChannel>::new();
    let data = Resource::new(
        move || (slug(), add.version().get(), remove.version().get(), test.version().get()),
        |(s, ..)| api::list_notifications(s),
    );
    view! {
        <Title text="Notifications"/>
        <h1>"Notifications of " <a href=move || format!("/c/{}", slug())>{slug}</a></h1>
        <p class="muted">"Failures reach people without anyone watching a page: each channel receives the events it chose, as a signed webhook or as email through the federation's mail relay. A delivery that fails is tried again, waiting longer each time."</p>
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                    Ok(d) => view! { <Overview d add remove test/> }.into_any(),
                }
            })}
        </Suspense>
    }
}

/// A delivery's state as a chip.
fn state_chip(state: &str) -> &'static str {
    match state {
        "delivered" => "chip chip-whole",
        "failed" => "chip chip-undeclared",
        _ => "chip chip-paths",
    }
}

#[component]
fn Overview(
    d: CollectiveNotifications,
    add: ServerAction<AddNotificationChannel>,
    remove: ServerAction<RemoveNotificationChannel>,
    test: ServerAction<TestNotificationChannel>,
) -> impl IntoView {
    let manage = d.can_manage;
    let channels = d
        .channels
        .iter()
        .map(|ch| {
            let slug = d.slug.clone();
            let id = ch.id.to_string();
            let buttons = manage.then(|| {
                let (slug2, id2) = (slug.clone(), id.clone());
                view! {
                    <ActionForm action=test attr:class="inline test-channel">
                        <input type="hidden" name="slug" value=slug/>
                        <input type="hidden" name="channel" value=id/>
                        <button type="submit">"Send a test"</button>
                    </ActionForm>
                    <ActionForm action=remove attr:class="inline remove-channel">
                        <input type="hidden" name="slug" value=slug2/>
                        <input type="hidden" name="channel" value=id2/>
                        <button type="submit" class="danger">"Remove"</button>
                    </ActionForm>
                }
            });
            let total = (ch.delivered + ch.failed + ch.pending).max(1);
            let width = move |n: i64| (n * 100 / total).to_string();
            view! {
                <tr data-channel=ch.name.clone()>
                    <td><strong>{ch.name.clone()}</strong> <div class="muted">{ch.kind.as_str()} " · " <code>{ch.target.clone()}</code></div></td>
                    <td><ul class="chips">{ch.events.iter().map(|e| view! { <li class="chip" title=e.label()>{e.as_str()}</li> }).collect_view()}</ul></td>
                    <td class="delivery-health">
                        <svg class="bar" viewBox="0 0 100 6" preserveAspectRatio="none" role="img" aria-label=format!("{} delivered, {} failed, {} on their way", ch.delivered, ch.failed, ch.pending)>
                            <rect class="bar-ok" x="0" y="0" height="6" width=width(ch.delivered)/>
                            <rect class="bar-failed" x=width(ch.delivered) y="0" height="6" width=width(ch.failed)/>
                            <rect class="bar-pending" x=width(ch.delivered + ch.failed) y="0" height="6" width=width(ch.pending)/>
                        </svg>
                        <div class="muted">{format!("{} delivered · {} failed · {} on their way", ch.delivered, ch.failed, ch.pending)}</div>
                    </td>
                    <td class="muted">{ch.created_by.clone()} <div><Time ms=ch.created_at/></div></td>
                    <td>{buttons}</td>
                </tr>
            }
        })
        .collect_view();
    let deliveries = d
        .deliveries
        .iter()
        .map(|x| {
            let answer = match (x.last_code, x.last_error.clone()) {
                (Some(code), Some(e)) => format!("{code}: {e}"),
                (Some(code), None) => code.to_string(),
                (None, Some(e)) => e,
                (None, None) => String::new(),
            };
            let retry = (x.state == "pending" && x.attempts > 0)
                .then(|| view! { <div class="muted">"next try " <Time ms=x.next_attempt_at/></div> });
            view! {
                <tr data-delivery=x.id.to_string() data-state=x.state.clone()>
                    <td><Time ms=x.created_at/></td>
                    <td>{x.channel.clone()}</td>
                    <td><code>{x.event.clone()}</code> <div>{x.subject.clone()}</div></td>
                    <td><span class=state_chip(&x.state)>{x.state.clone()}</span> {retry}</td>
                    <td>{x.attempts}</td>
                    <td class="answer">{answer}</td>
                </tr>
            }
        })
        .collect_view();
    let tested = move || match test.value().get() {
        Some(Ok(x)) => {
            let ok = x.state == "delivered";
            let text = match (ok, x.last_code, x.last_error.clone()) {
                (true, code, _) => format!("Test delivered{}.", code.map(|c| format!(" ({c})")).unwrap_or_default()),
                (false, code, e) => format!(
                    "Test not delivered: {}{}",
                    code.map(|c| format!("{c} ")).unwrap_or_default(),
                    e.unwrap_or_default()
                ),
            };
            view! { <p class=if ok { "ok" } else { "error" } role="status" id="test-result">{text}</p> }.into_any()
        }
        Some(Err(e)) => view! { <ErrorBox error=e/> }.into_any(),
        None => ().into_any(),
    };
    let form = manage.then(|| {
        let slug = d.slug.clone();
        let mail_ready = d.mail_ready;
        view! {
            <details class="channel-form" open=d.channels.is_empty()>
                <summary>"Add a channel"</summary>
                <ActionForm action=add attr:id="add-channel">
                    <input type="hidden" name="slug" value=slug/>
                    <label>"Name " <input name="name" required maxlength="64" placeholder="ops chat"/></label>
                    <fieldset>
                        <legend>"Kind"</legend>
                        <label><input type="radio" name="kind" value="webhook" checked/> "Webhook: an https POST of JSON, signed with HMAC-SHA256"</label>
                        <label><input type="radio" name="kind" value="email"/> "Email through the federation's mail relay"
                            {(!mail_ready).then(|| view! { <span class="warning">" (no relay is set yet: a federation admin sets one)"</span> })}
                        </label>
                    </fieldset>
                    <label>"URL or email addresses " <input name="target" required maxlength="2048" placeholder="https://hooks.example.org/potluck or ops@example.org"/></label>
                    <fieldset>
                        <legend>"Events"</legend>
                        {NotifyEvent::ALL.iter().enumerate().map(|(i, e)| view! {
                            <label><input type="checkbox" name=format!("events[{i}]") value=e.as_str() checked=matches!(e, NotifyEvent::DeployFailed | NotifyEvent::AppUnhealthy | NotifyEvent::ServerUnreachable | NotifyEvent::BackupFailed | NotifyEvent::DrillFailed)/> " " {e.label()}</label>
                        }).collect_view()}
                    </fieldset>
                    <p class="muted">"A webhook's requests carry " <code>"Potluck-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of \"<t>.<body>\">"</code> " under a signing key shown once when the channel is added. The URL is stored sealed."</p>
                    <button type="submit">"Add channel"</button>
                </ActionForm>
                {move || match add.value().get() {
                    Some(Ok(added)) => view! {
                        <div class="ok" role="status" id="channel-added">
                            "Channel " <strong>{added.channel.name.clone()}</strong> " added."
                            {added.signing_key.map(|k| view! {
                                <p>"Its signing key, shown this once: " <code id="signing-key">{k.0}</code></p>
                            })}
                        </div>
                    }.into_any(),
                    Some(Err(e)) => view! { <ErrorBox error=e/> }.into_any(),
                    None => ().into_any(),
                }}
            </details>
        }
    });
    view! {
        <h2>"Channels"</h2>
        {d.channels.is_empty().then(|| view! { <p class="muted" id="no-channels">"No channel yet: nobody hears of failures unless they look."</p> })}
        <table id="channels">
            <thead><tr><th>"Channel"</th><th>"Events"</th><th>"Deliveries"</th><th>"Added"</th><th></th></tr></thead>
            <tbody>{channels}</tbody>
        </table>
        {tested}
        <ActionError value=remove.value()/>
        {form}
        <h2>"Sent"</h2>
        <table id="deliveries">
            <thead><tr><th>"When"</th><th>"Channel"</th><th>"Event"</th><th>"State"</th><th>"Attempts"</th><th>"Last answer"</th></tr></thead>
            <tbody>{deliveries}</tbody>
        </table>
    }
}
