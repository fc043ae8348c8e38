use super::{Context, Parse};
use crate::error::FrameError;
use serde_json::{json, Value};
use shared::domain::{has_role, CycleParams, Job, JobSource, Role, Service, Trigger};
use shared::jobs::{manual_cycle, submit, Submitted, MANUAL_CYCLE_WINDOW_SECONDS};

/// `runCycle`: an optimisation cycle, for operators and above.
#[derive(Debug, Clone, PartialEq)]
pub struct RunCycle {
    /// Sorted, without repeats; `None` means every service.
    pub services: Option<Vec<Service>>,
    pub dry_run: bool,
}

impl RunCycle {
    pub fn parse(parse: &mut Parse) -> Result<Self, FrameError> {
        let services = match parse.strings("services", Service::ALL.len() * 2)? {
            None => None,
            Some(raw) if raw.is_empty() => {
                return Err(FrameError::bad(
                    "`services` must name at least one service; omit it for all",
                ))
            }
            Some(raw) => Some(
                raw.iter()
                    .map(|s| {
                        s.parse::<Service>()
                            .map_err(|e| FrameError::bad(e.to_string()))
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            ),
        };
        let dry_run = parse.boolean("dryRun")?.unwrap_or(false);
        Ok(RunCycle { services, dry_run })
    }

    pub async fn apply(self, ctx: &Context<'_>) -> Result<Value, FrameError> {
        let connection = ctx.connection().await?;
        if !has_role(&connection.roles, Role::Operator) {
            return Err(FrameError::new(
                "forbidden",
                format!(
                    "runCycle needs the {} role or higher",
                    Role::Operator.as_str()
                ),
            ));
        }
        let params = CycleParams {
            dry_run: self.dry_run,
            requested_by: Some(connection.user_id.clone()),
            ..CycleParams::new(Trigger::Manual, JobSource::Websocket, self.services)
        };
        // The same window as REST's trigger: one manual cycle a minute,
        // whoever asks. A resend of a request inside the window is told so
        // too, with the window's job id, which is the job it asked for.
        let manual = manual_cycle(ctx.now);
        let job = Job::cycle(manual.job_id, connection.user_id.clone(), &params, ctx.now);
        let submitted = submit(
            ctx.deps.jobs.as_ref(),
            ctx.deps.queue.as_ref(),
            job,
            ctx.now,
        )
        .await
        .map_err(|e| ctx.core(e))?;
        match submitted {
            Submitted::Queued(job) => {
                tracing::info!(job_id = %job.id, user = %connection.user_id, "cycle queued");
                Ok(json!({ "type": "ack", "jobId": job.id, "status": "queued" }))
            }
            Submitted::Duplicate(job) => Err(FrameError::new(
                "rate_limited",
                format!(
                    "a cycle was requested less than {MANUAL_CYCLE_WINDOW_SECONDS} s ago (job {}); retry in {} s",
                    job.id, manual.retry_after_seconds
                ),
            )
            .with("jobId", job.id)
            .with("retryAfterSeconds", manual.retry_after_seconds)),
        }
    }
}
