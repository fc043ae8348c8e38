//! The Cost Explorer adapter. The SDK generates no paginator for
//! GetCostAndUsage (the service model does not mark it paginated), so
//! [`CostExplorerSource`] follows `NextPageToken` itself, counts the pages it
//! fetched, and stops a runaway token chain before it runs up a bill.

use super::forecast;
use super::port::{CostReport, CostSource, GroupCost, PeriodCost};
use crate::domain::cost_query::{CostQuery, Granularity, GroupBy, METRIC};
use crate::{Error, Result};
use async_trait::async_trait;
use aws_sdk_costexplorer::types::{
    DateInterval, Granularity as CeGranularity, GroupDefinition, GroupDefinitionType, Metric,
};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

/// The grouping as Cost Explorer takes it.
fn definition(group_by: &GroupBy) -> Option<GroupDefinition> {
    let (ty, key) = match group_by {
        GroupBy::None => return None,
        GroupBy::Dimension(d) => (GroupDefinitionType::Dimension, d.key()),
        GroupBy::Tag(k) => (GroupDefinitionType::Tag, k.as_str()),
    };
    Some(GroupDefinition::builder().r#type(ty).key(key).build())
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
                .set_group_by(definition(&query.group_by).map(|d| vec![d]))
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
        // An empty sum of f64 is -0.0; a report says 0.
        let total = periods.iter().map(|p| p.total).sum::<f64>() + 0.0;
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
