//! Load through the local gateway, as `make dev` runs it: REST clients and
//! WebSocket connections at once, for a fixed time, while a cycle runs on
//! the demo estate and approvers race to decide its requests.
//!
//! - `FINOPS_LOAD_REST` clients (default 200) loop over the read routes a
//!   dashboard uses; a tenth of them are approvers who approve pending
//!   requests (two approvers often pick the same one: the loser gets 409,
//!   which is the contract, counted apart from errors).
//! - `FINOPS_LOAD_WS` connections (default 2,000) subscribe to `approvals`
//!   and count every `approval_decision_made`; at the end each must have seen
//!   exactly one per successful approval (lost events = shortfall).
//! - `FINOPS_LOAD_SECONDS` (default 120).
//!
//! Prints p50 / p99 per route, errors (5xx, transport failures, any other
//! non-2xx), lost events, and the peak memory of the stack (this process's
//! high-water mark and the emulator's).

use finops_dev::Env;
use futures::{SinkExt, StreamExt};
use shared::domain::Role;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

#[derive(Default)]
struct Stats {
    latencies: Mutex<BTreeMap<&'static str, Vec<f64>>>,
    errors: Mutex<BTreeMap<String, u64>>,
    approved: AtomicU64,
    lost_races: AtomicU64,
}

impl Stats {
    fn record(&self, route: &'static str, ms: f64) {
        if let Ok(mut l) = self.latencies.lock() {
            l.entry(route).or_default().push(ms);
        }
    }

    fn error(&self, what: String) {
        if let Ok(mut e) = self.errors.lock() {
            *e.entry(what).or_default() += 1;
        }
    }
}

fn kb(pid: &str, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn raise_fd_limit() {
    // SAFETY: getrlimit/setrlimit on this process's own limits, with a
    // struct of the right type.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("load bench failed: {e}");
        std::process::exit(1);
    }
}

async fn rest_client(
    http: reqwest::Client,
    base: String,
    token: String,
    approver: bool,
    until: Instant,
    stats: Arc<Stats>,
) {
    let routes: [(&'static str, &str); 4] = [
        (
            "GET /approval-requests",
            "/api/approval-requests?status=pending&limit=20",
        ),
        ("GET /recommendations", "/api/recommendations"),
        ("GET /scheduler/status", "/api/scheduler/status"),
        ("GET /health", "/api/health"),
    ];
    let mut i = 0usize;
    while Instant::now() < until {
        let (route, path) = routes[i % routes.len()];
        i += 1;
        let t = Instant::now();
        let r = http
            .get(format!("{base}{path}"))
            .bearer_auth(&token)
            .send()
            .await;
        let body = match r {
            Ok(r) if r.status().is_success() => r.json::<serde_json::Value>().await.ok(),
            Ok(r) => {
                stats.error(format!("{route}: {}", r.status().as_u16()));
                None
            }
            Err(e) => {
                stats.error(format!("{route}: transport {}", e.is_timeout()));
                None
            }
        };
        stats.record(route, t.elapsed().as_secs_f64() * 1000.0);
        if !approver || route != "GET /approval-requests" {
            continue;
        }
        let Some(id) = body
            .as_ref()
            .and_then(|b| b["items"].as_array())
            .and_then(|items| items.get(i % items.len().max(1)))
            .and_then(|it| it["id"].as_str())
            .map(str::to_string)
        else {
            continue;
        };
        let t = Instant::now();
        let r = http
            .post(format!("{base}/api/approval-requests/{id}/approve"))
            .bearer_auth(&token)
            .json(&serde_json::json!({"reason": "load test"}))
            .send()
            .await;
        stats.record("POST /approve", t.elapsed().as_secs_f64() * 1000.0);
        match r {
            Ok(r) if r.status().is_success() => {
                stats.approved.fetch_add(1, Ordering::Relaxed);
            }
            Ok(r) if r.status().as_u16() == 409 => {
                stats.lost_races.fetch_add(1, Ordering::Relaxed);
            }
            Ok(r) => stats.error(format!("POST /approve: {}", r.status().as_u16())),
            Err(_) => stats.error("POST /approve: transport".into()),
        }
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn run() -> Result<(), String> {
    raise_fd_limit();
    let env = Env::process();
    let n_rest: usize = env
        .positive("FINOPS_LOAD_REST", 200, 5_000)
        .map_err(|e| e.to_string())?;
    let n_ws: usize = env
        .positive("FINOPS_LOAD_WS", 2_000, 20_000)
        .map_err(|e| e.to_string())?;
    let seconds: u64 = env
        .positive("FINOPS_LOAD_SECONDS", 120, 3_600)
        .map_err(|e| e.to_string())?;

    let (emulator, dev) = finops_dev::demo_stack("load").await?;
    let viewer = dev.token("watcher", &[Role::Viewer], chrono::Duration::hours(2));
    let approver = dev.token("approver", &[Role::Approver], chrono::Duration::hours(2));
    let operator = dev.token("operator", &[Role::Operator], chrono::Duration::hours(2));

    // The WebSocket audience, each counting the decisions it is told of.
    let setup = Instant::now();
    let decisions: Arc<Vec<AtomicU64>> = Arc::new((0..n_ws).map(|_| AtomicU64::new(0)).collect());
    let mut readers = Vec::new();
    for i in 0..n_ws {
        let url = format!("{}/?token={viewer}", dev.ws_url());
        let (mut ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .map_err(|e| format!("connection {i}: {e}"))?;
        ws.send(Message::text(
            serde_json::json!({"action": "subscribe", "topics": ["approvals"], "requestId": "s"})
                .to_string(),
        ))
        .await
        .map_err(|e| e.to_string())?;
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) if t.contains("\"ack\"") => break,
                Some(Ok(_)) => continue,
                other => return Err(format!("connection {i} subscribe: {other:?}")),
            }
        }
        let counts = decisions.clone();
        readers.push(tokio::spawn(async move {
            while let Some(Ok(m)) = ws.next().await {
                if let Message::Text(t) = m {
                    if t.contains("\"approval_decision_made\"") {
                        counts[i].fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    println!(
        "load: {n_ws} WebSocket connections subscribed in {:.1} s; {n_rest} REST clients for {seconds} s",
        setup.elapsed().as_secs_f64()
    );

    let http = shared::tls::http_client()
        .pool_max_idle_per_host(n_rest)
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| e.to_string())?;
    // A cycle runs under the load, opening the requests the approvers decide.
    let trigger = http
        .post(format!("{}/api/scheduler/trigger", dev.rest_url()))
        .bearer_auth(&operator)
        .json(&serde_json::json!({}))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    println!("  cycle triggered: {}", trigger.status());

    let stats = Arc::new(Stats::default());
    let until = Instant::now() + Duration::from_secs(seconds);
    let mut clients = Vec::new();
    for c in 0..n_rest {
        let is_approver = c % 10 == 0;
        clients.push(tokio::spawn(rest_client(
            http.clone(),
            dev.rest_url(),
            if is_approver {
                approver.clone()
            } else {
                viewer.clone()
            },
            is_approver,
            until,
            stats.clone(),
        )));
    }
    let emulator_pid = emulator.pid().map(|p| p.to_string()).unwrap_or_default();
    let mut emulator_peak = 0u64;
    while Instant::now() < until {
        emulator_peak = emulator_peak.max(kb(&emulator_pid, "VmRSS:"));
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for c in clients {
        let _ = c.await;
    }
    // Pushes still in flight reach their clients.
    let expected = stats.approved.load(Ordering::Relaxed);
    let drain = Instant::now();
    while drain.elapsed() < Duration::from_secs(30)
        && decisions
            .iter()
            .any(|d| d.load(Ordering::Relaxed) < expected)
    {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let lost: u64 = decisions
        .iter()
        .map(|d| expected.saturating_sub(d.load(Ordering::Relaxed)))
        .sum();
    let extra: u64 = decisions
        .iter()
        .map(|d| d.load(Ordering::Relaxed).saturating_sub(expected))
        .sum();

    println!(
        "  {:<24} {:>8} {:>9} {:>9}",
        "route", "requests", "p50 ms", "p99 ms"
    );
    let latencies = stats
        .latencies
        .lock()
        .map(|l| l.clone())
        .unwrap_or_default();
    let mut total = 0usize;
    for (route, mut ms) in latencies {
        ms.sort_by(f64::total_cmp);
        total += ms.len();
        println!(
            "  {route:<24} {:>8} {:>9.1} {:>9.1}",
            ms.len(),
            percentile(&ms, 0.5),
            percentile(&ms, 0.99)
        );
    }
    let errors = stats.errors.lock().map(|e| e.clone()).unwrap_or_default();
    println!(
        "  {total} requests ({:.0}/s); approvals {expected}, lost races (409) {}; errors {}: {errors:?}",
        total as f64 / seconds as f64,
        stats.lost_races.load(Ordering::Relaxed),
        errors.values().sum::<u64>()
    );
    println!(
        "  events: {} approval_decision_made expected per connection x {n_ws}; lost {lost}, duplicated {extra}",
        expected
    );
    println!(
        "  peak memory: stack process {:.0} MB (VmHWM), emulator {:.0} MB (max RSS sampled)",
        kb("self", "VmHWM:") as f64 / 1024.0,
        emulator_peak as f64 / 1024.0
    );
    for r in readers {
        r.abort();
    }
    dev.shutdown().await;
    Ok(())
}
