//! Routing, authentication and the role each write needs.

use crate::common::*;
use serde_json::{json, Value};
use shared::domain::*;
use shared::store::*;

#[tokio::test]
async fn health_routing_and_authentication() {
    let h = harness().await;
    // The stored event, exactly as API Gateway sends it, without a token.
    let r = h.send(&Req::from_event("get-health.json")).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["status"], "ok");

    let r = h.call(Role::Viewer, "GET", "/api/nope", &[], None).await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    let r = h
        .call(Role::Viewer, "DELETE", "/api/resources", &[], None)
        .await;
    assert_eq!(r.status, 405);
    assert_eq!(r.headers["allow"], "GET, POST");

    // No token, a malformed header, a forged token, an expired token.
    let mut req = Req::new("GET", "/api/approval-requests");
    assert_eq!(h.send(&req).await.status, 401);
    req.header("Authorization", Some("Basic abc"));
    assert_eq!(h.send(&req).await.status, 401);
    req.token(Some("eyJhbGciOiJIUzI1NiJ9.e30.AAAA"));
    assert_eq!(h.send(&req).await.status, 401);
    let expired = shared::auth::LocalClaims::new(
        &h.auth,
        "old",
        &[Role::Admin],
        h.now - chrono::Duration::hours(3),
        chrono::Duration::hours(1),
    )
    .sign_hs256(SECRET.as_bytes())
    .unwrap();
    req.token(Some(&expired));
    let r = h.send(&req).await;
    assert_eq!(r.status, 401);
    assert!(r.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("expired"));

    // Unknown query parameters are refused, not ignored.
    let r = h
        .call(
            Role::Viewer,
            "GET",
            "/api/approval-requests",
            &[("stauts", "pending")],
            None,
        )
        .await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn identity_from_the_authorizer_claims() {
    let h = harness().await;
    let job = Job::new("job-az", JobKind::CostAnalysis, "ana", json!({}), h.now);
    h.app.jobs.create(&job).await.unwrap();
    let mut req = Req::from_event("get-jobs-authorizer.json");
    req.path("/api/jobs/job-az");
    let r = h.send(&req).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["id"], "job-az");
    // The authorizer's groups (viewer, operator) do not include admin.
    let mut req = Req::from_event("get-jobs-authorizer.json");
    req.event["httpMethod"] = json!("POST");
    req.path("/api/thresholds").body(&json!({"rules": []}));
    assert_eq!(h.send(&req).await.status, 403);
    // Claims of a token issued to another app client, or of another use,
    // are refused as the WebSocket path refuses them.
    for (key, value) in [("aud", "another-client"), ("token_use", "refresh")] {
        let mut req = Req::from_event("get-jobs-authorizer.json");
        req.event["requestContext"]["authorizer"]["claims"][key] = json!(value);
        req.path("/api/jobs/job-az");
        assert_eq!(h.send(&req).await.status, 401, "{key}={value}");
    }
}

#[tokio::test]
async fn role_matrix_for_every_write() {
    let h = harness().await;
    let req = h.open_request("i-roles").await;
    let writes: Vec<(&str, String, Value, Role)> = vec![
        (
            "POST",
            format!("/api/approval-requests/{}/approve", "missing-id"),
            json!({}),
            Role::Approver,
        ),
        (
            "POST",
            format!("/api/approval-requests/{}/reject", req.id),
            json!({}),
            Role::Approver,
        ),
        (
            "POST",
            format!("/api/approval-requests/{}/execute", req.id),
            json!({}),
            Role::Approver,
        ),
        (
            "POST",
            "/api/resources".into(),
            json!({"resources": []}),
            Role::Operator,
        ),
        (
            "POST",
            "/api/metrics".into(),
            json!({"samples": []}),
            Role::Operator,
        ),
        (
            "POST",
            "/api/thresholds".into(),
            json!({"rules": []}),
            Role::Admin,
        ),
        (
            "POST",
            "/api/scheduler/trigger".into(),
            json!({"services": []}),
            Role::Operator,
        ),
    ];
    let roles = [Role::Viewer, Role::Operator, Role::Approver, Role::Admin];
    for (method, path, body, least) in &writes {
        let mut r = Req::new(method, path);
        r.body(body);
        let none = h.send(&r).await;
        assert_eq!(none.status, 401, "no token: {method} {path}");
        for role in roles {
            let resp = h.call(role, method, path, &[], Some(body.clone())).await;
            if role >= *least {
                // Past the role check: the (deliberately invalid) body is what is refused.
                assert!(
                    ![401, 403].contains(&resp.status) && resp.status < 500,
                    "{role:?} {path}: {resp:?}"
                );
            } else {
                assert_eq!(resp.status, 403, "{role:?} {path}: {resp:?}");
                assert_eq!(resp.body["error"]["details"]["required"], least.as_str());
            }
        }
    }
    // Nothing was decided by any of it.
    assert!(h.app.approvals.decisions(&req.id).await.unwrap().is_empty());
}
