//! The domain: plain data and pure rules. No I/O, no AWS types.

pub mod approval;
pub mod audit;
pub mod connection;
pub mod cost_query;
pub mod coverage;
pub mod cycle;
pub mod execution;
pub mod job;
pub mod metric;
pub mod number;
pub mod policy;
pub mod recommendation;
pub mod resource;
pub mod service;
pub mod threshold;

pub use approval::{
    transition, ApprovalEvent, ApprovalRequest, ApprovalStatus, Decision, IllegalTransition,
};
pub use audit::{AuditAction, AuditEntry};
pub use connection::{has_role, Connection, Role, Subscription, Topic};
pub use cost_query::{CostQuery, Dimension, Granularity, GroupBy};
pub use coverage::{Coverage, Unit};
pub use cycle::{CycleRun, Lease, RunStatus, Stage, StageOutcome, Trigger};
pub use job::{CycleParams, Job, JobKind, JobMessage, JobSource, JobStatus, Progress, ShardRef};
pub use metric::{MetricPoint, MetricSample, MetricSeries};
pub use policy::{Policy, PolicyError, PolicyMatch, ResourceFacts};
pub use recommendation::{
    Action, Alternative, DependencyDetail, DependencyDirection, FindingKind, Recommendation,
};
pub use resource::{relation_kinds, Relation, Resource, ResourceKey, Scope};
pub use service::Service;
pub use threshold::{Aggregation, Condition, Operator, ThresholdRule, ThresholdSet};
