//! Hardening: no input reaches a 5xx. Extreme dates and integers on every
//! parameter that computes with them, numbers DynamoDB cannot store on
//! every body that carries numbers, and unbounded lists.

use crate::common::*;
use serde_json::{json, Value};
use shared::domain::*;
use shared::store::ConnectionStore;

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
    type Row<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)]);
    let table: &[Row] = &[
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
            if r.status != 400 {
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

#[tokio::test]
async fn websocket_status_lists_a_bounded_number_of_topics() {
    let h = harness().await;
    let conns = shared::dynamo::DynamoConnections::new(
        aws_sdk_dynamodb::Client::new(&h.stack.config),
        h.stack.table("ConnectionsTable"),
        shared::store::PageTokenCodec::new("k"),
    );
    for c in 0..3 {
        let id = format!("c{c}");
        conns
            .put(&Connection {
                connection_id: id.clone(),
                user_id: "u".into(),
                roles: vec![Role::Viewer],
                connected_at: h.now,
                expires_at: h.now + chrono::Duration::hours(2),
            })
            .await
            .unwrap();
        let mut topics: Vec<Topic> = (0..49)
            .map(|i| Topic::Resource(format!("r-{c}-{i}")))
            .collect();
        topics.push(Topic::Jobs);
        conns.subscribe(&id, &topics, h.now).await.unwrap();
    }
    let r = h
        .call(Role::Viewer, "GET", "/api/websocket/status", &[], None)
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["subscriptions"], 150);
    assert_eq!(r.body["topics"], 148);
    assert_eq!(r.body["byTopic"].as_object().unwrap().len(), 100);
    assert_eq!(r.body["byTopic"]["jobs"], 3, "the most subscribed first");
    assert_eq!(r.body["byTopicTruncated"], true);
}

#[tokio::test]
async fn unbounded_bodies_are_refused_before_any_work() {
    let h = harness().await;
    // 100,000 services: refused on the count, at once.
    let services: Vec<&str> = vec!["ec2"; 100_000];
    let started = std::time::Instant::now();
    let r = h
        .call(
            Role::Operator,
            "POST",
            "/api/scheduler/trigger",
            &[],
            Some(json!({ "services": services })),
        )
        .await;
    assert_eq!(r.status, 422, "{r:?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    // A body past MAX_BODY_BYTES is refused before it is parsed.
    let mut req = Req::new("POST", "/api/scheduler/trigger");
    req.token(Some(&h.as_role(Role::Operator)))
        .raw_body(&format!(
            "{{\"services\":[{}\"ec2\"]}}",
            "\"ec2\",".repeat(api::MAX_BODY_BYTES / 6)
        ));
    assert_eq!(h.send(&req).await.status, 413);

    let rules = h
        .call(Role::Viewer, "GET", "/api/thresholds", &[], None)
        .await
        .body["rules"]
        .clone();
    let rule = rules[0].clone();
    let many: Vec<Value> = (0..201)
        .map(|i| {
            let mut r = rule.clone();
            r["id"] = json!(format!("r{i}"));
            r
        })
        .collect();
    let mut long = rules.clone();
    long[0]["description"] = json!("d".repeat(1001));
    let mut long_id = rules.clone();
    long_id[0]["id"] = json!("i".repeat(129));
    for (what, body) in [
        ("201 rules", json!({ "rules": many })),
        ("a long description", json!({ "rules": long })),
        ("a long id", json!({ "rules": long_id })),
    ] {
        let r = h
            .call(Role::Admin, "POST", "/api/thresholds", &[], Some(body))
            .await;
        assert_eq!(r.status, 422, "{what}: {r:?}");
        assert!(r.body.to_string().len() < 4096, "{what}: a short refusal");
    }

    let base = json!({"service": "ec2", "id": "i-b", "region": "us-east-1"});
    let with = |k: &str, v: Value| {
        let mut r = base.clone();
        r[k] = v;
        json!({ "resources": [r] })
    };
    let attrs: serde_json::Map<String, Value> =
        (0..101).map(|i| (format!("a{i}"), json!(i))).collect();
    for (what, body) in [
        (
            "a long tag key",
            with("tags", json!({ "k".repeat(129): "v" })),
        ),
        (
            "a long tag value",
            with("tags", json!({ "k": "v".repeat(257) })),
        ),
        ("101 attributes", with("attributes", Value::Object(attrs))),
        (
            "a long resource type",
            with("resourceType", json!("t".repeat(129))),
        ),
        (
            "a long relation kind",
            with(
                "relations",
                json!([{ "kind": "k".repeat(65), "targetId": "x" }]),
            ),
        ),
    ] {
        let r = h
            .call(Role::Operator, "POST", "/api/resources", &[], Some(body))
            .await;
        assert_eq!(r.status, 422, "{what}: {r:?}");
    }
}

#[tokio::test]
async fn a_metrics_batch_is_audited_once_with_its_actor_even_when_retried() {
    let h = harness().await;
    let samples: Vec<Value> = (0..60)
        .map(|i| json!({"resourceId": format!("i-{i:02}"), "service": "ec2", "metric": "CPUUtilization", "timestamp": "2026-11-23T11:00:00Z", "value": i}))
        .collect();
    let body = json!({ "samples": samples });
    let first = h
        .call(
            Role::Operator,
            "POST",
            "/api/metrics",
            &[],
            Some(body.clone()),
        )
        .await;
    assert_eq!(first.status, 200, "{first:?}");
    let again = h
        .call(Role::Operator, "POST", "/api/metrics", &[], Some(body))
        .await;
    assert_eq!(again.status, 200, "{again:?}");
    let id = first.body["auditId"].as_str().unwrap();
    assert_eq!(again.body["auditId"], id, "a retry names the same entry");
    let trail = h
        .call(
            Role::Viewer,
            "GET",
            "/api/audit-trail",
            &[("action", "metrics.ingested")],
            None,
        )
        .await;
    let items = trail.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{trail:?}");
    let e = &items[0];
    assert_eq!(e["entityId"], id);
    assert_eq!(e["actor"], "operator");
    assert_eq!(e["postState"]["samples"], 60);
    assert_eq!(e["postState"]["resources"], 60);
    assert_eq!(e["postState"]["resourceIds"].as_array().unwrap().len(), 50);
    assert_eq!(e["postState"]["resourceIds"][0], "i-00");
    assert_eq!(e["postState"]["resourceIdsTruncated"], true);
    // Another batch is another entry.
    let other = json!({"samples": [{"resourceId": "i-00", "service": "ec2", "metric": "CPUUtilization", "timestamp": "2026-11-23T11:00:00Z", "value": 99}]});
    let r = h
        .call(Role::Operator, "POST", "/api/metrics", &[], Some(other))
        .await;
    assert_ne!(r.body["auditId"], id);
    let trail = h
        .call(
            Role::Viewer,
            "GET",
            "/api/audit-trail",
            &[("action", "metrics.ingested")],
            None,
        )
        .await;
    assert_eq!(trail.body["items"].as_array().unwrap().len(), 2);
}
