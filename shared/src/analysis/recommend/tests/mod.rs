//! Tests of the recommendation engine: worked examples per service
//! (`services`), properties over generated series (`properties`), and the
//! dependency index against the scan it replaced (`dependencies`). The
//! helpers here build series and resources for all three.

mod dependencies;
mod discovered;
mod ebs;
mod judgement;
mod properties;
mod services;

use super::*;
use crate::analysis::default_thresholds;
use crate::analysis::evaluate::{evaluate_rule, Outcome};
use crate::analysis::pricing::GIB;
use crate::analysis::recommend::rank::round2;
use crate::analysis::trend::TrendDirection;
use crate::domain::metric::names;
use crate::domain::{Action, Aggregation, MetricPoint, Operator, Relation, ThresholdRule};
use proptest::prelude::*;

pub fn now() -> DateTime<Utc> {
    "2024-06-15T00:00:00Z".parse().unwrap()
}

/// Hourly points for the last `hours` hours before `now`, value by hour index
/// (0 = oldest).
pub fn hourly(
    id: &str,
    svc: Service,
    metric: &str,
    stat: &str,
    hours: i64,
    f: impl Fn(i64) -> f64,
) -> MetricSeries {
    every(3600, id, svc, metric, stat, hours, f)
}

/// Daily points for the last `days` days before `now`, value by day index.
fn daily_series(
    id: &str,
    svc: Service,
    metric: &str,
    stat: &str,
    days: i64,
    f: impl Fn(i64) -> f64,
) -> MetricSeries {
    every(86_400, id, svc, metric, stat, days, f)
}

/// `n` points `period` seconds apart, ending one period before `now`.
fn every(
    period: u32,
    id: &str,
    svc: Service,
    metric: &str,
    stat: &str,
    n: i64,
    f: impl Fn(i64) -> f64,
) -> MetricSeries {
    let step = chrono::Duration::seconds(i64::from(period));
    let start = now() - step * n as i32;
    MetricSeries {
        resource_id: id.into(),
        service: svc,
        metric: metric.into(),
        statistic: stat.into(),
        period_seconds: period,
        points: (0..n)
            .map(|i| MetricPoint {
                timestamp: start + step * i as i32,
                value: f(i),
            })
            .collect(),
    }
}

fn rule<'a>(set: &'a ThresholdSet, id: &str) -> &'a ThresholdRule {
    set.rules.iter().find(|r| r.id == id).unwrap()
}

fn res(svc: Service, id: &str, t: Option<&str>) -> Resource {
    let mut r = Resource::new(svc, id, "us-east-1");
    r.resource_type = t.map(str::to_string);
    r
}

/// EC2 with `low_days` Trusted Advisor-low days (the first ones) of 14.
fn ec2_series(id: &str, low_days: i64) -> Vec<MetricSeries> {
    let low = move |h: i64| h / 24 < low_days;
    vec![
        hourly(
            id,
            Service::Ec2,
            names::CPU_UTILIZATION,
            "Average",
            336,
            move |h| {
                if low(h) {
                    4.0 + (h % 3) as f64 * 0.1
                } else {
                    45.0
                }
            },
        ),
        hourly(
            id,
            Service::Ec2,
            names::CPU_UTILIZATION,
            "Maximum",
            336,
            move |h| if low(h) { 8.0 } else { 70.0 },
        ),
        hourly(id, Service::Ec2, names::NETWORK_IN, "Sum", 336, move |h| {
            if low(h) {
                100_000.0
            } else {
                5e8
            }
        }),
        hourly(id, Service::Ec2, names::NETWORK_OUT, "Sum", 336, move |h| {
            if low(h) {
                50_000.0
            } else {
                5e8
            }
        }),
    ]
}

fn lambda_series(id: &str, error_per_hour_on_day3: f64) -> Vec<MetricSeries> {
    vec![
        hourly(
            id,
            Service::Lambda,
            names::INVOCATIONS,
            "Sum",
            7 * 24,
            |_| 1000.0,
        ),
        hourly(
            id,
            Service::Lambda,
            names::ERRORS,
            "Sum",
            7 * 24,
            move |h| {
                if h / 24 == 3 {
                    error_per_hour_on_day3
                } else {
                    5.0
                }
            },
        ),
        hourly(
            id,
            Service::Lambda,
            names::DURATION,
            "Average",
            7 * 24,
            |_| 120.0,
        ),
    ]
}
