use super::*;
use crate::domain::execution::{AccountHealth, ChangeCap, HourCounts, Phase};
use crate::execution::{Claim, ExecutionRecord, ExecutionStatus, ExecutionStore, StepRecord};
use async_trait::async_trait;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{TransactWriteItem, Update};

/// Executions table, key (`pk`, `sk`), four item kinds:
/// - execution `EXEC#<requestId>` / `META`: plan, pre-state, status, post-state;
/// - step `EXEC#<requestId>` / `STEP#<phase>#<nnn>`: claimed `started` before
///   its AWS call (with `leaseEpochMs`, so a vanished worker's claim expires
///   by a numeric comparison), then `completed`, `failed` or `skipped`;
/// - hour `HOUR#<account>#<hour>` / `COUNT` (and `HOUR#*#<hour>` for every
///   account): the string set `requests` of the changes started that hour,
///   so counting a redelivered request again adds nothing; expires after two days;
/// - account `ACCOUNT#<account>` / `HEALTH`: consecutive failures for the breaker.
#[derive(Clone, Debug)]
pub struct DynamoExecutions {
    client: Client,
    table: String,
}

const ALL_ACCOUNTS: &str = "*";

fn exec_pk(id: &str) -> String {
    format!("EXEC#{id}")
}

fn step_sk(phase: Phase, index: u32) -> String {
    format!("STEP#{}#{index:03}", phase.as_str())
}

fn hour_pk(account: &str, hour: DateTime<Utc>) -> String {
    format!("HOUR#{account}#{}", hour.format("%Y-%m-%dT%H"))
}

fn set_len(item: Option<&Item>) -> u32 {
    match item.and_then(|i| i.get("requests")) {
        Some(AttributeValue::Ss(v)) => v.len() as u32,
        _ => 0,
    }
}

impl DynamoExecutions {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoExecutions {
            client,
            table: table.into(),
        }
    }

    fn step_item(&self, r: &StepRecord) -> Result<Item> {
        let mut item = to_item(r)?;
        item.insert("pk".into(), s(exec_pk(&r.request_id)));
        item.insert("sk".into(), s(step_sk(r.phase, r.index)));
        item.insert("leaseEpochMs".into(), n(r.lease_until.timestamp_millis()));
        Ok(item)
    }

    async fn get_item(&self, pk: String, sk: String) -> Result<Option<Item>> {
        Ok(self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| Error::from_sdk("GetItem", e))?
            .item)
    }
}

#[async_trait]
impl ExecutionStore for DynamoExecutions {
    async fn begin(&self, record: &ExecutionRecord) -> Result<ExecutionRecord> {
        let mut item = to_item(record)?;
        item.insert("pk".into(), s(exec_pk(&record.request_id)));
        item.insert("sk".into(), s("META"));
        let res = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match res {
            Ok(_) => Ok(record.clone()),
            Err(e) if is_conditional_failure(&e) => self
                .get(&record.request_id)
                .await?
                .ok_or_else(|| Error::Conflict("execution record vanished".into())),
            Err(e) => Err(Error::from_sdk("PutItem", e)),
        }
    }

    async fn get(&self, request_id: &str) -> Result<Option<ExecutionRecord>> {
        self.get_item(exec_pk(request_id), "META".into())
            .await?
            .map(from_item)
            .transpose()
    }

    async fn claim_step(&self, record: &StepRecord, now: DateTime<Utc>) -> Result<Claim> {
        let res = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(self.step_item(record)?))
            .condition_expression(
                "attribute_not_exists(pk) OR (#status = :started AND leaseEpochMs < :now)",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":started", s("started"))
            .expression_attribute_values(":now", n(now.timestamp_millis()))
            .send()
            .await;
        match res {
            Ok(_) => Ok(Claim::Claimed(record.clone())),
            Err(e) if is_conditional_failure(&e) => {
                let stored: Option<StepRecord> = self
                    .get_item(
                        exec_pk(&record.request_id),
                        step_sk(record.phase, record.index),
                    )
                    .await?
                    .map(from_item)
                    .transpose()?;
                Ok(match stored {
                    Some(r) if r.status != crate::execution::StepStatus::Started => Claim::Done(r),
                    _ => Claim::Busy,
                })
            }
            Err(e) => Err(Error::from_sdk("PutItem", e)),
        }
    }

    async fn finish_step(&self, record: &StepRecord) -> Result<()> {
        let res = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(self.step_item(record)?))
            .condition_expression("#status = :started AND startedAt = :startedAt")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":started", s("started"))
            .expression_attribute_values(":startedAt", to_av(&record.started_at)?)
            .send()
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(e) if is_conditional_failure(&e) => Err(Error::Conflict(format!(
                "step {} of {} was taken over by another worker",
                record.index, record.request_id
            ))),
            Err(e) => Err(Error::from_sdk("PutItem", e)),
        }
    }

    async fn steps(&self, request_id: &str, phase: Phase) -> Result<Vec<StepRecord>> {
        let items: Vec<Item> = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :p)")
            .expression_attribute_values(":pk", s(exec_pk(request_id)))
            .expression_attribute_values(":p", s(format!("STEP#{}#", phase.as_str())))
            .consistent_read(true)
            .into_paginator()
            .items()
            .send()
            .collect::<std::result::Result<Vec<_>, _>>()
            .await
            .map_err(|e| Error::from_sdk("Query", e))?;
        items.into_iter().map(from_item).collect()
    }

    async fn finish(&self, record: &ExecutionRecord, from: ExecutionStatus) -> Result<()> {
        let mut item = to_item(record)?;
        item.insert("pk".into(), s(exec_pk(&record.request_id)));
        item.insert("sk".into(), s("META"));
        let res = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("#status = :from")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":from", to_av(&from)?)
            .send()
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(e) if is_conditional_failure(&e) => Err(Error::Conflict(format!(
                "execution {} is no longer {from:?}",
                record.request_id
            ))),
            Err(e) => Err(Error::from_sdk("PutItem", e)),
        }
    }

    async fn claim_change(
        &self,
        account: &str,
        hour: DateTime<Utc>,
        request_id: &str,
        cap: ChangeCap,
    ) -> Result<Option<HourCounts>> {
        let ttl = (hour + chrono::Duration::days(2)).timestamp();
        // Each count takes the request only while it has room, or holds it
        // already (a redelivery): both in one transaction.
        let count = |pk: String, limit: u32| -> Result<TransactWriteItem> {
            let update = Update::builder()
                .table_name(&self.table)
                .key("pk", s(pk))
                .key("sk", s("COUNT"))
                .update_expression("ADD requests :ids SET #ttl = :ttl")
                .condition_expression(
                    "attribute_not_exists(requests) OR size(requests) < :cap OR contains(requests, :id)",
                )
                .expression_attribute_names("#ttl", "ttl")
                .expression_attribute_values(":ids", AttributeValue::Ss(vec![request_id.into()]))
                .expression_attribute_values(":id", s(request_id))
                .expression_attribute_values(":ttl", n(ttl))
                .expression_attribute_values(":cap", n(limit))
                .build()
                .map_err(|e| Error::Internal(format!("building DynamoDB request: {e}")))?;
            Ok(TransactWriteItem::builder().update(update).build())
        };
        let res = self
            .client
            .transact_write_items()
            .transact_items(count(hour_pk(account, hour), cap.per_account_per_hour)?)
            .transact_items(count(hour_pk(ALL_ACCOUNTS, hour), cap.per_hour)?)
            .send()
            .await;
        match res {
            Ok(_) => Ok(Some(self.hour_counts(account, hour).await?)),
            Err(e) => {
                let full = matches!(
                    e.as_service_error(),
                    Some(TransactWriteItemsError::TransactionCanceledException(c))
                        if c.cancellation_reasons().iter().any(|r| r.code() == Some("ConditionalCheckFailed"))
                );
                if full {
                    return Ok(None);
                }
                if matches!(
                    e.as_service_error(),
                    Some(TransactWriteItemsError::TransactionCanceledException(_))
                ) {
                    // Another worker's claim on the same count: try again.
                    return Err(Error::Conflict(format!(
                        "the change count of {account} is being updated"
                    )));
                }
                Err(Error::from_sdk("TransactWriteItems", e))
            }
        }
    }

    async fn hour_counts(&self, account: &str, hour: DateTime<Utc>) -> Result<HourCounts> {
        let a = self
            .get_item(hour_pk(account, hour), "COUNT".into())
            .await?;
        let t = self
            .get_item(hour_pk(ALL_ACCOUNTS, hour), "COUNT".into())
            .await?;
        Ok(HourCounts {
            total: set_len(t.as_ref()),
            account: set_len(a.as_ref()),
        })
    }

    async fn account_health(&self, account: &str) -> Result<AccountHealth> {
        Ok(self
            .get_item(format!("ACCOUNT#{account}"), "HEALTH".into())
            .await?
            .map(from_item)
            .transpose()?
            .unwrap_or_default())
    }

    async fn record_outcome(&self, account: &str, ok: bool, now: DateTime<Utc>) -> Result<()> {
        let req = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(format!("ACCOUNT#{account}")))
            .key("sk", s("HEALTH"));
        let req = if ok {
            req.update_expression("SET consecutiveFailures = :zero REMOVE lastFailureAt")
                .expression_attribute_values(":zero", n(0))
        } else {
            req.update_expression("ADD consecutiveFailures :one SET lastFailureAt = :now")
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":now", to_av(&now)?)
        };
        req.send()
            .await
            .map_err(|e| Error::from_sdk("UpdateItem", e))?;
        Ok(())
    }
}
