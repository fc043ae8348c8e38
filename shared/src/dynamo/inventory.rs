use super::*;
use crate::domain::{Resource, ResourceKey, Scope};
use crate::store::{clamp_limit, InventoryFilter, InventoryStore, Page};
use async_trait::async_trait;
use futures::stream::{self, StreamExt, TryStreamExt};

/// Inventory table, key (`scope` = `<account>#<region>`, `id`): a name is
/// unique only within an account and region, so one RDS instance `orders`
/// in two accounts is two items. GSIs `byService` (`service`, `id`) and
/// `byId` (`id`, `scope`), the one to find a name in every scope.
///
/// One item per resource holds two layers that never overwrite each other:
/// what discovery read (the resource's own attribute names, written by
/// [`InventoryStore::record_discovered`]) and what `POST /resources` set
/// (`ov_<field>`, written by [`InventoryStore::upsert`]). Each write is one
/// UpdateItem that sets only its own layer, so a rediscovery never erases an
/// override and an override never erases what was discovered; reads merge
/// them, the override winning field by field (tags and attributes key by
/// key, relations added).
#[derive(Clone, Debug)]
pub struct DynamoInventory {
    client: Client,
    table: String,
    tokens: PageTokenCodec,
}

/// UpdateItems in flight at once.
const WRITE_CONCURRENCY: usize = 16;

/// The fields an override may set, by their camelCase names (account and
/// region are not among them: with the id they say which resource it is).
const OVERRIDABLE: [&str; 6] = [
    "resourceType",
    "memoryMb",
    "monthlyCostUsd",
    "tags",
    "relations",
    "attributes",
];

/// The discovered fields, each set or removed by a rediscovery.
const DISCOVERED: [&str; 9] = [
    "region",
    "accountId",
    "resourceType",
    "memoryMb",
    "tags",
    "relations",
    "attributes",
    "discoveredAt",
    "discoveredBy",
];

fn ov(field: &str) -> String {
    format!("ov_{field}")
}

/// The fields of `r` that `POST /resources` gave (an absent option or an
/// empty collection is not an override).
fn provided(r: &Resource) -> Result<Vec<(&'static str, AttributeValue)>> {
    let mut out: Vec<(&'static str, AttributeValue)> = Vec::new();
    if let Some(t) = &r.resource_type {
        out.push(("resourceType", s(t.clone())));
    }
    if let Some(m) = r.memory_mb {
        out.push(("memoryMb", n(m)));
    }
    if let Some(c) = r.monthly_cost_usd {
        out.push(("monthlyCostUsd", to_av(&c)?));
    }
    if !r.tags.is_empty() {
        out.push(("tags", to_av(&r.tags)?));
    }
    if !r.relations.is_empty() {
        out.push(("relations", to_av(&r.relations)?));
    }
    if !r.attributes.is_empty() {
        out.push(("attributes", to_av(&r.attributes)?));
    }
    Ok(out)
}

/// A stored item as the resource the rest of the core sees: the discovered
/// layer with the override's fields over it.
fn resource_of(mut item: Item) -> Result<Resource> {
    let mut overrides: Vec<(&'static str, AttributeValue)> = Vec::new();
    for field in OVERRIDABLE {
        if let Some(v) = item.remove(&ov(field)) {
            overrides.push((field, v));
        }
    }
    item.remove("scope");
    let mut r: Resource = from_item(item)?;
    for (field, v) in overrides {
        let value: serde_json::Value = serde_dynamo::from_attribute_value(v)
            .map_err(|e| Error::Internal(format!("inventory override {field}: {e}")))?;
        fn parse<T: serde::de::DeserializeOwned>(field: &str, v: serde_json::Value) -> Result<T> {
            serde_json::from_value(v)
                .map_err(|e| Error::Internal(format!("inventory override {field}: {e}")))
        }
        match field {
            "resourceType" => r.resource_type = Some(parse(field, value)?),
            "memoryMb" => r.memory_mb = Some(parse(field, value)?),
            "monthlyCostUsd" => r.monthly_cost_usd = Some(parse(field, value)?),
            "tags" => {
                let tags: BTreeMap<String, String> = parse(field, value)?;
                r.tags.extend(tags);
            }
            "attributes" => {
                let attrs: BTreeMap<String, serde_json::Value> = parse(field, value)?;
                r.attributes.extend(attrs);
            }
            "relations" => {
                let rels: Vec<crate::domain::Relation> = parse(field, value)?;
                for rel in rels {
                    if !r
                        .relations
                        .iter()
                        .any(|x| x.kind == rel.kind && x.target_id == rel.target_id)
                    {
                        r.relations.push(rel);
                    }
                }
            }
            _ => {}
        }
        r.overridden.push(field.to_string());
    }
    Ok(r)
}

impl DynamoInventory {
    pub fn new(client: Client, table: impl Into<String>, tokens: PageTokenCodec) -> Self {
        DynamoInventory {
            client,
            table: table.into(),
            tokens,
        }
    }

    /// Every item whose `attr` is `value` in the table or in `index`,
    /// following pages to the end.
    async fn query_all(
        &self,
        index: Option<&str>,
        attr: &str,
        value: &str,
    ) -> Result<Vec<Resource>> {
        let items: Vec<Item> = self
            .client
            .query()
            .table_name(&self.table)
            .set_index_name(index.map(str::to_string))
            .key_condition_expression("#k = :k")
            .expression_attribute_names("#k", attr)
            .expression_attribute_values(":k", s(value))
            .into_paginator()
            .items()
            .send()
            .collect::<std::result::Result<Vec<_>, _>>()
            .await
            .map_err(|e| Error::from_sdk("Query", e))?;
        items.into_iter().map(resource_of).collect()
    }

    /// One resource's override layer: `SET ov_<field> = ...` for what was
    /// given, plus the keys the table and its index need.
    async fn write_override(&self, r: &Resource) -> Result<()> {
        let mut sets = vec![
            "#service = :service".to_string(),
            "#region = :region".to_string(),
        ];
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("scope", s(r.scope().key()))
            .key("id", s(r.id.clone()))
            .expression_attribute_names("#service", "service")
            .expression_attribute_names("#region", "region")
            .expression_attribute_values(":service", s(r.service.as_str()))
            .expression_attribute_values(":region", s(r.region.clone()));
        if let Some(account) = &r.account_id {
            sets.push("#account = :account".to_string());
            req = req
                .expression_attribute_names("#account", "accountId")
                .expression_attribute_values(":account", s(account.clone()));
        }
        for (i, (field, value)) in provided(r)?.into_iter().enumerate() {
            sets.push(format!("#o{i} = :o{i}"));
            req = req
                .expression_attribute_names(format!("#o{i}"), ov(field))
                .expression_attribute_values(format!(":o{i}"), value);
        }
        req.update_expression(format!("SET {}", sets.join(", ")))
            .send()
            .await
            .map_err(|e| Error::from_sdk("UpdateItem", e))?;
        Ok(())
    }

    /// One resource's discovered layer: every discovered field set, or
    /// removed when discovery no longer shows it; overrides untouched.
    async fn write_discovered(&self, r: &Resource) -> Result<()> {
        let item = to_item(r)?;
        let mut sets = vec!["#service = :service".to_string()];
        let mut removes = Vec::new();
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("scope", s(r.scope().key()))
            .key("id", s(r.id.clone()))
            .expression_attribute_names("#service", "service")
            .expression_attribute_values(":service", s(r.service.as_str()));
        for (i, field) in DISCOVERED.into_iter().enumerate() {
            req = req.expression_attribute_names(format!("#d{i}"), field);
            match item.get(field) {
                Some(v) => {
                    sets.push(format!("#d{i} = :d{i}"));
                    req = req.expression_attribute_values(format!(":d{i}"), v.clone());
                }
                None => removes.push(format!("#d{i}")),
            }
        }
        let mut expr = format!("SET {}", sets.join(", "));
        if !removes.is_empty() {
            expr.push_str(&format!(" REMOVE {}", removes.join(", ")));
        }
        req.update_expression(expr)
            .send()
            .await
            .map_err(|e| Error::from_sdk("UpdateItem", e))?;
        Ok(())
    }
}

#[async_trait]
impl InventoryStore for DynamoInventory {
    async fn upsert(&self, resources: &[Resource]) -> Result<usize> {
        let mut by_key: BTreeMap<ResourceKey, &Resource> = BTreeMap::new();
        for r in resources {
            by_key.insert(r.key(), r);
        }
        let written = by_key.len();
        // The futures first: a closure from a borrowed item to a future
        // borrowing it is not general enough for async_trait's Send check.
        let writes: Vec<_> = by_key
            .into_values()
            .map(|r| self.write_override(r))
            .collect();
        stream::iter(writes)
            .buffer_unordered(WRITE_CONCURRENCY)
            .try_collect::<Vec<()>>()
            .await?;
        Ok(written)
    }

    async fn record_discovered(&self, resources: &[Resource]) -> Result<usize> {
        let mut by_key: BTreeMap<ResourceKey, &Resource> = BTreeMap::new();
        for r in resources {
            by_key.insert(r.key(), r);
        }
        let written = by_key.len();
        // The futures first: a closure from a borrowed item to a future
        // borrowing it is not general enough for async_trait's Send check.
        let writes: Vec<_> = by_key
            .into_values()
            .map(|r| self.write_discovered(r))
            .collect();
        stream::iter(writes)
            .buffer_unordered(WRITE_CONCURRENCY)
            .try_collect::<Vec<()>>()
            .await?;
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
        items.into_iter().map(resource_of).collect()
    }

    async fn get(&self, key: &ResourceKey) -> Result<Option<Resource>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("scope", s(key.scope.key()))
            .key("id", s(key.id.clone()))
            .send()
            .await
            .map_err(|e| Error::from_sdk("GetItem", e))?;
        out.item.map(resource_of).transpose()
    }

    async fn find(&self, id: &str) -> Result<Vec<Resource>> {
        self.query_all(Some("byId"), "id", id).await
    }

    async fn in_scope(&self, scope: &Scope) -> Result<Vec<Resource>> {
        self.query_all(None, "scope", &scope.key()).await
    }

    async fn list(
        &self,
        filter: &InventoryFilter,
        limit: Option<u32>,
        token: Option<&str>,
    ) -> Result<Page<Resource>> {
        let scope = format!(
            "{}:{:?}:{:?}:{:?}:{:?}",
            self.table, filter.service, filter.tag, filter.account_id, filter.region
        );
        let mut names: Vec<(&str, String)> = Vec::new();
        let mut values: Vec<(&str, AttributeValue)> = Vec::new();
        let mut conditions: Vec<&str> = Vec::new();
        if let Some(tag) = filter.tag.as_deref() {
            let (k, v) = match tag.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (tag, None),
            };
            if k.is_empty() {
                return Err(Error::Validation(
                    "tag filter needs a key: 'key' or 'key=value'".into(),
                ));
            }
            names.push(("#tags", "tags".into()));
            names.push(("#tk", k.into()));
            names.push(("#ovtags", "ov_tags".into()));
            conditions.push(match v {
                Some(v) => {
                    values.push((":tv", s(v)));
                    "(#tags.#tk = :tv OR #ovtags.#tk = :tv)"
                }
                None => "(attribute_exists(#tags.#tk) OR attribute_exists(#ovtags.#tk))",
            });
        }
        // Both account and region name one scope: its partition, read alone.
        let one_scope = match (&filter.account_id, &filter.region) {
            (Some(a), Some(r)) => Some(Scope::new(Some(a), r)),
            _ => None,
        };
        if one_scope.is_none() {
            if let Some(a) = &filter.account_id {
                names.push(("#account", "accountId".into()));
                values.push((":account", s(a.clone())));
                conditions.push("#account = :account");
            }
            if let Some(r) = &filter.region {
                names.push(("#region", "region".into()));
                values.push((":region", s(r.clone())));
                conditions.push("#region = :region");
            }
        }
        if let (Some(service), Some(_)) = (filter.service, &one_scope) {
            names.push(("#svc", "service".into()));
            values.push((":svc", s(service.as_str())));
            conditions.push("#svc = :svc");
        }
        let filter_expression = (!conditions.is_empty()).then(|| conditions.join(" AND "));
        let page = clamp_limit(limit) as usize;
        // One scope is its partition; one service, the byService index.
        let partition = match (one_scope, filter.service) {
            (Some(one), _) => Some((None, "scope", one.key(), &["scope", "id"][..])),
            (None, Some(service)) => Some((
                Some("byService"),
                "service",
                service.as_str().to_string(),
                &["scope", "id", "service"][..],
            )),
            (None, None) => None,
        };
        let (items, lek) = match partition {
            Some((index, attr, value, key_attrs)) => {
                let start = decode_start(&self.tokens, &scope, token, key_attrs)?;
                names.push(("#k", attr.into()));
                values.push((":k", s(value)));
                let mut q = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .set_index_name(index.map(str::to_string))
                    .key_condition_expression("#k = :k")
                    .limit(clamp_limit(limit))
                    .set_filter_expression(filter_expression);
                for (k, v) in names {
                    q = q.expression_attribute_names(k, v);
                }
                for (k, v) in values {
                    q = q.expression_attribute_values(k, v);
                }
                filled_page(page, key_attrs, start, |start| {
                    let q = q.clone().set_exclusive_start_key(start);
                    async move {
                        let out = q.send().await.map_err(|e| Error::from_sdk("Query", e))?;
                        Ok((out.items.unwrap_or_default(), out.last_evaluated_key))
                    }
                })
                .await?
            }
            None => {
                let key_attrs = ["scope", "id"];
                let start = decode_start(&self.tokens, &scope, token, &key_attrs)?;
                let mut q = self
                    .client
                    .scan()
                    .table_name(&self.table)
                    .limit(clamp_limit(limit))
                    .set_filter_expression(filter_expression);
                for (k, v) in names {
                    q = q.expression_attribute_names(k, v);
                }
                for (k, v) in values {
                    q = q.expression_attribute_values(k, v);
                }
                filled_page(page, &key_attrs, start, |start| {
                    let q = q.clone().set_exclusive_start_key(start);
                    async move {
                        let out = q.send().await.map_err(|e| Error::from_sdk("Scan", e))?;
                        Ok((out.items.unwrap_or_default(), out.last_evaluated_key))
                    }
                })
                .await?
            }
        };
        Ok(Page {
            items: items
                .into_iter()
                .map(resource_of)
                .collect::<Result<Vec<Resource>>>()?,
            next_token: encode_next(&self.tokens, &scope, lek.as_ref())?,
        })
    }
}
