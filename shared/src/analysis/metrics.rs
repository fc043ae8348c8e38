//! What the engine knows about CloudWatch metrics: their kind, unit, period,
//! whether CloudWatch omits them when nothing happened, the derived metrics the
//! rules may name, and the queries a collector must run for a threshold set.

use super::stats::Statistic;
use crate::domain::{Aggregation, Service, ThresholdSet};
use std::collections::BTreeSet;

/// How a metric's per-period values combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// A level (CPU %, connections, bytes stored): fetched as Average, and as
    /// Maximum where a rule looks at peaks.
    Gauge,
    /// A count of events (bytes sent, invocations): fetched as Sum.
    Counter,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Percent,
    Bytes,
    Count,
    Milliseconds,
}

/// A CloudWatch metric the engine knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricDef {
    pub service: Service,
    pub name: &'static str,
    pub namespace: &'static str,
    pub kind: MetricKind,
    pub unit: Unit,
    /// The period the collector should fetch, in seconds.
    pub period_seconds: u32,
    /// CloudWatch publishes no datapoint when the value would be zero (Lambda
    /// Invocations, S3 request metrics): a fetched but empty series means zero,
    /// and coverage cannot be judged from the number of points.
    pub sparse: bool,
    /// Dimensions besides the resource's own that select the right series.
    pub extra_dimensions: &'static [(&'static str, &'static str)],
}

const HOUR: u32 = 3600;
const DAY: u32 = 86_400;

macro_rules! def {
    ($svc:ident, $ns:expr, $name:expr, $kind:ident, $unit:ident, $period:expr, $sparse:expr) => {
        def!($svc, $ns, $name, $kind, $unit, $period, $sparse, &[])
    };
    ($svc:ident, $ns:expr, $name:expr, $kind:ident, $unit:ident, $period:expr, $sparse:expr, $dims:expr) => {
        MetricDef {
            service: Service::$svc,
            name: $name,
            namespace: $ns,
            kind: MetricKind::$kind,
            unit: Unit::$unit,
            period_seconds: $period,
            sparse: $sparse,
            extra_dimensions: $dims,
        }
    };
}

/// The metrics the engine knows, with their real CloudWatch names.
pub const METRICS: &[MetricDef] = &[
    def!(
        Ec2,
        "AWS/EC2",
        "CPUUtilization",
        Gauge,
        Percent,
        HOUR,
        false
    ),
    def!(Ec2, "AWS/EC2", "NetworkIn", Counter, Bytes, HOUR, false),
    def!(Ec2, "AWS/EC2", "NetworkOut", Counter, Bytes, HOUR, false),
    // Memory needs the CloudWatch agent; used for risk only when present.
    def!(
        Ec2,
        "CWAgent",
        "mem_used_percent",
        Gauge,
        Percent,
        HOUR,
        false
    ),
    def!(
        Rds,
        "AWS/RDS",
        "CPUUtilization",
        Gauge,
        Percent,
        HOUR,
        false
    ),
    def!(
        Rds,
        "AWS/RDS",
        "DatabaseConnections",
        Gauge,
        Count,
        HOUR,
        false
    ),
    def!(Rds, "AWS/RDS", "FreeableMemory", Gauge, Bytes, HOUR, false),
    def!(
        ElastiCache,
        "AWS/ElastiCache",
        "CPUUtilization",
        Gauge,
        Percent,
        HOUR,
        false
    ),
    def!(
        ElastiCache,
        "AWS/ElastiCache",
        "DatabaseMemoryUsagePercentage",
        Gauge,
        Percent,
        HOUR,
        false
    ),
    def!(
        ElastiCache,
        "AWS/ElastiCache",
        "CurrConnections",
        Gauge,
        Count,
        HOUR,
        false
    ),
    def!(
        Lambda,
        "AWS/Lambda",
        "Invocations",
        Counter,
        Count,
        HOUR,
        true
    ),
    def!(Lambda, "AWS/Lambda", "Errors", Counter, Count, HOUR, true),
    def!(
        Lambda,
        "AWS/Lambda",
        "Throttles",
        Counter,
        Count,
        HOUR,
        true
    ),
    def!(
        Lambda,
        "AWS/Lambda",
        "Duration",
        Gauge,
        Milliseconds,
        HOUR,
        false
    ),
    // Lambda Insights: the share of configured memory used (max per period).
    def!(
        Lambda,
        "LambdaInsights",
        "memory_utilization",
        Gauge,
        Percent,
        HOUR,
        false
    ),
    def!(
        Ecs,
        "AWS/ECS",
        "CPUUtilization",
        Gauge,
        Percent,
        HOUR,
        false
    ),
    def!(
        Ecs,
        "AWS/ECS",
        "MemoryUtilization",
        Gauge,
        Percent,
        HOUR,
        false
    ),
    def!(
        S3,
        "AWS/S3",
        "BucketSizeBytes",
        Gauge,
        Bytes,
        DAY,
        false,
        &[("StorageType", "StandardStorage")]
    ),
    def!(
        S3,
        "AWS/S3",
        "NumberOfObjects",
        Gauge,
        Count,
        DAY,
        false,
        &[("StorageType", "AllStorageTypes")]
    ),
    // Request metrics need a bucket metrics configuration named EntireBucket.
    def!(
        S3,
        "AWS/S3",
        "AllRequests",
        Counter,
        Count,
        DAY,
        true,
        &[("FilterId", "EntireBucket")]
    ),
    def!(
        S3,
        "AWS/S3",
        "GetRequests",
        Counter,
        Count,
        DAY,
        true,
        &[("FilterId", "EntireBucket")]
    ),
    def!(
        DynamoDb,
        "AWS/DynamoDB",
        "ConsumedReadCapacityUnits",
        Counter,
        Count,
        HOUR,
        true
    ),
    def!(
        DynamoDb,
        "AWS/DynamoDB",
        "ConsumedWriteCapacityUnits",
        Counter,
        Count,
        HOUR,
        true
    ),
    def!(
        DynamoDb,
        "AWS/DynamoDB",
        "ProvisionedReadCapacityUnits",
        Gauge,
        Count,
        HOUR,
        false
    ),
    def!(
        DynamoDb,
        "AWS/DynamoDB",
        "ProvisionedWriteCapacityUnits",
        Gauge,
        Count,
        HOUR,
        false
    ),
];

/// The definition of `metric` for `service`, if the engine knows it.
pub fn metric_def(service: Service, metric: &str) -> Option<&'static MetricDef> {
    METRICS
        .iter()
        .find(|d| d.service == service && d.name == metric)
}

/// Metrics computed from others. Rules name them like plain metrics.
///
/// - `NetworkBytes` (EC2) = NetworkIn + NetworkOut, statistic `Sum` only: the
///   Trusted Advisor "network I/O" of a day. Two separate conditions on In and
///   Out would let 2 x 5 MB through; the sum does not.
/// - `ErrorRate` (Lambda) = 100 x Sum(Errors) / Sum(Invocations) over the
///   window or day, statistic `Average` only (the invocation-weighted mean
///   rate). Undefined, so no data, where there were no invocations.
/// - `GetRequestsPerGB` (S3) = Sum(GetRequests) / (Average(BucketSizeBytes) /
///   2^30) over the window or day, statistic `Sum` only.
/// - `ReadCapacityUtilization` / `WriteCapacityUtilization` (DynamoDB) =
///   100 x (Consumed units in the period / period seconds) / provisioned units,
///   per point; any statistic. The provisioned level comes from the
///   `Provisioned*CapacityUnits` series, or else from the resource's
///   `provisionedReadCapacityUnits` / `provisionedWriteCapacityUnits`
///   attribute. Missing consumed points count as zero (the metric is sparse).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Derived {
    NetworkBytes,
    ErrorRate,
    GetRequestsPerGb,
    ReadCapacityUtilization,
    WriteCapacityUtilization,
}

impl Derived {
    pub const ALL: [Derived; 5] = [
        Derived::NetworkBytes,
        Derived::ErrorRate,
        Derived::GetRequestsPerGb,
        Derived::ReadCapacityUtilization,
        Derived::WriteCapacityUtilization,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Derived::NetworkBytes => "NetworkBytes",
            Derived::ErrorRate => "ErrorRate",
            Derived::GetRequestsPerGb => "GetRequestsPerGB",
            Derived::ReadCapacityUtilization => "ReadCapacityUtilization",
            Derived::WriteCapacityUtilization => "WriteCapacityUtilization",
        }
    }

    pub fn service(self) -> Service {
        match self {
            Derived::NetworkBytes => Service::Ec2,
            Derived::ErrorRate => Service::Lambda,
            Derived::GetRequestsPerGb => Service::S3,
            Derived::ReadCapacityUtilization | Derived::WriteCapacityUtilization => {
                Service::DynamoDb
            }
        }
    }

    pub fn parse(service: Service, metric: &str) -> Option<Derived> {
        Derived::ALL
            .into_iter()
            .find(|d| d.service() == service && d.name() == metric)
    }

    /// The CloudWatch metrics it is computed from, with the statistic fetched.
    pub fn components(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Derived::NetworkBytes => &[("NetworkIn", "Sum"), ("NetworkOut", "Sum")],
            Derived::ErrorRate => &[("Errors", "Sum"), ("Invocations", "Sum")],
            Derived::GetRequestsPerGb => &[("GetRequests", "Sum"), ("BucketSizeBytes", "Average")],
            Derived::ReadCapacityUtilization => &[
                ("ConsumedReadCapacityUnits", "Sum"),
                ("ProvisionedReadCapacityUnits", "Average"),
            ],
            Derived::WriteCapacityUtilization => &[
                ("ConsumedWriteCapacityUnits", "Sum"),
                ("ProvisionedWriteCapacityUnits", "Average"),
            ],
        }
    }

    /// Computed point by point (any statistic) rather than from aggregates.
    pub fn is_pointwise(self) -> bool {
        matches!(
            self,
            Derived::ReadCapacityUtilization | Derived::WriteCapacityUtilization
        )
    }

    /// The one statistic an aggregate-derived metric supports.
    pub fn only_statistic(self) -> Option<Statistic> {
        match self {
            Derived::NetworkBytes | Derived::GetRequestsPerGb => Some(Statistic::Sum),
            Derived::ErrorRate => Some(Statistic::Average),
            _ => None,
        }
    }

    pub fn unit(self) -> Unit {
        match self {
            Derived::NetworkBytes => Unit::Bytes,
            Derived::GetRequestsPerGb => Unit::Count,
            _ => Unit::Percent,
        }
    }
}

/// The unit of a metric name for display.
pub fn unit_of(service: Service, metric: &str) -> Option<Unit> {
    Derived::parse(service, metric)
        .map(Derived::unit)
        .or_else(|| metric_def(service, metric).map(|d| d.unit))
}

/// The per-period statistic a window statistic should read, best first. Peaks
/// of gauges read the per-period Maximum (an hourly average hides sub-hour
/// peaks a rightsizing must survive), falling back to the Average series when
/// only that was collected or pushed.
pub fn preferred_period_statistics(kind: MetricKind, stat: Statistic) -> &'static [&'static str] {
    match (kind, stat) {
        (MetricKind::Counter, _) => &["Sum"],
        (MetricKind::Gauge, Statistic::Maximum | Statistic::Percentile(_)) => {
            &["Maximum", "Average"]
        }
        (MetricKind::Gauge, Statistic::Minimum) => &["Minimum", "Average"],
        (MetricKind::Gauge, _) => &["Average"],
    }
}

/// One CloudWatch query a collector must run for every resource of a service.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MetricQuery {
    pub namespace: String,
    pub metric: String,
    /// The per-period statistic to request.
    pub statistic: String,
    pub period_seconds: u32,
    /// How far back to fetch, in days (the longest window that needs it; one
    /// more day for daily rules, which look at complete UTC days).
    pub lookback_days: u32,
    /// Dimensions besides the resource's own.
    pub extra_dimensions: Vec<(String, String)>,
}

/// The metrics the engine reads besides the rules: the utilisation score's
/// inputs and the memory measures used for risk.
pub fn auxiliary_metrics(service: Service) -> &'static [(&'static str, Statistic)] {
    use Statistic::*;
    const P: Statistic = Statistic::Percentile(super::score::SCORE_PERCENTILE);
    match service {
        Service::Ec2 => &[
            ("CPUUtilization", Average),
            ("CPUUtilization", P),
            ("mem_used_percent", Maximum),
        ],
        Service::Rds => &[("CPUUtilization", P), ("FreeableMemory", Minimum)],
        Service::ElastiCache => &[("CPUUtilization", P), ("DatabaseMemoryUsagePercentage", P)],
        Service::Ecs => &[("CPUUtilization", P), ("MemoryUtilization", P)],
        Service::Lambda => &[("Invocations", Sum), ("Duration", Average)],
        Service::DynamoDb => &[
            ("ConsumedReadCapacityUnits", Sum),
            ("ConsumedWriteCapacityUnits", Sum),
            ("ProvisionedReadCapacityUnits", Average),
            ("ProvisionedWriteCapacityUnits", Average),
        ],
        Service::S3 => &[("BucketSizeBytes", Average), ("NumberOfObjects", Average)],
    }
}

/// Everything the collector must fetch so that `set` can be evaluated for
/// resources of `service`: each rule's metrics (derived metrics expanded into
/// their CloudWatch components), with the per-period statistic and period,
/// plus the score and risk inputs of [`auxiliary_metrics`]. Sorted and free of
/// duplicates; a metric fetched for several windows is fetched once, for the
/// longest.
pub fn required_queries(set: &ThresholdSet, service: Service) -> Vec<MetricQuery> {
    let mut wanted: Vec<(String, String, u32)> = Vec::new();
    let mut longest = 14u32;
    for rule in set.rules.iter().filter(|r| r.service == service) {
        let days = match rule.aggregation {
            Aggregation::Window => rule.lookback_days,
            Aggregation::Daily => {
                rule.of_last_days
                    .unwrap_or(rule.lookback_days)
                    .max(rule.lookback_days)
                    + 1
            }
        };
        longest = longest.max(days);
        for c in &rule.conditions {
            if let Some(d) = Derived::parse(service, &c.metric) {
                for (m, s) in d.components() {
                    wanted.push((m.to_string(), s.to_string(), days));
                }
                continue;
            }
            let Ok(stat) = c.statistic.parse::<Statistic>() else {
                continue;
            };
            let kind = metric_def(service, &c.metric).map_or(MetricKind::Gauge, |d| d.kind);
            let period_stat = preferred_period_statistics(kind, stat)[0];
            wanted.push((c.metric.clone(), period_stat.to_string(), days));
        }
    }
    for (m, stat) in auxiliary_metrics(service) {
        let kind = metric_def(service, m).map_or(MetricKind::Gauge, |d| d.kind);
        let period_stat = preferred_period_statistics(kind, *stat)[0];
        wanted.push((m.to_string(), period_stat.to_string(), longest));
    }
    let mut out: BTreeSet<MetricQuery> = BTreeSet::new();
    for (metric, statistic, days) in wanted {
        let def = metric_def(service, &metric);
        let q = MetricQuery {
            namespace: def.map_or(service.namespace(), |d| d.namespace).to_string(),
            metric,
            statistic,
            period_seconds: def.map_or(HOUR, |d| d.period_seconds),
            lookback_days: days,
            extra_dimensions: def
                .map(|d| {
                    d.extra_dimensions
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect()
                })
                .unwrap_or_default(),
        };
        out.insert(q);
    }
    // Keep one query per (namespace, metric, statistic): the longest lookback.
    let mut result: Vec<MetricQuery> = Vec::new();
    for q in out {
        match result.iter_mut().find(|r| {
            r.namespace == q.namespace && r.metric == q.metric && r.statistic == q.statistic
        }) {
            Some(r) => r.lookback_days = r.lookback_days.max(q.lookback_days),
            None => result.push(q),
        }
    }
    result
}
