//! Rule semantics: what `holds` and the margin mean for each operator, and a
//! rule compiled once and evaluated over a window or day by day (see the
//! module doc of [`evaluate`](super)).

use super::series::{Ctx, Resolved, Span};
use super::{
    ConditionResult, DailyCount, Outcome, Verdict, EQUALS_EPSILON, MAX_CONDITIONS, MAX_DAYS,
};
use crate::analysis::metrics::{metric_def, Derived, MetricKind};
use crate::analysis::stats::{Statistic, DAY_SECONDS};
use crate::domain::{Aggregation, Condition, Operator, ThresholdRule};

/// Whether `v` satisfies the condition's operator.
pub fn holds(op: Operator, v: f64, t: f64, upper: Option<f64>) -> bool {
    match op {
        Operator::LessThan => v < t,
        Operator::GreaterThan => v > t,
        Operator::Equals => (v - t).abs() <= EQUALS_EPSILON * t.abs().max(1.0),
        Operator::Between => match upper {
            Some(u) => v >= t.min(u) && v <= t.max(u),
            None => false,
        },
    }
}

fn rel(d: f64, bound: f64) -> Option<f64> {
    (bound.abs() > 1e-12).then(|| d / bound.abs())
}

/// Signed relative margin of `v` to the condition, clamped to `-1..=1`.
pub fn margin(op: Operator, v: f64, t: f64, upper: Option<f64>) -> f64 {
    let sign = if holds(op, v, t, upper) { 1.0 } else { -1.0 };
    let m = match op {
        Operator::LessThan => rel(t - v, t).unwrap_or(sign),
        Operator::GreaterThan => rel(v - t, t).unwrap_or(sign),
        Operator::Equals => {
            if sign > 0.0 {
                1.0
            } else {
                -rel((v - t).abs(), t).unwrap_or(1.0)
            }
        }
        Operator::Between => {
            let (lo, hi) = match upper {
                Some(u) => (t.min(u), t.max(u)),
                None => return -1.0,
            };
            if sign > 0.0 {
                let a = rel(v - lo, lo).unwrap_or(1.0);
                let b = rel(hi - v, hi).unwrap_or(1.0);
                a.min(b)
            } else if v < lo {
                -rel(lo - v, lo).unwrap_or(1.0)
            } else {
                -rel(v - hi, hi).unwrap_or(1.0)
            }
        }
    };
    if m.is_nan() {
        sign
    } else {
        m.clamp(-1.0, 1.0)
    }
}

/// What a condition reads.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Source<'r> {
    Plain(&'r str, MetricKind),
    Aggregate(Derived),
}

#[derive(Debug, Clone)]
pub(crate) struct CompiledCondition<'r> {
    pub cond: &'r Condition,
    pub source: Source<'r>,
    pub stat: Statistic,
}

/// A rule with its statistics parsed once, so that evaluating it for ten
/// thousand resources parses nothing.
#[derive(Debug, Clone)]
pub(crate) struct CompiledRule<'r> {
    pub rule: &'r ThresholdRule,
    pub conds: Vec<CompiledCondition<'r>>,
    pub problem: Option<String>,
}

impl<'r> CompiledRule<'r> {
    pub fn compile(rule: &'r ThresholdRule) -> Self {
        let mut conds = Vec::with_capacity(rule.conditions.len());
        let mut problem = None;
        if rule.conditions.is_empty() {
            problem = Some("rule has no conditions".to_string());
        }
        if rule.conditions.len() > MAX_CONDITIONS {
            problem = Some(format!("rule has more than {MAX_CONDITIONS} conditions"));
        }
        for c in &rule.conditions {
            let stat = match c.statistic.parse::<Statistic>() {
                Ok(s) => s,
                Err(e) => {
                    problem.get_or_insert(e.to_string());
                    continue;
                }
            };
            if c.operator == Operator::Between && c.upper.is_none() {
                problem.get_or_insert(format!(
                    "condition on {} uses between without upper",
                    c.metric
                ));
            }
            let source = match Derived::parse(rule.service, &c.metric) {
                Some(d) if d.is_pointwise() => Source::Plain(d.name(), MetricKind::Gauge),
                Some(d) => {
                    if d.only_statistic() != Some(stat) {
                        problem.get_or_insert(format!(
                            "{} supports only the {} statistic",
                            d.name(),
                            d.only_statistic()
                                .map(|s| s.to_string())
                                .unwrap_or_default()
                        ));
                    }
                    Source::Aggregate(d)
                }
                None => Source::Plain(
                    c.metric.as_str(),
                    metric_def(rule.service, &c.metric).map_or(MetricKind::Gauge, |d| d.kind),
                ),
            };
            conds.push(CompiledCondition {
                cond: c,
                source,
                stat,
            });
        }
        CompiledRule {
            rule,
            conds,
            problem,
        }
    }

    fn verdict(&self, outcome: Outcome, coverage: f64) -> Verdict {
        Verdict {
            rule_id: self.rule.id.clone(),
            service: self.rule.service,
            finding: self.rule.finding,
            action: self.rule.action,
            outcome,
            coverage,
            min_coverage: self.rule.min_coverage,
            conditions: Vec::new(),
            daily: None,
            margin: -1.0,
            problem: self.problem.clone(),
        }
    }

    pub fn evaluate(&self, ctx: &mut Ctx<'_>) -> Verdict {
        if self.problem.is_some() {
            return self.verdict(Outcome::InsufficientData, 0.0);
        }
        match self.rule.aggregation {
            Aggregation::Window => self.evaluate_window(ctx),
            Aggregation::Daily => self.evaluate_daily(ctx),
        }
    }

    fn result(&self, c: &CompiledCondition<'_>, measured: Option<f64>) -> ConditionResult {
        let (holds, m) = match measured {
            Some(v) => (
                holds(c.cond.operator, v, c.cond.value, c.cond.upper),
                Some(margin(c.cond.operator, v, c.cond.value, c.cond.upper)),
            ),
            None => (false, None),
        };
        ConditionResult {
            metric: c.cond.metric.clone(),
            statistic: c.cond.statistic.clone(),
            operator: c.cond.operator,
            threshold: c.cond.value,
            upper: c.cond.upper,
            measured,
            holds,
            margin: m,
        }
    }

    /// The series of each condition; a fixed array, as rules have at most
    /// [`MAX_CONDITIONS`] conditions.
    fn resolve(&self, ctx: &mut Ctx<'_>) -> [Resolved; MAX_CONDITIONS] {
        let mut out = [Resolved::Missing; MAX_CONDITIONS];
        for (o, c) in out.iter_mut().zip(&self.conds) {
            *o = ctx.resolve(c.source, c.stat);
        }
        out
    }

    /// The conditions' series and the verdict so far, or the final
    /// insufficient-data verdict when their coverage over `span` falls short.
    fn covered(
        &self,
        ctx: &mut Ctx<'_>,
        span: Span,
    ) -> Result<([Resolved; MAX_CONDITIONS], Verdict), Verdict> {
        let resolved = self.resolve(ctx);
        let coverage = resolved[..self.conds.len()]
            .iter()
            .map(|r| ctx.coverage_of(*r, span))
            .fold(1.0, f64::min);
        let v = self.verdict(Outcome::InsufficientData, coverage);
        if coverage + 1e-12 < self.rule.min_coverage || coverage <= 0.0 {
            return Err(v);
        }
        Ok((resolved, v))
    }

    fn evaluate_window(&self, ctx: &mut Ctx<'_>) -> Verdict {
        let span = ctx.whole_days(self.rule.lookback_days);
        let (resolved, mut v) = match self.covered(ctx, span) {
            Ok(x) => x,
            Err(v) => return v,
        };
        let resolved = &resolved[..self.conds.len()];
        v.conditions = self
            .conds
            .iter()
            .zip(resolved)
            .map(|(c, r)| {
                let x = ctx.value_of(*r, c.stat, span, true);
                self.result(c, x)
            })
            .collect();
        let all = v.conditions.iter().all(|c| c.holds);
        v.margin = v
            .conditions
            .iter()
            .map(|c| c.margin.unwrap_or(-1.0))
            .fold(1.0, f64::min);
        v.outcome = if all {
            Outcome::Flagged
        } else {
            Outcome::Clear
        };
        v
    }

    fn evaluate_daily(&self, ctx: &mut Ctx<'_>) -> Verdict {
        let m = self
            .rule
            .of_last_days
            .unwrap_or(self.rule.lookback_days)
            .clamp(1, MAX_DAYS);
        let n = self.rule.min_days.unwrap_or(m).clamp(1, m);
        let today = ctx.today();
        let whole = Span::new(today - i64::from(m) * DAY_SECONDS, today);
        let (resolved, mut v) = match self.covered(ctx, whole) {
            Ok(x) => x,
            Err(v) => return v,
        };
        let resolved = &resolved[..self.conds.len()];
        let k = self.conds.len();
        // Per condition: (least favourable qualifying, most favourable any).
        let mut worst_q: [Option<(f64, f64)>; MAX_CONDITIONS] = [None; MAX_CONDITIONS];
        let mut best_any: [Option<(f64, f64)>; MAX_CONDITIONS] = [None; MAX_CONDITIONS];
        let mut values: [Option<f64>; MAX_CONDITIONS] = [None; MAX_CONDITIONS];
        let values_k = k;
        let (mut qualifying, mut with_data) = (0u32, 0u32);
        for d in 0..i64::from(m) {
            let span = ctx.day_span(whole.from + d * DAY_SECONDS);
            for (i, c) in self.conds.iter().enumerate() {
                values[i] = ctx.value_of(resolved[i], c.stat, span, false);
            }
            if values[..values_k].iter().any(Option::is_none) {
                continue;
            }
            with_data += 1;
            let mut all = true;
            for (i, c) in self.conds.iter().enumerate() {
                let x = values[i].unwrap_or(f64::NAN);
                let mg = margin(c.cond.operator, x, c.cond.value, c.cond.upper);
                all &= holds(c.cond.operator, x, c.cond.value, c.cond.upper);
                if best_any[i].is_none_or(|(_, b)| mg > b) {
                    best_any[i] = Some((x, mg));
                }
            }
            if all {
                qualifying += 1;
                for (i, c) in self.conds.iter().enumerate() {
                    let x = values[i].unwrap_or(f64::NAN);
                    let mg = margin(c.cond.operator, x, c.cond.value, c.cond.upper);
                    if worst_q[i].is_none_or(|(_, w)| mg < w) {
                        worst_q[i] = Some((x, mg));
                    }
                }
            }
        }
        let flagged = qualifying >= n;
        v.conditions = self
            .conds
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let pick = if qualifying > 0 {
                    worst_q[i]
                } else {
                    best_any[i]
                };
                let mut r = self.result(c, pick.map(|p| p.0));
                // On a daily rule a condition "holds" when it held on the
                // qualifying days.
                r.holds = qualifying > 0;
                r
            })
            .collect();
        v.daily = Some(DailyCount {
            qualifying_days: qualifying,
            days_with_data: with_data,
            min_days: n,
            of_last_days: m,
        });
        if flagged {
            let value_margin = v
                .conditions
                .iter()
                .map(|c| c.margin.unwrap_or(0.0))
                .fold(1.0, f64::min)
                .max(0.0);
            let day_margin = f64::from(qualifying - n + 1) / f64::from(m - n + 1);
            v.margin = (value_margin + day_margin.min(1.0)) / 2.0;
            v.outcome = Outcome::Flagged;
        } else {
            v.margin = -(f64::from(n - qualifying) / f64::from(n));
            v.outcome = Outcome::Clear;
        }
        v
    }
}
