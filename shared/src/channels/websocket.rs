//! Pushes events to WebSocket clients through the API Gateway management API
//! (`POST /@connections/{id}`).
//!
//! - Recipients: the subscribers of each of the event's topics, each found
//!   with one paginated GSI Query (never a Scan), merged so a connection
//!   subscribed to two of those topics gets the event once.
//! - Concurrency: at most `concurrency` PostToConnection calls in flight.
//! - 410 Gone: that connection is deleted with its subscriptions; nobody
//!   else's. Other failures were already retried by the SDK (its standard
//!   retry mode: throttling, 5xx, transport) and are counted.
//! - The payload is checked against API Gateway's 128 KB message limit
//!   before any call.

use super::MAX_MESSAGE_BYTES;
use crate::domain::Topic;
use crate::notify::{Event, Notifier};
use crate::store::ConnectionStore;
use crate::{Error, Result};
use async_trait::async_trait;
use aws_sdk_apigatewaymanagement::primitives::Blob;
use chrono::Utc;
use futures::StreamExt;
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Subscribers read per Query page.
const SUBSCRIBER_PAGE: u32 = 1000;

/// Totals over the life of the notifier.
#[derive(Debug, Default)]
pub struct WsStats {
    pub delivered: AtomicU64,
    pub gone: AtomicU64,
    pub failed: AtomicU64,
}

/// The outcome of one publish.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delivery {
    /// Distinct connections the event was meant for.
    pub recipients: usize,
    pub delivered: usize,
    /// Connections that answered 410 and were removed.
    pub gone: Vec<String>,
    /// Connections that could not be reached after the SDK's retries.
    pub failed: Vec<String>,
}

pub struct WebSocketNotifier {
    client: aws_sdk_apigatewaymanagement::Client,
    connections: Arc<dyn ConnectionStore>,
    concurrency: usize,
    stats: WsStats,
}

enum Outcome {
    Delivered,
    Gone(String),
    Failed(String),
}

impl WebSocketNotifier {
    /// One management client, built here once, pointed at `endpoint`
    /// (`https://{api-id}.execute-api.{region}.amazonaws.com/{stage}`, or the
    /// local gateway). The explicit endpoint wins over `AWS_ENDPOINT_URL`,
    /// which locally points at the emulator, whose management API is a stub.
    pub fn new(
        aws: &aws_config::SdkConfig,
        endpoint: &str,
        concurrency: usize,
        max_attempts: u32,
        connections: Arc<dyn ConnectionStore>,
    ) -> WebSocketNotifier {
        let config = aws_sdk_apigatewaymanagement::config::Builder::from(aws)
            .endpoint_url(endpoint.trim_end_matches('/'))
            .retry_config(
                aws_smithy_types::retry::RetryConfig::standard().with_max_attempts(max_attempts),
            )
            .build();
        Self::with_client(
            aws_sdk_apigatewaymanagement::Client::from_conf(config),
            connections,
            concurrency,
        )
    }

    pub fn with_client(
        client: aws_sdk_apigatewaymanagement::Client,
        connections: Arc<dyn ConnectionStore>,
        concurrency: usize,
    ) -> WebSocketNotifier {
        WebSocketNotifier {
            client,
            connections,
            concurrency: concurrency.max(1),
            stats: WsStats::default(),
        }
    }

    pub fn stats(&self) -> &WsStats {
        &self.stats
    }

    /// Feeds every live subscriber of any of `topics` into `tx`, a page at
    /// a time, so pushes start with the first page instead of after the last.
    async fn recipients(
        &self,
        topics: &[Topic],
        tx: tokio::sync::mpsc::Sender<String>,
    ) -> Result<()> {
        let now = Utc::now();
        for topic in topics {
            let mut token: Option<String> = None;
            loop {
                let page = self
                    .connections
                    .subscribers(topic, Some(SUBSCRIBER_PAGE), token.as_deref(), now)
                    .await?;
                for id in page.items {
                    if tx.send(id).await.is_err() {
                        return Ok(());
                    }
                }
                match page.next_token {
                    Some(next) => token = Some(next),
                    None => break,
                }
            }
        }
        Ok(())
    }

    /// Sends `event` to its subscribers and says what came of it.
    ///
    /// The subscriber listing and the pushes overlap: the listing runs ahead
    /// by up to two pages while the pushes drain it, and a connection
    /// subscribed to several of the event's topics is pushed to once.
    pub async fn deliver(&self, event: &Event) -> Result<Delivery> {
        let payload = serde_json::to_vec(event)?;
        if payload.len() > MAX_MESSAGE_BYTES {
            return Err(Error::Validation(format!(
                "payload_too_large: the {} event is {} bytes, over API Gateway's WebSocket message limit of {} bytes",
                event_type(&payload),
                payload.len(),
                MAX_MESSAGE_BYTES
            )));
        }
        let topics = event.topics();
        let (tx, rx) = tokio::sync::mpsc::channel::<String>(2 * SUBSCRIBER_PAGE as usize);
        let listing = self.recipients(&topics, tx);
        let payload = &payload;
        let pushes = async {
            let mut seen = HashSet::new();
            let mut delivery = Delivery::default();
            let mut rx = rx;
            let ids = futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
                .filter(move |id| std::future::ready(seen.insert(id.clone())));
            let mut sends = ids
                .map(|id| async move { self.send(id, payload).await })
                .buffer_unordered(self.concurrency);
            while let Some(outcome) = sends.next().await {
                delivery.recipients += 1;
                match outcome {
                    Outcome::Delivered => delivery.delivered += 1,
                    Outcome::Gone(id) => delivery.gone.push(id),
                    Outcome::Failed(id) => delivery.failed.push(id),
                }
            }
            delivery
        };
        let (listed, delivery) = tokio::join!(listing, pushes);
        self.stats
            .delivered
            .fetch_add(delivery.delivered as u64, Ordering::Relaxed);
        self.stats
            .gone
            .fetch_add(delivery.gone.len() as u64, Ordering::Relaxed);
        self.stats
            .failed
            .fetch_add(delivery.failed.len() as u64, Ordering::Relaxed);
        // The subscribers listed before a failed page were pushed to; the
        // failure still surfaces, as the rest were not.
        listed?;
        Ok(delivery)
    }

    async fn send(&self, id: String, payload: &[u8]) -> Outcome {
        let result = self
            .client
            .post_to_connection()
            .connection_id(&id)
            .data(Blob::new(payload))
            .send()
            .await;
        match result {
            Ok(_) => Outcome::Delivered,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_gone_exception()) => {
                // The client went away without a clean $disconnect: its
                // records go now, so the next publish does not try again.
                if let Err(err) = self.connections.remove(&id).await {
                    tracing::warn!(connection_id = %id, error = %err, "could not remove a gone connection");
                }
                Outcome::Gone(id)
            }
            Err(e) => {
                let e = Error::from_sdk("PostToConnection", e);
                tracing::warn!(connection_id = %id, error = %e, "push failed");
                Outcome::Failed(id)
            }
        }
    }
}

fn event_type(payload: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(payload)
        .ok()
        .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(str::to_string))
        .unwrap_or_default()
}

#[async_trait]
impl Notifier for WebSocketNotifier {
    async fn publish(&self, event: &Event) -> Result<()> {
        let d = self.deliver(event).await?;
        tracing::debug!(
            recipients = d.recipients,
            delivered = d.delivered,
            gone = d.gone.len(),
            failed = d.failed.len(),
            "websocket publish"
        );
        Ok(())
    }
}
