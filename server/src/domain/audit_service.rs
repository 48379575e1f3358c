//! Reading the audit log: who may see what (collective admins their collective, federation
//! admins everything), pages for the UI and the API, and the JSON Lines export.

use crate::domain::audit::{self, AuditEventRow, Scope};
use crate::domain::authz::{find_collective, Cap, Resolve};
use crate::error::Result;
use crate::state::AppState;
use potluck_app::api::QueryAudit;
use potluck_app::error::ApiError;
use potluck_app::model::{AuditFilter, AuditPage, Permission};
use potluck_app::ops::scope;

/// The collectives whose events the caller may read.
async fn scope_for<S: Resolve>(st: &AppState, cap: &Cap<S>) -> Result<Scope> {
    match cap.collectives_with(&st.db, Permission::ViewAudit).await? {
        None => Ok(Scope::All),
        Some(ids) if ids.is_empty() => {
            Err(ApiError::forbidden("the audit log is shown to collective admins and federation admins").into())
        }
        Some(ids) => Ok(Scope::Collectives(ids)),
    }
}

pub async fn query_rows<S: Resolve>(st: &AppState, cap: &Cap<S>, filter: &AuditFilter) -> Result<Vec<AuditEventRow>> {
    let scope = scope_for(st, cap).await?;
    let collective_id = match filter.collective.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
        None => None,
        Some(slug) => {
            if matches!(scope, Scope::All) {
                let c = find_collective(&st.db, slug)
                    .await?
                    .ok_or_else(|| ApiError::not_found(format!("collective {slug:?}")))?;
                Some(c.id)
            } else {
                Some(cap.collective_access(&st.db, slug, Permission::ViewAudit).await?.0.id)
            }
        }
    };
    audit::query(&st.db, &scope, filter, collective_id).await
}

pub async fn query_audit(st: &AppState, cap: &Cap<scope::SignedIn>, input: QueryAudit) -> Result<AuditPage> {
    let filter = input.filter();
    let limit = filter.limit.unwrap_or(50).clamp(1, 1000);
    let filter = AuditFilter { limit: Some(limit + 1), ..filter };
    let mut rows = query_rows(st, cap, &filter).await?;
    let next_before = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|r| r.view.seq)
    } else {
        None
    };
    Ok(AuditPage { events: rows.into_iter().map(|r| r.view).collect(), next_before })
}
