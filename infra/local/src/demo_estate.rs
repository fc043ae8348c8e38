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

/// Creates `estate` through the services' APIs in the emulator (see
/// [`crate::aws_estate`]) and seeds its metric series into the CloudWatch of
/// each resource's account and region, so the cycle discovers it as it would
/// an account's. Nothing is put in the inventory: discovery fills it. The
/// estate's instance and volume ids become those the APIs gave.
///
/// With `member`, the resources whose `accountId` is that account are
/// created there, with the member's credentials (see [`create_member_account`]).
pub async fn create_estate(
    stack: &LocalStack,
    estate: &mut Estate,
    member: Option<&(String, aws_config::SdkConfig)>,
) -> Result<Seeded, LocalError> {
    let in_member =
        |r: &Resource| member.is_some_and(|(a, _)| r.account_id.as_deref() == Some(a.as_str()));
    // Split by account, create each part with its credentials, and join.
    let ids: std::collections::BTreeSet<String> = estate
        .resources
        .iter()
        .filter(|r| in_member(r))
        .map(|r| r.id.clone())
        .collect();
    let (theirs, ours): (Vec<Resource>, Vec<Resource>) = std::mem::take(&mut estate.resources)
        .into_iter()
        .partition(|r| in_member(r));
    let (their_series, our_series): (Vec<_>, Vec<_>) = std::mem::take(&mut estate.series)
        .into_iter()
        .partition(|s| names_one_of(s, |id| ids.contains(id)));
    let mut ours = Estate {
        resources: ours,
        series: our_series,
    };
    crate::aws_estate::create(&stack.config, &mut ours).await?;
    let mut points = seed_by_region(stack, None, &ours).await?;
    let mut theirs = Estate {
        resources: theirs,
        series: their_series,
    };
    if let Some((account, config)) = member {
        crate::aws_estate::create(config, &mut theirs).await?;
        points += seed_by_region(stack, Some(account), &theirs).await?;
    }
    estate.resources = ours.resources;
    estate.resources.extend(theirs.resources);
    estate.series = ours.series;
    estate.series.extend(theirs.series);
    let mut services: Vec<Service> = estate.resources.iter().map(|r| r.service).collect();
    services.sort_by_key(|s| s.as_str());
    services.dedup();
    Ok(Seeded {
        resources: estate.resources.len(),
        services: services.len(),
        points,
    })
}

/// What `found` gives for the resource `series` is published under: one
/// whose id is a dimension's value, or an ECS service (`cluster/service`,
/// published as `ClusterName` and `ServiceName`).
fn resource_named<T>(series: &seed::SeriesSeed, found: impl Fn(&str) -> Option<T>) -> Option<T> {
    let dim = |name: &str| {
        series
            .dimensions
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    if let (Some(cluster), Some(service)) = (dim("ClusterName"), dim("ServiceName")) {
        if let Some(t) = found(&format!("{cluster}/{service}")) {
            return Some(t);
        }
    }
    series.dimensions.iter().find_map(|(_, v)| found(v))
}

fn names_one_of(series: &seed::SeriesSeed, is: impl Fn(&str) -> bool) -> bool {
    resource_named(series, |id| is(id).then_some(())).is_some()
}

async fn seed_by_region(
    stack: &LocalStack,
    account: Option<&str>,
    estate: &Estate,
) -> Result<u64, LocalError> {
    let region_of: BTreeMap<&str, &str> = estate
        .resources
        .iter()
        .map(|r| (r.id.as_str(), r.region.as_str()))
        .collect();
    let mut by_region: BTreeMap<&str, Vec<seed::SeriesSeed>> = BTreeMap::new();
    for series in &estate.series {
        // A series belongs to the resource its dimensions name.
        let region = resource_named(series, |id| region_of.get(id).copied()).unwrap_or("us-east-1");
        by_region.entry(region).or_default().push(series.clone());
    }
    let mut points = 0;
    for (region, series) in by_region {
        points += seed::seed_series_in(&stack.endpoint, account, Some(region), &series).await?;
    }
    Ok(points)
}

/// The Organization of `make dev`: the emulator's default account as its
/// management account, and one member account holding the discovery role
/// (`role_name`, as infra/member-role.yaml would deploy it). Returns the
/// member's id and an SDK configuration with its credentials.
pub async fn create_member_account(
    stack: &LocalStack,
    role_name: &str,
) -> Result<(String, aws_config::SdkConfig), LocalError> {
    let e = |what: &str, m: String| LocalError::Create {
        resource: what.to_string(),
        message: m,
    };
    let org = aws_sdk_organizations::Client::new(&stack.config);
    // An organization made by an earlier run of the same emulator is reused.
    let _ = org.create_organization().send().await;
    let status = org
        .create_account()
        .email("finops-demo-member@example.com")
        .account_name("finops-demo-member")
        .send()
        .await
        .map_err(|x| {
            e(
                "member account",
                aws_sdk_organizations::error::DisplayErrorContext(x).to_string(),
            )
        })?
        .create_account_status
        .ok_or_else(|| e("member account", "no status".into()))?;
    let account = status
        .account_id
        .ok_or_else(|| e("member account", "no account id".into()))?;
    let as_role = |role: &str| {
        let arn = format!("arn:aws:iam::{account}:role/{role}");
        let base = stack.config.clone();
        async move {
            let provider = aws_config::sts::AssumeRoleProvider::builder(arn)
                .session_name("finops-demo")
                .configure(&base)
                .build()
                .await;
            base.to_builder()
                .credentials_provider(
                    aws_credential_types::provider::SharedCredentialsProvider::new(provider),
                )
                .build()
        }
    };
    // What AWS Organizations makes in every account it creates.
    let admin = as_role("OrganizationAccountAccessRole").await;
    aws_sdk_iam::Client::new(&admin)
        .create_role()
        .role_name(role_name)
        .assume_role_policy_document(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"sts:AssumeRole"}]}"#,
        )
        .send()
        .await
        .map_err(|x| e("member role", aws_sdk_iam::error::DisplayErrorContext(x).to_string()))?;
    Ok((account, admin))
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
                "id": shared::domain::Recommendation::stable_id(&shared::domain::ResourceKey::new(None, "us-east-1", &resource), shared::domain::Action::Stop),
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
