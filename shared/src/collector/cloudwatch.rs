//! The CloudWatch adapter of [`MetricSource`].
//!
//! Memory: a GetMetricData page holds at most 100,800 points (a few MB of
//! XML, 2.4 MB parsed), and at most `concurrency` calls are in flight, so the
//! adapter's own working set is bounded whatever the fleet (measured by
//! tests/benches/collect.rs: +22 MB peak RSS at the default 4, streaming 1M
//! points). The series it returns are the caller's: 10,000 resources x 8
//! metrics x 14 days hourly is 27 million points (650 MB as `MetricPoint`s),
//! so a caller on 128 MB consumes them as they arrive with
//! [`CloudWatchSource::fetch_with`] instead of collecting them all.

use super::planner::{self, Plan};
use super::{resource_of_series, DiscoveredResource, MetricRequest, MetricSource};
use crate::domain::{MetricPoint, MetricSeries, Service};
use crate::{Error, Result};
use async_trait::async_trait;
use aws_sdk_cloudwatch::types::{
    Dimension, DimensionFilter, Metric, MetricDataQuery, MetricStat, ScanBy, StatusCode,
};
use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt, TryStreamExt};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// GetMetricData calls in flight at once, unless configured otherwise.
pub const DEFAULT_CONCURRENCY: usize = 4;

/// How many CloudWatch API calls a source has made (each page is a call).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallCounts {
    pub list_metrics: u64,
    pub get_metric_data: u64,
}

/// The dimension sets ListMetrics showed for one metric.
type DimensionSets = Arc<Vec<Vec<(String, String)>>>;

/// [`MetricSource`] over the CloudWatch API. Retries are the SDK's (its
/// config's retry policy); pagination is the SDK's paginators.
#[derive(Debug)]
pub struct CloudWatchSource {
    client: aws_sdk_cloudwatch::Client,
    concurrency: usize,
    max_datapoints: Option<i32>,
    list_metrics_calls: AtomicU64,
    get_metric_data_calls: AtomicU64,
    /// Listed dimension sets per (namespace, metric), with when they were
    /// listed: a cycle resolves chunk after chunk against one listing.
    listed: Mutex<HashMap<(String, String), (Instant, DimensionSets)>>,
}

/// How long a listing of dimension sets is reused: well within one cycle,
/// short enough that a new agent configuration is seen by the next.
const LISTING_TTL: Duration = Duration::from_secs(300);

impl CloudWatchSource {
    /// A source with [`DEFAULT_CONCURRENCY`] calls in flight and CloudWatch's
    /// own page size.
    pub fn new(client: aws_sdk_cloudwatch::Client) -> Self {
        CloudWatchSource {
            client,
            concurrency: DEFAULT_CONCURRENCY,
            max_datapoints: None,
            list_metrics_calls: AtomicU64::new(0),
            get_metric_data_calls: AtomicU64::new(0),
            listed: Mutex::new(HashMap::new()),
        }
    }

    /// GetMetricData calls (and ListMetrics listings) in flight at once; at
    /// least 1. Each one can hold a 100,800-point page in memory.
    pub fn with_concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency.max(1);
        self
    }

    /// Asks for at most `max_datapoints` points per page (GetMetricData's
    /// `MaxDatapoints`). Calls are still sized for CloudWatch's 100,800, so
    /// a smaller value means more pages: for tests of pagination, or to cap
    /// the size of one response.
    pub fn with_max_datapoints(mut self, max_datapoints: u32) -> Self {
        self.max_datapoints = Some(i32::try_from(max_datapoints.max(1)).unwrap_or(i32::MAX));
        self
    }

    /// The calls made so far.
    pub fn calls(&self) -> CallCounts {
        CallCounts {
            list_metrics: self.list_metrics_calls.load(Ordering::Relaxed),
            get_metric_data: self.get_metric_data_calls.load(Ordering::Relaxed),
        }
    }

    /// Fetches like [`MetricSource::fetch`] but hands each series to `sink`
    /// with its request index as soon as its call completes, in no
    /// particular order, so that the caller need not hold the whole fleet's
    /// points at once. On error, some series may already have been handed
    /// over.
    pub async fn fetch_with<F>(
        &self,
        requests: &[MetricRequest],
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        mut sink: F,
    ) -> Result<()>
    where
        F: FnMut(usize, MetricSeries) + Send,
    {
        let plan = planner::plan(requests, start, end)?;
        // Indexes rather than `&PlannedCall`s: a closure from a borrowed item
        // to a future borrowing it is not general enough for async_trait's
        // Send check.
        let mut done = stream::iter(0..plan.calls.len())
            .map(|k| self.run_call(requests, &plan, k))
            .buffer_unordered(self.concurrency);
        while let Some(series) = done.next().await {
            for (index, s) in series? {
                sink(index, s);
            }
        }
        Ok(())
    }

    /// One planned call, every page of it, merged by query id.
    async fn run_call(
        &self,
        requests: &[MetricRequest],
        plan: &Plan,
        call: usize,
    ) -> Result<Vec<(usize, MetricSeries)>> {
        let Some(call) = plan.calls.get(call) else {
            return Ok(Vec::new());
        };
        let mut slot: HashMap<String, usize> = HashMap::with_capacity(call.requests.len());
        let mut queries = Vec::with_capacity(call.requests.len());
        for (pos, &i) in call.requests.iter().enumerate() {
            let id = planner::query_id(i);
            queries.push(query(&id, &requests[i]));
            slot.insert(id, pos);
        }
        let mut points: Vec<Vec<MetricPoint>> = vec![Vec::new(); call.requests.len()];
        let mut pages = self
            .client
            .get_metric_data()
            .set_metric_data_queries(Some(queries))
            .start_time(smithy_time(plan.query_start))
            .end_time(smithy_time(plan.query_end))
            .scan_by(ScanBy::TimestampAscending)
            .set_max_datapoints(self.max_datapoints)
            .into_paginator()
            .send();
        let mut partial: BTreeSet<usize> = BTreeSet::new();
        while let Some(page) = pages.next().await {
            self.get_metric_data_calls.fetch_add(1, Ordering::Relaxed);
            let page = page.map_err(|e| Error::from_sdk("GetMetricData", e))?;
            partial.clear();
            for result in page.metric_data_results.unwrap_or_default() {
                let id = result.id.as_deref().unwrap_or_default();
                let Some(&pos) = slot.get(id) else {
                    tracing::warn!(id, "GetMetricData answered a query it was not asked");
                    continue;
                };
                match result.status_code {
                    Some(StatusCode::InternalError) => {
                        return Err(Error::Unavailable(format!(
                            "GetMetricData: query {id}: InternalError"
                        )))
                    }
                    Some(StatusCode::Forbidden) => {
                        return Err(Error::Internal(format!(
                            "GetMetricData: query {id}: Forbidden"
                        )))
                    }
                    Some(StatusCode::PartialData) => {
                        partial.insert(pos);
                    }
                    _ => {}
                }
                let ts = result.timestamps.unwrap_or_default();
                let vs = result.values.unwrap_or_default();
                if ts.len() != vs.len() {
                    return Err(Error::Internal(format!(
                        "GetMetricData: query {id}: {} timestamps for {} values",
                        ts.len(),
                        vs.len()
                    )));
                }
                let out = &mut points[pos];
                out.reserve(ts.len());
                for (t, value) in ts.into_iter().zip(vs) {
                    out.push(MetricPoint {
                        timestamp: chrono_time(t)?,
                        value,
                    });
                }
            }
        }
        if !partial.is_empty() {
            // The last page still called some queries partial: CloudWatch
            // gave up on them (on AWS, a time limit). What arrived is kept.
            tracing::warn!(
                queries = partial.len(),
                "GetMetricData ended with PartialData and no NextToken"
            );
        }
        let mut out = Vec::with_capacity(call.requests.len());
        for (&i, mut pts) in call.requests.iter().zip(points) {
            let r = &requests[i];
            // Buckets before the request's own aligned start belong to a
            // longer period's alignment, not to what was asked.
            if let Some(own_start) = planner::align_down(plan.start, r.period_seconds) {
                pts.retain(|p| p.timestamp >= own_start);
            }
            pts.sort_by_key(|p| p.timestamp);
            pts.dedup_by_key(|p| p.timestamp);
            out.push((
                i,
                MetricSeries {
                    resource_id: r.resource_id.clone(),
                    service: r.service,
                    metric: r.metric.clone(),
                    statistic: r.statistic.clone(),
                    period_seconds: r.period_seconds,
                    points: pts,
                },
            ));
        }
        Ok(out)
    }

    /// Every dimension set `metric` is published with in `namespace`, all
    /// pages, each sorted by name; reused for [`LISTING_TTL`].
    async fn dimension_sets(
        &self,
        namespace: &str,
        metric: &str,
    ) -> Result<Arc<Vec<Vec<(String, String)>>>> {
        let key = (namespace.to_string(), metric.to_string());
        if let Ok(cache) = self.listed.lock() {
            if let Some((at, sets)) = cache.get(&key) {
                if at.elapsed() < LISTING_TTL {
                    return Ok(sets.clone());
                }
            }
        }
        let mut sets: Vec<Vec<(String, String)>> = Vec::new();
        let mut pages = self
            .client
            .list_metrics()
            .namespace(namespace)
            .metric_name(metric)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            self.list_metrics_calls.fetch_add(1, Ordering::Relaxed);
            let page = page.map_err(|e| Error::from_sdk("ListMetrics", e))?;
            for m in page.metrics.unwrap_or_default() {
                let mut dims: Vec<(String, String)> = m
                    .dimensions
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|d| Some((d.name?, d.value?)))
                    .collect();
                dims.sort();
                sets.push(dims);
            }
        }
        sets.sort();
        sets.dedup();
        let sets = Arc::new(sets);
        if let Ok(mut cache) = self.listed.lock() {
            cache.insert(key, (Instant::now(), sets.clone()));
        }
        Ok(sets)
    }

    /// Every series in `service`'s namespace that carries its identifying
    /// dimensions, all pages.
    async fn list(&self, service: Service) -> Result<Vec<DiscoveredResource>> {
        let mut req = self.client.list_metrics().namespace(service.namespace());
        for name in super::identifying_dimensions(service) {
            req = req.dimensions(DimensionFilter::builder().name(*name).build());
        }
        let mut found: BTreeMap<String, BTreeSet<(String, String)>> = BTreeMap::new();
        let mut pages = req.into_paginator().send();
        while let Some(page) = pages.next().await {
            self.list_metrics_calls.fetch_add(1, Ordering::Relaxed);
            let page = page.map_err(|e| Error::from_sdk("ListMetrics", e))?;
            for metric in page.metrics.unwrap_or_default() {
                let dims: Vec<(String, String)> = metric
                    .dimensions
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|d| Some((d.name?, d.value?)))
                    .collect();
                if let Some((id, ident)) = resource_of_series(service, &dims) {
                    found.entry(id).or_default().extend(ident);
                }
            }
        }
        Ok(found
            .into_iter()
            .map(|(id, dims)| DiscoveredResource {
                service,
                id,
                dimensions: dims.into_iter().collect(),
            })
            .collect())
    }
}

#[async_trait]
impl MetricSource for CloudWatchSource {
    async fn fetch(
        &self,
        requests: &[MetricRequest],
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<Vec<MetricSeries>> {
        let mut out: Vec<Option<MetricSeries>> = vec![None; requests.len()];
        self.fetch_with(requests, start, end, |i, s| {
            if let Some(slot) = out.get_mut(i) {
                *slot = Some(s);
            }
        })
        .await?;
        out.into_iter()
            .enumerate()
            .map(|(i, s)| {
                s.ok_or_else(|| Error::Internal(format!("metric request {i} was never fetched")))
            })
            .collect()
    }

    async fn resolve(&self, requests: &mut [MetricRequest]) -> Result<()> {
        let pairs: BTreeSet<(String, String)> = requests
            .iter()
            .filter(|r| super::APPENDED_DIMENSION_NAMESPACES.contains(&r.namespace.as_str()))
            .map(|r| (r.namespace.clone(), r.metric.clone()))
            .collect();
        for (namespace, metric) in pairs {
            let sets = self.dimension_sets(&namespace, &metric).await?;
            for r in requests
                .iter_mut()
                .filter(|r| r.namespace == namespace && r.metric == metric)
            {
                if let Some(set) = super::best_listed_set(&r.dimensions, &sets) {
                    r.dimensions = set.clone();
                }
            }
        }
        Ok(())
    }

    async fn discover(&self, services: &[Service]) -> Result<Vec<DiscoveredResource>> {
        let wanted: BTreeSet<Service> = services.iter().copied().collect();
        let mut found: Vec<DiscoveredResource> = stream::iter(wanted)
            .map(|s| self.list(s))
            .buffer_unordered(self.concurrency)
            .try_concat()
            .await?;
        found.sort();
        Ok(found)
    }
}

fn query(id: &str, r: &MetricRequest) -> MetricDataQuery {
    let metric = Metric::builder()
        .namespace(&r.namespace)
        .metric_name(&r.metric)
        .set_dimensions(Some(
            r.dimensions
                .iter()
                .map(|(n, v)| Dimension::builder().name(n).value(v).build())
                .collect(),
        ))
        .build();
    MetricDataQuery::builder()
        .id(id)
        .metric_stat(
            MetricStat::builder()
                .metric(metric)
                .period(i32::try_from(r.period_seconds).unwrap_or(i32::MAX))
                .stat(&r.statistic)
                .build(),
        )
        .return_data(true)
        .build()
}

fn smithy_time(t: DateTime<Utc>) -> aws_smithy_types::DateTime {
    aws_smithy_types::DateTime::from_secs(t.timestamp())
}

fn chrono_time(t: aws_smithy_types::DateTime) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp(t.secs(), t.subsec_nanos())
        .ok_or_else(|| Error::Internal(format!("GetMetricData: timestamp {t} out of range")))
}
