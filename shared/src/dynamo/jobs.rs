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

/// Shard bookkeeping lives on the job item: `shardsTotal`, the string set
/// `shardsDone` (so counting a shard twice is impossible), and
/// `finalizeUntil` (the claim on the final stage, in epoch milliseconds).
#[async_trait]
impl crate::store::ShardTracker for DynamoJobs {
    async fn set_shards(&self, job_id: &str, total: u32) -> Result<()> {
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("id", s(job_id))
            .update_expression("SET shardsTotal = :n")
            .condition_expression(
                "attribute_exists(id) AND (attribute_not_exists(shardsTotal) OR shardsTotal = :n)",
            )
            .expression_attribute_values(":n", n(total))
            .send()
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(e) if is_conditional_failure(&e) => Err(Error::Conflict(format!(
                "job {job_id} is planned with another shard count"
            ))),
            Err(e) => Err(Error::from_sdk("UpdateItem", e)),
        }
    }

    async fn complete_shard(
        &self,
        job_id: &str,
        index: u32,
        analysed: u64,
        findings: u64,
    ) -> Result<crate::store::ShardCount> {
        let shard = index.to_string();
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("id", s(job_id))
            .update_expression("ADD shardsDone :s, analysedCount :a, findingsCount :f")
            .condition_expression(
                "attribute_exists(shardsTotal) AND NOT contains(shardsDone, :one)",
            )
            .expression_attribute_values(":s", AttributeValue::Ss(vec![shard.clone()]))
            .expression_attribute_values(":one", s(shard))
            .expression_attribute_values(":a", n(analysed))
            .expression_attribute_values(":f", n(findings))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
            .send()
            .await;
        let (item, newly_counted) = match res {
            Ok(out) => (out.attributes.unwrap_or_default(), true),
            Err(e) if is_conditional_failure(&e) => (
                self.fetch(job_id)
                    .await?
                    .ok_or_else(|| Error::not_found("job", job_id))?,
                false,
            ),
            Err(e) => return Err(Error::from_sdk("UpdateItem", e)),
        };
        let total = match item.get("shardsTotal") {
            Some(AttributeValue::N(v)) => v.parse().unwrap_or(0),
            _ => return Err(Error::Conflict(format!("job {job_id} has no shard plan"))),
        };
        let done = match item.get("shardsDone") {
            Some(AttributeValue::Ss(set)) => set.len() as u32,
            _ => 0,
        };
        let counter = |name: &str| match item.get(name) {
            Some(AttributeValue::N(v)) => v.parse().unwrap_or(0),
            _ => 0,
        };
        Ok(crate::store::ShardCount {
            done,
            total,
            analysed: counter("analysedCount"),
            findings: counter("findingsCount"),
            newly_counted,
        })
    }

    async fn claim_finalize(
        &self,
        job_id: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("id", s(job_id))
            .update_expression("SET finalizeUntil = :until")
            .condition_expression("#status = :running AND (attribute_not_exists(finalizeUntil) OR finalizeUntil <= :now)")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":running", to_av(&JobStatus::Running)?)
            .expression_attribute_values(":until", n(until.timestamp_millis()))
            .expression_attribute_values(":now", n(now.timestamp_millis()))
            .send()
            .await;
        match res {
            Ok(_) => Ok(true),
            Err(e) if is_conditional_failure(&e) => Ok(false),
            Err(e) => Err(Error::from_sdk("UpdateItem", e)),
        }
    }
}
