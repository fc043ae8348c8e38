//! `/approval-requests`: listing, reading and deciding approval requests.

use super::{page_json, storable, Ctx, Res};
use crate::error::{json_response, ApiError};
use crate::extract::{field, NoQuery};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use serde_json::{json, Value};
use shared::approvals::{self, DecisionInput};
use shared::domain::*;
use shared::notify::Event;
use shared::store::*;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ListQuery {
    #[serde(default, deserialize_with = "status")]
    status: Option<ApprovalStatus>,
    #[serde(default, deserialize_with = "field::parsed")]
    service: Option<Service>,
    resource_id: Option<String>,
    #[serde(default, deserialize_with = "field::limit")]
    limit: Option<u32>,
    next_token: Option<String>,
}

fn status<'de, D: Deserializer<'de>>(d: D) -> Result<Option<ApprovalStatus>, D::Error> {
    let Some(s) = Option::<String>::deserialize(d)? else {
        return Ok(None);
    };
    ApprovalStatus::parse(&s).map(Some).ok_or_else(|| {
        D::Error::custom(format!(
            "status must be one of {}; got '{s}'",
            ApprovalStatus::names()
        ))
    })
}

pub async fn list(ctx: &Ctx<'_>, q: ListQuery) -> Res {
    let filter = ApprovalFilter {
        status: q.status,
        service: q.service,
        resource_id: q.resource_id,
    };
    let page = ctx
        .app
        .approvals
        .list(&filter, q.limit, q.next_token.as_deref())
        .await?;
    Ok(json_response(200, &page_json(page)))
}

pub async fn get(ctx: &Ctx<'_>, id: &str, _: NoQuery) -> Res {
    let request = ctx
        .app
        .approvals
        .get(id)
        .await?
        .ok_or_else(|| shared::Error::not_found("approval request", id))?;
    let decisions = ctx.app.approvals.decisions(id).await?;
    Ok(json_response(
        200,
        &json!({ "request": request, "decisions": decisions }),
    ))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Reject,
    Execute,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionBody {
    reason: Option<String>,
    outcome: Option<String>,
    details: Option<Value>,
}

const MAX_REASON: usize = 2000;

pub async fn decide(ctx: &Ctx<'_>, id: &str, which: Decision, _: NoQuery, b: DecisionBody) -> Res {
    let reason = b
        .reason
        .map(|r| r.trim().to_string())
        .filter(|r| !r.is_empty());
    if reason
        .as_ref()
        .is_some_and(|r| r.chars().count() > MAX_REASON)
    {
        return Err(ApiError::new(
            422,
            "unprocessable",
            format!("reason is longer than {MAX_REASON} characters"),
        ));
    }
    let event = match which {
        Decision::Approve => {
            if b.outcome.is_some() || b.details.is_some() {
                return Err(ApiError::bad_request("approve takes only 'reason'"));
            }
            ApprovalEvent::Approve
        }
        Decision::Reject => {
            if b.outcome.is_some() || b.details.is_some() {
                return Err(ApiError::bad_request("reject takes only 'reason'"));
            }
            if reason.is_none() {
                return Err(
                    ApiError::new(422, "unprocessable", "a rejection needs a reason")
                        .with_details(json!({ "field": "reason" })),
                );
            }
            ApprovalEvent::Reject
        }
        Decision::Execute => match b.outcome.as_deref() {
            Some("executed") => ApprovalEvent::ExecuteSucceeded,
            Some("failed") => ApprovalEvent::ExecuteFailed,
            Some(other) => {
                return Err(ApiError::new(
                    422,
                    "unprocessable",
                    format!("outcome must be 'executed' or 'failed', got '{other}'"),
                )
                .with_details(json!({ "field": "outcome" })))
            }
            // Without an outcome the system carries it out.
            None => {
                if b.details.is_some() {
                    return Err(ApiError::new(
                        422,
                        "unprocessable",
                        "details go with an outcome ('executed' or 'failed') recorded by hand",
                    )
                    .with_details(json!({ "field": "details" })));
                }
                return super::executions::execute(ctx, id).await;
            }
        },
    };
    if let Some(d) = &b.details {
        if !d.is_object() {
            return Err(ApiError::new(
                422,
                "unprocessable",
                "details must be an object",
            ));
        }
        if let Err(p) = storable(d, 0) {
            return Err(ApiError::new(422, "unprocessable", format!("details: {p}")));
        }
        if d.to_string().len() > 16 * 1024 {
            return Err(ApiError::new(
                413,
                "payload_too_large",
                "details are larger than 16 KB",
            ));
        }
    }
    let mut input = DecisionInput::new(event, ctx.actor.clone());
    input.reason = reason;
    input.details = b.details;
    input.correlation_id = ctx.correlation_id.clone();
    let (request, decision) = approvals::decide(&ctx.app.approvals, id, input, ctx.now).await?;
    let event = Event::ApprovalDecisionMade {
        request: request.clone(),
        decision: decision.clone(),
    };
    // The decision is recorded; a delivery problem must not turn it into an error.
    if let Err(e) = ctx.app.notifier.publish(&event).await {
        tracing::warn!(error = %e, request_id = %request.id, "decision not published");
    }
    Ok(json_response(
        200,
        &json!({ "request": request, "decision": decision }),
    ))
}
