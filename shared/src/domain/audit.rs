use super::approval::ApprovalEvent;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What an audit entry records. Entries store the name as text (readers and
/// filters work on `approval.approve`, `cycle.completed`, ...); writers name
/// it through this type, so a misspelt action does not compile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditAction {
    ApprovalRequested,
    /// A transition of an approval request: `approval.<event>`.
    Approval(ApprovalEvent),
    CycleTriggered,
    CycleCompleted,
    CycleOperatorAlert,
    ThresholdsUpdated,
    ResourceCreated,
    ResourceUpdated,
    MetricsIngested,
    /// One step of an execution or its rollback, with its AWS request id.
    ExecutionStep,
    PolicySaved,
    /// What a dry-run policy would have approved.
    PolicyDryRun,
}

impl AuditAction {
    pub fn name(self) -> String {
        match self {
            AuditAction::ApprovalRequested => "approval.requested".into(),
            AuditAction::Approval(e) => format!("approval.{}", e.as_str()),
            AuditAction::CycleTriggered => "cycle.triggered".into(),
            AuditAction::CycleCompleted => "cycle.completed".into(),
            AuditAction::CycleOperatorAlert => "cycle.operator_alert".into(),
            AuditAction::ThresholdsUpdated => "thresholds.updated".into(),
            AuditAction::ResourceCreated => "resource.created".into(),
            AuditAction::ResourceUpdated => "resource.updated".into(),
            AuditAction::MetricsIngested => "metrics.ingested".into(),
            AuditAction::ExecutionStep => "execution.step".into(),
            AuditAction::PolicySaved => "policy.saved".into(),
            AuditAction::PolicyDryRun => "policy.dry_run".into(),
        }
    }
}

impl std::fmt::Display for AuditAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

/// An immutable record of a write: who did what to which entity, the state
/// before and after, and the correlation id tying it to a request or cycle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    /// Unique per entity. Derived deterministically by callers whose work may
    /// be redelivered, so a replay cannot write a second entry.
    pub id: String,
    pub entity_type: String,
    pub entity_id: String,
    pub action: String,
    pub actor: String,
    pub at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_state: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_state: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_names_are_the_stored_ones() {
        assert_eq!(AuditAction::ApprovalRequested.name(), "approval.requested");
        assert_eq!(
            AuditAction::Approval(ApprovalEvent::Approve).name(),
            "approval.approve"
        );
        assert_eq!(AuditAction::CycleCompleted.to_string(), "cycle.completed");
    }
}
