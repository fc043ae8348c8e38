use super::Service;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    Idle,
    Underutilized,
    OverProvisioned,
    UnderProvisioned,
    Erroring,
    Optimized,
    InsufficientData,
}

impl FindingKind {
    /// Whether a finding of this kind calls for an action.
    pub fn is_actionable(self) -> bool {
        !matches!(self, FindingKind::Optimized | FindingKind::InsufficientData)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Stop,
    Terminate,
    Rightsize,
    MoveToGraviton,
    ChangeStorageClass,
    AddLifecycleRule,
    SwitchToOnDemand,
    LowerProvisionedCapacity,
    ReduceMemory,
    IncreaseMemory,
    ShrinkTasks,
    ReduceTaskCount,
    DeleteUnused,
    InvestigateErrors,
    ScaleUp,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Stop => "stop",
            Action::Terminate => "terminate",
            Action::Rightsize => "rightsize",
            Action::MoveToGraviton => "move_to_graviton",
            Action::ChangeStorageClass => "change_storage_class",
            Action::AddLifecycleRule => "add_lifecycle_rule",
            Action::SwitchToOnDemand => "switch_to_on_demand",
            Action::LowerProvisionedCapacity => "lower_provisioned_capacity",
            Action::ReduceMemory => "reduce_memory",
            Action::IncreaseMemory => "increase_memory",
            Action::ShrinkTasks => "shrink_tasks",
            Action::ReduceTaskCount => "reduce_task_count",
            Action::DeleteUnused => "delete_unused",
            Action::InvestigateErrors => "investigate_errors",
            Action::ScaleUp => "scale_up",
        }
    }
}

/// Which way a relation points, seen from the recommendation's resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum DependencyDirection {
    /// This resource depends on the other (stopping the other affects it).
    DependsOn,
    /// The other depends on this one (stopping this one affects it).
    DependedOnBy,
}

/// One relation behind a recommendation's `dependencies`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DependencyDetail {
    pub resource_id: String,
    /// The relation's kind as discovered (`attached_to`, `member_of`, ...).
    pub kind: String,
    pub direction: DependencyDirection,
    /// What showed the relation (the API and field), when discovery says.
    #[serde(default)]
    pub evidence: Option<String>,
}

/// Another way to act on the same finding, with its own price and risk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Alternative {
    pub action: Action,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_type: Option<String>,
    pub monthly_savings_usd: Option<f64>,
    pub risk: u8,
    pub description: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Recommendation {
    pub id: String,
    pub resource_id: String,
    pub service: Service,
    pub region: String,
    #[serde(default)]
    pub account_id: Option<String>,
    /// From the resource's owner tag (`owner`, then `team`, unless configured).
    #[serde(default)]
    pub owner: Option<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// What the resource costs a month now, when a price or the inventory says.
    #[serde(default)]
    pub current_monthly_cost_usd: Option<f64>,
    pub finding: FindingKind,
    pub action: Action,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_type: Option<String>,
    /// `None` when no price is known: the tool never invents one.
    pub monthly_savings_usd: Option<f64>,
    /// Savings as a share of the resource's current monthly cost, when both are known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub savings_percent: Option<f64>,
    pub confidence: f64,
    pub risk: u8,
    pub reason: String,
    pub alternatives: Vec<Alternative>,
    /// Ids of resources related through the inventory; actions on them are
    /// ordered or batched together with this one.
    pub dependencies: Vec<String>,
    /// The relations behind `dependencies`, with their direction and evidence.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dependency_details: Vec<DependencyDetail>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utilization_score: Option<u8>,
    pub threshold_version: u32,
    pub created_at: DateTime<Utc>,
}

impl Recommendation {
    /// The deterministic id of "this action on this resource": the same
    /// recommendation in two cycles has the same id, and the same action on
    /// two resources of one name in two accounts or regions has two.
    pub fn stable_id(resource: &super::ResourceKey, action: Action) -> String {
        let name = format!("{resource}|{}", action.as_str());
        uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, name.as_bytes()).to_string()
    }

    /// The resource it is about, by scope and id.
    pub fn key(&self) -> super::ResourceKey {
        super::ResourceKey::new(self.account_id.as_deref(), &self.region, &self.resource_id)
    }
}
