//! Metric series and samples, and the CloudWatch names they are keyed by.

use super::Service;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MetricPoint {
    pub timestamp: DateTime<Utc>,
    pub value: f64,
}

/// One metric of one resource over time, in ascending timestamp order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricSeries {
    pub resource_id: String,
    pub service: Service,
    pub metric: String,
    /// The statistic the points hold (Average, Maximum, p99, ...).
    pub statistic: String,
    pub period_seconds: u32,
    pub points: Vec<MetricPoint>,
}

/// A single stored sample, as ingested through `POST /metrics` or kept by the
/// metric store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricSample {
    pub resource_id: String,
    pub service: Service,
    pub metric: String,
    pub timestamp: DateTime<Utc>,
    pub value: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
}

/// CloudWatch metric names the engine, the collector and the local estate
/// share. A misspelt constant fails to compile; a misspelt string would
/// silently match no series, and the rule reading it would report
/// insufficient data.
pub mod names {
    // AWS/EC2, AWS/RDS, AWS/ElastiCache, AWS/ECS
    pub const CPU_UTILIZATION: &str = "CPUUtilization";
    // AWS/EC2
    pub const NETWORK_IN: &str = "NetworkIn";
    pub const NETWORK_OUT: &str = "NetworkOut";
    // CWAgent (EC2 memory, only where the agent runs)
    pub const MEM_USED_PERCENT: &str = "mem_used_percent";
    // AWS/RDS
    pub const DATABASE_CONNECTIONS: &str = "DatabaseConnections";
    pub const FREEABLE_MEMORY: &str = "FreeableMemory";
    // AWS/ElastiCache
    pub const DATABASE_MEMORY_USAGE_PERCENTAGE: &str = "DatabaseMemoryUsagePercentage";
    pub const CURR_CONNECTIONS: &str = "CurrConnections";
    // AWS/Lambda
    pub const INVOCATIONS: &str = "Invocations";
    pub const ERRORS: &str = "Errors";
    pub const THROTTLES: &str = "Throttles";
    pub const DURATION: &str = "Duration";
    // LambdaInsights: the share of configured memory used
    pub const INSIGHTS_MEMORY_UTILIZATION: &str = "memory_utilization";
    // AWS/ECS
    pub const MEMORY_UTILIZATION: &str = "MemoryUtilization";
    // AWS/S3
    pub const BUCKET_SIZE_BYTES: &str = "BucketSizeBytes";
    pub const NUMBER_OF_OBJECTS: &str = "NumberOfObjects";
    pub const ALL_REQUESTS: &str = "AllRequests";
    pub const GET_REQUESTS: &str = "GetRequests";
    // AWS/DynamoDB
    pub const CONSUMED_READ_CAPACITY_UNITS: &str = "ConsumedReadCapacityUnits";
    pub const CONSUMED_WRITE_CAPACITY_UNITS: &str = "ConsumedWriteCapacityUnits";
    pub const PROVISIONED_READ_CAPACITY_UNITS: &str = "ProvisionedReadCapacityUnits";
    pub const PROVISIONED_WRITE_CAPACITY_UNITS: &str = "ProvisionedWriteCapacityUnits";
    // Derived metrics: computed by the engine, named by rules like the others
    pub const NETWORK_BYTES: &str = "NetworkBytes";
    pub const ERROR_RATE: &str = "ErrorRate";
    pub const GET_REQUESTS_PER_GB: &str = "GetRequestsPerGB";
    pub const READ_CAPACITY_UTILIZATION: &str = "ReadCapacityUtilization";
    pub const WRITE_CAPACITY_UTILIZATION: &str = "WriteCapacityUtilization";
    pub const VOLUME_IOPS: &str = "VolumeIOPS";
    pub const IOPS_UTILIZATION: &str = "IopsUtilization";
    pub const UNATTACHED: &str = "Unattached";
    // AWS/EBS
    pub const VOLUME_READ_OPS: &str = "VolumeReadOps";
    pub const VOLUME_WRITE_OPS: &str = "VolumeWriteOps";
    pub const VOLUME_IDLE_TIME: &str = "VolumeIdleTime";
}

/// CloudWatch namespaces the metrics live in.
pub mod namespaces {
    pub const EC2: &str = "AWS/EC2";
    pub const EBS: &str = "AWS/EBS";
    pub const RDS: &str = "AWS/RDS";
    pub const ELASTICACHE: &str = "AWS/ElastiCache";
    pub const LAMBDA: &str = "AWS/Lambda";
    pub const ECS: &str = "AWS/ECS";
    pub const S3: &str = "AWS/S3";
    pub const DYNAMODB: &str = "AWS/DynamoDB";
    /// The CloudWatch agent's default namespace.
    pub const CW_AGENT: &str = "CWAgent";
    pub const LAMBDA_INSIGHTS: &str = "LambdaInsights";
}
