use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Roles are cumulative: each includes everything the ones below it may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Operator,
    Approver,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Approver => "approver",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "viewer" => Some(Role::Viewer),
            "operator" => Some(Role::Operator),
            "approver" => Some(Role::Approver),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// Whether any of `roles` grants `needed`.
pub fn has_role(roles: &[Role], needed: Role) -> bool {
    roles.iter().any(|r| *r >= needed)
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Topic {
    Approvals,
    Jobs,
    Costs,
    Resource(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown topic '{0}' (expected approvals, jobs, costs or resource:<id>)")]
pub struct UnknownTopic(pub String);

impl FromStr for Topic {
    type Err = UnknownTopic;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "approvals" => Ok(Topic::Approvals),
            "jobs" => Ok(Topic::Jobs),
            "costs" => Ok(Topic::Costs),
            _ => match s.strip_prefix("resource:") {
                Some(id) if !id.is_empty() && id.len() <= 512 => {
                    Ok(Topic::Resource(id.to_string()))
                }
                _ => Err(UnknownTopic(s.to_string())),
            },
        }
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Topic::Approvals => f.write_str("approvals"),
            Topic::Jobs => f.write_str("jobs"),
            Topic::Costs => f.write_str("costs"),
            Topic::Resource(id) => write!(f, "resource:{id}"),
        }
    }
}

impl Serialize for Topic {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Topic {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Connection {
    pub connection_id: String,
    pub user_id: String,
    pub roles: Vec<Role>,
    pub connected_at: DateTime<Utc>,
    /// API Gateway closes a connection after 2 hours; the record goes with it.
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subscription {
    pub connection_id: String,
    pub topic: Topic,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}
