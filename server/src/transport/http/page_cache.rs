//! Rendered pages, kept for the person who asked for them at the version of the data they show.
//!
//! A page's key is its path and query, who asks (the signed-in person as the session names them,
//! or anonymous without a query; API tokens are never served from here) and the version of what
//! pages show: `page_version`, which every write to a table a page reads moves (migration
//! `20261216000001_page_version`), the audit chain's head, and this replica's count of its
//! watchers' connection changes. The version is read before a page renders, so a page is kept under a
//! version it shows at least; any later write gives later requests a new key. A kept page is
//! served again for `FRESH` seconds, after which one request renders it anew while the others
//! are served the kept copy (what a page shows from the clock, such as restarts in the last
//! hour, is at most that old). Of several requests for a page nobody has rendered yet, one
//! renders it and the others wait for it.
//!
//! Every response carries its own nonce: the kept page's nonce is replaced, in the body and in
//! its Content-Security-Policy, by a new one. Only a `200` HTML page with a nonce and no cookie
//! is kept; everything else is marked as not kept for `FRESH` and rendered each time.

use crate::state::SharedState;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{CONTENT_LENGTH, CONTENT_SECURITY_POLICY, CONTENT_TYPE, SET_COOKIE, TRANSFER_ENCODING};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::StreamExt;
use potluck_app::ports::{Caller, Principal};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a kept page is served before it is rendered again (without a write in between).
pub const FRESH: Duration = Duration::from_secs(5);
/// While one request renders a page again, the others get the kept copy up to this age; after it
/// (a render that hangs) each renders its own.
const STALE: Duration = Duration::from_secs(30);
/// How long a request waits for another's first render of the same page before rendering its own.
const WAIT: Duration = Duration::from_secs(10);
/// Says whether a page came from here (`hit`), was rendered and kept (`miss`) or not (`pass`).
pub const CACHE_HEADER: HeaderName = HeaderName::from_static("x-potluck-cache");

#[derive(Clone)]
pub struct PageCache {
    pages: Arc<quick_cache::sync::Cache<Key, Arc<Entry>, Weight>>,
    /// A larger page is served as it renders and not kept (quick_cache splits its capacity into
    /// shards and refuses an entry heavier than a shard holds).
    max_page: usize,
}

impl PageCache {
    /// A cache of at most `mib` MiB of pages; `None` when it is switched off (0).
    pub fn new(mib: u64) -> Option<PageCache> {
        let bytes = mib.checked_mul(1 << 20).filter(|b| *b > 0)?;
        // quick_cache wants an estimate of the number of entries: pages of ~64 KiB.
        let items = usize::try_from(bytes / (64 << 10)).unwrap_or(usize::MAX).max(16);
        let max_page = usize::try_from(bytes / 16).unwrap_or(usize::MAX).min(4 << 20);
        Some(PageCache { pages: Arc::new(quick_cache::sync::Cache::with_weighter(items, bytes, Weight)), max_page })
    }
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct Key {
    path: String,
    who: String,
    version: (i64, i64, u64),
}

enum Entry {
    Page(Page),
    /// The response was not one to keep (a redirect, an error, a file, a cookie).
    Pass(Instant),
}

struct Page {
    at: Instant,
    /// A request is rendering this page anew; the others are served this copy meanwhile.
    refreshing: AtomicBool,
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
    nonce: String,
    /// Where the nonce stands in the body.
    nonces: Vec<usize>,
}

#[derive(Clone)]
struct Weight;

impl quick_cache::Weighter<Key, Arc<Entry>> for Weight {
    fn weight(&self, key: &Key, entry: &Arc<Entry>) -> u64 {
        let body = match &**entry {
            Entry::Page(p) => p.body.len() + p.nonces.len() * 8 + 512,
            Entry::Pass(_) => 64,
        };
        (key.path.len() + key.who.len() + body) as u64
    }
}

/// Who a page is rendered for, as the key names them; `None` for callers never served from here:
/// API tokens, and anonymous visitors asking with a query (what one visitor asked for, such as
/// where to return after signing in, is not for the next one to time).
fn who(req: &Request) -> Option<String> {
    let caller = req.extensions().get::<Caller>()?;
    let origin = caller.sign_out_origin.as_deref().unwrap_or("");
    match &caller.principal {
        Principal::Anonymous if req.uri().query().is_none() => Some(format!("-\n{origin}")),
        Principal::Anonymous | Principal::Token(_) => None,
        Principal::User(u) => {
            Some(format!("{}\n{}\n{}\n{origin}", u.user_id, u8::from(u.is_federation_admin), u.display_name))
        }
    }
}

/// The middleware in front of the pages (after `context::identify`, outside `page_csp`).
pub async fn serve(State((state, cache)): State<(SharedState, PageCache)>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if req.method() != Method::GET || path.starts_with("/api/") || path.starts_with("/pkg/") {
        return next.run(req).await;
    }
    let Some(who) = who(&req) else { return next.run(req).await };
    // Whether a page came from here is for the signed-in person it is kept for only.
    let tell = !who.starts_with('-');
    let version = match state.db.page_version().await {
        Ok((pages, audit)) => (pages, audit, state.monitors.changes()),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the pages' version; rendering without the cache");
            return next.run(req).await;
        }
    };
    let path = req.uri().path_and_query().map_or_else(|| req.uri().path().to_string(), |p| p.as_str().to_string());
    let key = Key { path, who, version };
    if let Some(entry) = cache.pages.get(&key) {
        match &*entry {
            Entry::Page(page)
                if page.at.elapsed() < FRESH
                    || (page.at.elapsed() < STALE && page.refreshing.swap(true, Ordering::SeqCst)) =>
            {
                return mark(page.respond(), "hit", tell);
            }
            Entry::Pass(at) if at.elapsed() < FRESH => return mark(next.run(req).await, "pass", tell),
            // Old: this request renders it again (and if it is dropped half-way, the next one).
            old => {
                let _again = match old {
                    Entry::Page(page) => Some(Refreshing(&page.refreshing)),
                    Entry::Pass(_) => None,
                };
                let (response, entry) = render(req, next, cache.max_page, tell).await;
                cache.pages.insert(key, entry);
                return response;
            }
        }
    }
    match tokio::time::timeout(WAIT, cache.pages.get_value_or_guard_async(&key)).await {
        Ok(Ok(entry)) => match &*entry {
            Entry::Page(page) => mark(page.respond(), "hit", tell),
            Entry::Pass(_) => mark(next.run(req).await, "pass", tell),
        },
        Ok(Err(guard)) => {
            let (response, entry) = render(req, next, cache.max_page, tell).await;
            let _ = guard.insert(entry);
            response
        }
        // Another request's first render of this page takes long: this one renders its own.
        Err(_) => mark(next.run(req).await, "pass", tell),
    }
}

/// Lets another request refresh the page if this one ends without having done it.
struct Refreshing<'a>(&'a AtomicBool);

impl Drop for Refreshing<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

fn mark(mut response: Response, how: &'static str, tell: bool) -> Response {
    if tell {
        response.headers_mut().insert(CACHE_HEADER, HeaderValue::from_static(how));
    }
    response
}

/// Renders the page, and what to keep of it.
async fn render(req: Request, next: Next, max_page: usize, tell: bool) -> (Response, Arc<Entry>) {
    let response = next.run(req).await;
    let Some(nonce) = keepable(&response) else {
        return (mark(response, "pass", tell), pass_entry());
    };
    let (mut parts, body) = response.into_parts();
    let mut stream = body.into_data_stream();
    let mut chunks: Vec<Bytes> = Vec::new();
    let mut size = 0;
    while size <= max_page {
        match stream.next().await {
            Some(Ok(chunk)) => {
                size += chunk.len();
                chunks.push(chunk);
            }
            Some(Err(e)) => {
                tracing::error!(error = %e, "a page failed while it rendered");
                return (
                    (StatusCode::INTERNAL_SERVER_ERROR, "the page failed to render").into_response(),
                    pass_entry(),
                );
            }
            None => {
                let body = chunks.concat();
                let page = Page::new(parts.status, parts.headers, Bytes::from(body), nonce);
                let response = page.response(page.body.clone(), page.headers.clone());
                return (mark(response, "miss", tell), Arc::new(Entry::Page(page)));
            }
        }
    }
    // Too large to keep: what was read, then the rest as it comes.
    if tell {
        parts.headers.insert(CACHE_HEADER, HeaderValue::from_static("pass"));
    }
    let body = futures::stream::iter(chunks.into_iter().map(Ok::<_, axum::Error>)).chain(stream);
    (Response::from_parts(parts, Body::from_stream(body)), pass_entry())
}

fn pass_entry() -> Arc<Entry> {
    Arc::new(Entry::Pass(Instant::now()))
}

/// The nonce of a response worth keeping: a `200` HTML page that sets no cookie and whose policy
/// names its nonce.
fn keepable(response: &Response) -> Option<String> {
    let headers = response.headers();
    let html = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("text/html"));
    if response.status() != StatusCode::OK || !html || headers.contains_key(SET_COOKIE) {
        return None;
    }
    let policy = headers.get(CONTENT_SECURITY_POLICY)?.to_str().ok()?;
    policy_nonce(policy).map(str::to_string)
}

/// `'nonce-<value>'` in a Content-Security-Policy.
fn policy_nonce(policy: &str) -> Option<&str> {
    let at = policy.find("'nonce-")? + "'nonce-".len();
    let value = &policy[at..];
    let value = &value[..value.find('\'')?];
    (value.len() >= 16 && value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')).then_some(value)
}

impl Page {
    fn new(status: StatusCode, mut headers: HeaderMap, body: Bytes, nonce: String) -> Page {
        headers.remove(CONTENT_LENGTH);
        headers.remove(TRANSFER_ENCODING);
        let nonces = memchr::memmem::find_iter(&body, nonce.as_bytes()).collect();
        Page { at: Instant::now(), refreshing: AtomicBool::new(false), status, headers, body, nonce, nonces }
    }

    /// The kept page with a nonce of its own.
    fn respond(&self) -> Response {
        let fresh = leptos::nonce::Nonce::new().to_string();
        if fresh.len() != self.nonce.len() {
            // Leptos' nonces are all of one length; a change there must not garble pages.
            tracing::error!("a new nonce is not as long as the kept page's; not serving kept pages");
            return (StatusCode::SERVICE_UNAVAILABLE, "try again").into_response();
        }
        let mut body = bytes::BytesMut::from(&self.body[..]);
        for &at in &self.nonces {
            body[at..at + fresh.len()].copy_from_slice(fresh.as_bytes());
        }
        let mut headers = self.headers.clone();
        let policies: Vec<HeaderValue> = headers.get_all(CONTENT_SECURITY_POLICY).iter().cloned().collect();
        headers.remove(CONTENT_SECURITY_POLICY);
        for value in policies {
            // The policy named the nonce as text when the page was kept; the new one is as plain.
            let Some(v) = value.to_str().ok().and_then(|v| HeaderValue::from_str(&v.replace(&self.nonce, &fresh)).ok())
            else {
                return (StatusCode::INTERNAL_SERVER_ERROR, "the page's policy cannot be renewed").into_response();
            };
            headers.append(CONTENT_SECURITY_POLICY, v);
        }
        self.response(body.freeze(), headers)
    }

    fn response(&self, body: Bytes, headers: HeaderMap) -> Response {
        let mut response = Response::new(Body::from(body));
        *response.status_mut() = self.status;
        *response.headers_mut() = headers;
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_policy_names_its_nonce() {
        let policy = "default-src 'self'; script-src 'nonce-AbCdEfGhIjKlMnOpQrStUv' 'wasm-unsafe-eval'";
        assert_eq!(policy_nonce(policy), Some("AbCdEfGhIjKlMnOpQrStUv"));
        assert_eq!(policy_nonce("default-src 'none'"), None);
        assert_eq!(policy_nonce("script-src 'nonce-short'"), None, "not one of Leptos' nonces");
        assert_eq!(policy_nonce("script-src 'nonce-AbCdEfGhIjKlMnOpQrSt\"v'"), None);
    }

    #[test]
    fn a_kept_page_is_served_with_a_new_nonce_everywhere_the_old_one_stood() {
        let old = leptos::nonce::Nonce::new().to_string();
        let body = format!("<script nonce=\"{old}\">a</script><p>text</p><script nonce=\"{old}\">b</script>");
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
        headers.insert(
            CONTENT_SECURITY_POLICY,
            HeaderValue::from_str(&format!("script-src 'nonce-{old}'; style-src 'nonce-{old}'")).unwrap(),
        );
        headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
        let page = Page::new(StatusCode::OK, headers, Bytes::from(body.clone()), old.clone());
        assert_eq!(page.nonces.len(), 2);
        let (one, two) = (page.respond(), page.respond());
        let nonce_of =
            |r: &Response| policy_nonce(r.headers()[CONTENT_SECURITY_POLICY].to_str().unwrap()).unwrap().to_string();
        let (n1, n2) = (nonce_of(&one), nonce_of(&two));
        assert_ne!(n1, old);
        assert_ne!(n1, n2, "each response has its own nonce");
        assert!(!one.headers()[CONTENT_SECURITY_POLICY].to_str().unwrap().contains(&old));
        let text = futures::executor::block_on(axum::body::to_bytes(one.into_body(), usize::MAX)).unwrap();
        let text = String::from_utf8(text.to_vec()).unwrap();
        assert_eq!(text, body.replace(&old, &n1));
    }
}
