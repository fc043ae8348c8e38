//! The `api` function: the REST API of SPEC section 5 behind API Gateway
//! (REST, proxy integration). [`handle`] is infallible: every failure is
//! already mapped to the SPEC error body `{"error":{"code","message","details"}}`.

mod app;
mod config;
mod handlers;
pub mod routes;

use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::{json, Value};
use shared::auth::{AuthError, Identity};

pub use app::App;
pub use config::{Config, ConfigError};
pub use routes::{match_route, Matched, Op, Route, ROUTES};

/// Largest request body accepted, in bytes (API Gateway's own limit is 10 MB).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Most samples in one `POST /metrics`.
pub const MAX_METRIC_BATCH: usize = 1000;
/// Most resources in one `POST /resources`.
pub const MAX_RESOURCE_BATCH: usize = 100;

/// An error at the HTTP edge, in the SPEC error shape.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    pub details: Option<Value>,
    pub headers: Vec<(&'static str, String)>,
}

impl ApiError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            details: None,
            headers: Vec::new(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(400, "bad_request", message)
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }
}

impl From<shared::Error> for ApiError {
    /// The one mapping of core errors to HTTP. 5xx bodies say nothing of
    /// internals; the cause goes to the log only.
    fn from(e: shared::Error) -> Self {
        use shared::Error as E;
        match e {
            E::NotFound { entity, id } => {
                ApiError::new(404, "not_found", format!("{entity} '{id}' not found"))
            }
            E::AlreadyExists { entity, id } => {
                ApiError::new(409, "conflict", format!("{entity} '{id}' already exists"))
            }
            E::Conflict(m) => ApiError::new(
                409,
                "conflict",
                "the resource changed concurrently; read it again and retry",
            )
            .with_details(json!({ "reason": m })),
            E::IllegalTransition(t) => ApiError::new(409, "illegal_transition", t.to_string())
                .with_details(json!({ "from": t.from, "event": t.event })),
            E::Validation(m) => ApiError::new(400, "bad_request", m),
            E::Unavailable(m) => {
                tracing::warn!(error = %m, "dependency unavailable");
                let mut e = ApiError::new(
                    503,
                    "unavailable",
                    "a service this API depends on is unavailable; retry later",
                );
                e.headers.push(("retry-after", "5".into()));
                e
            }
            E::Internal(m) => {
                tracing::error!(error = %m, "internal error");
                ApiError::new(500, "internal", "internal error")
            }
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::KeysUnavailable(m) => {
                tracing::warn!(error = %m, "JWKS unavailable");
                ApiError::new(
                    503,
                    "unavailable",
                    "token keys are unavailable; retry later",
                )
            }
            other => {
                let mut e = ApiError::new(401, "unauthorized", other.to_string());
                e.headers.push(("www-authenticate", "Bearer".into()));
                e
            }
        }
    }
}

pub(crate) fn json_response(status: u16, body: &Value) -> Response<Body> {
    respond(status, body.to_string(), &[])
}

fn respond(status: u16, body: String, headers: &[(&'static str, String)]) -> Response<Body> {
    let mut builder = Response::builder()
        .status(status)
        .header("content-type", "application/json");
    for (k, v) in headers {
        builder = builder.header(*k, v.as_str());
    }
    builder.body(Body::from(body)).unwrap_or_else(|_| {
        let mut r = Response::new(Body::from(
            r#"{"error":{"code":"internal","message":"internal error","details":{}}}"#,
        ));
        *r.status_mut() = lambda_http::http::StatusCode::INTERNAL_SERVER_ERROR;
        r
    })
}

pub(crate) fn error_response(e: &ApiError) -> Response<Body> {
    let body = json!({
        "error": {
            "code": e.code,
            "message": e.message,
            "details": e.details.clone().unwrap_or_else(|| json!({})),
        }
    });
    respond(e.status, body.to_string(), &e.headers)
}

/// Who is calling: the authorizer's claims when API Gateway ran one,
/// otherwise the Bearer token, checked here.
async fn identify(app: &App, req: &Request) -> Result<Identity, ApiError> {
    if let Some(lambda_http::request::RequestContext::ApiGatewayV1(ctx)) = req.request_context_ref()
    {
        if let Some(claims) = ctx.authorizer.fields.get("claims") {
            return Identity::from_authorizer_claims(claims).ok_or_else(|| {
                ApiError::new(401, "unauthorized", "the authorizer's claims name no user")
            });
        }
    }
    let header = req
        .headers()
        .get("authorization")
        .map(|v| {
            v.to_str().map_err(|_| {
                ApiError::new(401, "unauthorized", "the Authorization header is not text")
            })
        })
        .transpose()?;
    let token = match header {
        None => None,
        Some(h) => match h.split_once(' ') {
            Some((scheme, t)) if scheme.eq_ignore_ascii_case("bearer") && !t.trim().is_empty() => {
                Some(t.trim())
            }
            _ => {
                return Err(ApiError::new(
                    401,
                    "unauthorized",
                    "the Authorization header must be 'Bearer <token>'",
                ))
            }
        },
    };
    Ok(app.verifier.verify(token, app.now()).await?)
}

/// Handles one request; never fails (errors are responses).
pub async fn handle(app: &App, req: Request) -> Response<Body> {
    let method = req.method().as_str().to_string();
    let path = req.raw_http_path().to_string();
    let started = std::time::Instant::now();
    let response = match dispatch(app, &method, &path, req).await {
        Ok(r) => r,
        Err(e) => error_response(&e),
    };
    tracing::info!(%method, %path, status = response.status().as_u16(), ms = started.elapsed().as_millis() as u64, "request");
    response
}

async fn dispatch(
    app: &App,
    method: &str,
    path: &str,
    req: Request,
) -> Result<Response<Body>, ApiError> {
    let (route, params) = match match_route(method, path) {
        Matched::Route(r, p) => (r, p),
        Matched::MethodNotAllowed(allowed) => {
            let mut e = ApiError::new(
                405,
                "method_not_allowed",
                format!(
                    "{method} is not allowed here; allowed: {}",
                    allowed.join(", ")
                ),
            );
            e.headers.push(("allow", allowed.join(", ")));
            return Err(e);
        }
        Matched::NotFound => {
            return Err(ApiError::new(
                404,
                "not_found",
                format!("no route for {path}"),
            ))
        }
    };
    let identity = match route.role {
        None => None,
        Some(role) => {
            let who = identify(app, &req).await?;
            if !who.has(role) {
                return Err(ApiError::new(
                    403,
                    "forbidden",
                    format!("this needs the {} role", role.as_str()),
                )
                .with_details(json!({ "required": role.as_str(), "roles": who.roles })));
            }
            Some(who)
        }
    };
    let mut params = params.into_iter();
    let mut param = || -> Result<String, ApiError> {
        let raw = params.next().unwrap_or_default();
        let decoded = percent_decode(&raw)
            .ok_or_else(|| ApiError::bad_request("a path parameter is not valid UTF-8"))?;
        if decoded.is_empty() || decoded.len() > 512 {
            return Err(ApiError::bad_request(
                "a path parameter must be 1 to 512 characters",
            ));
        }
        Ok(decoded)
    };
    let ctx = handlers::Ctx {
        app,
        req: &req,
        actor: identity
            .as_ref()
            .map_or("anonymous".into(), |i| i.user_id.clone()),
        now: app.now(),
    };
    use Op::*;
    match route.op {
        Health => handlers::health(&ctx).await,
        ListApprovals => handlers::list_approvals(&ctx).await,
        GetApproval => handlers::get_approval(&ctx, &param()?).await,
        Approve => handlers::decide(&ctx, &param()?, handlers::Decision::Approve).await,
        Reject => handlers::decide(&ctx, &param()?, handlers::Decision::Reject).await,
        Execute => handlers::decide(&ctx, &param()?, handlers::Decision::Execute).await,
        Recommendations => handlers::recommendations(&ctx).await,
        ListResources => handlers::list_resources(&ctx).await,
        GetResource => handlers::get_resource(&ctx, &param()?).await,
        UpsertResources => handlers::upsert_resources(&ctx).await,
        QueryMetrics => handlers::query_metrics(&ctx).await,
        ResourceMetrics => handlers::resource_metrics(&ctx, &param()?).await,
        IngestMetrics => handlers::ingest_metrics(&ctx).await,
        AuditTrail => handlers::audit_trail(&ctx).await,
        AuditReport => handlers::audit_report(&ctx).await,
        GetThresholds => handlers::get_thresholds(&ctx).await,
        PutThresholds => handlers::put_thresholds(&ctx).await,
        ThresholdHistory => handlers::threshold_history(&ctx).await,
        SchedulerStatus => handlers::scheduler_status(&ctx).await,
        SchedulerTrigger => handlers::scheduler_trigger(&ctx).await,
        WebsocketStatus => handlers::websocket_status(&ctx).await,
        Costs => handlers::costs(&ctx).await,
        CostForecast => handlers::cost_forecast(&ctx).await,
        GetJob => handlers::get_job(&ctx, &param()?).await,
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}
