//! Lambda: delete an unused function, investigate errors, reduce memory, move
//! to arm64; costs from GB-seconds and requests.

use super::Opt;
use crate::analysis::evaluate::{Ctx, Verdict};
use crate::analysis::pricing::{windows_per_month, PriceCatalog};
use crate::analysis::recommend::facts::{attr_f64, attr_str, known_cost, limit, lookback};
use crate::analysis::recommend::rank::{projection_risk, removal_risk};
use crate::analysis::recommend::PROJECTION_PERCENTILE;
use crate::analysis::score::SCORE_DAYS;
use crate::analysis::stats::Statistic;
use crate::domain::metric::names;
use crate::domain::{Action, ThresholdRule};

pub(super) fn options(
    ctx: &mut Ctx<'_>,
    prices: &PriceCatalog,
    rule: &ThresholdRule,
    v: &Verdict,
) -> (Vec<Opt>, Option<f64>) {
    let r = ctx.resource;
    let facts = LambdaFacts::of(ctx, prices);
    let current = facts.total.as_ref().ok().copied();
    let related = !r.relations.is_empty();
    let mut opts = Vec::new();
    match rule.action {
        Action::DeleteUnused => {
            opts.push(Opt {
                action: Action::DeleteUnused,
                target: None,
                savings: Ok(known_cost(r).unwrap_or(0.0)),
                risk: removal_risk(Action::DeleteUnused, v.finding, related),
                text: "Delete the unused function (an idle function bills nothing per request; this removes clutter and attack surface)".to_string(),
            });
        }
        Action::InvestigateErrors => {
            let share = v
                .conditions
                .first()
                .and_then(|c| c.measured)
                .map(|p| (p / 100.0).clamp(0.0, 1.0));
            let savings = match (&facts.total, share) {
                (Ok(t), Some(s)) => Ok(t * s),
                (Err(e), _) => Err(e.clone()),
                (_, None) => Err(format!(
                    "no price known for lambda {}: no error share",
                    r.id
                )),
            };
            opts.push(Opt {
                action: Action::InvestigateErrors,
                target: None,
                savings,
                risk: 0,
                text: "Investigate the errors (logs, recent deployments, downstream timeouts); failed invocations are billed".to_string(),
            });
        }
        _ => {
            let limit = limit(rule);
            let peak = ctx.metric_stat(
                names::INSIGHTS_MEMORY_UTILIZATION,
                Statistic::Percentile(PROJECTION_PERCENTILE),
                lookback(rule),
            );
            match (facts.memory_mb, peak) {
                (Some(mem), Some(p)) => {
                    let used = mem * p / 100.0;
                    let target =
                        (((used / (limit / 100.0)) / 64.0).ceil() * 64.0).clamp(128.0, 10_240.0);
                    if target < mem {
                        let projected = 100.0 * used / target;
                        let savings = match (&facts.compute, &facts.total) {
                            (Some(c), _) => Ok(c * (1.0 - target / mem)),
                            (None, Ok(t)) => Ok(t * (1.0 - target / mem)),
                            (None, Err(e)) => Err(e.clone()),
                        };
                        opts.push(Opt {
                            action: Action::ReduceMemory,
                            target: Some(format!("{target:.0} MB")),
                            savings,
                            risk: projection_risk(Some(projected), limit).max(1),
                            text: format!(
                                "Reduce memory from {mem:.0} MB to {target:.0} MB: peak use {used:.0} MB would be {projected:.0}% (CPU share shrinks with memory, so watch Duration)"
                            ),
                        });
                    }
                }
                (None, _) => opts.push(Opt {
                    action: Action::ReduceMemory,
                    target: None,
                    savings: Err(format!(
                        "no price known for lambda {}: its memory size is unknown",
                        r.id
                    )),
                    risk: 2,
                    text: "Reduce the configured memory towards the peak used plus headroom"
                        .to_string(),
                }),
                (Some(_), None) => {}
            }
        }
    }
    if !facts.arm64
        && rule.action != Action::DeleteUnused
        && rule.action != Action::InvestigateErrors
    {
        let savings = match (&facts.compute, facts.arm_ratio) {
            (Some(c), Some(ratio)) => Ok(c * (1.0 - ratio)),
            _ => Err(format!(
                "no price known for lambda {} compute (no invocation or duration data)",
                r.id
            )),
        };
        opts.push(Opt {
            action: Action::MoveToGraviton,
            target: Some("arm64".to_string()),
            savings,
            risk: 2,
            text: "Switch the function to arm64 (Graviton): 20% cheaper per GB-second; native dependencies need arm64 builds".to_string(),
        });
    }
    (opts, current)
}

struct LambdaFacts {
    memory_mb: Option<f64>,
    arm64: bool,
    /// Monthly compute (GB-second) cost from the metrics.
    compute: Option<f64>,
    /// Current monthly cost: inventory, else compute + requests.
    total: Result<f64, String>,
    /// arm64 / x86 price per GB-second.
    arm_ratio: Option<f64>,
}

impl LambdaFacts {
    fn of(ctx: &mut Ctx<'_>, prices: &PriceCatalog) -> Self {
        let r = ctx.resource;
        let memory_mb = r
            .memory_mb
            .map(f64::from)
            .or_else(|| attr_f64(r, &["memorySize", "memoryMb"]));
        let arch = attr_str(r, &["architecture", "architectures"])
            .or(r.resource_type.as_deref())
            .unwrap_or("x86_64");
        let arm64 = arch.eq_ignore_ascii_case("arm64");
        let days = SCORE_DAYS;
        let invocations = ctx.metric_stat(names::INVOCATIONS, Statistic::Sum, days);
        let duration = ctx.metric_stat(names::DURATION, Statistic::Average, days);
        let month = windows_per_month(days);
        let p = prices.lambda(&r.region);
        let (compute, requests) = match (p, invocations, duration, memory_mb) {
            (Some(p), Some(n), Some(d), Some(m)) => {
                let per_gbs = if arm64 {
                    p.arm64.usd_per_gb_second
                } else {
                    p.x86_64.usd_per_gb_second
                };
                let n = n * month;
                (
                    Some(n * d / 1000.0 * m / 1024.0 * per_gbs),
                    Some(n / 1e6 * p.usd_per_million_requests),
                )
            }
            _ => (None, None),
        };
        let total = match (known_cost(r), compute, requests) {
            (Some(c), _, _) => Ok(c),
            (None, Some(c), Some(q)) => Ok(c + q),
            _ if p.is_none() => Err(format!("no price known for lambda in {}", r.region)),
            _ if memory_mb.is_none() => Err(format!(
                "no price known for lambda {}: its memory size is unknown",
                r.id
            )),
            _ => Err(format!(
                "no price known for lambda {}: no invocation or duration data",
                r.id
            )),
        };
        let arm_ratio = p
            .filter(|p| p.x86_64.usd_per_gb_second > 0.0)
            .map(|p| p.arm64.usd_per_gb_second / p.x86_64.usd_per_gb_second);
        LambdaFacts {
            memory_mb,
            arm64,
            compute,
            total,
            arm_ratio,
        }
    }
}
