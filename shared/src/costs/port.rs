//! The cost port: what a report holds, where costs come from, and the cache
//! of answers in front of them.

use super::forecast;
use crate::domain::cost_query::{CostQuery, Granularity};
use crate::Result;
use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupCost {
    pub key: String,
    pub amount: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PeriodCost {
    pub start: NaiveDate,
    pub end: NaiveDate,
    pub total: f64,
    #[serde(default)]
    pub estimated: bool,
    #[serde(default)]
    pub groups: Vec<GroupCost>,
}

/// The answer to a [`CostQuery`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CostReport {
    pub start: NaiveDate,
    pub end: NaiveDate,
    pub granularity: Granularity,
    pub group_by: String,
    pub metric: String,
    pub currency: String,
    pub total: f64,
    pub periods: Vec<PeriodCost>,
    /// Totals per group over the whole range, largest first.
    #[serde(default)]
    pub by_group: Vec<GroupCost>,
    /// Cost Explorer pages fetched to answer this request: 0 when it came from the cache.
    pub pages_fetched: u32,
    pub cached: bool,
    pub generated_at: DateTime<Utc>,
}

/// Where costs come from.
#[async_trait]
pub trait CostSource: Send + Sync {
    async fn usage(&self, query: &CostQuery, now: DateTime<Utc>) -> Result<CostReport>;
    /// Cost Explorer's own forecast, daily, from `start` for `days` days, at `level` percent.
    async fn aws_forecast(
        &self,
        start: NaiveDate,
        days: u32,
        level: u8,
    ) -> Result<Vec<forecast::DayForecast>>;
}

/// The cache of answers. The DynamoDB adapter is [`crate::dynamo::DynamoCostCache`].
#[async_trait]
pub trait CostCache: Send + Sync {
    async fn get(&self, key: &str, now: DateTime<Utc>) -> Result<Option<serde_json::Value>>;
    async fn put(
        &self,
        key: &str,
        question: &str,
        value: &serde_json::Value,
        expires_at: DateTime<Utc>,
    ) -> Result<()>;
}

/// Allowances of paid Cost Explorer pages (USD 0.01 each), per caller and
/// UTC hour. The DynamoDB adapter is [`crate::dynamo::DynamoCostCache`].
#[async_trait]
pub trait CostQuota: Send + Sync {
    /// Takes `pages` of `subject`'s allowance for the hour holding `now`,
    /// atomically, unless that would pass `limit`: then `false` and nothing
    /// is taken.
    async fn take(&self, subject: &str, pages: u32, limit: u32, now: DateTime<Utc>)
        -> Result<bool>;
    /// Counts `pages` more, past any limit: the later pages of a question
    /// whose first page was allowed.
    async fn add(&self, subject: &str, pages: u32, now: DateTime<Utc>) -> Result<()>;
}
