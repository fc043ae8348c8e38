//! The jobs queue: the port ([`JobQueue`]), the batching every adapter
//! shares (SendMessageBatch's 10 entries and 256 KiB a call, refusals not
//! of the sender's making retried once), and the SQS adapter in [`sqs`].

mod sqs;

pub use sqs::SqsJobQueue;

use crate::domain::JobMessage;
use crate::{Error, Result};
use async_trait::async_trait;
use std::collections::VecDeque;
use std::future::Future;

/// SendMessageBatch takes at most 10 entries per call.
pub const MAX_BATCH_ENTRIES: usize = 10;
/// ... and at most 256 KiB of message bodies per call, all entries together.
pub const MAX_BATCH_BYTES: usize = 262_144;

#[async_trait]
pub trait JobQueue: Send + Sync {
    async fn send(&self, message: &JobMessage) -> Result<()>;

    /// Sends every message, in as few calls as the queue allows.
    async fn send_batch(&self, messages: &[JobMessage]) -> Result<()> {
        for m in messages {
            self.send(m).await?;
        }
        Ok(())
    }
}

/// One entry SQS refused, by its position in the slice given to `send_batch`.
#[derive(Debug, Clone, PartialEq)]
pub struct FailedEntry {
    pub index: usize,
    pub job_id: String,
    pub code: String,
    pub message: String,
    /// SQS's verdict: the request itself is wrong, sending it again cannot help.
    pub sender_fault: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum SendBatchError {
    /// A whole call failed (the SDK has already retried transient failures).
    #[error(transparent)]
    Call(#[from] Error),
    #[error(
        "message {index} of the batch is {bytes} bytes, over the {MAX_BATCH_BYTES}-byte limit"
    )]
    TooLarge { index: usize, bytes: usize },
    /// Entries refused for the sender's fault, or refused again on their one retry.
    #[error("SendMessageBatch refused {} of the messages: {}", .0.len(), describe(.0))]
    Refused(Vec<FailedEntry>),
}

fn describe(failed: &[FailedEntry]) -> String {
    failed
        .iter()
        .map(|f| format!("#{} (job {}): {} {}", f.index, f.job_id, f.code, f.message))
        .collect::<Vec<_>>()
        .join("; ")
}

impl From<SendBatchError> for Error {
    fn from(e: SendBatchError) -> Self {
        match e {
            SendBatchError::Call(e) => e,
            e @ SendBatchError::TooLarge { .. } => Error::Internal(e.to_string()),
            SendBatchError::Refused(ref failed) if failed.iter().all(|f| !f.sender_fault) => {
                // The queue's side failed twice: a later delivery of the job may succeed.
                Error::Unavailable(e.to_string())
            }
            e @ SendBatchError::Refused(_) => Error::Internal(e.to_string()),
        }
    }
}

/// An entry SQS reported in a response's `Failed` list.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub id: String,
    pub code: String,
    pub message: String,
    pub sender_fault: bool,
}

/// The next call's entries, taken from the front of `pending`: at most
/// [`MAX_BATCH_ENTRIES`] and [`MAX_BATCH_BYTES`] of bodies, in order.
pub(crate) fn next_batch(pending: &mut VecDeque<usize>, bodies: &[String]) -> Vec<usize> {
    let mut batch = Vec::new();
    let mut bytes = 0;
    while let Some(&i) = pending.front() {
        if batch.len() == MAX_BATCH_ENTRIES || bytes + bodies[i].len() > MAX_BATCH_BYTES {
            break;
        }
        bytes += bodies[i].len();
        batch.push(i);
        pending.pop_front();
    }
    batch
}

/// Sends `bodies` through `call` (one SendMessageBatch with `(id, body)`
/// entries, answering the refused ones). Entry ids are the bodies' positions,
/// unique within a call. A refused entry that was not the sender's fault goes
/// into a following call once; what is refused after that, or for the
/// sender's fault, is returned with its position.
pub(crate) async fn send_in_batches<F, Fut>(
    messages: &[JobMessage],
    bodies: &[String],
    mut call: F,
) -> std::result::Result<(), SendBatchError>
where
    F: FnMut(Vec<(String, String)>) -> Fut,
    Fut: Future<Output = Result<Vec<Refusal>>>,
{
    if let Some((index, b)) = bodies
        .iter()
        .enumerate()
        .find(|(_, b)| b.len() > MAX_BATCH_BYTES)
    {
        return Err(SendBatchError::TooLarge {
            index,
            bytes: b.len(),
        });
    }
    let mut pending: VecDeque<usize> = (0..bodies.len()).collect();
    let mut retried = vec![false; bodies.len()];
    let mut refused = Vec::new();
    while !pending.is_empty() {
        let batch = next_batch(&mut pending, bodies);
        let entries = batch
            .iter()
            .map(|&i| (format!("m{i}"), bodies[i].clone()))
            .collect();
        for r in call(entries).await? {
            let Some(index) =
                r.id.strip_prefix('m')
                    .and_then(|n| n.parse::<usize>().ok())
                    .filter(|i| batch.contains(i))
            else {
                return Err(Error::Internal(format!(
                    "SendMessageBatch: refused an entry it was not sent ({})",
                    r.id
                ))
                .into());
            };
            if !r.sender_fault && !retried[index] {
                retried[index] = true;
                pending.push_back(index);
            } else {
                refused.push(FailedEntry {
                    index,
                    job_id: messages[index].job_id.clone(),
                    code: r.code,
                    message: r.message,
                    sender_fault: r.sender_fault,
                });
            }
        }
    }
    if refused.is_empty() {
        Ok(())
    } else {
        refused.sort_by_key(|f| f.index);
        Err(SendBatchError::Refused(refused))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::JobKind;
    use std::cell::RefCell;

    fn msg(i: usize) -> JobMessage {
        JobMessage {
            job_id: format!("job-{i}"),
            kind: JobKind::OptimizationCycle,
            shard: None,
        }
    }

    fn ids(entries: &[(String, String)]) -> Vec<String> {
        entries.iter().map(|(id, _)| id.clone()).collect()
    }

    #[test]
    fn batches_stop_at_ten_entries_and_at_256_kib() {
        let small: Vec<String> = (0..23).map(|_| "x".repeat(100)).collect();
        let mut pending: VecDeque<usize> = (0..23).collect();
        let sizes: Vec<usize> = std::iter::from_fn(|| {
            let b = next_batch(&mut pending, &small);
            (!b.is_empty()).then_some(b.len())
        })
        .collect();
        assert_eq!(sizes, vec![10, 10, 3]);

        // 100 KiB each: two fit under 256 KiB, a third does not.
        let big: Vec<String> = (0..5).map(|_| "y".repeat(100 * 1024)).collect();
        let mut pending: VecDeque<usize> = (0..5).collect();
        assert_eq!(next_batch(&mut pending, &big), vec![0, 1]);
        assert_eq!(next_batch(&mut pending, &big), vec![2, 3]);
        assert_eq!(next_batch(&mut pending, &big), vec![4]);
        // Exactly the limit fits.
        let exact = vec!["z".repeat(MAX_BATCH_BYTES - 1), "z".to_string()];
        let mut pending: VecDeque<usize> = (0..2).collect();
        assert_eq!(next_batch(&mut pending, &exact), vec![0, 1]);
    }

    #[tokio::test]
    async fn a_transient_refusal_is_retried_once_in_a_following_call() {
        let messages: Vec<JobMessage> = (0..12).map(msg).collect();
        let bodies: Vec<String> = messages.iter().map(|m| m.job_id.clone()).collect();
        let calls = RefCell::new(Vec::new());
        let result = send_in_batches(&messages, &bodies, |entries| {
            calls.borrow_mut().push(ids(&entries));
            let first = calls.borrow().len() == 1;
            async move {
                Ok(if first {
                    vec![Refusal {
                        id: "m3".into(),
                        code: "InternalError".into(),
                        message: "try again".into(),
                        sender_fault: false,
                    }]
                } else {
                    vec![]
                })
            }
        })
        .await;
        assert!(result.is_ok(), "{result:?}");
        let calls = calls.into_inner();
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[1], vec!["m10", "m11", "m3"]);
    }

    #[tokio::test]
    async fn refused_twice_or_for_the_sender_fault_is_a_typed_error() {
        let messages: Vec<JobMessage> = (0..4).map(msg).collect();
        let bodies: Vec<String> = messages.iter().map(|m| m.job_id.clone()).collect();
        let calls = RefCell::new(0);
        let result = send_in_batches(&messages, &bodies, |entries| {
            *calls.borrow_mut() += 1;
            let refusals = entries
                .iter()
                .filter_map(|(id, _)| match id.as_str() {
                    "m1" => Some(Refusal {
                        id: id.clone(),
                        code: "InternalError".into(),
                        message: "down".into(),
                        sender_fault: false,
                    }),
                    "m2" => Some(Refusal {
                        id: id.clone(),
                        code: "InvalidMessageContents".into(),
                        message: "bad".into(),
                        sender_fault: true,
                    }),
                    _ => None,
                })
                .collect();
            async move { Ok(refusals) }
        })
        .await;
        // m1 is retried once, m2 never.
        assert_eq!(calls.into_inner(), 2);
        let Err(SendBatchError::Refused(failed)) = result else {
            panic!("expected refused entries, got {result:?}");
        };
        let summary: Vec<(usize, &str, bool)> = failed
            .iter()
            .map(|f| (f.index, f.job_id.as_str(), f.sender_fault))
            .collect();
        assert_eq!(summary, vec![(1, "job-1", false), (2, "job-2", true)]);
        // A sender fault is not worth redelivering the job for.
        let core: Error = SendBatchError::Refused(failed).into();
        assert!(!core.is_retryable());
    }

    #[tokio::test]
    async fn only_transient_refusals_map_to_a_retryable_error() {
        let failed = vec![FailedEntry {
            index: 0,
            job_id: "j".into(),
            code: "InternalError".into(),
            message: String::new(),
            sender_fault: false,
        }];
        assert!(Error::from(SendBatchError::Refused(failed)).is_retryable());
    }

    #[tokio::test]
    async fn an_oversized_message_is_refused_before_any_call() {
        let messages = vec![msg(0)];
        let bodies = vec!["x".repeat(MAX_BATCH_BYTES + 1)];
        let mut calls = 0;
        let result = send_in_batches(&messages, &bodies, |_| {
            calls += 1;
            async { Ok(vec![]) }
        })
        .await;
        assert!(matches!(
            result,
            Err(SendBatchError::TooLarge { index: 0, .. })
        ));
        assert_eq!(calls, 0);
    }
}
