//! Identity providers: adding one (its discovery document is checked first), which collectives
//! it serves, and the cached, validated metadata every sign-in uses.

use crate::adapters::db::now_ms;
use crate::domain::audit::{self, AuditAction, Event};
use crate::domain::authz::{find_collective, Cap};
use crate::error::Result;
use crate::state::AppState;
use openidconnect::{DiscoveryError, IssuerUrl, ProviderMetadataWithLogout};
use potluck_app::api::{split_list, AddProvider, RemoveProvider, SetProviderCollectives};
use potluck_app::error::ApiError;
use potluck_app::model::CollectiveId;
use potluck_app::model::ProviderId;
use potluck_app::model::{ProviderAdmin, ProviderPublic, ProvidersOverview};
use potluck_app::ops::scope;
use serde_json::json;
use sqlx::Row;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::sync::RwLock;

/// How long discovered metadata (endpoints, signing keys) is reused before it is fetched again.
const METADATA_TTL: Duration = Duration::from_secs(600);

/// A provider as stored, with its secret still sealed.
#[derive(Clone)]
pub struct ProviderRow {
    pub id: ProviderId,
    pub display_name: String,
    pub issuer_url: String,
    pub client_id: String,
    pub client_secret_enc: Vec<u8>,
    pub groups_claim: String,
    pub end_session_endpoint: Option<String>,
    pub created_at: i64,
}

impl ProviderRow {
    fn from_row(r: &sqlx::any::AnyRow) -> Result<ProviderRow> {
        Ok(ProviderRow {
            id: r.try_get("id")?,
            display_name: r.try_get("display_name")?,
            issuer_url: r.try_get("issuer_url")?,
            client_id: r.try_get("client_id")?,
            client_secret_enc: r.try_get("client_secret_enc")?,
            groups_claim: r.try_get("groups_claim")?,
            end_session_endpoint: r.try_get("end_session_endpoint")?,
            created_at: r.try_get("created_at")?,
        })
    }
}

const PROVIDER_COLUMNS: &str =
    "id, display_name, issuer_url, client_id, client_secret_enc, groups_claim, end_session_endpoint, created_at";

pub async fn find_provider(st: &AppState, id: ProviderId) -> Result<Option<ProviderRow>> {
    let row = sqlx::query(&format!("SELECT {PROVIDER_COLUMNS} FROM identity_providers WHERE id = $1"))
        .bind(id)
        .fetch_optional(st.db.pool())
        .await?;
    row.as_ref().map(ProviderRow::from_row).transpose()
}

/// Validated provider metadata, fetched on first use and kept for [`METADATA_TTL`].
#[derive(Default)]
pub struct MetadataCache {
    entries: RwLock<HashMap<ProviderId, (Instant, ProviderMetadataWithLogout)>>,
}

impl MetadataCache {
    pub async fn get(&self, st: &AppState, provider: &ProviderRow) -> Result<ProviderMetadataWithLogout, ApiError> {
        if let Some((at, meta)) = self.entries.read().await.get(&provider.id) {
            if at.elapsed() < METADATA_TTL {
                return Ok(meta.clone());
            }
        }
        let meta = discover(st, &provider.issuer_url).await.map_err(|e| {
            ApiError::unavailable(format!("identity provider {} cannot be used right now: {e}", provider.display_name))
        })?;
        self.entries.write().await.insert(provider.id, (Instant::now(), meta.clone()));
        Ok(meta)
    }

    pub async fn forget(&self, provider_id: ProviderId) {
        self.entries.write().await.remove(&provider_id);
    }
}

/// Fetches and validates the issuer's discovery document and signing keys, with an error a
/// person can act on.
pub async fn discover(st: &AppState, issuer: &str) -> std::result::Result<ProviderMetadataWithLogout, String> {
    let issuer_url = IssuerUrl::new(issuer.to_string()).map_err(|e| format!("{issuer:?} is not a URL: {e}"))?;
    ProviderMetadataWithLogout::discover_async(issuer_url, &st.http).await.map_err(|e| match e {
        DiscoveryError::Request(e) => {
            format!("cannot reach {issuer}/.well-known/openid-configuration: {}", error_chain(&e))
        }
        DiscoveryError::Response(status, _, _) => {
            format!(
                "{issuer}/.well-known/openid-configuration answered HTTP {status}: is this an OpenID Connect issuer?"
            )
        }
        DiscoveryError::Parse(e) => {
            format!("the discovery document of {issuer} is not valid OpenID Connect metadata: {e}")
        }
        DiscoveryError::Validation(e) => format!("the discovery document of {issuer} is wrong: {e}"),
        DiscoveryError::UrlParse(e) => format!("{issuer:?} is not a valid issuer URL: {e}"),
        other => format!("discovery of {issuer} failed: {other}"),
    })
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

async fn collectives_of(st: &AppState, provider_id: ProviderId) -> Result<Vec<String>> {
    let rows = sqlx::query(
        "SELECT c.slug FROM provider_collectives pc JOIN collectives c ON c.id = pc.collective_id \
         WHERE pc.provider_id = $1 ORDER BY c.slug",
    )
    .bind(provider_id)
    .fetch_all(st.db.pool())
    .await?;
    rows.iter().map(|r| Ok(r.try_get("slug")?)).collect()
}

async fn to_admin(st: &AppState, p: &ProviderRow) -> Result<ProviderAdmin> {
    Ok(ProviderAdmin {
        id: p.id,
        display_name: p.display_name.clone(),
        issuer_url: p.issuer_url.clone(),
        client_id: p.client_id.clone(),
        groups_claim: p.groups_claim.clone(),
        collectives: collectives_of(st, p.id).await?,
        end_session_supported: p.end_session_endpoint.is_some(),
        created_at: p.created_at,
    })
}

pub async fn public_providers(st: &AppState) -> Result<Vec<ProviderPublic>> {
    let rows = sqlx::query("SELECT id, display_name FROM identity_providers ORDER BY display_name, id")
        .fetch_all(st.db.pool())
        .await?;
    rows.iter().map(|r| Ok(ProviderPublic { id: r.try_get("id")?, display_name: r.try_get("display_name")? })).collect()
}

pub async fn list_providers(st: &AppState, _cap: &Cap<scope::Federation>) -> Result<ProvidersOverview> {
    let rows = sqlx::query(&format!("SELECT {PROVIDER_COLUMNS} FROM identity_providers ORDER BY display_name, id"))
        .fetch_all(st.db.pool())
        .await?;
    let mut providers = Vec::new();
    for r in &rows {
        providers.push(to_admin(st, &ProviderRow::from_row(r)?).await?);
    }
    Ok(ProvidersOverview { redirect_uri: st.redirect_uri(), providers })
}

/// Resolves slugs to collective ids, with an error naming any that does not exist.
async fn collective_ids(st: &AppState, slugs: &[String]) -> Result<Vec<(CollectiveId, String)>> {
    let mut out = Vec::new();
    for slug in slugs {
        let c = find_collective(&st.db, slug)
            .await?
            .ok_or_else(|| ApiError::invalid("collectives", format!("there is no collective {slug:?}")))?;
        out.push((c.id, c.slug));
    }
    out.sort();
    out.dedup();
    Ok(out)
}

pub async fn add_provider(st: &AppState, cap: &Cap<scope::Federation>, input: AddProvider) -> Result<ProviderAdmin> {
    let display_name = input.display_name.trim().to_string();
    let issuer = input.issuer_url.trim().trim_end_matches('/').to_string();
    let client_id = input.client_id.trim().to_string();
    let groups_claim = Some(input.groups_claim.trim()).filter(|g| !g.is_empty()).unwrap_or("groups").to_string();
    let mut problems = Vec::new();
    if display_name.is_empty() || display_name.len() > 100 {
        problems.push(("display_name", "give a name of 1 to 100 characters".to_string()));
    }
    match url::Url::parse(&issuer) {
        Ok(u) if u.scheme() == "https" => {}
        Ok(u) if u.scheme() == "http" && matches!(u.host_str(), Some("127.0.0.1" | "localhost" | "[::1]")) => {}
        Ok(_) => problems.push(("issuer_url", "the issuer must be an https URL (http only on loopback)".into())),
        Err(e) => problems.push(("issuer_url", format!("not a URL: {e}"))),
    }
    if client_id.is_empty() {
        problems.push(("client_id", "required".into()));
    }
    if input.client_secret.is_empty() {
        problems.push(("client_secret", "required".into()));
    }
    if !problems.is_empty() {
        return Err(ApiError::Validation {
            fields: problems
                .into_iter()
                .map(|(f, m)| potluck_app::error::FieldError { field: f.into(), message: m })
                .collect(),
        }
        .into());
    }
    let collectives = collective_ids(st, &split_list(&input.collectives)).await?;
    let meta = discover(st, &issuer).await.map_err(|e| ApiError::invalid("issuer_url", e))?;
    let end_session = meta.additional_metadata().end_session_endpoint.as_ref().map(|u| u.url().to_string());
    let sealed = st.secrets.seal(&input.client_secret);

    let mut tx = audit::begin(&st.db).await?;
    let id: ProviderId = sqlx::query(
        "INSERT INTO identity_providers (display_name, issuer_url, client_id, client_secret_enc, groups_claim, \
         end_session_endpoint, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .bind(&display_name)
    .bind(&issuer)
    .bind(&client_id)
    .bind(sealed)
    .bind(&groups_claim)
    .bind(&end_session)
    .bind(now_ms())
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| {
        if crate::adapters::db::is_unique_violation(&e) {
            ApiError::conflict(format!("an identity provider with issuer {issuer} already exists")).into()
        } else {
            crate::error::Error::from(e)
        }
    })?
    .try_get("id")?;
    for (cid, _) in &collectives {
        sqlx::query("INSERT INTO provider_collectives (provider_id, collective_id) VALUES ($1, $2)")
            .bind(id)
            .bind(cid)
            .execute(&mut *tx)
            .await?;
    }
    let event =
        Event::new(AuditAction::IdentityProviderAdd, format!("identity provider {display_name}")).details(json!({
            "provider_id": id,
            "issuer": issuer,
            "client_id": client_id,
            "groups_claim": groups_claim,
            "collectives": collectives.iter().map(|(_, s)| s).collect::<Vec<_>>(),
        }));
    tx.record(cap.origin(), event).await?;
    tx.commit().await?;
    st.oidc_metadata.entries.write().await.insert(id, (Instant::now(), meta));
    let row = find_provider(st, id).await?.ok_or_else(|| ApiError::not_found("identity provider"))?;
    to_admin(st, &row).await
}

pub async fn set_provider_collectives(
    st: &AppState,
    cap: &Cap<scope::Federation>,
    input: SetProviderCollectives,
) -> Result<ProviderAdmin> {
    let provider_id = input.provider_id;
    let slugs = split_list(&input.collectives);
    let provider = find_provider(st, provider_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("identity provider {provider_id}")))?;
    let collectives = collective_ids(st, &slugs).await?;
    let mut tx = audit::begin(&st.db).await?;
    sqlx::query("DELETE FROM provider_collectives WHERE provider_id = $1").bind(provider_id).execute(&mut *tx).await?;
    for (cid, _) in &collectives {
        sqlx::query("INSERT INTO provider_collectives (provider_id, collective_id) VALUES ($1, $2)")
            .bind(provider_id)
            .bind(cid)
            .execute(&mut *tx)
            .await?;
    }
    // Roles its groups gave in collectives it no longer serves end now, not at the next sign-in.
    crate::domain::identity::login::revoke_unmapped(&mut tx, provider_id).await?;
    let event =
        Event::new(AuditAction::IdentityProviderSetCollectives, format!("identity provider {}", provider.display_name))
            .details(json!({
                "provider_id": provider_id,
                "collectives": collectives.iter().map(|(_, s)| s).collect::<Vec<_>>(),
            }));
    tx.record(cap.origin(), event).await?;
    tx.commit().await?;
    to_admin(st, &provider).await
}

pub async fn remove_provider(st: &AppState, cap: &Cap<scope::Federation>, input: RemoveProvider) -> Result<()> {
    let provider_id = input.provider_id;
    let provider = find_provider(st, provider_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("identity provider {provider_id}")))?;
    let mut tx = audit::begin(&st.db).await?;
    // Sessions started through it end; the accounts stay (they may have other sign-ins).
    sqlx::query("DELETE FROM sessions WHERE provider_id = $1").bind(provider_id).execute(&mut *tx).await?;
    sqlx::query("DELETE FROM memberships WHERE source = 'idp' AND provider_id = $1")
        .bind(provider_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM identity_providers WHERE id = $1").bind(provider_id).execute(&mut *tx).await?;
    let event = Event::new(AuditAction::IdentityProviderRemove, format!("identity provider {}", provider.display_name))
        .details(json!({ "provider_id": provider_id, "issuer": provider.issuer_url }));
    tx.record(cap.origin(), event).await?;
    tx.commit().await?;
    st.oidc_metadata.forget(provider_id).await;
    Ok(())
}
