//! Carrying out an approved request (SPEC section 10): read the live
//! pre-state, decide with the pure checks of [`crate::domain::execution`],
//! then run the plan step by step, each step claimed in the store before
//! its AWS call and finished after it, so a redelivered execution resumes
//! where it stopped and never repeats a completed step. The post-state is
//! read back and verified; the approval transitions carry the pre- and
//! post-state into the audit trail, and each step gets its own entry.

#[cfg(feature = "discovery")]
mod aws;
pub mod job;
mod port;

#[cfg(feature = "discovery")]
pub use aws::{AwsActuator, DEFAULT_MAX_WAIT};
pub use port::*;

use crate::approvals::record_transition;
use crate::domain::execution::*;
use crate::domain::{ApprovalEvent, ApprovalRequest, ApprovalStatus, AuditAction, AuditEntry};
use crate::store::{ApprovalStore, AuditStore};
use crate::{Error, Result};
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use serde_json::json;

/// The rules an execution keeps to, from configuration and policies.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub cap: ChangeCap,
    pub breaker: Breaker,
    /// The global execution schedule; empty means always open.
    pub schedule: Schedule,
    pub exclusion_tag: String,
    pub window_tag: String,
    pub plan: PlanOptions,
    /// How long a started step is held before another worker may take it over.
    pub step_lease: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            cap: ChangeCap::default(),
            breaker: Breaker::default(),
            schedule: Schedule::default(),
            exclusion_tag: EXCLUSION_TAG.into(),
            window_tag: WINDOW_TAG.into(),
            plan: PlanOptions::default(),
            step_lease: Duration::minutes(15),
        }
    }
}

/// The ports an execution needs.
pub struct Deps<'a> {
    pub approvals: &'a dyn ApprovalStore,
    pub audit: &'a dyn AuditStore,
    pub executions: &'a dyn ExecutionStore,
    pub actuator: &'a dyn Actuator,
    /// Where `execution.progress` goes, step by step.
    pub notifier: &'a dyn crate::notify::Notifier,
}

/// Why an execution changed nothing and failed the request.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(
    tag = "code",
    rename_all = "snake_case",
    rename_all_fields = "camelCase"
)]
pub enum Refusal {
    Drifted { fields: Vec<Drift> },
    Excluded { tag: String },
    NotExecutable { reason: NotExecutable },
    ResourceGone,
    BadWindowTag { message: String },
    NoWindow,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Executed(ExecutionRecord),
    Failed(ExecutionRecord),
    /// Refused before any change; the request is `failed`.
    Refused(Refusal),
    /// Outside its window; the request is `scheduled`.
    Scheduled {
        opens_at: DateTime<Utc>,
    },
    /// A cap or the account's breaker: nothing changed, try again at `until`.
    Deferred {
        until: DateTime<Utc>,
        reason: &'static str,
    },
    /// Another worker holds a step of this execution now.
    Busy,
    RolledBack(ExecutionRecord),
    RollbackFailed(ExecutionRecord),
}

/// What carrying the request out would do, changing nothing.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Preview {
    pub pre_state: Option<ResourceState>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<ExecutionPlan>,
    pub checks: Vec<Check>,
    pub dry_runs: Vec<DryRun>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Check {
    pub name: &'static str,
    pub passed: bool,
    pub detail: serde_json::Value,
}

/// Where the request's resource lives: the account given, else the one
/// discovery found it in.
fn target_of(req: &ApprovalRequest, account: Option<String>) -> Target {
    Target {
        service: req.recommendation.service,
        resource_id: req.recommendation.resource_id.clone(),
        region: req.recommendation.region.clone(),
        account_id: account.or_else(|| req.recommendation.account_id.clone()),
    }
}

fn account_key(t: &Target) -> String {
    t.account_id.clone().unwrap_or_else(|| "default".into())
}

fn to_json<T: Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}

/// Every pre-change check, in order, without side effects.
fn checks(
    req: &ApprovalRequest,
    pre: Option<&ResourceState>,
    expected: Option<&StateSnapshot>,
    settings: &Settings,
    now: DateTime<Utc>,
) -> (
    Vec<Check>,
    std::result::Result<(ExecutionPlan, WindowDecision), Refusal>,
) {
    let mut out = Vec::new();
    let mut check = |name, passed, detail| {
        out.push(Check {
            name,
            passed,
            detail,
        })
    };
    let Some(pre) = pre else {
        check("exists", false, json!(null));
        return (out, Err(Refusal::ResourceGone));
    };
    let excluded = pre.is_excluded(&settings.exclusion_tag);
    check(
        "exclusion_tag",
        !excluded,
        json!({ "tag": settings.exclusion_tag }),
    );
    let drifted = expected.map(|e| drift(e, pre)).unwrap_or_default();
    check("drift", drifted.is_empty(), to_json(&drifted));
    let planned = plan(&req.id, &req.recommendation, pre, settings.plan);
    check(
        "executable",
        planned.is_ok(),
        planned.as_ref().err().map_or(json!(null), to_json),
    );
    let own = window::from_tags(&pre.tags, &settings.window_tag);
    let window = own
        .as_ref()
        .map(|own| {
            // The approving policy's window, if a policy approved it.
            let policy = req.execution_window.clone().unwrap_or_default();
            window::decide(&[&settings.schedule, own, &policy], now)
        })
        .map_err(|e| e.to_string());
    check(
        "window",
        matches!(window, Ok(WindowDecision::Open)),
        match &window {
            Ok(d) => to_json(d),
            Err(e) => json!({ "error": e }),
        },
    );
    let verdict = if excluded {
        Err(Refusal::Excluded {
            tag: settings.exclusion_tag.clone(),
        })
    } else if !drifted.is_empty() {
        Err(Refusal::Drifted { fields: drifted })
    } else {
        match (planned, window) {
            (Err(reason), _) => Err(Refusal::NotExecutable { reason }),
            (_, Err(message)) => Err(Refusal::BadWindowTag { message }),
            (_, Ok(WindowDecision::Never)) => Err(Refusal::NoWindow),
            (Ok(p), Ok(w)) => Ok((p, w)),
        }
    };
    (out, verdict)
}

/// `POST /approval-requests/{id}/preview`: the live pre-state, the plan and
/// intended post-state, every check and whether it passes; dry runs where
/// the API offers them. Nothing changes.
pub async fn preview(
    deps: &Deps<'_>,
    req: &ApprovalRequest,
    account: Option<String>,
    expected: Option<&StateSnapshot>,
    settings: &Settings,
    now: DateTime<Utc>,
) -> Result<Preview> {
    let target = target_of(req, account);
    let expected = expected.or(req.resource_snapshot.as_ref());
    let pre = deps.actuator.read_state(&target).await?;
    let (checks, verdict) = checks(req, pre.as_ref(), expected, settings, now);
    let mut dry_runs = Vec::new();
    let plan = verdict.ok().map(|(p, _)| p);
    if let Some(p) = &plan {
        for (i, step) in p.steps.iter().enumerate() {
            let key = IdempotencyKey::new(&req.id, Phase::Execute, i);
            let call = StepCall {
                target: &target,
                step,
                key: &key,
                earlier: &[],
                executed: &[],
            };
            dry_runs.push(deps.actuator.dry_run(call).await?);
        }
    }
    Ok(Preview {
        pre_state: pre,
        plan,
        checks,
        dry_runs,
    })
}

async fn audit_step(
    deps: &Deps<'_>,
    rec: &StepRecord,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    let entry = AuditEntry {
        id: format!(
            "{}|{}|{}|{:?}",
            rec.request_id,
            rec.phase.as_str(),
            rec.index,
            rec.status
        ),
        entity_type: crate::approvals::ENTITY.into(),
        entity_id: rec.request_id.clone(),
        action: AuditAction::ExecutionStep.name(),
        actor: actor.into(),
        at: now,
        outcome: Some(to_json(&rec.status).as_str().unwrap_or_default().into()),
        reason: rec.error.clone().or_else(|| rec.caveat.clone()),
        pre_state: None,
        post_state: Some(
            json!({ "phase": rec.phase, "index": rec.index, "step": rec.step, "awsRequestId": rec.applied.aws_request_id, "output": rec.applied.output }),
        ),
        correlation_id: Some(rec.key.as_str().into()),
    };
    match deps.audit.append(&entry).await {
        Ok(()) | Err(Error::AlreadyExists { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

/// One entry of a phase: a step to carry out, or (rollback) one recorded
/// as skipped with the reason nothing is done.
struct PhaseStep {
    step: Step,
    run: bool,
    caveat: Option<String>,
}

/// How a phase ended.
enum PhaseEnd {
    Done(Vec<StepRecord>),
    /// A step failed for good (its record is the last one).
    Failed(Vec<StepRecord>),
    Busy,
}

/// Runs a phase's steps in order, skipping those completed before.
#[allow(clippy::too_many_arguments)]
async fn run_steps(
    deps: &Deps<'_>,
    target: &Target,
    request_id: &str,
    phase: Phase,
    steps: &[PhaseStep],
    executed: &[StepRecord],
    settings: &Settings,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<PhaseEnd> {
    let mut done: Vec<StepRecord> = Vec::new();
    for (i, entry) in steps.iter().enumerate() {
        let key = IdempotencyKey::new(request_id, phase, i);
        let fresh = StepRecord {
            request_id: request_id.into(),
            phase,
            index: i as u32,
            key: key.clone(),
            step: entry.step.clone(),
            status: StepStatus::Started,
            lease_until: now + settings.step_lease,
            started_at: now,
            finished_at: None,
            applied: Applied::default(),
            error: None,
            caveat: entry.caveat.clone(),
        };
        let mut rec = match deps.executions.claim_step(&fresh, now).await? {
            Claim::Done(r) => {
                let failed = r.status == StepStatus::Failed;
                done.push(r);
                if failed {
                    return Ok(PhaseEnd::Failed(done));
                }
                continue;
            }
            Claim::Busy => return Ok(PhaseEnd::Busy),
            Claim::Claimed(r) => r,
        };
        let result = if entry.run {
            let call = StepCall {
                target,
                step: &entry.step,
                key: &key,
                earlier: &done,
                executed,
            };
            deps.actuator.apply(call).await
        } else {
            Ok(Applied::default())
        };
        rec.finished_at = Some(now);
        match result {
            Ok(applied) => {
                rec.status = if entry.run {
                    StepStatus::Completed
                } else {
                    StepStatus::Skipped
                };
                rec.applied = applied;
            }
            // Retryable trouble leaves the step started: the redelivery
            // takes it over once the lease runs out and calls again under
            // the same key, which the actuator keeps idempotent.
            Err(e) if e.is_retryable() => return Err(e),
            Err(e) => {
                rec.status = StepStatus::Failed;
                rec.error = Some(e.to_string());
            }
        }
        deps.executions.finish_step(&rec).await?;
        audit_step(deps, &rec, actor, now).await?;
        let progress = crate::notify::Event::ExecutionProgress {
            request_id: request_id.into(),
            resource_id: target.resource_id.clone(),
            phase,
            step: rec.index + 1,
            total: steps.len() as u32,
            op: rec.step.op(),
            status: rec.status,
            aws_request_id: rec.applied.aws_request_id.clone(),
        };
        // The step is done and audited; a lost progress frame is only a log line.
        if let Err(e) = deps.notifier.publish(&progress).await {
            tracing::warn!(request_id, error = %e, "execution progress not published");
        }
        let failed = rec.status == StepStatus::Failed;
        done.push(rec);
        if failed {
            return Ok(PhaseEnd::Failed(done));
        }
    }
    Ok(PhaseEnd::Done(done))
}

async fn transition(
    deps: &Deps<'_>,
    req: &ApprovalRequest,
    moved: std::result::Result<
        (ApprovalRequest, crate::domain::Decision),
        crate::domain::IllegalTransition,
    >,
    pre: Option<serde_json::Value>,
    post: Option<serde_json::Value>,
    now: DateTime<Utc>,
) -> Result<ApprovalRequest> {
    let (next, _) = record_transition(deps.approvals, req, moved?, pre, post, now).await?;
    Ok(next)
}

/// Executes request `id` (approved, scheduled, or executing after a crash).
///
/// `expected` is the state the recommendation was made on (type, size,
/// state, memory), by default the request's `resource_snapshot`; without
/// either the drift check has nothing to compare and passes. Of racing callers, one moves the request to `executing`; the
/// others get `Conflict`. A redelivery of an execution in progress resumes it.
/// The approval request `id`, or `NotFound`.
async fn request(deps: &Deps<'_>, id: &str) -> Result<ApprovalRequest> {
    deps.approvals
        .get(id)
        .await?
        .ok_or_else(|| Error::not_found("approval request", id))
}

pub async fn execute(
    deps: &Deps<'_>,
    id: &str,
    account: Option<String>,
    expected: Option<&StateSnapshot>,
    settings: &Settings,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<Outcome> {
    let req = request(deps, id).await?;
    let target = target_of(&req, account);
    let acct = account_key(&target);
    let expected = expected.or(req.resource_snapshot.as_ref());
    let mut req = match req.status {
        ApprovalStatus::Approved | ApprovalStatus::Scheduled => {
            let pre = deps.actuator.read_state(&target).await?;
            let (_, verdict) = checks(&req, pre.as_ref(), expected, settings, now);
            let (plan, window) = match verdict {
                Ok(v) => v,
                Err(refusal) => {
                    let running = transition(
                        deps,
                        &req,
                        req.apply(ApprovalEvent::StartExecution, actor, None, None, now),
                        None,
                        None,
                        now,
                    )
                    .await?;
                    let details = to_json(&refusal);
                    let failed = running.finish_execution(false, false, actor, Some(details), now);
                    transition(deps, &running, failed, pre.as_ref().map(to_json), None, now)
                        .await?;
                    return Ok(Outcome::Refused(refusal));
                }
            };
            if let WindowDecision::Wait { opens_at } = window {
                if req.status == ApprovalStatus::Approved {
                    transition(
                        deps,
                        &req,
                        req.schedule(opens_at, actor, now),
                        None,
                        None,
                        now,
                    )
                    .await?;
                }
                return Ok(Outcome::Scheduled { opens_at });
            }
            if let BreakerDecision::Open { until } = settings
                .breaker
                .decide(deps.executions.account_health(&acct).await?, now)
            {
                return Ok(Outcome::Deferred {
                    until,
                    reason: "account_breaker_open",
                });
            }
            // The change is counted against both caps in one conditional
            // write before anything is done: of racing workers, only as many
            // as the caps have room for go on.
            let hour = hour_of(now);
            if deps
                .executions
                .claim_change(&acct, hour, &req.id, settings.cap)
                .await?
                .is_none()
            {
                let counts = deps.executions.hour_counts(&acct, hour).await?;
                let per_account = !matches!(
                    settings.cap.decide(counts, now),
                    CapDecision::Defer {
                        per_account: false,
                        ..
                    }
                );
                return Ok(Outcome::Deferred {
                    until: hour + chrono::Duration::hours(1),
                    reason: if per_account {
                        "account_cap"
                    } else {
                        "hourly_cap"
                    },
                });
            }
            let pre = pre.ok_or_else(|| Error::Internal("checked pre-state vanished".into()))?;
            // The record first: a crash before the transition leaves a
            // plan that the redelivery reuses.
            let record = ExecutionRecord {
                request_id: req.id.clone(),
                target: target.clone(),
                plan,
                pre_state: pre.clone(),
                status: ExecutionStatus::Running,
                started_at: now,
                post_state: None,
                mismatches: vec![],
                error: None,
                finished_at: None,
            };
            deps.executions.begin(&record).await?;
            let moved = req.apply(ApprovalEvent::StartExecution, actor, None, None, now);
            transition(deps, &req, moved, Some(to_json(&pre)), None, now).await?
        }
        ApprovalStatus::Executing => req,
        _ => {
            return Err(crate::domain::IllegalTransition {
                from: req.status,
                event: ApprovalEvent::StartExecution,
            }
            .into())
        }
    };
    let mut record = deps.executions.get(&req.id).await?.ok_or_else(|| {
        Error::Internal(format!(
            "request {} is executing without an execution record",
            req.id
        ))
    })?;
    let steps: Vec<PhaseStep> = record
        .plan
        .steps
        .iter()
        .map(|s| PhaseStep {
            step: s.clone(),
            run: true,
            caveat: None,
        })
        .collect();
    let end = run_steps(
        deps,
        &record.target,
        &req.id,
        Phase::Execute,
        &steps,
        &[],
        settings,
        actor,
        now,
    )
    .await?;
    let (done, step_failed) = match end {
        PhaseEnd::Busy => return Ok(Outcome::Busy),
        PhaseEnd::Done(d) => (d, false),
        PhaseEnd::Failed(d) => (d, true),
    };
    let changed = done
        .iter()
        .any(|r| r.status == StepStatus::Completed && r.step.changes_resource());
    let post = deps.actuator.read_state(&record.target).await?;
    record.mismatches = if step_failed {
        vec![]
    } else {
        verify(&record.plan.intended, post.as_ref())
    };
    let ok = !step_failed && record.mismatches.is_empty();
    record.post_state = post;
    record.status = if ok {
        ExecutionStatus::Succeeded
    } else {
        ExecutionStatus::Failed
    };
    record.error = done.iter().find_map(|r| r.error.clone()).or_else(|| {
        (!record.mismatches.is_empty()).then(|| "the post-state does not match the plan".into())
    });
    record.finished_at = Some(now);
    deps.executions
        .finish(&record, ExecutionStatus::Running)
        .await?;
    deps.executions
        .record_outcome(&account_key(&record.target), ok, now)
        .await?;
    let details = json!({
        "steps": done.iter().map(|r| json!({ "op": r.step.op(), "status": r.status, "awsRequestId": r.applied.aws_request_id })).collect::<Vec<_>>(),
        "mismatches": record.mismatches,
        "error": record.error,
    });
    let finished = req.finish_execution(ok, changed, actor, Some(details), now);
    req = transition(
        deps,
        &req,
        finished,
        Some(to_json(&record.pre_state)),
        record.post_state.as_ref().map(to_json),
        now,
    )
    .await?;
    let _ = req;
    Ok(if ok {
        Outcome::Executed(record)
    } else {
        Outcome::Failed(record)
    })
}

/// Rolls request `id` back (executed, or failed after a change), or
/// resumes a rollback in progress: each completed step's undo in reverse
/// order, what cannot be undone recorded as skipped with the reason.
pub async fn rollback(
    deps: &Deps<'_>,
    id: &str,
    reason: &str,
    settings: &Settings,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<Outcome> {
    let req = request(deps, id).await?;
    let mut record = deps.executions.get(id).await?.ok_or_else(|| {
        Error::Conflict(format!(
            "request {id} was not executed by the system: there is no pre-state to return to"
        ))
    })?;
    let req = match req.status {
        ApprovalStatus::Executed | ApprovalStatus::Failed => {
            let moved = req.apply(
                ApprovalEvent::StartRollback,
                actor,
                Some(reason.into()),
                None,
                now,
            );
            let next = transition(deps, &req, moved, None, None, now).await?;
            let from = record.status;
            record.status = ExecutionStatus::RollingBack;
            deps.executions.finish(&record, from).await?;
            next
        }
        ApprovalStatus::RollingBack => req,
        _ => {
            return Err(crate::domain::IllegalTransition {
                from: req.status,
                event: ApprovalEvent::StartRollback,
            }
            .into())
        }
    };
    let executed = deps.executions.steps(id, Phase::Execute).await?;
    let completed: Vec<Step> = executed
        .iter()
        .filter(|r| r.status == StepStatus::Completed)
        .map(|r| r.step.clone())
        .collect();
    let undos = rollback_plan(&completed, &record.pre_state);
    let restores_fully = undos
        .iter()
        .all(|u| matches!(u, Undo::Restore { .. } | Undo::Nothing));
    let steps: Vec<PhaseStep> = completed
        .iter()
        .rev()
        .zip(&undos)
        .map(|(original, u)| match u {
            Undo::Restore { step } => PhaseStep {
                step: step.clone(),
                run: true,
                caveat: None,
            },
            Undo::Partial { step, caveat } => PhaseStep {
                step: step.clone(),
                run: true,
                caveat: Some(caveat.clone()),
            },
            Undo::Nothing => PhaseStep {
                step: original.clone(),
                run: false,
                caveat: Some("nothing to undo: the step only added a copy, which is kept".into()),
            },
            Undo::Impossible { why } => PhaseStep {
                step: original.clone(),
                run: false,
                caveat: Some(why.clone()),
            },
        })
        .collect();
    let end = run_steps(
        deps,
        &record.target,
        id,
        Phase::Rollback,
        &steps,
        &executed,
        settings,
        actor,
        now,
    )
    .await?;
    let (done, failed) = match end {
        PhaseEnd::Busy => return Ok(Outcome::Busy),
        PhaseEnd::Done(d) => (d, false),
        PhaseEnd::Failed(d) => (d, true),
    };
    let post = deps.actuator.read_state(&record.target).await?;
    // Where every undo restores in place, the resource must read as before;
    // a new instance or volume has a new id, and its step says so.
    record.mismatches = match (&post, failed || !restores_fully) {
        (Some(p), false) => {
            let before = record.pre_state.snapshot();
            let after = p.snapshot();
            before
                .iter()
                .filter(|(f, v)| after.get(f) != Some(v))
                .map(|(f, v)| Mismatch {
                    field: *f,
                    expected: Some(v.clone()),
                    actual: after.get(f).cloned(),
                })
                .collect()
        }
        _ => vec![],
    };
    let ok = !failed && record.mismatches.is_empty();
    record.post_state = post;
    record.status = if ok {
        ExecutionStatus::RolledBack
    } else {
        ExecutionStatus::RollbackFailed
    };
    record.finished_at = Some(now);
    deps.executions
        .finish(&record, ExecutionStatus::RollingBack)
        .await?;
    let caveats: Vec<_> = done.iter().filter_map(|r| r.caveat.clone()).collect();
    let details = json!({ "caveats": caveats, "mismatches": record.mismatches });
    let event = if ok {
        ApprovalEvent::RollbackSucceeded
    } else {
        ApprovalEvent::RollbackFailed
    };
    let moved = req.apply(event, actor, None, Some(details), now);
    transition(
        deps,
        &req,
        moved,
        Some(to_json(&record.pre_state)),
        record.post_state.as_ref().map(to_json),
        now,
    )
    .await?;
    Ok(if ok {
        Outcome::RolledBack(record)
    } else {
        Outcome::RollbackFailed(record)
    })
}

#[cfg(test)]
mod tests;
