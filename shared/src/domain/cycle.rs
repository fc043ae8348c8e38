use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Running,
    Succeeded,
    /// Some resources failed in some stage; the rest went through.
    Partial,
    Failed,
    Skipped,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    Scheduled,
    Manual,
}

/// The stages of a cycle, in the order they run; progress is reported
/// against them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Discover,
    Collect,
    Analyse,
    Recommend,
    Dependencies,
    Batch,
    Approvals,
    Audit,
}

impl Stage {
    pub const ALL: [Stage; 8] = [
        Stage::Discover,
        Stage::Collect,
        Stage::Analyse,
        Stage::Recommend,
        Stage::Dependencies,
        Stage::Batch,
        Stage::Approvals,
        Stage::Audit,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Discover => "discover",
            Stage::Collect => "collect",
            Stage::Analyse => "analyse",
            Stage::Recommend => "recommend",
            Stage::Dependencies => "dependencies",
            Stage::Batch => "batch",
            Stage::Approvals => "approvals",
            Stage::Audit => "audit",
        }
    }

    /// Its position in [`Stage::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StageOutcome {
    pub stage: Stage,
    pub ok: bool,
    pub processed: u64,
    pub failed: u64,
    pub duration_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The record of one optimisation cycle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CycleRun {
    pub run_id: String,
    pub job_id: String,
    pub trigger: Trigger,
    pub status: RunStatus,
    pub started_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub stages: Vec<StageOutcome>,
    #[serde(default)]
    pub resources_analysed: u64,
    #[serde(default)]
    pub findings: u64,
    #[serde(default)]
    pub recommendations: u64,
    #[serde(default)]
    pub monthly_savings_usd: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold_version: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Asked for with `dryRun`: recommendations are computed and stored, but
    /// no approval request is opened or expired.
    #[serde(default)]
    pub dry_run: bool,
}

/// The cycle lease: at most one cycle runs at a time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Lease {
    pub name: String,
    pub owner: String,
    pub acquired_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_serialise_as_their_names_in_order() {
        for (i, s) in Stage::ALL.iter().enumerate() {
            assert_eq!(s.index(), i);
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
    }
}
