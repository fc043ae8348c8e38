//! A synthetic estate for the demo, `make dev` and benchmarks: resources of
//! all seven services with inventory facts, and the metric series the default
//! thresholds read (taken from `required_queries`, so the two never drift).
//!
//! Each resource gets a profile; values follow it with a daily cycle and
//! deterministic noise, so runs are reproducible.

use crate::seed::SeriesSeed;
use chrono::{DateTime, Duration, DurationRound, Utc};
use serde_json::json;
use shared::analysis::{required_queries, MetricQuery};
use shared::collector::dimensions_in;
use shared::domain::metric::{names, namespaces};
use shared::domain::{Relation, Resource, Service, ThresholdSet};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    Idle,
    Oversized,
    Healthy,
    Hot,
    Erroring,
}

pub struct Estate {
    pub resources: Vec<Resource>,
    pub series: Vec<SeriesSeed>,
}

/// Per service: how many resources, and the profile mix (cycled).
pub const DEMO_MIX: [(Service, usize); 8] = [
    (Service::Ec2, 60),
    (Service::Ebs, 30),
    (Service::Rds, 30),
    (Service::ElastiCache, 20),
    (Service::Lambda, 40),
    (Service::Ecs, 20),
    (Service::S3, 15),
    (Service::DynamoDb, 20),
];

pub(crate) fn profile_for(service: Service, i: usize) -> Profile {
    use Profile::*;
    let cycle: &[Profile] = match service {
        Service::Lambda => &[Healthy, Idle, Erroring, Oversized, Healthy],
        _ => &[Healthy, Idle, Oversized, Healthy, Oversized, Hot, Healthy],
    };
    cycle[i % cycle.len()]
}

/// A deterministic value in [0, 1) for (seed, i).
fn noise(seed: u64, i: u64) -> f64 {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ i.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 31;
    x = x.wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 29;
    (x >> 11) as f64 / (1u64 << 53) as f64
}

/// The level of a metric for a profile, before the daily cycle and noise.
fn level(metric: &str, p: Profile) -> f64 {
    use Profile::*;
    match (metric, p) {
        (names::CPU_UTILIZATION, Idle) => 1.0,
        (names::CPU_UTILIZATION, Oversized) => 12.0,
        (names::CPU_UTILIZATION, Healthy) => 55.0,
        (names::CPU_UTILIZATION, Hot) => 88.0,
        (names::CPU_UTILIZATION, Erroring) => 40.0,
        (names::NETWORK_IN | names::NETWORK_OUT, Idle) => 20_000.0,
        (names::NETWORK_IN | names::NETWORK_OUT, _) => 40_000_000.0,
        (names::DATABASE_CONNECTIONS, Idle) => 0.0,
        (names::DATABASE_CONNECTIONS, _) => 35.0,
        (names::FREEABLE_MEMORY, _) => 2.0e9,
        (names::CURR_CONNECTIONS, Idle) => 0.0,
        (names::CURR_CONNECTIONS, _) => 60.0,
        (names::DATABASE_MEMORY_USAGE_PERCENTAGE, Oversized | Idle) => 15.0,
        (names::DATABASE_MEMORY_USAGE_PERCENTAGE, Hot) => 93.0,
        (names::DATABASE_MEMORY_USAGE_PERCENTAGE, _) => 62.0,
        (names::MEMORY_UTILIZATION, Oversized | Idle) => 14.0,
        (names::MEMORY_UTILIZATION, Hot) => 92.0,
        (names::MEMORY_UTILIZATION, _) => 64.0,
        (names::INVOCATIONS, Idle) => 0.0,
        (names::INVOCATIONS, _) => 400.0,
        (names::ERRORS, Erroring) => 90.0,
        (names::ERRORS, _) => 0.4,
        (names::THROTTLES, _) => 0.0,
        (names::DURATION, _) => 180.0,
        (names::INSIGHTS_MEMORY_UTILIZATION, Oversized) => 18.0,
        (names::INSIGHTS_MEMORY_UTILIZATION, _) => 72.0,
        (names::GET_REQUESTS | names::ALL_REQUESTS, Idle) => 0.0,
        (names::GET_REQUESTS | names::ALL_REQUESTS, Oversized) => 2.0,
        (names::GET_REQUESTS | names::ALL_REQUESTS, _) => 50_000.0,
        (names::BUCKET_SIZE_BYTES, _) => 800.0e9,
        (names::NUMBER_OF_OBJECTS, _) => 2.0e6,
        (
            names::CONSUMED_READ_CAPACITY_UNITS | names::CONSUMED_WRITE_CAPACITY_UNITS,
            Idle | Oversized,
        ) => 3.0 * 3600.0,
        (names::CONSUMED_READ_CAPACITY_UNITS | names::CONSUMED_WRITE_CAPACITY_UNITS, Hot) => {
            95.0 * 3600.0
        }
        (names::CONSUMED_READ_CAPACITY_UNITS | names::CONSUMED_WRITE_CAPACITY_UNITS, _) => {
            70.0 * 3600.0
        }
        (names::PROVISIONED_READ_CAPACITY_UNITS | names::PROVISIONED_WRITE_CAPACITY_UNITS, _) => {
            100.0
        }
        (names::MEM_USED_PERCENT, Oversized | Idle) => 20.0,
        (names::MEM_USED_PERCENT, _) => 60.0,
        _ => 10.0,
    }
}

fn inventory(service: Service, id: &str, i: usize, p: Profile) -> Resource {
    let mut r = Resource::new(service, id, "us-east-1");
    r.tags.insert(
        "env".into(),
        if i.is_multiple_of(3) { "prod" } else { "dev" }.into(),
    );
    r.tags
        .insert("team".into(), ["payments", "search", "data"][i % 3].into());
    match service {
        Service::Ec2 => {
            r.resource_type = Some(
                [
                    "m5.xlarge",
                    "c5.2xlarge",
                    "t3.large",
                    "r5.large",
                    "m5.2xlarge",
                ][i % 5]
                    .into(),
            )
        }
        Service::Rds => {
            r.resource_type = Some(["db.m5.large", "db.r5.xlarge", "db.t3.medium"][i % 3].into())
        }
        Service::ElastiCache => {
            r.resource_type = Some(["cache.r5.large", "cache.m5.large"][i % 2].into())
        }
        Service::Lambda => {
            r.memory_mb = Some([1024, 2048, 512][i % 3]);
            r.attributes.insert("memorySize".into(), json!(r.memory_mb));
            r.attributes.insert("architecture".into(), json!("x86_64"));
        }
        Service::Ecs => {
            r.attributes.insert("cpu".into(), json!(1024));
            r.attributes.insert("memory".into(), json!(2048));
            r.attributes.insert("desiredCount".into(), json!(4));
            r.attributes.insert("launchType".into(), json!("FARGATE"));
        }
        Service::S3 => r.resource_type = Some("STANDARD".into()),
        Service::Ebs => {
            r.resource_type = Some(["gp2", "gp3", "io1"][i % 3].into());
            r.attributes.insert("sizeGiB".into(), json!(100));
            if i % 3 == 2 {
                r.attributes.insert("iops".into(), json!(5000));
            }
        }
        Service::DynamoDb => {
            r.resource_type = Some("PROVISIONED".into());
            r.attributes
                .insert("provisionedReadCapacityUnits".into(), json!(100));
            r.attributes
                .insert("provisionedWriteCapacityUnits".into(), json!(100));
            r.attributes.insert("autoScaling".into(), json!(false));
        }
    }
    if p == Profile::Idle && service == Service::Ec2 {
        r.monthly_cost_usd = Some(140.16);
    }
    r
}

fn id_for(service: Service, i: usize) -> String {
    match service {
        Service::Ec2 => format!("i-{:017x}", 0xdead_0000_u64 + i as u64),
        Service::Rds => format!("orders-db-{i:02}"),
        Service::ElastiCache => format!("sessions-cache-{i:02}"),
        Service::Lambda => format!("api-handler-{i:02}"),
        Service::Ecs => format!("prod-cluster/web-{i:02}"),
        Service::S3 => format!("finops-demo-bucket-{i:02}"),
        Service::DynamoDb => format!("events-table-{i:02}"),
        Service::Ebs => format!("vol-{:017x}", 0xbeef_0000_u64 + i as u64),
    }
}

/// The demo's regions: every fourth resource of each service lives in the second.
pub const DEMO_REGIONS: [&str; 2] = ["us-east-1", "eu-west-1"];

/// The demo estate (235 resources over the eight services, a quarter of
/// them in eu-west-1) with `days` of metrics ending at the last full hour.
pub fn demo(set: &ThresholdSet, now: DateTime<Utc>, days: i64) -> Estate {
    let mut estate = build(set, now, days, &DEMO_MIX);
    let mut index: std::collections::HashMap<Service, usize> = std::collections::HashMap::new();
    for r in &mut estate.resources {
        let i = index.entry(r.service).or_default();
        if *i % 4 == 3 {
            r.region = DEMO_REGIONS[1].to_string();
        }
        *i += 1;
    }
    estate
}

/// `n` EC2 instances only (benchmarks).
pub fn ec2_fleet(set: &ThresholdSet, now: DateTime<Utc>, days: i64, n: usize) -> Estate {
    build(set, now, days, &[(Service::Ec2, n)])
}

/// An estate of `mix` (tests that need a few resources of some services).
pub fn of_mix(
    set: &ThresholdSet,
    now: DateTime<Utc>,
    days: i64,
    mix: &[(Service, usize)],
) -> Estate {
    build(set, now, days, mix)
}

/// The metrics of `service` the estate publishes: one series per metric the
/// default rules read, whatever statistics they take from it.
pub fn published_metrics(set: &ThresholdSet, service: Service) -> Vec<MetricQuery> {
    let mut metrics: Vec<MetricQuery> = Vec::new();
    for q in required_queries(set, service) {
        let seen = metrics.iter().any(|m| {
            m.namespace == q.namespace
                && m.metric == q.metric
                && m.extra_dimensions == q.extra_dimensions
        });
        if !seen {
            metrics.push(q);
        }
    }
    metrics
}

/// The period the estate stores a metric at (hourly at the finest).
pub(crate) fn stored_period(q: &MetricQuery) -> u32 {
    q.period_seconds.max(3600)
}

/// Value `h` of the series of metric `k` (in [`published_metrics`] order) of
/// resource `i` of its service, for a series starting at `start` (epoch
/// seconds): the profile's level with a daily cycle and deterministic noise.
pub(crate) fn sample(
    metric: &str,
    profile: Profile,
    i: usize,
    k: usize,
    start: i64,
    period: u32,
    h: u64,
) -> f64 {
    let seed = (i as u64) << 8 | k as u64;
    let hour_of_day = ((start + h as i64 * i64::from(period)) / 3600 % 24) as f64;
    let daily = 1.0 + 0.25 * ((hour_of_day - 14.0) / 24.0 * std::f64::consts::TAU).cos();
    let v = level(metric, profile) * daily * (0.9 + 0.2 * noise(seed, h));
    if metric.ends_with("Utilization")
        || metric.ends_with("Percentage")
        || metric == names::MEM_USED_PERCENT
    {
        v.min(100.0)
    } else {
        v
    }
}

/// The inventory of resource `i` of `service` (its id, profile and facts).
pub(crate) fn resource(service: Service, i: usize) -> Resource {
    let id = id_for(service, i);
    let mut resource = inventory(service, &id, i, profile_for(service, i));
    // Databases are used by the service next to them: dependencies.
    if service == Service::Ec2 && i < 30 {
        resource
            .relations
            .push(Relation::new("uses", id_for(Service::Rds, i % 30)));
    }
    resource
}

/// The dimensions a resource publishes `q` under, as AWS does: the
/// service's identity, the metric's own, and for the CloudWatch agent what
/// its default configuration appends (CloudWatch matches the set exactly,
/// so the collector must find it through ListMetrics).
pub fn series_dimensions(
    q: &MetricQuery,
    service: Service,
    id: &str,
    resource_type: Option<&str>,
) -> Vec<(String, String)> {
    let mut dimensions = dimensions_in(&q.namespace, service, id, &q.extra_dimensions);
    if q.namespace == namespaces::CW_AGENT {
        dimensions.push(("ImageId".into(), "ami-760aaa0f".into()));
        dimensions.push((
            "InstanceType".into(),
            resource_type.unwrap_or_default().into(),
        ));
        dimensions.sort();
    }
    dimensions
}

/// The resources of an estate of `mix`, without their metrics.
pub fn resources(mix: &[(Service, usize)]) -> Vec<Resource> {
    mix.iter()
        .flat_map(|&(service, count)| (0..count).map(move |i| resource(service, i)))
        .collect()
}

fn build(set: &ThresholdSet, now: DateTime<Utc>, days: i64, mix: &[(Service, usize)]) -> Estate {
    let end = now.duration_trunc(Duration::hours(1)).unwrap_or(now);
    let mut resources = Vec::new();
    let mut series = Vec::new();
    for &(service, count) in mix {
        let metrics = published_metrics(set, service);
        for i in 0..count {
            let resource = resource(service, i);
            let profile = profile_for(service, i);
            for (k, q) in metrics.iter().enumerate() {
                let period = stored_period(q);
                let points = (days * 86_400 / i64::from(period)) as usize;
                let start = end.timestamp() - points as i64 * i64::from(period);
                let values = (0..points)
                    .map(|h| sample(&q.metric, profile, i, k, start, period, h as u64))
                    .collect();
                let dimensions =
                    series_dimensions(q, service, &resource.id, resource.resource_type.as_deref());
                series.push(SeriesSeed {
                    namespace: q.namespace.clone(),
                    metric_name: q.metric.clone(),
                    dimensions,
                    unit: None,
                    start,
                    period_seconds: period,
                    values,
                });
            }
            resources.push(resource);
        }
    }
    Estate { resources, series }
}
