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
