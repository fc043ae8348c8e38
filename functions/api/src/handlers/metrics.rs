//! `/metrics`: samples ingested in batches, read back as one resource's
//! series or summarised over a set of resources.

use super::{problem, unprocessable, Ctx, Res};
use crate::error::{json_response, ApiError};
use crate::extract::{field, NoQuery};
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use serde_json::{json, Value};
use shared::analysis::metric_def;
use shared::domain::*;
use shared::store::*;

/// Most samples in one `POST /metrics`.
pub const MAX_METRIC_BATCH: usize = 1000;

const MAX_METRIC_RANGE_DAYS: i64 = 31;

/// Resource ids one ingest's audit entry names (a batch may touch 1,000).
const MAX_AUDITED_RESOURCES: usize = 50;

/// Most resources one `GET /metrics` summarises.
const MAX_SUMMARY_RESOURCES: usize = 20;
/// Most samples read per resource for a summary.
const MAX_SUMMARY_SAMPLES: usize = 2000;

/// The last 24 hours unless the query says otherwise.
fn range(
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<(DateTime<Utc>, DateTime<Utc>), ApiError> {
    let to = to.unwrap_or(now);
    // Checked: `to` is the client's, and chrono panics past its year range.
    let from = match from {
        Some(f) => f,
        None => to
            .checked_sub_signed(Duration::hours(24))
            .ok_or_else(|| ApiError::bad_request("to is out of range"))?,
    };
    if from >= to {
        return Err(ApiError::bad_request("from must be before to"));
    }
    if to - from > Duration::days(MAX_METRIC_RANGE_DAYS) {
        return Err(ApiError::bad_request(format!(
            "a metric query covers at most {MAX_METRIC_RANGE_DAYS} days"
        )));
    }
    Ok((from, to))
}

fn metric_name(metric: Option<String>) -> Result<String, ApiError> {
    match metric {
        Some(m)
            if m.len() <= 255
                && m.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.-:/".contains(c)) =>
        {
            Ok(m)
        }
        _ => Err(ApiError::bad_request(
            "metric is required (e.g. CPUUtilization)",
        )),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SeriesQuery {
    metric: Option<String>,
    #[serde(default, deserialize_with = "field::time")]
    from: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "field::time")]
    to: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "field::limit")]
    limit: Option<u32>,
    next_token: Option<String>,
}

/// `GET /metrics/{resourceId}`: one resource's points, paged.
pub async fn series(ctx: &Ctx<'_>, resource_id: &str, q: SeriesQuery) -> Res {
    let metric = metric_name(q.metric)?;
    let (from, to) = range(q.from, q.to, ctx.now)?;
    let mq = MetricQuery {
        resource_id: resource_id.into(),
        metric: metric.clone(),
        from,
        to,
    };
    let page = ctx
        .app
        .metrics
        .query(&mq, q.limit, q.next_token.as_deref(), ctx.now)
        .await?;
    let points: Vec<Value> = page
        .items
        .iter()
        .map(|s| json!({ "timestamp": s.timestamp, "value": s.value }))
        .collect();
    Ok(json_response(
        200,
        &json!({ "resourceId": resource_id, "metric": metric, "from": from, "to": to, "points": points, "nextToken": page.next_token }),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SummaryQuery {
    metric: Option<String>,
    resource_id: Option<String>,
    #[serde(default, deserialize_with = "field::parsed")]
    service: Option<Service>,
    tag: Option<String>,
    #[serde(default, deserialize_with = "field::time")]
    from: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "field::time")]
    to: Option<DateTime<Utc>>,
    next_token: Option<String>,
}

/// `GET /metrics`: a summary per resource, the resources named by id or by
/// an inventory filter (paged over the inventory).
pub async fn summary(ctx: &Ctx<'_>, q: SummaryQuery) -> Res {
    let metric = metric_name(q.metric)?;
    let (from, to) = range(q.from, q.to, ctx.now)?;
    let (ids, next): (Vec<String>, Option<String>) = match q.resource_id {
        Some(list) => {
            if q.service.is_some() || q.tag.is_some() || q.next_token.is_some() {
                return Err(ApiError::bad_request(
                    "resourceId cannot be combined with service, tag or nextToken",
                ));
            }
            let ids: Vec<String> = list
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
            if ids.is_empty() || ids.len() > MAX_SUMMARY_RESOURCES {
                return Err(ApiError::bad_request(format!(
                    "resourceId takes 1 to {MAX_SUMMARY_RESOURCES} comma-separated ids"
                )));
            }
            (ids, None)
        }
        None => {
            if q.service.is_none() && q.tag.is_none() {
                return Err(ApiError::bad_request(
                    "name the resources: resourceId, or service and/or tag",
                ));
            }
            let filter = InventoryFilter {
                service: q.service,
                tag: q.tag,
                ..InventoryFilter::default()
            };
            let page = ctx
                .app
                .inventory
                .list(
                    &filter,
                    Some(MAX_SUMMARY_RESOURCES as u32),
                    q.next_token.as_deref(),
                )
                .await?;
            (
                page.items.into_iter().map(|r| r.id).collect(),
                page.next_token,
            )
        }
    };
    let mut series = Vec::new();
    for id in ids {
        let mq = MetricQuery {
            resource_id: id.clone(),
            metric: metric.clone(),
            from,
            to,
        };
        let mut token: Option<String> = None;
        let (mut count, mut sum, mut min, mut max) =
            (0usize, 0.0f64, f64::INFINITY, f64::NEG_INFINITY);
        let mut latest: Option<(DateTime<Utc>, f64)> = None;
        let mut truncated = false;
        loop {
            let page = ctx
                .app
                .metrics
                .query(&mq, Some(100), token.as_deref(), ctx.now)
                .await?;
            for s in &page.items {
                count += 1;
                sum += s.value;
                min = min.min(s.value);
                max = max.max(s.value);
                if latest.is_none_or(|(t, _)| s.timestamp > t) {
                    latest = Some((s.timestamp, s.value));
                }
            }
            token = page.next_token;
            if token.is_none() {
                break;
            }
            if count >= MAX_SUMMARY_SAMPLES {
                truncated = true;
                break;
            }
        }
        series.push(json!({
            "resourceId": id,
            "count": count,
            "average": if count > 0 { Some(sum / count as f64) } else { None },
            "minimum": if count > 0 { Some(min) } else { None },
            "maximum": if count > 0 { Some(max) } else { None },
            "latest": latest.map(|(t, v)| json!({ "timestamp": t, "value": v })),
            "truncated": truncated,
        }));
    }
    Ok(json_response(
        200,
        &json!({ "metric": metric, "from": from, "to": to, "items": series, "nextToken": next }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsBody {
    samples: Vec<Value>,
}

pub async fn ingest(ctx: &Ctx<'_>, _: NoQuery, b: MetricsBody) -> Res {
    super::batch_bounds(b.samples.len(), MAX_METRIC_BATCH, "samples")?;
    let retention = ctx.app.config.metric_retention;
    let mut problems = Vec::new();
    let mut samples = Vec::with_capacity(b.samples.len());
    for (i, v) in b.samples.iter().enumerate() {
        let Some(obj) = v.as_object() else {
            problems.push(problem(i, "", "a sample must be an object"));
            continue;
        };
        for k in obj.keys() {
            if ![
                "resourceId",
                "service",
                "metric",
                "timestamp",
                "value",
                "unit",
            ]
            .contains(&k.as_str())
            {
                problems.push(problem(i, k, "unknown field"));
            }
        }
        let text = |k: &str| obj.get(k).and_then(Value::as_str);
        let resource_id = match text("resourceId") {
            Some(r) if !r.trim().is_empty() && r.len() <= 512 => Some(r.to_string()),
            _ => {
                problems.push(problem(i, "resourceId", "required, 1 to 512 characters"));
                None
            }
        };
        let service = match text("service").map(str::parse::<Service>) {
            Some(Ok(s)) => Some(s),
            Some(Err(e)) => {
                problems.push(problem(i, "service", e.to_string()));
                None
            }
            None => {
                problems.push(problem(i, "service", "required"));
                None
            }
        };
        let metric = match (text("metric"), service) {
            (Some(m), Some(s)) => {
                if metric_def(s, m).is_some() {
                    Some(m.to_string())
                } else {
                    problems.push(problem(
                        i,
                        "metric",
                        format!("unknown metric '{m}' for {s}"),
                    ));
                    None
                }
            }
            (Some(_), None) => None,
            (None, _) => {
                problems.push(problem(i, "metric", "required"));
                None
            }
        };
        let timestamp = match text("timestamp").map(DateTime::parse_from_rfc3339) {
            Some(Ok(t)) => {
                let t = t.with_timezone(&Utc);
                if t > ctx.now + Duration::minutes(5) {
                    problems.push(problem(i, "timestamp", "is in the future"));
                    None
                } else if t < ctx.now - retention {
                    problems.push(problem(
                        i,
                        "timestamp",
                        format!("is older than the {}-day retention", retention.num_days()),
                    ));
                    None
                } else {
                    Some(t)
                }
            }
            Some(Err(_)) => {
                problems.push(problem(
                    i,
                    "timestamp",
                    "must be an RFC 3339 time such as 2026-11-23T10:00:00Z",
                ));
                None
            }
            None => {
                problems.push(problem(i, "timestamp", "required"));
                None
            }
        };
        // JSON has no NaN or infinity; clients that send them as strings are told so.
        let value = match obj.get("value") {
            Some(Value::Number(n)) => match n.as_f64().map(number::storable) {
                Some(Ok(f)) => Some(f),
                Some(Err(e)) => {
                    problems.push(problem(i, "value", e.to_string()));
                    None
                }
                None => {
                    problems.push(problem(i, "value", "is not a finite number"));
                    None
                }
            },
            Some(Value::String(s)) => {
                problems.push(problem(
                    i,
                    "value",
                    match s.parse::<f64>() {
                        Ok(f) if !f.is_finite() => {
                            "is not a finite number (NaN and infinities are refused)"
                        }
                        _ => "must be a JSON number",
                    },
                ));
                None
            }
            Some(_) => {
                problems.push(problem(i, "value", "must be a JSON number"));
                None
            }
            None => {
                problems.push(problem(i, "value", "required"));
                None
            }
        };
        let unit = match obj.get("unit") {
            None | Some(Value::Null) => None,
            Some(Value::String(u)) if u.len() <= 32 => Some(u.clone()),
            Some(_) => {
                problems.push(problem(i, "unit", "must be a short string"));
                None
            }
        };
        if let (Some(resource_id), Some(service), Some(metric), Some(timestamp), Some(value)) =
            (resource_id, service, metric, timestamp, value)
        {
            samples.push(MetricSample {
                resource_id,
                service,
                metric,
                timestamp,
                value,
                unit,
            });
        }
    }
    if !problems.is_empty() {
        return Err(unprocessable("sample problem(s)", problems));
    }
    let written = ctx.app.metrics.put(&samples, ctx.now).await?;
    let resources: std::collections::BTreeSet<&str> =
        samples.iter().map(|s| s.resource_id.as_str()).collect();
    let first = samples.iter().map(|s| s.timestamp).min();
    let last = samples.iter().map(|s| s.timestamp).max();
    // The same batch from the same caller names the same entry: the metrics
    // write is idempotent, so a retry must not audit a second ingest.
    let content = serde_json::to_string(&samples).map_err(shared::Error::from)?;
    let batch_id = uuid::Uuid::new_v5(
        &uuid::Uuid::NAMESPACE_URL,
        format!("metrics|{}|{content}", ctx.actor).as_bytes(),
    )
    .to_string();
    let listed: Vec<&str> = resources
        .iter()
        .copied()
        .take(MAX_AUDITED_RESOURCES)
        .collect();
    let mut entry = ctx.audit_entry(
        "metrics",
        &batch_id,
        AuditAction::MetricsIngested,
        None,
        Some(json!({
            "samples": samples.len(), "written": written, "resources": resources.len(),
            "resourceIds": listed, "resourceIdsTruncated": resources.len() > listed.len(),
            "from": first, "to": last,
        })),
    );
    entry.id = batch_id.clone();
    let earlier = AuditQuery {
        entity_id: Some(batch_id.clone()),
        ..AuditQuery::default()
    };
    let seen = ctx
        .app
        .audit
        .query(&earlier, Some(1), None, ctx.now)
        .await?;
    if seen.items.is_empty() {
        match ctx.app.audit.append(&entry).await {
            // A retry racing this one within the same second wrote it.
            Ok(()) | Err(shared::Error::AlreadyExists { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(json_response(
        200,
        &json!({ "accepted": samples.len(), "written": written, "auditId": entry.id }),
    ))
}
