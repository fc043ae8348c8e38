//! Fan-out through the local API Gateway: one event published by the real
//! WebSocket notifier to 1,000 and then 10,000 subscribed connections.
//!
//! Two processes, so the gateway's memory is its own: this one (the
//! emulator, the clients, the notifier) and a child running the gateway with
//! the real ws-connect / ws-message / ws-disconnect handlers (this same
//! binary, re-executed with FANOUT_ROLE=gateway). Clients are real
//! WebSocket clients on loopback; each connects with a token through
//! $connect and subscribes with a `subscribe` frame, as a browser would.
//!
//! Prints, per size: time from publish to the last delivery, deliveries
//! lost (must be 0), the notifier's calls, and the gateway's peak RSS.

use finops_dev::{function_vars, Env, Functions, WsFunctions};
use finops_local::gateway::GatewayConfig;
use finops_local::{Emulator, LocalStack, Template};
use futures::{SinkExt, StreamExt};
use shared::domain::Role;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

/// Connections per round; `FANOUT_SIZES=100,500` overrides (ascending).
const SIZES: [usize; 2] = [1_000, 10_000];

fn sizes() -> Vec<usize> {
    std::env::var("FANOUT_SIZES")
        .ok()
        .map(|v| {
            v.split(',')
                .filter_map(|n| n.trim().parse().ok())
                .collect::<Vec<usize>>()
        })
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| SIZES.to_vec())
}
/// Connections opened at once while setting up (the emulator is the bottleneck).
const CONNECT_CONCURRENCY: usize = 64;
/// The whole benchmark gives up after this.
const BUDGET: Duration = Duration::from_secs(900);

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    if std::env::var("FANOUT_ROLE").as_deref() == Ok("gateway") {
        runtime.block_on(gateway_child());
        return;
    }
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    match runtime.block_on(async { tokio::time::timeout(BUDGET, bench()).await }) {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            eprintln!("websocket fan-out benchmark failed: {e}");
            std::process::exit(1);
        }
        Err(_) => {
            eprintln!(
                "websocket fan-out benchmark: over its {} s budget",
                BUDGET.as_secs()
            );
            std::process::exit(1);
        }
    }
}

/// The child: the gateway with the real handlers, configured from the
/// environment the parent resolved from template.yaml.
async fn gateway_child() {
    let aws = shared::config::load_sdk_config().await;
    let gateway = Arc::new(
        WsFunctions::from_env(&Env::process(), &aws)
            .expect("the WebSocket functions' configuration"),
    )
    .gateway(GatewayConfig::default())
    .expect("the WebSocket routes of template.yaml");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let handle = gateway.spawn(listener).expect("the gateway starts");
    println!("READY {}", handle.addr());
    // Runs until the parent closes our stdin (or dies).
    let mut line = String::new();
    let _ = tokio::task::spawn_blocking(move || std::io::stdin().read_line(&mut line)).await;
    handle.shutdown().await;
}

/// Raises the soft open-files limit towards `wanted` (at most the hard limit).
fn raise_nofile(wanted: u64) -> u64 {
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 0;
        }
        let target = wanted.min(lim.rlim_max);
        if lim.rlim_cur < target {
            lim.rlim_cur = target;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        }
        lim.rlim_cur
    }
}

fn status_kb(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

struct Receivers {
    /// Clients that got the event of the current round.
    got: AtomicUsize,
    last: Mutex<Option<Instant>>,
}

async fn bench() -> Result<(), String> {
    let sizes = sizes();
    let largest = *sizes.iter().max().unwrap_or(&0);
    let limit = raise_nofile(largest as u64 + 2_000);
    if limit < largest as u64 + 200 {
        return Err(format!(
            "the open-files limit is {limit}; {largest} connections need about {} (ulimit -Hn)",
            largest + 200
        ));
    }
    let emulator = Emulator::start().map_err(|e| e.to_string())?;
    let aws = finops_local::sdk_config(&emulator.endpoint).await;
    let template = Template::load().map_err(|e| e.to_string())?;
    let stack = LocalStack::create(&aws, &emulator.endpoint, &template, "fan")
        .await
        .map_err(|e| e.to_string())?;
    let secret = finops_dev::random_secret();
    let mut extra: BTreeMap<String, String> = [
        ("AUTH_ISSUER", finops_dev::LOCAL_ISSUER.to_string()),
        ("AUTH_AUDIENCE", finops_dev::LOCAL_AUDIENCE.to_string()),
        ("AUTH_HS256_SECRET", secret.clone()),
        ("PAGE_TOKEN_SECRET", finops_dev::random_secret()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();

    // The gateway process, with the WebSocket functions' environment.
    let child_env = function_vars(&stack, &["WsMessageFunction", "WsConnectFunction"], &extra);
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut child = Command::new(exe)
        .env("FANOUT_ROLE", "gateway")
        .envs(&child_env)
        .env("AWS_ENDPOINT_URL", &emulator.endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("starting the gateway process: {e}"))?;
    let pid = child.id();
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let addr = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find_map(|l| l.strip_prefix("READY ").map(str::to_string))
        .ok_or("the gateway process did not start")?;
    let ws_url = format!("ws://{addr}");
    extra.insert("WEBSOCKET_ENDPOINT".into(), format!("http://{addr}"));
    let functions = Functions::build(&stack, &extra)?;
    let notifier = functions.notifier();
    let config = finops_dev::local_auth(&secret);
    println!(
        "websocket fan-out: gateway pid {pid} at {ws_url}, baseline RSS {} MB",
        status_kb(pid, "VmRSS:") / 1024
    );

    let receivers = Arc::new(Receivers {
        got: AtomicUsize::new(0),
        last: Mutex::new(None),
    });
    let round = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for &size in &sizes {
        let setup = Instant::now();
        let token = shared::auth::LocalClaims::new(
            &config,
            "bench",
            &[Role::Viewer],
            chrono::Utc::now(),
            chrono::Duration::hours(2),
        )
        .sign_hs256(secret.as_bytes())
        .map_err(|e| e.to_string())?;
        let need = size - clients.len();
        let opened = futures::stream::iter(0..need)
            .map(|_| open_client(&ws_url, &token, receivers.clone(), round.clone()))
            .buffer_unordered(CONNECT_CONCURRENCY)
            .collect::<Vec<_>>()
            .await;
        for c in opened {
            clients.push(c?);
        }
        println!(
            "  {size:>6} connections subscribed to 'jobs' in {:.1} s",
            setup.elapsed().as_secs_f64()
        );

        let r = round.fetch_add(1, Ordering::SeqCst) + 1;
        receivers.got.store(0, Ordering::SeqCst);
        *receivers.last.lock().unwrap_or_else(|e| e.into_inner()) = None;
        let event = shared::notify::Event::JobProgress {
            job_id: format!("bench-{r}"),
            stage: shared::domain::Stage::Approvals,
            done: r as u64,
            total: sizes.len() as u64,
            percent: 0.0,
        };
        // The notifier's own first step, timed alone: the emulator's GSI
        // Query for the topic's subscribers, every page, as it pages (1,000).
        let lookup = Instant::now();
        let store = functions.connections();
        let mut token: Option<String> = None;
        let mut found = 0;
        loop {
            let page = store
                .subscribers(
                    &shared::domain::Topic::Jobs,
                    Some(1000),
                    token.as_deref(),
                    chrono::Utc::now(),
                )
                .await
                .map_err(|e| e.to_string())?;
            found += page.items.len();
            token = page.next_token;
            if token.is_none() {
                break;
            }
        }
        let lookup = lookup.elapsed();
        let started = Instant::now();
        notifier.publish(&event).await.map_err(|e| e.to_string())?;
        let published = started.elapsed();
        let _ = tokio::time::timeout(Duration::from_secs(60), async {
            while receivers.got.load(Ordering::SeqCst) < size {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
        .await;
        let got = receivers.got.load(Ordering::SeqCst);
        let last = receivers
            .last
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .map(|t| t.duration_since(started))
            .unwrap_or_default();
        println!(
            "  publish to {size:>6}: last delivery after {:>7.1} ms (publish call {:.1} ms; of which the emulator's subscriber Query alone takes {:.1} ms for {found}), {:.0} deliveries/s, lost {}, gateway peak RSS {} MB",
            last.as_secs_f64() * 1e3,
            published.as_secs_f64() * 1e3,
            lookup.as_secs_f64() * 1e3,
            got as f64 / last.as_secs_f64().max(1e-9),
            size - got.min(size),
            status_kb(pid, "VmHWM:") / 1024
        );
        if got < size {
            return Err(format!("{} deliveries lost", size - got));
        }
    }
    drop(clients);
    drop(child.stdin.take());
    let _ = child.wait();
    Ok(())
}

type Client = tokio::task::JoinHandle<()>;

/// Connects, subscribes to `jobs`, then counts the event of each round once.
async fn open_client(
    url: &str,
    token: &str,
    receivers: Arc<Receivers>,
    round: Arc<AtomicUsize>,
) -> Result<Client, String> {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("{url}/?token={token}"))
        .await
        .map_err(|e| format!("connect: {e}"))?;
    ws.send(Message::text(r#"{"action":"subscribe","topics":["jobs"]}"#))
        .await
        .map_err(|e| format!("subscribe: {e}"))?;
    match ws.next().await {
        Some(Ok(Message::Text(t))) if t.contains(r#""ack""#) => {}
        other => return Err(format!("subscribe answered {other:?}")),
    }
    Ok(tokio::spawn(async move {
        let mut seen = 0;
        while let Some(Ok(m)) = ws.next().await {
            if let Message::Text(t) = m {
                let r = round.load(Ordering::SeqCst);
                if r > seen && t.contains(&format!("bench-{r}")) {
                    seen = r;
                    let now = Instant::now();
                    {
                        let mut last = receivers.last.lock().unwrap_or_else(|e| e.into_inner());
                        if last.is_none_or(|l| l < now) {
                            *last = Some(now);
                        }
                    }
                    receivers.got.fetch_add(1, Ordering::SeqCst);
                }
            }
        }
    }))
}
