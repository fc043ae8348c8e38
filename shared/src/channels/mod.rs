//! The channels events are delivered through: WebSocket clients (API
//! Gateway management API), Slack, and a signed generic webhook; a fan-out
//! over the configured ones; per-owner routing of Slack and webhook notices
//! ([`OwnerRouter`]); and [`from_env`], the one place they are built.

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
use std::collections::{BTreeMap, HashMap};
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

/// Slack and webhook notices about one owner's resources go to that owner's
/// channels instead of the default ones; everything else (job events,
/// alerts, resources without an owner or a route) to the default ones.
pub struct OwnerRouter {
    default: FanOut,
    /// Keyed by the owner in lower case (owner tags are matched without case).
    routes: HashMap<String, FanOut>,
}

impl OwnerRouter {
    pub fn new(default: FanOut, routes: HashMap<String, FanOut>) -> OwnerRouter {
        OwnerRouter {
            default,
            routes: routes
                .into_iter()
                .map(|(k, v)| (k.trim().to_lowercase(), v))
                .collect(),
        }
    }
}

#[async_trait]
impl Notifier for OwnerRouter {
    async fn publish(&self, event: &Event) -> Result<()> {
        let routed = event
            .owner()
            .and_then(|o| self.routes.get(&o.trim().to_lowercase()));
        match routed {
            Some(channels) => channels.publish(event).await,
            None => self.default.publish(event).await,
        }
    }
}

/// Where one owner's notices go.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OwnerRoute {
    pub slack: Option<reqwest::Url>,
    pub webhook: Option<reqwest::Url>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    slack: Option<String>,
    webhook: Option<String>,
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
    /// Owner (from the resource's owner tag) to that owner's Slack and
    /// webhook URLs; a routed webhook is signed with `WEBHOOK_SECRET`.
    pub owner_routes: BTreeMap<String, OwnerRoute>,
    pub http: HttpChannelConfig,
}

impl ChannelsConfig {
    /// Env: `WEBSOCKET_ENDPOINT`, `NOTIFY_CONCURRENCY` (32),
    /// `NOTIFY_MAX_ATTEMPTS` (3), `SLACK_WEBHOOK_URL`, `WEBHOOK_URL` with
    /// `WEBHOOK_SECRET`, `NOTIFY_BREAKER_FAILURES` (5),
    /// `NOTIFY_BREAKER_COOLDOWN_SECONDS` (60), `NOTIFY_HTTP_TIMEOUT_SECONDS` (5),
    /// `NOTIFY_OWNER_ROUTES` (a JSON object: owner to
    /// `{"slack": url, "webhook": url}`, either optional).
    pub fn from_env(env: &Env) -> std::result::Result<ChannelsConfig, ConfigError> {
        let websocket_endpoint = env.url("WEBSOCKET_ENDPOINT")?.map(|u| u.to_string());
        let webhook_url = env.url("WEBHOOK_URL")?;
        let webhook_secret = env.secret("WEBHOOK_SECRET");
        let raw: BTreeMap<String, RawRoute> = match env.get("NOTIFY_OWNER_ROUTES") {
            None => BTreeMap::new(),
            Some(v) => serde_json::from_str(&v).map_err(|e| {
                ConfigError::invalid(
                    "NOTIFY_OWNER_ROUTES",
                    format!("a JSON object of owner to {{\"slack\": url, \"webhook\": url}} ({e})"),
                    "(not shown: it holds webhook URLs)",
                )
            })?,
        };
        let mut owner_routes = BTreeMap::new();
        for (owner, route) in raw {
            let url =
                |u: Option<String>| -> std::result::Result<Option<reqwest::Url>, ConfigError> {
                    let Some(u) = u else { return Ok(None) };
                    match reqwest::Url::parse(u.trim()) {
                        Ok(url) if matches!(url.scheme(), "https" | "http") => Ok(Some(url)),
                        _ => Err(ConfigError::Rule(format!(
                            "NOTIFY_OWNER_ROUTES: the route of {owner} is not an http(s) URL"
                        ))),
                    }
                };
            let route = OwnerRoute {
                slack: url(route.slack)?,
                webhook: url(route.webhook)?,
            };
            owner_routes.insert(owner, route);
        }
        let routed_webhook = owner_routes.values().any(|r| r.webhook.is_some());
        if (webhook_url.is_some() || routed_webhook)
            && webhook_secret.as_ref().is_none_or(|s| s.len() < 16)
        {
            return Err(ConfigError::Rule(
                "WEBHOOK_SECRET must be set (at least 16 bytes) when WEBHOOK_URL or a routed webhook is".into(),
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
            owner_routes,
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
            && self.owner_routes.is_empty()
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
    let http = |slack: &Option<reqwest::Url>, webhook: &Option<reqwest::Url>| -> Result<FanOut> {
        let mut out: Vec<(&'static str, Box<dyn Notifier>)> = Vec::new();
        if let Some(url) = slack {
            out.push((
                "slack",
                Box::new(SlackChannel::new(url.clone(), config.http.clone())?),
            ));
        }
        if let (Some(url), Some(secret)) = (webhook, &config.webhook_secret) {
            out.push((
                "webhook",
                Box::new(WebhookChannel::new(
                    url.clone(),
                    secret.expose().as_bytes(),
                    config.http.clone(),
                )?),
            ));
        }
        Ok(FanOut::new(out))
    };
    let default = http(&config.slack_webhook_url, &config.webhook_url)?;
    if config.owner_routes.is_empty() {
        if !default.channels.is_empty() {
            channels.push(("http", Box::new(default)));
        }
    } else {
        let mut routes = HashMap::new();
        for (owner, route) in &config.owner_routes {
            routes.insert(owner.clone(), http(&route.slack, &route.webhook)?);
        }
        channels.push(("http", Box::new(OwnerRouter::new(default, routes))));
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
            vec![("NOTIFY_OWNER_ROUTES", "not json")],
            vec![("NOTIFY_OWNER_ROUTES", r#"{"a": {"slack": "ftp://x"}}"#)],
            vec![(
                "NOTIFY_OWNER_ROUTES",
                r#"{"a": {"teams": "https://x.test"}}"#,
            )],
            vec![(
                "NOTIFY_OWNER_ROUTES",
                r#"{"a": {"webhook": "https://hooks.example.test/a"}}"#,
            )],
        ] {
            assert!(ChannelsConfig::from_env(&lookup(&bad)).is_err(), "{bad:?}");
        }
        let c = ChannelsConfig::from_env(&lookup(&[(
            "NOTIFY_OWNER_ROUTES",
            r#"{"data-team": {"slack": "https://hooks.slack.test/data"}}"#,
        )]))
        .unwrap();
        assert_eq!(
            c.owner_routes["data-team"]
                .slack
                .as_ref()
                .map(|u| u.as_str()),
            Some("https://hooks.slack.test/data")
        );
        assert!(!c.is_empty());
    }

    #[derive(Clone, Default)]
    struct Seen(Arc<std::sync::Mutex<Vec<String>>>);

    struct Tagged(&'static str, Seen);

    #[async_trait]
    impl Notifier for Tagged {
        async fn publish(&self, _event: &Event) -> Result<()> {
            self.1 .0.lock().unwrap().push(self.0.to_string());
            Ok(())
        }
    }

    fn request(owner: Option<&str>) -> Event {
        let rec: crate::domain::Recommendation = serde_json::from_value(serde_json::json!({
            "id": "r", "resourceId": "i-1", "service": "ec2", "region": "us-east-1",
            "owner": owner, "finding": "idle", "action": "stop", "monthlySavingsUsd": 1.0,
            "confidence": 1.0, "risk": 0, "reason": "x", "alternatives": [], "dependencies": [],
            "thresholdVersion": 0, "createdAt": "2024-06-15T00:00:00Z"
        }))
        .unwrap();
        let request = crate::domain::ApprovalRequest::new(
            rec,
            "cycle",
            None,
            "2024-06-15T00:00:00Z".parse().unwrap(),
            chrono::Duration::days(7),
        );
        Event::ApprovalRequestCreated { request }
    }

    #[tokio::test]
    async fn notices_go_to_their_owners_channels_the_rest_to_the_default() {
        let seen = Seen::default();
        let fan = |name: &'static str| {
            FanOut::new(vec![(
                name,
                Box::new(Tagged(name, seen.clone())) as Box<dyn Notifier>,
            )])
        };
        let mut routes = HashMap::new();
        routes.insert("Data-Team".to_string(), fan("data"));
        let router = OwnerRouter::new(fan("default"), routes);
        router.publish(&request(Some("data-team"))).await.unwrap();
        router.publish(&request(Some("web"))).await.unwrap();
        router.publish(&request(None)).await.unwrap();
        router
            .publish(&Event::JobFailed {
                job_id: "j".into(),
                error: "e".into(),
            })
            .await
            .unwrap();
        assert_eq!(
            *seen.0.lock().unwrap(),
            vec!["data", "default", "default", "default"]
        );
    }
}
