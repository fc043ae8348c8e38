//! The CloudWatch collector against the emulator, over HTTP.
//!
//! One emulator serves every test of this binary and CloudWatch data has no
//! per-test namespace (discovery needs the real AWS ones), so each test
//! names its resources with its stack's unique prefix and looks only at
//! those.

use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};
use chrono::{DateTime, Utc};
use finops_local::seed::{seed_series, SeriesSeed};
use finops_local::LocalStack;
use shared::collector::*;
use shared::domain::{MetricSeries, Service};
use shared::Error;

/// 2026-01-01T00:00:00Z: day-aligned, so windows from it align on any period.
const T0: i64 = 1_767_225_600;
const HOUR: i64 = 3600;
const DAY: i64 = 86_400;

fn at(epoch: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(epoch, 0).unwrap()
}

fn source(stack: &LocalStack) -> CloudWatchSource {
    CloudWatchSource::new(aws_sdk_cloudwatch::Client::new(&stack.config))
}

fn ec2(id: &str, metric: &str, statistic: &str, period: u32) -> MetricRequest {
    MetricRequest::new(Service::Ec2, id, "AWS/EC2", metric, statistic, period, &[])
}

fn points(s: &MetricSeries) -> Vec<(i64, f64)> {
    s.points
        .iter()
        .map(|p| (p.timestamp.timestamp(), p.value))
        .collect()
}

#[tokio::test]
async fn discovery_finds_resources_of_all_seven_services() {
    let stack = LocalStack::isolated().await;
    let p = &stack.prefix;
    let one = |ns: &str, metric: &str, dims: &[(&str, &str)]| {
        SeriesSeed::new(ns, metric, dims, T0, 3600, vec![1.0, 2.0])
    };
    let (inst, db, cache) = (format!("{p}-i-1"), format!("{p}-db"), format!("{p}-cache"));
    let (func, alias, cluster) = (format!("{p}-fn"), format!("{p}-fn:live"), format!("{p}-cl"));
    let (bucket, table, asg) = (
        format!("{p}-bucket"),
        format!("{p}-orders"),
        format!("{p}-asg"),
    );
    seed_series(
        &stack.endpoint,
        &[
            one("AWS/EC2", "CPUUtilization", &[("InstanceId", &inst)]),
            one("AWS/EC2", "NetworkIn", &[("InstanceId", &inst)]),
            // Fleet-level series: no resource of their own.
            one(
                "AWS/EC2",
                "CPUUtilization",
                &[("AutoScalingGroupName", &asg)],
            ),
            one("AWS/ECS", "CPUUtilization", &[("ClusterName", &cluster)]),
            one(
                "AWS/RDS",
                "CPUUtilization",
                &[("DBInstanceIdentifier", &db)],
            ),
            one(
                "AWS/ElastiCache",
                "CPUUtilization",
                &[("CacheClusterId", &cache), ("CacheNodeId", "0001")],
            ),
            one("AWS/Lambda", "Invocations", &[("FunctionName", &func)]),
            one(
                "AWS/Lambda",
                "Invocations",
                &[("FunctionName", &func), ("Resource", &alias)],
            ),
            one(
                "AWS/ECS",
                "CPUUtilization",
                &[("ClusterName", &cluster), ("ServiceName", "web")],
            ),
            one(
                "AWS/S3",
                "BucketSizeBytes",
                &[("BucketName", &bucket), ("StorageType", "StandardStorage")],
            ),
            one(
                "AWS/S3",
                "NumberOfObjects",
                &[("BucketName", &bucket), ("StorageType", "AllStorageTypes")],
            ),
            one(
                "AWS/DynamoDB",
                "ConsumedReadCapacityUnits",
                &[("TableName", &table)],
            ),
            one(
                "AWS/DynamoDB",
                "SuccessfulRequestLatency",
                &[("TableName", &table), ("Operation", "GetItem")],
            ),
        ],
    )
    .await
    .unwrap();
    // One instance the way AWS itself publishes: PutMetricData.
    let put = format!("{p}-i-put");
    aws_sdk_cloudwatch::Client::new(&stack.config)
        .put_metric_data()
        .namespace("AWS/EC2")
        .metric_data(
            MetricDatum::builder()
                .metric_name("CPUUtilization")
                .dimensions(Dimension::builder().name("InstanceId").value(&put).build())
                .timestamp(aws_smithy_types::DateTime::from_secs(T0))
                .value(12.5)
                .unit(StandardUnit::Percent)
                .build(),
        )
        .send()
        .await
        .unwrap();

    let src = source(&stack);
    let found: Vec<DiscoveredResource> = src
        .discover(&Service::ALL)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.id.starts_with(p.as_str()))
        .collect();
    let d = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    };
    let res = |service, id: &str, dims: &[(&str, &str)]| DiscoveredResource {
        service,
        id: id.to_string(),
        dimensions: d(dims),
    };
    let ecs_id = format!("{cluster}/web");
    assert_eq!(
        found,
        vec![
            res(Service::Ec2, &inst, &[("InstanceId", &inst)]),
            res(Service::Ec2, &put, &[("InstanceId", &put)]),
            res(Service::Rds, &db, &[("DBInstanceIdentifier", &db)]),
            res(Service::ElastiCache, &cache, &[("CacheClusterId", &cache)]),
            res(Service::Lambda, &func, &[("FunctionName", &func)]),
            res(
                Service::Ecs,
                &ecs_id,
                &[("ClusterName", &cluster), ("ServiceName", "web")]
            ),
            res(
                Service::S3,
                &bucket,
                &[
                    ("BucketName", &bucket),
                    ("StorageType", "AllStorageTypes"),
                    ("StorageType", "StandardStorage")
                ]
            ),
            res(Service::DynamoDb, &table, &[("TableName", &table)]),
        ]
    );
    // Every namespace listed at least once, nothing fetched.
    let calls = src.calls();
    assert!(calls.list_metrics >= 7, "{calls:?}");
    assert_eq!(calls.get_metric_data, 0);

    // What was discovered is exactly what dimensions_for would have queried
    // for an inventory-only resource.
    for r in found.iter().filter(|r| r.service != Service::S3) {
        assert_eq!(dimensions_for(r.service, &r.id, &[]), r.dimensions);
    }

    // Asking for one service lists one namespace.
    let rds_only = source(&stack);
    let rds: Vec<_> = rds_only
        .discover(&[Service::Rds, Service::Rds])
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.id.starts_with(p.as_str()))
        .collect();
    assert_eq!(
        rds,
        vec![res(Service::Rds, &db, &[("DBInstanceIdentifier", &db)])]
    );
    assert!(rds_only.calls().list_metrics >= 1);
}

/// The value of `metric` (0 or 1) of instance `n` at hour `h`: exact in
/// binary, different for every neighbour.
fn fleet_value(n: usize, metric: usize, h: usize) -> f64 {
    ((n * 7 + h * 13 + metric * 101) % 997) as f64 / 8.0
}

/// Hours with no point: one per 50th instance, so empty buckets are
/// checked too.
fn fleet_gap(n: usize, h: usize) -> bool {
    n.is_multiple_of(50) && h == n % 336
}

#[tokio::test]
async fn a_fleet_beyond_one_call_is_fetched_whole_in_the_fewest_calls() {
    const INSTANCES: usize = 700;
    const HOURS: usize = 14 * 24;
    let stack = LocalStack::isolated().await;
    let p = &stack.prefix;
    let metrics = [("CPUUtilization", "Average"), ("NetworkIn", "Sum")];
    let ids: Vec<String> = (0..INSTANCES).map(|n| format!("{p}-f{n:04}")).collect();
    let mut seeds = Vec::new();
    for (n, id) in ids.iter().enumerate() {
        for (m, (metric, _)) in metrics.iter().enumerate() {
            let values = (0..HOURS)
                .map(|h| {
                    if fleet_gap(n, h) {
                        f64::NAN
                    } else {
                        fleet_value(n, m, h)
                    }
                })
                .collect();
            seeds.push(SeriesSeed::new(
                "AWS/EC2",
                *metric,
                &[("InstanceId", id)],
                T0,
                3600,
                values,
            ));
        }
    }
    let stored = seed_series(&stack.endpoint, &seeds).await.unwrap();
    assert_eq!(stored, (INSTANCES * 2 * HOURS - 2 * INSTANCES / 50) as u64);
    drop(seeds);

    let requests: Vec<MetricRequest> = ids
        .iter()
        .flat_map(|id| metrics.iter().map(move |(m, s)| ec2(id, m, s, 3600)))
        .collect();
    let (start, end) = (at(T0), at(T0 + 14 * DAY));
    let src = source(&stack);
    let series = src.fetch(&requests, start, end).await.unwrap();

    let minimum = minimum_get_metric_data_calls(&requests, start, end);
    assert_eq!(minimum, 5, "1,400 x 336 points need 5 pages of 100,800");
    assert_eq!(src.calls().get_metric_data, minimum);
    assert_eq!(series.len(), requests.len());
    for (k, (s, r)) in series.iter().zip(&requests).enumerate() {
        let (n, m) = (k / 2, k % 2);
        assert_eq!(
            (
                &s.resource_id,
                s.service,
                &s.metric,
                &s.statistic,
                s.period_seconds
            ),
            (&r.resource_id, Service::Ec2, &r.metric, &r.statistic, 3600)
        );
        let want: Vec<(i64, f64)> = (0..HOURS)
            .filter(|&h| !fleet_gap(n, h))
            .map(|h| (T0 + h as i64 * HOUR, fleet_value(n, m, h)))
            .collect();
        assert_eq!(points(s), want, "{} {}", s.resource_id, s.metric);
    }
}

#[tokio::test]
async fn small_pages_are_followed_to_the_end_without_loss_or_duplicates() {
    let stack = LocalStack::isolated().await;
    let p = &stack.prefix;
    // Instance k has points from hour k on, except every 5th hour: ragged
    // series, so page boundaries fall inside and between queries.
    let value = |k: usize, h: usize| (k * 100 + h) as f64;
    let has = |k: usize, h: usize| h >= k && h % 5 != 4;
    let seeds: Vec<SeriesSeed> = (0..20)
        .map(|k| {
            SeriesSeed::new(
                "AWS/EC2",
                "CPUUtilization",
                &[("InstanceId", &format!("{p}-pg{k}"))],
                T0,
                3600,
                (0..24)
                    .map(|h| if has(k, h) { value(k, h) } else { f64::NAN })
                    .collect(),
            )
        })
        .collect();
    let total: usize = seeds.iter().map(SeriesSeed::points).sum();
    seed_series(&stack.endpoint, &seeds).await.unwrap();

    let mut requests: Vec<MetricRequest> = (0..20)
        .map(|k| ec2(&format!("{p}-pg{k}"), "CPUUtilization", "Maximum", 3600))
        .collect();
    requests.push(ec2(&format!("{p}-none"), "CPUUtilization", "Maximum", 3600));
    const PAGE: usize = 37;
    let src = source(&stack).with_max_datapoints(PAGE as u32);
    let series = src.fetch(&requests, at(T0), at(T0 + DAY)).await.unwrap();

    // One planned call, paged by 37 points.
    assert_eq!(
        minimum_get_metric_data_calls(&requests, at(T0), at(T0 + DAY)),
        1
    );
    assert_eq!(src.calls().get_metric_data, total.div_ceil(PAGE) as u64);
    for (k, s) in series.iter().take(20).enumerate() {
        let want: Vec<(i64, f64)> = (0..24)
            .filter(|&h| has(k, h))
            .map(|h| (T0 + h as i64 * HOUR, value(k, h)))
            .collect();
        assert_eq!(points(s), want, "{}", s.resource_id);
    }
    assert!(series[20].points.is_empty());
}

#[tokio::test]
async fn an_unaligned_window_with_mixed_periods_gives_each_request_its_own_buckets() {
    let stack = LocalStack::isolated().await;
    let id = format!("{}-mixed", stack.prefix);
    // Hourly values 0, 1, 2, ... over four days.
    seed_series(
        &stack.endpoint,
        &[SeriesSeed::new(
            "AWS/EC2",
            "NetworkOut",
            &[("InstanceId", &id)],
            T0,
            3600,
            (0..96).map(f64::from).collect(),
        )],
    )
    .await
    .unwrap();
    let requests = [
        ec2(&id, "NetworkOut", "Sum", 3600),
        ec2(&id, "NetworkOut", "Sum", 86_400),
    ];
    let (start, end) = (T0 + 5 * HOUR + 1800, T0 + 3 * DAY + 5 * HOUR + 1800);
    let src = source(&stack);
    let series = src.fetch(&requests, at(start), at(end)).await.unwrap();
    assert_eq!(src.calls().get_metric_data, 1);

    // Hourly buckets from 05:00 (not from the day-aligned StartTime the daily
    // query needed) through the one holding `end`.
    let hourly: Vec<(i64, f64)> = (5..=77).map(|h| (T0 + h * HOUR, h as f64)).collect();
    assert_eq!(points(&series[0]), hourly);
    // Daily buckets on UTC midnights; the last one only holds data before `end`.
    let day_sum = |from: i64, to: i64| (from..to).map(|h| h as f64).sum::<f64>();
    assert_eq!(
        points(&series[1]),
        vec![
            (T0, day_sum(0, 24)),
            (T0 + DAY, day_sum(24, 48)),
            (T0 + 2 * DAY, day_sum(48, 72)),
            (T0 + 3 * DAY, day_sum(72, 78)),
        ]
    );
}

#[tokio::test]
async fn percentiles_and_averages_come_back_right() {
    let stack = LocalStack::isolated().await;
    let id = format!("{}-stats", stack.prefix);
    // Hour h holds 1..=60 (shuffled) + 100 h, one sample a minute.
    let sample = |h: usize, m: usize| ((m * 37) % 60 + 1 + 100 * h) as f64;
    seed_series(
        &stack.endpoint,
        &[SeriesSeed::new(
            "AWS/EC2",
            "CPUUtilization",
            &[("InstanceId", &id)],
            T0,
            60,
            (0..3 * 60).map(|i| sample(i / 60, i % 60)).collect(),
        )
        .unit("Percent")],
    )
    .await
    .unwrap();
    let stats = [
        "Average",
        "p50",
        "p90",
        "p99.5",
        "Minimum",
        "Maximum",
        "Sum",
        "SampleCount",
    ];
    let mut requests: Vec<MetricRequest> = stats
        .iter()
        .map(|s| ec2(&id, "CPUUtilization", s, 3600))
        .collect();
    requests.push(ec2(&id, "CPUUtilization", "p50", 3 * 3600));
    let src = source(&stack);
    let series = src
        .fetch(&requests, at(T0), at(T0 + 3 * HOUR))
        .await
        .unwrap();

    let hourly = |f: fn(f64) -> f64| -> Vec<(i64, f64)> {
        (0..3)
            .map(|h| (T0 + h * HOUR, f(100.0 * h as f64)))
            .collect()
    };
    // Nearest rank on 60 samples: p50 is the 30th, p90 the 54th, p99.5 the 60th.
    let want = [
        hourly(|b| b + 30.5),
        hourly(|b| b + 30.0),
        hourly(|b| b + 54.0),
        hourly(|b| b + 60.0),
        hourly(|b| b + 1.0),
        hourly(|b| b + 60.0),
        hourly(|b| 60.0 * b + 1830.0),
        hourly(|_| 60.0),
        // 180 samples: the 90th is the 30th of the middle hour.
        vec![(T0, 130.0)],
    ];
    for ((s, want), r) in series.iter().zip(want).zip(&requests) {
        assert_eq!(s.statistic, r.statistic);
        assert_eq!(
            points(s),
            want,
            "{} over {} s",
            s.statistic,
            s.period_seconds
        );
    }
    assert_eq!(src.calls().get_metric_data, 1);

    // Rejected before any call.
    let bad = [ec2(&id, "CPUUtilization", "Average", 90)];
    assert!(matches!(
        src.fetch(&bad, at(T0), at(T0 + HOUR)).await,
        Err(Error::Validation(_))
    ));
    assert!(matches!(
        src.fetch(&requests, at(T0 + HOUR), at(T0)).await,
        Err(Error::Validation(_))
    ));
    assert!(src
        .fetch(&[], at(T0), at(T0 + HOUR))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(src.calls().get_metric_data, 1);
}

/// The dimension set AWS publishes a series with: the collector's derived
/// identity, plus what the CloudWatch agent appends in its default
/// configuration (`ImageId`, `InstanceType`) to `mem_used_percent`.
fn published_shape(r: &MetricRequest) -> Vec<(String, String)> {
    let mut dims = r.dimensions.clone();
    if r.namespace == "CWAgent" {
        dims.push(("ImageId".into(), "ami-12c6146b".into()));
        dims.push(("InstanceType".into(), "m5.large".into()));
        dims.sort();
    }
    dims
}

/// Seeds every series the default rules read for one resource of `service`
/// under `namespace`, in the shape AWS publishes, and checks the cycle's own
/// requests (resolved as the cycle resolves them) find every point.
async fn the_published_shape_is_found(service: Service, namespace: &str) {
    let stack = LocalStack::isolated().await;
    let id = match service {
        Service::Ecs => format!("{}-cl/{}-svc", stack.prefix, stack.prefix),
        _ => format!("{}-{}", stack.prefix, service),
    };
    let set = shared::analysis::default_thresholds().unwrap();
    let now = at(T0 + 20 * DAY);
    let (all, start, end) = shared::cycle::metric_requests(
        &set,
        &[shared::domain::Resource::new(service, &id, "us-east-1")],
        now,
    );
    let mut requests: Vec<MetricRequest> = all
        .into_iter()
        .filter(|r| r.namespace == namespace)
        .collect();
    assert!(!requests.is_empty(), "no default rule reads {namespace}");
    let mut seen = std::collections::BTreeSet::new();
    let seeds: Vec<SeriesSeed> = requests
        .iter()
        .filter(|r| seen.insert((r.metric.clone(), r.dimensions.clone())))
        .map(|r| {
            let dims = published_shape(r);
            let dims: Vec<(&str, &str)> =
                dims.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
            let points = ((end - start).num_seconds() / HOUR) as usize;
            SeriesSeed::new(
                &r.namespace,
                &r.metric,
                &dims,
                start.timestamp(),
                3600,
                vec![5.0; points],
            )
        })
        .collect();
    seed_series(&stack.endpoint, &seeds).await.unwrap();
    let cw = source(&stack);
    cw.resolve(&mut requests).await.unwrap();
    let series = cw.fetch(&requests, start, end).await.unwrap();
    for (r, s) in requests.iter().zip(&series) {
        assert!(
            !s.points.is_empty(),
            "{namespace} {} {:?}: no point found",
            r.metric,
            r.dimensions
        );
    }
}

#[tokio::test]
async fn aws_ec2_series_are_found_in_their_published_shape() {
    the_published_shape_is_found(Service::Ec2, "AWS/EC2").await;
}

#[tokio::test]
async fn cwagent_series_are_found_with_the_dimensions_the_agent_appends() {
    the_published_shape_is_found(Service::Ec2, "CWAgent").await;
}

#[tokio::test]
async fn aws_ebs_series_are_found_in_their_published_shape() {
    the_published_shape_is_found(Service::Ebs, "AWS/EBS").await;
}

#[tokio::test]
async fn aws_rds_series_are_found_in_their_published_shape() {
    the_published_shape_is_found(Service::Rds, "AWS/RDS").await;
}

#[tokio::test]
async fn aws_elasticache_series_are_found_in_their_published_shape() {
    the_published_shape_is_found(Service::ElastiCache, "AWS/ElastiCache").await;
}

#[tokio::test]
async fn aws_lambda_series_are_found_in_their_published_shape() {
    the_published_shape_is_found(Service::Lambda, "AWS/Lambda").await;
}

#[tokio::test]
async fn lambda_insights_series_are_found_under_function_name() {
    the_published_shape_is_found(Service::Lambda, "LambdaInsights").await;
}

#[tokio::test]
async fn aws_ecs_series_are_found_in_their_published_shape() {
    the_published_shape_is_found(Service::Ecs, "AWS/ECS").await;
}

#[tokio::test]
async fn aws_s3_series_are_found_in_their_published_shape() {
    the_published_shape_is_found(Service::S3, "AWS/S3").await;
}

#[tokio::test]
async fn aws_dynamodb_series_are_found_in_their_published_shape() {
    the_published_shape_is_found(Service::DynamoDb, "AWS/DynamoDB").await;
}

#[test]
fn lambda_insights_is_queried_by_function_name_in_lower_case() {
    let r = MetricRequest::new(
        Service::Lambda,
        "f",
        "LambdaInsights",
        "memory_utilization",
        "Maximum",
        3600,
        &[],
    );
    assert_eq!(
        r.dimensions,
        vec![("function_name".to_string(), "f".to_string())]
    );
}
