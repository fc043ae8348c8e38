//! Hardening: no input reaches a 5xx. Extreme dates and integers on every
//! parameter that computes with them, numbers DynamoDB cannot store on
//! every body that carries numbers, and unbounded lists.

use crate::common::*;
use serde_json::{json, Value};
use shared::domain::*;

/// Dates and integers at and past chrono's and the integer types' ranges.
const EXTREMES: &[&str] = &[
    "-262143-01-05",
    "+262142-12-31",
    "-262143-01-05T00:00:00Z",
    "+262142-12-31T23:59:59Z",
    "0000-01-01T00:00:00+23:59",
    "9999-12-31T23:59:59-23:59",
    "0000-01-01",
    "9999-12-31",
    "9223372036854775807",
    "-9223372036854775808",
    "18446744073709551616",
    "99999999999999999999999999999999",
    "4294967296",
    "-1",
    "1e308",
];

#[tokio::test]
async fn extreme_dates_and_integers_are_400_on_every_parameter() {
    let h = harness().await;
    // (path, the parameter, the others the route needs)
    let table: &[(&str, &str, &[(&str, &str)])] = &[
        ("/api/audit-trail", "from", &[]),
        ("/api/audit-trail", "to", &[]),
        ("/api/audit-trail", "limit", &[]),
        ("/api/audit-trail/report", "from", &[]),
        ("/api/audit-trail/report", "to", &[]),
        (
            "/api/metrics",
            "from",
            &[("metric", "CPUUtilization"), ("resourceId", "i-1")],
        ),
        (
            "/api/metrics",
            "to",
            &[("metric", "CPUUtilization"), ("resourceId", "i-1")],
        ),
        ("/api/metrics/i-1", "from", &[("metric", "CPUUtilization")]),
        ("/api/metrics/i-1", "to", &[("metric", "CPUUtilization")]),
        ("/api/metrics/i-1", "limit", &[("metric", "CPUUtilization")]),
        ("/api/costs", "start", &[]),
        ("/api/costs", "end", &[]),
        ("/api/costs/forecast", "days", &[]),
        ("/api/approval-requests", "limit", &[]),
        ("/api/resources", "limit", &[]),
        ("/api/thresholds/history", "limit", &[]),
    ];
    let mut wrong = Vec::new();
    for (path, name, rest) in table {
        for v in EXTREMES {
            let mut q: Vec<(&str, &str)> = rest.to_vec();
            q.push((name, v));
            let r = h.call(Role::Viewer, "GET", path, &q, None).await;
            // The cost parser takes any past date (Cost Explorer itself
            // refuses those past its history): an answer, not a crash.
            let past_cost_date = path.starts_with("/api/costs") && *v == "0000-01-01";
            if r.status != 400 && !(past_cost_date && r.status == 200) {
                wrong.push(format!("{path}?{name}={v}: {r:?}"));
            }
        }
    }
    // A sample's timestamp is a body field: refused with the batch's 422.
    for v in EXTREMES {
        let sample = json!({"resourceId": "i-1", "service": "ec2", "metric": "CPUUtilization", "timestamp": v, "value": 1.0});
        let r = h
            .call(
                Role::Operator,
                "POST",
                "/api/metrics",
                &[],
                Some(json!({ "samples": [sample] })),
            )
            .await;
        if r.status != 422 {
            wrong.push(format!("POST /api/metrics timestamp {v}: {r:?}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    let r = h.call(Role::Viewer, "GET", "/api/health", &[], None).await;
    assert_eq!(r.status, 200, "still answering");
}

/// Valid JSON numbers outside what DynamoDB stores.
fn unstorable() -> Vec<Value> {
    vec![
        json!(1e200),
        json!(-1e200),
        json!(1e-200),
        json!(5e-324),
        json!(f64::MAX),
        json!(1e126),
        json!(-1e-131),
    ]
}

fn problems_of(r: &Resp) -> String {
    r.body["error"]["details"]["problems"].to_string()
}

#[tokio::test]
async fn metric_values_dynamodb_cannot_store_are_refused() {
    let h = harness().await;
    for v in unstorable() {
        let sample = json!({"resourceId": "i-1", "service": "ec2", "metric": "CPUUtilization", "timestamp": "2026-11-23T11:00:00Z", "value": v});
        let r = h
            .call(
                Role::Operator,
                "POST",
                "/api/metrics",
                &[],
                Some(json!({ "samples": [sample] })),
            )
            .await;
        assert_eq!(r.status, 422, "{v}: {r:?}");
        assert!(
            problems_of(&r).contains("\"field\":\"value\""),
            "{v}: {r:?}"
        );
    }
    // The edges of the range are stored and read back as sent.
    for v in [0.0, 2e-130, -2e-130, 9.99e125, 1e125] {
        let sample = json!({"resourceId": "i-edge", "service": "ec2", "metric": "CPUUtilization", "timestamp": "2026-11-23T11:00:00Z", "value": v});
        let r = h
            .call(
                Role::Operator,
                "POST",
                "/api/metrics",
                &[],
                Some(json!({ "samples": [sample] })),
            )
            .await;
        assert_eq!(r.status, 200, "{v}: {r:?}");
        let r = h
            .call(
                Role::Viewer,
                "GET",
                "/api/metrics/i-edge",
                &[("metric", "CPUUtilization")],
                None,
            )
            .await;
        assert_eq!(r.body["points"][0]["value"].as_f64(), Some(v), "{r:?}");
    }
}

#[tokio::test]
async fn resource_numbers_dynamodb_cannot_store_are_refused() {
    let h = harness().await;
    for v in unstorable() {
        for resource in [
            json!({"service": "ec2", "id": "i-n", "region": "us-east-1", "monthlyCostUsd": v}),
            json!({"service": "ec2", "id": "i-n", "region": "us-east-1", "attributes": {"vcpu": v}}),
            json!({"service": "ec2", "id": "i-n", "region": "us-east-1", "attributes": {"nested": [{"x": v}]}}),
        ] {
            let r = h
                .call(
                    Role::Operator,
                    "POST",
                    "/api/resources",
                    &[],
                    Some(json!({ "resources": [resource] })),
                )
                .await;
            assert_eq!(r.status, 422, "{resource}: {r:?}");
        }
    }
    let ok = json!({"service": "ec2", "id": "i-n", "region": "us-east-1", "monthlyCostUsd": 0.0, "attributes": {"vcpu": 2e-130}});
    let r = h
        .call(
            Role::Operator,
            "POST",
            "/api/resources",
            &[],
            Some(json!({ "resources": [ok] })),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
}

#[tokio::test]
async fn threshold_numbers_dynamodb_cannot_store_are_refused() {
    let h = harness().await;
    let rules = h
        .call(Role::Viewer, "GET", "/api/thresholds", &[], None)
        .await
        .body["rules"]
        .clone();
    for v in unstorable() {
        for field in ["value", "minCoverage", "headroomPercent"] {
            let mut broken = rules.clone();
            match field {
                "value" => broken[0]["conditions"][0]["value"] = v.clone(),
                f => broken[0][f] = v.clone(),
            }
            let r = h
                .call(
                    Role::Admin,
                    "POST",
                    "/api/thresholds",
                    &[],
                    Some(json!({ "rules": broken })),
                )
                .await;
            assert_eq!(r.status, 422, "{field}={v}: {r:?}");
        }
    }
    let r = h
        .call(Role::Viewer, "GET", "/api/thresholds", &[], None)
        .await;
    assert_eq!(r.body["version"], 0, "nothing was written");
}

#[tokio::test]
async fn decision_details_dynamodb_cannot_store_are_refused() {
    let h = harness().await;
    let req = h.open_request("i-details").await;
    // Execute takes details, after an approval.
    let r = h
        .call(
            Role::Approver,
            "POST",
            &format!("/api/approval-requests/{}/approve", req.id),
            &[],
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    for v in unstorable() {
        let r = h
            .call(
                Role::Approver,
                "POST",
                &format!("/api/approval-requests/{}/execute", req.id),
                &[],
                Some(json!({ "outcome": "executed", "details": { "x": v } })),
            )
            .await;
        assert_eq!(r.status, 422, "{v}: {r:?}");
    }
}
