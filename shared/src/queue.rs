//! The jobs queue port and its SQS adapter.

use crate::domain::JobMessage;
use crate::{Error, Result};
use async_trait::async_trait;
use aws_sdk_sqs::Client;

#[async_trait]
pub trait JobQueue: Send + Sync {
    async fn send(&self, message: &JobMessage) -> Result<()>;
}

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
}

#[async_trait]
impl JobQueue for SqsJobQueue {
    async fn send(&self, message: &JobMessage) -> Result<()> {
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(serde_json::to_string(message)?)
            .send()
            .await
            .map_err(|e| Error::from_sdk("SendMessage", e))?;
        Ok(())
    }
}
