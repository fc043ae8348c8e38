//! The `ws-message` function: every client action of SPEC section 4.
//!
//! The response body is the frame API Gateway sends back to the caller
//! (route response `$default`): `ack`, `pong` or `error`, always echoing the
//! request's `requestId`. A request that cannot be handled gets an `error`
//! frame with a code, never silence, and changes nothing.
//!
//! Roles come from the connection record `ws-connect` stored, not from the
//! message: a frame cannot claim more than its connection was granted.

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use aws_lambda_events::encodings::Body;
use base64::Engine;
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{json, Map, Value};
use shared::domain::{Connection, Job, JobKind, Role, Service, Topic};
use shared::dynamo::{DynamoConnections, DynamoJobs};
use shared::jobs::{submit, Submitted};
use shared::queue::{JobQueue, SqsJobQueue};
use shared::store::{ConnectionStore, JobStore, PageTokenCodec};

/// API Gateway's WebSocket message limit.
pub const MAX_BODY_BYTES: usize = 128 * 1024;
/// Topics in one subscribe / unsubscribe.
pub const MAX_TOPICS: usize = 25;
/// Any one string field (a `resource:<id>` topic is at most 9 + 512).
pub const MAX_FIELD_CHARS: usize = 600;
/// `requestId` and `jobId`.
pub const MAX_ID_CHARS: usize = 128;

pub const ACTIONS: [&str; 6] = [
    "subscribe",
    "unsubscribe",
    "runCycle",
    "analyzeCosts",
    "getJob",
    "ping",
];

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub connections_table: String,
    pub jobs_table: String,
    pub jobs_queue_url: String,
}

#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(String);

impl Config {
    pub fn from_env() -> Result<Config, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let need = |k: &str| {
            get(k)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| ConfigError(format!("{k} is not set")))
        };
        Ok(Config {
            connections_table: need("CONNECTIONS_TABLE")?,
            jobs_table: need("JOBS_TABLE")?,
            jobs_queue_url: need("JOBS_QUEUE_URL")?,
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

    pub fn from_env(aws: &aws_config::SdkConfig) -> Result<Deps, ConfigError> {
        Ok(Self::new(&Config::from_env()?, aws))
    }
}

/// An `error` frame's code and message.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameError {
    pub code: &'static str,
    pub message: String,
}

impl FrameError {
    fn new(code: &'static str, message: impl Into<String>) -> Self {
        FrameError {
            code,
            message: message.into(),
        }
    }

    fn bad(message: impl Into<String>) -> Self {
        Self::new("bad_request", message)
    }
}

/// The one mapping of core errors to frames. Internals never reach the
/// client: they are logged, and the frame names the API Gateway request id.
fn from_core(e: shared::Error, reference: &str) -> FrameError {
    use shared::Error as E;
    match e {
        E::Validation(m) => FrameError::bad(m),
        e @ E::NotFound { .. } => FrameError::new("not_found", e.to_string()),
        E::Conflict(m) => FrameError::new("conflict", m),
        E::Unavailable(m) => {
            tracing::warn!(error = %m, "dependency unavailable");
            FrameError::new(
                "unavailable",
                "a backing service is unavailable; try again shortly",
            )
        }
        other => {
            tracing::error!(error = %other, reference, "internal error");
            FrameError::new(
                "internal",
                format!("internal error (reference {reference})"),
            )
        }
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

/// What one message parsed to before any I/O.
struct Request {
    request_id: Option<Value>,
    action: &'static str,
    args: Args,
}

async fn frame_for(
    deps: &Deps,
    event: &ApiGatewayWebsocketProxyRequest,
    now: DateTime<Utc>,
) -> Value {
    let reference = event
        .request_context
        .request_id
        .clone()
        .unwrap_or_else(|| "-".into());
    let (request_id, action, outcome) = match parse(event) {
        Err((request_id, e)) => (request_id, None, Err(e)),
        Ok(request) => {
            let outcome = run(deps, event, &request, now, &reference).await;
            (request.request_id, Some(request.action), outcome)
        }
    };
    let mut frame = match outcome {
        Ok(frame) => frame,
        Err(e) => {
            if e.code != "internal" {
                tracing::info!(code = e.code, message = %e.message, action = ?action, "request refused");
            }
            json!({ "type": "error", "code": e.code, "message": e.message })
        }
    };
    if let Some(obj) = frame.as_object_mut() {
        if let Some(action) = action {
            obj.insert("action".into(), json!(action));
        }
        if let Some(id) = request_id {
            obj.insert("requestId".into(), id);
        }
    }
    frame
}

type ParseError = (Option<Value>, FrameError);

fn parse(event: &ApiGatewayWebsocketProxyRequest) -> Result<Request, ParseError> {
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
        Some(Value::String(a)) => match ACTIONS.iter().find(|k| **k == a) {
            Some(known) => *known,
            None => {
                let shown: String = a.chars().take(64).collect();
                return Err((
                    request_id,
                    FrameError::new(
                        "unknown_action",
                        format!(
                            "unknown action '{shown}'; expected one of {}",
                            ACTIONS.join(", ")
                        ),
                    ),
                ));
            }
        },
        Some(_) => return Err((request_id, FrameError::bad("`action` must be a string"))),
    };
    Ok(Request {
        request_id,
        action,
        args: Args { action, map },
    })
}

/// The fields of one action, taken one by one with messages that name them.
#[derive(Clone)]
struct Args {
    action: &'static str,
    map: Map<String, Value>,
}

impl Args {
    fn take(&mut self, name: &str) -> Option<Value> {
        self.map.remove(name).filter(|v| !v.is_null())
    }

    fn string(&mut self, name: &str, max: usize) -> Result<Option<String>, FrameError> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::String(s)) => {
                if s.chars().count() > max {
                    Err(FrameError::bad(format!(
                        "`{name}` is longer than {max} characters"
                    )))
                } else {
                    Ok(Some(s))
                }
            }
            Some(_) => Err(FrameError::bad(format!("`{name}` must be a string"))),
        }
    }

    fn required(&mut self, name: &str, max: usize) -> Result<String, FrameError> {
        self.string(name, max)?
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| FrameError::bad(format!("missing field `{name}` for {}", self.action)))
    }

    fn strings(&mut self, name: &str, max_items: usize) -> Result<Option<Vec<String>>, FrameError> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::Array(items)) => {
                if items.len() > max_items {
                    return Err(FrameError::bad(format!(
                        "`{name}` has {} entries; at most {max_items} are accepted",
                        items.len()
                    )));
                }
                items
                    .into_iter()
                    .map(|v| match v {
                        Value::String(s) if s.chars().count() <= MAX_FIELD_CHARS => Ok(s),
                        Value::String(_) => Err(FrameError::bad(format!(
                            "an entry of `{name}` is longer than {MAX_FIELD_CHARS} characters"
                        ))),
                        _ => Err(FrameError::bad(format!(
                            "`{name}` must be an array of strings"
                        ))),
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map(Some)
            }
            Some(_) => Err(FrameError::bad(format!(
                "`{name}` must be an array of strings"
            ))),
        }
    }

    fn boolean(&mut self, name: &str) -> Result<Option<bool>, FrameError> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(b)),
            Some(_) => Err(FrameError::bad(format!("`{name}` must be true or false"))),
        }
    }

    /// Refuses fields the action does not know, so a typo is not ignored.
    fn done(self) -> Result<(), FrameError> {
        match self.map.keys().next() {
            None => Ok(()),
            Some(k) => {
                let shown: String = k.chars().take(64).collect();
                Err(FrameError::bad(format!(
                    "unknown field `{shown}` for {}",
                    self.action
                )))
            }
        }
    }
}

async fn run(
    deps: &Deps,
    event: &ApiGatewayWebsocketProxyRequest,
    request: &Request,
    now: DateTime<Utc>,
    reference: &str,
) -> Result<Value, FrameError> {
    let mut args = request.args.clone();
    if request.action == "ping" {
        // A keep-alive: answered without touching any table.
        args.done()?;
        return Ok(json!({ "type": "pong" }));
    }
    let connection_id = event
        .request_context
        .connection_id
        .as_deref()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| FrameError::bad("the event carries no connectionId"))?;
    let core = |e| from_core(e, reference);
    if request.action == "subscribe" {
        // The store reads the connection and writes the subscriptions on the
        // condition that it still exists: no read of our own is needed.
        let topics = topics(&mut args)?;
        args.done()?;
        match deps
            .connections
            .subscribe(connection_id, &topics, now)
            .await
        {
            Ok(()) => {}
            Err(shared::Error::NotFound { .. }) => return Err(unregistered()),
            Err(e) => return Err(core(e)),
        }
        return current_topics(deps, connection_id, now).await.map_err(core);
    }
    let connection = deps
        .connections
        .get(connection_id, now)
        .await
        .map_err(core)?
        .ok_or_else(unregistered)?;
    match request.action {
        "unsubscribe" => {
            let topics = topics(&mut args)?;
            args.done()?;
            deps.connections
                .unsubscribe(connection_id, &topics)
                .await
                .map_err(core)?;
            current_topics(deps, connection_id, now).await.map_err(core)
        }
        "runCycle" => {
            require(&connection, Role::Operator, "runCycle")?;
            let services = services(&mut args)?;
            let dry_run = args.boolean("dryRun")?.unwrap_or(false);
            args.done()?;
            // Read by the cycle exactly like a scheduled job's params
            // (`trigger`, `services`), plus who asked and from where.
            let params = json!({
                "trigger": "manual",
                "requestedBy": connection.user_id,
                "source": "websocket",
                "connectionId": connection_id,
                "services": services,
                "dryRun": dry_run,
            });
            queue(
                deps,
                &connection,
                request,
                JobKind::OptimizationCycle,
                params,
                now,
            )
            .await
            .map_err(core)
        }
        "analyzeCosts" => {
            let params = cost_params(&mut args, now)?;
            args.done()?;
            queue(
                deps,
                &connection,
                request,
                JobKind::CostAnalysis,
                params,
                now,
            )
            .await
            .map_err(core)
        }
        "getJob" => {
            let job_id = args.required("jobId", MAX_ID_CHARS)?;
            args.done()?;
            let job = deps
                .jobs
                .get(&job_id, now)
                .await
                .map_err(core)?
                .ok_or_else(|| FrameError::new("not_found", format!("job '{job_id}' not found")))?;
            Ok(json!({ "type": "ack", "job": job }))
        }
        other => Err(FrameError::new(
            "unknown_action",
            format!("unknown action '{other}'"),
        )),
    }
}

fn unregistered() -> FrameError {
    FrameError::new(
        "unauthorized",
        "this connection is not registered or has expired; reconnect",
    )
}

async fn current_topics(
    deps: &Deps,
    connection_id: &str,
    now: DateTime<Utc>,
) -> shared::Result<Value> {
    let topics = deps.connections.topics_of(connection_id, now).await?;
    Ok(json!({ "type": "ack", "topics": topics }))
}

fn require(connection: &Connection, role: Role, action: &str) -> Result<(), FrameError> {
    if shared::domain::has_role(&connection.roles, role) {
        Ok(())
    } else {
        Err(FrameError::new(
            "forbidden",
            format!("{action} needs the {} role or higher", role.as_str()),
        ))
    }
}

fn topics(args: &mut Args) -> Result<Vec<Topic>, FrameError> {
    let raw = args
        .strings("topics", MAX_TOPICS)?
        .ok_or_else(|| FrameError::bad(format!("missing field `topics` for {}", args.action)))?;
    if raw.is_empty() {
        return Err(FrameError::bad("`topics` must name at least one topic"));
    }
    let mut topics = raw
        .iter()
        .map(|t| {
            t.parse::<Topic>()
                .map_err(|e| FrameError::bad(e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    topics.sort();
    topics.dedup();
    Ok(topics)
}

fn services(args: &mut Args) -> Result<Vec<Service>, FrameError> {
    let Some(raw) = args.strings("services", Service::ALL.len() * 2)? else {
        return Ok(Service::ALL.to_vec());
    };
    if raw.is_empty() {
        return Err(FrameError::bad(
            "`services` must name at least one service; omit it for all seven",
        ));
    }
    let mut services = raw
        .iter()
        .map(|s| {
            s.parse::<Service>()
                .map_err(|e| FrameError::bad(e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    services.sort();
    services.dedup();
    Ok(services)
}

const GROUP_BY_DIMENSIONS: [&str; 8] = [
    "SERVICE",
    "REGION",
    "LINKED_ACCOUNT",
    "USAGE_TYPE",
    "INSTANCE_TYPE",
    "OPERATION",
    "PURCHASE_TYPE",
    "AZ",
];

/// `{start, end, granularity, groupBy}` as Cost Explorer takes them: dates
/// `YYYY-MM-DD` with `end` exclusive, granularity `DAILY` (default),
/// `MONTHLY` or `HOURLY`, and an optional dimension or `tag:<key>` to group by.
fn cost_params(args: &mut Args, now: DateTime<Utc>) -> Result<Value, FrameError> {
    let date = |name: &str, v: &str| {
        NaiveDate::parse_from_str(v.trim(), "%Y-%m-%d").map_err(|_| {
            FrameError::bad(format!("`{name}` must be a date as YYYY-MM-DD, got '{v}'"))
        })
    };
    let start_raw = args.required("start", 32)?;
    let end_raw = args.required("end", 32)?;
    let start = date("start", &start_raw)?;
    let end = date("end", &end_raw)?;
    if end <= start {
        return Err(FrameError::bad(
            "`end` must be after `start` (end is exclusive)",
        ));
    }
    let tomorrow = now.date_naive() + chrono::Days::new(1);
    if start > tomorrow {
        return Err(FrameError::bad(
            "`start` is in the future; there are no costs yet",
        ));
    }
    let granularity = match args.string("granularity", 16)? {
        None => "DAILY".to_string(),
        Some(g) => match g.to_ascii_uppercase().as_str() {
            g @ ("DAILY" | "MONTHLY" | "HOURLY") => g.to_string(),
            _ => {
                return Err(FrameError::bad(
                    "`granularity` must be DAILY, MONTHLY or HOURLY",
                ))
            }
        },
    };
    let days = (end - start).num_days();
    let max_days = match granularity.as_str() {
        "HOURLY" => 14,
        "DAILY" => 366,
        _ => 38 * 31,
    };
    if days > max_days {
        return Err(FrameError::bad(format!(
            "a {} query may span at most {max_days} days; this one spans {days}",
            granularity.to_ascii_lowercase()
        )));
    }
    let mut params = json!({
        "start": start.format("%Y-%m-%d").to_string(),
        "end": end.format("%Y-%m-%d").to_string(),
        "granularity": granularity,
    });
    if let Some(g) = args.string("groupBy", 140)? {
        let g = g.trim();
        let canonical = if let Some(key) = g.strip_prefix("tag:").or_else(|| g.strip_prefix("TAG:"))
        {
            if key.is_empty() || key.chars().count() > 128 {
                return Err(FrameError::bad(
                    "`groupBy` tag:<key> needs a key of 1 to 128 characters",
                ));
            }
            format!("tag:{key}")
        } else {
            let upper = g.to_ascii_uppercase();
            if !GROUP_BY_DIMENSIONS.contains(&upper.as_str()) {
                return Err(FrameError::bad(format!(
                    "`groupBy` must be one of {} or tag:<key>",
                    GROUP_BY_DIMENSIONS.join(", ")
                )));
            }
            upper
        };
        params["groupBy"] = json!(canonical);
    }
    Ok(params)
}

/// Submits a job and acknowledges it at once. With a `requestId`, the job
/// id derives from (connection, action, requestId), so a client resending
/// the same request gets the same job rather than a second one.
async fn queue(
    deps: &Deps,
    connection: &Connection,
    request: &Request,
    kind: JobKind,
    params: Value,
    now: DateTime<Utc>,
) -> shared::Result<Value> {
    let id = match &request.request_id {
        Some(rid) => {
            let seed = format!("ws|{}|{}|{rid}", connection.connection_id, request.action);
            uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, seed.as_bytes()).to_string()
        }
        None => uuid::Uuid::new_v4().to_string(),
    };
    let job = Job::new(id, kind, &connection.user_id, params, now);
    let submitted = submit(deps.jobs.as_ref(), deps.queue.as_ref(), job, now).await?;
    let status = match &submitted {
        Submitted::Queued(_) => "queued",
        Submitted::Duplicate(_) => "duplicate",
    };
    tracing::info!(job_id = %submitted.job().id, kind = ?kind, user = %connection.user_id, status, "job submitted");
    Ok(json!({ "type": "ack", "jobId": submitted.job().id, "status": status }))
}
