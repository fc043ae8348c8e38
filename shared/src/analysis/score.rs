//! The utilisation score: one deterministic number, 0..=100, for how well a
//! resource's capacity matches its load.
//!
//! Formula. For each primary utilisation metric of the service take its p95
//! over the last 14 days (in percent of capacity); the binding one, `u`, is the
//! highest (a memory-bound cache is well used even at 5% CPU). With the
//! service's target `T = 100 - headroom` (80 by default):
//!
//! - `u <= T`: `score = round(100 * u / T)`: idle capacity costs points;
//! - `u >  T`: `score = round(100 * (100 - u) / (100 - T))`: eating into the
//!   headroom costs points too, down to 0 at saturation.
//!
//! So 100 means "p95 exactly at the target", 0 means idle or saturated.
//! Primary metrics: EC2 CPUUtilization (and `mem_used_percent` when the agent
//! publishes it); RDS CPUUtilization and memory used (`1 - min FreeableMemory
//! / instance memory`, when the type is known); ElastiCache CPUUtilization and
//! DatabaseMemoryUsagePercentage; ECS CPUUtilization and MemoryUtilization;
//! Lambda Insights `memory_utilization`; DynamoDB read and write capacity
//! utilisation. S3 has no capacity to fill: no score.

use super::stats::Percentile;

/// The percentile the score reads.
pub const SCORE_PERCENTILE: Percentile = Percentile::P95;

/// Days the score looks back.
pub const SCORE_DAYS: u32 = 14;

/// Headroom when a rule does not set one, in percent.
pub const DEFAULT_HEADROOM: f64 = 20.0;

/// Default target utilisation (100 - the default 20% headroom).
pub const DEFAULT_TARGET: f64 = 100.0 - DEFAULT_HEADROOM;

/// The utilisation, in percent, that keeps `headroom` (default
/// [`DEFAULT_HEADROOM`]) free: the score's target and the limit a
/// rightsizing target's projected peak must stay under are the same number.
pub(crate) fn utilization_limit(headroom: Option<f64>) -> f64 {
    100.0 - headroom.unwrap_or(DEFAULT_HEADROOM)
}

/// The score of a binding utilisation `u` (percent) against target `target`.
pub fn score_from_utilization(u: f64, target: f64) -> u8 {
    if !u.is_finite() {
        return 0;
    }
    let t = if target.is_finite() {
        target.clamp(1.0, 99.0)
    } else {
        DEFAULT_TARGET
    };
    let u = u.max(0.0);
    let s = if u <= t {
        100.0 * u / t
    } else {
        100.0 * (100.0 - u).max(0.0) / (100.0 - t)
    };
    s.round().clamp(0.0, 100.0) as u8
}

/// The score of several utilisations: the binding (highest) one decides.
/// `None` when there is none.
pub fn utilization_score(utilizations: &[f64], target: f64) -> Option<u8> {
    let u = utilizations
        .iter()
        .copied()
        .filter(|u| u.is_finite())
        .fold(None, |m: Option<f64>, u| Some(m.map_or(u, |m| m.max(u))))?;
    Some(score_from_utilization(u, target))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn score_peaks_at_the_target() {
        assert_eq!(score_from_utilization(80.0, 80.0), 100);
        assert_eq!(score_from_utilization(40.0, 80.0), 50);
        assert_eq!(score_from_utilization(0.0, 80.0), 0);
        assert_eq!(score_from_utilization(90.0, 80.0), 50);
        assert_eq!(score_from_utilization(100.0, 80.0), 0);
        assert_eq!(score_from_utilization(150.0, 80.0), 0);
        assert_eq!(utilization_score(&[5.0, 60.0], 80.0), Some(75));
        assert_eq!(utilization_score(&[], 80.0), None);
        assert_eq!(SCORE_PERCENTILE.milli(), 95_000);
    }

    proptest! {
        #[test]
        fn score_is_deterministic_and_bounded(u in prop::num::f64::ANY, t in prop::num::f64::ANY) {
            let a = score_from_utilization(u, t);
            prop_assert_eq!(a, score_from_utilization(u, t));
            prop_assert!(a <= 100);
        }

        #[test]
        fn score_rises_towards_the_target(a in 0.0f64..80.0, b in 0.0f64..80.0) {
            let (lo, hi) = (a.min(b), a.max(b));
            prop_assert!(score_from_utilization(lo, 80.0) <= score_from_utilization(hi, 80.0));
        }
    }
}
