//! The operation registry: one handler per operation declared in `potluck_app::api`, reached
//! from server functions (through [`Dispatcher`]), from the REST API and from the streaming
//! endpoints alike. Registering takes a handler that receives the capability for the scope the
//! operation declares, so a handler cannot run without the authorization step; while it runs,
//! the audit log accepts only the actions its declaration names.

use crate::domain::audit;
use crate::domain::authz::{self, Cap, Resolve};
use crate::error::Result;
use crate::operations::ErrorResponse;
use crate::state::SharedState;
use axum::response::{IntoResponse, Response};
use potluck_app::error::ApiError;
use potluck_app::ops::{Op, OpInfo};
use potluck_app::ports::{Caller, Dispatch};
use std::any::Any;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, LazyLock};
use tracing::Instrument;

pub type Boxed = Box<dyn Any + Send>;
type ValueFuture = Pin<Box<dyn Future<Output = Result<Boxed, ApiError>> + Send>>;
type RawFuture = Pin<Box<dyn Future<Output = Response> + Send>>;

pub enum Run {
    /// Answers a value (server functions and `/api/v1`).
    Value(Arc<dyn Fn(SharedState, Caller, Boxed) -> ValueFuture + Send + Sync>),
    /// Answers with its own response (streams, downloads).
    Raw(Arc<dyn Fn(SharedState, Caller, Boxed) -> RawFuture + Send + Sync>),
}

pub struct Entry {
    pub info: OpInfo,
    pub run: Run,
    /// The input from a REST request's JSON body (merged with the path's parameters).
    pub from_json: fn(serde_json::Value) -> std::result::Result<Boxed, String>,
    /// The input from a query or form string (`a=1&options[b]=true`), as server functions send it.
    pub from_form: fn(&str) -> std::result::Result<Boxed, String>,
    /// The answer as JSON (`null` for operations that answer nothing).
    pub to_json: fn(Boxed) -> serde_json::Value,
}

#[derive(Default)]
pub struct Registry {
    entries: BTreeMap<&'static str, Entry>,
}

fn from_json<O: Op>(v: serde_json::Value) -> std::result::Result<Boxed, String> {
    serde_json::from_value::<O>(v).map(|o| Box::new(o) as Boxed).map_err(|e| e.to_string())
}

fn from_form<O: Op>(s: &str) -> std::result::Result<Boxed, String> {
    serde_qs::Config::new(5, false).deserialize_str::<O>(s).map(|o| Box::new(o) as Boxed).map_err(|e| e.to_string())
}

fn to_json<O: Op>(b: Boxed) -> serde_json::Value {
    match b.downcast::<O::Output>() {
        Ok(out) => serde_json::to_value(*out).unwrap_or(serde_json::Value::Null),
        Err(_) => serde_json::Value::Null,
    }
}

fn downcast<O: Op>(input: Boxed, caller: &Caller) -> Result<O, ApiError> {
    input.downcast::<O>().map(|b| *b).map_err(|_| {
        tracing::error!(request.id = %caller.request_id, operation = O::NAME, "input of the wrong type");
        ApiError::Internal { request_id: caller.request_id.clone() }
    })
}

/// The caller is told why; the log keeps who was refused what, with the request id.
fn refused<O: Op>(e: crate::error::Error, caller: &Caller) -> ApiError {
    let e = e.into_api(&caller.request_id);
    tracing::info!(request.id = %caller.request_id, operation = O::NAME, status = e.status(), "refused: {e}");
    e
}

/// The span an operation's handler runs in (inside the request's): what it is, what it acts on
/// and for whom. See docs/LOGGING.md.
fn operation_span<O: Op, S: Resolve>(cap: &Cap<S>) -> tracing::Span {
    tracing::info_span!(
        "operation",
        operation = O::NAME,
        resource = %cap.label(),
        user.id = cap.user_id().map(|u| u.0),
        token = cap.is_token(),
    )
}

impl Registry {
    fn insert<O: Op>(&mut self, run: Run) {
        let entry = Entry {
            info: OpInfo::of::<O>(),
            run,
            from_json: from_json::<O>,
            from_form: from_form::<O>,
            to_json: to_json::<O>,
        };
        if self.entries.insert(O::NAME, entry).is_some() {
            panic!("operation {} is registered twice", O::NAME);
        }
    }

    /// Registers the handler of `O`; it runs only after [`authz::authorize`] made its capability.
    pub fn op<O, F, Fut>(&mut self, handler: F)
    where
        O: Op,
        O::Scope: Resolve,
        F: Fn(SharedState, Cap<O::Scope>, O) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<O::Output>> + Send + 'static,
    {
        let handler = Arc::new(handler);
        let run = move |st: SharedState, caller: Caller, input: Boxed| -> ValueFuture {
            let handler = handler.clone();
            Box::pin(async move {
                let input = downcast::<O>(input, &caller)?;
                let cap = authz::authorize(&st, &caller, &input).await.map_err(|e| refused::<O>(e, &caller))?;
                let span = operation_span::<O, _>(&cap);
                let out = audit::declared(O::NAME, O::AUDIT, handler(st, cap, input))
                    .instrument(span)
                    .await
                    .map_err(|e| e.into_api(&caller.request_id))?;
                Ok(Box::new(out) as Boxed)
            })
        };
        self.insert::<O>(Run::Value(Arc::new(run)));
    }

    /// Registers a streaming endpoint's handler; it answers with its own response.
    pub fn raw<O, F, Fut>(&mut self, handler: F)
    where
        O: Op,
        O::Scope: Resolve,
        F: Fn(SharedState, Cap<O::Scope>, O) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Response>> + Send + 'static,
    {
        let handler = Arc::new(handler);
        let run = move |st: SharedState, caller: Caller, input: Boxed| -> RawFuture {
            let handler = handler.clone();
            Box::pin(async move {
                let input = match downcast::<O>(input, &caller) {
                    Ok(i) => i,
                    Err(e) => return ErrorResponse(e).into_response(),
                };
                let cap = match authz::authorize(&st, &caller, &input).await {
                    Ok(c) => c,
                    Err(e) => return ErrorResponse(refused::<O>(e, &caller)).into_response(),
                };
                let span = operation_span::<O, _>(&cap);
                match audit::declared(O::NAME, O::AUDIT, handler(st, cap, input)).instrument(span).await {
                    Ok(r) => r,
                    Err(e) => ErrorResponse(e.into_api(&caller.request_id)).into_response(),
                }
            })
        };
        self.insert::<O>(Run::Raw(Arc::new(run)));
    }

    pub fn get(&self, name: &str) -> Option<&Entry> {
        self.entries.get(name)
    }

    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.values()
    }

    /// Every declared operation has a handler, and every handler a declaration.
    pub fn check(&self) -> std::result::Result<(), String> {
        let declared: Vec<&str> = potluck_app::api::all_operations().iter().map(|i| i.name).collect();
        let missing: Vec<&&str> = declared.iter().filter(|n| !self.entries.contains_key(**n)).collect();
        let extra: Vec<&&str> = self.entries.keys().filter(|n| !declared.contains(n)).collect();
        if missing.is_empty() && extra.is_empty() {
            Ok(())
        } else {
            Err(format!("operations without a handler: {missing:?}; handlers without a declaration: {extra:?}"))
        }
    }
}

/// The registry, built once.
pub fn registry() -> &'static Registry {
    static REGISTRY: LazyLock<Registry> = LazyLock::new(super::handlers::register);
    &REGISTRY
}

/// Runs a value operation for a caller (server functions, the REST API).
pub async fn run(st: &SharedState, caller: &Caller, name: &str, input: Boxed) -> Result<Boxed, ApiError> {
    match registry().get(name).map(|e| &e.run) {
        Some(Run::Value(run)) => run(st.clone(), caller.clone(), input).await,
        _ => {
            tracing::error!(request.id = %caller.request_id, operation = name, "no such value operation");
            Err(ApiError::Internal { request_id: caller.request_id.clone() })
        }
    }
}

/// The port the pages' server functions call.
pub struct Dispatcher(pub SharedState);

#[async_trait::async_trait]
impl Dispatch for Dispatcher {
    async fn dispatch(&self, caller: &Caller, operation: &'static str, input: Boxed) -> Result<Boxed, ApiError> {
        run(&self.0, caller, operation, input).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_declared_operation_has_a_handler() {
        registry().check().unwrap_or_else(|e| panic!("{e}"));
    }

    #[test]
    fn every_permission_is_needed_somewhere() {
        use potluck_app::model::Permission;
        use potluck_app::ops::Need;
        // ViewRecipes, MaintainRecipes and ReviewReleases are also checked in recipe scopes
        // (authz::recipe_access); every permission is some operation's declared need.
        let declared: Vec<Permission> = registry()
            .entries()
            .filter_map(|e| match e.info.need {
                Need::Permission(p) | Need::Anywhere(p) => Some(p),
                _ => None,
            })
            .collect();
        for p in Permission::ALL {
            let in_recipe_scope = matches!(
                p,
                Permission::ViewRecipes
                    | Permission::MaintainRecipes
                    | Permission::ReviewReleases
                    | Permission::ViewAudit
            );
            assert!(in_recipe_scope || declared.contains(&p), "no operation needs {p:?}");
        }
    }

    #[test]
    fn routes_are_unique() {
        let mut seen = std::collections::BTreeSet::new();
        for e in registry().entries() {
            if let Some(h) = e.info.http {
                assert!(seen.insert((h.method, h.path)), "{} {} twice", h.method, h.path);
            }
        }
    }
}
