use super::*;
use crate::domain::Policy;
use crate::store::PolicyStore;
use async_trait::async_trait;

/// Policies table, key `policyId`: one item per policy, replaced only over
/// the version it was read at (`version`), so of two admins changing the
/// same policy one gets `Conflict`. Small by nature (tens of items): listed
/// with a paginated Scan.
#[derive(Clone, Debug)]
pub struct DynamoPolicies {
    client: Client,
    table: String,
}

impl DynamoPolicies {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoPolicies {
            client,
            table: table.into(),
        }
    }
}

#[async_trait]
impl PolicyStore for DynamoPolicies {
    async fn put(&self, policy: &Policy) -> Result<()> {
        let mut item = to_item(policy)?;
        item.insert("policyId".into(), s(policy.id.clone()));
        let req = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item));
        let req = if policy.version <= 1 {
            req.condition_expression("attribute_not_exists(policyId)")
        } else {
            req.condition_expression("#version = :base")
                .expression_attribute_names("#version", "version")
                .expression_attribute_values(":base", n(policy.version - 1))
        };
        match req.send().await {
            Ok(_) => Ok(()),
            Err(e) if is_conditional_failure(&e) => Err(Error::Conflict(format!(
                "policy {} changed since version {}",
                policy.id,
                policy.version.saturating_sub(1)
            ))),
            Err(e) => Err(Error::from_sdk("PutItem", e)),
        }
    }

    async fn all(&self) -> Result<Vec<Policy>> {
        let items: Vec<Item> = self
            .client
            .scan()
            .table_name(&self.table)
            .consistent_read(true)
            .into_paginator()
            .items()
            .send()
            .collect::<std::result::Result<Vec<_>, _>>()
            .await
            .map_err(|e| Error::from_sdk("Scan", e))?;
        let mut out = items
            .into_iter()
            .map(from_item)
            .collect::<Result<Vec<Policy>>>()?;
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }
}
