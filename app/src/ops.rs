//! Every operation Potluck offers is declared once, in `api.rs` (server functions) or
//! `raw.rs` (streaming HTTP endpoints), as a type implementing [`Op`]: its name, what it acts on
//! ([`scope`]), what the caller needs there ([`Need`]), the audit actions a success may write,
//! and its REST route. The server registers one handler per operation; the handler receives a
//! capability that only the authorization step can create, for exactly the scope declared here.
//! The authorization matrix test walks the same declarations.

use crate::actions::AuditAction;
use crate::model::Permission;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// What an operation acts on, and the key in its input that names it.
pub mod scope {
    /// A kind of resource. `Key` is what the input names it by.
    pub trait Scope: Send + Sync + 'static {
        const NAME: &'static str;
        type Key<'a>;
    }

    macro_rules! scopes {
        ($($(#[$doc:meta])* $name:ident = $label:literal : $key:ty;)*) => {
            $(
                $(#[$doc])*
                #[derive(Debug, Clone, Copy)]
                pub struct $name;
                impl Scope for $name {
                    const NAME: &'static str = $label;
                    type Key<'a> = $key;
                }
            )*
        };
    }

    scopes! {
        /// Anyone, signed in or not.
        Public = "public": ();
        /// Any signed-in principal: a browser session or an API token.
        SignedIn = "signed_in": ();
        /// The whole federation: only federation admins (never a token).
        Federation = "federation": ();
        /// A collective, by slug.
        Collective = "collective": &'a str;
        /// A server of a collective: (slug, server name).
        Server = "server": (&'a str, &'a str);
        /// An app of a collective: (slug, domain).
        App = "app": (&'a str, &'a str);
        /// A deploy job, by id (its app's collective decides).
        Job = "job": crate::model::JobId;
        /// A recipe, by name (federation-wide; private ones only for who may see them).
        Recipe = "recipe": &'a str;
        /// A release proposal, by id (its recipe decides).
        Proposal = "proposal": crate::model::ProposalId;
    }
}

/// What the caller needs on the operation's resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Nothing beyond the scope: anyone (`Public`), a principal (`SignedIn`), a federation admin
    /// (`Federation`).
    Nothing,
    /// This permission in the resource's collective (for a token: capped by its role).
    Permission(Permission),
    /// This permission in at least one collective (signed-in scopes: registering a recipe needs
    /// a maintainer somewhere, reading the audit log an admin somewhere).
    Anywhere(Permission),
    /// The recipe is visible to the caller: public, or maintained or run by their collectives.
    SeeRecipe,
    /// The caller maintains the recipe (in person, or through a maintaining collective).
    MaintainRecipe,
    /// The caller reviews the recipe's releases (its maintainers).
    ReviewRelease,
    /// A federation admin, acting on one collective's resource.
    FederationAdmin,
}

/// An operation's REST route (paths are under `/api/v1` unless the operation is raw).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Http {
    pub method: &'static str,
    pub path: &'static str,
}

impl Http {
    pub const fn get(path: &'static str) -> Option<Http> {
        Some(Http { method: "GET", path })
    }
    pub const fn post(path: &'static str) -> Option<Http> {
        Some(Http { method: "POST", path })
    }
    pub const fn put(path: &'static str) -> Option<Http> {
        Some(Http { method: "PUT", path })
    }
    pub const fn delete(path: &'static str) -> Option<Http> {
        Some(Http { method: "DELETE", path })
    }
}

/// An operation: its input is the implementing type.
pub trait Op: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {
    /// Unique; the server function's endpoint (`/api/fn/<name>`).
    const NAME: &'static str;
    type Scope: scope::Scope;
    const NEED: Need;
    /// Browser sessions only: API tokens are refused (403).
    const SESSION_ONLY: bool;
    /// The audit actions a success may write; empty for reads.
    const AUDIT: &'static [AuditAction];
    const HTTP: Option<Http>;
    /// Streams its answer itself (an HTTP endpoint outside `/api/v1`, not a server function).
    const RAW: bool = false;
    type Output: Serialize + DeserializeOwned + Send + 'static;
    /// The resource the input names.
    fn key(&self) -> <Self::Scope as scope::Scope>::Key<'_>;
    /// The request's and the answer's JSON schemas, for the OpenAPI document (none for an
    /// endpoint that answers with its own stream or file).
    #[cfg(feature = "ssr")]
    fn schemas() -> OpSchemas {
        OpSchemas::default()
    }
}

/// An operation's schemas: its request (an object of its inputs), its answer, and the named
/// schemas they refer to (`#/components/schemas/…`).
#[cfg(feature = "ssr")]
#[derive(Default)]
pub struct OpSchemas {
    pub request: Option<utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>>,
    pub response: Option<utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>>,
    pub components: Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>)>,
}

/// What the registry and the matrix test know of an operation without its types.
#[derive(Debug, Clone, Copy)]
pub struct OpInfo {
    pub name: &'static str,
    pub scope: &'static str,
    pub need: Need,
    pub session_only: bool,
    pub audit: &'static [AuditAction],
    pub http: Option<Http>,
    pub raw: bool,
    /// The operation's schemas (see [`Op::schemas`]).
    #[cfg(feature = "ssr")]
    pub schemas: fn() -> OpSchemas,
}

impl OpInfo {
    pub fn of<O: Op>() -> OpInfo {
        OpInfo {
            name: O::NAME,
            scope: <O::Scope as scope::Scope>::NAME,
            need: O::NEED,
            session_only: O::SESSION_ONLY,
            audit: O::AUDIT,
            http: O::HTTP,
            raw: O::RAW,
            #[cfg(feature = "ssr")]
            schemas: O::schemas,
        }
    }

    /// Whether a success writes to the audit log.
    pub fn writes(&self) -> bool {
        !self.audit.is_empty()
    }
}
