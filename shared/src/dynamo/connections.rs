use super::*;
use crate::domain::{Connection, Topic};
use crate::store::{ConnectionStore, Page};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{ConditionCheck, DeleteRequest, Put, TransactWriteItem};

/// Connections table, key (`pk` = `CONN#<id>`, `sk`):
/// - `META`: the connection, its user and roles;
/// - `SUB#<topic>`: one subscription, with `topic` and `connectionId`
///   projected into the `byTopic` GSI, so the subscribers of a topic are one
///   Query and a connection's subscriptions are one Query on the base table.
///
/// Every item carries the connection's `ttl`: API Gateway's 2-hour limit or
/// the caller's token expiry, whichever is first.
#[derive(Clone, Debug)]
pub struct DynamoConnections {
    client: Client,
    table: String,
    tokens: PageTokenCodec,
}

/// Subscriptions one connection may hold: what a subscribe acknowledges
/// (every topic, each up to 521 characters) stays far below API Gateway's
/// 128 KB frame limit.
pub const MAX_SUBSCRIPTIONS: usize = 50;

fn conn_pk(id: &str) -> String {
    format!("CONN#{id}")
}

impl DynamoConnections {
    pub fn new(client: Client, table: impl Into<String>, tokens: PageTokenCodec) -> Self {
        DynamoConnections {
            client,
            table: table.into(),
            tokens,
        }
    }

    async fn keys_of(&self, connection_id: &str) -> Result<Vec<Item>> {
        let items: Vec<Item> = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(conn_pk(connection_id)))
            .projection_expression("pk, sk, topic, #ttl")
            .expression_attribute_names("#ttl", "ttl")
            .consistent_read(true)
            .into_paginator()
            .items()
            .send()
            .collect::<std::result::Result<Vec<_>, _>>()
            .await
            .map_err(|e| Error::from_sdk("Query", e))?;
        Ok(items)
    }
}

#[async_trait]
impl ConnectionStore for DynamoConnections {
    async fn put(&self, c: &Connection) -> Result<()> {
        let mut item = to_item(c)?;
        item.insert("pk".into(), s(conn_pk(&c.connection_id)));
        item.insert("sk".into(), s("META"));
        item.insert("ttl".into(), n(c.expires_at.timestamp()));
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| Error::from_sdk("PutItem", e))?;
        Ok(())
    }

    async fn get(&self, connection_id: &str, now: DateTime<Utc>) -> Result<Option<Connection>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(conn_pk(connection_id)))
            .key("sk", s("META"))
            .send()
            .await
            .map_err(|e| Error::from_sdk("GetItem", e))?;
        match out.item {
            Some(item) if is_live(&item, now) => from_item(item).map(Some),
            _ => Ok(None),
        }
    }

    async fn remove(&self, connection_id: &str) -> Result<()> {
        let requests = self
            .keys_of(connection_id)
            .await?
            .into_iter()
            .map(|item| {
                let key: Item = item
                    .into_iter()
                    .filter(|(k, _)| k == "pk" || k == "sk")
                    .collect();
                DeleteRequest::builder()
                    .set_key(Some(key))
                    .build()
                    .map(|d| WriteRequest::builder().delete_request(d).build())
                    .map_err(|e| Error::Internal(e.to_string()))
            })
            .collect::<Result<Vec<_>>>()?;
        batch_write(&self.client, &self.table, requests).await
    }

    async fn subscribe(
        &self,
        connection_id: &str,
        topics: &[Topic],
        now: DateTime<Utc>,
    ) -> Result<()> {
        let conn = self
            .get(connection_id, now)
            .await?
            .ok_or_else(|| Error::not_found("connection", connection_id))?;
        // A read before the write: two subscribes racing on one connection
        // could pass it together, by at most one frame's topics; readers of
        // the list bound what they show regardless.
        let mut held: std::collections::BTreeSet<Topic> = self
            .topics_of(connection_id, now)
            .await?
            .into_iter()
            .collect();
        let before = held.len();
        held.extend(topics.iter().cloned());
        if held.len() > MAX_SUBSCRIPTIONS {
            return Err(Error::Validation(format!(
                "a connection holds at most {MAX_SUBSCRIPTIONS} subscriptions; this one has {before} and the request adds {}",
                held.len() - before
            )));
        }
        // A subscription lives no longer than its connection. Writing them
        // with a check that the connection still exists keeps a disconnect
        // that races a subscribe from leaving orphans behind.
        for chunk in topics.chunks(99) {
            let mut tx = self.client.transact_write_items().transact_items(
                TransactWriteItem::builder()
                    .condition_check(
                        ConditionCheck::builder()
                            .table_name(&self.table)
                            .key("pk", s(conn_pk(connection_id)))
                            .key("sk", s("META"))
                            .condition_expression("attribute_exists(pk)")
                            .build()
                            .map_err(|e| Error::Internal(e.to_string()))?,
                    )
                    .build(),
            );
            for topic in chunk {
                let topic = topic.to_string();
                let item: Item = [
                    ("pk".to_string(), s(conn_pk(connection_id))),
                    ("sk".to_string(), s(format!("SUB#{topic}"))),
                    ("topic".to_string(), s(topic)),
                    ("connectionId".to_string(), s(connection_id)),
                    ("createdAt".to_string(), s(sortable(now))),
                    ("ttl".to_string(), n(conn.expires_at.timestamp())),
                ]
                .into();
                tx = tx.transact_items(
                    TransactWriteItem::builder()
                        .put(
                            Put::builder()
                                .table_name(&self.table)
                                .set_item(Some(item))
                                .build()
                                .map_err(|e| Error::Internal(e.to_string()))?,
                        )
                        .build(),
                );
            }
            match tx.send().await {
                Ok(_) => {}
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_transaction_canceled_exception()) =>
                {
                    return Err(Error::not_found("connection", connection_id))
                }
                Err(e) => return Err(Error::from_sdk("TransactWriteItems", e)),
            }
        }
        Ok(())
    }

    async fn unsubscribe(&self, connection_id: &str, topics: &[Topic]) -> Result<()> {
        let requests = topics
            .iter()
            .map(|t| {
                DeleteRequest::builder()
                    .key("pk", s(conn_pk(connection_id)))
                    .key("sk", s(format!("SUB#{t}")))
                    .build()
                    .map(|d| WriteRequest::builder().delete_request(d).build())
                    .map_err(|e| Error::Internal(e.to_string()))
            })
            .collect::<Result<Vec<_>>>()?;
        batch_write(&self.client, &self.table, requests).await
    }

    async fn subscribers(
        &self,
        topic: &Topic,
        limit: Option<u32>,
        token: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Page<String>> {
        let topic = topic.to_string();
        let scope = format!("{}:byTopic:{topic}", self.table);
        let start = decode_start(
            &self.tokens,
            &scope,
            token,
            &["pk", "sk", "topic", "connectionId"],
        )?;
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name("byTopic")
            .key_condition_expression("topic = :t")
            .filter_expression(TTL_FILTER)
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":t", s(topic))
            .expression_attribute_values(":now", n(now.timestamp()))
            .limit(limit.unwrap_or(1000).clamp(1, 1000) as i32)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| Error::from_sdk("Query", e))?;
        let ids = out
            .items
            .unwrap_or_default()
            .into_iter()
            .filter(|i| is_live(i, now))
            .filter_map(|mut i| match i.remove("connectionId") {
                Some(AttributeValue::S(id)) => Some(id),
                _ => None,
            })
            .collect();
        Ok(Page {
            items: ids,
            next_token: encode_next(&self.tokens, &scope, out.last_evaluated_key.as_ref())?,
        })
    }

    async fn topics_of(&self, connection_id: &str, now: DateTime<Utc>) -> Result<Vec<Topic>> {
        let mut topics: Vec<Topic> = self
            .keys_of(connection_id)
            .await?
            .into_iter()
            .filter(|i| is_live(i, now))
            .filter_map(|mut i| match i.remove("topic") {
                Some(AttributeValue::S(t)) => t.parse().ok(),
                _ => None,
            })
            .collect();
        topics.sort();
        Ok(topics)
    }
}
