//! Recommendations of the latest cycle.

use crate::common::*;
use shared::domain::*;
use shared::store::*;

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
