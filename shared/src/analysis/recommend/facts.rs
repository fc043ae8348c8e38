//! Small readings of a resource and a rule that every service's cost model
//! shares, defined once so that the models cannot drift apart.

use crate::analysis::score::utilization_limit;
use crate::domain::{Resource, ThresholdRule};

/// The first of `keys` the inventory gives as a finite number (JSON numbers
/// and numeric strings both occur).
pub(super) fn attr_f64(r: &Resource, keys: &[&str]) -> Option<f64> {
    keys.iter().find_map(|k| {
        let v = r.attributes.get(*k)?;
        v.as_f64()
            .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
            .filter(|x: &f64| x.is_finite())
    })
}

pub(super) fn attr_str<'r>(r: &'r Resource, keys: &[&str]) -> Option<&'r str> {
    keys.iter().find_map(|k| r.attributes.get(*k)?.as_str())
}

/// The inventory's monthly cost, which carries discounts the catalogue's list
/// prices do not; ignored when it is not a usable amount.
pub(super) fn known_cost(r: &Resource) -> Option<f64> {
    r.monthly_cost_usd.filter(|c| c.is_finite() && *c >= 0.0)
}

/// The peak utilisation, in percent, a target must stay under for the rule.
pub(super) fn limit(rule: &ThresholdRule) -> f64 {
    utilization_limit(rule.headroom_percent)
}

/// The days a rule's peaks and totals are read over; never zero, so that a
/// malformed rule cannot divide by it.
pub(super) fn lookback(rule: &ThresholdRule) -> u32 {
    rule.lookback_days.max(1)
}

/// The larger of two optional peaks; one alone stands for both.
pub(super) fn max_of(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}
