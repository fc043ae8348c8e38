//! `/audit-trail`: the audit entries, searched and summarised.

use super::{page_json, Ctx, Res};
use crate::error::{json_response, ApiError};
use crate::extract::field;
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use serde_json::json;
use shared::store::*;
use std::collections::BTreeMap;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TrailQuery {
    actor: Option<String>,
    action: Option<String>,
    entity_id: Option<String>,
    #[serde(default, deserialize_with = "field::time")]
    from: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "field::time")]
    to: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "field::limit")]
    limit: Option<u32>,
    next_token: Option<String>,
}

/// `GET /audit-trail`: entries by entity, actor, action and period.
pub async fn trail(ctx: &Ctx<'_>, tq: TrailQuery) -> Res {
    let q = AuditQuery {
        entity_id: tq.entity_id,
        actor: tq.actor,
        action: tq.action,
        from: tq.from,
        to: tq.to,
    };
    let to = q.to.unwrap_or(ctx.now);
    if let Some(f) = q.from {
        if f > to {
            return Err(ApiError::bad_request("from must not be after to"));
        }
        // A period search walks one index partition per day.
        if to - f > Duration::days(366) {
            return Err(ApiError::bad_request(
                "an audit search covers at most 366 days",
            ));
        }
    }
    let page = ctx
        .app
        .audit
        .query(&q, tq.limit, tq.next_token.as_deref(), ctx.now)
        .await?;
    Ok(json_response(200, &page_json(page)))
}

/// Most entries one report reads.
const MAX_REPORT_ENTRIES: usize = 10_000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ReportQuery {
    #[serde(default, deserialize_with = "field::time")]
    from: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "field::time")]
    to: Option<DateTime<Utc>>,
}

/// `GET /audit-trail/report`: counts over a period (the last 30 days
/// unless given) and the decisions in it.
pub async fn report(ctx: &Ctx<'_>, rq: ReportQuery) -> Res {
    let to = rq.to.unwrap_or(ctx.now);
    // Checked: `to` is the client's, and chrono panics past its year range.
    let from = match rq.from {
        Some(f) => f,
        None => to
            .checked_sub_signed(Duration::days(30))
            .ok_or_else(|| ApiError::bad_request("to is out of range"))?,
    };
    if from > to {
        return Err(ApiError::bad_request("from must not be after to"));
    }
    if to - from > Duration::days(366) {
        return Err(ApiError::bad_request("a report covers at most 366 days"));
    }
    let q = AuditQuery {
        from: Some(from),
        to: Some(to),
        ..AuditQuery::default()
    };
    let mut by_action: BTreeMap<String, u64> = BTreeMap::new();
    let mut by_actor: BTreeMap<String, u64> = BTreeMap::new();
    let mut by_outcome: BTreeMap<String, u64> = BTreeMap::new();
    let mut decisions = Vec::new();
    let mut total = 0usize;
    let mut token: Option<String> = None;
    let mut truncated = false;
    loop {
        let page = ctx
            .app
            .audit
            .query(&q, Some(100), token.as_deref(), ctx.now)
            .await?;
        for e in page.items {
            total += 1;
            *by_action.entry(e.action.clone()).or_default() += 1;
            *by_actor.entry(e.actor.clone()).or_default() += 1;
            *by_outcome
                .entry(e.outcome.clone().unwrap_or_else(|| "none".into()))
                .or_default() += 1;
            if e.action.starts_with("approval.") && e.action != "approval.requested" {
                decisions.push(json!({
                    "entityId": e.entity_id, "action": e.action, "actor": e.actor,
                    "at": e.at, "outcome": e.outcome, "reason": e.reason,
                }));
            }
        }
        token = page.next_token;
        if token.is_none() {
            break;
        }
        if total >= MAX_REPORT_ENTRIES {
            truncated = true;
            break;
        }
    }
    Ok(json_response(
        200,
        &json!({
            "from": from, "to": to, "entries": total, "truncated": truncated,
            "byAction": by_action, "byActor": by_actor, "byOutcome": by_outcome,
            "decisions": decisions,
        }),
    ))
}
