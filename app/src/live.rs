//! In the browser: the pages that show the swarm follow their live stream (Server-Sent Events,
//! see `server/src/operations/live.rs`) and put each state it sends into a signal, so that what
//! the server rendered updates in place. The stream closes with the page.

use leptos::prelude::*;
use serde::de::DeserializeOwned;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;

/// Follows `url` and sets `into` to each `event` it sends. The browser reconnects when the
/// server ends the stream (it does every few minutes, to authorize the caller again).
pub fn follow<T>(url: String, event: &'static str, into: RwSignal<T>)
where
    T: DeserializeOwned + Send + Sync + 'static,
{
    Effect::new(move |started: Option<()>| {
        if started.is_some() {
            return;
        }
        let Ok(source) = web_sys::EventSource::new(&url) else { return };
        let on_state = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |m: web_sys::MessageEvent| {
            if let Some(state) = m.data().as_string().and_then(|text| serde_json::from_str::<T>(&text).ok()) {
                into.set(state);
            }
        });
        let closer = source.clone();
        // The app is gone (or the caller may no longer see it): stop asking.
        let on_gone = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |_| closer.close());
        let _ = source.add_event_listener_with_callback(event, on_state.as_ref().unchecked_ref());
        let _ = source.add_event_listener_with_callback("gone", on_gone.as_ref().unchecked_ref());
        let kept = send_wrapper::SendWrapper::new((source, on_state, on_gone));
        on_cleanup(move || kept.0.close());
    });
}
