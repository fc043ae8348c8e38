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
            resource_type: None,
            memory_mb: None,
            monthly_cost_usd: None,
            tags: BTreeMap::new(),
            relations: Vec::new(),
            attributes: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Relation {
    /// How this resource relates to the target, e.g. `uses`, `attached_to`, `member_of`.
    pub kind: String,
    pub target_id: String,
}
