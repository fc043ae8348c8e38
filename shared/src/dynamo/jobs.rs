use super::*;
use crate::domain::{Job, JobStatus, Progress};
use crate::store::{JobOutcome, JobStore};
use async_trait::async_trait;

/// Jobs table: key `id`; items expire `retention` after creation.
#[derive(Clone, Debug)]
pub struct DynamoJobs {
    client: Client,
    table: String,
    retention: chrono::Duration,
}

impl DynamoJobs {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoJobs {
            client,
            table: table.into(),
            retention: chrono::Duration::days(30),
        }
    }

    async fn fetch(&self, id: &str) -> Result<Option<Item>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("id", s(id))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| Error::from_sdk("GetItem", e))?;
        Ok(out.item)
    }
}

#[async_trait]
impl JobStore for DynamoJobs {
    async fn create(&self, job: &Job) -> Result<bool> {
        let mut item = to_item(job)?;
        item.insert(
            "ttl".into(),
            n((job.created_at + self.retention).timestamp()),
        );
        let res = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(id)")
            .send()
            .await;
        match res {
            Ok(_) => Ok(true),
            Err(e) if is_conditional_failure(&e) => Ok(false),
            Err(e) => Err(Error::from_sdk("PutItem", e)),
        }
    }

    async fn get(&self, id: &str, now: DateTime<Utc>) -> Result<Option<Job>> {
        match self.fetch(id).await? {
            Some(item) if is_live(&item, now) => from_item(item).map(Some),
            _ => Ok(None),
        }
    }

    async fn mark_enqueued(&self, id: &str) -> Result<()> {
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("id", s(id))
            .update_expression("SET enqueued = :t")
            .condition_expression("attribute_exists(id)")
            .expression_attribute_values(":t", AttributeValue::Bool(true))
            .send()
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(e) if is_conditional_failure(&e) => Err(Error::not_found("job", id)),
            Err(e) => Err(Error::from_sdk("UpdateItem", e)),
        }
    }

    async fn transition(
        &self,
        id: &str,
        to: JobStatus,
        outcome: JobOutcome,
        now: DateTime<Utc>,
    ) -> Result<Job> {
        let from = to.allowed_from();
        if from.is_empty() {
            return Err(Error::Validation(format!(
                "no job may move to {}",
                to.as_str()
            )));
        }
        let placeholders: Vec<String> = (0..from.len()).map(|i| format!(":f{i}")).collect();
        let mut set = vec!["#status = :to", "updatedAt = :now"];
        if to == JobStatus::Running {
            set.push("startedAt = :now");
        }
        if to.is_finished() {
            set.push("finishedAt = :now");
        }
        if outcome.result.is_some() {
            set.push("#result = :result");
        }
        if outcome.error.is_some() {
            set.push("#error = :error");
        }
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("id", s(id))
            .update_expression(format!("SET {}", set.join(", ")))
            .condition_expression(format!(
                "attribute_exists(id) AND #status IN ({})",
                placeholders.join(", ")
            ))
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":to", to_av(&to)?)
            .expression_attribute_values(":now", s(sortable(now)))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew);
        for (p, f) in placeholders.iter().zip(from) {
            req = req.expression_attribute_values(p, to_av(f)?);
        }
        if let Some(r) = &outcome.result {
            req = req
                .expression_attribute_names("#result", "result")
                .expression_attribute_values(":result", to_av(r)?);
        }
        if let Some(e) = &outcome.error {
            req = req
                .expression_attribute_names("#error", "error")
                .expression_attribute_values(":error", s(e.clone()));
        }
        match req.send().await {
            Ok(out) => from_item(out.attributes.unwrap_or_default()),
            Err(e) if is_conditional_failure(&e) => match self.fetch(id).await? {
                None => Err(Error::not_found("job", id)),
                Some(item) => {
                    let current: Job = from_item(item)?;
                    Err(Error::Conflict(format!(
                        "job {id} is {}, cannot become {}",
                        current.status.as_str(),
                        to.as_str()
                    )))
                }
            },
            Err(e) => Err(Error::from_sdk("UpdateItem", e)),
        }
    }

    async fn update_progress(
        &self,
        id: &str,
        progress: &Progress,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("id", s(id))
            .update_expression("SET progress = :p, updatedAt = :now")
            .condition_expression("#status = :running")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":p", to_av(progress)?)
            .expression_attribute_values(":now", s(sortable(now)))
            .expression_attribute_values(":running", to_av(&JobStatus::Running)?)
            .send()
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(e) if is_conditional_failure(&e) => {
                Err(Error::Conflict(format!("job {id} is not running")))
            }
            Err(e) => Err(Error::from_sdk("UpdateItem", e)),
        }
    }
}
