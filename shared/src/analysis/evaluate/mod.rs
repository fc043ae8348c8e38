//! Threshold evaluation: one rule against one resource's series gives a
//! [`Verdict`] that carries the measured numbers and the margin to the
//! threshold.
//!
//! Semantics, fixed here once:
//! - **Windows** are whole UTC days, half-open: `[midnight - lookback_days,
//!   midnight)` where midnight starts `now`'s day, so the same data gives the
//!   same verdict whatever the hour a cycle runs (today, incomplete, is left
//!   to tomorrow's cycle). A CloudWatch point is stamped with the start of
//!   its period, so a point stamped at midnight belongs to the new day.
//! - **Days** are complete UTC days: the last `M` days are the `M` midnights
//!   before today's, today (incomplete) excluded.
//! - **Operators**: `less_than` and `greater_than` are strict; `equals` holds
//!   within `|v - t| <= 1e-9 * max(1, |t|)`; `between` is inclusive on both
//!   bounds (so "<= 10" is written `between 0 and 10`).
//! - **Coverage** of a metric is `present points / expected points`, with
//!   `expected = window seconds / period seconds` (period from the series,
//!   capped at 1). For sparse metrics (CloudWatch omits zero datapoints, e.g.
//!   Lambda Invocations) a fetched series covers the window whatever its
//!   length, shortened to the resource's age when its `createdAt` attribute
//!   says it is younger; a series never fetched covers nothing. A rule's
//!   coverage is the minimum over the metrics its conditions read. Below
//!   `min_coverage` the verdict is `InsufficientData`, whatever the values.
//! - **Daily rules** (`Aggregation::Daily`): a day qualifies when every
//!   condition holds on that day's statistic; the rule fires when at least
//!   `min_days` (default: all) of the last `of_last_days` (default:
//!   `lookback_days`) days qualify. A day without data never qualifies.
//! - **Margin** of a condition is signed and relative to the threshold:
//!   `(t - v) / |t|` for less_than, `(v - t) / |t|` for greater_than; for
//!   between the smaller of the relative distances to each bound (a bound at
//!   0, the floor of the non-negative metrics, puts no limit on it); 1 for an
//!   exact equals. A zero threshold gives +1/-1. Margins are clamped to
//!   `-1..=1`. A window verdict's margin is the smallest over its conditions;
//!   a daily verdict's is the mean of that and the day margin
//!   `(qualifying - min_days + 1) / (of_last_days - min_days + 1)`.

mod derived;
mod rules;
mod series;
#[cfg(test)]
mod tests;

pub(crate) use rules::CompiledRule;
pub use rules::{holds, margin};
pub(crate) use series::{Buffers, Ctx};

use crate::analysis::metrics::Derived;
use crate::domain::{
    Action, FindingKind, MetricSeries, Operator, Resource, Service, ThresholdRule,
};
use chrono::{DateTime, Utc};

/// Most days any window may span: CloudWatch's hourly retention (455 days)
/// plus one. Bounds the work an unvalidated rule can ask for.
const MAX_DAYS: u32 = 456;

/// Most conditions one rule may have.
pub const MAX_CONDITIONS: usize = 8;

/// Relative tolerance of `equals`.
pub const EQUALS_EPSILON: f64 = 1e-9;

/// What a rule concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Every condition held (on enough days, for a daily rule).
    Flagged,
    /// Enough data, and the rule did not fire.
    Clear,
    /// Not enough data to say anything; never turned into a recommendation.
    InsufficientData,
}

/// One condition's measurement.
#[derive(Debug, Clone, PartialEq)]
pub struct ConditionResult {
    pub metric: String,
    pub statistic: String,
    pub operator: Operator,
    pub threshold: f64,
    pub upper: Option<f64>,
    /// The statistic over the window. For a daily rule: the least favourable
    /// value among the qualifying days (the highest for less_than), or, when
    /// no day qualified, the most favourable among the days with data.
    pub measured: Option<f64>,
    pub holds: bool,
    /// Signed relative margin to the threshold, in `-1..=1`.
    pub margin: Option<f64>,
}

/// The day count of a daily rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DailyCount {
    pub qualifying_days: u32,
    pub days_with_data: u32,
    pub min_days: u32,
    pub of_last_days: u32,
}

/// The outcome of one rule for one resource, with the numbers behind it.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub rule_id: String,
    pub service: Service,
    pub finding: FindingKind,
    pub action: Action,
    pub outcome: Outcome,
    /// Share of expected data points present, `0..=1` (minimum over metrics).
    pub coverage: f64,
    pub min_coverage: f64,
    pub conditions: Vec<ConditionResult>,
    pub daily: Option<DailyCount>,
    /// Margin to the threshold (see the module doc), `-1..=1`.
    pub margin: f64,
    /// Why the rule could not be evaluated, when it was malformed.
    pub problem: Option<String>,
}

impl Verdict {
    pub fn is_flagged(&self) -> bool {
        self.outcome == Outcome::Flagged
    }
}

/// Evaluates one rule against a resource's series (any order; series of other
/// resources are ignored).
pub fn evaluate_rule(
    rule: &ThresholdRule,
    resource: &Resource,
    series: &[MetricSeries],
    now: DateTime<Utc>,
) -> Verdict {
    let derived: Vec<Derived> = rule
        .conditions
        .iter()
        .filter_map(|c| Derived::parse(rule.service, &c.metric))
        .filter(|d| d.is_pointwise())
        .collect();
    let mut ctx = Ctx::new(
        resource,
        series,
        now,
        &derived,
        rule.lookback_days.max(rule.of_last_days.unwrap_or(0)),
    );
    let compiled = CompiledRule::compile(rule);
    compiled.evaluate(&mut ctx)
}
