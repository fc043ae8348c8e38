//! Persistence ports: one narrow trait per capability. The DynamoDB adapters
//! in [`crate::dynamo`] implement them; handler tests may use fakes.

mod token;

pub use token::PageTokenCodec;

use crate::domain::*;
use crate::Result;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// One page of a listing. `next_token` is opaque to clients and validated on return.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_token: Option<String>,
}

/// Listing limits: what a caller asks for is clamped to 1..=100.
pub fn clamp_limit(limit: Option<u32>) -> i32 {
    limit.unwrap_or(50).clamp(1, 100) as i32
}

#[async_trait]
pub trait JobStore: Send + Sync {
    /// Creates the job unless one with its id exists. Returns whether it was created.
    async fn create(&self, job: &Job) -> Result<bool>;
    async fn get(&self, id: &str, now: DateTime<Utc>) -> Result<Option<Job>>;
    /// Records that the job's queue message was sent.
    async fn mark_enqueued(&self, id: &str) -> Result<()>;
    /// Moves a job to `to` if its current status allows it; `Conflict` otherwise.
    async fn transition(
        &self,
        id: &str,
        to: JobStatus,
        outcome: JobOutcome,
        now: DateTime<Utc>,
    ) -> Result<Job>;
    /// Records progress; only a running job accepts it (`Conflict` otherwise).
    async fn update_progress(
        &self,
        id: &str,
        progress: &Progress,
        now: DateTime<Utc>,
    ) -> Result<()>;
}

/// Where a sharded cycle stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardCount {
    pub done: u32,
    pub total: u32,
    /// Resources analysed and findings, summed over the counted shards.
    pub analysed: u64,
    pub findings: u64,
    /// False when this shard had been counted already (a redelivery).
    pub newly_counted: bool,
}

/// The bookkeeping of a sharded cycle, on its job record.
#[async_trait]
pub trait ShardTracker: Send + Sync {
    /// Records how many shards the cycle has (idempotent for the same number).
    async fn set_shards(&self, job_id: &str, total: u32) -> Result<()>;
    /// Counts a shard as done with its totals, at most once per shard index.
    async fn complete_shard(
        &self,
        job_id: &str,
        index: u32,
        analysed: u64,
        findings: u64,
    ) -> Result<ShardCount>;
    /// Claims the final stage of a running job until `until`; false if another
    /// worker holds an unexpired claim. Whoever wins runs it; a crashed
    /// finaliser's claim expires and a redelivery takes over.
    async fn claim_finalize(
        &self,
        job_id: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool>;
}

/// The recommendations of each cycle, kept for `GET /recommendations`.
#[async_trait]
pub trait RecommendationStore: Send + Sync {
    async fn put_all(&self, cycle_id: &str, recommendations: &[Recommendation]) -> Result<()>;
    /// Every recommendation of a cycle, following pages to the end.
    async fn all(&self, cycle_id: &str) -> Result<Vec<Recommendation>>;
}

/// Consecutive failures per cycle stage, across cycles.
#[async_trait]
pub trait StageHealth: Send + Sync {
    /// Records a stage's outcome; returns its consecutive failures after it (0 on success).
    async fn record_stage(&self, stage: crate::domain::Stage, ok: bool) -> Result<u64>;
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobOutcome {
    pub result: Option<serde_json::Value>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateOutcome {
    Created,
    /// An open request for the same resource and action exists already.
    AlreadyOpen {
        existing_id: String,
    },
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ApprovalFilter {
    pub status: Option<ApprovalStatus>,
    pub service: Option<Service>,
    pub resource_id: Option<String>,
}

#[async_trait]
pub trait ApprovalStore: Send + Sync {
    /// Creates a pending request with its audit entry, atomically, unless an
    /// open request for the same resource and action exists.
    async fn create(&self, request: &ApprovalRequest, audit: &AuditEntry) -> Result<CreateOutcome>;
    async fn get(&self, id: &str) -> Result<Option<ApprovalRequest>>;
    /// Records a transition in one transaction: the request's conditional
    /// status and version update, the decision and the audit entry. A lost
    /// race is `Conflict`.
    async fn record(
        &self,
        current: &ApprovalRequest,
        next: &ApprovalRequest,
        decision: &Decision,
        audit: &AuditEntry,
    ) -> Result<()>;
    async fn decisions(&self, request_id: &str) -> Result<Vec<Decision>>;
    /// Of `keys` (resource, action), those with an open request, and its
    /// id: a cycle skips them instead of spending a refused transaction on
    /// each. Only an optimisation: `create` still refuses a second request,
    /// so a store may answer with nothing known.
    async fn open_requests(
        &self,
        keys: &[(crate::domain::ResourceKey, crate::domain::Action)],
    ) -> Result<
        std::collections::HashMap<(crate::domain::ResourceKey, crate::domain::Action), String>,
    > {
        let _ = keys;
        Ok(std::collections::HashMap::new())
    }
    async fn list(
        &self,
        filter: &ApprovalFilter,
        limit: Option<u32>,
        token: Option<&str>,
    ) -> Result<Page<ApprovalRequest>>;
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditQuery {
    pub entity_id: Option<String>,
    pub actor: Option<String>,
    pub action: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Appends an entry. Writing an entry that exists is `AlreadyExists` and
    /// leaves the stored one unchanged. There is no update and no delete.
    async fn append(&self, entry: &AuditEntry) -> Result<()>;
    async fn query(
        &self,
        query: &AuditQuery,
        limit: Option<u32>,
        token: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Page<AuditEntry>>;
}

/// One metric of one resource over a closed time range.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricQuery {
    pub resource_id: String,
    pub metric: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

#[async_trait]
pub trait MetricStore: Send + Sync {
    /// Writes samples; the same resource, metric and timestamp overwrite, so
    /// ingest is idempotent. Returns how many were written.
    async fn put(&self, samples: &[MetricSample], now: DateTime<Utc>) -> Result<usize>;
    async fn query(
        &self,
        query: &MetricQuery,
        limit: Option<u32>,
        token: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Page<MetricSample>>;
}

#[async_trait]
pub trait ThresholdStore: Send + Sync {
    /// Stores `set` as a new version; `Conflict` if that version exists.
    async fn put_version(&self, set: &ThresholdSet) -> Result<()>;
    async fn latest(&self) -> Result<Option<ThresholdSet>>;
    async fn history(&self, limit: Option<u32>, token: Option<&str>) -> Result<Page<ThresholdSet>>;
}

#[async_trait]
pub trait LeaseStore: Send + Sync {
    /// Takes the lease if it is free or expired. Returns whether `owner` holds it now.
    async fn acquire(
        &self,
        name: &str,
        owner: &str,
        ttl: chrono::Duration,
        now: DateTime<Utc>,
    ) -> Result<bool>;
    /// Extends a lease held by `owner`; `Conflict` if someone else holds it.
    async fn renew(
        &self,
        name: &str,
        owner: &str,
        ttl: chrono::Duration,
        now: DateTime<Utc>,
    ) -> Result<()>;
    /// Gives the lease up; `Conflict` if `owner` does not hold it.
    async fn release(&self, name: &str, owner: &str) -> Result<()>;
    async fn current(&self, name: &str, now: DateTime<Utc>) -> Result<Option<Lease>>;
}

#[async_trait]
pub trait CycleRunStore: Send + Sync {
    async fn put_run(&self, run: &CycleRun) -> Result<()>;
    async fn get_run(&self, run_id: &str) -> Result<Option<CycleRun>>;
    /// Newest first, at most `limit` (<= 100).
    async fn recent_runs(&self, limit: u32) -> Result<Vec<CycleRun>>;
}

#[async_trait]
pub trait ConnectionStore: Send + Sync {
    async fn put(&self, connection: &Connection) -> Result<()>;
    async fn get(&self, connection_id: &str, now: DateTime<Utc>) -> Result<Option<Connection>>;
    /// Removes the connection and every subscription it has.
    async fn remove(&self, connection_id: &str) -> Result<()>;
    /// `NotFound` if the connection does not exist.
    async fn subscribe(
        &self,
        connection_id: &str,
        topics: &[Topic],
        now: DateTime<Utc>,
    ) -> Result<()>;
    async fn unsubscribe(&self, connection_id: &str, topics: &[Topic]) -> Result<()>;
    async fn subscribers(
        &self,
        topic: &Topic,
        limit: Option<u32>,
        token: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Page<String>>;
    async fn topics_of(&self, connection_id: &str, now: DateTime<Utc>) -> Result<Vec<Topic>>;
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct InventoryFilter {
    pub service: Option<Service>,
    /// `key` or `key=value`.
    pub tag: Option<String>,
    pub account_id: Option<String>,
    pub region: Option<String>,
}

#[async_trait]
pub trait InventoryStore: Send + Sync {
    /// Records what `POST /resources` says of each resource, field by field,
    /// over what discovery found (which it never erases). Returns how many
    /// were written.
    async fn upsert(&self, resources: &[Resource]) -> Result<usize>;
    /// Records what discovery found, leaving every override in place.
    async fn record_discovered(&self, resources: &[Resource]) -> Result<usize>;
    async fn get(&self, key: &crate::domain::ResourceKey) -> Result<Option<Resource>>;
    /// Every resource with this id, whatever its account and region.
    async fn find(&self, id: &str) -> Result<Vec<Resource>>;
    /// Every resource of one account and region, following pages to the end.
    async fn in_scope(&self, scope: &crate::domain::Scope) -> Result<Vec<Resource>>;
    /// Every resource, following pages to the end.
    async fn all(&self) -> Result<Vec<Resource>>;
    async fn list(
        &self,
        filter: &InventoryFilter,
        limit: Option<u32>,
        token: Option<&str>,
    ) -> Result<Page<Resource>>;
}

/// Auto-approval policies, one item per policy, each change a new version.
#[async_trait]
pub trait PolicyStore: Send + Sync {
    /// Stores `policy` (its `version` already bumped): a new one when its
    /// version is 1, else only over version `version - 1`; `Conflict` otherwise.
    async fn put(&self, policy: &Policy) -> Result<()>;
    /// Every policy, ordered by id.
    async fn all(&self) -> Result<Vec<Policy>>;
}

/// What discovery covered per (account, region), for `GET /accounts`.
#[async_trait]
pub trait CoverageStore: Send + Sync {
    /// A completed discovery replaces the unit's record; a failed one keeps
    /// what the last completed discovery found and adds its error.
    async fn record(&self, coverage: &crate::domain::Coverage) -> Result<()>;
    /// Every unit, sorted by account and region.
    async fn all(&self) -> Result<Vec<crate::domain::Coverage>>;
}
