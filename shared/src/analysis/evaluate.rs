//! Threshold evaluation: one rule against one resource's series gives a
//! [`Verdict`] that carries the measured numbers and the margin to the
//! threshold.
//!
//! Semantics, fixed here once:
//! - **Windows** are half-open, `[now - lookback_days, now)`: a CloudWatch
//!   point is stamped with the start of its period, so a point stamped `now`
//!   describes the future.
//! - **Days** are complete UTC days: the last `M` days are the `M` midnights
//!   before today's, today (incomplete) excluded.
//! - **Operators**: `less_than` and `greater_than` are strict; `equals` holds
//!   within `|v - t| <= 1e-9 * max(1, |t|)`; `between` is inclusive on both
//!   bounds (so "<= 10" is written `between 0 and 10`).
//! - **Coverage** of a metric is `present points / expected points`, with
//!   `expected = window seconds / period seconds` (period from the series,
//!   capped at 1). For sparse metrics (CloudWatch omits zero datapoints, e.g.
//!   Lambda Invocations) a fetched series covers the window whatever its
//!   length, shortened to the resource's age when its `createdAt` attribute
//!   says it is younger; a series never fetched covers nothing. A rule's
//!   coverage is the minimum over the metrics its conditions read. Below
//!   `min_coverage` the verdict is `InsufficientData`, whatever the values.
//! - **Daily rules** (`Aggregation::Daily`): a day qualifies when every
//!   condition holds on that day's statistic; the rule fires when at least
//!   `min_days` (default: all) of the last `of_last_days` (default:
//!   `lookback_days`) days qualify. A day without data never qualifies.
//! - **Margin** of a condition is signed and relative to the threshold:
//!   `(t - v) / |t|` for less_than, `(v - t) / |t|` for greater_than; for
//!   between the smaller of the relative distances to each bound (a bound at
//!   0, the floor of the non-negative metrics, puts no limit on it); 1 for an
//!   exact equals. A zero threshold gives +1/-1. Margins are clamped to
//!   `-1..=1`. A window verdict's margin is the smallest over its conditions;
//!   a daily verdict's is the mean of that and the day margin
//!   `(qualifying - min_days + 1) / (of_last_days - min_days + 1)`.

use super::metrics::{metric_def, Derived, MetricKind};
use super::stats::{
    percentile_counting, percentile_with, summarize_finite, summarize_points, Statistic, Summary,
    DAY_SECONDS,
};
use crate::domain::{
    Action, Aggregation, Condition, FindingKind, MetricPoint, MetricSeries, Operator, Resource,
    Service, ThresholdRule,
};
use chrono::{DateTime, Utc};
use std::borrow::Cow;

/// Most days any window may span: CloudWatch's hourly retention (455 days)
/// plus one. Bounds the work an unvalidated rule can ask for.
const MAX_DAYS: u32 = 456;

/// Most conditions one rule may have.
pub const MAX_CONDITIONS: usize = 8;

/// Relative tolerance of `equals`.
pub const EQUALS_EPSILON: f64 = 1e-9;

/// What a rule concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Every condition held (on enough days, for a daily rule).
    Flagged,
    /// Enough data, and the rule did not fire.
    Clear,
    /// Not enough data to say anything; never turned into a recommendation.
    InsufficientData,
}

/// One condition's measurement.
#[derive(Debug, Clone, PartialEq)]
pub struct ConditionResult {
    pub metric: String,
    pub statistic: String,
    pub operator: Operator,
    pub threshold: f64,
    pub upper: Option<f64>,
    /// The statistic over the window. For a daily rule: the least favourable
    /// value among the qualifying days (the highest for less_than), or, when
    /// no day qualified, the most favourable among the days with data.
    pub measured: Option<f64>,
    pub holds: bool,
    /// Signed relative margin to the threshold, in `-1..=1`.
    pub margin: Option<f64>,
}

/// The day count of a daily rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DailyCount {
    pub qualifying_days: u32,
    pub days_with_data: u32,
    pub min_days: u32,
    pub of_last_days: u32,
}

/// The outcome of one rule for one resource, with the numbers behind it.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub rule_id: String,
    pub service: Service,
    pub finding: FindingKind,
    pub action: Action,
    pub outcome: Outcome,
    /// Share of expected data points present, `0..=1` (minimum over metrics).
    pub coverage: f64,
    pub min_coverage: f64,
    pub conditions: Vec<ConditionResult>,
    pub daily: Option<DailyCount>,
    /// Margin to the threshold (see the module doc), `-1..=1`.
    pub margin: f64,
    /// Why the rule could not be evaluated, when it was malformed.
    pub problem: Option<String>,
}

impl Verdict {
    pub fn is_flagged(&self) -> bool {
        self.outcome == Outcome::Flagged
    }
}

/// Evaluates one rule against a resource's series (any order; series of other
/// resources are ignored).
pub fn evaluate_rule(
    rule: &ThresholdRule,
    resource: &Resource,
    series: &[MetricSeries],
    now: DateTime<Utc>,
) -> Verdict {
    let derived: Vec<Derived> = rule
        .conditions
        .iter()
        .filter_map(|c| Derived::parse(rule.service, &c.metric))
        .filter(|d| d.is_pointwise())
        .collect();
    let mut ctx = Ctx::new(
        resource,
        series,
        now,
        &derived,
        rule.lookback_days.max(rule.of_last_days.unwrap_or(0)),
    );
    let compiled = CompiledRule::compile(rule);
    compiled.evaluate(&mut ctx)
}

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

// ---------------------------------------------------------------------------
// Compiled rules

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

    fn coverage(&self, ctx: &Ctx<'_>, resolved: &[Resolved], span: Span) -> f64 {
        resolved
            .iter()
            .map(|r| ctx.coverage_of(*r, span))
            .fold(1.0, f64::min)
    }

    fn evaluate_window(&self, ctx: &mut Ctx<'_>) -> Verdict {
        let span = Span::back_from(ctx.now_s, i64::from(self.rule.lookback_days) * DAY_SECONDS);
        let resolved = self.resolve(ctx);
        let resolved = &resolved[..self.conds.len()];
        let coverage = self.coverage(ctx, resolved, span);
        let mut v = self.verdict(Outcome::InsufficientData, coverage);
        if coverage + 1e-12 < self.rule.min_coverage || coverage <= 0.0 {
            return v;
        }
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
        let today = ctx.now_s.div_euclid(DAY_SECONDS) * DAY_SECONDS;
        let whole = Span::new(today - i64::from(m) * DAY_SECONDS, today);
        let resolved = self.resolve(ctx);
        let resolved = &resolved[..self.conds.len()];
        let coverage = self.coverage(ctx, resolved, whole);
        let mut v = self.verdict(Outcome::InsufficientData, coverage);
        if coverage + 1e-12 < self.rule.min_coverage || coverage <= 0.0 {
            return v;
        }
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

// ---------------------------------------------------------------------------
// The per-resource evaluation context

/// A half-open interval of epoch seconds, with its bounds also as
/// timestamps so that locating them in a series converts nothing per point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub from: i64,
    pub to: i64,
    from_t: DateTime<Utc>,
    to_t: DateTime<Utc>,
}

fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).unwrap_or(if secs < 0 {
        DateTime::<Utc>::MIN_UTC
    } else {
        DateTime::<Utc>::MAX_UTC
    })
}

impl Span {
    pub fn new(from: i64, to: i64) -> Span {
        Span {
            from,
            to,
            from_t: at(from),
            to_t: at(to),
        }
    }

    pub fn back_from(now: i64, secs: i64) -> Span {
        Span::new(now - secs, now)
    }

    fn seconds(self) -> i64 {
        (self.to - self.from).max(0)
    }
}

struct View<'a> {
    metric: &'a str,
    metric_hash: u64,
    kind: MetricKind,
    stat_code: u8,
    period: i64,
    sparse: bool,
    points: Cow<'a, [MetricPoint]>,
    first_s: i64,
    /// Whether the order of the points was verified. Done on first use, so
    /// series no rule reads cost nothing.
    checked: bool,
    /// Every value is finite (found in the same pass): summaries can skip
    /// the per-value check.
    all_finite: bool,
}

impl View<'_> {
    /// Index of the first point with `timestamp >= t`. Regular series hit the
    /// guess `(t - first) / period` and pay two comparisons; others fall back
    /// to a binary search.
    fn index_of(&self, t: i64, tt: DateTime<Utc>) -> usize {
        let pts = &self.points[..];
        let n = pts.len();
        if n == 0 || t <= self.first_s {
            return 0;
        }
        let guess = ((t - self.first_s + self.period - 1) / self.period) as usize;
        if guess <= n && (guess == n || pts[guess].timestamp >= tt) && pts[guess - 1].timestamp < tt
        {
            return guess;
        }
        pts.partition_point(|p| p.timestamp < tt)
    }

    fn bounds(&self, span: Span) -> (usize, usize) {
        let a = self.index_of(span.from, span.from_t);
        let b = self.index_of(span.to, span.to_t).max(a);
        (a, b)
    }

    fn slice(&self, span: Span) -> &[MetricPoint] {
        let (a, b) = self.bounds(span);
        &self.points[a..b]
    }
}

#[derive(Clone, Copy)]
pub(crate) struct MemoKey {
    view: usize,
    span: Span,
    pct: u32, // 0 for the summary
}

/// Everything about one resource that rules share: its series (sorted once),
/// derived series, memoised window statistics and a reusable buffer.
pub(crate) struct Ctx<'a> {
    pub resource: &'a Resource,
    pub now: DateTime<Utc>,
    pub now_s: i64,
    views: Vec<View<'a>>,
    created_s: Option<i64>,
    horizon_days: u32,
    memo: Memo,
    scratch: Vec<f64>,
    /// Per-UTC-day summaries of the last `horizon_days` days, per series,
    /// computed in one pass on first use: daily rules, trends and the score
    /// share them.
    days: Vec<Summary>,
    day_slots: Vec<(usize, usize)>,
    /// Midnights of the horizon, oldest first, converted once.
    day_bounds: Vec<DateTime<Utc>>,
}

/// Buffers a [`Ctx`] reuses from one resource to the next.
#[derive(Default)]
pub(crate) struct Buffers {
    memo: Memo,
    scratch: Vec<f64>,
    days: Vec<Summary>,
    day_slots: Vec<(usize, usize)>,
    day_bounds: Vec<DateTime<Utc>>,
}

/// The series a condition reads, resolved once per rule evaluation.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Resolved {
    Missing,
    Plain(usize),
    Aggregate(Derived, [Option<usize>; 2]),
}

/// Memoised window statistics: summaries (`pct == 0`) and percentiles.
pub(crate) type Memo = Vec<(MemoKey, Summary, Option<f64>)>;

impl<'a> Ctx<'a> {
    /// `derived` lists the pointwise derived metrics to materialise;
    /// `horizon_days` bounds the grid used when they are built from an
    /// attribute rather than a series.
    pub fn new(
        resource: &'a Resource,
        series: &'a [MetricSeries],
        now: DateTime<Utc>,
        derived: &[Derived],
        horizon_days: u32,
    ) -> Ctx<'a> {
        Self::with_buffers(
            resource,
            series,
            now,
            derived,
            horizon_days,
            Buffers::default(),
        )
    }

    pub fn with_buffers(
        resource: &'a Resource,
        series: &'a [MetricSeries],
        now: DateTime<Utc>,
        derived: &[Derived],
        horizon_days: u32,
        buffers: Buffers,
    ) -> Ctx<'a> {
        let Buffers {
            mut memo,
            scratch,
            mut days,
            mut day_slots,
            mut day_bounds,
        } = buffers;
        memo.clear();
        days.clear();
        day_slots.clear();
        day_bounds.clear();
        let mut views = Vec::with_capacity(series.len() + derived.len());
        for s in series {
            if !s.resource_id.is_empty() && s.resource_id != resource.id {
                continue;
            }
            // Order is checked on first use (`ensure_sorted`): series no rule
            // reads are never scanned.
            let points: Cow<'a, [MetricPoint]> = Cow::Borrowed(&s.points);
            let def = metric_def(resource.service, &s.metric);
            let period = if s.period_seconds > 0 {
                s.period_seconds
            } else {
                def.map_or(3600, |d| d.period_seconds)
            };
            views.push(View {
                metric: &s.metric,
                metric_hash: fnv(&s.metric),
                kind: def.map_or(MetricKind::Gauge, |d| d.kind),
                stat_code: stat_code(&s.statistic),
                period: i64::from(period),
                sparse: def.is_some_and(|d| d.sparse),
                first_s: points.first().map_or(0, |p| p.timestamp.timestamp()),
                points,
                checked: false,
                all_finite: false,
            });
        }
        let created_s = resource
            .attributes
            .get("createdAt")
            .and_then(|v| v.as_str())
            .and_then(|s| s.parse::<DateTime<Utc>>().ok())
            .map(|t| t.timestamp());
        let mut ctx = Ctx {
            resource,
            now,
            now_s: now.timestamp(),
            views,
            created_s,
            horizon_days,
            memo,
            scratch,
            days,
            day_slots,
            day_bounds,
        };
        for d in derived {
            if let Some((points, period)) = ctx.materialise(*d, horizon_days) {
                ctx.views.push(View {
                    metric: d.name(),
                    metric_hash: fnv(d.name()),
                    kind: MetricKind::Gauge,
                    stat_code: stat_code("Average"),
                    period,
                    sparse: false,
                    first_s: points.first().map_or(0, |p| p.timestamp.timestamp()),
                    all_finite: points.iter().all(|p| p.value.is_finite()),
                    points: Cow::Owned(points),
                    checked: true,
                });
            }
        }
        ctx
    }

    /// Hands back the reusable buffers.
    pub fn into_buffers(self) -> Buffers {
        Buffers {
            memo: self.memo,
            scratch: self.scratch,
            days: self.days,
            day_slots: self.day_slots,
            day_bounds: self.day_bounds,
        }
    }

    /// The best series of `metric` for reading `stat`: the preferred
    /// per-period statistic, else any series of that metric.
    pub fn find(&mut self, metric: &str, kind: MetricKind, stat: Statistic) -> Option<usize> {
        self.find_inner(metric, Some(kind), stat)
    }

    /// One scan, hashes first: this runs a dozen times per resource.
    fn find_inner(
        &mut self,
        metric: &str,
        kind: Option<MetricKind>,
        stat: Statistic,
    ) -> Option<usize> {
        let h = fnv(metric);
        let mut kind = kind;
        let mut best: Option<(usize, usize)> = None;
        for (i, v) in self.views.iter().enumerate() {
            if v.metric_hash != h || v.metric != metric {
                continue;
            }
            let prefs = preferred_codes(*kind.get_or_insert(v.kind), stat);
            let rank = prefs
                .iter()
                .position(|c| *c == v.stat_code)
                .unwrap_or(prefs.len());
            if best.is_none_or(|(r, _)| rank < r) {
                best = Some((rank, i));
            }
        }
        let i = best?.1;
        self.ensure_sorted(i);
        Some(i)
    }

    /// Sorts a series the caller sent out of order (the contract says
    /// ascending; a copy is sorted rather than trusting it blindly).
    fn ensure_sorted(&mut self, i: usize) {
        let v = &mut self.views[i];
        if v.checked {
            return;
        }
        v.checked = true;
        let (sorted, finite) = check_order(&v.points);
        v.all_finite = finite;
        if !sorted {
            let mut p = v.points.to_vec();
            p.sort_by_key(|p| p.timestamp);
            v.first_s = p.first().map_or(0, |p| p.timestamp.timestamp());
            v.points = Cow::Owned(p);
        }
    }

    fn find_plain(&mut self, metric: &str, stat: Statistic) -> Option<usize> {
        self.find_inner(metric, None, stat)
    }

    /// The series a condition reads, looked up once per rule.
    pub fn resolve(&mut self, source: Source<'_>, stat: Statistic) -> Resolved {
        match source {
            Source::Plain(metric, kind) => self
                .find(metric, kind, stat)
                .map_or(Resolved::Missing, Resolved::Plain),
            Source::Aggregate(d) => {
                let mut idx = [None; 2];
                for (j, (m, s)) in d.components().iter().enumerate().take(2) {
                    let st = component_statistic(s);
                    idx[j] = self.find_plain(m, st);
                }
                Resolved::Aggregate(d, idx)
            }
        }
    }

    fn effective_from(&self, span: Span) -> i64 {
        match self.created_s {
            Some(c) if c > span.from => c.min(span.to),
            _ => span.from,
        }
    }

    /// Coverage of one series over a span, `0..=1`.
    fn view_coverage(&self, i: usize, span: Span) -> f64 {
        let v = &self.views[i];
        if span.seconds() == 0 {
            return 0.0;
        }
        if v.sparse {
            let from = self.effective_from(span);
            return (span.to - from) as f64 / span.seconds() as f64;
        }
        let expected = (span.seconds() / v.period).max(1);
        let present = v.slice(span).len() as i64;
        (present as f64 / expected as f64).min(1.0)
    }

    pub fn coverage_of(&self, r: Resolved, span: Span) -> f64 {
        match r {
            Resolved::Missing => 0.0,
            Resolved::Plain(i) => self.view_coverage(i, span),
            Resolved::Aggregate(_, idx) => idx
                .iter()
                .map(|i| i.map_or(0.0, |i| self.view_coverage(i, span)))
                .fold(1.0, f64::min),
        }
    }

    /// Summary of a series over a span, with the zeros a sparse series omits.
    /// The first midnight of the horizon and the number of days in it.
    fn horizon(&self) -> (i64, i64) {
        let today = self.now_s.div_euclid(DAY_SECONDS) * DAY_SECONDS;
        let h = i64::from(self.horizon_days.clamp(1, MAX_DAYS));
        (today - h * DAY_SECONDS, h)
    }

    /// The UTC day starting at `from` as a span, its bounds taken from the
    /// midnights converted once per resource.
    pub fn day_span(&mut self, from: i64) -> Span {
        let (first, h) = self.horizon();
        if self.day_bounds.is_empty() {
            self.day_bounds
                .extend((0..=h).map(|d| at(first + d * DAY_SECONDS)));
        }
        let d = (from - first).div_euclid(DAY_SECONDS);
        if from.rem_euclid(DAY_SECONDS) == 0 && (0..h).contains(&d) {
            let d = d as usize;
            return Span {
                from,
                to: from + DAY_SECONDS,
                from_t: self.day_bounds[d],
                to_t: self.day_bounds[d + 1],
            };
        }
        Span::new(from, from + DAY_SECONDS)
    }

    /// The raw summary of one whole UTC day of a series, from the day cache
    /// when the day is within the horizon.
    fn day_summary(&mut self, i: usize, span: Span) -> Option<Summary> {
        let (first, h) = self.horizon();
        let today = first + h * DAY_SECONDS;
        if span.to - span.from != DAY_SECONDS
            || span.from.rem_euclid(DAY_SECONDS) != 0
            || span.from < first
            || span.to > today
        {
            return None;
        }
        let offset = match self.day_slots.iter().find(|(v, _)| *v == i) {
            Some((_, o)) => *o,
            None => {
                let o = self.days.len();
                if self.day_bounds.is_empty() {
                    self.day_span(first);
                }
                let v = &self.views[i];
                let mut a = v.index_of(first, self.day_bounds[0]);
                for d in 0..h {
                    let to = first + (d + 1) * DAY_SECONDS;
                    let b = v.index_of(to, self.day_bounds[(d + 1) as usize]).max(a);
                    self.days.push(summarize_view(v, a, b));
                    a = b;
                }
                self.day_slots.push((i, o));
                o
            }
        };
        let d = ((span.from - first) / DAY_SECONDS) as usize;
        self.days.get(offset + d).copied()
    }

    fn summary(&mut self, i: usize, span: Span, memo: bool) -> Summary {
        if !memo {
            if let Some(s) = self.day_summary(i, span) {
                return self.with_implied_zeros(i, span, s);
            }
        }
        if memo {
            if let Some((_, s, _)) = self
                .memo
                .iter()
                .find(|(k, _, _)| k.view == i && k.span == span && k.pct == 0)
            {
                return *s;
            }
        }
        let v = &self.views[i];
        let (a, b) = v.bounds(span);
        let s = summarize_view(v, a, b);
        let s = self.with_implied_zeros(i, span, s);
        if memo {
            self.memo.push((
                MemoKey {
                    view: i,
                    span,
                    pct: 0,
                },
                s,
                None,
            ));
        }
        s
    }

    /// Adds the zeros a sparse series omits over a span.
    fn with_implied_zeros(&self, i: usize, span: Span, s: Summary) -> Summary {
        if !self.views[i].sparse {
            return s;
        }
        s.with_zeros(self.expected_points(i, span).saturating_sub(s.count))
    }

    /// A statistic of one series over a span.
    pub fn stat_of(&mut self, i: usize, stat: Statistic, span: Span, memo: bool) -> Option<f64> {
        let Statistic::Percentile(p) = stat else {
            let s = self.summary(i, span, memo);
            return s
                .get(stat)
                .filter(|_| s.count > 0 || stat == Statistic::SampleCount);
        };
        if memo {
            if let Some((_, _, r)) = self
                .memo
                .iter()
                .find(|(k, _, _)| k.view == i && k.span == span && k.pct == p.milli())
            {
                return *r;
            }
        }
        // One pass in the common case: assume every value is finite, and
        // count them while ranking; redo the rare series where that was wrong.
        let expected = self.expected_points(i, span);
        let v = &self.views[i];
        let slice = v.slice(span);
        let values = || slice.iter().map(|p| p.value);
        let assumed = slice.len() as u64;
        let zeros = |present: u64| {
            if v.sparse {
                expected.saturating_sub(present)
            } else {
                0
            }
        };
        let (mut r, seen) = percentile_counting(
            values(),
            assumed,
            zeros(assumed),
            p,
            v.all_finite,
            &mut self.scratch,
        );
        if seen != assumed {
            r = percentile_with(values(), seen, zeros(seen), p, &mut self.scratch);
        }
        if memo {
            self.memo.push((
                MemoKey {
                    view: i,
                    span,
                    pct: p.milli(),
                },
                Summary::EMPTY,
                r,
            ));
        }
        r
    }

    /// Points a sparse series stands for over a span (its age permitting).
    fn expected_points(&self, i: usize, span: Span) -> u64 {
        let from = self.effective_from(span);
        ((span.to - from) / self.views[i].period).max(0) as u64
    }

    /// A statistic of a plain metric name over the last `days` days.
    pub fn metric_stat(&mut self, metric: &str, stat: Statistic, days: u32) -> Option<f64> {
        let i = self.find_plain(metric, stat)?;
        let span = Span::back_from(self.now_s, i64::from(days) * DAY_SECONDS);
        self.stat_of(i, stat, span, true)
    }

    /// The latest finite value of a plain metric (the current provisioned
    /// level, for instance).
    pub fn last_value(&mut self, metric: &str) -> Option<f64> {
        let i = self.find_plain(metric, Statistic::Average)?;
        self.views[i]
            .points
            .iter()
            .rev()
            .find(|p| p.value.is_finite())
            .map(|p| p.value)
    }

    /// The period of a plain metric's series, in seconds.
    pub fn period_of(&mut self, metric: &str) -> Option<f64> {
        let i = self.find_plain(metric, Statistic::Sum)?;
        Some(self.views[i].period as f64)
    }

    /// Daily means of a plain metric over the last `days` complete days
    /// (days without data skipped), for trend detection.
    pub fn daily_means(&mut self, metric: &str, days: u32, out: &mut Vec<f64>) {
        out.clear();
        let Some(i) = self.find_plain(metric, Statistic::Average) else {
            return;
        };
        let today = self.now_s.div_euclid(DAY_SECONDS) * DAY_SECONDS;
        for d in (1..=i64::from(days)).rev() {
            let span = self.day_span(today - d * DAY_SECONDS);
            if let Some(x) = self.summary(i, span, false).average() {
                out.push(x);
            }
        }
    }

    /// The value a condition reads over a span.
    pub fn value_of(
        &mut self,
        r: Resolved,
        stat: Statistic,
        span: Span,
        memo: bool,
    ) -> Option<f64> {
        match r {
            Resolved::Missing => None,
            Resolved::Plain(i) => self.stat_of(i, stat, span, memo),
            Resolved::Aggregate(d, idx) => {
                let comps = d.components();
                let mut vals = [0.0f64; 2];
                for (j, (_, s)) in comps.iter().enumerate().take(2) {
                    let st = component_statistic(s);
                    let sum = self.summary(idx[j]?, span, memo);
                    if sum.count == 0 {
                        return None;
                    }
                    vals[j] = sum.get(st)?;
                }
                match d {
                    Derived::NetworkBytes => Some(vals[0] + vals[1]),
                    Derived::ErrorRate => (vals[1] > 0.0).then(|| 100.0 * vals[0] / vals[1]),
                    Derived::GetRequestsPerGb => (vals[1] > 0.0).then(|| vals[0] / (vals[1] / GIB)),
                    Derived::ReadCapacityUtilization | Derived::WriteCapacityUtilization => None,
                }
            }
        }
    }

    /// Builds a pointwise derived series (DynamoDB capacity utilisation).
    fn materialise(&mut self, d: Derived, horizon_days: u32) -> Option<(Vec<MetricPoint>, i64)> {
        let comps = d.components();
        let (consumed_name, provisioned_name) = (comps[0].0, comps[1].0);
        let consumed = self.find_plain(consumed_name, Statistic::Sum)?;
        let provisioned = self.find_plain(provisioned_name, Statistic::Average);
        let cview = &self.views[consumed];
        let cperiod = cview.period as f64;
        let attr = match d {
            Derived::ReadCapacityUtilization => "provisionedReadCapacityUnits",
            _ => "provisionedWriteCapacityUnits",
        };
        let mut out = Vec::new();
        let mut ci = 0usize;
        let cpts = &cview.points;
        let mut consumed_at = |t: DateTime<Utc>| -> f64 {
            while ci < cpts.len() && cpts[ci].timestamp < t {
                ci += 1;
            }
            match cpts.get(ci) {
                Some(p) if p.timestamp == t && p.value.is_finite() => p.value,
                _ => 0.0,
            }
        };
        if let Some(pi) = provisioned {
            let pview = &self.views[pi];
            for p in pview.points.iter() {
                if p.value.is_finite() && p.value > 0.0 {
                    let c = consumed_at(p.timestamp);
                    out.push(MetricPoint {
                        timestamp: p.timestamp,
                        value: 100.0 * (c / cperiod) / p.value,
                    });
                }
            }
            return Some((out, pview.period));
        }
        let prov = self
            .resource
            .attributes
            .get(attr)
            .and_then(|v| v.as_f64())?;
        if prov <= 0.0 || !prov.is_finite() {
            return None;
        }
        // A constant provisioned level: evaluate on the consumed series' grid.
        let step = cview.period.max(60);
        let end = self.now_s.div_euclid(step) * step;
        let start =
            self.effective_from(Span::back_from(end, i64::from(horizon_days) * DAY_SECONDS));
        let start = start.div_euclid(step) * step;
        let mut t = start;
        while t < end {
            let ts = DateTime::from_timestamp(t, 0)?;
            let c = consumed_at(ts);
            out.push(MetricPoint {
                timestamp: ts,
                value: 100.0 * (c / cperiod) / prov,
            });
            t += step;
        }
        Some((out, step))
    }
}

/// The statistic a derived metric's component is read with.
fn component_statistic(s: &str) -> Statistic {
    if s == "Sum" {
        Statistic::Sum
    } else {
        Statistic::Average
    }
}

/// [`preferred_period_statistics`](super::metrics::preferred_period_statistics)
/// as [`stat_code`]s (a test keeps the two in step).
fn preferred_codes(kind: MetricKind, stat: Statistic) -> &'static [u8] {
    const AVG: u8 = 1;
    const MAX: u8 = 2;
    const MIN: u8 = 3;
    const SUM: u8 = 4;
    match (kind, stat) {
        (MetricKind::Counter, _) => &[SUM],
        (MetricKind::Gauge, Statistic::Maximum | Statistic::Percentile(_)) => &[MAX, AVG],
        (MetricKind::Gauge, Statistic::Minimum) => &[MIN, AVG],
        (MetricKind::Gauge, _) => &[AVG],
    }
}

/// Whether the points are in ascending order and all finite. No early exit:
/// a branch-free pass over data that is almost always in order, and the
/// first touch of it anyway. Kept out of line so it compiles to a tight loop.
#[inline(never)]
fn check_order(pts: &[MetricPoint]) -> (bool, bool) {
    let Some(first) = pts.first() else {
        return (true, true);
    };
    let mut sorted = true;
    let mut finite = true;
    let mut prev = first.timestamp;
    for p in pts {
        sorted &= prev <= p.timestamp;
        prev = p.timestamp;
        finite &= p.value.is_finite();
    }
    (sorted, finite)
}

fn summarize_view(v: &View<'_>, a: usize, b: usize) -> Summary {
    let pts = &v.points[a..b];
    if v.all_finite {
        summarize_finite(pts)
    } else {
        summarize_points(pts)
    }
}

/// A per-period statistic name as a small code, compared without strings.
fn stat_code(s: &str) -> u8 {
    ["Average", "Maximum", "Minimum", "Sum", "SampleCount"]
        .iter()
        .position(|n| n.eq_ignore_ascii_case(s))
        .map_or(0, |i| i as u8 + 1)
}

/// FNV-1a, to compare metric names by hash before comparing bytes.
fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Bytes in the GB S3 bills by.
pub(crate) const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::metrics::preferred_period_statistics;

    #[test]
    fn preferred_codes_mirror_the_named_statistics() {
        for kind in [MetricKind::Gauge, MetricKind::Counter] {
            for stat in ["Average", "Maximum", "Minimum", "Sum", "SampleCount", "p99"] {
                let stat: Statistic = stat.parse().unwrap();
                let names: Vec<u8> = preferred_period_statistics(kind, stat)
                    .iter()
                    .map(|n| stat_code(n))
                    .collect();
                assert_eq!(names, preferred_codes(kind, stat));
            }
        }
    }

    #[test]
    fn margins_are_relative_and_signed() {
        assert_eq!(margin(Operator::LessThan, 5.0, 10.0, None), 0.5);
        assert_eq!(margin(Operator::LessThan, 15.0, 10.0, None), -0.5);
        assert_eq!(margin(Operator::GreaterThan, 11.0, 10.0, None), 0.1);
        assert_eq!(margin(Operator::GreaterThan, 3.0, 0.0, None), 1.0);
        // A bound at 0 puts no limit on the margin: only the distance to 10 counts.
        assert_eq!(margin(Operator::Between, 0.0, 0.0, Some(10.0)), 1.0);
        assert_eq!(margin(Operator::Between, 8.0, 0.0, Some(10.0)), 0.2);
        assert_eq!(margin(Operator::Equals, 0.0, 0.0, None), 1.0);
        assert!(holds(Operator::Equals, 1e-12, 0.0, None));
        assert!(!holds(Operator::Equals, 1e-6, 0.0, None));
        assert!(holds(Operator::Between, 10.0, 0.0, Some(10.0)));
        assert!(!holds(Operator::LessThan, 10.0, 10.0, None));
        assert!(!holds(Operator::Between, 1.0, 0.0, None));
    }

    #[test]
    fn unsorted_series_are_sorted_before_use() {
        let now: DateTime<Utc> = "2024-06-15T00:00:00Z".parse().unwrap();
        let r = Resource::new(Service::Ec2, "i-1", "us-east-1");
        let mut points: Vec<MetricPoint> = (0..48)
            .map(|h| MetricPoint {
                timestamp: now - chrono::Duration::hours(48 - h),
                value: if h < 24 { 1.0 } else { 3.0 },
            })
            .collect();
        points.reverse();
        let s = vec![MetricSeries {
            resource_id: "i-1".into(),
            service: Service::Ec2,
            metric: "CPUUtilization".into(),
            statistic: "Average".into(),
            period_seconds: 3600,
            points,
        }];
        let mut ctx = Ctx::new(&r, &s, now, &[], 14);
        assert_eq!(
            ctx.metric_stat("CPUUtilization", Statistic::Average, 1),
            Some(3.0)
        );
        assert_eq!(
            ctx.metric_stat("CPUUtilization", Statistic::Maximum, 2),
            Some(3.0)
        );
        assert_eq!(
            ctx.metric_stat("CPUUtilization", Statistic::Minimum, 2),
            Some(1.0)
        );
    }
}
