//! One function per operation. Each validates its input fully before it
//! writes anything, so bad input changes nothing.

use crate::{json_response, ApiError, App, MAX_BODY_BYTES, MAX_METRIC_BATCH, MAX_RESOURCE_BATCH};
use chrono::{DateTime, Duration, Utc};
use futures::StreamExt;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Deserialize;
use serde_json::{json, Value};
use shared::analysis::{default_thresholds, metric_def, validate_set};
use shared::approvals::{self, DecisionInput};
use shared::costs::{CostQuery, Costs};
use shared::domain::*;
use shared::dynamo::ConnectionStatsSource;
use shared::jobs::{submit, Submitted};
use shared::notify::Event;
use shared::store::*;
use std::collections::BTreeMap;

type Res = Result<Response<Body>, ApiError>;

pub struct Ctx<'a> {
    pub app: &'a App,
    pub req: &'a Request,
    pub actor: String,
    pub now: DateTime<Utc>,
}

/// Query parameters every listing accepts, and the ones each operation knows.
fn check_query(ctx: &Ctx<'_>, known: &[&str]) -> Result<(), ApiError> {
    let q = ctx.req.query_string_parameters();
    let unknown: Vec<String> = q
        .iter()
        .map(|(k, _)| k.to_string())
        .filter(|k| !known.contains(&k.as_str()))
        .collect();
    check_lengths(ctx)?;
    if !unknown.is_empty() {
        return Err(ApiError::bad_request(format!(
            "unknown query parameter(s): {}; this operation takes: {}",
            unknown.join(", "),
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        ))
        .with_details(json!({ "unknown": unknown })));
    }
    Ok(())
}

fn query(ctx: &Ctx<'_>, name: &str) -> Option<String> {
    ctx.req
        .query_string_parameters_ref()
        .and_then(|q| q.first(name))
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

/// What DynamoDB can store and give back: numbers within its range
/// (|x| < 1e125, kept far lower here), no empty map keys, bounded nesting.
fn storable(v: &Value, depth: usize) -> Result<(), &'static str> {
    if depth > 16 {
        return Err("nested too deeply");
    }
    match v {
        Value::Number(n) => match n.as_f64() {
            Some(f) if f.is_finite() && f.abs() < 1e15 => Ok(()),
            _ => Err("a number is out of range (|x| < 1e15)"),
        },
        Value::Array(a) => a.iter().try_for_each(|x| storable(x, depth + 1)),
        Value::Object(m) => m.iter().try_for_each(|(k, x)| {
            if k.is_empty() {
                Err("an object has an empty key")
            } else {
                storable(x, depth + 1)
            }
        }),
        _ => Ok(()),
    }
}

/// Longest text a filter may carry: DynamoDB keys are at most 2,048 bytes
/// and attribute names 255, so longer values could only fail further in.
const MAX_FILTER_BYTES: usize = 512;

fn check_lengths(ctx: &Ctx<'_>) -> Result<(), ApiError> {
    if let Some(q) = ctx.req.query_string_parameters_ref() {
        for (k, v) in q.iter() {
            if v.len() > MAX_FILTER_BYTES && k != "nextToken" {
                return Err(ApiError::bad_request(format!(
                    "{k} is longer than {MAX_FILTER_BYTES} bytes"
                )));
            }
        }
    }
    if let Some(tag) = query(ctx, "tag") {
        let key = tag.split_once('=').map_or(tag.as_str(), |(k, _)| k);
        if key.is_empty() || key.len() > 128 {
            return Err(ApiError::bad_request(
                "tag must be 'key' or 'key=value', the key 1 to 128 bytes",
            ));
        }
    }
    Ok(())
}

fn limit(ctx: &Ctx<'_>) -> Result<Option<u32>, ApiError> {
    match query(ctx, "limit") {
        None => Ok(None),
        Some(v) => match v.parse::<u32>() {
            Ok(n) if (1..=100).contains(&n) => Ok(Some(n)),
            _ => Err(ApiError::bad_request(format!(
                "limit must be an integer from 1 to 100, got '{v}'"
            ))),
        },
    }
}

fn next_token(ctx: &Ctx<'_>) -> Option<String> {
    query(ctx, "nextToken").filter(|t| !t.is_empty())
}

fn time_param(ctx: &Ctx<'_>, name: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
    match query(ctx, name) {
        None => Ok(None),
        Some(v) => DateTime::parse_from_rfc3339(&v)
            .map(|t| Some(t.with_timezone(&Utc)))
            .map_err(|_| {
                ApiError::bad_request(format!(
                    "{name} must be an RFC 3339 time such as 2026-11-23T10:00:00Z, got '{v}'"
                ))
            }),
    }
}

fn body_bytes<'a>(ctx: &'a Ctx<'_>) -> Result<&'a [u8], ApiError> {
    let bytes: &[u8] = match ctx.req.body() {
        Body::Empty => &[],
        Body::Text(t) => t.as_bytes(),
        Body::Binary(b) => b,
        _ => &[],
    };
    if bytes.len() > MAX_BODY_BYTES {
        return Err(ApiError::new(
            413,
            "payload_too_large",
            format!("the body is larger than {MAX_BODY_BYTES} bytes"),
        ));
    }
    Ok(bytes)
}

/// Parses the JSON body as `T`; an empty body is `{}` when `T` allows it.
fn body<T: serde::de::DeserializeOwned>(ctx: &Ctx<'_>) -> Result<T, ApiError> {
    let bytes = body_bytes(ctx)?;
    let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        bytes
    };
    serde_json::from_slice(bytes).map_err(|e| {
        ApiError::bad_request(format!("the body is not valid for this operation: {e}"))
    })
}

fn page_json<T: serde::Serialize>(page: Page<T>) -> Value {
    json!({ "items": page.items, "nextToken": page.next_token })
}

fn audit_entry(
    ctx: &Ctx<'_>,
    entity_type: &str,
    entity_id: &str,
    action: &str,
    pre: Option<Value>,
    post: Option<Value>,
) -> AuditEntry {
    AuditEntry {
        id: uuid::Uuid::new_v4().to_string(),
        entity_type: entity_type.into(),
        entity_id: entity_id.into(),
        action: action.into(),
        actor: ctx.actor.clone(),
        at: ctx.now,
        outcome: Some("succeeded".into()),
        reason: None,
        pre_state: pre,
        post_state: post,
        correlation_id: ctx
            .req
            .lambda_context_ref()
            .map(|c| c.request_id.clone())
            .filter(|id| !id.is_empty()),
    }
}

pub async fn health(ctx: &Ctx<'_>) -> Res {
    check_query(ctx, &[])?;
    Ok(json_response(
        200,
        &json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION"), "time": ctx.now }),
    ))
}

// ---- approvals ----

pub async fn list_approvals(ctx: &Ctx<'_>) -> Res {
    check_query(
        ctx,
        &["status", "service", "resourceId", "limit", "nextToken"],
    )?;
    let status = match query(ctx, "status") {
        None => None,
        Some(s) => Some(ApprovalStatus::parse(&s).ok_or_else(|| {
            ApiError::bad_request(format!(
                "status must be one of pending, approved, rejected, expired, cancelled, executed, failed; got '{s}'"
            ))
        })?),
    };
    let service = match query(ctx, "service") {
        None => None,
        Some(s) => Some(
            s.parse::<Service>()
                .map_err(|e| ApiError::bad_request(e.to_string()))?,
        ),
    };
    let filter = ApprovalFilter {
        status,
        service,
        resource_id: query(ctx, "resourceId"),
    };
    let page = ctx
        .app
        .approvals
        .list(&filter, limit(ctx)?, next_token(ctx).as_deref())
        .await?;
    Ok(json_response(200, &page_json(page)))
}

pub async fn get_approval(ctx: &Ctx<'_>, id: &str) -> Res {
    check_query(ctx, &[])?;
    let request = ctx
        .app
        .approvals
        .get(id)
        .await?
        .ok_or_else(|| shared::Error::not_found("approval request", id))?;
    let decisions = ctx.app.approvals.decisions(id).await?;
    Ok(json_response(
        200,
        &json!({ "request": request, "decisions": decisions }),
    ))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Reject,
    Execute,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionBody {
    reason: Option<String>,
    outcome: Option<String>,
    details: Option<Value>,
}

const MAX_REASON: usize = 2000;

pub async fn decide(ctx: &Ctx<'_>, id: &str, which: Decision) -> Res {
    check_query(ctx, &[])?;
    let b: DecisionBody = body(ctx)?;
    let reason = b
        .reason
        .map(|r| r.trim().to_string())
        .filter(|r| !r.is_empty());
    if reason
        .as_ref()
        .is_some_and(|r| r.chars().count() > MAX_REASON)
    {
        return Err(ApiError::new(
            422,
            "unprocessable",
            format!("reason is longer than {MAX_REASON} characters"),
        ));
    }
    let event = match which {
        Decision::Approve => {
            if b.outcome.is_some() || b.details.is_some() {
                return Err(ApiError::bad_request("approve takes only 'reason'"));
            }
            ApprovalEvent::Approve
        }
        Decision::Reject => {
            if b.outcome.is_some() || b.details.is_some() {
                return Err(ApiError::bad_request("reject takes only 'reason'"));
            }
            if reason.is_none() {
                return Err(
                    ApiError::new(422, "unprocessable", "a rejection needs a reason")
                        .with_details(json!({ "field": "reason" })),
                );
            }
            ApprovalEvent::Reject
        }
        Decision::Execute => match b.outcome.as_deref() {
            Some("executed") => ApprovalEvent::ExecuteSucceeded,
            Some("failed") => ApprovalEvent::ExecuteFailed,
            Some(other) => {
                return Err(ApiError::new(
                    422,
                    "unprocessable",
                    format!("outcome must be 'executed' or 'failed', got '{other}'"),
                )
                .with_details(json!({ "field": "outcome" })))
            }
            None => {
                return Err(ApiError::new(
                    422,
                    "unprocessable",
                    "outcome is required: 'executed' or 'failed'",
                )
                .with_details(json!({ "field": "outcome" })))
            }
        },
    };
    if let Some(d) = &b.details {
        if !d.is_object() {
            return Err(ApiError::new(
                422,
                "unprocessable",
                "details must be an object",
            ));
        }
        if let Err(p) = storable(d, 0) {
            return Err(ApiError::new(422, "unprocessable", format!("details: {p}")));
        }
        if d.to_string().len() > 16 * 1024 {
            return Err(ApiError::new(
                413,
                "payload_too_large",
                "details are larger than 16 KB",
            ));
        }
    }
    let mut input = DecisionInput::new(event, ctx.actor.clone());
    input.reason = reason;
    input.details = b.details;
    input.correlation_id = ctx
        .req
        .lambda_context_ref()
        .map(|c| c.request_id.clone())
        .filter(|id| !id.is_empty());
    let (request, decision) = approvals::decide(&ctx.app.approvals, id, input, ctx.now).await?;
    let event = Event::ApprovalDecisionMade {
        request: request.clone(),
        decision: decision.clone(),
    };
    // The decision is recorded; a delivery problem must not turn it into an error.
    if let Err(e) = ctx.app.notifier.publish(&event).await {
        tracing::warn!(error = %e, request_id = %request.id, "decision not published");
    }
    Ok(json_response(
        200,
        &json!({ "request": request, "decision": decision }),
    ))
}

// ---- recommendations ----

pub async fn recommendations(ctx: &Ctx<'_>) -> Res {
    check_query(ctx, &["service"])?;
    let service = match query(ctx, "service") {
        None => None,
        Some(s) => Some(
            s.parse::<Service>()
                .map_err(|e| ApiError::bad_request(e.to_string()))?,
        ),
    };
    let runs = ctx.app.cycles.recent_runs(100).await?;
    let latest = runs
        .into_iter()
        .find(|r| matches!(r.status, RunStatus::Succeeded | RunStatus::Partial));
    let Some(run) = latest else {
        return Ok(json_response(
            200,
            &json!({ "cycle": null, "items": [], "totals": { "count": 0, "monthlySavingsUsd": 0.0, "unpriced": 0, "byService": {} } }),
        ));
    };
    let mut items = ctx.app.recommendations.all(&run.job_id).await?;
    if let Some(s) = service {
        items.retain(|r| r.service == s);
    }
    items.sort_by(|a, b| {
        b.monthly_savings_usd
            .unwrap_or(0.0)
            .total_cmp(&a.monthly_savings_usd.unwrap_or(0.0))
    });
    let mut by_service: BTreeMap<String, (u64, f64)> = BTreeMap::new();
    let mut total = 0.0;
    let mut unpriced = 0;
    for r in &items {
        let e = by_service.entry(r.service.to_string()).or_default();
        e.0 += 1;
        match r.monthly_savings_usd {
            Some(v) => {
                e.1 += v;
                total += v;
            }
            None => unpriced += 1,
        }
    }
    let by_service: BTreeMap<String, Value> = by_service
        .into_iter()
        .map(|(k, (c, v))| (k, json!({ "count": c, "monthlySavingsUsd": round2(v) })))
        .collect();
    Ok(json_response(
        200,
        &json!({
            "cycle": { "runId": run.run_id, "jobId": run.job_id, "status": run.status, "startedAt": run.started_at, "finishedAt": run.finished_at },
            "items": items,
            "totals": { "count": items.len(), "monthlySavingsUsd": round2(total), "unpriced": unpriced, "byService": by_service },
        }),
    ))
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

// ---- resources ----

pub async fn list_resources(ctx: &Ctx<'_>) -> Res {
    check_query(ctx, &["service", "tag", "limit", "nextToken"])?;
    let service = match query(ctx, "service") {
        None => None,
        Some(s) => Some(
            s.parse::<Service>()
                .map_err(|e| ApiError::bad_request(e.to_string()))?,
        ),
    };
    let tag = query(ctx, "tag");
    if tag
        .as_deref()
        .is_some_and(|t| t.is_empty() || t.starts_with('=') || t.len() > 256)
    {
        return Err(ApiError::bad_request("tag must be 'key' or 'key=value'"));
    }
    let filter = InventoryFilter { service, tag };
    let page = ctx
        .app
        .inventory
        .list(&filter, limit(ctx)?, next_token(ctx).as_deref())
        .await?;
    Ok(json_response(200, &page_json(page)))
}

pub async fn get_resource(ctx: &Ctx<'_>, id: &str) -> Res {
    check_query(ctx, &[])?;
    let r = ctx
        .app
        .inventory
        .get(id)
        .await?
        .ok_or_else(|| shared::Error::not_found("resource", id))?;
    Ok(json_response(
        200,
        &serde_json::to_value(r).map_err(shared::Error::from)?,
    ))
}

/// Largest resource record accepted: its audit entry carries it twice and
/// must stay well under DynamoDB's 400 KB item limit.
const MAX_RESOURCE_BYTES: usize = 32 * 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResourcesBody {
    resources: Vec<Value>,
}

fn problem(index: usize, field: &str, problem: impl Into<String>) -> Value {
    json!({ "index": index, "field": field, "problem": problem.into() })
}

fn unprocessable(what: &str, problems: Vec<Value>) -> ApiError {
    ApiError::new(
        422,
        "unprocessable",
        format!("{} {what} refused; nothing was written", problems.len()),
    )
    .with_details(json!({ "problems": problems }))
}

pub async fn upsert_resources(ctx: &Ctx<'_>) -> Res {
    check_query(ctx, &[])?;
    let b: ResourcesBody = body(ctx)?;
    if b.resources.len() > MAX_RESOURCE_BATCH {
        return Err(ApiError::new(
            413,
            "payload_too_large",
            format!(
                "at most {MAX_RESOURCE_BATCH} resources per request, got {}",
                b.resources.len()
            ),
        ));
    }
    if b.resources.is_empty() {
        return Err(ApiError::new(422, "unprocessable", "resources is empty"));
    }
    let mut problems = Vec::new();
    let mut resources = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for (i, v) in b.resources.into_iter().enumerate() {
        if let Some(s) = v.get("service").and_then(Value::as_str) {
            if s.parse::<Service>().is_err() {
                problems.push(problem(i, "service", format!("unknown service '{s}'")));
                continue;
            }
        }
        if let Err(p) = storable(&v, 0) {
            problems.push(problem(i, "", p));
            continue;
        }
        let r: Resource = match serde_json::from_value(v) {
            Ok(r) => r,
            Err(e) => {
                problems.push(problem(i, "", e.to_string()));
                continue;
            }
        };
        if r.id.trim().is_empty() || r.id.len() > 512 {
            problems.push(problem(i, "id", "must be 1 to 512 characters"));
        }
        if r.region.trim().is_empty() || r.region.len() > 64 {
            problems.push(problem(i, "region", "must be 1 to 64 characters"));
        }
        if r.monthly_cost_usd
            .is_some_and(|c| !c.is_finite() || c < 0.0)
        {
            problems.push(problem(i, "monthlyCostUsd", "must be a finite number >= 0"));
        }
        if r.memory_mb == Some(0) {
            problems.push(problem(i, "memoryMb", "must be positive"));
        }
        if r.tags.len() > 50 {
            problems.push(problem(i, "tags", "at most 50 tags"));
        }
        if r.relations.len() > 100 {
            problems.push(problem(i, "relations", "at most 100 relations"));
        }
        for rel in &r.relations {
            if rel.target_id.trim().is_empty() || rel.kind.trim().is_empty() {
                problems.push(problem(
                    i,
                    "relations",
                    "each relation needs kind and targetId",
                ));
            } else if rel.target_id == r.id {
                problems.push(problem(
                    i,
                    "relations",
                    "a resource cannot relate to itself",
                ));
            }
        }
        if serde_json::to_vec(&r).map_or(0, |v| v.len()) > MAX_RESOURCE_BYTES {
            problems.push(problem(
                i,
                "",
                format!("larger than {MAX_RESOURCE_BYTES} bytes"),
            ));
        }
        if !seen.insert(r.id.clone()) {
            problems.push(problem(
                i,
                "id",
                format!("'{}' appears twice in the batch", r.id),
            ));
        }
        resources.push(r);
    }
    if !problems.is_empty() {
        return Err(unprocessable("resource problem(s)", problems));
    }
    // Pre-states for the audit trail, read before the write.
    let inventory = &ctx.app.inventory;
    // async_trait already boxes each call's future; collecting them first keeps
    // the stream free of closures over borrowed items (which would not be `Send`
    // for every lifetime, as the Lambda runtime needs).
    let lookups: Vec<_> = resources.iter().map(|r| inventory.get(&r.id)).collect();
    let before: Vec<Option<Resource>> = futures::stream::iter(lookups)
        .buffered(16)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<shared::Result<_>>()?;
    let written = ctx.app.inventory.upsert(&resources).await?;
    let created = before.iter().filter(|b| b.is_none()).count();
    // One entry per resource, so each carries its own pre- and post-state.
    let entries: Vec<AuditEntry> = resources
        .iter()
        .zip(&before)
        .map(|(r, b)| {
            audit_entry(
                ctx,
                "resource",
                &r.id,
                if b.is_some() {
                    "resource.updated"
                } else {
                    "resource.created"
                },
                b.as_ref().map(|b| json!(b)),
                Some(json!(r)),
            )
        })
        .collect();
    let audit = &ctx.app.audit;
    let appends: Vec<_> = entries.iter().map(|e| audit.append(e)).collect();
    futures::stream::iter(appends)
        .buffered(16)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<shared::Result<Vec<()>>>()?;
    Ok(json_response(
        200,
        &json!({ "written": written, "created": created, "updated": written - created.min(written) }),
    ))
}

// ---- metrics ----

const MAX_METRIC_RANGE_DAYS: i64 = 31;

fn range(ctx: &Ctx<'_>) -> Result<(DateTime<Utc>, DateTime<Utc>), ApiError> {
    let to = time_param(ctx, "to")?.unwrap_or(ctx.now);
    let from = time_param(ctx, "from")?.unwrap_or(to - Duration::hours(24));
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

fn metric_name(ctx: &Ctx<'_>) -> Result<String, ApiError> {
    match query(ctx, "metric") {
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

pub async fn resource_metrics(ctx: &Ctx<'_>, resource_id: &str) -> Res {
    check_query(ctx, &["metric", "from", "to", "limit", "nextToken"])?;
    let metric = metric_name(ctx)?;
    let (from, to) = range(ctx)?;
    let q = MetricQuery {
        resource_id: resource_id.into(),
        metric: metric.clone(),
        from,
        to,
    };
    let page = ctx
        .app
        .metrics
        .query(&q, limit(ctx)?, next_token(ctx).as_deref(), ctx.now)
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

/// Most resources one `GET /metrics` summarises.
const MAX_SUMMARY_RESOURCES: usize = 20;
/// Most samples read per resource for a summary.
const MAX_SUMMARY_SAMPLES: usize = 2000;

pub async fn query_metrics(ctx: &Ctx<'_>) -> Res {
    check_query(
        ctx,
        &[
            "metric",
            "resourceId",
            "service",
            "tag",
            "from",
            "to",
            "nextToken",
        ],
    )?;
    let metric = metric_name(ctx)?;
    let (from, to) = range(ctx)?;
    let (ids, next): (Vec<String>, Option<String>) = match query(ctx, "resourceId") {
        Some(list) => {
            if query(ctx, "service").is_some()
                || query(ctx, "tag").is_some()
                || next_token(ctx).is_some()
            {
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
            let service = match query(ctx, "service") {
                None => None,
                Some(s) => Some(
                    s.parse::<Service>()
                        .map_err(|e| ApiError::bad_request(e.to_string()))?,
                ),
            };
            if service.is_none() && query(ctx, "tag").is_none() {
                return Err(ApiError::bad_request(
                    "name the resources: resourceId, or service and/or tag",
                ));
            }
            let filter = InventoryFilter {
                service,
                tag: query(ctx, "tag"),
            };
            let page = ctx
                .app
                .inventory
                .list(
                    &filter,
                    Some(MAX_SUMMARY_RESOURCES as u32),
                    next_token(ctx).as_deref(),
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
        let q = MetricQuery {
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
                .query(&q, Some(100), token.as_deref(), ctx.now)
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
struct MetricsBody {
    samples: Vec<Value>,
}

pub async fn ingest_metrics(ctx: &Ctx<'_>) -> Res {
    check_query(ctx, &[])?;
    let b: MetricsBody = body(ctx)?;
    if b.samples.len() > MAX_METRIC_BATCH {
        return Err(ApiError::new(
            413,
            "payload_too_large",
            format!(
                "at most {MAX_METRIC_BATCH} samples per request, got {}",
                b.samples.len()
            ),
        ));
    }
    if b.samples.is_empty() {
        return Err(ApiError::new(422, "unprocessable", "samples is empty"));
    }
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
            Some(Value::Number(n)) => match n.as_f64() {
                Some(f) if f.is_finite() => Some(f),
                _ => {
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
    let batch_id = uuid::Uuid::new_v4().to_string();
    let entry = audit_entry(
        ctx,
        "metrics",
        &batch_id,
        "metrics.ingested",
        None,
        Some(
            json!({ "samples": samples.len(), "written": written, "resources": resources.len(), "from": first, "to": last }),
        ),
    );
    ctx.app.audit.append(&entry).await?;
    Ok(json_response(
        200,
        &json!({ "accepted": samples.len(), "written": written, "auditId": entry.id }),
    ))
}

// ---- audit ----

fn audit_query(ctx: &Ctx<'_>) -> Result<AuditQuery, ApiError> {
    let text = |k: &str| query(ctx, k).filter(|v| !v.is_empty());
    let q = AuditQuery {
        entity_id: text("entityId"),
        actor: text("actor"),
        action: text("action"),
        from: time_param(ctx, "from")?,
        to: time_param(ctx, "to")?,
    };
    let to = q.to.unwrap_or(ctx.now);
    if let Some(f) = q.from {
        if f > to {
            return Err(ApiError::bad_request("from must not be after to"));
        }
        // A period search walks one index partition per day.
        if to - f > Duration::days(366) {
            return Err(ApiError::bad_request(
                "an audit search covers at most 366 days",
            ));
        }
    }
    Ok(q)
}

pub async fn audit_trail(ctx: &Ctx<'_>) -> Res {
    check_query(
        ctx,
        &[
            "actor",
            "action",
            "entityId",
            "from",
            "to",
            "limit",
            "nextToken",
        ],
    )?;
    let q = audit_query(ctx)?;
    let page = ctx
        .app
        .audit
        .query(&q, limit(ctx)?, next_token(ctx).as_deref(), ctx.now)
        .await?;
    Ok(json_response(200, &page_json(page)))
}

/// Most entries one report reads.
const MAX_REPORT_ENTRIES: usize = 10_000;

pub async fn audit_report(ctx: &Ctx<'_>) -> Res {
    check_query(ctx, &["from", "to"])?;
    let to = time_param(ctx, "to")?.unwrap_or(ctx.now);
    let from = time_param(ctx, "from")?.unwrap_or(to - Duration::days(30));
    if from > to {
        return Err(ApiError::bad_request("from must not be after to"));
    }
    if to - from > Duration::days(366) {
        return Err(ApiError::bad_request("a report covers at most 366 days"));
    }
    let q = AuditQuery {
        from: Some(from),
        to: Some(to),
        ..AuditQuery::default()
    };
    let mut by_action: BTreeMap<String, u64> = BTreeMap::new();
    let mut by_actor: BTreeMap<String, u64> = BTreeMap::new();
    let mut by_outcome: BTreeMap<String, u64> = BTreeMap::new();
    let mut decisions = Vec::new();
    let mut total = 0usize;
    let mut token: Option<String> = None;
    let mut truncated = false;
    loop {
        let page = ctx
            .app
            .audit
            .query(&q, Some(100), token.as_deref(), ctx.now)
            .await?;
        for e in page.items {
            total += 1;
            *by_action.entry(e.action.clone()).or_default() += 1;
            *by_actor.entry(e.actor.clone()).or_default() += 1;
            *by_outcome
                .entry(e.outcome.clone().unwrap_or_else(|| "none".into()))
                .or_default() += 1;
            if e.action.starts_with("approval.") && e.action != "approval.requested" {
                decisions.push(json!({
                    "entityId": e.entity_id, "action": e.action, "actor": e.actor,
                    "at": e.at, "outcome": e.outcome, "reason": e.reason,
                }));
            }
        }
        token = page.next_token;
        if token.is_none() {
            break;
        }
        if total >= MAX_REPORT_ENTRIES {
            truncated = true;
            break;
        }
    }
    Ok(json_response(
        200,
        &json!({
            "from": from, "to": to, "entries": total, "truncated": truncated,
            "byAction": by_action, "byActor": by_actor, "byOutcome": by_outcome,
            "decisions": decisions,
        }),
    ))
}

// ---- thresholds ----

pub async fn get_thresholds(ctx: &Ctx<'_>) -> Res {
    check_query(ctx, &[])?;
    let set = match ctx.app.thresholds.latest().await? {
        Some(s) => s,
        None => default_thresholds()?,
    };
    Ok(json_response(
        200,
        &serde_json::to_value(set).map_err(shared::Error::from)?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ThresholdsBody {
    rules: Vec<ThresholdRule>,
    note: Option<String>,
    /// The version the change was based on; when given, a newer stored
    /// version makes the write a 409 instead of silently replacing it.
    #[serde(rename = "baseVersion")]
    base_version: Option<u32>,
}

pub async fn put_thresholds(ctx: &Ctx<'_>) -> Res {
    check_query(ctx, &[])?;
    let b: ThresholdsBody = body(ctx)?;
    if b.rules.is_empty() {
        return Err(ApiError::new(422, "unprocessable", "rules is empty"));
    }
    if b.note.as_ref().is_some_and(|n| n.len() > 1000) {
        return Err(ApiError::new(
            422,
            "unprocessable",
            "note is longer than 1000 characters",
        ));
    }
    let current = ctx.app.thresholds.latest().await?;
    let current_version = current.as_ref().map_or(0, |s| s.version);
    if let Some(base) = b.base_version {
        if base != current_version {
            return Err(ApiError::new(
                409,
                "conflict",
                format!("thresholds are at version {current_version}, not {base}"),
            )
            .with_details(json!({ "currentVersion": current_version })));
        }
    }
    let set = ThresholdSet {
        version: current_version + 1,
        created_at: ctx.now,
        created_by: ctx.actor.clone(),
        note: b.note,
        rules: b.rules,
    };
    if let Err(e) = validate_set(&set) {
        let message = match e {
            shared::Error::Validation(m) => m,
            other => return Err(other.into()),
        };
        return Err(
            ApiError::new(422, "unprocessable", "the threshold set is not valid")
                .with_details(json!({ "problems": message.split("; ").collect::<Vec<_>>() })),
        );
    }
    if serde_json::to_vec(&set).map_or(0, |v| v.len()) > 300 * 1024 {
        return Err(ApiError::new(
            413,
            "payload_too_large",
            "a threshold set is at most 300 KB",
        ));
    }
    // Conditional on the version not existing: of two admins racing, one gets 409.
    ctx.app.thresholds.put_version(&set).await?;
    let mut entry = audit_entry(
        ctx,
        "thresholds",
        "thresholds",
        "thresholds.updated",
        Some(json!({ "version": current_version })),
        Some(json!({ "version": set.version, "rules": set.rules.len(), "note": set.note })),
    );
    entry.id = format!("thresholds|v{}", set.version);
    ctx.app.audit.append(&entry).await?;
    Ok(json_response(
        201,
        &serde_json::to_value(&set).map_err(shared::Error::from)?,
    ))
}

pub async fn threshold_history(ctx: &Ctx<'_>) -> Res {
    check_query(ctx, &["limit", "nextToken"])?;
    let page = ctx
        .app
        .thresholds
        .history(limit(ctx)?, next_token(ctx).as_deref())
        .await?;
    Ok(json_response(200, &page_json(page)))
}

// ---- scheduler, websocket, jobs ----

pub async fn scheduler_status(ctx: &Ctx<'_>) -> Res {
    check_query(ctx, &[])?;
    let runs = ctx.app.cycles.recent_runs(100).await?;
    let lease = ctx
        .app
        .cycles
        .current(shared::cycle::LEASE_NAME, ctx.now)
        .await?;
    Ok(json_response(
        200,
        &json!({
            "schedule": ctx.app.config.schedule_expression,
            "running": lease.is_some(),
            "lease": lease,
            "runs": runs,
        }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct TriggerBody {
    services: Option<Vec<String>>,
    dry_run: Option<bool>,
}

/// One manual trigger per this many seconds: the job id is derived from the
/// window, so a second trigger inside it finds the job and is told to wait.
const TRIGGER_WINDOW_SECONDS: i64 = 60;

pub async fn scheduler_trigger(ctx: &Ctx<'_>) -> Res {
    check_query(ctx, &[])?;
    let b: TriggerBody = body(ctx)?;
    let services: Vec<Service> = match b.services {
        None => Service::ALL.to_vec(),
        Some(list) => {
            if list.is_empty() {
                return Err(ApiError::new(422, "unprocessable", "services is empty"));
            }
            list.iter()
                .map(|s| s.parse::<Service>())
                .collect::<Result<_, _>>()
                .map_err(|e| ApiError::new(422, "unprocessable", e.to_string()))?
        }
    };
    let window = ctx.now.timestamp().div_euclid(TRIGGER_WINDOW_SECONDS);
    let id = uuid::Uuid::new_v5(
        &uuid::Uuid::NAMESPACE_URL,
        format!("manual|{window}").as_bytes(),
    )
    .to_string();
    let params = json!({
        "trigger": "manual",
        "services": services,
        "dryRun": b.dry_run.unwrap_or(false),
        "requestedBy": ctx.actor,
    });
    let job = Job::new(
        id,
        JobKind::OptimizationCycle,
        ctx.actor.clone(),
        params,
        ctx.now,
    );
    match submit(&ctx.app.jobs, &ctx.app.queue, job, ctx.now).await? {
        Submitted::Queued(job) => {
            let entry = audit_entry(
                ctx,
                "job",
                &job.id,
                "cycle.triggered",
                None,
                Some(json!({ "status": job.status, "params": job.params })),
            );
            ctx.app.audit.append(&entry).await?;
            Ok(json_response(
                202,
                &json!({ "jobId": job.id, "status": job.status }),
            ))
        }
        Submitted::Duplicate(job) => {
            let retry =
                TRIGGER_WINDOW_SECONDS - ctx.now.timestamp().rem_euclid(TRIGGER_WINDOW_SECONDS);
            let mut e = ApiError::new(
                429,
                "rate_limited",
                format!(
                    "a cycle was triggered less than {TRIGGER_WINDOW_SECONDS} s ago (job {})",
                    job.id
                ),
            )
            .with_details(json!({ "jobId": job.id, "retryAfterSeconds": retry }));
            e.headers.push(("retry-after", retry.to_string()));
            Err(e)
        }
    }
}

pub async fn websocket_status(ctx: &Ctx<'_>) -> Res {
    check_query(ctx, &[])?;
    let stats = ctx.app.connection_stats.stats(ctx.now).await?;
    Ok(json_response(
        200,
        &serde_json::to_value(stats).map_err(shared::Error::from)?,
    ))
}

pub async fn get_job(ctx: &Ctx<'_>, id: &str) -> Res {
    check_query(ctx, &[])?;
    let job = ctx
        .app
        .jobs
        .get(id, ctx.now)
        .await?
        .ok_or_else(|| shared::Error::not_found("job", id))?;
    Ok(json_response(
        200,
        &serde_json::to_value(job).map_err(shared::Error::from)?,
    ))
}

// ---- costs ----

fn cost_service(app: &App) -> Costs<'_> {
    Costs {
        source: &app.cost_explorer,
        cache: &app.cost_cache,
        ttl: app.config.cost_cache_ttl,
        forecast_source: app.config.forecast_source,
    }
}

pub async fn costs(ctx: &Ctx<'_>) -> Res {
    check_query(ctx, &["start", "end", "granularity", "groupBy"])?;
    let q = CostQuery::parse(
        query(ctx, "start").as_deref(),
        query(ctx, "end").as_deref(),
        query(ctx, "granularity").as_deref(),
        query(ctx, "groupBy").as_deref(),
        ctx.now,
    )?;
    let report = cost_service(ctx.app).report(&q, ctx.now).await?;
    Ok(json_response(
        200,
        &serde_json::to_value(report).map_err(shared::Error::from)?,
    ))
}

pub async fn cost_forecast(ctx: &Ctx<'_>) -> Res {
    check_query(ctx, &["days"])?;
    let days = match query(ctx, "days") {
        None => 30,
        Some(v) => v.parse::<u32>().map_err(|_| {
            ApiError::bad_request(format!("days must be an integer from 1 to 90, got '{v}'"))
        })?,
    };
    let f = cost_service(ctx.app).forecast(days, ctx.now).await?;
    Ok(json_response(
        200,
        &serde_json::to_value(f).map_err(shared::Error::from)?,
    ))
}
