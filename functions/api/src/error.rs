//! Errors at the HTTP edge and the SPEC error body
//! `{"error":{"code","message","details"}}`. Nothing here logs: `handle`
//! logs each request once, with the error's code and, for a 5xx, its cause.

use lambda_http::{Body, Response};
use serde_json::{json, Value};
use shared::auth::AuthError;

/// An error at the HTTP edge, in the SPEC error shape.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    pub details: Option<Value>,
    pub headers: Vec<(&'static str, String)>,
    /// What went wrong inside, for the log only: a 5xx body never says.
    /// Boxed to keep the error small: it travels in every `Result`.
    pub internal: Option<Box<str>>,
}

impl ApiError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            details: None,
            headers: Vec::new(),
            internal: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(400, "bad_request", message)
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub fn with_internal(mut self, cause: impl Into<String>) -> Self {
        self.internal = Some(cause.into().into_boxed_str());
        self
    }

    /// The response a client sees.
    pub fn to_response(&self) -> Response<Body> {
        let body = json!({
            "error": {
                "code": self.code,
                "message": self.message,
                "details": self.details.clone().unwrap_or_else(|| json!({})),
            }
        });
        respond(self.status, body.to_string(), &self.headers)
    }
}

impl From<shared::Error> for ApiError {
    /// The one mapping of core errors to HTTP.
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
            E::Validation(m) => ApiError::bad_request(m),
            E::Unavailable(m) => ApiError::new(
                503,
                "unavailable",
                "a service this API depends on is unavailable; retry later",
            )
            .with_header("retry-after", "5")
            .with_internal(format!("dependency unavailable: {m}")),
            E::RateLimited {
                message,
                retry_after_seconds,
            } => ApiError::new(429, "rate_limited", message)
                .with_details(json!({ "retryAfterSeconds": retry_after_seconds }))
                .with_header("retry-after", retry_after_seconds.to_string()),
            E::Internal(m) => ApiError::new(500, "internal", "internal error").with_internal(m),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::KeysUnavailable(m) => ApiError::new(
                503,
                "unavailable",
                "token keys are unavailable; retry later",
            )
            .with_internal(format!("JWKS unavailable: {m}")),
            other => ApiError::new(401, "unauthorized", other.to_string())
                .with_header("www-authenticate", "Bearer"),
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
    // Only a header value that is not valid HTTP can fail the builder.
    builder.body(Body::from(body)).unwrap_or_else(|_| {
        let mut r = Response::new(Body::from(
            r#"{"error":{"code":"internal","message":"internal error","details":{}}}"#,
        ));
        *r.status_mut() = lambda_http::http::StatusCode::INTERNAL_SERVER_ERROR;
        r
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body_of(r: &Response<Body>) -> Value {
        match r.body() {
            Body::Text(t) => serde_json::from_str(t).unwrap(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn server_errors_keep_their_cause_out_of_the_body() {
        for e in [
            shared::Error::Internal("table finops-jobs: secret-ish detail".into()),
            shared::Error::Unavailable("dynamodb timed out at 10.0.0.7".into()),
        ] {
            let api: ApiError = e.into();
            assert!(api.status >= 500);
            let body = body_of(&api.to_response()).to_string();
            assert!(
                !body.contains("secret-ish") && !body.contains("10.0.0.7"),
                "{body}"
            );
            assert!(api.internal.is_some(), "the cause is kept for the log");
        }
        let api: ApiError = AuthError::KeysUnavailable("jwks at 10.0.0.8".into()).into();
        assert_eq!(api.status, 503);
        assert!(!body_of(&api.to_response()).to_string().contains("10.0.0.8"));
    }

    #[test]
    fn the_body_is_the_spec_shape() {
        let r = shared::Error::not_found("job", "j-1");
        let api: ApiError = r.into();
        let resp = api.to_response();
        assert_eq!(resp.status().as_u16(), 404);
        assert_eq!(
            body_of(&resp),
            json!({"error": {"code": "not_found", "message": "job 'j-1' not found", "details": {}}})
        );
        let resp = ApiError::new(503, "unavailable", "x")
            .with_header("retry-after", "5")
            .to_response();
        assert_eq!(resp.headers()["retry-after"], "5");
    }
}
