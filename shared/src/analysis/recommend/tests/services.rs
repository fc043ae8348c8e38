//! Worked examples per service: the figures a reader can check by hand.

use super::*;

#[test]
fn ec2_four_low_days_of_fourteen_is_flagged_three_is_not() {
    let set = default_thresholds().unwrap();
    let r = res(Service::Ec2, "i-1", Some("m5.xlarge"));
    let ta = rule(&set, "ec2-low-utilization");
    let v4 = evaluate_rule(ta, &r, &ec2_series("i-1", 4), now());
    assert_eq!(v4.outcome, Outcome::Flagged);
    assert_eq!(v4.daily.unwrap().qualifying_days, 4);
    // The worst qualifying day's average.
    assert!((v4.conditions[0].measured.unwrap() - 4.1).abs() < 1e-9);
    let v3 = evaluate_rule(ta, &r, &ec2_series("i-1", 3), now());
    assert_eq!(v3.outcome, Outcome::Clear);
    assert_eq!(v3.daily.unwrap().qualifying_days, 3);

    let recs = recommend(&r, &ec2_series("i-1", 4), &set, now());
    assert_eq!(recs.len(), 1);
    let rec = &recs[0];
    assert_eq!(rec.finding, FindingKind::Underutilized);
    assert!(
        rec.reason.contains("on 4 of the last 14 days"),
        "{}",
        rec.reason
    );
    assert!(
        rec.reason.contains("CPUUtilization daily Average <= 10%"),
        "{}",
        rec.reason
    );
    assert!(
        rec.reason.contains("NetworkBytes daily Sum <= 5 MB"),
        "{}",
        rec.reason
    );
    // Stop on low days saves 4/14 of $140.16; rightsizing (not fitting at
    // a 70% peak) must not be preferred with a higher risk.
    assert_eq!(rec.action, Action::Stop);
    assert_eq!(
        rec.monthly_savings_usd,
        Some(round2(0.192 * 730.0 * 4.0 / 14.0))
    );
    assert!(recommend(&r, &ec2_series("i-1", 3), &set, now()).is_empty());
    assert_eq!(
        analyze(&r, &ec2_series("i-1", 3), &set, now()).finding,
        FindingKind::Optimized
    );
}

#[test]
fn network_over_five_megabytes_a_day_disqualifies_the_day() {
    let set = default_thresholds().unwrap();
    let r = res(Service::Ec2, "i-2", None);
    let mut s = ec2_series("i-2", 14);
    // 110 KB + 100 KB an hour = 5.04 MB a day: just over 5 MB.
    s[3] = hourly("i-2", Service::Ec2, names::NETWORK_OUT, "Sum", 336, |_| {
        110_000.0
    });
    let v = evaluate_rule(rule(&set, "ec2-low-utilization"), &r, &s, now());
    assert_eq!(v.outcome, Outcome::Clear);
    assert_eq!(v.daily.unwrap().days_with_data, 14);
}

#[test]
fn rds_with_one_connection_on_day_six_of_seven_is_not_idle() {
    let set = default_thresholds().unwrap();
    let r = res(Service::Rds, "db-1", Some("db.m5.large"));
    let idle = rule(&set, "rds-idle");
    let one = vec![hourly(
        "db-1",
        Service::Rds,
        names::DATABASE_CONNECTIONS,
        "Maximum",
        7 * 24,
        |h| {
            if h == 5 * 24 + 10 {
                1.0
            } else {
                0.0
            }
        },
    )];
    let v = evaluate_rule(idle, &r, &one, now());
    assert_eq!(v.outcome, Outcome::Clear);
    assert_eq!(v.conditions[0].measured, Some(1.0));
    let rec = recommend(&r, &one, &set, now());
    assert!(rec.iter().all(|x| x.finding != FindingKind::Idle));

    let none = vec![hourly(
        "db-1",
        Service::Rds,
        names::DATABASE_CONNECTIONS,
        "Maximum",
        7 * 24,
        |_| 0.0,
    )];
    assert_eq!(
        evaluate_rule(idle, &r, &none, now()).outcome,
        Outcome::Flagged
    );
    let rec = recommend(&r, &none, &set, now());
    assert_eq!(rec[0].finding, FindingKind::Idle);
    assert_eq!(rec[0].action, Action::Terminate);
    assert_eq!(rec[0].monthly_savings_usd, Some(round2(0.171 * 730.0)));
    assert!(rec[0].alternatives.iter().any(|a| a.action == Action::Stop));
}

#[test]
fn lambda_errors_over_ten_percent_on_one_day_are_flagged() {
    let set = default_thresholds().unwrap();
    let mut r = res(Service::Lambda, "fn-1", None);
    r.memory_mb = Some(512);
    let ta = rule(&set, "lambda-high-error-rate");
    let v = evaluate_rule(ta, &r, &lambda_series("fn-1", 101.0), now());
    assert_eq!(v.outcome, Outcome::Flagged);
    assert!((v.conditions[0].measured.unwrap() - 10.1).abs() < 1e-9);
    let v = evaluate_rule(ta, &r, &lambda_series("fn-1", 99.0), now());
    assert_eq!(v.outcome, Outcome::Clear);
    let rec = recommend(&r, &lambda_series("fn-1", 101.0), &set, now());
    assert_eq!(rec[0].finding, FindingKind::Erroring);
    assert_eq!(rec[0].action, Action::InvestigateErrors);
    assert!(
        rec[0].reason.contains("ErrorRate daily Average > 10%"),
        "{}",
        rec[0].reason
    );
    assert!(rec[0].reason.contains("10.1%"), "{}", rec[0].reason);
    assert!(rec[0].monthly_savings_usd.is_some_and(|s| s > 0.0));
}

#[test]
fn unused_lambda_needs_a_fetched_series() {
    let set = default_thresholds().unwrap();
    let r = res(Service::Lambda, "fn-2", None);
    let empty = vec![MetricSeries {
        resource_id: "fn-2".into(),
        service: Service::Lambda,
        metric: names::INVOCATIONS.into(),
        statistic: "Sum".into(),
        period_seconds: 3600,
        points: vec![],
    }];
    let rec = recommend(&r, &empty, &set, now());
    assert_eq!(rec[0].action, Action::DeleteUnused);
    assert_eq!(rec[0].monthly_savings_usd, Some(0.0));
    // Never fetched: nothing is known.
    let a = analyze(&r, &[], &set, now());
    assert_eq!(a.finding, FindingKind::InsufficientData);
    assert!(a.recommendation.is_none());
    // Created 3 days ago: too young to call unused.
    let mut young = r.clone();
    young.attributes.insert(
        "createdAt".into(),
        serde_json::json!("2024-06-12T00:00:00Z"),
    );
    assert!(recommend(&young, &empty, &set, now()).is_empty());
}

#[test]
fn too_little_data_is_insufficient_never_a_recommendation() {
    let set = default_thresholds().unwrap();
    let r = res(Service::Ec2, "i-3", Some("m5.xlarge"));
    let s = vec![
        hourly(
            "i-3",
            Service::Ec2,
            names::CPU_UTILIZATION,
            "Average",
            20,
            |_| 1.0,
        ),
        hourly(
            "i-3",
            Service::Ec2,
            names::CPU_UTILIZATION,
            "Maximum",
            20,
            |_| 1.0,
        ),
        hourly("i-3", Service::Ec2, names::NETWORK_IN, "Sum", 20, |_| 0.0),
        hourly("i-3", Service::Ec2, names::NETWORK_OUT, "Sum", 20, |_| 0.0),
    ];
    let a = analyze(&r, &s, &set, now());
    assert_eq!(a.finding, FindingKind::InsufficientData);
    assert!(a.recommendation.is_none());
    assert!(a
        .verdicts
        .iter()
        .all(|v| v.outcome == Outcome::InsufficientData));
}

#[test]
fn compute_optimizer_needs_thirty_hours() {
    let set = default_thresholds().unwrap();
    let co = rule(&set, "ec2-over-provisioned");
    let r = res(Service::Ec2, "i-4", Some("m5.xlarge"));
    let cpu = |h| {
        vec![hourly(
            "i-4",
            Service::Ec2,
            names::CPU_UTILIZATION,
            "Maximum",
            h,
            |_| 12.0,
        )]
    };
    assert_eq!(
        evaluate_rule(co, &r, &cpu(30), now()).outcome,
        Outcome::Flagged
    );
    assert_eq!(
        evaluate_rule(co, &r, &cpu(29), now()).outcome,
        Outcome::InsufficientData
    );
}

#[test]
fn over_provisioned_m5_xlarge_is_rightsized_with_graviton_alternatives() {
    let set = default_thresholds().unwrap();
    let r = res(Service::Ec2, "i-5", Some("m5.xlarge"));
    let s = vec![
        hourly(
            "i-5",
            Service::Ec2,
            names::CPU_UTILIZATION,
            "Average",
            336,
            |h| 10.0 + (h % 24) as f64 * 0.3,
        ),
        hourly(
            "i-5",
            Service::Ec2,
            names::CPU_UTILIZATION,
            "Maximum",
            336,
            |h| 15.0 + (h % 24) as f64 * 0.5,
        ),
        hourly("i-5", Service::Ec2, names::NETWORK_IN, "Sum", 336, |_| 1e9),
        hourly("i-5", Service::Ec2, names::NETWORK_OUT, "Sum", 336, |_| 1e9),
    ];
    let a = analyze(&r, &s, &set, now());
    let rec = a.recommendation.unwrap();
    assert_eq!(rec.finding, FindingKind::OverProvisioned);
    assert_eq!(rec.action, Action::Rightsize);
    assert_eq!(rec.target_type.as_deref(), Some("m5.large"));
    assert_eq!(rec.monthly_savings_usd, Some(70.08));
    assert_eq!(rec.savings_percent, Some(50.0));
    // p99.5 of maxima = 26.5% -> 53% on half the vCPUs: limit 80 -> risk 1.
    assert_eq!(rec.risk, 1);
    let g = rec
        .alternatives
        .iter()
        .find(|x| x.target_type.as_deref() == Some("m6g.large"))
        .unwrap();
    assert_eq!(g.monthly_savings_usd, Some(round2((0.192 - 0.077) * 730.0)));
    assert_eq!(g.risk, 2);
    let mg = rec
        .alternatives
        .iter()
        .find(|x| x.action == Action::MoveToGraviton)
        .unwrap();
    assert_eq!(mg.target_type.as_deref(), Some("m6g.xlarge"));
    assert!(
        rec.reason
            .contains("CPUUtilization p99.5 over 14 days is 26.5% (threshold < 40%)"),
        "{}",
        rec.reason
    );
    assert_eq!(
        rec.id,
        Recommendation::stable_id(
            &crate::domain::ResourceKey::new(None, "us-east-1", "i-5"),
            Action::Rightsize
        )
    );
    assert_eq!(rec.threshold_version, 0);
    // p95 of the Maximum series is 26 -> 26 / 80 = 32.5 -> 33.
    assert_eq!(a.utilization_score, Some(33));
    // coverage 1 x (0.6 + 0.4 x (40 - 26.5) / 40) = 0.735
    assert!(
        (rec.confidence - 0.735).abs() <= 0.0051,
        "{}",
        rec.confidence
    );
}

#[test]
fn a_resource_seen_only_in_cloudwatch_is_analysed_without_inventing_a_price() {
    let set = default_thresholds().unwrap();
    let mut r = res(Service::Ec2, "i-cw", None);
    r.region = "eu-west-1".into();
    let s = vec![hourly(
        "i-cw",
        Service::Ec2,
        names::CPU_UTILIZATION,
        "Maximum",
        336,
        |_| 10.0,
    )];
    let rec = recommend(&r, &s, &set, now());
    assert_eq!(rec.len(), 1);
    assert_eq!(rec[0].finding, FindingKind::OverProvisioned);
    assert_eq!(rec[0].monthly_savings_usd, None);
    assert_eq!(rec[0].savings_percent, None);
    assert!(
        rec[0]
            .reason
            .contains("no price known for ec2 i-cw: its type is unknown"),
        "{}",
        rec[0].reason
    );
    // A known type in a region the catalogue lacks.
    r.resource_type = Some("m5.xlarge".into());
    r.region = "sa-east-1".into();
    let rec = recommend(&r, &s, &set, now());
    assert!(
        rec[0].reason.contains(
            "no price known for ec2 m5.xlarge in sa-east-1: the catalogue has no prices for that region"
        ),
        "{}",
        rec[0].reason
    );
    assert_eq!(rec[0].target_type.as_deref(), Some("m5.large"));
    // With its cost from the inventory, the ratio gives the saving.
    r.monthly_cost_usd = Some(200.0);
    let rec = recommend(&r, &s, &set, now());
    assert_eq!(rec[0].monthly_savings_usd, Some(100.0));
}

#[test]
fn under_provisioned_wins_over_savings_and_states_its_extra_cost() {
    let set = default_thresholds().unwrap();
    let r = res(Service::ElastiCache, "c-1", Some("cache.r5.large"));
    let s = vec![
        hourly(
            "c-1",
            Service::ElastiCache,
            names::CPU_UTILIZATION,
            "Maximum",
            336,
            |_| 10.0,
        ),
        hourly(
            "c-1",
            Service::ElastiCache,
            names::DATABASE_MEMORY_USAGE_PERCENTAGE,
            "Maximum",
            336,
            |_| 95.0,
        ),
        hourly(
            "c-1",
            Service::ElastiCache,
            names::CURR_CONNECTIONS,
            "Maximum",
            336,
            |_| 40.0,
        ),
    ];
    let rec = recommend(&r, &s, &set, now());
    assert_eq!(rec[0].finding, FindingKind::UnderProvisioned);
    assert_eq!(rec[0].action, Action::ScaleUp);
    assert_eq!(rec[0].target_type.as_deref(), Some("cache.r5.xlarge"));
    // One size up doubles the node's $157.68 a month: a negative saving.
    assert_eq!(rec[0].monthly_savings_usd, Some(-157.68));
    assert_eq!(rec[0].savings_percent, Some(-100.0));
    assert!(
        rec[0].reason.contains("Costs about $157.68/month more"),
        "{}",
        rec[0].reason
    );
    assert!(!rec[0].reason.contains("Saves"), "{}", rec[0].reason);
}

#[test]
fn dynamodb_low_utilisation_lowers_capacity_or_switches_to_on_demand() {
    let set = default_thresholds().unwrap();
    let r = res(Service::DynamoDb, "tbl", None);
    let s = vec![
        hourly(
            "tbl",
            Service::DynamoDb,
            names::CONSUMED_READ_CAPACITY_UNITS,
            "Sum",
            336,
            |h| if h % 24 == 12 { 36_000.0 } else { 3600.0 },
        ),
        hourly(
            "tbl",
            Service::DynamoDb,
            names::CONSUMED_WRITE_CAPACITY_UNITS,
            "Sum",
            336,
            |_| 3600.0,
        ),
        hourly(
            "tbl",
            Service::DynamoDb,
            names::PROVISIONED_READ_CAPACITY_UNITS,
            "Average",
            336,
            |_| 100.0,
        ),
        hourly(
            "tbl",
            Service::DynamoDb,
            names::PROVISIONED_WRITE_CAPACITY_UNITS,
            "Average",
            336,
            |_| 50.0,
        ),
    ];
    let a = analyze(&r, &s, &set, now());
    let flagged: Vec<&str> = a
        .verdicts
        .iter()
        .filter(|v| v.is_flagged())
        .map(|v| v.rule_id.as_str())
        .collect();
    assert_eq!(
        flagged,
        vec![
            "dynamodb-over-provisioned-read",
            "dynamodb-over-provisioned-write",
            "dynamodb-low-utilization"
        ]
    );
    let rec = a.recommendation.unwrap();
    // provisioned: (100 * 0.00013 + 50 * 0.00065) * 730 = 33.215
    // on-demand: reads (13*1 + 10)/24... computed below; it is far cheaper.
    assert_eq!(rec.action, Action::SwitchToOnDemand);
    let lower = rec
        .alternatives
        .iter()
        .find(|x| x.action == Action::LowerProvisionedCapacity)
        .unwrap();
    // peak read 10/s -> 13 RCU; write 1/s -> 2 WCU (ceil(1/0.8))
    assert_eq!(lower.target_type.as_deref(), Some("13 RCU / 2 WCU"));
    assert_eq!(
        lower.monthly_savings_usd,
        Some(round2((87.0 * 0.00013 + 48.0 * 0.00065) * 730.0))
    );
    let od_reads = (23.0 * 3600.0 + 36_000.0) * 14.0 * (730.0 / (14.0 * 24.0));
    let od_writes = 3600.0 * 336.0 * (730.0 / 336.0);
    let od = od_reads / 1e6 * 0.125 + od_writes / 1e6 * 0.625;
    let provisioned = (100.0 * 0.00013 + 50.0 * 0.00065) * 730.0;
    assert_eq!(rec.monthly_savings_usd, Some(round2(provisioned - od)));
}

#[test]
fn s3_cold_bucket_moves_to_infrequent_access() {
    let set = default_thresholds().unwrap();
    let r = res(Service::S3, "logs-bucket", None);
    let size = 500.0 * GIB;
    let s = vec![
        daily_series(
            "logs-bucket",
            Service::S3,
            names::BUCKET_SIZE_BYTES,
            "Average",
            30,
            move |_| size,
        ),
        daily_series(
            "logs-bucket",
            Service::S3,
            names::NUMBER_OF_OBJECTS,
            "Average",
            30,
            |_| 500_000.0,
        ),
        daily_series(
            "logs-bucket",
            Service::S3,
            names::GET_REQUESTS,
            "Sum",
            30,
            |d| {
                if d % 10 == 0 {
                    50.0
                } else {
                    0.0
                }
            },
        ),
    ];
    let rec = recommend(&r, &s, &set, now());
    assert_eq!(rec[0].finding, FindingKind::Underutilized);
    assert_eq!(rec[0].action, Action::ChangeStorageClass);
    assert_eq!(rec[0].target_type.as_deref(), Some("STANDARD_IA"));
    // 150 gets x 1 MiB objects retrieved ~ 0.15 GB: cents.
    let s_ia = rec[0].monthly_savings_usd.unwrap();
    assert!((s_ia - 500.0 * (0.023 - 0.0125)).abs() < 0.01, "{s_ia}");
    assert!(rec[0]
        .alternatives
        .iter()
        .any(|a| a.target_type.as_deref() == Some("INTELLIGENT_TIERING")));
}

#[test]
fn ecs_over_provisioned_fargate_tasks_shrink() {
    let set = default_thresholds().unwrap();
    let mut r = res(Service::Ecs, "svc-1", None);
    r.memory_mb = Some(4096);
    r.attributes.insert("cpu".into(), serde_json::json!(2048));
    r.attributes
        .insert("desiredCount".into(), serde_json::json!(4));
    let s = vec![
        hourly(
            "svc-1",
            Service::Ecs,
            names::CPU_UTILIZATION,
            "Maximum",
            336,
            |_| 30.0,
        ),
        hourly(
            "svc-1",
            Service::Ecs,
            names::CPU_UTILIZATION,
            "Average",
            336,
            |_| 25.0,
        ),
        hourly(
            "svc-1",
            Service::Ecs,
            names::MEMORY_UTILIZATION,
            "Maximum",
            336,
            |_| 30.0,
        ),
    ];
    let rec = recommend(&r, &s, &set, now());
    assert_eq!(rec[0].finding, FindingKind::OverProvisioned);
    assert_eq!(rec[0].action, Action::ShrinkTasks);
    // 30% of 2048 units at <= 80% -> 1024 units (60%); 30% of 4 GB -> 2 GB (60%).
    assert_eq!(
        rec[0].target_type.as_deref(),
        Some("cpu 1024 / memory 2048 MB")
    );
    let cur = 4.0 * (2.0 * 0.04048 + 4.0 * 0.004445) * 730.0;
    assert_eq!(rec[0].monthly_savings_usd, Some(round2(cur / 2.0)));
    assert!(rec[0]
        .alternatives
        .iter()
        .any(|a| a.action == Action::ReduceTaskCount
            && a.target_type.as_deref() == Some("desiredCount 2")));
}

#[test]
fn lambda_memory_reduction_is_named_in_megabytes() {
    let set = default_thresholds().unwrap();
    let mut r = res(Service::Lambda, "fn-3", None);
    r.memory_mb = Some(1024);
    let mut s = lambda_series("fn-3", 5.0);
    s.push(hourly(
        "fn-3",
        Service::Lambda,
        names::INSIGHTS_MEMORY_UTILIZATION,
        "Maximum",
        168,
        |_| 20.0,
    ));
    let rec = recommend(&r, &s, &set, now());
    assert_eq!(rec[0].action, Action::ReduceMemory);
    // 204.8 MB used / 0.8 = 256 MB
    assert_eq!(rec[0].target_type.as_deref(), Some("256 MB"));
    assert!(rec[0]
        .alternatives
        .iter()
        .any(|a| a.action == Action::MoveToGraviton));
    assert!(rec[0].monthly_savings_usd.unwrap() > 0.0);
}

#[test]
fn a_rising_trend_lowers_confidence() {
    let set = default_thresholds().unwrap();
    let r = res(Service::Ec2, "i-6", Some("m5.xlarge"));
    let flat = vec![hourly(
        "i-6",
        Service::Ec2,
        names::CPU_UTILIZATION,
        "Maximum",
        336,
        |_| 20.0,
    )];
    let rising = vec![hourly(
        "i-6",
        Service::Ec2,
        names::CPU_UTILIZATION,
        "Maximum",
        336,
        |h| 5.0 + h as f64 * 0.09,
    )];
    let a = recommend(&r, &flat, &set, now());
    let b = analyze(&r, &rising, &set, now());
    assert_eq!(b.trends[0].trend.direction, TrendDirection::Increasing);
    let b = b.recommendation.unwrap();
    assert!(b.confidence < a[0].confidence);
    assert!(b.reason.contains("trending up"), "{}", b.reason);
}
