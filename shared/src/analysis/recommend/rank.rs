//! Ranking: which flagged rule's option becomes the recommendation, and the
//! confidence and risk figures the ranking and the reader rely on.

use super::options::Opt;
use crate::analysis::evaluate::Verdict;
use crate::domain::{Action, FindingKind, ThresholdRule};
use std::cmp::Ordering;

/// A flagged rule with its options, preferred first.
pub(super) struct Candidate<'v> {
    pub verdict: &'v Verdict,
    pub rule: &'v ThresholdRule,
    /// Position of the rule among its service's rules: the last tie-break.
    pub order: usize,
    pub options: Vec<Opt>,
    /// The resource's current monthly cost, when known.
    pub current: Option<f64>,
    pub confidence: f64,
    pub trend_note: Option<String>,
}

/// Reliability findings first (cutting cost on a failing or starved resource
/// is unsafe), then idle: a resource doing nothing is removed, not resized,
/// whatever the prices say (a missing price must not let a rightsizing
/// outrank it on confidence alone).
fn class(f: FindingKind) -> u8 {
    match f {
        FindingKind::Erroring | FindingKind::UnderProvisioned => 2,
        FindingKind::Idle => 1,
        _ => 0,
    }
}

fn finding_order(f: FindingKind) -> u8 {
    match f {
        FindingKind::Erroring => 0,
        FindingKind::UnderProvisioned => 1,
        FindingKind::Idle => 2,
        FindingKind::Underutilized => 3,
        FindingKind::OverProvisioned => 4,
        _ => 5,
    }
}

fn expected_value(c: &Candidate<'_>) -> f64 {
    let o = &c.options[0];
    // A cost increase ranks as no saving: reliability findings are ranked
    // by class, not by what they cost.
    let s = o
        .savings
        .as_ref()
        .ok()
        .map_or(0.0, |s| cap(*s, c.current).max(0.0));
    s * c.confidence * (1.0 - f64::from(o.risk.min(4)) / 8.0)
}

pub(super) fn compare_candidates(a: &Candidate<'_>, b: &Candidate<'_>) -> Ordering {
    class(b.verdict.finding)
        .cmp(&class(a.verdict.finding))
        .then_with(|| expected_value(b).total_cmp(&expected_value(a)))
        .then_with(|| b.confidence.total_cmp(&a.confidence))
        .then_with(|| a.options[0].risk.cmp(&b.options[0].risk))
        .then_with(|| finding_order(a.verdict.finding).cmp(&finding_order(b.verdict.finding)))
        .then_with(|| a.order.cmp(&b.order))
}

/// Confidence from coverage, margin and the trend factor (see the module doc).
pub fn confidence(coverage: f64, margin: f64, trend_factor: f64) -> f64 {
    let cov = if coverage.is_finite() {
        coverage.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let m = if margin.is_finite() {
        margin.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let t = if trend_factor.is_finite() {
        trend_factor.clamp(0.0, 1.0)
    } else {
        0.0
    };
    round2(cov * (0.6 + 0.4 * m) * t)
}

/// Risk 0..=4 of a projected peak utilisation against the limit `100 - headroom`.
pub fn projection_risk(projected: Option<f64>, limit: f64) -> u8 {
    let Some(p) = projected.filter(|p| p.is_finite()) else {
        return 2;
    };
    let l = if limit.is_finite() {
        limit.clamp(1.0, 100.0)
    } else {
        80.0
    };
    if p <= 0.5 * l {
        0
    } else if p <= 0.75 * l {
        1
    } else if p <= l {
        2
    } else if p <= 100.0 {
        3
    } else {
        4
    }
}

pub(super) fn removal_risk(action: Action, finding: FindingKind, related: bool) -> u8 {
    let base: u8 = if action == Action::Stop { 0 } else { 1 };
    (base + u8::from(finding != FindingKind::Idle) + u8::from(related)).min(4)
}

/// A saving never exceeds what the resource costs now; a change that costs
/// more stays negative (a scale-up states its extra cost, not 0.00).
pub(super) fn cap(s: f64, current: Option<f64>) -> f64 {
    let s = if s.is_finite() { s } else { 0.0 };
    match current {
        Some(c) if c.is_finite() && c >= 0.0 => s.min(c),
        _ => s,
    }
}

/// Rounded to cents: the precision savings are stated in.
pub fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}
