//! The scheduler handler, called directly with the fixture events of
//! events/scheduler/, against tables and queues built from template.yaml.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use chrono::Utc;
use finops_local::LocalStack;
use scheduler::{handle, Config, Env, SchedulerError};
use shared::domain::{JobKind, JobMessage, JobStatus};
use shared::dynamo::DynamoJobs;
use shared::queue::SqsJobQueue;
use shared::store::JobStore;

fn event(name: &str) -> EventBridgeEvent {
    let path = format!(
        "{}/../../events/scheduler/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

struct Fixture {
    stack: LocalStack,
    jobs: DynamoJobs,
    queue: SqsJobQueue,
    sqs: aws_sdk_sqs::Client,
    config: Config,
}

/// Wires the handler exactly as `main` does, from the function's environment
/// in template.yaml resolved against the local stack.
async fn fixture() -> Fixture {
    let stack = LocalStack::isolated().await;
    let env = stack.function_env("SchedulerFunction");
    let config = Config::from_env(&Env::of(env)).unwrap();
    let sqs = aws_sdk_sqs::Client::new(&stack.config);
    Fixture {
        jobs: DynamoJobs::new(
            aws_sdk_dynamodb::Client::new(&stack.config),
            &config.jobs_table,
        ),
        queue: SqsJobQueue::new(sqs.clone(), &config.jobs_queue_url),
        sqs,
        config,
        stack,
    }
}

impl Fixture {
    async fn drain_messages(&self) -> Vec<JobMessage> {
        let mut out = Vec::new();
        loop {
            let got = self
                .sqs
                .receive_message()
                .queue_url(&self.config.jobs_queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(0)
                .send()
                .await
                .unwrap();
            let messages = got.messages.unwrap_or_default();
            if messages.is_empty() {
                return out;
            }
            for m in messages {
                out.push(serde_json::from_str(m.body().unwrap()).unwrap());
            }
        }
    }
}

#[tokio::test]
async fn one_scheduled_event_makes_one_job_and_one_message() {
    let f = fixture().await;
    let now = Utc::now();
    let out = handle(&f.jobs, &f.queue, event("scheduled-event.json"), now)
        .await
        .unwrap();
    assert_eq!(out.status, "queued");
    let job = f.jobs.get(&out.job_id, now).await.unwrap().unwrap();
    assert_eq!(
        (job.kind, job.status, job.enqueued),
        (JobKind::OptimizationCycle, JobStatus::Queued, true)
    );
    assert_eq!(job.requester, "scheduler");
    assert_eq!(job.params["trigger"], "scheduled");
    let messages = f.drain_messages().await;
    assert_eq!(
        messages,
        vec![JobMessage {
            job_id: out.job_id,
            kind: JobKind::OptimizationCycle,
            shard: None,
        }]
    );
    assert_eq!(f.stack.queue_url("JobsQueue"), f.config.jobs_queue_url);
}

#[tokio::test]
async fn the_same_event_twice_still_makes_one_job_and_one_message() {
    let f = fixture().await;
    let now = Utc::now();
    let first = handle(&f.jobs, &f.queue, event("scheduled-event.json"), now)
        .await
        .unwrap();
    let second = handle(&f.jobs, &f.queue, event("scheduled-event.json"), now)
        .await
        .unwrap();
    assert_eq!(first.job_id, second.job_id);
    assert_eq!((first.status, second.status), ("queued", "duplicate"));
    assert_eq!(f.drain_messages().await.len(), 1);

    // The next hour's firing is a new cycle.
    let next = handle(
        &f.jobs,
        &f.queue,
        event("scheduled-event-next-hour.json"),
        now,
    )
    .await
    .unwrap();
    assert_ne!(next.job_id, first.job_id);
    assert_eq!(f.drain_messages().await.len(), 1);
}

#[tokio::test]
async fn an_event_that_is_not_a_schedule_is_refused_and_changes_nothing() {
    let f = fixture().await;
    let err = handle(&f.jobs, &f.queue, event("not-a-schedule.json"), Utc::now())
        .await
        .unwrap_err();
    assert!(matches!(err, SchedulerError::BadEvent(_)), "{err}");
    assert!(f.drain_messages().await.is_empty());
    let diag: lambda_runtime::Diagnostic = err.into();
    assert_eq!(diag.error_type, "BadEvent");
}

#[test]
fn config_names_what_is_missing() {
    let err = Config::from_env(&Env::from_pairs(&[("JOBS_TABLE", "t")])).unwrap_err();
    assert!(err.to_string().contains("JOBS_QUEUE_URL"), "{err}");
}

#[tokio::test]
async fn a_fire_queues_the_execution_of_scheduled_requests_whose_window_opened() {
    use shared::domain::*;
    let stack = LocalStack::isolated().await;
    let s = scheduler::Scheduler::from_env(
        &Env::of(stack.function_env("SchedulerFunction")),
        &stack.config,
    )
    .unwrap();
    let approvals = s
        .approvals
        .as_ref()
        .expect("the template gives APPROVALS_TABLE");
    let mut e = event("scheduled-event.json");
    let fire = e.time.unwrap();
    let open = |offset_hours: i64, name: &str| {
        let name = format!("{}-{name}", stack.prefix);
        async move {
            let rec = Recommendation {
                id: Recommendation::stable_id(
                    &shared::domain::ResourceKey::new(None, "us-east-1", &name),
                    Action::Rightsize,
                ),
                resource_id: name.clone(),
                service: Service::Ec2,
                region: "us-east-1".into(),
                account_id: None,
                owner: None,
                tags: Default::default(),
                current_monthly_cost_usd: None,
                finding: FindingKind::OverProvisioned,
                action: Action::Rightsize,
                target_type: Some("m5.large".into()),
                monthly_savings_usd: Some(1.0),
                savings_percent: None,
                confidence: 0.9,
                risk: 1,
                reason: "test".into(),
                alternatives: vec![],
                dependencies: vec![],
                dependency_details: vec![],
                utilization_score: None,
                threshold_version: 1,
                created_at: fire,
            };
            let then = fire - chrono::Duration::hours(48);
            let (req, _) = shared::approvals::open(
                approvals,
                rec,
                "cycle",
                None,
                chrono::Duration::days(7),
                then,
            )
            .await
            .unwrap();
            let (req, _) = shared::approvals::decide(
                approvals,
                &req.id,
                shared::approvals::DecisionInput::new(ApprovalEvent::Approve, "alice"),
                then,
            )
            .await
            .unwrap();
            let moved = req
                .schedule(fire + chrono::Duration::hours(offset_hours), "alice", then)
                .unwrap();
            shared::approvals::record_transition(approvals, &req, moved, None, None, then)
                .await
                .unwrap()
                .0
        }
    };
    let due = open(-1, "due").await;
    let later = open(5, "later").await;
    assert_eq!(due.status, ApprovalStatus::Scheduled);
    e.id = Some(format!("{}-fire", stack.prefix));
    s.handle(e.clone(), Utc::now()).await.unwrap();
    let job = shared::execution::job::resume_job(&due.id, due.version, fire);
    let stored = s
        .jobs
        .get(&job.id, Utc::now())
        .await
        .unwrap()
        .expect("a job for the due request");
    assert_eq!(stored.kind, JobKind::Execution);
    assert_eq!(stored.params["requestId"], due.id.as_str());
    let not_yet = shared::execution::job::resume_job(&later.id, later.version, fire);
    assert!(s.jobs.get(&not_yet.id, Utc::now()).await.unwrap().is_none());
    // The same fire delivered again queues nothing new.
    s.handle(e, Utc::now()).await.unwrap();
}
