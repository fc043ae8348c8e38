use super::Service;
use chrono::{DateTime, Utc};
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
    /// When the services' APIs last showed it; `None` for a resource known
    /// only from CloudWatch or `POST /resources`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discovered_at: Option<DateTime<Utc>>,
    /// The call that showed it, e.g. `ec2:DescribeInstances`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discovered_by: Option<String>,
    /// The fields `POST /resources` set over what was discovered (camelCase
    /// names, e.g. `resourceType`); they win on every read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overridden: Vec<String>,
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
            discovered_at: None,
            discovered_by: None,
            overridden: Vec::new(),
        }
    }
}

/// Where a resource lives: its account and region. AWS makes most names
/// unique only there (an RDS instance `orders` may exist in every account
/// and region), so the inventory, recommendation ids and the open-lock of
/// an approval request key a resource by its scope and id, never by id
/// alone.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Scope {
    /// `None`: the deploying account, not named (a resource known only from
    /// its CloudWatch, or pushed without an account where none is configured).
    pub account_id: Option<String>,
    pub region: String,
}

/// Stands in for an unnamed account in keys (an account id is 12 digits).
const UNNAMED_ACCOUNT: &str = "-";

impl Scope {
    pub fn new(account_id: Option<&str>, region: &str) -> Self {
        Scope {
            account_id: account_id.map(str::to_string),
            region: region.to_string(),
        }
    }

    /// `<account>#<region>`, the inventory's partition key.
    pub fn key(&self) -> String {
        format!(
            "{}#{}",
            self.account_id.as_deref().unwrap_or(UNNAMED_ACCOUNT),
            self.region
        )
    }

    /// The scope a key names (the inverse of [`Scope::key`]).
    pub fn from_key(key: &str) -> Option<Scope> {
        let (account, region) = key.split_once('#')?;
        Some(Scope {
            account_id: (account != UNNAMED_ACCOUNT).then(|| account.to_string()),
            region: region.to_string(),
        })
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{}",
            self.account_id.as_deref().unwrap_or("this account"),
            self.region
        )
    }
}

/// A resource's identity across the estate: scope and id. Two resources
/// with one id in two accounts or regions have two keys.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceKey {
    pub scope: Scope,
    pub id: String,
}

impl ResourceKey {
    pub fn new(account_id: Option<&str>, region: &str, id: &str) -> Self {
        ResourceKey {
            scope: Scope::new(account_id, region),
            id: id.to_string(),
        }
    }
}

impl std::fmt::Display for ResourceKey {
    /// `<account>#<region>#<id>`: stable, so ids and locks derived from it
    /// stay the same from one cycle to the next.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}#{}", self.scope.key(), self.id)
    }
}

impl Resource {
    pub fn scope(&self) -> Scope {
        Scope::new(self.account_id.as_deref(), &self.region)
    }

    pub fn key(&self) -> ResourceKey {
        ResourceKey::new(self.account_id.as_deref(), &self.region, &self.id)
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
    /// What showed the relation, e.g. `DescribeVolumes: vol-1 attached to
    /// i-1 as /dev/xvda`; `None` when a person declared it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<String>,
}

impl Relation {
    pub fn new(kind: impl Into<String>, target_id: impl Into<String>) -> Self {
        Relation {
            kind: kind.into(),
            target_id: target_id.into(),
            evidence: None,
        }
    }

    pub fn with_evidence(mut self, evidence: impl Into<String>) -> Self {
        self.evidence = Some(evidence.into());
        self
    }
}

/// Relation kinds discovery records (the dependency index reads `kind` as
/// free text; these are the ones the APIs show).
pub mod relation_kinds {
    /// A volume attached to an instance.
    pub const ATTACHED_TO: &str = "attached_to";
    /// An instance in an Auto Scaling group; an ECS service in its cluster.
    pub const MEMBER_OF: &str = "member_of";
    /// A read replica of its source database or replication group.
    pub const REPLICA_OF: &str = "replica_of";
    /// An ECS service registered with a load balancer target group.
    pub const REGISTERED_WITH: &str = "registered_with";
    /// A resource that depends on another: a database whose security group
    /// admits the other's, a function reading an event source.
    pub const USES: &str = "uses";
    /// A resource whose security group admits the target's security group
    /// (a database reached from an instance): it depends on the target.
    pub const ADMITS: &str = "admits";
}

#[cfg(test)]
mod key_tests {
    use super::*;

    #[test]
    fn one_name_in_two_accounts_or_regions_is_two_keys() {
        let mut a = Resource::new(Service::Rds, "orders", "us-east-1");
        a.account_id = Some("111111111111".into());
        let mut b = a.clone();
        b.account_id = Some("222222222222".into());
        let mut c = a.clone();
        c.region = "eu-west-1".into();
        assert_ne!(a.key(), b.key());
        assert_ne!(a.key(), c.key());
        assert_eq!(a.key().to_string(), "111111111111#us-east-1#orders");
    }

    #[test]
    fn a_scope_key_reads_back() {
        for scope in [
            Scope::new(Some("111111111111"), "eu-west-1"),
            Scope::new(None, "us-east-1"),
        ] {
            assert_eq!(Scope::from_key(&scope.key()), Some(scope.clone()));
        }
        assert_eq!(Scope::from_key("no-separator"), None);
    }
}
