//! An approved rightsizing carried out by the real path: execution jobs
//! (record + SQS message, as the api queues them), the local event source,
//! the processor with its AWS actuator, EC2 in the emulator as the judge.

mod common;

use chrono::Utc;
use common::{drain, instance, type_and_state};
use finops_local::event_source::EventSource;
use finops_local::LocalStack;
use processor::{Config, Env, Processor};
use shared::domain::execution::expected_from;
use shared::domain::*;
use shared::execution::job::{execution_job, ExecutionParams};
use shared::jobs::submit;
use shared::notify::{Event, Notifier};
use shared::store::{ApprovalStore, JobStore};
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

impl Recorder {
    fn take(&self) -> Vec<Event> {
        std::mem::take(&mut self.0.lock().unwrap())
    }
}

/// `GET /api/savings` from the api function behind the local REST gateway.
async fn savings(stack: &LocalStack) -> serde_json::Value {
    const SECRET: &str = "execution-job-test-signing-key-0123456789";
    let mut vars = stack.function_env("ApiFunction");
    for (k, v) in [
        ("AUTH_ISSUER", "test"),
        ("AUTH_AUDIENCE", "finops-lambda"),
        ("AUTH_HS256_SECRET", SECRET),
        ("PAGE_TOKEN_SECRET", SECRET),
    ] {
        vars.insert(k.into(), v.into());
    }
    let config = api::Config::from_env(&api::Env::of(vars)).unwrap();
    let app = Arc::new(api::App::new(
        config,
        &stack.config,
        Box::new(shared::notify::LogNotifier),
    ));
    let token = shared::auth::LocalClaims::new(
        &app.config.auth,
        "viewer",
        &[Role::Viewer],
        Utc::now(),
        chrono::Duration::hours(1),
    )
    .sign_hs256(SECRET.as_bytes())
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/api/savings?days=7",
        listener.local_addr().unwrap()
    );
    let served = app.clone();
    let server = tokio::spawn(finops_local::rest::serve_rest(listener, move |req| {
        let app = served.clone();
        async move { api::handle(&app, req).await }
    }));
    let body = reqwest::Client::new()
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    server.abort();
    body
}

#[tokio::test(flavor = "multi_thread")]
async fn an_approved_rightsizing_is_executed_once_verified_and_rolled_back_through_the_queue() {
    let stack = LocalStack::isolated().await;
    let config = Config::from_env(&Env::of(stack.function_env("ProcessorFunction"))).unwrap();
    let events = Recorder::default();
    let p = Processor::new(config, &stack.config, Box::new(events.clone()));
    let ec2 = aws_sdk_ec2::Client::new(&stack.config);
    let id = instance(&ec2, "m5.xlarge").await;
    let now = Utc::now();

    // The request as the cycle opens it: with the state it was made on.
    let mut resource = Resource::new(Service::Ec2, id.clone(), "us-east-1");
    resource.resource_type = Some("m5.xlarge".into());
    resource
        .attributes
        .insert("state".into(), serde_json::json!("running"));
    let rec = Recommendation {
        id: Recommendation::stable_id(
            &shared::domain::ResourceKey::new(None, "us-east-1", &id),
            Action::Rightsize,
        ),
        resource_id: id.clone(),
        service: Service::Ec2,
        region: "us-east-1".into(),
        account_id: None,
        owner: None,
        tags: Default::default(),
        current_monthly_cost_usd: Some(140.16),
        finding: FindingKind::OverProvisioned,
        action: Action::Rightsize,
        target_type: Some("m5.large".into()),
        monthly_savings_usd: Some(70.08),
        savings_percent: Some(50.0),
        confidence: 0.9,
        risk: 1,
        reason: "peak CPU 12 % over 14 days".into(),
        alternatives: vec![],
        dependencies: vec![],
        dependency_details: vec![],
        utilization_score: None,
        threshold_version: 1,
        created_at: now,
    };
    let request = ApprovalRequest::new(rec, "cycle", None, now, chrono::Duration::days(7))
        .with_resource_snapshot(expected_from(&resource));
    let (request, _) = shared::approvals::open_request(&p.approvals, request, "cycle", now)
        .await
        .unwrap();
    let (request, _) = shared::approvals::decide(
        &p.approvals,
        &request.id,
        shared::approvals::DecisionInput::new(ApprovalEvent::Approve, "alice"),
        now,
    )
    .await
    .unwrap();

    // Twenty approvers press execute at once: one job.
    let params = ExecutionParams::Execute {
        request_id: request.id.clone(),
    };
    let submitted = futures::future::join_all((0..20).map(|i| {
        let job = execution_job(&params, request.version, &format!("approver-{i}"), now);
        let p = &p;
        async move { submit(&p.jobs, &p.queue, job, now).await.unwrap() }
    }))
    .await;
    let ids: std::collections::BTreeSet<_> = submitted.iter().map(|s| s.job().id.clone()).collect();
    assert_eq!(ids.len(), 1, "one job for every racing caller");
    let job_id = ids.into_iter().next().unwrap();

    let source = EventSource::new(
        aws_sdk_sqs::Client::new(&stack.config),
        stack.queue_url("JobsQueue"),
        stack.queue_arn("JobsQueue"),
    );
    assert!(drain(&source, &p).await.is_empty());
    let job = p.jobs.get(&job_id, Utc::now()).await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Succeeded, "{:?}", job.error);
    let result = job.result.unwrap();
    assert_eq!(result["outcome"], "executed");
    assert_eq!(result["preState"]["details"]["instanceType"], "m5.xlarge");
    assert_eq!(result["postState"]["details"]["instanceType"], "m5.large");
    assert_eq!(
        type_and_state(&ec2, &id).await,
        ("m5.large".into(), "running".into())
    );
    let stored = p.approvals.get(&request.id).await.unwrap().unwrap();
    assert_eq!(stored.status, ApprovalStatus::Executed);

    let seen = events.take();
    let progress: Vec<(u32, u32, String)> = seen
        .iter()
        .filter_map(|e| match e {
            Event::ExecutionProgress {
                step, total, op, ..
            } => Some((*step, *total, op.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        progress,
        vec![
            (1, 3, "ec2_stop".to_string()),
            (2, 3, "ec2_modify_type".to_string()),
            (3, 3, "ec2_start".to_string())
        ]
    );
    let executed = seen
        .iter()
        .find_map(|e| match e {
            Event::OptimizationActionExecuted {
                request,
                pre_state,
                post_state,
            } => Some((request.status, pre_state.clone(), post_state.clone())),
            _ => None,
        })
        .expect("optimization_action_executed");
    assert_eq!(executed.0, ApprovalStatus::Executed);
    assert_eq!(executed.1["details"]["instanceType"], "m5.xlarge");
    assert_eq!(executed.2["details"]["instanceType"], "m5.large");
    let frame = serde_json::to_value(&seen[seen.len() - 1]).unwrap();
    assert_eq!(frame["type"], "job.completed");

    // Realised: priced from the states before and after, not the estimate.
    let catalog = shared::analysis::PriceCatalog::builtin();
    let price = |t: &str| {
        catalog
            .type_spec(Service::Ec2, "us-east-1", t)
            .unwrap()
            .monthly()
    };
    let expected = shared::analysis::round2(price("m5.xlarge") - price("m5.large"));
    let report = savings(&stack).await;
    let total = &report["savings"]["total"];
    assert_eq!(total["executions"], 1, "{report}");
    assert_eq!(total["estimatedMonthlyUsd"], 70.08);
    assert_eq!(total["realisedMonthlyUsd"], expected, "{report}");
    assert_eq!(total["fromEstimate"], 0);
    assert_eq!(report["savings"]["byService"]["ec2"]["executions"], 1);

    // The same message delivered again changes nothing and says so.
    p.queue
        .send_delayed(
            &JobMessage {
                job_id: job_id.clone(),
                kind: JobKind::Execution,
                shard: None,
            },
            0,
        )
        .await
        .unwrap();
    assert!(drain(&source, &p).await.is_empty());
    assert!(events.take().is_empty(), "a duplicate publishes nothing");

    // Rollback: a reason, its own job, the emulator shows the pre-state.
    let stored = p.approvals.get(&request.id).await.unwrap().unwrap();
    let back = ExecutionParams::Rollback {
        request_id: request.id.clone(),
        reason: "latency went up".into(),
    };
    let job = execution_job(&back, stored.version, "alice", Utc::now());
    let rollback_id = job.id.clone();
    submit(&p.jobs, &p.queue, job, Utc::now()).await.unwrap();
    assert!(drain(&source, &p).await.is_empty());
    let job = p.jobs.get(&rollback_id, Utc::now()).await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Succeeded, "{:?}", job.error);
    assert_eq!(
        type_and_state(&ec2, &id).await,
        ("m5.xlarge".into(), "running".into())
    );
    let stored = p.approvals.get(&request.id).await.unwrap().unwrap();
    assert_eq!(stored.status, ApprovalStatus::RolledBack);
    // A rolled-back change stops counting.
    let report = savings(&stack).await;
    assert_eq!(report["savings"]["total"]["executions"], 0, "{report}");
    assert_eq!(report["savings"]["rolledBack"], 1);
    assert!(events
        .take()
        .iter()
        .any(|e| matches!(e, Event::RollbackCompleted { request, .. } if request.status == ApprovalStatus::RolledBack)));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_drifted_instance_fails_the_job_and_is_left_alone_and_a_preview_changes_nothing() {
    let stack = LocalStack::isolated().await;
    let config = Config::from_env(&Env::of(stack.function_env("ProcessorFunction"))).unwrap();
    let events = Recorder::default();
    let p = Processor::new(config, &stack.config, Box::new(events.clone()));
    let ec2 = aws_sdk_ec2::Client::new(&stack.config);
    let id = instance(&ec2, "m5.xlarge").await;
    let now = Utc::now();
    let mut resource = Resource::new(Service::Ec2, id.clone(), "us-east-1");
    resource.resource_type = Some("m5.2xlarge".into());
    let rec = Recommendation {
        id: Recommendation::stable_id(
            &shared::domain::ResourceKey::new(None, "us-east-1", &id),
            Action::Rightsize,
        ),
        resource_id: id.clone(),
        service: Service::Ec2,
        region: "us-east-1".into(),
        account_id: None,
        owner: None,
        tags: Default::default(),
        current_monthly_cost_usd: None,
        finding: FindingKind::OverProvisioned,
        action: Action::Rightsize,
        target_type: Some("m5.large".into()),
        monthly_savings_usd: Some(10.0),
        savings_percent: None,
        confidence: 0.9,
        risk: 1,
        reason: "made on a 2xlarge".into(),
        alternatives: vec![],
        dependencies: vec![],
        dependency_details: vec![],
        utilization_score: None,
        threshold_version: 1,
        created_at: now,
    };
    // Made when the instance was a 2xlarge; it is an xlarge now.
    let request = ApprovalRequest::new(rec, "cycle", None, now, chrono::Duration::days(7))
        .with_resource_snapshot(expected_from(&resource));
    let (request, _) = shared::approvals::open_request(&p.approvals, request, "cycle", now)
        .await
        .unwrap();

    // A preview of the pending request: the live state and a failing drift check.
    let look = ExecutionParams::Preview {
        request_id: request.id.clone(),
    };
    let job = execution_job(&look, request.version, "alice", now);
    let preview_id = job.id.clone();
    submit(&p.jobs, &p.queue, job, now).await.unwrap();
    let source = EventSource::new(
        aws_sdk_sqs::Client::new(&stack.config),
        stack.queue_url("JobsQueue"),
        stack.queue_arn("JobsQueue"),
    );
    assert!(drain(&source, &p).await.is_empty());
    let job = p.jobs.get(&preview_id, Utc::now()).await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Succeeded, "{:?}", job.error);
    let preview = &job.result.unwrap()["preview"];
    assert_eq!(preview["preState"]["details"]["instanceType"], "m5.xlarge");
    let drift = preview["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "drift")
        .expect("a drift check");
    assert_eq!(drift["passed"], false, "{drift}");

    let (request, _) = shared::approvals::decide(
        &p.approvals,
        &request.id,
        shared::approvals::DecisionInput::new(ApprovalEvent::Approve, "alice"),
        now,
    )
    .await
    .unwrap();
    let run = ExecutionParams::Execute {
        request_id: request.id.clone(),
    };
    let job = execution_job(&run, request.version, "alice", now);
    let job_id = job.id.clone();
    submit(&p.jobs, &p.queue, job, now).await.unwrap();
    assert!(drain(&source, &p).await.is_empty());
    let job = p.jobs.get(&job_id, Utc::now()).await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Failed);
    assert!(
        job.error
            .as_deref()
            .unwrap_or_default()
            .starts_with("drifted"),
        "{:?}",
        job.error
    );
    assert_eq!(
        type_and_state(&ec2, &id).await,
        ("m5.xlarge".into(), "running".into())
    );
    let stored = p.approvals.get(&request.id).await.unwrap().unwrap();
    assert_eq!(stored.status, ApprovalStatus::Failed);
    assert!(events
        .take()
        .iter()
        .any(|e| matches!(e, Event::ExecutionFailed { resource_id, .. } if resource_id == &id)));
}
