use super::{queue, Action, Context, Parse};
use crate::error::FrameError;
use chrono::{DateTime, Utc};
use serde_json::Value;
use shared::costs::CostQuery;
use shared::domain::Job;

/// `analyzeCosts`: a cost question, validated by the parser REST and the
/// processor use, so an acknowledged job is one the processor can run.
#[derive(Debug, Clone, PartialEq)]
pub struct AnalyzeCosts {
    pub query: CostQuery,
}

impl AnalyzeCosts {
    pub fn parse(parse: &mut Parse, now: DateTime<Utc>) -> Result<Self, FrameError> {
        let start = parse.required("start", 32)?;
        let end = parse.required("end", 32)?;
        let granularity = parse.string("granularity", 16)?;
        let group_by = parse.string("groupBy", 140)?;
        let query = CostQuery::parse(
            Some(&start),
            Some(&end),
            granularity.as_deref(),
            group_by.as_deref(),
            now,
        )
        .map_err(|e| match e {
            shared::Error::Validation(m) => FrameError::bad(m),
            other => FrameError::bad(other.to_string()),
        })?;
        Ok(AnalyzeCosts { query })
    }

    pub async fn apply(self, ctx: &Context<'_>) -> Result<Value, FrameError> {
        let connection = ctx.connection().await?;
        let requester = connection.user_id.clone();
        queue(ctx, &connection, Action::AnalyzeCosts, |id| {
            Job::cost_analysis(id, requester, &self.query, ctx.now)
        })
        .await
    }
}
