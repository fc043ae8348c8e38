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

/// One manual cycle per this many seconds, whoever asks and through
/// whichever edge (REST trigger, WebSocket `runCycle`).
pub const MANUAL_CYCLE_WINDOW_SECONDS: i64 = 60;

/// The job a manual cycle asked for at `now` is: the same for every request
/// in one window, so a second request inside it finds the job instead of
/// queuing another (a flood of cycles would push the last good run out of
/// the recent runs that recommendations are read from).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManualCycle {
    pub job_id: String,
    /// Seconds until the next window opens.
    pub retry_after_seconds: i64,
}

pub fn manual_cycle(now: DateTime<Utc>) -> ManualCycle {
    let w = MANUAL_CYCLE_WINDOW_SECONDS;
    let window = now.timestamp().div_euclid(w);
    ManualCycle {
        job_id: uuid::Uuid::new_v5(
            &uuid::Uuid::NAMESPACE_URL,
            format!("manual|{window}").as_bytes(),
        )
        .to_string(),
        retry_after_seconds: w - now.timestamp().rem_euclid(w),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_manual_cycle_per_window() {
        let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        let a = manual_cycle(t("2026-11-23T10:00:00Z"));
        let b = manual_cycle(t("2026-11-23T10:00:59Z"));
        assert_eq!(a.job_id, b.job_id);
        assert_eq!((a.retry_after_seconds, b.retry_after_seconds), (60, 1));
        assert_ne!(a.job_id, manual_cycle(t("2026-11-23T10:01:00Z")).job_id);
    }

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
