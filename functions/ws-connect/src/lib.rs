//! The `ws-connect` function (API Gateway WebSocket `$connect`): verifies the
//! caller's token and stores the connection with its user and roles, until
//! the token expires or API Gateway closes it (2 hours), whichever is first.
//!
//! The token comes from the query string (`?token=`) or, for browsers, which
//! cannot set headers on a WebSocket, from `Sec-WebSocket-Protocol`. A
//! refusal (401 / 403) stores nothing; API Gateway then closes the socket.

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use aws_lambda_events::encodings::Body;
use aws_lambda_events::http::{HeaderName, HeaderValue};
use chrono::{DateTime, Duration, Utc};
use shared::auth::{AuthConfig, AuthError, Verifier};
pub use shared::config::{ConfigError, Env};
use shared::domain::Connection;
use shared::dynamo::DynamoConnections;
use shared::store::{ConnectionStore, PageTokenCodec};

/// API Gateway's maximum connection duration.
pub const CONNECTION_LIFETIME: Duration = Duration::hours(2);

const PROTOCOL_HEADER: &str = "sec-websocket-protocol";

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub connections_table: String,
    pub auth: AuthConfig,
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Config, ConfigError> {
        Ok(Config {
            connections_table: env.require("CONNECTIONS_TABLE")?,
            auth: AuthConfig::from_env(env)?,
        })
    }
}

/// What the handler talks to, built once per process.
pub struct Deps {
    pub verifier: Verifier,
    pub connections: Box<dyn ConnectionStore>,
}

impl Deps {
    pub fn new(config: &Config, aws: &aws_config::SdkConfig) -> Deps {
        // This function lists nothing, so a per-process token key will do.
        let tokens = PageTokenCodec::new(uuid::Uuid::new_v4().as_bytes());
        Deps {
            verifier: Verifier::new(config.auth.clone()),
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

/// Where the token was found.
#[derive(Debug, PartialEq)]
enum Presented {
    None,
    Query(String),
    /// The token, and the subprotocol the 200 must echo.
    Protocol {
        token: String,
        echo: String,
    },
}

/// The query string wins; otherwise `Sec-WebSocket-Protocol`, a
/// comma-separated list in which the token is the JWT-shaped entry (so a
/// client may offer `finops, <jwt>`). The answer echoes the other entry when
/// there is one, else the token itself: a browser requires the server to
/// pick one of the offered protocols.
fn presented(event: &ApiGatewayWebsocketProxyRequest) -> Presented {
    if let Some(t) = event
        .query_string_parameters
        .first("token")
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        return Presented::Query(t.to_string());
    }
    let Some(header) = event
        .headers
        .get(PROTOCOL_HEADER)
        .and_then(|v| v.to_str().ok())
    else {
        return Presented::None;
    };
    let entries: Vec<&str> = header
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .collect();
    let Some(token) = entries.iter().find(|e| e.matches('.').count() == 2) else {
        return Presented::None;
    };
    let echo = entries.iter().find(|e| *e != token).unwrap_or(token);
    Presented::Protocol {
        token: token.to_string(),
        echo: echo.to_string(),
    }
}

/// The connection authorizes its actions only while the token would: an
/// operator whose token expires (or is revoked and not renewed) must
/// reconnect with a fresh one instead of keeping the socket's 2 hours.
fn connection_expiry(now: DateTime<Utc>, token_exp: Option<DateTime<Utc>>) -> DateTime<Utc> {
    let limit = now + CONNECTION_LIFETIME;
    token_exp.map_or(limit, |exp| exp.min(limit))
}

fn response(status: i64, message: Option<&str>) -> ApiGatewayProxyResponse {
    let mut r = ApiGatewayProxyResponse::default();
    r.status_code = status;
    if let Some(m) = message {
        r.headers.insert(
            HeaderName::from_static("content-type"),
            HeaderValue::from_static("application/json"),
        );
        r.body = Some(Body::Text(serde_json::json!({ "message": m }).to_string()));
    }
    r
}

pub async fn handle(
    deps: &Deps,
    event: ApiGatewayWebsocketProxyRequest,
    now: DateTime<Utc>,
) -> ApiGatewayProxyResponse {
    let Some(connection_id) = event
        .request_context
        .connection_id
        .clone()
        .filter(|c| !c.is_empty())
    else {
        return response(400, Some("the event carries no connectionId"));
    };
    let presented = presented(&event);
    let token = match &presented {
        Presented::None => None,
        Presented::Query(t) | Presented::Protocol { token: t, .. } => Some(t.as_str()),
    };
    let identity = match deps.verifier.verify(token, now).await {
        Ok(identity) => identity,
        Err(AuthError::KeysUnavailable(e)) => {
            tracing::error!(error = %e, "token keys unavailable");
            return response(
                503,
                Some("the token issuer's keys are unavailable; try again"),
            );
        }
        Err(e) => {
            tracing::info!(%connection_id, error = %e, "connection refused");
            return response(401, Some(&e.to_string()));
        }
    };
    if identity.roles.is_empty() {
        tracing::info!(%connection_id, user = %identity.user_id, "connection refused: no role");
        return response(
            403,
            Some("the token grants no role (viewer, operator, approver or admin)"),
        );
    }
    let connection = Connection {
        connection_id: connection_id.clone(),
        user_id: identity.user_id.clone(),
        roles: identity.roles.clone(),
        connected_at: now,
        expires_at: connection_expiry(now, identity.expires_at),
    };
    if let Err(e) = deps.connections.put(&connection).await {
        tracing::error!(%connection_id, error = %e, "could not store the connection");
        return response(500, Some("internal error"));
    }
    tracing::info!(%connection_id, user = %identity.user_id, roles = ?identity.roles, "connected");
    let mut ok = response(200, None);
    if let Presented::Protocol { echo, .. } = presented {
        if let Ok(v) = HeaderValue::from_str(&echo) {
            ok.headers
                .insert(HeaderName::from_static(PROTOCOL_HEADER), v);
        }
    }
    ok
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(query: Option<&str>, protocol: Option<&str>) -> ApiGatewayWebsocketProxyRequest {
        let mut v = serde_json::json!({
            "requestContext": {"connectionId": "c1", "connectedAt": 0, "requestTimeEpoch": 0},
            "isBase64Encoded": false
        });
        if let Some(q) = query {
            v["queryStringParameters"] = serde_json::json!({ "token": q });
        }
        if let Some(p) = protocol {
            v["headers"] = serde_json::json!({ "Sec-WebSocket-Protocol": p });
        }
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn tokens_come_from_the_query_or_the_protocol_header() {
        assert_eq!(presented(&event(None, None)), Presented::None);
        assert_eq!(
            presented(&event(Some("a.b.c"), Some("x.y.z"))),
            Presented::Query("a.b.c".into())
        );
        assert_eq!(
            presented(&event(None, Some("x.y.z"))),
            Presented::Protocol {
                token: "x.y.z".into(),
                echo: "x.y.z".into()
            }
        );
        assert_eq!(
            presented(&event(None, Some("finops, x.y.z"))),
            Presented::Protocol {
                token: "x.y.z".into(),
                echo: "finops".into()
            }
        );
        assert_eq!(presented(&event(None, Some("graphql-ws"))), Presented::None);
    }
}
