use super::*;
use crate::costs::CostCache;
use async_trait::async_trait;

/// Cost cache table, key `key` = SHA-256 of the normalised question. Each
/// item holds the answer as JSON text, the question in clear (for whoever
/// reads the table) and its `ttl`.
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
