//! `/scheduler`: the optimisation cycle's schedule and manual triggers.

use super::{Ctx, Res};
use crate::error::{json_response, ApiError};
use crate::extract::NoQuery;
use serde::Deserialize;
use serde_json::json;
use shared::domain::*;
use shared::jobs::{manual_cycle, submit, Submitted, MANUAL_CYCLE_WINDOW_SECONDS};
use shared::store::*;

/// `GET /scheduler/status`: the schedule, whether a cycle runs now, recent runs.
pub async fn status(ctx: &Ctx<'_>, _: NoQuery) -> Res {
    let runs = ctx.app.cycles.recent_runs(100).await?;
    let lease = ctx
        .app
        .cycles
        .current(shared::cycle::LEASE_NAME, ctx.now)
        .await?;
    Ok(json_response(
        200,
        &json!({
            "schedule": ctx.app.config.schedule_expression,
            "running": lease.is_some(),
            "lease": lease,
            "runs": runs,
        }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TriggerBody {
    services: Option<Vec<String>>,
    dry_run: Option<bool>,
}

/// `POST /scheduler/trigger`: queues a manual cycle.
pub async fn trigger(ctx: &Ctx<'_>, _: NoQuery, b: TriggerBody) -> Res {
    let services: Option<Vec<Service>> = match b.services {
        None => None,
        Some(list) => {
            if list.is_empty() {
                return Err(ApiError::new(422, "unprocessable", "services is empty"));
            }
            // Each service named at most twice over: a job item stays small
            // whatever the body holds.
            if list.len() > Service::ALL.len() * 2 {
                return Err(ApiError::new(
                    422,
                    "unprocessable",
                    format!(
                        "services names {} entries; there are {} services",
                        list.len(),
                        Service::ALL.len()
                    ),
                ));
            }
            list.iter()
                .map(|s| s.parse::<Service>())
                .collect::<Result<Vec<_>, _>>()
                .map(Some)
                .map_err(|e| ApiError::new(422, "unprocessable", e.to_string()))?
        }
    };
    // One manual cycle per window: a second trigger inside it finds the job
    // and is told to wait.
    let manual = manual_cycle(ctx.now);
    let id = manual.job_id;
    let params = CycleParams {
        dry_run: b.dry_run.unwrap_or(false),
        requested_by: Some(ctx.actor.clone()),
        ..CycleParams::new(Trigger::Manual, JobSource::Rest, services)
    };
    let job = Job::cycle(id, ctx.actor.clone(), &params, ctx.now);
    match submit(&ctx.app.jobs, &ctx.app.queue, job, ctx.now).await? {
        Submitted::Queued(job) => {
            let entry = ctx.audit_entry(
                "job",
                &job.id,
                AuditAction::CycleTriggered,
                None,
                Some(json!({ "status": job.status, "params": job.params })),
            );
            ctx.app.audit.append(&entry).await?;
            Ok(json_response(
                202,
                &json!({ "jobId": job.id, "status": job.status }),
            ))
        }
        Submitted::Duplicate(job) => {
            let retry = manual.retry_after_seconds;
            Err(ApiError::new(
                429,
                "rate_limited",
                format!(
                    "a cycle was triggered less than {MANUAL_CYCLE_WINDOW_SECONDS} s ago (job {})",
                    job.id
                ),
            )
            .with_details(json!({ "jobId": job.id, "retryAfterSeconds": retry }))
            .with_header("retry-after", retry.to_string()))
        }
    }
}
