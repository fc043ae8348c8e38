use super::*;
use crate::costs::{CostCache, CostQuota};
use async_trait::async_trait;

/// Cost cache table, key `key` = SHA-256 of the normalised question. Each
/// item holds the answer as JSON text, the question in clear (for whoever
/// reads the table) and its `ttl`.
///
/// The same table keeps the callers' Cost Explorer allowances: key
/// `quota#<subject>#<UTC hour>`, a `used` counter raised with a conditional
/// `ADD` (never read, then written), and a `ttl` an hour past its hour.
#[derive(Clone, Debug)]
pub struct DynamoCostCache {
    client: Client,
    table: String,
}

impl DynamoCostCache {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoCostCache {
            client,
            table: table.into(),
        }
    }
}

#[async_trait]
impl CostCache for DynamoCostCache {
    async fn get(&self, key: &str, now: DateTime<Utc>) -> Result<Option<serde_json::Value>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("key", s(key))
            .send()
            .await
            .map_err(|e| Error::from_sdk("GetItem", e))?;
        match out.item {
            Some(item) if is_live(&item, now) => match item.get("value") {
                Some(AttributeValue::S(text)) => Ok(serde_json::from_str(text).ok()),
                _ => Ok(None),
            },
            _ => Ok(None),
        }
    }

    async fn put(
        &self,
        key: &str,
        question: &str,
        value: &serde_json::Value,
        expires_at: DateTime<Utc>,
    ) -> Result<()> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("key", s(key))
            .item("question", s(question))
            .item("value", s(value.to_string()))
            .item("ttl", n(expires_at.timestamp()))
            .send()
            .await
            .map_err(|e| Error::from_sdk("PutItem", e))?;
        Ok(())
    }
}

fn quota_key(subject: &str, now: DateTime<Utc>) -> (String, i64) {
    let hour = now.timestamp().div_euclid(3600) * 3600;
    (format!("quota#{subject}#{hour}"), hour + 2 * 3600)
}

#[async_trait]
impl CostQuota for DynamoCostCache {
    async fn take(
        &self,
        subject: &str,
        pages: u32,
        limit: u32,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let Some(max_before) = limit.checked_sub(pages) else {
            return Ok(false);
        };
        let (key, ttl) = quota_key(subject, now);
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("key", s(key))
            .update_expression("ADD used :pages SET #ttl = :ttl")
            .condition_expression("attribute_not_exists(used) OR used <= :max")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":pages", n(pages))
            .expression_attribute_values(":ttl", n(ttl))
            .expression_attribute_values(":max", n(max_before))
            .send()
            .await;
        match out {
            Ok(_) => Ok(true),
            Err(e) if is_conditional_failure(&e) => Ok(false),
            Err(e) => Err(Error::from_sdk("UpdateItem", e)),
        }
    }

    async fn add(&self, subject: &str, pages: u32, now: DateTime<Utc>) -> Result<()> {
        let (key, ttl) = quota_key(subject, now);
        self.client
            .update_item()
            .table_name(&self.table)
            .key("key", s(key))
            .update_expression("ADD used :pages SET #ttl = :ttl")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":pages", n(pages))
            .expression_attribute_values(":ttl", n(ttl))
            .send()
            .await
            .map_err(|e| Error::from_sdk("UpdateItem", e))?;
        Ok(())
    }
}
