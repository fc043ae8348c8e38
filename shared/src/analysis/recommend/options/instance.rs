//! EC2, RDS and ElastiCache: instance-type models. Stop or terminate, rightsize
//! within the family, Graviton, burstable, scale up. Savings are the
//! difference of the catalogue's regional rates for the resource's variant
//! (platform, engine, Multi-AZ, nodes) x 730 h, or, when the inventory gives
//! a monthly cost, that cost scaled by the rate ratio; a change that costs
//! more is a negative saving. RDS storage bills on after a stop. Risk comes
//! from the peaks projected onto the target type.

use super::Opt;
use crate::analysis::evaluate::{Ctx, Verdict};
use crate::analysis::pricing::{PriceCatalog, TypeSpec, Variant, GIB, HOURS_PER_MONTH};
use crate::analysis::recommend::facts::{attr_f64, attr_str, known_cost, limit, lookback, max_of};
use crate::analysis::recommend::rank::{projection_risk, removal_risk};
use crate::analysis::recommend::text::{noun, projection_text};
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
                (Service::Rds, _) => "Stop the DB instance (RDS restarts a stopped instance after 7 days, and its storage bills on; snapshot and delete it if it stays unused)".to_string(),
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
                    savings: facts.compute_monthly().map(|m| m * share),
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
            let savings = match (&facts.type_name, &target) {
                (Some(_), Some(t)) => facts.saving_to(prices, t),
                (Some(c), None) => Err(format!(
                    "no price known for a larger size than {c}: it is the largest of its family in the catalogue"
                )),
                (None, _) => facts.monthly.clone().and(Err(format!(
                    "no price known for {svc} {}: its type is unknown",
                    r.id
                ))),
            };
            let text = match (&facts.type_name, &target) {
                (Some(c), Some(t)) => format!("Scale {c} up to {t}{proj}"),
                (Some(c), None) => {
                    format!("Scale {c} up: no larger size of its family is in the catalogue")
                }
                (None, _) => format!("Scale the {kind} up one size (its type is unknown)"),
            };
            opts.push(Opt {
                action: Action::ScaleUp,
                target,
                savings,
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
    let saving = |t: &str| facts.saving_to(prices, t);
    if let Some((t, spec)) = &best {
        let (risk, proj) = project(peaks, &cur, spec, limit);
        opts.push(Opt {
            action: Action::Rightsize,
            target: Some(t.clone()),
            savings: saving(t),
            risk,
            text: format!("Rightsize {cur_name} to {t}{proj}"),
        });
        if let Some(g) = prices.graviton_equivalent(svc, t) {
            if let Some(gs) = prices.type_spec_anywhere(svc, &g) {
                let (risk, proj) = project(peaks, &cur, &gs, limit);
                opts.push(Opt {
                    action: Action::Rightsize,
                    target: Some(g.clone()),
                    savings: saving(&g),
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
                savings: saving(&g),
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
                    savings: saving(first),
                    risk,
                    text: format!("Rightsize {cur_name} one size down to {first}{proj}"),
                });
            }
        }
    }
    if best.is_none() {
        // Nothing smaller fits: say so, and name the cheaper type of the same
        // size (burstable) when there is one; Graviton was offered above.
        let why = if smaller.is_empty() {
            format!("{cur_name} is the smallest size of its family in the catalogue")
        } else {
            format!(
                "no smaller size than {cur_name} keeps {:.0}% headroom at the measured peaks",
                100.0 - limit
            )
        };
        if let Some(b) = prices.burstable_equivalent(svc, cur_name) {
            if let Some(bs) = prices.type_spec_anywhere(svc, &b) {
                let (risk, proj) = project(peaks, &cur, &bs, limit);
                opts.insert(
                    0,
                    Opt {
                        action: Action::Rightsize,
                        target: Some(b.clone()),
                        savings: saving(&b),
                        // Sustained CPU above a burstable's baseline spends credits.
                        risk: (risk + 1).min(4),
                        text: format!(
                            "Move {cur_name} to burstable {b} ({why}; CPU above the baseline spends credits){proj}"
                        ),
                    },
                );
            }
        }
        if !opts.iter().any(|o| o.action == Action::Rightsize) {
            // Graviton at the same size is what is left to name: it leads
            // (options/mod.rs), saying why no smaller size was named.
            for o in opts
                .iter_mut()
                .filter(|o| o.action == Action::MoveToGraviton)
            {
                o.text = format!("{why}, so: {}", o.text);
            }
        }
        if opts.is_empty() {
            opts.push(Opt {
                action: Action::Rightsize,
                target: None,
                savings: Err(format!(
                    "no cheaper type to name: {why}, and it has no Graviton or burstable equivalent"
                )),
                risk: 2,
                text: format!("Keep {cur_name} ({why})"),
            });
        }
    }
    opts
}

struct InstanceFacts {
    service: Service,
    region: String,
    type_name: Option<String>,
    spec: Option<TypeSpec>,
    variant: Variant,
    /// The current type's hourly rate for the resource's variant.
    rate: Result<f64, String>,
    /// Storage billed whether the instance runs or not (RDS), a month.
    storage: f64,
    /// What it costs a month: the inventory's figure, else rate x 730 h plus storage.
    monthly: Result<f64, String>,
    known: Option<f64>,
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
        let variant = Variant::of(r);
        let rate = match t {
            Some(t) => prices.instance_rate(svc, &r.region, t, &variant),
            None => Err(format!(
                "no price known for {svc} {}: its type is unknown",
                r.id
            )),
        };
        let storage = if svc == Service::Rds {
            rds_storage_monthly(r, prices, &variant)
        } else {
            0.0
        };
        let known = known_cost(r);
        let monthly = match (known, &rate) {
            (Some(c), _) => Ok(c),
            (None, Ok(rate)) => Ok(rate * HOURS_PER_MONTH + storage),
            (None, Err(e)) => Err(e.clone()),
        };
        InstanceFacts {
            service: svc,
            region: r.region.clone(),
            type_name: t.map(str::to_string),
            spec,
            variant,
            rate,
            storage,
            monthly,
            known,
        }
    }

    /// The part of the monthly cost a stop saves: the instance hours.
    fn compute_monthly(&self) -> Result<f64, String> {
        match (self.known, &self.rate) {
            (Some(k), Ok(rate)) if self.storage > 0.0 => {
                let c = rate * HOURS_PER_MONTH;
                Ok(k * c / (c + self.storage))
            }
            (Some(k), _) => Ok(k),
            (None, Ok(rate)) => Ok(rate * HOURS_PER_MONTH),
            (None, Err(e)) => Err(e.clone()),
        }
    }

    /// The monthly saving of moving to `target` (negative when it costs
    /// more), or which price is missing.
    fn saving_to(&self, prices: &PriceCatalog, target: &str) -> Result<f64, String> {
        let to = prices.instance_rate(self.service, &self.region, target, &self.variant);
        match (&self.rate, to) {
            (Ok(cur), Ok(to)) => match self.known {
                Some(_) if *cur > 0.0 => Ok(self.compute_monthly()? * (1.0 - to / cur)),
                _ => Ok((cur - to) * HOURS_PER_MONTH),
            },
            // The variant is not priced (an engine, a platform): the
            // inventory's cost still scales by the base rates' ratio.
            (cur, to) => {
                let e = match (cur, to) {
                    (Err(e), _) => e.clone(),
                    (_, Err(e)) => e,
                    _ => String::new(),
                };
                let base = |t: &str| {
                    prices
                        .type_spec(self.service, &self.region, t)
                        .or_else(|| prices.type_spec_anywhere(self.service, t))
                        .map(|s| s.usd_per_hour)
                };
                match (
                    self.known,
                    self.type_name.as_deref().and_then(base),
                    base(target),
                ) {
                    (Some(k), Some(c), Some(t)) if c > 0.0 => Ok(k * (1.0 - t / c)),
                    _ => Err(e),
                }
            }
        }
    }
}

/// RDS storage a month (`allocatedStorageGiB`, `storageType`, provisioned
/// `iops` on io1/io2), doubled by Multi-AZ; 0 when not discovered.
fn rds_storage_monthly(r: &Resource, prices: &PriceCatalog, v: &Variant) -> f64 {
    let (Some(gb), Some(p)) = (
        attr_f64(r, &["allocatedStorageGiB", "allocatedStorage"]),
        prices.rds_storage(&r.region),
    ) else {
        return 0.0;
    };
    let kind = attr_str(r, &["storageType"]).unwrap_or("gp2");
    let per_gb = p.usd_per_gb_month.get(kind).copied().unwrap_or(0.0);
    let iops = if kind.starts_with("io") {
        attr_f64(r, &["iops"]).unwrap_or(0.0) * p.usd_per_iops_month
    } else {
        0.0
    };
    (gb.max(0.0) * per_gb + iops) * if v.multi_az { 2.0 } else { 1.0 }
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
