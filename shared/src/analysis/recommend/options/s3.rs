//! S3: cheaper storage classes and lifecycle rules; savings from stored GB
//! less retrieval and monitoring fees.

use super::Opt;
use crate::analysis::evaluate::Ctx;
use crate::analysis::pricing::{windows_per_month, PriceCatalog, GIB};
use crate::analysis::recommend::facts::{known_cost, lookback};
use crate::analysis::stats::Statistic;
use crate::domain::metric::names;
use crate::domain::{Action, Operator, ThresholdRule};

pub(super) fn options(
    ctx: &mut Ctx<'_>,
    prices: &PriceCatalog,
    rule: &ThresholdRule,
) -> (Vec<Opt>, Option<f64>) {
    let r = ctx.resource;
    let days = lookback(rule);
    let size = ctx.metric_stat(names::BUCKET_SIZE_BYTES, Statistic::Average, days);
    let objects = ctx.metric_stat(names::NUMBER_OF_OBJECTS, Statistic::Average, days);
    let gets = ctx.metric_stat(names::GET_REQUESTS, Statistic::Sum, days);
    let class = r
        .resource_type
        .as_deref()
        .map(|c| c.to_ascii_uppercase())
        .unwrap_or_else(|| "STANDARD".to_string());
    let prices = prices.s3(&r.region);
    let gb = size.map(|b| b / GIB);
    let month = windows_per_month(days);
    let cur_price = prices.and_then(|p| p.storage_usd_per_gb_month.get(&class).copied());
    let known = known_cost(r);
    let current: Result<f64, String> = match (known, gb, cur_price) {
        (Some(c), _, _) => Ok(c),
        (None, Some(g), Some(p)) => Ok(g * p),
        (None, None, _) => Err(format!(
            "no price known for s3 {}: no BucketSizeBytes data",
            r.id
        )),
        (None, _, None) => Err(format!(
            "no price known for s3 storage class {class} in {}",
            r.region
        )),
    };
    let avg_obj_gb = match (gb, objects) {
        (Some(g), Some(o)) if o >= 1.0 => Some(g / o),
        _ => None,
    };
    let retrieved_gb = match (gets, avg_obj_gb) {
        (Some(n), Some(o)) => n * month * o,
        _ => 0.0,
    };
    let mut opts = Vec::new();
    let mut class_opt = |action: Action, target: &str, risk: u8, text: String| {
        if target == class {
            return;
        }
        let savings = match (prices, gb, cur_price) {
            (Some(p), Some(g), Some(cp)) => {
                let tp = if target == "INTELLIGENT_TIERING" {
                    Some(p.intelligent_tiering_infrequent_usd_per_gb_month)
                } else {
                    p.storage_usd_per_gb_month.get(target).copied()
                };
                match tp {
                    Some(tp) if tp < cp => {
                        let retrieval = retrieved_gb
                            * p.retrieval_usd_per_gb.get(target).copied().unwrap_or(0.0);
                        let monitoring = if target == "INTELLIGENT_TIERING" {
                            objects.unwrap_or(0.0) / 1000.0
                                * p.intelligent_tiering_monitoring_usd_per1000_objects
                        } else {
                            0.0
                        };
                        Ok((g * (cp - tp) - retrieval - monitoring).max(0.0))
                    }
                    Some(_) => return,
                    None => Err(format!(
                        "no price known for s3 storage class {target} in {}",
                        r.region
                    )),
                }
            }
            (None, _, _) => Err(format!("no price known for s3 in {}", r.region)),
            (_, None, _) => Err(format!(
                "no price known for s3 {}: no BucketSizeBytes data",
                r.id
            )),
            (_, _, None) => Err(format!(
                "no price known for s3 storage class {class} in {}",
                r.region
            )),
        };
        opts.push(Opt {
            action,
            target: Some(target.to_string()),
            savings,
            risk,
            text,
        });
    };
    match rule.action {
        Action::AddLifecycleRule => {
            class_opt(Action::AddLifecycleRule, "GLACIER_IR", 2, "Add a lifecycle rule moving objects to Glacier Instant Retrieval after 30 days (90-day minimum storage, $0.03/GB retrieval)".to_string());
            class_opt(Action::ChangeStorageClass, "INTELLIGENT_TIERING", 0, "Move the objects to Intelligent-Tiering (no retrieval fee; small monitoring fee per object)".to_string());
            class_opt(
                Action::AddLifecycleRule,
                "DEEP_ARCHIVE",
                3,
                "Add a lifecycle rule moving objects to Glacier Deep Archive (restores take hours)"
                    .to_string(),
            );
        }
        _ => {
            let prefer_it = rule
                .conditions
                .iter()
                .any(|c| c.operator == Operator::Between);
            let ia = "Move the objects to Standard-IA (30-day minimum, 128 KB minimum billable size, $0.01/GB retrieval)".to_string();
            let it = "Move the objects to Intelligent-Tiering (no retrieval fee; objects untouched for 30 days cost the infrequent rate)".to_string();
            if prefer_it {
                class_opt(Action::ChangeStorageClass, "INTELLIGENT_TIERING", 0, it);
                class_opt(Action::ChangeStorageClass, "STANDARD_IA", 1, ia);
            } else {
                class_opt(Action::ChangeStorageClass, "STANDARD_IA", 1, ia);
                class_opt(Action::ChangeStorageClass, "INTELLIGENT_TIERING", 0, it);
            }
            class_opt(
                Action::AddLifecycleRule,
                "GLACIER_IR",
                2,
                "Add a lifecycle rule moving objects to Glacier Instant Retrieval after 30 days"
                    .to_string(),
            );
        }
    }
    (opts, current.ok())
}
