//! The cost use cases: reports through the cache, forecasts, and the
//! cost-analysis job the processor runs.

use super::forecast;
use super::port::{CostCache, CostQuota, CostReport, CostSource};
use crate::domain::cost_query::{CostQuery, Granularity, GroupBy};
use crate::{Error, Result};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::Serialize;
use std::collections::BTreeMap;

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

/// Each caller's hourly allowance of uncached Cost Explorer pages: any role
/// can ask a cost question, and every page asked of AWS is billed.
#[derive(Clone, Copy)]
pub struct Allowance<'a> {
    pub quota: &'a dyn CostQuota,
    pub pages_per_hour: u32,
}

/// Costs with a cache in front of the source.
pub struct Costs<'a> {
    pub source: &'a dyn CostSource,
    pub cache: &'a dyn CostCache,
    pub ttl: Duration,
    pub forecast_source: ForecastSource,
    /// `None`: no allowance is kept (the caller is trusted, e.g. a benchmark).
    pub allowance: Option<Allowance<'a>>,
}

impl Costs<'_> {
    /// Takes the first page of a question that is about to reach Cost
    /// Explorer from `who`'s allowance; `RateLimited` when it is spent.
    async fn spend(&self, who: &str, now: DateTime<Utc>) -> Result<()> {
        let Some(a) = self.allowance else {
            return Ok(());
        };
        if a.quota.take(who, 1, a.pages_per_hour, now).await? {
            return Ok(());
        }
        let next_hour = 3600 - now.timestamp().rem_euclid(3600);
        Err(Error::RateLimited {
            message: format!(
                "{who} has spent this hour's allowance of {} Cost Explorer pages \
                 (each costs USD 0.01); questions already answered within the cache \
                 time still answer",
                a.pages_per_hour
            ),
            retry_after_seconds: next_hour.unsigned_abs(),
        })
    }

    /// Counts the pages past the first that a question took.
    async fn spent(&self, who: &str, pages: u32, now: DateTime<Utc>) {
        if let (Some(a), true) = (self.allowance, pages > 1) {
            if let Err(e) = a.quota.add(who, pages - 1, now).await {
                tracing::warn!(who, pages, error = %e, "Cost Explorer pages not counted");
            }
        }
    }

    /// The answer to `query` for `who`: from the cache when a live entry
    /// exists, otherwise from the source (within `who`'s allowance), then
    /// cached for `ttl`.
    pub async fn report(
        &self,
        query: &CostQuery,
        who: &str,
        now: DateTime<Utc>,
    ) -> Result<CostReport> {
        let key = query.cache_key();
        if let Some(value) = self.cache.get(&key, now).await? {
            // An entry that no longer parses (an older shape) is simply refetched.
            if let Ok(mut report) = serde_json::from_value::<CostReport>(value) {
                report.cached = true;
                report.pages_fetched = 0;
                return Ok(report);
            }
        }
        self.spend(who, now).await?;
        let report = self.source.usage(query, now).await?;
        self.spent(who, report.pages_fetched, now).await;
        let value = serde_json::to_value(&report)?;
        self.cache
            .put(&key, &query.normalised(), &value, now + self.ttl)
            .await?;
        Ok(report)
    }

    /// A daily forecast for `days` days from today, for `who`.
    pub async fn forecast(
        &self,
        days: u32,
        who: &str,
        now: DateTime<Utc>,
    ) -> Result<ForecastReport> {
        if !(1..=MAX_FORECAST_DAYS).contains(&days) {
            return Err(Error::Validation(format!(
                "days must be between 1 and {MAX_FORECAST_DAYS}, got {days}"
            )));
        }
        let level = 80;
        let today = now.date_naive();
        match self.forecast_source {
            ForecastSource::Aws => {
                self.spend(who, now).await?;
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
                let history = self.report(&query, who, now).await?;
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
        Err(e) => return fail(crate::cycle::public_error(&e, job_id)).await,
    };
    let report = match costs.report(&query, &job.requester, now).await {
        Ok(r) => r,
        Err(e) if e.is_retryable() && !last_delivery => return Err(e),
        Err(e) => {
            tracing::error!(job_id, error = %e, "cost job failed");
            return fail(crate::cycle::public_error(&e, job_id)).await;
        }
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
