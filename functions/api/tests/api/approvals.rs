//! Approval requests: listing, reading, deciding, and racing decisions.

use crate::common::*;
use serde_json::json;
use shared::domain::*;
use shared::notify::Event;
use shared::store::*;

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
        json!({"details": {"changeTicket": "CHG-1"}}),
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
    // Without an outcome the system executes it: a job for the processor,
    // the same one however often it is asked for.
    let mut jobs = Vec::new();
    for _ in 0..3 {
        let r = h
            .call(Role::Approver, "POST", &path, &[], Some(json!({})))
            .await;
        assert_eq!(r.status, 202, "{r:?}");
        jobs.push(r.body["jobId"].as_str().unwrap().to_string());
    }
    assert!(jobs.windows(2).all(|w| w[0] == w[1]), "{jobs:?}");
    let r = h
        .call(
            Role::Viewer,
            "GET",
            &format!("/api/jobs/{}", jobs[0]),
            &[],
            None,
        )
        .await;
    assert_eq!(r.body["kind"], "execution", "{r:?}");
    assert_eq!(r.body["params"]["op"], "execute");
    // A viewer may not; a rejected request cannot be executed.
    let r = h
        .call(Role::Viewer, "POST", &path, &[], Some(json!({})))
        .await;
    assert_eq!(r.status, 403);
    let rejected = format!("/api/approval-requests/{}/execute", b.id);
    let r = h
        .call(Role::Approver, "POST", &rejected, &[], Some(json!({})))
        .await;
    assert_eq!(r.status, 409, "{r:?}");
    // Rollback wants a reason and an executed request.
    let back = format!("/api/approval-requests/{}/rollback", a.id);
    let r = h
        .call(Role::Approver, "POST", &back, &[], Some(json!({})))
        .await;
    assert_eq!(r.status, 422, "{r:?}");
    let r = h
        .call(
            Role::Approver,
            "POST",
            &back,
            &[],
            Some(json!({"reason": "undo"})),
        )
        .await;
    assert_eq!(r.status, 409, "not executed yet: {r:?}");
    // Preview: no processor runs here, so after its wait the api hands back the job.
    let look = format!("/api/approval-requests/{}/preview", a.id);
    let r = h.call(Role::Approver, "POST", &look, &[], None).await;
    assert_eq!(r.status, 202, "{r:?}");
    assert!(r.body["jobId"].is_string());
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

/// Racing deciders while one in ten DynamoDB answers is lost (a throttle or
/// a 503 after the write landed, so the SDK retries a write that happened):
/// still one decision and one audit entry, and every caller gets an answer
/// of the contract (200, 409, or 503 when retries ran out), never two wins.
#[tokio::test]
async fn racing_decisions_under_injected_faults_record_one_decision() {
    let mut h = harness().await;
    let faults = finops_local::faults::FaultInjector::new(10, 7);
    let ddb = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&h.stack.config)
            .interceptor(faults.clone())
            .build(),
    );
    let now = h.now;
    let config = h.app.config.clone();
    h.app = api::App::with_dynamodb(config, &h.stack.config, ddb, Box::new(h.events.clone()))
        .with_clock(move || now);
    let mut opened = Vec::new();
    for i in 0..5 {
        opened.push(h.open_request(&format!("i-fault-{i}")).await);
    }
    let approver = h.as_role(Role::Approver);
    for req in &opened {
        let calls = (0..20).map(|i| {
            let mut r = Req::new(
                "POST",
                &format!("/api/approval-requests/{}/approve", req.id),
            );
            r.token(Some(&approver))
                .body(&json!({"reason": format!("decider {i}")}));
            let h = &h;
            async move { h.send(&r).await.status }
        });
        let statuses = futures::future::join_all(calls).await;
        assert!(
            statuses.iter().all(|s| [200, 409, 503].contains(s)),
            "{statuses:?}"
        );
        assert!(
            statuses.iter().filter(|s| **s == 200).count() <= 1,
            "{statuses:?}"
        );
        let decisions = loop {
            match h.app.approvals.decisions(&req.id).await {
                Ok(d) => break d,
                Err(_) => continue, // an injected fault on the read itself
            }
        };
        assert_eq!(decisions.len(), 1, "{statuses:?}");
        let audit = loop {
            if let Ok(a) = h
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
            {
                break a;
            }
        };
        let approvals = audit
            .items
            .iter()
            .filter(|e| e.action == "approval.approve")
            .count();
        assert_eq!(approvals, 1, "{:?}", audit.items);
    }
    let (attempts, injected) = faults.counts();
    assert!(injected > 0, "{injected} of {attempts}");
    println!("{injected} faults injected in {attempts} DynamoDB attempts");
}
