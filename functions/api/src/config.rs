//! The function's configuration. `from_lookup` takes the lookup as a
//! function so tests and the local stack configure it without touching the
//! process environment.

use shared::auth::AuthConfig;
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
    pub recommendations_table: String,
    pub connections_table: String,
    pub cost_cache_table: String,
    pub jobs_queue_url: String,
    /// HMAC key of listing tokens; the same on every instance.
    pub page_token_secret: String,
    pub auth: AuthConfig,
    /// The schedule the cycle runs on, as EventBridge states it.
    pub schedule_expression: Option<String>,
    pub cost_cache_ttl: chrono::Duration,
    pub forecast_source: ForecastSource,
    pub metric_retention: chrono::Duration,
}

#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(pub String);

impl Config {
    pub fn from_env() -> Result<Config, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let get = |k: &str| get(k).filter(|v| !v.is_empty());
        let need = |k: &str| get(k).ok_or_else(|| ConfigError(format!("{k} is not set")));
        let seconds = |k: &str, default: i64| -> Result<i64, ConfigError> {
            match get(k) {
                None => Ok(default),
                Some(v) => v.parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(|| {
                    ConfigError(format!("{k} must be a positive integer, got '{v}'"))
                }),
            }
        };
        let page_token_secret = need("PAGE_TOKEN_SECRET")?;
        if page_token_secret.len() < 16 {
            return Err(ConfigError(
                "PAGE_TOKEN_SECRET must be at least 16 bytes".into(),
            ));
        }
        Ok(Config {
            jobs_table: need("JOBS_TABLE")?,
            cycles_table: need("CYCLES_TABLE")?,
            approvals_table: need("APPROVALS_TABLE")?,
            audit_table: need("AUDIT_TABLE")?,
            metrics_table: need("METRICS_TABLE")?,
            thresholds_table: need("THRESHOLDS_TABLE")?,
            inventory_table: need("INVENTORY_TABLE")?,
            recommendations_table: need("RECOMMENDATIONS_TABLE")?,
            connections_table: need("CONNECTIONS_TABLE")?,
            cost_cache_table: need("COST_CACHE_TABLE")?,
            jobs_queue_url: need("JOBS_QUEUE_URL")?,
            page_token_secret,
            auth: AuthConfig::from_lookup(|k| get(k)).map_err(|e| ConfigError(e.to_string()))?,
            schedule_expression: get("SCHEDULE_EXPRESSION"),
            cost_cache_ttl: chrono::Duration::seconds(seconds("COST_CACHE_TTL_SECONDS", 3600)?),
            forecast_source: ForecastSource::parse(get("COST_FORECAST_SOURCE").as_deref())
                .map_err(|e| ConfigError(e.to_string()))?,
            metric_retention: chrono::Duration::days(seconds("METRIC_RETENTION_DAYS", 30)?),
        })
    }
}
