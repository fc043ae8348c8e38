//! The local REST API Gateway: each HTTP request on the listener becomes
//! exactly the event API Gateway REST (v1) sends to a proxy integration
//! (stage `local`, resource `/api/{proxy+}`, path including `/api`), which
//! lambda_http's own conversion turns into a `lambda_http::Request`; the
//! function's response goes back as the HTTP response.

use aws_lambda_events::apigw::ApiGatewayProxyRequest;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{json, Map, Value};
use std::future::Future;
use std::sync::Arc;
use tower::ServiceExt;

/// API Gateway refuses payloads above 10 MB.
pub const MAX_PAYLOAD_BYTES: usize = 10 * 1024 * 1024;

/// The host API Gateway names locally (`requestContext.domainName`).
const DOMAIN: &str = "127.0.0.1";

/// Headers API Gateway sets itself and never takes from the client: the
/// function builds its request URL from them, so a client's value would be
/// trusted as the API's own address (and a malformed one made lambda_http's
/// URL parsing panic, which aborts the whole local stack).
fn set_by_gateway(name: &str) -> bool {
    name == "host" || name == "forwarded" || name.starts_with("x-forwarded-")
}

/// The REST proxy event for one HTTP request to the listener on `port`.
pub fn proxy_event(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    port: u16,
) -> Value {
    let path = uri.path().to_string();
    let mut single = Map::new();
    let mut multi: Map<String, Value> = Map::new();
    let own = [
        ("host", format!("{DOMAIN}:{port}")),
        ("x-forwarded-for", DOMAIN.to_string()),
        ("x-forwarded-port", port.to_string()),
        ("x-forwarded-proto", "http".to_string()),
    ];
    for (k, v) in own {
        single.insert(k.to_string(), json!(v));
        multi.insert(k.to_string(), json!([v]));
    }
    for (k, v) in headers {
        if set_by_gateway(k.as_str()) {
            continue;
        }
        let v = String::from_utf8_lossy(v.as_bytes()).to_string();
        single.insert(k.as_str().to_string(), json!(v));
        if let Some(a) = multi
            .entry(k.as_str().to_string())
            .or_insert_with(|| json!([]))
            .as_array_mut()
        {
            a.push(json!(v));
        }
    }
    let mut q_single = Map::new();
    let mut q_multi: Map<String, Value> = Map::new();
    if let Some(q) = uri.query() {
        for (k, v) in url::form_urlencoded::parse(q.as_bytes()) {
            q_single.insert(k.to_string(), json!(v));
            if let Some(a) = q_multi
                .entry(k.to_string())
                .or_insert_with(|| json!([]))
                .as_array_mut()
            {
                a.push(json!(v));
            }
        }
    }
    let (body, is_b64) = if body.is_empty() {
        (Value::Null, false)
    } else {
        match std::str::from_utf8(body) {
            Ok(text) => (json!(text), false),
            Err(_) => (
                json!(base64::engine::general_purpose::STANDARD.encode(body)),
                true,
            ),
        }
    };
    let proxy = path.strip_prefix("/api/").unwrap_or("").to_string();
    let nullable = |m: Map<String, Value>| {
        if m.is_empty() {
            Value::Null
        } else {
            Value::Object(m)
        }
    };
    let now = chrono::Utc::now();
    json!({
        "resource": "/api/{proxy+}",
        "path": path,
        "httpMethod": method.as_str(),
        "headers": single,
        "multiValueHeaders": multi,
        "queryStringParameters": nullable(q_single),
        "multiValueQueryStringParameters": nullable(q_multi),
        "pathParameters": if proxy.is_empty() { Value::Null } else { json!({ "proxy": proxy }) },
        "stageVariables": null,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": DOMAIN,
            "httpMethod": method.as_str(),
            "identity": { "sourceIp": "127.0.0.1", "userAgent": headers.get("user-agent").and_then(|v| v.to_str().ok()) },
            "path": format!("/local{path}"),
            "protocol": "HTTP/1.1",
            "requestId": uuid::Uuid::new_v4().to_string(),
            "requestTime": now.format("%d/%b/%Y:%H:%M:%S +0000").to_string(),
            "requestTimeEpoch": now.timestamp_millis(),
            "resourceId": "local",
            "resourcePath": "/api/{proxy+}",
            "stage": "local"
        },
        "body": body,
        "isBase64Encoded": is_b64
    })
}

fn gateway_error(status: StatusCode, message: &str) -> Response {
    (
        status,
        [("content-type", "application/json")],
        json!({ "message": message }).to_string(),
    )
        .into_response()
}

/// Serves `handler` behind the listener until the task is dropped.
pub async fn serve_rest<F, Fut>(
    listener: tokio::net::TcpListener,
    handler: F,
) -> std::io::Result<()>
where
    F: Fn(lambda_http::Request) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = lambda_http::Response<lambda_http::Body>> + Send + 'static,
{
    serve_rest_with_site(listener, handler, None).await
}

/// As [`serve_rest`], with `site` answering every path outside `/api` (the
/// dashboard, on the same origin as the API); without it those paths get
/// API Gateway's 403.
pub async fn serve_rest_with_site<F, Fut>(
    listener: tokio::net::TcpListener,
    handler: F,
    site: Option<axum::Router>,
) -> std::io::Result<()>
where
    F: Fn(lambda_http::Request) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = lambda_http::Response<lambda_http::Body>> + Send + 'static,
{
    let handler = Arc::new(handler);
    let port = listener.local_addr().map_or(0, |a| a.port());
    let app = axum::Router::new()
        .fallback(
            move |State(handler): State<Arc<F>>, request: axum::extract::Request| {
                let site = site.clone();
                async move {
                    if request.uri().path() != "/api" && !request.uri().path().starts_with("/api/")
                    {
                        return match site {
                            Some(site) => match site.oneshot(request).await {
                                Ok(response) => response,
                                Err(never) => match never {},
                            },
                            // What API Gateway answers for a resource it does not have.
                            None => {
                                gateway_error(StatusCode::FORBIDDEN, "Missing Authentication Token")
                            }
                        };
                    }
                    let (parts, body) = request.into_parts();
                    let Ok(body) = axum::body::to_bytes(body, MAX_PAYLOAD_BYTES + 1).await else {
                        return gateway_error(StatusCode::PAYLOAD_TOO_LARGE, "Request Too Long");
                    };
                    if body.len() > MAX_PAYLOAD_BYTES {
                        return gateway_error(StatusCode::PAYLOAD_TOO_LARGE, "Request Too Long");
                    }
                    let (method, uri, headers) = (parts.method, parts.uri, parts.headers);
                    let event = proxy_event(&method, &uri, &headers, &body, port);
                    // The event type is API Gateway's own; lambda_http converts it.
                    let request =
                        match serde_json::from_value::<ApiGatewayProxyRequest>(event.clone())
                            .ok()
                            .and_then(|_| lambda_http::request::from_str(&event.to_string()).ok())
                        {
                            Some(r) => r,
                            None => return gateway_error(StatusCode::BAD_REQUEST, "Bad Request"),
                        };
                    let response = handler(request).await;
                    let (parts, body) = response.into_parts();
                    let bytes: Vec<u8> = match body {
                        lambda_http::Body::Text(t) => t.into_bytes(),
                        lambda_http::Body::Binary(b) => b,
                        _ => Vec::new(),
                    };
                    let mut out = Response::new(axum::body::Body::from(bytes));
                    *out.status_mut() = parts.status;
                    *out.headers_mut() = parts.headers;
                    out
                }
            },
        )
        .layer(axum::extract::DefaultBodyLimit::max(MAX_PAYLOAD_BYTES + 1))
        .with_state(handler);
    axum::serve(listener, app).await
}
