//! The processor process killed (SIGKILL) in the middle of a cycle, as a
//! Lambda sandbox can be: the message it held comes back after its
//! visibility timeout, a new process finishes the cycle, and nothing is
//! lost or doubled. The processor runs as `cycle-bench --processor`, the
//! real processor over the local SQS event source, in a child process.

use chrono::{DurationRound, Utc};
use finops_local::{estate, seed, Emulator, LocalStack, Template};
use shared::domain::{CycleParams, Job, JobSource, JobStatus, Service, Trigger};
use shared::dynamo::{DynamoApprovals, DynamoAudit, DynamoInventory, DynamoJobs};
use shared::queue::SqsJobQueue;
use shared::store::*;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn processor_child(emulator: &Emulator, stack: &LocalStack, job_id: &str, now: i64) -> Child {
    Command::new(env!("CARGO_BIN_EXE_cycle-bench"))
        .arg("--processor")
        .envs(stack.function_env("ProcessorFunction"))
        .env("LEASE_TTL_SECONDS", "2")
        .env("CHUNK_RESOURCES", "25")
        .env("AWS_ENDPOINT_URL", &emulator.endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("FINOPS_BENCH_JOB", job_id)
        .env("FINOPS_BENCH_QUEUE_URL", stack.queue_url("JobsQueue"))
        .env("FINOPS_BENCH_QUEUE_ARN", stack.queue_arn("JobsQueue"))
        .env("FINOPS_BENCH_NOW", now.to_string())
        .env("FINOPS_BENCH_TIMEOUT_S", "120")
        .env_remove("FINOPS_BENCH_SYNTHETIC_EC2")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the processor child starts")
}

#[tokio::test]
async fn a_processor_killed_mid_cycle_is_finished_by_the_next_without_duplicates() {
    let emulator = Emulator::start().expect("emulator");
    let aws = finops_local::sdk_config(&emulator.endpoint).await;
    let template = Template::load().unwrap();
    let stack = LocalStack::create(&aws, &emulator.endpoint, &template, "kill")
        .await
        .unwrap();
    // A message the killed process held comes back 3 s later (5,400 s in AWS).
    let sqs = aws_sdk_sqs::Client::new(&aws);
    sqs.set_queue_attributes()
        .queue_url(stack.queue_url("JobsQueue"))
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout,
            "3",
        )
        .send()
        .await
        .unwrap();

    let now = Utc::now();
    let set = shared::analysis::default_thresholds().unwrap();
    let fleet = estate::ec2_fleet(&set, now, 14, 150);
    seed::seed_series(&emulator.endpoint, &fleet.series)
        .await
        .unwrap();
    let ddb = aws_sdk_dynamodb::Client::new(&aws);
    let tokens = PageTokenCodec::new(b"kill-test-token-key-of-32-bytes!");
    let inventory =
        DynamoInventory::new(ddb.clone(), stack.table("InventoryTable"), tokens.clone());
    inventory.upsert(&fleet.resources).await.unwrap();
    let jobs = DynamoJobs::new(ddb.clone(), stack.table("JobsTable"));
    let queue = SqsJobQueue::new(sqs.clone(), stack.queue_url("JobsQueue"));
    let params = CycleParams::new(Trigger::Manual, JobSource::Rest, Some(vec![Service::Ec2]));
    let job = Job::cycle("job-killed", "test", &params, now);
    shared::jobs::submit(&jobs, &queue, job, now).await.unwrap();
    let bench_now = now
        .duration_trunc(chrono::Duration::hours(1))
        .unwrap_or(now)
        .timestamp();

    // The first process is killed once the cycle is under way.
    let mut first = processor_child(&emulator, &stack, "job-killed", bench_now);
    let started = Instant::now();
    loop {
        let j = jobs.get("job-killed", Utc::now()).await.unwrap().unwrap();
        let under_way =
            j.status == JobStatus::Running && j.progress.as_ref().is_some_and(|p| p.done > 0);
        if under_way {
            break;
        }
        assert!(
            !j.status.is_finished(),
            "finished before it could be killed"
        );
        assert!(started.elapsed() < Duration::from_secs(90), "never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.kill().expect("SIGKILL");
    let _ = first.wait();
    let killed_at = jobs.get("job-killed", Utc::now()).await.unwrap().unwrap();
    assert_eq!(killed_at.status, JobStatus::Running, "{killed_at:?}");

    // The next process gets the message back and finishes the cycle.
    let mut second = processor_child(&emulator, &stack, "job-killed", bench_now);
    let status = tokio::task::spawn_blocking(move || second.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status}");
    let done = jobs.get("job-killed", Utc::now()).await.unwrap().unwrap();
    assert_eq!(done.status, JobStatus::Succeeded, "{:?}", done.error);

    let approvals = DynamoApprovals::new(
        ddb.clone(),
        stack.table("ApprovalsTable"),
        stack.table("AuditTable"),
        tokens.clone(),
    );
    let requests = finops_local::all_requests(&approvals).await.unwrap();
    assert!(!requests.is_empty());
    let mut keys: Vec<_> = requests
        .iter()
        .map(|r| {
            (
                r.recommendation.resource_id.clone(),
                r.recommendation.action,
            )
        })
        .collect();
    keys.sort_by(|a, b| a.0.cmp(&b.0));
    keys.dedup();
    assert_eq!(keys.len(), requests.len(), "a request was opened twice");
    let audit = DynamoAudit::new(ddb, stack.table("AuditTable"), tokens);
    let count = |action: &'static str| {
        let audit = &audit;
        async move {
            let mut n = 0;
            let mut token = None;
            loop {
                let page = audit
                    .query(
                        &AuditQuery {
                            action: Some(action.to_string()),
                            ..Default::default()
                        },
                        Some(100),
                        token.as_deref(),
                        Utc::now(),
                    )
                    .await
                    .unwrap();
                n += page.items.len();
                token = page.next_token;
                if token.is_none() {
                    return n;
                }
            }
        }
    };
    assert_eq!(count("cycle.completed").await, 1);
    assert_eq!(count("approval.requested").await, requests.len());
}
