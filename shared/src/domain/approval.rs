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
    Executed,
    Failed,
}

impl ApprovalStatus {
    pub const ALL: [ApprovalStatus; 7] = [
        ApprovalStatus::Pending,
        ApprovalStatus::Approved,
        ApprovalStatus::Rejected,
        ApprovalStatus::Expired,
        ApprovalStatus::Cancelled,
        ApprovalStatus::Executed,
        ApprovalStatus::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalStatus::Pending => "pending",
            ApprovalStatus::Approved => "approved",
            ApprovalStatus::Rejected => "rejected",
            ApprovalStatus::Expired => "expired",
            ApprovalStatus::Cancelled => "cancelled",
            ApprovalStatus::Executed => "executed",
            ApprovalStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// Open requests block a new request for the same resource and action.
    pub fn is_open(self) -> bool {
        matches!(self, ApprovalStatus::Pending | ApprovalStatus::Approved)
    }

    pub fn is_terminal(self) -> bool {
        !self.is_open()
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
    ExecuteSucceeded,
    ExecuteFailed,
}

impl ApprovalEvent {
    pub const ALL: [ApprovalEvent; 6] = [
        ApprovalEvent::Approve,
        ApprovalEvent::Reject,
        ApprovalEvent::Expire,
        ApprovalEvent::Cancel,
        ApprovalEvent::ExecuteSucceeded,
        ApprovalEvent::ExecuteFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalEvent::Approve => "approve",
            ApprovalEvent::Reject => "reject",
            ApprovalEvent::Expire => "expire",
            ApprovalEvent::Cancel => "cancel",
            ApprovalEvent::ExecuteSucceeded => "execute_succeeded",
            ApprovalEvent::ExecuteFailed => "execute_failed",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cannot {event} a request that is {from}", event = .event.as_str())]
pub struct IllegalTransition {
    pub from: ApprovalStatus,
    pub event: ApprovalEvent,
}

/// The whole state machine. Anything not listed is illegal.
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
        (S::Pending, E::Cancel) => Ok(S::Cancelled),
        (S::Approved, E::ExecuteSucceeded) => Ok(S::Executed),
        (S::Approved, E::ExecuteFailed) => Ok(S::Failed),
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
        }
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
        let to = transition(self.status, event)?;
        let next = ApprovalRequest {
            status: to,
            version: self.version + 1,
            updated_at: now,
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Action, FindingKind, Service};
    use proptest::prelude::*;

    fn recommendation() -> Recommendation {
        Recommendation {
            id: Recommendation::stable_id("i-1", Action::Stop),
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

    /// The transitions SPEC section 7 allows, written out independently of `transition`.
    const ALLOWED: [(ApprovalStatus, ApprovalStatus); 6] = [
        (ApprovalStatus::Pending, ApprovalStatus::Approved),
        (ApprovalStatus::Pending, ApprovalStatus::Rejected),
        (ApprovalStatus::Pending, ApprovalStatus::Expired),
        (ApprovalStatus::Pending, ApprovalStatus::Cancelled),
        (ApprovalStatus::Approved, ApprovalStatus::Executed),
        (ApprovalStatus::Approved, ApprovalStatus::Failed),
    ];

    /// The status each event leads to when SPEC section 7 allows it, written
    /// out independently of `transition`.
    fn spec_target(e: ApprovalEvent) -> ApprovalStatus {
        match e {
            ApprovalEvent::Approve => ApprovalStatus::Approved,
            ApprovalEvent::Reject => ApprovalStatus::Rejected,
            ApprovalEvent::Expire => ApprovalStatus::Expired,
            ApprovalEvent::Cancel => ApprovalStatus::Cancelled,
            ApprovalEvent::ExecuteSucceeded => ApprovalStatus::Executed,
            ApprovalEvent::ExecuteFailed => ApprovalStatus::Failed,
        }
    }

    fn event() -> impl Strategy<Value = ApprovalEvent> {
        proptest::sample::select(ApprovalEvent::ALL.to_vec())
    }

    proptest! {
        #[test]
        fn only_spec_transitions_are_reachable(events in proptest::collection::vec(event(), 0..20)) {
            let now = Utc::now();
            let mut req = ApprovalRequest::new(recommendation(), "cycle", None, now, chrono::Duration::days(7));
            let snapshot = req.recommendation.clone();
            for e in events {
                let before = req.status;
                match req.apply(e, "alice", None, None, now) {
                    Ok((next, decision)) => {
                        prop_assert!(ALLOWED.contains(&(before, next.status)), "{before} -> {}", next.status);
                        prop_assert_eq!(next.status, spec_target(e));
                        prop_assert_eq!(decision.from, before);
                        prop_assert_eq!(decision.to, next.status);
                        prop_assert_eq!(next.version, req.version + 1);
                        req = next;
                    }
                    Err(err) => {
                        prop_assert_eq!(err, IllegalTransition { from: before, event: e });
                        prop_assert!(transition(before, e).is_err());
                        // Refused only where the spec has no such move.
                        prop_assert!(!ALLOWED.contains(&(before, spec_target(e))), "{before} refused {}", e.as_str());
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
                    prop_assert_eq!(err, IllegalTransition { from: ApprovalStatus::Expired, event: e });
                }
                Err(err) => {
                    prop_assert_eq!(err, IllegalTransition { from: ApprovalStatus::Pending, event: e });
                    prop_assert!(transition(ApprovalStatus::Pending, e).is_err());
                }
            }
        }

        #[test]
        fn terminal_states_stay_terminal(from in proptest::sample::select(ApprovalStatus::ALL.to_vec()), e in event()) {
            let terminal = !ALLOWED.iter().any(|(f, _)| *f == from);
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
}
