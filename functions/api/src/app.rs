//! The adapters the handlers work through, and how they are built.

use crate::config::{Config, ConfigError, Env};
use chrono::{DateTime, Utc};
use shared::auth::Verifier;
use shared::costs::CostExplorerSource;
use shared::dynamo::*;
use shared::notify::Notifier;
use shared::queue::SqsJobQueue;
use shared::store::PageTokenCodec;

type Clock = Box<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// The adapters, built once per process from one SDK configuration.
pub struct App {
    pub config: Config,
    pub verifier: Verifier,
    pub jobs: DynamoJobs,
    pub cycles: DynamoCycles,
    pub approvals: DynamoApprovals,
    pub audit: DynamoAudit,
    pub metrics: DynamoMetrics,
    pub thresholds: DynamoThresholds,
    pub inventory: DynamoInventory,
    pub coverage: DynamoCoverage,
    pub recommendations: DynamoRecommendations,
    pub connection_stats: DynamoConnectionStats,
    pub cost_cache: DynamoCostCache,
    pub policies: DynamoPolicies,
    pub cost_explorer: CostExplorerSource,
    pub queue: SqsJobQueue,
    pub notifier: Box<dyn Notifier>,
    clock: Clock,
}

impl App {
    pub fn new(config: Config, aws: &aws_config::SdkConfig, notifier: Box<dyn Notifier>) -> App {
        App::with_dynamodb(config, aws, aws_sdk_dynamodb::Client::new(aws), notifier)
    }

    /// As [`App::new`], on a DynamoDB client the caller shares with others
    /// (the notifier's connection store): one client, one connection pool.
    pub fn with_dynamodb(
        config: Config,
        aws: &aws_config::SdkConfig,
        ddb: aws_sdk_dynamodb::Client,
        notifier: Box<dyn Notifier>,
    ) -> App {
        let tokens = PageTokenCodec::new(config.page_token_secret.expose().as_bytes());
        App {
            verifier: Verifier::new(config.auth.clone()),
            jobs: DynamoJobs::new(ddb.clone(), &config.jobs_table),
            cycles: DynamoCycles::new(ddb.clone(), &config.cycles_table),
            approvals: DynamoApprovals::new(
                ddb.clone(),
                &config.approvals_table,
                &config.audit_table,
                tokens.clone(),
            ),
            audit: DynamoAudit::new(ddb.clone(), &config.audit_table, tokens.clone()),
            metrics: DynamoMetrics::new(ddb.clone(), &config.metrics_table, tokens.clone())
                .with_retention(config.metric_retention),
            thresholds: DynamoThresholds::new(
                ddb.clone(),
                &config.thresholds_table,
                tokens.clone(),
            ),
            inventory: DynamoInventory::new(ddb.clone(), &config.inventory_table, tokens),
            coverage: DynamoCoverage::new(ddb.clone(), &config.accounts_table),
            recommendations: DynamoRecommendations::new(ddb.clone(), &config.recommendations_table),
            connection_stats: DynamoConnectionStats::new(ddb.clone(), &config.connections_table),
            policies: DynamoPolicies::new(ddb.clone(), &config.policies_table),
            cost_cache: DynamoCostCache::new(ddb, &config.cost_cache_table),
            cost_explorer: CostExplorerSource::new(aws_sdk_costexplorer::Client::new(aws)),
            queue: SqsJobQueue::new(aws_sdk_sqs::Client::new(aws), &config.jobs_queue_url),
            notifier,
            config,
            clock: Box::new(Utc::now),
        }
    }

    /// Reads the configuration from the environment and builds the app.
    /// The one constructor of a deployed function: configuration, one
    /// DynamoDB client shared with the notifier's connection store.
    pub fn from_env(env: &Env, aws: &aws_config::SdkConfig) -> Result<App, ConfigError> {
        let config = Config::from_env(env)?;
        // Decisions go out on the channels the environment configures
        // (WebSocket, Slack, webhook); to the log when none is.
        let ddb = aws_sdk_dynamodb::Client::new(aws);
        let connections = std::sync::Arc::new(shared::dynamo::DynamoConnections::new(
            ddb.clone(),
            &config.connections_table,
            // The notifier lists subscribers for itself, never for a client.
            shared::store::PageTokenCodec::new(uuid::Uuid::new_v4().as_bytes()),
        ));
        let notifier: Box<dyn Notifier> = shared::channels::from_env(env, aws, connections)
            .map_err(|e| ConfigError::Rule(e.to_string()))?;
        Ok(App::with_dynamodb(config, aws, ddb, notifier))
    }

    /// Replaces the clock (tests pin time).
    pub fn with_clock(mut self, clock: impl Fn() -> DateTime<Utc> + Send + Sync + 'static) -> Self {
        self.clock = Box::new(clock);
        self
    }

    pub fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }
}
