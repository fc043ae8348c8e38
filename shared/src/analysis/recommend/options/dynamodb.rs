//! DynamoDB: lower provisioned capacity or switch to on-demand; costs from
//! RCU/WCU-hours and request units.

use super::Opt;
use crate::analysis::evaluate::Ctx;
use crate::analysis::pricing::{windows_per_month, PriceCatalog, HOURS_PER_MONTH};
use crate::analysis::recommend::facts::{attr_f64, known_cost, limit, lookback};
use crate::analysis::recommend::rank::projection_risk;
use crate::analysis::recommend::text::money;
use crate::analysis::recommend::PROJECTION_PERCENTILE;
use crate::analysis::stats::Statistic;
use crate::domain::metric::names;
use crate::domain::{Action, ThresholdRule};

pub(super) fn options(
    ctx: &mut Ctx<'_>,
    prices: &PriceCatalog,
    rule: &ThresholdRule,
) -> (Vec<Opt>, Option<f64>) {
    let r = ctx.resource;
    let limit = limit(rule);
    let days = lookback(rule);
    let prices = prices.dynamodb(&r.region);
    let pp = Statistic::Percentile(PROJECTION_PERCENTILE);
    let prov_r = ctx
        .last_value(names::PROVISIONED_READ_CAPACITY_UNITS)
        .or_else(|| attr_f64(r, &["provisionedReadCapacityUnits"]));
    let prov_w = ctx
        .last_value(names::PROVISIONED_WRITE_CAPACITY_UNITS)
        .or_else(|| attr_f64(r, &["provisionedWriteCapacityUnits"]));
    let period_r = ctx
        .period_of(names::CONSUMED_READ_CAPACITY_UNITS)
        .unwrap_or(3600.0);
    let period_w = ctx
        .period_of(names::CONSUMED_WRITE_CAPACITY_UNITS)
        .unwrap_or(3600.0);
    let peak_r = ctx
        .metric_stat(names::CONSUMED_READ_CAPACITY_UNITS, pp, days)
        .map(|v| v / period_r);
    let peak_w = ctx
        .metric_stat(names::CONSUMED_WRITE_CAPACITY_UNITS, pp, days)
        .map(|v| v / period_w);
    let month = windows_per_month(days);
    let used_r = ctx
        .metric_stat(names::CONSUMED_READ_CAPACITY_UNITS, Statistic::Sum, days)
        .map(|v| v * month);
    let used_w = ctx
        .metric_stat(names::CONSUMED_WRITE_CAPACITY_UNITS, Statistic::Sum, days)
        .map(|v| v * month);
    let known = known_cost(r);
    let provisioned_cost = match (prices, prov_r, prov_w) {
        (Some(p), Some(a), Some(b)) => {
            Some((a * p.usd_per_rcu_hour + b * p.usd_per_wcu_hour) * HOURS_PER_MONTH)
        }
        _ => None,
    };
    let current: Result<f64, String> = match (known, provisioned_cost) {
        (Some(c), _) => Ok(c),
        (None, Some(c)) => Ok(c),
        (None, None) if prices.is_none() => {
            Err(format!("no price known for dynamodb in {}", r.region))
        }
        (None, None) => Err(format!(
            "no price known for dynamodb {}: provisioned capacity unknown",
            r.id
        )),
    };
    // Scale a computed figure to the inventory's cost when that is given.
    let scale = match (known, provisioned_cost) {
        (Some(k), Some(c)) if c > 0.0 => k / c,
        _ => 1.0,
    };
    let autoscaled = r.attributes.get("autoScaling").and_then(|v| v.as_bool()) == Some(true);
    let mut lower = None;
    if let (Some(p), Some(pr), Some(pw), Some(kr), Some(kw)) =
        (prices, prov_r, prov_w, peak_r, peak_w)
    {
        let tr = (kr / (limit / 100.0)).ceil().max(1.0).min(pr);
        let tw = (kw / (limit / 100.0)).ceil().max(1.0).min(pw);
        if tr < pr || tw < pw {
            let saving = ((pr - tr) * p.usd_per_rcu_hour + (pw - tw) * p.usd_per_wcu_hour)
                * HOURS_PER_MONTH
                * scale;
            let proj = (100.0 * kr / tr).max(100.0 * kw / tw);
            lower = Some(Opt {
                action: Action::LowerProvisionedCapacity,
                target: Some(format!("{tr:.0} RCU / {tw:.0} WCU")),
                savings: Ok(saving),
                risk: projection_risk(Some(proj), limit),
                text: format!(
                    "Lower provisioned capacity from {pr:.0} RCU / {pw:.0} WCU to {tr:.0} RCU / {tw:.0} WCU (peak hourly use {kr:.1} / {kw:.1} per second){}",
                    if autoscaled { "; lower the autoscaling minimum" } else { "; or enable autoscaling" }
                ),
            });
        }
    }
    let on_demand = match (prices, used_r, used_w, &current) {
        (Some(p), Some(ur), Some(uw), Ok(c)) => {
            let od = ur / 1e6 * p.usd_per_million_read_request_units
                + uw / 1e6 * p.usd_per_million_write_request_units;
            Some(Opt {
                action: Action::SwitchToOnDemand,
                target: Some("PAY_PER_REQUEST".to_string()),
                savings: Ok((c - od).max(0.0)),
                risk: 1,
                text: format!("Switch the table to on-demand capacity: the measured traffic would cost {}/month", money(od)),
            })
        }
        (_, _, _, Err(e)) => Some(Opt {
            action: Action::SwitchToOnDemand,
            target: Some("PAY_PER_REQUEST".to_string()),
            savings: Err(e.clone()),
            risk: 1,
            text: "Switch the table to on-demand capacity".to_string(),
        }),
        _ => None,
    };
    let mut opts = Vec::new();
    if rule.action == Action::SwitchToOnDemand {
        opts.extend(on_demand);
        opts.extend(lower);
    } else {
        opts.extend(lower);
        opts.extend(on_demand);
    }
    (opts, current.ok())
}
