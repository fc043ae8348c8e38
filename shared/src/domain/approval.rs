//! The approval workflow of SPEC section 7 as pure code: no I/O, no clock.

use super::Recommendation;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalStatus {
    Pending,
    Approved,
    Rejected,
    Expired,
    Cancelled,
    /// Approved, waiting for its execution window to open.
    Scheduled,
    Executing,
    Executed,
    Failed,
    RollingBack,
    RolledBack,
    RollbackFailed,
}

impl ApprovalStatus {
    pub const ALL: [ApprovalStatus; 12] = [
        ApprovalStatus::Pending,
        ApprovalStatus::Approved,
        ApprovalStatus::Rejected,
        ApprovalStatus::Expired,
        ApprovalStatus::Cancelled,
        ApprovalStatus::Scheduled,
        ApprovalStatus::Executing,
        ApprovalStatus::Executed,
        ApprovalStatus::Failed,
        ApprovalStatus::RollingBack,
        ApprovalStatus::RolledBack,
        ApprovalStatus::RollbackFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalStatus::Pending => "pending",
            ApprovalStatus::Approved => "approved",
            ApprovalStatus::Rejected => "rejected",
            ApprovalStatus::Expired => "expired",
            ApprovalStatus::Cancelled => "cancelled",
            ApprovalStatus::Scheduled => "scheduled",
            ApprovalStatus::Executing => "executing",
            ApprovalStatus::Executed => "executed",
            ApprovalStatus::Failed => "failed",
            ApprovalStatus::RollingBack => "rolling_back",
            ApprovalStatus::RolledBack => "rolled_back",
            ApprovalStatus::RollbackFailed => "rollback_failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// Every status name, comma-separated, for messages that list them.
    pub fn names() -> String {
        Self::ALL.map(Self::as_str).join(", ")
    }

    /// Open requests block a new request for the same resource and action:
    /// from the request until the change is done (or refused).
    pub fn is_open(self) -> bool {
        matches!(
            self,
            ApprovalStatus::Pending
                | ApprovalStatus::Approved
                | ApprovalStatus::Scheduled
                | ApprovalStatus::Executing
        )
    }

    /// No event leads anywhere from here.
    pub fn is_terminal(self) -> bool {
        ApprovalEvent::ALL
            .into_iter()
            .all(|e| transition(self, e).is_err())
    }
}

impl fmt::Display for ApprovalStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalEvent {
    Approve,
    Reject,
    Expire,
    Cancel,
    /// Execution was asked for outside the request's window.
    Schedule,
    StartExecution,
    /// The post-state was verified (system), or a person recorded success.
    ExecuteSucceeded,
    /// A step or the verification failed (system), or a person recorded failure.
    ExecuteFailed,
    StartRollback,
    RollbackSucceeded,
    RollbackFailed,
}

impl ApprovalEvent {
    pub const ALL: [ApprovalEvent; 11] = [
        ApprovalEvent::Approve,
        ApprovalEvent::Reject,
        ApprovalEvent::Expire,
        ApprovalEvent::Cancel,
        ApprovalEvent::Schedule,
        ApprovalEvent::StartExecution,
        ApprovalEvent::ExecuteSucceeded,
        ApprovalEvent::ExecuteFailed,
        ApprovalEvent::StartRollback,
        ApprovalEvent::RollbackSucceeded,
        ApprovalEvent::RollbackFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalEvent::Approve => "approve",
            ApprovalEvent::Reject => "reject",
            ApprovalEvent::Expire => "expire",
            ApprovalEvent::Cancel => "cancel",
            ApprovalEvent::Schedule => "schedule",
            ApprovalEvent::StartExecution => "start_execution",
            ApprovalEvent::ExecuteSucceeded => "execute_succeeded",
            ApprovalEvent::ExecuteFailed => "execute_failed",
            ApprovalEvent::StartRollback => "start_rollback",
            ApprovalEvent::RollbackSucceeded => "rollback_succeeded",
            ApprovalEvent::RollbackFailed => "rollback_failed",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cannot {event} a request that is {from}", event = .event.as_str())]
pub struct IllegalTransition {
    pub from: ApprovalStatus,
    pub event: ApprovalEvent,
}

/// The whole state machine. Anything not listed is illegal. Rolling back a
/// `failed` request is listed here; [`ApprovalRequest::apply`] also requires
/// that a step had changed the resource.
pub fn transition(
    from: ApprovalStatus,
    event: ApprovalEvent,
) -> Result<ApprovalStatus, IllegalTransition> {
    use ApprovalEvent as E;
    use ApprovalStatus as S;
    match (from, event) {
        (S::Pending, E::Approve) => Ok(S::Approved),
        (S::Pending, E::Reject) => Ok(S::Rejected),
        (S::Pending, E::Expire) => Ok(S::Expired),
        (S::Pending | S::Scheduled, E::Cancel) => Ok(S::Cancelled),
        (S::Approved, E::Schedule) => Ok(S::Scheduled),
        (S::Approved | S::Scheduled, E::StartExecution) => Ok(S::Executing),
        // From approved: an outcome recorded by hand.
        (S::Approved | S::Executing, E::ExecuteSucceeded) => Ok(S::Executed),
        (S::Approved | S::Executing, E::ExecuteFailed) => Ok(S::Failed),
        (S::Executed | S::Failed, E::StartRollback) => Ok(S::RollingBack),
        (S::RollingBack, E::RollbackSucceeded) => Ok(S::RolledBack),
        (S::RollingBack, E::RollbackFailed) => Ok(S::RollbackFailed),
        _ => Err(IllegalTransition { from, event }),
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalRequest {
    pub id: String,
    /// Snapshot taken at creation; never changes afterwards.
    pub recommendation: Recommendation,
    pub status: ApprovalStatus,
    /// Optimistic-lock version, bumped by every transition.
    pub version: u64,
    pub requested_by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cycle_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// A pending request past this instant expires.
    pub expires_at: DateTime<Utc>,
    /// While `scheduled`: when its execution window opens next.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_for: Option<DateTime<Utc>>,
    /// Whether a step of the system's execution changed the resource: what
    /// makes a `failed` request one that can be rolled back.
    #[serde(default)]
    pub changed_resource: bool,
    /// The resource's type, size, state and memory when the recommendation
    /// was made: what the execution's drift check compares the live state
    /// with. Taken at creation, like the recommendation; never changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_snapshot: Option<super::execution::StateSnapshot>,
    /// The window of the auto-approval policy that approved it: its
    /// execution waits for this window as well as the global one. Set by
    /// that approval, with it, in the same conditional write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_window: Option<super::execution::Schedule>,
}

/// One recorded decision: who moved a request from one status to another, when and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Decision {
    pub request_id: String,
    pub event: ApprovalEvent,
    pub from: ApprovalStatus,
    pub to: ApprovalStatus,
    pub actor: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
    pub decided_at: DateTime<Utc>,
}

impl ApprovalRequest {
    pub fn new(
        recommendation: Recommendation,
        requested_by: impl Into<String>,
        cycle_id: Option<String>,
        now: DateTime<Utc>,
        ttl: chrono::Duration,
    ) -> Self {
        let seed = format!(
            "{}|{}",
            recommendation.id,
            cycle_id.as_deref().unwrap_or("manual")
        );
        ApprovalRequest {
            id: uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, seed.as_bytes()).to_string(),
            recommendation,
            status: ApprovalStatus::Pending,
            version: 1,
            requested_by: requested_by.into(),
            cycle_id,
            created_at: now,
            updated_at: now,
            expires_at: now + ttl,
            scheduled_for: None,
            changed_resource: false,
            resource_snapshot: None,
            execution_window: None,
        }
    }

    /// Records the state the recommendation was made on (discovery knows it).
    pub fn with_resource_snapshot(mut self, snapshot: super::execution::StateSnapshot) -> Self {
        self.resource_snapshot = Some(snapshot);
        self
    }

    /// Whether the request's time to be decided is over at `now`.
    pub fn is_past_expiry(&self, now: DateTime<Utc>) -> bool {
        self.expires_at <= now
    }

    /// Applies an event. Returns the next state of the request and the
    /// decision to record; the recommendation snapshot is carried over untouched.
    pub fn apply(
        &self,
        event: ApprovalEvent,
        actor: &str,
        reason: Option<String>,
        details: Option<serde_json::Value>,
        now: DateTime<Utc>,
    ) -> Result<(ApprovalRequest, Decision), IllegalTransition> {
        // Until the sweep runs, an expired request is still stored as
        // pending; deciding it then would act on a stale recommendation. It
        // is refused as the expired request it is; expiring or cancelling it
        // stays possible.
        if self.status == ApprovalStatus::Pending
            && matches!(event, ApprovalEvent::Approve | ApprovalEvent::Reject)
            && self.is_past_expiry(now)
        {
            return Err(IllegalTransition {
                from: ApprovalStatus::Expired,
                event,
            });
        }
        // Nothing to restore when no step had changed the resource.
        if self.status == ApprovalStatus::Failed
            && event == ApprovalEvent::StartRollback
            && !self.changed_resource
        {
            return Err(IllegalTransition {
                from: self.status,
                event,
            });
        }
        let to = transition(self.status, event)?;
        let next = ApprovalRequest {
            status: to,
            version: self.version + 1,
            updated_at: now,
            scheduled_for: None,
            ..self.clone()
        };
        let decision = Decision {
            request_id: self.id.clone(),
            event,
            from: self.status,
            to,
            actor: actor.to_string(),
            reason,
            details,
            decided_at: now,
        };
        Ok((next, decision))
    }

    /// `approved -> scheduled`, waiting for the window that opens at `opens_at`.
    pub fn schedule(
        &self,
        opens_at: DateTime<Utc>,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<(ApprovalRequest, Decision), IllegalTransition> {
        let details = serde_json::json!({ "scheduledFor": opens_at });
        let (mut next, decision) =
            self.apply(ApprovalEvent::Schedule, actor, None, Some(details), now)?;
        next.scheduled_for = Some(opens_at);
        Ok((next, decision))
    }

    /// The end of the system's execution: `executing -> executed | failed`,
    /// remembering whether a step had changed the resource.
    pub fn finish_execution(
        &self,
        succeeded: bool,
        changed_resource: bool,
        actor: &str,
        details: Option<serde_json::Value>,
        now: DateTime<Utc>,
    ) -> Result<(ApprovalRequest, Decision), IllegalTransition> {
        let event = if succeeded {
            ApprovalEvent::ExecuteSucceeded
        } else {
            ApprovalEvent::ExecuteFailed
        };
        if self.status != ApprovalStatus::Executing {
            return Err(IllegalTransition {
                from: self.status,
                event,
            });
        }
        let (mut next, decision) = self.apply(event, actor, None, details, now)?;
        next.changed_resource = changed_resource || succeeded;
        Ok((next, decision))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Action, FindingKind, Service};
    use proptest::prelude::*;

    fn recommendation() -> Recommendation {
        Recommendation {
            id: Recommendation::stable_id(
                &crate::domain::ResourceKey::new(None, "us-east-1", "i-1"),
                Action::Stop,
            ),
            resource_id: "i-1".into(),
            service: Service::Ec2,
            region: "us-east-1".into(),
            account_id: None,
            owner: None,
            tags: Default::default(),
            current_monthly_cost_usd: None,
            finding: FindingKind::Idle,
            action: Action::Stop,
            target_type: None,
            monthly_savings_usd: Some(12.5),
            savings_percent: None,
            confidence: 0.9,
            risk: 1,
            reason: "idle".into(),
            alternatives: vec![],
            dependencies: vec![],
            dependency_details: Vec::new(),
            utilization_score: Some(3),
            threshold_version: 0,
            created_at: DateTime::<Utc>::MIN_UTC,
        }
    }

    use ApprovalStatus as S;

    /// The transitions SPEC section 7 allows, written out independently of
    /// `transition`. `failed -> rolling_back` needs, besides, a step that
    /// changed the resource (`ROLLBACK_NEEDS_CHANGE`).
    const ALLOWED: [(ApprovalStatus, ApprovalStatus); 16] = [
        (S::Pending, S::Approved),
        (S::Pending, S::Rejected),
        (S::Pending, S::Expired),
        (S::Pending, S::Cancelled),
        (S::Approved, S::Scheduled),
        (S::Approved, S::Executing),
        // Recorded by hand.
        (S::Approved, S::Executed),
        (S::Approved, S::Failed),
        (S::Scheduled, S::Executing),
        (S::Scheduled, S::Cancelled),
        (S::Executing, S::Executed),
        (S::Executing, S::Failed),
        (S::Executed, S::RollingBack),
        (S::Failed, S::RollingBack),
        (S::RollingBack, S::RolledBack),
        (S::RollingBack, S::RollbackFailed),
    ];
    const ROLLBACK_NEEDS_CHANGE: (ApprovalStatus, ApprovalStatus) = (S::Failed, S::RollingBack);

    /// The status each event leads to when SPEC section 7 allows it, written
    /// out independently of `transition`.
    fn spec_target(e: ApprovalEvent) -> ApprovalStatus {
        match e {
            ApprovalEvent::Approve => S::Approved,
            ApprovalEvent::Reject => S::Rejected,
            ApprovalEvent::Expire => S::Expired,
            ApprovalEvent::Cancel => S::Cancelled,
            ApprovalEvent::Schedule => S::Scheduled,
            ApprovalEvent::StartExecution => S::Executing,
            ApprovalEvent::ExecuteSucceeded => S::Executed,
            ApprovalEvent::ExecuteFailed => S::Failed,
            ApprovalEvent::StartRollback => S::RollingBack,
            ApprovalEvent::RollbackSucceeded => S::RolledBack,
            ApprovalEvent::RollbackFailed => S::RollbackFailed,
        }
    }

    fn event() -> impl Strategy<Value = ApprovalEvent> {
        proptest::sample::select(ApprovalEvent::ALL.to_vec())
    }

    /// One move: a plain event, or the end of a system execution (succeeded,
    /// whether a step changed the resource).
    #[derive(Debug, Clone)]
    enum Move {
        Event(ApprovalEvent),
        Finish(bool, bool),
    }

    fn moves() -> impl Strategy<Value = Move> {
        prop_oneof![
            3 => event().prop_map(Move::Event),
            1 => (any::<bool>(), any::<bool>()).prop_map(|(ok, changed)| Move::Finish(ok, changed)),
        ]
    }

    proptest! {
        #[test]
        fn only_spec_transitions_are_reachable(steps in proptest::collection::vec(moves(), 0..30)) {
            let now = Utc::now();
            let mut req = ApprovalRequest::new(recommendation(), "cycle", None, now, chrono::Duration::days(7));
            let snapshot = req.recommendation.clone();
            for m in steps {
                let before = req.status;
                let (e, result) = match m {
                    Move::Event(e) => (e, req.apply(e, "alice", None, None, now)),
                    Move::Finish(ok, changed) => {
                        let e = if ok { ApprovalEvent::ExecuteSucceeded } else { ApprovalEvent::ExecuteFailed };
                        let r = req.finish_execution(ok, changed, "system", None, now);
                        // Only an execution the system runs can finish this way.
                        if before != S::Executing {
                            prop_assert!(r.is_err());
                            continue;
                        }
                        if let Ok((next, _)) = &r {
                            prop_assert_eq!(next.changed_resource, ok || changed);
                        }
                        (e, r)
                    }
                };
                let allowed = ALLOWED.contains(&(before, spec_target(e)))
                    && ((before, spec_target(e)) != ROLLBACK_NEEDS_CHANGE || req.changed_resource);
                match result {
                    Ok((next, decision)) => {
                        prop_assert!(allowed, "{before} -> {}", next.status);
                        prop_assert_eq!(next.status, spec_target(e));
                        prop_assert_eq!(decision.from, before);
                        prop_assert_eq!(decision.to, next.status);
                        prop_assert_eq!(next.version, req.version + 1);
                        req = next;
                    }
                    Err(err) => {
                        prop_assert_eq!(err, IllegalTransition { from: before, event: e });
                        // Refused only where the spec has no such move.
                        prop_assert!(!allowed, "{before} refused {}", e.as_str());
                    }
                }
                // The snapshot taken at creation never changes.
                prop_assert_eq!(&req.recommendation, &snapshot);
            }
        }

        #[test]
        fn a_pending_request_is_decided_only_before_it_expires(
            offset_s in -3_600i64..3_600,
            e in event(),
        ) {
            let created = Utc::now();
            let ttl = chrono::Duration::hours(1);
            let req = ApprovalRequest::new(recommendation(), "cycle", None, created, ttl);
            let now = req.expires_at + chrono::Duration::seconds(offset_s);
            let decision = matches!(e, ApprovalEvent::Approve | ApprovalEvent::Reject);
            match req.apply(e, "alice", None, None, now) {
                Ok((next, _)) => {
                    prop_assert!(!decision || now < req.expires_at, "{} at {offset_s}s", e.as_str());
                    prop_assert_eq!(next.status, spec_target(e));
                }
                Err(err) if decision => {
                    prop_assert!(now >= req.expires_at, "{} at {offset_s}s", e.as_str());
                    // Refused as the expired request it is in effect.
                    prop_assert_eq!(err, IllegalTransition { from: S::Expired, event: e });
                }
                Err(err) => {
                    prop_assert_eq!(err, IllegalTransition { from: S::Pending, event: e });
                    prop_assert!(transition(S::Pending, e).is_err());
                }
            }
        }

        #[test]
        fn terminal_states_stay_terminal(from in proptest::sample::select(ApprovalStatus::ALL.to_vec()), e in event()) {
            let terminal = !ALLOWED.iter().any(|(f, _)| *f == from);
            prop_assert_eq!(from.is_terminal(), terminal);
            if terminal {
                prop_assert!(transition(from, e).is_err());
            }
        }
    }

    #[test]
    fn an_expired_pending_request_cannot_be_approved_but_can_be_swept() {
        let created = Utc::now();
        let req = ApprovalRequest::new(
            recommendation(),
            "cycle",
            None,
            created,
            chrono::Duration::hours(1),
        );
        let late = req.expires_at;
        let err = req
            .apply(ApprovalEvent::Approve, "alice", None, None, late)
            .unwrap_err();
        assert_eq!(err.to_string(), "cannot approve a request that is expired");
        assert!(req
            .apply(ApprovalEvent::Expire, "cycle", None, None, late)
            .is_ok());
        assert!(req
            .apply(
                ApprovalEvent::Approve,
                "alice",
                None,
                None,
                late - chrono::Duration::seconds(1)
            )
            .is_ok());
    }

    #[test]
    fn every_allowed_transition_has_an_event() {
        for (from, to) in ALLOWED {
            assert!(ApprovalEvent::ALL
                .iter()
                .any(|e| transition(from, *e) == Ok(to)));
        }
    }

    #[test]
    fn a_scheduled_request_remembers_its_window_until_it_leaves() {
        let now = Utc::now();
        let req = ApprovalRequest::new(
            recommendation(),
            "cycle",
            None,
            now,
            chrono::Duration::days(1),
        );
        let (approved, _) = req
            .apply(ApprovalEvent::Approve, "a", None, None, now)
            .unwrap();
        let opens = now + chrono::Duration::hours(3);
        let (scheduled, decision) = approved.schedule(opens, "system", now).unwrap();
        assert_eq!(scheduled.status, S::Scheduled);
        assert_eq!(scheduled.scheduled_for, Some(opens));
        assert_eq!(
            decision.details.unwrap()["scheduledFor"],
            serde_json::json!(opens)
        );
        let (running, _) = scheduled
            .apply(ApprovalEvent::StartExecution, "system", None, None, opens)
            .unwrap();
        assert_eq!(running.scheduled_for, None);
    }

    #[test]
    fn open_requests_are_those_before_the_change_is_done() {
        let open: Vec<_> = ApprovalStatus::ALL
            .into_iter()
            .filter(|s| s.is_open())
            .collect();
        assert_eq!(open, [S::Pending, S::Approved, S::Scheduled, S::Executing]);
        assert_eq!(ApprovalStatus::parse("rolling_back"), Some(S::RollingBack));
        assert!(ApprovalStatus::names().ends_with("rolled_back, rollback_failed"));
    }
}
