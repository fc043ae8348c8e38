use super::*;
use crate::domain::Coverage;
use crate::store::CoverageStore;
use async_trait::async_trait;

/// Accounts table, key (`accountId`, `region`): one item per unit of
/// discovery. A completed discovery puts the whole record; a failed one
/// updates only the attempt and its error, keeping the last completed
/// discovery's findings.
#[derive(Clone, Debug)]
pub struct DynamoCoverage {
    client: Client,
    table: String,
}

impl DynamoCoverage {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoCoverage {
            client,
            table: table.into(),
        }
    }
}

#[async_trait]
impl CoverageStore for DynamoCoverage {
    async fn record(&self, c: &Coverage) -> Result<()> {
        match &c.error {
            None => {
                self.client
                    .put_item()
                    .table_name(&self.table)
                    .set_item(Some(to_item(c)?))
                    .send()
                    .await
                    .map_err(|e| Error::from_sdk("PutItem", e))?;
            }
            Some(error) => {
                self.client
                    .update_item()
                    .table_name(&self.table)
                    .key("accountId", s(c.account_id.clone()))
                    .key("region", s(c.region.clone()))
                    .update_expression("SET jobId = :job, attemptedAt = :at, #error = :error")
                    .expression_attribute_names("#error", "error")
                    .expression_attribute_values(":job", s(c.job_id.clone()))
                    .expression_attribute_values(":at", to_av(&c.attempted_at)?)
                    .expression_attribute_values(":error", s(error.clone()))
                    .send()
                    .await
                    .map_err(|e| Error::from_sdk("UpdateItem", e))?;
            }
        }
        Ok(())
    }

    async fn all(&self) -> Result<Vec<Coverage>> {
        let items: Vec<Item> = self
            .client
            .scan()
            .table_name(&self.table)
            .into_paginator()
            .items()
            .send()
            .collect::<std::result::Result<Vec<_>, _>>()
            .await
            .map_err(|e| Error::from_sdk("Scan", e))?;
        let mut all: Vec<Coverage> = items.into_iter().map(from_item).collect::<Result<_>>()?;
        all.sort_by(|a, b| (&a.account_id, &a.region).cmp(&(&b.account_id, &b.region)));
        Ok(all)
    }
}
