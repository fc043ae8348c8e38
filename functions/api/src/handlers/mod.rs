//! One module per resource area, one function per operation. A handler is
//! given its input already typed (path parameters, query struct, body) and
//! validates the rest fully before it writes anything, so bad input changes
//! nothing.

pub mod accounts;
pub mod approvals;
pub mod audit;
pub mod costs;
pub mod executions;
pub mod health;
pub mod jobs;
pub mod metrics;
pub mod policies;
pub mod recommendations;
pub mod resources;
pub mod scheduler;
pub mod thresholds;
pub mod websocket;

use crate::app::App;
use crate::error::ApiError;
use chrono::{DateTime, Utc};
use lambda_http::{Body, Response};
use serde_json::{json, Value};
use shared::domain::{number, AuditAction, AuditEntry};
use shared::store::Page;

pub type Res = Result<Response<Body>, ApiError>;

/// What every handler knows of the request beyond its own input.
pub struct Ctx<'a> {
    pub app: &'a App,
    /// The caller's user id; "anonymous" on routes without a role.
    pub actor: String,
    pub now: DateTime<Utc>,
    /// The Lambda request id, carried into audit entries.
    pub correlation_id: Option<String>,
}

/// A batch body's size rule: 413 past `max` items, 422 when empty.
pub fn batch_bounds(len: usize, max: usize, noun: &str) -> Result<(), ApiError> {
    if len > max {
        return Err(ApiError::new(
            413,
            "payload_too_large",
            format!("at most {max} {noun} per request, got {len}"),
        ));
    }
    if len == 0 {
        return Err(ApiError::new(
            422,
            "unprocessable",
            format!("{noun} is empty"),
        ));
    }
    Ok(())
}

impl Ctx<'_> {
    pub fn audit_entry(
        &self,
        entity_type: &str,
        entity_id: &str,
        action: AuditAction,
        pre: Option<Value>,
        post: Option<Value>,
    ) -> AuditEntry {
        AuditEntry {
            id: uuid::Uuid::new_v4().to_string(),
            entity_type: entity_type.into(),
            entity_id: entity_id.into(),
            action: action.name(),
            actor: self.actor.clone(),
            at: self.now,
            outcome: Some("succeeded".into()),
            reason: None,
            pre_state: pre,
            post_state: post,
            correlation_id: self.correlation_id.clone(),
        }
    }
}

fn page_json<T: serde::Serialize>(page: Page<T>) -> Value {
    json!({ "items": page.items, "nextToken": page.next_token })
}

fn to_json<T: serde::Serialize>(v: T) -> Result<Value, ApiError> {
    Ok(serde_json::to_value(v).map_err(shared::Error::from)?)
}

/// What DynamoDB can store and give back: numbers within its range
/// (`shared::domain::number`; the upper bound kept far lower here, |x| <
/// 1e15, where integers are still exact in an `f64`), no empty map keys,
/// bounded nesting.
fn storable(v: &Value, depth: usize) -> Result<(), &'static str> {
    if depth > 16 {
        return Err("nested too deeply");
    }
    match v {
        Value::Number(n) => match n.as_f64().map(number::storable) {
            Some(Ok(f)) if f.abs() < 1e15 => Ok(()),
            Some(Err(number::NumberError::TooSmall)) => Err(
                "a number is too small: a non-zero magnitude must be at least 1e-130 (send 0 for zero)",
            ),
            _ => Err("a number is out of range (|x| < 1e15)"),
        },
        Value::Array(a) => a.iter().try_for_each(|x| storable(x, depth + 1)),
        Value::Object(m) => m.iter().try_for_each(|(k, x)| {
            if k.is_empty() {
                Err("an object has an empty key")
            } else {
                storable(x, depth + 1)
            }
        }),
        _ => Ok(()),
    }
}

/// One problem of one item of a batch, as the 422 body lists it.
fn problem(index: usize, field: &str, problem: impl Into<String>) -> Value {
    json!({ "index": index, "field": field, "problem": problem.into() })
}

fn unprocessable(what: &str, problems: Vec<Value>) -> ApiError {
    ApiError::new(
        422,
        "unprocessable",
        format!("{} {what} refused; nothing was written", problems.len()),
    )
    .with_details(json!({ "problems": problems }))
}

#[cfg(test)]
mod tests {
    use serde::de::DeserializeOwned;
    use serde_json::json;

    /// The extractor refuses unknown parameters itself; this keeps each
    /// struct saying so too, for any caller that deserializes it directly.
    fn refuses_unknown<T: DeserializeOwned>() -> bool {
        serde_json::from_value::<T>(json!({ "surelyNotAParameter": "1" })).is_err()
    }

    #[test]
    fn every_query_struct_denies_unknown_fields() {
        assert!(refuses_unknown::<crate::extract::NoQuery>());
        assert!(refuses_unknown::<super::approvals::ListQuery>());
        assert!(refuses_unknown::<super::recommendations::ListQuery>());
        assert!(refuses_unknown::<super::resources::ListQuery>());
        assert!(refuses_unknown::<super::metrics::SummaryQuery>());
        assert!(refuses_unknown::<super::metrics::SeriesQuery>());
        assert!(refuses_unknown::<super::audit::TrailQuery>());
        assert!(refuses_unknown::<super::audit::ReportQuery>());
        assert!(refuses_unknown::<super::thresholds::HistoryQuery>());
        assert!(refuses_unknown::<super::costs::CostsQuery>());
        assert!(refuses_unknown::<super::costs::ForecastQuery>());
    }
}
