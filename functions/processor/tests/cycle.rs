//! The processor against the emulator: real SQS delivery through the local
//! event source, real DynamoDB, real CloudWatch. Each test has an emulator of
//! its own, because discovery lists every metric the emulator holds.

use aws_sdk_cloudwatch::primitives::DateTime as SmithyTime;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};
use chrono::{DateTime, Duration, DurationRound, Utc};
use finops_local::event_source::EventSource;
use finops_local::{Emulator, LocalStack};
use processor::{handle, Config, Env, Processor};
use serde_json::json;
use shared::domain::*;
use shared::jobs::submit;
use shared::notify::{Event, Notifier};
use shared::store::*;
use std::sync::{Arc, Mutex};

type Hook = Arc<dyn Fn(&Event) + Send + Sync>;

/// Records every event; optionally runs a hook on each (to stop the emulator mid-cycle).
#[derive(Clone, Default)]
struct Recorder {
    events: Arc<Mutex<Vec<Event>>>,
    hook: Option<Hook>,
}

#[async_trait::async_trait]
impl Notifier for Recorder {
    async fn publish(&self, event: &Event) -> shared::Result<()> {
        self.events.lock().unwrap().push(event.clone());
        if let Some(hook) = &self.hook {
            hook(event);
        }
        Ok(())
    }
}

impl Recorder {
    fn count(&self, pred: impl Fn(&Event) -> bool) -> usize {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| pred(e))
            .count()
    }
}

struct Harness {
    emulator: Emulator,
    stack: LocalStack,
    env: std::collections::BTreeMap<String, String>,
}

async fn harness() -> Harness {
    let (emulator, stack) = LocalStack::with_own_emulator().await;
    let mut env = stack.function_env("ProcessorFunction");
    // Short lease so a crashed attempt's lease expires within the test.
    env.insert("LEASE_TTL_SECONDS".into(), "2".into());
    Harness {
        emulator,
        stack,
        env,
    }
}

impl Harness {
    fn config(&self, overrides: &[(&str, &str)]) -> Config {
        let mut env = self.env.clone();
        for (k, v) in overrides {
            env.insert(k.to_string(), v.to_string());
        }
        Config::from_env(&Env::of(env)).unwrap()
    }

    /// A processor whose SDK gives up quickly when the emulator is frozen.
    async fn processor(&self, overrides: &[(&str, &str)], notifier: Recorder) -> Processor {
        let aws = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url(&self.emulator.endpoint)
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "testing", "testing", None, None, "local",
            ))
            .timeout_config(
                aws_config::timeout::TimeoutConfig::builder()
                    .operation_attempt_timeout(std::time::Duration::from_millis(1500))
                    .build(),
            )
            .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(2))
            .load()
            .await;
        Processor::new(self.config(overrides), &aws, Box::new(notifier))
    }

    fn source(&self) -> EventSource {
        EventSource::new(
            aws_sdk_sqs::Client::new(&self.stack.config),
            self.stack.queue_url("JobsQueue"),
            self.stack.queue_arn("JobsQueue"),
        )
    }

    async fn submit_cycle(&self, p: &Processor, id: &str) -> Job {
        let job = Job::new(
            id,
            JobKind::OptimizationCycle,
            "alice",
            json!({"trigger": "manual", "services": ["ec2"]}),
            Utc::now(),
        );
        submit(&p.jobs, &p.queue, job, Utc::now())
            .await
            .unwrap()
            .job()
            .clone()
    }

    /// Idle and busy EC2 instances with 14 days of hourly CPU and network,
    /// put through the real PutMetricData API.
    async fn seed_ec2(&self, idle: usize, busy: usize) {
        let cw = aws_sdk_cloudwatch::Client::new(&self.stack.config);
        let end = Utc::now().duration_trunc(Duration::hours(1)).unwrap();
        let mut data: Vec<(String, &str, f64, StandardUnit)> = Vec::new();
        for i in 0..idle + busy {
            let id = format!("i-{i:04}");
            let is_idle = i < idle;
            for h in 0..(15 * 24) {
                let cpu = if is_idle {
                    1.0 + (h % 3) as f64 * 0.5
                } else {
                    55.0 + (h % 7) as f64 * 4.0
                };
                let net = if is_idle { 1_000.0 } else { 50_000_000.0 };
                data.push((id.clone(), "CPUUtilization", cpu, StandardUnit::Percent));
                data.push((id.clone(), "NetworkIn", net, StandardUnit::Bytes));
                data.push((id.clone(), "NetworkOut", net, StandardUnit::Bytes));
                let _ = h;
            }
        }
        // Timestamps: 3 metrics per hour per instance, hour index recovered from order.
        let per_instance = 15 * 24 * 3;
        let datums: Vec<MetricDatum> = data
            .into_iter()
            .enumerate()
            .map(|(n, (id, metric, value, unit))| {
                let hour = (n % per_instance) / 3;
                let ts = end - Duration::hours(hour as i64 + 1);
                MetricDatum::builder()
                    .metric_name(metric)
                    .dimensions(Dimension::builder().name("InstanceId").value(id).build())
                    .timestamp(SmithyTime::from_secs(ts.timestamp()))
                    .value(value)
                    .unit(unit)
                    .build()
            })
            .collect();
        for chunk in datums.chunks(1000) {
            cw.put_metric_data()
                .namespace("AWS/EC2")
                .set_metric_data(Some(chunk.to_vec()))
                .send()
                .await
                .unwrap();
        }
    }

    /// Delivers messages like Lambda's event source until the queue is empty
    /// (failed ones come back at once), at most `rounds` batches.
    async fn drain(&self, p: &Processor, batch_size: i32, rounds: usize) -> Vec<usize> {
        let mut source = self.source();
        source.batch_size = batch_size;
        let mut failures = Vec::new();
        for _ in 0..rounds {
            let batch = source.receive().await.unwrap();
            if batch.is_empty() {
                break;
            }
            let response = handle(p, batch.event.clone(), Utc::now()).await;
            failures.push(response.batch_item_failures.len());
            source.settle(&batch, &response, true).await.unwrap();
        }
        failures
    }
}

async fn all_requests(p: &Processor) -> Vec<ApprovalRequest> {
    finops_local::all_requests(&p.approvals).await.unwrap()
}

async fn audit_count(p: &Processor, action: &str) -> usize {
    let q = AuditQuery {
        action: Some(action.into()),
        ..Default::default()
    };
    p.audit
        .query(&q, Some(100), None, Utc::now())
        .await
        .unwrap()
        .items
        .len()
}

fn now() -> DateTime<Utc> {
    Utc::now()
}

#[tokio::test]
async fn the_same_message_three_times_runs_one_cycle() {
    let h = harness().await;
    h.seed_ec2(4, 3).await;
    let rec = Recorder::default();
    let p = h.processor(&[], rec.clone()).await;
    let job = h.submit_cycle(&p, "job-3x").await;

    let batch = h.source().receive().await.unwrap();
    assert_eq!(batch.len(), 1);
    // Three deliveries of the same message, at once.
    let (a, b, c) = tokio::join!(
        handle(&p, batch.event.clone(), now()),
        handle(&p, batch.event.clone(), now()),
        handle(&p, batch.event.clone(), now())
    );
    let failed: usize = [a, b, c].iter().map(|r| r.batch_item_failures.len()).sum();
    // Those that met the running attempt were told to retry; a retry finds the job done.
    for _ in 0..failed {
        let r = handle(&p, batch.event.clone(), now()).await;
        assert!(r.batch_item_failures.is_empty());
    }

    let done = p.jobs.get(&job.id, now()).await.unwrap().unwrap();
    assert_eq!(done.status, JobStatus::Succeeded);
    let runs = shared::store::CycleRunStore::recent_runs(&p.cycles, 100)
        .await
        .unwrap();
    assert_eq!(runs.len(), 1);
    let requests = all_requests(&p).await;
    assert_eq!(requests.len() as u64, runs[0].recommendations);
    assert!(
        requests.len() >= 4,
        "the idle instances are recommended: {}",
        requests.len()
    );
    let mut resources: Vec<_> = requests
        .iter()
        .map(|r| r.recommendation.resource_id.clone())
        .collect();
    resources.dedup();
    assert_eq!(resources.len(), requests.len());
    assert_eq!(audit_count(&p, "approval.requested").await, requests.len());
    assert_eq!(audit_count(&p, "cycle.completed").await, 1);
    assert_eq!(rec.count(|e| matches!(e, Event::JobCompleted { .. })), 1);
    // Progress came in stage order, ending at 100%.
    let percents: Vec<f64> = rec
        .events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            Event::JobProgress { percent, .. } => Some(*percent),
            _ => None,
        })
        .collect();
    assert!(percents.windows(2).all(|w| w[0] <= w[1]), "{percents:?}");
}

#[tokio::test]
async fn two_cycles_started_together_one_runs_the_other_is_skipped() {
    let h = harness().await;
    h.seed_ec2(2, 1).await;
    let p = h.processor(&[], Recorder::default()).await;
    let a = h.submit_cycle(&p, "job-a").await;
    let b = h.submit_cycle(&p, "job-b").await;
    let mut source = h.source();
    source.batch_size = 1;
    let first = source.receive().await.unwrap();
    let second = source.receive().await.unwrap();
    let (r1, r2) = tokio::join!(
        handle(&p, first.event.clone(), now()),
        handle(&p, second.event.clone(), now())
    );
    assert!(r1.batch_item_failures.is_empty() && r2.batch_item_failures.is_empty());

    let statuses = [
        p.jobs.get(&a.id, now()).await.unwrap().unwrap().status,
        p.jobs.get(&b.id, now()).await.unwrap().unwrap().status,
    ];
    let mut sorted = statuses.to_vec();
    sorted.sort_by_key(|s| s.as_str());
    assert_eq!(
        sorted,
        vec![JobStatus::Skipped, JobStatus::Succeeded],
        "{statuses:?}"
    );
    let runs = shared::store::CycleRunStore::recent_runs(&p.cycles, 100)
        .await
        .unwrap();
    let mut kinds: Vec<_> = runs.iter().map(|r| format!("{:?}", r.status)).collect();
    kinds.sort();
    assert_eq!(kinds, vec!["Skipped", "Succeeded"]);
}

#[tokio::test]
async fn a_cycle_interrupted_by_an_outage_completes_on_redelivery_without_duplicates() {
    let h = harness().await;
    h.seed_ec2(6, 1).await;
    let paused = Arc::new(Mutex::new(false));
    let flag = paused.clone();
    let pid = h
        .emulator
        .pid()
        .expect("this test started the emulator")
        .to_string();
    let rec = Recorder {
        events: Default::default(),
        // Freeze the emulator right after the first approval request exists:
        // the cycle is then mid-way through its approvals stage.
        hook: Some(Arc::new(move |e: &Event| {
            let mut done = flag.lock().unwrap();
            if matches!(e, Event::ApprovalRequestCreated { .. }) && !*done {
                *done = true;
                std::process::Command::new("kill")
                    .args(["-STOP", &pid])
                    .status()
                    .unwrap();
            }
        })),
    };
    let p = h.processor(&[], rec.clone()).await;
    let job = h.submit_cycle(&p, "job-outage").await;

    let source = h.source();
    let batch = source.receive().await.unwrap();
    let response = handle(&p, batch.event.clone(), now()).await;
    assert!(*paused.lock().unwrap(), "the hook froze the emulator");
    assert_eq!(
        response.batch_item_failures.len(),
        1,
        "the message is reported failed"
    );

    h.emulator.resume();
    source.settle(&batch, &response, true).await.unwrap();
    // The crashed attempt could not release its lease: wait for it to expire.
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let failures = h.drain(&p, 10, 5).await;
    assert_eq!(failures.last(), Some(&0), "{failures:?}");

    let done = p.jobs.get(&job.id, now()).await.unwrap().unwrap();
    assert_eq!(done.status, JobStatus::Succeeded);
    let requests = all_requests(&p).await;
    assert!(requests.len() >= 6);
    assert_eq!(audit_count(&p, "approval.requested").await, requests.len());
    assert_eq!(audit_count(&p, "cycle.completed").await, 1);
    let ids: std::collections::BTreeSet<_> = requests
        .iter()
        .map(|r| r.recommendation.resource_id.clone())
        .collect();
    assert_eq!(ids.len(), requests.len());
}

#[tokio::test]
async fn a_malformed_message_fails_alone_and_ends_in_the_dead_letter_queue() {
    let h = harness().await;
    let p = h.processor(&[], Recorder::default()).await;
    let sqs = aws_sdk_sqs::Client::new(&h.stack.config);
    // Nine jobs that are finished already (their messages are acknowledged) and one malformed message.
    for i in 0..9 {
        let id = format!("done-{i}");
        let job = Job::new(&id, JobKind::OptimizationCycle, "alice", json!({}), now());
        p.jobs.create(&job).await.unwrap();
        p.jobs
            .transition(&id, JobStatus::Running, JobOutcome::default(), now())
            .await
            .unwrap();
        p.jobs
            .transition(&id, JobStatus::Succeeded, JobOutcome::default(), now())
            .await
            .unwrap();
        let body = serde_json::to_string(&JobMessage {
            job_id: id,
            kind: JobKind::OptimizationCycle,
            shard: None,
        })
        .unwrap();
        sqs.send_message()
            .queue_url(h.stack.queue_url("JobsQueue"))
            .message_body(body)
            .send()
            .await
            .unwrap();
    }
    sqs.send_message()
        .queue_url(h.stack.queue_url("JobsQueue"))
        .message_body("{\"jobId\": 42")
        .send()
        .await
        .unwrap();

    let source = h.source();
    let batch = source.receive().await.unwrap();
    assert_eq!(batch.len(), 10);
    let response = handle(&p, batch.event.clone(), now()).await;
    assert_eq!(response.batch_item_failures.len(), 1);
    let bad = batch
        .event
        .records
        .iter()
        .find(|r| {
            r.message_id.as_deref()
                == Some(response.batch_item_failures[0].item_identifier.as_str())
        })
        .unwrap();
    assert_eq!(bad.body.as_deref(), Some("{\"jobId\": 42"));
    source.settle(&batch, &response, true).await.unwrap();

    // Redelivered until the queue's maxReceiveCount (5) moves it to the DLQ.
    let rounds = h.drain(&p, 10, 10).await;
    assert_eq!(rounds.len(), 4, "received 5 times in all: {rounds:?}");
    let dlq = sqs
        .receive_message()
        .queue_url(h.stack.queue_url("JobsDeadLetterQueue"))
        .max_number_of_messages(10)
        .send()
        .await
        .unwrap()
        .messages
        .unwrap_or_default();
    assert_eq!(dlq.len(), 1);
    assert_eq!(dlq[0].body(), Some("{\"jobId\": 42"));
}

#[tokio::test]
async fn a_sharded_cycle_on_two_workers_analyses_each_resource_once_and_finalises_once() {
    let h = harness().await;
    h.seed_ec2(9, 3).await;
    let rec = Recorder::default();
    let overrides = [("MAX_SHARD_RESOURCES", "4")];
    let w1 = h.processor(&overrides, rec.clone()).await;
    let w2 = h.processor(&overrides, rec.clone()).await;
    let job = h.submit_cycle(&w1, "job-sharded").await;

    let worker = |p: Processor| {
        let h = &h;
        async move {
            let mut source = h.source();
            source.batch_size = 1;
            for _ in 0..40 {
                let batch = source.receive().await.unwrap();
                if batch.is_empty() {
                    let j = p
                        .jobs
                        .get("job-sharded", Utc::now())
                        .await
                        .unwrap()
                        .unwrap();
                    if j.status.is_finished() {
                        break;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
                let response = handle(&p, batch.event.clone(), Utc::now()).await;
                source.settle(&batch, &response, true).await.unwrap();
            }
            p
        }
    };
    let (w1, _w2) = tokio::join!(worker(w1), worker(w2));

    let done = w1.jobs.get(&job.id, now()).await.unwrap().unwrap();
    assert_eq!(done.status, JobStatus::Succeeded, "{done:?}");
    let run = shared::store::CycleRunStore::get_run(&w1.cycles, &job.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(run.resources_analysed, 12, "every resource analysed once");
    let recs = w1.recommendations.all(&job.id).await.unwrap();
    let ids: std::collections::BTreeSet<_> = recs.iter().map(|r| r.resource_id.clone()).collect();
    assert_eq!(ids.len(), recs.len());
    assert!(recs.len() >= 9);
    assert_eq!(
        audit_count(&w1, "cycle.completed").await,
        1,
        "final stage ran once"
    );
    assert_eq!(rec.count(|e| matches!(e, Event::JobCompleted { .. })), 1);
    assert_eq!(all_requests(&w1).await.len(), recs.len());
}

#[tokio::test]
async fn a_dry_run_recommends_without_opening_approval_requests() {
    let h = harness().await;
    h.seed_ec2(3, 1).await;
    let rec = Recorder::default();
    let p = h.processor(&[], rec.clone()).await;
    let job = Job::new(
        "job-dry",
        JobKind::OptimizationCycle,
        "alice",
        json!({"trigger": "manual", "services": ["ec2"], "dryRun": true}),
        Utc::now(),
    );
    submit(&p.jobs, &p.queue, job, Utc::now()).await.unwrap();
    h.drain(&p, 10, 5).await;

    let done = p.jobs.get("job-dry", now()).await.unwrap().unwrap();
    assert_eq!(done.status, JobStatus::Succeeded);
    let recommendations = p.recommendations.all("job-dry").await.unwrap();
    assert!(recommendations.len() >= 3, "{}", recommendations.len());
    assert!(all_requests(&p).await.is_empty());
    assert_eq!(audit_count(&p, "approval.requested").await, 0);
    assert_eq!(
        rec.count(|e| matches!(e, Event::ApprovalRequestCreated { .. })),
        0
    );
    let result = done.result.expect("a completed job carries its summary");
    assert_eq!(result["dryRun"], true);
}

/// One in ten AWS answers replaced by a throttle or a 503 after the request
/// landed, on every client the processor has: the cycle completes through
/// the SDK's retries (or a redelivery), with every write once.
#[tokio::test]
async fn a_cycle_under_ten_percent_injected_faults_completes_with_nothing_doubled() {
    let h = harness().await;
    h.seed_ec2(4, 3).await;
    let faults = finops_local::faults::FaultInjector::new(10, 20261201);
    let aws = &h.stack.config;
    let ddb = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(aws)
            .interceptor(faults.clone())
            .build(),
    );
    let cloudwatch = aws_sdk_cloudwatch::Client::from_conf(
        aws_sdk_cloudwatch::config::Builder::from(aws)
            .interceptor(faults.clone())
            .build(),
    );
    let sqs = aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::config::Builder::from(aws)
            .interceptor(faults.clone())
            .build(),
    );
    let rec = Recorder::default();
    let p = Processor::with_clients(
        h.config(&[]),
        ddb,
        cloudwatch,
        sqs,
        aws_sdk_costexplorer::Client::new(aws),
        Box::new(rec.clone()),
    );
    // The job is submitted through a client without faults: what is under
    // test is the cycle.
    let clean = h.processor(&[], Recorder::default()).await;
    let job = h.submit_cycle(&clean, "job-faults").await;

    // Redeliveries as Lambda's event source would make them, until done.
    let mut rounds = 0;
    loop {
        let status = clean
            .jobs
            .get(&job.id, now())
            .await
            .unwrap()
            .unwrap()
            .status;
        if status.is_finished() || rounds > 20 {
            break;
        }
        h.drain(&p, 10, 1).await;
        rounds += 1;
        // A failed attempt's lease (2 s in this harness) must lapse first.
        if !clean
            .jobs
            .get(&job.id, now())
            .await
            .unwrap()
            .unwrap()
            .status
            .is_finished()
        {
            tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
        }
    }
    let (attempts, injected) = faults.counts();
    assert!(injected > 0, "no fault was injected in {attempts} attempts");
    let done = clean.jobs.get(&job.id, now()).await.unwrap().unwrap();
    assert_eq!(done.status, JobStatus::Succeeded, "{:?}", done.error);

    let requests = all_requests(&clean).await;
    assert!(requests.len() >= 4, "{}", requests.len());
    let mut resources: Vec<_> = requests
        .iter()
        .map(|r| {
            (
                r.recommendation.resource_id.clone(),
                r.recommendation.action,
            )
        })
        .collect();
    resources.sort_by(|a, b| a.0.cmp(&b.0));
    resources.dedup();
    assert_eq!(resources.len(), requests.len(), "a request opened twice");
    assert_eq!(
        audit_count(&clean, "approval.requested").await,
        requests.len()
    );
    assert_eq!(audit_count(&clean, "cycle.completed").await, 1);
    println!("{injected} faults injected in {attempts} attempts, {rounds} deliveries");
}

#[tokio::test]
async fn a_failed_job_tells_its_subscribers_a_category_not_the_aws_error() {
    let h = harness().await;
    let recorder = Recorder::default();
    let missing = "finops-thresholds-that-does-not-exist";
    let p = h
        .processor(&[("THRESHOLDS_TABLE", missing)], recorder.clone())
        .await;
    let job = h.submit_cycle(&p, "job-missing-table").await;
    h.drain(&p, 10, 10).await;
    let job = p.jobs.get(&job.id, Utc::now()).await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Failed);
    let failed: Vec<String> = recorder
        .events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            Event::JobFailed { error, .. } => Some(error.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    for text in [job.error.clone().unwrap_or_default(), failed[0].clone()] {
        assert!(
            text.contains("job-missing-table"),
            "names its reference: {text}"
        );
        for internal in [missing, "ResourceNotFound", "Exception", "arn:"] {
            assert!(!text.contains(internal), "{internal} in {text}");
        }
    }
}

/// The final stage opens its requests several at once, each in its own
/// transaction: every recommendation gets exactly one request with one audit
/// entry, a second cycle opens none again (the open-lock), and a resource
/// tagged `finops:exclude=true` is never recommended.
#[tokio::test]
async fn requests_open_concurrently_once_each_and_an_excluded_resource_gets_none() {
    let h = harness().await;
    h.seed_ec2(12, 2).await;
    let rec = Recorder::default();
    let p = h.processor(&[("OPEN_CONCURRENCY", "8")], rec.clone()).await;
    assert_eq!(p.config.cycle.open_concurrency, 8);
    let mut excluded = Resource::new(Service::Ec2, "i-0000", "us-east-1");
    excluded.resource_type = Some("m5.large".into());
    excluded.tags.insert("finops:exclude".into(), "true".into());
    p.inventory.upsert(&[excluded]).await.unwrap();

    h.submit_cycle(&p, "job-par-1").await;
    h.drain(&p, 10, 5).await;
    let requests = all_requests(&p).await;
    assert_eq!(requests.len(), 11, "12 idle instances, one excluded");
    assert!(requests
        .iter()
        .all(|r| r.recommendation.resource_id != "i-0000"));
    let mut ids: Vec<_> = requests
        .iter()
        .map(|r| r.recommendation.resource_id.clone())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 11);
    assert_eq!(audit_count(&p, "approval.requested").await, 11);
    assert_eq!(
        rec.count(|e| matches!(e, Event::ApprovalRequestCreated { .. })),
        11
    );

    h.submit_cycle(&p, "job-par-2").await;
    h.drain(&p, 10, 5).await;
    let done = p.jobs.get("job-par-2", now()).await.unwrap().unwrap();
    assert_eq!(done.status, JobStatus::Succeeded);
    assert_eq!(done.result.unwrap()["approvalRequestsCreated"], 0);
    assert_eq!(all_requests(&p).await.len(), 11);
    assert_eq!(audit_count(&p, "approval.requested").await, 11);
}
