//! `make bench` (discovery): one optimisation cycle in organization mode
//! over an estate created through the AWS APIs in the emulator: an
//! Organization of `FINOPS_BENCH_ACCOUNTS` accounts (default 5: the
//! management account and members reached by AssumeRole of the member
//! role) and 4 regions, `FINOPS_BENCH_DISCOVERY_RESOURCES` resources
//! (default 10,000) spread evenly over the (account, region) units.
//!
//! The real path: scheduled event -> scheduler -> job + SQS -> processor
//! workers, each (account, region) its own SQS message, discovered through
//! the services' APIs and analysed, the last one running the final stage.
//! The workers (`FINOPS_BENCH_WORKERS`, default 4, as Lambda's concurrency)
//! are child processes of this binary (`--worker`), so each peak RSS is a
//! worker's own. Every request a worker sends is counted on the wire
//! (`finops_demo::bench::wire`), including the member accounts' clients
//! and STS, and compared with the minimum pagination allows.
//!
//! CloudWatch is the in-process synthetic one, per (account, region), with
//! 14 days of hourly metrics for exactly the unit's resources: the
//! emulator cannot hold 10,000 resources' points (docs/benchmarks.md).

mod fleet;
mod report;

use chrono::{DateTime, DurationRound, Utc};
use finops_demo::bench::org;
use finops_demo::bench::wire::{CloudWatchUnits, Wire};
use finops_demo::bench::worker::{self, Line, Workers};
use finops_demo::bench::{env_or, status_kb};
use finops_local::synthetic::SyntheticCloudWatch;
use finops_local::{Emulator, LocalStack, Template};
use fleet::{Plan, UnitFleet, REGIONS};
use shared::config::Env;
use shared::domain::JobMessage;
use shared::dynamo::DynamoJobs;
use shared::queue::SqsJobQueue;
use shared::store::JobStore;
use std::collections::HashMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Days of hourly metrics the synthetic CloudWatch holds.
pub const DAYS: i64 = 14;
/// The member role, as template.yaml's MemberRoleName defaults it.
const ROLE: &str = "FinOpsDiscoveryRole";

fn main() -> ExitCode {
    finops_demo::bench::run("discovery bench", "--worker", worker_child(), bench())
}

/// What the parent learnt, for the report.
pub struct Run {
    pub resources_target: usize,
    pub accounts: usize,
    pub workers: usize,
    pub batch: usize,
    pub fleet: Vec<UnitFleet>,
    pub setup_s: f64,
    pub org_s: f64,
    pub wall_s: f64,
    pub now: DateTime<Utc>,
    pub job_id: String,
    pub reports: Vec<worker::WorkerReport>,
    pub handled: Vec<worker::Handled>,
    pub machine_start: String,
    pub machine_end: String,
}

async fn bench() -> Result<(), String> {
    let total: usize = env_or("FINOPS_BENCH_DISCOVERY_RESOURCES", 10_000);
    let accounts: usize = env_or("FINOPS_BENCH_ACCOUNTS", 5).max(1);
    let workers: usize = env_or("FINOPS_BENCH_WORKERS", 4).max(1);
    let batch: usize = env_or("FINOPS_BENCH_BATCH", 1).max(1);
    let run_batch: usize = env_or("FINOPS_BENCH_RUN_BATCH", 100).max(1);
    let machine_start = finops_demo::bench::machine();
    let bench_start = Instant::now();
    let emulator = Emulator::start().map_err(|e| e.to_string())?;
    let aws = finops_local::sdk_config(&emulator.endpoint).await;
    let template = Template::load().map_err(|e| e.to_string())?;
    let stack = LocalStack::create(&aws, &emulator.endpoint, &template, "bench")
        .await
        .map_err(|e| e.to_string())?;

    let t = Instant::now();
    let organization = org::create(&aws, accounts - 1, ROLE).await?;
    let org_s = t.elapsed().as_secs_f64();
    println!();
    println!(
        "discovery bench: {total} resources over {accounts} accounts x {} regions; {machine_start}",
        REGIONS.len()
    );
    println!(
        "  organization: management {} and {} member account(s) with {ROLE}, in {org_s:.1} s",
        organization.management.id,
        organization.members.len()
    );

    let t = Instant::now();
    let units: Vec<(&org::Account, &str)> = organization
        .accounts()
        .into_iter()
        .flat_map(|a| REGIONS.iter().map(move |r| (a, *r)))
        .collect();
    let shares = fleet::split(total, units.len());
    let mut fleet = Vec::new();
    for ((account, region), share) in units.iter().zip(&shares) {
        let plan = Plan::of(*share);
        let unit =
            fleet::create_unit(&account.admin, &account.id, region, &plan, run_batch).await?;
        eprintln!(
            "    [setup] {}/{region}: {} resources of {} planned ({} instances in {} RunInstances) in {:.1} s",
            account.id,
            unit.resources.len(),
            plan.total(),
            unit.count(shared::domain::Service::Ec2),
            unit.run_instances_calls,
            unit.created_s
        );
        fleet.push(unit);
    }
    let setup_s = t.elapsed().as_secs_f64();
    let created: usize = fleet.iter().map(|u| u.resources.len()).sum();
    println!(
        "  estate created through the APIs: {created} resources in {setup_s:.1} s ({:.1} ms a resource)",
        setup_s * 1000.0 / created.max(1) as f64
    );
    let fleet_file = std::env::temp_dir().join(format!(
        "finops-discovery-bench-{}.json",
        std::process::id()
    ));
    std::fs::write(
        &fleet_file,
        serde_json::to_vec(&fleet).map_err(|e| e.to_string())?,
    )
    .map_err(|e| format!("{}: {e}", fleet_file.display()))?;

    // The processor's environment: template.yaml's, in organization mode.
    let mut vars = stack.function_env("ProcessorFunction");
    vars.insert("REGIONS".into(), REGIONS.join(","));
    vars.insert("ACCOUNTS_MODE".into(), "organization".into());
    vars.insert("MEMBER_ROLE_NAME".into(), ROLE.into());
    let now = Utc::now();
    let scheduler_config =
        scheduler::Config::from_env(&Env::of(stack.function_env("SchedulerFunction")))
            .map_err(|e| e.to_string())?;
    let ddb = aws_sdk_dynamodb::Client::new(&aws);
    let jobs = DynamoJobs::new(ddb.clone(), &scheduler_config.jobs_table);
    let queue = SqsJobQueue::new(
        aws_sdk_sqs::Client::new(&aws),
        &scheduler_config.jobs_queue_url,
    );
    let fixture = include_str!("../../../../../events/scheduler/scheduled-event.json");
    let mut event: aws_lambda_events::eventbridge::EventBridgeEvent =
        serde_json::from_str(fixture).map_err(|e| e.to_string())?;
    event.time = Some(
        now.duration_trunc(chrono::Duration::hours(1))
            .unwrap_or(now),
    );
    let queued = scheduler::handle(&jobs, &queue, event, now)
        .await
        .map_err(|e| e.to_string())?;

    let mut envs: Vec<(String, String)> = vars.into_iter().collect();
    for (k, v) in [
        ("AWS_ENDPOINT_URL", emulator.endpoint.clone()),
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("AWS_REGION", "us-east-1".into()),
        (
            "FINOPS_BENCH_QUEUE_URL",
            stack.queue_url("JobsQueue").to_string(),
        ),
        (
            "FINOPS_BENCH_QUEUE_ARN",
            stack.queue_arn("JobsQueue").to_string(),
        ),
        ("FINOPS_BENCH_NOW", now.timestamp().to_string()),
        ("FINOPS_BENCH_FLEET", fleet_file.display().to_string()),
        ("FINOPS_BENCH_BATCH", batch.to_string()),
    ] {
        envs.push((k.to_string(), v));
    }
    let stop = std::env::temp_dir().join(format!(
        "finops-discovery-bench-{}.stop",
        std::process::id()
    ));
    let timeout = Duration::from_secs(env_or("FINOPS_BENCH_TIMEOUT_S", 1800));
    let mut running = Workers::spawn(workers, &["--worker"], &envs, &stop)?;
    let mut handled = Vec::new();
    let mut last_poll = Instant::now();
    let finished = loop {
        match running.next(Duration::from_millis(200)).await {
            Some(Line::Event(h)) => {
                eprintln!(
                    "    [worker {}] {} in {:.1} s{}",
                    h.worker,
                    h.label,
                    h.secs,
                    if h.failed { ", FAILED" } else { "" }
                );
                handled.push(h);
            }
            Some(Line::Exited(k)) => return Err(format!("worker {k} exited early")),
            _ => {}
        }
        if last_poll.elapsed() >= Duration::from_millis(500) {
            last_poll = Instant::now();
            let job = jobs
                .get(&queued.job_id, Utc::now())
                .await
                .map_err(|e| e.to_string())?
                .ok_or("the job vanished")?;
            if job.status.is_finished() {
                break job;
            }
            if running.started.elapsed() > timeout {
                let _ = running.finish().await;
                return Err(format!("the cycle did not finish within {timeout:?}"));
            }
        }
    };
    let wall_s = running.started.elapsed().as_secs_f64();
    let (reports, late) = running.finish().await;
    handled.extend(late);
    let _ = std::fs::remove_file(&fleet_file);
    let run = Run {
        resources_target: total,
        accounts,
        workers,
        batch,
        fleet,
        setup_s,
        org_s,
        wall_s,
        now,
        job_id: queued.job_id.clone(),
        reports,
        handled,
        machine_start,
        machine_end: finops_demo::bench::machine(),
    };
    let ok = report::print(&stack, &aws, &run, &finished).await?;
    println!(
        "  bench total {:.1} s (emulator start, organization and estate included)",
        bench_start.elapsed().as_secs_f64()
    );
    if !ok {
        return Err(format!(
            "the job ended {}: {}",
            finished.status.as_str(),
            finished.error.unwrap_or_default()
        ));
    }
    Ok(())
}

/// A worker: the processor over the wire, CloudWatch answered per unit.
async fn worker_child() -> Result<(), String> {
    let rss_start_kb = status_kb("VmRSS:");
    let env = Env::process();
    let var = |k: &str| env.require(k).map_err(|e| e.to_string());
    let now_secs: i64 = var("FINOPS_BENCH_NOW")?
        .parse()
        .map_err(|e| format!("FINOPS_BENCH_NOW: {e}"))?;
    let now = DateTime::from_timestamp(now_secs, 0).ok_or("FINOPS_BENCH_NOW out of range")?;
    let fleet: Vec<UnitFleet> = serde_json::from_slice(
        &std::fs::read(var("FINOPS_BENCH_FLEET")?).map_err(|e| format!("fleet file: {e}"))?,
    )
    .map_err(|e| format!("fleet file: {e}"))?;
    let set = shared::analysis::default_thresholds().map_err(|e| e.to_string())?;
    let units: HashMap<(String, String), SyntheticCloudWatch> = fleet
        .iter()
        .map(|u| {
            (
                (u.account.clone(), u.region.clone()),
                SyntheticCloudWatch::of_resources(&set, now, DAYS, &u.resources),
            )
        })
        .collect();
    drop(fleet);
    let empty = SyntheticCloudWatch::of_resources(&set, now, DAYS, &[]);
    let plain = shared::config::load_sdk_config().await;
    let wire = Wire::with_cloudwatch(CloudWatchUnits::new(
        units,
        empty,
        &var("AWS_ENDPOINT_URL")?,
    )?);
    let aws = wire.config(&plain);
    let config = processor::Config::from_env(&env).map_err(|e| e.to_string())?;
    let p = processor::Processor::new(config, &aws, Box::new(shared::notify::LogNotifier));
    let report = worker::run(&p, &wire, &plain, rss_start_kb, label).await?;
    worker::print_report(&report)
}

/// What a message is, for the timings.
fn label(m: &JobMessage) -> String {
    match &m.shard {
        None => "coordinator".into(),
        Some(s) => match &s.unit {
            Some(u) if s.discover => format!("unit {}/{}", u.account_id, u.region),
            _ => format!("shard {}/{}", s.index + 1, s.of),
        },
    }
}
