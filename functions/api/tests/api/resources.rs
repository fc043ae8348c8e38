//! The inventory: upsert, list, get.

use crate::common::*;
use serde_json::{json, Value};
use shared::domain::*;

#[tokio::test]
async fn resources_upsert_list_get() {
    let h = harness().await;
    let mut req = Req::from_event("post-resources.json");
    req.token(Some(&h.as_role(Role::Operator)));
    let r = h.send(&req).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        (r.body["written"].as_u64(), r.body["created"].as_u64()),
        (Some(1), Some(1))
    );
    let more = json!({"resources": [
        {"service": "ec2", "id": "i-0abc", "region": "us-east-1", "resourceType": "m5.large", "tags": {"team": "orders"}},
        {"service": "ec2", "id": "i-0def", "region": "us-east-1", "tags": {"team": "search"}}
    ]});
    let r = h
        .call(Role::Operator, "POST", "/api/resources", &[], Some(more))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    // Upsert again: an update, audited with the pre-state.
    let r = h.send(&req).await;
    assert_eq!(
        (r.body["created"].as_u64(), r.body["updated"].as_u64()),
        (Some(0), Some(1))
    );
    let audit = h
        .call(
            Role::Viewer,
            "GET",
            "/api/audit-trail",
            &[("entityId", "orders-db")],
            None,
        )
        .await;
    let items = audit.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{audit:?}");
    let update = items
        .iter()
        .find(|e| e["action"] == "resource.updated")
        .unwrap();
    assert_eq!(update["preState"]["monthlyCostUsd"], 187.2);
    assert_eq!(update["postState"]["id"], "orders-db");
    assert_eq!(update["actor"], "operator");
    assert!(items
        .iter()
        .any(|e| e["action"] == "resource.created" && e["preState"].is_null()));

    let r = h
        .call(
            Role::Viewer,
            "GET",
            "/api/resources",
            &[("service", "ec2")],
            None,
        )
        .await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 2);
    let r = h
        .call(
            Role::Viewer,
            "GET",
            "/api/resources",
            &[("tag", "team=orders")],
            None,
        )
        .await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 2, "{r:?}");
    let r = h
        .call(
            Role::Viewer,
            "GET",
            "/api/resources",
            &[("service", "mainframe")],
            None,
        )
        .await;
    assert_eq!(r.status, 400);
    let r = h
        .call(Role::Viewer, "GET", "/api/resources/orders-db", &[], None)
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["relations"][0]["targetId"], "i-0abc");
    assert_eq!(
        h.call(Role::Viewer, "GET", "/api/resources/none", &[], None)
            .await
            .status,
        404
    );

    // Too many, invalid items (all reported, nothing written), bad JSON.
    let many: Vec<Value> = (0..101)
        .map(|i| json!({"service": "ec2", "id": format!("i-{i}"), "region": "us-east-1"}))
        .collect();
    let r = h
        .call(
            Role::Operator,
            "POST",
            "/api/resources",
            &[],
            Some(json!({"resources": many})),
        )
        .await;
    assert_eq!(r.status, 413);
    let bad = json!({"resources": [
        {"service": "mainframe", "id": "x", "region": "r"},
        {"service": "ec2", "id": "i-neg", "region": "us-east-1", "monthlyCostUsd": -3},
        {"service": "ec2", "id": "", "region": "us-east-1"},
        {"service": "ec2", "id": "i-new", "region": "us-east-1"}
    ]});
    let r = h
        .call(Role::Operator, "POST", "/api/resources", &[], Some(bad))
        .await;
    assert_eq!(r.status, 422, "{r:?}");
    let problems = r.body["error"]["details"]["problems"].as_array().unwrap();
    let at: Vec<(u64, &str)> = problems
        .iter()
        .map(|p| (p["index"].as_u64().unwrap(), p["field"].as_str().unwrap()))
        .collect();
    assert_eq!(at, vec![(0, "service"), (1, "monthlyCostUsd"), (2, "id")]);
    assert_eq!(
        h.call(Role::Viewer, "GET", "/api/resources/i-new", &[], None)
            .await
            .status,
        404
    );
    let mut r = Req::new("POST", "/api/resources");
    r.token(Some(&h.as_role(Role::Operator)))
        .raw_body("{not json");
    assert_eq!(h.send(&r).await.status, 400);
}
