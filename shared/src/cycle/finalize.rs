//! The once-only final stage of a cycle: dependencies, batching, approval
//! requests, the sweep of pending requests (expiry, auto-approval policies),
//! the audit entry and completion.

use super::*;
use crate::execution::job::{execution_job, ExecutionParams};
use crate::policies::PolicyOutcome;
use futures::StreamExt;

/// The final stage, run once per cycle: dependencies, batching, approval
/// requests, expiry of stale requests, the audit entry, completion.
pub(super) async fn finalize(
    ports: &Ports<'_>,
    cfg: &CycleConfig,
    mut tracker: Tracker<'_, '_>,
    recs: Vec<Recommendation>,
    now: DateTime<Utc>,
) -> Result<CycleRun> {
    let job_id = tracker.run.job_id.clone();

    let t = std::time::Instant::now();
    let linked = recs.len() as u64;
    tracker.progress(Stage::Dependencies, 0, linked).await?;
    // Names are unique only within an account and region, so dependencies
    // are linked and batches ordered scope by scope, each with its own
    // share of the inventory (one Query a scope, not a Scan of the table).
    let mut by_scope: BTreeMap<Scope, Vec<Recommendation>> = BTreeMap::new();
    for rec in recs {
        by_scope
            .entry(Scope::new(rec.account_id.as_deref(), &rec.region))
            .or_default()
            .push(rec);
    }
    let mut inventory: BTreeMap<Scope, Vec<crate::domain::Resource>> = BTreeMap::new();
    for scope in by_scope.keys() {
        inventory.insert(scope.clone(), ports.inventory.in_scope(scope).await?);
    }
    let indexes: BTreeMap<&Scope, crate::analysis::DependencyIndex<'_>> = inventory
        .iter()
        .map(|(scope, resources)| (scope, crate::analysis::DependencyIndex::new(resources)))
        .collect();
    for (scope, recs) in by_scope.iter_mut() {
        if let Some(index) = indexes.get(scope) {
            index.link(recs);
        }
    }
    tracker
        .finish(StageOutcome {
            stage: Stage::Dependencies,
            ok: true,
            processed: linked,
            failed: 0,
            duration_ms: elapsed_ms(t),
            error: None,
        })
        .await?;

    let t = std::time::Instant::now();
    let mut batches: Vec<Vec<Recommendation>> = Vec::new();
    for (scope, recs) in by_scope {
        match indexes.get(&scope) {
            Some(index) => batches.extend(crate::analysis::order_actions(recs, index)),
            None => batches.extend(recs.into_iter().map(|r| vec![r])),
        }
    }
    crate::analysis::sort_batches(&mut batches);
    tracker
        .finish(StageOutcome {
            stage: Stage::Batch,
            ok: true,
            processed: batches.len() as u64,
            failed: 0,
            duration_ms: elapsed_ms(t),
            error: None,
        })
        .await?;

    let t = std::time::Instant::now();
    let total: usize = batches.iter().map(Vec::len).sum();
    tracker.progress(Stage::Approvals, 0, total as u64).await?;
    let (mut created, mut failed, mut last_error) = (0u64, 0u64, None);
    let recs: Vec<Recommendation> = batches.into_iter().flatten().collect();
    let count = recs.len() as u64;
    let savings: f64 = recs.iter().filter_map(|r| r.monthly_savings_usd).sum();
    let dry_run = tracker.run.dry_run;
    if !dry_run {
        // Most of a cycle's recommendations are still open from the last
        // cycle: a batched read of their open-locks (100 a call) skips them,
        // instead of a refused transaction and a read each.
        let keys: Vec<(crate::domain::ResourceKey, crate::domain::Action)> =
            recs.iter().map(|r| (r.key(), r.action)).collect();
        let open = ports.approvals.open_requests(&keys).await?;
        let recs: Vec<Recommendation> = recs
            .into_iter()
            .filter(|r| !open.contains_key(&(r.key(), r.action)))
            .collect();
        // Each request is its own transaction (request, open-lock, audit
        // entry), so they are independent: open a bounded number at once.
        // A retry of the cycle finds the ones already open through the lock.
        // Each request keeps the state its recommendation was made on, which
        // an execution compares with the live state (drift).
        let by_key: std::collections::HashMap<
            crate::domain::ResourceKey,
            &crate::domain::Resource,
        > = inventory.values().flatten().map(|r| (r.key(), r)).collect();
        let opened = futures::stream::iter(recs.into_iter().map(|rec| {
            let job_id = job_id.clone();
            let expected = by_key
                .get(&rec.key())
                .map(|r| crate::domain::execution::expected_from(r));
            async move {
                let mut request =
                    ApprovalRequest::new(rec, "cycle", Some(job_id), now, cfg.approval_ttl);
                if let Some(e) = expected.filter(|e| !e.is_empty()) {
                    request = request.with_resource_snapshot(e);
                }
                let result = approvals::open_request(ports.approvals, request, "cycle", now).await;
                if let Ok((request, CreateOutcome::Created)) = &result {
                    ports
                        .notifier
                        .publish(&Event::ApprovalRequestCreated {
                            request: request.clone(),
                        })
                        .await?;
                }
                result
            }
        }))
        .buffer_unordered(cfg.open_concurrency.max(1));
        futures::pin_mut!(opened);
        while let Some(result) = opened.next().await {
            match result {
                Ok((_, CreateOutcome::Created)) => created += 1,
                Ok((_, CreateOutcome::AlreadyOpen { .. })) => {}
                Err(e) if e.is_retryable() || !cfg.continue_on_error => return Err(e),
                Err(e) => {
                    failed += 1;
                    tracing::warn!(%job_id, error = %e, "an approval request could not be opened");
                    last_error = Some(super::public_error(&e, &job_id));
                }
            }
        }
    }
    let swept = if dry_run {
        Swept::default()
    } else {
        sweep_pending(ports, cfg, &job_id, now).await?
    };
    tracker
        .finish(StageOutcome {
            stage: Stage::Approvals,
            ok: failed == 0,
            processed: created + swept.expired + swept.auto_approved,
            failed,
            duration_ms: elapsed_ms(t),
            error: last_error,
        })
        .await?;

    let t = std::time::Instant::now();
    tracker.run.recommendations = count;
    tracker.run.monthly_savings_usd = crate::analysis::round2(savings);
    let summary = json!({
        "resourcesAnalysed": tracker.run.resources_analysed,
        "findings": tracker.run.findings,
        "recommendations": count,
        "approvalRequestsCreated": created,
        "approvalRequestsExpired": swept.expired,
        "approvalRequestsAutoApproved": swept.auto_approved,
        "policyDryRunMatches": swept.would_approve,
        "monthlySavingsUsd": tracker.run.monthly_savings_usd,
        "thresholdVersion": tracker.run.threshold_version,
        "dryRun": dry_run,
    });
    append_once(
        ports.audit,
        &AuditEntry {
            id: stable_id(&format!("{job_id}|completed")),
            entity_type: "cycle".into(),
            entity_id: job_id.clone(),
            action: AuditAction::CycleCompleted.name(),
            actor: "system".into(),
            at: tracker.run.started_at,
            outcome: Some("succeeded".into()),
            reason: None,
            pre_state: None,
            post_state: Some(summary.clone()),
            correlation_id: Some(job_id.clone()),
        },
    )
    .await?;
    tracker
        .finish(StageOutcome {
            stage: Stage::Audit,
            ok: true,
            processed: 1,
            failed: 0,
            duration_ms: elapsed_ms(t),
            error: None,
        })
        .await?;

    let partial = tracker.run.stages.iter().any(|s| !s.ok);
    tracker.run.status = if partial {
        RunStatus::Partial
    } else {
        RunStatus::Succeeded
    };
    tracker.run.finished_at = Some(Utc::now().max(now));
    ports.runs.put_run(&tracker.run).await?;
    settle_job(ports, &job_id, JobStatus::Succeeded, summary.clone(), now).await?;
    crate::observe::cycle_completed(&tracker.run);
    ports
        .notifier
        .publish(&Event::JobCompleted { job_id, summary })
        .await?;
    Ok(tracker.run)
}

/// What the sweep of pending requests did.
#[derive(Debug, Default)]
struct Swept {
    expired: u64,
    auto_approved: u64,
    /// Matches of dry-run policies: reported in the audit trail only.
    would_approve: u64,
}

/// Every pending request, once per cycle: past its deadline it expires;
/// otherwise the auto-approval policies are applied, and what one approves
/// is queued for execution (which waits for the policy's window and the
/// global one). New requests and those left from earlier cycles alike, so a
/// policy created today applies to what is already waiting.
async fn sweep_pending(
    ports: &Ports<'_>,
    cfg: &CycleConfig,
    job_id: &str,
    now: DateTime<Utc>,
) -> Result<Swept> {
    let policies: Vec<Policy> = ports
        .policies
        .all()
        .await?
        .into_iter()
        .filter(|p| p.enabled)
        .collect();
    let filter = ApprovalFilter {
        status: Some(ApprovalStatus::Pending),
        ..Default::default()
    };
    let mut swept = Swept::default();
    let mut token: Option<String> = None;
    loop {
        let page = ports
            .approvals
            .list(&filter, Some(100), token.as_deref())
            .await?;
        let outcomes = futures::stream::iter(
            page.items
                .into_iter()
                .map(|request| sweep_one(ports, &policies, request, job_id, now)),
        )
        .buffer_unordered(cfg.open_concurrency.max(1));
        futures::pin_mut!(outcomes);
        while let Some(outcome) = outcomes.next().await {
            match outcome? {
                Some(Sweep::Expired) => swept.expired += 1,
                Some(Sweep::Approved) => swept.auto_approved += 1,
                Some(Sweep::WouldApprove) => swept.would_approve += 1,
                None => {}
            }
        }
        match page.next_token {
            Some(t) => token = Some(t),
            None => return Ok(swept),
        }
    }
}

enum Sweep {
    Expired,
    Approved,
    WouldApprove,
}

async fn sweep_one(
    ports: &Ports<'_>,
    policies: &[Policy],
    request: ApprovalRequest,
    job_id: &str,
    now: DateTime<Utc>,
) -> Result<Option<Sweep>> {
    if request.expires_at <= now {
        let mut input =
            DecisionInput::new(ApprovalEvent::Expire, "system").reason("approval deadline passed");
        input.correlation_id = Some(job_id.to_string());
        return match approvals::decide(ports.approvals, &request.id, input, now).await {
            Ok((request, decision)) => {
                ports
                    .notifier
                    .publish(&Event::ApprovalDecisionMade { request, decision })
                    .await?;
                Ok(Some(Sweep::Expired))
            }
            // Someone decided it meanwhile.
            Err(Error::Conflict(_)) | Err(Error::IllegalTransition(_)) => Ok(None),
            Err(e) => Err(e),
        };
    }
    if policies.is_empty() {
        return Ok(None);
    }
    let facts = ResourceFacts {
        tags: request.recommendation.tags.clone(),
        account_id: request.recommendation.account_id.clone(),
    };
    let outcome = match crate::policies::apply(
        ports.approvals,
        ports.audit,
        policies,
        &request,
        &facts,
        now,
    )
    .await
    {
        Ok(o) => o,
        Err(Error::Conflict(_)) | Err(Error::IllegalTransition(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    match outcome {
        PolicyOutcome::NoMatch => Ok(None),
        PolicyOutcome::WouldApprove { .. } => Ok(Some(Sweep::WouldApprove)),
        PolicyOutcome::Approved {
            policy_id,
            request,
            decision,
        } => {
            // Keyed by the request and its version: a retried cycle finds
            // the request approved already (NoMatch above), and a racing
            // `execute` by a person shares this job.
            let params = ExecutionParams::Execute {
                request_id: request.id.clone(),
            };
            let job = execution_job(
                &params,
                request.version,
                &format!("policy:{policy_id}"),
                now,
            );
            ports
                .notifier
                .publish(&Event::ApprovalDecisionMade {
                    request: *request,
                    decision: *decision,
                })
                .await?;
            crate::jobs::submit(ports.jobs, ports.queue, job, now).await?;
            Ok(Some(Sweep::Approved))
        }
    }
}
