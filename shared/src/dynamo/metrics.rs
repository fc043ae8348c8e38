use super::*;
use crate::domain::MetricSample;
use crate::store::{clamp_limit, MetricQuery, MetricStore, Page};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::PutRequest;

/// Metrics table, key (`series` = `<resourceId>#<metric>`, `ts` epoch seconds).
/// The key makes ingest idempotent: the same sample twice is one item.
#[derive(Clone, Debug)]
pub struct DynamoMetrics {
    client: Client,
    table: String,
    tokens: PageTokenCodec,
    retention: chrono::Duration,
}

pub(crate) fn series_key(resource_id: &str, metric: &str) -> String {
    format!("{resource_id}#{metric}")
}

impl DynamoMetrics {
    pub fn new(client: Client, table: impl Into<String>, tokens: PageTokenCodec) -> Self {
        DynamoMetrics {
            client,
            table: table.into(),
            tokens,
            retention: chrono::Duration::days(30),
        }
    }

    /// Retention counts from each sample's own timestamp.
    pub fn with_retention(mut self, retention: chrono::Duration) -> Self {
        self.retention = retention;
        self
    }
}

#[async_trait]
impl MetricStore for DynamoMetrics {
    async fn put(&self, samples: &[MetricSample], _now: DateTime<Utc>) -> Result<usize> {
        // BatchWriteItem refuses two requests for one key in a call: the last sample wins.
        let mut by_key: BTreeMap<(String, i64), &MetricSample> = BTreeMap::new();
        for sample in samples {
            if !sample.value.is_finite() {
                return Err(Error::Validation(format!(
                    "metric {} of {} at {} is not a finite number",
                    sample.metric, sample.resource_id, sample.timestamp
                )));
            }
            by_key.insert(
                (
                    series_key(&sample.resource_id, &sample.metric),
                    sample.timestamp.timestamp(),
                ),
                sample,
            );
        }
        let mut requests = Vec::with_capacity(by_key.len());
        for ((series, ts), sample) in &by_key {
            let mut item = to_item(sample)?;
            item.insert("series".into(), s(series.clone()));
            item.insert("ts".into(), n(ts));
            item.insert(
                "ttl".into(),
                n((sample.timestamp + self.retention).timestamp()),
            );
            let put = PutRequest::builder()
                .set_item(Some(item))
                .build()
                .map_err(|e| Error::Internal(e.to_string()))?;
            requests.push(WriteRequest::builder().put_request(put).build());
        }
        let written = requests.len();
        batch_write(&self.client, &self.table, requests).await?;
        Ok(written)
    }

    async fn query(
        &self,
        q: &MetricQuery,
        limit: Option<u32>,
        token: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Page<MetricSample>> {
        let (from, to) = (q.from, q.to);
        if from > to {
            return Err(Error::Validation("'from' is after 'to'".into()));
        }
        let series = series_key(&q.resource_id, &q.metric);
        let scope = format!(
            "{}:{series}:{}:{}",
            self.table,
            from.timestamp(),
            to.timestamp()
        );
        let start = decode_start(&self.tokens, &scope, token, &["series", "ts"])?;
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("series = :s AND ts BETWEEN :from AND :to")
            .filter_expression(TTL_FILTER)
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":s", s(series))
            .expression_attribute_values(":from", n(from.timestamp()))
            .expression_attribute_values(":to", n(to.timestamp()))
            .expression_attribute_values(":now", n(now.timestamp()))
            .limit(clamp_limit(limit).max(1) * 10)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| Error::from_sdk("Query", e))?;
        let items = out
            .items
            .unwrap_or_default()
            .into_iter()
            .filter(|i| is_live(i, now))
            .map(from_item)
            .collect::<Result<Vec<MetricSample>>>()?;
        Ok(Page {
            items,
            next_token: encode_next(&self.tokens, &scope, out.last_evaluated_key.as_ref())?,
        })
    }
}
