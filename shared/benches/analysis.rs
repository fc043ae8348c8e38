//! Analysis throughput: 10,000 resources x 8 metrics x 336 hourly points
//! (14 days), through the whole pipeline (every rule of the default set,
//! utilisation score, trends, recommendation with savings, risk and reason),
//! on one core.
//!
//! The estate mixes EC2 (40%), RDS (15%), Lambda (15%), ElastiCache (10%),
//! ECS (10%) and DynamoDB (10%); S3 is left out because its storage metrics
//! are daily, not hourly. Each resource has 8 series; most are read by the
//! rules, the score or the risk projection, a few (disk, throttles, latency)
//! are carried as a real collector would return them and are not read.
//! Throughput counts every input point.

use chrono::{DateTime, Duration, Utc};
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use shared::analysis::{default_thresholds, order_actions, DependencyIndex, Engine};
use shared::domain::{
    Action, FindingKind, MetricPoint, MetricSeries, Recommendation, Relation, Resource, Service,
};
use std::hint::black_box;
use std::time::Instant;

const RESOURCES: usize = 10_000;
const HOURS: i64 = 336;

/// A small deterministic generator: the data is the same on every run.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn service_of(i: usize) -> Service {
    match i % 20 {
        0..=7 => Service::Ec2,
        8..=10 => Service::Rds,
        11..=13 => Service::Lambda,
        14 | 15 => Service::ElastiCache,
        16 | 17 => Service::Ecs,
        _ => Service::DynamoDb,
    }
}

fn metrics(s: Service) -> [(&'static str, &'static str); 8] {
    match s {
        Service::Ec2 => [
            ("CPUUtilization", "Average"),
            ("CPUUtilization", "Maximum"),
            ("NetworkIn", "Sum"),
            ("NetworkOut", "Sum"),
            ("mem_used_percent", "Maximum"),
            ("DiskReadOps", "Sum"),
            ("DiskWriteOps", "Sum"),
            ("StatusCheckFailed", "Maximum"),
        ],
        Service::Rds => [
            ("CPUUtilization", "Average"),
            ("CPUUtilization", "Maximum"),
            ("DatabaseConnections", "Average"),
            ("DatabaseConnections", "Maximum"),
            ("FreeableMemory", "Minimum"),
            ("FreeableMemory", "Average"),
            ("ReadIOPS", "Average"),
            ("WriteIOPS", "Average"),
        ],
        Service::ElastiCache => [
            ("CPUUtilization", "Average"),
            ("CPUUtilization", "Maximum"),
            ("DatabaseMemoryUsagePercentage", "Average"),
            ("DatabaseMemoryUsagePercentage", "Maximum"),
            ("CurrConnections", "Average"),
            ("CurrConnections", "Maximum"),
            ("Evictions", "Sum"),
            ("CacheHits", "Sum"),
        ],
        Service::Ecs => [
            ("CPUUtilization", "Average"),
            ("CPUUtilization", "Maximum"),
            ("MemoryUtilization", "Average"),
            ("MemoryUtilization", "Maximum"),
            ("RunningTaskCount", "Average"),
            ("CpuReserved", "Average"),
            ("MemoryReserved", "Average"),
            ("NetworkRxBytes", "Sum"),
        ],
        Service::Lambda => [
            ("Invocations", "Sum"),
            ("Errors", "Sum"),
            ("Duration", "Average"),
            ("memory_utilization", "Maximum"),
            ("Throttles", "Sum"),
            ("Duration", "Maximum"),
            ("ConcurrentExecutions", "Maximum"),
            ("memory_utilization", "Average"),
        ],
        _ => [
            ("ConsumedReadCapacityUnits", "Sum"),
            ("ConsumedWriteCapacityUnits", "Sum"),
            ("ProvisionedReadCapacityUnits", "Average"),
            ("ProvisionedWriteCapacityUnits", "Average"),
            ("ReadThrottleEvents", "Sum"),
            ("WriteThrottleEvents", "Sum"),
            ("SuccessfulRequestLatency", "Average"),
            ("ThrottledRequests", "Sum"),
        ],
    }
}

fn scale(metric: &str) -> f64 {
    match metric {
        "NetworkIn" | "NetworkOut" | "NetworkRxBytes" => 2e5,
        "FreeableMemory" => 8e7,
        "DatabaseConnections" | "CurrConnections" => 0.5,
        "Invocations" => 40.0,
        "Errors" => 0.3,
        "ConsumedReadCapacityUnits" | "ConsumedWriteCapacityUnits" => 300.0,
        "ProvisionedReadCapacityUnits" | "ProvisionedWriteCapacityUnits" => 3.0,
        "Duration" => 8.0,
        _ => 1.0,
    }
}

fn estate(now: DateTime<Utc>) -> Vec<(Resource, Vec<MetricSeries>)> {
    let types = [
        "m5.xlarge",
        "c5.2xlarge",
        "t3.large",
        "r5.xlarge",
        "m6i.2xlarge",
    ];
    let db_types = ["db.m5.large", "db.r5.xlarge", "db.t3.medium"];
    let cache_types = ["cache.m5.large", "cache.r5.large", "cache.t3.medium"];
    let mut rng = Lcg(42);
    let start = now - Duration::hours(HOURS);
    let stamps: Vec<DateTime<Utc>> = (0..HOURS).map(|h| start + Duration::hours(h)).collect();
    (0..RESOURCES)
        .map(|i| {
            let svc = service_of(i);
            let id = format!("{}-{i:05}", svc.as_str());
            let mut r = Resource::new(svc, id.clone(), "us-east-1");
            r.resource_type = match svc {
                Service::Ec2 => Some(types[i % types.len()].to_string()),
                Service::Rds => Some(db_types[i % db_types.len()].to_string()),
                Service::ElastiCache => Some(cache_types[i % cache_types.len()].to_string()),
                _ => None,
            };
            if svc == Service::Lambda {
                r.memory_mb = Some(1024);
            }
            if svc == Service::Ecs {
                r.memory_mb = Some(4096);
                r.attributes.insert("cpu".into(), serde_json::json!(2048));
                r.attributes
                    .insert("desiredCount".into(), serde_json::json!(3));
            }
            // Per-resource load level: a wide spread so every rule fires somewhere.
            let level = 2.0 + 60.0 * rng.next() * rng.next();
            let series = metrics(svc)
                .iter()
                .map(|(m, stat)| {
                    let k = scale(m) * if *stat == "Maximum" { 1.4 } else { 1.0 };
                    let points = stamps
                        .iter()
                        .enumerate()
                        .map(|(h, t)| {
                            let diurnal = 1.0
                                + 0.5 * (((h % 24) as f64) / 24.0 * std::f64::consts::TAU).sin();
                            MetricPoint {
                                timestamp: *t,
                                value: (level * diurnal * (0.8 + 0.4 * rng.next()) * k).max(0.0),
                            }
                        })
                        .collect();
                    MetricSeries {
                        resource_id: id.clone(),
                        service: svc,
                        metric: (*m).to_string(),
                        statistic: (*stat).to_string(),
                        period_seconds: 3600,
                        points,
                    }
                })
                .collect();
            (r, series)
        })
        .collect()
}

fn run(
    engine: &mut Engine<'_>,
    estate: &[(Resource, Vec<MetricSeries>)],
    now: DateTime<Utc>,
) -> usize {
    let mut recs = 0;
    for (r, s) in estate {
        let a = engine.analyze(r, s, now);
        recs += usize::from(a.recommendation.is_some());
        black_box(a);
    }
    recs
}

fn bench(c: &mut Criterion) {
    let now: DateTime<Utc> = "2024-06-15T00:00:00Z".parse().expect("fixed date");
    let set = default_thresholds().expect("default thresholds");
    let estate = estate(now);
    let points: usize = estate
        .iter()
        .map(|(_, s)| s.iter().map(|x| x.points.len()).sum::<usize>())
        .sum();
    let mut engine = Engine::new(&set);

    // One explicit pass, printed, before criterion's statistics.
    run(&mut engine, &estate, now);
    let t = Instant::now();
    let recs = run(&mut engine, &estate, now);
    let secs = t.elapsed().as_secs_f64();
    println!(
        "analysis: {RESOURCES} resources x 8 metrics x {HOURS} points = {points} points in {:.1} ms on one core: {:.1} million points/s ({recs} recommendations)",
        secs * 1e3,
        points as f64 / secs / 1e6
    );

    let mut g = c.benchmark_group("analysis");
    g.sample_size(10)
        .warm_up_time(std::time::Duration::from_secs(1))
        .measurement_time(std::time::Duration::from_secs(5))
        .throughput(Throughput::Elements(points as u64));
    g.bench_function("estate_10k_x_8_x_336", |b| {
        b.iter(|| run(&mut engine, &estate, now))
    });
    g.finish();
}

/// An inventory where most resources name one or two others (an app uses a
/// database, a function uses an instance...) and a third of them carry a
/// recommendation, as a cycle's finalize stage sees it.
fn related_estate(n: usize) -> (Vec<Resource>, Vec<Recommendation>) {
    let now: DateTime<Utc> = "2024-06-15T00:00:00Z".parse().expect("fixed date");
    let mut rng = Lcg(42);
    let inventory: Vec<Resource> = (0..n)
        .map(|i| {
            let mut r = Resource::new(service_of(i), format!("r-{i:06}"), "us-east-1");
            let links = (rng.next() * 3.0) as usize;
            for _ in 0..links {
                let target = (rng.next() * n as f64) as usize;
                r.relations
                    .push(Relation::new("uses", format!("r-{target:06}")));
            }
            r
        })
        .collect();
    let recs = inventory
        .iter()
        .step_by(3)
        .map(|r| Recommendation {
            id: Recommendation::stable_id(
                &shared::domain::ResourceKey::new(None, "us-east-1", &r.id),
                Action::Stop,
            ),
            resource_id: r.id.clone(),
            service: r.service,
            region: r.region.clone(),
            account_id: None,
            owner: None,
            tags: Default::default(),
            current_monthly_cost_usd: None,
            finding: FindingKind::Idle,
            action: Action::Stop,
            target_type: None,
            monthly_savings_usd: Some(rng.next() * 100.0),
            savings_percent: None,
            confidence: 1.0,
            risk: 0,
            reason: String::new(),
            alternatives: vec![],
            dependencies: vec![],
            dependency_details: Vec::new(),
            utilization_score: None,
            threshold_version: 0,
            created_at: now,
        })
        .collect();
    (inventory, recs)
}

/// The cycle's "dependencies" and "batch" stages: index the inventory once,
/// complete each recommendation's dependencies, then order and batch.
fn dependency_stage(recs: Vec<Recommendation>, inventory: &[Resource]) -> usize {
    let index = DependencyIndex::new(inventory);
    let mut recs = recs;
    index.link(&mut recs);
    order_actions(recs, &index).len()
}

fn bench_dependencies(c: &mut Criterion) {
    let mut g = c.benchmark_group("dependencies");
    g.sample_size(10)
        .warm_up_time(std::time::Duration::from_secs(1))
        .measurement_time(std::time::Duration::from_secs(5));
    for n in [1_000, 10_000] {
        let (inventory, recs) = related_estate(n);
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter_batched(
                || recs.clone(),
                |recs| black_box(dependency_stage(recs, &inventory)),
                BatchSize::LargeInput,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, bench, bench_dependencies);
criterion_main!(benches);
