//! From verdicts to recommendations: the action catalogue per service, savings
//! from the price catalogue, confidence, risk, the reason text, alternatives
//! and dependencies.
//!
//! **Savings.** The current monthly cost is the inventory's `monthlyCostUsd`
//! when given (it carries discounts), else the catalogue's on-demand price x
//! 730 h (Lambda: GB-seconds and requests from Invocations and Duration;
//! DynamoDB: provisioned RCU/WCU-hours; S3: stored GB x class price; ECS:
//! Fargate vCPU- and GB-hours). A target's cost is the current cost scaled by
//! the catalogue's price ratio target/current. Neither known: `None`, and the
//! reason says which price is missing and why ("no price known for ...").
//! Removal saves the whole cost (a stop: the instance hours; storage bills
//! on), except a Trusted Advisor-style stop on low days, which saves the
//! share of underutilised days (qualifying days / days looked at), as
//! Trusted Advisor counts "on-demand rate x underutilised time". Savings
//! never exceed the current cost; a change that costs more (scale-up, more
//! memory, more tasks) is a negative saving and its reason says "costs ...
//! more".
//!
//! **Confidence** = `coverage x (0.6 + 0.4 x clamp(margin, 0, 1)) x trend`,
//! rounded to 0.01, where coverage and margin come from the verdict (see
//! `evaluate`) and `trend` is 0.75 when a primary metric's daily means trend
//! against the action (rising before a reduction, falling before a scale-up,
//! Mann-Kendall at 5%), else 1. Full data far from the threshold gives 1; full
//! data on the threshold gives 0.6.
//!
//! **Risk** (0 very low .. 4 very high) follows Compute Optimizer: project the
//! p99.5 utilisation of every known dimension (CPU by vCPU ratio, memory by
//! memory ratio; network is not projected because the catalogue has no
//! bandwidth figures) onto the target and take the maximum `p`. With the
//! rule's headroom `h` (20% by default) and limit `L = 100 - h`: `p <= L/2`
//! -> 0, `<= 3L/4` -> 1, `<= L` -> 2, `<= 100` -> 3, above -> 4. No dimension
//! known -> 2. A change of CPU architecture (EC2 or Lambda to Graviton) adds 1.
//! Removals (stop, terminate, delete): stop 0, terminate/delete 1, plus 1 when
//! the resource was not idle but only underutilised, plus 1 when it has
//! relations. Storage-class moves: Intelligent-Tiering 0, Standard-IA 1,
//! Glacier Instant Retrieval 2, Deep Archive 3, deletion 4. Investigating
//! errors changes nothing: 0.
//!
//! **Choosing among rules.** When several rules fire for one resource the
//! engine keeps one recommendation: reliability findings (erroring,
//! under-provisioned) come first, since cutting cost on a failing or starved
//! resource is unsafe; then the highest risk-adjusted expected saving,
//! `savings x confidence x (1 - risk / 8)`; ties go to higher confidence, lower
//! risk, the stronger finding (idle before underutilised before
//! over-provisioned) and the rule's order in the set. Every other option of
//! every firing rule becomes an alternative with its own savings and risk.

mod dependencies;
mod engine;
mod facts;
mod guard;
mod options;
mod rank;
#[cfg(test)]
mod tests;
mod text;

pub use dependencies::{order_actions, sort_batches, DependencyIndex};
pub use engine::Engine;
pub use guard::BUSY_CPU_PERCENT;
pub use rank::{confidence, projection_risk, round2};
pub use text::format_value;

use super::evaluate::Verdict;
use super::stats::Percentile;
use super::trend::Trend;
use crate::domain::{FindingKind, MetricSeries, Recommendation, Resource, Service, ThresholdSet};
use chrono::{DateTime, Utc};

/// Percentile used to project utilisation onto a target (Compute Optimizer's default).
pub const PROJECTION_PERCENTILE: Percentile = Percentile::P99_5;
/// Confidence factor when the trend runs against the action.
pub const TREND_PENALTY: f64 = 0.75;
/// Most alternatives kept on one recommendation.
pub const MAX_ALTERNATIVES: usize = 6;

/// A trend of one metric's daily means.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricTrend {
    pub metric: String,
    pub trend: Trend,
}

/// Everything the engine concluded about one resource.
#[derive(Debug, Clone, PartialEq)]
pub struct Analysis {
    pub resource_id: String,
    pub service: Service,
    /// The finding of the recommendation; else `optimized` when some rule had
    /// enough data, else `insufficient_data`.
    pub finding: FindingKind,
    pub verdicts: Vec<Verdict>,
    pub utilization_score: Option<u8>,
    pub trends: Vec<MetricTrend>,
    pub recommendation: Option<Recommendation>,
    /// Tagged to be left alone (`finops:exclude=true`): not evaluated.
    pub excluded: bool,
}

/// Analyses `resource` against `set` and returns at most one recommendation
/// (the best action; the others are its alternatives). Insufficient data never
/// yields one. `series` are the resource's series, points ascending (any
/// series naming another resource is ignored); a sparse metric that was
/// fetched but came back empty must still be passed, as an empty series,
/// since "no datapoint" means zero for it.
pub fn recommend(
    resource: &Resource,
    series: &[MetricSeries],
    set: &ThresholdSet,
    now: DateTime<Utc>,
) -> Vec<Recommendation> {
    Engine::new(set).recommend(resource, series, now)
}

/// The full analysis of one resource (verdicts, score, trends, recommendation).
pub fn analyze(
    resource: &Resource,
    series: &[MetricSeries],
    set: &ThresholdSet,
    now: DateTime<Utc>,
) -> Analysis {
    Engine::new(set).analyze(resource, series, now)
}
