//! `make bench` (cycle): one whole optimisation cycle over an EC2 fleet with
//! 14 days of hourly metrics, through the real path (scheduled event ->
//! scheduler -> job + SQS -> event source -> processor), at each size of
//! `FINOPS_BENCH_SIZES` (default `1000,10000`). Prints the wall time, the AWS
//! calls per service and operation against the minimum the API limits allow,
//! and the processor's peak memory.
//!
//! - DynamoDB and SQS are the emulator's, always.
//! - CloudWatch is the emulator's (seeded with every point) up to
//!   `FINOPS_BENCH_EMULATED_MAX` resources (default 1000); above, it is the
//!   in-process synthetic CloudWatch (`finops_local::synthetic`), because the
//!   emulator cannot hold that many points. The output says which.
//! - The processor runs in a child process (this binary with `--processor`),
//!   one worker handling every message in turn, so its peak RSS (VmHWM) is
//!   the processor's own: the setup (emulator, seeding, inventory) stays in
//!   the parent. What the figure includes is printed next to it.
//! - Calls are counted by `shared::calls::CallCounter` on every client of the
//!   processor; the local event source's SQS calls (Lambda's, not the
//!   function's) are counted apart.

use chrono::{DateTime, DurationRound, Utc};
use finops_local::event_source::EventSource;
use finops_local::synthetic::SyntheticCloudWatch;
use finops_local::{estate, seed, Emulator, LocalStack, Template};
use shared::calls::{CallCounter, CallTally};
use shared::collector::minimum_get_metric_data_calls;
use shared::config::Env;
use shared::cycle::{metric_requests, plan_shards};
use shared::domain::{JobKind, JobMessage, JobStatus, Service, ShardRef};
use shared::dynamo::{DynamoJobs, DynamoRecommendations};
use shared::queue::SqsJobQueue;
use shared::store::{CycleRunStore, JobStore, RecommendationStore};
use std::collections::BTreeMap;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

const DAYS: i64 = 14;

fn main() -> ExitCode {
    finops_demo::bench::run("cycle bench", "--processor", processor_child(), bench())
}

fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    Env::process()
        .get(key)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A field of /proc/self/status, in kB (0 where there is no procfs).
fn status_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

async fn bench() -> Result<(), String> {
    let sizes: Vec<usize> = Env::process()
        .get("FINOPS_BENCH_SIZES")
        .unwrap_or_else(|| "1000,10000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    if sizes.is_empty() {
        return Err("FINOPS_BENCH_SIZES names no size".into());
    }
    let mut failures = Vec::new();
    for n in sizes {
        if let Err(e) = bench_one(n).await {
            eprintln!("cycle bench at {n}: {e}");
            failures.push(n);
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!("failed at {failures:?}"))
    }
}

/// What the processor child reports.
#[derive(serde::Serialize, serde::Deserialize, Default)]
struct ChildReport {
    wall_s: f64,
    /// Seconds per kind of message: coordinator, shard, the finalising shard.
    coordinate_s: f64,
    shards_s: f64,
    finalize_s: f64,
    messages: u64,
    failed_messages: u64,
    rss_start_kb: u64,
    rss_ready_kb: u64,
    hwm_kb: u64,
    calls: Vec<(String, String, u64)>,
    event_source_calls: Vec<(String, String, u64)>,
    synthetic_requests: Option<(u64, u64, u64)>,
}

async fn bench_one(n: usize) -> Result<(), String> {
    let emulated_max: usize = env_or("FINOPS_BENCH_EMULATED_MAX", 1000);
    let synthetic = n > emulated_max;
    let bench_start = Instant::now();
    let emulator = Emulator::start().map_err(|e| e.to_string())?;
    let aws = finops_local::sdk_config(&emulator.endpoint).await;
    let template = Template::load().map_err(|e| e.to_string())?;
    let stack = LocalStack::create(&aws, &emulator.endpoint, &template, "bench")
        .await
        .map_err(|e| e.to_string())?;
    let now = Utc::now();
    let set = shared::analysis::default_thresholds().map_err(|e| e.to_string())?;
    let mix = [(Service::Ec2, n)];

    let t = Instant::now();
    let mut resources = estate::resources(&mix);
    let points = if synthetic {
        0
    } else {
        let estate = estate::ec2_fleet(&set, now, DAYS, n);
        seed::seed_series(&emulator.endpoint, &estate.series)
            .await
            .map_err(|e| e.to_string())?
    };
    let processor_vars = stack.function_env("ProcessorFunction");
    let processor_env = Env::process().or(&Env::of(processor_vars.clone()));
    let config = processor::Config::from_env(&processor_env).map_err(|e| e.to_string())?;
    let ddb = aws_sdk_dynamodb::Client::new(&aws);
    let inventory = shared::dynamo::DynamoInventory::new(
        ddb.clone(),
        &config.inventory_table,
        shared::store::PageTokenCodec::new(b"cycle-bench-inventory-token-key!"),
    );
    shared::store::InventoryStore::upsert(&inventory, &resources)
        .await
        .map_err(|e| e.to_string())?;
    let setup_s = t.elapsed().as_secs_f64();

    let scheduler_config =
        scheduler::Config::from_env(&Env::of(stack.function_env("SchedulerFunction")))
            .map_err(|e| e.to_string())?;
    let jobs = DynamoJobs::new(ddb.clone(), &scheduler_config.jobs_table);
    let queue = SqsJobQueue::new(
        aws_sdk_sqs::Client::new(&aws),
        &scheduler_config.jobs_queue_url,
    );
    let fixture = include_str!("../../../../events/scheduler/scheduled-event.json");
    let mut event: aws_lambda_events::eventbridge::EventBridgeEvent =
        serde_json::from_str(fixture).map_err(|e| e.to_string())?;
    event.time = Some(
        now.duration_trunc(chrono::Duration::hours(1))
            .unwrap_or(now),
    );
    let queued = scheduler::handle(&jobs, &queue, event, now)
        .await
        .map_err(|e| e.to_string())?;

    println!();
    println!(
        "cycle bench: {n} EC2 instances, {DAYS} days hourly; CloudWatch: {}",
        if synthetic {
            "SYNTHETIC (in-process, finops_local::synthetic; the emulator cannot hold this many points)"
        } else {
            "the emulator"
        }
    );
    println!(
        "  setup (not measured): {} resources{} in {setup_s:.1} s",
        resources.len(),
        if synthetic {
            String::new()
        } else {
            format!(", {points} points seeded")
        }
    );

    // The processor, in a child process of its own.
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut child = Command::new(exe);
    child
        .arg("--processor")
        .envs(processor_vars.iter())
        .env("AWS_ENDPOINT_URL", &emulator.endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("FINOPS_BENCH_JOB", &queued.job_id)
        .env("FINOPS_BENCH_QUEUE_URL", stack.queue_url("JobsQueue"))
        .env("FINOPS_BENCH_QUEUE_ARN", stack.queue_arn("JobsQueue"))
        .env("FINOPS_BENCH_NOW", now.timestamp().to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if synthetic {
        child.env("FINOPS_BENCH_SYNTHETIC_EC2", n.to_string());
    } else {
        child.env_remove("FINOPS_BENCH_SYNTHETIC_EC2");
    }
    let output = child
        .output()
        .map_err(|e| format!("processor child: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report: ChildReport = stdout
        .lines()
        .find_map(|l| l.strip_prefix("REPORT "))
        .and_then(|j| serde_json::from_str(j).ok())
        .ok_or_else(|| format!("the processor child reported nothing ({})", output.status))?;

    let job = jobs
        .get(&queued.job_id, Utc::now())
        .await
        .map_err(|e| e.to_string())?
        .ok_or("the job vanished")?;
    let run = CycleRunStore::get_run(
        &shared::dynamo::DynamoCycles::new(ddb.clone(), &config.cycles_table),
        &queued.job_id,
    )
    .await
    .map_err(|e| e.to_string())?
    .ok_or("the cycle left no run record")?;
    let recs = DynamoRecommendations::new(ddb, &config.recommendations_table)
        .all(&queued.job_id)
        .await
        .map_err(|e| e.to_string())?;

    // The minimum the API limits allow, from the same plan the cycle makes.
    resources.sort_by(|a, b| a.id.cmp(&b.id));
    let (requests, start, end) = metric_requests(&set, &resources, now);
    let gmd_min = minimum_get_metric_data_calls(&requests, start, end);
    let shards = plan_shards(&set, resources.clone(), &config.cycle, now);
    let gmd_min_sharded: u64 = shards
        .iter()
        .map(|slice| {
            let (r, s, e) = metric_requests(&set, slice, now);
            minimum_get_metric_data_calls(&r, s, e)
        })
        .sum();
    let ec2_series = estate::published_metrics(&set, Service::Ec2)
        .iter()
        .filter(|q| q.namespace == "AWS/EC2")
        .count()
        * n;
    let list_min = ec2_series.div_ceil(500).max(1) as u64 + (Service::ALL.len() as u64 - 1);
    let shard_bytes: Vec<usize> = shards
        .iter()
        .enumerate()
        .map(|(i, slice)| {
            serde_json::to_vec(&JobMessage {
                job_id: queued.job_id.clone(),
                kind: JobKind::OptimizationCycle,
                shard: Some(ShardRef {
                    index: i as u32,
                    of: shards.len() as u32,
                    resources: slice.clone(),
                    lease_owner: format!("{}:{}", queued.job_id, "0".repeat(32)),
                    unit: None,
                    discover: false,
                }),
            })
            .map(|v| v.len())
            .unwrap_or(0)
        })
        .collect();
    let send_min = if shards.len() > 1 {
        min_sqs_batches(&shard_bytes)
    } else {
        0
    };
    let nrecs = recs.len() as u64;
    let mut minimum: BTreeMap<(&str, &str), (u64, String)> = BTreeMap::new();
    minimum.insert(
        ("CloudWatch", "GetMetricData"),
        (
            gmd_min,
            format!(
                "{} queries; 500 queries / 100,800 points a call; {gmd_min_sharded} summed over the {} shards",
                requests.len(),
                shards.len()
            ),
        ),
    );
    minimum.insert(
        ("CloudWatch", "ListMetrics"),
        (
            list_min,
            format!("{ec2_series} EC2 series at 500 a page + 1 per other service"),
        ),
    );
    minimum.insert(
        ("DynamoDB", "BatchWriteItem"),
        (
            nrecs.div_ceil(25),
            format!("{nrecs} recommendations, 25 items a call"),
        ),
    );
    minimum.insert(
        ("DynamoDB", "TransactWriteItems"),
        (
            (3 * nrecs).div_ceil(100),
            format!(
                "{nrecs} approval requests x 3 items (request, open-lock, audit), 100 items a call; \
                 one transaction per request by design"
            ),
        ),
    );
    minimum.insert(
        ("SQS", "SendMessageBatch"),
        (
            send_min,
            format!(
                "{} shard messages ({} KB): 10 and 256 KB a batch",
                shards.len(),
                shard_bytes.iter().sum::<usize>() / 1024
            ),
        ),
    );

    let ok = job.status == JobStatus::Succeeded;
    println!(
        "  job {}: {} resources analysed, {} recommendations; USD {:.2}/month",
        job.status.as_str(),
        run.resources_analysed,
        nrecs,
        run.monthly_savings_usd
    );
    println!(
        "  cycle wall time      {:.1} s (one processor worker handling {} messages in turn: \
         coordinator {:.1} s, shards {:.1} s, finalising shard {:.1} s)",
        report.wall_s, report.messages, report.coordinate_s, report.shards_s, report.finalize_s
    );
    let stages: Vec<String> = run
        .stages
        .iter()
        .map(|s| format!("{} {:.1} s", s.stage, s.duration_ms as f64 / 1000.0))
        .collect();
    println!("  recorded stages      {}", stages.join(", "));
    println!(
        "  processor peak RSS   {:.1} MB (VmHWM of the processor process; {:.1} MB at start, \
         {:.1} MB with its SDK clients{} built, before the first message)",
        mb(report.hwm_kb),
        mb(report.rss_start_kb),
        mb(report.rss_ready_kb),
        if synthetic {
            " and the synthetic CloudWatch (which also builds each response body in this process)"
        } else {
            ""
        }
    );
    println!("  AWS calls by the processor (counted by an SDK interceptor on each client):");
    println!(
        "    {:<11} {:<28} {:>7} {:>9}  basis of the minimum",
        "service", "operation", "calls", "minimum"
    );
    for (service, op, calls) in &report.calls {
        let (min, why) = minimum
            .get(&(service.as_str(), op.as_str()))
            .map(|(m, w)| (m.to_string(), w.as_str()))
            .unwrap_or(("-".into(), "per item by design"));
        println!("    {service:<11} {op:<28} {calls:>7} {min:>9}  {why}");
    }
    let total: u64 = report.calls.iter().map(|c| c.2).sum();
    println!("    total {total}");
    let es: Vec<String> = report
        .event_source_calls
        .iter()
        .map(|(s, o, c)| format!("{s} {o} {c}"))
        .collect();
    println!(
        "  event source (Lambda's SQS polling, not the function's): {}",
        es.join(", ")
    );
    if let Some((lm, gmd, rejected)) = report.synthetic_requests {
        println!(
            "  synthetic CloudWatch served {lm} ListMetrics and {gmd} GetMetricData requests, refused {rejected}"
        );
    }
    println!(
        "  bench total {:.1} s (emulator start and seeding included)",
        bench_start.elapsed().as_secs_f64()
    );
    if !ok {
        return Err(format!(
            "the job ended {}: {}",
            job.status.as_str(),
            job.error.unwrap_or_default()
        ));
    }
    let gmd = report
        .calls
        .iter()
        .find(|c| c.0 == "CloudWatch" && c.1 == "GetMetricData")
        .map_or(0, |c| c.2);
    if gmd > gmd_min_sharded {
        return Err(format!(
            "{gmd} GetMetricData calls, more than the {gmd_min_sharded} its shards need"
        ));
    }
    Ok(())
}

/// SendMessageBatch calls the shard messages need at least: 10 messages and
/// 256 KB a batch (first-fit decreasing is within one of optimal here).
fn min_sqs_batches(sizes: &[usize]) -> u64 {
    const BATCH_BYTES: usize = 256 * 1024;
    let mut sorted = sizes.to_vec();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    let mut bins: Vec<(usize, usize)> = Vec::new();
    for s in sorted {
        match bins
            .iter_mut()
            .find(|(bytes, count)| *count < 10 && bytes + s <= BATCH_BYTES)
        {
            Some(bin) => {
                bin.0 += s;
                bin.1 += 1;
            }
            None => bins.push((s, 1)),
        }
    }
    bins.len() as u64
}

fn tally_rows(tally: CallTally) -> Vec<(String, String, u64)> {
    tally.into_iter().map(|((s, o), c)| (s, o, c)).collect()
}

/// The processor's side: SDK clients built once, as in Lambda, each with the
/// call counter; the local event source feeding it every message until the
/// job finishes.
async fn processor_child() -> Result<(), String> {
    let rss_start_kb = status_kb("VmRSS:");
    let env = Env::process();
    let var = |k: &str| env.require(k).map_err(|e| e.to_string());
    let job_id = var("FINOPS_BENCH_JOB")?;
    let now_secs: i64 = var("FINOPS_BENCH_NOW")?
        .parse()
        .map_err(|e| format!("FINOPS_BENCH_NOW: {e}"))?;
    let now = DateTime::from_timestamp(now_secs, 0).ok_or("FINOPS_BENCH_NOW out of range")?;
    let aws = shared::config::load_sdk_config().await;
    let counter = CallCounter::new();
    let ddb = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&aws)
            .interceptor(counter.clone())
            .build(),
    );
    let sqs = aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::config::Builder::from(&aws)
            .interceptor(counter.clone())
            .build(),
    );
    let mut cw_config =
        aws_sdk_cloudwatch::config::Builder::from(&aws).interceptor(counter.clone());
    let synthetic = match env.get("FINOPS_BENCH_SYNTHETIC_EC2") {
        Some(n) => {
            let n: usize = n
                .parse()
                .map_err(|e| format!("FINOPS_BENCH_SYNTHETIC_EC2: {e}"))?;
            let set = shared::analysis::default_thresholds().map_err(|e| e.to_string())?;
            let cw = SyntheticCloudWatch::new(&set, now, DAYS, &[(Service::Ec2, n)]);
            cw_config = cw_config.http_client(cw.http_client());
            Some(cw)
        }
        None => None,
    };
    let cloudwatch = aws_sdk_cloudwatch::Client::from_conf(cw_config.build());
    let config = processor::Config::from_env(&env).map_err(|e| e.to_string())?;
    // The loop's own job lookups go through a client without the counter:
    // they are the bench's, not the processor's.
    let poll = DynamoJobs::new(aws_sdk_dynamodb::Client::new(&aws), &config.jobs_table);
    let processor = processor::Processor::with_clients(
        config,
        ddb,
        cloudwatch,
        sqs,
        aws_sdk_costexplorer::Client::new(&aws),
        Box::new(shared::notify::LogNotifier),
    );
    let source_counter = CallCounter::new();
    let source = EventSource::new(
        aws_sdk_sqs::Client::from_conf(
            aws_sdk_sqs::config::Builder::from(&aws)
                .interceptor(source_counter.clone())
                .build(),
        ),
        var("FINOPS_BENCH_QUEUE_URL")?,
        var("FINOPS_BENCH_QUEUE_ARN")?,
    );
    let rss_ready_kb = status_kb("VmRSS:");
    let timeout = Duration::from_secs(env_or("FINOPS_BENCH_TIMEOUT_S", 900));

    let mut report = ChildReport {
        rss_start_kb,
        rss_ready_kb,
        ..ChildReport::default()
    };
    let started = Instant::now();
    loop {
        let job = poll
            .get(&job_id, Utc::now())
            .await
            .map_err(|e| e.to_string())?
            .ok_or("the job vanished")?;
        if job.status.is_finished() {
            break;
        }
        if started.elapsed() > timeout {
            return Err(format!("the cycle did not finish within {timeout:?}"));
        }
        let batch = source.receive().await?;
        if batch.is_empty() {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        // One message at a time, so each can be timed by kind.
        let mut failures = aws_lambda_events::sqs::SqsBatchResponse::default();
        for record in &batch.event.records {
            let shard = record
                .body
                .as_deref()
                .and_then(|b| serde_json::from_str::<JobMessage>(b).ok())
                .and_then(|m| m.shard.map(|s| (s.index, s.of)));
            let mut one = batch.event.clone();
            one.records = vec![record.clone()];
            let t = Instant::now();
            let response = processor::handle(&processor, one, Utc::now()).await;
            let spent = t.elapsed().as_secs_f64();
            report.messages += 1;
            eprintln!(
                "    [processor] message {} ({}) handled in {spent:.1} s{}",
                report.messages,
                shard.map_or("coordinator".to_string(), |(i, of)| format!(
                    "shard {}/{of}",
                    i + 1
                )),
                if response.batch_item_failures.is_empty() {
                    ""
                } else {
                    ", FAILED"
                }
            );
            report.failed_messages += response.batch_item_failures.len() as u64;
            failures
                .batch_item_failures
                .extend(response.batch_item_failures);
            match shard {
                None => report.coordinate_s += spent,
                Some(_) => {
                    let finalized = poll
                        .get(&job_id, Utc::now())
                        .await
                        .ok()
                        .flatten()
                        .is_some_and(|j| j.status.is_finished());
                    if finalized {
                        report.finalize_s += spent;
                    } else {
                        report.shards_s += spent;
                    }
                }
            }
        }
        source.settle(&batch, &failures, false).await?;
    }
    report.wall_s = started.elapsed().as_secs_f64();
    report.hwm_kb = status_kb("VmHWM:");
    report.calls = tally_rows(counter.snapshot());
    report.event_source_calls = tally_rows(source_counter.snapshot());
    report.synthetic_requests = synthetic.map(|cw| {
        let s = cw.served();
        (s.list_metrics, s.get_metric_data, s.rejected)
    });
    println!(
        "REPORT {}",
        serde_json::to_string(&report).map_err(|e| e.to_string())?
    );
    Ok(())
}
