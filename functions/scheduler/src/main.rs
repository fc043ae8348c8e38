use aws_lambda_events::eventbridge::EventBridgeEvent;
use lambda_runtime::{service_fn, LambdaEvent};
use scheduler::{Env, Scheduler};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let env = Env::process();
    shared::logging::init(&env);
    let aws = shared::config::load_sdk_config().await;
    let scheduler = Scheduler::from_env(&env, &aws)?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<EventBridgeEvent>| {
        let scheduler = &scheduler;
        async move { scheduler.handle(event.payload, chrono::Utc::now()).await }
    }))
    .await
}
