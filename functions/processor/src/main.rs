use aws_lambda_events::sqs::SqsEvent;
use lambda_runtime::{service_fn, LambdaEvent};
use processor::{handle, Env, Processor};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let env = Env::process();
    shared::logging::init(&env);
    let aws = shared::config::load_sdk_config().await;
    let processor = Processor::from_env(&env, &aws)?;
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
