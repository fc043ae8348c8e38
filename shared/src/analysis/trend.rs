//! Trend detection: the Mann-Kendall test with Sen's slope.
//!
//! Method. For values `x_1..x_n` at equal steps, `S = sum over i<j of
//! sign(x_j - x_i)`. Under "no trend", `S` is approximately normal with mean 0
//! and variance `(n(n-1)(2n+5) - sum over tie groups of t(t-1)(2t+5)) / 18`.
//! The statistic `Z = (S - sign(S)) / sqrt(Var S)` (continuity-corrected) gives
//! the two-sided p-value `erfc(|Z| / sqrt 2)`. The trend is **increasing** or
//! **decreasing** (by the sign of `S`) when `p < 0.05` *and* the change Sen's
//! slope implies over the span, `|slope| * (n - 1)`, is at least 1% of the
//! median level (so a statistically sure drift of a hair is still "stable");
//! otherwise **stable**. Sen's slope is the median of the pairwise slopes
//! `(x_j - x_i) / (j - i)`, robust to outliers. At least 4 values are needed.
//!
//! The engine applies it to **daily means** (UTC days), not to hourly points:
//! the daily cycle of hourly data breaks the test's independence assumption,
//! and 14 daily values cost 91 pairs instead of 56,280.

use super::stats::{daily, Statistic};
use crate::domain::MetricSeries;
use chrono::{DateTime, Utc};

/// Significance level of the two-sided test.
pub const TREND_ALPHA: f64 = 0.05;
/// Smallest change over the span, relative to the median, worth a direction.
pub const TREND_MIN_RELATIVE_CHANGE: f64 = 0.01;
/// Fewest values the test is run on.
pub const TREND_MIN_POINTS: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TrendDirection {
    Increasing,
    Decreasing,
    Stable,
}

impl TrendDirection {
    pub fn as_str(self) -> &'static str {
        match self {
            TrendDirection::Increasing => "increasing",
            TrendDirection::Decreasing => "decreasing",
            TrendDirection::Stable => "stable",
        }
    }
}

/// The result of the test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Trend {
    pub direction: TrendDirection,
    pub n: usize,
    pub s: i64,
    pub z: f64,
    pub p_value: f64,
    /// Sen's slope, per step (per day for daily means).
    pub slope: f64,
    /// Sen's slope relative to the median level, per step.
    pub relative_slope: Option<f64>,
}

/// Mann-Kendall test with Sen's slope over equally spaced values (non-finite
/// values are dropped). `None` with fewer than [`TREND_MIN_POINTS`] values.
pub fn mann_kendall(values: &[f64]) -> Option<Trend> {
    mann_kendall_with(values, &mut TrendScratch::default())
}

/// Buffers [`mann_kendall_with`] reuses between calls.
#[derive(Debug, Default)]
pub struct TrendScratch {
    x: Vec<f64>,
    slopes: Vec<f64>,
    sorted: Vec<f64>,
}

/// [`mann_kendall`] without allocating once the buffers have grown: the
/// engine runs it for a few metrics of every resource.
pub fn mann_kendall_with(values: &[f64], scratch: &mut TrendScratch) -> Option<Trend> {
    let TrendScratch { x, slopes, sorted } = scratch;
    x.clear();
    x.extend(values.iter().copied().filter(|v| v.is_finite()));
    let n = x.len();
    if n < TREND_MIN_POINTS {
        return None;
    }
    let mut s: i64 = 0;
    slopes.clear();
    for i in 0..n {
        for j in i + 1..n {
            let d = x[j] - x[i];
            s += i64::from(d > 0.0) - i64::from(d < 0.0);
            slopes.push(d / (j - i) as f64);
        }
    }
    let nf = n as f64;
    let mut var = nf * (nf - 1.0) * (2.0 * nf + 5.0);
    sorted.clear();
    sorted.extend_from_slice(x);
    sorted.sort_unstable_by(f64::total_cmp);
    let mut i = 0;
    while i < n {
        let mut j = i + 1;
        while j < n && sorted[j] == sorted[i] {
            j += 1;
        }
        let t = (j - i) as f64;
        if t > 1.0 {
            var -= t * (t - 1.0) * (2.0 * t + 5.0);
        }
        i = j;
    }
    var /= 18.0;
    let z = if var <= 0.0 || s == 0 {
        0.0
    } else {
        (s - s.signum()) as f64 / var.sqrt()
    };
    let p_value = erfc(z.abs() / std::f64::consts::SQRT_2).clamp(0.0, 1.0);
    let slope = median(slopes).unwrap_or(0.0);
    // Already sorted for the tie count.
    let level = if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    };
    let relative_slope = (level.abs() > 1e-12).then(|| slope / level.abs());
    let change = slope.abs() * (nf - 1.0);
    let material = if level.abs() > 1e-12 {
        change >= TREND_MIN_RELATIVE_CHANGE * level.abs()
    } else {
        change > 0.0
    };
    let direction = if p_value < TREND_ALPHA && material {
        if s > 0 {
            TrendDirection::Increasing
        } else {
            TrendDirection::Decreasing
        }
    } else {
        TrendDirection::Stable
    };
    Some(Trend {
        direction,
        n,
        s,
        z,
        p_value,
        slope,
        relative_slope,
    })
}

/// The trend of a series' daily means over the last `days` complete UTC days.
pub fn daily_trend(series: &MetricSeries, now: DateTime<Utc>, days: u32) -> Option<Trend> {
    let means: Vec<f64> = daily(&series.points, Statistic::Average, now, days)
        .into_iter()
        .filter_map(|d| d.value)
        .collect();
    mann_kendall(&means)
}

fn median(v: &mut [f64]) -> Option<f64> {
    let n = v.len();
    if n == 0 {
        return None;
    }
    let mid = n / 2;
    let (lower, m, _) = v.select_nth_unstable_by(mid, f64::total_cmp);
    let m = *m;
    if n % 2 == 1 {
        return Some(m);
    }
    let below = lower.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    Some((below + m) / 2.0)
}

/// Complementary error function (Abramowitz & Stegun 7.1.26, |error| < 1.5e-7).
fn erfc(x: f64) -> f64 {
    if x < 0.0 {
        return 2.0 - erfc(-x);
    }
    let t = 1.0 / (1.0 + 0.327_591_1 * x);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    poly * (-x * x).exp()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::metric::names;
    use crate::domain::{MetricPoint, Service};
    use proptest::prelude::*;

    #[test]
    fn erfc_matches_known_values() {
        assert!((erfc(0.0) - 1.0).abs() < 1e-6);
        assert!((erfc(1.0) - 0.157_299_207).abs() < 1e-6);
        assert!((erfc(1.959_964 / std::f64::consts::SQRT_2) - 0.05).abs() < 1e-5);
    }

    #[test]
    fn rising_falling_and_flat() {
        let rising: Vec<f64> = (0..14)
            .map(|d| 20.0 + 2.0 * d as f64 + if d % 3 == 0 { 1.5 } else { 0.0 })
            .collect();
        let t = mann_kendall(&rising).unwrap();
        assert_eq!(t.direction, TrendDirection::Increasing);
        assert!((t.slope - 2.0).abs() < 0.5, "{}", t.slope);
        assert!(t.p_value < 0.001);

        let falling: Vec<f64> = rising.iter().rev().copied().collect();
        let t = mann_kendall(&falling).unwrap();
        assert_eq!(t.direction, TrendDirection::Decreasing);
        assert!(t.slope < -1.5);

        let flat: Vec<f64> = (0..14)
            .map(|d| 50.0 + [0.3, -0.2, 0.1, -0.4, 0.2][d % 5])
            .collect();
        assert_eq!(
            mann_kendall(&flat).unwrap().direction,
            TrendDirection::Stable
        );
        let constant = [7.0; 14];
        let t = mann_kendall(&constant).unwrap();
        assert_eq!(
            (t.direction, t.z, t.slope),
            (TrendDirection::Stable, 0.0, 0.0)
        );
    }

    #[test]
    fn a_significant_but_negligible_drift_is_stable() {
        let v: Vec<f64> = (0..14).map(|d| 100.0 + 0.0001 * d as f64).collect();
        let t = mann_kendall(&v).unwrap();
        assert!(t.p_value < 0.05);
        assert_eq!(t.direction, TrendDirection::Stable);
    }

    #[test]
    fn known_s_and_variance_with_ties() {
        // pairs: (1,2)+ (1,2)+ (1,3)+ (2,2)0 (2,3)+ (2,3)+ -> S = 5
        let t = mann_kendall(&[1.0, 2.0, 2.0, 3.0]).unwrap();
        assert_eq!(t.s, 5);
        // Var = (4*3*13 - 2*1*9)/18 = (156 - 18)/18
        let var: f64 = 138.0 / 18.0;
        assert!((t.z - 4.0 / var.sqrt()).abs() < 1e-12);
        assert!(mann_kendall(&[1.0, 2.0, 3.0]).is_none());
    }

    #[test]
    fn daily_trend_of_hourly_series() {
        let now: DateTime<Utc> = "2024-05-15T00:00:00Z".parse().unwrap();
        let start = now - chrono::Duration::days(14);
        let points = (0..336)
            .map(|h| MetricPoint {
                timestamp: start + chrono::Duration::hours(h),
                value: 10.0
                    + h as f64 * 0.1
                    + 5.0 * ((h % 24) as f64 / 24.0 * std::f64::consts::TAU).sin(),
            })
            .collect();
        let s = MetricSeries {
            resource_id: "i-1".into(),
            service: Service::Ec2,
            metric: names::CPU_UTILIZATION.into(),
            statistic: "Average".into(),
            period_seconds: 3600,
            points,
        };
        let t = daily_trend(&s, now, 14).unwrap();
        assert_eq!(t.n, 14);
        assert_eq!(t.direction, TrendDirection::Increasing);
        assert!((t.slope - 2.4).abs() < 0.01, "{}", t.slope);
    }

    proptest! {
        #[test]
        fn reversing_flips_the_direction(v in prop::collection::vec(0.0f64..100.0, 4..40)) {
            let a = mann_kendall(&v).unwrap();
            let r: Vec<f64> = v.iter().rev().copied().collect();
            let b = mann_kendall(&r).unwrap();
            prop_assert_eq!(a.s, -b.s);
            let flipped = match a.direction {
                TrendDirection::Increasing => TrendDirection::Decreasing,
                TrendDirection::Decreasing => TrendDirection::Increasing,
                TrendDirection::Stable => TrendDirection::Stable,
            };
            prop_assert_eq!(b.direction, flipped);
        }
    }
}
