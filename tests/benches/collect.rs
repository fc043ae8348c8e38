//! Collection benchmark: discovery and GetMetricData for an EC2 fleet in the
//! local emulator, against the lower bound of calls.
//!
//! ```sh
//! cargo bench -p e2e --bench collect
//! FINOPS_BENCH_INSTANCES=100 cargo bench -p e2e --bench collect   # smoke
//! ```
//!
//! Seeds 1,000 instances x 14 days of hourly CPUUtilization, NetworkIn and
//! NetworkOut (1,008,000 points) through the emulator's bulk endpoint, then
//! discovers the fleet and fetches it twice: streamed (each series reduced
//! as it arrives, as a memory-bound processor would) and collected (every
//! series kept). Peak RSS is this process's (VmHWM), reset before each
//! phase where the kernel allows, so each phase's figure is its own; the
//! emulator is another process and not counted. Exits non-zero if a fetch
//! is incomplete or takes more GetMetricData calls than the minimum.

use finops_local::seed::{seed_series, SeriesSeed};
use finops_local::{sdk_config, Emulator};
use shared::collector::{
    minimum_get_metric_data_calls, CloudWatchSource, MetricRequest, MetricSource,
};
use shared::domain::Service;
use std::time::Instant;

const DAYS: i64 = 14;
const HOURS: usize = DAYS as usize * 24;
/// 2026-01-01T00:00:00Z.
const T0: i64 = 1_767_225_600;
const METRICS: [(&str, &str); 3] = [
    ("CPUUtilization", "Average"),
    ("NetworkIn", "Sum"),
    ("NetworkOut", "Sum"),
];

/// A field of /proc/self/status in MB (0 where there is no procfs).
fn status_mb(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Resets VmHWM to the current RSS (Linux `clear_refs` 5), so the next
/// reading is the peak of what follows. Whether it worked.
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn fail(msg: String) -> ! {
    eprintln!("FAIL: {msg}");
    std::process::exit(1);
}

fn main() {
    let instances: usize = std::env::var("FINOPS_BENCH_INSTANCES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| fail(format!("tokio runtime: {e}")));
    runtime.block_on(run(instances));
}

async fn run(instances: usize) {
    let bench_start = Instant::now();
    let emulator = Emulator::start().unwrap_or_else(|e| fail(format!("{e}")));
    let config = sdk_config(&emulator.endpoint).await;
    println!(
        "collect: {instances} EC2 instances x {} metrics x {DAYS} days hourly ({} points)",
        METRICS.len(),
        instances * METRICS.len() * HOURS
    );
    println!("  RSS at start: {:.1} MB", status_mb("VmRSS:"));

    // Seeding
    let t = Instant::now();
    let mut stored = 0;
    // A hundred instances at a time keeps the bench's own seeding buffers
    // small, so they do not set the peak measured later.
    for chunk in (0..instances).collect::<Vec<_>>().chunks(100) {
        let seeds: Vec<SeriesSeed> = chunk
            .iter()
            .flat_map(|&n| {
                METRICS.iter().enumerate().map(move |(m, (metric, _))| {
                    SeriesSeed::new(
                        "AWS/EC2",
                        *metric,
                        &[("InstanceId", &format!("i-{n:05}"))],
                        T0,
                        3600,
                        (0..HOURS)
                            .map(|h| ((n * 7 + h * 13 + m * 101) % 997) as f64 / 8.0)
                            .collect(),
                    )
                })
            })
            .collect();
        stored += seed_series(&emulator.endpoint, &seeds)
            .await
            .unwrap_or_else(|e| fail(format!("seeding: {e}")));
    }
    let seeding = t.elapsed();
    let seed_peak = status_mb("VmHWM:");
    println!(
        "  bulk seeding: {stored} points in {:.2} s ({:.1} us/point, JSON encoding included)",
        seeding.as_secs_f64(),
        seeding.as_secs_f64() * 1e6 / stored.max(1) as f64
    );

    let client = aws_sdk_cloudwatch::Client::new(&config);
    let (start, end) = (
        chrono::DateTime::from_timestamp(T0, 0).unwrap_or_default(),
        chrono::DateTime::from_timestamp(T0 + DAYS * 86_400, 0).unwrap_or_default(),
    );

    // Discovery
    let source = CloudWatchSource::new(client.clone());
    let t = Instant::now();
    let found = source
        .discover(&[Service::Ec2])
        .await
        .unwrap_or_else(|e| fail(format!("discovery: {e}")));
    let discovery = t.elapsed();
    if found.len() != instances {
        fail(format!("discovered {} of {instances}", found.len()));
    }
    println!(
        "  discovery: {} instances, {} ListMetrics calls ({} series, 500 a page), {:.2} s",
        found.len(),
        source.calls().list_metrics,
        instances * METRICS.len(),
        discovery.as_secs_f64()
    );
    let requests: Vec<MetricRequest> = found
        .iter()
        .flat_map(|r| {
            METRICS.iter().map(|(metric, stat)| {
                MetricRequest::new(r.service, &r.id, "AWS/EC2", *metric, *stat, 3600, &[])
            })
        })
        .collect();
    let minimum = minimum_get_metric_data_calls(&requests, start, end);

    // Streamed: each series reduced to its point count and mean on arrival.
    let streamed = CloudWatchSource::new(client.clone());
    let rss_before = status_mb("VmRSS:");
    let resettable = reset_peak();
    let t = Instant::now();
    let mut complete = 0usize;
    let mut means = 0.0f64;
    streamed
        .fetch_with(&requests, start, end, |_, s| {
            if s.points.len() == HOURS {
                complete += 1;
            }
            means += s.points.iter().map(|p| p.value).sum::<f64>() / s.points.len().max(1) as f64;
        })
        .await
        .unwrap_or_else(|e| fail(format!("streamed fetch: {e}")));
    let stream_time = t.elapsed();
    let stream_peak = status_mb("VmHWM:");
    let stream_calls = streamed.calls().get_metric_data;
    println!(
        "  streamed fetch: {} GetMetricData calls, minimum {minimum}; {complete}/{} series \
         complete; {:.2} s; RSS {rss_before:.1} MB before, peak {stream_peak:.1} MB (+{:.1} MB)",
        stream_calls,
        requests.len(),
        stream_time.as_secs_f64(),
        stream_peak - rss_before,
    );
    std::hint::black_box(means);

    // Collected: every series kept, as MetricSource::fetch returns them.
    let collected = CloudWatchSource::new(client);
    let rss_before = status_mb("VmRSS:");
    reset_peak();
    let t = Instant::now();
    let series = collected
        .fetch(&requests, start, end)
        .await
        .unwrap_or_else(|e| fail(format!("fetch: {e}")));
    let fetch_time = t.elapsed();
    let fetch_peak = status_mb("VmHWM:");
    let rss_after = status_mb("VmRSS:");
    let fetch_calls = collected.calls().get_metric_data;
    let points: usize = series.iter().map(|s| s.points.len()).sum();
    println!(
        "  collected fetch: {fetch_calls} GetMetricData calls, minimum {minimum}; {points} points; \
         {:.2} s; RSS {rss_before:.1} MB before, peak {fetch_peak:.1} MB (+{:.1} MB), \
         {rss_after:.1} MB holding the series",
        fetch_time.as_secs_f64(),
        fetch_peak - rss_before,
    );
    if !resettable {
        println!("  (peak RSS could not be reset between phases: peaks are cumulative)");
    }
    println!(
        "  peak RSS of the bench process: {:.1} MB (seeding phase {seed_peak:.1} MB); \
         total wall time {:.1} s",
        seed_peak.max(stream_peak).max(fetch_peak),
        bench_start.elapsed().as_secs_f64()
    );

    if complete != requests.len() || points != requests.len() * HOURS {
        fail(format!(
            "incomplete: {complete} streamed series and {points} collected points"
        ));
    }
    if stream_calls != minimum || fetch_calls != minimum {
        fail(format!(
            "{stream_calls} / {fetch_calls} GetMetricData calls, minimum {minimum}"
        ));
    }
}
