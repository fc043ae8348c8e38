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

/// A name is unique only within an account and region: two `orders` are two
/// resources; a read that does not say which gets 409 with both, never an
/// arbitrary one; a push without an account is the deploying account's.
#[tokio::test]
async fn one_name_in_two_accounts_is_two_resources() {
    let h = harness().await;
    let push = json!({"resources": [
        {"service": "rds", "id": "orders", "region": "us-east-1", "accountId": "111111111111", "resourceType": "db.m5.large"},
        {"service": "rds", "id": "orders", "region": "us-east-1", "accountId": "222222222222", "resourceType": "db.r5.large"},
        {"service": "rds", "id": "orders", "region": "eu-west-1", "resourceType": "db.t3.medium"}
    ]});
    let r = h
        .call(Role::Operator, "POST", "/api/resources", &[], Some(push))
        .await;
    assert_eq!(
        (r.status, r.body["created"].as_u64()),
        (200, Some(3)),
        "{r:?}"
    );

    let r = h
        .call(Role::Viewer, "GET", "/api/resources/orders", &[], None)
        .await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (409, Some("ambiguous")),
        "{r:?}"
    );
    assert_eq!(
        r.body["error"]["details"]["candidates"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    let one = |q: &'static [(&'static str, &'static str)]| {
        let h = &h;
        async move {
            let r = h
                .call(Role::Viewer, "GET", "/api/resources/orders", q, None)
                .await;
            (
                r.status,
                r.body["resourceType"].as_str().map(str::to_string),
            )
        }
    };
    assert_eq!(
        one(&[("accountId", "222222222222"), ("region", "us-east-1")]).await,
        (200, Some("db.r5.large".into()))
    );
    // One of the two filters is enough when it picks one.
    assert_eq!(
        one(&[("region", "eu-west-1")]).await,
        (200, Some("db.t3.medium".into()))
    );
    // The push without an account is the deploying account's (the emulator's).
    assert_eq!(
        one(&[("accountId", "123456789012")]).await,
        (200, Some("db.t3.medium".into()))
    );
    assert_eq!(one(&[("accountId", "333333333333")]).await.0, 404);
    assert_eq!(one(&[("accountId", "12")]).await.0, 400);

    let r = h
        .call(
            Role::Viewer,
            "GET",
            "/api/resources",
            &[("accountId", "111111111111"), ("region", "us-east-1")],
            None,
        )
        .await;
    let types: Vec<&str> = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|x| x["resourceType"].as_str())
        .collect();
    assert_eq!(types, ["db.m5.large"], "{r:?}");

    // The same name twice in a batch is refused only within one scope.
    let twice = json!({"resources": [
        {"service": "rds", "id": "orders", "region": "us-east-1", "accountId": "111111111111"},
        {"service": "rds", "id": "orders", "region": "us-east-1", "accountId": "111111111111"}
    ]});
    let r = h
        .call(Role::Operator, "POST", "/api/resources", &[], Some(twice))
        .await;
    assert_eq!(r.status, 422, "{r:?}");
}
