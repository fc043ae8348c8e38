//! The synthetic CloudWatch answers the real collector as the emulator does:
//! same resources discovered, same data points, CloudWatch's paging and
//! limits.

use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat};
use chrono::{DateTime, DurationRound, Utc};
use finops_local::synthetic::SyntheticCloudWatch;
use finops_local::{estate, sdk_config, seed, Emulator};
use shared::collector::{resource_of_series, CloudWatchSource, MetricSource};
use shared::cycle::metric_requests;
use shared::domain::{MetricSeries, Service};

/// A fixed "now" in the middle of an hour.
fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_767_225_600 + 20 * 86_400 + 1_234, 0).unwrap()
}

const SMALL_MIX: [(Service, usize); 7] = [
    (Service::Ec2, 3),
    (Service::Rds, 2),
    (Service::ElastiCache, 2),
    (Service::Lambda, 5),
    (Service::Ecs, 2),
    (Service::S3, 2),
    (Service::DynamoDb, 2),
];

async fn synthetic_client(cw: &SyntheticCloudWatch) -> aws_sdk_cloudwatch::Client {
    // The endpoint is never dialled: the HTTP client answers in process.
    let config = sdk_config("http://127.0.0.1:9").await;
    aws_sdk_cloudwatch::Client::from_conf(
        aws_sdk_cloudwatch::config::Builder::from(&config)
            .http_client(cw.http_client())
            .build(),
    )
}

/// (resource, metric, statistic, points as (epoch, value x 1e6)).
type Comparable = (String, String, String, Vec<(i64, i64)>);

fn rounded(series: &[MetricSeries]) -> Vec<Comparable> {
    series
        .iter()
        .map(|s| {
            (
                s.resource_id.clone(),
                s.metric.clone(),
                s.statistic.clone(),
                s.points
                    .iter()
                    // The emulator stores f64 and prints them; a relative
                    // 1e-9 is what survives the round trips.
                    .map(|p| (p.timestamp.timestamp(), (p.value * 1e6).round() as i64))
                    .collect(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_collector_sees_the_same_estate_in_the_synthetic_cloudwatch_as_in_the_emulator() {
    let set = shared::analysis::default_thresholds().unwrap();
    let now = now();
    // Its own emulator: the estate's ids are fixed, and other tests' metrics
    // must not show up in discovery.
    let emulator = Emulator::start().unwrap();
    let mut seeded = estate::demo(&set, now, 14);
    let wanted: Vec<String> = estate::resources(&SMALL_MIX)
        .into_iter()
        .map(|r| r.id)
        .collect();
    seeded.series.retain(|s| {
        // Not by namespace: the agent's (CWAgent) serves EC2 too.
        Service::ALL
            .iter()
            .filter_map(|svc| resource_of_series(*svc, &s.dimensions))
            .any(|(id, _)| wanted.contains(&id))
    });
    seeded.resources.retain(|r| wanted.contains(&r.id));
    seed::seed_series(&emulator.endpoint, &seeded.series)
        .await
        .unwrap();

    let real = CloudWatchSource::new(aws_sdk_cloudwatch::Client::new(
        &sdk_config(&emulator.endpoint).await,
    ));
    let cw = SyntheticCloudWatch::new(&set, now, 14, &SMALL_MIX);
    let synthetic = CloudWatchSource::new(synthetic_client(&cw).await);

    let found_real = real.discover(&Service::ALL).await.unwrap();
    let found_synthetic = synthetic.discover(&Service::ALL).await.unwrap();
    assert_eq!(found_synthetic.len(), wanted.len());
    assert_eq!(found_synthetic, found_real);

    let resources = estate::resources(&SMALL_MIX);
    let (mut requests, start, end) = metric_requests(&set, &resources, now);
    // As the cycle does: each series' dimension set as ListMetrics names it
    // (the agent's appends ImageId and InstanceType).
    let mut resolved_real = requests.clone();
    real.resolve(&mut resolved_real).await.unwrap();
    synthetic.resolve(&mut requests).await.unwrap();
    assert_eq!(requests, resolved_real);
    let agent: std::collections::BTreeSet<_> = requests
        .iter()
        .filter(|r| r.namespace == "CWAgent" && r.dimensions.iter().any(|(k, _)| k == "ImageId"))
        .map(|r| r.resource_id.as_str())
        .collect();
    assert_eq!(agent.len(), 3, "the agent's series of the three instances");
    let from_real = real.fetch(&requests, start, end).await.unwrap();
    let from_synthetic = synthetic.fetch(&requests, start, end).await.unwrap();
    let points: usize = from_synthetic.iter().map(|s| s.points.len()).sum();
    assert!(points > 10_000, "only {points} points");
    let (syn, real_r) = (rounded(&from_synthetic), rounded(&from_real));
    assert_eq!(syn, real_r);
    assert_eq!(
        cw.served().get_metric_data,
        synthetic.calls().get_metric_data
    );
    assert_eq!(cw.served().rejected, 0);
}

#[tokio::test]
async fn list_metrics_and_get_metric_data_page_with_next_token() {
    let set = shared::analysis::default_thresholds().unwrap();
    let now = now();
    let cw = SyntheticCloudWatch::new(&set, now, 14, &[(Service::Ec2, 1_200)]);
    let source = CloudWatchSource::new(synthetic_client(&cw).await).with_max_datapoints(5_000);
    let found = source.discover(&[Service::Ec2]).await.unwrap();
    assert_eq!(found.len(), 1_200);
    // Discovery lists the service's own namespace (not CWAgent's).
    let series = estate::published_metrics(&set, Service::Ec2)
        .iter()
        .filter(|q| q.namespace == "AWS/EC2")
        .count()
        * 1_200;
    assert_eq!(
        source.calls().list_metrics,
        series.div_ceil(500) as u64,
        "{series} series, 500 a page"
    );

    let resources = estate::resources(&[(Service::Ec2, 40)]);
    let (mut requests, start, end) = metric_requests(&set, &resources, now);
    source.resolve(&mut requests).await.unwrap();
    let fetched = source.fetch(&requests, start, end).await.unwrap();
    let total: usize = fetched.iter().map(|s| s.points.len()).sum();
    // Every hourly series is complete over the window (its first bucket
    // may fall before the estate's first sample).
    for s in &fetched {
        assert!(
            s.points.len() >= 14 * 24 - 1,
            "{} {}: {}",
            s.resource_id,
            s.metric,
            s.points.len()
        );
        assert!(s.points.windows(2).all(|w| w[0].timestamp < w[1].timestamp));
    }
    assert!(
        cw.served().get_metric_data >= total.div_ceil(5_000) as u64,
        "{} pages for {total} points",
        cw.served().get_metric_data
    );
    assert_eq!(cw.served().get_metric_data, source.calls().get_metric_data);
}

#[tokio::test]
async fn more_than_500_queries_are_refused_as_cloudwatch_does() {
    let set = shared::analysis::default_thresholds().unwrap();
    let cw = SyntheticCloudWatch::new(&set, now(), 14, &[(Service::Ec2, 1)]);
    let client = synthetic_client(&cw).await;
    let id = estate::resources(&[(Service::Ec2, 1)])[0].id.clone();
    let query = |n: usize| {
        MetricDataQuery::builder()
            .id(format!("q{n}"))
            .metric_stat(
                MetricStat::builder()
                    .metric(
                        Metric::builder()
                            .namespace("AWS/EC2")
                            .metric_name("CPUUtilization")
                            .dimensions(Dimension::builder().name("InstanceId").value(&id).build())
                            .build(),
                    )
                    .period(3600)
                    .stat("Average")
                    .build(),
            )
            .build()
    };
    // The estate's last sample is the hour before `now`'s: a day of them.
    let hour = now()
        .duration_trunc(chrono::Duration::hours(1))
        .unwrap()
        .timestamp();
    let send = |n: usize| {
        client
            .get_metric_data()
            .set_metric_data_queries(Some((0..n).map(query).collect()))
            .start_time(aws_smithy_types::DateTime::from_secs(hour - 86_400))
            .end_time(aws_smithy_types::DateTime::from_secs(hour))
            .send()
    };
    let ok = send(500).await.unwrap();
    let results = ok.metric_data_results.unwrap_or_default();
    assert_eq!(results.len(), 500);
    assert_eq!(results[0].values.as_deref().map(<[f64]>::len), Some(24));
    let err = send(501).await.unwrap_err();
    assert!(
        format!("{:?}", err.into_service_error()).contains("InvalidParameterValue"),
        "501 queries must be refused"
    );
    assert_eq!(cw.served().rejected, 1);
}
