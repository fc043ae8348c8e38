//! Submitting jobs: the job record first, then its queue message, exactly once
//! per job even when the trigger is delivered more than once.

use crate::domain::{Job, JobMessage};
use crate::queue::JobQueue;
use crate::store::JobStore;
use crate::Result;
use chrono::{DateTime, Utc};

#[derive(Debug, Clone, PartialEq)]
pub enum Submitted {
    /// The job was created and queued now.
    Queued(Job),
    /// The job existed already and had been queued: nothing was done.
    Duplicate(Job),
}

impl Submitted {
    pub fn job(&self) -> &Job {
        match self {
            Submitted::Queued(j) | Submitted::Duplicate(j) => j,
        }
    }
}

/// Creates `job` (unless it exists) and sends its message (unless sent).
///
/// The order makes every crash point safe to replay: a job without
/// `enqueued` is sent again; the processor's conditional claim absorbs the
/// rare second message that a crash between send and mark can cause.
pub async fn submit(
    jobs: &dyn JobStore,
    queue: &dyn JobQueue,
    job: Job,
    now: DateTime<Utc>,
) -> Result<Submitted> {
    let created = jobs.create(&job).await?;
    let current = if created {
        job
    } else {
        jobs.get(&job.id, now).await?.ok_or_else(|| {
            crate::Error::Conflict(format!("job {} exists but has expired", job.id))
        })?
    };
    if current.enqueued {
        return Ok(Submitted::Duplicate(current));
    }
    queue
        .send(&JobMessage {
            job_id: current.id.clone(),
            kind: current.kind,
            shard: None,
        })
        .await?;
    jobs.mark_enqueued(&current.id).await?;
    let queued = Job {
        enqueued: true,
        ..current
    };
    Ok(if created {
        Submitted::Queued(queued)
    } else {
        Submitted::Duplicate(queued)
    })
}

/// The id of the job a scheduled trigger asks for: the same rule firing for
/// the same time always names the same job.
pub fn scheduled_job_id(rule: &str, time: DateTime<Utc>) -> String {
    let seed = format!("schedule|{rule}|{}", time.timestamp());
    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, seed.as_bytes()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheduled_ids_are_stable_and_distinct() {
        let t = DateTime::parse_from_rfc3339("2026-11-23T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(scheduled_job_id("r", t), scheduled_job_id("r", t));
        assert_ne!(scheduled_job_id("r", t), scheduled_job_id("r2", t));
        assert_ne!(
            scheduled_job_id("r", t),
            scheduled_job_id("r", t + chrono::Duration::hours(1))
        );
    }
}
