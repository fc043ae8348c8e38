//! Trigger-to-completion latency of a cycle on the demo estate, through the
//! stack `make dev` runs: the emulator, the SQS event source long-polling as
//! make dev does (20 s waits, two pollers), the real scheduler, processor and
//! REST API. The first cycle is asked for as a user does (`POST
//! /api/scheduler/trigger`), the rest as the schedule does (one event per
//! fire time, so each is its own job). For each: the wall time from the
//! trigger to the job's `succeeded` (read with `GET /api/jobs/{id}`), against
//! the sum of the stages the cycle recorded, which is the work itself; the
//! difference is queueing. Target: under 2 s for the demo estate.
//!
//! `FINOPS_BENCH_RUNS` (default 5) cycles.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use finops_dev::{Dev, Env};
use shared::domain::Role;
use shared::store::CycleRunStore;
use std::time::{Duration, Instant};

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("trigger latency bench failed: {e}");
        std::process::exit(1);
    }
}

async fn job_status(http: &reqwest::Client, dev: &Dev, token: &str, id: &str) -> String {
    let r = http
        .get(format!("{}/api/jobs/{id}", dev.rest_url()))
        .bearer_auth(token)
        .send()
        .await;
    match r {
        Ok(r) => r
            .json::<serde_json::Value>()
            .await
            .ok()
            .and_then(|v| v["status"].as_str().map(str::to_string))
            .unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// Polls the job every 20 ms until it has finished; the time it took.
async fn until_finished(
    http: &reqwest::Client,
    dev: &Dev,
    token: &str,
    id: &str,
    from: Instant,
) -> Result<(Duration, String), String> {
    loop {
        let status = job_status(http, dev, token, id).await;
        if matches!(status.as_str(), "succeeded" | "failed" | "skipped") {
            return Ok((from.elapsed(), status));
        }
        if from.elapsed() > Duration::from_secs(120) {
            return Err(format!("job {id} still '{status}' after 120 s"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn run() -> Result<(), String> {
    let runs: usize = Env::process()
        .get("FINOPS_BENCH_RUNS")
        .and_then(|n| n.parse().ok())
        .unwrap_or(5);
    let (_emulator, dev) = finops_dev::demo_stack("lat").await?;
    let seeded = dev.seeded.as_ref().map_or(0, |s| s.resources);
    println!("trigger -> succeeded, demo estate ({seeded} resources), {runs} cycles:");
    let token = dev.token("bench", &[Role::Operator], chrono::Duration::hours(1));
    let http = shared::tls::http_client()
        .build()
        .map_err(|e| e.to_string())?;
    let fixture = include_str!("../../events/scheduler/scheduled-event.json");
    let mut latencies = Vec::new();
    for i in 0..runs {
        let t = Instant::now();
        let job_id = if i == 0 {
            let r = http
                .post(format!("{}/api/scheduler/trigger", dev.rest_url()))
                .bearer_auth(&token)
                .json(&serde_json::json!({}))
                .send()
                .await
                .map_err(|e| e.to_string())?;
            let accepted = t.elapsed();
            let body: serde_json::Value = r.json().await.map_err(|e| e.to_string())?;
            println!(
                "  trigger answered in {:.0} ms",
                accepted.as_secs_f64() * 1000.0
            );
            body["jobId"].as_str().unwrap_or_default().to_string()
        } else {
            let mut event: EventBridgeEvent =
                serde_json::from_str(fixture).map_err(|e| e.to_string())?;
            event.time = Some(chrono::Utc::now() + chrono::Duration::hours(i as i64));
            dev.functions
                .scheduler
                .handle(event, chrono::Utc::now())
                .await
                .map_err(|e| e.to_string())?
                .job_id
        };
        let (took, status) = until_finished(&http, &dev, &token, &job_id, t).await?;
        let run = dev
            .functions
            .processor
            .cycles
            .recent_runs(5)
            .await
            .map_err(|e| e.to_string())?
            .into_iter()
            .find(|r| r.job_id == job_id);
        let work_ms: u64 = run
            .as_ref()
            .map_or(0, |r| r.stages.iter().map(|s| s.duration_ms).sum());
        println!(
            "  cycle {}: {status} in {:.2} s (stages recorded {:.2} s, queueing {:.2} s)",
            i + 1,
            took.as_secs_f64(),
            work_ms as f64 / 1000.0,
            (took.as_millis() as f64 - work_ms as f64).max(0.0) / 1000.0
        );
        if let Some(r) = &run {
            let stages: Vec<String> = r
                .stages
                .iter()
                .map(|s| format!("{:?} {} ms", s.stage, s.duration_ms))
                .collect();
            println!("    stages: {}", stages.join(", "));
        }
        latencies.push(took.as_secs_f64());
    }
    latencies.sort_by(f64::total_cmp);
    let median = latencies[latencies.len() / 2];
    println!(
        "  median {:.2} s, max {:.2} s (target: under 2 s)",
        median,
        latencies.last().copied().unwrap_or_default()
    );
    dev.shutdown().await;
    Ok(())
}
