//! The `ws-disconnect` function (API Gateway WebSocket `$disconnect`):
//! removes the connection and every subscription it has. Removing what is
//! already gone is fine: `$disconnect` is best-effort and may follow a 410
//! prune by the notifier.

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use aws_lambda_events::encodings::Body;
use chrono::{DateTime, Utc};
pub use shared::config::{ConfigError, Env};
use shared::dynamo::DynamoConnections;
use shared::store::{ConnectionStore, PageTokenCodec};

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub connections_table: String,
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Config, ConfigError> {
        Ok(Config {
            connections_table: env.require("CONNECTIONS_TABLE")?,
        })
    }
}

pub struct Deps {
    pub connections: Box<dyn ConnectionStore>,
}

impl Deps {
    pub fn new(config: &Config, aws: &aws_config::SdkConfig) -> Deps {
        let tokens = PageTokenCodec::new(uuid::Uuid::new_v4().as_bytes());
        Deps {
            connections: Box::new(DynamoConnections::new(
                aws_sdk_dynamodb::Client::new(aws),
                &config.connections_table,
                tokens,
            )),
        }
    }

    /// The one constructor of a deployed function.
    pub fn from_env(env: &Env, aws: &aws_config::SdkConfig) -> Result<Deps, ConfigError> {
        Ok(Self::new(&Config::from_env(env)?, aws))
    }
}

fn response(status: i64, message: Option<&str>) -> ApiGatewayProxyResponse {
    let mut r = ApiGatewayProxyResponse::default();
    r.status_code = status;
    r.body = message.map(|m| Body::Text(serde_json::json!({ "message": m }).to_string()));
    r
}

pub async fn handle(
    deps: &Deps,
    event: ApiGatewayWebsocketProxyRequest,
    _now: DateTime<Utc>,
) -> ApiGatewayProxyResponse {
    let Some(connection_id) = event
        .request_context
        .connection_id
        .filter(|c| !c.is_empty())
    else {
        return response(400, Some("the event carries no connectionId"));
    };
    match deps.connections.remove(&connection_id).await {
        Ok(()) => {
            tracing::info!(
                %connection_id,
                status = ?event.request_context.disconnect_status_code,
                reason = ?event.request_context.disconnect_reason,
                "disconnected"
            );
            response(200, None)
        }
        Err(e) => {
            // The records expire with the connection's TTL anyway; the error
            // is for the logs (API Gateway ignores $disconnect's answer).
            tracing::error!(%connection_id, error = %e, "could not remove the connection");
            response(500, Some("internal error"))
        }
    }
}
