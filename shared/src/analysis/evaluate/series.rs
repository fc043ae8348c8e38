//! The per-resource evaluation context: a resource's series sorted once,
//! located by hash, summarised per UTC day and memoised per window, with the
//! buffers an [`Engine`](crate::analysis::Engine) carries from one resource
//! to the next.

use super::rules::Source;
use super::MAX_DAYS;
use crate::analysis::metrics::{metric_def, Derived, MetricKind};
use crate::analysis::stats::{
    day_start, percentile_counting, percentile_with, summarize_finite, summarize_points, Statistic,
    Summary, DAY_SECONDS,
};
use crate::domain::{MetricPoint, MetricSeries, Resource};
use chrono::{DateTime, Utc};
use std::borrow::Cow;

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

    fn seconds(self) -> i64 {
        (self.to - self.from).max(0)
    }
}

pub(super) struct View<'a> {
    metric: &'a str,
    metric_hash: u64,
    kind: MetricKind,
    stat_code: u8,
    pub(super) period: i64,
    sparse: bool,
    pub(super) points: Cow<'a, [MetricPoint]>,
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
    pub(super) views: Vec<View<'a>>,
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

    pub(super) fn find_plain(&mut self, metric: &str, stat: Statistic) -> Option<usize> {
        self.find_inner(metric, None, stat)
    }

    /// The series a condition reads, looked up once per rule.
    pub fn resolve(&mut self, source: Source<'_>, stat: Statistic) -> Resolved {
        match source {
            Source::Plain(metric, kind) => self
                .find(metric, kind, stat)
                .map_or(Resolved::Missing, Resolved::Plain),
            Source::Aggregate(d) => Resolved::Aggregate(d, self.components_of(d)),
        }
    }

    pub(super) fn effective_from(&self, span: Span) -> i64 {
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

    /// The midnight (UTC) that starts `now`'s day: days before it are complete.
    pub fn today(&self) -> i64 {
        day_start(self.now)
    }

    /// The first midnight of the horizon and the number of days in it.
    fn horizon(&self) -> (i64, i64) {
        let today = self.today();
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

    /// Summary of a series over a span, with the zeros a sparse series omits.
    pub(super) fn summary(&mut self, i: usize, span: Span, memo: bool) -> Summary {
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

    /// The last `days` complete UTC days, today excluded: the window every
    /// rule and every figure reads, so that a verdict depends on the date a
    /// cycle runs and never on its hour.
    pub fn whole_days(&self, days: u32) -> Span {
        let today = self.today();
        Span::new(today - i64::from(days) * DAY_SECONDS, today)
    }

    /// A statistic of a plain metric name over the last `days` complete days.
    pub fn metric_stat(&mut self, metric: &str, stat: Statistic, days: u32) -> Option<f64> {
        let i = self.find_plain(metric, stat)?;
        let span = self.whole_days(days);
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
        let today = self.today();
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
            Resolved::Aggregate(d, idx) => self.aggregate_value(d, idx, span, memo),
        }
    }
}

/// [`preferred_period_statistics`](super::metrics::preferred_period_statistics)
/// as [`stat_code`]s (a test keeps the two in step).
pub(super) fn preferred_codes(kind: MetricKind, stat: Statistic) -> &'static [u8] {
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
pub(super) fn stat_code(s: &str) -> u8 {
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
