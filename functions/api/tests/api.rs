mod common;

use common::*;
use serde_json::{json, Value};
use shared::domain::*;
use shared::notify::Event;
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
}

#[tokio::test]
async fn approvals_list_get_and_decide() {
    let h = harness().await;
    let a = h.open_request("i-approve").await;
    let b = h.open_request("i-reject").await;
    let c = h.open_request("i-other").await;

    // The stored list event.
    let mut req = Req::from_event("get-approval-requests.json");
    req.token(Some(&h.as_role(Role::Viewer)));
    let r = h.send(&req).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["items"].as_array().unwrap().len(), 3);

    // Pagination with opaque tokens.
    let r = h
        .call(
            Role::Viewer,
            "GET",
            "/api/approval-requests",
            &[("limit", "2")],
            None,
        )
        .await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 2);
    let token = r.body["nextToken"]
        .as_str()
        .expect("a next page")
        .to_string();
    let r2 = h
        .call(
            Role::Viewer,
            "GET",
            "/api/approval-requests",
            &[("limit", "2"), ("nextToken", &token)],
            None,
        )
        .await;
    assert_eq!(r2.status, 200);
    assert_eq!(r2.body["items"].as_array().unwrap().len(), 1);
    let mut tampered = token.clone();
    tampered.insert(3, 'x');
    let r = h
        .call(
            Role::Viewer,
            "GET",
            "/api/approval-requests",
            &[("nextToken", &tampered)],
            None,
        )
        .await;
    assert_eq!(r.status, 400);
    for bad in [
        ("limit", "0"),
        ("limit", "101"),
        ("limit", "x"),
        ("status", "open"),
        ("service", "ec3"),
    ] {
        let r = h
            .call(Role::Viewer, "GET", "/api/approval-requests", &[bad], None)
            .await;
        assert_eq!(r.status, 400, "{bad:?}");
    }
    let r = h
        .call(
            Role::Viewer,
            "GET",
            "/api/approval-requests",
            &[("resourceId", "i-other")],
            None,
        )
        .await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(r.body["items"][0]["id"], c.id.as_str());

    // Get, and 404.
    let r = h
        .call(
            Role::Viewer,
            "GET",
            &format!("/api/approval-requests/{}", a.id),
            &[],
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["request"]["status"], "pending");
    let r = h
        .call(
            Role::Viewer,
            "GET",
            "/api/approval-requests/nope",
            &[],
            None,
        )
        .await;
    assert_eq!(r.status, 404);

    // Approve through the stored event; approving again is an illegal transition.
    let mut req = Req::from_event("post-approve.json");
    req.path(&format!("/api/approval-requests/{}/approve", a.id))
        .token(Some(&h.as_role(Role::Approver)));
    let r = h.send(&req).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["request"]["status"], "approved");
    assert_eq!(r.body["decision"]["reason"], "checked with the owning team");
    let r = h.send(&req).await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (409, Some("illegal_transition"))
    );
    let r = h
        .call(
            Role::Approver,
            "POST",
            "/api/approval-requests/nope/approve",
            &[],
            Some(json!({})),
        )
        .await;
    assert_eq!(r.status, 404);
    let r = h
        .call(
            Role::Approver,
            "POST",
            &format!("/api/approval-requests/{}/approve", c.id),
            &[],
            Some(json!({"reasn": "typo"})),
        )
        .await;
    assert_eq!(r.status, 400);
    let r = h
        .call(
            Role::Approver,
            "POST",
            &format!("/api/approval-requests/{}/approve", c.id),
            &[],
            None,
        )
        .await;
    assert_eq!(r.status, 200, "approve without a body (reason optional)");

    // Reject needs a reason.
    let r = h
        .call(
            Role::Approver,
            "POST",
            &format!("/api/approval-requests/{}/reject", b.id),
            &[],
            Some(json!({})),
        )
        .await;
    assert_eq!(r.status, 422);
    let r = h
        .call(
            Role::Approver,
            "POST",
            &format!("/api/approval-requests/{}/reject", b.id),
            &[],
            Some(json!({"reason": "  "})),
        )
        .await;
    assert_eq!(r.status, 422);
    let mut req = Req::from_event("post-reject.json");
    req.path(&format!("/api/approval-requests/{}/reject", b.id))
        .token(Some(&h.as_role(Role::Approver)));
    let r = h.send(&req).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["request"]["status"], "rejected");

    // Execute: outcome validated; only an approved request executes.
    let path = format!("/api/approval-requests/{}/execute", a.id);
    for bad in [
        json!({}),
        json!({"outcome": "done"}),
        json!({"outcome": "executed", "details": "text"}),
    ] {
        let r = h
            .call(Role::Approver, "POST", &path, &[], Some(bad.clone()))
            .await;
        assert_eq!(r.status, 422, "{bad}");
    }
    let r = h
        .call(
            Role::Approver,
            "POST",
            &format!("/api/approval-requests/{}/execute", b.id),
            &[],
            Some(json!({"outcome": "executed"})),
        )
        .await;
    assert_eq!(r.status, 409);
    let mut req = Req::from_event("post-execute.json");
    req.path(&path).token(Some(&h.as_role(Role::Approver)));
    let r = h.send(&req).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["request"]["status"], "executed");
    assert_eq!(r.body["decision"]["details"]["changeTicket"], "CHG-1042");

    // The request shows its decisions; every decision was published.
    let r = h
        .call(
            Role::Viewer,
            "GET",
            &format!("/api/approval-requests/{}", a.id),
            &[],
            None,
        )
        .await;
    assert_eq!(r.body["decisions"].as_array().unwrap().len(), 2);
    let published = h
        .events
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|e| matches!(e, Event::ApprovalDecisionMade { .. }))
        .count();
    assert_eq!(published, 4);
    // Each decision is audited with its actor and pre/post states.
    let r = h
        .call(
            Role::Viewer,
            "GET",
            "/api/audit-trail",
            &[("entityId", &a.id)],
            None,
        )
        .await;
    let actions: Vec<&str> = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.contains(&"approval.approve") && actions.contains(&"approval.execute_succeeded"),
        "{actions:?}"
    );
    let approve = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "approval.approve")
        .unwrap();
    assert_eq!(approve["actor"], "approver");
    assert_eq!(approve["preState"]["status"], "pending");
    assert_eq!(approve["postState"]["status"], "approved");
}

#[tokio::test]
async fn fifty_concurrent_decisions_one_winner() {
    let h = harness().await;
    let req = h.open_request("i-race").await;
    let approver = h.as_role(Role::Approver);
    let calls = (0..50).map(|i| {
        let mut r = Req::new(
            "POST",
            &format!(
                "/api/approval-requests/{}/{}",
                req.id,
                if i % 2 == 0 { "approve" } else { "reject" }
            ),
        );
        r.token(Some(&approver))
            .body(&json!({"reason": format!("decider {i}")}));
        let h = &h;
        async move { h.send(&r).await.status }
    });
    let statuses = futures::future::join_all(calls).await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        49,
        "{statuses:?}"
    );
    assert_eq!(h.app.approvals.decisions(&req.id).await.unwrap().len(), 1);
    let audit = h
        .app
        .audit
        .query(
            &AuditQuery {
                entity_id: Some(req.id.clone()),
                ..Default::default()
            },
            Some(100),
            None,
            h.now,
        )
        .await
        .unwrap();
    let decisions: Vec<_> = audit
        .items
        .iter()
        .filter(|e| e.action != "approval.requested")
        .collect();
    assert_eq!(decisions.len(), 1, "{:?}", audit.items);
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

#[tokio::test]
async fn metrics_ingest_and_query() {
    let h = harness().await;
    let mut req = Req::from_event("post-metrics.json");
    req.token(Some(&h.as_role(Role::Operator)));
    let r = h.send(&req).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["written"], 2);
    // Idempotent on resource, metric and timestamp: the same batch twice is still two points.
    assert_eq!(h.send(&req).await.status, 200);
    let q = [
        ("metric", "CPUUtilization"),
        ("from", "2026-11-23T00:00:00Z"),
        ("to", "2026-11-23T12:00:00Z"),
    ];
    let r = h
        .call(Role::Viewer, "GET", "/api/metrics/i-0abc", &q, None)
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let points = r.body["points"].as_array().unwrap();
    assert_eq!(points.len(), 2);
    assert_eq!(points[1]["value"], 4.0);
    // Pages with opaque tokens: 25 hourly points, read in pages until the end.
    let many: Vec<Value> = (0..25)
        .map(|i| {
            json!({"resourceId": "i-paged", "service": "ec2", "metric": "CPUUtilization",
        "timestamp": (h.now - chrono::Duration::hours(i + 1)).to_rfc3339(), "value": i as f64})
        })
        .collect();
    assert_eq!(
        h.call(
            Role::Operator,
            "POST",
            "/api/metrics",
            &[],
            Some(json!({"samples": many}))
        )
        .await
        .status,
        200
    );
    let (mut seen, mut token, mut pages) = (0, None::<String>, 0);
    loop {
        let mut q = vec![("metric", "CPUUtilization"), ("limit", "1")];
        if let Some(t) = &token {
            q.push(("nextToken", t.as_str()));
        }
        let r = h
            .call(Role::Viewer, "GET", "/api/metrics/i-paged", &q, None)
            .await;
        assert_eq!(r.status, 200, "{r:?}");
        seen += r.body["points"].as_array().unwrap().len();
        pages += 1;
        match r.body["nextToken"].as_str() {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
    }
    assert_eq!(seen, 24, "the default range is the last 24 hours");
    assert!(pages > 1);
    for bad in [
        vec![],
        vec![("metric", "CPUUtilization"), ("from", "yesterday")],
        vec![
            ("metric", "CPUUtilization"),
            ("from", "2026-11-23T12:00:00Z"),
            ("to", "2026-11-23T00:00:00Z"),
        ],
        vec![
            ("metric", "CPUUtilization"),
            ("from", "2026-09-01T00:00:00Z"),
        ],
    ] {
        let r = h
            .call(Role::Viewer, "GET", "/api/metrics/i-0abc", &bad, None)
            .await;
        assert_eq!(r.status, 400, "{bad:?}");
    }
    // Summaries by filter.
    let r = h
        .call(
            Role::Viewer,
            "GET",
            "/api/metrics",
            &[
                ("metric", "CPUUtilization"),
                ("resourceId", "i-0abc,i-none"),
                ("from", "2026-11-23T00:00:00Z"),
            ],
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["items"][0]["count"], 2);
    assert_eq!(r.body["items"][0]["maximum"], 4.0);
    assert_eq!(r.body["items"][1]["count"], 0);
    let r = h
        .call(
            Role::Viewer,
            "GET",
            "/api/metrics",
            &[("metric", "CPUUtilization")],
            None,
        )
        .await;
    assert_eq!(r.status, 400);

    // 413 above the batch limit; 422 with every problem listed; nothing written.
    let sample = json!({"resourceId": "i-big", "service": "ec2", "metric": "CPUUtilization", "timestamp": "2026-11-23T09:00:00Z", "value": 1.0});
    let r = h
        .call(
            Role::Operator,
            "POST",
            "/api/metrics",
            &[],
            Some(json!({"samples": vec![sample.clone(); 1001]})),
        )
        .await;
    assert_eq!(r.status, 413);
    let bad = json!({"samples": [
        sample,
        {"resourceId": "i-x", "service": "mainframe", "metric": "CPUUtilization", "timestamp": "2026-11-23T09:00:00Z", "value": 1.0},
        {"resourceId": "i-x", "service": "ec2", "metric": "Happiness", "timestamp": "2026-11-23T09:00:00Z", "value": 1.0},
        {"resourceId": "i-x", "service": "ec2", "metric": "CPUUtilization", "timestamp": "23/11/2026", "value": 1.0},
        {"resourceId": "i-x", "service": "ec2", "metric": "CPUUtilization", "timestamp": "2026-11-23T09:00:00Z", "value": "NaN"},
        {"resourceId": "i-x", "service": "ec2", "metric": "CPUUtilization", "timestamp": "2026-11-23T09:00:00Z", "value": "Infinity"},
        {"resourceId": "i-x", "service": "ec2", "metric": "CPUUtilization", "timestamp": "2027-11-23T09:00:00Z", "value": 1.0}
    ]});
    let r = h
        .call(Role::Operator, "POST", "/api/metrics", &[], Some(bad))
        .await;
    assert_eq!(r.status, 422, "{r:?}");
    let at: Vec<(u64, String)> = r.body["error"]["details"]["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["index"].as_u64().unwrap(),
                p["field"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        at,
        vec![
            (1, "service".into()),
            (2, "metric".into()),
            (3, "timestamp".into()),
            (4, "value".into()),
            (5, "value".into()),
            (6, "timestamp".into())
        ]
    );
    let r = h
        .call(
            Role::Viewer,
            "GET",
            "/api/metrics/i-big",
            &[("metric", "CPUUtilization")],
            None,
        )
        .await;
    assert!(r.body["points"].as_array().unwrap().is_empty());
}

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

#[tokio::test]
async fn recommendations_of_the_latest_cycle() {
    let h = harness().await;
    let r = h
        .call(Role::Viewer, "GET", "/api/recommendations", &[], None)
        .await;
    assert_eq!(r.status, 200);
    assert!(r.body["cycle"].is_null());
    let mut recs = vec![recommendation("i-1", h.now), recommendation("i-2", h.now)];
    recs[1].monthly_savings_usd = None;
    h.app
        .recommendations
        .put_all("job-c1", &recs)
        .await
        .unwrap();
    h.app
        .cycles
        .put_run(&CycleRun {
            run_id: "run-1".into(),
            job_id: "job-c1".into(),
            trigger: Trigger::Manual,
            status: RunStatus::Succeeded,
            started_at: h.now,
            finished_at: Some(h.now),
            stages: vec![],
            resources_analysed: 2,
            findings: 2,
            recommendations: 2,
            monthly_savings_usd: 61.32,
            threshold_version: Some(0),
            error: None,
            dry_run: false,
        })
        .await
        .unwrap();
    let r = h
        .call(Role::Viewer, "GET", "/api/recommendations", &[], None)
        .await;
    assert_eq!(r.body["cycle"]["jobId"], "job-c1", "{r:?}");
    assert_eq!(r.body["totals"]["count"], 2);
    assert_eq!(r.body["totals"]["monthlySavingsUsd"], 61.32);
    assert_eq!(r.body["totals"]["unpriced"], 1);
    assert_eq!(r.body["items"][0]["resourceId"], "i-1");
    assert_eq!(
        h.call(
            Role::Viewer,
            "GET",
            "/api/recommendations",
            &[("service", "rds")],
            None
        )
        .await
        .body["totals"]["count"],
        0
    );
}

#[tokio::test]
async fn scheduler_jobs_and_websocket_status() {
    let h = harness().await;
    let r = h
        .call(Role::Viewer, "GET", "/api/scheduler/status", &[], None)
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["schedule"], "rate(1 day)");
    assert_eq!(r.body["running"], false);

    let r = h
        .call(
            Role::Operator,
            "POST",
            "/api/scheduler/trigger",
            &[],
            Some(json!({"services": ["ec2"], "dryRun": true})),
        )
        .await;
    assert_eq!(r.status, 202, "{r:?}");
    let job_id = r.body["jobId"].as_str().unwrap().to_string();
    let again = h
        .call(Role::Operator, "POST", "/api/scheduler/trigger", &[], None)
        .await;
    assert_eq!(again.status, 429, "{again:?}");
    assert!(again.headers.contains_key("retry-after"));
    let r = h
        .call(
            Role::Operator,
            "POST",
            "/api/scheduler/trigger",
            &[],
            Some(json!({"services": ["mainframe"]})),
        )
        .await;
    assert_eq!(r.status, 422);

    let r = h
        .call(
            Role::Viewer,
            "GET",
            &format!("/api/jobs/{job_id}"),
            &[],
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["kind"], "optimization_cycle");
    assert_eq!(r.body["enqueued"], true);
    assert_eq!(r.body["params"]["dryRun"], true);
    assert_eq!(
        h.call(Role::Viewer, "GET", "/api/jobs/nope", &[], None)
            .await
            .status,
        404
    );
    // The job's message is on the queue.
    let sqs = aws_sdk_sqs::Client::new(&h.stack.config);
    let msgs = sqs
        .receive_message()
        .queue_url(h.stack.queue_url("JobsQueue"))
        .max_number_of_messages(10)
        .send()
        .await
        .unwrap();
    assert!(msgs
        .messages()
        .iter()
        .any(|m| m.body().unwrap_or_default().contains(&job_id)));

    // WebSocket status counts live connections and subscriptions per topic.
    let conns = shared::dynamo::DynamoConnections::new(
        aws_sdk_dynamodb::Client::new(&h.stack.config),
        h.stack.table("ConnectionsTable"),
        shared::store::PageTokenCodec::new("k"),
    );
    for (id, topics) in [
        ("c1", vec![Topic::Approvals, Topic::Jobs]),
        ("c2", vec![Topic::Approvals]),
    ] {
        conns
            .put(&Connection {
                connection_id: id.into(),
                user_id: "u".into(),
                roles: vec![Role::Viewer],
                connected_at: h.now,
                expires_at: h.now + chrono::Duration::hours(2),
            })
            .await
            .unwrap();
        conns.subscribe(id, &topics, h.now).await.unwrap();
    }
    let r = h
        .call(Role::Viewer, "GET", "/api/websocket/status", &[], None)
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["connections"], 2);
    assert_eq!(r.body["subscriptions"], 3);
    assert_eq!(r.body["byTopic"]["approvals"], 2);
    assert_eq!(r.body["byTopic"]["jobs"], 1);
}
