//! A local stand-in for Lambda's SQS event source mapping: receives a batch,
//! hands the processor exactly the `SqsEvent` Lambda would, deletes only the
//! messages that succeeded, and leaves failed ones to come back after their
//! visibility timeout (or at once, when asked, to shorten tests).

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, MessageSystemAttributeName};
use aws_sdk_sqs::Client;
use std::collections::HashMap;

/// One received batch and what is needed to settle it.
pub struct Batch {
    pub event: SqsEvent,
    receipts: HashMap<String, String>,
}

impl Batch {
    pub fn len(&self) -> usize {
        self.event.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.event.records.is_empty()
    }
}

pub struct EventSource {
    sqs: Client,
    queue_url: String,
    queue_arn: String,
    pub batch_size: i32,
    pub wait_seconds: i32,
}

impl EventSource {
    pub fn new(sqs: Client, queue_url: impl Into<String>, queue_arn: impl Into<String>) -> Self {
        EventSource {
            sqs,
            queue_url: queue_url.into(),
            queue_arn: queue_arn.into(),
            batch_size: 10,
            wait_seconds: 0,
        }
    }

    /// Receives up to `batch_size` messages as one Lambda SQS event.
    pub async fn receive(&self) -> Result<Batch, String> {
        let out = self
            .sqs
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(self.batch_size)
            .wait_time_seconds(self.wait_seconds)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .customize()
            // A long poll legitimately outlasts the SDK's attempt timeout.
            .config_override(
                aws_sdk_sqs::config::Builder::new().timeout_config(
                    aws_config::timeout::TimeoutConfig::builder()
                        .operation_attempt_timeout(std::time::Duration::from_secs(
                            self.wait_seconds.max(0) as u64 + 10,
                        ))
                        .operation_timeout(std::time::Duration::from_secs(
                            self.wait_seconds.max(0) as u64 + 20,
                        ))
                        .build(),
                ),
            )
            .send()
            .await
            .map_err(|e| format!("{e:?}"))?;
        let mut event = SqsEvent::default();
        let mut receipts = HashMap::new();
        for m in out.messages.unwrap_or_default() {
            let mut record = SqsMessage::default();
            record.message_id = m.message_id.clone();
            record.receipt_handle = m.receipt_handle.clone();
            record.body = m.body.clone();
            record.md5_of_body = m.md5_of_body.clone();
            record.attributes = m
                .attributes
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k.as_str().to_string(), v))
                .collect();
            record.event_source = Some("aws:sqs".into());
            record.event_source_arn = Some(self.queue_arn.clone());
            record.aws_region = Some("us-east-1".into());
            if let (Some(id), Some(handle)) = (m.message_id, m.receipt_handle) {
                receipts.insert(id, handle);
            }
            event.records.push(record);
        }
        Ok(Batch { event, receipts })
    }

    /// Deletes the messages the response did not report as failed. With
    /// `retry_now`, failed messages become visible again immediately.
    pub async fn settle(
        &self,
        batch: &Batch,
        response: &SqsBatchResponse,
        retry_now: bool,
    ) -> Result<(), String> {
        let failed: Vec<&str> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect();
        let entries: Vec<DeleteMessageBatchRequestEntry> = batch
            .receipts
            .iter()
            .filter(|(id, _)| !failed.contains(&id.as_str()))
            .enumerate()
            .filter_map(|(i, (_, handle))| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(format!("m{i}"))
                    .receipt_handle(handle)
                    .build()
                    .ok()
            })
            .collect();
        if !entries.is_empty() {
            self.sqs
                .delete_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| format!("{e:?}"))?;
        }
        if retry_now {
            for id in failed {
                if let Some(handle) = batch.receipts.get(id) {
                    self.sqs
                        .change_message_visibility()
                        .queue_url(&self.queue_url)
                        .receipt_handle(handle)
                        .visibility_timeout(0)
                        .send()
                        .await
                        .map_err(|e| format!("{e:?}"))?;
                }
            }
        }
        Ok(())
    }
}

impl EventSource {
    /// Lambda's poller, locally: long-polls the queue, invokes `handler`
    /// with each batch as the SQS event Lambda would send, and deletes only
    /// the messages the response does not report as failed (failed ones come
    /// back after their visibility timeout, and to the dead-letter queue
    /// through the redrive policy). Runs until `stop`.
    pub async fn run<F, Fut>(&self, mut stop: tokio::sync::watch::Receiver<bool>, handler: F)
    where
        F: Fn(SqsEvent) -> Fut,
        Fut: std::future::Future<Output = SqsBatchResponse>,
    {
        loop {
            let received = tokio::select! {
                r = self.receive() => r,
                _ = crate::gateway::stopped(&mut stop) => return,
            };
            let batch = match received {
                Ok(b) => b,
                Err(e) => {
                    // The queue is unreachable: wait, as Lambda's poller backs off.
                    tracing::warn!(error = %e, "SQS event source: receive failed");
                    tokio::select! {
                        _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => continue,
                        _ = crate::gateway::stopped(&mut stop) => return,
                    }
                }
            };
            if batch.is_empty() {
                if self.wait_seconds == 0 {
                    // Short polling: don't spin on an empty queue.
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                }
                continue;
            }
            let response = handler(batch.event.clone()).await;
            if let Err(e) = self.settle(&batch, &response, false).await {
                tracing::warn!(error = %e, "SQS event source: delete failed (messages will be redelivered)");
            }
        }
    }
}
