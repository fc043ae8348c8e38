//! The scheduler, jobs, and WebSocket status.

use crate::common::*;
use serde_json::json;
use shared::domain::*;
use shared::store::*;

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
