//! Processor workers, each a child process of its own (this benchmark's
//! binary run with `--worker`), as each concurrent Lambda invocation has
//! its own execution environment: its peak RSS (VmHWM) is its own, and it
//! builds its clients, assumes roles and caches credentials on its own.
//!
//! A worker polls the jobs queue as Lambda's SQS event source does,
//! hands the processor one record at a time (as `processor::handle` would
//! go through the batch), deletes what succeeded, prints one `EVENT` line
//! per message and, once the parent creates the stop file, one `REPORT`.
//! The event source's own SQS calls (Lambda's, not the function's) are
//! counted apart from the function's.

use super::wire::{Tally, Wire};
use super::{env_or, status_kb};
use aws_config::SdkConfig;
use chrono::{Duration, Utc};
use finops_local::event_source::EventSource;
use serde::{Deserialize, Serialize};
use shared::config::Env;
use shared::domain::JobMessage;
use shared::dynamo::DynamoJobs;
use shared::store::JobStore;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

/// One message a worker handled.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Handled {
    pub worker: usize,
    pub job_id: String,
    pub label: String,
    /// Seconds since the worker started, when it began the message.
    pub at_s: f64,
    pub secs: f64,
    /// The `now` the processor was given (epoch seconds; the benchmark's
    /// clock, which may run ahead of the wall clock).
    pub now: i64,
    pub failed: bool,
    /// The job's status just after (read outside the count).
    pub status: Option<String>,
}

/// What a worker reports when stopped.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct WorkerReport {
    pub worker: usize,
    pub messages: u64,
    pub failed: u64,
    pub busy_s: f64,
    pub rss_start_kb: u64,
    pub rss_ready_kb: u64,
    pub hwm_kb: u64,
    /// The function's calls.
    pub calls: Tally,
    /// The event source's (Lambda's) calls.
    pub poller: Tally,
    /// `DelaySeconds` of every delayed SendMessage the function made.
    pub delays: Vec<i64>,
}

/// The worker's side: `processor` (built on `wire`) fed from the queue
/// until the stop file appears. `plain` is an uncounted configuration
/// for the job look-ups that are the benchmark's, not the processor's.
pub async fn run(
    processor: &processor::Processor,
    wire: &Wire,
    plain: &SdkConfig,
    rss_start_kb: u64,
    label: impl Fn(&JobMessage) -> String,
) -> Result<WorkerReport, String> {
    let env = Env::process();
    let var = |k: &str| env.require(k).map_err(|e| e.to_string());
    let worker: usize = env_or("FINOPS_BENCH_WORKER", 0);
    let stop = PathBuf::from(var("FINOPS_BENCH_STOP_FILE")?);
    let offset = Duration::seconds(env_or("FINOPS_BENCH_CLOCK_OFFSET_S", 0));
    let poller = Wire::counting();
    let mut source = EventSource::new(
        aws_sdk_sqs::Client::new(&poller.config(plain)),
        var("FINOPS_BENCH_QUEUE_URL")?,
        var("FINOPS_BENCH_QUEUE_ARN")?,
    );
    source.batch_size = env_or("FINOPS_BENCH_BATCH", 10);
    source.wait_seconds = env_or("FINOPS_BENCH_WAIT_S", 2);
    let jobs = DynamoJobs::new(
        aws_sdk_dynamodb::Client::new(plain),
        &processor.config.jobs_table,
    );
    let mut report = WorkerReport {
        worker,
        rss_start_kb,
        rss_ready_kb: status_kb("VmRSS:"),
        ..WorkerReport::default()
    };
    let started = Instant::now();
    while !stop.exists() {
        let batch = source.receive().await?;
        if batch.is_empty() {
            if source.wait_seconds == 0 {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            continue;
        }
        let mut failures = aws_lambda_events::sqs::SqsBatchResponse::default();
        for record in &batch.event.records {
            let message = record
                .body
                .as_deref()
                .and_then(|b| serde_json::from_str::<JobMessage>(b).ok());
            let mut one = batch.event.clone();
            one.records = vec![record.clone()];
            let at_s = started.elapsed().as_secs_f64();
            let t = Instant::now();
            let now = Utc::now() + offset;
            let response = processor::handle(processor, one, now).await;
            let secs = t.elapsed().as_secs_f64();
            report.busy_s += secs;
            report.messages += 1;
            let failed = !response.batch_item_failures.is_empty();
            report.failed += u64::from(failed);
            failures
                .batch_item_failures
                .extend(response.batch_item_failures);
            let job_id = message
                .as_ref()
                .map(|m| m.job_id.clone())
                .unwrap_or_default();
            let status = match jobs.get(&job_id, Utc::now()).await {
                Ok(Some(j)) => Some(j.status.as_str().to_string()),
                _ => None,
            };
            let handled = Handled {
                worker,
                job_id,
                label: message.as_ref().map(&label).unwrap_or_default(),
                at_s,
                secs,
                now: now.timestamp(),
                failed,
                status,
            };
            println!(
                "EVENT {}",
                serde_json::to_string(&handled).map_err(|e| e.to_string())?
            );
        }
        source.settle(&batch, &failures, false).await?;
    }
    report.hwm_kb = status_kb("VmHWM:");
    report.calls = wire.tally();
    report.poller = poller.tally();
    report.delays = wire.delays();
    Ok(report)
}

/// What a worker printed.
pub enum Line {
    Event(Handled),
    Report(WorkerReport),
    Exited(usize),
}

/// The parent's side: `n` workers running.
pub struct Workers {
    children: Vec<Child>,
    lines: tokio::sync::mpsc::UnboundedReceiver<Line>,
    stop_file: PathBuf,
    pub started: Instant,
}

impl Workers {
    /// Starts `n` workers: this binary with `args`, the processor's
    /// environment `envs` (plus each worker's index), and the stop file.
    pub fn spawn(
        n: usize,
        args: &[&str],
        envs: &[(String, String)],
        stop_file: &Path,
    ) -> Result<Workers, String> {
        let _ = std::fs::remove_file(stop_file);
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let mut children = Vec::new();
        for k in 0..n {
            let mut child = Command::new(&exe)
                .args(args)
                .envs(envs.iter().map(|(a, b)| (a.as_str(), b.as_str())))
                .env("FINOPS_BENCH_WORKER", k.to_string())
                .env("FINOPS_BENCH_STOP_FILE", stop_file)
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .map_err(|e| format!("worker {k}: {e}"))?;
            let stdout = child.stdout.take().ok_or("worker without stdout")?;
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    let parsed = if let Some(j) = line.strip_prefix("EVENT ") {
                        serde_json::from_str(j).ok().map(Line::Event)
                    } else if let Some(j) = line.strip_prefix("REPORT ") {
                        serde_json::from_str(j).ok().map(Line::Report)
                    } else {
                        None
                    };
                    if let Some(l) = parsed {
                        let _ = tx.send(l);
                    }
                }
                let _ = tx.send(Line::Exited(k));
            });
            children.push(child);
        }
        Ok(Workers {
            children,
            lines: rx,
            stop_file: stop_file.to_path_buf(),
            started: Instant::now(),
        })
    }

    /// The next line any worker printed, waiting at most `wait`.
    pub async fn next(&mut self, wait: std::time::Duration) -> Option<Line> {
        tokio::time::timeout(wait, self.lines.recv())
            .await
            .ok()
            .flatten()
    }

    /// Stops every worker and collects their reports (and any events
    /// still in flight, returned too).
    pub async fn finish(mut self) -> (Vec<WorkerReport>, Vec<Handled>) {
        let _ = std::fs::write(&self.stop_file, b"stop");
        let mut reports = Vec::new();
        let mut late = Vec::new();
        let mut exited = 0;
        while exited < self.children.len() {
            match self.lines.recv().await {
                Some(Line::Report(r)) => reports.push(r),
                Some(Line::Event(h)) => late.push(h),
                Some(Line::Exited(_)) => exited += 1,
                None => break,
            }
        }
        for c in &mut self.children {
            let _ = c.wait();
        }
        let _ = std::fs::remove_file(&self.stop_file);
        reports.sort_by_key(|r| r.worker);
        (reports, late)
    }
}

/// Prints a worker's report as its last line (the child's side).
pub fn print_report(report: &WorkerReport) -> Result<(), String> {
    println!(
        "REPORT {}",
        serde_json::to_string(report).map_err(|e| e.to_string())?
    );
    Ok(())
}
