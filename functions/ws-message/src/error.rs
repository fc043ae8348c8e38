//! The one mapping of failures to `error` frames.

/// An `error` frame's code and message.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameError {
    pub code: &'static str,
    pub message: String,
    /// Further fields of the frame, e.g. `retryAfterSeconds`.
    pub fields: serde_json::Map<String, serde_json::Value>,
}

impl FrameError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        FrameError {
            code,
            message: message.into(),
            fields: serde_json::Map::new(),
        }
    }

    pub fn with(mut self, name: &str, value: impl Into<serde_json::Value>) -> Self {
        self.fields.insert(name.into(), value.into());
        self
    }

    pub fn bad(message: impl Into<String>) -> Self {
        Self::new("bad_request", message)
    }

    pub fn unregistered() -> FrameError {
        FrameError::new(
            "unauthorized",
            "this connection is not registered or has expired; reconnect",
        )
    }
}

/// Core errors as frames. Internals never reach the client: they are
/// logged, and the frame names the API Gateway request id.
pub fn from_core(e: shared::Error, reference: &str) -> FrameError {
    use shared::Error as E;
    match e {
        E::Validation(m) => FrameError::bad(m),
        e @ E::NotFound { .. } => FrameError::new("not_found", e.to_string()),
        E::Conflict(m) => FrameError::new("conflict", m),
        E::RateLimited { message, .. } => FrameError::new("rate_limited", message),
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
