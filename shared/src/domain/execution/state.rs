//! The live state of a resource as the execution reads it before and after
//! a change: typed per service, and flattened into [`Field`]s where drift
//! and verification compare it.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// One resource as its service describes it now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceState {
    pub resource_id: String,
    pub region: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    pub details: ResourceDetails,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ec2State {
    Pending,
    Running,
    Stopping,
    Stopped,
    ShuttingDown,
    Terminated,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum VolumeState {
    Creating,
    Available,
    InUse,
    Deleting,
    Deleted,
    Error,
}

/// RDS and ElastiCache statuses the execution acts on; any other is `Other`
/// (the adapter keeps AWS's text in the audit trail, not here).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ServiceStatus {
    Available,
    Creating,
    Modifying,
    Starting,
    Stopping,
    Stopped,
    Deleting,
    #[serde(other)]
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BillingMode {
    Provisioned,
    PayPerRequest,
}

/// The S3 storage classes a lifecycle rule may move objects to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StorageClass {
    StandardIa,
    OnezoneIa,
    IntelligentTiering,
    GlacierIr,
    Glacier,
    DeepArchive,
}

impl StorageClass {
    pub const ALL: [StorageClass; 6] = [
        StorageClass::StandardIa,
        StorageClass::OnezoneIa,
        StorageClass::IntelligentTiering,
        StorageClass::GlacierIr,
        StorageClass::Glacier,
        StorageClass::DeepArchive,
    ];

    /// The name S3's API uses.
    pub fn as_str(self) -> &'static str {
        match self {
            StorageClass::StandardIa => "STANDARD_IA",
            StorageClass::OnezoneIa => "ONEZONE_IA",
            StorageClass::IntelligentTiering => "INTELLIGENT_TIERING",
            StorageClass::GlacierIr => "GLACIER_IR",
            StorageClass::Glacier => "GLACIER",
            StorageClass::DeepArchive => "DEEP_ARCHIVE",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// The fewest days S3 lets objects sit in STANDARD before this transition.
    pub fn min_transition_days(self) -> u32 {
        match self {
            StorageClass::StandardIa | StorageClass::OnezoneIa => 30,
            _ => 0,
        }
    }
}

/// What each service's describe call tells of the resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "kind",
    rename_all = "snake_case",
    rename_all_fields = "camelCase"
)]
pub enum ResourceDetails {
    Ec2Instance {
        instance_type: String,
        state: Ec2State,
    },
    EbsVolume {
        volume_type: String,
        size_gib: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        iops: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        throughput: Option<u32>,
        state: VolumeState,
        availability_zone: String,
    },
    RdsInstance {
        instance_class: String,
        status: ServiceStatus,
        /// A class change waiting for the maintenance window.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pending_instance_class: Option<String>,
    },
    CacheCluster {
        node_type: String,
        num_nodes: u32,
        status: ServiceStatus,
    },
    LambdaFunction {
        memory_mb: u32,
    },
    EcsService {
        cluster: String,
        desired_count: u32,
        task_definition: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        task_cpu: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        task_memory_mb: Option<u32>,
    },
    DynamoDbTable {
        billing_mode: BillingMode,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        read_capacity: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        write_capacity: Option<u64>,
    },
    S3Bucket {
        /// Ids of the bucket's lifecycle rules; an execution adds one, never replaces them.
        lifecycle_rule_ids: Vec<String>,
    },
}

/// The comparable facts of a state, named once for drift, verification and
/// the audit trail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    /// Instance type, volume type, DB class, node type, billing mode, as fits.
    Type,
    /// Volume GiB, cache nodes, ECS desired count.
    Size,
    State,
    MemoryMb,
    TaskCpu,
    ReadCapacity,
    WriteCapacity,
    /// A DB class change waiting for the maintenance window, or applied already.
    PendingType,
    TaskDefinition,
    LifecycleRules,
}

impl Field {
    /// What the drift check compares against the recommendation's snapshot.
    pub const DRIFT: [Field; 4] = [Field::Type, Field::Size, Field::State, Field::MemoryMb];

    pub fn as_str(self) -> &'static str {
        match self {
            Field::Type => "type",
            Field::Size => "size",
            Field::State => "state",
            Field::MemoryMb => "memory_mb",
            Field::TaskCpu => "task_cpu",
            Field::ReadCapacity => "read_capacity",
            Field::WriteCapacity => "write_capacity",
            Field::PendingType => "pending_type",
            Field::TaskDefinition => "task_definition",
            Field::LifecycleRules => "lifecycle_rules",
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A state flattened to comparable text, field by field.
pub type StateSnapshot = BTreeMap<Field, String>;

fn text<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

impl ResourceDetails {
    /// The service's name for what this is, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            ResourceDetails::Ec2Instance { .. } => "EC2 instance",
            ResourceDetails::EbsVolume { .. } => "EBS volume",
            ResourceDetails::RdsInstance { .. } => "RDS instance",
            ResourceDetails::CacheCluster { .. } => "ElastiCache cluster",
            ResourceDetails::LambdaFunction { .. } => "Lambda function",
            ResourceDetails::EcsService { .. } => "ECS service",
            ResourceDetails::DynamoDbTable { .. } => "DynamoDB table",
            ResourceDetails::S3Bucket { .. } => "S3 bucket",
        }
    }
}

impl ResourceState {
    /// Every field this kind of resource has, as text.
    pub fn snapshot(&self) -> StateSnapshot {
        let mut out = StateSnapshot::new();
        let mut put = |f: Field, v: Option<String>| {
            if let Some(v) = v {
                out.insert(f, v);
            }
        };
        match &self.details {
            ResourceDetails::Ec2Instance {
                instance_type,
                state,
            } => {
                put(Field::Type, Some(instance_type.clone()));
                put(Field::State, Some(text(state)));
            }
            ResourceDetails::EbsVolume {
                volume_type,
                size_gib,
                state,
                ..
            } => {
                put(Field::Type, Some(volume_type.clone()));
                put(Field::Size, Some(size_gib.to_string()));
                put(Field::State, Some(text(state)));
            }
            ResourceDetails::RdsInstance {
                instance_class,
                status,
                pending_instance_class,
            } => {
                put(Field::Type, Some(instance_class.clone()));
                put(Field::State, Some(text(status)));
                put(
                    Field::PendingType,
                    Some(
                        pending_instance_class
                            .as_ref()
                            .unwrap_or(instance_class)
                            .clone(),
                    ),
                );
            }
            ResourceDetails::CacheCluster {
                node_type,
                num_nodes,
                status,
            } => {
                put(Field::Type, Some(node_type.clone()));
                put(Field::Size, Some(num_nodes.to_string()));
                put(Field::State, Some(text(status)));
            }
            ResourceDetails::LambdaFunction { memory_mb } => {
                put(Field::MemoryMb, Some(memory_mb.to_string()));
            }
            ResourceDetails::EcsService {
                desired_count,
                task_definition,
                task_cpu,
                task_memory_mb,
                ..
            } => {
                put(Field::Size, Some(desired_count.to_string()));
                put(Field::TaskDefinition, Some(task_definition.clone()));
                put(Field::TaskCpu, task_cpu.map(|v| v.to_string()));
                put(Field::MemoryMb, task_memory_mb.map(|v| v.to_string()));
            }
            ResourceDetails::DynamoDbTable {
                billing_mode,
                read_capacity,
                write_capacity,
            } => {
                put(Field::Type, Some(text(billing_mode)));
                put(Field::ReadCapacity, read_capacity.map(|v| v.to_string()));
                put(Field::WriteCapacity, write_capacity.map(|v| v.to_string()));
            }
            ResourceDetails::S3Bucket { lifecycle_rule_ids } => {
                let mut ids = lifecycle_rule_ids.clone();
                ids.sort();
                put(Field::LifecycleRules, Some(ids.join(",")));
            }
        }
        out
    }

    /// Whether the resource carries the exclusion tag (`<key>=true`, any case).
    pub fn is_excluded(&self, exclusion_key: &str) -> bool {
        self.tags
            .get(exclusion_key)
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
    }
}

/// The default exclusion tag key (configurable, SPEC section 9).
pub const EXCLUSION_TAG: &str = "finops:exclude";

/// What the recommendation was made on, from the inventory: the fields the
/// drift check compares (type, size, state, memory) that discovery records.
/// A field the inventory does not know is left out, so it is not compared.
pub fn expected_from(resource: &crate::domain::Resource) -> StateSnapshot {
    use crate::domain::Service;
    let mut out = StateSnapshot::new();
    let attr = |name: &str| -> Option<String> {
        match resource.attributes.get(name)? {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    };
    let ty = resource.resource_type.clone();
    match resource.service {
        Service::Ec2 => {
            ty.map(|t| out.insert(Field::Type, t));
            attr("state").map(|v| out.insert(Field::State, v));
        }
        Service::Ebs => {
            ty.map(|t| out.insert(Field::Type, t));
            attr("sizeGiB").map(|v| out.insert(Field::Size, v));
        }
        Service::Rds => {
            ty.map(|t| out.insert(Field::Type, t));
        }
        Service::ElastiCache => {
            ty.map(|t| out.insert(Field::Type, t));
            attr("numCacheNodes").map(|v| out.insert(Field::Size, v));
        }
        Service::Lambda => {
            attr("memorySize").map(|v| out.insert(Field::MemoryMb, v));
        }
        Service::Ecs | Service::DynamoDb | Service::S3 => {}
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn ec2(id: &str, ty: &str, state: Ec2State) -> ResourceState {
        ResourceState {
            resource_id: id.into(),
            region: "us-east-1".into(),
            account_id: Some("111111111111".into()),
            tags: BTreeMap::new(),
            details: ResourceDetails::Ec2Instance {
                instance_type: ty.into(),
                state,
            },
        }
    }

    #[test]
    fn states_serialize_with_aws_names() {
        let s = ec2("i-1", "m5.large", Ec2State::ShuttingDown);
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["details"]["kind"], "ec2_instance");
        assert_eq!(v["details"]["instanceType"], "m5.large");
        assert_eq!(v["details"]["state"], "shutting_down");
        let back: ResourceState = serde_json::from_value(v).unwrap();
        assert_eq!(back, s);
        assert_eq!(text(&VolumeState::InUse), "in-use");
        assert_eq!(text(&BillingMode::PayPerRequest), "PAY_PER_REQUEST");
        let other: ServiceStatus = serde_json::from_str("\"backing-up\"").unwrap();
        assert_eq!(other, ServiceStatus::Other);
    }

    #[test]
    fn snapshots_name_type_size_state_memory() {
        let s = ec2("i-1", "m5.large", Ec2State::Running).snapshot();
        assert_eq!(s[&Field::Type], "m5.large");
        assert_eq!(s[&Field::State], "running");
        let mut t = ec2("i-1", "m5.large", Ec2State::Running);
        t.tags.insert(EXCLUSION_TAG.into(), " TRUE ".into());
        assert!(t.is_excluded(EXCLUSION_TAG));
        t.tags.insert(EXCLUSION_TAG.into(), "no".into());
        assert!(!t.is_excluded(EXCLUSION_TAG));
    }
}
