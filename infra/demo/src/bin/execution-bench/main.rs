//! `make bench` (execution): approved EC2 rightsizings (m5.xlarge ->
//! m5.large), `FINOPS_BENCH_EXECUTIONS` of them (default 1,000) over
//! `FINOPS_BENCH_EXEC_ACCOUNTS` accounts (default 2: the management account
//! and one member reached by AssumeRole), carried out through the execution
//! job path: approval requests opened and approved by `shared::approvals`,
//! one execution job each submitted as the api does
//! (`shared::execution::job::execution_job` + `shared::jobs::submit`), SQS,
//! and `FINOPS_BENCH_WORKERS` processor workers (default 4; child processes
//! of this binary, `--worker`) with the AWS actuator; EC2 in the emulator
//! is the judge.
//!
//! Three parts:
//! 1. previews: `FINOPS_BENCH_PREVIEWS` (default 10) requests previewed one
//!    after the other through `POST /api/approval-requests/{id}/preview`
//!    (the api function behind the local REST gateway, which waits for the
//!    processor's answer), one worker;
//! 2. throughput: every request executed with no binding cap;
//! 3. the cap: a fresh stage, `CHANGES_PER_ACCOUNT_PER_HOUR` =
//!    `FINOPS_BENCH_CAP_PER_ACCOUNT` (default 100). The workers' clock is
//!    set `FINOPS_BENCH_CAP_WINDOW_S` (default 300: one pass over 1,000
//!    queued jobs takes about 210 s here) seconds before the end of an
//!    hour, so the first hour's quota, the deferrals to the next hour
//!    and the second hour's quota are seen without waiting an hour; it
//!    stops when the rest are deferred again (SQS holds each deferral at
//!    most 900 s).

mod report;
mod setup;

use chrono::{DurationRound, Utc};
use finops_demo::bench::wire::{Tally, Wire};
use finops_demo::bench::worker::{self, Handled, Line, WorkerReport, Workers};
use finops_demo::bench::{env_or, status_kb};
use setup::Stage;
use shared::config::Env;
use shared::domain::{JobMessage, Role};
use std::collections::{BTreeSet, HashMap};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn main() -> ExitCode {
    finops_demo::bench::run("execution bench", "--worker", worker_child(), bench())
}

/// The bench's settings.
pub struct Settings {
    pub n: usize,
    pub accounts: usize,
    pub workers: usize,
    pub batch: usize,
    pub previews: usize,
    pub cap_per_account: u32,
    pub cap_window_s: i64,
    pub idle_s: u64,
    pub timeout_s: u64,
}

/// What one run of the workers came to.
pub struct Phase {
    pub wall_s: f64,
    pub reports: Vec<WorkerReport>,
    pub handled: Vec<Handled>,
    /// Jobs that finished, by status.
    pub finished: HashMap<String, String>,
    pub clock_offset_s: i64,
}

async fn bench() -> Result<(), String> {
    let s = Settings {
        n: env_or("FINOPS_BENCH_EXECUTIONS", 1000),
        accounts: env_or("FINOPS_BENCH_EXEC_ACCOUNTS", 2).max(1),
        workers: env_or("FINOPS_BENCH_WORKERS", 4).max(1),
        batch: env_or("FINOPS_BENCH_BATCH", 10).max(1),
        previews: env_or("FINOPS_BENCH_PREVIEWS", 10),
        cap_per_account: env_or("FINOPS_BENCH_CAP_PER_ACCOUNT", 100).max(1),
        cap_window_s: env_or("FINOPS_BENCH_CAP_WINDOW_S", 300).clamp(10, 3000),
        idle_s: env_or("FINOPS_BENCH_IDLE_S", 30),
        timeout_s: env_or("FINOPS_BENCH_TIMEOUT_S", 1800),
    };
    let machine = finops_demo::bench::machine();
    println!();
    println!(
        "execution bench: {} EC2 rightsizings ({} -> {}) over {} accounts, {} workers, batch {}; {machine}",
        s.n,
        setup::FROM,
        setup::TO,
        s.accounts,
        s.workers,
        s.batch
    );

    // 1 and 2: previews, then every request executed without a binding cap.
    let stage = setup::stage(s.n, s.accounts, 100).await?;
    println!(
        "  setup (not measured): {} instances, {} approved requests in {:.1} s",
        stage.instances.len(),
        stage.requests.len(),
        stage.setup_s
    );
    let envs = worker_env(&stage, &s, 100_000, 0);
    let previews = previews(&stage, &s, &envs).await?;
    let api = Wire::counting();
    let t = Instant::now();
    let job_ids = setup::submit_all(&stage, &api, &stage.requests).await?;
    let submit_s = t.elapsed().as_secs_f64();
    let phase = run_workers(&s, &envs, &job_ids, None).await?;
    let (done, seen) = setup::rightsized(&stage).await?;
    let per_execution = report::throughput(
        &s,
        &stage,
        &previews,
        &api.tally(),
        submit_s,
        &phase,
        done,
        seen,
    );
    drop(stage);

    // 3: the per-account cap.
    let stage = setup::stage(s.n, s.accounts, 100).await?;
    let now = Utc::now();
    let next_hour = now
        .duration_trunc(chrono::Duration::hours(1))
        .unwrap_or(now)
        + chrono::Duration::hours(1);
    let start = next_hour - chrono::Duration::seconds(s.cap_window_s);
    let offset = (start - now).num_seconds();
    let envs = worker_env(&stage, &s, s.cap_per_account, offset);
    let job_ids = setup::submit_all(&stage, &Wire::counting(), &stage.requests).await?;
    let accounts: HashMap<String, String> = job_ids
        .iter()
        .cloned()
        .zip(stage.requests.iter().map(|r| r.2.clone()))
        .collect();
    let phase = run_workers(&s, &envs, &job_ids, Some(next_hour.timestamp())).await?;
    let (done, _) = setup::rightsized(&stage).await?;
    report::capped(&s, &phase, &accounts, next_hour, done, &per_execution);
    println!("  machine at the end: {}", finops_demo::bench::machine());
    Ok(())
}

/// The processor's environment (template.yaml's, organization mode, the
/// caps) and the worker's settings.
fn worker_env(stage: &Stage, s: &Settings, per_account: u32, offset: i64) -> Vec<(String, String)> {
    let mut vars = stage.stack.function_env("ProcessorFunction");
    vars.insert("REGIONS".into(), "us-east-1".into());
    vars.insert("ACCOUNTS_MODE".into(), "organization".into());
    vars.insert("MEMBER_ROLE_NAME".into(), setup::ROLE.into());
    vars.insert("CHANGES_PER_HOUR".into(), "100000".into());
    vars.insert(
        "CHANGES_PER_ACCOUNT_PER_HOUR".into(),
        per_account.to_string(),
    );
    let mut envs: Vec<(String, String)> = vars.into_iter().collect();
    for (k, v) in [
        ("AWS_ENDPOINT_URL", stage.emulator.endpoint.clone()),
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("AWS_REGION", "us-east-1".into()),
        (
            "FINOPS_BENCH_QUEUE_URL",
            stage.stack.queue_url("JobsQueue").to_string(),
        ),
        (
            "FINOPS_BENCH_QUEUE_ARN",
            stage.stack.queue_arn("JobsQueue").to_string(),
        ),
        ("FINOPS_BENCH_BATCH", s.batch.to_string()),
        ("FINOPS_BENCH_CLOCK_OFFSET_S", offset.to_string()),
    ] {
        envs.push((k.to_string(), v));
    }
    envs
}

fn stop_file(tag: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!(
        "finops-execution-bench-{}-{tag}.stop",
        std::process::id()
    ))
}

/// Runs `s.workers` workers until every job of `jobs` finished or, with
/// `boundary` (the hour the cap opens again), until they have been idle
/// for `s.idle_s` after it.
async fn run_workers(
    s: &Settings,
    envs: &[(String, String)],
    jobs: &[String],
    boundary: Option<i64>,
) -> Result<Phase, String> {
    let wanted: BTreeSet<&String> = jobs.iter().collect();
    let mut running = Workers::spawn(s.workers, &["--worker"], envs, &stop_file("run"))?;
    let mut handled = Vec::new();
    let mut finished: HashMap<String, String> = HashMap::new();
    let mut last_event = Instant::now();
    let mut after_boundary = false;
    let mut wall_s = 0.0;
    loop {
        match running.next(Duration::from_millis(500)).await {
            Some(Line::Event(h)) => {
                last_event = Instant::now();
                if boundary.is_some_and(|b| h.now >= b) {
                    after_boundary = true;
                }
                if let Some(st) = h.status.as_deref().filter(|st| *st != "running") {
                    if wanted.contains(&h.job_id) && !finished.contains_key(&h.job_id) {
                        finished.insert(h.job_id.clone(), st.to_string());
                        wall_s = running.started.elapsed().as_secs_f64();
                        if finished.len().is_multiple_of(100) {
                            eprintln!(
                                "    [workers] {} of {} finished, {:.1} s",
                                finished.len(),
                                jobs.len(),
                                wall_s
                            );
                        }
                    }
                }
                handled.push(h);
            }
            Some(Line::Exited(k)) => return Err(format!("worker {k} exited early")),
            _ => {}
        }
        if finished.len() == wanted.len() {
            break;
        }
        let idle = last_event.elapsed() >= Duration::from_secs(s.idle_s);
        if boundary.is_some() && after_boundary && idle {
            break;
        }
        if running.started.elapsed() >= Duration::from_secs(s.timeout_s) {
            eprintln!("    [workers] stopped after {} s", s.timeout_s);
            break;
        }
    }
    let (reports, late) = running.finish().await;
    handled.extend(late);
    Ok(Phase {
        wall_s,
        reports,
        handled,
        finished,
        clock_offset_s: envs
            .iter()
            .find(|(k, _)| k == "FINOPS_BENCH_CLOCK_OFFSET_S")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0),
    })
}

/// What the previews measured.
pub struct Previews {
    /// Seconds from the POST to the api's answer, and its status.
    pub latencies: Vec<(f64, u16)>,
    /// The processor's time on each preview message.
    pub processor_s: Vec<f64>,
    pub worker: Option<WorkerReport>,
    /// A sample preview body.
    pub sample: serde_json::Value,
}

/// `s.previews` previews, one after the other, through the api's route.
async fn previews(
    stage: &Stage,
    s: &Settings,
    envs: &[(String, String)],
) -> Result<Previews, String> {
    const SECRET: &str = "execution-bench-signing-key-0123456789abcdef";
    let mut out = Previews {
        latencies: Vec::new(),
        processor_s: Vec::new(),
        worker: None,
        sample: serde_json::Value::Null,
    };
    if s.previews == 0 {
        return Ok(out);
    }
    let mut vars = stage.stack.function_env("ApiFunction");
    for (k, v) in [
        ("AUTH_ISSUER", "bench"),
        ("AUTH_AUDIENCE", "finops-lambda"),
        ("AUTH_HS256_SECRET", SECRET),
        ("PAGE_TOKEN_SECRET", SECRET),
    ] {
        vars.insert(k.into(), v.into());
    }
    let config = api::Config::from_env(&api::Env::of(vars)).map_err(|e| e.to_string())?;
    let app = Arc::new(api::App::new(
        config,
        &stage.aws,
        Box::new(shared::notify::LogNotifier),
    ));
    let token = shared::auth::LocalClaims::new(
        &app.config.auth,
        "approver",
        &[Role::Approver],
        Utc::now(),
        chrono::Duration::hours(1),
    )
    .sign_hs256(SECRET.as_bytes())
    .map_err(|e| e.to_string())?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let base = format!(
        "http://{}/api",
        listener.local_addr().map_err(|e| e.to_string())?
    );
    let served = app.clone();
    let server = tokio::spawn(finops_local::rest::serve_rest(listener, move |req| {
        let app = served.clone();
        async move { api::handle(&app, req).await }
    }));
    let mut one = Workers::spawn(1, &["--worker"], envs, &stop_file("preview"))?;
    let http = shared::tls::http_client()
        .build()
        .map_err(|e| e.to_string())?;
    for (id, _, _) in stage.requests.iter().take(s.previews) {
        let t = Instant::now();
        let answer = http
            .post(format!("{base}/approval-requests/{id}/preview"))
            .bearer_auth(&token)
            .send()
            .await
            .map_err(|e| format!("preview: {e}"))?;
        let status = answer.status().as_u16();
        let body: serde_json::Value = answer.json().await.unwrap_or_default();
        out.latencies.push((t.elapsed().as_secs_f64(), status));
        if out.sample.is_null() {
            out.sample = body;
        }
        while let Some(line) = one.next(Duration::from_millis(50)).await {
            if let Line::Event(h) = line {
                out.processor_s.push(h.secs);
            }
        }
    }
    let (mut reports, late) = one.finish().await;
    out.processor_s.extend(late.iter().map(|h| h.secs));
    out.worker = reports.pop();
    server.abort();
    Ok(out)
}

/// A worker: the processor over the wire.
async fn worker_child() -> Result<(), String> {
    let rss_start_kb = status_kb("VmRSS:");
    let env = Env::process();
    let plain = shared::config::load_sdk_config().await;
    let wire = Wire::counting();
    let aws = wire.config(&plain);
    let config = processor::Config::from_env(&env).map_err(|e| e.to_string())?;
    let p = processor::Processor::new(config, &aws, Box::new(shared::notify::LogNotifier));
    let report = worker::run(&p, &wire, &plain, rss_start_kb, label).await?;
    worker::print_report(&report)
}

fn label(m: &JobMessage) -> String {
    format!("{:?}", m.kind)
}

/// Calls per execution of `tally`, per `"Service:Operation"`.
pub fn per(tally: &Tally, n: usize) -> Vec<(String, u64, f64)> {
    tally
        .iter()
        .map(|(k, s)| (k.clone(), s.calls, s.calls as f64 / n.max(1) as f64))
        .collect()
}
