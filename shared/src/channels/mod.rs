//! The channels events are delivered through: WebSocket clients (API
//! Gateway management API), Slack, and a signed generic webhook; a fan-out
//! over the configured ones; and [`from_env`], the one place they are built.

pub mod breaker;
pub mod http;
pub mod websocket;

pub use breaker::{Breaker, BreakerConfig, BreakerState};
pub use http::{HttpChannelConfig, SlackChannel, WebhookChannel};
pub use websocket::{Delivery, WebSocketNotifier};

use crate::config::{ConfigError, Env, Secret};
use crate::notify::{Event, LogNotifier, Notifier};
use crate::store::ConnectionStore;
use crate::Result;
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;

/// API Gateway's WebSocket message limit (128 KB).
pub const MAX_MESSAGE_BYTES: usize = 128 * 1024;

/// Publishes to every channel at once. A channel's failure is logged and
/// does not reach the publisher: a cycle must not fail, or be retried,
/// because Slack is down or one event was too large to push.
pub struct FanOut {
    channels: Vec<(&'static str, Box<dyn Notifier>)>,
}

impl FanOut {
    pub fn new(channels: Vec<(&'static str, Box<dyn Notifier>)>) -> FanOut {
        FanOut { channels }
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.channels.iter().map(|(n, _)| *n).collect()
    }
}

#[async_trait]
impl Notifier for FanOut {
    async fn publish(&self, event: &Event) -> Result<()> {
        let results =
            futures::future::join_all(self.channels.iter().map(|(_, c)| c.publish(event))).await;
        for ((name, _), result) in self.channels.iter().zip(results) {
            if let Err(e) = result {
                tracing::warn!(channel = name, error = %e, "event not delivered");
            }
        }
        Ok(())
    }
}

/// The notification settings, read once at start-up.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelsConfig {
    /// `https://{api-id}.execute-api.{region}.amazonaws.com/{stage}`; locally
    /// the gateway's `http://127.0.0.1:3001`.
    pub websocket_endpoint: Option<String>,
    pub concurrency: usize,
    /// Calls per push or webhook delivery, the first included.
    pub max_attempts: u32,
    pub slack_webhook_url: Option<reqwest::Url>,
    pub webhook_url: Option<reqwest::Url>,
    pub webhook_secret: Option<Secret>,
    pub http: HttpChannelConfig,
}

impl ChannelsConfig {
    /// Env: `WEBSOCKET_ENDPOINT`, `NOTIFY_CONCURRENCY` (32),
    /// `NOTIFY_MAX_ATTEMPTS` (3), `SLACK_WEBHOOK_URL`, `WEBHOOK_URL` with
    /// `WEBHOOK_SECRET`, `NOTIFY_BREAKER_FAILURES` (5),
    /// `NOTIFY_BREAKER_COOLDOWN_SECONDS` (60), `NOTIFY_HTTP_TIMEOUT_SECONDS` (5).
    pub fn from_env(env: &Env) -> std::result::Result<ChannelsConfig, ConfigError> {
        let websocket_endpoint = env.url("WEBSOCKET_ENDPOINT")?.map(|u| u.to_string());
        let webhook_url = env.url("WEBHOOK_URL")?;
        let webhook_secret = env.secret("WEBHOOK_SECRET");
        if webhook_url.is_some() && webhook_secret.as_ref().is_none_or(|s| s.len() < 16) {
            return Err(ConfigError::Rule(
                "WEBHOOK_SECRET must be set (at least 16 bytes) when WEBHOOK_URL is".into(),
            ));
        }
        let max_attempts = env.positive("NOTIFY_MAX_ATTEMPTS", 3u32, 10)?;
        Ok(ChannelsConfig {
            websocket_endpoint,
            concurrency: env.positive("NOTIFY_CONCURRENCY", 32usize, 1000)?,
            max_attempts,
            slack_webhook_url: env.url("SLACK_WEBHOOK_URL")?,
            webhook_url,
            webhook_secret,
            http: HttpChannelConfig {
                max_attempts,
                timeout: Duration::from_secs(env.positive("NOTIFY_HTTP_TIMEOUT_SECONDS", 5, 60)?),
                breaker: BreakerConfig {
                    failure_threshold: env.positive("NOTIFY_BREAKER_FAILURES", 5u32, 1000)?,
                    cooldown: Duration::from_secs(env.positive(
                        "NOTIFY_BREAKER_COOLDOWN_SECONDS",
                        60,
                        86_400,
                    )?),
                },
                ..HttpChannelConfig::default()
            },
        })
    }

    pub fn is_empty(&self) -> bool {
        self.websocket_endpoint.is_none()
            && self.slack_webhook_url.is_none()
            && self.webhook_url.is_none()
    }
}

/// Builds the notifier from configuration: the configured channels behind
/// one [`FanOut`], or the [`LogNotifier`] when none is configured.
pub fn build(
    config: &ChannelsConfig,
    aws: &aws_config::SdkConfig,
    connections: Arc<dyn ConnectionStore>,
) -> Result<Box<dyn Notifier>> {
    if config.is_empty() {
        return Ok(Box::new(LogNotifier));
    }
    let mut channels: Vec<(&'static str, Box<dyn Notifier>)> = Vec::new();
    if let Some(endpoint) = &config.websocket_endpoint {
        channels.push((
            "websocket",
            Box::new(WebSocketNotifier::new(
                aws,
                endpoint,
                config.concurrency,
                config.max_attempts,
                connections,
            )),
        ));
    }
    if let Some(url) = &config.slack_webhook_url {
        channels.push((
            "slack",
            Box::new(SlackChannel::new(url.clone(), config.http.clone())?),
        ));
    }
    if let (Some(url), Some(secret)) = (&config.webhook_url, &config.webhook_secret) {
        channels.push((
            "webhook",
            Box::new(WebhookChannel::new(
                url.clone(),
                secret.expose().as_bytes(),
                config.http.clone(),
            )?),
        ));
    }
    Ok(Box::new(FanOut::new(channels)))
}

/// [`ChannelsConfig::from_env`] then [`build`].
pub fn from_env(
    env: &Env,
    aws: &aws_config::SdkConfig,
    connections: Arc<dyn ConnectionStore>,
) -> Result<Box<dyn Notifier>> {
    build(&ChannelsConfig::from_env(env)?, aws, connections)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(pairs: &[(&str, &str)]) -> Env {
        Env::from_pairs(pairs)
    }

    #[test]
    fn defaults_and_validation() {
        let c = ChannelsConfig::from_env(&lookup(&[])).unwrap();
        assert!(c.is_empty());
        assert_eq!(c.concurrency, 32);
        let c = ChannelsConfig::from_env(&lookup(&[
            ("WEBSOCKET_ENDPOINT", "http://127.0.0.1:3001"),
            ("NOTIFY_CONCURRENCY", "8"),
        ]))
        .unwrap();
        assert_eq!(c.concurrency, 8);
        assert!(!c.is_empty());
        for bad in [
            vec![("NOTIFY_CONCURRENCY", "0")],
            vec![("NOTIFY_CONCURRENCY", "lots")],
            vec![("WEBSOCKET_ENDPOINT", "not a url")],
            vec![("WEBHOOK_URL", "https://hooks.example.test/x")],
            vec![
                ("WEBHOOK_URL", "https://hooks.example.test/x"),
                ("WEBHOOK_SECRET", "short"),
            ],
            vec![("SLACK_WEBHOOK_URL", "ftp://x")],
        ] {
            assert!(ChannelsConfig::from_env(&lookup(&bad)).is_err(), "{bad:?}");
        }
    }
}
