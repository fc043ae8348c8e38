use super::{Context, Parse, MAX_ID_CHARS};
use crate::error::FrameError;
use serde_json::{json, Value};

/// `getJob`: a job's current record.
#[derive(Debug, Clone, PartialEq)]
pub struct GetJob {
    pub job_id: String,
}

impl GetJob {
    pub fn parse(parse: &mut Parse) -> Result<Self, FrameError> {
        Ok(GetJob {
            job_id: parse.required("jobId", MAX_ID_CHARS)?,
        })
    }

    pub async fn apply(self, ctx: &Context<'_>) -> Result<Value, FrameError> {
        ctx.connection().await?;
        let job = ctx
            .deps
            .jobs
            .get(&self.job_id, ctx.now)
            .await
            .map_err(|e| ctx.core(e))?
            .ok_or_else(|| {
                FrameError::new("not_found", format!("job '{}' not found", self.job_id))
            })?;
        Ok(json!({ "type": "ack", "job": job }))
    }
}
