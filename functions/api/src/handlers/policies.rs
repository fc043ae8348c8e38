//! `/policies`: the auto-approval policies and their execution windows (admin).

use super::{to_json, Ctx, Res};
use crate::error::{json_response, ApiError};
use crate::extract::NoQuery;
use serde::Deserialize;
use serde_json::json;
use shared::domain::execution::Schedule;
use shared::domain::*;
use shared::store::{AuditStore, PolicyStore};

/// `GET /policies`: every policy, by id.
pub async fn list(ctx: &Ctx<'_>, _: NoQuery) -> Res {
    let items = ctx.app.policies.all().await?;
    Ok(json_response(200, &json!({ "items": items })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PolicyBody {
    id: String,
    description: Option<String>,
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default)]
    dry_run: bool,
    #[serde(rename = "match")]
    matcher: PolicyMatch,
    #[serde(default)]
    window: Schedule,
    /// The version the change was based on; absent for a new policy.
    base_version: Option<u32>,
}

fn yes() -> bool {
    true
}

/// `POST /policies`: creates a policy, or changes one over the version it
/// was read at (409 otherwise). Audited with the admin as actor.
pub async fn put(ctx: &Ctx<'_>, _: NoQuery, b: PolicyBody) -> Res {
    let base = b.base_version.unwrap_or(0);
    let version = base
        .checked_add(1)
        .ok_or_else(|| ApiError::new(422, "unprocessable", "baseVersion is too large"))?;
    let policy = Policy {
        id: b.id,
        version,
        description: b.description,
        enabled: b.enabled,
        dry_run: b.dry_run,
        matcher: b.matcher,
        window: b.window,
        updated_by: ctx.actor.clone(),
        updated_at: ctx.now,
    };
    if let Err(e) = policy.validate() {
        return Err(ApiError::new(422, "unprocessable", e.to_string()));
    }
    ctx.app.policies.put(&policy).await?;
    let mut entry = ctx.audit_entry(
        "policy",
        &policy.id,
        AuditAction::PolicySaved,
        Some(json!({ "version": base })),
        Some(to_json(&policy)?),
    );
    entry.id = format!("policy|{}|v{}", policy.id, policy.version);
    ctx.app.audit.append(&entry).await?;
    Ok(json_response(
        if base == 0 { 201 } else { 200 },
        &to_json(&policy)?,
    ))
}
