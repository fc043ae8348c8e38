//! The `ws-message` function: every client action of the WebSocket API.
//!
//! The response body is the frame API Gateway sends back to the caller
//! (route response `$default`): `ack`, `pong` or `error`, always echoing the
//! request's `requestId`. A message is parsed into a [`cmd::Command`] before
//! any I/O; a request that cannot be handled gets an `error` frame with a
//! code, never silence, and changes nothing.
//!
//! Roles come from the connection record `ws-connect` stored, not from the
//! message: a frame cannot claim more than its connection was granted.

pub mod cmd;
pub mod error;

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use aws_lambda_events::encodings::Body;
use base64::Engine;
use chrono::{DateTime, Utc};
use cmd::{Action, Command, Context, Parse, MAX_ID_CHARS};
use error::FrameError;
use serde_json::{json, Value};
pub use shared::config::{ConfigError, Env};
use shared::dynamo::{DynamoConnections, DynamoJobs};
use shared::queue::{JobQueue, SqsJobQueue};
use shared::store::{ConnectionStore, JobStore, PageTokenCodec};

pub use cmd::MAX_FIELD_CHARS;
pub use cmd::MAX_TOPICS;

/// API Gateway's WebSocket message limit.
pub const MAX_BODY_BYTES: usize = 128 * 1024;

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub connections_table: String,
    pub jobs_table: String,
    pub jobs_queue_url: String,
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Config, ConfigError> {
        Ok(Config {
            connections_table: env.require("CONNECTIONS_TABLE")?,
            jobs_table: env.require("JOBS_TABLE")?,
            jobs_queue_url: env.require("JOBS_QUEUE_URL")?,
        })
    }
}

pub struct Deps {
    pub connections: Box<dyn ConnectionStore>,
    pub jobs: Box<dyn JobStore>,
    pub queue: Box<dyn JobQueue>,
}

impl Deps {
    pub fn new(config: &Config, aws: &aws_config::SdkConfig) -> Deps {
        let ddb = aws_sdk_dynamodb::Client::new(aws);
        // This function lists nothing, so a per-process token key will do.
        let tokens = PageTokenCodec::new(uuid::Uuid::new_v4().as_bytes());
        Deps {
            connections: Box::new(DynamoConnections::new(
                ddb.clone(),
                &config.connections_table,
                tokens,
            )),
            jobs: Box::new(DynamoJobs::new(ddb, &config.jobs_table)),
            queue: Box::new(SqsJobQueue::new(
                aws_sdk_sqs::Client::new(aws),
                &config.jobs_queue_url,
            )),
        }
    }

    /// The one constructor of a deployed function.
    pub fn from_env(env: &Env, aws: &aws_config::SdkConfig) -> Result<Deps, ConfigError> {
        Ok(Self::new(&Config::from_env(env)?, aws))
    }
}

pub async fn handle(
    deps: &Deps,
    event: ApiGatewayWebsocketProxyRequest,
    now: DateTime<Utc>,
) -> ApiGatewayProxyResponse {
    let frame = frame_for(deps, &event, now).await;
    let mut r = ApiGatewayProxyResponse::default();
    r.status_code = 200;
    r.body = Some(Body::Text(frame.to_string()));
    r
}

async fn frame_for(
    deps: &Deps,
    event: &ApiGatewayWebsocketProxyRequest,
    now: DateTime<Utc>,
) -> Value {
    let reference = event.request_context.request_id.as_deref().unwrap_or("-");
    let (request_id, action, outcome) = match read(event) {
        Err((request_id, e)) => (request_id, None, Err(e)),
        Ok((request_id, action, parse)) => {
            let outcome = match Command::from_frame(action, parse, now) {
                Err(e) => Err(e),
                Ok(command) => {
                    let ctx = Context {
                        deps,
                        connection_id: event.request_context.connection_id.as_deref(),
                        request_id: request_id.as_ref(),
                        now,
                        reference,
                    };
                    command.apply(&ctx).await
                }
            };
            (request_id, Some(action), outcome)
        }
    };
    let mut frame = match outcome {
        Ok(frame) => frame,
        Err(e) => {
            if e.code != "internal" {
                tracing::info!(code = e.code, message = %e.message, action = ?action.map(Action::as_str), "request refused");
            }
            let mut frame = e.fields;
            frame.insert("type".into(), json!("error"));
            frame.insert("code".into(), json!(e.code));
            frame.insert("message".into(), json!(e.message));
            Value::Object(frame)
        }
    };
    if let Some(obj) = frame.as_object_mut() {
        if let Some(action) = action {
            obj.insert("action".into(), json!(action.as_str()));
        }
        if let Some(id) = request_id {
            obj.insert("requestId".into(), id);
        }
    }
    frame
}

type ReadError = (Option<Value>, FrameError);

/// The message's `requestId`, `action` and the rest of its fields.
fn read(
    event: &ApiGatewayWebsocketProxyRequest,
) -> Result<(Option<Value>, Action, Parse), ReadError> {
    let raw = event.body.as_deref().unwrap_or("");
    let bytes: Vec<u8> = if event.is_base64_encoded {
        base64::engine::general_purpose::STANDARD
            .decode(raw)
            .map_err(|_| (None, FrameError::bad("the message is not valid base64")))?
    } else {
        raw.as_bytes().to_vec()
    };
    if bytes.len() > MAX_BODY_BYTES {
        return Err((
            None,
            FrameError::new(
                "payload_too_large",
                format!(
                    "the message is {} bytes; the limit is {MAX_BODY_BYTES} (128 KB)",
                    bytes.len()
                ),
            ),
        ));
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err((
            None,
            FrameError::bad("the message is empty; expected a JSON object with an `action`"),
        ));
    }
    let value: Value = serde_json::from_slice(&bytes).map_err(|e| {
        (
            None,
            FrameError::bad(format!("the message is not valid JSON: {e}")),
        )
    })?;
    let Value::Object(mut map) = value else {
        return Err((
            None,
            FrameError::bad("the message must be a JSON object with an `action`"),
        ));
    };
    let request_id = match map.remove("requestId") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if !s.is_empty() && s.chars().count() <= MAX_ID_CHARS => {
            Some(Value::String(s))
        }
        Some(n @ Value::Number(_)) => Some(n),
        Some(_) => {
            return Err((
                None,
                FrameError::bad(format!(
                    "`requestId` must be a number or a non-empty string of at most {MAX_ID_CHARS} characters"
                )),
            ))
        }
    };
    let action = match map.remove("action") {
        None | Some(Value::Null) => {
            return Err((request_id, FrameError::bad("missing field `action`")))
        }
        Some(Value::String(a)) => match Action::parse(&a) {
            Some(known) => known,
            None => {
                let shown: String = a.chars().take(64).collect();
                let names: Vec<&str> = Action::ALL.iter().map(|a| a.as_str()).collect();
                return Err((
                    request_id,
                    FrameError::new(
                        "unknown_action",
                        format!(
                            "unknown action '{shown}'; expected one of {}",
                            names.join(", ")
                        ),
                    ),
                ));
            }
        },
        Some(_) => return Err((request_id, FrameError::bad("`action` must be a string"))),
    };
    Ok((request_id, action, Parse::new(action.as_str(), map)))
}
