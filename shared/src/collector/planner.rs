//! Packing metric requests into GetMetricData calls. Pure: no I/O, no clock.
//!
//! GetMetricData takes at most 500 queries and returns at most 100,800 data
//! points per call; everything beyond the second limit costs another page,
//! and each page is a billed call. The planner sizes every call so that it
//! should need exactly one page: first-fit-decreasing on the expected number
//! of points, then, if that used more calls than the lower bound
//! [`minimum_get_metric_data_calls`], a least-loaded spread over the bound
//! (or one more). Uniform fleets whose query size divides the point limit
//! (hourly or daily series over 7, 14, 15 or 30 days) or is small enough
//! for the query limit to bind meet the bound; fleets of hourly and daily
//! series mixed take the fewest calls possible, which is the bound unless
//! both limits are within a few queries of full (tested against an exact
//! solution).
//!
//! Every call of one fetch shares one StartTime, aligned down on the
//! periods (their least common multiple), so that buckets start on multiples
//! of each period as they do on AWS, and the emulator, which buckets from
//! StartTime, agrees.

use super::MetricRequest;
use crate::{Error, Result};
use chrono::{DateTime, Utc};

/// AWS limit: queries per GetMetricData call.
pub const MAX_QUERIES_PER_CALL: usize = 500;
/// AWS limit: data points per GetMetricData page.
pub const MAX_DATAPOINTS_PER_CALL: u64 = 100_800;
/// AWS limit: dimensions per metric.
pub const MAX_DIMENSIONS: usize = 30;

/// Mixed periods align on their least common multiple up to this; an
/// exotic mix with a larger one aligns on the longest period instead (its
/// other periods' buckets are then not multiples of themselves, which is
/// still a valid answer, only not AWS's bucketing).
const MAX_ALIGNMENT_SECONDS: u64 = 7 * 86_400;

/// How a fetch is split into GetMetricData calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The fetch's start, as asked.
    pub start: DateTime<Utc>,
    /// StartTime of every call: the fetch's start aligned down on the
    /// periods. Points before each request's own aligned start are dropped.
    pub query_start: DateTime<Utc>,
    /// EndTime of every call: the fetch's end rounded up to a whole second
    /// (CloudWatch ignores fractions).
    pub query_end: DateTime<Utc>,
    pub calls: Vec<PlannedCall>,
}

/// One GetMetricData call (more if a query still paginates).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedCall {
    /// Indexes into the requests, ascending. The query id of request `i` is
    /// [`query_id`]`(i)`.
    pub requests: Vec<usize>,
    /// The most points the call can return: the sum of its queries' buckets.
    pub expected_points: u64,
}

/// The query id of request `index`: CloudWatch wants a lowercase letter
/// first, then letters, digits and `_`.
pub fn query_id(index: usize) -> String {
    format!("q{index}")
}

/// Whether CloudWatch accepts `period` for a MetricStat: 1, 5, 10 or 30
/// seconds (high resolution) or a multiple of 60.
pub fn valid_period(period: u32) -> bool {
    matches!(period, 1 | 5 | 10 | 30) || (period > 0 && period.is_multiple_of(60))
}

/// `t` aligned down on a multiple of `period_seconds` since the epoch.
/// `None` for a zero period or a time chrono cannot represent.
pub fn align_down(t: DateTime<Utc>, period_seconds: u32) -> Option<DateTime<Utc>> {
    if period_seconds == 0 {
        return None;
    }
    let s = t.timestamp();
    DateTime::from_timestamp(s - s.rem_euclid(i64::from(period_seconds)), 0)
}

/// Buckets of `period_seconds` in `[query_start, query_end)`: the most
/// points one query can return.
pub fn expected_points(
    period_seconds: u32,
    query_start: DateTime<Utc>,
    query_end: DateTime<Utc>,
) -> u64 {
    if period_seconds == 0 || query_end <= query_start {
        return 0;
    }
    let span = (query_end - query_start).num_seconds().max(0) as u64;
    span.div_ceil(u64::from(period_seconds))
}

/// The fewest GetMetricData calls that can carry `requests` over
/// `[start, end)`: `max(ceil(Q / 500), ceil(P / 100,800))` with `Q` the
/// number of requests and `P` their expected points (as [`plan`] counts
/// them, from the aligned start). 0 when there is nothing to ask or the
/// input would be rejected by [`plan`].
pub fn minimum_get_metric_data_calls(
    requests: &[MetricRequest],
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> u64 {
    if requests
        .iter()
        .enumerate()
        .any(|(i, r)| validate(i, r).is_err())
    {
        return 0;
    }
    let Ok((query_start, query_end)) = window(requests, start, end) else {
        return 0;
    };
    let points: u64 = requests
        .iter()
        .map(|r| expected_points(r.period_seconds, query_start, query_end))
        .sum();
    lower_bound(requests.len(), points)
}

fn lower_bound(queries: usize, points: u64) -> u64 {
    (queries as u64)
        .div_ceil(MAX_QUERIES_PER_CALL as u64)
        .max(points.div_ceil(MAX_DATAPOINTS_PER_CALL))
}

/// Whether a call can take one more query of `cost` points. A query larger
/// than a page only goes into an empty call, and takes it whole.
fn fits(call: &PlannedCall, cost: u64) -> bool {
    call.requests.len() < MAX_QUERIES_PER_CALL
        && (call.requests.is_empty()
            || call.expected_points.saturating_add(cost) <= MAX_DATAPOINTS_PER_CALL)
}

/// Whether a call can take nothing more, given the smallest query left.
fn closed(call: &PlannedCall, smallest: u64) -> bool {
    !call.requests.is_empty() && !fits(call, smallest)
}

fn place(call: &mut PlannedCall, i: usize, cost: u64) {
    call.requests.push(i);
    call.expected_points = call.expected_points.saturating_add(cost);
}

/// Classic first-fit-decreasing over `order` (sorted by cost, descending).
fn first_fit_decreasing(order: &[usize], cost: &[u64]) -> Vec<PlannedCall> {
    let smallest = order.last().map_or(0, |&i| cost[i]);
    let mut calls: Vec<PlannedCall> = Vec::new();
    // Calls before `first_open` can take nothing more; skipping them keeps
    // first-fit linear in practice for fleets of tens of thousands.
    let mut first_open = 0;
    for &i in order {
        let c = cost[i];
        match calls[first_open..].iter_mut().find(|k| fits(k, c)) {
            Some(call) => place(call, i, c),
            None => {
                let mut call = PlannedCall {
                    requests: Vec::new(),
                    expected_points: 0,
                };
                place(&mut call, i, c);
                calls.push(call);
            }
        }
        while calls.get(first_open).is_some_and(|k| closed(k, smallest)) {
            first_open += 1;
        }
    }
    calls
}

/// Packs `order` (sorted by cost, descending) into exactly `target` calls,
/// each query going to the least loaded call that takes it, load being the
/// fuller of its query count and its points relative to their limits.
/// `None` if some query fits nowhere.
fn least_loaded(order: &[usize], cost: &[u64], target: usize) -> Option<Vec<PlannedCall>> {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;

    // Both fractions over the common denominator 500 x 100,800.
    let load = |k: &PlannedCall| {
        (k.requests.len() as u128 * u128::from(MAX_DATAPOINTS_PER_CALL))
            .max(u128::from(k.expected_points) * MAX_QUERIES_PER_CALL as u128)
    };
    let smallest = order.last().map_or(0, |&i| cost[i]);
    let mut calls = vec![
        PlannedCall {
            requests: Vec::new(),
            expected_points: 0,
        };
        target
    ];
    let mut heap: BinaryHeap<Reverse<(u128, usize)>> =
        (0..target).map(|b| Reverse((0, b))).collect();
    let mut aside = Vec::new();
    for &i in order {
        let c = cost[i];
        let chosen = loop {
            let Reverse((l, b)) = heap.pop()?;
            if fits(&calls[b], c) {
                break b;
            }
            if !closed(&calls[b], smallest) {
                aside.push(Reverse((l, b)));
            }
        };
        heap.extend(aside.drain(..));
        place(&mut calls[chosen], i, c);
        if !closed(&calls[chosen], smallest) {
            heap.push(Reverse((load(&calls[chosen]), chosen)));
        }
    }
    calls.retain(|k| !k.requests.is_empty());
    Some(calls)
}

/// Splits `requests` into GetMetricData calls of at most 500 queries and
/// 100,800 expected points (a single query expecting more gets a call of its
/// own and paginates). Rejects what CloudWatch would reject, before any call.
/// Deterministic: the same input gives the same plan.
pub fn plan(requests: &[MetricRequest], start: DateTime<Utc>, end: DateTime<Utc>) -> Result<Plan> {
    for (i, r) in requests.iter().enumerate() {
        validate(i, r)?;
    }
    let (query_start, query_end) = window(requests, start, end)?;
    let cost: Vec<u64> = requests
        .iter()
        .map(|r| expected_points(r.period_seconds, query_start, query_end))
        .collect();

    let mut order: Vec<usize> = (0..requests.len()).collect();
    order.sort_by(|&a, &b| cost[b].cmp(&cost[a]).then(a.cmp(&b)));
    let mut calls = first_fit_decreasing(&order, &cost);
    // First-fit fills calls one after the other, which strands small queries
    // when large ones have used up every call's points and the query limit
    // binds for the small ones (hourly and daily series mixed). Spreading
    // the load over exactly the lower bound of calls, or one more, often
    // succeeds where first-fit needed more.
    let lower = lower_bound(requests.len(), cost.iter().sum());
    for target in [lower, lower + 1] {
        if target >= calls.len() as u64 {
            break;
        }
        if let Some(balanced) = least_loaded(&order, &cost, target as usize) {
            calls = balanced;
            break;
        }
    }
    for call in &mut calls {
        call.requests.sort_unstable();
    }
    Ok(Plan {
        start,
        query_start,
        query_end,
        calls,
    })
}

fn validate(i: usize, r: &MetricRequest) -> Result<()> {
    let bad = |what: String| Err(Error::Validation(format!("metric request {i}: {what}")));
    if !valid_period(r.period_seconds) {
        return bad(format!(
            "period {} s (CloudWatch takes 1, 5, 10, 30 or a multiple of 60)",
            r.period_seconds
        ));
    }
    if r.namespace.is_empty() || r.metric.is_empty() || r.statistic.is_empty() {
        return bad("namespace, metric and statistic must be set".into());
    }
    if r.dimensions.len() > MAX_DIMENSIONS {
        return bad(format!("more than {MAX_DIMENSIONS} dimensions"));
    }
    for (k, (name, _)) in r.dimensions.iter().enumerate() {
        if name.is_empty() || r.dimensions[..k].iter().any(|(n, _)| n == name) {
            return bad(format!("dimension name '{name}' empty or repeated"));
        }
    }
    Ok(())
}

/// The StartTime and EndTime every call of the fetch uses.
fn window(
    requests: &[MetricRequest],
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<(DateTime<Utc>, DateTime<Utc>)> {
    if start >= end {
        return Err(Error::Validation(format!(
            "metric window start {start} is not before end {end}"
        )));
    }
    let mut alignment: u64 = 1;
    let mut longest: u64 = 1;
    for r in requests {
        let p = u64::from(r.period_seconds);
        if p == 0 {
            return Err(Error::Validation("metric period of 0 s".into()));
        }
        longest = longest.max(p);
        if alignment <= MAX_ALIGNMENT_SECONDS {
            alignment = alignment / gcd(alignment, p) * p;
        }
    }
    if alignment > MAX_ALIGNMENT_SECONDS {
        alignment = longest;
    }
    let out_of_range = || Error::Validation(format!("metric window {start}..{end} out of range"));
    let query_start = u32::try_from(alignment)
        .ok()
        .and_then(|a| align_down(start, a))
        .ok_or_else(out_of_range)?;
    let end_secs = end.timestamp() + i64::from(end.timestamp_subsec_nanos() > 0);
    let query_end = DateTime::from_timestamp(end_secs, 0).ok_or_else(out_of_range)?;
    Ok((query_start, query_end))
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::metric::{names, namespaces};
    use crate::domain::Service;
    use proptest::prelude::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn req(i: usize, period: u32) -> MetricRequest {
        MetricRequest::new(
            Service::Ec2,
            format!("i-{i}"),
            namespaces::EC2,
            names::CPU_UTILIZATION,
            "Average",
            period,
            &[],
        )
    }

    /// `n` one-minute requests over a window of `size` minutes: a uniform
    /// fleet whose queries each expect `size` points.
    fn uniform(n: usize, size: u64) -> (Vec<MetricRequest>, DateTime<Utc>, DateTime<Utc>) {
        let start = t("2026-01-01T00:00:00Z");
        let end = start + chrono::Duration::minutes(size as i64);
        ((0..n).map(|i| req(i, 60)).collect(), start, end)
    }

    fn check_invariants(reqs: &[MetricRequest], plan: &Plan) {
        let mut seen = vec![0u32; reqs.len()];
        for call in &plan.calls {
            assert!(!call.requests.is_empty());
            assert!(call.requests.len() <= MAX_QUERIES_PER_CALL);
            let pts: u64 = call
                .requests
                .iter()
                .map(|&i| expected_points(reqs[i].period_seconds, plan.query_start, plan.query_end))
                .sum();
            assert_eq!(pts, call.expected_points);
            assert!(
                pts <= MAX_DATAPOINTS_PER_CALL || call.requests.len() == 1,
                "call over the point limit with several queries"
            );
            for &i in &call.requests {
                seen[i] += 1;
            }
        }
        assert!(seen.iter().all(|&n| n == 1), "every request exactly once");
    }

    /// The fewest single-page calls for `n_big` queries of `big` points and
    /// `n_small` of `small` points (`big >= small`), exactly. Given how many
    /// big ones a call holds, the room left for small ones is concave in
    /// that number, so spreading the big ones evenly leaves the most room:
    /// `k` calls suffice iff the even spread leaves room for every small one.
    fn optimum_of_two_sizes(n_big: u64, big: u64, n_small: u64, small: u64) -> u64 {
        let (q_max, c_max) = (MAX_QUERIES_PER_CALL as u64, MAX_DATAPOINTS_PER_CALL);
        let room = |h: u64| {
            (h <= q_max && h * big <= c_max).then(|| (q_max - h).min((c_max - h * big) / small))
        };
        if n_big + n_small == 0 {
            return 0;
        }
        (1..)
            .find(|&k| {
                let (q, r) = (n_big / k, n_big % k);
                let more = if r > 0 { room(q + 1) } else { Some(0) };
                match (more, room(q)) {
                    (Some(a), Some(b)) => r * a + (k - r) * b >= n_small,
                    _ => false,
                }
            })
            .unwrap_or(u64::MAX)
    }

    #[test]
    fn the_fleet_of_the_benchmark_needs_exactly_the_minimum() {
        // 1,000 instances x 3 hourly metrics over 14 days, plus 300 buckets x
        // 2 daily metrics: 3,000 x 336 + 600 x 14 points.
        let start = t("2026-01-01T00:00:00Z");
        let end = start + chrono::Duration::days(14);
        let mut reqs: Vec<MetricRequest> = (0..3000).map(|i| req(i, 3600)).collect();
        reqs.extend((0..600).map(|i| req(i, 86_400)));
        let plan = plan(&reqs, start, end).unwrap();
        check_invariants(&reqs, &plan);
        assert_eq!(
            plan.calls.len() as u64,
            minimum_get_metric_data_calls(&reqs, start, end)
        );
        assert_eq!(plan.calls.len(), 11);
    }

    #[test]
    fn start_aligns_on_the_periods_and_end_rounds_up() {
        let start = t("2026-01-05T10:37:12.5Z");
        let end = t("2026-01-06T10:37:12.5Z");
        let hourly = plan(&[req(0, 3600)], start, end).unwrap();
        assert_eq!(hourly.query_start, t("2026-01-05T10:00:00Z"));
        assert_eq!(hourly.query_end, t("2026-01-06T10:37:13Z"));
        assert_eq!(hourly.calls[0].expected_points, 25);
        let mixed = plan(&[req(0, 3600), req(1, 86_400), req(2, 300)], start, end).unwrap();
        assert_eq!(mixed.query_start, t("2026-01-05T00:00:00Z"));
        // 7 and 11 minutes: lcm 77 minutes, not a divisor of a day, still aligned.
        let odd = plan(&[req(0, 420), req(1, 660)], start, end).unwrap();
        assert_eq!(odd.query_start.timestamp() % (77 * 60), 0);
    }

    #[test]
    fn what_cloudwatch_rejects_is_rejected_before_any_call() {
        let start = t("2026-01-01T00:00:00Z");
        let end = t("2026-01-02T00:00:00Z");
        for bad in [0, 7, 61, 90] {
            assert!(matches!(
                plan(&[req(0, bad)], start, end),
                Err(Error::Validation(_))
            ));
        }
        assert!(matches!(
            plan(&[req(0, 60)], end, start),
            Err(Error::Validation(_))
        ));
        let mut dup = req(0, 60);
        dup.dimensions.push(("InstanceId".into(), "i-2".into()));
        assert!(matches!(
            plan(&[dup], start, end),
            Err(Error::Validation(_))
        ));
        assert_eq!(minimum_get_metric_data_calls(&[req(0, 60)], end, start), 0);
        assert_eq!(minimum_get_metric_data_calls(&[], start, end), 0);
        assert!(plan(&[], start, end).unwrap().calls.is_empty());
    }

    #[test]
    fn a_query_larger_than_a_page_gets_a_call_of_its_own() {
        // 1-minute data over 100 days: 144,000 points, two pages.
        let start = t("2026-01-01T00:00:00Z");
        let end = start + chrono::Duration::days(100);
        let reqs = vec![req(0, 60), req(1, 3600), req(2, 3600)];
        let plan = plan(&reqs, start, end).unwrap();
        check_invariants(&reqs, &plan);
        assert_eq!(plan.calls.len(), 2);
        assert_eq!(plan.calls[0].requests, vec![0]);
        assert_eq!(minimum_get_metric_data_calls(&reqs, start, end), 2);
    }

    /// Sizes for which first-fit-decreasing provably meets the lower bound
    /// on a uniform fleet: the query limit binds first (at most 201 points),
    /// or the size divides the point limit.
    fn realistic_size() -> impl Strategy<Value = u64> {
        let divisors: Vec<u64> = (202..=MAX_DATAPOINTS_PER_CALL)
            .filter(|d| MAX_DATAPOINTS_PER_CALL.is_multiple_of(*d))
            .collect();
        prop_oneof![1u64..=201, proptest::sample::select(divisors)]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn every_request_is_placed_once_within_the_limits(
            periods in proptest::collection::vec(
                proptest::sample::select(vec![60u32, 300, 3600, 86_400]), 0..3000),
            days in 1i64..40,
            offset in 0i64..86_400,
        ) {
            let start = t("2026-01-01T00:00:00Z") + chrono::Duration::seconds(offset);
            let end = start + chrono::Duration::days(days);
            let reqs: Vec<_> = periods.iter().enumerate().map(|(i, &p)| req(i, p)).collect();
            let plan = plan(&reqs, start, end).unwrap();
            check_invariants(&reqs, &plan);
            prop_assert!(plan.calls.len() as u64 >= minimum_get_metric_data_calls(&reqs, start, end));
        }

        #[test]
        fn uniform_fleets_of_usual_sizes_take_the_minimum(n in 1usize..20_000, size in realistic_size()) {
            let (reqs, start, end) = uniform(n, size);
            let plan = plan(&reqs, start, end).unwrap();
            check_invariants(&reqs, &plan);
            prop_assert_eq!(plan.calls.len() as u64, minimum_get_metric_data_calls(&reqs, start, end));
        }

        #[test]
        fn uniform_fleets_of_any_size_take_the_fewest_single_page_calls(n in 1usize..5_000, size in 1u64..150_000) {
            let (reqs, start, end) = uniform(n, size);
            let plan = plan(&reqs, start, end).unwrap();
            check_invariants(&reqs, &plan);
            // No call can hold more than this many such queries on one page.
            let per_call = (MAX_DATAPOINTS_PER_CALL / size).clamp(1, MAX_QUERIES_PER_CALL as u64);
            prop_assert_eq!(plan.calls.len() as u64, (n as u64).div_ceil(per_call));
        }

        #[test]
        fn hourly_and_daily_mixes_take_the_fewest_calls_possible(
            hourly in 0usize..6000,
            daily in 0usize..3000,
            days in proptest::sample::select(vec![7i64, 14, 15, 30, 32]),
        ) {
            let start = t("2026-01-01T00:00:00Z");
            let end = start + chrono::Duration::days(days);
            let mut reqs: Vec<_> = (0..hourly).map(|i| req(i, 3600)).collect();
            reqs.extend((0..daily).map(|i| req(i, 86_400)));
            let plan = plan(&reqs, start, end).unwrap();
            check_invariants(&reqs, &plan);
            let best = optimum_of_two_sizes(hourly as u64, 24 * days as u64, daily as u64, days as u64);
            prop_assert_eq!(plan.calls.len() as u64, best);
            prop_assert!(best >= minimum_get_metric_data_calls(&reqs, start, end));
        }

        #[test]
        fn ids_are_valid_cloudwatch_ids(i in any::<usize>()) {
            let id = query_id(i);
            let mut chars = id.chars();
            prop_assert!(chars.next().is_some_and(|c| c.is_ascii_lowercase()));
            prop_assert!(chars.all(|c| c.is_ascii_alphanumeric() || c == '_'));
        }
    }
}
