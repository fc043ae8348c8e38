//! What the engine knows about CloudWatch metrics: their kind, unit, period,
//! whether CloudWatch omits them when nothing happened, the derived metrics the
//! rules may name, and the queries a collector must run for a threshold set.

use super::stats::Statistic;
use crate::domain::metric::{names, namespaces};
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
        namespaces::EC2,
        names::CPU_UTILIZATION,
        Gauge,
        Percent,
        HOUR,
        false
    ),
    def!(
        Ec2,
        namespaces::EC2,
        names::NETWORK_IN,
        Counter,
        Bytes,
        HOUR,
        false
    ),
    def!(
        Ec2,
        namespaces::EC2,
        names::NETWORK_OUT,
        Counter,
        Bytes,
        HOUR,
        false
    ),
    // Memory needs the CloudWatch agent; used for risk only when present.
    def!(
        Ec2,
        namespaces::CW_AGENT,
        names::MEM_USED_PERCENT,
        Gauge,
        Percent,
        HOUR,
        false
    ),
    def!(
        Rds,
        namespaces::RDS,
        names::CPU_UTILIZATION,
        Gauge,
        Percent,
        HOUR,
        false
    ),
    def!(
        Rds,
        namespaces::RDS,
        names::DATABASE_CONNECTIONS,
        Gauge,
        Count,
        HOUR,
        false
    ),
    def!(
        Rds,
        namespaces::RDS,
        names::FREEABLE_MEMORY,
        Gauge,
        Bytes,
        HOUR,
        false
    ),
    def!(
        ElastiCache,
        namespaces::ELASTICACHE,
        names::CPU_UTILIZATION,
        Gauge,
        Percent,
        HOUR,
        false
    ),
    def!(
        ElastiCache,
        namespaces::ELASTICACHE,
        names::DATABASE_MEMORY_USAGE_PERCENTAGE,
        Gauge,
        Percent,
        HOUR,
        false
    ),
    def!(
        ElastiCache,
        namespaces::ELASTICACHE,
        names::CURR_CONNECTIONS,
        Gauge,
        Count,
        HOUR,
        false
    ),
    def!(
        Lambda,
        namespaces::LAMBDA,
        names::INVOCATIONS,
        Counter,
        Count,
        HOUR,
        true
    ),
    def!(
        Lambda,
        namespaces::LAMBDA,
        names::ERRORS,
        Counter,
        Count,
        HOUR,
        true
    ),
    def!(
        Lambda,
        namespaces::LAMBDA,
        names::THROTTLES,
        Counter,
        Count,
        HOUR,
        true
    ),
    def!(
        Lambda,
        namespaces::LAMBDA,
        names::DURATION,
        Gauge,
        Milliseconds,
        HOUR,
        false
    ),
    // Lambda Insights: the share of configured memory used (max per period).
    def!(
        Lambda,
        namespaces::LAMBDA_INSIGHTS,
        names::INSIGHTS_MEMORY_UTILIZATION,
        Gauge,
        Percent,
        HOUR,
        false
    ),
    def!(
        Ecs,
        namespaces::ECS,
        names::CPU_UTILIZATION,
        Gauge,
        Percent,
        HOUR,
        false
    ),
    def!(
        Ecs,
        namespaces::ECS,
        names::MEMORY_UTILIZATION,
        Gauge,
        Percent,
        HOUR,
        false
    ),
    def!(
        S3,
        namespaces::S3,
        names::BUCKET_SIZE_BYTES,
        Gauge,
        Bytes,
        DAY,
        false,
        &[("StorageType", "StandardStorage")]
    ),
    def!(
        S3,
        namespaces::S3,
        names::NUMBER_OF_OBJECTS,
        Gauge,
        Count,
        DAY,
        false,
        &[("StorageType", "AllStorageTypes")]
    ),
    // Request metrics need a bucket metrics configuration named EntireBucket.
    def!(
        S3,
        namespaces::S3,
        names::ALL_REQUESTS,
        Counter,
        Count,
        DAY,
        true,
        &[("FilterId", "EntireBucket")]
    ),
    def!(
        S3,
        namespaces::S3,
        names::GET_REQUESTS,
        Counter,
        Count,
        DAY,
        true,
        &[("FilterId", "EntireBucket")]
    ),
    def!(
        DynamoDb,
        namespaces::DYNAMODB,
        names::CONSUMED_READ_CAPACITY_UNITS,
        Counter,
        Count,
        HOUR,
        true
    ),
    def!(
        DynamoDb,
        namespaces::DYNAMODB,
        names::CONSUMED_WRITE_CAPACITY_UNITS,
        Counter,
        Count,
        HOUR,
        true
    ),
    def!(
        DynamoDb,
        namespaces::DYNAMODB,
        names::PROVISIONED_READ_CAPACITY_UNITS,
        Gauge,
        Count,
        HOUR,
        false
    ),
    def!(
        DynamoDb,
        namespaces::DYNAMODB,
        names::PROVISIONED_WRITE_CAPACITY_UNITS,
        Gauge,
        Count,
        HOUR,
        false
    ),
    // Published only while the volume is attached: an unattached volume has
    // no series at all, which is why its rule reads the state instead.
    def!(
        Ebs,
        namespaces::EBS,
        names::VOLUME_READ_OPS,
        Counter,
        Count,
        HOUR,
        false
    ),
    def!(
        Ebs,
        namespaces::EBS,
        names::VOLUME_WRITE_OPS,
        Counter,
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
/// - `VolumeIOPS` (EBS) = (VolumeReadOps + VolumeWriteOps) in the period /
///   period seconds, per point; any statistic.
/// - `IopsUtilization` (EBS) = 100 x `VolumeIOPS` / the volume's provisioned
///   `iops` attribute, per point; any statistic.
/// - `Unattached` (EBS) = 1 for each hour of the horizon (from the volume's
///   `createdAt` when younger) while its `state` is `available` and it has no
///   `attachedTo`, except the hours it read or wrote (it was attached then);
///   0 for every hour of an attached volume. `Minimum equals 1` over a window
///   reads "unattached for the whole lookback"; a volume younger than the
///   lookback lacks the coverage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Derived {
    NetworkBytes,
    ErrorRate,
    GetRequestsPerGb,
    ReadCapacityUtilization,
    WriteCapacityUtilization,
    VolumeIops,
    IopsUtilization,
    Unattached,
}

impl Derived {
    pub const ALL: [Derived; 8] = [
        Derived::NetworkBytes,
        Derived::ErrorRate,
        Derived::GetRequestsPerGb,
        Derived::ReadCapacityUtilization,
        Derived::WriteCapacityUtilization,
        Derived::VolumeIops,
        Derived::IopsUtilization,
        Derived::Unattached,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Derived::NetworkBytes => names::NETWORK_BYTES,
            Derived::ErrorRate => names::ERROR_RATE,
            Derived::GetRequestsPerGb => names::GET_REQUESTS_PER_GB,
            Derived::ReadCapacityUtilization => names::READ_CAPACITY_UTILIZATION,
            Derived::WriteCapacityUtilization => names::WRITE_CAPACITY_UTILIZATION,
            Derived::VolumeIops => names::VOLUME_IOPS,
            Derived::IopsUtilization => names::IOPS_UTILIZATION,
            Derived::Unattached => names::UNATTACHED,
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
            Derived::VolumeIops | Derived::IopsUtilization | Derived::Unattached => Service::Ebs,
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
            Derived::NetworkBytes => &[(names::NETWORK_IN, "Sum"), (names::NETWORK_OUT, "Sum")],
            Derived::ErrorRate => &[(names::ERRORS, "Sum"), (names::INVOCATIONS, "Sum")],
            Derived::GetRequestsPerGb => &[
                (names::GET_REQUESTS, "Sum"),
                (names::BUCKET_SIZE_BYTES, "Average"),
            ],
            Derived::ReadCapacityUtilization => &[
                (names::CONSUMED_READ_CAPACITY_UNITS, "Sum"),
                (names::PROVISIONED_READ_CAPACITY_UNITS, "Average"),
            ],
            Derived::WriteCapacityUtilization => &[
                (names::CONSUMED_WRITE_CAPACITY_UNITS, "Sum"),
                (names::PROVISIONED_WRITE_CAPACITY_UNITS, "Average"),
            ],
            Derived::VolumeIops | Derived::IopsUtilization | Derived::Unattached => &[
                (names::VOLUME_READ_OPS, "Sum"),
                (names::VOLUME_WRITE_OPS, "Sum"),
            ],
        }
    }

    /// Computed point by point (any statistic) rather than from aggregates.
    pub fn is_pointwise(self) -> bool {
        matches!(
            self,
            Derived::ReadCapacityUtilization
                | Derived::WriteCapacityUtilization
                | Derived::VolumeIops
                | Derived::IopsUtilization
                | Derived::Unattached
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
            Derived::GetRequestsPerGb | Derived::VolumeIops | Derived::Unattached => Unit::Count,
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
        Service::Ebs => &[
            (names::VOLUME_READ_OPS, Sum),
            (names::VOLUME_WRITE_OPS, Sum),
        ],
        Service::Ec2 => &[
            (names::CPU_UTILIZATION, Average),
            (names::CPU_UTILIZATION, P),
            (names::MEM_USED_PERCENT, Maximum),
        ],
        Service::Rds => &[
            (names::CPU_UTILIZATION, P),
            (names::FREEABLE_MEMORY, Minimum),
        ],
        Service::ElastiCache => &[
            (names::CPU_UTILIZATION, P),
            (names::DATABASE_MEMORY_USAGE_PERCENTAGE, P),
        ],
        Service::Ecs => &[(names::CPU_UTILIZATION, P), (names::MEMORY_UTILIZATION, P)],
        Service::Lambda => &[(names::INVOCATIONS, Sum), (names::DURATION, Average)],
        Service::DynamoDb => &[
            (names::CONSUMED_READ_CAPACITY_UNITS, Sum),
            (names::CONSUMED_WRITE_CAPACITY_UNITS, Sum),
            (names::PROVISIONED_READ_CAPACITY_UNITS, Average),
            (names::PROVISIONED_WRITE_CAPACITY_UNITS, Average),
        ],
        Service::S3 => &[
            (names::BUCKET_SIZE_BYTES, Average),
            (names::NUMBER_OF_OBJECTS, Average),
        ],
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
        // Rules read whole UTC days ending at today's midnight; the
        // collection window ends at the last full hour, so one day more
        // covers the first of them whatever the hour.
        let days = match rule.aggregation {
            Aggregation::Window => rule.lookback_days + 1,
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
