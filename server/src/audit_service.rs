//! Reading the audit log: who may see what (collective admins their collective, federation
//! admins everything), pages for the UI and the API, and the JSON Lines export.

use crate::audit::{self, AuditEventRow, Scope};
use crate::authz::{authorize, can, find_collective, signed_in};
use crate::error::Result;
use crate::state::AppState;
use potluck_app::error::ApiError;
use potluck_app::model::{AuditFilter, AuditPage, Permission, Role};
use potluck_app::ports::{Caller, Principal};
use sqlx::Row;

/// The collectives whose events the caller may read.
async fn scope_for(st: &AppState, caller: &Caller) -> Result<Scope> {
    let me = signed_in(caller)?;
    if me.is_federation_admin {
        return Ok(Scope::All);
    }
    if let Principal::Token(t) = &caller.principal {
        if t.owner_is_federation_admin && t.role.grants(Permission::ViewAudit) {
            return Ok(Scope::Collectives(vec![t.collective_id]));
        }
    }
    let rows = sqlx::query("SELECT collective_id, role FROM memberships WHERE user_id = $1")
        .bind(me.user_id)
        .fetch_all(st.db.pool())
        .await?;
    let mut ids = Vec::new();
    for r in &rows {
        let cid: i64 = r.try_get("collective_id")?;
        let mut role = Role::parse(&r.try_get::<String, _>("role")?).unwrap_or(Role::Viewer);
        if let Principal::Token(t) = &caller.principal {
            if t.collective_id != cid {
                continue;
            }
            role = role.min(t.role);
        }
        if role.grants(Permission::ViewAudit) && !ids.contains(&cid) {
            ids.push(cid);
        }
    }
    if ids.is_empty() {
        return Err(ApiError::forbidden("the audit log is shown to collective admins and federation admins").into());
    }
    Ok(Scope::Collectives(ids))
}

pub async fn query_rows(st: &AppState, caller: &Caller, filter: &AuditFilter) -> Result<Vec<AuditEventRow>> {
    let scope = scope_for(st, caller).await?;
    let collective_id = match filter.collective.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
        None => None,
        Some(slug) => {
            if matches!(scope, Scope::All) {
                let c = find_collective(&st.db, slug)
                    .await?
                    .ok_or_else(|| ApiError::not_found(format!("collective {slug:?}")))?;
                Some(c.id)
            } else {
                Some(authorize::<can::ViewAudit>(&st.db, caller, slug).await?.collective.id)
            }
        }
    };
    audit::query(&st.db, &scope, filter, collective_id).await
}

pub async fn query_audit(st: &AppState, caller: &Caller, filter: AuditFilter) -> Result<AuditPage> {
    let limit = filter.limit.unwrap_or(50).clamp(1, 1000);
    let filter = AuditFilter { limit: Some(limit + 1), ..filter };
    let mut rows = query_rows(st, caller, &filter).await?;
    let next_before = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|r| r.view.seq)
    } else {
        None
    };
    Ok(AuditPage { events: rows.into_iter().map(|r| r.view).collect(), next_before })
}
