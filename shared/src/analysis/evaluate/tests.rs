use super::series::{preferred_codes, stat_code};
use super::*;
use crate::analysis::metrics::{preferred_period_statistics, MetricKind};
use crate::analysis::stats::Statistic;
use crate::domain::metric::names;
use crate::domain::{MetricPoint, Operator};

#[test]
fn preferred_codes_mirror_the_named_statistics() {
    for kind in [MetricKind::Gauge, MetricKind::Counter] {
        for stat in ["Average", "Maximum", "Minimum", "Sum", "SampleCount", "p99"] {
            let stat: Statistic = stat.parse().unwrap();
            let names: Vec<u8> = preferred_period_statistics(kind, stat)
                .iter()
                .map(|n| stat_code(n))
                .collect();
            assert_eq!(names, preferred_codes(kind, stat));
        }
    }
}

#[test]
fn margins_are_relative_and_signed() {
    assert_eq!(margin(Operator::LessThan, 5.0, 10.0, None), 0.5);
    assert_eq!(margin(Operator::LessThan, 15.0, 10.0, None), -0.5);
    assert_eq!(margin(Operator::GreaterThan, 11.0, 10.0, None), 0.1);
    assert_eq!(margin(Operator::GreaterThan, 3.0, 0.0, None), 1.0);
    // A bound at 0 puts no limit on the margin: only the distance to 10 counts.
    assert_eq!(margin(Operator::Between, 0.0, 0.0, Some(10.0)), 1.0);
    assert_eq!(margin(Operator::Between, 8.0, 0.0, Some(10.0)), 0.2);
    assert_eq!(margin(Operator::Equals, 0.0, 0.0, None), 1.0);
    assert!(holds(Operator::Equals, 1e-12, 0.0, None));
    assert!(!holds(Operator::Equals, 1e-6, 0.0, None));
    assert!(holds(Operator::Between, 10.0, 0.0, Some(10.0)));
    assert!(!holds(Operator::LessThan, 10.0, 10.0, None));
    assert!(!holds(Operator::Between, 1.0, 0.0, None));
}

#[test]
fn unsorted_series_are_sorted_before_use() {
    let now: DateTime<Utc> = "2024-06-15T00:00:00Z".parse().unwrap();
    let r = Resource::new(Service::Ec2, "i-1", "us-east-1");
    let mut points: Vec<MetricPoint> = (0..48)
        .map(|h| MetricPoint {
            timestamp: now - chrono::Duration::hours(48 - h),
            value: if h < 24 { 1.0 } else { 3.0 },
        })
        .collect();
    points.reverse();
    let s = vec![MetricSeries {
        resource_id: "i-1".into(),
        service: Service::Ec2,
        metric: names::CPU_UTILIZATION.into(),
        statistic: "Average".into(),
        period_seconds: 3600,
        points,
    }];
    let mut ctx = Ctx::new(&r, &s, now, &[], 14);
    assert_eq!(
        ctx.metric_stat(names::CPU_UTILIZATION, Statistic::Average, 1),
        Some(3.0)
    );
    assert_eq!(
        ctx.metric_stat(names::CPU_UTILIZATION, Statistic::Maximum, 2),
        Some(3.0)
    );
    assert_eq!(
        ctx.metric_stat(names::CPU_UTILIZATION, Statistic::Minimum, 2),
        Some(1.0)
    );
}
