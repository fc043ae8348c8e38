//! The computed cost forecast: its error on held-out data, and its speed.
//!
//! Synthetic daily history with a known trend and weekly pattern (plus 5 %
//! uniform noise): the method learns from 91 days and forecasts the next 30,
//! which are held out. Prints the MAPE over several seeds, and the share of
//! held-out days inside the 80 % interval.

use chrono::NaiveDate;
use criterion::{black_box, Criterion};
use shared::costs::forecast::{forecast, mape, synthetic_history};

const WEEKLY: [f64; 7] = [1.10, 1.15, 1.15, 1.10, 1.00, 0.75, 0.75];

fn main() {
    let start = NaiveDate::from_ymd_opt(2026, 1, 5).unwrap_or_default();
    let mut mapes = Vec::new();
    let mut naive_mapes = Vec::new();
    let (mut inside, mut total) = (0usize, 0usize);
    for seed in 1..=20u64 {
        let h = synthetic_history(start, 121, 400.0, 1.5, WEEKLY, 0.05, seed);
        let (train, test) = h.split_at(91);
        let f = match forecast(train, 30, 80) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("forecast failed: {e}");
                std::process::exit(1);
            }
        };
        let actual: Vec<f64> = test.iter().map(|(_, v)| *v).collect();
        let predicted: Vec<f64> = f.days.iter().map(|d| d.mean).collect();
        mapes.push(mape(&actual, &predicted));
        // Baseline: the mean of the last 28 days, flat.
        let last28 = train[train.len() - 28..].iter().map(|(_, v)| v).sum::<f64>() / 28.0;
        naive_mapes.push(mape(&actual, &vec![last28; 30]));
        for (a, d) in actual.iter().zip(&f.days) {
            total += 1;
            if *a >= d.lower && *a <= d.upper {
                inside += 1;
            }
        }
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let worst = mapes.iter().cloned().fold(0.0, f64::max);
    println!(
        "forecast MAPE on a held-out month (30 days after 91 of history, 5% noise, 20 seeds): mean {:.2}%, worst {:.2}%; flat 28-day-mean baseline {:.2}%; 80% interval covered {:.1}% of held-out days",
        mean(&mapes),
        worst,
        mean(&naive_mapes),
        inside as f64 * 100.0 / total as f64
    );
    let h = synthetic_history(start, 91, 400.0, 1.5, WEEKLY, 0.05, 1);
    let mut c = Criterion::default().configure_from_args();
    c.bench_function("forecast 30 days from 91 days of history", |b| {
        b.iter(|| forecast(black_box(&h), 30, 80))
    });
    c.final_summary();
}
