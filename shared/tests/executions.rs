//! The executions and policies stores, and the execution use case on them,
//! against the emulator over HTTP, with tables built from template.yaml.
//! The AWS side is a fake actuator: the adapters of each service are
//! another change; here the emulator judges what DynamoDB kept.

use chrono::{DateTime, Duration, Utc};
use finops_local::LocalStack;
use shared::domain::execution::*;
use shared::domain::*;
use shared::dynamo::*;
use shared::execution::*;
use shared::store::*;
use shared::Error;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn ddb(stack: &LocalStack) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(&stack.config)
}

fn stores(stack: &LocalStack) -> (DynamoApprovals, DynamoAudit, DynamoExecutions) {
    let codec = PageTokenCodec::new("test-secret");
    (
        DynamoApprovals::new(
            ddb(stack),
            stack.table("ApprovalsTable"),
            stack.table("AuditTable"),
            codec.clone(),
        ),
        DynamoAudit::new(ddb(stack), stack.table("AuditTable"), codec),
        DynamoExecutions::new(ddb(stack), stack.table("ExecutionsTable")),
    )
}

/// A Lambda function's memory, kept here; every call counted per key.
struct FakeLambda {
    memory: Mutex<u32>,
    calls: Mutex<BTreeMap<String, u32>>,
    total: AtomicU32,
}

#[async_trait::async_trait]
impl Actuator for FakeLambda {
    async fn read_state(&self, t: &Target) -> shared::Result<Option<ResourceState>> {
        Ok(Some(ResourceState {
            resource_id: t.resource_id.clone(),
            region: t.region.clone(),
            account_id: t.account_id.clone(),
            tags: BTreeMap::new(),
            details: ResourceDetails::LambdaFunction {
                memory_mb: *self.memory.lock().unwrap(),
            },
        }))
    }
    async fn apply(&self, call: StepCall<'_>) -> shared::Result<Applied> {
        self.total.fetch_add(1, Ordering::SeqCst);
        *self
            .calls
            .lock()
            .unwrap()
            .entry(call.key.as_str().into())
            .or_default() += 1;
        match call.step {
            Step::LambdaSetMemory { to, .. } => *self.memory.lock().unwrap() = *to,
            other => return Err(Error::Validation(format!("no {}", other.op()))),
        }
        Ok(Applied {
            aws_request_id: Some(uuid::Uuid::new_v4().to_string()),
            output: None,
        })
    }
}

async fn approved_request(approvals: &DynamoApprovals, now: DateTime<Utc>) -> ApprovalRequest {
    let rec = Recommendation {
        id: Recommendation::stable_id(
            &shared::domain::ResourceKey::new(None, "us-east-1", "fn-1"),
            Action::ReduceMemory,
        ),
        resource_id: "fn-1".into(),
        service: Service::Lambda,
        region: "us-east-1".into(),
        account_id: None,
        owner: None,
        tags: Default::default(),
        current_monthly_cost_usd: None,
        finding: FindingKind::OverProvisioned,
        action: Action::ReduceMemory,
        target_type: Some("512 MB".into()),
        monthly_savings_usd: Some(12.0),
        savings_percent: None,
        confidence: 0.9,
        risk: 1,
        reason: "peak memory 180 MB of 1024 MB".into(),
        alternatives: vec![],
        dependencies: vec![],
        dependency_details: Vec::new(),
        utilization_score: None,
        threshold_version: 1,
        created_at: now,
    };
    let (req, _) = shared::approvals::open(
        approvals,
        rec,
        "cycle",
        Some("c1".into()),
        Duration::days(7),
        now,
    )
    .await
    .unwrap();
    let (req, _) = shared::approvals::decide(
        approvals,
        &req.id,
        shared::approvals::DecisionInput::new(ApprovalEvent::Approve, "alice"),
        now,
    )
    .await
    .unwrap();
    req
}

#[tokio::test]
async fn twenty_racing_executions_make_one_change_and_a_rollback_restores_it() {
    let stack = LocalStack::isolated().await;
    let (approvals, audit, executions) = stores(&stack);
    let now = t("2026-12-01T12:00:00Z");
    let req = approved_request(&approvals, now).await;
    let lambda = Arc::new(FakeLambda {
        memory: Mutex::new(1024),
        calls: Mutex::default(),
        total: AtomicU32::new(0),
    });
    let settings = Settings::default();
    let expected: StateSnapshot = [(Field::MemoryMb, "1024".to_string())].into();
    let mut runs = Vec::new();
    for _ in 0..20 {
        let (approvals, audit, executions, lambda, settings, expected, id) = (
            approvals.clone(),
            audit.clone(),
            executions.clone(),
            lambda.clone(),
            settings.clone(),
            expected.clone(),
            req.id.clone(),
        );
        runs.push(tokio::spawn(async move {
            let deps = Deps {
                approvals: &approvals,
                audit: &audit,
                executions: &executions,
                actuator: lambda.as_ref(),
                notifier: &shared::notify::LogNotifier,
            };
            execute(
                &deps,
                &id,
                Some("111".into()),
                Some(&expected),
                &settings,
                "system",
                now,
            )
            .await
        }));
    }
    let mut executed = 0;
    for r in runs {
        match r.await.unwrap() {
            Ok(Outcome::Executed(_)) => executed += 1,
            // Lost the race to move it, or found it moving / moved.
            Ok(Outcome::Busy) | Err(Error::Conflict(_)) | Err(Error::IllegalTransition(_)) => {}
            other => panic!("{other:?}"),
        }
    }
    assert!(executed <= 1);
    let stored = approvals.get(&req.id).await.unwrap().unwrap();
    // A racer that found the step held leaves the finishing to the holder;
    // if it raced ahead of the holder's finish, the next delivery ends it.
    if stored.status == ApprovalStatus::Executing {
        let deps = Deps {
            approvals: &approvals,
            audit: &audit,
            executions: &executions,
            actuator: lambda.as_ref(),
            notifier: &shared::notify::LogNotifier,
        };
        let later = now + Duration::minutes(20);
        assert!(matches!(
            execute(
                &deps,
                &req.id,
                Some("111".into()),
                None,
                &settings,
                "system",
                later
            )
            .await
            .unwrap(),
            Outcome::Executed(_)
        ));
    }
    let stored = approvals.get(&req.id).await.unwrap().unwrap();
    assert_eq!(stored.status, ApprovalStatus::Executed);
    assert!(stored.changed_resource);
    assert_eq!(*lambda.memory.lock().unwrap(), 512);
    assert_eq!(
        lambda.total.load(Ordering::SeqCst),
        1,
        "one AWS call for one step"
    );

    // What DynamoDB kept: the record with pre- and post-state, one completed step, one change counted.
    let record = executions.get(&req.id).await.unwrap().unwrap();
    assert_eq!(record.status, ExecutionStatus::Succeeded);
    assert_eq!(record.pre_state.snapshot()[&Field::MemoryMb], "1024");
    assert_eq!(
        record.post_state.as_ref().unwrap().snapshot()[&Field::MemoryMb],
        "512"
    );
    let steps = executions.steps(&req.id, Phase::Execute).await.unwrap();
    assert_eq!(steps.len(), 1);
    assert_eq!(steps[0].status, StepStatus::Completed);
    assert!(steps[0].applied.aws_request_id.is_some());
    assert_eq!(
        executions.hour_counts("111", hour_of(now)).await.unwrap(),
        HourCounts {
            total: 1,
            account: 1
        }
    );
    let trail = audit
        .query(
            &AuditQuery {
                entity_id: Some(req.id.clone()),
                ..AuditQuery::default()
            },
            Some(100),
            None,
            now,
        )
        .await
        .unwrap()
        .items;
    let actions: Vec<_> = trail.iter().map(|e| e.action.as_str()).collect();
    for a in [
        "approval.start_execution",
        "execution.step",
        "approval.execute_succeeded",
    ] {
        assert!(actions.contains(&a), "{a} in {actions:?}");
    }
    let done = trail
        .iter()
        .find(|e| e.action == "approval.execute_succeeded")
        .unwrap();
    assert_eq!(
        done.pre_state.as_ref().unwrap()["resource"]["details"]["memoryMb"],
        1024
    );
    assert_eq!(
        done.post_state.as_ref().unwrap()["resource"]["details"]["memoryMb"],
        512
    );

    let deps = Deps {
        approvals: &approvals,
        audit: &audit,
        executions: &executions,
        actuator: lambda.as_ref(),
        notifier: &shared::notify::LogNotifier,
    };
    let out = rollback(&deps, &req.id, "latency went up", &settings, "bob", now)
        .await
        .unwrap();
    assert!(matches!(out, Outcome::RolledBack(_)), "{out:?}");
    assert_eq!(*lambda.memory.lock().unwrap(), 1024);
    assert_eq!(
        approvals.get(&req.id).await.unwrap().unwrap().status,
        ApprovalStatus::RolledBack
    );
    // A second rollback is refused: rolled_back is final.
    assert!(matches!(
        rollback(&deps, &req.id, "again", &settings, "bob", now).await,
        Err(Error::IllegalTransition(_))
    ));
}

/// Twenty workers claim a change in one account at once, with room for 5:
/// exactly 5 are counted (a claim that lost a transaction conflict tries
/// again, as a redelivery would), and the others are told the cap is full.
#[tokio::test(flavor = "multi_thread")]
async fn racing_claims_never_pass_the_cap_together() {
    let stack = LocalStack::isolated().await;
    let (_, _, executions) = stores(&stack);
    let hour = hour_of(t("2026-12-01T12:00:00Z"));
    let cap = ChangeCap {
        per_hour: 100,
        per_account_per_hour: 5,
    };
    let outcomes = futures::future::join_all((0..20).map(|i| {
        let executions = &executions;
        async move {
            loop {
                match executions
                    .claim_change("111", hour, &format!("req-{i}"), cap)
                    .await
                {
                    Err(Error::Conflict(_)) => continue,
                    other => return other.unwrap(),
                }
            }
        }
    }))
    .await;
    let passed = outcomes.iter().filter(|o| o.is_some()).count();
    assert_eq!(passed, 5, "{outcomes:?}");
    assert_eq!(
        executions.hour_counts("111", hour).await.unwrap(),
        HourCounts {
            total: 5,
            account: 5
        }
    );
}

#[tokio::test]
async fn a_step_is_claimed_once_until_its_lease_runs_out_and_never_after_it_completed() {
    let stack = LocalStack::isolated().await;
    let (_, _, executions) = stores(&stack);
    let now = t("2026-12-01T12:00:00Z");
    let key = IdempotencyKey::new("req-9", Phase::Execute, 0);
    let rec = StepRecord {
        request_id: "req-9".into(),
        phase: Phase::Execute,
        index: 0,
        key,
        step: Step::Ec2Stop,
        status: StepStatus::Started,
        lease_until: now + Duration::minutes(15),
        started_at: now,
        finished_at: None,
        applied: Applied::default(),
        error: None,
        caveat: None,
    };
    assert!(matches!(
        executions.claim_step(&rec, now).await.unwrap(),
        Claim::Claimed(_)
    ));
    assert_eq!(executions.claim_step(&rec, now).await.unwrap(), Claim::Busy);
    // A takeover after the lease; the first worker's finish then loses.
    let later = now + Duration::minutes(16);
    let taken = StepRecord {
        started_at: later,
        lease_until: later + Duration::minutes(15),
        ..rec.clone()
    };
    assert!(matches!(
        executions.claim_step(&taken, later).await.unwrap(),
        Claim::Claimed(_)
    ));
    let stale = StepRecord {
        status: StepStatus::Completed,
        ..rec.clone()
    };
    assert!(matches!(
        executions.finish_step(&stale).await,
        Err(Error::Conflict(_))
    ));
    let done = StepRecord {
        status: StepStatus::Completed,
        applied: Applied {
            aws_request_id: Some("r-1".into()),
            output: None,
        },
        ..taken.clone()
    };
    executions.finish_step(&done).await.unwrap();
    let much_later = later + Duration::days(1);
    assert_eq!(
        executions.claim_step(&taken, much_later).await.unwrap(),
        Claim::Done(done.clone())
    );

    // The change count is per request, however often it is claimed; a
    // full cap takes no new request but still passes one it holds.
    let cap = ChangeCap {
        per_hour: 100,
        per_account_per_hour: 1,
    };
    for _ in 0..3 {
        assert!(executions
            .claim_change("111", hour_of(now), "req-9", cap)
            .await
            .unwrap()
            .is_some());
    }
    assert_eq!(
        executions
            .claim_change("111", hour_of(now), "req-11", cap)
            .await
            .unwrap(),
        None
    );
    executions
        .claim_change("222", hour_of(now), "req-10", cap)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        executions.hour_counts("111", hour_of(now)).await.unwrap(),
        HourCounts {
            total: 2,
            account: 1
        }
    );
    // The breaker's counts.
    executions.record_outcome("111", false, now).await.unwrap();
    executions.record_outcome("111", false, now).await.unwrap();
    assert_eq!(
        executions.account_health("111").await.unwrap(),
        AccountHealth {
            consecutive_failures: 2,
            last_failure_at: Some(now)
        }
    );
    executions.record_outcome("111", true, now).await.unwrap();
    assert_eq!(
        executions
            .account_health("111")
            .await
            .unwrap()
            .consecutive_failures,
        0
    );
}

#[tokio::test]
async fn policies_are_versioned_and_approve_only_what_they_match() {
    let stack = LocalStack::isolated().await;
    let (approvals, audit, _) = stores(&stack);
    let policies = DynamoPolicies::new(ddb(&stack), stack.table("PoliciesTable"));
    let now = t("2026-12-01T12:00:00Z");
    let mut p = Policy {
        id: "low-risk".into(),
        version: 1,
        description: None,
        enabled: true,
        dry_run: true,
        matcher: PolicyMatch {
            max_risk: 1,
            services: vec![Service::Lambda],
            ..PolicyMatch::default()
        },
        window: Schedule(vec!["Sat 01:00-03:00 UTC".parse().unwrap()]),
        updated_by: "admin".into(),
        updated_at: now,
    };
    policies.put(&p).await.unwrap();
    assert!(
        matches!(policies.put(&p).await, Err(Error::Conflict(_))),
        "version 1 exists"
    );
    assert_eq!(policies.all().await.unwrap(), vec![p.clone()]);

    let req = {
        let rec = Recommendation {
            id: Recommendation::stable_id(
                &shared::domain::ResourceKey::new(None, "us-east-1", "fn-2"),
                Action::ReduceMemory,
            ),
            resource_id: "fn-2".into(),
            service: Service::Lambda,
            region: "us-east-1".into(),
            account_id: None,
            owner: None,
            tags: Default::default(),
            current_monthly_cost_usd: None,
            finding: FindingKind::OverProvisioned,
            action: Action::ReduceMemory,
            target_type: Some("512 MB".into()),
            monthly_savings_usd: Some(3.0),
            savings_percent: None,
            confidence: 0.9,
            risk: 1,
            reason: "r".into(),
            alternatives: vec![],
            dependencies: vec![],
            dependency_details: Vec::new(),
            utilization_score: None,
            threshold_version: 1,
            created_at: now,
        };
        shared::approvals::open(&approvals, rec, "cycle", None, Duration::days(7), now)
            .await
            .unwrap()
            .0
    };
    let facts = ResourceFacts::default();
    // Dry run: reported, nothing changes.
    let out = shared::policies::apply(&approvals, &audit, &[p.clone()], &req, &facts, now)
        .await
        .unwrap();
    assert_eq!(
        out,
        shared::policies::PolicyOutcome::WouldApprove {
            policy_id: "low-risk".into()
        }
    );
    assert_eq!(
        approvals.get(&req.id).await.unwrap().unwrap().status,
        ApprovalStatus::Pending
    );
    // Live: approved as policy:<id>.
    p.dry_run = false;
    p.version = 2;
    policies.put(&p).await.unwrap();
    let stale = Policy {
        version: 2,
        ..p.clone()
    };
    assert!(
        matches!(policies.put(&stale).await, Err(Error::Conflict(_))),
        "based on version 1 again"
    );
    let out = shared::policies::apply(&approvals, &audit, &[p.clone()], &req, &facts, now)
        .await
        .unwrap();
    assert!(matches!(
        out,
        shared::policies::PolicyOutcome::Approved { .. }
    ));
    let decisions = approvals.decisions(&req.id).await.unwrap();
    assert_eq!(decisions.last().unwrap().actor, "policy:low-risk");
    let trail = audit
        .query(
            &AuditQuery {
                actor: Some("policy:low-risk".into()),
                ..AuditQuery::default()
            },
            Some(100),
            None,
            now,
        )
        .await
        .unwrap()
        .items;
    let actions: Vec<_> = trail.iter().map(|e| e.action.as_str()).collect();
    assert!(
        actions.contains(&"policy.dry_run") && actions.contains(&"approval.approve"),
        "{actions:?}"
    );
    // Something it does not match stays pending.
    let risky = Policy {
        matcher: PolicyMatch {
            max_risk: 0,
            ..p.matcher.clone()
        },
        ..p.clone()
    };
    assert!(!risky.matches(&req.recommendation, &facts));
}

#[tokio::test]
async fn the_new_statuses_round_trip_with_their_fields() {
    let stack = LocalStack::isolated().await;
    let (approvals, _, _) = stores(&stack);
    let now = t("2026-12-01T12:00:00Z");
    let req = approved_request(&approvals, now).await;
    let opens = now + Duration::hours(9);
    let moved = req.schedule(opens, "system", now).unwrap();
    let scheduled = shared::approvals::record_transition(&approvals, &req, moved, None, None, now)
        .await
        .unwrap()
        .0;
    let stored = approvals.get(&req.id).await.unwrap().unwrap();
    assert_eq!(stored, scheduled);
    assert_eq!(stored.scheduled_for, Some(opens));
    let listed = approvals
        .list(
            &ApprovalFilter {
                status: Some(ApprovalStatus::Scheduled),
                ..ApprovalFilter::default()
            },
            None,
            None,
        )
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1);
    let moved = stored
        .apply(
            ApprovalEvent::Cancel,
            "alice",
            Some("not this week".into()),
            None,
            now,
        )
        .unwrap();
    // A stale copy loses.
    let stale = moved.clone();
    shared::approvals::record_transition(&approvals, &stored, moved, None, None, now)
        .await
        .unwrap();
    assert!(matches!(
        shared::approvals::record_transition(&approvals, &stored, stale, None, None, now).await,
        Err(Error::Conflict(_))
    ));
    let stored = approvals.get(&req.id).await.unwrap().unwrap();
    assert_eq!(stored.status, ApprovalStatus::Cancelled);
    assert_eq!(stored.scheduled_for, None);
}
