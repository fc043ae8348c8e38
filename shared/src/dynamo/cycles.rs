use super::*;
use crate::domain::{CycleRun, Lease};
use crate::store::{CycleRunStore, LeaseStore};
use async_trait::async_trait;

/// Cycles table, key (`pk`, `sk`):
/// - lease `LEASE#<name>` / `LEASE`, with `leaseUntil` in epoch milliseconds
///   so the expiry condition is a numeric comparison;
/// - run `RUN#<runId>` / `RUN`, with `kind` = `run` and `sortKey` = start
///   time projected into the `byKind` GSI for "newest runs first".
#[derive(Clone, Debug)]
pub struct DynamoCycles {
    client: Client,
    table: String,
}

impl DynamoCycles {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoCycles {
            client,
            table: table.into(),
        }
    }

    fn lease_key(name: &str) -> (AttributeValue, AttributeValue) {
        (s(format!("LEASE#{name}")), s("LEASE"))
    }
}

#[async_trait]
impl LeaseStore for DynamoCycles {
    async fn acquire(
        &self,
        name: &str,
        owner: &str,
        ttl: chrono::Duration,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let lease = Lease {
            name: name.to_string(),
            owner: owner.to_string(),
            acquired_at: now,
            expires_at: now + ttl,
        };
        let (pk, sk) = Self::lease_key(name);
        let mut item = to_item(&lease)?;
        item.insert("pk".into(), pk);
        item.insert("sk".into(), sk);
        item.insert("leaseUntil".into(), n(lease.expires_at.timestamp_millis()));
        let res = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(
                "attribute_not_exists(pk) OR leaseUntil <= :now OR #owner = :owner",
            )
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":now", n(now.timestamp_millis()))
            .expression_attribute_values(":owner", s(owner))
            .send()
            .await;
        match res {
            Ok(_) => Ok(true),
            Err(e) if is_conditional_failure(&e) => Ok(false),
            Err(e) => Err(Error::from_sdk("PutItem", e)),
        }
    }

    async fn renew(
        &self,
        name: &str,
        owner: &str,
        ttl: chrono::Duration,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let (pk, sk) = Self::lease_key(name);
        let until = now + ttl;
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", pk)
            .key("sk", sk)
            .update_expression("SET leaseUntil = :until, expiresAt = :exp")
            .condition_expression("#owner = :owner")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":owner", s(owner))
            .expression_attribute_values(":until", n(until.timestamp_millis()))
            .expression_attribute_values(":exp", to_av(&until)?)
            .send()
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(e) if is_conditional_failure(&e) => Err(Error::Conflict(format!(
                "lease {name} is not held by {owner}"
            ))),
            Err(e) => Err(Error::from_sdk("UpdateItem", e)),
        }
    }

    async fn release(&self, name: &str, owner: &str) -> Result<()> {
        let (pk, sk) = Self::lease_key(name);
        let res = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", pk)
            .key("sk", sk)
            .condition_expression("#owner = :owner")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":owner", s(owner))
            .send()
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(e) if is_conditional_failure(&e) => Err(Error::Conflict(format!(
                "lease {name} is not held by {owner}"
            ))),
            Err(e) => Err(Error::from_sdk("DeleteItem", e)),
        }
    }

    async fn current(&self, name: &str, now: DateTime<Utc>) -> Result<Option<Lease>> {
        let (pk, sk) = Self::lease_key(name);
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", pk)
            .key("sk", sk)
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| Error::from_sdk("GetItem", e))?;
        let lease: Option<Lease> = out.item.map(from_item).transpose()?;
        Ok(lease.filter(|l| l.expires_at > now))
    }
}

#[async_trait]
impl CycleRunStore for DynamoCycles {
    async fn put_run(&self, run: &CycleRun) -> Result<()> {
        let mut item = to_item(run)?;
        item.insert("pk".into(), s(format!("RUN#{}", run.run_id)));
        item.insert("sk".into(), s("RUN"));
        item.insert("kind".into(), s("run"));
        item.insert(
            "sortKey".into(),
            s(format!("{}#{}", sortable(run.started_at), run.run_id)),
        );
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| Error::from_sdk("PutItem", e))?;
        Ok(())
    }

    async fn get_run(&self, run_id: &str) -> Result<Option<CycleRun>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(format!("RUN#{run_id}")))
            .key("sk", s("RUN"))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| Error::from_sdk("GetItem", e))?;
        out.item.map(from_item).transpose()
    }

    async fn recent_runs(&self, limit: u32) -> Result<Vec<CycleRun>> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name("byKind")
            .key_condition_expression("kind = :k")
            .expression_attribute_values(":k", s("run"))
            .scan_index_forward(false)
            .limit(limit.clamp(1, 100) as i32)
            .send()
            .await
            .map_err(|e| Error::from_sdk("Query", e))?;
        out.items
            .unwrap_or_default()
            .into_iter()
            .map(from_item)
            .collect()
    }
}

/// Stage health items `STAGE#<stage>` / `HEALTH` hold `consecutiveFailures`:
/// an atomic ADD on failure, a SET to 0 on success.
#[async_trait]
impl crate::store::StageHealth for DynamoCycles {
    async fn record_stage(&self, stage: crate::domain::Stage, ok: bool) -> Result<u64> {
        let req = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(format!("STAGE#{stage}")))
            .key("sk", s("HEALTH"))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::UpdatedNew);
        let req = if ok {
            req.update_expression("SET consecutiveFailures = :zero")
                .expression_attribute_values(":zero", n(0))
        } else {
            req.update_expression("ADD consecutiveFailures :one")
                .expression_attribute_values(":one", n(1))
        };
        let out = req
            .send()
            .await
            .map_err(|e| Error::from_sdk("UpdateItem", e))?;
        Ok(
            match out
                .attributes
                .and_then(|mut a| a.remove("consecutiveFailures"))
            {
                Some(AttributeValue::N(v)) => v.parse().unwrap_or(0),
                _ => 0,
            },
        )
    }
}
