//! Properties over generated series: monotone thresholds, complete
//! recommendations, and buffer reuse that never leaks between resources.

use super::*;

fn any_series() -> impl Strategy<Value = (Vec<f64>, i64)> {
    (prop::collection::vec(0.0f64..100.0, 1..400), 0i64..48)
}

fn window_rule(op: Operator, value: f64, stat: &str) -> ThresholdRule {
    ThresholdRule {
        id: "t".into(),
        service: Service::Ec2,
        finding: FindingKind::OverProvisioned,
        action: Action::Rightsize,
        description: String::new(),
        conditions: vec![crate::domain::Condition {
            metric: names::CPU_UTILIZATION.into(),
            statistic: stat.into(),
            operator: op,
            value,
            upper: None,
        }],
        aggregation: Aggregation::Window,
        lookback_days: 14,
        min_days: None,
        of_last_days: None,
        min_coverage: 0.0,
        headroom_percent: None,
    }
}

fn series_of(values: &[f64], gap: i64) -> Vec<MetricSeries> {
    series_for("i-p", Service::Ec2, values, gap)
}

/// Hourly CPUUtilization of `id`: `values`, then `gap` hours without data
/// before `now`.
fn series_for(id: &str, svc: Service, values: &[f64], gap: i64) -> Vec<MetricSeries> {
    let n = values.len() as i64;
    let v = values.to_vec();
    let mut s = hourly(
        id,
        svc,
        names::CPU_UTILIZATION,
        "Average",
        n + gap,
        move |h| v.get(h as usize).copied().unwrap_or(f64::NAN),
    );
    s.points.truncate(n as usize);
    vec![s]
}

fn stat_strategy() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "Average",
        "Maximum",
        "Minimum",
        "Sum",
        "p50",
        "p90",
        "p99.5",
        "SampleCount",
    ])
}

proptest! {
    /// An engine carries its memo, day cache and scratch from one resource to
    /// the next: whatever it kept from B must not change its verdict on A.
    #[test]
    fn same_input_same_verdict(
        (v, gap) in any_series(),
        t in 0.0f64..100.0,
        st in stat_strategy(),
        (b_values, b_gap) in any_series(),
        b_service in prop::sample::select(vec![Service::Ec2, Service::Rds]),
        b_typed in any::<bool>(),
    ) {
        let r = res(Service::Ec2, "i-p", None);
        let s = series_of(&v, gap);
        let rule = window_rule(Operator::LessThan, t, st);
        prop_assert_eq!(evaluate_rule(&rule, &r, &s, now()), evaluate_rule(&rule, &r, &s, now()));

        let set = default_thresholds().unwrap();
        let b_type = match (b_typed, b_service) {
            (false, _) => None,
            (true, Service::Rds) => Some("db.m5.large"),
            (true, _) => Some("m5.xlarge"),
        };
        let b = res(b_service, "i-b", b_type);
        let b_series = series_for("i-b", b_service, &b_values, b_gap);
        let fresh_a = Engine::new(&set).analyze(&r, &s, now());
        let fresh_b = Engine::new(&set).analyze(&b, &b_series, now());

        let mut engine = Engine::new(&set);
        prop_assert_eq!(&engine.analyze(&r, &s, now()), &fresh_a);
        prop_assert_eq!(&engine.analyze(&b, &b_series, now()), &fresh_b);
        prop_assert_eq!(&engine.analyze(&r, &s, now()), &fresh_a);
    }

    #[test]
    fn raising_a_less_than_threshold_never_unflags((v, gap) in any_series(), a in 0.0f64..120.0, b in 0.0f64..120.0, st in stat_strategy()) {
        let (lo, hi) = (a.min(b), a.max(b));
        let r = res(Service::Ec2, "i-p", None);
        let s = series_of(&v, gap);
        let low = evaluate_rule(&window_rule(Operator::LessThan, lo, st), &r, &s, now());
        let high = evaluate_rule(&window_rule(Operator::LessThan, hi, st), &r, &s, now());
        if low.is_flagged() { prop_assert!(high.is_flagged()); }
        let low = evaluate_rule(&window_rule(Operator::GreaterThan, lo, st), &r, &s, now());
        let high = evaluate_rule(&window_rule(Operator::GreaterThan, hi, st), &r, &s, now());
        if high.is_flagged() { prop_assert!(low.is_flagged()); }
    }

    #[test]
    fn daily_rules_are_monotone_too(days in prop::collection::vec(0.0f64..30.0, 14), a in 0.0f64..30.0, b in 0.0f64..30.0, n in 1u32..=14) {
        let (lo, hi) = (a.min(b), a.max(b));
        let r = res(Service::Ec2, "i-p", None);
        let s = vec![hourly("i-p", Service::Ec2, names::CPU_UTILIZATION, "Average", 336, |h| days[(h / 24) as usize])];
        let mut rule = window_rule(Operator::LessThan, lo, "Average");
        rule.aggregation = Aggregation::Daily;
        rule.min_days = Some(n);
        rule.of_last_days = Some(14);
        let low = evaluate_rule(&rule, &r, &s, now());
        rule.conditions[0].value = hi;
        let high = evaluate_rule(&rule, &r, &s, now());
        prop_assert!(low.daily.unwrap().qualifying_days <= high.daily.unwrap().qualifying_days);
        if low.is_flagged() { prop_assert!(high.is_flagged()); }
    }

    #[test]
    fn every_actionable_finding_yields_a_complete_recommendation(
        svc in prop::sample::select(Service::ALL.to_vec()),
        level in prop::collection::vec(0.0f64..100.0, 8),
        hours in prop::sample::select(vec![20i64, 40, 200, 336, 720]),
        typed in any::<bool>(),
        cost in prop::option::of(0.0f64..1000.0),
    ) {
        let set = default_thresholds().unwrap();
        let id = "r-1";
        let mut r = res(svc, id, None);
        r.monthly_cost_usd = cost;
        if typed {
            r.resource_type = match svc {
                Service::Ec2 => Some("m5.2xlarge".into()),
                Service::Rds => Some("db.r5.xlarge".into()),
                Service::ElastiCache => Some("cache.m5.large".into()),
                _ => None,
            };
            r.memory_mb = Some(2048);
            r.attributes.insert("cpu".into(), serde_json::json!(1024));
            r.attributes.insert("provisionedReadCapacityUnits".into(), serde_json::json!(50));
            r.attributes.insert("provisionedWriteCapacityUnits".into(), serde_json::json!(20));
        }
        let queries = crate::analysis::required_queries(&set, svc);
        let series: Vec<MetricSeries> = queries
            .iter()
            .enumerate()
            .map(|(i, q)| {
                let l = level[i % level.len()];
                let scale = match q.metric.as_str() {
                    names::NETWORK_IN | names::NETWORK_OUT => 2e4,
                    names::BUCKET_SIZE_BYTES => 1e9,
                    names::PROVISIONED_READ_CAPACITY_UNITS | names::PROVISIONED_WRITE_CAPACITY_UNITS => 10.0,
                    names::CONSUMED_READ_CAPACITY_UNITS | names::CONSUMED_WRITE_CAPACITY_UNITS => 36.0,
                    names::ERRORS => 0.2,
                    _ => 1.0,
                };
                let mut s = hourly(id, svc, &q.metric, &q.statistic, hours, move |h| l * scale * (1.0 + 0.2 * ((h % 7) as f64 / 7.0)));
                s.period_seconds = 3600;
                s
            })
            .collect();
        let a = analyze(&r, &series, &set, now());
        let flagged: Vec<_> = a.verdicts.iter().filter(|v| v.is_flagged() && v.finding.is_actionable()).collect();
        prop_assert!(a.recommendation.is_none() || !flagged.is_empty());
        // A flagged rule yields a recommendation unless it is a removal the
        // CPU guard refused or a volume rule for another volume type.
        let excused = |v: &&crate::analysis::evaluate::Verdict| {
            (svc == Service::Ebs && v.rule_id != "ebs-idle" && v.rule_id != "ebs-unattached")
                || matches!(v.action, Action::Stop | Action::Terminate | Action::DeleteUnused)
                    && !v.conditions.iter().any(|c| c.metric == names::CPU_UTILIZATION)
        };
        if a.recommendation.is_none() {
            prop_assert!(flagged.iter().all(excused), "{:?}", flagged);
        }
        if a.verdicts.iter().all(|v| v.outcome == Outcome::InsufficientData) {
            prop_assert!(a.recommendation.is_none());
            prop_assert_eq!(a.finding, FindingKind::InsufficientData);
        }
        if let Some(s) = a.utilization_score { prop_assert!(s <= 100); }
        if let Some(rec) = a.recommendation {
            prop_assert!(!rec.reason.trim().is_empty());
            prop_assert!((0.0..=1.0).contains(&rec.confidence));
            prop_assert!(rec.risk <= 4);
            let costs_more = |a: Action| matches!(a, Action::ScaleUp | Action::IncreaseMemory);
            prop_assert!(rec.monthly_savings_usd.is_none_or(|s| s.is_finite() && (s >= 0.0 || costs_more(rec.action))));
            if rec.monthly_savings_usd.is_some_and(|s| s < 0.0) {
                prop_assert!(rec.reason.contains("/month more"), "{}", rec.reason);
            }
            if rec.monthly_savings_usd.is_none() {
                prop_assert!(rec.reason.contains("no price known") || rec.reason.contains("no cheaper type"), "{}", rec.reason);
            }
            prop_assert!(rec.savings_percent.is_none_or(|p| p <= 100.0));
            prop_assert_eq!(&rec.id, &Recommendation::stable_id(&crate::domain::ResourceKey::new(None, "us-east-1", id), rec.action));
            for alt in &rec.alternatives {
                prop_assert!(alt.risk <= 4);
                prop_assert!(alt.monthly_savings_usd.is_none_or(|s| s.is_finite() && (s >= 0.0 || costs_more(alt.action))));
                prop_assert!(!alt.description.is_empty());
            }
        }
    }
}
