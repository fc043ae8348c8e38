//! The client actions of the WebSocket API as types. A message is parsed
//! once, before any I/O, into a [`Command`]: an unknown action or field, a
//! value of the wrong type or out of range, is an `error` frame and changes
//! nothing. Each command then runs against the function's adapters.

mod analyze_costs;
mod get_job;
mod parse;
mod run_cycle;
mod subscribe;

pub use analyze_costs::AnalyzeCosts;
pub use get_job::GetJob;
pub use parse::{Parse, MAX_FIELD_CHARS};
pub use run_cycle::RunCycle;
pub use subscribe::{Subscribe, Unsubscribe, MAX_TOPICS};

use crate::error::FrameError;
use crate::Deps;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use shared::domain::Connection;

/// `requestId` and `jobId`.
pub const MAX_ID_CHARS: usize = 128;

/// The actions of the API, as route selection names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Subscribe,
    Unsubscribe,
    RunCycle,
    AnalyzeCosts,
    GetJob,
    Ping,
}

impl Action {
    pub const ALL: [Action; 6] = [
        Action::Subscribe,
        Action::Unsubscribe,
        Action::RunCycle,
        Action::AnalyzeCosts,
        Action::GetJob,
        Action::Ping,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Subscribe => "subscribe",
            Action::Unsubscribe => "unsubscribe",
            Action::RunCycle => "runCycle",
            Action::AnalyzeCosts => "analyzeCosts",
            Action::GetJob => "getJob",
            Action::Ping => "ping",
        }
    }

    pub fn parse(s: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// One parsed message.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Subscribe(Subscribe),
    Unsubscribe(Unsubscribe),
    RunCycle(RunCycle),
    AnalyzeCosts(AnalyzeCosts),
    GetJob(GetJob),
    Ping,
}

/// What every command runs with.
pub struct Context<'a> {
    pub deps: &'a Deps,
    pub connection_id: Option<&'a str>,
    pub request_id: Option<&'a Value>,
    pub now: DateTime<Utc>,
    /// API Gateway's request id, named in `internal` frames.
    pub reference: &'a str,
}

impl Context<'_> {
    pub fn core(&self, e: shared::Error) -> FrameError {
        crate::error::from_core(e, self.reference)
    }

    pub fn connection_id(&self) -> Result<&str, FrameError> {
        self.connection_id
            .filter(|c| !c.is_empty())
            .ok_or_else(|| FrameError::bad("the event carries no connectionId"))
    }

    /// The connection record `ws-connect` stored: roles come from it, never
    /// from the message.
    pub async fn connection(&self) -> Result<Connection, FrameError> {
        let id = self.connection_id()?;
        self.deps
            .connections
            .get(id, self.now)
            .await
            .map_err(|e| self.core(e))?
            .ok_or_else(FrameError::unregistered)
    }
}

impl Command {
    pub fn action(&self) -> Action {
        match self {
            Command::Subscribe(_) => Action::Subscribe,
            Command::Unsubscribe(_) => Action::Unsubscribe,
            Command::RunCycle(_) => Action::RunCycle,
            Command::AnalyzeCosts(_) => Action::AnalyzeCosts,
            Command::GetJob(_) => Action::GetJob,
            Command::Ping => Action::Ping,
        }
    }

    /// The command a message's fields (without `action` and `requestId`)
    /// describe. `now` bounds the dates of a cost question.
    pub fn from_frame(
        action: Action,
        mut parse: Parse,
        now: DateTime<Utc>,
    ) -> Result<Command, FrameError> {
        let command = match action {
            Action::Subscribe => Command::Subscribe(Subscribe::parse(&mut parse)?),
            Action::Unsubscribe => Command::Unsubscribe(Unsubscribe::parse(&mut parse)?),
            Action::RunCycle => Command::RunCycle(RunCycle::parse(&mut parse)?),
            Action::AnalyzeCosts => Command::AnalyzeCosts(AnalyzeCosts::parse(&mut parse, now)?),
            Action::GetJob => Command::GetJob(GetJob::parse(&mut parse)?),
            Action::Ping => Command::Ping,
        };
        parse.finish()?;
        Ok(command)
    }

    pub async fn apply(self, ctx: &Context<'_>) -> Result<Value, FrameError> {
        match self {
            // A keep-alive: answered without touching any table.
            Command::Ping => Ok(json!({ "type": "pong" })),
            Command::Subscribe(c) => c.apply(ctx).await,
            Command::Unsubscribe(c) => c.apply(ctx).await,
            Command::RunCycle(c) => c.apply(ctx).await,
            Command::AnalyzeCosts(c) => c.apply(ctx).await,
            Command::GetJob(c) => c.apply(ctx).await,
        }
    }
}

/// Submits a job and acknowledges it at once. With a `requestId`, the job
/// id derives from (connection, action, requestId), so a client resending
/// the same request gets the same job rather than a second one.
pub async fn queue(
    ctx: &Context<'_>,
    connection: &Connection,
    action: Action,
    job: impl FnOnce(String) -> shared::domain::Job,
) -> Result<Value, FrameError> {
    use shared::jobs::{submit, Submitted};
    let id = match ctx.request_id {
        Some(rid) => {
            let seed = format!("ws|{}|{}|{rid}", connection.connection_id, action.as_str());
            uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, seed.as_bytes()).to_string()
        }
        None => uuid::Uuid::new_v4().to_string(),
    };
    let job = job(id);
    let kind = job.kind;
    let submitted = submit(
        ctx.deps.jobs.as_ref(),
        ctx.deps.queue.as_ref(),
        job,
        ctx.now,
    )
    .await
    .map_err(|e| ctx.core(e))?;
    let status = match &submitted {
        Submitted::Queued(_) => "queued",
        Submitted::Duplicate(_) => "duplicate",
    };
    tracing::info!(job_id = %submitted.job().id, kind = ?kind, user = %connection.user_id, status, "job submitted");
    Ok(json!({ "type": "ack", "jobId": submitted.job().id, "status": status }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use shared::costs::CostQuery;

    fn now() -> DateTime<Utc> {
        "2026-11-23T12:05:00Z".parse().unwrap()
    }

    fn fields(v: Value) -> Parse {
        match v {
            Value::Object(map) => Parse::new("analyzeCosts", map),
            _ => unreachable!("tests pass objects"),
        }
    }

    fn text() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            "20[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])".prop_map(Value::from),
            "[-+]?[0-9]{1,6}-[0-9]{2}-[0-9]{2}".prop_map(Value::from),
            "(?i)(daily|monthly|hourly|service|account|region|linked_account|usage_type|az|none|tag:[a-z]{0,4}|colour)"
                .prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
        ]
    }

    proptest! {
        /// Every cost question this edge acknowledges is one the processor
        /// accepts: the job's params parse back to the same question, then
        /// or later.
        #[test]
        fn every_acknowledged_cost_question_is_accepted_by_the_processor(
            start in text(), end in text(), granularity in text(), group_by in text(), later in 0i64..60
        ) {
            let body = json!({ "start": start, "end": end, "granularity": granularity, "groupBy": group_by });
            if let Ok(Command::AnalyzeCosts(c)) = Command::from_frame(Action::AnalyzeCosts, fields(body), now()) {
                let job = shared::domain::Job::cost_analysis("j", "u", &c.query, now());
                let back = CostQuery::from_params(&job.params, now() + chrono::Duration::days(later));
                prop_assert_eq!(back.ok(), Some(c.query));
            }
        }
    }

    #[test]
    fn actions_round_trip_by_name() {
        for a in Action::ALL {
            assert_eq!(Action::parse(a.as_str()), Some(a));
        }
        assert_eq!(Action::parse("Ping"), None);
    }
}
