use super::{Action, FindingKind, Service};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A versioned set of rules. Every change is a new version; a cycle records the
/// version it used, so a recommendation can always be traced to its rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ThresholdSet {
    pub version: u32,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    #[serde(default)]
    pub note: Option<String>,
    pub rules: Vec<ThresholdRule>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operator {
    LessThan,
    GreaterThan,
    Equals,
    Between,
}

/// How a rule aggregates its window before comparing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Aggregation {
    /// One statistic over the whole lookback window.
    Window,
    /// One statistic per UTC day; the rule holds on at least `minDays` of the
    /// last `ofLastDays` days.
    Daily,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    pub metric: String,
    /// Average, Maximum, Minimum, Sum, SampleCount or a percentile such as p99.5.
    pub statistic: String,
    pub operator: Operator,
    pub value: f64,
    /// Upper bound for `between` (inclusive on both ends).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upper: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ThresholdRule {
    pub id: String,
    pub service: Service,
    pub finding: FindingKind,
    pub action: Action,
    pub description: String,
    /// All conditions must hold.
    pub conditions: Vec<Condition>,
    pub aggregation: Aggregation,
    pub lookback_days: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_days: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub of_last_days: Option<u32>,
    /// Minimum share (0..1) of expected data points present before any verdict.
    pub min_coverage: f64,
    /// Headroom kept above the projected peak when rightsizing, in percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headroom_percent: Option<f64>,
}
