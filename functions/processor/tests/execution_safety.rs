//! The execution job's safety under faults and limits, through SQS and the
//! processor with the AWS actuator, the emulator as the judge:
//!
//! - the emulator frozen (SIGSTOP) between two steps of a rightsizing, then
//!   the message redelivered: every step reaches AWS exactly once;
//! - the per-hour cap holds the second change back (deferred, unchanged);
//! - one failed execution opens the account's breaker, which holds the next.
//!
//! The actuator is the real one, wrapped to count the steps it is asked to
//! apply and, in the breaker test, to delete a volume just before its change
//! (someone else did, between the check and the change).

mod common;

use chrono::Utc;
use common::{
    drain, gp2_volume, instance, jobs_queue as source, type_and_state, volume_type, Quiet,
};
use finops_local::{Emulator, LocalStack, Template};
use processor::{handle, Config, Env, Processor};
use shared::discovery::AccountsMode;
use shared::domain::execution::{expected_from, ResourceState};
use shared::domain::*;
use shared::execution::job::{execution_job, ExecutionParams};
use shared::execution::{Actuator, Applied, AwsActuator, DryRun, StepCall, Target};
use shared::jobs::submit;
use shared::notify::{Event, Notifier};
use shared::store::{ApprovalStore, JobStore};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The real actuator, counting what it applies; `doomed` names a volume to
/// delete (through EC2, in the emulator) just before its first step.
struct Counting {
    inner: AwsActuator,
    applied: Mutex<Vec<(String, String)>>,
    ec2: aws_sdk_ec2::Client,
    doomed: Option<String>,
}

impl Counting {
    fn new(config: &aws_config::SdkConfig, doomed: Option<String>) -> Arc<Self> {
        Arc::new(Counting {
            inner: AwsActuator::new(config.clone(), &AccountsMode::SelfOnly),
            applied: Mutex::new(Vec::new()),
            ec2: aws_sdk_ec2::Client::new(config),
            doomed,
        })
    }

    fn applied(&self) -> Vec<(String, String)> {
        self.applied.lock().unwrap().clone()
    }
}

struct Shared(Arc<Counting>);

#[async_trait::async_trait]
impl Actuator for Shared {
    async fn read_state(&self, target: &Target) -> shared::Result<Option<ResourceState>> {
        self.0.inner.read_state(target).await
    }

    async fn apply(&self, call: StepCall<'_>) -> shared::Result<Applied> {
        if self.0.doomed.as_deref() == Some(call.target.resource_id.as_str()) {
            self.0
                .ec2
                .delete_volume()
                .volume_id(&call.target.resource_id)
                .send()
                .await
                .unwrap();
        }
        self.0
            .applied
            .lock()
            .unwrap()
            .push((call.target.resource_id.clone(), call.step.op()));
        self.0.inner.apply(call).await
    }

    async fn dry_run(&self, call: StepCall<'_>) -> shared::Result<DryRun> {
        self.0.inner.dry_run(call).await
    }
}

/// Freezes the emulator once, when the first step of an execution is done.
struct FreezeAfterFirstStep {
    emulator: Arc<Emulator>,
    frozen: AtomicBool,
}

#[async_trait::async_trait]
impl Notifier for FreezeAfterFirstStep {
    async fn publish(&self, event: &Event) -> shared::Result<()> {
        if let Event::ExecutionProgress { step: 1, .. } = event {
            if !self.frozen.swap(true, Ordering::SeqCst) {
                self.emulator.pause();
            }
        }
        Ok(())
    }
}

/// An approved request for `action` on `resource`, as the cycle opens it
/// (with the state the recommendation was made on) and an approver decides it.
async fn approved(
    p: &Processor,
    resource: &Resource,
    action: Action,
    target: &str,
) -> ApprovalRequest {
    let now = Utc::now();
    let id = resource.id.clone();
    let rec = Recommendation {
        id: Recommendation::stable_id(
            &shared::domain::ResourceKey::new(None, "us-east-1", &id),
            action,
        ),
        resource_id: id,
        service: resource.service,
        region: "us-east-1".into(),
        account_id: None,
        owner: None,
        tags: Default::default(),
        current_monthly_cost_usd: Some(140.16),
        finding: FindingKind::OverProvisioned,
        action,
        target_type: Some(target.into()),
        monthly_savings_usd: Some(10.0),
        savings_percent: Some(20.0),
        confidence: 0.9,
        risk: 1,
        reason: "test".into(),
        alternatives: vec![],
        dependencies: vec![],
        dependency_details: vec![],
        utilization_score: None,
        threshold_version: 1,
        created_at: now,
    };
    let request = ApprovalRequest::new(rec, "cycle", None, now, chrono::Duration::days(7))
        .with_resource_snapshot(expected_from(resource));
    let (request, _) = shared::approvals::open_request(&p.approvals, request, "cycle", now)
        .await
        .unwrap();
    shared::approvals::decide(
        &p.approvals,
        &request.id,
        shared::approvals::DecisionInput::new(ApprovalEvent::Approve, "alice"),
        now,
    )
    .await
    .unwrap()
    .0
}

async fn queue_execution(p: &Processor, request: &ApprovalRequest) -> String {
    let params = ExecutionParams::Execute {
        request_id: request.id.clone(),
    };
    let job = execution_job(&params, request.version, "alice", Utc::now());
    submit(&p.jobs, &p.queue, job, Utc::now())
        .await
        .unwrap()
        .job()
        .id
        .clone()
}

fn ec2_resource(id: &str, ty: &str) -> Resource {
    let mut r = Resource::new(Service::Ec2, id, "us-east-1");
    r.resource_type = Some(ty.into());
    r.attributes
        .insert("state".into(), serde_json::json!("running"));
    r
}

fn gp2_resource(id: &str) -> Resource {
    let mut r = Resource::new(Service::Ebs, id, "us-east-1");
    r.resource_type = Some("gp2".into());
    r.attributes
        .insert("sizeGiB".into(), serde_json::json!(100));
    r
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rightsizing_frozen_between_steps_and_redelivered_applies_each_step_once() {
    let emulator = Arc::new(Emulator::start().expect("emulator starts"));
    // The production timeouts, scaled down so a frozen call fails quickly.
    let config = finops_local::sdk_config(&emulator.endpoint)
        .await
        .to_builder()
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .connect_timeout(Duration::from_millis(500))
                .operation_attempt_timeout(Duration::from_millis(800))
                .operation_timeout(Duration::from_millis(2500))
                .build(),
        )
        .build();
    let stack = LocalStack::create(
        &config,
        &emulator.endpoint,
        &Template::load().unwrap(),
        "frz",
    )
    .await
    .unwrap();
    let actuator = Counting::new(&config, None);
    let notifier = FreezeAfterFirstStep {
        emulator: emulator.clone(),
        frozen: AtomicBool::new(false),
    };
    let env = Env::of(stack.function_env("ProcessorFunction"));
    let p = Processor::new(Config::from_env(&env).unwrap(), &config, Box::new(notifier))
        .with_actuator(Box::new(Shared(actuator.clone())));
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let id = instance(&ec2, "m5.xlarge").await;
    let request = approved(
        &p,
        &ec2_resource(&id, "m5.xlarge"),
        Action::Rightsize,
        "m5.large",
    )
    .await;
    let job_id = queue_execution(&p, &request).await;
    let source = source(&stack);
    let batch = source.receive().await.unwrap();
    assert_eq!(batch.len(), 1);

    // First delivery: the stop completes, then the emulator freezes and the
    // next step's claim times out: the message fails, to be redelivered.
    let first = handle(&p, batch.event.clone(), Utc::now()).await;
    assert_eq!(first.batch_item_failures.len(), 1, "{first:?}");
    emulator.resume();
    assert_eq!(
        actuator.applied(),
        vec![(id.clone(), "ec2_stop".to_string())]
    );

    // The redelivery, after the lease of a step it may have claimed ran
    // out: the stop is not repeated, the change and the start are made.
    let later = Utc::now() + chrono::Duration::minutes(16);
    let second = handle(&p, batch.event.clone(), later).await;
    assert!(second.batch_item_failures.is_empty(), "{second:?}");
    let ops: Vec<String> = actuator.applied().into_iter().map(|(_, op)| op).collect();
    assert_eq!(ops, ["ec2_stop", "ec2_modify_type", "ec2_start"]);
    assert_eq!(
        type_and_state(&ec2, &id).await,
        ("m5.large".to_string(), "running".to_string())
    );
    let request = p.approvals.get(&request.id).await.unwrap().unwrap();
    assert_eq!(request.status, ApprovalStatus::Executed);
    let job = p.jobs.get(&job_id, later).await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Succeeded, "{job:?}");
    // A third delivery does nothing.
    let third = handle(&p, batch.event.clone(), later).await;
    assert!(third.batch_item_failures.is_empty());
    assert_eq!(actuator.applied().len(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_hourly_cap_defers_the_change_past_it_and_changes_nothing() {
    let stack = LocalStack::isolated().await;
    let mut env = stack.function_env("ProcessorFunction");
    env.insert("CHANGES_PER_HOUR".into(), "1".into());
    let actuator = Counting::new(&stack.config, None);
    let p = Processor::new(
        Config::from_env(&Env::of(env)).unwrap(),
        &stack.config,
        Box::new(Quiet),
    )
    .with_actuator(Box::new(Shared(actuator.clone())));
    let ec2 = aws_sdk_ec2::Client::new(&stack.config);
    let (a, b) = (gp2_volume(&ec2).await, gp2_volume(&ec2).await);
    let first = approved(&p, &gp2_resource(&a), Action::ChangeStorageClass, "gp3").await;
    let second = approved(&p, &gp2_resource(&b), Action::ChangeStorageClass, "gp3").await;
    queue_execution(&p, &first).await;
    drain(&source(&stack), &p).await;
    let held = queue_execution(&p, &second).await;
    drain(&source(&stack), &p).await;

    assert_eq!(volume_type(&ec2, &a).await, "gp3");
    assert_eq!(volume_type(&ec2, &b).await, "gp2", "the cap holds it back");
    assert!(actuator.applied().iter().all(|(id, _)| id != &b));
    let second = p.approvals.get(&second.id).await.unwrap().unwrap();
    assert_eq!(second.status, ApprovalStatus::Approved);
    // Still running: its message comes back when the next hour opens.
    let job = p.jobs.get(&held, Utc::now()).await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Running, "{job:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_execution_opens_the_accounts_breaker_and_the_next_change_waits() {
    let stack = LocalStack::isolated().await;
    let ec2 = aws_sdk_ec2::Client::new(&stack.config);
    let (doomed, next) = (gp2_volume(&ec2).await, gp2_volume(&ec2).await);
    let mut env = stack.function_env("ProcessorFunction");
    env.insert("BREAKER_FAILURES".into(), "1".into());
    let actuator = Counting::new(&stack.config, Some(doomed.clone()));
    let p = Processor::new(
        Config::from_env(&Env::of(env)).unwrap(),
        &stack.config,
        Box::new(Quiet),
    )
    .with_actuator(Box::new(Shared(actuator.clone())));
    let failing = approved(
        &p,
        &gp2_resource(&doomed),
        Action::ChangeStorageClass,
        "gp3",
    )
    .await;
    let waiting = approved(&p, &gp2_resource(&next), Action::ChangeStorageClass, "gp3").await;
    queue_execution(&p, &failing).await;
    drain(&source(&stack), &p).await;
    let failing = p.approvals.get(&failing.id).await.unwrap().unwrap();
    assert_eq!(failing.status, ApprovalStatus::Failed, "{failing:#?}");

    let held = queue_execution(&p, &waiting).await;
    drain(&source(&stack), &p).await;
    assert_eq!(
        volume_type(&ec2, &next).await,
        "gp2",
        "the breaker holds it"
    );
    assert!(actuator.applied().iter().all(|(id, _)| id != &next));
    let waiting = p.approvals.get(&waiting.id).await.unwrap().unwrap();
    assert_eq!(waiting.status, ApprovalStatus::Approved);
    let job = p.jobs.get(&held, Utc::now()).await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Running, "{job:?}");
}
