//! The CallCounter interceptor counts what goes over the wire, per service
//! and operation, for any client it is attached to.

use chrono::{DateTime, Utc};
use finops_local::synthetic::SyntheticCloudWatch;
use finops_local::{estate, LocalStack};
use shared::calls::CallCounter;
use shared::collector::{CloudWatchSource, MetricSource};
use shared::domain::{Resource, Service};
use shared::dynamo::DynamoInventory;
use shared::store::{InventoryStore, PageTokenCodec};

#[tokio::test]
async fn counts_every_page_the_collector_asks_cloudwatch_for() {
    let set = shared::analysis::default_thresholds().unwrap();
    let now = DateTime::<Utc>::from_timestamp(1_767_225_600, 0).unwrap();
    let cw = SyntheticCloudWatch::new(&set, now, 14, &[(Service::Ec2, 700)]);
    let counter = CallCounter::new();
    let config = finops_local::sdk_config("http://127.0.0.1:9").await;
    let client = aws_sdk_cloudwatch::Client::from_conf(
        aws_sdk_cloudwatch::config::Builder::from(&config)
            .http_client(cw.http_client())
            .interceptor(counter.clone())
            .build(),
    );
    let source = CloudWatchSource::new(client).with_max_datapoints(20_000);
    let found = source.discover(&Service::ALL).await.unwrap();
    let resources = estate::resources(&[(Service::Ec2, 700)]);
    let (requests, start, end) = shared::cycle::metric_requests(&set, &resources, now);
    source.fetch(&requests, start, end).await.unwrap();

    assert_eq!(found.len(), 700);
    let pages = source.calls();
    // Three independent counts agree: the collector's own, the server's, ours.
    assert_eq!(counter.get("CloudWatch", "ListMetrics"), pages.list_metrics);
    assert_eq!(
        counter.get("CloudWatch", "GetMetricData"),
        pages.get_metric_data
    );
    assert_eq!(cw.served().list_metrics, pages.list_metrics);
    assert_eq!(cw.served().get_metric_data, pages.get_metric_data);
    // 2,100 EC2 series, 500 a page, plus one empty page per other service.
    assert_eq!(pages.list_metrics, 5 + (Service::ALL.len() as u64 - 1));
    assert!(pages.get_metric_data > 10, "{pages:?}");
    assert_eq!(counter.total(), pages.list_metrics + pages.get_metric_data);
}

#[tokio::test]
async fn one_counter_tallies_dynamodb_operations_apart_on_several_clients() {
    let stack = LocalStack::isolated().await;
    let counter = CallCounter::new();
    let ddb = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&stack.config)
            .interceptor(counter.clone())
            .build(),
    );
    let sqs = aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::config::Builder::from(&stack.config)
            .interceptor(counter.clone())
            .build(),
    );
    let inventory = DynamoInventory::new(
        ddb,
        stack.table("InventoryTable"),
        PageTokenCodec::new(b"calls-test-key-0123456789abcdef!"),
    );
    let resources: Vec<Resource> = (0..60)
        .map(|i| Resource::new(Service::Ec2, format!("{}-i-{i}", stack.prefix), "us-east-1"))
        .collect();
    inventory.upsert(&resources).await.unwrap();
    let all = inventory.all().await.unwrap();
    sqs.get_queue_attributes()
        .queue_url(stack.queue_url("JobsQueue"))
        .send()
        .await
        .unwrap();

    assert_eq!(all.len(), 60);
    // 60 items, each its own UpdateItem of the pushed layer (the
    // discovered layer of the same item is left as it is).
    assert_eq!(counter.get("DynamoDB", "UpdateItem"), 60);
    assert!(counter.get("DynamoDB", "Query") + counter.get("DynamoDB", "Scan") >= 1);
    assert_eq!(counter.get("SQS", "GetQueueAttributes"), 1);
    assert_eq!(counter.get("CloudWatch", "GetMetricData"), 0);
    let tally = counter.snapshot();
    assert!(tally
        .keys()
        .all(|(service, _)| service == "DynamoDB" || service == "SQS"));
}
