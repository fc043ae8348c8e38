//! EC2, RDS and ElastiCache: instance-type models. Stop or terminate, rightsize
//! within the family, Graviton, scale up; savings from the catalogue's price
//! ratio, risk from the peaks projected onto the target type.

use super::Opt;
use crate::analysis::evaluate::{Ctx, Verdict};
use crate::analysis::pricing::GIB;
use crate::analysis::pricing::{PriceCatalog, TypeSpec};
use crate::analysis::recommend::facts::{known_cost, limit, lookback, max_of};
use crate::analysis::recommend::rank::{projection_risk, removal_risk};
use crate::analysis::recommend::text::{money, noun, projection_text};
use crate::analysis::recommend::PROJECTION_PERCENTILE;
use crate::analysis::stats::Statistic;
use crate::domain::metric::names;
use crate::domain::{Action, Aggregation, FindingKind, Resource, Service, ThresholdRule};

pub(super) fn options(
    ctx: &mut Ctx<'_>,
    prices: &PriceCatalog,
    rule: &ThresholdRule,
    v: &Verdict,
) -> (Vec<Opt>, Option<f64>) {
    let r = ctx.resource;
    let svc = r.service;
    let facts = InstanceFacts::of(r, prices);
    let current = facts.monthly.as_ref().ok().copied();
    let limit = limit(rule);
    let days = lookback(rule);
    let peaks = instance_peaks(ctx, prices, days);
    let related = !r.relations.is_empty();
    let mut opts = Vec::new();
    let kind = noun(svc);
    match rule.action {
        Action::Stop | Action::Terminate => {
            let share = match (rule.aggregation, v.daily, rule.action) {
                (Aggregation::Daily, Some(d), Action::Stop) if v.finding != FindingKind::Idle => {
                    f64::from(d.qualifying_days) / f64::from(d.of_last_days.max(1))
                }
                _ => 1.0,
            };
            let stop_text = match (svc, share < 1.0) {
                (Service::Rds, _) => "Stop the DB instance (RDS restarts a stopped instance after 7 days; snapshot and delete it if it stays unused)".to_string(),
                (_, true) => format!("Stop the {kind} on its low days (for example with Instance Scheduler): {:.0}% of the time", share * 100.0),
                (_, false) => format!("Stop the {kind} (attached EBS volumes keep billing)"),
            };
            let term_text = match svc {
                Service::Rds => "Take a final snapshot and delete the DB instance".to_string(),
                Service::ElastiCache => "Take a final backup and delete the cluster".to_string(),
                _ => "Create an AMI backup and terminate the instance".to_string(),
            };
            if svc != Service::ElastiCache {
                opts.push(Opt {
                    action: Action::Stop,
                    target: None,
                    savings: facts.monthly.clone().map(|m| m * share),
                    risk: removal_risk(Action::Stop, v.finding, related),
                    text: stop_text,
                });
            }
            if v.finding == FindingKind::Idle || rule.action == Action::Terminate {
                opts.push(Opt {
                    action: Action::Terminate,
                    target: None,
                    savings: facts.monthly.clone(),
                    risk: removal_risk(Action::Terminate, v.finding, related),
                    text: term_text,
                });
            }
            if v.finding != FindingKind::Idle {
                opts.extend(downsize_options(prices, svc, &facts, &peaks, limit));
            }
        }
        Action::ScaleUp => {
            let (target, spec) = match facts.type_name.as_deref() {
                Some(t) => {
                    let up = prices.larger_type(svc, t);
                    let spec = up
                        .as_deref()
                        .and_then(|u| prices.type_spec_anywhere(svc, u));
                    (up, spec)
                }
                None => (None, None),
            };
            let (risk, proj) = match (facts.spec, spec) {
                (Some(cur), Some(t)) => project(&peaks, &cur, &t, limit),
                _ => (projection_risk(peaks.max(), limit), String::new()),
            };
            let extra = match (&facts.monthly, facts.spec, spec) {
                (Ok(m), Some(c), Some(t)) => format!(
                    " (+{}/month)",
                    money(m * (t.usd_per_hour / c.usd_per_hour - 1.0))
                ),
                _ => String::new(),
            };
            let text = match (&facts.type_name, &target) {
                (Some(c), Some(t)) => format!("Scale {c} up to {t}{extra}{proj}"),
                (Some(c), None) => {
                    format!("Scale {c} up: no larger size of its family is in the catalogue")
                }
                (None, _) => format!("Scale the {kind} up one size (its type is unknown)"),
            };
            opts.push(Opt {
                action: Action::ScaleUp,
                target,
                savings: Ok(0.0),
                risk,
                text,
            });
        }
        _ => {
            opts.extend(downsize_options(prices, svc, &facts, &peaks, limit));
        }
    }
    (opts, current)
}

/// Rightsizing within the family (the smallest size whose projection keeps
/// the headroom), the same on Graviton, Graviton at the current size, and
/// one size down when the best fit is further.
fn downsize_options(
    prices: &PriceCatalog,
    svc: Service,
    facts: &InstanceFacts,
    peaks: &Peaks,
    limit: f64,
) -> Vec<Opt> {
    let mut opts = Vec::new();
    let graviton_extra = u8::from(svc == Service::Ec2);
    let (Some(cur_name), Some(cur)) = (facts.type_name.as_deref(), facts.spec) else {
        let why = match &facts.monthly {
            Err(e) => e.clone(),
            Ok(_) => format!(
                "no price known for {} {}: no smaller size can be named",
                svc,
                facts.type_name.as_deref().unwrap_or("(unknown type)")
            ),
        };
        opts.push(Opt {
            action: Action::Rightsize,
            target: None,
            savings: Err(why),
            risk: projection_risk(peaks.max().map(|p| p * 2.0), limit),
            text: format!(
                "Move the {} to the next smaller size (half the capacity)",
                noun(svc)
            ),
        });
        return opts;
    };
    let smaller = prices.smaller_types(svc, cur_name);
    let mut best: Option<(String, TypeSpec)> = None;
    for t in &smaller {
        let Some(spec) = prices.type_spec_anywhere(svc, t) else {
            continue;
        };
        if peaks.fits(&cur, &spec, limit) {
            best = Some((t.clone(), spec));
        } else {
            break;
        }
    }
    let saving = |spec: &TypeSpec| {
        facts
            .monthly
            .clone()
            .map(|m| m * (1.0 - spec.usd_per_hour / cur.usd_per_hour).max(0.0))
    };
    if let Some((t, spec)) = &best {
        let (risk, proj) = project(peaks, &cur, spec, limit);
        opts.push(Opt {
            action: Action::Rightsize,
            target: Some(t.clone()),
            savings: saving(spec),
            risk,
            text: format!("Rightsize {cur_name} to {t}{proj}"),
        });
        if let Some(g) = prices.graviton_equivalent(svc, t) {
            if let Some(gs) = prices.type_spec_anywhere(svc, &g) {
                let (risk, proj) = project(peaks, &cur, &gs, limit);
                opts.push(Opt {
                    action: Action::Rightsize,
                    target: Some(g.clone()),
                    savings: saving(&gs),
                    risk: (risk + graviton_extra).min(4),
                    text: format!("Rightsize {cur_name} to Graviton {g}{proj}"),
                });
            }
        }
    }
    if let Some(g) = prices.graviton_equivalent(svc, cur_name) {
        if let Some(gs) = prices.type_spec_anywhere(svc, &g) {
            let (risk, proj) = project(peaks, &cur, &gs, limit);
            let note = if svc == Service::Ec2 {
                " (needs arm64 builds)"
            } else {
                " (same engine, managed)"
            };
            opts.push(Opt {
                action: Action::MoveToGraviton,
                target: Some(g.clone()),
                savings: saving(&gs),
                risk: (risk + graviton_extra).min(4),
                text: format!("Move {cur_name} to Graviton {g}{note}{proj}"),
            });
        }
    }
    if let (Some(first), Some((t, _))) = (smaller.first(), &best) {
        if first != t {
            if let Some(spec) = prices.type_spec_anywhere(svc, first) {
                let (risk, proj) = project(peaks, &cur, &spec, limit);
                opts.push(Opt {
                    action: Action::Rightsize,
                    target: Some(first.clone()),
                    savings: saving(&spec),
                    risk,
                    text: format!("Rightsize {cur_name} one size down to {first}{proj}"),
                });
            }
        }
    }
    if opts.is_empty() {
        let why = if smaller.is_empty() {
            format!("no price known for a smaller size than {cur_name}: it is the smallest of its family in the catalogue")
        } else {
            format!(
                "no smaller size than {cur_name} keeps {:.0}% headroom at the measured peaks",
                100.0 - limit
            )
        };
        let target = smaller.first().cloned();
        let (risk, savings) = match target
            .as_deref()
            .and_then(|t| prices.type_spec_anywhere(svc, t))
        {
            Some(spec) => (project(peaks, &cur, &spec, limit).0, saving(&spec)),
            None => (2, Err(why.clone())),
        };
        opts.push(Opt {
            action: Action::Rightsize,
            target,
            savings,
            risk,
            text: format!("Rightsize {cur_name} ({why})"),
        });
    }
    opts
}

struct InstanceFacts {
    type_name: Option<String>,
    spec: Option<TypeSpec>,
    monthly: Result<f64, String>,
}

impl InstanceFacts {
    fn of(r: &Resource, prices: &PriceCatalog) -> Self {
        let svc = r.service;
        let t = r
            .resource_type
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty());
        let spec = t.and_then(|t| prices.type_spec_anywhere(svc, t));
        let regional = t.and_then(|t| prices.type_spec(svc, &r.region, t));
        let monthly = match (known_cost(r), t, regional) {
            (Some(c), _, _) => Ok(c),
            (None, _, Some(s)) => Ok(s.monthly()),
            (None, None, _) => Err(format!(
                "no price known for {svc} {}: its type is unknown",
                r.id
            )),
            (None, Some(t), None) => Err(format!("no price known for {svc} {t} in {}", r.region)),
        };
        InstanceFacts {
            type_name: t.map(str::to_string),
            spec,
            monthly,
        }
    }
}

/// p99.5 utilisation per dimension, in percent of the current capacity.
struct Peaks {
    cpu: Option<f64>,
    mem: Option<f64>,
}

impl Peaks {
    fn max(&self) -> Option<f64> {
        max_of(self.cpu, self.mem)
    }

    fn projected(&self, cur: &TypeSpec, t: &TypeSpec) -> (Option<f64>, Option<f64>) {
        (
            self.cpu.map(|p| p * cur.vcpu / t.vcpu),
            self.mem.map(|p| p * cur.memory_gib / t.memory_gib),
        )
    }

    fn fits(&self, cur: &TypeSpec, t: &TypeSpec, limit: f64) -> bool {
        let (c, m) = self.projected(cur, t);
        (c.is_some() || m.is_some()) && c.is_none_or(|x| x <= limit) && m.is_none_or(|x| x <= limit)
    }
}

fn project(peaks: &Peaks, cur: &TypeSpec, t: &TypeSpec, limit: f64) -> (u8, String) {
    let (c, m) = peaks.projected(cur, t);
    (projection_risk(max_of(c, m), limit), projection_text(c, m))
}

pub(crate) fn rds_memory_used_pct(
    ctx: &mut Ctx<'_>,
    prices: &PriceCatalog,
    days: u32,
) -> Option<f64> {
    let r = ctx.resource;
    let total_gib = r
        .resource_type
        .as_deref()
        .and_then(|t| prices.type_spec_anywhere(Service::Rds, t))
        .map(|s| s.memory_gib)
        .or_else(|| r.memory_mb.map(|m| f64::from(m) / 1024.0))?;
    let free = ctx.metric_stat(names::FREEABLE_MEMORY, Statistic::Minimum, days)?;
    let total = total_gib * GIB;
    (total > 0.0).then(|| (100.0 * (1.0 - free / total)).clamp(0.0, 100.0))
}

fn instance_peaks(ctx: &mut Ctx<'_>, prices: &PriceCatalog, days: u32) -> Peaks {
    let pp = Statistic::Percentile(PROJECTION_PERCENTILE);
    let cpu = ctx.metric_stat(names::CPU_UTILIZATION, pp, days);
    let mem = match ctx.resource.service {
        Service::Ec2 => ctx.metric_stat(names::MEM_USED_PERCENT, pp, days),
        Service::Rds => rds_memory_used_pct(ctx, prices, days),
        Service::ElastiCache => ctx.metric_stat(names::DATABASE_MEMORY_USAGE_PERCENTAGE, pp, days),
        _ => None,
    };
    Peaks { cpu, mem }
}
