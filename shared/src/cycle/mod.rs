//! The optimisation cycle: what the processor runs for each job message.
//!
//! Safe under at-least-once delivery and concurrency:
//! - the cycle lease (owner = `<job>:<attempt>`) lets one cycle run at a time;
//!   a different job finding it held is recorded as skipped, the same job
//!   finding it held by an earlier attempt retries later;
//! - a job is claimed with a conditional `queued -> running`; a finished job's
//!   message is acknowledged without work;
//! - everything the cycle writes has a deterministic key (recommendations by
//!   cycle and resource+action, approval requests by recommendation and
//!   cycle, audit entries by cycle and event), so a re-run after a crash
//!   writes nothing twice;
//! - a large estate is split into shards; each shard is counted once on the
//!   job record and the worker that counts the last one claims the final
//!   stage, which therefore runs once.

mod finalize;
mod stages;
mod units;

use finalize::finalize;
use stages::analyse_slice;
use stages::{elapsed_ms, QueryPlan};
pub use stages::{metric_requests, SliceOutcome};

use crate::analysis::default_thresholds;
use crate::approvals::{self, DecisionInput};
use crate::collector::MetricSource;
use crate::discovery::Estate;
use crate::domain::*;
use crate::notify::{Event, Notifier};
use crate::queue::JobQueue;
use crate::store::*;
use crate::{Error, Result};
use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use std::collections::BTreeMap;

pub const LEASE_NAME: &str = "cycle";

/// Tunables, read once by the processor from its environment.
#[derive(Debug, Clone, PartialEq)]
pub struct CycleConfig {
    pub lease_ttl: Duration,
    /// Keep going when one resource fails in a stage (the failure is counted).
    pub continue_on_error: bool,
    pub approval_ttl: Duration,
    /// Resources per collect/analyse chunk: bounds memory at any estate size.
    pub chunk_resources: usize,
    /// GetMetricData calls one shard may need; a larger estate is sharded.
    pub calls_per_shard: u64,
    /// An upper bound on a shard's resources, whatever its metrics need.
    pub max_shard_resources: usize,
    /// Consecutive failures of a stage, across cycles, before an operator alert.
    pub alert_after_failures: u64,
    /// The queue's maxReceiveCount: on the last receive a failing job is marked failed.
    pub max_receives: u32,
    /// The exclusion tag and the owner tag keys.
    pub tags: crate::analysis::TagPolicy,
    /// Approval requests opened at once by the final stage, each its own
    /// transaction.
    pub open_concurrency: usize,
}

impl Default for CycleConfig {
    fn default() -> Self {
        CycleConfig {
            lease_ttl: Duration::minutes(15),
            continue_on_error: true,
            approval_ttl: Duration::days(7),
            chunk_resources: 1000,
            calls_per_shard: 10,
            max_shard_resources: 1000,
            alert_after_failures: 3,
            max_receives: 5,
            tags: crate::analysis::TagPolicy::default(),
            open_concurrency: 16,
        }
    }
}

/// Everything the cycle talks to.
#[derive(Clone, Copy)]
pub struct Ports<'a> {
    pub jobs: &'a dyn JobStore,
    pub shards: &'a dyn ShardTracker,
    pub lease: &'a dyn LeaseStore,
    pub runs: &'a dyn CycleRunStore,
    pub health: &'a dyn StageHealth,
    pub approvals: &'a dyn ApprovalStore,
    pub audit: &'a dyn AuditStore,
    pub thresholds: &'a dyn ThresholdStore,
    pub inventory: &'a dyn InventoryStore,
    pub recommendations: &'a dyn RecommendationStore,
    /// The deployment's own CloudWatch: what is analysed when discovery
    /// covers no unit.
    pub source: &'a dyn MetricSource,
    pub notifier: &'a dyn Notifier,
    pub queue: &'a dyn JobQueue,
    /// The estate's units and their APIs ([`crate::discovery::NoEstate`]:
    /// none, CloudWatch and the inventory only).
    pub estate: &'a dyn Estate,
    pub coverage: &'a dyn CoverageStore,
    /// The auto-approval policies the final stage applies.
    pub policies: &'a dyn PolicyStore,
}

/// What handling one message came to (all of these acknowledge the message).
#[derive(Debug, Clone, PartialEq)]
pub enum Handled {
    Completed(CycleRun),
    /// Another cycle held the lease.
    Skipped,
    /// The job was finished already, or another worker claimed it.
    Duplicate,
    ShardsQueued(u32),
    ShardDone {
        finalized: bool,
    },
    /// A non-retryable error; the job is marked failed.
    Failed(String),
}

/// Handles one job message. `Err` means "fail this message" (it will be
/// redelivered, and after the queue's maxReceiveCount, dead-lettered).
pub async fn handle(
    ports: &Ports<'_>,
    cfg: &CycleConfig,
    msg: &JobMessage,
    receive_count: u32,
    now: DateTime<Utc>,
) -> Result<Handled> {
    let result = match &msg.shard {
        None => coordinate(ports, cfg, &msg.job_id, now).await,
        Some(shard) => run_shard(ports, cfg, &msg.job_id, shard, now).await,
    };
    match result {
        Ok(h) => Ok(h),
        Err(e) if e.is_retryable() && receive_count < cfg.max_receives => Err(e),
        Err(e) => {
            // Non-retryable, or the last delivery the queue will make: record
            // the failure on the job so nobody waits for it.
            tracing::error!(job_id = %msg.job_id, error = %e, "job failed");
            let message = public_error(&e, &msg.job_id);
            fail_job(ports, &msg.job_id, &message, now).await;
            if e.is_retryable() {
                Err(e)
            } else {
                Ok(Handled::Failed(message))
            }
        }
    }
}

/// What a failure may say outside the logs. A job's error reaches every
/// `jobs` subscriber, `GET /jobs/{id}`, the scheduler's runs and Slack, so
/// AWS's text (operations, exception codes, table names, ARNs) stays in the
/// log line and the public text is a category with the job id to find it by.
/// Messages the core writes about the input are safe and kept.
pub fn public_error(e: &Error, reference: &str) -> String {
    match e {
        Error::Validation(_)
        | Error::IllegalTransition(_)
        | Error::NotFound { .. }
        | Error::AlreadyExists { .. }
        | Error::RateLimited { .. } => e.to_string(),
        Error::Unavailable(_) => {
            format!("a backing service was unavailable (reference {reference})")
        }
        Error::Conflict(_) => {
            format!("the work conflicted with a concurrent change (reference {reference})")
        }
        Error::Internal(_) => format!("an internal error occurred (reference {reference})"),
    }
}

async fn fail_job(ports: &Ports<'_>, job_id: &str, error: &str, now: DateTime<Utc>) {
    let outcome = JobOutcome {
        result: None,
        error: Some(error.to_string()),
    };
    match ports
        .jobs
        .transition(job_id, JobStatus::Failed, outcome, now)
        .await
    {
        Ok(_) => {
            crate::observe::cycle_failed(job_id, error);
            if let Ok(Some(mut run)) = ports.runs.get_run(job_id).await {
                run.status = RunStatus::Failed;
                run.finished_at = Some(now);
                run.error = Some(error.to_string());
                let _ = ports.runs.put_run(&run).await;
            }
            let _ = ports
                .notifier
                .publish(&Event::JobFailed {
                    job_id: job_id.to_string(),
                    error: error.to_string(),
                })
                .await;
        }
        Err(e) => tracing::warn!(job_id, error = %e, "could not mark job failed"),
    }
}

/// The job a message names, unless it has finished (a duplicate delivery).
/// A message naming no job is refused: retrying cannot make it exist.
async fn unfinished_job(
    ports: &Ports<'_>,
    job_id: &str,
    now: DateTime<Utc>,
) -> Result<Option<Job>> {
    let job = ports
        .jobs
        .get(job_id, now)
        .await?
        .ok_or_else(|| Error::Validation(format!("job {job_id} does not exist")))?;
    Ok((!job.status.is_finished()).then_some(job))
}

async fn coordinate(
    ports: &Ports<'_>,
    cfg: &CycleConfig,
    job_id: &str,
    now: DateTime<Utc>,
) -> Result<Handled> {
    let Some(job) = unfinished_job(ports, job_id, now).await? else {
        return Ok(Handled::Duplicate);
    };
    let owner = format!("{job_id}:{}", uuid::Uuid::new_v4().simple());
    if !ports
        .lease
        .acquire(LEASE_NAME, &owner, cfg.lease_ttl, now)
        .await?
    {
        let holder = ports.lease.current(LEASE_NAME, now).await?;
        if holder
            .as_ref()
            .is_some_and(|l| l.owner.starts_with(&format!("{job_id}:")))
        {
            return Err(Error::Unavailable(format!(
                "an earlier attempt of job {job_id} still holds the cycle lease; retrying later"
            )));
        }
        let other = holder.map(|l| l.owner).unwrap_or_default();
        return skip(ports, &job, &other, now).await;
    }
    if job.status == JobStatus::Queued {
        match ports
            .jobs
            .transition(job_id, JobStatus::Running, JobOutcome::default(), now)
            .await
        {
            Ok(_) => {}
            Err(Error::Conflict(_)) => {
                let _ = ports.lease.release(LEASE_NAME, &owner).await;
                return Ok(Handled::Duplicate);
            }
            Err(e) => {
                let _ = ports.lease.release(LEASE_NAME, &owner).await;
                return Err(e);
            }
        }
    }
    let result = run_cycle(ports, cfg, &job, &owner, now).await;
    if !matches!(result, Ok(Handled::ShardsQueued(_))) {
        // The finaliser of a sharded cycle releases it instead.
        let _ = ports.lease.release(LEASE_NAME, &owner).await;
    }
    result
}

/// Moves a job to a final status with its result. A `Conflict` means another
/// delivery settled it first, which is the same outcome.
pub(super) async fn settle_job(
    ports: &Ports<'_>,
    job_id: &str,
    to: JobStatus,
    result: serde_json::Value,
    now: DateTime<Utc>,
) -> Result<()> {
    let outcome = JobOutcome {
        result: Some(result),
        error: None,
    };
    match ports.jobs.transition(job_id, to, outcome, now).await {
        Ok(_) | Err(Error::Conflict(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

async fn skip(ports: &Ports<'_>, job: &Job, holder: &str, now: DateTime<Utc>) -> Result<Handled> {
    let reason = format!(
        "another cycle is running ({})",
        holder.split(':').next().unwrap_or("")
    );
    settle_job(
        ports,
        &job.id,
        JobStatus::Skipped,
        json!({ "skipped": reason }),
        now,
    )
    .await?;
    let params = CycleParams::of(job);
    ports
        .runs
        .put_run(&CycleRun {
            run_id: job.id.clone(),
            job_id: job.id.clone(),
            trigger: params.trigger,
            status: RunStatus::Skipped,
            started_at: now,
            finished_at: Some(now),
            stages: vec![],
            resources_analysed: 0,
            findings: 0,
            recommendations: 0,
            monthly_savings_usd: 0.0,
            threshold_version: None,
            error: Some(reason.clone()),
            dry_run: params.dry_run,
        })
        .await?;
    ports
        .notifier
        .publish(&Event::JobCompleted {
            job_id: job.id.clone(),
            summary: json!({ "status": "skipped", "reason": reason }),
        })
        .await?;
    Ok(Handled::Skipped)
}

/// Tracks a run's stages, progress and stage health.
pub(crate) struct Tracker<'p, 'a> {
    ports: &'p Ports<'a>,
    cfg: &'p CycleConfig,
    pub run: CycleRun,
}

/// The stages of a cycle, in order; progress is reported against them.
pub const STAGES: [Stage; 8] = Stage::ALL;

impl<'p, 'a> Tracker<'p, 'a> {
    pub(super) async fn progress(&self, stage: Stage, done: u64, total: u64) -> Result<()> {
        let index = stage.index();
        let frac = if total == 0 {
            1.0
        } else {
            done.min(total) as f64 / total as f64
        };
        let percent = ((index as f64 + frac) / STAGES.len() as f64 * 1000.0).round() / 10.0;
        let progress = Progress {
            stage,
            done,
            total,
            percent,
        };
        match self
            .ports
            .jobs
            .update_progress(&self.run.job_id, &progress, Utc::now())
            .await
        {
            Ok(()) | Err(Error::Conflict(_)) => {}
            Err(e) => return Err(e),
        }
        self.ports
            .notifier
            .publish(&Event::JobProgress {
                job_id: self.run.job_id.clone(),
                stage: progress.stage,
                done,
                total,
                percent,
            })
            .await
    }

    /// Records a finished stage and its health; alerts past the threshold.
    pub(super) async fn finish(&mut self, outcome: StageOutcome) -> Result<()> {
        let failures = self
            .ports
            .health
            .record_stage(outcome.stage, outcome.ok)
            .await?;
        if failures >= self.cfg.alert_after_failures {
            let error = outcome
                .error
                .clone()
                .unwrap_or_else(|| format!("{} resources failed", outcome.failed));
            self.ports
                .notifier
                .publish(&Event::OperatorAlert {
                    stage: outcome.stage,
                    consecutive_failures: failures,
                    error: error.clone(),
                })
                .await?;
            let entry = AuditEntry {
                id: stable_id(&format!("{}|alert|{}", self.run.job_id, outcome.stage)),
                entity_type: "cycle".into(),
                entity_id: self.run.job_id.clone(),
                action: AuditAction::CycleOperatorAlert.name(),
                actor: "system".into(),
                at: self.run.started_at,
                outcome: Some(format!("{failures} consecutive failures")),
                reason: Some(error),
                pre_state: None,
                post_state: Some(
                    json!({ "stage": outcome.stage, "consecutiveFailures": failures }),
                ),
                correlation_id: Some(self.run.job_id.clone()),
            };
            append_once(self.ports.audit, &entry).await?;
        }
        self.run.stages.retain(|s| s.stage != outcome.stage);
        self.run.stages.push(outcome);
        self.ports.runs.put_run(&self.run).await
    }
}

pub(crate) fn stable_id(seed: &str) -> String {
    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, seed.as_bytes()).to_string()
}

/// Appends an audit entry whose id is deterministic: a replay finds it there.
pub(super) async fn append_once(audit: &dyn AuditStore, entry: &AuditEntry) -> Result<()> {
    match audit.append(entry).await {
        Ok(()) | Err(Error::AlreadyExists { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

pub(super) async fn load_thresholds(ports: &Ports<'_>) -> Result<ThresholdSet> {
    match ports.thresholds.latest().await? {
        Some(set) => Ok(set),
        None => default_thresholds(),
    }
}

/// Discovery merged with the inventory: what CloudWatch shows, enriched with
/// what was registered (type, cost, tags, relations); registered resources
/// CloudWatch does not show are analysed too (they may be idle).
async fn discover(ports: &Ports<'_>, services: &[Service]) -> Result<Vec<Resource>> {
    let discovered = ports.source.discover(services).await?;
    let mut resources: Vec<Resource> = ports
        .inventory
        .all()
        .await?
        .into_iter()
        .filter(|r| services.contains(&r.service))
        .collect();
    let known: std::collections::BTreeSet<String> =
        resources.iter().map(|r| r.id.clone()).collect();
    for d in discovered {
        if !known.contains(&d.id) {
            resources.push(Resource::new(d.service, d.id, "us-east-1"));
        }
    }
    resources.sort_by_key(Resource::key);
    Ok(resources)
}

async fn run_cycle(
    ports: &Ports<'_>,
    cfg: &CycleConfig,
    job: &Job,
    owner: &str,
    now: DateTime<Utc>,
) -> Result<Handled> {
    let set = load_thresholds(ports).await?;
    // The job's params, parsed once for the run record and discovery.
    let params = CycleParams::of(job);
    let mut tracker = Tracker {
        ports,
        cfg,
        run: CycleRun {
            run_id: job.id.clone(),
            job_id: job.id.clone(),
            trigger: params.trigger,
            status: RunStatus::Running,
            started_at: now,
            finished_at: None,
            stages: vec![],
            resources_analysed: 0,
            findings: 0,
            recommendations: 0,
            monthly_savings_usd: 0.0,
            threshold_version: Some(set.version),
            error: None,
            dry_run: params.dry_run,
        },
    };
    ports.runs.put_run(&tracker.run).await?;

    let t = std::time::Instant::now();
    tracker.progress(Stage::Discover, 0, 1).await?;
    let units = ports.estate.units().await?;
    if units.len() > 1 {
        // Each (account, region) is its own message, discovered and
        // analysed in parallel; the last to finish runs the final stage.
        let n = units.len() as u32;
        tracker
            .finish(StageOutcome {
                stage: Stage::Discover,
                ok: true,
                processed: 0,
                failed: 0,
                duration_ms: elapsed_ms(t),
                error: None,
            })
            .await?;
        ports.shards.set_shards(&job.id, n).await?;
        let messages: Vec<JobMessage> = units
            .into_iter()
            .enumerate()
            .map(|(i, unit)| JobMessage {
                job_id: job.id.clone(),
                kind: job.kind,
                shard: Some(ShardRef {
                    index: i as u32,
                    of: n,
                    resources: Vec::new(),
                    lease_owner: owner.to_string(),
                    unit: Some(unit),
                    discover: true,
                }),
            })
            .collect();
        ports.queue.send_batch(&messages).await?;
        tracker.progress(Stage::Collect, 0, n as u64).await?;
        return Ok(Handled::ShardsQueued(n));
    }
    let unit = units.into_iter().next();
    let (resources, unit_source, discover_error) = match &unit {
        None => (discover(ports, &params.services).await?, None, None),
        Some(u) => {
            match units::discover_unit(ports, &job.id, u, &params.services, true, now).await? {
                (units::UnitOutcome::Found(r), source) => (r, source, None),
                (units::UnitOutcome::Failed(e), _) => (Vec::new(), None, Some(e)),
            }
        }
    };
    tracker
        .finish(StageOutcome {
            stage: Stage::Discover,
            ok: discover_error.is_none(),
            processed: resources.len() as u64,
            failed: u64::from(discover_error.is_some()),
            duration_ms: elapsed_ms(t),
            error: discover_error,
        })
        .await?;
    let ports = &Ports {
        source: unit_source.as_deref().unwrap_or(ports.source),
        ..*ports
    };

    let shards = plan_shards(&set, resources, cfg, now);
    if shards.len() <= 1 {
        let slice = shards.into_iter().next().unwrap_or_default();
        let outcome = analyse_slice(ports, cfg, &set, &slice, Some(&mut tracker), now).await?;
        ports
            .recommendations
            .put_all(&job.id, &outcome.recommendations)
            .await?;
        tracker.run.resources_analysed = outcome.analysed;
        tracker.run.findings = outcome.findings;
        let run = finalize(ports, cfg, tracker, outcome.recommendations, now).await?;
        return Ok(Handled::Completed(run));
    }

    let n = shards.len() as u32;
    ports.shards.set_shards(&job.id, n).await?;
    let messages: Vec<JobMessage> = shards
        .into_iter()
        .enumerate()
        .map(|(i, slice)| JobMessage {
            job_id: job.id.clone(),
            kind: job.kind,
            shard: Some(ShardRef {
                index: i as u32,
                of: n,
                resources: slice,
                lease_owner: owner.to_string(),
                unit: unit.clone(),
                discover: false,
            }),
        })
        .collect();
    ports.queue.send_batch(&messages).await?;
    tracker.progress(Stage::Collect, 0, n as u64).await?;
    Ok(Handled::ShardsQueued(n))
}

/// Splits the estate into slices whose metrics need at most
/// `cfg.calls_per_shard` GetMetricData calls (counted as the API's limits
/// allow: 500 queries and 100,800 data points per call) and whose message
/// stays well under SQS's 256 KB.
pub fn plan_shards(
    set: &ThresholdSet,
    resources: Vec<Resource>,
    cfg: &CycleConfig,
    now: DateTime<Utc>,
) -> Vec<Vec<Resource>> {
    const MAX_MESSAGE_BYTES: usize = 200 * 1024;
    const QUERIES_PER_CALL: u64 = 500;
    const POINTS_PER_CALL: u64 = 100_800;
    let (start, end) = stages::window(set, now);
    let span = (end - start).num_seconds().max(1) as u64;
    let mut plan = QueryPlan::new(set);
    let mut shards: Vec<Vec<Resource>> = Vec::new();
    let mut current: Vec<Resource> = Vec::new();
    let (mut queries, mut points, mut bytes) = (0u64, 0u64, 0usize);
    for r in resources {
        let mine = plan.requests_for(&r);
        let q = mine.len() as u64;
        let p: u64 = mine
            .iter()
            .map(|m| span.div_ceil(u64::from(m.period_seconds.max(1))))
            .sum();
        let size = serde_json::to_vec(&r).map(|v| v.len()).unwrap_or(512) + 16;
        let calls = (queries + q)
            .div_ceil(QUERIES_PER_CALL)
            .max((points + p).div_ceil(POINTS_PER_CALL));
        let full = calls > cfg.calls_per_shard
            || bytes + size > MAX_MESSAGE_BYTES
            || current.len() >= cfg.max_shard_resources.max(1);
        if !current.is_empty() && full {
            shards.push(std::mem::take(&mut current));
            (queries, points, bytes) = (0, 0, 0);
        }
        queries += q;
        points += p;
        bytes += size;
        current.push(r);
    }
    if !current.is_empty() {
        shards.push(current);
    }
    shards
}

async fn run_shard(
    ports: &Ports<'_>,
    cfg: &CycleConfig,
    job_id: &str,
    shard: &ShardRef,
    now: DateTime<Utc>,
) -> Result<Handled> {
    if unfinished_job(ports, job_id, now).await?.is_none() {
        return Ok(Handled::Duplicate);
    }
    if let Err(e) = ports
        .lease
        .renew(LEASE_NAME, &shard.lease_owner, cfg.lease_ttl, now)
        .await
    {
        tracing::warn!(job_id, error = %e, "shard could not renew the cycle lease");
    }
    let set = load_thresholds(ports).await?;
    let (resources, source) = match (&shard.unit, shard.discover) {
        (Some(unit), true) => {
            let params = match ports.jobs.get(job_id, now).await? {
                Some(job) => CycleParams::of(&job),
                None => return Ok(Handled::Duplicate),
            };
            match units::discover_unit(ports, job_id, unit, &params.services, false, now).await? {
                (units::UnitOutcome::Found(r), source) => (r, source),
                // Recorded on the unit's coverage; the shard still counts,
                // so the other units complete and the cycle finalises.
                (units::UnitOutcome::Failed(_), _) => (Vec::new(), None),
            }
        }
        (Some(unit), false) => (shard.resources.clone(), ports.estate.metrics(unit).await?),
        (None, _) => (shard.resources.clone(), None),
    };
    let ports = &Ports {
        source: source.as_deref().unwrap_or(ports.source),
        ..*ports
    };
    let outcome = analyse_slice(ports, cfg, &set, &resources, None, now).await?;
    ports
        .recommendations
        .put_all(job_id, &outcome.recommendations)
        .await?;
    let count = ports
        .shards
        .complete_shard(job_id, shard.index, outcome.analysed, outcome.findings)
        .await?;
    if count.done < count.total {
        return Ok(Handled::ShardDone { finalized: false });
    }
    if !ports
        .shards
        .claim_finalize(job_id, now + cfg.lease_ttl, now)
        .await?
    {
        return Ok(Handled::ShardDone { finalized: false });
    }
    let mut run = match ports.runs.get_run(job_id).await? {
        Some(run) => run,
        None => return Err(Error::Conflict(format!("cycle run {job_id} is missing"))),
    };
    run.resources_analysed = count.analysed;
    run.findings = count.findings;
    let tracker = Tracker { ports, cfg, run };
    let recs = ports.recommendations.all(job_id).await?;
    finalize(ports, cfg, tracker, recs, now).await?;
    let _ = ports.lease.release(LEASE_NAME, &shard.lease_owner).await;
    Ok(Handled::ShardDone { finalized: true })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_errors_keep_input_messages_and_hide_aws_text() {
        let aws = "Query: ResourceNotFoundException: Table: finops-jobs-prod not found";
        for e in [
            Error::Internal(aws.into()),
            Error::Unavailable(aws.into()),
            Error::Conflict(aws.into()),
        ] {
            let text = public_error(&e, "job-1");
            assert!(
                text.contains("job-1") && !text.contains("finops-jobs-prod"),
                "{text}"
            );
            assert!(!text.contains("Exception"), "{text}");
        }
        let bad = Error::Validation("services: unknown service 'ec3'".into());
        assert_eq!(public_error(&bad, "job-1"), bad.to_string());
    }
}
