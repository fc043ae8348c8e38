//! `make demo`: starts the emulator, builds the stack from template.yaml,
//! seeds the demo estate, runs one cycle through the real path (scheduled
//! event -> scheduler -> job + SQS message -> event source -> processor) and
//! prints the recommendations with the total monthly savings; then
//! approves and executes the lowest-risk one through the REST API.

mod execute;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use chrono::{DurationRound, Utc};
use finops_local::event_source::EventSource;
use finops_local::{estate, seed, Emulator, LocalStack, Template};
use shared::config::Env;
use shared::domain::Recommendation;
use shared::dynamo::DynamoRecommendations;
use shared::notify::{Event, Notifier};
use shared::store::{InventoryStore, JobStore, RecommendationStore};
use std::process::ExitCode;

/// Prints progress as the processor reports it.
struct Console;

#[async_trait::async_trait]
impl Notifier for Console {
    async fn publish(&self, event: &Event) -> shared::Result<()> {
        match event {
            Event::JobProgress {
                stage,
                done,
                total,
                percent,
                ..
            } => {
                println!("  {percent:>5.1}%  {stage:<12} {done}/{total}")
            }
            Event::JobCompleted { summary, .. } if summary.get("op").is_none() => {
                println!("  cycle completed: {summary}")
            }
            Event::JobFailed { error, .. } => println!("  job failed: {error}"),
            Event::ExecutionProgress {
                step,
                total,
                op,
                status,
                ..
            } => println!("  step {step}/{total} {op}: {status:?}"),
            _ => {}
        }
        Ok(())
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("demo failed: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), String> {
    let env = Env::process();
    let port: u16 = env
        .positive("FINOPS_EMULATOR_PORT", 4566, u16::MAX)
        .map_err(|e| e.to_string())?;
    println!("Starting the AWS emulator on 127.0.0.1:{port} ...");
    let emulator = Emulator::start_on(port)
        .map_err(|e| format!("{e} (is port {port} in use? set FINOPS_EMULATOR_PORT)"))?;
    // The functions find AWS the standard way, as they would in Lambda.
    std::env::set_var("AWS_ENDPOINT_URL", &emulator.endpoint);
    std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
    std::env::set_var("AWS_REGION", "us-east-1");
    let aws = shared::config::load_sdk_config().await;

    let template = Template::load().map_err(|e| e.to_string())?;
    let stack = LocalStack::create(&aws, &emulator.endpoint, &template, "finops")
        .await
        .map_err(|e| e.to_string())?;
    println!("Created the tables and queues of template.yaml.");

    let now = Utc::now();
    let thresholds = shared::analysis::default_thresholds().map_err(|e| e.to_string())?;
    // FINOPS_DEMO_EC2=N: a fleet of N EC2 instances instead (the cycle benchmark).
    let fleet: Option<usize> = env.get("FINOPS_DEMO_EC2").and_then(|n| n.parse().ok());
    let mut estate = match fleet {
        Some(n) => estate::ec2_fleet(&thresholds, now, 14, n),
        None => estate::demo(&thresholds, now, 14),
    };
    // Built as its Lambda `main` builds it; the demo prints progress instead
    // of pushing it. The demo estate spans two regions, both discovered.
    let mut processor_vars = stack.function_env("ProcessorFunction");
    if fleet.is_none() {
        processor_vars.insert("REGIONS".into(), estate::DEMO_REGIONS.join(","));
    }
    let processor_env = env.or(&Env::of(processor_vars));
    let mut processor =
        processor::Processor::from_env(&processor_env, &aws).map_err(|e| e.to_string())?;
    processor.notifier = Box::new(Console);
    let points = match fleet {
        // The benchmark's fleet is injected: creating 10,000 instances
        // through the emulator's EC2 would measure the emulator.
        Some(_) => {
            processor
                .inventory
                .upsert(&estate.resources)
                .await
                .map_err(|e| e.to_string())?;
            seed::seed_series(&emulator.endpoint, &estate.series)
                .await
                .map_err(|e| e.to_string())?
        }
        None => {
            finops_local::demo_estate::create_estate(&stack, &mut estate, None)
                .await
                .map_err(|e| e.to_string())?
                .points
        }
    };
    let services: std::collections::BTreeSet<_> =
        estate.resources.iter().map(|r| r.service).collect();
    println!(
        "Created {} resources over {} services through their APIs, with {points} data points (14 days, hourly).",
        estate.resources.len(),
        services.len()
    );

    // The real path starts with the schedule's event.
    let scheduler =
        scheduler::Scheduler::from_env(&Env::of(stack.function_env("SchedulerFunction")), &aws)
            .map_err(|e| e.to_string())?;
    let jobs = &scheduler.jobs;
    let fixture = include_str!("../../../events/scheduler/scheduled-event.json");
    let mut event: EventBridgeEvent = serde_json::from_str(fixture).map_err(|e| e.to_string())?;
    event.time = Some(
        now.duration_trunc(chrono::Duration::hours(1))
            .unwrap_or(now),
    );
    let queued = scheduler
        .handle(event, now)
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "Scheduled event -> job {} ({}). Processing ...",
        queued.job_id, queued.status
    );

    let rss_before = peak_rss_kb();
    let source = EventSource::new(
        aws_sdk_sqs_client(&aws),
        stack.queue_url("JobsQueue"),
        stack.queue_arn("JobsQueue"),
    );
    let started = std::time::Instant::now();
    loop {
        let job = jobs
            .get(&queued.job_id, Utc::now())
            .await
            .map_err(|e| e.to_string())?
            .ok_or("the job vanished")?;
        if job.status.is_finished() {
            println!(
                "Job {} is {} after {:.1} s.",
                job.id,
                job.status.as_str(),
                started.elapsed().as_secs_f64()
            );
            if job.status != shared::domain::JobStatus::Succeeded {
                return Err(job
                    .error
                    .unwrap_or_else(|| "the cycle did not succeed".into()));
            }
            break;
        }
        if started.elapsed() > std::time::Duration::from_secs(300) {
            return Err("the cycle did not finish within 5 minutes".into());
        }
        let batch = source.receive().await?;
        if batch.is_empty() {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            continue;
        }
        let response = processor::handle(&processor, batch.event.clone(), Utc::now()).await;
        source.settle(&batch, &response, false).await?;
    }

    let run = shared::store::CycleRunStore::get_run(&processor.cycles, &queued.job_id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("the cycle left no run record")?;
    for stage in run.stages.iter().filter(|s| !s.ok) {
        println!(
            "  stage {} had {} failures: {}",
            stage.stage,
            stage.failed,
            stage.error.as_deref().unwrap_or("")
        );
    }
    let store = DynamoRecommendations::new(
        aws_sdk_dynamodb::Client::new(&aws),
        stack.table("RecommendationsTable"),
    );
    let mut recs = store.all(&queued.job_id).await.map_err(|e| e.to_string())?;
    recs.sort_by(|a, b| {
        b.monthly_savings_usd
            .unwrap_or(-1.0)
            .total_cmp(&a.monthly_savings_usd.unwrap_or(-1.0))
            .then(a.resource_id.cmp(&b.resource_id))
    });
    if fleet.is_some() {
        let (requests, start, end) =
            shared::cycle::metric_requests(&thresholds, &estate.resources, now);
        let minimum = shared::collector::minimum_get_metric_data_calls(&requests, start, end);
        let calls = processor.source.calls();
        println!(
            "benchmark: {} resources, {} recommendations",
            run.resources_analysed,
            recs.len()
        );
        println!(
            "  cycle wall time     {:.2} s",
            started.elapsed().as_secs_f64()
        );
        println!(
            "  GetMetricData calls {} (minimum the limits allow: {minimum}; {} queries)",
            calls.get_metric_data,
            requests.len()
        );
        println!("  ListMetrics calls   {}", calls.list_metrics);
        println!("  peak RSS            {} MB before the cycle, {} MB after (whole process, seeding included)", rss_before / 1024, peak_rss_kb() / 1024);
        return Ok(());
    }
    print_table(&recs);
    execute::approve_and_execute(&aws, &stack, &processor, &source, &recs).await
}

/// The process's peak resident set (VmHWM), in kB.
fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn aws_sdk_sqs_client(aws: &aws_config::SdkConfig) -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(aws)
}

fn print_table(recs: &[Recommendation]) {
    println!();
    println!(
        "{:<28} {:<12} {:<18} {:<28} {:>12} {:>10} {:>5}",
        "RESOURCE", "SERVICE", "FINDING", "ACTION", "SAVINGS/MO", "CONFIDENCE", "RISK"
    );
    let mut total = 0.0;
    let mut unpriced = 0;
    for r in recs {
        let action = match &r.target_type {
            Some(t) => format!("{} -> {t}", r.action.as_str()),
            None => r.action.as_str().to_string(),
        };
        let savings = match r.monthly_savings_usd {
            Some(s) => {
                total += s;
                format!("${s:.2}")
            }
            None => {
                unpriced += 1;
                "no price".to_string()
            }
        };
        let finding = serde_json::to_value(r.finding)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        println!(
            "{:<28} {:<12} {:<18} {:<28} {:>12} {:>10.2} {:>5}",
            truncate(&r.resource_id, 28),
            r.service.as_str(),
            finding,
            truncate(&action, 28),
            savings,
            r.confidence,
            r.risk
        );
    }
    println!();
    println!(
        "{} recommendations; total estimated savings: ${total:.2} per month",
        recs.len()
    );
    if unpriced > 0 {
        println!("({unpriced} without a known price are not counted in the total; why:)");
        for r in recs.iter().filter(|r| r.monthly_savings_usd.is_none()) {
            println!("  {}: {}", truncate(&r.resource_id, 28), r.reason);
        }
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}~", s.chars().take(n - 1).collect::<String>())
    }
}
