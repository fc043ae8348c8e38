//! Benchmark helpers: [`wire`] (every request counted, CloudWatch answered
//! in process per account and region), [`prices`] (list prices), [`org`]
//! (an Organization in the emulator) and [`worker`] (a processor worker in
//! a child process, as one Lambda execution environment).

pub mod org;
pub mod prices;
pub mod wire;
pub mod worker;

use shared::config::Env;

/// `key` from the process environment, parsed, or `default`.
pub fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    Env::process()
        .get(key)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A field of /proc/self/status, in kB (0 where there is no procfs).
pub fn status_kb(field: &str) -> u64 {
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

pub fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

/// The load average and the number of CPUs, as the machine reports them.
pub fn machine() -> String {
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "?".into());
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cpus} CPUs, load average {load}")
}

/// The median of `xs` (0 when empty).
pub fn median(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The `p`-th percentile of `xs` by nearest rank (0 when empty).
pub fn percentile(xs: &[f64], p: f64) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((p / 100.0 * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

/// A benchmark binary's `main`: a multi-threaded runtime, then `child` when
/// the process was started with `child_flag` (a worker the benchmark
/// spawned), else `bench`; a failure is printed as `<what> failed: ...`.
pub fn run<C, B>(what: &str, child_flag: &str, child: C, bench: B) -> std::process::ExitCode
where
    C: std::future::Future<Output = Result<(), String>>,
    B: std::future::Future<Output = Result<(), String>>,
{
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tokio runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = if std::env::args().any(|a| a == child_flag) {
        runtime.block_on(child)
    } else {
        runtime.block_on(bench)
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{what} failed: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
