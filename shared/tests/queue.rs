//! Shard fan-out through SendMessageBatch, against the emulator's SQS.

use finops_local::LocalStack;
use shared::calls::CallCounter;
use shared::domain::{JobKind, JobMessage, Resource, Service, ShardRef};
use shared::queue::{JobQueue, SqsJobQueue};
use std::collections::BTreeSet;

fn sqs(stack: &LocalStack, counter: &CallCounter) -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::config::Builder::from(&stack.config)
            .interceptor(counter.clone())
            .build(),
    )
}

/// Shard `index` of `of`, carrying `resources` resources.
fn shard(job: &str, index: u32, of: u32, resources: usize) -> JobMessage {
    JobMessage {
        job_id: job.to_string(),
        kind: JobKind::OptimizationCycle,
        shard: Some(ShardRef {
            index,
            of,
            resources: (0..resources)
                .map(|i| Resource::new(Service::Ec2, format!("i-{index}-{i:05}"), "us-east-1"))
                .collect(),
            lease_owner: format!("{job}:owner"),
            unit: None,
            discover: false,
        }),
    }
}

/// Receives until `n` messages came or the queue stays empty.
async fn receive_all(client: &aws_sdk_sqs::Client, url: &str, n: usize) -> Vec<JobMessage> {
    let mut got = Vec::new();
    let mut empty = 0;
    while got.len() < n && empty < 3 {
        let out = client
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        let messages = out.messages();
        if messages.is_empty() {
            empty += 1;
        }
        for m in messages {
            got.push(serde_json::from_str(m.body().unwrap()).unwrap());
        }
    }
    got
}

/// An isolated stack, an SQS client whose calls are counted, the jobs
/// queue's adapter and a job id unique to the stack.
async fn fixture() -> (
    LocalStack,
    CallCounter,
    aws_sdk_sqs::Client,
    SqsJobQueue,
    String,
) {
    let stack = LocalStack::isolated().await;
    let counter = CallCounter::new();
    let client = sqs(&stack, &counter);
    let queue = SqsJobQueue::new(client.clone(), stack.queue_url("JobsQueue"));
    let job = format!("{}-job", stack.prefix);
    (stack, counter, client, queue, job)
}

#[tokio::test]
async fn twenty_five_shards_go_out_in_three_calls_and_all_arrive() {
    let (stack, counter, client, queue, job) = fixture().await;
    let url = stack.queue_url("JobsQueue");
    let messages: Vec<JobMessage> = (0..25).map(|i| shard(&job, i, 25, 20)).collect();

    queue.send_batch(&messages).await.unwrap();

    assert_eq!(counter.get("SQS", "SendMessageBatch"), 3);
    assert_eq!(counter.get("SQS", "SendMessage"), 0);
    let got = receive_all(&client, url, 25).await;
    assert_eq!(got.len(), 25);
    let indices: BTreeSet<u32> = got
        .iter()
        .map(|m| m.shard.as_ref().unwrap().index)
        .collect();
    assert_eq!(indices, (0..25).collect());
    for m in &got {
        let i = m.shard.as_ref().unwrap().index as usize;
        assert_eq!(m, &messages[i]);
    }
}

#[tokio::test]
async fn large_shards_split_calls_at_256_kib_of_bodies() {
    let (stack, counter, client, queue, job) = fixture().await;
    let url = stack.queue_url("JobsQueue");
    // About 100 KB each: two fit in a call, the third starts the next one.
    let messages: Vec<JobMessage> = (0..5).map(|i| shard(&job, i, 5, 1000)).collect();
    let sizes: Vec<usize> = messages
        .iter()
        .map(|m| serde_json::to_string(m).unwrap().len())
        .collect();
    assert!(
        sizes.iter().all(|s| (87_382..131_072).contains(s)),
        "{sizes:?}"
    );

    queue.send_batch(&messages).await.unwrap();

    assert_eq!(counter.get("SQS", "SendMessageBatch"), 3);
    assert_eq!(receive_all(&client, url, 5).await.len(), 5);
}
