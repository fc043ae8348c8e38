//! What discovery covered: one record per (account, region), as
//! `GET /accounts` shows it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// One unit of work: an account and a region.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Unit {
    pub account_id: String,
    pub region: String,
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.account_id, self.region)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Coverage {
    pub account_id: String,
    pub region: String,
    /// The cycle (job) that last tried this unit.
    pub job_id: String,
    pub attempted_at: DateTime<Utc>,
    /// The last discovery that completed, and what it found; kept when a
    /// later attempt fails, so coverage shows what is known and since when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discovered_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub resources: u64,
    /// Resources per service in the last completed discovery.
    #[serde(default)]
    pub by_service: BTreeMap<String, u64>,
    /// Calls per API (`EC2:DescribeInstances`) of the last completed
    /// discovery, and the fewest its pagination allowed.
    #[serde(default)]
    pub calls: BTreeMap<String, u64>,
    #[serde(default)]
    pub minimum_calls: BTreeMap<String, u64>,
    /// Why the last attempt failed; `None` when it completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}
