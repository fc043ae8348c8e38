//! The `@connections` management API, as API Gateway answers it: POST
//! (deliver, 413 past 128 KB, 410 for a gone connection), GET (the
//! connection's facts) and DELETE (close it), with and without the stage
//! prefix in the path.

use super::*;

/// An error of the management API, shaped as the SDK parses it.
pub(super) fn api_error(status: StatusCode, kind: &str, message: &str) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .header("x-amzn-errortype", kind)
        .body(Body::from(
            serde_json::json!({ "message": message }).to_string(),
        ))
        .unwrap_or_default()
}

/// API Gateway answers an unsigned `@connections` call with 403; so does
/// this one. The signature itself cannot be checked against the emulator's
/// throwaway credentials, but a caller that does not sign at all (anyone on
/// loopback with curl) is refused, as in AWS.
pub(super) async fn require_signature(
    req: Request<Body>,
    next: axum::middleware::Next,
) -> Response<Body> {
    let signed = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.starts_with("AWS4-HMAC-SHA256 ")
                && v.contains("Credential=")
                && v.contains("Signature=")
        });
    if !signed {
        return api_error(
            StatusCode::FORBIDDEN,
            "ForbiddenException",
            "Missing Authentication Token",
        );
    }
    next.run(req).await
}

pub(super) fn gone() -> Response<Body> {
    api_error(StatusCode::GONE, "GoneException", "")
}

pub(super) async fn post_to(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response<Body> {
    if body.len() > MAX_MESSAGE_BYTES {
        return api_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PayloadTooLargeException",
            "Message too long",
        );
    }
    let Some(conn) = shared.connection(&id) else {
        return gone();
    };
    let (done, written) = oneshot::channel();
    if conn
        .outbound
        .send(Outbound::Data {
            payload: body,
            done: Some(done),
        })
        .await
        .is_err()
    {
        return gone();
    }
    match written.await {
        Ok(true) => Response::builder()
            .status(StatusCode::OK)
            .body(Body::empty())
            .unwrap_or_default(),
        _ => gone(),
    }
}

pub(super) async fn get_connection(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
) -> Response<Body> {
    let Some(conn) = shared.connection(&id) else {
        return gone();
    };
    let last = DateTime::from_timestamp_millis(conn.last_active.load(Ordering::Relaxed))
        .unwrap_or(conn.connected_at);
    let iso = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let mut identity = serde_json::json!({ "sourceIp": conn.source_ip });
    if let Some(ua) = &conn.user_agent {
        identity["userAgent"] = serde_json::Value::String(ua.clone());
    }
    let body = serde_json::json!({
        "connectedAt": iso(conn.connected_at),
        "lastActiveAt": iso(last),
        "identity": identity,
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap_or_default()
}

pub(super) async fn delete_connection(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
) -> Response<Body> {
    let Some(conn) = shared.lock_connections().remove(&id) else {
        return gone();
    };
    let _ = conn.outbound.send(Outbound::Close).await;
    Response::builder()
        .status(StatusCode::NO_CONTENT)
        .body(Body::empty())
        .unwrap_or_default()
}

// The same API under a stage prefix, as the AWS endpoint
// `https://{api}.execute-api.{region}.amazonaws.com/{stage}` has it.
pub(super) async fn post_to_staged(
    state: State<Arc<Shared>>,
    Path((_, id)): Path<(String, String)>,
    body: Bytes,
) -> Response<Body> {
    post_to(state, Path(id), body).await
}

pub(super) async fn get_connection_staged(
    state: State<Arc<Shared>>,
    Path((_, id)): Path<(String, String)>,
) -> Response<Body> {
    get_connection(state, Path(id)).await
}

pub(super) async fn delete_connection_staged(
    state: State<Arc<Shared>>,
    Path((_, id)): Path<(String, String)>,
) -> Response<Body> {
    delete_connection(state, Path(id)).await
}
