use super::*;
use async_trait::async_trait;
use std::collections::BTreeMap;

/// Live connections and subscriptions per topic, for `GET /websocket/status`.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionStats {
    pub connections: u64,
    pub subscriptions: u64,
    pub by_topic: BTreeMap<String, u64>,
    /// DynamoDB pages read to count them (each up to 1 MB).
    pub pages_read: u32,
}

#[async_trait]
pub trait ConnectionStatsSource: Send + Sync {
    async fn stats(&self, now: DateTime<Utc>) -> Result<ConnectionStats>;
}

/// Counts over the connections table (see `DynamoConnections` for its layout).
///
/// There is no cheaper exact answer in DynamoDB than reading every item
/// once: one paginated Scan, projecting only `sk` and `ttl`, eventually
/// consistent. An item is about 150 bytes, so the Scan costs about
/// 0.5 RCU per 4 KB, about 1 RCU per 50 items (USD 0.25 per million RCUs on
/// demand): 10,000 connections with 3 subscriptions each is about 800 RCUs
/// per call. A counter maintained on every subscribe would make each
/// subscribe a second write, for a status page; the scan is the cheaper trade.
#[derive(Clone, Debug)]
pub struct DynamoConnectionStats {
    client: Client,
    table: String,
}

impl DynamoConnectionStats {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoConnectionStats {
            client,
            table: table.into(),
        }
    }
}

#[async_trait]
impl ConnectionStatsSource for DynamoConnectionStats {
    async fn stats(&self, now: DateTime<Utc>) -> Result<ConnectionStats> {
        let mut stats = ConnectionStats::default();
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .scan()
                .table_name(&self.table)
                .projection_expression("sk, #ttl")
                .expression_attribute_names("#ttl", "ttl")
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| Error::from_sdk("Scan", e))?;
            stats.pages_read += 1;
            for item in out.items() {
                if !is_live(item, now) {
                    continue;
                }
                match item.get("sk") {
                    Some(AttributeValue::S(sk)) if sk == "META" => stats.connections += 1,
                    Some(AttributeValue::S(sk)) => {
                        if let Some(topic) = sk.strip_prefix("SUB#") {
                            stats.subscriptions += 1;
                            *stats.by_topic.entry(topic.to_string()).or_default() += 1;
                        }
                    }
                    _ => {}
                }
            }
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        Ok(stats)
    }
}
