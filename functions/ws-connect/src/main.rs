use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use lambda_runtime::{service_fn, LambdaEvent};
use ws_connect::{handle, Deps, Env};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let env = Env::process();
    shared::logging::init(&env);
    let aws = shared::config::load_sdk_config().await;
    let deps = Deps::from_env(&env, &aws)?;
    lambda_runtime::run(service_fn(
        |event: LambdaEvent<ApiGatewayWebsocketProxyRequest>| {
            let deps = &deps;
            async move {
                Ok::<_, lambda_runtime::Error>(
                    handle(deps, event.payload, chrono::Utc::now()).await,
                )
            }
        },
    ))
    .await
}
