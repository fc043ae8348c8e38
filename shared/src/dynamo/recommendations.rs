use super::*;
use crate::domain::Recommendation;
use crate::store::RecommendationStore;
use async_trait::async_trait;
use aws_sdk_dynamodb::types::PutRequest;

/// Recommendations table, key (`cycleId`, `id`); items expire after `retention`.
#[derive(Clone, Debug)]
pub struct DynamoRecommendations {
    client: Client,
    table: String,
    retention: chrono::Duration,
}

impl DynamoRecommendations {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoRecommendations {
            client,
            table: table.into(),
            retention: chrono::Duration::days(30),
        }
    }
}

#[async_trait]
impl RecommendationStore for DynamoRecommendations {
    async fn put_all(&self, cycle_id: &str, recommendations: &[Recommendation]) -> Result<()> {
        let requests = recommendations
            .iter()
            .map(|r| {
                let mut item = to_item(r)?;
                item.insert("cycleId".into(), s(cycle_id));
                item.insert("ttl".into(), n((r.created_at + self.retention).timestamp()));
                let put = PutRequest::builder()
                    .set_item(Some(item))
                    .build()
                    .map_err(|e| Error::Internal(e.to_string()))?;
                Ok(WriteRequest::builder().put_request(put).build())
            })
            .collect::<Result<Vec<_>>>()?;
        batch_write(&self.client, &self.table, requests).await
    }

    async fn all(&self, cycle_id: &str) -> Result<Vec<Recommendation>> {
        let items: Vec<Item> = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("cycleId = :c")
            .expression_attribute_values(":c", s(cycle_id))
            .into_paginator()
            .items()
            .send()
            .collect::<std::result::Result<Vec<_>, _>>()
            .await
            .map_err(|e| Error::from_sdk("Query", e))?;
        items.into_iter().map(from_item).collect()
    }
}
