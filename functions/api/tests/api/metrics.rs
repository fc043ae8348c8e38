//! Metrics: ingest, series, summaries.

use crate::common::*;
use serde_json::{json, Value};
use shared::domain::*;

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
