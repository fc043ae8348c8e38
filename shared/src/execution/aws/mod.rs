//! [`Actuator`] over the AWS APIs (shared's `discovery` feature): one module
//! per service family, each step one change call and the SDK's waiter (a
//! bounded poll only where the SDK has none), idempotent under the step's
//! key, every attempt counted by one [`CallCounter`].
//!
//! Clients are built per (account, region) from the deployment's SDK
//! configuration; another account of the Organization is reached with the
//! member role discovery assumes there ([`AccountConfigs`]).

mod dynamodb;
mod ebs;
mod ec2;
mod ecs;
mod elasticache;
mod lambda;
mod rds;
mod s3;

use super::{Actuator, Applied, DryRun, StepCall, StepRecord, StepStatus, Target};
use crate::calls::{CallCounter, CallTally};
use crate::discovery::aws::accounts::AccountConfigs;
use crate::discovery::AccountsMode;
use crate::domain::execution::{IdempotencyKey, ResourceState, Step};
use crate::domain::Service;
use crate::{Error, Result};
use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_ec2::operation::RequestId;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The tag (EC2 images and snapshots, ECS task definitions) naming the
/// step that created a resource, so a repeated step finds it instead of
/// creating another. Its value is the key's client token (ASCII, 36
/// characters: inside every service's tag rules).
pub(crate) const KEY_TAG: &str = "finops:idempotency-key";

/// How long a step waits for AWS to report its change done, by default:
/// inside Lambda's 15 minutes, so an execution that waits this long still
/// records the step. A longer change leaves the step started; the
/// redelivery takes it over and waits again under the same key.
pub const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(10 * 60);

/// The clients of one (account, region), each counting on the actuator's counter.
pub(crate) struct Clients {
    pub ec2: aws_sdk_ec2::Client,
    pub rds: aws_sdk_rds::Client,
    pub elasticache: aws_sdk_elasticache::Client,
    pub lambda: aws_sdk_lambda::Client,
    pub ecs: aws_sdk_ecs::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub s3: aws_sdk_s3::Client,
    pub max_wait: Duration,
}

macro_rules! counted {
    ($krate:ident, $config:expr, $counter:expr) => {
        $krate::Client::from_conf(
            $krate::config::Builder::from($config)
                .interceptor($counter.clone())
                .build(),
        )
    };
}

impl Clients {
    fn new(config: &SdkConfig, counter: &CallCounter, max_wait: Duration) -> Self {
        Clients {
            ec2: counted!(aws_sdk_ec2, config, counter),
            rds: counted!(aws_sdk_rds, config, counter),
            elasticache: counted!(aws_sdk_elasticache, config, counter),
            lambda: counted!(aws_sdk_lambda, config, counter),
            ecs: counted!(aws_sdk_ecs, config, counter),
            dynamodb: counted!(aws_sdk_dynamodb, config, counter),
            s3: counted!(aws_sdk_s3, config, counter),
            max_wait,
        }
    }
}

/// Clients per (account, `None` for the deploying one; region).
type ClientCache = Mutex<HashMap<(Option<String>, String), Arc<Clients>>>;

/// The execution adapter.
pub struct AwsActuator {
    accounts: AccountConfigs,
    counter: CallCounter,
    max_wait: Duration,
    clients: ClientCache,
}

impl AwsActuator {
    /// An actuator over `base` (the deployment's configuration), reaching
    /// the accounts `accounts` names as discovery does.
    pub fn new(base: SdkConfig, accounts: &AccountsMode) -> Self {
        AwsActuator {
            accounts: AccountConfigs::new(base, accounts.role_name(), "finops-execution"),
            counter: CallCounter::new(),
            max_wait: DEFAULT_MAX_WAIT,
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// Counts on `counter` (e.g. one per execution a benchmark measures).
    pub fn with_counter(mut self, counter: CallCounter) -> Self {
        self.counter = counter;
        self
    }

    pub fn with_max_wait(mut self, max_wait: Duration) -> Self {
        self.max_wait = max_wait;
        self
    }

    /// Every AWS call made so far, per (service, operation), retries included.
    pub fn calls(&self) -> CallTally {
        self.counter.snapshot()
    }

    pub fn counter(&self) -> &CallCounter {
        &self.counter
    }

    async fn clients(&self, target: &Target) -> Result<Arc<Clients>> {
        let key = (target.account_id.clone(), target.region.clone());
        let cached = self
            .clients
            .lock()
            .map_err(|_| Error::Internal("actuator clients lock poisoned".into()))?
            .get(&key)
            .cloned();
        if let Some(c) = cached {
            return Ok(c);
        }
        let config = self
            .accounts
            .config_for(target.account_id.as_deref(), &target.region)
            .await?;
        let made = Arc::new(Clients::new(&config, &self.counter, self.max_wait));
        if let Ok(mut map) = self.clients.lock() {
            map.insert(key, made.clone());
        }
        Ok(made)
    }

    /// The fewest AWS calls an execution of `steps` on a `service` resource
    /// can make: the pre- and post-state reads of the use case, and per step
    /// its change call plus, where AWS finishes the change asynchronously,
    /// one describe that sees it done. What this adapter makes above it is
    /// the price of idempotency (a look-up before creating an image,
    /// snapshot or revision) and of polls while AWS is still working.
    pub fn minimum_calls(service: Service, steps: &[Step]) -> u64 {
        let read = match service {
            Service::Ec2 | Service::Ebs | Service::Rds | Service::Lambda => 1,
            Service::ElastiCache | Service::Ecs | Service::DynamoDb | Service::S3 => 2,
        };
        let step = |s: &Step| -> u64 {
            match s {
                // Synchronous: the answer is the change.
                Step::Ec2ModifyType { .. }
                | Step::RdsModifyClass {
                    apply_at: crate::domain::execution::ApplyAt::MaintenanceWindow,
                    ..
                } => 1,
                // The change and one describe that sees it done; S3's
                // lifecycle is read, then written whole; a task size reads
                // the revision it copies, then registers the copy.
                _ => 2,
            }
        };
        2 * read + steps.iter().map(step).sum::<u64>()
    }
}

#[async_trait]
impl Actuator for AwsActuator {
    async fn read_state(&self, target: &Target) -> Result<Option<ResourceState>> {
        let c = self.clients(target).await?;
        match target.service {
            Service::Ec2 => ec2::read_state(&c, target).await,
            Service::Ebs => ebs::read_state(&c, target).await,
            Service::Rds => rds::read_state(&c, target).await,
            Service::ElastiCache => elasticache::read_state(&c, target).await,
            Service::Lambda => lambda::read_state(&c, target).await,
            Service::Ecs => ecs::read_state(&c, target).await,
            Service::DynamoDb => dynamodb::read_state(&c, target).await,
            Service::S3 => s3::read_state(&c, target).await,
        }
    }

    async fn apply(&self, call: StepCall<'_>) -> Result<Applied> {
        let c = self.clients(call.target).await?;
        match call.step {
            Step::Ec2Stop
            | Step::Ec2Start
            | Step::Ec2ModifyType { .. }
            | Step::Ec2CreateImage { .. }
            | Step::Ec2Terminate
            | Step::Ec2RunFromImage { .. } => ec2::apply(&c, call).await,
            Step::EbsSnapshot
            | Step::EbsDelete
            | Step::EbsModifyType { .. }
            | Step::EbsCreateFromSnapshot { .. } => ebs::apply(&c, call).await,
            Step::RdsStop
            | Step::RdsStart
            | Step::RdsModifyClass { .. }
            | Step::RdsDeleteWithFinalSnapshot { .. }
            | Step::RdsRestoreFromSnapshot { .. } => rds::apply(&c, call).await,
            Step::CacheModifyNodeType { .. } => elasticache::apply(&c, call).await,
            Step::LambdaSetMemory { .. } => lambda::apply(&c, call).await,
            Step::EcsSetDesiredCount { .. }
            | Step::EcsRegisterTaskSize { .. }
            | Step::EcsUseTaskDefinition { .. } => ecs::apply(&c, call).await,
            Step::DynamoSetBillingMode { .. } | Step::DynamoSetCapacity { .. } => {
                dynamodb::apply(&c, call).await
            }
            Step::S3AddLifecycleRule { .. } | Step::S3RemoveLifecycleRule { .. } => {
                s3::apply(&c, call).await
            }
        }
    }

    async fn dry_run(&self, call: StepCall<'_>) -> Result<DryRun> {
        let c = self.clients(call.target).await?;
        match call.step {
            Step::Ec2Stop
            | Step::Ec2Start
            | Step::Ec2ModifyType { .. }
            | Step::Ec2CreateImage { .. }
            | Step::Ec2Terminate => ec2::dry_run(&c, call).await,
            Step::EbsSnapshot | Step::EbsDelete | Step::EbsModifyType { .. } => {
                ebs::dry_run(&c, call).await
            }
            // The rest have no DryRun, or need what an earlier step makes
            // (the image or snapshot a rollback launches from).
            _ => Ok(DryRun::NotOffered),
        }
    }
}

/// AWS's request id of a call's answer.
pub(crate) fn request_id(out: &impl RequestId) -> Option<String> {
    out.request_id().map(str::to_string)
}

pub(crate) fn applied(out: &impl RequestId, output: Option<String>) -> Applied {
    Applied {
        aws_request_id: request_id(out),
        output,
    }
}

/// An EC2 call made with `DryRun`: AWS answers with an error either way.
pub(crate) fn dry_answer<O, E, R>(
    operation: &str,
    answer: std::result::Result<O, aws_smithy_runtime_api::client::result::SdkError<E, R>>,
) -> Result<DryRun>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    let err = match answer {
        Ok(_) => {
            return Err(Error::Internal(format!(
                "{operation}: AWS carried out a dry run"
            )))
        }
        Err(e) => e,
    };
    let reason = |e: &dyn ProvideErrorMetadata| {
        format!(
            "{}: {}",
            e.code().unwrap_or("Unknown"),
            e.message().unwrap_or("")
        )
    };
    match err.code() {
        Some("DryRunOperation") => Ok(DryRun::WouldSucceed),
        // A refusal of the call as asked (permissions, the resource's state,
        // a parameter) is the dry run's answer, not a failure of the preview.
        Some(_) if err.as_service_error().is_some() => Ok(DryRun::Refused {
            reason: reason(&err),
        }),
        _ => Err(Error::from_sdk(operation, err)),
    }
}

/// What a completed step of `records` produced, the last one matching.
pub(crate) fn output_of(records: &[StepRecord], wanted: fn(&Step) -> bool) -> Option<&str> {
    records
        .iter()
        .rev()
        .filter(|r| r.status == StepStatus::Completed && wanted(&r.step))
        .find_map(|r| r.applied.output.as_deref())
}

/// The key's tag value: what the step created carries it.
pub(crate) fn key_tag(key: &IdempotencyKey) -> String {
    key.client_token()
}

/// Polls `done` until it answers true, for changes the SDK has no waiter
/// for: the first look at once, then at growing intervals, never past
/// `max_wait` (then `Unavailable`, so the step is retaken later).
pub(crate) async fn poll_until<F, Fut>(what: &str, max_wait: Duration, mut done: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<bool>>,
{
    let started = Instant::now();
    let mut delay = Duration::from_secs(2);
    loop {
        if done().await? {
            return Ok(());
        }
        let elapsed = started.elapsed();
        if elapsed >= max_wait {
            return Err(Error::Unavailable(format!(
                "{what}: not done after {}s",
                elapsed.as_secs()
            )));
        }
        tokio::time::sleep(delay.min(max_wait - elapsed)).await;
        delay = (delay * 2).min(Duration::from_secs(30));
    }
}

/// The tags of an SDK listing as a map.
pub(crate) fn tag_map<'a>(
    pairs: impl IntoIterator<Item = (Option<&'a str>, Option<&'a str>)>,
) -> std::collections::BTreeMap<String, String> {
    pairs
        .into_iter()
        .filter_map(|(k, v)| Some((k?.to_string(), v.unwrap_or("").to_string())))
        .collect()
}

/// A state read for `target`.
pub(crate) fn state(
    target: &Target,
    tags: std::collections::BTreeMap<String, String>,
    details: crate::domain::execution::ResourceDetails,
) -> ResourceState {
    ResourceState {
        resource_id: target.resource_id.clone(),
        region: target.region.clone(),
        account_id: target.account_id.clone(),
        tags,
        details,
    }
}

/// A step handed to the wrong family: a defect of the dispatch.
pub(crate) fn misrouted(step: &Step) -> Error {
    Error::Internal(format!("{} reached the wrong service adapter", step.op()))
}
