//! The domain: plain data and pure rules. No I/O, no AWS types.

pub mod approval;
pub mod audit;
pub mod connection;
pub mod cycle;
pub mod job;
pub mod metric;
pub mod recommendation;
pub mod resource;
pub mod service;
pub mod threshold;

pub use approval::{
    transition, ApprovalEvent, ApprovalRequest, ApprovalStatus, Decision, IllegalTransition,
};
pub use audit::AuditEntry;
pub use connection::{has_role, Connection, Role, Subscription, Topic};
pub use cycle::{CycleRun, Lease, RunStatus, StageOutcome, Trigger};
pub use job::{Job, JobKind, JobMessage, JobStatus, Progress, ShardRef};
pub use metric::{MetricPoint, MetricSample, MetricSeries};
pub use recommendation::{Action, Alternative, FindingKind, Recommendation};
pub use resource::{Relation, Resource};
pub use service::Service;
pub use threshold::{Aggregation, Condition, Operator, ThresholdRule, ThresholdSet};
