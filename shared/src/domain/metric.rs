use super::Service;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MetricPoint {
    pub timestamp: DateTime<Utc>,
    pub value: f64,
}

/// One metric of one resource over time, in ascending timestamp order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricSeries {
    pub resource_id: String,
    pub service: Service,
    pub metric: String,
    /// The statistic the points hold (Average, Maximum, p99, ...).
    pub statistic: String,
    pub period_seconds: u32,
    pub points: Vec<MetricPoint>,
}

/// A single stored sample, as ingested through `POST /metrics` or kept by the
/// metric store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricSample {
    pub resource_id: String,
    pub service: Service,
    pub metric: String,
    pub timestamp: DateTime<Utc>,
    pub value: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
}
