//! A cycle over an Organization and two regions against the emulator: each
//! (account, region) is its own SQS message, discovered through the member
//! role assumed in its account; the account without the role is reported on
//! its coverage and the others complete; the final stage runs once.

use aws_config::SdkConfig;
use chrono::Utc;
use finops_local::event_source::EventSource;
use finops_local::LocalStack;
use processor::{handle, Config, Env, Processor};
use serde_json::json;
use shared::domain::*;
use shared::jobs::submit;
use shared::notify::{Event, Notifier};
use shared::store::*;

struct Quiet;

#[async_trait::async_trait]
impl Notifier for Quiet {
    async fn publish(&self, _: &Event) -> shared::Result<()> {
        Ok(())
    }
}

async fn as_account(config: &SdkConfig, account: &str, role: &str) -> SdkConfig {
    let provider =
        aws_config::sts::AssumeRoleProvider::builder(format!("arn:aws:iam::{account}:role/{role}"))
            .session_name("setup")
            .configure(config)
            .build()
            .await;
    config
        .to_builder()
        .credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(provider),
        )
        .build()
}

#[tokio::test]
async fn every_account_and_region_is_a_unit_and_a_failing_account_does_not_stop_the_others() {
    let (_emulator, stack) = LocalStack::with_own_emulator().await;
    let org = aws_sdk_organizations::Client::new(&stack.config);
    org.create_organization().send().await.unwrap();
    let mut members = Vec::new();
    for name in ["alpha", "beta", "gamma"] {
        let status = org
            .create_account()
            .email(format!("{name}@example.com"))
            .account_name(name)
            .send()
            .await
            .unwrap()
            .create_account_status
            .unwrap();
        members.push(status.account_id.unwrap());
    }
    let regions = ["us-east-1", "eu-west-1"];
    for (k, account) in members.iter().enumerate() {
        let admin = as_account(&stack.config, account, "OrganizationAccountAccessRole").await;
        // gamma never got the member role.
        if k < 2 {
            aws_sdk_iam::Client::new(&admin)
                .create_role()
                .role_name("FinOpsDiscoveryRole")
                .assume_role_policy_document("{}")
                .send()
                .await
                .unwrap();
        }
        for region in regions {
            let c = admin
                .to_builder()
                .region(aws_config::Region::new(region))
                .build();
            // The same DynamoDB tables, by name, in every account and region
            // (names AWS makes unique only there), each with its own metrics.
            if k < 2 {
                let mut tables = finops_local::estate::of_mix(
                    &shared::analysis::default_thresholds().unwrap(),
                    Utc::now(),
                    14,
                    &[(Service::DynamoDb, 4)],
                );
                for r in &mut tables.resources {
                    r.region = region.to_string();
                }
                finops_local::aws_estate::create(&admin, &mut tables)
                    .await
                    .unwrap();
                finops_local::seed::seed_series_in(
                    &stack.endpoint,
                    Some(account),
                    Some(region),
                    &tables.series,
                )
                .await
                .unwrap();
            }
            aws_sdk_ec2::Client::new(&c)
                .run_instances()
                .image_id("ami-12c6146b")
                .instance_type(aws_sdk_ec2::types::InstanceType::M5Large)
                .min_count(1)
                .max_count(1)
                .send()
                .await
                .unwrap();
        }
    }
    let mut env = stack.function_env("ProcessorFunction");
    env.insert("REGIONS".into(), regions.join(","));
    env.insert("ACCOUNTS_MODE".into(), "organization".into());
    let config = Config::from_env(&Env::of(env)).unwrap();
    let p = Processor::new(config, &stack.config, Box::new(Quiet));
    let job = Job::new(
        "job-org",
        JobKind::OptimizationCycle,
        "alice",
        json!({"trigger": "manual", "services": ["ec2", "dynamodb"]}),
        Utc::now(),
    );
    submit(&p.jobs, &p.queue, job, Utc::now()).await.unwrap();

    let mut source = EventSource::new(
        aws_sdk_sqs::Client::new(&stack.config),
        stack.queue_url("JobsQueue"),
        stack.queue_arn("JobsQueue"),
    );
    source.batch_size = 4;
    for _ in 0..10 {
        let batch = source.receive().await.unwrap();
        if batch.is_empty() {
            break;
        }
        let response = handle(&p, batch.event.clone(), Utc::now()).await;
        assert!(response.batch_item_failures.is_empty());
        source.settle(&batch, &response, true).await.unwrap();
    }
    let done = p.jobs.get("job-org", Utc::now()).await.unwrap().unwrap();
    assert_eq!(done.status, JobStatus::Succeeded, "{done:?}");

    // Four accounts (the management account and three members) x two regions.
    let coverage = CoverageStore::all(&p.coverage).await.unwrap();
    assert_eq!(coverage.len(), 8, "{coverage:#?}");
    let failing: Vec<&Coverage> = coverage.iter().filter(|c| c.error.is_some()).collect();
    assert_eq!(failing.len(), 2, "{coverage:#?}");
    assert!(failing.iter().all(|c| c.account_id == members[2]));
    assert!(failing[0]
        .error
        .as_deref()
        .unwrap()
        .contains("could not assume the member role"));
    for c in coverage
        .iter()
        .filter(|c| members[..2].contains(&c.account_id))
    {
        assert_eq!((c.resources, c.discovered_at.is_some()), (5, true), "{c:?}");
        assert_eq!(c.calls.get("EC2:DescribeInstances"), Some(&1), "{c:?}");
    }
    // The instances of alpha and beta, in both regions, with their account.
    let inventory = InventoryStore::all(&p.inventory).await.unwrap();
    let mut found: Vec<(String, String)> = inventory
        .iter()
        .filter(|r| r.service == Service::Ec2)
        .map(|r| (r.account_id.clone().unwrap_or_default(), r.region.clone()))
        .collect();
    found.sort();
    let mut expected: Vec<(String, String)> = members[..2]
        .iter()
        .flat_map(|a| regions.iter().map(move |r| (a.clone(), r.to_string())))
        .collect();
    expected.sort();
    assert_eq!(found, expected);
    let run = CycleRunStore::get_run(&p.cycles, "job-org")
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(run.status, RunStatus::Succeeded | RunStatus::Partial),
        "{run:?}"
    );
    // Everything discovered is analysed: alpha's and beta's instances and
    // tables, and the management account's own (this stack's tables).
    let discovered: u64 = coverage.iter().map(|c| c.resources).sum();
    assert!(discovered >= 4 + 16, "{coverage:#?}");
    assert_eq!(run.resources_analysed, discovered);

    // Four tables of each name, one per (account, region): four items, four
    // recommendations and four open requests, not one that hides the others.
    let tables: Vec<&Resource> = inventory
        .iter()
        .filter(|r| r.service == Service::DynamoDb && r.id.starts_with("events-table-"))
        .collect();
    assert_eq!(tables.len(), 16, "{tables:#?}");
    let requests = finops_local::all_requests(&p.approvals).await.unwrap();
    let mut by_name: std::collections::BTreeMap<String, Vec<ResourceKey>> = Default::default();
    for r in requests
        .iter()
        .filter(|r| r.recommendation.resource_id.starts_with("events-table-"))
    {
        by_name
            .entry(r.recommendation.resource_id.clone())
            .or_default()
            .push(r.recommendation.key());
    }
    assert!(!by_name.is_empty(), "no DynamoDB request at all");
    for (name, mut keys) in by_name {
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), 4, "{name}: {keys:?}");
    }
}
