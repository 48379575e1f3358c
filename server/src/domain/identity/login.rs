//! The OpenID Connect authorization-code flow with PKCE, state and nonce, against any of the
//! configured issuers.
//!
//! Each attempt is a `login_states` row keyed by the hash of its `state`, bound to the provider
//! it was started with and to the browser that started it (a random value in a short-lived
//! cookie). The callback consumes the row once; a state from another provider, another browser,
//! or none at all is refused, and an `iss` parameter naming another issuer is a mix-up.

use super::providers::{find_provider, ProviderRow};
use super::sessions;
use crate::adapters::crypto::{random_token, token_hash};
use crate::adapters::db::now_ms;
use crate::domain::audit::{self, Actor, AuditAction, Event, Origin};
use crate::error::{Error, Result};
use crate::state::AppState;
use openidconnect::core::{
    CoreAuthPrompt, CoreAuthenticationFlow, CoreClient, CoreGenderClaim, CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
};
use openidconnect::{
    AdditionalClaims, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet, EndpointNotSet,
    EndpointSet, IdToken, Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RequestTokenError, Scope,
    TokenResponse,
};
use potluck_app::error::ApiError;
use potluck_app::model::Role;
use potluck_app::model::{CollectiveId, ProviderId, UserId};
use potluck_app::ports::{Caller, Principal};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sqlx::Row;
use std::collections::{BTreeMap, HashMap};

/// A sign-in attempt is valid for this long.
const ATTEMPT_TTL_MS: i64 = 10 * 60 * 1000;

/// Claims beyond the standard ones (the groups claim has a per-provider name).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ExtraClaims {
    #[serde(flatten)]
    rest: HashMap<String, Value>,
}
impl AdditionalClaims for ExtraClaims {}

/// A client built from discovered metadata: the token and userinfo endpoints may be absent.
type OidcClient =
    CoreClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointMaybeSet, EndpointMaybeSet>;

type FullIdToken = IdToken<ExtraClaims, CoreGenderClaim, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Sign in (or create an account).
    Login,
    /// Attach this provider's identity to the signed-in account.
    Link,
}

impl Mode {
    fn as_str(self) -> &'static str {
        match self {
            Mode::Login => "login",
            Mode::Link => "link",
        }
    }
}

pub struct Started {
    /// Where to send the browser (the provider's authorization endpoint).
    pub authorize_url: String,
    /// Goes into the short-lived login cookie; the callback must come back with it.
    pub browser_token: String,
}

/// Only same-site paths are accepted as a place to return to after sign-in.
/// Where to go after signing in: a path on this site, normalized as a browser would read it
/// (browsers drop tabs and newlines and treat `\\` as `/`, so `/%09/evil.example` or `/\tevil`
/// would lead off-site), else `/`.
pub fn safe_return_to(return_to: Option<&str>) -> String {
    let Some(raw) = return_to else { return "/".into() };
    if raw.len() > 512 || !raw.starts_with('/') {
        return "/".into();
    }
    // Decode once to see what the browser will see; anything that is not plain is refused.
    let decoded: String = url::form_urlencoded::parse(format!("p={}", raw.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let suspicious = |s: &str| s.chars().any(|c| c.is_control() || c == '\\') || s.starts_with("//");
    if suspicious(raw) || suspicious(&decoded) {
        return "/".into();
    }
    const BASE: &str = "http://potluck.invalid";
    match url::Url::parse(BASE).and_then(|b| b.join(raw)) {
        Ok(u) if u.origin() == url::Url::parse(BASE).map(|b| b.origin()).unwrap_or_else(|_| u.origin()) => {
            let mut out = u.path().to_string();
            if let Some(q) = u.query() {
                out.push('?');
                out.push_str(q);
            }
            out
        }
        _ => "/".into(),
    }
}

async fn client_for(st: &AppState, provider: &ProviderRow) -> Result<(OidcClient, Vec<String>), ApiError> {
    let meta = st.oidc_metadata.get(st, provider).await?;
    let secret = st.secrets.open(&provider.client_secret_enc).map_err(|e| {
        tracing::error!(provider.id = provider.id.0, error = %e, "client secret cannot be decrypted");
        ApiError::unavailable(format!("identity provider {} is misconfigured: {e}", provider.display_name))
    })?;
    let scopes_supported: Vec<String> =
        meta.scopes_supported().map(|s| s.iter().map(|s| s.to_string()).collect()).unwrap_or_default();
    let redirect =
        RedirectUrl::new(st.redirect_uri()).map_err(|e| ApiError::unavailable(format!("public_url: {e}")))?;
    let client = CoreClient::from_provider_metadata(
        meta,
        ClientId::new(provider.client_id.clone()),
        Some(ClientSecret::new(secret)),
    )
    .set_redirect_uri(redirect);
    Ok((client, scopes_supported))
}

pub async fn start(
    st: &AppState,
    caller: &Caller,
    provider_id: ProviderId,
    mode: Mode,
    return_to: Option<&str>,
) -> Result<Started> {
    let provider = find_provider(st, provider_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("identity provider {provider_id}")))?;
    let link_user_id = match (mode, &caller.principal) {
        (Mode::Link, Principal::User(u)) => Some(u.user_id),
        (Mode::Link, _) => return Err(ApiError::Unauthenticated.into()),
        (Mode::Login, _) => None,
    };
    let (client, scopes_supported) = client_for(st, &provider).await?;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = client
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("email".into()))
        .set_pkce_challenge(challenge);
    // Providers that publish the groups claim as a scope (Dex, oidc-provider…) only send it
    // when asked; others send it always or through their own configuration.
    if scopes_supported.iter().any(|s| s == &provider.groups_claim) {
        request = request.add_scope(Scope::new(provider.groups_claim.clone()));
    }
    if mode == Mode::Link {
        // Ask for the account to link, even when the browser is signed in at the provider.
        request = request.add_prompt(CoreAuthPrompt::Login);
    }
    let (url, state, nonce) = request.url();
    let browser_token = random_token("");
    let now = now_ms();
    sqlx::query("DELETE FROM login_states WHERE created_at < $1")
        .bind(now - ATTEMPT_TTL_MS)
        .execute(st.db.pool())
        .await?;
    sqlx::query(
        "INSERT INTO login_states (state_hash, provider_id, browser_hash, pkce_verifier, nonce, mode, link_user_id, \
         return_to, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(token_hash(state.secret()))
    .bind(provider.id)
    .bind(token_hash(&browser_token))
    .bind(verifier.secret())
    .bind(nonce.secret())
    .bind(mode.as_str())
    .bind(link_user_id)
    .bind(safe_return_to(return_to))
    .bind(now)
    .execute(st.db.pool())
    .await?;
    Ok(Started { authorize_url: url.to_string(), browser_token })
}

/// What the provider sends back to the redirect URI.
#[derive(Debug, Default, Deserialize)]
pub struct Callback {
    pub code: Option<String>,
    pub state: Option<String>,
    pub iss: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

pub struct Finished {
    pub session_token: String,
    pub return_to: String,
}

/// Why a sign-in failed, said to the person on the sign-in page.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Other(#[from] Error),
}

impl From<sqlx::Error> for LoginError {
    fn from(e: sqlx::Error) -> Self {
        LoginError::Other(e.into())
    }
}

fn refused(msg: impl Into<String>) -> LoginError {
    LoginError::Refused(msg.into())
}

pub async fn finish(
    st: &AppState,
    caller: &Caller,
    cb: Callback,
    browser_token: Option<&str>,
) -> Result<Finished, LoginError> {
    let state =
        cb.state.as_deref().filter(|s| !s.is_empty()).ok_or_else(|| refused("the provider's answer has no state"))?;
    let row = sqlx::query(
        "DELETE FROM login_states WHERE state_hash = $1 RETURNING provider_id, browser_hash, pkce_verifier, nonce, \
         mode, link_user_id, return_to, created_at",
    )
    .bind(token_hash(state))
    .fetch_optional(st.db.pool())
    .await?
    .ok_or_else(|| refused("unknown or already used sign-in attempt (state); start again"))?;
    let provider_id: ProviderId = row.try_get("provider_id")?;
    let browser_hash: String = row.try_get("browser_hash")?;
    let created_at: i64 = row.try_get("created_at")?;
    let mode = if row.try_get::<String, _>("mode")? == "link" { Mode::Link } else { Mode::Login };
    let link_user_id: Option<UserId> = row.try_get("link_user_id")?;
    let return_to: String = row.try_get("return_to")?;
    if now_ms() - created_at > ATTEMPT_TTL_MS {
        return Err(refused("the sign-in attempt expired; start again"));
    }
    if browser_token.map(token_hash).as_deref() != Some(browser_hash.as_str()) {
        return Err(refused("this sign-in was started in another browser (or its cookie was lost); start again"));
    }
    if let Some(error) = cb.error {
        let why = cb.error_description.map(|d| format!("{error}: {d}")).unwrap_or(error);
        return Err(refused(format!("the identity provider refused: {why}")));
    }
    let code = cb.code.filter(|c| !c.is_empty()).ok_or_else(|| refused("the provider's answer has no code"))?;
    let provider = find_provider(st, provider_id).await?.ok_or_else(|| refused("the identity provider was removed"))?;
    if let Some(iss) = cb.iss.as_deref() {
        if iss.trim_end_matches('/') != provider.issuer_url.trim_end_matches('/') {
            return Err(refused(format!(
                "issuer mix-up: the answer came from {iss}, but the sign-in was started with {}",
                provider.issuer_url
            )));
        }
    }
    let (client, _) = client_for(st, &provider).await.map_err(|e| refused(e.to_string()))?;
    let verifier: String = row.try_get("pkce_verifier")?;
    let nonce: String = row.try_get("nonce")?;
    let response = client
        .exchange_code(AuthorizationCode::new(code))
        .map_err(|e| refused(format!("the provider has no token endpoint: {e}")))?
        .set_pkce_verifier(PkceCodeVerifier::new(verifier))
        .request_async(&st.http)
        .await
        .map_err(|e| match e {
            RequestTokenError::ServerResponse(r) => refused(format!(
                "the identity provider rejected the sign-in: {}{}",
                r.error(),
                r.error_description().map(|d| format!(" ({d})")).unwrap_or_default()
            )),
            other => refused(format!("cannot redeem the code at the identity provider: {other}")),
        })?;
    let raw = response.id_token().ok_or_else(|| refused("the provider sent no ID token"))?.to_string();
    let id_token: FullIdToken = raw.parse().map_err(|e| refused(format!("the ID token cannot be read: {e}")))?;
    let claims = id_token
        .claims(&client.id_token_verifier(), &Nonce::new(nonce))
        .map_err(|e| refused(format!("the ID token is not valid: {e}")))?
        .clone();

    let subject = claims.subject().to_string();
    let email = claims.email().map(|e| e.to_string());
    let name = claims
        .name()
        .and_then(|n| n.get(None))
        .map(|n| n.to_string())
        .or_else(|| claims.preferred_username().map(|u| u.to_string()))
        .or_else(|| email.clone())
        .unwrap_or_else(|| subject.clone());
    let groups = groups_from(claims.additional_claims().rest.get(&provider.groups_claim));

    let mut tx = audit::begin(&st.db).await?;
    let existing: Option<UserId> =
        sqlx::query("SELECT user_id FROM identities WHERE provider_id = $1 AND subject = $2")
            .bind(provider.id)
            .bind(&subject)
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| r.try_get("user_id"))
            .transpose()?;
    let now = now_ms();
    let (user_id, action) = match (mode, existing, link_user_id) {
        (Mode::Login, Some(uid), _) => (uid, AuditAction::AuthLogin),
        (Mode::Login, None, _) => {
            let uid: UserId = sqlx::query(
                "INSERT INTO users (display_name, email, is_federation_admin, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
            )
            .bind(&name)
            .bind(&email)
            .bind(0_i64)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?
            .try_get("id")?;
            (uid, AuditAction::AuthLogin)
        }
        (Mode::Link, Some(uid), Some(me)) if uid == me => (me, AuditAction::AuthLink),
        (Mode::Link, Some(_), _) => {
            return Err(refused(
                "that identity already belongs to another account; a federation admin can link the two accounts",
            ))
        }
        (Mode::Link, None, Some(me)) => {
            let signed_in_as = match &caller.principal {
                Principal::User(u) => Some(u.user_id),
                _ => None,
            };
            if signed_in_as != Some(me) {
                return Err(refused("linking needs the same signed-in session that started it"));
            }
            (me, AuditAction::AuthLink)
        }
        (Mode::Link, None, None) => return Err(refused("linking needs a signed-in account")),
    };
    sqlx::query(
        "INSERT INTO identities (provider_id, subject, user_id, email, name, groups, last_login_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (provider_id, subject) DO UPDATE SET email = $4, name = $5, groups = $6, last_login_at = $7",
    )
    .bind(provider.id)
    .bind(&subject)
    .bind(user_id)
    .bind(&email)
    .bind(&name)
    .bind(serde_json::to_string(&groups).unwrap_or_else(|_| "[]".into()))
    .bind(now)
    .execute(&mut *tx)
    .await?;
    let user_name: String = sqlx::query("UPDATE users SET last_login_at = $1 WHERE id = $2 RETURNING display_name")
        .bind(now)
        .bind(user_id)
        .fetch_one(&mut *tx)
        .await?
        .try_get("display_name")?;
    let roles = apply_group_mappings(&mut tx, provider.id, user_id, &groups).await?;
    let session_token = sessions::create(st, &mut tx, user_id, Some(provider.id)).await?;
    let origin = Origin::as_actor(caller, Actor::user(user_id, &user_name));
    let event = Event::new(action, format!("user {user_name}")).details(json!({
        "provider_id": provider.id,
        "provider": provider.display_name,
        "subject": subject,
        "groups": groups,
        "roles_from_groups": roles,
    }));
    tx.record(&origin, event).await?;
    tx.commit().await?;
    Ok(Finished { session_token, return_to })
}

/// The groups claim as a list, whether the provider sends an array or a single string.
fn groups_from(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::Array(items)) => items.iter().filter_map(|v| v.as_str().map(String::from)).collect(),
        Some(Value::String(s)) => s.split([',', ' ']).filter(|s| !s.is_empty()).map(String::from).collect(),
        _ => Vec::new(),
    }
}

/// The role each collective's mappings of `provider_id` give someone in `groups`.
async fn mapped_roles(
    tx: &mut sqlx::AnyConnection,
    provider_id: ProviderId,
    groups: &[String],
) -> Result<BTreeMap<(CollectiveId, String), Role>> {
    let rows = sqlx::query(
        "SELECT gm.collective_id, c.slug, gm.claim_value, gm.role FROM group_mappings gm \
         JOIN collectives c ON c.id = gm.collective_id \
         JOIN provider_collectives pc ON pc.provider_id = gm.provider_id AND pc.collective_id = gm.collective_id \
         WHERE gm.provider_id = $1",
    )
    .bind(provider_id)
    .fetch_all(&mut *tx)
    .await?;
    let mut best: BTreeMap<(CollectiveId, String), Role> = BTreeMap::new();
    for r in &rows {
        let value: String = r.try_get("claim_value")?;
        if !groups.iter().any(|g| g == &value) {
            continue;
        }
        let role_text: String = r.try_get("role")?;
        let Some(role) = Role::parse(&role_text) else { continue };
        let key = (r.try_get::<CollectiveId, _>("collective_id")?, r.try_get::<String, _>("slug")?);
        let entry = best.entry(key).or_insert(role);
        *entry = (*entry).max(role);
    }
    Ok(best)
}

/// Replaces the roles this provider's groups give `user_id` with what the mappings say now.
/// Returns `collective slug → role`.
pub async fn apply_group_mappings(
    tx: &mut sqlx::AnyConnection,
    provider_id: ProviderId,
    user_id: UserId,
    groups: &[String],
) -> Result<BTreeMap<String, Role>> {
    let best = mapped_roles(tx, provider_id, groups).await?;
    sqlx::query("DELETE FROM memberships WHERE user_id = $1 AND source = 'idp' AND provider_id = $2")
        .bind(user_id)
        .bind(provider_id)
        .execute(&mut *tx)
        .await?;
    let now = now_ms();
    for ((collective_id, _), role) in &best {
        sqlx::query(
            "INSERT INTO memberships (collective_id, user_id, source, provider_id, role, granted_at) \
             VALUES ($1, $2, 'idp', $3, $4, $5)",
        )
        .bind(collective_id)
        .bind(user_id)
        .bind(provider_id)
        .bind(role.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    Ok(best.into_iter().map(|((_, slug), role)| (slug, role)).collect())
}

/// After a mapping or a provider's collectives changed: every role this provider's groups gave
/// that the mappings no longer justify (for the groups each person had at their last sign-in)
/// is lowered or removed at once, so that sessions and API tokens lose it now. Nothing is
/// granted here: new mappings take effect at the next sign-in. Returns the rows changed.
pub async fn revoke_unmapped(tx: &mut sqlx::AnyConnection, provider_id: ProviderId) -> Result<usize> {
    let people = sqlx::query("SELECT user_id, groups FROM identities WHERE provider_id = $1")
        .bind(provider_id)
        .fetch_all(&mut *tx)
        .await?;
    let mut changed = 0;
    for p in &people {
        let user_id: UserId = p.try_get("user_id")?;
        let groups: Vec<String> = serde_json::from_str(&p.try_get::<String, _>("groups")?).unwrap_or_default();
        let justified: BTreeMap<CollectiveId, Role> =
            mapped_roles(tx, provider_id, &groups).await?.into_iter().map(|((id, _), r)| (id, r)).collect();
        let held = sqlx::query(
            "SELECT collective_id, role FROM memberships WHERE user_id = $1 AND source = 'idp' AND provider_id = $2",
        )
        .bind(user_id)
        .bind(provider_id)
        .fetch_all(&mut *tx)
        .await?;
        for h in &held {
            let cid: CollectiveId = h.try_get("collective_id")?;
            let role = Role::parse(&h.try_get::<String, _>("role")?);
            match (role, justified.get(&cid)) {
                (Some(r), Some(j)) if *j >= r => {}
                (Some(_), Some(j)) => {
                    sqlx::query("UPDATE memberships SET role = $1 WHERE collective_id = $2 AND user_id = $3 AND source = 'idp' AND provider_id = $4")
                        .bind(j.as_str())
                        .bind(cid)
                        .bind(user_id)
                        .bind(provider_id)
                        .execute(&mut *tx)
                        .await?;
                    changed += 1;
                }
                _ => {
                    sqlx::query("DELETE FROM memberships WHERE collective_id = $1 AND user_id = $2 AND source = 'idp' AND provider_id = $3")
                        .bind(cid)
                        .bind(user_id)
                        .bind(provider_id)
                        .execute(&mut *tx)
                        .await?;
                    changed += 1;
                }
            }
        }
    }
    Ok(changed)
}

/// Counts a sign-in attempt from `client` and answers whether it is within
/// `login_attempts_per_minute` over the last minute. The attempts are rows, so that every
/// replica counts the same ones.
pub async fn attempt_allowed(st: &AppState, client: &str) -> Result<bool> {
    let now = now_ms();
    let minute_ago = now - 60_000;
    let mut tx = st.db.begin().await?;
    sqlx::query("DELETE FROM login_attempts WHERE at < $1").bind(minute_ago).execute(&mut *tx).await?;
    sqlx::query("INSERT INTO login_attempts (client_addr, at) VALUES ($1, $2)")
        .bind(client)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    let attempts: i64 = sqlx::query("SELECT COUNT(*) AS n FROM login_attempts WHERE client_addr = $1 AND at >= $2")
        .bind(client)
        .bind(minute_ago)
        .fetch_one(&mut *tx)
        .await?
        .try_get("n")?;
    tx.commit().await?;
    Ok(attempts <= i64::from(st.config.login_attempts_per_minute.max(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_to_stays_on_site() {
        assert_eq!(safe_return_to(Some("/c/a")), "/c/a");
        assert_eq!(safe_return_to(Some("//evil.example")), "/");
        assert_eq!(safe_return_to(Some("https://evil.example")), "/");
        assert_eq!(safe_return_to(Some("/\\evil")), "/");
        assert_eq!(safe_return_to(None), "/");
        // What browsers turn into `//evil.example`.
        for bad in
            ["/%09/evil.example", "/\t/evil.example", "/%0a/evil", "/%5cevil.example", "/%2F/evil.example", "/ /x\n"]
        {
            assert_eq!(safe_return_to(Some(bad)), "/", "{bad:?}");
        }
        assert_eq!(safe_return_to(Some("/c/a/apps?tab=env")), "/c/a/apps?tab=env");
        assert_eq!(safe_return_to(Some("/c/../admin")), "/admin");
    }

    #[test]
    fn groups_claim_shapes() {
        assert_eq!(groups_from(Some(&json!(["a", "b", 3]))), vec!["a", "b"]);
        assert_eq!(groups_from(Some(&json!("a b"))), vec!["a", "b"]);
        assert!(groups_from(None).is_empty());
    }
}
