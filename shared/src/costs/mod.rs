//! Costs and forecasts from Cost Explorer.
//!
//! Every Cost Explorer request costs USD 0.01 (each page counts), so answers
//! are cached in DynamoDB under a hash of the normalised question: the same
//! question inside the cache's lifetime makes no Cost Explorer call at all.
//! The SDK generates no paginator for GetCostAndUsage (the service model does
//! not mark it paginated), so [`CostExplorerSource`] follows `NextPageToken`
//! itself and counts the pages it fetched.

pub mod forecast;

use crate::{Error, Result};
use async_trait::async_trait;
use aws_sdk_costexplorer::types::{
    DateInterval, Granularity as CeGranularity, GroupDefinition, GroupDefinitionType, Metric,
};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

/// The cost metric reported: what was billed, before credits and discounts
/// are spread (Cost Explorer's default view).
pub const METRIC: &str = "UnblendedCost";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Granularity {
    Daily,
    Monthly,
}

impl Granularity {
    pub fn parse(s: &str) -> Option<Granularity> {
        match s.to_ascii_uppercase().as_str() {
            "DAILY" => Some(Granularity::Daily),
            "MONTHLY" => Some(Granularity::Monthly),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Granularity::Daily => "DAILY",
            Granularity::Monthly => "MONTHLY",
        }
    }

    /// The longest range asked in one question: Cost Explorer keeps 13
    /// months of history by default (38 when opted in).
    pub fn max_days(self) -> i64 {
        match self {
            Granularity::Daily => 366,
            Granularity::Monthly => 38 * 31,
        }
    }
}

/// How costs are grouped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupBy {
    None,
    Service,
    Account,
    Tag(String),
}

impl GroupBy {
    /// `service`, `account`, `tag:<key>` or `none` (also when absent).
    pub fn parse(s: Option<&str>) -> Option<GroupBy> {
        match s.map(str::trim) {
            None | Some("") | Some("none") => Some(GroupBy::None),
            Some(v) if v.eq_ignore_ascii_case("service") => Some(GroupBy::Service),
            Some(v) if v.eq_ignore_ascii_case("account") => Some(GroupBy::Account),
            Some(v) => match v.strip_prefix("tag:") {
                Some(key)
                    if !key.is_empty()
                        && key.len() <= 128
                        && !key.chars().any(|c| c.is_control()) =>
                {
                    Some(GroupBy::Tag(key.to_string()))
                }
                _ => None,
            },
        }
    }

    pub fn label(&self) -> String {
        match self {
            GroupBy::None => "none".into(),
            GroupBy::Service => "service".into(),
            GroupBy::Account => "account".into(),
            GroupBy::Tag(k) => format!("tag:{k}"),
        }
    }

    fn definition(&self) -> Option<GroupDefinition> {
        let (ty, key) = match self {
            GroupBy::None => return None,
            GroupBy::Service => (GroupDefinitionType::Dimension, "SERVICE"),
            GroupBy::Account => (GroupDefinitionType::Dimension, "LINKED_ACCOUNT"),
            GroupBy::Tag(k) => (GroupDefinitionType::Tag, k.as_str()),
        };
        Some(GroupDefinition::builder().r#type(ty).key(key).build())
    }
}

/// A validated cost question. `end` is exclusive, as in Cost Explorer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CostQuery {
    pub start: NaiveDate,
    pub end: NaiveDate,
    pub granularity: Granularity,
    pub group_by: GroupBy,
}

fn parse_date(field: &str, s: &str) -> Result<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| Error::Validation(format!("{field} must be a date as YYYY-MM-DD, got '{s}'")))
}

impl CostQuery {
    /// Validates a question as a client asks it. Defaults: the last 30 days,
    /// daily, not grouped.
    pub fn parse(
        start: Option<&str>,
        end: Option<&str>,
        granularity: Option<&str>,
        group_by: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<CostQuery> {
        let today = now.date_naive();
        let end = match end {
            Some(s) => parse_date("end", s)?,
            None => today,
        };
        let start = match start {
            Some(s) => parse_date("start", s)?,
            None => end - Duration::days(30),
        };
        let granularity = match granularity {
            None => Granularity::Daily,
            Some(g) => Granularity::parse(g).ok_or_else(|| {
                Error::Validation(format!("granularity must be DAILY or MONTHLY, got '{g}'"))
            })?,
        };
        let group_by = GroupBy::parse(group_by).ok_or_else(|| {
            Error::Validation(format!(
                "groupBy must be service, account, tag:<key> or none, got '{}'",
                group_by.unwrap_or_default()
            ))
        })?;
        if start >= end {
            return Err(Error::Validation(format!(
                "start ({start}) must be before end ({end}); end is exclusive"
            )));
        }
        if end > today + Duration::days(1) {
            return Err(Error::Validation(format!(
                "end ({end}) is in the future; use /costs/forecast for what is to come"
            )));
        }
        if (end - start).num_days() > granularity.max_days() {
            return Err(Error::Validation(format!(
                "{} costs cover at most {} days per question",
                granularity.as_str().to_lowercase(),
                granularity.max_days()
            )));
        }
        Ok(CostQuery {
            start,
            end,
            granularity,
            group_by,
        })
    }

    /// The normalised question, and its cache key: equal questions, however
    /// they were spelled, share one entry.
    pub fn normalised(&self) -> String {
        format!(
            "usage|v1|{}|{}|{}|{}|{}",
            self.start,
            self.end,
            self.granularity.as_str(),
            self.group_by.label(),
            METRIC
        )
    }

    pub fn cache_key(&self) -> String {
        hash_key(&self.normalised())
    }

    pub fn to_params(&self) -> serde_json::Value {
        serde_json::json!({
            "start": self.start.to_string(),
            "end": self.end.to_string(),
            "granularity": self.granularity.as_str(),
            "groupBy": self.group_by.label(),
        })
    }

    /// A job's params (`{start, end, granularity, groupBy}`) as a question.
    pub fn from_params(params: &serde_json::Value, now: DateTime<Utc>) -> Result<CostQuery> {
        let text = |k: &str| params.get(k).and_then(|v| v.as_str());
        CostQuery::parse(
            text("start"),
            text("end"),
            text("granularity"),
            text("groupBy"),
            now,
        )
    }
}

fn hash_key(s: &str) -> String {
    let digest = Sha256::digest(s.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

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

/// Cost Explorer through the SDK, counting every request it makes.
#[derive(Debug)]
pub struct CostExplorerSource {
    client: aws_sdk_costexplorer::Client,
    calls: AtomicU64,
}

fn amount(
    m: Option<&std::collections::HashMap<String, aws_sdk_costexplorer::types::MetricValue>>,
) -> (f64, Option<String>) {
    let Some(m) = m else { return (0.0, None) };
    let v = m.get(METRIC).or_else(|| m.values().next());
    match v {
        Some(v) => (
            v.amount()
                .and_then(|a| a.parse::<f64>().ok())
                .filter(|a| a.is_finite())
                .unwrap_or(0.0),
            v.unit().map(str::to_string),
        ),
        None => (0.0, None),
    }
}

fn date(s: Option<&str>) -> Result<NaiveDate> {
    s.and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
        .ok_or_else(|| {
            Error::Internal("Cost Explorer returned a period without a valid date".into())
        })
}

impl CostExplorerSource {
    pub fn new(client: aws_sdk_costexplorer::Client) -> Self {
        CostExplorerSource {
            client,
            calls: AtomicU64::new(0),
        }
    }

    /// Requests made to Cost Explorer by this process so far.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    fn interval(start: NaiveDate, end: NaiveDate) -> Result<DateInterval> {
        DateInterval::builder()
            .start(start.to_string())
            .end(end.to_string())
            .build()
            .map_err(|e| Error::Internal(e.to_string()))
    }
}

#[async_trait]
impl CostSource for CostExplorerSource {
    async fn usage(&self, query: &CostQuery, now: DateTime<Utc>) -> Result<CostReport> {
        let granularity = match query.granularity {
            Granularity::Daily => CeGranularity::Daily,
            Granularity::Monthly => CeGranularity::Monthly,
        };
        let mut periods: BTreeMap<NaiveDate, PeriodCost> = BTreeMap::new();
        let mut by_group: BTreeMap<String, f64> = BTreeMap::new();
        let mut currency: Option<String> = None;
        let mut token: Option<String> = None;
        let mut pages = 0u32;
        loop {
            let out = self
                .client
                .get_cost_and_usage()
                .time_period(Self::interval(query.start, query.end)?)
                .granularity(granularity.clone())
                .metrics(METRIC)
                .set_group_by(query.group_by.definition().map(|d| vec![d]))
                .set_next_page_token(token.clone())
                .send()
                .await
                .map_err(|e| Error::from_sdk("GetCostAndUsage", e));
            self.calls.fetch_add(1, Ordering::Relaxed);
            let out = out?;
            pages += 1;
            for r in out.results_by_time() {
                let tp = r.time_period().ok_or_else(|| {
                    Error::Internal("Cost Explorer returned a period without dates".into())
                })?;
                let start = date(Some(tp.start()))?;
                let end = date(Some(tp.end()))?;
                let period = periods.entry(start).or_insert_with(|| PeriodCost {
                    start,
                    end,
                    total: 0.0,
                    estimated: r.estimated(),
                    groups: Vec::new(),
                });
                if r.groups().is_empty() {
                    let (v, unit) = amount(r.total());
                    period.total += v;
                    currency = currency.or(unit);
                } else {
                    for g in r.groups() {
                        let (v, unit) = amount(g.metrics());
                        let key = g.keys().join("|");
                        period.total += v;
                        *by_group.entry(key.clone()).or_default() += v;
                        period.groups.push(GroupCost { key, amount: v });
                        currency = currency.or(unit);
                    }
                }
            }
            token = out
                .next_page_token()
                .filter(|t| !t.is_empty())
                .map(str::to_string);
            if token.is_none() {
                break;
            }
            // A runaway token chain must not run up an unbounded bill.
            if pages >= 100 {
                return Err(Error::Unavailable(
                    "GetCostAndUsage: more than 100 pages; narrow the question".into(),
                ));
            }
        }
        let periods: Vec<PeriodCost> = periods.into_values().collect();
        let total = periods.iter().map(|p| p.total).sum::<f64>();
        let mut by_group: Vec<GroupCost> = by_group
            .into_iter()
            .map(|(key, amount)| GroupCost { key, amount })
            .collect();
        by_group.sort_by(|a, b| b.amount.total_cmp(&a.amount));
        Ok(CostReport {
            start: query.start,
            end: query.end,
            granularity: query.granularity,
            group_by: query.group_by.label(),
            metric: METRIC.into(),
            currency: currency.unwrap_or_else(|| "USD".into()),
            total,
            periods,
            by_group,
            pages_fetched: pages,
            cached: false,
            generated_at: now,
        })
    }

    async fn aws_forecast(
        &self,
        start: NaiveDate,
        days: u32,
        level: u8,
    ) -> Result<Vec<forecast::DayForecast>> {
        let out = self
            .client
            .get_cost_forecast()
            .time_period(Self::interval(start, start + Duration::days(days as i64))?)
            .metric(Metric::UnblendedCost)
            .granularity(CeGranularity::Daily)
            .prediction_interval_level(level as i32)
            .send()
            .await
            .map_err(|e| Error::from_sdk("GetCostForecast", e));
        self.calls.fetch_add(1, Ordering::Relaxed);
        let out = out?;
        let num = |s: Option<&str>| s.and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        out.forecast_results_by_time()
            .iter()
            .map(|r| {
                let mean = num(r.mean_value());
                Ok(forecast::DayForecast {
                    date: date(r.time_period().map(|t| t.start()))?,
                    mean,
                    lower: r
                        .prediction_interval_lower_bound()
                        .map_or(mean, |v| num(Some(v))),
                    upper: r
                        .prediction_interval_upper_bound()
                        .map_or(mean, |v| num(Some(v))),
                })
            })
            .collect()
    }
}

/// Where a forecast comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ForecastSource {
    /// Cost Explorer's GetCostForecast.
    Aws,
    /// The project's method in [`forecast`], from daily history.
    Computed,
}

impl ForecastSource {
    /// `COST_FORECAST_SOURCE`: `aws` or `computed` (the default).
    pub fn parse(s: Option<&str>) -> Result<ForecastSource> {
        match s.filter(|v| !v.is_empty()) {
            None | Some("computed") => Ok(ForecastSource::Computed),
            Some("aws") => Ok(ForecastSource::Aws),
            Some(v) => Err(Error::Validation(format!(
                "COST_FORECAST_SOURCE must be aws or computed, got '{v}'"
            ))),
        }
    }
}

/// Days of daily history a computed forecast learns from.
pub const FORECAST_HISTORY_DAYS: i64 = 91;
/// The longest forecast offered, in days (Cost Explorer's daily forecasts reach three months).
pub const MAX_FORECAST_DAYS: u32 = 90;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ForecastReport {
    pub source: ForecastSource,
    pub method: String,
    pub level: u8,
    pub start: NaiveDate,
    pub end: NaiveDate,
    pub total_mean: f64,
    pub total_lower: f64,
    pub total_upper: f64,
    pub days: Vec<forecast::DayForecast>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history_days: Option<usize>,
    pub pages_fetched: u32,
    pub cached: bool,
}

/// Costs with a cache in front of the source.
pub struct Costs<'a> {
    pub source: &'a dyn CostSource,
    pub cache: &'a dyn CostCache,
    pub ttl: Duration,
    pub forecast_source: ForecastSource,
}

impl Costs<'_> {
    /// The answer to `query`: from the cache when a live entry exists,
    /// otherwise from the source, then cached for `ttl`.
    pub async fn report(&self, query: &CostQuery, now: DateTime<Utc>) -> Result<CostReport> {
        let key = query.cache_key();
        if let Some(value) = self.cache.get(&key, now).await? {
            // An entry that no longer parses (an older shape) is simply refetched.
            if let Ok(mut report) = serde_json::from_value::<CostReport>(value) {
                report.cached = true;
                report.pages_fetched = 0;
                return Ok(report);
            }
        }
        let report = self.source.usage(query, now).await?;
        let value = serde_json::to_value(&report)?;
        self.cache
            .put(&key, &query.normalised(), &value, now + self.ttl)
            .await?;
        Ok(report)
    }

    /// A daily forecast for `days` days from today.
    pub async fn forecast(&self, days: u32, now: DateTime<Utc>) -> Result<ForecastReport> {
        if !(1..=MAX_FORECAST_DAYS).contains(&days) {
            return Err(Error::Validation(format!(
                "days must be between 1 and {MAX_FORECAST_DAYS}, got {days}"
            )));
        }
        let level = 80;
        let today = now.date_naive();
        match self.forecast_source {
            ForecastSource::Aws => {
                let daily = self.source.aws_forecast(today, days, level).await?;
                Ok(ForecastReport {
                    source: ForecastSource::Aws,
                    method: "Cost Explorer GetCostForecast".into(),
                    level,
                    start: today,
                    end: today + Duration::days(days as i64),
                    total_mean: daily.iter().map(|d| d.mean).sum(),
                    total_lower: daily.iter().map(|d| d.lower).sum(),
                    total_upper: daily.iter().map(|d| d.upper).sum(),
                    days: daily,
                    history_days: None,
                    pages_fetched: 1,
                    cached: false,
                })
            }
            ForecastSource::Computed => {
                let query = CostQuery {
                    start: today - Duration::days(FORECAST_HISTORY_DAYS),
                    end: today,
                    granularity: Granularity::Daily,
                    group_by: GroupBy::None,
                };
                let history = self.report(&query, now).await?;
                let series = daily_series(&history);
                let f = forecast::forecast(&series, days, level).map_err(|e| {
                    Error::Validation(format!("cannot forecast from the cost history: {e}"))
                })?;
                Ok(ForecastReport {
                    source: ForecastSource::Computed,
                    method: "linear trend x day-of-week factors; interval from residual spread"
                        .into(),
                    level: f.level,
                    start: f.days.first().map_or(today, |d| d.date),
                    end: f.days.last().map_or(today, |d| d.date) + Duration::days(1),
                    total_mean: f.total_mean,
                    total_lower: f.total_lower,
                    total_upper: f.total_upper,
                    days: f.days,
                    history_days: Some(series.len()),
                    pages_fetched: history.pages_fetched,
                    cached: history.cached,
                })
            }
        }
    }
}

/// The daily totals of a report as consecutive days: the longest run of
/// days ending at the last day reported (days Cost Explorer left out inside
/// the range count as zero cost).
pub fn daily_series(report: &CostReport) -> Vec<(NaiveDate, f64)> {
    let by_day: BTreeMap<NaiveDate, f64> =
        report.periods.iter().map(|p| (p.start, p.total)).collect();
    let (Some(first), Some(last)) = (by_day.keys().next(), by_day.keys().next_back()) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut d = *first;
    while d <= *last {
        out.push((d, by_day.get(&d).copied().unwrap_or(0.0)));
        d += Duration::days(1);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-23T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn equal_questions_share_a_key_however_spelled() {
        let a = CostQuery::parse(
            Some("2026-10-01"),
            Some("2026-11-01"),
            Some("daily"),
            Some("SERVICE"),
            now(),
        )
        .unwrap();
        let b = CostQuery::parse(
            Some("2026-10-01"),
            Some("2026-11-01"),
            Some("DAILY"),
            Some("service"),
            now(),
        )
        .unwrap();
        assert_eq!(a.cache_key(), b.cache_key());
        let c = CostQuery::parse(
            Some("2026-10-01"),
            Some("2026-11-01"),
            Some("MONTHLY"),
            Some("service"),
            now(),
        )
        .unwrap();
        assert_ne!(a.cache_key(), c.cache_key());
    }

    #[test]
    fn refuses_bad_questions() {
        for (s, e, g, gb) in [
            (Some("2026-13-01"), Some("2026-11-01"), None, None),
            (Some("2026-11-01"), Some("2026-10-01"), None, None),
            (Some("2026-10-01"), Some("2026-11-01"), Some("HOURLY"), None),
            (Some("2026-10-01"), Some("2026-11-01"), None, Some("region")),
            (Some("2026-10-01"), Some("2026-11-01"), None, Some("tag:")),
            (Some("2024-01-01"), Some("2026-11-01"), Some("DAILY"), None),
            (Some("2026-10-01"), Some("2027-01-01"), None, None),
        ] {
            assert!(
                matches!(
                    CostQuery::parse(s, e, g, gb, now()),
                    Err(Error::Validation(_))
                ),
                "{s:?} {e:?} {g:?} {gb:?}"
            );
        }
        let q = CostQuery::parse(None, None, None, Some("tag:team"), now()).unwrap();
        assert_eq!(q.group_by, GroupBy::Tag("team".into()));
        assert_eq!((q.end - q.start).num_days(), 30);
    }
}

/// How a cost-analysis job ended.
#[derive(Debug, Clone, PartialEq)]
pub enum CostJobOutcome {
    Completed(Box<CostReport>),
    /// The job had finished already: a duplicate delivery.
    Duplicate,
    /// Not retryable (a bad question); the job is marked failed.
    Failed(String),
}

/// Runs a `JobKind::CostAnalysis` job: its params are `{start, end,
/// granularity, groupBy}`. The report becomes the job's result and goes to
/// `costs` subscribers as `cost.report`. `Err` means "retry this message":
/// only a retryable failure before the queue's last delivery.
pub async fn run_cost_job(
    jobs: &dyn crate::store::JobStore,
    costs: &Costs<'_>,
    notifier: &dyn crate::notify::Notifier,
    job_id: &str,
    last_delivery: bool,
    now: DateTime<Utc>,
) -> Result<CostJobOutcome> {
    use crate::domain::JobStatus;
    use crate::notify::Event;
    use crate::store::JobOutcome;
    let job = jobs
        .get(job_id, now)
        .await?
        .ok_or_else(|| Error::Validation(format!("job {job_id} does not exist")))?;
    if job.status.is_finished() {
        return Ok(CostJobOutcome::Duplicate);
    }
    if job.status == JobStatus::Queued {
        match jobs
            .transition(job_id, JobStatus::Running, JobOutcome::default(), now)
            .await
        {
            Ok(_) => {}
            // Another delivery claimed it first.
            Err(Error::Conflict(_)) => return Ok(CostJobOutcome::Duplicate),
            Err(e) => return Err(e),
        }
    }
    let fail = |message: String| async move {
        let outcome = JobOutcome {
            result: None,
            error: Some(message.clone()),
        };
        if let Err(e) = jobs
            .transition(job_id, JobStatus::Failed, outcome, now)
            .await
        {
            tracing::warn!(job_id, error = %e, "could not mark the cost job failed");
        }
        let _ = notifier
            .publish(&Event::JobFailed {
                job_id: job_id.to_string(),
                error: message.clone(),
            })
            .await;
        Ok(CostJobOutcome::Failed(message))
    };
    let query = match CostQuery::from_params(&job.params, now) {
        Ok(q) => q,
        Err(e) => return fail(e.to_string()).await,
    };
    let report = match costs.report(&query, now).await {
        Ok(r) => r,
        Err(e) if e.is_retryable() && !last_delivery => return Err(e),
        Err(e) => return fail(e.to_string()).await,
    };
    let value = serde_json::to_value(&report)?;
    jobs.transition(
        job_id,
        JobStatus::Succeeded,
        JobOutcome {
            result: Some(value.clone()),
            error: None,
        },
        now,
    )
    .await?;
    for event in [
        Event::CostReport {
            job_id: job_id.to_string(),
            report: value,
        },
        Event::JobCompleted {
            job_id: job_id.to_string(),
            summary: serde_json::json!({ "total": report.total, "currency": report.currency, "pagesFetched": report.pages_fetched, "cached": report.cached }),
        },
    ] {
        if let Err(e) = notifier.publish(&event).await {
            tracing::warn!(job_id, error = %e, "cost report not published");
        }
    }
    Ok(CostJobOutcome::Completed(Box::new(report)))
}
