//! The per-resource stages: collect metrics and analyse them, chunk by chunk,
//! so memory stays bounded by the chunk size whatever the estate's size.

use super::{CycleConfig, Ports, Tracker};
use crate::analysis::{required_queries, Engine, PriceCatalog};
use crate::collector::{dimensions_in, MetricRequest};
use crate::domain::{
    MetricSeries, Recommendation, Resource, Service, Stage, StageOutcome, ThresholdSet,
};
use crate::Result;
use chrono::{DateTime, Duration, DurationRound, Utc};
use std::collections::HashMap;
use std::time::Instant;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct SliceOutcome {
    pub recommendations: Vec<Recommendation>,
    pub analysed: u64,
    pub findings: u64,
    /// Resources whose metrics could not be fetched (with continue-on-error).
    pub failed: u64,
}

pub(crate) fn elapsed_ms(start: Instant) -> u64 {
    start.elapsed().as_millis() as u64
}

/// The collection window: the longest lookback any rule needs, ending at the
/// last full hour (so every period bucket is complete and aligned).
pub(crate) fn window(set: &ThresholdSet, now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    let days = Service::ALL
        .iter()
        .flat_map(|s| required_queries(set, *s))
        .map(|q| q.lookback_days)
        .max()
        .unwrap_or(14);
    let end = now.duration_trunc(Duration::hours(1)).unwrap_or(now);
    (end - Duration::days(days as i64), end)
}

/// The queries of the per-service plan, cached: computing them walks the rules.
pub(crate) struct QueryPlan<'s> {
    set: &'s ThresholdSet,
    by_service: HashMap<Service, Vec<crate::analysis::MetricQuery>>,
}

impl<'s> QueryPlan<'s> {
    pub(crate) fn new(set: &'s ThresholdSet) -> Self {
        QueryPlan {
            set,
            by_service: HashMap::new(),
        }
    }

    pub(crate) fn requests_for(&mut self, r: &Resource) -> Vec<MetricRequest> {
        let set = self.set;
        let queries = self
            .by_service
            .entry(r.service)
            .or_insert_with(|| required_queries(set, r.service));
        queries
            .iter()
            .map(|q| {
                // Identity from the id, plus the query's own (S3's StorageType, FilterId).
                let dimensions = dimensions_in(&q.namespace, r.service, &r.id, &q.extra_dimensions);
                MetricRequest {
                    resource_id: r.id.clone(),
                    service: r.service,
                    namespace: q.namespace.clone(),
                    metric: q.metric.clone(),
                    dimensions,
                    statistic: q.statistic.clone(),
                    period_seconds: q.period_seconds,
                }
            })
            .collect()
    }
}

/// Every GetMetricData query a cycle makes for `resources`, and its window:
/// what benchmarks compare the collector's call count against.
pub fn metric_requests(
    set: &ThresholdSet,
    resources: &[Resource],
    now: DateTime<Utc>,
) -> (Vec<MetricRequest>, DateTime<Utc>, DateTime<Utc>) {
    let mut plan = QueryPlan::new(set);
    let (start, end) = window(set, now);
    (
        resources
            .iter()
            .flat_map(|r| plan.requests_for(r))
            .collect(),
        start,
        end,
    )
}

/// Collects and analyses `resources`, recording the collect, analyse and
/// recommend stages on `tracker` when given (a shard reports through its job
/// counters instead).
pub(crate) async fn analyse_slice(
    ports: &Ports<'_>,
    cfg: &CycleConfig,
    set: &ThresholdSet,
    resources: &[Resource],
    mut tracker: Option<&mut Tracker<'_, '_>>,
    now: DateTime<Utc>,
) -> Result<SliceOutcome> {
    let (start, end) = window(set, now);
    let mut plan = QueryPlan::new(set);
    let mut engine = Engine::with_policy(set, PriceCatalog::builtin(), cfg.tags.clone());
    let mut out = SliceOutcome::default();
    let (mut collect_ms, mut analyse_ms) = (0u64, 0u64);
    let mut last_error = None;
    let total = resources.len() as u64;
    let mut done = 0u64;
    for chunk in resources.chunks(cfg.chunk_resources.max(1)) {
        // An excluded resource costs no metric query.
        let mut requests: Vec<MetricRequest> = chunk
            .iter()
            .filter(|r| !cfg.tags.excluded(r))
            .flat_map(|r| plan.requests_for(r))
            .collect();
        let t = Instant::now();
        if let Err(e) = ports.source.resolve(&mut requests).await {
            // The derived dimensions still find every series whose
            // publisher appends nothing.
            tracing::warn!(error = %e, "series dimensions could not be listed");
        }
        let fetched = ports.source.fetch(&requests, start, end).await;
        collect_ms += elapsed_ms(t);
        let series = match fetched {
            Ok(s) => s,
            Err(e) if e.is_retryable() || !cfg.continue_on_error => return Err(e),
            Err(e) => {
                out.failed += chunk.len() as u64;
                let reference = tracker.as_deref().map_or("", |t| t.run.job_id.as_str());
                tracing::warn!(job_id = reference, error = %e, "metrics of a chunk could not be fetched");
                last_error = Some(super::public_error(&e, reference));
                done += chunk.len() as u64;
                continue;
            }
        };
        let t = Instant::now();
        let mut by_resource: HashMap<String, Vec<MetricSeries>> = HashMap::new();
        for s in series {
            by_resource
                .entry(s.resource_id.clone())
                .or_default()
                .push(s);
        }
        for r in chunk {
            let series = by_resource.remove(&r.id).unwrap_or_default();
            let analysis = engine.analyze(r, &series, now);
            out.analysed += 1;
            if analysis.finding.is_actionable() {
                out.findings += 1;
            }
            out.recommendations.extend(analysis.recommendation);
        }
        analyse_ms += elapsed_ms(t);
        done += chunk.len() as u64;
        if let Some(t) = tracker.as_deref_mut() {
            t.progress(Stage::Analyse, done, total).await?;
        }
    }
    if let Some(t) = tracker {
        t.finish(StageOutcome {
            stage: Stage::Collect,
            ok: out.failed == 0,
            processed: total - out.failed,
            failed: out.failed,
            duration_ms: collect_ms,
            error: last_error,
        })
        .await?;
        t.finish(StageOutcome {
            stage: Stage::Analyse,
            ok: true,
            processed: out.analysed,
            failed: 0,
            duration_ms: analyse_ms,
            error: None,
        })
        .await?;
        t.finish(StageOutcome {
            stage: Stage::Recommend,
            ok: true,
            processed: out.recommendations.len() as u64,
            failed: 0,
            duration_ms: 0,
            error: None,
        })
        .await?;
    }
    Ok(out)
}
