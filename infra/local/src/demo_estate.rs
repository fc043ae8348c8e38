//! The demo estate, put where the functions will find it: metrics in the
//! emulator's CloudWatch, inventory in the template's InventoryTable, and
//! daily costs in its Cost Explorer. `make dev` and its end-to-end tests
//! share this, so what a user sees locally is what the tests check.

use crate::estate::Estate;
use crate::{seed, LocalError, LocalStack};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde_json::json;
use shared::domain::{MetricSample, Resource, Service};
use shared::dynamo::{DynamoInventory, DynamoMetrics};
use shared::store::{InventoryStore, MetricStore, PageTokenCodec};
use std::collections::BTreeMap;

/// What seeding put in place.
#[derive(Debug, Clone, PartialEq)]
pub struct Seeded {
    pub resources: usize,
    pub services: usize,
    pub points: u64,
}

/// Seeds `estate`'s metric series into the emulator's CloudWatch and its
/// resources into the stack's InventoryTable.
pub async fn seed_estate(stack: &LocalStack, estate: &Estate) -> Result<Seeded, LocalError> {
    let points = seed::seed_series(&stack.endpoint, &estate.series).await?;
    let inventory = DynamoInventory::new(
        aws_sdk_dynamodb::Client::new(&stack.config),
        stack.table("InventoryTable"),
        // Listing tokens never leave this call, so any key will do.
        PageTokenCodec::new(uuid::Uuid::new_v4().as_bytes()),
    );
    inventory
        .upsert(&estate.resources)
        .await
        .map_err(|e| LocalError::Create {
            resource: "InventoryTable items".into(),
            message: e.to_string(),
        })?;
    let mut services: Vec<Service> = estate.resources.iter().map(|r| r.service).collect();
    services.sort_by_key(|s| s.as_str());
    services.dedup();
    Ok(Seeded {
        resources: estate.resources.len(),
        services: services.len(),
        points,
    })
}

/// Cost Explorer's name for a service (the `SERVICE` dimension).
pub fn cost_explorer_service(service: Service) -> &'static str {
    match service {
        Service::Ec2 => "Amazon Elastic Compute Cloud - Compute",
        Service::Ebs => "EC2 - Other",
        Service::Rds => "Amazon Relational Database Service",
        Service::ElastiCache => "Amazon ElastiCache",
        Service::Lambda => "AWS Lambda",
        Service::Ecs => "Amazon Elastic Container Service",
        Service::S3 => "Amazon Simple Storage Service",
        Service::DynamoDb => "Amazon DynamoDB",
    }
}

/// `days` of daily UnblendedCost per service ending yesterday, as one
/// GetCostAndUsage response grouped by SERVICE: each service's monthly cost
/// spread over the days, with a weekday rhythm and a slow upward drift so
/// the forecast has something to follow.
pub fn daily_costs(resources: &[Resource], today: NaiveDate, days: i64) -> serde_json::Value {
    let mut monthly: BTreeMap<&'static str, f64> = BTreeMap::new();
    for r in resources {
        *monthly.entry(cost_explorer_service(r.service)).or_default() +=
            r.monthly_cost_usd.unwrap_or(0.0);
    }
    let results: Vec<serde_json::Value> = (0..days)
        .map(|i| {
            let day = today - Duration::days(days - i);
            let weekday = chrono::Datelike::weekday(&day).num_days_from_monday();
            let rhythm = if weekday >= 5 { 0.85 } else { 1.04 };
            let drift = 0.9 + 0.2 * i as f64 / days as f64;
            let groups: Vec<serde_json::Value> = monthly
                .iter()
                .map(|(service, m)| {
                    json!({
                        "Keys": [service],
                        "Metrics": { "UnblendedCost": {
                            "Amount": format!("{:.4}", m / 30.0 * rhythm * drift),
                            "Unit": "USD" } }
                    })
                })
                .collect();
            json!({
                "TimePeriod": { "Start": day.to_string(), "End": (day + Duration::days(1)).to_string() },
                "Total": {},
                "Groups": groups,
                "Estimated": false,
            })
        })
        .collect();
    json!({
        "ResultsByTime": results,
        "DimensionValueAttributes": [],
        "GroupDefinitions": [{ "Type": "DIMENSION", "Key": "SERVICE" }],
    })
}

/// Injects [`daily_costs`] into the emulator's Cost Explorer. The emulator
/// answers each distinct GetCostAndUsage request with the next injected
/// result (and the same request with the same result again), so `copies`
/// results make that many different queries answer with the estate's costs.
pub async fn inject_daily_costs(
    stack: &LocalStack,
    resources: &[Resource],
    now: DateTime<Utc>,
    days: i64,
    copies: usize,
) -> Result<(), LocalError> {
    let one = daily_costs(resources, now.date_naive(), days);
    let results = json!({ "results": vec![one; copies] });
    stack.inject_costs(&results).await
}

/// The estate's series as `GET /metrics/{resourceId}` serves them (what
/// `POST /metrics` would have stored): each series belongs to the resource
/// one of its dimensions names, and gaps stay gaps.
pub fn metric_samples(estate: &Estate) -> Vec<MetricSample> {
    let services: BTreeMap<&str, Service> = estate
        .resources
        .iter()
        .map(|r| (r.id.as_str(), r.service))
        .collect();
    let mut samples = Vec::new();
    for s in &estate.series {
        let Some((id, service)) = s
            .dimensions
            .iter()
            .find_map(|(_, v)| services.get(v.as_str()).map(|svc| (v, *svc)))
        else {
            continue;
        };
        for (i, value) in s.values.iter().enumerate() {
            let Some(timestamp) =
                DateTime::from_timestamp(s.start + i as i64 * i64::from(s.period_seconds), 0)
            else {
                continue;
            };
            if value.is_finite() {
                samples.push(MetricSample {
                    resource_id: id.clone(),
                    service,
                    metric: s.metric_name.clone(),
                    timestamp,
                    value: *value,
                    unit: s.unit.clone(),
                });
            }
        }
    }
    samples
}

/// Writes `samples` into the stack's MetricsTable, `concurrency` batches at
/// a time, so the dashboard can chart the demo estate's evidence. Returns
/// how many were written.
pub async fn seed_metrics_table(
    stack: &LocalStack,
    samples: &[MetricSample],
    now: DateTime<Utc>,
    concurrency: usize,
) -> Result<usize, LocalError> {
    use futures::StreamExt;
    let store = DynamoMetrics::new(
        aws_sdk_dynamodb::Client::new(&stack.config),
        stack.table("MetricsTable"),
        PageTokenCodec::new(uuid::Uuid::new_v4().as_bytes()),
    );
    let store = &store;
    let written: Vec<Result<usize, shared::Error>> =
        futures::stream::iter(samples.chunks(500).map(<[MetricSample]>::to_vec))
            .map(|chunk| async move { store.put(&chunk, now).await })
            .buffer_unordered(concurrency.max(1))
            .collect()
            .await;
    written
        .into_iter()
        .try_fold(0, |acc, r| r.map(|n| acc + n))
        .map_err(|e| LocalError::Create {
            resource: "MetricsTable items".into(),
            message: e.to_string(),
        })
}

/// `n` pending approval requests for synthetic EC2 instances (`bench-i-*`),
/// opened as a cycle opens them (request + audit entry in one transaction),
/// `concurrency` at a time: the dashboard's 10,000-request benchmark.
pub async fn seed_approval_requests(
    stack: &LocalStack,
    n: usize,
    now: DateTime<Utc>,
    concurrency: usize,
) -> Result<usize, LocalError> {
    use futures::StreamExt;
    let store = shared::dynamo::DynamoApprovals::new(
        aws_sdk_dynamodb::Client::new(&stack.config),
        stack.table("ApprovalsTable"),
        stack.table("AuditTable"),
        PageTokenCodec::new(uuid::Uuid::new_v4().as_bytes()),
    );
    let store = &store;
    let opened: Vec<Result<(), LocalError>> = futures::stream::iter(0..n)
        .map(|i| async move {
            let resource = format!("bench-i-{i:05}");
            let savings = 5.0 + (i * 37 % 400) as f64;
            let rec: shared::domain::Recommendation = serde_json::from_value(json!({
                "id": shared::domain::Recommendation::stable_id(&resource, shared::domain::Action::Stop),
                "resourceId": resource,
                "service": "ec2",
                "region": "us-east-1",
                "finding": "idle",
                "action": "stop",
                "monthlySavingsUsd": savings,
                "confidence": 0.9,
                "risk": i % 4,
                "reason": format!("Synthetic benchmark request {i}: idle for 14 days. Saves about ${savings:.2}/month."),
                "alternatives": [],
                "dependencies": [],
                "thresholdVersion": 0,
                "createdAt": now,
            }))
            .map_err(|e| LocalError::Create { resource: "a benchmark recommendation".into(), message: e.to_string() })?;
            shared::approvals::open(store, rec, "bench", None, Duration::days(7), now)
                .await
                .map(|_| ())
                .map_err(|e| LocalError::Create { resource: "ApprovalsTable items".into(), message: e.to_string() })
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    opened
        .into_iter()
        .collect::<Result<Vec<()>, _>>()
        .map(|v| v.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daily_costs_cover_the_days_and_sum_to_the_monthly_costs() {
        let mut a = Resource::new(Service::Ec2, "i-1", "us-east-1");
        a.monthly_cost_usd = Some(300.0);
        let mut b = Resource::new(Service::Rds, "db-1", "us-east-1");
        b.monthly_cost_usd = Some(60.0);
        let today = NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();
        let v = daily_costs(&[a, b], today, 90);
        let days = v["ResultsByTime"].as_array().unwrap();
        assert_eq!(days.len(), 90);
        assert_eq!(days[0]["TimePeriod"]["Start"], "2026-08-25");
        assert_eq!(days[89]["TimePeriod"]["End"], "2026-11-23");
        let ec2: f64 = days
            .iter()
            .map(|d| {
                let ec2 = d["Groups"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|g| g["Keys"][0] == cost_explorer_service(Service::Ec2))
                    .unwrap();
                ec2["Metrics"]["UnblendedCost"]["Amount"]
                    .as_str()
                    .unwrap()
                    .parse::<f64>()
                    .unwrap()
            })
            .sum();
        // 90 days of a $300/month service: about $900, give or take the rhythm.
        assert!((ec2 - 900.0).abs() < 90.0, "{ec2}");
        assert_eq!(days[0]["Groups"].as_array().unwrap().len(), 2);
    }
}
