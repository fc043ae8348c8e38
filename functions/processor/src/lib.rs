//! The `processor` function: runs optimisation-cycle job messages from SQS,
//! reporting each failed message individually (ReportBatchItemFailures), so
//! one bad message never fails its batch-mates.

pub mod execution;

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use chrono::{DateTime, Duration, Utc};
use shared::channels::ChannelsConfig;
use shared::collector::CloudWatchSource;
pub use shared::config::{ConfigError, Env};
use shared::costs::{
    run_cost_job, Allowance, CostExplorerSource, CostJobOutcome, Costs, ForecastSource,
};
use shared::cycle::{self, CycleConfig, Handled, Ports};
use shared::discovery::{AccountsMode, AwsEstate, Estate, NoEstate, Scope};
use shared::domain::{JobKind, JobMessage};
use shared::dynamo::*;
use shared::execution::AwsActuator;
use shared::notify::Notifier;
use shared::queue::SqsJobQueue;
use shared::store::PageTokenCodec;
use std::sync::Arc;
use tracing::Instrument;

/// What the function reads from its environment, once, at start-up.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub jobs_table: String,
    pub cycles_table: String,
    pub approvals_table: String,
    pub audit_table: String,
    pub thresholds_table: String,
    pub inventory_table: String,
    pub recommendations_table: String,
    pub jobs_queue_url: String,
    pub cost_cache_table: String,
    /// How long a cost answer is reused (COST_CACHE_TTL_SECONDS, default 3600).
    pub cost_cache_ttl: Duration,
    /// Uncached Cost Explorer pages a requester may cause an hour
    /// (COST_EXPLORER_PAGES_PER_USER_HOUR, default 30).
    pub cost_pages_per_user_hour: u32,
    /// Where WebSocket subscriptions are read; needed when
    /// `WEBSOCKET_ENDPOINT` is set.
    pub connections_table: Option<String>,
    /// Where discovery records what it covered per (account, region).
    pub accounts_table: String,
    /// What discovery covers (REGIONS, ACCOUNTS_MODE, MEMBER_ROLE_NAME);
    /// `None` with DISCOVERY=false: CloudWatch and the inventory only.
    pub discovery: Option<DiscoveryConfig>,
    pub cycle: CycleConfig,
    /// Where executions record plans and steps (EXECUTIONS_TABLE).
    pub executions_table: String,
    /// The auto-approval policies the cycle applies (POLICIES_TABLE).
    pub policies_table: String,
    /// Windows, caps and the breaker executions keep to.
    pub execution: shared::execution::Settings,
}

/// template.yaml's `Regions`, `AccountsMode` and `MemberRoleName`, as given;
/// the home region comes from the SDK configuration.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DiscoveryConfig {
    pub regions: Option<String>,
    pub accounts_mode: Option<String>,
    pub member_role_name: Option<String>,
}

impl DiscoveryConfig {
    pub fn scope(&self, home_region: &str) -> shared::Result<Scope> {
        Scope::parse(
            self.regions.as_deref(),
            self.accounts_mode.as_deref(),
            self.member_role_name.as_deref(),
            home_region,
        )
    }
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Config, ConfigError> {
        let d = CycleConfig::default();
        let cycle = CycleConfig {
            lease_ttl: Duration::seconds(env.positive(
                "LEASE_TTL_SECONDS",
                d.lease_ttl.num_seconds(),
                86_400,
            )?),
            continue_on_error: env.flag("CONTINUE_ON_ERROR", true)?,
            approval_ttl: Duration::hours(env.positive(
                "APPROVAL_TTL_HOURS",
                d.approval_ttl.num_hours(),
                24 * 365,
            )?),
            chunk_resources: env.positive("CHUNK_RESOURCES", d.chunk_resources, 100_000)?,
            calls_per_shard: env.positive("CALLS_PER_SHARD", d.calls_per_shard, 10_000)?,
            max_shard_resources: env.positive(
                "MAX_SHARD_RESOURCES",
                d.max_shard_resources,
                100_000,
            )?,
            alert_after_failures: env.positive(
                "ALERT_AFTER_FAILURES",
                d.alert_after_failures,
                10_000,
            )?,
            max_receives: env.positive("MAX_RECEIVES", d.max_receives, 1_000)?,
            tags: shared::analysis::TagPolicy::from_env(env)?,
            open_concurrency: env.positive("OPEN_CONCURRENCY", d.open_concurrency, 100)?,
        };
        Ok(Config {
            jobs_table: env.require("JOBS_TABLE")?,
            cycles_table: env.require("CYCLES_TABLE")?,
            approvals_table: env.require("APPROVALS_TABLE")?,
            audit_table: env.require("AUDIT_TABLE")?,
            thresholds_table: env.require("THRESHOLDS_TABLE")?,
            inventory_table: env.require("INVENTORY_TABLE")?,
            recommendations_table: env.require("RECOMMENDATIONS_TABLE")?,
            jobs_queue_url: env.require("JOBS_QUEUE_URL")?,
            cost_cache_table: env.require("COST_CACHE_TABLE")?,
            cost_cache_ttl: Duration::seconds(env.positive(
                "COST_CACHE_TTL_SECONDS",
                3600,
                30 * 86_400,
            )?),
            cost_pages_per_user_hour: env.positive(
                "COST_EXPLORER_PAGES_PER_USER_HOUR",
                30,
                100_000,
            )?,
            connections_table: env.get("CONNECTIONS_TABLE"),
            accounts_table: env.require("ACCOUNTS_TABLE")?,
            discovery: discovery_config(env)?,
            cycle,
            executions_table: env.require("EXECUTIONS_TABLE")?,
            policies_table: env.require("POLICIES_TABLE")?,
            execution: execution::settings_from_env(env)?,
        })
    }
}

fn discovery_config(env: &Env) -> Result<Option<DiscoveryConfig>, ConfigError> {
    if !env.flag("DISCOVERY", true)? {
        return Ok(None);
    }
    let d = DiscoveryConfig {
        regions: env.get("REGIONS"),
        accounts_mode: env.get("ACCOUNTS_MODE"),
        member_role_name: env.get("MEMBER_ROLE_NAME"),
    };
    // Checked at start-up, with any region standing in for the home one.
    d.scope("us-east-1")
        .map_err(|e| ConfigError::Rule(e.to_string()))?;
    Ok(Some(d))
}

/// The adapters, built once per process from one SDK configuration.
pub struct Processor {
    pub config: Config,
    pub jobs: DynamoJobs,
    pub cycles: DynamoCycles,
    pub approvals: DynamoApprovals,
    pub audit: DynamoAudit,
    pub thresholds: DynamoThresholds,
    pub inventory: DynamoInventory,
    pub recommendations: DynamoRecommendations,
    pub source: CloudWatchSource,
    pub queue: SqsJobQueue,
    pub notifier: Box<dyn Notifier>,
    pub cost_explorer: CostExplorerSource,
    pub cost_cache: DynamoCostCache,
    pub coverage: DynamoCoverage,
    pub estate: Box<dyn Estate>,
    pub executions: DynamoExecutions,
    pub policies: DynamoPolicies,
    /// The AWS side of executions, over the same accounts discovery reaches.
    pub actuator: Box<dyn shared::execution::Actuator>,
}

impl Processor {
    /// The one constructor of a deployed processor: configuration, one
    /// client per AWS service, and the notifier with its connection store
    /// on the same DynamoDB client.
    pub fn from_env(env: &Env, aws: &aws_config::SdkConfig) -> Result<Processor, ConfigError> {
        let config = Config::from_env(env)?;
        shared::observe::set_stack(env.get("FINOPS_STACK"));
        let ddb = aws_sdk_dynamodb::Client::new(aws);
        let channels = ChannelsConfig::from_env(env)?;
        if channels.websocket_endpoint.is_some() && config.connections_table.is_none() {
            return Err(ConfigError::Rule(
                "WEBSOCKET_ENDPOINT needs CONNECTIONS_TABLE".into(),
            ));
        }
        // Subscriptions are read (and 410-gone connections pruned) here; the
        // notifier lists nothing for a client, so a per-process token key will do.
        let connections = Arc::new(DynamoConnections::new(
            ddb.clone(),
            config.connections_table.clone().unwrap_or_default(),
            PageTokenCodec::new(uuid::Uuid::new_v4().as_bytes()),
        ));
        let notifier = shared::channels::build(&channels, aws, connections)
            .map_err(|e| ConfigError::Rule(e.to_string()))?;
        let estate = estate_for(&config, aws)?;
        let actuator = actuator_for(&config, aws)?;
        Ok(Self::with_clients(
            config,
            ddb,
            aws_sdk_cloudwatch::Client::new(aws),
            aws_sdk_sqs::Client::new(aws),
            aws_sdk_costexplorer::Client::new(aws),
            notifier,
        )
        .with_estate(estate)
        .with_actuator(actuator))
    }

    /// Executions through `actuator` instead of the one the constructor built.
    pub fn with_actuator(mut self, actuator: Box<dyn shared::execution::Actuator>) -> Self {
        self.actuator = actuator;
        self
    }

    /// Discovery through `estate` instead of the one the constructor built.
    pub fn with_estate(mut self, estate: Box<dyn Estate>) -> Self {
        self.estate = estate;
        self
    }

    pub fn new(
        config: Config,
        aws: &aws_config::SdkConfig,
        notifier: Box<dyn Notifier>,
    ) -> Processor {
        // A scope that does not parse was refused by Config::from_env.
        let estate = estate_for(&config, aws).unwrap_or_else(|_| Box::new(NoEstate));
        let actuator = actuator_for(&config, aws)
            .unwrap_or_else(|_| Box::new(AwsActuator::new(aws.clone(), &AccountsMode::SelfOnly)));
        Self::with_clients(
            config,
            aws_sdk_dynamodb::Client::new(aws),
            aws_sdk_cloudwatch::Client::new(aws),
            aws_sdk_sqs::Client::new(aws),
            aws_sdk_costexplorer::Client::new(aws),
            notifier,
        )
        .with_estate(estate)
        .with_actuator(actuator)
    }

    /// The adapters over clients built elsewhere (benchmarks attach a call
    /// counter, or an in-process CloudWatch, to their configs). Discovers
    /// nothing until [`Processor::with_estate`].
    pub fn with_clients(
        config: Config,
        ddb: aws_sdk_dynamodb::Client,
        cloudwatch: aws_sdk_cloudwatch::Client,
        sqs: aws_sdk_sqs::Client,
        cost_explorer: aws_sdk_costexplorer::Client,
        notifier: Box<dyn Notifier>,
    ) -> Processor {
        // Listing tokens never leave this process, so a per-process key will do.
        let tokens = PageTokenCodec::new(uuid::Uuid::new_v4().as_bytes());
        Processor {
            jobs: DynamoJobs::new(ddb.clone(), &config.jobs_table),
            cycles: DynamoCycles::new(ddb.clone(), &config.cycles_table),
            approvals: DynamoApprovals::new(
                ddb.clone(),
                &config.approvals_table,
                &config.audit_table,
                tokens.clone(),
            ),
            audit: DynamoAudit::new(ddb.clone(), &config.audit_table, tokens.clone()),
            thresholds: DynamoThresholds::new(
                ddb.clone(),
                &config.thresholds_table,
                tokens.clone(),
            ),
            inventory: DynamoInventory::new(ddb.clone(), &config.inventory_table, tokens),
            recommendations: DynamoRecommendations::new(ddb.clone(), &config.recommendations_table),
            coverage: DynamoCoverage::new(ddb.clone(), &config.accounts_table),
            estate: Box::new(NoEstate),
            executions: DynamoExecutions::new(ddb.clone(), &config.executions_table),
            policies: DynamoPolicies::new(ddb.clone(), &config.policies_table),
            actuator: Box::new(shared::execution::NoActuator),
            cost_cache: DynamoCostCache::new(ddb, &config.cost_cache_table),
            cost_explorer: CostExplorerSource::new(cost_explorer),
            source: CloudWatchSource::new(cloudwatch),
            queue: SqsJobQueue::new(sqs, &config.jobs_queue_url),
            notifier,
            config,
        }
    }

    pub fn ports(&self) -> Ports<'_> {
        Ports {
            jobs: &self.jobs,
            shards: &self.jobs,
            lease: &self.cycles,
            runs: &self.cycles,
            health: &self.cycles,
            approvals: &self.approvals,
            audit: &self.audit,
            thresholds: &self.thresholds,
            inventory: &self.inventory,
            recommendations: &self.recommendations,
            source: &self.source,
            notifier: self.notifier.as_ref(),
            queue: &self.queue,
            estate: self.estate.as_ref(),
            coverage: &self.coverage,
            policies: &self.policies,
        }
    }
}

/// The discovery adapter `config` asks for, over `aws` (whose region is the
/// home region).
fn estate_for(
    config: &Config,
    aws: &aws_config::SdkConfig,
) -> Result<Box<dyn Estate>, ConfigError> {
    let Some(d) = &config.discovery else {
        return Ok(Box::new(NoEstate));
    };
    let home = aws
        .region()
        .map_or("us-east-1".to_string(), |r| r.to_string());
    let scope = d
        .scope(&home)
        .map_err(|e| ConfigError::Rule(e.to_string()))?;
    Ok(Box::new(AwsEstate::new(aws.clone(), scope)))
}

/// The execution adapter: the accounts of discovery's scope (one's own
/// without discovery), with the deployment's SDK configuration.
fn actuator_for(
    config: &Config,
    aws: &aws_config::SdkConfig,
) -> Result<Box<dyn shared::execution::Actuator>, ConfigError> {
    let home = aws
        .region()
        .map_or("us-east-1".to_string(), |r| r.to_string());
    let accounts = match &config.discovery {
        Some(d) => {
            d.scope(&home)
                .map_err(|e| ConfigError::Rule(e.to_string()))?
                .accounts
        }
        None => AccountsMode::SelfOnly,
    };
    Ok(Box::new(AwsActuator::new(aws.clone(), &accounts)))
}

/// Handles a batch: each message on its own; the ids of those that failed
/// come back so SQS redelivers only them (and dead-letters them after the
/// queue's maxReceiveCount).
pub async fn handle(
    processor: &Processor,
    event: SqsEvent,
    now: DateTime<Utc>,
) -> SqsBatchResponse {
    let ports = processor.ports();
    let mut response = SqsBatchResponse::default();
    for record in event.records {
        let id = record.message_id.clone().unwrap_or_default();
        let receive_count = record
            .attributes
            .get("ApproximateReceiveCount")
            .and_then(|c| c.parse().ok())
            .unwrap_or(1);
        let outcome = match record
            .body
            .as_deref()
            .map(serde_json::from_str::<JobMessage>)
        {
            Some(Ok(message)) if message.kind == JobKind::Execution => {
                let span = tracing::info_span!("execution", job_id = %message.job_id);
                execution::handle(processor, &message, receive_count, now)
                    .instrument(span)
                    .await
            }
            Some(Ok(message)) if message.kind == JobKind::CostAnalysis => {
                let costs = Costs {
                    source: &processor.cost_explorer,
                    cache: &processor.cost_cache,
                    ttl: processor.config.cost_cache_ttl,
                    forecast_source: ForecastSource::Computed,
                    allowance: Some(Allowance {
                        quota: &processor.cost_cache,
                        pages_per_hour: processor.config.cost_pages_per_user_hour,
                    }),
                };
                let last = receive_count >= processor.config.cycle.max_receives;
                run_cost_job(
                    &processor.jobs,
                    &costs,
                    processor.notifier.as_ref(),
                    &message.job_id,
                    last,
                    now,
                )
                .await
                .map(|o| match o {
                    CostJobOutcome::Completed(r) => {
                        format!("cost report: {:.2} {}", r.total, r.currency)
                    }
                    CostJobOutcome::Duplicate => "duplicate delivery".into(),
                    CostJobOutcome::Failed(e) => format!("cost job failed: {e}"),
                })
                .map_err(|e| e.to_string())
            }
            Some(Ok(message)) => {
                // Every log line of the job carries its id (a span field,
                // inside the runtime's span with the request id); a guard
                // from span.enter() would not follow the future across awaits.
                let span = tracing::info_span!("job", job_id = %message.job_id, shard = ?message.shard.as_ref().map(|s| s.index));
                cycle::handle(
                    &ports,
                    &processor.config.cycle,
                    &message,
                    receive_count,
                    now,
                )
                .instrument(span)
                .await
                .map(|h| summary(&h))
                .map_err(|e| e.to_string())
            }
            Some(Err(e)) => Err(format!("malformed job message: {e}")),
            None => Err("job message without a body".to_string()),
        };
        match outcome {
            Ok(handled) => {
                tracing::info!(message_id = %id, outcome = %handled, "message handled")
            }
            Err(error) => {
                let job_id = job_id_of(record.body.as_deref());
                tracing::error!(message_id = %id, job_id, receive_count, %error, "message failed");
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = id;
                response.batch_item_failures.push(failure);
            }
        }
    }
    response
}

/// Longest job id a failure log line repeats from a body (ids are UUIDs;
/// a body is whatever was put on the queue).
const MAX_LOGGED_JOB_ID: usize = 128;

/// The `jobId` of a message body, when it has a usable one, even if the
/// rest of the message does not parse: the failure can then be found by job.
fn job_id_of(body: Option<&str>) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(body?).ok()?;
    let id = value.get("jobId")?.as_str()?;
    if id.is_empty() {
        return None;
    }
    Some(id.chars().take(MAX_LOGGED_JOB_ID).collect())
}

fn summary(h: &Handled) -> String {
    match h {
        Handled::Completed(run) => format!("completed: {} recommendations", run.recommendations),
        Handled::Skipped => "skipped: another cycle holds the lease".into(),
        Handled::Duplicate => "duplicate delivery".into(),
        Handled::ShardsQueued(n) => format!("{n} shards queued"),
        Handled::ShardDone { finalized } => format!("shard done (finalized: {finalized})"),
        Handled::Failed(e) => format!("failed: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::job_id_of;

    #[test]
    fn the_job_id_comes_from_any_body_that_names_one() {
        let well_formed = r#"{"jobId":"5f0c","kind":"optimization_cycle"}"#;
        assert_eq!(job_id_of(Some(well_formed)).as_deref(), Some("5f0c"));
        // The kind is unknown, so the message fails to parse: the id still shows.
        let odd_kind = r#"{"jobId":"j-1","kind":"defragment_the_moon"}"#;
        assert_eq!(job_id_of(Some(odd_kind)).as_deref(), Some("j-1"));
    }

    #[test]
    fn no_job_id_from_bodies_without_a_usable_one() {
        for body in [
            None,
            Some(""),
            Some("not json"),
            Some("[1, 2]"),
            Some(r#"{"kind":"optimization_cycle"}"#),
            Some(r#"{"jobId": 42}"#),
            Some(r#"{"jobId": ""}"#),
            Some(r#"{"jobId": "trunc"#),
        ] {
            assert_eq!(job_id_of(body), None, "{body:?}");
        }
    }

    #[test]
    fn a_huge_job_id_is_cut_for_the_log() {
        let body = format!(r#"{{"jobId":"{}"}}"#, "é".repeat(1000));
        let id = job_id_of(Some(&body)).unwrap_or_default();
        assert_eq!(id.chars().count(), 128);
    }
}
