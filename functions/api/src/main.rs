use api::{handle, App, Env};
use lambda_http::{service_fn, Request};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let env = Env::process();
    shared::logging::init(&env);
    let aws = shared::config::load_sdk_config().await;
    let app = App::from_env(&env, &aws)?;
    lambda_http::run(service_fn(|req: Request| {
        let app = &app;
        async move { Ok::<_, lambda_http::Error>(handle(app, req).await) }
    }))
    .await
}
