//! Statistics over metric values: CloudWatch's Average, Maximum, Minimum, Sum,
//! SampleCount and percentiles, a mergeable summary, and UTC-day aggregation.
//!
//! Non-finite values (NaN, ±inf) are treated as missing data everywhere: they
//! count neither as samples nor towards coverage.
//!
//! Percentiles use the **nearest-rank** definition: for `n` values sorted
//! ascending, `pQ` is the value at 1-based rank `ceil(Q / 100 * n)` (clamped to
//! `1..=n`). It always returns an observed value, is monotone in `Q`, and merges
//! exactly from the union of batch values. The rank is computed in integer
//! arithmetic (`Q` is kept in thousandths of a percent), so `p95` of 20 values
//! is rank 19, not 20 through rounding error.

use crate::domain::MetricPoint;
use chrono::{DateTime, NaiveDate, Utc};
use std::fmt;
use std::str::FromStr;

/// Seconds in a UTC day.
pub const DAY_SECONDS: i64 = 86_400;

/// A percentile level in thousandths of a percent (`p99.5` is 99_500).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Percentile(u32);

impl Percentile {
    pub const P50: Percentile = Percentile(50_000);
    pub const P95: Percentile = Percentile(95_000);
    pub const P99: Percentile = Percentile(99_000);
    pub const P99_5: Percentile = Percentile(99_500);

    /// `milli` in thousandths of a percent, `1..=100_000`.
    pub const fn from_milli(milli: u32) -> Option<Self> {
        if milli >= 1 && milli <= 100_000 {
            Some(Percentile(milli))
        } else {
            None
        }
    }

    pub fn milli(self) -> u32 {
        self.0
    }

    /// The level as a percentage, e.g. `99.5`.
    pub fn as_f64(self) -> f64 {
        f64::from(self.0) / 1000.0
    }

    /// 1-based nearest rank among `n` values (`n > 0`).
    pub fn rank(self, n: u64) -> u64 {
        let r = (u64::from(self.0) * n).div_ceil(100_000);
        r.clamp(1, n.max(1))
    }
}

/// A statistic a rule can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Statistic {
    Average,
    Maximum,
    Minimum,
    Sum,
    SampleCount,
    Percentile(Percentile),
}

/// Why a statistic name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown statistic '{0}' (expected Average, Maximum, Minimum, Sum, SampleCount or pNN / pNN.N with 0 < NN <= 100)")]
pub struct UnknownStatistic(pub String);

impl FromStr for Statistic {
    type Err = UnknownStatistic;

    /// Accepts CloudWatch's names case-insensitively and percentiles written
    /// `p99`, `p99.5`, `P99.95` (up to three decimals).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || UnknownStatistic(s.to_string());
        let t = s.trim();
        for (name, stat) in [
            ("Average", Statistic::Average),
            ("Maximum", Statistic::Maximum),
            ("Minimum", Statistic::Minimum),
            ("Sum", Statistic::Sum),
            ("SampleCount", Statistic::SampleCount),
        ] {
            if t.eq_ignore_ascii_case(name) {
                return Ok(stat);
            }
        }
        let rest = t
            .strip_prefix('p')
            .or_else(|| t.strip_prefix('P'))
            .ok_or_else(err)?;
        let (int, frac) = match rest.split_once('.') {
            Some((i, f)) => (i, f),
            None => (rest, ""),
        };
        let digits = |x: &str| x.bytes().all(|b| b.is_ascii_digit());
        if int.is_empty() || int.len() > 3 || frac.len() > 3 || !digits(int) || !digits(frac) {
            return Err(err());
        }
        if rest.contains('.') && frac.is_empty() {
            return Err(err());
        }
        let int: u32 = int.parse().map_err(|_| err())?;
        let mut frac_milli: u32 = 0;
        for (i, b) in frac.bytes().enumerate() {
            frac_milli += u32::from(b - b'0') * 10u32.pow(2 - i as u32);
        }
        let milli = int
            .checked_mul(1000)
            .and_then(|m| m.checked_add(frac_milli))
            .ok_or_else(err)?;
        Percentile::from_milli(milli)
            .map(Statistic::Percentile)
            .ok_or_else(err)
    }
}

impl fmt::Display for Statistic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Statistic::Average => f.write_str("Average"),
            Statistic::Maximum => f.write_str("Maximum"),
            Statistic::Minimum => f.write_str("Minimum"),
            Statistic::Sum => f.write_str("Sum"),
            Statistic::SampleCount => f.write_str("SampleCount"),
            Statistic::Percentile(p) => {
                let (i, mut frac) = (p.0 / 1000, p.0 % 1000);
                if frac == 0 {
                    return write!(f, "p{i}");
                }
                let mut width = 3;
                while frac.is_multiple_of(10) {
                    frac /= 10;
                    width -= 1;
                }
                write!(f, "p{i}.{frac:0width$}")
            }
        }
    }
}

/// Count, sum, minimum and maximum of finite values. Merging the summaries of
/// batches gives the summary of their union, so Average, Sum, Minimum, Maximum
/// and SampleCount can be computed batch by batch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub count: u64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
}

impl Default for Summary {
    fn default() -> Self {
        Summary::EMPTY
    }
}

impl Summary {
    pub const EMPTY: Summary = Summary {
        count: 0,
        sum: 0.0,
        min: f64::INFINITY,
        max: f64::NEG_INFINITY,
    };

    pub fn of(values: &[f64]) -> Summary {
        summarize(values.iter().copied())
    }

    pub fn of_points(points: &[MetricPoint]) -> Summary {
        summarize_points(points)
    }

    pub fn push(&mut self, v: f64) {
        if v.is_finite() {
            self.count += 1;
            self.sum += v;
            self.min = self.min.min(v);
            self.max = self.max.max(v);
        }
    }

    pub fn merge(&mut self, other: &Summary) {
        self.count += other.count;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    /// The summary with `zeros` implied zero samples added (for metrics that
    /// CloudWatch omits when nothing happened, such as Lambda Invocations).
    pub fn with_zeros(mut self, zeros: u64) -> Summary {
        if zeros > 0 {
            self.count += zeros;
            self.min = self.min.min(0.0);
            self.max = self.max.max(0.0);
        }
        self
    }

    pub fn average(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum / self.count as f64)
    }

    /// The statistic, or `None` without data. Percentiles need the values, not
    /// a summary, and return `None` here. SampleCount of no data is 0.
    pub fn get(&self, stat: Statistic) -> Option<f64> {
        if stat == Statistic::SampleCount {
            return Some(self.count as f64);
        }
        if self.count == 0 {
            return None;
        }
        match stat {
            Statistic::Average => self.average(),
            Statistic::Maximum => Some(self.max),
            Statistic::Minimum => Some(self.min),
            Statistic::Sum => Some(self.sum),
            Statistic::SampleCount => Some(self.count as f64),
            Statistic::Percentile(_) => None,
        }
    }
}

/// One pass over finite values. Four independent accumulators break the
/// floating-point dependency chain, which roughly triples throughput.
fn summarize(values: impl Iterator<Item = f64>) -> Summary {
    let mut count = [0u64; 4];
    let mut sum = [0.0f64; 4];
    let mut min = [f64::INFINITY; 4];
    let mut max = [f64::NEG_INFINITY; 4];
    for (i, v) in values.enumerate() {
        let lane = i & 3;
        let ok = v.is_finite();
        let x = if ok { v } else { 0.0 };
        count[lane] += u64::from(ok);
        sum[lane] += x;
        min[lane] = if ok { min[lane].min(v) } else { min[lane] };
        max[lane] = if ok { max[lane].max(v) } else { max[lane] };
    }
    Summary {
        count: count.iter().sum(),
        sum: (sum[0] + sum[1]) + (sum[2] + sum[3]),
        min: min[0].min(min[1]).min(min[2].min(min[3])),
        max: max[0].max(max[1]).max(max[2].max(max[3])),
    }
}

pub(crate) fn summarize_points(points: &[MetricPoint]) -> Summary {
    let mut count = [0u64; 4];
    let mut sum = [0.0f64; 4];
    let mut min = [f64::INFINITY; 4];
    let mut max = [f64::NEG_INFINITY; 4];
    let mut chunks = points.chunks_exact(4);
    for c in &mut chunks {
        for lane in 0..4 {
            let v = c[lane].value;
            let ok = v.is_finite();
            count[lane] += u64::from(ok);
            sum[lane] += if ok { v } else { 0.0 };
            min[lane] = if ok { min[lane].min(v) } else { min[lane] };
            max[lane] = if ok { max[lane].max(v) } else { max[lane] };
        }
    }
    let mut s = Summary {
        count: count.iter().sum(),
        sum: (sum[0] + sum[1]) + (sum[2] + sum[3]),
        min: min[0].min(min[1]).min(min[2].min(min[3])),
        max: max[0].max(max[1]).max(max[2].max(max[3])),
    };
    for p in chunks.remainder() {
        s.push(p.value);
    }
    s
}

/// [`summarize_points`] for values known to be finite: no per-value check.
pub(crate) fn summarize_finite(points: &[MetricPoint]) -> Summary {
    let mut sum = [0.0f64; 4];
    let mut min = [f64::INFINITY; 4];
    let mut max = [f64::NEG_INFINITY; 4];
    let mut chunks = points.chunks_exact(4);
    for c in &mut chunks {
        for lane in 0..4 {
            let v = c[lane].value;
            sum[lane] += v;
            min[lane] = if v < min[lane] { v } else { min[lane] };
            max[lane] = if v > max[lane] { v } else { max[lane] };
        }
    }
    let mut s = Summary {
        count: (points.len() - chunks.remainder().len()) as u64,
        sum: (sum[0] + sum[1]) + (sum[2] + sum[3]),
        min: min[0].min(min[1]).min(min[2].min(min[3])),
        max: max[0].max(max[1]).max(max[2].max(max[3])),
    };
    for p in chunks.remainder() {
        s.push(p.value);
    }
    s
}

/// Largest top/bottom-k kept in a fixed buffer; beyond it a selection runs.
const SMALL_K: usize = 32;

/// Nearest-rank percentile of the finite values yielded by `values`, with
/// `zeros` implied zero samples added. `finite` must be the number of finite
/// values (callers have it from a [`Summary`]); `scratch` is reused between
/// calls so that no allocation happens per call once it has grown.
///
/// High percentiles (p95, p99.5 on a few hundred points) keep only the top `k`
/// values in a small sorted buffer: one comparison per value in the common
/// case. Otherwise the values are copied into `scratch` and
/// `select_nth_unstable` finds the rank in linear time: no sort.
pub(crate) fn percentile_with<I>(
    values: I,
    finite: u64,
    zeros: u64,
    p: Percentile,
    scratch: &mut Vec<f64>,
) -> Option<f64>
where
    I: Iterator<Item = f64>,
{
    percentile_counting(values, finite, zeros, p, false, scratch).0
}

/// As [`percentile_with`], and also returns how many finite values it saw,
/// so a caller that assumed every value finite can check it in the same pass.
/// With `known_finite` the caller vouches for that and nothing is counted.
pub(crate) fn percentile_counting<I>(
    values: I,
    finite: u64,
    zeros: u64,
    p: Percentile,
    known_finite: bool,
    scratch: &mut Vec<f64>,
) -> (Option<f64>, u64)
where
    I: Iterator<Item = f64>,
{
    let n = finite + zeros;
    if n == 0 {
        return (None, values.filter(|v| v.is_finite()).count() as u64);
    }
    let rank = p.rank(n); // 1-based, ascending
    let k_top = (n - rank + 1) as usize;
    let (v, seen) = match (k_top <= SMALL_K, rank as usize <= SMALL_K, known_finite) {
        (true, _, true) => top_k::<true, false, _>(values, zeros, k_top),
        (true, _, false) => top_k::<true, true, _>(values, zeros, k_top),
        (false, true, true) => top_k::<false, false, _>(values, zeros, rank as usize),
        (false, true, false) => top_k::<false, true, _>(values, zeros, rank as usize),
        (false, false, _) => return select_rank(values, zeros, rank, scratch),
    };
    (Some(v), seen)
}

/// The value at 1-based `rank` by selection in `scratch`: linear, no sort.
fn select_rank<I>(values: I, zeros: u64, rank: u64, scratch: &mut Vec<f64>) -> (Option<f64>, u64)
where
    I: Iterator<Item = f64>,
{
    scratch.clear();
    scratch.extend(values.filter(|v| v.is_finite()));
    let seen = scratch.len() as u64;
    scratch.extend(std::iter::repeat_n(0.0, zeros as usize));
    let idx = (rank - 1) as usize;
    if idx >= scratch.len() {
        return (None, seen);
    }
    let (_, v, _) = scratch.select_nth_unstable_by(idx, f64::total_cmp);
    (Some(*v), seen)
}

/// The k-th most extreme value (k-th largest when `LARGEST`, else k-th
/// smallest) among the finite values and `zeros` zeros, and the number of
/// finite values (counted only when `COUNT`; otherwise every value is taken
/// as finite, as the caller knows). `k` is in `1..=SMALL_K`. The common case
/// costs one comparison per value against the current k-th best: NaN never
/// passes it, infinities are dropped on the rare insert path.
fn top_k<const LARGEST: bool, const COUNT: bool, I>(values: I, zeros: u64, k: usize) -> (f64, u64)
where
    I: Iterator<Item = f64>,
{
    let better = |a: f64, b: f64| if LARGEST { a > b } else { a < b };
    // buf[0..len] is ordered best first; `bar` is the value to beat.
    let mut buf = [0.0f64; SMALL_K];
    let mut len = 0usize;
    let mut bar = if LARGEST {
        f64::NEG_INFINITY
    } else {
        f64::INFINITY
    };
    let insert = |v: f64, buf: &mut [f64; SMALL_K], len: &mut usize, bar: &mut f64| {
        if *len == k {
            *len -= 1;
        }
        let mut i = *len;
        while i > 0 && better(v, buf[i - 1]) {
            buf[i] = buf[i - 1];
            i -= 1;
        }
        buf[i] = v;
        *len += 1;
        if *len == k {
            *bar = buf[k - 1];
        }
    };
    let mut seen = 0u64;
    for v in values {
        if COUNT {
            seen += u64::from(v.is_finite());
        } else {
            seen += 1;
        }
        if better(v, bar) && v.is_finite() {
            insert(v, &mut buf, &mut len, &mut bar);
        }
    }
    for _ in 0..zeros.min(k as u64) {
        if len < k || better(0.0, bar) {
            insert(0.0, &mut buf, &mut len, &mut bar);
        }
    }
    (buf[len.saturating_sub(1)], seen)
}

/// Nearest-rank percentile of the finite values (allocates a copy).
pub fn percentile(values: &[f64], p: Percentile) -> Option<f64> {
    let finite = values.iter().filter(|v| v.is_finite()).count() as u64;
    percentile_with(values.iter().copied(), finite, 0, p, &mut Vec::new())
}

/// Any statistic over the finite values; `None` when there are none (except
/// SampleCount, which is 0).
pub fn statistic(values: &[f64], stat: Statistic) -> Option<f64> {
    match stat {
        Statistic::Percentile(p) => percentile(values, p),
        s => Summary::of(values).get(s),
    }
}

/// Any statistic over the finite values of points.
pub fn statistic_of_points(points: &[MetricPoint], stat: Statistic) -> Option<f64> {
    let s = summarize_points(points);
    match stat {
        Statistic::Percentile(p) => percentile_with(
            points.iter().map(|p| p.value),
            s.count,
            0,
            p,
            &mut Vec::new(),
        ),
        other => s.get(other),
    }
}

/// A summary that also keeps the values, so that percentiles of merged batches
/// are exact: they are computed from the union of the batches' values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BatchSummary {
    summary: Summary,
    values: Vec<f64>,
}

impl BatchSummary {
    pub fn new() -> Self {
        BatchSummary::default()
    }

    pub fn of(values: &[f64]) -> Self {
        let mut b = BatchSummary::new();
        b.extend(values);
        b
    }

    pub fn extend(&mut self, values: &[f64]) {
        self.summary.merge(&Summary::of(values));
        self.values
            .extend(values.iter().copied().filter(|v| v.is_finite()));
    }

    pub fn merge(&mut self, other: BatchSummary) {
        self.summary.merge(&other.summary);
        self.values.extend(other.values);
    }

    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    pub fn get(&self, stat: Statistic) -> Option<f64> {
        match stat {
            Statistic::Percentile(p) => percentile_with(
                self.values.iter().copied(),
                self.summary.count,
                0,
                p,
                &mut Vec::new(),
            ),
            s => self.summary.get(s),
        }
    }
}

/// The UTC day containing `t`, as seconds since the epoch of its midnight.
pub fn day_start(t: DateTime<Utc>) -> i64 {
    t.timestamp().div_euclid(DAY_SECONDS) * DAY_SECONDS
}

/// The statistic of one UTC day.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DayValue {
    pub day: NaiveDate,
    pub samples: u64,
    pub value: Option<f64>,
}

/// The last `days` complete UTC days before `now`'s day, oldest first.
/// Points must be in ascending timestamp order (as `MetricSeries` guarantees);
/// each day's points are found by binary search, so no timestamp is converted
/// per point.
pub fn daily(
    points: &[MetricPoint],
    stat: Statistic,
    now: DateTime<Utc>,
    days: u32,
) -> Vec<DayValue> {
    let today = day_start(now);
    let mut scratch = Vec::new();
    (0..i64::from(days))
        .rev()
        .filter_map(|back| {
            let start = today - (back + 1) * DAY_SECONDS;
            let from = DateTime::from_timestamp(start, 0)?;
            let to = DateTime::from_timestamp(start + DAY_SECONDS, 0)?;
            let slice = window(points, from, to);
            let s = summarize_points(slice);
            let value = match stat {
                Statistic::Percentile(p) => {
                    percentile_with(slice.iter().map(|p| p.value), s.count, 0, p, &mut scratch)
                }
                other => s.get(other).filter(|_| s.count > 0),
            };
            Some(DayValue {
                day: from.date_naive(),
                samples: s.count,
                value,
            })
        })
        .collect()
}

/// The points with `from <= timestamp < to` of an ascending series.
pub fn window(points: &[MetricPoint], from: DateTime<Utc>, to: DateTime<Utc>) -> &[MetricPoint] {
    let a = points.partition_point(|p| p.timestamp < from);
    let b = a + points[a..].partition_point(|p| p.timestamp < to);
    &points[a..b]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn p(s: &str) -> Percentile {
        match s.parse::<Statistic>() {
            Ok(Statistic::Percentile(p)) => p,
            other => panic!("{s}: {other:?}"),
        }
    }

    #[test]
    fn parses_statistics_and_round_trips() {
        for s in [
            "Average",
            "Maximum",
            "Minimum",
            "Sum",
            "SampleCount",
            "p50",
            "p99.5",
            "p99.9",
            "p100",
            "p0.1",
            "p99.95",
        ] {
            let st: Statistic = s.parse().unwrap();
            assert_eq!(st.to_string(), s);
        }
        assert_eq!("average".parse::<Statistic>(), Ok(Statistic::Average));
        assert_eq!(p("P99.5").milli(), 99_500);
        for bad in [
            "", "p", "p0", "p101", "p99.", "p.5", "p99.5555", "pxx", "Avg", "p-1", "p1000",
        ] {
            assert!(bad.parse::<Statistic>().is_err(), "{bad}");
        }
    }

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=20).map(f64::from).collect();
        // ceil(0.95 * 20) = 19: exact integer arithmetic, no 19.000000000000004.
        assert_eq!(percentile(&v, p("p95")), Some(19.0));
        assert_eq!(percentile(&v, p("p50")), Some(10.0));
        assert_eq!(percentile(&v, p("p100")), Some(20.0));
        assert_eq!(percentile(&v, p("p0.1")), Some(1.0));
        let v: Vec<f64> = (1..=336).map(f64::from).collect();
        // ceil(0.995 * 336) = ceil(334.32) = 335
        assert_eq!(percentile(&v, p("p99.5")), Some(335.0));
        assert_eq!(percentile(&[], p("p50")), None);
        assert_eq!(percentile(&[f64::NAN, 3.0], p("p50")), Some(3.0));
    }

    #[test]
    fn implied_zeros_join_the_ranking() {
        let v = [5.0, 7.0];
        let mut scratch = Vec::new();
        // values {0,0,0,5,7}: p50 rank 3 -> 0; p80 rank 4 -> 5
        assert_eq!(
            percentile_with(v.iter().copied(), 2, 3, p("p50"), &mut scratch),
            Some(0.0)
        );
        assert_eq!(
            percentile_with(v.iter().copied(), 2, 3, p("p80"), &mut scratch),
            Some(5.0)
        );
        let s = Summary::of(&v).with_zeros(3);
        assert_eq!(s.get(Statistic::Average), Some(12.0 / 5.0));
        assert_eq!(s.get(Statistic::Minimum), Some(0.0));
    }

    #[test]
    fn summary_statistics_and_empty() {
        let s = Summary::of(&[1.0, f64::NAN, 3.0, f64::INFINITY, 2.0]);
        assert_eq!(s.get(Statistic::SampleCount), Some(3.0));
        assert_eq!(s.get(Statistic::Average), Some(2.0));
        assert_eq!(s.get(Statistic::Sum), Some(6.0));
        assert_eq!(s.get(Statistic::Minimum), Some(1.0));
        assert_eq!(s.get(Statistic::Maximum), Some(3.0));
        assert_eq!(Summary::EMPTY.get(Statistic::Average), None);
        assert_eq!(Summary::EMPTY.get(Statistic::SampleCount), Some(0.0));
    }

    #[test]
    fn daily_aggregation_uses_complete_utc_days() {
        let now: DateTime<Utc> = "2024-03-15T08:30:00Z".parse().unwrap();
        let start: DateTime<Utc> = "2024-03-12T00:00:00Z".parse().unwrap();
        let points: Vec<MetricPoint> = (0..(3 * 24 + 8))
            .map(|h| MetricPoint {
                timestamp: start + chrono::Duration::hours(h),
                value: (h / 24) as f64, // day index as the value
            })
            .collect();
        let d = daily(&points, Statistic::Average, now, 4);
        assert_eq!(d.len(), 4);
        assert_eq!(d[0].day.to_string(), "2024-03-11");
        assert_eq!(d[0].value, None);
        assert_eq!(d[1].value, Some(0.0));
        assert_eq!(d[3].day.to_string(), "2024-03-14");
        assert_eq!(d[3].value, Some(2.0));
        assert_eq!(d[3].samples, 24);
    }

    fn values() -> impl Strategy<Value = Vec<f64>> {
        prop::collection::vec(-1e6f64..1e6, 0..400)
    }

    fn stat() -> impl Strategy<Value = Statistic> {
        prop_oneof![
            Just(Statistic::Average),
            Just(Statistic::Maximum),
            Just(Statistic::Minimum),
            Just(Statistic::Sum),
            Just(Statistic::SampleCount),
            (1u32..=100_000).prop_map(|m| Statistic::Percentile(Percentile(m))),
        ]
    }

    fn close(a: Option<f64>, b: Option<f64>) -> bool {
        match (a, b) {
            (None, None) => true,
            (Some(x), Some(y)) => (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0),
            _ => false,
        }
    }

    proptest! {
        #[test]
        fn merged_batches_equal_the_whole(v in values(), cuts in prop::collection::vec(0usize..400, 0..6), s in stat()) {
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(v.len())).collect();
            cuts.push(0);
            cuts.push(v.len());
            cuts.sort_unstable();
            let mut merged = BatchSummary::new();
            for w in cuts.windows(2) {
                merged.merge(BatchSummary::of(&v[w[0]..w[1]]));
            }
            let whole = statistic(&v, s);
            prop_assert!(close(merged.get(s), whole), "{s}: {:?} vs {:?}", merged.get(s), whole);
        }

        #[test]
        fn percentile_matches_a_full_sort(v in values(), m in 1u32..=100_000) {
            let pct = Percentile(m);
            let mut sorted = v.clone();
            sorted.sort_by(f64::total_cmp);
            let expected = (!sorted.is_empty()).then(|| sorted[(pct.rank(sorted.len() as u64) - 1) as usize]);
            prop_assert_eq!(percentile(&v, pct), expected);
            // The path for values known to be finite agrees.
            let (fast, seen) = percentile_counting(v.iter().copied(), v.len() as u64, 0, pct, true, &mut Vec::new());
            prop_assert_eq!(fast, expected);
            prop_assert_eq!(seen, v.len() as u64);
        }

        #[test]
        fn non_finite_values_are_skipped(v in prop::collection::vec(prop_oneof![4 => -1e3f64..1e3, 1 => Just(f64::NAN), 1 => Just(f64::INFINITY), 1 => Just(f64::NEG_INFINITY)], 0..200), m in 1u32..=100_000) {
            let finite: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
            prop_assert_eq!(percentile(&v, Percentile(m)), percentile(&finite, Percentile(m)));
        }

        #[test]
        fn percentiles_are_monotone(v in values(), a in 1u32..=100_000, b in 1u32..=100_000) {
            let (lo, hi) = (a.min(b), a.max(b));
            if let (Some(x), Some(y)) = (percentile(&v, Percentile(lo)), percentile(&v, Percentile(hi))) {
                prop_assert!(x <= y);
            }
        }

        #[test]
        fn point_summary_equals_value_summary(v in values()) {
            let t0 = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
            let pts: Vec<MetricPoint> = v.iter().enumerate().map(|(i, &value)| MetricPoint {
                timestamp: t0 + chrono::Duration::hours(i as i64), value }).collect();
            let a = Summary::of_points(&pts);
            let b = Summary::of(&v);
            let c = summarize_finite(&pts);
            prop_assert_eq!(a.count, b.count);
            prop_assert!(close(Some(a.sum), Some(b.sum)));
            prop_assert_eq!(a.min, b.min);
            prop_assert_eq!(a.max, b.max);
            prop_assert_eq!(c.count, b.count);
            prop_assert!(close(Some(c.sum), Some(b.sum)));
            prop_assert_eq!((c.min, c.max), (b.min, b.max));
        }
    }
}
