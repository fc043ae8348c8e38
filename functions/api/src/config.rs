//! The function's configuration, read once through [`Env`], the project's
//! one environment reader: tests and the local stack hand it their own.

use shared::auth::AuthConfig;
pub use shared::config::{ConfigError, Env, Secret};
use shared::costs::ForecastSource;

/// What the function reads from its environment, once, at start-up.
#[derive(Debug, Clone)]
pub struct Config {
    pub jobs_table: String,
    pub cycles_table: String,
    pub approvals_table: String,
    pub audit_table: String,
    pub metrics_table: String,
    pub thresholds_table: String,
    pub inventory_table: String,
    /// The deploying account (HOME_ACCOUNT_ID, `AWS::AccountId` in the
    /// template): a resource pushed without an account is this account's.
    pub home_account_id: Option<String>,
    /// Discovery coverage per (account, region), for GET /accounts.
    pub accounts_table: String,
    pub recommendations_table: String,
    pub connections_table: String,
    pub cost_cache_table: String,
    pub policies_table: String,
    pub jobs_queue_url: String,
    /// HMAC key of listing tokens; the same on every instance.
    pub page_token_secret: Secret,
    pub auth: AuthConfig,
    /// The schedule the cycle runs on, as EventBridge states it.
    pub schedule_expression: Option<String>,
    pub cost_cache_ttl: chrono::Duration,
    /// Uncached Cost Explorer pages a caller may cause an hour
    /// (COST_EXPLORER_PAGES_PER_USER_HOUR, default 30: at most USD 0.30).
    pub cost_pages_per_user_hour: u32,
    pub forecast_source: ForecastSource,
    pub metric_retention: chrono::Duration,
    /// How long `POST .../preview` waits for the processor's answer before
    /// it answers 202 with the job (PREVIEW_WAIT_MS, default 8000).
    pub preview_wait: std::time::Duration,
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Config, ConfigError> {
        Ok(Config {
            jobs_table: env.require("JOBS_TABLE")?,
            cycles_table: env.require("CYCLES_TABLE")?,
            approvals_table: env.require("APPROVALS_TABLE")?,
            audit_table: env.require("AUDIT_TABLE")?,
            metrics_table: env.require("METRICS_TABLE")?,
            thresholds_table: env.require("THRESHOLDS_TABLE")?,
            inventory_table: env.require("INVENTORY_TABLE")?,
            home_account_id: match env.get("HOME_ACCOUNT_ID") {
                Some(a) if a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()) => Some(a),
                Some(a) => {
                    return Err(ConfigError::Rule(format!(
                        "HOME_ACCOUNT_ID must be a 12-digit AWS account id, not '{a}'"
                    )))
                }
                None => None,
            },
            accounts_table: env.require("ACCOUNTS_TABLE")?,
            recommendations_table: env.require("RECOMMENDATIONS_TABLE")?,
            connections_table: env.require("CONNECTIONS_TABLE")?,
            cost_cache_table: env.require("COST_CACHE_TABLE")?,
            policies_table: env.require("POLICIES_TABLE")?,
            jobs_queue_url: env.require("JOBS_QUEUE_URL")?,
            page_token_secret: env.require_secret("PAGE_TOKEN_SECRET", 16)?,
            auth: AuthConfig::from_env(env)?,
            schedule_expression: env.get("SCHEDULE_EXPRESSION"),
            cost_cache_ttl: chrono::Duration::seconds(env.positive(
                "COST_CACHE_TTL_SECONDS",
                3600,
                30 * 86_400,
            )?),
            cost_pages_per_user_hour: env.positive(
                "COST_EXPLORER_PAGES_PER_USER_HOUR",
                30,
                100_000,
            )?,
            forecast_source: ForecastSource::parse(env.get("COST_FORECAST_SOURCE").as_deref())
                .map_err(|e| ConfigError::Rule(e.to_string()))?,
            metric_retention: chrono::Duration::days(env.positive(
                "METRIC_RETENTION_DAYS",
                30,
                3650,
            )?),
            preview_wait: std::time::Duration::from_millis(env.positive(
                "PREVIEW_WAIT_MS",
                8000,
                25_000,
            )?),
        })
    }
}
