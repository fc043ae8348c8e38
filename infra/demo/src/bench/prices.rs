//! What the requests of a [`Tally`] cost at AWS list prices (us-east-1,
//! on demand, without free tiers). The figures, and only these, are used;
//! check them against the current price pages before quoting a total.

use super::wire::Tally;

/// CloudWatch GetMetricData: USD per 1,000 metrics requested.
pub const GET_METRIC_DATA_PER_1000_METRICS: f64 = 0.01;
/// CloudWatch ListMetrics and the other API requests: USD per 1,000 requests.
pub const CLOUDWATCH_PER_1000_REQUESTS: f64 = 0.01;
/// Cost Explorer API: USD per request.
pub const COST_EXPLORER_PER_REQUEST: f64 = 0.01;
/// SQS standard queue: USD per million requests (64 KB chunks).
pub const SQS_PER_MILLION: f64 = 0.40;
/// DynamoDB on demand: USD per million write request units.
pub const DYNAMODB_WRITE_PER_MILLION: f64 = 0.625;
/// DynamoDB on demand: USD per million read request units.
pub const DYNAMODB_READ_PER_MILLION: f64 = 0.125;

/// One line of the bill.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub what: String,
    pub quantity: String,
    pub usd: f64,
}

/// The bill of `tally`: CloudWatch, Cost Explorer, SQS and DynamoDB (the
/// read-only describe and list calls, STS and Organizations cost nothing).
pub fn bill(tally: &Tally) -> Vec<Line> {
    let mut lines = Vec::new();
    let sum = |f: &dyn Fn(&str, &super::wire::OpStats) -> u64| -> u64 {
        tally.iter().map(|(k, s)| f(k, s)).sum()
    };
    let gmd_metrics = sum(&|k, s| {
        if k == "CloudWatch:GetMetricData" {
            s.metrics
        } else {
            0
        }
    });
    let gmd_calls = sum(&|k, s| {
        if k == "CloudWatch:GetMetricData" {
            s.calls
        } else {
            0
        }
    });
    lines.push(Line {
        what: "CloudWatch GetMetricData".into(),
        quantity: format!("{gmd_metrics} metrics in {gmd_calls} calls"),
        usd: gmd_metrics as f64 / 1000.0 * GET_METRIC_DATA_PER_1000_METRICS,
    });
    let cw_other = sum(&|k, s| {
        if k.starts_with("CloudWatch:") && k != "CloudWatch:GetMetricData" {
            s.calls
        } else {
            0
        }
    });
    lines.push(Line {
        what: "CloudWatch ListMetrics and other requests".into(),
        quantity: format!("{cw_other} requests"),
        usd: cw_other as f64 / 1000.0 * CLOUDWATCH_PER_1000_REQUESTS,
    });
    let ce = sum(&|k, s| {
        if k.starts_with("Cost Explorer:") {
            s.calls
        } else {
            0
        }
    });
    lines.push(Line {
        what: "Cost Explorer".into(),
        quantity: format!("{ce} requests"),
        usd: ce as f64 * COST_EXPLORER_PER_REQUEST,
    });
    let sqs = sum(&|k, s| if k.starts_with("SQS:") { s.billed } else { 0 });
    let sqs_calls = sum(&|k, s| if k.starts_with("SQS:") { s.calls } else { 0 });
    lines.push(Line {
        what: "SQS".into(),
        quantity: format!("{sqs} billed requests ({sqs_calls} calls)"),
        usd: sqs as f64 / 1e6 * SQS_PER_MILLION,
    });
    let wru = sum(&|k, s| {
        if k.starts_with("DynamoDB:") {
            s.write_units
        } else {
            0
        }
    });
    let rru = sum(&|k, s| {
        if k.starts_with("DynamoDB:") {
            s.read_units
        } else {
            0
        }
    });
    let ddb_calls = sum(&|k, s| {
        if k.starts_with("DynamoDB:") {
            s.calls
        } else {
            0
        }
    });
    lines.push(Line {
        what: "DynamoDB (on demand)".into(),
        quantity: format!("~{wru} WRU + ~{rru} RRU ({ddb_calls} calls)"),
        usd: wru as f64 / 1e6 * DYNAMODB_WRITE_PER_MILLION
            + rru as f64 / 1e6 * DYNAMODB_READ_PER_MILLION,
    });
    lines
}

/// The prices used, as one line for a report.
pub fn basis() -> String {
    format!(
        "list prices used: GetMetricData USD {GET_METRIC_DATA_PER_1000_METRICS} / 1,000 metrics; \
         other CloudWatch requests USD {CLOUDWATCH_PER_1000_REQUESTS} / 1,000; Cost Explorer \
         USD {COST_EXPLORER_PER_REQUEST} / request; SQS standard USD {SQS_PER_MILLION} / million \
         requests (64 KB each); DynamoDB on demand USD {DYNAMODB_WRITE_PER_MILLION} / million \
         WRU and USD {DYNAMODB_READ_PER_MILLION} / million RRU (us-east-1, no free tier); \
         describe / list calls, STS and Organizations are free"
    )
}
