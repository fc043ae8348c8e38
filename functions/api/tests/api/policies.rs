//! Auto-approval policies: admin only, versioned, validated, audited.

use crate::common::*;
use serde_json::json;
use shared::domain::*;

#[tokio::test]
async fn policies_are_admin_only_versioned_and_audited() {
    let h = harness().await;
    let body = json!({
        "id": "low-risk-dev",
        "dryRun": true,
        "match": { "services": ["ec2"], "maxRisk": 1, "maxSavingsUsd": 100, "excludeTags": { "env": "production" } },
        "window": ["Mon-Fri 22:00-06:00 Europe/Paris"]
    });
    let r = h
        .call(
            Role::Approver,
            "POST",
            "/api/policies",
            &[],
            Some(body.clone()),
        )
        .await;
    assert_eq!(r.status, 403, "{r:?}");
    let r = h
        .call(Role::Viewer, "GET", "/api/policies", &[], None)
        .await;
    assert_eq!(r.status, 403, "{r:?}");
    let r = h
        .call(
            Role::Admin,
            "POST",
            "/api/policies",
            &[],
            Some(body.clone()),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.body["version"], 1);
    assert_eq!(r.body["enabled"], true);
    assert_eq!(r.body["window"][0], "Mon-Fri 22:00-06:00 Europe/Paris");
    // The same id again without its base version: someone else's policy.
    let r = h
        .call(
            Role::Admin,
            "POST",
            "/api/policies",
            &[],
            Some(body.clone()),
        )
        .await;
    assert_eq!(r.status, 409, "{r:?}");
    let mut next = body.clone();
    next["baseVersion"] = json!(1);
    next["dryRun"] = json!(false);
    let r = h
        .call(Role::Admin, "POST", "/api/policies", &[], Some(next))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["version"], 2);
    for (field, value) in [
        ("window", json!(["Mon-Fri 22:00-06:00 Mars/Olympus"])),
        ("id", json!("Not An Id")),
        ("match", json!({ "maxRisk": 9 })),
        (
            "match",
            json!({ "maxRisk": 1, "actions": ["investigate_errors"] }),
        ),
    ] {
        let mut bad = body.clone();
        bad[field] = value;
        bad["id"] = if field == "id" {
            bad["id"].clone()
        } else {
            json!("other")
        };
        let r = h
            .call(Role::Admin, "POST", "/api/policies", &[], Some(bad))
            .await;
        assert!(matches!(r.status, 400 | 422), "{field}: {r:?}");
    }
    let r = h.call(Role::Admin, "GET", "/api/policies", &[], None).await;
    assert_eq!(r.status, 200);
    let items = r.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["dryRun"], false);
    let r = h
        .call(
            Role::Viewer,
            "GET",
            "/api/audit-trail",
            &[("action", "policy.saved")],
            None,
        )
        .await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 2, "{r:?}");
}
