use aws_lambda_events::sqs::SqsEvent;
use lambda_runtime::{service_fn, LambdaEvent};
use processor::{handle, Config, Processor};
use shared::dynamo::DynamoConnections;
use shared::store::PageTokenCodec;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = Config::from_env()?;
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let env = |k: &str| std::env::var(k).ok();
    // Subscriptions are read (and 410-gone connections pruned) here; the
    // notifier lists nothing for a client, so a per-process token key will do.
    let connections = Arc::new(DynamoConnections::new(
        aws_sdk_dynamodb::Client::new(&aws),
        env("CONNECTIONS_TABLE").unwrap_or_default(),
        PageTokenCodec::new(uuid::Uuid::new_v4().as_bytes()),
    ));
    if env("WEBSOCKET_ENDPOINT").is_some_and(|v| !v.is_empty())
        && env("CONNECTIONS_TABLE").is_none_or(|v| v.is_empty())
    {
        return Err("configuration: WEBSOCKET_ENDPOINT needs CONNECTIONS_TABLE".into());
    }
    // WebSocket, Slack and webhook channels as configured; the log otherwise.
    let notifier = shared::channels::from_env(env, &aws, connections)?;
    let processor = Processor::new(config, &aws, notifier);
    lambda_runtime::run(service_fn(|event: LambdaEvent<SqsEvent>| {
        let processor = &processor;
        async move {
            Ok::<_, lambda_runtime::Error>(
                handle(processor, event.payload, chrono::Utc::now()).await,
            )
        }
    }))
    .await
}
