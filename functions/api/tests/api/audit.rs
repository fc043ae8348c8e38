//! The audit trail and its report.

use crate::common::*;
use serde_json::json;
use shared::domain::*;

#[tokio::test]
async fn audit_trail_filters_and_report() {
    let h = harness().await;
    let a = h.open_request("i-audit-1").await;
    let b = h.open_request("i-audit-2").await;
    h.call(
        Role::Approver,
        "POST",
        &format!("/api/approval-requests/{}/approve", a.id),
        &[],
        Some(json!({"reason": "ok by owner"})),
    )
    .await;
    h.call(
        Role::Admin,
        "POST",
        &format!("/api/approval-requests/{}/reject", b.id),
        &[],
        Some(json!({"reason": "needed for month end"})),
    )
    .await;

    let r = h
        .call(
            Role::Viewer,
            "GET",
            "/api/audit-trail",
            &[("actor", "admin")],
            None,
        )
        .await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1, "{r:?}");
    let r = h
        .call(
            Role::Viewer,
            "GET",
            "/api/audit-trail",
            &[("action", "approval.requested")],
            None,
        )
        .await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 2);
    let r = h
        .call(
            Role::Viewer,
            "GET",
            "/api/audit-trail",
            &[
                ("from", "2026-11-24T00:00:00Z"),
                ("to", "2026-11-25T00:00:00Z"),
            ],
            None,
        )
        .await;
    assert!(r.body["items"].as_array().unwrap().is_empty(), "{r:?}");
    assert_eq!(
        h.call(
            Role::Viewer,
            "GET",
            "/api/audit-trail",
            &[("from", "monday")],
            None
        )
        .await
        .status,
        400
    );

    let r = h
        .call(
            Role::Viewer,
            "GET",
            "/api/audit-trail/report",
            &[
                ("from", "2026-11-01T00:00:00Z"),
                ("to", "2026-11-30T00:00:00Z"),
            ],
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["entries"], 4);
    assert_eq!(r.body["byAction"]["approval.requested"], 2);
    assert_eq!(r.body["byActor"]["admin"], 1);
    assert_eq!(r.body["byOutcome"]["rejected"], 1);
    let decisions = r.body["decisions"].as_array().unwrap();
    assert_eq!(decisions.len(), 2);
    assert!(decisions
        .iter()
        .any(|d| d["reason"] == "needed for month end" && d["actor"] == "admin"));
    let r = h
        .call(
            Role::Viewer,
            "GET",
            "/api/audit-trail/report",
            &[
                ("from", "2026-11-30T00:00:00Z"),
                ("to", "2026-11-01T00:00:00Z"),
            ],
            None,
        )
        .await;
    assert_eq!(r.status, 400);
}
