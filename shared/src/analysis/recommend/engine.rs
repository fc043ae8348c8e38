//! The engine: a threshold set compiled once, then per resource the verdicts,
//! the utilisation score, the trends and the one recommendation kept.

use super::options::{options, rds_memory_used_pct};
use super::rank::{cap, compare_candidates, confidence, round2, Candidate};
use super::text::{money, reason_text, trend_note};
use super::{Analysis, MetricTrend, MAX_ALTERNATIVES, TREND_PENALTY};
use crate::analysis::evaluate::{Buffers, CompiledRule, Ctx, Outcome, Verdict};
use crate::analysis::metrics::Derived;
use crate::analysis::pricing::PriceCatalog;
use crate::analysis::score::{utilization_limit, utilization_score, SCORE_DAYS, SCORE_PERCENTILE};
use crate::analysis::stats::Statistic;
use crate::analysis::tags::TagPolicy;
use crate::analysis::trend::{mann_kendall_with, TrendDirection, TrendScratch};
use crate::domain::metric::names;
use crate::domain::{
    Action, Alternative, FindingKind, MetricSeries, Recommendation, Resource, Service, ThresholdSet,
};
use chrono::{DateTime, Utc};
use std::collections::BTreeSet;
use std::fmt::Write as _;

struct ServicePlan {
    rules: Vec<usize>,
    derived: Vec<Derived>,
    horizon_days: u32,
    target: f64,
}

/// A threshold set compiled once and applied to many resources, reusing its
/// buffers: what a cycle over a whole estate should use.
pub struct Engine<'s> {
    set: &'s ThresholdSet,
    prices: &'s PriceCatalog,
    policy: TagPolicy,
    rules: Vec<CompiledRule<'s>>,
    plans: Vec<ServicePlan>,
    buffers: Buffers,
    means: Vec<f64>,
    trend_scratch: TrendScratch,
}

fn service_index(s: Service) -> usize {
    Service::ALL.iter().position(|x| *x == s).unwrap_or(0)
}

impl<'s> Engine<'s> {
    pub fn new(set: &'s ThresholdSet) -> Self {
        Self::with_prices(set, PriceCatalog::builtin())
    }

    pub fn with_prices(set: &'s ThresholdSet, prices: &'s PriceCatalog) -> Self {
        Self::with_policy(set, prices, TagPolicy::default())
    }

    /// With the deployment's exclusion and owner tag keys.
    pub fn with_policy(set: &'s ThresholdSet, prices: &'s PriceCatalog, policy: TagPolicy) -> Self {
        let rules: Vec<CompiledRule<'s>> = set.rules.iter().map(CompiledRule::compile).collect();
        let plans = Service::ALL
            .iter()
            .map(|&svc| {
                let idx: Vec<usize> = (0..set.rules.len())
                    .filter(|&i| set.rules[i].service == svc)
                    .collect();
                let mut derived: Vec<Derived> = Vec::new();
                let mut horizon = SCORE_DAYS;
                for &i in &idx {
                    let r = &set.rules[i];
                    horizon = horizon
                        .max(r.lookback_days)
                        .max(r.of_last_days.unwrap_or(0) + 1);
                    for c in &r.conditions {
                        if let Some(d) = Derived::parse(svc, &c.metric).filter(|d| d.is_pointwise())
                        {
                            if !derived.contains(&d) {
                                derived.push(d);
                            }
                        }
                    }
                }
                let always: &[Derived] = match svc {
                    Service::DynamoDb => &[
                        Derived::ReadCapacityUtilization,
                        Derived::WriteCapacityUtilization,
                    ],
                    // The EBS options size IOPS from the observed peak.
                    Service::Ebs => &[Derived::VolumeIops],
                    _ => &[],
                };
                {
                    for &d in always {
                        if !derived.contains(&d) {
                            derived.push(d);
                        }
                    }
                }
                // The first rule of the service that sets a headroom sets the score's target.
                let target =
                    utilization_limit(idx.iter().find_map(|&i| set.rules[i].headroom_percent));
                ServicePlan {
                    rules: idx,
                    derived,
                    horizon_days: horizon,
                    target,
                }
            })
            .collect();
        Engine {
            set,
            prices,
            policy,
            rules,
            plans,
            buffers: Buffers::default(),
            means: Vec::new(),
            trend_scratch: TrendScratch::default(),
        }
    }

    /// The recommendation for one resource, if any.
    pub fn recommend(
        &mut self,
        resource: &Resource,
        series: &[MetricSeries],
        now: DateTime<Utc>,
    ) -> Vec<Recommendation> {
        self.analyze(resource, series, now)
            .recommendation
            .into_iter()
            .collect()
    }

    /// Verdicts, score, trends and the recommendation for one resource.
    pub fn analyze(
        &mut self,
        resource: &Resource,
        series: &[MetricSeries],
        now: DateTime<Utc>,
    ) -> Analysis {
        if self.policy.excluded(resource) {
            // Never recommended, so never evaluated.
            return Analysis {
                resource_id: resource.id.clone(),
                service: resource.service,
                finding: FindingKind::Optimized,
                verdicts: Vec::new(),
                utilization_score: None,
                trends: Vec::new(),
                recommendation: None,
                excluded: true,
            };
        }
        let svc = service_index(resource.service);
        let plan = &self.plans[svc];
        let buffers = std::mem::take(&mut self.buffers);
        let mut ctx = Ctx::with_buffers(
            resource,
            series,
            now,
            &plan.derived,
            plan.horizon_days,
            buffers,
        );
        let verdicts: Vec<Verdict> = plan
            .rules
            .iter()
            .map(|&i| self.rules[i].evaluate(&mut ctx))
            .collect();
        let utilization_score = self.score(&mut ctx, plan.target);
        let trends = self.trends(&mut ctx);
        let recommendation = self.build(&mut ctx, svc, &verdicts, &trends, utilization_score);
        let finding = match &recommendation {
            Some(r) => r.finding,
            None if verdicts
                .iter()
                .any(|v| v.outcome != Outcome::InsufficientData) =>
            {
                FindingKind::Optimized
            }
            None => FindingKind::InsufficientData,
        };
        self.buffers = ctx.into_buffers();
        Analysis {
            resource_id: resource.id.clone(),
            service: resource.service,
            finding,
            verdicts,
            utilization_score,
            trends,
            recommendation,
            excluded: false,
        }
    }

    fn score(&self, ctx: &mut Ctx<'_>, target: f64) -> Option<u8> {
        // A missing dimension is NaN: the score binds on those that are known.
        fn at(ctx: &mut Ctx<'_>, metric: &str) -> f64 {
            let p = Statistic::Percentile(SCORE_PERCENTILE);
            ctx.metric_stat(metric, p, SCORE_DAYS).unwrap_or(f64::NAN)
        }
        let u: [f64; 2] = match ctx.resource.service {
            Service::Ec2 => [
                at(ctx, names::CPU_UTILIZATION),
                at(ctx, names::MEM_USED_PERCENT),
            ],
            Service::Rds => [
                at(ctx, names::CPU_UTILIZATION),
                rds_memory_used_pct(ctx, self.prices, SCORE_DAYS).unwrap_or(f64::NAN),
            ],
            Service::ElastiCache => [
                at(ctx, names::CPU_UTILIZATION),
                at(ctx, names::DATABASE_MEMORY_USAGE_PERCENTAGE),
            ],
            Service::Ecs => [
                at(ctx, names::CPU_UTILIZATION),
                at(ctx, names::MEMORY_UTILIZATION),
            ],
            Service::Lambda => [at(ctx, names::INSIGHTS_MEMORY_UTILIZATION), f64::NAN],
            Service::DynamoDb => [
                at(ctx, names::READ_CAPACITY_UTILIZATION),
                at(ctx, names::WRITE_CAPACITY_UTILIZATION),
            ],
            Service::S3 | Service::Ebs => return None,
        };
        utilization_score(&u, target)
    }

    fn trends(&mut self, ctx: &mut Ctx<'_>) -> Vec<MetricTrend> {
        let mut out = Vec::new();
        for m in trend_metrics(ctx.resource.service) {
            ctx.daily_means(m, SCORE_DAYS, &mut self.means);
            if let Some(trend) = mann_kendall_with(&self.means, &mut self.trend_scratch) {
                out.push(MetricTrend {
                    metric: (*m).to_string(),
                    trend,
                });
            }
        }
        out
    }

    fn build(
        &self,
        ctx: &mut Ctx<'_>,
        svc: usize,
        verdicts: &[Verdict],
        trends: &[MetricTrend],
        score: Option<u8>,
    ) -> Option<Recommendation> {
        let mut cands: Vec<Candidate> = Vec::new();
        for (order, v) in verdicts.iter().enumerate() {
            if v.outcome != Outcome::Flagged || !v.finding.is_actionable() {
                continue;
            }
            // Verdicts come in the order of the service's plan.
            let Some(rule) = self.plans[svc]
                .rules
                .get(order)
                .map(|&i| self.rules[i].rule)
            else {
                continue;
            };
            if super::guard::busy(ctx, rule).is_some() {
                continue;
            }
            let (options, current) = options(ctx, self.prices, rule, v);
            if options.is_empty() {
                continue;
            }
            let against = trends.iter().find(|t| match v.finding {
                FindingKind::UnderProvisioned => t.trend.direction == TrendDirection::Decreasing,
                FindingKind::Erroring => false,
                _ => t.trend.direction == TrendDirection::Increasing,
            });
            let factor = if against.is_some() {
                TREND_PENALTY
            } else {
                1.0
            };
            let confidence = confidence(v.coverage, v.margin, factor);
            cands.push(Candidate {
                verdict: v,
                rule,
                order,
                options,
                current,
                confidence,
                trend_note: against.map(|t| trend_note(ctx.resource.service, t)),
            });
        }
        if cands.is_empty() {
            return None;
        }
        cands.sort_by(compare_candidates);
        let best = &cands[0];
        let primary = &best.options[0];
        let mut alternatives: Vec<Alternative> = Vec::new();
        let mut seen: BTreeSet<(Action, Option<String>)> = BTreeSet::new();
        seen.insert((primary.action, primary.target.clone()));
        for c in &cands {
            for o in &c.options {
                if alternatives.len() >= MAX_ALTERNATIVES {
                    break;
                }
                if !seen.insert((o.action, o.target.clone())) {
                    continue;
                }
                let mut description = o.text.clone();
                match &o.savings {
                    Ok(s) if cap(*s, c.current) < 0.0 => {
                        let _ = write!(
                            description,
                            " (costs {}/month more; {})",
                            money(-cap(*s, c.current)),
                            c.verdict.rule_id
                        );
                    }
                    Ok(s) => {
                        let _ = write!(
                            description,
                            " (saves {}/month; {})",
                            money(cap(*s, c.current)),
                            c.verdict.rule_id
                        );
                    }
                    Err(why) => {
                        let _ = write!(description, " ({why}; {})", c.verdict.rule_id);
                    }
                }
                alternatives.push(Alternative {
                    action: o.action,
                    target_type: o.target.clone(),
                    monthly_savings_usd: o
                        .savings
                        .as_ref()
                        .ok()
                        .map(|s| round2(cap(*s, c.current))),
                    risk: o.risk.min(4),
                    description,
                });
            }
        }
        let resource = ctx.resource;
        let savings = primary
            .savings
            .as_ref()
            .ok()
            .map(|s| round2(cap(*s, best.current)));
        let savings_percent = match (savings, best.current) {
            (Some(s), Some(c)) if c > 0.0 => Some(round2((100.0 * s / c).min(100.0))),
            _ => None,
        };
        let reason = reason_text(
            ctx,
            best,
            primary,
            savings,
            savings_percent,
            self.set.version,
        );
        let mut deps: Vec<String> = resource
            .relations
            .iter()
            .map(|r| r.target_id.clone())
            .filter(|t| *t != resource.id)
            .collect();
        deps.sort();
        deps.dedup();
        Some(Recommendation {
            id: Recommendation::stable_id(&resource.key(), primary.action),
            resource_id: resource.id.clone(),
            service: resource.service,
            region: resource.region.clone(),
            account_id: resource.account_id.clone(),
            owner: self.policy.owner(resource),
            tags: resource.tags.clone(),
            current_monthly_cost_usd: best.current.map(round2),
            finding: best.verdict.finding,
            action: primary.action,
            target_type: primary.target.clone(),
            monthly_savings_usd: savings,
            savings_percent,
            confidence: best.confidence,
            risk: primary.risk.min(4),
            reason,
            alternatives,
            dependencies: deps,
            dependency_details: Vec::new(),
            utilization_score: score,
            threshold_version: self.set.version,
            created_at: ctx.now,
        })
    }
}

fn trend_metrics(s: Service) -> &'static [&'static str] {
    match s {
        Service::Ec2 => &[names::CPU_UTILIZATION],
        Service::Rds => &[names::CPU_UTILIZATION, names::DATABASE_CONNECTIONS],
        Service::ElastiCache => &[
            names::CPU_UTILIZATION,
            names::DATABASE_MEMORY_USAGE_PERCENTAGE,
        ],
        Service::Ecs => &[names::CPU_UTILIZATION, names::MEMORY_UTILIZATION],
        Service::Lambda => &[names::INVOCATIONS],
        Service::DynamoDb => &[
            names::CONSUMED_READ_CAPACITY_UNITS,
            names::CONSUMED_WRITE_CAPACITY_UNITS,
        ],
        Service::S3 => &[names::BUCKET_SIZE_BYTES],
        Service::Ebs => &[names::VOLUME_READ_OPS, names::VOLUME_WRITE_OPS],
    }
}
