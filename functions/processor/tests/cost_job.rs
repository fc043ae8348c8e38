//! A cost-analysis job through the real path: job record + SQS message,
//! the local event source, the processor, Cost Explorer in the emulator.

use chrono::Utc;
use finops_local::event_source::EventSource;
use finops_local::LocalStack;
use processor::{handle, Config, Env, Processor};
use serde_json::json;
use shared::domain::*;
use shared::jobs::submit;
use shared::notify::{Event, Notifier};
use shared::store::JobStore;
use std::sync::{Arc, Mutex};

#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Event>>>);

#[async_trait::async_trait]
impl Notifier for Recorder {
    async fn publish(&self, event: &Event) -> shared::Result<()> {
        self.0.lock().unwrap().push(event.clone());
        Ok(())
    }
}

#[tokio::test]
async fn cost_job_publishes_a_report_and_completes() {
    // Injected Cost Explorer answers are emulator-wide: an emulator of its own.
    let (_emulator, stack) = LocalStack::with_own_emulator().await;
    let env = stack.function_env("ProcessorFunction");
    let config = Config::from_env(&Env::of(env)).unwrap();
    let events = Recorder::default();
    let p = Processor::new(config, &stack.config, Box::new(events.clone()));
    stack
        .inject_costs(&json!({"results": [{
            "ResultsByTime": [{
                "TimePeriod": {"Start": "2026-10-01", "End": "2026-11-01"}, "Total": {}, "Estimated": false,
                "Groups": [
                    {"Keys": ["123456789012"], "Metrics": {"UnblendedCost": {"Amount": "812.40", "Unit": "USD"}}},
                    {"Keys": ["210987654321"], "Metrics": {"UnblendedCost": {"Amount": "95.10", "Unit": "USD"}}}
                ]
            }],
            "DimensionValueAttributes": []
        }]}))
        .await
        .unwrap();
    let now = Utc::now();
    let params = json!({"start": "2026-10-01", "end": "2026-11-01", "granularity": "MONTHLY", "groupBy": "account"});
    let good = Job::new("cost-1", JobKind::CostAnalysis, "ana", params, now);
    let bad = Job::new(
        "cost-2",
        JobKind::CostAnalysis,
        "ana",
        json!({"granularity": "WEEKLY"}),
        now,
    );
    submit(&p.jobs, &p.queue, good, now).await.unwrap();
    submit(&p.jobs, &p.queue, bad, now).await.unwrap();

    let source = EventSource::new(
        aws_sdk_sqs::Client::new(&stack.config),
        stack.queue_url("JobsQueue"),
        stack.queue_arn("JobsQueue"),
    );
    let batch = source.receive().await.unwrap();
    assert_eq!(batch.len(), 2);
    let response = handle(&p, batch.event.clone(), Utc::now()).await;
    assert!(response.batch_item_failures.is_empty());
    source.settle(&batch, &response, false).await.unwrap();

    let job = p.jobs.get("cost-1", Utc::now()).await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Succeeded);
    let result = job.result.unwrap();
    assert!(
        (result["total"].as_f64().unwrap() - 907.5).abs() < 1e-6,
        "{result}"
    );
    assert_eq!(result["byGroup"][0]["key"], "123456789012");
    let failed = p.jobs.get("cost-2", Utc::now()).await.unwrap().unwrap();
    assert_eq!(failed.status, JobStatus::Failed);
    assert!(failed.error.unwrap().contains("granularity"));

    let events = events.0.lock().unwrap();
    let reports: Vec<_> = events
        .iter()
        .filter(|e| matches!(e, Event::CostReport { job_id, .. } if job_id == "cost-1"))
        .collect();
    assert_eq!(reports.len(), 1);
    assert!(events
        .iter()
        .any(|e| matches!(e, Event::JobFailed { job_id, .. } if job_id == "cost-2")));
}

/// The WebSocket `analyzeCosts` path spends the requester's allowance too:
/// past it the job fails with the reason, and nothing reaches Cost Explorer.
#[tokio::test]
async fn a_cost_job_past_its_requesters_allowance_fails_with_the_reason() {
    let (_emulator, stack) = LocalStack::with_own_emulator().await;
    let mut env = stack.function_env("ProcessorFunction");
    env.insert("COST_EXPLORER_PAGES_PER_USER_HOUR".into(), "1".into());
    let config = Config::from_env(&Env::of(env)).unwrap();
    let events = Recorder::default();
    let p = Processor::new(config, &stack.config, Box::new(events.clone()));
    let month = |start: &str, end: &str| {
        json!({
            "ResultsByTime": [{"TimePeriod": {"Start": start, "End": end},
                "Total": {"UnblendedCost": {"Amount": "1.00", "Unit": "USD"}},
                "Groups": [], "Estimated": false}],
            "DimensionValueAttributes": []
        })
    };
    stack
        .inject_costs(&json!({"results": [month("2026-09-01", "2026-10-01"), month("2026-10-01", "2026-11-01")]}))
        .await
        .unwrap();
    let source = EventSource::new(
        aws_sdk_sqs::Client::new(&stack.config),
        stack.queue_url("JobsQueue"),
        stack.queue_arn("JobsQueue"),
    );
    let run = |id: &'static str, who: &'static str, start: &str, end: &str| {
        let now = Utc::now();
        let params = json!({"start": start, "end": end, "granularity": "MONTHLY"});
        let job = Job::new(id, JobKind::CostAnalysis, who, params, now);
        let (p, source) = (&p, &source);
        async move {
            submit(&p.jobs, &p.queue, job, now).await.unwrap();
            let batch = source.receive().await.unwrap();
            let response = handle(p, batch.event.clone(), Utc::now()).await;
            assert!(response.batch_item_failures.is_empty());
            source.settle(&batch, &response, false).await.unwrap();
            p.jobs.get(id, Utc::now()).await.unwrap().unwrap()
        }
    };
    let first = run("c-1", "ana", "2026-09-01", "2026-10-01").await;
    assert_eq!(first.status, JobStatus::Succeeded);
    let second = run("c-2", "ana", "2026-10-01", "2026-11-01").await;
    assert_eq!(second.status, JobStatus::Failed);
    let why = second.error.unwrap();
    assert!(why.contains("ana") && why.contains("allowance"), "{why}");
    assert_eq!(p.cost_explorer.calls(), 1);
    let third = run("c-3", "ben", "2026-10-01", "2026-11-01").await;
    assert_eq!(third.status, JobStatus::Succeeded, "{:?}", third.error);
    assert_eq!(p.cost_explorer.calls(), 2);
}
