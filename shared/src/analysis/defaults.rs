//! The default threshold set (version 0), shipped as
//! `shared/data/default-thresholds.json`, and the validation every set must
//! pass before it is stored or evaluated.
//!
//! Rule ids: `ec2-idle`, `ec2-low-utilization`, `ec2-over-provisioned`,
//! `ec2-under-provisioned`, `rds-idle`, `rds-low-connections`,
//! `rds-over-provisioned`, `rds-under-provisioned`, `elasticache-idle`,
//! `elasticache-over-provisioned`, `elasticache-under-provisioned-memory`,
//! `elasticache-under-provisioned-cpu`, `lambda-high-error-rate`,
//! `lambda-unused`, `lambda-memory-over-provisioned`, `ecs-over-provisioned`,
//! `ecs-low-utilization`, `ecs-under-provisioned-cpu`,
//! `ecs-under-provisioned-memory`, `s3-unread`, `s3-infrequent-access`,
//! `s3-irregular-access`, `dynamodb-over-provisioned-read`,
//! `dynamodb-over-provisioned-write`, `dynamodb-low-utilization`, `ebs-idle`,
//! `ebs-unattached`, `ebs-gp2-to-gp3`, `ebs-iops-over-provisioned`.
//!
//! Trusted Advisor's "network I/O <= 5 MB" is the derived metric
//! `NetworkBytes` (NetworkIn + NetworkOut summed per day) with `between 0 and
//! 5000000` (decimal megabytes, the stricter reading): the inclusive `<=` of
//! the check, where `less_than` is strict.

use super::evaluate::CompiledRule;
use crate::domain::{Aggregation, Operator, ThresholdSet};
use crate::{Error, Result};
use std::collections::BTreeSet;

const DEFAULT_THRESHOLDS: &str = include_str!("../../data/default-thresholds.json");

/// Longest lookback a rule may ask for: CloudWatch keeps hourly data 455 days.
pub const MAX_LOOKBACK_DAYS: u32 = 455;

/// The built-in threshold set, version 0.
pub fn default_thresholds() -> Result<ThresholdSet> {
    let set: ThresholdSet = serde_json::from_str(DEFAULT_THRESHOLDS)?;
    validate_set(&set)?;
    Ok(set)
}

/// Checks a threshold set: unique non-empty ids, parseable statistics,
/// derived metrics used with their one statistic, `between` with an upper
/// bound above the lower, finite values, coverage in `0..=1`, headroom in
/// `0..100`, lookbacks within CloudWatch retention and consistent day counts.
/// All problems are reported at once, as one `Validation` error.
pub fn validate_set(set: &ThresholdSet) -> Result<()> {
    let mut problems = Vec::new();
    let mut ids = BTreeSet::new();
    for r in &set.rules {
        let at = format!("rule '{}'", r.id);
        if r.id.trim().is_empty() {
            problems.push("a rule has an empty id".to_string());
        } else if !ids.insert(r.id.as_str()) {
            problems.push(format!("{at}: duplicate id"));
        }
        if let Some(p) = CompiledRule::compile(r).problem {
            problems.push(format!("{at}: {p}"));
        }
        for c in &r.conditions {
            if !c.value.is_finite() || c.upper.is_some_and(|u| !u.is_finite()) {
                problems.push(format!("{at}: non-finite threshold on {}", c.metric));
            }
            if c.operator == Operator::Between && c.upper.is_some_and(|u| u < c.value) {
                problems.push(format!(
                    "{at}: between on {} has upper below value",
                    c.metric
                ));
            }
        }
        if !(0.0..=1.0).contains(&r.min_coverage) {
            problems.push(format!("{at}: minCoverage must be within 0..1"));
        }
        if let Some(h) = r.headroom_percent {
            if !(0.0..100.0).contains(&h) {
                problems.push(format!("{at}: headroomPercent must be within 0..100"));
            }
        }
        if r.lookback_days == 0 || r.lookback_days > MAX_LOOKBACK_DAYS {
            problems.push(format!(
                "{at}: lookbackDays must be within 1..={MAX_LOOKBACK_DAYS}"
            ));
        }
        match r.aggregation {
            Aggregation::Daily => {
                let m = r.of_last_days.unwrap_or(r.lookback_days);
                let n = r.min_days.unwrap_or(m);
                if m == 0 || m > MAX_LOOKBACK_DAYS {
                    problems.push(format!(
                        "{at}: ofLastDays must be within 1..={MAX_LOOKBACK_DAYS}"
                    ));
                }
                if n == 0 || n > m {
                    problems.push(format!("{at}: minDays must be within 1..=ofLastDays"));
                }
            }
            Aggregation::Window => {
                if r.min_days.is_some() || r.of_last_days.is_some() {
                    problems.push(format!(
                        "{at}: minDays/ofLastDays apply to daily rules only"
                    ));
                }
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::Validation(problems.join("; ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::metrics::required_queries;
    use crate::domain::metric::{names, namespaces};
    use crate::domain::{Action, FindingKind, Service};

    #[test]
    fn default_set_parses_validates_and_covers_every_service() {
        let set = default_thresholds().expect("default thresholds");
        assert_eq!(set.version, 0);
        for s in Service::ALL {
            assert!(set.rules.iter().any(|r| r.service == s), "{s} has no rule");
            let q = required_queries(&set, s);
            assert!(!q.is_empty(), "{s} needs no query");
        }
        let ta = set
            .rules
            .iter()
            .find(|r| r.id == "ec2-low-utilization")
            .unwrap();
        assert_eq!((ta.min_days, ta.of_last_days), (Some(4), Some(14)));
        assert_eq!(ta.finding, FindingKind::Underutilized);
        let co = set
            .rules
            .iter()
            .find(|r| r.id == "ec2-over-provisioned")
            .unwrap();
        assert_eq!(co.conditions[0].statistic, "p99.5");
        assert_eq!(co.headroom_percent, Some(20.0));
        // 30 hours of 336 must be enough for Compute Optimizer-style rules.
        assert!(30.0 / 336.0 >= co.min_coverage && 29.0 / 336.0 < co.min_coverage);
        let lambda = set
            .rules
            .iter()
            .find(|r| r.id == "lambda-high-error-rate")
            .unwrap();
        assert_eq!(lambda.action, Action::InvestigateErrors);
    }

    #[test]
    fn required_queries_expand_derived_metrics() {
        let set = default_thresholds().unwrap();
        let q = required_queries(&set, Service::Ec2);
        let has = |m: &str, s: &str| q.iter().any(|x| x.metric == m && x.statistic == s);
        assert!(has(names::CPU_UTILIZATION, "Average"));
        assert!(has(names::CPU_UTILIZATION, "Maximum"));
        assert!(has(names::NETWORK_IN, "Sum") && has(names::NETWORK_OUT, "Sum"));
        assert!(!q.iter().any(|x| x.metric == names::NETWORK_BYTES));
        assert!(q.iter().all(|x| x.period_seconds == 3600));
        // daily rules over 14 days look at 14 complete days: fetch 15.
        assert_eq!(
            q.iter()
                .find(|x| x.metric == names::NETWORK_IN)
                .unwrap()
                .lookback_days,
            15
        );
        let s3 = required_queries(&set, Service::S3);
        let size = s3
            .iter()
            .find(|x| x.metric == names::BUCKET_SIZE_BYTES)
            .unwrap();
        assert_eq!(size.period_seconds, 86_400);
        assert_eq!(
            size.extra_dimensions,
            vec![("StorageType".to_string(), "StandardStorage".to_string())]
        );
        let ddb = required_queries(&set, Service::DynamoDb);
        assert!(ddb
            .iter()
            .any(|x| x.metric == names::CONSUMED_READ_CAPACITY_UNITS && x.statistic == "Sum"));
        assert!(ddb.iter().any(
            |x| x.metric == names::PROVISIONED_WRITE_CAPACITY_UNITS && x.statistic == "Average"
        ));
        let lambda = required_queries(&set, Service::Lambda);
        assert_eq!(
            lambda
                .iter()
                .find(|x| x.metric == names::INVOCATIONS)
                .unwrap()
                .lookback_days,
            31
        );
        assert!(lambda
            .iter()
            .any(|x| x.namespace == namespaces::LAMBDA_INSIGHTS));
    }

    #[test]
    fn validation_reports_every_problem() {
        let mut set = default_thresholds().unwrap();
        set.rules[0].conditions[0].statistic = "p101".into();
        set.rules[1].id = set.rules[0].id.clone();
        set.rules[2].min_coverage = 1.5;
        set.rules[3].conditions[0].operator = Operator::Between;
        let err = validate_set(&set).unwrap_err().to_string();
        assert!(err.contains("unknown statistic 'p101'"), "{err}");
        assert!(err.contains("duplicate id"), "{err}");
        assert!(err.contains("minCoverage"), "{err}");
        assert!(err.contains("without upper"), "{err}");
        let mut set = default_thresholds().unwrap();
        let i = set.rules.iter().position(|r| r.id == "ec2-idle").unwrap();
        set.rules[i].conditions[1].statistic = "Average".into();
        assert!(validate_set(&set)
            .unwrap_err()
            .to_string()
            .contains("NetworkBytes supports only the Sum statistic"));
        let mut set = default_thresholds().unwrap();
        let c = set.rules[0].conditions[0].clone();
        set.rules[0].conditions = vec![c; 9];
        assert!(validate_set(&set)
            .unwrap_err()
            .to_string()
            .contains("more than 8 conditions"));
    }
}
