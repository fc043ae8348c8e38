//! Issue 14's acceptance item: a resource known only from describe-API data
//! and CloudWatch metrics (no `POST /resources`, so no monthly cost) gets a
//! named target and a saving equal to the catalogue's price difference, for
//! every service that has a price. The resources are shaped as discovery
//! builds them: type in `resourceType`, facts in attributes, tags, region.

use super::*;
use crate::analysis::pricing::{PriceCatalog, Variant, HOURS_PER_MONTH};
use serde_json::json;

fn discovered(
    svc: Service,
    id: &str,
    region: &str,
    t: Option<&str>,
    attrs: serde_json::Value,
) -> Resource {
    let mut r = Resource::new(svc, id, region);
    r.account_id = Some("111122223333".into());
    r.resource_type = t.map(str::to_string);
    r.tags.insert("team".into(), "data".into());
    if let serde_json::Value::Object(m) = attrs {
        r.attributes.extend(m);
    }
    r
}

fn flat(id: &str, svc: Service, metric: &str, stat: &str, v: f64) -> MetricSeries {
    hourly(id, svc, metric, stat, 336, move |_| v)
}

fn cat() -> &'static PriceCatalog {
    PriceCatalog::builtin()
}

/// (current - target) x 730 for an instance-like type with the resource's variant.
fn instance_difference(r: &Resource, target: &str) -> f64 {
    let v = Variant::of(r);
    let rate = |t: &str| cat().instance_rate(r.service, &r.region, t, &v).unwrap();
    (rate(r.resource_type.as_deref().unwrap()) - rate(target)) * HOURS_PER_MONTH
}

#[test]
fn ec2_from_describe_instances() {
    let set = default_thresholds().unwrap();
    let r = discovered(
        Service::Ec2,
        "i-0a1",
        "eu-central-1",
        Some("m5.xlarge"),
        json!({"platform": "Linux/UNIX", "state": "running"}),
    );
    let rec = &recommend(
        &r,
        &[flat(
            "i-0a1",
            Service::Ec2,
            names::CPU_UTILIZATION,
            "Maximum",
            12.0,
        )],
        &set,
        now(),
    )[0];
    assert_eq!(rec.target_type.as_deref(), Some("m5.large"));
    assert_eq!(
        rec.monthly_savings_usd,
        Some(round2(instance_difference(&r, "m5.large")))
    );
    assert_eq!(rec.owner.as_deref(), Some("data"));
    assert_eq!(rec.account_id.as_deref(), Some("111122223333"));
    // Windows: the surcharge per vCPU is in both rates.
    let w = discovered(
        Service::Ec2,
        "i-0a2",
        "eu-central-1",
        Some("m5.xlarge"),
        json!({"platform": "Windows"}),
    );
    let rec = &recommend(
        &w,
        &[flat(
            "i-0a2",
            Service::Ec2,
            names::CPU_UTILIZATION,
            "Maximum",
            12.0,
        )],
        &set,
        now(),
    )[0];
    assert_eq!(
        rec.monthly_savings_usd,
        Some(round2(instance_difference(&w, "m5.large")))
    );
    assert!(instance_difference(&w, "m5.large") > instance_difference(&r, "m5.large"));
}

#[test]
fn ec2_at_the_smallest_size_is_offered_a_named_cheaper_type() {
    let set = default_thresholds().unwrap();
    let r = discovered(
        Service::Ec2,
        "i-0a3",
        "ap-northeast-1",
        Some("m5.large"),
        json!({}),
    );
    let rec = &recommend(
        &r,
        &[flat(
            "i-0a3",
            Service::Ec2,
            names::CPU_UTILIZATION,
            "Maximum",
            12.0,
        )],
        &set,
        now(),
    )[0];
    // m5.large is the smallest m5: the burstable t3.large of the same size.
    assert_eq!(
        rec.target_type.as_deref(),
        Some("t3.large"),
        "{}",
        rec.reason
    );
    assert!(
        rec.reason.contains("smallest size of its family"),
        "{}",
        rec.reason
    );
    assert_eq!(
        rec.monthly_savings_usd,
        Some(round2(instance_difference(&r, "t3.large")))
    );
    assert!(rec
        .alternatives
        .iter()
        .any(|a| a.target_type.as_deref() == Some("m6g.large")));
}

/// db.t3.medium is the smallest size with room to spare here, and already
/// burstable: the same size on Graviton is the cheaper type named, and the
/// reason says why no smaller one was (not "no cost model").
#[test]
fn rds_with_no_smaller_size_that_fits_is_offered_graviton() {
    let set = default_thresholds().unwrap();
    let r = discovered(
        Service::Rds,
        "db-small",
        "us-east-1",
        Some("db.t3.medium"),
        json!({"engine": "mysql"}),
    );
    let s = vec![
        flat(
            "db-small",
            Service::Rds,
            names::CPU_UTILIZATION,
            "Maximum",
            30.0,
        ),
        flat(
            "db-small",
            Service::Rds,
            names::CPU_UTILIZATION,
            "Average",
            25.0,
        ),
        flat(
            "db-small",
            Service::Rds,
            names::DATABASE_CONNECTIONS,
            "Average",
            40.0,
        ),
        flat(
            "db-small",
            Service::Rds,
            names::DATABASE_CONNECTIONS,
            "Maximum",
            60.0,
        ),
        // 2.5 of its 4 GiB in use: too much for a db.t3.small's 2 GiB.
        flat(
            "db-small",
            Service::Rds,
            names::FREEABLE_MEMORY,
            "Minimum",
            1.5 * GIB,
        ),
    ];
    let recs = recommend(&r, &s, &set, now());
    let rec = recs
        .iter()
        .find(|r| r.finding == FindingKind::OverProvisioned)
        .unwrap_or_else(|| panic!("{recs:#?}"));
    assert_eq!(rec.action, Action::MoveToGraviton, "{}", rec.reason);
    assert_eq!(rec.target_type.as_deref(), Some("db.t4g.medium"));
    assert_eq!(
        rec.monthly_savings_usd,
        Some(round2(instance_difference(&r, "db.t4g.medium")))
    );
    assert!(rec.monthly_savings_usd.unwrap() > 0.0);
    assert!(
        rec.reason.contains("db.t3.medium") && !rec.reason.contains("no cost model"),
        "{}",
        rec.reason
    );
}

#[test]
fn rds_from_describe_db_instances_with_engine_multi_az_and_storage() {
    let set = default_thresholds().unwrap();
    let attrs = json!({"engine": "postgres", "multiAz": true, "allocatedStorageGiB": 100, "storageType": "gp3"});
    let r = discovered(
        Service::Rds,
        "db-orders",
        "eu-west-1",
        Some("db.r5.xlarge"),
        attrs,
    );
    let s = vec![
        flat(
            "db-orders",
            Service::Rds,
            names::CPU_UTILIZATION,
            "Maximum",
            12.0,
        ),
        flat(
            "db-orders",
            Service::Rds,
            names::CPU_UTILIZATION,
            "Average",
            10.0,
        ),
        flat(
            "db-orders",
            Service::Rds,
            names::DATABASE_CONNECTIONS,
            "Average",
            40.0,
        ),
        flat(
            "db-orders",
            Service::Rds,
            names::DATABASE_CONNECTIONS,
            "Maximum",
            60.0,
        ),
        flat(
            "db-orders",
            Service::Rds,
            names::FREEABLE_MEMORY,
            "Minimum",
            24.0 * GIB,
        ),
    ];
    let rec = &recommend(&r, &s, &set, now())[0];
    assert_eq!(
        rec.target_type.as_deref(),
        Some("db.r5.large"),
        "{}",
        rec.reason
    );
    let saving = instance_difference(&r, "db.r5.large");
    // Multi-AZ PostgreSQL: twice the MySQL Single-AZ difference, times 1.04.
    let base = (cat()
        .type_spec(Service::Rds, "eu-west-1", "db.r5.xlarge")
        .unwrap()
        .usd_per_hour
        - cat()
            .type_spec(Service::Rds, "eu-west-1", "db.r5.large")
            .unwrap()
            .usd_per_hour)
        * HOURS_PER_MONTH;
    assert!((saving - base * 2.0 * 1.04).abs() < 1e-9);
    assert_eq!(rec.monthly_savings_usd, Some(round2(saving)));
    // Storage is in the current cost, not in the rightsizing's saving.
    let storage = 100.0 * 0.127 * 2.0;
    let rate = cat()
        .instance_rate(Service::Rds, "eu-west-1", "db.r5.xlarge", &Variant::of(&r))
        .unwrap();
    assert_eq!(
        rec.current_monthly_cost_usd,
        Some(round2(rate * HOURS_PER_MONTH + storage))
    );
}

#[test]
fn elasticache_from_describe_cache_clusters_with_engine_and_nodes() {
    let set = default_thresholds().unwrap();
    let r = discovered(
        Service::ElastiCache,
        "cache-sessions",
        "ap-southeast-1",
        Some("cache.m5.xlarge"),
        json!({"engine": "valkey", "numCacheNodes": 2}),
    );
    let s = vec![
        flat(
            "cache-sessions",
            Service::ElastiCache,
            names::CPU_UTILIZATION,
            "Maximum",
            10.0,
        ),
        flat(
            "cache-sessions",
            Service::ElastiCache,
            names::DATABASE_MEMORY_USAGE_PERCENTAGE,
            "Maximum",
            15.0,
        ),
        flat(
            "cache-sessions",
            Service::ElastiCache,
            names::CURR_CONNECTIONS,
            "Maximum",
            30.0,
        ),
    ];
    let rec = &recommend(&r, &s, &set, now())[0];
    assert_eq!(
        rec.target_type.as_deref(),
        Some("cache.m5.large"),
        "{}",
        rec.reason
    );
    let saving = instance_difference(&r, "cache.m5.large");
    let node = (cat()
        .type_spec(Service::ElastiCache, "ap-southeast-1", "cache.m5.xlarge")
        .unwrap()
        .usd_per_hour
        - cat()
            .type_spec(Service::ElastiCache, "ap-southeast-1", "cache.m5.large")
            .unwrap()
            .usd_per_hour)
        * HOURS_PER_MONTH;
    assert!((saving - node * 2.0 * 0.8).abs() < 1e-9);
    assert_eq!(rec.monthly_savings_usd, Some(round2(saving)));
}

#[test]
fn lambda_from_list_functions() {
    let set = default_thresholds().unwrap();
    let r = discovered(
        Service::Lambda,
        "fn-resize",
        "us-west-2",
        None,
        json!({"memorySize": 1024, "architecture": "x86_64", "runtime": "python3.12"}),
    );
    let mut s = lambda_series("fn-resize", 5.0);
    s.push(hourly(
        "fn-resize",
        Service::Lambda,
        names::INSIGHTS_MEMORY_UTILIZATION,
        "Maximum",
        168,
        |_| 20.0,
    ));
    let rec = &recommend(&r, &s, &set, now())[0];
    assert_eq!(rec.target_type.as_deref(), Some("256 MB"));
    // 1,000 invocations an hour of 120 ms for 7 days, read over the 14-day
    // window and scaled to a month.
    let p = cat().lambda("us-west-2").unwrap();
    let invocations = 1000.0 * 24.0 * 7.0 * (730.0 / (14.0 * 24.0));
    let gb_s = |mb: f64| invocations * 0.120 * mb / 1024.0;
    let saving = (gb_s(1024.0) - gb_s(256.0)) * p.x86_64.usd_per_gb_second;
    let got = rec.monthly_savings_usd.unwrap();
    assert!((got - round2(saving)).abs() <= 0.011, "{got} vs {saving}");
}

#[test]
fn ecs_from_describe_services_and_task_definitions() {
    let set = default_thresholds().unwrap();
    let r = discovered(
        Service::Ecs,
        "svc-api",
        "eu-central-1",
        None,
        json!({"cpu": "2048", "memory": "4096", "desiredCount": 4, "launchType": "FARGATE"}),
    );
    let s = vec![
        flat(
            "svc-api",
            Service::Ecs,
            names::CPU_UTILIZATION,
            "Maximum",
            30.0,
        ),
        flat(
            "svc-api",
            Service::Ecs,
            names::CPU_UTILIZATION,
            "Average",
            25.0,
        ),
        flat(
            "svc-api",
            Service::Ecs,
            names::MEMORY_UTILIZATION,
            "Maximum",
            30.0,
        ),
    ];
    let rec = &recommend(&r, &s, &set, now())[0];
    assert_eq!(
        rec.target_type.as_deref(),
        Some("cpu 1024 / memory 2048 MB")
    );
    let f = &cat().fargate("eu-central-1").unwrap().x86_64;
    let task = |vcpu: f64, gb: f64| vcpu * f.usd_per_vcpu_hour + gb * f.usd_per_gb_hour;
    let saving = 4.0 * (task(2.0, 4.0) - task(1.0, 2.0)) * HOURS_PER_MONTH;
    assert_eq!(rec.monthly_savings_usd, Some(round2(saving)));
}

#[test]
fn dynamodb_from_describe_table() {
    let set = default_thresholds().unwrap();
    let r = discovered(
        Service::DynamoDb,
        "orders",
        "ap-northeast-1",
        Some("PROVISIONED"),
        json!({"provisionedReadCapacityUnits": 100, "provisionedWriteCapacityUnits": 50}),
    );
    let s = vec![
        hourly(
            "orders",
            Service::DynamoDb,
            names::CONSUMED_READ_CAPACITY_UNITS,
            "Sum",
            336,
            |h| if h % 24 == 12 { 36_000.0 } else { 3600.0 },
        ),
        hourly(
            "orders",
            Service::DynamoDb,
            names::CONSUMED_WRITE_CAPACITY_UNITS,
            "Sum",
            336,
            |_| 3600.0,
        ),
    ];
    let a = analyze(&r, &s, &set, now());
    let rec = a.recommendation.unwrap();
    let lower = rec
        .alternatives
        .iter()
        .find(|x| x.action == Action::LowerProvisionedCapacity)
        .unwrap();
    assert_eq!(lower.target_type.as_deref(), Some("13 RCU / 2 WCU"));
    let p = cat().dynamodb("ap-northeast-1").unwrap();
    let saving = (87.0 * p.usd_per_rcu_hour + 48.0 * p.usd_per_wcu_hour) * HOURS_PER_MONTH;
    assert_eq!(lower.monthly_savings_usd, Some(round2(saving)));
}

#[test]
fn s3_from_list_buckets() {
    let set = default_thresholds().unwrap();
    let r = discovered(
        Service::S3,
        "logs-archive",
        "eu-central-1",
        None,
        json!({"lifecycleRules": 0}),
    );
    let size = 500.0 * GIB;
    let s = vec![
        daily_series(
            "logs-archive",
            Service::S3,
            names::BUCKET_SIZE_BYTES,
            "Average",
            30,
            move |_| size,
        ),
        daily_series(
            "logs-archive",
            Service::S3,
            names::NUMBER_OF_OBJECTS,
            "Average",
            30,
            |_| 500_000.0,
        ),
        daily_series(
            "logs-archive",
            Service::S3,
            names::GET_REQUESTS,
            "Sum",
            30,
            |d| if d % 10 == 0 { 50.0 } else { 0.0 },
        ),
    ];
    let rec = &recommend(&r, &s, &set, now())[0];
    assert_eq!(rec.target_type.as_deref(), Some("STANDARD_IA"));
    let p = cat().s3("eu-central-1").unwrap();
    let saving = 500.0
        * (p.storage_usd_per_gb_month["STANDARD"] - p.storage_usd_per_gb_month["STANDARD_IA"]);
    // Retrieval of the few objects read costs cents.
    let got = rec.monthly_savings_usd.unwrap();
    assert!(got <= saving && saving - got < 0.05, "{got} vs {saving}");
}

#[test]
fn ebs_from_describe_volumes() {
    let set = default_thresholds().unwrap();
    let r = discovered(
        Service::Ebs,
        "vol-0b2",
        "us-east-2",
        Some("gp2"),
        json!({"sizeGiB": 1000, "iops": 3000, "state": "in-use", "attachedTo": "i-0a1"}),
    );
    let s = vec![
        flat(
            "vol-0b2",
            Service::Ebs,
            names::VOLUME_READ_OPS,
            "Sum",
            1000.0 * 3600.0,
        ),
        flat(
            "vol-0b2",
            Service::Ebs,
            names::VOLUME_WRITE_OPS,
            "Sum",
            500.0 * 3600.0,
        ),
    ];
    let rec = &recommend(&r, &s, &set, now())[0];
    assert_eq!(rec.target_type.as_deref(), Some("gp3"));
    let p = cat().ebs("us-east-2").unwrap();
    // gp3 with gp2's 3,000 IOPS and 250 MiB/s.
    let gp3 = 1000.0 * p.usd_per_gb_month["gp3"] + 125.0 * p.gp3_usd_per_mibps_month;
    assert_eq!(
        rec.monthly_savings_usd,
        Some(round2(1000.0 * p.usd_per_gb_month["gp2"] - gp3))
    );
}

#[test]
fn an_excluded_resource_is_never_recommended() {
    let set = default_thresholds().unwrap();
    let mut r = discovered(
        Service::Ec2,
        "i-keep",
        "us-east-1",
        Some("m5.xlarge"),
        json!({}),
    );
    r.tags.insert("finops:exclude".into(), "true".into());
    let a = analyze(
        &r,
        &[flat(
            "i-keep",
            Service::Ec2,
            names::CPU_UTILIZATION,
            "Maximum",
            1.0,
        )],
        &set,
        now(),
    );
    assert!(a.excluded && a.recommendation.is_none() && a.verdicts.is_empty());
    let mut engine = Engine::with_policy(
        &set,
        cat(),
        crate::analysis::TagPolicy {
            exclude_key: "keep".into(),
            owner_keys: vec!["cost-center".into()],
        },
    );
    r.tags.insert("cost-center".into(), "cc-7".into());
    let recs = engine.recommend(
        &r,
        &[flat(
            "i-keep",
            Service::Ec2,
            names::CPU_UTILIZATION,
            "Maximum",
            12.0,
        )],
        now(),
    );
    assert_eq!(recs[0].owner.as_deref(), Some("cc-7"));
}
