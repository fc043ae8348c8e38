//! Threshold versions and their history.

use crate::common::*;
use serde_json::json;
use shared::domain::*;

#[tokio::test]
async fn thresholds_versions_and_history() {
    let h = harness().await;
    let r = h
        .call(Role::Viewer, "GET", "/api/thresholds", &[], None)
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["version"], 0);
    let rules = r.body["rules"].clone();
    let r = h
        .call(
            Role::Admin,
            "POST",
            "/api/thresholds",
            &[],
            Some(json!({"rules": rules, "note": "first"})),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.body["version"], 1);
    let r = h
        .call(
            Role::Admin,
            "POST",
            "/api/thresholds",
            &[],
            Some(json!({"rules": rules, "baseVersion": 1})),
        )
        .await;
    assert_eq!(r.body["version"], 2);
    let r = h
        .call(
            Role::Admin,
            "POST",
            "/api/thresholds",
            &[],
            Some(json!({"rules": rules, "baseVersion": 1})),
        )
        .await;
    assert_eq!(r.status, 409, "a stale base version");
    let mut broken = rules.clone();
    broken[0]["lookbackDays"] = json!(9999);
    let r = h
        .call(
            Role::Admin,
            "POST",
            "/api/thresholds",
            &[],
            Some(json!({"rules": broken})),
        )
        .await;
    assert_eq!(r.status, 422, "{r:?}");
    let r = h
        .call(
            Role::Admin,
            "POST",
            "/api/thresholds",
            &[],
            Some(json!({"rules": [{"id": 1}]})),
        )
        .await;
    assert_eq!(r.status, 400);
    let r = h
        .call(Role::Viewer, "GET", "/api/thresholds", &[], None)
        .await;
    assert_eq!(r.body["version"], 2);
    let r = h
        .call(
            Role::Viewer,
            "GET",
            "/api/thresholds/history",
            &[("limit", "1")],
            None,
        )
        .await;
    assert_eq!(r.body["items"][0]["version"], 2);
    let token = r.body["nextToken"].as_str().unwrap().to_string();
    let r = h
        .call(
            Role::Viewer,
            "GET",
            "/api/thresholds/history",
            &[("limit", "1"), ("nextToken", &token)],
            None,
        )
        .await;
    assert_eq!(r.body["items"][0]["version"], 1);
    let r = h
        .call(
            Role::Viewer,
            "GET",
            "/api/audit-trail",
            &[("action", "thresholds.updated")],
            None,
        )
        .await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 2);
}
