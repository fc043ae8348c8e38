//! Analysis: statistics, threshold evaluation, trends, scores, findings and
//! recommendations.
//!
//! Pure code: no I/O, no clock (callers pass `now`), no AWS types, no async.
//! The pipeline for one resource is
//! series -> [`Verdict`]s (one per rule of its service) -> options from the
//! action catalogue -> one [`Recommendation`](crate::domain::Recommendation)
//! (the best action, the others as alternatives). [`Engine`] compiles a
//! threshold set once and reuses its buffers across an estate; [`recommend`]
//! and [`analyze`] are the one-shot forms.

mod defaults;
mod evaluate;
mod metrics;
mod pricing;
mod recommend;
mod score;
mod stats;
mod tags;
mod trend;

pub use defaults::{default_thresholds, validate_set, MAX_LOOKBACK_DAYS};
pub use evaluate::{
    evaluate_rule, holds, margin, ConditionResult, DailyCount, Outcome, Verdict, EQUALS_EPSILON,
    MAX_CONDITIONS,
};
pub use metrics::{
    auxiliary_metrics, metric_def, preferred_period_statistics, required_queries, unit_of, Derived,
    MetricDef, MetricKind, MetricQuery, Unit, METRICS,
};
pub use pricing::{split_type, Platform, PriceCatalog, TypeSpec, Variant, HOURS_PER_MONTH};
pub use recommend::{
    analyze, confidence, format_value, order_actions, projection_risk, recommend, round2,
    sort_batches, Analysis, DependencyIndex, Engine, MetricTrend, BUSY_CPU_PERCENT,
    MAX_ALTERNATIVES, PROJECTION_PERCENTILE, TREND_PENALTY,
};
pub use score::{
    score_from_utilization, utilization_score, DEFAULT_HEADROOM, DEFAULT_TARGET, SCORE_DAYS,
    SCORE_PERCENTILE,
};
pub use stats::{
    daily, day_start, percentile, statistic, statistic_of_points, window, BatchSummary, DayValue,
    Percentile, Statistic, Summary, UnknownStatistic, DAY_SECONDS,
};
pub use tags::{TagPolicy, DEFAULT_EXCLUDE_TAG_KEY};
pub use trend::{
    daily_trend, mann_kendall, mann_kendall_with, Trend, TrendDirection, TrendScratch, TREND_ALPHA,
    TREND_MIN_POINTS, TREND_MIN_RELATIVE_CHANGE,
};
