//! The core's one error type. Edges (HTTP, WebSocket, SQS) map it exactly once.

use crate::domain::IllegalTransition;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::client::waiters::error::WaiterError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{entity} '{id}' not found")]
    NotFound { entity: &'static str, id: String },
    #[error("{entity} '{id}' already exists")]
    AlreadyExists { entity: &'static str, id: String },
    /// A lost optimistic-lock or conditional-write race.
    #[error("conflict: {0}")]
    Conflict(String),
    #[error(transparent)]
    IllegalTransition(#[from] IllegalTransition),
    #[error("invalid input: {0}")]
    Validation(String),
    /// A dependency (AWS) failed in a way worth retrying.
    #[error("{0}")]
    Unavailable(String),
    /// The caller spent an allowance (a quota of paid AWS calls); the same
    /// request may succeed after `retry_after_seconds`.
    #[error("{message}")]
    RateLimited {
        message: String,
        retry_after_seconds: u64,
    },
    #[error("{0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn not_found(entity: &'static str, id: impl Into<String>) -> Self {
        Error::NotFound {
            entity,
            id: id.into(),
        }
    }

    /// Whether trying the same work again later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Unavailable(_) | Error::Conflict(_))
    }

    /// Classifies an AWS SDK error. Transport failures, throttling and 5xx
    /// answers are retryable (the SDK has already retried them with backoff);
    /// anything else is a defect or a configuration error.
    pub fn from_sdk<E, R>(operation: &str, err: SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug,
    {
        match &err {
            SdkError::TimeoutError(_)
            | SdkError::DispatchFailure(_)
            | SdkError::ResponseError(_) => {
                Error::Unavailable(format!("{operation}: {}", describe(&err)))
            }
            SdkError::ServiceError(service) => {
                let code = service.err().code().unwrap_or("Unknown");
                let transient = matches!(
                    code,
                    "ThrottlingException"
                        | "Throttling"
                        | "ProvisionedThroughputExceededException"
                        | "RequestLimitExceeded"
                        | "InternalServerError"
                        | "InternalFailure"
                        | "ServiceUnavailable"
                        | "TransactionInProgressException"
                        | "LimitExceededException"
                );
                let msg = format!(
                    "{operation}: {code}: {}",
                    service.err().message().unwrap_or("")
                );
                if transient {
                    Error::Unavailable(msg)
                } else {
                    Error::Internal(msg)
                }
            }
            _ => Error::Internal(format!("{operation}: {}", describe(&err))),
        }
    }
}

impl Error {
    /// Classifies an SDK waiter's failure. Running out of time is
    /// retryable (AWS is still working: the step is taken up again later,
    /// under the same key); a state the resource will not leave (an
    /// instance terminated while waiting for it to run) is not; a failed
    /// poll is classified as the call it made.
    pub fn from_waiter<O, E>(waiting_for: &str, err: WaiterError<O, E>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        match err {
            WaiterError::ExceededMaxWait(w) => Error::Unavailable(format!(
                "waiting for {waiting_for}: not done after {}s ({} polls)",
                w.elapsed().as_secs(),
                w.poll_count()
            )),
            WaiterError::FailureState(f) => {
                let why = match f.final_poll().as_result() {
                    Ok(_) => String::new(),
                    Err(e) => format!(
                        " ({}: {})",
                        e.code().unwrap_or("Unknown"),
                        e.message().unwrap_or("")
                    ),
                };
                Error::Internal(format!(
                    "waiting for {waiting_for}: the resource reached a state it will not leave{why}"
                ))
            }
            WaiterError::OperationFailed(e) => Error::from_sdk(waiting_for, e.into_error()),
            other => Error::Internal(format!("waiting for {waiting_for}: {other}")),
        }
    }
}

fn describe(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::Internal(format!("serialisation: {e}"))
    }
}
