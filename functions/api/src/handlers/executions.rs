//! Executions the system carries out. The api holds none of the SDKs of the
//! services an execution changes: `execute` (without `outcome`), `rollback`
//! and `preview` queue an execution job that the processor runs; preview
//! waits briefly for its answer, as it changes nothing and a person is
//! looking at the screen.

use super::{Ctx, Res};
use crate::error::{json_response, ApiError};
use serde::Deserialize;
use serde_json::json;
use shared::domain::{ApprovalRequest, ApprovalStatus, JobStatus};
use shared::execution::job::{execution_job, ExecutionParams};
use shared::jobs::submit;
use shared::store::{ApprovalStore, JobStore};

/// A body that must be empty (or `{}`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoBody {}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollbackBody {
    pub reason: Option<String>,
}

async fn request(ctx: &Ctx<'_>, id: &str) -> Result<ApprovalRequest, ApiError> {
    Ok(ctx
        .app
        .approvals
        .get(id)
        .await?
        .ok_or_else(|| shared::Error::not_found("approval request", id))?)
}

fn refuse(req: &ApprovalRequest, what: &str, allowed: &[ApprovalStatus]) -> ApiError {
    let names: Vec<&str> = allowed.iter().map(|s| s.as_str()).collect();
    ApiError::new(
        409,
        "conflict",
        format!(
            "request {} is {}: only a request that is {} can be {what}",
            req.id,
            req.status.as_str(),
            names.join(" or ")
        ),
    )
    .with_details(json!({ "status": req.status }))
}

async fn queue(ctx: &Ctx<'_>, params: ExecutionParams, version: u64) -> Result<String, ApiError> {
    let job = execution_job(&params, version, &ctx.actor, ctx.now);
    let submitted = submit(&ctx.app.jobs, &ctx.app.queue, job, ctx.now).await?;
    Ok(submitted.job().id.clone())
}

/// `POST /approval-requests/{id}/execute` without `outcome`: 202 with the
/// job. Racing callers on one request version share one job.
pub async fn execute(ctx: &Ctx<'_>, id: &str) -> Res {
    let req = request(ctx, id).await?;
    const CAN: [ApprovalStatus; 3] = [
        ApprovalStatus::Approved,
        ApprovalStatus::Scheduled,
        ApprovalStatus::Executing,
    ];
    if !CAN.contains(&req.status) {
        return Err(refuse(&req, "executed", &CAN));
    }
    let params = ExecutionParams::Execute {
        request_id: req.id.clone(),
    };
    let job_id = queue(ctx, params, req.version).await?;
    Ok(json_response(
        202,
        &json!({ "jobId": job_id, "requestId": req.id, "status": "queued" }),
    ))
}

/// `POST /approval-requests/{id}/rollback` (`reason` required): 202 with the job.
pub async fn rollback(ctx: &Ctx<'_>, id: &str, reason: Option<String>) -> Res {
    let Some(reason) = reason
        .map(|r| r.trim().to_string())
        .filter(|r| !r.is_empty())
    else {
        return Err(
            ApiError::new(422, "unprocessable", "a rollback needs a reason")
                .with_details(json!({ "field": "reason" })),
        );
    };
    let req = request(ctx, id).await?;
    const CAN: [ApprovalStatus; 3] = [
        ApprovalStatus::Executed,
        ApprovalStatus::Failed,
        ApprovalStatus::RollingBack,
    ];
    if !CAN.contains(&req.status) {
        return Err(refuse(&req, "rolled back", &CAN));
    }
    let params = ExecutionParams::Rollback {
        request_id: req.id.clone(),
        reason,
    };
    let job_id = queue(ctx, params, req.version).await?;
    Ok(json_response(
        202,
        &json!({ "jobId": job_id, "requestId": req.id, "status": "queued" }),
    ))
}

/// `POST /approval-requests/{id}/preview`: 200 with the preview when the
/// processor answers within the wait, else 202 with the job to follow.
pub async fn preview(ctx: &Ctx<'_>, id: &str) -> Res {
    let req = request(ctx, id).await?;
    let params = ExecutionParams::Preview {
        request_id: req.id.clone(),
    };
    let job_id = queue(ctx, params, req.version).await?;
    let wait = ctx.app.config.preview_wait;
    let started = std::time::Instant::now();
    loop {
        if let Some(job) = ctx.app.jobs.get(&job_id, ctx.now).await? {
            match job.status {
                JobStatus::Succeeded => {
                    let preview = job
                        .result
                        .as_ref()
                        .and_then(|r| r.get("preview"))
                        .cloned()
                        .unwrap_or_default();
                    return Ok(json_response(
                        200,
                        &json!({ "jobId": job_id, "requestId": req.id, "preview": preview }),
                    ));
                }
                JobStatus::Failed => {
                    return Err(ApiError::new(
                        502,
                        "preview_failed",
                        job.error.unwrap_or_else(|| "the preview failed".into()),
                    )
                    .with_details(json!({ "jobId": job_id })))
                }
                _ => {}
            }
        }
        if started.elapsed() >= wait {
            return Ok(json_response(
                202,
                &json!({ "jobId": job_id, "requestId": req.id, "status": "queued" }),
            ));
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavingsQuery {
    #[serde(default, deserialize_with = "crate::extract::field::parsed")]
    days: Option<u32>,
}

/// Most audit pages `GET /savings` reads per action (100 entries a page).
const MAX_AUDIT_PAGES: usize = 50;

async fn entries(
    ctx: &Ctx<'_>,
    action: &str,
    from: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<shared::domain::AuditEntry>, ApiError> {
    use shared::store::{AuditQuery, AuditStore};
    let q = AuditQuery {
        entity_id: None,
        actor: None,
        action: Some(action.into()),
        from: Some(from),
        to: Some(ctx.now),
    };
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..MAX_AUDIT_PAGES {
        let page = ctx
            .app
            .audit
            .query(&q, Some(100), token.as_deref(), ctx.now)
            .await?;
        out.extend(page.items);
        match page.next_token {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    Ok(out)
}

/// `GET /savings?days=N` (default 30, at most 366): estimated against
/// realised monthly savings of the changes executed in the period, by
/// service, account and owner. Realised is priced from the pre- and
/// post-state the execution recorded; where neither the shape nor the
/// catalogue prices it (or a person recorded the outcome), the estimate
/// stands in and `fromEstimate` counts it. A rolled-back change stops counting.
pub async fn savings(ctx: &Ctx<'_>, q: SavingsQuery) -> Res {
    use shared::domain::execution::ResourceState;
    use shared::savings::{realised, SavingsReport};
    let days = q.days.unwrap_or(30);
    if !(1..=366).contains(&days) {
        return Err(ApiError::new(
            422,
            "unprocessable",
            format!("days must be between 1 and 366, got {days}"),
        )
        .with_details(json!({ "field": "days" })));
    }
    let from = ctx.now - chrono::Duration::days(i64::from(days));
    let executed = entries(ctx, "approval.execute_succeeded", from).await?;
    let undone: std::collections::HashSet<String> =
        entries(ctx, "approval.rollback_succeeded", from)
            .await?
            .into_iter()
            .map(|e| e.entity_id)
            .collect();
    let catalog = shared::analysis::PriceCatalog::builtin();
    let state = |v: &Option<serde_json::Value>| -> Option<ResourceState> {
        serde_json::from_value(v.as_ref()?.get("resource")?.clone()).ok()
    };
    let mut report = SavingsReport::default();
    for e in executed {
        if undone.contains(&e.entity_id) {
            report.rolled_back += 1;
            continue;
        }
        let Some(req) = ctx.app.approvals.get(&e.entity_id).await? else {
            continue;
        };
        let rec = &req.recommendation;
        let estimated = rec.monthly_savings_usd.unwrap_or(0.0);
        let saved = state(&e.pre_state)
            .and_then(|pre| realised(catalog, &pre, state(&e.post_state).as_ref()));
        report.total.add(estimated, saved);
        for (map, key) in [
            (&mut report.by_service, rec.service.to_string()),
            (
                &mut report.by_account,
                rec.account_id.clone().unwrap_or_else(|| "unknown".into()),
            ),
            (
                &mut report.by_owner,
                rec.owner.clone().unwrap_or_else(|| "none".into()),
            ),
        ] {
            map.entry(key).or_default().add(estimated, saved);
        }
    }
    Ok(json_response(
        200,
        &json!({ "days": days, "from": from, "to": ctx.now, "savings": report }),
    ))
}
