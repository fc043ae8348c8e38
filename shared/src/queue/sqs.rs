//! The SQS adapter of the jobs queue.

use super::{send_in_batches, JobQueue, Refusal, SendBatchError};
use crate::domain::JobMessage;
use crate::{Error, Result};
use async_trait::async_trait;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use aws_sdk_sqs::Client;

#[derive(Clone, Debug)]
pub struct SqsJobQueue {
    client: Client,
    queue_url: String,
}

impl SqsJobQueue {
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        SqsJobQueue {
            client,
            queue_url: queue_url.into(),
        }
    }

    /// [`JobQueue::send_batch`] with the refused entries named.
    pub async fn send_all(
        &self,
        messages: &[JobMessage],
    ) -> std::result::Result<(), SendBatchError> {
        let bodies = messages
            .iter()
            .map(serde_json::to_string)
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(Error::from)?;
        send_in_batches(messages, &bodies, |entries| self.send_entries(entries)).await
    }

    async fn send_entries(&self, entries: Vec<(String, String)>) -> Result<Vec<Refusal>> {
        let entries = entries
            .into_iter()
            .map(|(id, body)| {
                SendMessageBatchRequestEntry::builder()
                    .id(id)
                    .message_body(body)
                    .build()
                    .map_err(|e| Error::Internal(format!("SendMessageBatch entry: {e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        let out = self
            .client
            .send_message_batch()
            .queue_url(&self.queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| Error::from_sdk("SendMessageBatch", e))?;
        Ok(out
            .failed()
            .iter()
            .map(|f| Refusal {
                id: f.id().to_string(),
                code: f.code().to_string(),
                message: f.message().unwrap_or_default().to_string(),
                sender_fault: f.sender_fault(),
            })
            .collect())
    }
}

#[async_trait]
impl JobQueue for SqsJobQueue {
    async fn send(&self, message: &JobMessage) -> Result<()> {
        self.send_delayed(message, 0).await
    }

    async fn send_batch(&self, messages: &[JobMessage]) -> Result<()> {
        Ok(self.send_all(messages).await?)
    }
}

impl SqsJobQueue {
    /// Sends `message`, held back `delay_seconds` (at most 900, SQS's limit).
    pub async fn send_delayed(&self, message: &JobMessage, delay_seconds: i32) -> Result<()> {
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(serde_json::to_string(message)?)
            .set_delay_seconds((delay_seconds > 0).then_some(delay_seconds.min(900)))
            .send()
            .await
            .map_err(|e| Error::from_sdk("SendMessage", e))?;
        Ok(())
    }
}
