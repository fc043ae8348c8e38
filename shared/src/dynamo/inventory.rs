use super::*;
use crate::domain::Resource;
use crate::store::{clamp_limit, InventoryFilter, InventoryStore, Page};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::PutRequest;

/// Inventory table, key `id`; GSI `byService` (`service`, `id`).
#[derive(Clone, Debug)]
pub struct DynamoInventory {
    client: Client,
    table: String,
    tokens: PageTokenCodec,
}

impl DynamoInventory {
    pub fn new(client: Client, table: impl Into<String>, tokens: PageTokenCodec) -> Self {
        DynamoInventory {
            client,
            table: table.into(),
            tokens,
        }
    }
}

#[async_trait]
impl InventoryStore for DynamoInventory {
    async fn upsert(&self, resources: &[Resource]) -> Result<usize> {
        let mut by_id: BTreeMap<&str, &Resource> = BTreeMap::new();
        for r in resources {
            by_id.insert(r.id.as_str(), r);
        }
        let requests = by_id
            .values()
            .map(|r| {
                let put = PutRequest::builder()
                    .set_item(Some(to_item(r)?))
                    .build()
                    .map_err(|e| Error::Internal(e.to_string()))?;
                Ok(WriteRequest::builder().put_request(put).build())
            })
            .collect::<Result<Vec<_>>>()?;
        let written = requests.len();
        batch_write(&self.client, &self.table, requests).await?;
        Ok(written)
    }

    async fn all(&self) -> Result<Vec<Resource>> {
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
        items.into_iter().map(from_item).collect()
    }

    async fn get(&self, id: &str) -> Result<Option<Resource>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("id", s(id))
            .send()
            .await
            .map_err(|e| Error::from_sdk("GetItem", e))?;
        out.item.map(from_item).transpose()
    }

    async fn list(
        &self,
        filter: &InventoryFilter,
        limit: Option<u32>,
        token: Option<&str>,
    ) -> Result<Page<Resource>> {
        let scope = format!("{}:{:?}:{:?}", self.table, filter.service, filter.tag);
        let mut names: Vec<(&str, &str)> = Vec::new();
        let mut values: Vec<(&str, AttributeValue)> = Vec::new();
        let tag_filter = match filter.tag.as_deref() {
            None => None,
            Some(tag) => {
                names.push(("#tags", "tags"));
                let (k, v) = match tag.split_once('=') {
                    Some((k, v)) => (k, Some(v)),
                    None => (tag, None),
                };
                if k.is_empty() {
                    return Err(Error::Validation(
                        "tag filter needs a key: 'key' or 'key=value'".into(),
                    ));
                }
                names.push(("#tk", k));
                Some(match v {
                    Some(v) => {
                        values.push((":tv", s(v)));
                        "#tags.#tk = :tv"
                    }
                    None => "attribute_exists(#tags.#tk)",
                })
            }
        };
        let (items, lek) = match filter.service {
            Some(service) => {
                let start = decode_start(&self.tokens, &scope, token, &["id", "service"])?;
                let mut q = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .index_name("byService")
                    .key_condition_expression("#svc = :svc")
                    .expression_attribute_names("#svc", "service")
                    .expression_attribute_values(":svc", s(service.as_str()))
                    .limit(clamp_limit(limit))
                    .set_exclusive_start_key(start)
                    .set_filter_expression(tag_filter.map(str::to_string));
                for (k, v) in &names {
                    q = q.expression_attribute_names(*k, *v);
                }
                for (k, v) in values {
                    q = q.expression_attribute_values(k, v);
                }
                let out = q.send().await.map_err(|e| Error::from_sdk("Query", e))?;
                (out.items.unwrap_or_default(), out.last_evaluated_key)
            }
            None => {
                let start = decode_start(&self.tokens, &scope, token, &["id"])?;
                let mut q = self
                    .client
                    .scan()
                    .table_name(&self.table)
                    .limit(clamp_limit(limit))
                    .set_exclusive_start_key(start)
                    .set_filter_expression(tag_filter.map(str::to_string));
                for (k, v) in &names {
                    q = q.expression_attribute_names(*k, *v);
                }
                for (k, v) in values {
                    q = q.expression_attribute_values(k, v);
                }
                let out = q.send().await.map_err(|e| Error::from_sdk("Scan", e))?;
                (out.items.unwrap_or_default(), out.last_evaluated_key)
            }
        };
        Ok(Page {
            items: items
                .into_iter()
                .map(from_item)
                .collect::<Result<Vec<Resource>>>()?,
            next_token: encode_next(&self.tokens, &scope, lek.as_ref())?,
        })
    }
}
