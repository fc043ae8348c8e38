//! The execution benchmark's figures.

use crate::setup::{Stage, FROM, TO};
use crate::{per, Phase, Previews, Settings};
use chrono::{DateTime, Utc};
use finops_demo::bench::wire::{self, Tally};
use finops_demo::bench::{mb, median, percentile, prices};
use shared::domain::execution::Step;
use shared::domain::Service;
use shared::execution::AwsActuator;
use std::collections::{BTreeMap, HashMap};

/// The floor of one rightsizing's EC2 calls, by operation: the pre- and
/// post-state reads, and each step's change with, for stop and start, one
/// describe that sees it done (the waiter's first look).
fn ec2_floor() -> (u64, BTreeMap<&'static str, f64>) {
    let steps = [
        Step::Ec2Stop,
        Step::Ec2ModifyType {
            from: FROM.into(),
            to: TO.into(),
        },
        Step::Ec2Start,
    ];
    let total = AwsActuator::minimum_calls(Service::Ec2, &steps);
    let by_op = BTreeMap::from([
        ("EC2:DescribeInstances", 4.0),
        ("EC2:StopInstances", 1.0),
        ("EC2:ModifyInstanceAttribute", 1.0),
        ("EC2:StartInstances", 1.0),
    ]);
    (total, by_op)
}

fn merged(reports: &[finops_demo::bench::worker::WorkerReport]) -> (Tally, Tally) {
    let mut calls = Tally::new();
    let mut poller = Tally::new();
    for r in reports {
        wire::merge(&mut calls, &r.calls);
        wire::merge(&mut poller, &r.poller);
    }
    (calls, poller)
}

fn print_per(title: &str, tally: &Tally, n: usize, floor: &BTreeMap<&str, f64>) {
    println!("  {title}");
    println!(
        "    {:<40} {:>8} {:>10} {:>9}",
        "service:operation", "calls", "per item", "minimum"
    );
    for (k, calls, each) in per(tally, n) {
        let min = floor
            .get(k.as_str())
            .map_or("-".to_string(), |m| format!("{m:.0}"));
        println!("    {k:<40} {calls:>8} {each:>10.2} {min:>9}");
    }
}

fn workers_line(phase: &Phase) {
    for r in &phase.reports {
        println!(
            "  worker {}: {} messages ({} failed), busy {:.1} s, peak RSS {:.1} MB ({:.1} MB at start)",
            r.worker,
            r.messages,
            r.failed,
            r.busy_s,
            mb(r.hwm_kb),
            mb(r.rss_start_kb)
        );
    }
}

#[allow(clippy::too_many_arguments)]
pub fn throughput(
    s: &Settings,
    stage: &Stage,
    previews: &Previews,
    api: &Tally,
    submit_s: f64,
    phase: &Phase,
    done: usize,
    seen: usize,
) -> Tally {
    let (ec2_min, ec2_by_op) = ec2_floor();
    if !previews.latencies.is_empty() {
        let ms: Vec<f64> = previews.latencies.iter().map(|(l, _)| l * 1000.0).collect();
        let statuses: BTreeMap<u16, usize> =
            previews
                .latencies
                .iter()
                .fold(BTreeMap::new(), |mut m, (_, st)| {
                    *m.entry(*st).or_default() += 1;
                    m
                });
        let proc_ms: Vec<f64> = previews.processor_s.iter().map(|x| x * 1000.0).collect();
        println!(
            "  preview, {} requests one after the other (POST /api/approval-requests/{{id}}/preview, \
             one worker): median {:.0} ms, p90 {:.0} ms, max {:.0} ms; answers {statuses:?}; \
             processor's own time median {:.0} ms",
            ms.len(),
            median(&ms),
            percentile(&ms, 90.0),
            ms.iter().copied().fold(0.0, f64::max),
            median(&proc_ms)
        );
        if let Some(w) = &previews.worker {
            print_per(
                "calls per preview (the worker's, over the wire):",
                &w.calls,
                ms.len(),
                &BTreeMap::new(),
            );
        }
        let checks: Vec<String> = previews.sample["preview"]["checks"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|c| format!("{}={}", c["name"].as_str().unwrap_or("?"), c["passed"]))
                    .collect()
            })
            .unwrap_or_default();
        println!("    a preview's checks: {}", checks.join(", "));
    }
    let n = stage.requests.len();
    print_per(
        &format!("api side, per execution job submitted ({n} in {submit_s:.1} s, 8 at a time):"),
        api,
        n,
        &BTreeMap::new(),
    );
    let statuses: BTreeMap<&str, usize> =
        phase.finished.values().fold(BTreeMap::new(), |mut m, st| {
            *m.entry(st.as_str()).or_default() += 1;
            m
        });
    println!(
        "  throughput: {} of {n} jobs finished {statuses:?} in {:.1} s with {} workers \
         (batch {}): {:.1} executions/s; EC2 afterwards: {done} of {seen} instances {TO} and running",
        phase.finished.len(),
        phase.wall_s,
        s.workers,
        s.batch,
        phase.finished.len() as f64 / phase.wall_s.max(0.001)
    );
    let secs: Vec<f64> = phase.handled.iter().map(|h| h.secs * 1000.0).collect();
    println!(
        "    one execution message: median {:.0} ms, p90 {:.0} ms, max {:.0} ms",
        median(&secs),
        percentile(&secs, 90.0),
        secs.iter().copied().fold(0.0, f64::max)
    );
    workers_line(phase);
    let (calls, poller) = merged(&phase.reports);
    print_per(
        &format!(
            "processor calls per execution (floor for EC2: {ec2_min} = AwsActuator::minimum_calls):"
        ),
        &calls,
        n,
        &ec2_by_op,
    );
    let ec2 = wire::calls(&calls, "EC2") as f64 / n.max(1) as f64;
    println!("    EC2 per execution: {ec2:.2} (minimum {ec2_min})");
    let es: Vec<String> = poller
        .iter()
        .map(|(k, st)| format!("{k} {}", st.calls))
        .collect();
    println!("  event source (Lambda's SQS polling): {}", es.join(", "));
    let bill: f64 = prices::bill(&calls)
        .iter()
        .chain(prices::bill(api).iter())
        .map(|l| l.usd)
        .sum();
    println!(
        "  request cost of the {n} executions at list price (DynamoDB + SQS, api and processor): \
         USD {bill:.4} ({:.6} each)",
        bill / n.max(1) as f64
    );
    calls
}

pub fn capped(
    s: &Settings,
    phase: &Phase,
    accounts: &HashMap<String, String>,
    boundary: DateTime<Utc>,
    done: usize,
    uncapped: &Tally,
) {
    let b = boundary.timestamp();
    // Executions per (hour, account): the succeeded job's message's clock.
    let mut ran: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    let mut deferred_before = 0;
    let mut deferred_after = 0;
    let mut first_at: Option<f64> = None;
    let mut last_before: f64 = 0.0;
    for h in &phase.handled {
        let hour = if h.now < b {
            "first hour"
        } else {
            "second hour"
        };
        match h.status.as_deref() {
            Some("succeeded") => {
                let account = accounts.get(&h.job_id).map_or("?", String::as_str);
                *ran.entry((hour, account)).or_default() += 1;
                first_at = Some(first_at.map_or(h.at_s, |f: f64| f.min(h.at_s)));
                if h.now < b {
                    last_before = last_before.max(h.at_s + h.secs);
                }
            }
            Some("running") if h.now < b => deferred_before += 1,
            Some("running") => deferred_after += 1,
            _ => {}
        }
    }
    let delays: Vec<i64> = phase
        .reports
        .iter()
        .flat_map(|r| r.delays.clone())
        .collect();
    let short: Vec<f64> = delays
        .iter()
        .filter(|d| **d < 900)
        .map(|d| *d as f64)
        .collect();
    let full = delays.iter().filter(|d| **d >= 900).count();
    println!(
        "  cap: CHANGES_PER_ACCOUNT_PER_HOUR={} (CHANGES_PER_HOUR=100000), {} requests over {} accounts; \
         the workers' clock started {} s before {} (offset {} s from the wall clock)",
        s.cap_per_account,
        accounts.len(),
        accounts.values().collect::<std::collections::BTreeSet<_>>().len(),
        s.cap_window_s,
        boundary.format("%H:%M UTC"),
        phase.clock_offset_s
    );
    for ((hour, account), n) in &ran {
        let over = if *n as u32 > s.cap_per_account {
            format!("  <-- {} over the cap", *n as u32 - s.cap_per_account)
        } else {
            String::new()
        };
        println!("    {hour}: account {account}: {n} executed{over}");
    }
    println!(
        "    deferred deliveries: {deferred_before} in the first hour, {deferred_after} in the second; \
         re-sent with DelaySeconds: {} short (median {:.0} s, max {:.0} s: to the hour's end), \
         {full} at 900 s (SQS's maximum; the job comes back, finds the cap closed, and is re-sent)",
        short.len(),
        median(&short),
        short.iter().copied().fold(0.0, f64::max)
    );
    let per_hour = s.cap_per_account as usize
        * accounts
            .values()
            .collect::<std::collections::BTreeSet<_>>()
            .len();
    println!(
        "    finished {} of {} ({done} instances {TO} in EC2); the first hour's quota took {:.1} s; \
         at {per_hour} an hour the {} need {} hours",
        phase.finished.len(),
        accounts.len(),
        last_before - first_at.unwrap_or(0.0),
        accounts.len(),
        accounts.len().div_ceil(per_hour.max(1))
    );
    workers_line(phase);
    let (calls, _) = merged(&phase.reports);
    let deliveries = phase.handled.len();
    println!(
        "    calls in this run: {} over {deliveries} deliveries ({} EC2, {} DynamoDB, {} SQS)",
        calls.values().map(|c| c.calls).sum::<u64>(),
        wire::calls(&calls, "EC2"),
        wire::calls(&calls, "DynamoDB"),
        wire::calls(&calls, "SQS")
    );
    let executed: usize = ran.values().sum();
    let deferrals = deferred_before + deferred_after;
    if deferrals > 0 {
        // What the deliveries cost beyond the executions, each execution
        // costing what it did without a cap.
        let n = s.n.max(1) as f64;
        let line: Vec<String> = ["EC2", "DynamoDB", "SQS"]
            .iter()
            .map(|svc| {
                let each = wire::calls(uncapped, svc) as f64 / n;
                let extra = wire::calls(&calls, svc) as f64 - each * executed as f64;
                format!("{svc} {:.2}", extra / deferrals as f64)
            })
            .collect();
        println!(
            "    calls per deferred delivery (beyond the executions, at the uncapped run's calls per execution): {}",
            line.join(", ")
        );
    }
}
