use aws_lambda_events::eventbridge::EventBridgeEvent;
use lambda_runtime::{service_fn, LambdaEvent};
use scheduler::{handle, Config};
use shared::dynamo::DynamoJobs;
use shared::queue::SqsJobQueue;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = Config::from_env()?;
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let jobs = DynamoJobs::new(aws_sdk_dynamodb::Client::new(&aws), &config.jobs_table);
    let queue = SqsJobQueue::new(aws_sdk_sqs::Client::new(&aws), &config.jobs_queue_url);
    lambda_runtime::run(service_fn(|event: LambdaEvent<EventBridgeEvent>| {
        let (jobs, queue) = (&jobs, &queue);
        async move { handle(jobs, queue, event.payload, chrono::Utc::now()).await }
    }))
    .await
}
