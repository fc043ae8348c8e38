//! The HTTP side of a WebSocket connect: the headers and query string of
//! the `$connect` event, and plain HTTP answers.

use super::*;

/// Headers as API Gateway passes them on `$connect`: the client's, plus the
/// `X-Forwarded-*` its load balancer adds.
pub(super) fn connect_headers(req: &Request<Body>, peer: SocketAddr) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in req.headers() {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_str().as_bytes()),
            HeaderValue::from_bytes(value.as_bytes()),
        ) {
            headers.append(n, v);
        }
    }
    for (name, value) in [
        ("x-forwarded-for", peer.ip().to_string()),
        ("x-forwarded-port", peer.port().to_string()),
        ("x-forwarded-proto", "http".to_string()),
    ] {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), v);
        }
    }
    headers
}

pub(super) fn query_of(req: &Request<Body>) -> (QueryMap, QueryMap) {
    let mut multi: HashMap<String, Vec<String>> = HashMap::new();
    if let Some(q) = req.uri().query() {
        for (k, v) in url::form_urlencoded::parse(q.as_bytes()) {
            multi
                .entry(k.into_owned())
                .or_default()
                .push(v.into_owned());
        }
    }
    // Single-value parameters carry the last value, as API Gateway's do.
    let single: HashMap<String, String> = multi
        .iter()
        .filter_map(|(k, v)| Some((k.clone(), v.last()?.clone())))
        .collect();
    (QueryMap::from(single), QueryMap::from(multi))
}

pub(super) fn status_of(code: i64) -> StatusCode {
    u16::try_from(code)
        .ok()
        .and_then(|c| StatusCode::from_u16(c).ok())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

pub(super) fn body_bytes(body: Option<LambdaBody>) -> Option<Bytes> {
    match body {
        Some(LambdaBody::Text(t)) if !t.is_empty() => Some(Bytes::from(t)),
        Some(LambdaBody::Binary(b)) if !b.is_empty() => Some(Bytes::from(b)),
        _ => None,
    }
}

pub(super) fn simple(status: StatusCode, body: &str) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap_or_default()
}
