//! ECS on Fargate: fewer tasks or smaller tasks; costs from vCPU- and
//! GB-hours.

use super::Opt;
use crate::analysis::evaluate::Ctx;
use crate::analysis::pricing::{PriceCatalog, HOURS_PER_MONTH};
use crate::analysis::recommend::facts::{attr_f64, attr_str, known_cost, limit, lookback, max_of};
use crate::analysis::recommend::rank::projection_risk;
use crate::analysis::recommend::text::projection_text;
use crate::analysis::recommend::PROJECTION_PERCENTILE;
use crate::analysis::stats::Statistic;
use crate::domain::metric::names;
use crate::domain::{Action, Resource, ThresholdRule};

pub(super) fn options(
    ctx: &mut Ctx<'_>,
    prices: &PriceCatalog,
    rule: &ThresholdRule,
) -> (Vec<Opt>, Option<f64>) {
    let r = ctx.resource;
    let limit = limit(rule);
    let days = lookback(rule);
    let pp = Statistic::Percentile(PROJECTION_PERCENTILE);
    let cpu_peak = ctx.metric_stat(names::CPU_UTILIZATION, pp, days);
    let mem_peak = ctx.metric_stat(names::MEMORY_UTILIZATION, pp, days);
    let facts = EcsFacts::of(r, prices);
    let current = facts.monthly.as_ref().ok().copied();
    let peak = max_of(cpu_peak, mem_peak);
    let mut opts = Vec::new();
    let count = facts.count;
    // Fewer tasks.
    let reduce = peak.map(|p| ((count * p / limit).ceil()).max(1.0));
    let count_opt = match reduce {
        Some(n) if n < count => Some(Opt {
            action: Action::ReduceTaskCount,
            target: Some(format!("desiredCount {n:.0}")),
            savings: facts.monthly.clone().map(|m| m * (count - n) / count),
            risk: projection_risk(peak.map(|p| p * count / n), limit),
            text: format!("Reduce the desired count from {count:.0} to {n:.0} tasks (or lower the autoscaling minimum)"),
        }),
        _ => None,
    };
    // Smaller tasks.
    let shrink_opt = match (facts.cpu_units, facts.memory_mb, &facts.rate) {
        (Some(c), Some(m), Some(rate)) => {
            let cur_cost = rate.task_hour(c, m);
            fargate_sizes()
                .into_iter()
                .filter(|&(tc, tm)| {
                    let pc = cpu_peak.map(|p| p * c / tc);
                    let pm = mem_peak.map(|p| p * m / tm);
                    pc.is_none_or(|x| x <= limit) && pm.is_none_or(|x| x <= limit) && (pc.is_some() || pm.is_some())
                })
                .map(|(tc, tm)| (rate.task_hour(tc, tm), tc, tm))
                .filter(|(cost, _, _)| *cost < cur_cost - 1e-12)
                .min_by(|a, b| a.0.total_cmp(&b.0))
                .map(|(cost, tc, tm)| {
                    let pc = cpu_peak.map(|p| p * c / tc);
                    let pm = mem_peak.map(|p| p * m / tm);
                    let proj = max_of(pc, pm);
                    Opt {
                        action: Action::ShrinkTasks,
                        target: Some(format!("cpu {tc:.0} / memory {tm:.0} MB")),
                        savings: facts.monthly.clone().map(|mo| mo * (1.0 - cost / cur_cost)),
                        risk: projection_risk(proj, limit),
                        text: format!(
                            "Shrink the task size from cpu {c:.0} / memory {m:.0} MB to cpu {tc:.0} / memory {tm:.0} MB{}",
                            projection_text(pc, pm)
                        ),
                    }
                })
        }
        _ => Some(Opt {
            action: Action::ShrinkTasks,
            target: None,
            savings: Err(facts.monthly.clone().err().unwrap_or_else(|| {
                format!(
                    "no price known for ecs {}: task cpu/memory or launch type unknown",
                    r.id
                )
            })),
            risk: 2,
            text: "Shrink the task definition's cpu and memory towards the peak plus headroom"
                .to_string(),
        }),
    };
    match rule.action {
        Action::ScaleUp => {
            let n = peak.map(|p| (count * p / limit).ceil().max(count + 1.0));
            opts.push(Opt {
                action: Action::ScaleUp,
                target: n.map(|n| format!("desiredCount {n:.0}")),
                // More tasks cost more: a negative saving.
                savings: match n {
                    Some(n) => facts.monthly.clone().map(|m| -m * (n - count) / count),
                    None => Err(format!(
                        "no price known for ecs {}: no peak to size the scale-out by",
                        r.id
                    )),
                },
                risk: projection_risk(peak.zip(n).map(|(p, n)| p * count / n), limit),
                text: match n {
                    Some(n) => format!(
                        "Scale out from {count:.0} to {n:.0} tasks, or raise the task cpu/memory"
                    ),
                    None => "Scale out or raise the task cpu/memory".to_string(),
                },
            });
        }
        Action::ReduceTaskCount => {
            opts.extend(count_opt);
            opts.extend(shrink_opt);
        }
        _ => {
            opts.extend(shrink_opt);
            opts.extend(count_opt);
        }
    }
    (opts, current)
}

struct FargateRate {
    vcpu_hour: f64,
    gb_hour: f64,
}

impl FargateRate {
    fn task_hour(&self, cpu_units: f64, memory_mb: f64) -> f64 {
        cpu_units / 1024.0 * self.vcpu_hour + memory_mb / 1024.0 * self.gb_hour
    }
}

struct EcsFacts {
    cpu_units: Option<f64>,
    memory_mb: Option<f64>,
    count: f64,
    rate: Option<FargateRate>,
    monthly: Result<f64, String>,
}

impl EcsFacts {
    fn of(r: &Resource, prices: &PriceCatalog) -> Self {
        let cpu_units =
            attr_f64(r, &["cpu", "taskCpu"]).or_else(|| attr_f64(r, &["vcpu"]).map(|v| v * 1024.0));
        let memory_mb = r
            .memory_mb
            .map(f64::from)
            .or_else(|| attr_f64(r, &["memory", "taskMemory"]));
        let count = attr_f64(r, &["desiredCount", "runningCount", "taskCount"])
            .unwrap_or(1.0)
            .max(1.0);
        let launch = attr_str(r, &["launchType"]).unwrap_or("FARGATE");
        let arm = attr_str(r, &["cpuArchitecture", "architecture"])
            .is_some_and(|a| a.eq_ignore_ascii_case("arm64"));
        let rate = prices.fargate(&r.region).map(|f| {
            let a = if arm { &f.arm64 } else { &f.x86_64 };
            FargateRate {
                vcpu_hour: a.usd_per_vcpu_hour,
                gb_hour: a.usd_per_gb_hour,
            }
        });
        let monthly = match (known_cost(r), &rate, cpu_units, memory_mb) {
            (Some(c), _, _, _) => Ok(c),
            (None, Some(rate), Some(c), Some(m)) if launch.eq_ignore_ascii_case("FARGATE") => {
                Ok(count * rate.task_hour(c, m) * HOURS_PER_MONTH)
            }
            (None, _, _, _) if !launch.eq_ignore_ascii_case("FARGATE") => {
                Err(format!("no price known for ecs {} on the {launch} launch type (its cost is the cluster's instances)", r.id))
            }
            (None, None, _, _) => Err(format!("no price known for fargate in {}", r.region)),
            _ => Err(format!("no price known for ecs {}: task cpu/memory unknown", r.id)),
        };
        EcsFacts {
            cpu_units,
            memory_mb,
            count,
            rate,
            monthly,
        }
    }
}

/// Valid Fargate (cpu units, memory MB) combinations.
fn fargate_sizes() -> Vec<(f64, f64)> {
    let mut v: Vec<(f64, f64)> = vec![(256.0, 512.0), (256.0, 1024.0), (256.0, 2048.0)];
    for (cpu, lo, hi, step) in [
        (512u32, 1024u32, 4096u32, 1024usize),
        (1024, 2048, 8192, 1024),
        (2048, 4096, 16384, 1024),
        (4096, 8192, 30720, 1024),
        (8192, 16384, 61440, 4096),
        (16384, 32768, 122880, 8192),
    ] {
        for m in (lo..=hi).step_by(step) {
            v.push((f64::from(cpu), f64::from(m)));
        }
    }
    v
}
