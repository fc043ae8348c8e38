//! The `api` function: the REST API of SPEC section 5 behind API Gateway
//! (REST, proxy integration). [`handle`] is infallible: every failure is
//! already mapped to the SPEC error body `{"error":{"code","message","details"}}`.
//!
//! A request goes through one wiring, `dispatch`: match a route of
//! [`ROUTES`], check the caller's role, extract the typed input (path
//! parameters, query struct, JSON body), run the handler of the route's
//! area in `handlers`. [`handle`] logs the outcome once.

mod app;
mod config;
mod error;
mod extract;
mod handlers;
pub mod routes;

use extract::{body, query, PathParams};
use handlers::{approvals::Decision, *};
use lambda_http::{Body, Request, RequestExt, Response};

pub use app::App;
pub use config::{Config, ConfigError, Env, Secret};
pub use error::ApiError;
pub use extract::MAX_BODY_BYTES;
pub use handlers::metrics::MAX_METRIC_BATCH;
pub use handlers::resources::MAX_RESOURCE_BATCH;
pub use routes::{match_route, Matched, Op, Route, ROUTES};

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

/// Route, role, typed input, handler. Arguments are evaluated left to right,
/// so a request is checked in that order: path parameters, query, body.
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
            let allowed = allowed.join(", ");
            return Err(ApiError::new(
                405,
                "method_not_allowed",
                format!("{method} is not allowed here; allowed: {allowed}"),
            )
            .with_header("allow", allowed));
        }
        Matched::NotFound => {
            return Err(ApiError::new(
                404,
                "not_found",
                format!("no route for {path}"),
            ))
        }
    };
    let identity = extract::authorize(app, &req, route.role).await?;
    let mut p = PathParams::new(params);
    let ctx = Ctx {
        app,
        actor: identity.map_or("anonymous".into(), |i| i.user_id),
        now: app.now(),
        correlation_id: req
            .lambda_context_ref()
            .map(|c| c.request_id.clone())
            .filter(|id| !id.is_empty()),
    };
    let r = &req;
    use Op::*;
    match route.op {
        Health => health::get(&ctx, query(r)?).await,
        ListApprovals => approvals::list(&ctx, query(r)?).await,
        GetApproval => approvals::get(&ctx, &p.next()?, query(r)?).await,
        Approve => {
            approvals::decide(&ctx, &p.next()?, Decision::Approve, query(r)?, body(r)?).await
        }
        Reject => approvals::decide(&ctx, &p.next()?, Decision::Reject, query(r)?, body(r)?).await,
        Execute => {
            approvals::decide(&ctx, &p.next()?, Decision::Execute, query(r)?, body(r)?).await
        }
        Preview => {
            let (_, _): (extract::NoQuery, executions::NoBody) = (query(r)?, body(r)?);
            executions::preview(&ctx, &p.next()?).await
        }
        Rollback => {
            let (_, b): (extract::NoQuery, executions::RollbackBody) = (query(r)?, body(r)?);
            executions::rollback(&ctx, &p.next()?, b.reason).await
        }
        Recommendations => recommendations::list(&ctx, query(r)?).await,
        Savings => executions::savings(&ctx, query(r)?).await,
        ListResources => resources::list(&ctx, query(r)?).await,
        Accounts => accounts::list(&ctx, query(r)?).await,
        GetResource => resources::get(&ctx, &p.next()?, query(r)?).await,
        UpsertResources => resources::upsert(&ctx, query(r)?, body(r)?).await,
        QueryMetrics => metrics::summary(&ctx, query(r)?).await,
        ResourceMetrics => metrics::series(&ctx, &p.next()?, query(r)?).await,
        IngestMetrics => metrics::ingest(&ctx, query(r)?, body(r)?).await,
        AuditTrail => audit::trail(&ctx, query(r)?).await,
        AuditReport => audit::report(&ctx, query(r)?).await,
        GetThresholds => thresholds::get(&ctx, query(r)?).await,
        PutThresholds => thresholds::put(&ctx, query(r)?, body(r)?).await,
        ThresholdHistory => thresholds::history(&ctx, query(r)?).await,
        SchedulerStatus => scheduler::status(&ctx, query(r)?).await,
        SchedulerTrigger => scheduler::trigger(&ctx, query(r)?, body(r)?).await,
        WebsocketStatus => websocket::status(&ctx, query(r)?).await,
        Costs => costs::report(&ctx, query(r)?).await,
        CostForecast => costs::forecast(&ctx, query(r)?).await,
        GetJob => jobs::get(&ctx, &p.next()?, query(r)?).await,
        ListPolicies => policies::list(&ctx, query(r)?).await,
        PutPolicy => policies::put(&ctx, query(r)?, body(r)?).await,
    }
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
        let ok = logged(&Ok(error::json_response(200, &serde_json::json!({}))));
        assert_eq!(ok.len(), 1);
        assert!(
            ok[0].1.contains("status=200") && !ok[0].1.contains("code="),
            "{:?}",
            ok
        );
    }
}
