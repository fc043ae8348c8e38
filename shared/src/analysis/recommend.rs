//! From verdicts to recommendations: the action catalogue per service, savings
//! from the price catalogue, confidence, risk, the reason text, alternatives
//! and dependencies.
//!
//! **Savings.** The current monthly cost is the inventory's `monthlyCostUsd`
//! when given (it carries discounts), else the catalogue's on-demand price x
//! 730 h (Lambda: GB-seconds and requests from Invocations and Duration;
//! DynamoDB: provisioned RCU/WCU-hours; S3: stored GB x class price; ECS:
//! Fargate vCPU- and GB-hours). A target's cost is the current cost scaled by
//! the catalogue's price ratio target/current. Neither known: `None`, and the
//! reason says "no price known for ...". Removal saves the whole cost, except a
//! Trusted Advisor-style stop on low days, which saves the share of
//! underutilised days (qualifying days / days looked at), as Trusted Advisor
//! counts "on-demand rate x underutilised time". Savings never exceed the
//! current cost and are never negative (a scale-up saves 0 and its reason
//! states the extra cost).
//!
//! **Confidence** = `coverage x (0.6 + 0.4 x clamp(margin, 0, 1)) x trend`,
//! rounded to 0.01, where coverage and margin come from the verdict (see
//! `evaluate`) and `trend` is 0.75 when a primary metric's daily means trend
//! against the action (rising before a reduction, falling before a scale-up,
//! Mann-Kendall at 5%), else 1. Full data far from the threshold gives 1; full
//! data on the threshold gives 0.6.
//!
//! **Risk** (0 very low .. 4 very high) follows Compute Optimizer: project the
//! p99.5 utilisation of every known dimension (CPU by vCPU ratio, memory by
//! memory ratio; network is not projected because the catalogue has no
//! bandwidth figures) onto the target and take the maximum `p`. With the
//! rule's headroom `h` (20% by default) and limit `L = 100 - h`: `p <= L/2`
//! -> 0, `<= 3L/4` -> 1, `<= L` -> 2, `<= 100` -> 3, above -> 4. No dimension
//! known -> 2. A change of CPU architecture (EC2 or Lambda to Graviton) adds 1.
//! Removals (stop, terminate, delete): stop 0, terminate/delete 1, plus 1 when
//! the resource was not idle but only underutilised, plus 1 when it has
//! relations. Storage-class moves: Intelligent-Tiering 0, Standard-IA 1,
//! Glacier Instant Retrieval 2, Deep Archive 3, deletion 4. Investigating
//! errors changes nothing: 0.
//!
//! **Choosing among rules.** When several rules fire for one resource the
//! engine keeps one recommendation: reliability findings (erroring,
//! under-provisioned) come first, since cutting cost on a failing or starved
//! resource is unsafe; then the highest risk-adjusted expected saving,
//! `savings x confidence x (1 - risk / 8)`; ties go to higher confidence, lower
//! risk, the stronger finding (idle before underutilised before
//! over-provisioned) and the rule's order in the set. Every other option of
//! every firing rule becomes an alternative with its own savings and risk.

use super::evaluate::{Buffers, CompiledRule, ConditionResult, Ctx, Outcome, Verdict, GIB};
use super::metrics::{unit_of, Derived, Unit};
use super::pricing::{PriceCatalog, TypeSpec, HOURS_PER_MONTH};
use super::score::{utilization_score, DEFAULT_TARGET, SCORE_DAYS, SCORE_PERCENTILE};
use super::stats::{Percentile, Statistic, DAY_SECONDS};
use super::trend::{mann_kendall_with, Trend, TrendDirection, TrendScratch};
use crate::domain::{
    Action, Aggregation, Alternative, FindingKind, MetricSeries, Operator, Recommendation,
    Resource, Service, ThresholdRule, ThresholdSet,
};
use chrono::{DateTime, Utc};
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;

/// Percentile used to project utilisation onto a target (Compute Optimizer's default).
pub const PROJECTION_PERCENTILE: Percentile = Percentile::P99_5;
/// Headroom when a rule does not set one, in percent.
pub const DEFAULT_HEADROOM: f64 = 20.0;
/// Confidence factor when the trend runs against the action.
pub const TREND_PENALTY: f64 = 0.75;
/// Most alternatives kept on one recommendation.
pub const MAX_ALTERNATIVES: usize = 6;

/// A trend of one metric's daily means.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricTrend {
    pub metric: String,
    pub trend: Trend,
}

/// Everything the engine concluded about one resource.
#[derive(Debug, Clone, PartialEq)]
pub struct Analysis {
    pub resource_id: String,
    pub service: Service,
    /// The finding of the recommendation; else `optimized` when some rule had
    /// enough data, else `insufficient_data`.
    pub finding: FindingKind,
    pub verdicts: Vec<Verdict>,
    pub utilization_score: Option<u8>,
    pub trends: Vec<MetricTrend>,
    pub recommendation: Option<Recommendation>,
}

/// Analyses `resource` against `set` and returns at most one recommendation
/// (the best action; the others are its alternatives). Insufficient data never
/// yields one. `series` are the resource's series, points ascending (any
/// series naming another resource is ignored); a sparse metric that was
/// fetched but came back empty must still be passed, as an empty series,
/// since "no datapoint" means zero for it.
pub fn recommend(
    resource: &Resource,
    series: &[MetricSeries],
    set: &ThresholdSet,
    now: DateTime<Utc>,
) -> Vec<Recommendation> {
    Engine::new(set).recommend(resource, series, now)
}

/// The full analysis of one resource (verdicts, score, trends, recommendation).
pub fn analyze(
    resource: &Resource,
    series: &[MetricSeries],
    set: &ThresholdSet,
    now: DateTime<Utc>,
) -> Analysis {
    Engine::new(set).analyze(resource, series, now)
}

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
                if svc == Service::DynamoDb {
                    for d in [
                        Derived::ReadCapacityUtilization,
                        Derived::WriteCapacityUtilization,
                    ] {
                        if !derived.contains(&d) {
                            derived.push(d);
                        }
                    }
                }
                let target = idx
                    .iter()
                    .find_map(|&i| set.rules[i].headroom_percent)
                    .map_or(DEFAULT_TARGET, |h| 100.0 - h);
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
        }
    }

    fn score(&self, ctx: &mut Ctx<'_>, target: f64) -> Option<u8> {
        let r = ctx.resource;
        let mut u: [f64; 2] = [f64::NAN; 2];
        let p = Statistic::Percentile(SCORE_PERCENTILE);
        let d = SCORE_DAYS;
        match r.service {
            Service::Ec2 => {
                u[0] = ctx.metric_stat("CPUUtilization", p, d).unwrap_or(f64::NAN);
                u[1] = ctx
                    .metric_stat("mem_used_percent", p, d)
                    .unwrap_or(f64::NAN);
            }
            Service::Rds => {
                u[0] = ctx.metric_stat("CPUUtilization", p, d).unwrap_or(f64::NAN);
                u[1] = rds_memory_used_pct(ctx, self.prices, d).unwrap_or(f64::NAN);
            }
            Service::ElastiCache => {
                u[0] = ctx.metric_stat("CPUUtilization", p, d).unwrap_or(f64::NAN);
                u[1] = ctx
                    .metric_stat("DatabaseMemoryUsagePercentage", p, d)
                    .unwrap_or(f64::NAN);
            }
            Service::Ecs => {
                u[0] = ctx.metric_stat("CPUUtilization", p, d).unwrap_or(f64::NAN);
                u[1] = ctx
                    .metric_stat("MemoryUtilization", p, d)
                    .unwrap_or(f64::NAN);
            }
            Service::Lambda => {
                u[0] = ctx
                    .metric_stat("memory_utilization", p, d)
                    .unwrap_or(f64::NAN);
            }
            Service::DynamoDb => {
                u[0] = ctx
                    .metric_stat("ReadCapacityUtilization", p, d)
                    .unwrap_or(f64::NAN);
                u[1] = ctx
                    .metric_stat("WriteCapacityUtilization", p, d)
                    .unwrap_or(f64::NAN);
            }
            Service::S3 => return None,
        }
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
            let (options, current) = self.options(ctx, rule, v);
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
            (Some(s), Some(c)) if c > 0.0 => Some(round2((100.0 * s / c).clamp(0.0, 100.0))),
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
            id: Recommendation::stable_id(&resource.id, primary.action),
            resource_id: resource.id.clone(),
            service: resource.service,
            region: resource.region.clone(),
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
            utilization_score: score,
            threshold_version: self.set.version,
            created_at: ctx.now,
        })
    }

    /// The options for a flagged rule, preferred first, and the resource's
    /// current monthly cost when known.
    fn options(
        &self,
        ctx: &mut Ctx<'_>,
        rule: &ThresholdRule,
        v: &Verdict,
    ) -> (Vec<Opt>, Option<f64>) {
        let svc = ctx.resource.service;
        let mut out = match svc {
            Service::Ec2 | Service::Rds | Service::ElastiCache => {
                self.instance_options(ctx, rule, v)
            }
            Service::Lambda => self.lambda_options(ctx, rule, v),
            Service::Ecs => self.ecs_options(ctx, rule),
            Service::S3 => self.s3_options(ctx, rule),
            Service::DynamoDb => self.dynamo_options(ctx, rule),
        };
        // The rule's own action leads; the catalogue may add others after it.
        if let Some(i) = out.0.iter().position(|o| o.action == rule.action) {
            let o = out.0.remove(i);
            out.0.insert(0, o);
        } else {
            out.0.insert(
                0,
                Opt {
                    action: rule.action,
                    target: None,
                    savings: Err(format!(
                        "no price known for {} {}: the action {} has no cost model for this service",
                        svc,
                        ctx.resource.id,
                        rule.action.as_str()
                    )),
                    risk: 2,
                    text: format!("{} {}", verb(rule.action), ctx.resource.id),
                },
            );
        }
        out
    }

    // ----- EC2, RDS, ElastiCache --------------------------------------------

    fn instance_options(
        &self,
        ctx: &mut Ctx<'_>,
        rule: &ThresholdRule,
        v: &Verdict,
    ) -> (Vec<Opt>, Option<f64>) {
        let r = ctx.resource;
        let svc = r.service;
        let facts = InstanceFacts::of(r, self.prices);
        let current = facts.monthly.as_ref().ok().copied();
        let limit = 100.0 - rule.headroom_percent.unwrap_or(DEFAULT_HEADROOM);
        let days = rule.lookback_days.max(1);
        let peaks = instance_peaks(ctx, self.prices, days);
        let related = !r.relations.is_empty();
        let mut opts = Vec::new();
        let kind = noun(svc);
        match rule.action {
            Action::Stop | Action::Terminate => {
                let share = match (rule.aggregation, v.daily, rule.action) {
                    (Aggregation::Daily, Some(d), Action::Stop)
                        if v.finding != FindingKind::Idle =>
                    {
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
                    Service::ElastiCache => {
                        "Take a final backup and delete the cluster".to_string()
                    }
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
                    opts.extend(self.downsize_options(svc, &facts, &peaks, limit));
                }
            }
            Action::ScaleUp => {
                let (target, spec) = match facts.type_name.as_deref() {
                    Some(t) => {
                        let up = self.prices.larger_type(svc, t);
                        let spec = up
                            .as_deref()
                            .and_then(|u| self.prices.type_spec_anywhere(svc, u));
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
                opts.extend(self.downsize_options(svc, &facts, &peaks, limit));
            }
        }
        (opts, current)
    }

    /// Rightsizing within the family (the smallest size whose projection keeps
    /// the headroom), the same on Graviton, Graviton at the current size, and
    /// one size down when the best fit is further.
    fn downsize_options(
        &self,
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
        let smaller = self.prices.smaller_types(svc, cur_name);
        let mut best: Option<(String, TypeSpec)> = None;
        for t in &smaller {
            let Some(spec) = self.prices.type_spec_anywhere(svc, t) else {
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
            if let Some(g) = self.prices.graviton_equivalent(svc, t) {
                if let Some(gs) = self.prices.type_spec_anywhere(svc, &g) {
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
        if let Some(g) = self.prices.graviton_equivalent(svc, cur_name) {
            if let Some(gs) = self.prices.type_spec_anywhere(svc, &g) {
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
                if let Some(spec) = self.prices.type_spec_anywhere(svc, first) {
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
                .and_then(|t| self.prices.type_spec_anywhere(svc, t))
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

    // ----- Lambda ----------------------------------------------------------

    fn lambda_options(
        &self,
        ctx: &mut Ctx<'_>,
        rule: &ThresholdRule,
        v: &Verdict,
    ) -> (Vec<Opt>, Option<f64>) {
        let r = ctx.resource;
        let facts = LambdaFacts::of(ctx, self.prices);
        let current = facts.total.as_ref().ok().copied();
        let related = !r.relations.is_empty();
        let mut opts = Vec::new();
        match rule.action {
            Action::DeleteUnused => {
                opts.push(Opt {
                    action: Action::DeleteUnused,
                    target: None,
                    savings: Ok(r.monthly_cost_usd.filter(|c| c.is_finite() && *c >= 0.0).unwrap_or(0.0)),
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
                let limit = 100.0 - rule.headroom_percent.unwrap_or(DEFAULT_HEADROOM);
                let peak = ctx.metric_stat(
                    "memory_utilization",
                    Statistic::Percentile(PROJECTION_PERCENTILE),
                    rule.lookback_days.max(1),
                );
                match (facts.memory_mb, peak) {
                    (Some(mem), Some(p)) => {
                        let used = mem * p / 100.0;
                        let target = (((used / (limit / 100.0)) / 64.0).ceil() * 64.0)
                            .clamp(128.0, 10_240.0);
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

    // ----- ECS -------------------------------------------------------------

    fn ecs_options(&self, ctx: &mut Ctx<'_>, rule: &ThresholdRule) -> (Vec<Opt>, Option<f64>) {
        let r = ctx.resource;
        let limit = 100.0 - rule.headroom_percent.unwrap_or(DEFAULT_HEADROOM);
        let days = rule.lookback_days.max(1);
        let pp = Statistic::Percentile(PROJECTION_PERCENTILE);
        let cpu_peak = ctx.metric_stat("CPUUtilization", pp, days);
        let mem_peak = ctx.metric_stat("MemoryUtilization", pp, days);
        let facts = EcsFacts::of(r, self.prices);
        let current = facts.monthly.as_ref().ok().copied();
        let peak = match (cpu_peak, mem_peak) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
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
                        let proj = pc.into_iter().chain(pm).fold(None, |a: Option<f64>, x| Some(a.map_or(x, |a| a.max(x))));
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
                    savings: Ok(0.0),
                    risk: projection_risk(peak.zip(n).map(|(p, n)| p * count / n), limit),
                    text: match n {
                        Some(n) => format!("Scale out from {count:.0} to {n:.0} tasks, or raise the task cpu/memory"),
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

    // ----- S3 --------------------------------------------------------------

    fn s3_options(&self, ctx: &mut Ctx<'_>, rule: &ThresholdRule) -> (Vec<Opt>, Option<f64>) {
        let r = ctx.resource;
        let days = rule.lookback_days.max(1);
        let size = ctx.metric_stat("BucketSizeBytes", Statistic::Average, days);
        let objects = ctx.metric_stat("NumberOfObjects", Statistic::Average, days);
        let gets = ctx.metric_stat("GetRequests", Statistic::Sum, days);
        let class = r
            .resource_type
            .as_deref()
            .map(|c| c.to_ascii_uppercase())
            .unwrap_or_else(|| "STANDARD".to_string());
        let prices = self.prices.s3(&r.region);
        let gb = size.map(|b| b / GIB);
        let month = HOURS_PER_MONTH * 3600.0 / (f64::from(days) * DAY_SECONDS as f64);
        let cur_price = prices.and_then(|p| p.storage_usd_per_gb_month.get(&class).copied());
        let known = r.monthly_cost_usd.filter(|c| c.is_finite() && *c >= 0.0);
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
                class_opt(Action::AddLifecycleRule, "DEEP_ARCHIVE", 3, "Add a lifecycle rule moving objects to Glacier Deep Archive (restores take hours)".to_string());
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
                class_opt(Action::AddLifecycleRule, "GLACIER_IR", 2, "Add a lifecycle rule moving objects to Glacier Instant Retrieval after 30 days".to_string());
            }
        }
        (opts, current.ok())
    }

    // ----- DynamoDB --------------------------------------------------------

    fn dynamo_options(&self, ctx: &mut Ctx<'_>, rule: &ThresholdRule) -> (Vec<Opt>, Option<f64>) {
        let r = ctx.resource;
        let limit = 100.0 - rule.headroom_percent.unwrap_or(DEFAULT_HEADROOM);
        let days = rule.lookback_days.max(1);
        let prices = self.prices.dynamodb(&r.region);
        let pp = Statistic::Percentile(PROJECTION_PERCENTILE);
        let prov_r = ctx
            .last_value("ProvisionedReadCapacityUnits")
            .or_else(|| attr_f64(r, &["provisionedReadCapacityUnits"]));
        let prov_w = ctx
            .last_value("ProvisionedWriteCapacityUnits")
            .or_else(|| attr_f64(r, &["provisionedWriteCapacityUnits"]));
        let period_r = ctx.period_of("ConsumedReadCapacityUnits").unwrap_or(3600.0);
        let period_w = ctx
            .period_of("ConsumedWriteCapacityUnits")
            .unwrap_or(3600.0);
        let peak_r = ctx
            .metric_stat("ConsumedReadCapacityUnits", pp, days)
            .map(|v| v / period_r);
        let peak_w = ctx
            .metric_stat("ConsumedWriteCapacityUnits", pp, days)
            .map(|v| v / period_w);
        let month = HOURS_PER_MONTH * 3600.0 / (f64::from(days) * DAY_SECONDS as f64);
        let used_r = ctx
            .metric_stat("ConsumedReadCapacityUnits", Statistic::Sum, days)
            .map(|v| v * month);
        let used_w = ctx
            .metric_stat("ConsumedWriteCapacityUnits", Statistic::Sum, days)
            .map(|v| v * month);
        let known = r.monthly_cost_usd.filter(|c| c.is_finite() && *c >= 0.0);
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
}

// ---------------------------------------------------------------------------
// Candidates and ranking

/// One way to act, with its own savings (or why none is known) and risk.
#[derive(Debug, Clone)]
struct Opt {
    action: Action,
    target: Option<String>,
    savings: Result<f64, String>,
    risk: u8,
    text: String,
}

struct Candidate<'v> {
    verdict: &'v Verdict,
    rule: &'v ThresholdRule,
    order: usize,
    options: Vec<Opt>,
    current: Option<f64>,
    confidence: f64,
    trend_note: Option<String>,
}

fn class(f: FindingKind) -> u8 {
    match f {
        FindingKind::Erroring | FindingKind::UnderProvisioned => 1,
        _ => 0,
    }
}

fn finding_order(f: FindingKind) -> u8 {
    match f {
        FindingKind::Erroring => 0,
        FindingKind::UnderProvisioned => 1,
        FindingKind::Idle => 2,
        FindingKind::Underutilized => 3,
        FindingKind::OverProvisioned => 4,
        _ => 5,
    }
}

fn expected_value(c: &Candidate<'_>) -> f64 {
    let o = &c.options[0];
    let s = o.savings.as_ref().ok().map_or(0.0, |s| cap(*s, c.current));
    s * c.confidence * (1.0 - f64::from(o.risk.min(4)) / 8.0)
}

fn compare_candidates(a: &Candidate<'_>, b: &Candidate<'_>) -> Ordering {
    class(b.verdict.finding)
        .cmp(&class(a.verdict.finding))
        .then_with(|| expected_value(b).total_cmp(&expected_value(a)))
        .then_with(|| b.confidence.total_cmp(&a.confidence))
        .then_with(|| a.options[0].risk.cmp(&b.options[0].risk))
        .then_with(|| finding_order(a.verdict.finding).cmp(&finding_order(b.verdict.finding)))
        .then_with(|| a.order.cmp(&b.order))
}

/// Confidence from coverage, margin and the trend factor (see the module doc).
pub fn confidence(coverage: f64, margin: f64, trend_factor: f64) -> f64 {
    let cov = if coverage.is_finite() {
        coverage.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let m = if margin.is_finite() {
        margin.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let t = if trend_factor.is_finite() {
        trend_factor.clamp(0.0, 1.0)
    } else {
        0.0
    };
    round2(cov * (0.6 + 0.4 * m) * t)
}

/// Risk 0..=4 of a projected peak utilisation against the limit `100 - headroom`.
pub fn projection_risk(projected: Option<f64>, limit: f64) -> u8 {
    let Some(p) = projected.filter(|p| p.is_finite()) else {
        return 2;
    };
    let l = if limit.is_finite() {
        limit.clamp(1.0, 100.0)
    } else {
        80.0
    };
    if p <= 0.5 * l {
        0
    } else if p <= 0.75 * l {
        1
    } else if p <= l {
        2
    } else if p <= 100.0 {
        3
    } else {
        4
    }
}

fn removal_risk(action: Action, finding: FindingKind, related: bool) -> u8 {
    let base: u8 = if action == Action::Stop { 0 } else { 1 };
    (base + u8::from(finding != FindingKind::Idle) + u8::from(related)).min(4)
}

fn cap(s: f64, current: Option<f64>) -> f64 {
    let s = if s.is_finite() { s.max(0.0) } else { 0.0 };
    match current {
        Some(c) if c.is_finite() && c >= 0.0 => s.min(c),
        _ => s,
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

// ---------------------------------------------------------------------------
// Facts about a resource

fn attr_f64(r: &Resource, keys: &[&str]) -> Option<f64> {
    keys.iter().find_map(|k| {
        let v = r.attributes.get(*k)?;
        v.as_f64()
            .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
            .filter(|x: &f64| x.is_finite())
    })
}

fn attr_str<'r>(r: &'r Resource, keys: &[&str]) -> Option<&'r str> {
    keys.iter().find_map(|k| r.attributes.get(*k)?.as_str())
}

fn known_cost(r: &Resource) -> Option<f64> {
    r.monthly_cost_usd.filter(|c| c.is_finite() && *c >= 0.0)
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
        match (self.cpu, self.mem) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
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
    let max = match (c, m) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    (projection_risk(max, limit), projection_text(c, m))
}

fn projection_text(cpu: Option<f64>, mem: Option<f64>) -> String {
    match (cpu, mem) {
        (Some(c), Some(m)) => format!(
            ": projected p99.5 CPU {}%, memory {}%",
            trim(c, 1),
            trim(m, 1)
        ),
        (Some(c), None) => format!(": projected p99.5 CPU {}%", trim(c, 1)),
        (None, Some(m)) => format!(": projected p99.5 memory {}%", trim(m, 1)),
        (None, None) => String::new(),
    }
}

fn rds_memory_used_pct(ctx: &mut Ctx<'_>, prices: &PriceCatalog, days: u32) -> Option<f64> {
    let r = ctx.resource;
    let total_gib = r
        .resource_type
        .as_deref()
        .and_then(|t| prices.type_spec_anywhere(Service::Rds, t))
        .map(|s| s.memory_gib)
        .or_else(|| r.memory_mb.map(|m| f64::from(m) / 1024.0))?;
    let free = ctx.metric_stat("FreeableMemory", Statistic::Minimum, days)?;
    let total = total_gib * GIB;
    (total > 0.0).then(|| (100.0 * (1.0 - free / total)).clamp(0.0, 100.0))
}

fn instance_peaks(ctx: &mut Ctx<'_>, prices: &PriceCatalog, days: u32) -> Peaks {
    let pp = Statistic::Percentile(PROJECTION_PERCENTILE);
    let cpu = ctx.metric_stat("CPUUtilization", pp, days);
    let mem = match ctx.resource.service {
        Service::Ec2 => ctx.metric_stat("mem_used_percent", pp, days),
        Service::Rds => rds_memory_used_pct(ctx, prices, days),
        Service::ElastiCache => ctx.metric_stat("DatabaseMemoryUsagePercentage", pp, days),
        _ => None,
    };
    Peaks { cpu, mem }
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
        let invocations = ctx.metric_stat("Invocations", Statistic::Sum, days);
        let duration = ctx.metric_stat("Duration", Statistic::Average, days);
        let month = HOURS_PER_MONTH * 3600.0 / (f64::from(days) * DAY_SECONDS as f64);
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

fn trend_metrics(s: Service) -> &'static [&'static str] {
    match s {
        Service::Ec2 => &["CPUUtilization"],
        Service::Rds => &["CPUUtilization", "DatabaseConnections"],
        Service::ElastiCache => &["CPUUtilization", "DatabaseMemoryUsagePercentage"],
        Service::Ecs => &["CPUUtilization", "MemoryUtilization"],
        Service::Lambda => &["Invocations"],
        Service::DynamoDb => &["ConsumedReadCapacityUnits", "ConsumedWriteCapacityUnits"],
        Service::S3 => &["BucketSizeBytes"],
    }
}

// ---------------------------------------------------------------------------
// Text

fn noun(s: Service) -> &'static str {
    match s {
        Service::Ec2 => "instance",
        Service::Rds => "DB instance",
        Service::ElastiCache => "cache cluster",
        Service::Lambda => "function",
        Service::Ecs => "service",
        Service::S3 => "bucket",
        Service::DynamoDb => "table",
    }
}

fn verb(a: Action) -> &'static str {
    match a {
        Action::Stop => "Stop",
        Action::Terminate => "Terminate",
        Action::Rightsize => "Rightsize",
        Action::MoveToGraviton => "Move to Graviton",
        Action::ChangeStorageClass => "Change the storage class of",
        Action::AddLifecycleRule => "Add a lifecycle rule to",
        Action::SwitchToOnDemand => "Switch to on-demand",
        Action::LowerProvisionedCapacity => "Lower the provisioned capacity of",
        Action::ReduceMemory => "Reduce the memory of",
        Action::IncreaseMemory => "Increase the memory of",
        Action::ShrinkTasks => "Shrink the tasks of",
        Action::ReduceTaskCount => "Reduce the task count of",
        Action::DeleteUnused => "Delete",
        Action::InvestigateErrors => "Investigate the errors of",
        Action::ScaleUp => "Scale up",
    }
}

/// A number with at most `decimals` decimals, trailing zeros dropped.
fn trim(v: f64, decimals: usize) -> String {
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

fn money(v: f64) -> String {
    format!("${v:.2}")
}

/// A value in its metric's unit: `4.2%`, `1.2 MB`, `350 ms`.
pub fn format_value(service: Service, metric: &str, v: f64) -> String {
    match unit_of(service, metric) {
        Some(Unit::Percent) => format!("{}%", trim(v, 1)),
        Some(Unit::Bytes) => {
            let a = v.abs();
            if a >= 1e12 {
                format!("{} TB", trim(v / 1e12, 1))
            } else if a >= 1e9 {
                format!("{} GB", trim(v / 1e9, 1))
            } else if a >= 1e6 {
                format!("{} MB", trim(v / 1e6, 1))
            } else if a >= 1e3 {
                format!("{} KB", trim(v / 1e3, 1))
            } else {
                format!("{} B", trim(v, 0))
            }
        }
        Some(Unit::Milliseconds) => format!("{} ms", trim(v, 0)),
        Some(Unit::Count) | None => {
            if v.abs() >= 100.0 {
                trim(v, 0)
            } else {
                trim(v, 2)
            }
        }
    }
}

fn op_text(service: Service, c: &ConditionResult) -> String {
    let f = |x: f64| format_value(service, &c.metric, x);
    match (c.operator, c.upper) {
        (Operator::LessThan, _) => format!("< {}", f(c.threshold)),
        (Operator::GreaterThan, _) => format!("> {}", f(c.threshold)),
        (Operator::Equals, _) => format!("= {}", f(c.threshold)),
        (Operator::Between, Some(u)) if c.threshold.min(u) == 0.0 => {
            format!("<= {}", f(c.threshold.max(u)))
        }
        (Operator::Between, Some(u)) => format!(
            "between {} and {}",
            f(c.threshold.min(u)),
            f(c.threshold.max(u))
        ),
        (Operator::Between, None) => "between ?".to_string(),
    }
}

fn evidence(service: Service, v: &Verdict, lookback: u32) -> String {
    match v.daily {
        Some(d) => {
            let conds: Vec<String> = v
                .conditions
                .iter()
                .map(|c| format!("{} daily {} {}", c.metric, c.statistic, op_text(service, c)))
                .collect();
            let worst: Vec<String> = v
                .conditions
                .iter()
                .filter_map(|c| {
                    c.measured
                        .map(|m| format!("{} {}", c.metric, format_value(service, &c.metric, m)))
                })
                .collect();
            format!(
                "{} on {} of the last {} days (rule needs {}); least favourable qualifying day: {}",
                conds.join(" and "),
                d.qualifying_days,
                d.of_last_days,
                d.min_days,
                worst.join(", ")
            )
        }
        None => v
            .conditions
            .iter()
            .map(|c| {
                let m = c.measured.map_or("no data".to_string(), |m| {
                    format_value(service, &c.metric, m)
                });
                format!(
                    "{} {} over {lookback} days is {m} (threshold {})",
                    c.metric,
                    c.statistic,
                    op_text(service, c)
                )
            })
            .collect::<Vec<_>>()
            .join("; "),
    }
}

fn trend_note(service: Service, t: &MetricTrend) -> String {
    let per_day = format_value(service, &t.metric, t.trend.slope.abs());
    format!(
        "{} is trending {} ({}{} a day, Mann-Kendall p = {:.3}), which lowers confidence",
        t.metric,
        if t.trend.direction == TrendDirection::Increasing {
            "up"
        } else {
            "down"
        },
        if t.trend.slope >= 0.0 { "+" } else { "-" },
        per_day,
        t.trend.p_value
    )
}

fn reason_text(
    ctx: &Ctx<'_>,
    c: &Candidate<'_>,
    o: &Opt,
    savings: Option<f64>,
    pct: Option<f64>,
    version: u32,
) -> String {
    let svc = ctx.resource.service;
    let mut s = evidence(svc, c.verdict, c.rule.lookback_days);
    s.push_str(". ");
    s.push_str(&o.text);
    match (savings, &o.savings) {
        (Some(v), _) if v == 0.0 && o.action == Action::ScaleUp => {}
        (Some(v), _) => {
            let _ = write!(s, ". Saves about {}/month", money(v));
            if let Some(p) = pct {
                let _ = write!(s, " ({}% of its cost)", trim(p, 0));
            }
        }
        (None, Err(why)) => {
            let _ = write!(s, ". No savings estimate: {why}");
        }
        (None, Ok(_)) => {}
    }
    let _ = write!(
        s,
        ". Data coverage {}%, confidence {:.2}",
        trim(c.verdict.coverage * 100.0, 0),
        c.confidence
    );
    if let Some(t) = &c.trend_note {
        let _ = write!(s, "; {t}");
    }
    let _ = write!(s, ". [rule {}, thresholds v{version}]", c.verdict.rule_id);
    s
}

// ---------------------------------------------------------------------------
// Dependencies and ordering

/// The inventory's relations, indexed once per cycle, so that a
/// recommendation's dependencies cost the size of its own neighbourhood
/// rather than a scan of the estate (quadratic at 10,000 resources).
pub struct DependencyIndex<'a> {
    inventory: &'a [Resource],
    /// The first resource with each id, as a linear search would find it.
    first: HashMap<&'a str, &'a Resource>,
    /// For each id, the resources naming it as a relation target.
    referrers: HashMap<&'a str, Vec<&'a str>>,
}

impl<'a> DependencyIndex<'a> {
    pub fn new(inventory: &'a [Resource]) -> Self {
        let mut first = HashMap::with_capacity(inventory.len());
        let mut referrers: HashMap<&'a str, Vec<&'a str>> = HashMap::new();
        for r in inventory {
            first.entry(r.id.as_str()).or_insert(r);
            for rel in &r.relations {
                referrers
                    .entry(rel.target_id.as_str())
                    .or_default()
                    .push(r.id.as_str());
            }
        }
        DependencyIndex {
            inventory,
            first,
            referrers,
        }
    }

    pub fn inventory(&self) -> &'a [Resource] {
        self.inventory
    }

    /// The first inventory entry with this id.
    pub fn resource(&self, id: &str) -> Option<&'a Resource> {
        self.first.get(id).copied()
    }

    /// Ids of the resources related to `resource` in either direction: those
    /// it names in its relations and those naming it in theirs. Sorted, no
    /// self.
    pub fn dependencies_for(&self, resource: &Resource) -> Vec<String> {
        let mut ids: BTreeSet<&str> = resource
            .relations
            .iter()
            .map(|r| r.target_id.as_str())
            .collect();
        if let Some(referrers) = self.referrers.get(resource.id.as_str()) {
            ids.extend(referrers.iter().copied());
        }
        ids.remove(resource.id.as_str());
        ids.into_iter().map(str::to_string).collect()
    }

    /// Adds to each recommendation the ids its resource is related to, after
    /// those it already lists, without repeats.
    pub fn link(&self, recs: &mut [Recommendation]) {
        for rec in recs {
            if let Some(resource) = self.resource(&rec.resource_id) {
                for d in self.dependencies_for(resource) {
                    if d != rec.resource_id && !rec.dependencies.contains(&d) {
                        rec.dependencies.push(d);
                    }
                }
            }
        }
    }
}

/// The scan the index replaced, kept as the reference its properties are
/// checked against.
#[cfg(test)]
pub(crate) fn dependencies_for(resource: &Resource, inventory: &[Resource]) -> Vec<String> {
    let mut ids: BTreeSet<&str> = resource
        .relations
        .iter()
        .map(|r| r.target_id.as_str())
        .collect();
    for other in inventory {
        if other.id != resource.id && other.relations.iter().any(|r| r.target_id == resource.id) {
            ids.insert(other.id.as_str());
        }
    }
    ids.remove(resource.id.as_str());
    ids.into_iter().map(str::to_string).collect()
}

/// Groups recommendations into batches of related resources (connected
/// through relations, also via resources without a recommendation) and orders
/// each batch so that dependents come before what they depend on (a relation
/// `A -> B` means A depends on B: act on A, then B). Cycles fall back to id
/// order. Each recommendation's `dependencies` is completed with both
/// directions from the inventory. Batches come by total savings, largest
/// first, then by resource id; the order is deterministic.
pub fn order_actions(
    recs: Vec<Recommendation>,
    index: &DependencyIndex<'_>,
) -> Vec<Vec<Recommendation>> {
    order_actions_with(recs, index.inventory(), |r| index.dependencies_for(r))
}

fn order_actions_with(
    recs: Vec<Recommendation>,
    inventory: &[Resource],
    dependencies_for: impl Fn(&Resource) -> Vec<String>,
) -> Vec<Vec<Recommendation>> {
    let rec_ids: Vec<String> = recs.iter().map(|r| r.resource_id.clone()).collect();
    // Directed edges "depends on", from the inventory.
    let mut edges: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    let mut nodes: BTreeSet<&str> = BTreeSet::new();
    for r in inventory {
        nodes.insert(&r.id);
        for rel in &r.relations {
            if rel.target_id != r.id {
                edges.entry(&r.id).or_default().insert(&rel.target_id);
                nodes.insert(&rel.target_id);
            }
        }
    }
    for id in &rec_ids {
        nodes.insert(id);
    }
    // Components (undirected).
    let ids: Vec<&str> = nodes.iter().copied().collect();
    let index: BTreeMap<&str, usize> = ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
    let mut parent: Vec<usize> = (0..ids.len()).collect();
    fn root(p: &mut [usize], mut i: usize) -> usize {
        while p[i] != i {
            p[i] = p[p[i]];
            i = p[i];
        }
        i
    }
    for (a, bs) in &edges {
        for b in bs {
            if let (Some(&x), Some(&y)) = (index.get(a), index.get(b)) {
                let (rx, ry) = (root(&mut parent, x), root(&mut parent, y));
                if rx != ry {
                    parent[rx.max(ry)] = rx.min(ry);
                }
            }
        }
    }
    // Topological order over all nodes: dependents first (Kahn, by id).
    let mut indegree: BTreeMap<&str, usize> = ids.iter().map(|id| (*id, 0)).collect();
    for bs in edges.values() {
        for b in bs {
            if let Some(d) = indegree.get_mut(b) {
                *d += 1;
            }
        }
    }
    let mut ready: BTreeSet<&str> = indegree
        .iter()
        .filter(|(_, d)| **d == 0)
        .map(|(id, _)| *id)
        .collect();
    let mut position: BTreeMap<&str, usize> = BTreeMap::new();
    while let Some(id) = ready.pop_first() {
        position.insert(id, position.len());
        if let Some(bs) = edges.get(id) {
            for b in bs {
                if let Some(d) = indegree.get_mut(b) {
                    *d -= 1;
                    if *d == 0 {
                        ready.insert(b);
                    }
                }
            }
        }
    }
    for id in &ids {
        if !position.contains_key(id) {
            position.insert(id, position.len());
        }
    }
    let by_id: BTreeMap<&str, &Resource> = inventory.iter().map(|r| (r.id.as_str(), r)).collect();
    let mut groups: BTreeMap<usize, Vec<(usize, Recommendation)>> = BTreeMap::new();
    let keyed: Vec<(usize, usize, Recommendation)> = recs
        .into_iter()
        .map(|mut rec| {
            if let Some(res) = by_id.get(rec.resource_id.as_str()) {
                let mut deps: BTreeSet<String> = rec.dependencies.drain(..).collect();
                deps.extend(dependencies_for(res));
                rec.dependencies = deps.into_iter().collect();
            }
            let i = index.get(rec.resource_id.as_str()).copied().unwrap_or(0);
            let comp = root(&mut parent, i);
            let pos = position
                .get(rec.resource_id.as_str())
                .copied()
                .unwrap_or(usize::MAX);
            (comp, pos, rec)
        })
        .collect();
    for (comp, pos, rec) in keyed {
        groups.entry(comp).or_default().push((pos, rec));
    }
    let mut batches: Vec<Vec<Recommendation>> = groups
        .into_values()
        .map(|mut g| {
            g.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.id.cmp(&b.1.id)));
            g.into_iter().map(|(_, r)| r).collect()
        })
        .collect();
    let total =
        |b: &Vec<Recommendation>| b.iter().filter_map(|r| r.monthly_savings_usd).sum::<f64>();
    let first = |b: &Vec<Recommendation>| {
        b.iter()
            .map(|r| r.resource_id.clone())
            .min()
            .unwrap_or_default()
    };
    batches.sort_by(|a, b| {
        total(b)
            .total_cmp(&total(a))
            .then_with(|| first(a).cmp(&first(b)))
    });
    batches
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::analysis::default_thresholds;
    use crate::analysis::evaluate::evaluate_rule;
    use crate::domain::{MetricPoint, Relation};
    use proptest::prelude::*;

    pub fn now() -> DateTime<Utc> {
        "2024-06-15T00:00:00Z".parse().unwrap()
    }

    /// Hourly points for the last `hours` hours before `now`, value by hour index
    /// (0 = oldest).
    pub fn hourly(
        id: &str,
        svc: Service,
        metric: &str,
        stat: &str,
        hours: i64,
        f: impl Fn(i64) -> f64,
    ) -> MetricSeries {
        let start = now() - chrono::Duration::hours(hours);
        MetricSeries {
            resource_id: id.into(),
            service: svc,
            metric: metric.into(),
            statistic: stat.into(),
            period_seconds: 3600,
            points: (0..hours)
                .map(|h| MetricPoint {
                    timestamp: start + chrono::Duration::hours(h),
                    value: f(h),
                })
                .collect(),
        }
    }

    fn daily_series(
        id: &str,
        svc: Service,
        metric: &str,
        stat: &str,
        days: i64,
        f: impl Fn(i64) -> f64,
    ) -> MetricSeries {
        let start = now() - chrono::Duration::days(days);
        MetricSeries {
            resource_id: id.into(),
            service: svc,
            metric: metric.into(),
            statistic: stat.into(),
            period_seconds: 86_400,
            points: (0..days)
                .map(|d| MetricPoint {
                    timestamp: start + chrono::Duration::days(d),
                    value: f(d),
                })
                .collect(),
        }
    }

    fn rule<'a>(set: &'a ThresholdSet, id: &str) -> &'a ThresholdRule {
        set.rules.iter().find(|r| r.id == id).unwrap()
    }

    fn res(svc: Service, id: &str, t: Option<&str>) -> Resource {
        let mut r = Resource::new(svc, id, "us-east-1");
        r.resource_type = t.map(str::to_string);
        r
    }

    /// EC2 with `low_days` Trusted Advisor-low days (the first ones) of 14.
    fn ec2_series(id: &str, low_days: i64) -> Vec<MetricSeries> {
        let low = move |h: i64| h / 24 < low_days;
        vec![
            hourly(
                id,
                Service::Ec2,
                "CPUUtilization",
                "Average",
                336,
                move |h| {
                    if low(h) {
                        4.0 + (h % 3) as f64 * 0.1
                    } else {
                        45.0
                    }
                },
            ),
            hourly(
                id,
                Service::Ec2,
                "CPUUtilization",
                "Maximum",
                336,
                move |h| if low(h) { 8.0 } else { 70.0 },
            ),
            hourly(id, Service::Ec2, "NetworkIn", "Sum", 336, move |h| {
                if low(h) {
                    100_000.0
                } else {
                    5e8
                }
            }),
            hourly(id, Service::Ec2, "NetworkOut", "Sum", 336, move |h| {
                if low(h) {
                    50_000.0
                } else {
                    5e8
                }
            }),
        ]
    }

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
        s[3] = hourly("i-2", Service::Ec2, "NetworkOut", "Sum", 336, |_| 110_000.0);
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
            "DatabaseConnections",
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
            "DatabaseConnections",
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

    fn lambda_series(id: &str, error_per_hour_on_day3: f64) -> Vec<MetricSeries> {
        vec![
            hourly(id, Service::Lambda, "Invocations", "Sum", 7 * 24, |_| {
                1000.0
            }),
            hourly(id, Service::Lambda, "Errors", "Sum", 7 * 24, move |h| {
                if h / 24 == 3 {
                    error_per_hour_on_day3
                } else {
                    5.0
                }
            }),
            hourly(id, Service::Lambda, "Duration", "Average", 7 * 24, |_| {
                120.0
            }),
        ]
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
            metric: "Invocations".into(),
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
            hourly("i-3", Service::Ec2, "CPUUtilization", "Average", 20, |_| {
                1.0
            }),
            hourly("i-3", Service::Ec2, "CPUUtilization", "Maximum", 20, |_| {
                1.0
            }),
            hourly("i-3", Service::Ec2, "NetworkIn", "Sum", 20, |_| 0.0),
            hourly("i-3", Service::Ec2, "NetworkOut", "Sum", 20, |_| 0.0),
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
                "CPUUtilization",
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
            hourly("i-5", Service::Ec2, "CPUUtilization", "Average", 336, |h| {
                10.0 + (h % 24) as f64 * 0.3
            }),
            hourly("i-5", Service::Ec2, "CPUUtilization", "Maximum", 336, |h| {
                15.0 + (h % 24) as f64 * 0.5
            }),
            hourly("i-5", Service::Ec2, "NetworkIn", "Sum", 336, |_| 1e9),
            hourly("i-5", Service::Ec2, "NetworkOut", "Sum", 336, |_| 1e9),
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
        assert_eq!(rec.id, Recommendation::stable_id("i-5", Action::Rightsize));
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
            "CPUUtilization",
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
        let rec = recommend(&r, &s, &set, now());
        assert!(
            rec[0]
                .reason
                .contains("no price known for ec2 m5.xlarge in eu-west-1"),
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
    fn under_provisioned_wins_over_savings_and_costs_nothing_to_state() {
        let set = default_thresholds().unwrap();
        let r = res(Service::ElastiCache, "c-1", Some("cache.r5.large"));
        let s = vec![
            hourly(
                "c-1",
                Service::ElastiCache,
                "CPUUtilization",
                "Maximum",
                336,
                |_| 10.0,
            ),
            hourly(
                "c-1",
                Service::ElastiCache,
                "DatabaseMemoryUsagePercentage",
                "Maximum",
                336,
                |_| 95.0,
            ),
            hourly(
                "c-1",
                Service::ElastiCache,
                "CurrConnections",
                "Maximum",
                336,
                |_| 40.0,
            ),
        ];
        let rec = recommend(&r, &s, &set, now());
        assert_eq!(rec[0].finding, FindingKind::UnderProvisioned);
        assert_eq!(rec[0].action, Action::ScaleUp);
        assert_eq!(rec[0].target_type.as_deref(), Some("cache.r5.xlarge"));
        assert_eq!(rec[0].monthly_savings_usd, Some(0.0));
        assert!(
            rec[0].reason.contains("(+$156.95/month)"),
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
                "ConsumedReadCapacityUnits",
                "Sum",
                336,
                |h| if h % 24 == 12 { 36_000.0 } else { 3600.0 },
            ),
            hourly(
                "tbl",
                Service::DynamoDb,
                "ConsumedWriteCapacityUnits",
                "Sum",
                336,
                |_| 3600.0,
            ),
            hourly(
                "tbl",
                Service::DynamoDb,
                "ProvisionedReadCapacityUnits",
                "Average",
                336,
                |_| 100.0,
            ),
            hourly(
                "tbl",
                Service::DynamoDb,
                "ProvisionedWriteCapacityUnits",
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
                "BucketSizeBytes",
                "Average",
                30,
                move |_| size,
            ),
            daily_series(
                "logs-bucket",
                Service::S3,
                "NumberOfObjects",
                "Average",
                30,
                |_| 500_000.0,
            ),
            daily_series("logs-bucket", Service::S3, "GetRequests", "Sum", 30, |d| {
                if d % 10 == 0 {
                    50.0
                } else {
                    0.0
                }
            }),
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
                "CPUUtilization",
                "Maximum",
                336,
                |_| 30.0,
            ),
            hourly(
                "svc-1",
                Service::Ecs,
                "CPUUtilization",
                "Average",
                336,
                |_| 25.0,
            ),
            hourly(
                "svc-1",
                Service::Ecs,
                "MemoryUtilization",
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
            "memory_utilization",
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
            "CPUUtilization",
            "Maximum",
            336,
            |_| 20.0,
        )];
        let rising = vec![hourly(
            "i-6",
            Service::Ec2,
            "CPUUtilization",
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

    #[test]
    fn dependencies_both_ways_and_dependents_first() {
        let mut app = res(Service::Ec2, "i-app", Some("m5.large"));
        app.relations.push(Relation {
            kind: "uses".into(),
            target_id: "db-main".into(),
        });
        let db = res(Service::Rds, "db-main", Some("db.m5.large"));
        let mut fnx = res(Service::Lambda, "fn-x", None);
        fnx.relations.push(Relation {
            kind: "uses".into(),
            target_id: "i-app".into(),
        });
        let lone = res(Service::S3, "b-lone", None);
        let inventory = vec![db.clone(), app.clone(), fnx.clone(), lone.clone()];
        assert_eq!(dependencies_for(&app, &inventory), vec!["db-main", "fn-x"]);
        assert_eq!(dependencies_for(&db, &inventory), vec!["i-app"]);
        let index = DependencyIndex::new(&inventory);
        assert_eq!(index.dependencies_for(&app), vec!["db-main", "fn-x"]);
        assert_eq!(index.dependencies_for(&db), vec!["i-app"]);
        assert!(index.dependencies_for(&lone).is_empty());
        let rec = |id: &str, svc: Service, s: f64| Recommendation {
            id: Recommendation::stable_id(id, Action::Stop),
            resource_id: id.into(),
            service: svc,
            region: "us-east-1".into(),
            finding: FindingKind::Idle,
            action: Action::Stop,
            target_type: None,
            monthly_savings_usd: Some(s),
            savings_percent: None,
            confidence: 1.0,
            risk: 0,
            reason: "x".into(),
            alternatives: vec![],
            dependencies: vec![],
            utilization_score: None,
            threshold_version: 0,
            created_at: now(),
        };
        let batches = order_actions(
            vec![
                rec("db-main", Service::Rds, 50.0),
                rec("b-lone", Service::S3, 10.0),
                rec("fn-x", Service::Lambda, 1.0),
            ],
            &index,
        );
        assert_eq!(batches.len(), 2);
        let first: Vec<&str> = batches[0].iter().map(|r| r.resource_id.as_str()).collect();
        // fn-x depends (through i-app) on db-main: it goes first, in the same batch.
        assert_eq!(first, vec!["fn-x", "db-main"]);
        assert_eq!(batches[0][1].dependencies, vec!["i-app"]);
        assert_eq!(batches[1][0].resource_id, "b-lone");
    }

    // ----- properties ------------------------------------------------------

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
                metric: "CPUUtilization".into(),
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
        let n = values.len() as i64;
        let v = values.to_vec();
        let mut s = hourly(
            "i-p",
            Service::Ec2,
            "CPUUtilization",
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
        #[test]
        fn same_input_same_verdict((v, gap) in any_series(), t in 0.0f64..100.0, st in stat_strategy()) {
            let r = res(Service::Ec2, "i-p", None);
            let s = series_of(&v, gap);
            let rule = window_rule(Operator::LessThan, t, st);
            prop_assert_eq!(evaluate_rule(&rule, &r, &s, now()), evaluate_rule(&rule, &r, &s, now()));
            let set = default_thresholds().unwrap();
            prop_assert_eq!(analyze(&r, &s, &set, now()), analyze(&r, &s, &set, now()));
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
            let s = vec![hourly("i-p", Service::Ec2, "CPUUtilization", "Average", 336, |h| days[(h / 24) as usize])];
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
                        "NetworkIn" | "NetworkOut" => 2e4,
                        "BucketSizeBytes" => 1e9,
                        "ProvisionedReadCapacityUnits" | "ProvisionedWriteCapacityUnits" => 10.0,
                        "ConsumedReadCapacityUnits" | "ConsumedWriteCapacityUnits" => 36.0,
                        "Errors" => 0.2,
                        _ => 1.0,
                    };
                    let mut s = hourly(id, svc, &q.metric, &q.statistic, hours, move |h| l * scale * (1.0 + 0.2 * ((h % 7) as f64 / 7.0)));
                    s.period_seconds = 3600;
                    s
                })
                .collect();
            let a = analyze(&r, &series, &set, now());
            let actionable = a.verdicts.iter().any(|v| v.is_flagged() && v.finding.is_actionable());
            prop_assert_eq!(actionable, a.recommendation.is_some());
            if a.verdicts.iter().all(|v| v.outcome == Outcome::InsufficientData) {
                prop_assert!(a.recommendation.is_none());
                prop_assert_eq!(a.finding, FindingKind::InsufficientData);
            }
            if let Some(s) = a.utilization_score { prop_assert!(s <= 100); }
            if let Some(rec) = a.recommendation {
                prop_assert!(!rec.reason.trim().is_empty());
                prop_assert!((0.0..=1.0).contains(&rec.confidence));
                prop_assert!(rec.risk <= 4);
                prop_assert!(rec.monthly_savings_usd.is_none_or(|s| s.is_finite() && s >= 0.0));
                if rec.monthly_savings_usd.is_none() {
                    prop_assert!(rec.reason.contains("no price known"), "{}", rec.reason);
                }
                prop_assert!(rec.savings_percent.is_none_or(|p| (0.0..=100.0).contains(&p)));
                prop_assert_eq!(&rec.id, &Recommendation::stable_id(id, rec.action));
                for alt in &rec.alternatives {
                    prop_assert!(alt.risk <= 4);
                    prop_assert!(alt.monthly_savings_usd.is_none_or(|s| s.is_finite() && s >= 0.0));
                    prop_assert!(!alt.description.is_empty());
                }
            }
        }
    }

    // ----- the dependency index against the scan it replaced --------------

    /// Few ids, so that inventories have duplicates, self-relations,
    /// dangling targets and cycles.
    fn any_inventory() -> impl Strategy<Value = Vec<Resource>> {
        let resource = (0u8..8, prop::collection::vec(0u8..10, 0..4)).prop_map(|(id, targets)| {
            let mut r = res(Service::Ec2, &format!("r{id}"), None);
            r.relations = targets
                .into_iter()
                .map(|t| Relation {
                    kind: "uses".into(),
                    target_id: format!("r{t}"),
                })
                .collect();
            r
        });
        prop::collection::vec(resource, 0..24)
    }

    fn rec_for(id: &str, deps: Vec<String>, savings: f64) -> Recommendation {
        Recommendation {
            id: Recommendation::stable_id(id, Action::Stop),
            resource_id: id.into(),
            service: Service::Ec2,
            region: "us-east-1".into(),
            finding: FindingKind::Idle,
            action: Action::Stop,
            target_type: None,
            monthly_savings_usd: Some(savings),
            savings_percent: None,
            confidence: 1.0,
            risk: 0,
            reason: String::new(),
            alternatives: vec![],
            dependencies: deps,
            utilization_score: None,
            threshold_version: 0,
            created_at: now(),
        }
    }

    /// Recommendations on ids in and out of the inventory, some carrying
    /// dependencies already.
    fn any_recs() -> impl Strategy<Value = Vec<Recommendation>> {
        let rec = (0u8..10, prop::collection::vec(0u8..10, 0..3), 0.0f64..100.0).prop_map(
            |(id, deps, savings)| {
                let deps = deps.into_iter().map(|d| format!("r{d}")).collect();
                rec_for(&format!("r{id}"), deps, savings)
            },
        );
        prop::collection::vec(rec, 0..10)
    }

    /// What finalize did before the index: a linear search and a scan per
    /// recommendation, then ordering with the same scan.
    fn reference_stage(
        mut recs: Vec<Recommendation>,
        inventory: &[Resource],
    ) -> Vec<Vec<Recommendation>> {
        for rec in &mut recs {
            if let Some(resource) = inventory.iter().find(|r| r.id == rec.resource_id) {
                let mut deps = dependencies_for(resource, inventory);
                deps.retain(|d| d != &rec.resource_id);
                for d in deps {
                    if !rec.dependencies.contains(&d) {
                        rec.dependencies.push(d);
                    }
                }
            }
        }
        order_actions_with(recs, inventory, |r| dependencies_for(r, inventory))
    }

    proptest! {
        #[test]
        fn index_matches_the_scan(inventory in any_inventory(), probe in 0u8..10) {
            let index = DependencyIndex::new(&inventory);
            for r in &inventory {
                prop_assert_eq!(index.dependencies_for(r), dependencies_for(r, &inventory));
            }
            // A resource the inventory does not hold (or holds under another entry).
            let outside = res(Service::Rds, &format!("r{probe}"), None);
            prop_assert_eq!(index.dependencies_for(&outside), dependencies_for(&outside, &inventory));
        }

        #[test]
        fn indexed_stage_matches_the_scan(inventory in any_inventory(), recs in any_recs()) {
            let expected = reference_stage(recs.clone(), &inventory);
            let index = DependencyIndex::new(&inventory);
            let mut recs = recs;
            index.link(&mut recs);
            prop_assert_eq!(order_actions(recs, &index), expected);
        }
    }
}
