//! Bulk CloudWatch data for tests and demos, through the emulator's
//! `POST /_finops/cloudwatch/series` (see infra/emulator/server.py).
//!
//! The emulator stores these points exactly as PutMetricData would, but
//! PutMetricData costs about 0.3 s per 1,000 points there; a 1,000-instance
//! fleet with three metrics over 14 days (about a million points) seeds in
//! seconds this way instead of five minutes.

use crate::LocalError;
use serde::Serialize;
use std::time::Duration;

/// Points per request: about 3 MB of JSON, a second of the emulator's time,
/// so one request never nears a timeout and memory on both sides stays small.
pub const POINTS_PER_REQUEST: usize = 100_000;

const SEED_PATH: &str = "/_finops/cloudwatch/series";

/// One regular series: value `i` at `start + i * period`.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesSeed {
    pub namespace: String,
    pub metric_name: String,
    pub dimensions: Vec<(String, String)>,
    /// A CloudWatch unit (`Percent`, `Bytes`, ...), or none.
    pub unit: Option<String>,
    /// Epoch seconds of the first value.
    pub start: i64,
    pub period_seconds: u32,
    /// A NaN (or infinite) value leaves a gap: no point at that time.
    pub values: Vec<f64>,
}

impl SeriesSeed {
    /// A series without unit; see the fields for the meaning of each argument.
    pub fn new(
        namespace: impl Into<String>,
        metric_name: impl Into<String>,
        dimensions: &[(&str, &str)],
        start: i64,
        period_seconds: u32,
        values: Vec<f64>,
    ) -> Self {
        SeriesSeed {
            namespace: namespace.into(),
            metric_name: metric_name.into(),
            dimensions: dimensions
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            unit: None,
            start,
            period_seconds,
            values,
        }
    }

    pub fn unit(mut self, unit: impl Into<String>) -> Self {
        self.unit = Some(unit.into());
        self
    }

    /// The points it stores (values that are not gaps).
    pub fn points(&self) -> usize {
        self.values.iter().filter(|v| v.is_finite()).count()
    }
}

#[derive(Serialize)]
struct WireDimension<'a> {
    #[serde(rename = "Name")]
    name: &'a str,
    #[serde(rename = "Value")]
    value: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WireSeries<'a> {
    namespace: &'a str,
    metric_name: &'a str,
    dimensions: Vec<WireDimension<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    unit: Option<&'a str>,
    start: i64,
    period: u32,
    /// `None` is JSON null, a gap.
    values: Vec<Option<f64>>,
}

#[derive(Serialize)]
struct WireBody<'a> {
    series: Vec<WireSeries<'a>>,
}

impl<'a> WireSeries<'a> {
    fn part(s: &'a SeriesSeed, from: usize, to: usize) -> Self {
        WireSeries {
            namespace: &s.namespace,
            metric_name: &s.metric_name,
            dimensions: s
                .dimensions
                .iter()
                .map(|(n, v)| WireDimension { name: n, value: v })
                .collect(),
            unit: s.unit.as_deref(),
            start: s.start + from as i64 * i64::from(s.period_seconds),
            period: s.period_seconds,
            values: s.values[from..to]
                .iter()
                .map(|v| v.is_finite().then_some(*v))
                .collect(),
        }
    }
}

/// Stores `series` in the emulator at `endpoint` (its base URL), in
/// requests of about [`POINTS_PER_REQUEST`] values (a long series is split
/// across requests). Returns the number of points stored.
pub async fn seed_series(endpoint: &str, series: &[SeriesSeed]) -> Result<u64, LocalError> {
    seed_series_in(endpoint, None, None, series).await
}

/// As [`seed_series`], into the CloudWatch of `account` (default: the
/// emulator's default account) and `region` (default: us-east-1).
pub async fn seed_series_in(
    endpoint: &str,
    account: Option<&str>,
    region: Option<&str>,
    series: &[SeriesSeed],
) -> Result<u64, LocalError> {
    let mut url = url::Url::parse(&format!("{}{SEED_PATH}", endpoint.trim_end_matches('/')))
        .map_err(|e| LocalError::Emulator(format!("emulator URL {endpoint}: {e}")))?;
    if let Some(a) = account {
        url.query_pairs_mut().append_pair("account", a);
    }
    if let Some(r) = region {
        url.query_pairs_mut().append_pair("region", r);
    }
    let url = url.to_string();
    let client = shared::tls::http_client()
        .timeout(Duration::from_secs(120))
        .build()
        .map_err(|e| LocalError::Emulator(format!("HTTP client: {e}")))?;
    let mut stored = 0u64;
    let mut batch: Vec<WireSeries<'_>> = Vec::new();
    let mut in_batch = 0usize;
    for s in series {
        if s.period_seconds == 0 {
            return Err(LocalError::Emulator(format!(
                "seeding {}/{}: period of 0 s",
                s.namespace, s.metric_name
            )));
        }
        let mut from = 0;
        // A series with no values is still sent, so that an empty seed is
        // checked by the emulator like any other.
        loop {
            let to = s.values.len().min(from + (POINTS_PER_REQUEST - in_batch));
            batch.push(WireSeries::part(s, from, to));
            in_batch += to - from;
            from = to;
            if in_batch >= POINTS_PER_REQUEST {
                stored += post(&client, &url, std::mem::take(&mut batch)).await?;
                in_batch = 0;
            }
            if from >= s.values.len() {
                break;
            }
        }
    }
    if !batch.is_empty() {
        stored += post(&client, &url, batch).await?;
    }
    Ok(stored)
}

async fn post(
    client: &reqwest::Client,
    url: &str,
    series: Vec<WireSeries<'_>>,
) -> Result<u64, LocalError> {
    let body = serde_json::to_vec(&WireBody { series })
        .map_err(|e| LocalError::Emulator(format!("encoding seed: {e}")))?;
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| LocalError::Emulator(format!("POST {url}: {e}")))?;
    let status = response.status();
    let text = response
        .text()
        .await
        .map_err(|e| LocalError::Emulator(format!("POST {url}: {e}")))?;
    if !status.is_success() {
        return Err(LocalError::Emulator(format!(
            "POST {url}: {status}: {text}"
        )));
    }
    let answer: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| LocalError::Emulator(format!("POST {url}: answer {text:?}: {e}")))?;
    answer["points"]
        .as_u64()
        .ok_or_else(|| LocalError::Emulator(format!("POST {url}: answer without points: {text}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::domain::metric::{names, namespaces};

    #[test]
    fn gaps_are_nulls_and_parts_keep_their_times() {
        let s = SeriesSeed::new(
            namespaces::EC2,
            names::CPU_UTILIZATION,
            &[("InstanceId", "i-1")],
            1_000,
            60,
            vec![1.0, f64::NAN, 3.0, f64::INFINITY],
        )
        .unit("Percent");
        assert_eq!(s.points(), 2);
        let json = serde_json::to_value(WireSeries::part(&s, 1, 4)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "namespace": "AWS/EC2", "metricName": "CPUUtilization",
                "dimensions": [{"Name": "InstanceId", "Value": "i-1"}],
                "unit": "Percent", "start": 1_060, "period": 60,
                "values": [null, 3.0, null]
            })
        );
    }
}
