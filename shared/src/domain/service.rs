use super::metric::namespaces;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The eight services the tool watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Service {
    Ec2,
    /// EBS volumes, discovered and priced on their own (not through their instance).
    Ebs,
    Rds,
    ElastiCache,
    Lambda,
    Ecs,
    S3,
    DynamoDb,
}

impl Service {
    pub const ALL: [Service; 8] = [
        Service::Ec2,
        Service::Ebs,
        Service::Rds,
        Service::ElastiCache,
        Service::Lambda,
        Service::Ecs,
        Service::S3,
        Service::DynamoDb,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Service::Ec2 => "ec2",
            Service::Ebs => "ebs",
            Service::Rds => "rds",
            Service::ElastiCache => "elasticache",
            Service::Lambda => "lambda",
            Service::Ecs => "ecs",
            Service::S3 => "s3",
            Service::DynamoDb => "dynamodb",
        }
    }

    /// The CloudWatch namespace its metrics live in.
    pub fn namespace(self) -> &'static str {
        match self {
            Service::Ec2 => namespaces::EC2,
            Service::Ebs => namespaces::EBS,
            Service::Rds => namespaces::RDS,
            Service::ElastiCache => namespaces::ELASTICACHE,
            Service::Lambda => namespaces::LAMBDA,
            Service::Ecs => namespaces::ECS,
            Service::S3 => namespaces::S3,
            Service::DynamoDb => namespaces::DYNAMODB,
        }
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown service '{0}' (expected one of ec2, ebs, rds, elasticache, lambda, ecs, s3, dynamodb)"
)]
pub struct UnknownService(pub String);

impl FromStr for Service {
    type Err = UnknownService;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Service::ALL
            .into_iter()
            .find(|v| v.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownService(s.to_string()))
    }
}
