//! DynamoDB adapters for the persistence ports in [`crate::store`].
//!
//! Conventions shared by every table (declared in template.yaml):
//! - expiring items carry `ttl` (epoch seconds); reads drop items past it,
//!   because DynamoDB deletes them lazily and the emulator never does;
//! - writes that must not race are conditional or transactional;
//! - listing positions leave as HMAC-signed tokens (see [`PageTokenCodec`]).

mod approvals;
mod audit;
mod connection_stats;
mod connections;
mod cost_cache;
mod coverage;
mod cycles;
mod executions;
mod inventory;
mod jobs;
mod metrics;
mod policies;
mod recommendations;
mod thresholds;

pub use approvals::DynamoApprovals;
pub use audit::DynamoAudit;
pub use connection_stats::{ConnectionStats, ConnectionStatsSource, DynamoConnectionStats};
pub use connections::{DynamoConnections, MAX_SUBSCRIPTIONS};
pub use cost_cache::DynamoCostCache;
pub use coverage::DynamoCoverage;
pub use cycles::DynamoCycles;
pub use executions::DynamoExecutions;
pub use inventory::DynamoInventory;
pub use jobs::DynamoJobs;
pub use metrics::DynamoMetrics;
pub use policies::DynamoPolicies;
pub use recommendations::DynamoRecommendations;
pub use thresholds::DynamoThresholds;

use crate::store::PageTokenCodec;
use crate::{Error, Result};
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::{AttributeValue, WriteRequest};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{de::DeserializeOwned, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

pub type Item = HashMap<String, AttributeValue>;

pub(crate) const TTL_FILTER: &str = "(attribute_not_exists(#ttl) OR #ttl > :now)";

pub(crate) fn to_item<T: Serialize>(value: &T) -> Result<Item> {
    serde_dynamo::to_item(value).map_err(|e| Error::Internal(format!("to DynamoDB item: {e}")))
}

pub(crate) fn from_item<T: DeserializeOwned>(item: Item) -> Result<T> {
    serde_dynamo::from_item(item).map_err(|e| Error::Internal(format!("from DynamoDB item: {e}")))
}

pub(crate) fn to_av<T: Serialize>(value: &T) -> Result<AttributeValue> {
    serde_dynamo::to_attribute_value(value)
        .map_err(|e| Error::Internal(format!("to DynamoDB value: {e}")))
}

pub(crate) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(crate) fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// Fixed-width UTC timestamps sort lexicographically in time order.
pub(crate) fn sortable(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Whether an item is still alive at `now` according to its `ttl`.
pub(crate) fn is_live(item: &Item, now: DateTime<Utc>) -> bool {
    match item.get("ttl") {
        Some(AttributeValue::N(v)) => v.parse::<i64>().map_or(true, |t| t > now.timestamp()),
        _ => true,
    }
}

pub(crate) fn is_conditional_failure<E>(
    err: &SdkError<E, aws_smithy_runtime_api::http::Response>,
) -> bool
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata,
{
    err.as_service_error()
        .and_then(|e| e.code())
        .is_some_and(|c| c == "ConditionalCheckFailedException")
}

/// A page position: the key DynamoDB returned as LastEvaluatedKey, restricted
/// to string and number attributes (every key in our tables is one of those).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub(crate) struct KeyPosition(BTreeMap<String, (char, String)>);

impl KeyPosition {
    pub(crate) fn from_item(key: &Item) -> Result<Self> {
        let mut out = BTreeMap::new();
        for (k, v) in key {
            let entry = match v {
                AttributeValue::S(s) => ('S', s.clone()),
                AttributeValue::N(n) => ('N', n.clone()),
                other => {
                    return Err(Error::Internal(format!(
                        "unexpected key attribute type {other:?}"
                    )))
                }
            };
            out.insert(k.clone(), entry);
        }
        Ok(KeyPosition(out))
    }

    /// Turns a decoded position back into a key, checking it names exactly
    /// the attributes this listing's index uses.
    pub(crate) fn into_key(self, expected: &[&str]) -> Result<Item> {
        let mut names: Vec<&str> = self.0.keys().map(String::as_str).collect();
        let mut want = expected.to_vec();
        names.sort_unstable();
        want.sort_unstable();
        if names != want {
            return Err(Error::Validation(
                "nextToken does not belong to this listing".into(),
            ));
        }
        self.0
            .into_iter()
            .map(|(k, (t, v))| match t {
                'S' => Ok((k, AttributeValue::S(v))),
                'N' if v.parse::<f64>().is_ok() => Ok((k, AttributeValue::N(v))),
                _ => Err(Error::Validation("nextToken is malformed".into())),
            })
            .collect()
    }
}

pub(crate) fn encode_next(
    codec: &PageTokenCodec,
    scope: &str,
    lek: Option<&Item>,
) -> Result<Option<String>> {
    match lek {
        Some(key) if !key.is_empty() => {
            Ok(Some(codec.encode(scope, &KeyPosition::from_item(key)?)?))
        }
        _ => Ok(None),
    }
}

pub(crate) fn decode_start(
    codec: &PageTokenCodec,
    scope: &str,
    token: Option<&str>,
    key_attrs: &[&str],
) -> Result<Option<Item>> {
    match token {
        None | Some("") => Ok(None),
        Some(t) => codec
            .decode::<KeyPosition>(scope, t)?
            .into_key(key_attrs)
            .map(Some),
    }
}

/// Reads of one filtered listing page, at most: a filter that matches
/// rarely gives a short page with a next token rather than an unbounded read.
const MAX_FILTERED_READS: usize = 8;

/// One page of a listing whose filter DynamoDB applies after `Limit`: reads
/// until `limit` items match, the listing ends, or [`MAX_FILTERED_READS`]
/// reads were spent, so `limit=1` with a filter answers one item when one
/// exists instead of an empty page. `fetch` reads from a start key; the
/// returned key continues exactly after the last item returned (its
/// `key_attrs` when the last read matched more than the page holds).
pub(crate) async fn filled_page<F, Fut>(
    limit: usize,
    key_attrs: &[&str],
    start: Option<Item>,
    mut fetch: F,
) -> Result<(Vec<Item>, Option<Item>)>
where
    F: FnMut(Option<Item>) -> Fut,
    Fut: std::future::Future<Output = Result<(Vec<Item>, Option<Item>)>>,
{
    let limit = limit.max(1);
    let mut items: Vec<Item> = Vec::new();
    let mut next = start;
    for _ in 0..MAX_FILTERED_READS {
        let (got, lek) = fetch(next.take()).await?;
        items.extend(got);
        if items.len() > limit {
            items.truncate(limit);
            let last = items.last().map(|item| {
                key_attrs
                    .iter()
                    .filter_map(|k| item.get(*k).map(|v| (k.to_string(), v.clone())))
                    .collect::<Item>()
            });
            return Ok((items, last));
        }
        if items.len() == limit || lek.is_none() {
            return Ok((items, lek));
        }
        next = lek;
    }
    Ok((items, next))
}

/// Writes requests 25 at a time (BatchWriteItem's limit), resending
/// UnprocessedItems with exponential backoff and jitter. The SDK retries
/// failed calls, but a call that succeeds with unprocessed items is ours to finish.
pub(crate) async fn batch_write(
    client: &Client,
    table: &str,
    requests: Vec<WriteRequest>,
) -> Result<()> {
    const MAX_ATTEMPTS: u32 = 8;
    for chunk in requests.chunks(25) {
        let mut pending = chunk.to_vec();
        let mut attempt = 0;
        while !pending.is_empty() {
            let out = client
                .batch_write_item()
                .request_items(table, pending)
                .send()
                .await
                .map_err(|e| Error::from_sdk("BatchWriteItem", e))?;
            pending = out
                .unprocessed_items
                .and_then(|mut m| m.remove(table))
                .unwrap_or_default();
            if pending.is_empty() {
                break;
            }
            attempt += 1;
            if attempt >= MAX_ATTEMPTS {
                return Err(Error::Unavailable(format!(
                    "BatchWriteItem: {} items still unprocessed after {MAX_ATTEMPTS} attempts",
                    pending.len()
                )));
            }
            tokio::time::sleep(backoff(attempt)).await;
        }
    }
    Ok(())
}

fn backoff(attempt: u32) -> Duration {
    let base = 25u64 << attempt.min(8);
    let jitter = rand::random::<u64>() % (base + 1);
    Duration::from_millis(base / 2 + jitter / 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_position_checks_attribute_names() {
        let key: Item = [("pk".to_string(), s("a")), ("sk".to_string(), n(3))].into();
        let pos = KeyPosition::from_item(&key).unwrap();
        assert_eq!(pos.clone().into_key(&["sk", "pk"]).unwrap(), key);
        assert!(matches!(pos.into_key(&["pk"]), Err(Error::Validation(_))));
    }

    #[test]
    fn ttl_liveness() {
        let now = Utc::now();
        let past: Item = [("ttl".to_string(), n(now.timestamp() - 1))].into();
        let future: Item = [("ttl".to_string(), n(now.timestamp() + 60))].into();
        assert!(!is_live(&past, now));
        assert!(is_live(&future, now));
        assert!(is_live(&Item::new(), now));
    }
}
