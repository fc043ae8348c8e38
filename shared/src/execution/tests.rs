//! The use case against in-memory ports: a fake EC2 that applies steps to
//! its own state and counts every call, and stores that keep the same
//! conditions as the DynamoDB adapters.

use super::*;
use crate::domain::{Action, Decision, FindingKind, Recommendation, Service};
use crate::store::{ApprovalFilter, AuditQuery, CreateOutcome, Page};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

#[derive(Default)]
struct MemApprovals {
    requests: Mutex<HashMap<String, ApprovalRequest>>,
    decisions: Mutex<Vec<Decision>>,
    audits: Mutex<Vec<AuditEntry>>,
}

#[async_trait::async_trait]
impl ApprovalStore for MemApprovals {
    async fn create(&self, r: &ApprovalRequest, _: &AuditEntry) -> Result<CreateOutcome> {
        self.requests
            .lock()
            .unwrap()
            .insert(r.id.clone(), r.clone());
        Ok(CreateOutcome::Created)
    }
    async fn get(&self, id: &str) -> Result<Option<ApprovalRequest>> {
        Ok(self.requests.lock().unwrap().get(id).cloned())
    }
    async fn record(
        &self,
        cur: &ApprovalRequest,
        next: &ApprovalRequest,
        d: &Decision,
        a: &AuditEntry,
    ) -> Result<()> {
        let mut m = self.requests.lock().unwrap();
        let stored = m
            .get(&cur.id)
            .cloned()
            .ok_or_else(|| Error::not_found("approval request", &cur.id))?;
        if stored.version != cur.version || stored.status != cur.status {
            return Err(Error::Conflict("stale".into()));
        }
        m.insert(cur.id.clone(), next.clone());
        self.audits.lock().unwrap().push(a.clone());
        self.decisions.lock().unwrap().push(d.clone());
        Ok(())
    }
    async fn decisions(&self, _: &str) -> Result<Vec<Decision>> {
        Ok(self.decisions.lock().unwrap().clone())
    }
    async fn list(
        &self,
        _: &ApprovalFilter,
        _: Option<u32>,
        _: Option<&str>,
    ) -> Result<Page<ApprovalRequest>> {
        Ok(Page {
            items: vec![],
            next_token: None,
        })
    }
}

#[derive(Default)]
struct MemAudit(Mutex<BTreeMap<String, AuditEntry>>);

#[async_trait::async_trait]
impl AuditStore for MemAudit {
    async fn append(&self, e: &AuditEntry) -> Result<()> {
        let mut m = self.0.lock().unwrap();
        if m.contains_key(&e.id) {
            return Err(Error::AlreadyExists {
                entity: "audit entry",
                id: e.id.clone(),
            });
        }
        m.insert(e.id.clone(), e.clone());
        Ok(())
    }
    async fn query(
        &self,
        _: &AuditQuery,
        _: Option<u32>,
        _: Option<&str>,
        _: DateTime<Utc>,
    ) -> Result<Page<AuditEntry>> {
        Ok(Page {
            items: self.0.lock().unwrap().values().cloned().collect(),
            next_token: None,
        })
    }
}

#[derive(Default)]
struct MemExecutions {
    records: Mutex<HashMap<String, ExecutionRecord>>,
    steps: Mutex<BTreeMap<(String, String, u32), StepRecord>>,
    hours: Mutex<HashMap<String, std::collections::BTreeSet<String>>>,
    health: Mutex<HashMap<String, AccountHealth>>,
}

fn step_key(r: &StepRecord) -> (String, String, u32) {
    (r.request_id.clone(), r.phase.as_str().into(), r.index)
}

#[async_trait::async_trait]
impl ExecutionStore for MemExecutions {
    async fn begin(&self, r: &ExecutionRecord) -> Result<ExecutionRecord> {
        Ok(self
            .records
            .lock()
            .unwrap()
            .entry(r.request_id.clone())
            .or_insert_with(|| r.clone())
            .clone())
    }
    async fn get(&self, id: &str) -> Result<Option<ExecutionRecord>> {
        Ok(self.records.lock().unwrap().get(id).cloned())
    }
    async fn claim_step(&self, r: &StepRecord, now: DateTime<Utc>) -> Result<Claim> {
        let mut m = self.steps.lock().unwrap();
        match m.get(&step_key(r)) {
            Some(s) if s.status != StepStatus::Started => Ok(Claim::Done(s.clone())),
            Some(s) if s.lease_until > now => Ok(Claim::Busy),
            _ => {
                m.insert(step_key(r), r.clone());
                Ok(Claim::Claimed(r.clone()))
            }
        }
    }
    async fn finish_step(&self, r: &StepRecord) -> Result<()> {
        let mut m = self.steps.lock().unwrap();
        match m.get(&step_key(r)) {
            Some(s) if s.status == StepStatus::Started && s.started_at == r.started_at => {
                m.insert(step_key(r), r.clone());
                Ok(())
            }
            _ => Err(Error::Conflict("lost the step".into())),
        }
    }
    async fn steps(&self, id: &str, phase: Phase) -> Result<Vec<StepRecord>> {
        Ok(self
            .steps
            .lock()
            .unwrap()
            .values()
            .filter(|s| s.request_id == id && s.phase == phase)
            .cloned()
            .collect())
    }
    async fn finish(&self, r: &ExecutionRecord, from: ExecutionStatus) -> Result<()> {
        let mut m = self.records.lock().unwrap();
        match m.get(&r.request_id) {
            Some(s) if s.status == from => {
                m.insert(r.request_id.clone(), r.clone());
                Ok(())
            }
            _ => Err(Error::Conflict("execution moved".into())),
        }
    }
    async fn claim_change(
        &self,
        account: &str,
        hour: DateTime<Utc>,
        id: &str,
        cap: ChangeCap,
    ) -> Result<Option<HourCounts>> {
        let counts = self.hour_counts(account, hour).await?;
        {
            let mut m = self.hours.lock().unwrap();
            let key = format!("{account}|{hour}");
            let held = m.get(&key).is_some_and(|s| s.contains(id));
            if !held && (counts.account >= cap.per_account_per_hour || counts.total >= cap.per_hour)
            {
                return Ok(None);
            }
            m.entry(key).or_default().insert(id.into());
        }
        Ok(Some(self.hour_counts(account, hour).await?))
    }
    async fn hour_counts(&self, account: &str, hour: DateTime<Utc>) -> Result<HourCounts> {
        let m = self.hours.lock().unwrap();
        let total = m
            .iter()
            .filter(|(k, _)| k.ends_with(&format!("|{hour}")))
            .map(|(_, v)| v.len() as u32)
            .sum();
        let account = m
            .get(&format!("{account}|{hour}"))
            .map_or(0, |v| v.len() as u32);
        Ok(HourCounts { total, account })
    }
    async fn account_health(&self, a: &str) -> Result<AccountHealth> {
        Ok(self
            .health
            .lock()
            .unwrap()
            .get(a)
            .copied()
            .unwrap_or_default())
    }
    async fn record_outcome(&self, a: &str, ok: bool, now: DateTime<Utc>) -> Result<()> {
        let mut m = self.health.lock().unwrap();
        let h = m.entry(a.into()).or_default();
        if ok {
            *h = AccountHealth::default();
        } else {
            h.consecutive_failures += 1;
            h.last_failure_at = Some(now);
        }
        Ok(())
    }
}

/// One EC2 instance; every applied key is counted.
struct FakeEc2 {
    state: Mutex<Option<ResourceState>>,
    calls: Mutex<BTreeMap<String, u32>>,
    /// Fails the call of this op: `Some((op, retryable))`, once.
    fail: Mutex<Option<(String, bool)>>,
}

impl FakeEc2 {
    fn new(ty: &str, st: Ec2State) -> Self {
        FakeEc2 {
            state: Mutex::new(Some(ResourceState {
                resource_id: "i-1".into(),
                region: "us-east-1".into(),
                account_id: Some("111".into()),
                tags: BTreeMap::new(),
                details: ResourceDetails::Ec2Instance {
                    instance_type: ty.into(),
                    state: st,
                },
            })),
            calls: Mutex::new(BTreeMap::new()),
            fail: Mutex::new(None),
        }
    }
    fn set(&self, f: impl FnOnce(&mut ResourceDetails)) {
        if let Some(s) = self.state.lock().unwrap().as_mut() {
            f(&mut s.details);
        }
    }
    fn total_calls(&self) -> u32 {
        self.calls.lock().unwrap().values().sum()
    }
}

#[async_trait::async_trait]
impl Actuator for FakeEc2 {
    async fn read_state(&self, _: &Target) -> Result<Option<ResourceState>> {
        Ok(self.state.lock().unwrap().clone())
    }
    async fn apply(&self, call: StepCall<'_>) -> Result<Applied> {
        *self
            .calls
            .lock()
            .unwrap()
            .entry(call.key.as_str().into())
            .or_default() += 1;
        let op = call.step.op();
        let mut fail = self.fail.lock().unwrap();
        if fail.as_ref().is_some_and(|(o, _)| *o == op) {
            let (_, retryable) = fail.take().unwrap();
            return Err(if retryable {
                Error::Unavailable("throttled".into())
            } else {
                Error::Validation("refused".into())
            });
        }
        drop(fail);
        let mut guard = self.state.lock().unwrap();
        let Some(ResourceState {
            details:
                ResourceDetails::Ec2Instance {
                    instance_type,
                    state,
                },
            ..
        }) = guard.as_mut()
        else {
            return Err(Error::Validation("no instance".into()));
        };
        match call.step {
            Step::Ec2Stop => *state = Ec2State::Stopped,
            Step::Ec2Start => *state = Ec2State::Running,
            Step::Ec2ModifyType { to, .. } => {
                if *state != Ec2State::Stopped {
                    return Err(Error::Validation("IncorrectInstanceState".into()));
                }
                *instance_type = to.clone();
            }
            other => return Err(Error::Validation(format!("fake has no {}", other.op()))),
        }
        Ok(Applied {
            aws_request_id: Some(format!("req-{}", call.key.client_token())),
            output: None,
        })
    }
}

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-12-01T12:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

async fn approved(store: &MemApprovals, action: Action, target: Option<&str>) -> String {
    let rec = Recommendation {
        id: Recommendation::stable_id(
            &crate::domain::ResourceKey::new(None, "us-east-1", "i-1"),
            action,
        ),
        resource_id: "i-1".into(),
        service: Service::Ec2,
        region: "us-east-1".into(),
        account_id: None,
        owner: None,
        tags: Default::default(),
        current_monthly_cost_usd: None,
        finding: FindingKind::Underutilized,
        action,
        target_type: target.map(str::to_string),
        monthly_savings_usd: Some(40.0),
        savings_percent: None,
        confidence: 0.9,
        risk: 1,
        reason: "cpu low".into(),
        alternatives: vec![],
        dependencies: vec![],
        dependency_details: Vec::new(),
        utilization_score: None,
        threshold_version: 1,
        created_at: now(),
    };
    let req = ApprovalRequest::new(rec, "cycle", None, now(), Duration::days(7));
    let (req, _) = req
        .apply(ApprovalEvent::Approve, "alice", None, None, now())
        .unwrap();
    store
        .requests
        .lock()
        .unwrap()
        .insert(req.id.clone(), req.clone());
    req.id
}

struct World {
    approvals: MemApprovals,
    audit: MemAudit,
    executions: MemExecutions,
    ec2: FakeEc2,
}

impl World {
    fn new(ty: &str) -> Self {
        World {
            approvals: MemApprovals::default(),
            audit: MemAudit::default(),
            executions: MemExecutions::default(),
            ec2: FakeEc2::new(ty, Ec2State::Running),
        }
    }
    fn deps(&self) -> Deps<'_> {
        Deps {
            approvals: &self.approvals,
            audit: &self.audit,
            executions: &self.executions,
            actuator: &self.ec2,
            notifier: &crate::notify::LogNotifier,
        }
    }
    fn status(&self, id: &str) -> ApprovalStatus {
        self.approvals.requests.lock().unwrap()[id].status
    }
    fn snapshot(&self) -> StateSnapshot {
        self.ec2.state.lock().unwrap().as_ref().unwrap().snapshot()
    }
}

async fn run(
    w: &World,
    id: &str,
    expected: Option<&StateSnapshot>,
    s: &Settings,
    at: DateTime<Utc>,
) -> Result<Outcome> {
    execute(&w.deps(), id, Some("111".into()), expected, s, "system", at).await
}

#[tokio::test]
async fn a_rightsizing_runs_verifies_and_rolls_back() {
    let w = World::new("m5.xlarge");
    let id = approved(&w.approvals, Action::Rightsize, Some("m5.large")).await;
    let expected = w.snapshot();
    let out = run(&w, &id, Some(&expected), &Settings::default(), now())
        .await
        .unwrap();
    let Outcome::Executed(record) = out else {
        panic!("{out:?}")
    };
    assert_eq!(w.status(&id), ApprovalStatus::Executed);
    assert_eq!(w.snapshot()[&Field::Type], "m5.large");
    assert_eq!(w.snapshot()[&Field::State], "running");
    assert_eq!(record.pre_state.snapshot(), expected);
    assert_eq!(w.ec2.total_calls(), 3);
    // Pre- and post-state in the audit trail, and a step entry each with its AWS request id.
    let audit = w.audit.0.lock().unwrap().clone();
    let transitions = w.approvals.audits.lock().unwrap().clone();
    let done = transitions
        .iter()
        .find(|e| e.action == "approval.execute_succeeded")
        .unwrap();
    assert_eq!(
        done.pre_state.as_ref().unwrap()["resource"]["details"]["instanceType"],
        "m5.xlarge"
    );
    assert_eq!(
        done.post_state.as_ref().unwrap()["resource"]["details"]["instanceType"],
        "m5.large"
    );
    let steps: Vec<_> = audit
        .values()
        .filter(|e| e.action == "execution.step")
        .collect();
    assert_eq!(steps.len(), 3);
    assert!(steps
        .iter()
        .all(|e| e.post_state.as_ref().unwrap()["awsRequestId"].is_string()));

    let out = rollback(&w.deps(), &id, "slow", &Settings::default(), "bob", now())
        .await
        .unwrap();
    assert!(matches!(out, Outcome::RolledBack(_)), "{out:?}");
    assert_eq!(w.status(&id), ApprovalStatus::RolledBack);
    assert_eq!(w.snapshot(), expected);
    assert_eq!(w.ec2.total_calls(), 6);
}

#[tokio::test]
async fn drift_fails_the_request_and_changes_nothing() {
    let w = World::new("m5.xlarge");
    let id = approved(&w.approvals, Action::Rightsize, Some("m5.large")).await;
    let expected = w.snapshot();
    w.ec2.set(|d| {
        if let ResourceDetails::Ec2Instance { instance_type, .. } = d {
            *instance_type = "m5.2xlarge".into()
        }
    });
    let out = run(&w, &id, Some(&expected), &Settings::default(), now())
        .await
        .unwrap();
    let Outcome::Refused(Refusal::Drifted { fields }) = out else {
        panic!("{out:?}")
    };
    assert_eq!(fields[0].field, Field::Type);
    assert_eq!(w.ec2.total_calls(), 0);
    assert_eq!(w.status(&id), ApprovalStatus::Failed);
    // Nothing changed, so there is nothing to roll back.
    let err = rollback(&w.deps(), &id, "x", &Settings::default(), "bob", now())
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Conflict(_) | Error::IllegalTransition(_)),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_excluded_resource_is_not_touched() {
    let w = World::new("m5.xlarge");
    w.ec2
        .state
        .lock()
        .unwrap()
        .as_mut()
        .unwrap()
        .tags
        .insert(EXCLUSION_TAG.into(), "true".into());
    let id = approved(&w.approvals, Action::Stop, None).await;
    let out = run(&w, &id, None, &Settings::default(), now())
        .await
        .unwrap();
    assert!(
        matches!(out, Outcome::Refused(Refusal::Excluded { .. })),
        "{out:?}"
    );
    assert_eq!(w.ec2.total_calls(), 0);
}

#[tokio::test]
async fn outside_its_window_a_request_waits_then_runs_when_it_opens() {
    let w = World::new("m5.xlarge");
    let id = approved(&w.approvals, Action::Stop, None).await;
    let settings = Settings {
        schedule: Schedule(vec!["Mon-Fri 22:00-06:00 Europe/Paris".parse().unwrap()]),
        ..Settings::default()
    };
    let out = run(&w, &id, None, &settings, now()).await.unwrap();
    let Outcome::Scheduled { opens_at } = out else {
        panic!("{out:?}")
    };
    assert_eq!(w.status(&id), ApprovalStatus::Scheduled);
    assert_eq!(
        w.approvals.requests.lock().unwrap()[&id].scheduled_for,
        Some(opens_at)
    );
    // Asked again before it opens: still waiting, no second transition.
    assert!(matches!(
        run(&w, &id, None, &settings, now()).await.unwrap(),
        Outcome::Scheduled { .. }
    ));
    assert_eq!(w.ec2.total_calls(), 0);
    let out = run(&w, &id, None, &settings, opens_at).await.unwrap();
    assert!(matches!(out, Outcome::Executed(_)), "{out:?}");
    assert_eq!(w.snapshot()[&Field::State], "stopped");
}

#[tokio::test]
async fn a_crash_between_steps_resumes_without_repeating_a_completed_step() {
    let w = World::new("m5.xlarge");
    let id = approved(&w.approvals, Action::Rightsize, Some("m5.large")).await;
    *w.ec2.fail.lock().unwrap() = Some(("ec2_modify_type".into(), true));
    let err = run(&w, &id, None, &Settings::default(), now())
        .await
        .unwrap_err();
    assert!(err.is_retryable());
    assert_eq!(w.status(&id), ApprovalStatus::Executing);
    // Redelivered at once: the step's lease is held.
    assert_eq!(
        run(&w, &id, None, &Settings::default(), now())
            .await
            .unwrap(),
        Outcome::Busy
    );
    // Redelivered three times after the lease: one finishes it, the rest see it done.
    let later = now() + Duration::minutes(20);
    assert!(matches!(
        run(&w, &id, None, &Settings::default(), later)
            .await
            .unwrap(),
        Outcome::Executed(_)
    ));
    for _ in 0..2 {
        assert!(run(&w, &id, None, &Settings::default(), later)
            .await
            .is_err());
    }
    let calls = w.ec2.calls.lock().unwrap().clone();
    assert_eq!(
        calls[IdempotencyKey::new(&id, Phase::Execute, 0).as_str()],
        1,
        "stop once"
    );
    assert_eq!(
        calls[IdempotencyKey::new(&id, Phase::Execute, 1).as_str()],
        2,
        "the interrupted modify, again under its key"
    );
    assert_eq!(
        calls[IdempotencyKey::new(&id, Phase::Execute, 2).as_str()],
        1,
        "start once"
    );
    assert_eq!(w.snapshot()[&Field::Type], "m5.large");
}

#[tokio::test]
async fn a_failed_step_after_a_change_can_be_rolled_back() {
    let w = World::new("m5.xlarge");
    let id = approved(&w.approvals, Action::Rightsize, Some("m5.large")).await;
    *w.ec2.fail.lock().unwrap() = Some(("ec2_modify_type".into(), false));
    let out = run(&w, &id, None, &Settings::default(), now())
        .await
        .unwrap();
    assert!(matches!(out, Outcome::Failed(_)), "{out:?}");
    let req = w.approvals.requests.lock().unwrap()[&id].clone();
    assert_eq!(req.status, ApprovalStatus::Failed);
    assert!(req.changed_resource, "the stop changed it");
    assert_eq!(w.snapshot()[&Field::State], "stopped");
    let out = rollback(&w.deps(), &id, "undo", &Settings::default(), "bob", now())
        .await
        .unwrap();
    assert!(matches!(out, Outcome::RolledBack(_)), "{out:?}");
    assert_eq!(w.snapshot()[&Field::State], "running");
}

#[tokio::test]
async fn the_cap_and_the_breaker_stop_further_changes() {
    let settings = Settings {
        cap: ChangeCap {
            per_hour: 100,
            per_account_per_hour: 1,
        },
        ..Settings::default()
    };
    let w = World::new("m5.xlarge");
    let first = approved(&w.approvals, Action::Stop, None).await;
    assert!(matches!(
        run(&w, &first, None, &settings, now()).await.unwrap(),
        Outcome::Executed(_)
    ));
    // A second request in the same account and hour waits for the next hour.
    let w2 = World::new("m5.xlarge");
    // The hour's count holds another request (the fake's ids repeat across worlds).
    *w2.executions.hours.lock().unwrap() = w
        .executions
        .hours
        .lock()
        .unwrap()
        .keys()
        .map(|k| (k.clone(), ["another-request".to_string()].into()))
        .collect();
    let second = approved(&w2.approvals, Action::Stop, None).await;
    let out = run(&w2, &second, None, &settings, now()).await.unwrap();
    assert!(
        matches!(
            out,
            Outcome::Deferred {
                reason: "account_cap",
                ..
            }
        ),
        "{out:?}"
    );
    assert_eq!(w2.ec2.total_calls(), 0);
    assert_eq!(w2.status(&second), ApprovalStatus::Approved);

    let w3 = World::new("m5.xlarge");
    w3.executions.health.lock().unwrap().insert(
        "111".into(),
        AccountHealth {
            consecutive_failures: 3,
            last_failure_at: Some(now()),
        },
    );
    let third = approved(&w3.approvals, Action::Stop, None).await;
    let out = run(&w3, &third, None, &Settings::default(), now())
        .await
        .unwrap();
    assert!(
        matches!(
            out,
            Outcome::Deferred {
                reason: "account_breaker_open",
                ..
            }
        ),
        "{out:?}"
    );
    assert_eq!(w3.ec2.total_calls(), 0);
}

#[tokio::test]
async fn preview_changes_nothing_and_names_every_check() {
    let w = World::new("m5.xlarge");
    let id = approved(&w.approvals, Action::Rightsize, Some("m5.large")).await;
    let req = w.approvals.requests.lock().unwrap()[&id].clone();
    let p = preview(&w.deps(), &req, None, None, &Settings::default(), now())
        .await
        .unwrap();
    let names: Vec<_> = p.checks.iter().map(|c| c.name).collect();
    assert_eq!(names, ["exclusion_tag", "drift", "executable", "window"]);
    assert!(p.checks.iter().all(|c| c.passed));
    assert_eq!(p.plan.unwrap().steps.len(), 3);
    assert_eq!(p.dry_runs, vec![DryRun::NotOffered; 3]);
    assert_eq!(w.ec2.total_calls(), 0);
    assert_eq!(w.status(&id), ApprovalStatus::Approved);
}

#[tokio::test]
async fn the_requests_own_snapshot_is_what_drift_is_judged_against() {
    let w = World::new("m5.xlarge");
    let id = approved(&w.approvals, Action::Stop, None).await;
    {
        let mut m = w.approvals.requests.lock().unwrap();
        let req = m.get_mut(&id).unwrap();
        req.resource_snapshot = Some([(Field::Type, "m5.large".to_string())].into());
    }
    let req = w.approvals.requests.lock().unwrap()[&id].clone();
    let p = preview(&w.deps(), &req, None, None, &Settings::default(), now())
        .await
        .unwrap();
    assert!(!p.checks.iter().find(|c| c.name == "drift").unwrap().passed);
    let out = run(&w, &id, None, &Settings::default(), now())
        .await
        .unwrap();
    assert!(
        matches!(out, Outcome::Refused(Refusal::Drifted { .. })),
        "{out:?}"
    );
    assert_eq!(w.ec2.total_calls(), 0);
}
