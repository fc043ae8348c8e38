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
