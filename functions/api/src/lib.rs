//! The `api` function: the REST API of SPEC section 5 behind API Gateway
//! (REST, proxy integration). [`handle`] is infallible: every failure is
//! already mapped to the SPEC error body `{"error":{"code","message","details"}}`.

mod app;
mod config;
mod error;
mod handlers;
pub mod routes;

use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::json;
use shared::auth::Identity;

pub use app::App;
pub use config::{Config, ConfigError};
pub(crate) use error::json_response;
pub use error::ApiError;
pub use routes::{match_route, Matched, Op, Route, ROUTES};

/// Largest request body accepted, in bytes (API Gateway's own limit is 10 MB).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Most samples in one `POST /metrics`.
pub const MAX_METRIC_BATCH: usize = 1000;
/// Most resources in one `POST /resources`.
pub const MAX_RESOURCE_BATCH: usize = 100;

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

/// Handles one request; never fails (errors are responses). The one place a
/// request is logged: errors travel here as values, with the cause of a 5xx
/// kept out of the body and put in the log.
pub async fn handle(app: &App, req: Request) -> Response<Body> {
    let method = req.method().as_str().to_string();
    let path = req.raw_http_path().to_string();
    let started = std::time::Instant::now();
    let matched = match_route(&method, &path);
    let route = match &matched {
        Matched::Route(r, _) => r.path,
        _ => "-",
    };
    let result = dispatch(app, &method, &path, matched, req).await;
    log_request(&method, route, &path, &result, started.elapsed());
    result.unwrap_or_else(|e| e.to_response())
}

/// One event per request. An error's code is always there; its internal
/// cause only for a 5xx, which is the one kind the client is told nothing of.
fn log_request(
    method: &str,
    route: &str,
    path: &str,
    result: &Result<Response<Body>, ApiError>,
    elapsed: std::time::Duration,
) {
    let ms = elapsed.as_millis() as u64;
    let e = match result {
        Ok(response) => {
            let status = response.status().as_u16();
            tracing::info!(method, route, path, status, ms, "request");
            return;
        }
        Err(e) => e,
    };
    let (status, code) = (e.status, e.code);
    let error = e.internal.as_deref().unwrap_or("");
    match status {
        // A dependency down is expected now and then; a bug is not.
        503 => tracing::warn!(method, route, path, status, code, error, ms, "request"),
        500.. => tracing::error!(method, route, path, status, code, error, ms, "request"),
        _ => tracing::info!(method, route, path, status, code, ms, "request"),
    }
}

async fn dispatch(
    app: &App,
    method: &str,
    path: &str,
    matched: Matched,
    req: Request,
) -> Result<Response<Body>, ApiError> {
    let (route, params) = match matched {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tracing::field::{Field, Visit};

    /// Records each event's level and fields as text.
    #[derive(Clone, Default)]
    struct Events(Arc<Mutex<Vec<(tracing::Level, String)>>>);

    struct Fields(String);
    impl Visit for Fields {
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            self.0.push_str(&format!("{}={:?} ", field.name(), value));
        }
    }

    impl tracing::Subscriber for Events {
        fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
            tracing::span::Id::from_u64(1)
        }
        fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
        fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
        fn event(&self, event: &tracing::Event<'_>) {
            let mut f = Fields(String::new());
            event.record(&mut f);
            self.0
                .lock()
                .unwrap()
                .push((*event.metadata().level(), f.0));
        }
        fn enter(&self, _: &tracing::span::Id) {}
        fn exit(&self, _: &tracing::span::Id) {}
    }

    fn logged(result: &Result<Response<Body>, ApiError>) -> Vec<(tracing::Level, String)> {
        let events = Events::default();
        tracing::subscriber::with_default(events.clone(), || {
            log_request(
                "GET",
                "/jobs/{id}",
                "/api/jobs/j-1",
                result,
                std::time::Duration::from_millis(3),
            )
        });
        let out = events.0.lock().unwrap().clone();
        out
    }

    #[test]
    fn a_server_error_is_logged_once_with_its_cause() {
        let e: ApiError =
            shared::Error::Internal("decode job j-1: missing field kind".into()).into();
        let events = logged(&Err(e.clone()));
        assert_eq!(events.len(), 1, "{events:?}");
        let (level, fields) = &events[0];
        assert_eq!(*level, tracing::Level::ERROR);
        for f in [
            "method=\"GET\"",
            "route=\"/jobs/{id}\"",
            "status=500",
            "code=\"internal\"",
            "error=\"decode job j-1: missing field kind\"",
        ] {
            assert!(fields.contains(f), "{f} in {fields}");
        }
        let body = match e.to_response().into_body() {
            Body::Text(t) => t,
            other => panic!("{other:?}"),
        };
        assert!(!body.contains("missing field"), "{body}");
    }

    #[test]
    fn a_client_error_is_logged_with_its_code_and_no_cause() {
        let events = logged(&Err(ApiError::bad_request("limit must be ...")));
        assert_eq!(events.len(), 1);
        let (level, fields) = &events[0];
        assert_eq!(*level, tracing::Level::INFO);
        assert!(
            fields.contains("code=\"bad_request\"") && !fields.contains("error="),
            "{fields}"
        );
        let ok = logged(&Ok(error::json_response(200, &json!({}))));
        assert_eq!(ok.len(), 1);
        assert!(
            ok[0].1.contains("status=200") && !ok[0].1.contains("code="),
            "{:?}",
            ok
        );
    }
}
