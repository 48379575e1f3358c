//! Collectives (tenants): creating them, members and roles, invitations, and the mapping of an
//! identity provider's groups to roles.

use crate::adapters::crypto::{random_token, token_hash};
use crate::adapters::db::now_ms;
use crate::domain::audit::{self, AuditAction, Event};
use crate::domain::authz::{Cap, CollectiveSlug};
use crate::error::Result;
use crate::state::AppState;
use potluck_app::api::{
    AcceptInvitation, AddGroupMapping, CreateCollective, CreateInvitation, RemoveGroupMapping, RemoveMember,
    RevokeInvitation, SetMemberRole, UpdateCollective,
};
use potluck_app::error::ApiError;
use potluck_app::model::*;
use potluck_app::ops::scope;
use serde_json::json;
use sqlx::Row;
use std::collections::BTreeMap;

/// Invitations expire after a week.
const INVITATION_TTL_MS: i64 = 7 * 86_400_000;

fn parse_role(s: &str) -> Role {
    Role::parse(s).unwrap_or(Role::Viewer)
}

pub async fn list_collectives(st: &AppState, cap: &Cap<scope::SignedIn>) -> Result<Vec<CollectiveSummary>> {
    let rows = sqlx::query(
        "SELECT c.id, c.slug, c.name, c.description, \
         (SELECT COUNT(DISTINCT m.user_id) FROM memberships m WHERE m.collective_id = c.id) AS members \
         FROM collectives c ORDER BY c.slug",
    )
    .fetch_all(st.db.pool())
    .await?;
    let mine = my_roles(st, cap.user()).await?;
    let token_collective = cap.token().map(|(c, r)| (c, r, cap.acts_for_federation_admin()));
    let mut out = Vec::new();
    for r in &rows {
        let id: CollectiveId = r.try_get("id")?;
        let mut my_role = mine.get(&id).copied();
        if let Some((tc, tr, owner_fed)) = token_collective {
            if tc != id {
                continue;
            }
            let held = if owner_fed { Some(Role::Admin) } else { my_role };
            my_role = held.map(|r| r.min(tr));
        }
        if my_role.is_none() && !cap.is_federation_admin() {
            continue;
        }
        out.push(CollectiveSummary {
            slug: r.try_get("slug")?,
            name: r.try_get("name")?,
            description: r.try_get("description")?,
            my_role,
            member_count: r.try_get("members")?,
        });
    }
    Ok(out)
}

async fn my_roles(st: &AppState, user_id: UserId) -> Result<BTreeMap<CollectiveId, Role>> {
    let rows = sqlx::query("SELECT collective_id, role FROM memberships WHERE user_id = $1")
        .bind(user_id)
        .fetch_all(st.db.pool())
        .await?;
    let mut out: BTreeMap<CollectiveId, Role> = BTreeMap::new();
    for r in &rows {
        let role = parse_role(&r.try_get::<String, _>("role")?);
        let e = out.entry(r.try_get("collective_id")?).or_insert(role);
        *e = (*e).max(role);
    }
    Ok(out)
}

pub async fn get_collective(st: &AppState, access: &Cap<scope::Collective>) -> Result<CollectiveDetail> {
    let cid = access.collective().id;
    let role = access.role().unwrap_or(Role::Viewer);
    let row = sqlx::query("SELECT name, description FROM collectives WHERE id = $1")
        .bind(cid)
        .fetch_one(st.db.pool())
        .await?;
    let member_rows = sqlx::query(
        "SELECT m.user_id, u.display_name, u.email, m.source, m.role FROM memberships m JOIN users u ON u.id = m.user_id \
         WHERE m.collective_id = $1 ORDER BY u.display_name, m.user_id",
    )
    .bind(cid)
    .fetch_all(st.db.pool())
    .await?;
    let mut members: BTreeMap<UserId, Member> = BTreeMap::new();
    for r in &member_rows {
        let user_id: UserId = r.try_get("user_id")?;
        let role = parse_role(&r.try_get::<String, _>("role")?);
        let source: String = r.try_get("source")?;
        let m = members.entry(user_id).or_insert(Member {
            user_id,
            display_name: r.try_get("display_name")?,
            email: r.try_get("email")?,
            role,
            manual_role: None,
            idp_role: None,
        });
        m.role = m.role.max(role);
        if source == "manual" {
            m.manual_role = Some(role);
        } else {
            m.idp_role = Some(m.idp_role.map_or(role, |r| r.max(role)));
        }
    }
    let mut members: Vec<Member> = members.into_values().collect();
    members.sort_by(|a, b| b.role.cmp(&a.role).then(a.display_name.cmp(&b.display_name)));
    let mapping_rows = sqlx::query(
        "SELECT gm.id, gm.provider_id, p.display_name, p.groups_claim, gm.claim_value, gm.role FROM group_mappings gm \
         JOIN identity_providers p ON p.id = gm.provider_id WHERE gm.collective_id = $1 ORDER BY p.display_name, gm.claim_value",
    )
    .bind(cid)
    .fetch_all(st.db.pool())
    .await?;
    let group_mappings = mapping_rows
        .iter()
        .map(|r| {
            Ok(GroupMapping {
                id: r.try_get("id")?,
                provider_id: r.try_get("provider_id")?,
                provider_name: r.try_get("display_name")?,
                claim: r.try_get("groups_claim")?,
                value: r.try_get("claim_value")?,
                role: parse_role(&r.try_get::<String, _>("role")?),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let provider_rows = sqlx::query(
        "SELECT p.id, p.display_name FROM provider_collectives pc JOIN identity_providers p ON p.id = pc.provider_id \
         WHERE pc.collective_id = $1 ORDER BY p.display_name",
    )
    .bind(cid)
    .fetch_all(st.db.pool())
    .await?;
    let providers = provider_rows
        .iter()
        .map(|r| Ok(ProviderPublic { id: r.try_get("id")?, display_name: r.try_get("display_name")? }))
        .collect::<Result<Vec<_>>>()?;
    let invitations = if role.grants(Permission::ManageMembers) {
        let rows = sqlx::query(
            "SELECT i.id, i.role, u.display_name, i.created_at, i.expires_at FROM invitations i JOIN users u ON u.id = i.created_by \
             WHERE i.collective_id = $1 AND i.used_at IS NULL AND i.revoked_at IS NULL AND i.expires_at > $2 ORDER BY i.id DESC",
        )
        .bind(cid)
        .bind(now_ms())
        .fetch_all(st.db.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(InvitationSummary {
                    id: r.try_get("id")?,
                    role: parse_role(&r.try_get::<String, _>("role")?),
                    created_by: r.try_get("display_name")?,
                    created_at: r.try_get("created_at")?,
                    expires_at: r.try_get("expires_at")?,
                })
            })
            .collect::<Result<Vec<_>>>()?
    } else {
        Vec::new()
    };
    let my_role = if access.is_federation_admin() {
        crate::domain::authz::effective_role(&st.db, cid, access.user_id().unwrap_or_default()).await?
    } else {
        Some(role)
    };
    Ok(CollectiveDetail {
        slug: access.collective().slug.clone(),
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        my_role,
        members,
        group_mappings,
        providers,
        invitations,
    })
}

fn check_name(name: &str, description: &str) -> Result<(String, String)> {
    let name = name.trim().to_string();
    let description = description.trim().to_string();
    if name.is_empty() || name.len() > 100 {
        return Err(ApiError::invalid("name", "give a name of 1 to 100 characters").into());
    }
    if description.len() > 2000 {
        return Err(ApiError::invalid("description", "at most 2000 characters").into());
    }
    Ok((name, description))
}

pub async fn create_collective(
    st: &AppState,
    admin: &Cap<scope::Federation>,
    input: CreateCollective,
) -> Result<CollectiveSummary> {
    let CreateCollective { slug, name, description } = input;
    let slug = CollectiveSlug::parse(slug.trim())?;
    let (name, description) = check_name(&name, &description)?;
    let mut tx = audit::begin(&st.db).await?;
    let id: CollectiveId = sqlx::query(
        "INSERT INTO collectives (slug, name, description, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
    )
    .bind(slug.as_str())
    .bind(&name)
    .bind(&description)
    .bind(now_ms())
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| {
        if crate::adapters::db::is_unique_violation(&e) {
            ApiError::conflict(format!("a collective {:?} already exists", slug.as_str())).into()
        } else {
            crate::error::Error::from(e)
        }
    })?
    .try_get("id")?;
    let event = Event::new(AuditAction::CollectiveCreate, format!("collective {}", slug.as_str()))
        .in_collective(id, slug.as_str())
        .details(json!({ "name": name }));
    tx.record(admin.origin(), event).await?;
    tx.commit().await?;
    Ok(CollectiveSummary { slug: slug.as_str().to_string(), name, description, my_role: None, member_count: 0 })
}

pub async fn update_collective(
    st: &AppState,
    access: &Cap<scope::Collective>,
    input: UpdateCollective,
) -> Result<CollectiveSummary> {
    let (name, description) = check_name(&input.name, &input.description)?;
    let c = access.collective();
    let mut tx = audit::begin(&st.db).await?;
    sqlx::query("UPDATE collectives SET name = $1, description = $2 WHERE id = $3")
        .bind(&name)
        .bind(&description)
        .bind(c.id)
        .execute(&mut *tx)
        .await?;
    let event = Event::new(AuditAction::CollectiveUpdate, format!("collective {}", c.slug))
        .in_collective(c.id, &c.slug)
        .details(json!({ "name": name }));
    tx.record(access.origin(), event).await?;
    tx.commit().await?;
    Ok(CollectiveSummary { slug: c.slug.clone(), name, description, my_role: access.role(), member_count: 0 })
}

/// Roles per user in a collective, from every source, inside `tx`.
async fn roles_in(
    tx: &mut sqlx::AnyConnection,
    collective_id: CollectiveId,
) -> Result<BTreeMap<UserId, (Option<Role>, Option<Role>)>> {
    let rows = sqlx::query("SELECT user_id, source, role FROM memberships WHERE collective_id = $1")
        .bind(collective_id)
        .fetch_all(&mut *tx)
        .await?;
    let mut out: BTreeMap<UserId, (Option<Role>, Option<Role>)> = BTreeMap::new();
    for r in &rows {
        let role = parse_role(&r.try_get::<String, _>("role")?);
        let e = out.entry(r.try_get("user_id")?).or_default();
        if r.try_get::<String, _>("source")? == "manual" {
            e.0 = Some(role);
        } else {
            e.1 = Some(e.1.map_or(role, |r| r.max(role)));
        }
    }
    Ok(out)
}

/// Refuses a change that would leave a collective which has admins without any.
fn keep_an_admin(
    before: &BTreeMap<UserId, (Option<Role>, Option<Role>)>,
    user_id: UserId,
    after: Option<Role>,
) -> Result<()> {
    let is_admin = |(m, i): &(Option<Role>, Option<Role>)| (*m).max(*i) == Some(Role::Admin);
    let had_admin = before.values().any(is_admin);
    let others = before.iter().any(|(u, r)| *u != user_id && is_admin(r));
    if had_admin && !others && after != Some(Role::Admin) {
        return Err(ApiError::conflict("this is the collective's last admin; make someone else admin first").into());
    }
    Ok(())
}

async fn user_name(st: &AppState, user_id: UserId) -> Result<String> {
    let row =
        sqlx::query("SELECT display_name FROM users WHERE id = $1").bind(user_id).fetch_optional(st.db.pool()).await?;
    Ok(row.ok_or_else(|| ApiError::not_found(format!("user {user_id}")))?.try_get("display_name")?)
}

pub async fn set_member_role(st: &AppState, access: &Cap<scope::Collective>, input: SetMemberRole) -> Result<()> {
    let (user_id, role) = (input.user_id, input.role);
    let c = access.collective();
    let name = user_name(st, user_id).await?;
    let mut tx = audit::begin(&st.db).await?;
    let before = roles_in(&mut tx, c.id).await?;
    let fed_admin = access.is_federation_admin();
    let Some(current) = before.get(&user_id).copied().or_else(|| fed_admin.then_some((None, None))) else {
        return Err(ApiError::not_found(format!("member {user_id} of {}", c.slug)).into());
    };
    keep_an_admin(&before, user_id, Some(role).max(current.1))?;
    sqlx::query(
        "INSERT INTO memberships (collective_id, user_id, source, provider_id, role, granted_at) VALUES ($1, $2, 'manual', 0, $3, $4) \
         ON CONFLICT (collective_id, user_id, source, provider_id) DO UPDATE SET role = $3, granted_at = $4",
    )
    .bind(c.id)
    .bind(user_id)
    .bind(role.as_str())
    .bind(now_ms())
    .execute(&mut *tx)
    .await?;
    let event = Event::new(AuditAction::MemberSetRole, format!("user {name}"))
        .in_collective(c.id, &c.slug)
        .details(json!({ "user_id": user_id, "role": role, "previous": current.0 }));
    tx.record(access.origin(), event).await?;
    tx.commit().await?;
    Ok(())
}

pub async fn remove_member(st: &AppState, access: &Cap<scope::Collective>, input: RemoveMember) -> Result<()> {
    let user_id = input.user_id;
    let c = access.collective();
    let mut tx = audit::begin(&st.db).await?;
    let before = roles_in(&mut tx, c.id).await?;
    if !before.contains_key(&user_id) {
        return Err(ApiError::not_found(format!("member {user_id} of {}", c.slug)).into());
    }
    keep_an_admin(&before, user_id, None)?;
    let name = user_name(st, user_id).await?;
    sqlx::query("DELETE FROM memberships WHERE collective_id = $1 AND user_id = $2")
        .bind(c.id)
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "UPDATE api_tokens SET revoked_at = $1 WHERE collective_id = $2 AND user_id = $3 AND revoked_at IS NULL",
    )
    .bind(now_ms())
    .bind(c.id)
    .bind(user_id)
    .execute(&mut *tx)
    .await?;
    let event = Event::new(AuditAction::MemberRemove, format!("user {name}"))
        .in_collective(c.id, &c.slug)
        .details(json!({ "user_id": user_id }));
    tx.record(access.origin(), event).await?;
    tx.commit().await?;
    Ok(())
}

pub async fn create_invitation(
    st: &AppState,
    access: &Cap<scope::Collective>,
    input: CreateInvitation,
) -> Result<CreatedInvitation> {
    let role = input.role;
    let c = access.collective();
    let token = random_token("inv_");
    let now = now_ms();
    let mut tx = audit::begin(&st.db).await?;
    let id: InvitationId = sqlx::query(
        "INSERT INTO invitations (collective_id, role, token_hash, created_by, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(c.id)
    .bind(role.as_str())
    .bind(token_hash(&token))
    .bind(access.user_id())
    .bind(now)
    .bind(now + INVITATION_TTL_MS)
    .fetch_one(&mut *tx)
    .await?
    .try_get("id")?;
    let event = Event::new(AuditAction::InvitationCreate, format!("invitation {id}"))
        .in_collective(c.id, &c.slug)
        .details(json!({ "role": role }));
    tx.record(access.origin(), event).await?;
    tx.commit().await?;
    Ok(CreatedInvitation { id, link: OneTimeSecret(format!("{}/invite/{token}", st.config.public_base())) })
}

pub async fn revoke_invitation(st: &AppState, access: &Cap<scope::Collective>, input: RevokeInvitation) -> Result<()> {
    let invitation_id = input.invitation_id;
    let c = access.collective();
    let mut tx = audit::begin(&st.db).await?;
    let done = sqlx::query(
        "UPDATE invitations SET revoked_at = $1 WHERE id = $2 AND collective_id = $3 AND used_at IS NULL AND revoked_at IS NULL",
    )
    .bind(now_ms())
    .bind(invitation_id)
    .bind(c.id)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 0 {
        return Err(ApiError::not_found(format!("open invitation {invitation_id} in {}", c.slug)).into());
    }
    let event =
        Event::new(AuditAction::InvitationRevoke, format!("invitation {invitation_id}")).in_collective(c.id, &c.slug);
    tx.record(access.origin(), event).await?;
    tx.commit().await?;
    Ok(())
}

pub async fn accept_invitation(
    st: &AppState,
    me: &Cap<scope::SignedIn>,
    input: AcceptInvitation,
) -> Result<CollectiveSummary> {
    let token = input.token.as_str();
    let now = now_ms();
    let mut tx = audit::begin(&st.db).await?;
    let row = sqlx::query(
        "UPDATE invitations SET used_at = $1, used_by = $2 WHERE token_hash = $3 AND used_at IS NULL AND revoked_at IS NULL \
         AND expires_at > $1 RETURNING id, collective_id, role",
    )
    .bind(now)
    .bind(me.user())
    .bind(token_hash(token.trim()))
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| ApiError::not_found("this invitation is unknown, used, revoked or expired"))?;
    let collective_id: CollectiveId = row.try_get("collective_id")?;
    let id: InvitationId = row.try_get("id")?;
    let role = parse_role(&row.try_get::<String, _>("role")?);
    let c = sqlx::query("SELECT slug, name, description FROM collectives WHERE id = $1")
        .bind(collective_id)
        .fetch_one(&mut *tx)
        .await?;
    let slug: String = c.try_get("slug")?;
    let existing: Option<String> = sqlx::query(
        "SELECT role FROM memberships WHERE collective_id = $1 AND user_id = $2 AND source = 'manual' AND provider_id = 0",
    )
    .bind(collective_id)
    .bind(me.user())
    .fetch_optional(&mut *tx)
    .await?
    .map(|r| r.try_get("role"))
    .transpose()?;
    let granted = existing.as_deref().map(parse_role).map_or(role, |r| r.max(role));
    sqlx::query(
        "INSERT INTO memberships (collective_id, user_id, source, provider_id, role, granted_at) VALUES ($1, $2, 'manual', 0, $3, $4) \
         ON CONFLICT (collective_id, user_id, source, provider_id) DO UPDATE SET role = $3",
    )
    .bind(collective_id)
    .bind(me.user())
    .bind(granted.as_str())
    .bind(now)
    .execute(&mut *tx)
    .await?;
    let event = Event::new(AuditAction::InvitationAccept, format!("invitation {id}"))
        .in_collective(collective_id, &slug)
        .details(json!({ "user_id": me.user(), "role": granted }));
    tx.record(me.origin(), event).await?;
    tx.commit().await?;
    Ok(CollectiveSummary {
        slug,
        name: c.try_get("name")?,
        description: c.try_get("description")?,
        my_role: Some(granted),
        member_count: 0,
    })
}

pub async fn add_group_mapping(
    st: &AppState,
    access: &Cap<scope::Collective>,
    input: AddGroupMapping,
) -> Result<GroupMapping> {
    let AddGroupMapping { provider_id, value, role, .. } = input;
    let c = access.collective();
    let value = value.trim().to_string();
    if value.is_empty() || value.len() > 200 {
        return Err(ApiError::invalid("value", "give the group value, 1 to 200 characters").into());
    }
    let provider = sqlx::query(
        "SELECT p.display_name, p.groups_claim FROM provider_collectives pc JOIN identity_providers p ON p.id = pc.provider_id \
         WHERE pc.collective_id = $1 AND pc.provider_id = $2",
    )
    .bind(c.id)
    .bind(provider_id)
    .fetch_optional(st.db.pool())
    .await?
    .ok_or_else(|| ApiError::invalid("provider_id", format!("identity provider {provider_id} does not serve {}", c.slug)))?;
    let mut tx = audit::begin(&st.db).await?;
    let id: MappingId = sqlx::query(
        "INSERT INTO group_mappings (collective_id, provider_id, claim_value, role, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(c.id)
    .bind(provider_id)
    .bind(&value)
    .bind(role.as_str())
    .bind(now_ms())
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| {
        if crate::adapters::db::is_unique_violation(&e) {
            ApiError::conflict(format!("group {value:?} of this provider is already mapped in {}", c.slug)).into()
        } else {
            crate::error::Error::from(e)
        }
    })?
    .try_get("id")?;
    let provider_name: String = provider.try_get("display_name")?;
    let event = Event::new(AuditAction::GroupMappingAdd, format!("group {value}"))
        .in_collective(c.id, &c.slug)
        .details(json!({ "mapping_id": id, "provider_id": provider_id, "value": value, "role": role }));
    tx.record(access.origin(), event).await?;
    tx.commit().await?;
    Ok(GroupMapping { id, provider_id, provider_name, claim: provider.try_get("groups_claim")?, value, role })
}

pub async fn remove_group_mapping(
    st: &AppState,
    access: &Cap<scope::Collective>,
    input: RemoveGroupMapping,
) -> Result<()> {
    let mapping_id = input.mapping_id;
    let c = access.collective();
    let mut tx = audit::begin(&st.db).await?;
    let row = sqlx::query(
        "DELETE FROM group_mappings WHERE id = $1 AND collective_id = $2 RETURNING claim_value, role, provider_id",
    )
    .bind(mapping_id)
    .bind(c.id)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| ApiError::not_found(format!("group mapping {mapping_id} in {}", c.slug)))?;
    let value: String = row.try_get("claim_value")?;
    // The roles it gave end now (sessions and API tokens included), not at the next sign-in.
    let revoked = crate::domain::identity::login::revoke_unmapped(&mut tx, row.try_get("provider_id")?).await?;
    let event = Event::new(AuditAction::GroupMappingRemove, format!("group {value}")).in_collective(c.id, &c.slug).details(
        json!({ "mapping_id": mapping_id, "role": row.try_get::<String, _>("role")?, "memberships_revoked": revoked }),
    );
    tx.record(access.origin(), event).await?;
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_admin_stays() {
        let mut roles = BTreeMap::new();
        roles.insert(UserId(1), (Some(Role::Admin), None));
        roles.insert(UserId(2), (Some(Role::Viewer), None));
        assert!(keep_an_admin(&roles, UserId(1), Some(Role::Operator)).is_err());
        assert!(keep_an_admin(&roles, UserId(1), None).is_err());
        assert!(keep_an_admin(&roles, UserId(2), None).is_ok());
        roles.insert(UserId(3), (None, Some(Role::Admin)));
        assert!(keep_an_admin(&roles, UserId(1), None).is_ok());
        // A collective without admins (a federation admin runs it) can lose members freely.
        let mut none = BTreeMap::new();
        none.insert(UserId(2), (Some(Role::Viewer), None));
        assert!(keep_an_admin(&none, UserId(2), None).is_ok());
    }
}
