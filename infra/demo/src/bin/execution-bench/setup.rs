//! The execution benchmark's stage: an emulator with template.yaml's tables
//! and queues, an Organization of the management account and members (the
//! member role in each), `m5.xlarge` instances in each account, and one
//! approved rightsizing request per instance, opened and decided through
//! `shared::approvals` as the cycle and an approver do.

use aws_config::SdkConfig;
use aws_sdk_ec2::types::InstanceType;
use chrono::{DateTime, Utc};
use finops_demo::bench::org::{self, Organization};
use finops_demo::bench::wire::Wire;
use finops_local::{Emulator, LocalStack, Template};
use futures::{StreamExt, TryStreamExt};
use shared::approvals::{decide, open_request, DecisionInput};
use shared::domain::execution::expected_from;
use shared::domain::*;
use shared::dynamo::{DynamoApprovals, DynamoJobs};
use shared::execution::job::{execution_job, ExecutionParams};
use shared::queue::SqsJobQueue;
use shared::store::PageTokenCodec;
use std::time::Instant;

pub const ROLE: &str = "FinOpsDiscoveryRole";
pub const FROM: &str = "m5.xlarge";
pub const TO: &str = "m5.large";
const IMAGE: &str = "ami-12c6146b";

/// Everything one phase runs against.
pub struct Stage {
    pub emulator: Emulator,
    pub aws: SdkConfig,
    pub stack: LocalStack,
    pub org: Organization,
    /// (account, instance id), in creation order.
    pub instances: Vec<(String, String)>,
    /// The approved requests: (request id, version, account), as instances.
    pub requests: Vec<(String, u64, String)>,
    pub setup_s: f64,
}

/// A stage of `n` instances over `accounts` accounts (as even as it divides).
pub async fn stage(n: usize, accounts: usize, batch: usize) -> Result<Stage, String> {
    let t = Instant::now();
    let emulator = Emulator::start().map_err(|e| e.to_string())?;
    let aws = finops_local::sdk_config(&emulator.endpoint).await;
    let template = Template::load().map_err(|e| e.to_string())?;
    let stack = LocalStack::create(&aws, &emulator.endpoint, &template, "bench")
        .await
        .map_err(|e| e.to_string())?;
    let org = org::create(&aws, accounts.max(1) - 1, ROLE).await?;
    let mut instances = Vec::new();
    for (k, account) in org.accounts().into_iter().enumerate() {
        let mut left = n / accounts.max(1) + usize::from(k < n % accounts.max(1));
        let ec2 = aws_sdk_ec2::Client::new(&account.admin);
        while left > 0 {
            let m = left.min(batch.max(1));
            let out = ec2
                .run_instances()
                .image_id(IMAGE)
                .instance_type(InstanceType::from(FROM))
                .min_count(m as i32)
                .max_count(m as i32)
                .send()
                .await
                .map_err(|e| {
                    format!(
                        "RunInstances: {}",
                        aws_sdk_ec2::error::DisplayErrorContext(e)
                    )
                })?;
            instances.extend(
                out.instances()
                    .iter()
                    .filter_map(|i| i.instance_id())
                    .map(|id| (account.id.clone(), id.to_string())),
            );
            left -= m;
        }
    }
    let now = Utc::now();
    let store = approvals_store(&stack, &aws);
    let store = &store;
    let requests: Vec<(String, u64, String)> = futures::stream::iter(instances.clone())
        .map(|(account, id)| async move {
            let request = approved(store, &account, &id, now).await?;
            Ok::<_, String>((request.id, request.version, account))
        })
        .buffered(8)
        .try_collect()
        .await?;
    Ok(Stage {
        emulator,
        aws,
        stack,
        org,
        instances,
        requests,
        setup_s: t.elapsed().as_secs_f64(),
    })
}

pub fn approvals_store(stack: &LocalStack, aws: &SdkConfig) -> DynamoApprovals {
    DynamoApprovals::new(
        aws_sdk_dynamodb::Client::new(aws),
        stack.table("ApprovalsTable"),
        stack.table("AuditTable"),
        PageTokenCodec::new(b"execution-bench-page-token-key!!"),
    )
}

/// The rightsizing of instance `id` as the cycle opens it (with the state
/// it was made on), then approved.
async fn approved(
    store: &DynamoApprovals,
    account: &str,
    id: &str,
    now: DateTime<Utc>,
) -> Result<ApprovalRequest, String> {
    let mut resource = Resource::new(Service::Ec2, id, "us-east-1");
    resource.account_id = Some(account.to_string());
    resource.resource_type = Some(FROM.into());
    resource
        .attributes
        .insert("state".into(), serde_json::json!("running"));
    let rec = Recommendation {
        id: Recommendation::stable_id(
            &shared::domain::ResourceKey::new(None, "us-east-1", id),
            Action::Rightsize,
        ),
        resource_id: id.to_string(),
        service: Service::Ec2,
        region: "us-east-1".into(),
        account_id: Some(account.to_string()),
        owner: None,
        tags: Default::default(),
        current_monthly_cost_usd: Some(140.16),
        finding: FindingKind::OverProvisioned,
        action: Action::Rightsize,
        target_type: Some(TO.into()),
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
    let (request, _) = open_request(store, request, "cycle", now)
        .await
        .map_err(|e| format!("opening the request of {id}: {e}"))?;
    let (request, _) = decide(
        store,
        &request.id,
        DecisionInput::new(ApprovalEvent::Approve, "alice"),
        now,
    )
    .await
    .map_err(|e| format!("approving the request of {id}: {e}"))?;
    Ok(request)
}

/// Submits one execution job per request as the api does (`execution_job`
/// then `submit`: record, message, mark), through `wire`; returns the job ids.
pub async fn submit_all(
    stage: &Stage,
    wire: &Wire,
    requests: &[(String, u64, String)],
) -> Result<Vec<String>, String> {
    let aws = wire.config(&stage.aws);
    let jobs = DynamoJobs::new(
        aws_sdk_dynamodb::Client::new(&aws),
        stage.stack.table("JobsTable"),
    );
    let queue = SqsJobQueue::new(
        aws_sdk_sqs::Client::new(&aws),
        stage.stack.queue_url("JobsQueue"),
    );
    let (jobs, queue) = (&jobs, &queue);
    futures::stream::iter(requests.iter().cloned())
        .map(|(id, version, _)| async move {
            let now = Utc::now();
            let params = ExecutionParams::Execute { request_id: id };
            let job = execution_job(&params, version, "alice", now);
            shared::jobs::submit(jobs, queue, job, now)
                .await
                .map(|s| s.job().id.clone())
                .map_err(|e| format!("submit: {e}"))
        })
        .buffered(8)
        .try_collect()
        .await
}

/// Instances of `ids` (per account) that are `TO` and running now.
pub async fn rightsized(stage: &Stage) -> Result<(usize, usize), String> {
    let mut done = 0;
    let mut seen = 0;
    for account in stage.org.accounts() {
        let pages: Vec<_> = aws_sdk_ec2::Client::new(&account.admin)
            .describe_instances()
            .max_results(1000)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| format!("DescribeInstances: {e}"))?;
        for i in pages.iter().flat_map(|r| r.instances()) {
            seen += 1;
            let running = i.state().and_then(|s| s.name()).map(|s| s.as_str()) == Some("running");
            if running && i.instance_type().map(|t| t.as_str()) == Some(TO) {
                done += 1;
            }
        }
    }
    Ok((done, seen))
}
