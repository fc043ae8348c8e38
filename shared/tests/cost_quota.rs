//! The Cost Explorer allowance against the emulator: a conditional counter,
//! so racing requests never spend more than the limit.

use chrono::{DateTime, Duration, Utc};
use finops_local::LocalStack;
use shared::costs::CostQuota;
use shared::dynamo::DynamoCostCache;
use std::sync::Arc;

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

#[tokio::test]
async fn twenty_racing_requests_spend_exactly_the_allowance() {
    let stack = LocalStack::isolated().await;
    let quota = Arc::new(DynamoCostCache::new(
        aws_sdk_dynamodb::Client::new(&stack.config),
        stack.table("CostCacheTable"),
    ));
    let now = t("2026-11-23T12:34:56Z");
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let q = quota.clone();
            tokio::spawn(async move { q.take("carol", 1, 5, now).await.unwrap() })
        })
        .collect();
    let mut granted = 0;
    for task in tasks {
        granted += task.await.unwrap() as u32;
    }
    assert_eq!(granted, 5);

    // Later pages are counted past the limit, and a request for more pages
    // than remain is refused without taking any.
    let dave_now = now + Duration::minutes(1);
    assert!(quota.take("dave", 2, 5, dave_now).await.unwrap());
    quota.add("dave", 2, dave_now).await.unwrap();
    assert!(!quota.take("dave", 2, 5, dave_now).await.unwrap());
    assert!(quota.take("dave", 1, 5, dave_now).await.unwrap());
    assert!(!quota.take("dave", 1, 5, dave_now).await.unwrap());
    // A request larger than the limit itself is never granted.
    assert!(!quota.take("erin", 6, 5, dave_now).await.unwrap());

    // The next UTC hour starts afresh.
    assert!(quota
        .take("carol", 1, 5, t("2026-11-23T13:00:00Z"))
        .await
        .unwrap());
}
