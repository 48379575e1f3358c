//! The start page, the sign-in page and the bootstrap page.

use crate::api;
use crate::components::{use_me, ErrorBox};
use crate::model::ProviderPublic;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};

#[component]
pub fn HomePage() -> impl IntoView {
    let me = use_me();
    // Only a signed-in visitor has collectives: the start page answers everyone with 200.
    let collectives = Resource::new(
        || (),
        |_| async {
            match api::get_me().await {
                Ok(Some(_)) => api::list_collectives().await,
                _ => Ok(Vec::new()),
            }
        },
    );
    view! {
        <Title text=""/>
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match me.await {
                    Ok(Some(me)) => {
                        let list = collectives.await;
                        view! {
                            <h1>"Welcome, " {me.display_name.clone()}</h1>
                            {match list {
                                Ok(list) if list.is_empty() => view! {
                                    <p id="no-collectives">"You are not a member of any collective yet. Ask an admin of your collective for an invitation link, or for your identity provider's groups to be mapped."</p>
                                }.into_any(),
                                Ok(list) => view! {
                                    <h2>"Your collectives"</h2>
                                    <ul class="cards" id="my-collectives">
                                        {list.into_iter().map(|c| view! {
                                            <li>
                                                <a href=format!("/c/{}", c.slug)>{c.name.clone()}</a>
                                                <span class="role">{c.my_role.map(|r| r.to_string()).unwrap_or_else(|| "federation admin".into())}</span>
                                                <p>{c.description.clone()}</p>
                                            </li>
                                        }).collect_view()}
                                    </ul>
                                }.into_any(),
                                Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                            }}
                        }.into_any()
                    }
                    Ok(None) => view! {
                        <h1>"Potluck"</h1>
                        <p>"Shared infrastructure for the collectives of the federation: recipes, apps, deploys and an audit log that nobody can rewrite."</p>
                        <SignIn return_to=String::new()/>
                    }.into_any(),
                    Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                }
            })}
        </Suspense>
    }
}

/// The list of identity providers to sign in with.
#[component]
pub fn SignIn(return_to: String) -> impl IntoView {
    let providers = Resource::new(|| (), |_| api::public_providers());
    view! {
        <section class="signin">
            <h2>"Sign in"</h2>
            <Suspense fallback=|| ()>
                {move || {
                    let return_to = return_to.clone();
                    Suspend::new(async move {
                        match providers.await {
                            Ok(list) if list.is_empty() => view! {
                                <p>"No identity provider is configured yet. A federation admin adds them after opening the bootstrap link that `potluck serve` prints."</p>
                            }.into_any(),
                            Ok(list) => view! {
                                <ul class="providers">
                                    {list.into_iter().map(|p: ProviderPublic| {
                                        let href = if return_to.is_empty() {
                                            format!("/auth/login/{}", p.id)
                                        } else {
                                            format!("/auth/login/{}?return_to={}", p.id, urlencoding::encode(&return_to))
                                        };
                                        view! { <li><a class="button" href=href rel="external" data-provider=p.id.to_string()>"Sign in with " {p.display_name}</a></li> }
                                    }).collect_view()}
                                </ul>
                            }.into_any(),
                            Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                        }
                    })
                }}
            </Suspense>
        </section>
    }
}

#[component]
pub fn LoginPage() -> impl IntoView {
    let query = use_query_map();
    let error = move || query.read().get("error");
    let return_to = query.read_untracked().get("return_to").unwrap_or_default();
    view! {
        <Title text="Sign in"/>
        <h1>"Sign in to Potluck"</h1>
        {move || error().map(|e| view! { <div class="error" role="alert" id="login-error"><p>"Sign-in failed: " {e}</p></div> })}
        <SignIn return_to/>
    }
}

/// Opening the one-time link printed by `potluck serve` / `potluck admin bootstrap-link`. The
/// link only shows a button, so that link previews cannot use it up.
#[component]
pub fn BootstrapPage() -> impl IntoView {
    let params = use_params_map();
    let token = params.read_untracked().get("token").unwrap_or_default();
    view! {
        <Title text="Become federation admin"/>
        <h1>"Become a federation admin"</h1>
        <p>"This one-time link makes whoever confirms it a federation admin of this Potluck. If you are signed in, your account becomes admin; otherwise a new local admin account is created, to which you can link your identity provider account later."</p>
        <form method="post" action="/auth/bootstrap">
            <input type="hidden" name="token" value=token/>
            <button type="submit" id="bootstrap-confirm">"Make me federation admin"</button>
        </form>
    }
}
