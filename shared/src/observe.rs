//! Cycle metrics as CloudWatch Embedded Metric Format (EMF) log lines.
//!
//! One JSON object printed on its own line in a Lambda function's log is
//! turned into CloudWatch metrics by CloudWatch Logs itself: no PutMetricData
//! call, no extra latency, no extra IAM permission. The processor prints one
//! line when a cycle completes and one when it fails for good; the alarm on
//! failed cycles (template.yaml, `FailedCyclesAlarm`) reads `CyclesFailed`.
//!
//! Metrics land in namespace [`NAMESPACE`] with one dimension, `Stack`
//! (env `FINOPS_STACK`, set by the template to the stack name), so two
//! stacks in one account never mix their figures.

use crate::domain::{CycleRun, RunStatus};
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};
use std::sync::atomic::{AtomicU64, Ordering};

pub const NAMESPACE: &str = "FinOpsLambda";
pub const STACK_DIMENSION: &str = "Stack";

/// EMF units used here (a subset of CloudWatch's StandardUnit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Milliseconds,
    Count,
    None,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::Milliseconds => "Milliseconds",
            Unit::Count => "Count",
            Unit::None => "None",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    pub name: &'static str,
    pub unit: Unit,
    pub value: f64,
}

impl Metric {
    pub fn new(name: &'static str, unit: Unit, value: f64) -> Metric {
        Metric { name, unit, value }
    }
}

/// One EMF document: the metrics under `_aws.CloudWatchMetrics`, their
/// values and the dimension values as top-level members, and `properties`
/// (searchable in Logs Insights, not metrics) beside them. A non-finite
/// value is written as 0: EMF drops a document with a NaN in it.
pub fn document(
    namespace: &str,
    dimensions: &[(&str, &str)],
    metrics: &[Metric],
    properties: Map<String, Value>,
    at: DateTime<Utc>,
) -> Value {
    let mut doc = properties;
    for (name, value) in dimensions {
        doc.insert((*name).to_string(), Value::String((*value).to_string()));
    }
    for m in metrics {
        let v = if m.value.is_finite() { m.value } else { 0.0 };
        doc.insert(m.name.to_string(), json!(v));
    }
    let dimension_set: Vec<&str> = dimensions.iter().map(|(n, _)| *n).collect();
    let definitions: Vec<Value> = metrics
        .iter()
        .map(|m| json!({ "Name": m.name, "Unit": m.unit.as_str() }))
        .collect();
    doc.insert(
        "_aws".into(),
        json!({
            "Timestamp": at.timestamp_millis(),
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": [dimension_set],
                "Metrics": definitions,
            }],
        }),
    );
    Value::Object(doc)
}

static NOTIFICATION_FAILURES: AtomicU64 = AtomicU64::new(0);

/// Counts deliveries a notifier gave up on (a channel that answered with an
/// error, a webhook that timed out). Notifiers handle delivery problems
/// themselves; this makes them visible in the next cycle's metrics.
pub fn notification_failed(count: u64) {
    NOTIFICATION_FAILURES.fetch_add(count, Ordering::Relaxed);
}

/// The failures counted since the last call (a Lambda process handles one
/// event at a time, so these are the ones of the cycle being reported).
pub fn take_notification_failures() -> u64 {
    NOTIFICATION_FAILURES.swap(0, Ordering::Relaxed)
}

static STACK: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Names the stack the metrics are reported under (`FINOPS_STACK`, read
/// with the rest of the configuration at start-up); `local` until then.
pub fn set_stack(name: Option<String>) {
    let _ = STACK.set(name.unwrap_or_else(|| "local".to_string()));
}

fn stack() -> String {
    STACK.get().cloned().unwrap_or_else(|| "local".to_string())
}

/// The EMF document of a finished cycle (succeeded or partial).
pub fn cycle_completed_document(
    run: &CycleRun,
    stack: &str,
    notification_failures: u64,
    at: DateTime<Utc>,
) -> Value {
    let finished = run.finished_at.unwrap_or(at);
    let duration_ms = (finished - run.started_at).num_milliseconds().max(0) as f64;
    let flag = |s: RunStatus| if run.status == s { 1.0 } else { 0.0 };
    let metrics = [
        Metric::new("CycleDuration", Unit::Milliseconds, duration_ms),
        Metric::new(
            "ResourcesAnalysed",
            Unit::Count,
            run.resources_analysed as f64,
        ),
        Metric::new("Findings", Unit::Count, run.findings as f64),
        Metric::new("Recommendations", Unit::Count, run.recommendations as f64),
        Metric::new("MonthlySavingsUsd", Unit::None, run.monthly_savings_usd),
        Metric::new(
            "NotificationFailures",
            Unit::Count,
            notification_failures as f64,
        ),
        Metric::new("CyclesSucceeded", Unit::Count, flag(RunStatus::Succeeded)),
        Metric::new("CyclesPartial", Unit::Count, flag(RunStatus::Partial)),
        Metric::new("CyclesFailed", Unit::Count, 0.0),
    ];
    let mut properties = Map::new();
    properties.insert("event".into(), json!("cycle.metrics"));
    properties.insert("jobId".into(), json!(run.job_id));
    properties.insert("cycleId".into(), json!(run.run_id));
    properties.insert("status".into(), json!(run.status));
    properties.insert("trigger".into(), json!(run.trigger));
    document(
        NAMESPACE,
        &[(STACK_DIMENSION, stack)],
        &metrics,
        properties,
        at,
    )
}

/// The EMF document of a cycle that failed for good (non-retryable, or
/// its last delivery).
pub fn cycle_failed_document(job_id: &str, error: &str, stack: &str, at: DateTime<Utc>) -> Value {
    let mut properties = Map::new();
    properties.insert("event".into(), json!("cycle.metrics"));
    properties.insert("jobId".into(), json!(job_id));
    properties.insert("status".into(), json!(RunStatus::Failed));
    properties.insert("error".into(), json!(error));
    document(
        NAMESPACE,
        &[(STACK_DIMENSION, stack)],
        &[Metric::new("CyclesFailed", Unit::Count, 1.0)],
        properties,
        at,
    )
}

/// Prints an EMF document. In Lambda it must be a log line of its own (that
/// is what CloudWatch Logs extracts); elsewhere it goes to the log.
fn emit(doc: &Value) {
    if crate::config::in_lambda() {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{doc}");
        let _ = out.flush();
    } else {
        tracing::info!(emf = %doc, "cycle metrics");
    }
}

/// Reports a completed cycle (called once, where the cycle completes).
pub fn cycle_completed(run: &CycleRun) {
    emit(&cycle_completed_document(
        run,
        &stack(),
        take_notification_failures(),
        Utc::now(),
    ));
}

/// Reports a cycle that failed for good.
pub fn cycle_failed(job_id: &str, error: &str) {
    take_notification_failures();
    emit(&cycle_failed_document(job_id, error, &stack(), Utc::now()));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Trigger;
    use chrono::TimeZone;

    fn run(status: RunStatus) -> CycleRun {
        let start = Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap();
        CycleRun {
            run_id: "job-1".into(),
            job_id: "job-1".into(),
            trigger: Trigger::Scheduled,
            status,
            started_at: start,
            finished_at: Some(start + chrono::Duration::milliseconds(83_250)),
            stages: vec![],
            resources_analysed: 1000,
            findings: 412,
            recommendations: 397,
            monthly_savings_usd: 18_234.5,
            threshold_version: Some(1),
            error: None,
            dry_run: false,
        }
    }

    /// Checks a document against the EMF specification: `_aws` with an
    /// integer millisecond Timestamp and CloudWatchMetrics directives, each
    /// dimension and metric a top-level member of the right type, at most 30
    /// dimensions and 100 metrics, units from CloudWatch's list.
    fn assert_emf(doc: &Value) {
        let aws = &doc["_aws"];
        assert!(aws["Timestamp"].is_i64(), "Timestamp is integer ms: {doc}");
        let directives = aws["CloudWatchMetrics"].as_array().expect("directives");
        assert!(!directives.is_empty());
        for d in directives {
            assert!(!d["Namespace"].as_str().unwrap().is_empty());
            for set in d["Dimensions"].as_array().unwrap() {
                let set = set.as_array().unwrap();
                assert!(set.len() <= 30);
                for name in set {
                    let name = name.as_str().unwrap();
                    assert!(doc[name].is_string(), "dimension {name} has a string value");
                }
            }
            let metrics = d["Metrics"].as_array().unwrap();
            assert!(!metrics.is_empty() && metrics.len() <= 100);
            for m in metrics {
                let name = m["Name"].as_str().unwrap();
                assert!(
                    ["Milliseconds", "Count", "None"].contains(&m["Unit"].as_str().unwrap()),
                    "unit of {name}"
                );
                let v = doc[name].as_f64().unwrap_or(f64::NAN);
                assert!(v.is_finite(), "metric {name} has a number: {doc}");
            }
        }
    }

    #[test]
    fn a_completed_cycle_is_one_emf_document_with_every_figure() {
        let at = Utc.with_ymd_and_hms(2026, 11, 23, 10, 1, 30).unwrap();
        let doc = cycle_completed_document(&run(RunStatus::Succeeded), "prod-stack", 3, at);
        assert_emf(&doc);
        assert_eq!(doc["_aws"]["Timestamp"], json!(at.timestamp_millis()));
        let d = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(d["Namespace"], json!("FinOpsLambda"));
        assert_eq!(d["Dimensions"], json!([["Stack"]]));
        assert_eq!(doc["Stack"], json!("prod-stack"));
        assert_eq!(doc["CycleDuration"], json!(83_250.0));
        assert_eq!(doc["ResourcesAnalysed"], json!(1000.0));
        assert_eq!(doc["Findings"], json!(412.0));
        assert_eq!(doc["Recommendations"], json!(397.0));
        assert_eq!(doc["MonthlySavingsUsd"], json!(18_234.5));
        assert_eq!(doc["NotificationFailures"], json!(3.0));
        assert_eq!(doc["CyclesSucceeded"], json!(1.0));
        assert_eq!(doc["CyclesPartial"], json!(0.0));
        assert_eq!(doc["CyclesFailed"], json!(0.0));
        assert_eq!(doc["jobId"], json!("job-1"));
        assert_eq!(doc["status"], json!("succeeded"));
        let names: Vec<&str> = d["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["Name"].as_str().unwrap())
            .collect();
        assert_eq!(names.len(), 9);
        assert_eq!(
            d["Metrics"][0],
            json!({"Name": "CycleDuration", "Unit": "Milliseconds"})
        );
        // One line: CloudWatch Logs reads one JSON object per log event.
        assert!(!doc.to_string().contains('\n'));
    }

    #[test]
    fn a_partial_cycle_counts_as_partial_not_succeeded() {
        let doc = cycle_completed_document(&run(RunStatus::Partial), "s", 0, Utc::now());
        assert_eq!(doc["CyclesSucceeded"], json!(0.0));
        assert_eq!(doc["CyclesPartial"], json!(1.0));
    }

    #[test]
    fn a_failed_cycle_reports_cycles_failed_for_the_alarm() {
        let doc = cycle_failed_document("job-9", "boom", "prod-stack", Utc::now());
        assert_emf(&doc);
        assert_eq!(doc["CyclesFailed"], json!(1.0));
        assert_eq!(doc["Stack"], json!("prod-stack"));
        assert_eq!(doc["jobId"], json!("job-9"));
        assert_eq!(doc["status"], json!("failed"));
    }

    #[test]
    fn non_finite_values_never_reach_the_document() {
        let doc = document(
            NAMESPACE,
            &[(STACK_DIMENSION, "s")],
            &[Metric::new("X", Unit::None, f64::NAN)],
            Map::new(),
            Utc::now(),
        );
        assert_emf(&doc);
        assert_eq!(doc["X"], json!(0.0));
    }

    #[test]
    fn notification_failures_are_taken_once() {
        take_notification_failures();
        notification_failed(2);
        notification_failed(1);
        assert_eq!(take_notification_failures(), 3);
        assert_eq!(take_notification_failures(), 0);
    }
}
