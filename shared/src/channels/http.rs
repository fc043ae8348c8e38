//! HTTP channels: a Slack incoming webhook and a generic signed webhook.
//!
//! Both post one JSON body per event, retry transient failures with
//! exponential backoff and jitter, and sit behind a [`Breaker`], so an
//! endpoint that keeps failing is left alone for a cooldown instead of
//! slowing every cycle that publishes.
//!
//! Job progress is not sent to these channels: it is a stream for live
//! screens, and one cycle makes dozens of them.

use super::breaker::{Breaker, BreakerConfig, BreakerState};
use crate::notify::{Event, Notifier};
use crate::{Error, Result};
use async_trait::async_trait;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const SIGNATURE_HEADER: &str = "X-Finops-Signature";
pub const TIMESTAMP_HEADER: &str = "X-Finops-Timestamp";
pub const EVENT_HEADER: &str = "X-Finops-Event";
pub const DELIVERY_HEADER: &str = "X-Finops-Delivery";

#[derive(Debug, Clone, PartialEq)]
pub struct HttpChannelConfig {
    /// Calls per event, the first included.
    pub max_attempts: u32,
    /// The first retry waits about this long; each next one twice as long.
    pub base_backoff: Duration,
    pub timeout: Duration,
    pub breaker: BreakerConfig,
}

impl Default for HttpChannelConfig {
    fn default() -> Self {
        HttpChannelConfig {
            max_attempts: 3,
            base_backoff: Duration::from_millis(200),
            timeout: Duration::from_secs(5),
            breaker: BreakerConfig::default(),
        }
    }
}

/// What happened to the calls of one channel, for logs and tests.
#[derive(Debug, Default)]
pub struct HttpStats {
    pub delivered: AtomicU64,
    /// Events given up on after every attempt (or refused outright).
    pub failed: AtomicU64,
    /// Calls that failed, retries included.
    pub failed_calls: AtomicU64,
    /// Events not sent because the breaker was open.
    pub short_circuited: AtomicU64,
}

/// The delivery loop both channels share: attempts, backoff, breaker.
struct Endpoint {
    name: &'static str,
    client: reqwest::Client,
    url: reqwest::Url,
    config: HttpChannelConfig,
    breaker: Mutex<Breaker>,
    stats: HttpStats,
}

enum CallError {
    /// Worth another attempt (transport, 429, 5xx).
    Transient(String),
    Permanent(String),
}

impl Endpoint {
    fn new(name: &'static str, url: reqwest::Url, config: HttpChannelConfig) -> Result<Endpoint> {
        // A redirect is not followed: the configured URL is the only place
        // a payload (and a webhook's secret-bearing URL) may go, and a
        // followed 302 would also turn the POST into a GET elsewhere.
        let client = crate::tls::http_client()
            .timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Error::Internal(format!("{name}: HTTP client: {e}")))?;
        Ok(Endpoint {
            name,
            client,
            url,
            breaker: Mutex::new(Breaker::new(config.breaker)),
            config,
            stats: HttpStats::default(),
        })
    }

    fn acquire(&self) -> bool {
        self.breaker
            .lock()
            .map(|mut b| b.try_acquire(Instant::now()))
            .unwrap_or(false)
    }

    fn record(&self, ok: bool) {
        if let Ok(mut b) = self.breaker.lock() {
            if ok {
                b.on_success()
            } else {
                b.on_failure(Instant::now())
            }
        }
    }

    fn breaker_state(&self) -> Option<BreakerState> {
        self.breaker.lock().ok().map(|b| b.state())
    }

    /// Posts `body`; `headers` is called for every attempt (a signature
    /// carries the time of its attempt).
    async fn post(
        &self,
        body: &[u8],
        headers: impl Fn() -> Vec<(&'static str, String)>,
    ) -> Result<()> {
        let mut last = String::new();
        for attempt in 0..self.config.max_attempts.max(1) {
            if attempt > 0 {
                tokio::time::sleep(backoff(self.config.base_backoff, attempt)).await;
            }
            if !self.acquire() {
                self.stats.short_circuited.fetch_add(1, Ordering::Relaxed);
                return Err(Error::Unavailable(format!(
                    "{}: circuit open after repeated failures; not calling {} until the cooldown ends",
                    self.name,
                    self.url.host_str().unwrap_or("the endpoint")
                )));
            }
            match self.call(body, &headers).await {
                Ok(()) => {
                    self.record(true);
                    self.stats.delivered.fetch_add(1, Ordering::Relaxed);
                    return Ok(());
                }
                Err(CallError::Transient(e)) => {
                    self.record(false);
                    self.stats.failed_calls.fetch_add(1, Ordering::Relaxed);
                    last = e;
                }
                Err(CallError::Permanent(e)) => {
                    // A 4xx is the endpoint refusing us for good (bad URL,
                    // revoked hook): counts against the breaker, no retry.
                    self.record(false);
                    self.stats.failed_calls.fetch_add(1, Ordering::Relaxed);
                    self.stats.failed.fetch_add(1, Ordering::Relaxed);
                    return Err(Error::Internal(format!("{}: {e}", self.name)));
                }
            }
        }
        self.stats.failed.fetch_add(1, Ordering::Relaxed);
        Err(Error::Unavailable(format!(
            "{}: gave up after {} attempts: {last}",
            self.name, self.config.max_attempts
        )))
    }

    async fn call(
        &self,
        body: &[u8],
        headers: &impl Fn() -> Vec<(&'static str, String)>,
    ) -> std::result::Result<(), CallError> {
        let mut request = self
            .client
            .post(self.url.clone())
            .header("content-type", "application/json")
            .body(body.to_vec());
        for (k, v) in headers() {
            request = request.header(k, v);
        }
        let response = request
            .send()
            .await
            .map_err(|e| CallError::Transient(without_url(e).to_string()))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else if status.is_redirection() {
            Err(CallError::Permanent(format!(
                "answered {status} (redirects are not followed)"
            )))
        } else if status.is_server_error() || status.as_u16() == 429 || status.as_u16() == 408 {
            Err(CallError::Transient(format!("answered {status}")))
        } else {
            Err(CallError::Permanent(format!("answered {status}")))
        }
    }
}

/// Webhook URLs carry secrets (Slack's does): never log them.
fn without_url(e: reqwest::Error) -> reqwest::Error {
    e.without_url()
}

/// `base * 2^(attempt-1)`, with up to 50 % random jitter so that many
/// publishers do not retry in step.
fn backoff(base: Duration, attempt: u32) -> Duration {
    let exp = base.saturating_mul(1u32 << (attempt - 1).min(10));
    let jitter = rand::random::<f64>() * 0.5;
    exp.mul_f64(1.0 + jitter)
}

fn wanted(event: &Event) -> bool {
    !matches!(
        event,
        Event::JobProgress { .. } | Event::ExecutionProgress { .. }
    )
}

/// A delivery as its receiver sees it: the signed headers and the raw body.
#[derive(Debug, Clone, Copy)]
pub struct Delivery<'a> {
    /// `X-Finops-Timestamp`.
    pub timestamp: &'a str,
    /// `X-Finops-Delivery`.
    pub delivery: &'a str,
    /// `X-Finops-Event`.
    pub event_type: &'a str,
    /// `X-Finops-Signature`.
    pub signature: &'a str,
    pub body: &'a [u8],
}

fn mac(
    secret: &[u8],
    timestamp: &str,
    delivery: &str,
    event_type: &str,
    body: &[u8],
) -> Option<Hmac<Sha256>> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).ok()?;
    for part in [timestamp, delivery, event_type] {
        mac.update(part.as_bytes());
        mac.update(b".");
    }
    mac.update(body);
    Some(mac)
}

/// HMAC-SHA256 over `"<timestamp>.<delivery id>.<event type>.<body>"`, as
/// lowercase hex: what the `X-Finops-Signature: sha256=<hex>` header
/// carries. The id and type are signed so that a captured delivery cannot be
/// replayed under another id (past a receiver's duplicate check) or type.
pub fn signature(
    secret: &[u8],
    timestamp: i64,
    delivery: &str,
    event_type: &str,
    body: &[u8],
) -> String {
    mac(secret, &timestamp.to_string(), delivery, event_type, body)
        .map(|m| hex(&m.finalize().into_bytes()))
        .unwrap_or_default()
}

/// Checks a delivery as a receiver would: the signature over the timestamp,
/// delivery id, event type and raw body, in constant time, and the timestamp
/// within `tolerance` of `now` (replay protection).
pub fn verify_signature(secret: &[u8], d: &Delivery<'_>, now: i64, tolerance_seconds: i64) -> bool {
    let Ok(timestamp) = d.timestamp.trim().parse::<i64>() else {
        return false;
    };
    if (now - timestamp).abs() > tolerance_seconds {
        return false;
    }
    let Some(given) = d.signature.trim().strip_prefix("sha256=") else {
        return false;
    };
    let Some(given) = unhex(given) else {
        return false;
    };
    mac(
        secret,
        &timestamp.to_string(),
        d.delivery,
        d.event_type,
        d.body,
    )
    .is_some_and(|m| m.verify_slice(&given).is_ok())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

fn event_type(event: &Event) -> String {
    serde_json::to_value(event)
        .ok()
        .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(str::to_string))
        .unwrap_or_default()
}

/// A generic webhook: the event's JSON (the same frame WebSocket clients
/// get), signed with a shared secret.
pub struct WebhookChannel {
    endpoint: Endpoint,
    secret: Vec<u8>,
}

impl WebhookChannel {
    pub fn new(
        url: reqwest::Url,
        secret: impl Into<Vec<u8>>,
        config: HttpChannelConfig,
    ) -> Result<Self> {
        Ok(WebhookChannel {
            endpoint: Endpoint::new("webhook", url, config)?,
            secret: secret.into(),
        })
    }

    pub fn stats(&self) -> &HttpStats {
        &self.endpoint.stats
    }

    pub fn breaker_state(&self) -> Option<BreakerState> {
        self.endpoint.breaker_state()
    }
}

#[async_trait]
impl Notifier for WebhookChannel {
    async fn publish(&self, event: &Event) -> Result<()> {
        if !wanted(event) {
            return Ok(());
        }
        let body = serde_json::to_vec(event)?;
        // One id per event, the same on every retry, so receivers can drop
        // a delivery they already processed.
        let delivery = uuid::Uuid::new_v4().to_string();
        let kind = event_type(event);
        self.endpoint
            .post(&body, || {
                let ts = chrono::Utc::now().timestamp();
                vec![
                    (TIMESTAMP_HEADER, ts.to_string()),
                    (
                        SIGNATURE_HEADER,
                        format!(
                            "sha256={}",
                            signature(&self.secret, ts, &delivery, &kind, &body)
                        ),
                    ),
                    (EVENT_HEADER, kind.clone()),
                    (DELIVERY_HEADER, delivery.clone()),
                ]
            })
            .await
    }
}

/// A Slack incoming webhook: `{"text": ...}` with a one-line summary.
pub struct SlackChannel {
    endpoint: Endpoint,
}

impl SlackChannel {
    pub fn new(url: reqwest::Url, config: HttpChannelConfig) -> Result<Self> {
        Ok(SlackChannel {
            endpoint: Endpoint::new("slack", url, config)?,
        })
    }

    pub fn stats(&self) -> &HttpStats {
        &self.endpoint.stats
    }
}

#[async_trait]
impl Notifier for SlackChannel {
    async fn publish(&self, event: &Event) -> Result<()> {
        if !wanted(event) {
            return Ok(());
        }
        let body = serde_json::to_vec(&serde_json::json!({ "text": slack_text(event) }))?;
        self.endpoint.post(&body, Vec::new).await
    }
}

fn usd(v: Option<f64>) -> String {
    v.map(|v| format!("${v:.2}/month"))
        .unwrap_or_else(|| "savings unknown".into())
}

/// One readable line per event, escaped for Slack's mrkdwn: resource ids,
/// reasons, actors and errors are not ours, and `<!channel>`, `<@U…>` or
/// `<url|label>` in them must read as text, not mention or link.
pub fn slack_text(event: &Event) -> String {
    slack_escape(&slack_line(event))
}

/// Slack's three control characters, as its formatting rules ask.
fn slack_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

fn slack_line(event: &Event) -> String {
    match event {
        Event::JobProgress {
            job_id,
            stage,
            percent,
            ..
        } => format!("Job {job_id}: {stage} ({percent}%)"),
        Event::JobCompleted { job_id, summary } => {
            format!("Job {job_id} completed: {summary}")
        }
        Event::JobFailed { job_id, error } => format!(":x: Job {job_id} failed: {error}"),
        Event::ApprovalRequestCreated { request } => {
            let r = &request.recommendation;
            format!(
                "Approval requested ({}): {} {} {} ({}), {}, risk {}/4: {}",
                request.id,
                r.action.as_str(),
                r.service,
                r.resource_id,
                r.region,
                usd(r.monthly_savings_usd),
                r.risk,
                r.reason
            )
        }
        Event::ApprovalDecisionMade { request, decision } => format!(
            "Approval {}: {} -> {} by {} for {} {}{}",
            request.id,
            decision.from,
            decision.to,
            decision.actor,
            request.recommendation.action.as_str(),
            request.recommendation.resource_id,
            decision
                .reason
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        ),
        Event::CostReport { job_id, .. } => format!("Cost report ready (job {job_id})"),
        Event::ExecutionProgress {
            request_id,
            resource_id,
            phase,
            step,
            total,
            op,
            status,
            ..
        } => format!(
            "{} of {request_id} ({resource_id}): step {step}/{total} {op} {}",
            phase.as_str(),
            serde_json::to_value(status)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default()
        ),
        Event::OptimizationActionExecuted { request, .. } => format!(
            ":white_check_mark: Executed {} on {} ({}), {} a month",
            request.recommendation.action.as_str(),
            request.recommendation.resource_id,
            request.id,
            usd(request.recommendation.monthly_savings_usd)
        ),
        Event::ExecutionFailed {
            request_id,
            resource_id,
            code,
            error,
        } => format!(":x: Execution of {request_id} ({resource_id}) failed [{code}]: {error}"),
        Event::RollbackCompleted { request, .. } => format!(
            ":leftwards_arrow_with_hook: Rolled back {} on {} ({}): {}",
            request.recommendation.action.as_str(),
            request.recommendation.resource_id,
            request.id,
            request.status.as_str()
        ),
        Event::OperatorAlert {
            stage,
            consecutive_failures,
            error,
        } => format!(
            ":warning: Stage {stage} failed {consecutive_failures} cycles in a row: {error}"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_only_with_the_right_secret_body_and_time() {
        let body = br#"{"type":"job.failed"}"#;
        let sig = format!(
            "sha256={}",
            signature(b"secret", 1_700_000_000, "d-1", "job.failed", body)
        );
        let good = Delivery {
            timestamp: "1700000000",
            delivery: "d-1",
            event_type: "job.failed",
            signature: &sig,
            body,
        };
        assert!(verify_signature(b"secret", &good, 1_700_000_010, 300));
        assert!(!verify_signature(b"other", &good, 1_700_000_010, 300));
        assert!(!verify_signature(b"secret", &good, 1_700_001_000, 300));
        for bad in [
            Delivery {
                timestamp: "1700000001",
                ..good
            },
            Delivery {
                body: b"{}",
                ..good
            },
            Delivery {
                delivery: "d-2",
                ..good
            },
            Delivery {
                event_type: "job.completed",
                ..good
            },
            Delivery {
                signature: "sha256=zz",
                ..good
            },
        ] {
            assert!(
                !verify_signature(b"secret", &bad, 1_700_000_010, 300),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn backoff_doubles_with_bounded_jitter() {
        let base = Duration::from_millis(100);
        for attempt in 1..5u32 {
            let d = backoff(base, attempt);
            let floor = base * (1 << (attempt - 1));
            assert!(d >= floor && d <= floor.mul_f64(1.5), "{attempt}: {d:?}");
        }
    }
}
