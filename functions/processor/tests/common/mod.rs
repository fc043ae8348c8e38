//! What the processor's emulator tests share: a silent notifier, the
//! queue drained into the processor, and EC2 resources made and read back
//! through the SDK (the emulator is the judge of what changed).
#![allow(dead_code)] // each test file uses its own part

use chrono::Utc;
use finops_local::event_source::EventSource;
use finops_local::LocalStack;
use processor::{handle, Processor};
use shared::notify::{Event, Notifier};

/// A notifier that drops every event.
pub struct Quiet;

#[async_trait::async_trait]
impl Notifier for Quiet {
    async fn publish(&self, _: &Event) -> shared::Result<()> {
        Ok(())
    }
}

/// The stack's jobs queue, as Lambda's event source reads it.
pub fn jobs_queue(stack: &LocalStack) -> EventSource {
    EventSource::new(
        aws_sdk_sqs::Client::new(&stack.config),
        stack.queue_url("JobsQueue"),
        stack.queue_arn("JobsQueue"),
    )
}

/// Delivers whatever is on the queue to the processor until it is empty
/// (a deferred message comes back only after its SQS delay, so it is not
/// seen again); the ids of the messages the processor failed.
pub async fn drain(source: &EventSource, p: &Processor) -> Vec<String> {
    let mut failed = Vec::new();
    for _ in 0..20 {
        let batch = source.receive().await.unwrap();
        if batch.is_empty() {
            break;
        }
        let response = handle(p, batch.event.clone(), Utc::now()).await;
        failed.extend(
            response
                .batch_item_failures
                .iter()
                .map(|f| f.item_identifier.clone()),
        );
        source.settle(&batch, &response, false).await.unwrap();
    }
    failed
}

pub async fn instance(ec2: &aws_sdk_ec2::Client, ty: &str) -> String {
    ec2.run_instances()
        .image_id("ami-760aaa0f")
        .instance_type(aws_sdk_ec2::types::InstanceType::from(ty))
        .min_count(1)
        .max_count(1)
        .send()
        .await
        .unwrap()
        .instances()[0]
        .instance_id()
        .unwrap()
        .to_string()
}

/// An instance's type and state, read from EC2.
pub async fn type_and_state(ec2: &aws_sdk_ec2::Client, id: &str) -> (String, String) {
    let out = ec2
        .describe_instances()
        .instance_ids(id)
        .send()
        .await
        .unwrap();
    let i = &out.reservations()[0].instances()[0];
    (
        i.instance_type().unwrap().as_str().to_string(),
        i.state().unwrap().name().unwrap().as_str().to_string(),
    )
}

pub async fn gp2_volume(ec2: &aws_sdk_ec2::Client) -> String {
    ec2.create_volume()
        .availability_zone("us-east-1a")
        .size(100)
        .volume_type(aws_sdk_ec2::types::VolumeType::Gp2)
        .send()
        .await
        .unwrap()
        .volume_id()
        .unwrap()
        .to_string()
}

/// A volume's type, read from EC2.
pub async fn volume_type(ec2: &aws_sdk_ec2::Client, id: &str) -> String {
    ec2.describe_volumes()
        .volume_ids(id)
        .send()
        .await
        .unwrap()
        .volumes()[0]
        .volume_type()
        .unwrap()
        .as_str()
        .to_string()
}
