use super::Service;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A resource of the estate: what CloudWatch shows of it, plus what only the
/// inventory can tell (type, memory, cost, tags, who depends on it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resource {
    pub service: Service,
    pub id: String,
    pub region: String,
    /// The AWS account that holds it; `None` for a resource known only from
    /// the deploying account's CloudWatch or pushed without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    /// Instance type, node type, capacity mode or storage class, as fits the service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mb: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monthly_cost_usd: Option<f64>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    #[serde(default)]
    pub relations: Vec<Relation>,
    /// Service-specific facts (provisioned capacity, task count, vCPU, ...).
    #[serde(default)]
    pub attributes: BTreeMap<String, serde_json::Value>,
}

impl Resource {
    pub fn new(service: Service, id: impl Into<String>, region: impl Into<String>) -> Self {
        Resource {
            service,
            id: id.into(),
            region: region.into(),
            account_id: None,
            resource_type: None,
            memory_mb: None,
            monthly_cost_usd: None,
            tags: BTreeMap::new(),
            relations: Vec::new(),
            attributes: BTreeMap::new(),
        }
    }
}

/// The tag keys that name a resource's owner, tried in order, when the
/// deployment configures none.
pub const DEFAULT_OWNER_TAG_KEYS: [&str; 2] = ["owner", "team"];

impl Resource {
    /// The owner from the first of `keys` the resource is tagged with (keys
    /// compared without case, as people tag `Owner` and `owner` alike).
    pub fn owner<K: AsRef<str>>(&self, keys: &[K]) -> Option<String> {
        keys.iter().find_map(|k| {
            self.tags
                .iter()
                .find(|(t, v)| t.eq_ignore_ascii_case(k.as_ref()) && !v.trim().is_empty())
                .map(|(_, v)| v.trim().to_string())
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Relation {
    /// How this resource relates to the target, e.g. `uses`, `attached_to`, `member_of`.
    pub kind: String,
    pub target_id: String,
}
