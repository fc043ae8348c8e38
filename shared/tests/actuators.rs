//! The AWS actuator against the emulator, through the real SDK, with the
//! emulator as the judge: for each executable action the resource is
//! created with its service's API, approved, executed by the use case
//! `shared::execution::execute` over the DynamoDB-backed stores, read back
//! from the emulator, rolled back, and read back again. Then drift, the
//! exclusion tag, EC2 dry runs, and steps applied twice under one key.

use aws_config::SdkConfig;
use chrono::{DateTime, Utc};
use finops_local::LocalStack;
use shared::calls::CallCounter;
use shared::discovery::AccountsMode;
use shared::domain::execution::*;
use shared::domain::*;
use shared::dynamo::*;
use shared::execution::*;
use shared::store::*;
use std::time::Duration;

struct World {
    config: SdkConfig,
    approvals: DynamoApprovals,
    audit: DynamoAudit,
    executions: DynamoExecutions,
    actuator: AwsActuator,
    counter: CallCounter,
    /// A prefix unique to the test: the tests share one emulator.
    p: String,
    now: DateTime<Utc>,
}

impl World {
    async fn new() -> World {
        let stack = LocalStack::isolated().await;
        let ddb = aws_sdk_dynamodb::Client::new(&stack.config);
        let codec = PageTokenCodec::new("test-secret");
        let counter = CallCounter::new();
        World {
            approvals: DynamoApprovals::new(
                ddb.clone(),
                stack.table("ApprovalsTable"),
                stack.table("AuditTable"),
                codec.clone(),
            ),
            audit: DynamoAudit::new(ddb.clone(), stack.table("AuditTable"), codec),
            executions: DynamoExecutions::new(ddb, stack.table("ExecutionsTable")),
            // A test that waits this long has found a waiter that never ends.
            actuator: AwsActuator::new(stack.config.clone(), &AccountsMode::SelfOnly)
                .with_counter(counter.clone())
                .with_max_wait(Duration::from_secs(60)),
            counter,
            p: stack.prefix.clone(),
            config: stack.config.clone(),
            now: Utc::now(),
        }
    }

    fn deps(&self) -> Deps<'_> {
        Deps {
            approvals: &self.approvals,
            audit: &self.audit,
            executions: &self.executions,
            actuator: &self.actuator,
            notifier: &shared::notify::LogNotifier,
        }
    }

    fn target(&self, service: Service, id: &str) -> Target {
        Target {
            service,
            resource_id: id.into(),
            region: "us-east-1".into(),
            account_id: None,
        }
    }

    async fn state(&self, service: Service, id: &str) -> Option<ResourceState> {
        self.actuator
            .read_state(&self.target(service, id))
            .await
            .unwrap()
    }

    /// An approved request for `action` on the resource, with the live state
    /// as the recommendation's snapshot (what drift is judged against).
    async fn approved(
        &self,
        service: Service,
        id: &str,
        action: Action,
        target: Option<&str>,
    ) -> ApprovalRequest {
        let snapshot = self
            .state(service, id)
            .await
            .expect("resource exists")
            .snapshot();
        let rec = Recommendation {
            id: Recommendation::stable_id(
                &shared::domain::ResourceKey::new(None, "us-east-1", id),
                action,
            ),
            resource_id: id.into(),
            service,
            region: "us-east-1".into(),
            account_id: None,
            owner: None,
            tags: Default::default(),
            current_monthly_cost_usd: None,
            finding: FindingKind::OverProvisioned,
            action,
            target_type: target.map(str::to_string),
            monthly_savings_usd: Some(10.0),
            savings_percent: None,
            confidence: 0.9,
            risk: 1,
            reason: "test".into(),
            alternatives: vec![],
            dependencies: vec![],
            dependency_details: Vec::new(),
            utilization_score: None,
            threshold_version: 1,
            created_at: self.now,
        };
        let (req, _) = shared::approvals::open(
            &self.approvals,
            rec,
            "cycle",
            Some(format!("{}-cycle", self.p)),
            chrono::Duration::days(7),
            self.now,
        )
        .await
        .unwrap();
        let (req, _) = shared::approvals::decide(
            &self.approvals,
            &req.id,
            shared::approvals::DecisionInput::new(ApprovalEvent::Approve, "alice"),
            self.now,
        )
        .await
        .unwrap();
        req.with_resource_snapshot(snapshot)
    }

    async fn execute(&self, req: &ApprovalRequest) -> Outcome {
        self.execute_with(req, &Settings::default()).await
    }

    async fn execute_with(&self, req: &ApprovalRequest, settings: &Settings) -> Outcome {
        execute(
            &self.deps(),
            &req.id,
            None,
            req.resource_snapshot.as_ref(),
            settings,
            "alice",
            self.now,
        )
        .await
        .unwrap()
    }

    async fn executed(&self, req: &ApprovalRequest) -> ExecutionRecord {
        match self.execute(req).await {
            Outcome::Executed(r) => {
                self.audited(&req.id, "approval.execute_succeeded").await;
                r
            }
            other => panic!("not executed: {other:#?}"),
        }
    }

    async fn rolled_back(&self, req: &ApprovalRequest) -> Vec<StepRecord> {
        let out = rollback(
            &self.deps(),
            &req.id,
            "test",
            &Settings::default(),
            "bob",
            self.now,
        )
        .await
        .unwrap();
        assert!(matches!(out, Outcome::RolledBack(_)), "{out:#?}");
        self.audited(&req.id, "approval.rollback_succeeded").await;
        self.executions
            .steps(&req.id, Phase::Rollback)
            .await
            .unwrap()
    }

    /// The transition `action` is in the audit trail with the pre- and post-state.
    async fn audited(&self, id: &str, action: &str) {
        let trail = self
            .audit
            .query(
                &AuditQuery {
                    entity_id: Some(id.into()),
                    ..AuditQuery::default()
                },
                Some(100),
                None,
                Utc::now(),
            )
            .await
            .unwrap()
            .items;
        let entry = trail
            .iter()
            .find(|e| e.action == action)
            .unwrap_or_else(|| panic!("no {action} in {trail:#?}"));
        assert!(entry.pre_state.is_some(), "{action} without pre-state");
        assert!(entry.post_state.is_some(), "{action} without post-state");
        let steps: Vec<_> = trail
            .iter()
            .filter(|e| e.action == "execution.step")
            .collect();
        assert!(!steps.is_empty(), "no execution.step entries");
    }

    fn ec2(&self) -> aws_sdk_ec2::Client {
        aws_sdk_ec2::Client::new(&self.config)
    }
}

fn field(s: &ResourceState, f: Field) -> String {
    s.snapshot().get(&f).cloned().unwrap_or_default()
}

async fn instance(w: &World, ty: &str, tags: &[(&str, &str)]) -> String {
    use aws_sdk_ec2::types::{InstanceType, ResourceType, Tag, TagSpecification};
    let mut spec = TagSpecification::builder().resource_type(ResourceType::Instance);
    for (k, v) in tags {
        spec = spec.tags(Tag::builder().key(*k).value(*v).build());
    }
    // EC2 refuses a tag specification without tags.
    let specs = (!tags.is_empty()).then(|| vec![spec.build()]);
    w.ec2()
        .run_instances()
        .image_id("ami-12c6146b")
        .instance_type(InstanceType::from(ty))
        .min_count(1)
        .max_count(1)
        .set_tag_specifications(specs)
        .send()
        .await
        .unwrap()
        .instances()[0]
        .instance_id()
        .unwrap()
        .to_string()
}

async fn instance_type_and_state(w: &World, id: &str) -> (String, String) {
    let out = w
        .ec2()
        .describe_instances()
        .instance_ids(id)
        .send()
        .await
        .unwrap();
    let i = &out.reservations()[0].instances()[0];
    (
        i.instance_type().unwrap().as_str().to_string(),
        i.state().unwrap().name().unwrap().as_str().to_string(),
    )
}

#[tokio::test]
async fn ec2_rightsizing_stops_changes_the_type_starts_and_rolls_back() {
    let w = World::new().await;
    let id = instance(&w, "m5.xlarge", &[("team", "web")]).await;
    let req = w
        .approved(Service::Ec2, &id, Action::Rightsize, Some("m5.large"))
        .await;

    // The preview's dry runs: EC2 answers DryRunOperation for each step.
    let preview = preview(
        &w.deps(),
        &req,
        None,
        req.resource_snapshot.as_ref(),
        &Settings::default(),
        w.now,
    )
    .await
    .unwrap();
    assert_eq!(preview.dry_runs, vec![DryRun::WouldSucceed; 3]);
    assert_eq!(instance_type_and_state(&w, &id).await.0, "m5.xlarge");

    let before = w.counter.snapshot();
    let record = w.executed(&req).await;
    let made: Vec<_> = w
        .counter
        .snapshot()
        .into_iter()
        .map(|(op, n)| (op.1.clone(), n - before.get(&op).copied().unwrap_or(0)))
        .filter(|(_, n)| *n > 0)
        .collect();
    let calls: u64 = made.iter().map(|(_, n)| n).sum();
    let minimum = AwsActuator::minimum_calls(Service::Ec2, &record.plan.steps);
    eprintln!("EC2 rightsizing: {calls} AWS calls per execution (minimum {minimum}): {made:?}");
    assert_eq!(calls, minimum, "{made:?}");
    assert_eq!(
        instance_type_and_state(&w, &id).await,
        ("m5.large".into(), "running".into())
    );
    let steps = w.executions.steps(&req.id, Phase::Execute).await.unwrap();
    assert_eq!(steps.len(), 3);
    assert!(steps.iter().all(|s| s.applied.aws_request_id.is_some()));

    w.rolled_back(&req).await;
    assert_eq!(
        instance_type_and_state(&w, &id).await,
        ("m5.xlarge".into(), "running".into())
    );
}

#[tokio::test]
async fn ec2_stop_and_its_rollback_starts_it_again() {
    let w = World::new().await;
    let id = instance(&w, "t3.large", &[]).await;
    let req = w.approved(Service::Ec2, &id, Action::Stop, None).await;
    w.executed(&req).await;
    assert_eq!(instance_type_and_state(&w, &id).await.1, "stopped");
    w.rolled_back(&req).await;
    assert_eq!(instance_type_and_state(&w, &id).await.1, "running");
}

#[tokio::test]
async fn ec2_termination_keeps_a_final_image_and_its_rollback_launches_a_new_instance() {
    let w = World::new().await;
    let id = instance(&w, "m5.xlarge", &[("team", "batch"), ("owner", "ana")]).await;
    let req = w.approved(Service::Ec2, &id, Action::Terminate, None).await;
    let record = w.executed(&req).await;
    assert!(record.plan.intended.gone);
    assert_eq!(instance_type_and_state(&w, &id).await.1, "terminated");
    let steps = w.executions.steps(&req.id, Phase::Execute).await.unwrap();
    let image = steps[0].applied.output.clone().expect("image id recorded");
    let images = w
        .ec2()
        .describe_images()
        .image_ids(&image)
        .send()
        .await
        .unwrap();
    assert_eq!(images.images()[0].state().unwrap().as_str(), "available");

    let back = w.rolled_back(&req).await;
    let relaunch = back
        .iter()
        .find(|s| matches!(s.step, Step::Ec2RunFromImage { .. }))
        .expect("a relaunch step");
    let new_id = relaunch.applied.output.clone().expect("new id recorded");
    assert_ne!(new_id, id);
    assert!(relaunch.caveat.as_deref().unwrap().contains("NEW instance"));
    let out = w
        .ec2()
        .describe_instances()
        .instance_ids(&new_id)
        .send()
        .await
        .unwrap();
    let i = &out.reservations()[0].instances()[0];
    assert_eq!(i.image_id(), Some(image.as_str()));
    assert_eq!(i.instance_type().unwrap().as_str(), "m5.xlarge");
    assert_eq!(i.state().unwrap().name().unwrap().as_str(), "running");
    let tags: Vec<_> = i
        .tags()
        .iter()
        .map(|t| (t.key().unwrap(), t.value().unwrap()))
        .collect();
    assert!(tags.contains(&("team", "batch")), "{tags:?}");
    assert!(tags.contains(&("finops:source-instance", id.as_str())));
}

/// The relaunch after a rolled-back termination keeps what the instance ran
/// with: its IAM instance profile and its key pair.
#[tokio::test]
async fn a_relaunched_instance_keeps_its_instance_profile_and_key_pair() {
    let w = World::new().await;
    let iam = aws_sdk_iam::Client::new(&w.config);
    let profile = iam
        .create_instance_profile()
        .instance_profile_name(format!("{}-app", w.p))
        .send()
        .await
        .unwrap()
        .instance_profile
        .unwrap()
        .arn;
    let key = format!("{}-ops", w.p);
    w.ec2()
        .create_key_pair()
        .key_name(&key)
        .send()
        .await
        .unwrap();
    let id = w
        .ec2()
        .run_instances()
        .image_id("ami-760aaa0f")
        .instance_type(aws_sdk_ec2::types::InstanceType::M5Large)
        .min_count(1)
        .max_count(1)
        .key_name(&key)
        .iam_instance_profile(
            aws_sdk_ec2::types::IamInstanceProfileSpecification::builder()
                .arn(&profile)
                .build(),
        )
        .send()
        .await
        .unwrap()
        .instances()[0]
        .instance_id()
        .unwrap()
        .to_string();
    let req = w.approved(Service::Ec2, &id, Action::Terminate, None).await;
    w.executed(&req).await;
    let back = w.rolled_back(&req).await;
    let new_id = back
        .iter()
        .find(|s| matches!(s.step, Step::Ec2RunFromImage { .. }))
        .and_then(|s| s.applied.output.clone())
        .expect("the new instance's id");
    let out = w
        .ec2()
        .describe_instances()
        .instance_ids(&new_id)
        .send()
        .await
        .unwrap();
    let i = &out.reservations()[0].instances()[0];
    assert_eq!(i.key_name(), Some(key.as_str()));
    assert_eq!(
        i.iam_instance_profile().and_then(|p| p.arn()),
        Some(profile.as_str())
    );
}

async fn volume(w: &World, ty: &str, size: i32) -> String {
    use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification, VolumeType};
    w.ec2()
        .create_volume()
        .availability_zone("us-east-1a")
        .size(size)
        .volume_type(VolumeType::from(ty))
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::Volume)
                .tags(Tag::builder().key("owner").value("data").build())
                .build(),
        )
        .send()
        .await
        .unwrap()
        .volume_id()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn ebs_unattached_volume_is_snapshotted_and_deleted_and_recreated_on_rollback() {
    let w = World::new().await;
    let id = volume(&w, "gp2", 100).await;
    let req = w
        .approved(Service::Ebs, &id, Action::DeleteUnused, None)
        .await;
    w.executed(&req).await;
    assert!(w.state(Service::Ebs, &id).await.is_none(), "volume deleted");
    let steps = w.executions.steps(&req.id, Phase::Execute).await.unwrap();
    let snap = steps[0].applied.output.clone().expect("snapshot id");
    let snaps = w
        .ec2()
        .describe_snapshots()
        .snapshot_ids(&snap)
        .send()
        .await
        .unwrap();
    assert_eq!(snaps.snapshots()[0].volume_id(), Some(id.as_str()));

    let back = w.rolled_back(&req).await;
    let new_id = back
        .iter()
        .find_map(|s| match s.step {
            Step::EbsCreateFromSnapshot { .. } => s.applied.output.clone(),
            _ => None,
        })
        .expect("new volume id recorded");
    let restored = w.state(Service::Ebs, &new_id).await.expect("new volume");
    assert_eq!(field(&restored, Field::Type), "gp2");
    assert_eq!(field(&restored, Field::Size), "100");
    assert_eq!(field(&restored, Field::State), "available");
    assert_eq!(restored.tags.get("owner").map(String::as_str), Some("data"));
    let v = w
        .ec2()
        .describe_volumes()
        .volume_ids(&new_id)
        .send()
        .await
        .unwrap();
    assert_eq!(v.volumes()[0].snapshot_id(), Some(snap.as_str()));
}

#[tokio::test]
async fn ebs_gp2_becomes_gp3_and_back() {
    let w = World::new().await;
    let id = volume(&w, "gp2", 50).await;
    let req = w
        .approved(Service::Ebs, &id, Action::ChangeStorageClass, Some("gp3"))
        .await;
    w.executed(&req).await;
    let now = w.state(Service::Ebs, &id).await.unwrap();
    assert_eq!(field(&now, Field::Type), "gp3");
    w.rolled_back(&req).await;
    let back = w.state(Service::Ebs, &id).await.unwrap();
    assert_eq!(field(&back, Field::Type), "gp2");
}

async fn db(w: &World, class: &str) -> String {
    let id = format!("{}-db", w.p);
    aws_sdk_rds::Client::new(&w.config)
        .create_db_instance()
        .db_instance_identifier(&id)
        .db_instance_class(class)
        .engine("postgres")
        .allocated_storage(20)
        .master_username("finops")
        .master_user_password("not-a-secret-1")
        .send()
        .await
        .unwrap();
    id
}

#[tokio::test]
async fn rds_stop_and_start_again() {
    let w = World::new().await;
    let id = db(&w, "db.m5.large").await;
    let req = w.approved(Service::Rds, &id, Action::Stop, None).await;
    w.executed(&req).await;
    let rds = aws_sdk_rds::Client::new(&w.config);
    let status = || async {
        rds.describe_db_instances()
            .db_instance_identifier(&id)
            .send()
            .await
            .unwrap()
            .db_instances()[0]
            .db_instance_status()
            .unwrap()
            .to_string()
    };
    assert_eq!(status().await, "stopped");
    w.rolled_back(&req).await;
    assert_eq!(status().await, "available");
}

#[tokio::test]
async fn rds_class_changes_now_and_back() {
    let w = World::new().await;
    let id = db(&w, "db.m5.xlarge").await;
    let req = w
        .approved(Service::Rds, &id, Action::Rightsize, Some("db.m5.large"))
        .await;
    w.executed(&req).await;
    let class = || async {
        aws_sdk_rds::Client::new(&w.config)
            .describe_db_instances()
            .db_instance_identifier(&id)
            .send()
            .await
            .unwrap()
            .db_instances()[0]
            .db_instance_class()
            .unwrap()
            .to_string()
    };
    assert_eq!(class().await, "db.m5.large");
    w.rolled_back(&req).await;
    assert_eq!(class().await, "db.m5.xlarge");
}

/// A class change for the maintenance window: AWS keeps the class and shows
/// the new one as pending (the emulator does too, `rds_pending.py`); the
/// execution counts that as done, and its rollback withdraws the change.
#[tokio::test]
async fn rds_class_change_waits_for_the_maintenance_window_and_is_withdrawn() {
    let w = World::new().await;
    let id = db(&w, "db.m5.xlarge").await;
    let req = w
        .approved(Service::Rds, &id, Action::Rightsize, Some("db.m5.large"))
        .await;
    let settings = Settings {
        plan: PlanOptions {
            rds_apply_at: ApplyAt::MaintenanceWindow,
        },
        ..Settings::default()
    };
    let record = match w.execute_with(&req, &settings).await {
        Outcome::Executed(r) => r,
        other => panic!("not executed: {other:#?}"),
    };
    assert!(record.mismatches.is_empty(), "{record:#?}");
    let shown = || async {
        let out = aws_sdk_rds::Client::new(&w.config)
            .describe_db_instances()
            .db_instance_identifier(&id)
            .send()
            .await
            .unwrap();
        let d = out.db_instances()[0].clone();
        (
            d.db_instance_class().unwrap().to_string(),
            d.pending_modified_values()
                .and_then(|p| p.db_instance_class())
                .map(str::to_string),
        )
    };
    assert_eq!(
        shown().await,
        ("db.m5.xlarge".to_string(), Some("db.m5.large".to_string()))
    );
    w.rolled_back(&req).await;
    assert_eq!(shown().await, ("db.m5.xlarge".to_string(), None));
}

#[tokio::test]
async fn elasticache_node_type_changes_and_back() {
    let w = World::new().await;
    let id = format!("{}-cache", w.p);
    let ec = aws_sdk_elasticache::Client::new(&w.config);
    ec.create_cache_cluster()
        .cache_cluster_id(&id)
        .cache_node_type("cache.m5.xlarge")
        .engine("redis")
        .num_cache_nodes(1)
        .send()
        .await
        .unwrap();
    let req = w
        .approved(
            Service::ElastiCache,
            &id,
            Action::Rightsize,
            Some("cache.m5.large"),
        )
        .await;
    w.executed(&req).await;
    let node_type = || async {
        ec.describe_cache_clusters()
            .cache_cluster_id(&id)
            .send()
            .await
            .unwrap()
            .cache_clusters()[0]
            .cache_node_type()
            .unwrap()
            .to_string()
    };
    assert_eq!(node_type().await, "cache.m5.large");
    w.rolled_back(&req).await;
    assert_eq!(node_type().await, "cache.m5.xlarge");
}

/// An empty zip archive (moto stores the package, never runs it).
fn zip() -> Vec<u8> {
    let mut v = vec![0x50, 0x4b, 0x05, 0x06];
    v.extend([0u8; 18]);
    v
}

#[tokio::test]
async fn lambda_memory_is_set_and_restored() {
    let w = World::new().await;
    let name = format!("{}-fn", w.p);
    let role = aws_sdk_iam::Client::new(&w.config)
        .create_role()
        .role_name(format!("{}-role", w.p))
        .assume_role_policy_document(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#,
        )
        .send()
        .await
        .unwrap()
        .role
        .unwrap()
        .arn;
    let lambda = aws_sdk_lambda::Client::new(&w.config);
    lambda
        .create_function()
        .function_name(&name)
        .runtime(aws_sdk_lambda::types::Runtime::Providedal2023)
        .role(role)
        .handler("bootstrap")
        .memory_size(1024)
        .code(
            aws_sdk_lambda::types::FunctionCode::builder()
                .zip_file(aws_sdk_lambda::primitives::Blob::new(zip()))
                .build(),
        )
        .send()
        .await
        .unwrap();
    let req = w
        .approved(Service::Lambda, &name, Action::ReduceMemory, Some("512 MB"))
        .await;
    w.executed(&req).await;
    let memory = || async {
        lambda
            .get_function_configuration()
            .function_name(&name)
            .send()
            .await
            .unwrap()
            .memory_size()
            .unwrap()
    };
    assert_eq!(memory().await, 512);
    w.rolled_back(&req).await;
    assert_eq!(memory().await, 1024);
}

/// A cluster, a task definition of 1024 CPU / 2048 MiB and a service of 3 tasks.
async fn ecs_service(w: &World) -> (aws_sdk_ecs::Client, String, String) {
    use aws_sdk_ecs::types::{Compatibility, ContainerDefinition, LaunchType, Tag};
    let ecs = aws_sdk_ecs::Client::new(&w.config);
    let cluster = format!("{}-prod", w.p);
    ecs.create_cluster()
        .cluster_name(&cluster)
        .send()
        .await
        .unwrap();
    ecs.register_task_definition()
        .family(format!("{}-web", w.p))
        .cpu("1024")
        .memory("2048")
        .requires_compatibilities(Compatibility::Fargate)
        .container_definitions(
            ContainerDefinition::builder()
                .name("web")
                .image("nginx")
                .essential(true)
                .build(),
        )
        .tags(Tag::builder().key("team").value("web").build())
        .send()
        .await
        .unwrap();
    ecs.create_service()
        .cluster(&cluster)
        .service_name("api")
        .task_definition(format!("{}-web", w.p))
        .desired_count(3)
        .launch_type(LaunchType::Fargate)
        .send()
        .await
        .unwrap();
    let id = format!("{cluster}/api");
    (ecs, cluster, id)
}

#[tokio::test]
async fn ecs_desired_count_is_set_and_restored() {
    let w = World::new().await;
    let (ecs, cluster, id) = ecs_service(&w).await;
    let req = w
        .approved(
            Service::Ecs,
            &id,
            Action::ReduceTaskCount,
            Some("desiredCount 1"),
        )
        .await;
    w.executed(&req).await;
    let desired = || async {
        ecs.describe_services()
            .cluster(&cluster)
            .services("api")
            .send()
            .await
            .unwrap()
            .services()[0]
            .desired_count()
    };
    assert_eq!(desired().await, 1);
    w.rolled_back(&req).await;
    assert_eq!(desired().await, 3);
}

#[tokio::test]
async fn ecs_task_size_is_a_new_revision_and_the_rollback_points_back_at_the_old_one() {
    let w = World::new().await;
    let (ecs, cluster, id) = ecs_service(&w).await;
    let before = w.state(Service::Ecs, &id).await.unwrap();
    let old = field(&before, Field::TaskDefinition);
    let req = w
        .approved(
            Service::Ecs,
            &id,
            Action::ShrinkTasks,
            Some("cpu 512 / memory 1024 MB"),
        )
        .await;
    w.executed(&req).await;
    let used = || async {
        ecs.describe_services()
            .cluster(&cluster)
            .services("api")
            .send()
            .await
            .unwrap()
            .services()[0]
            .task_definition()
            .unwrap()
            .to_string()
    };
    let new = used().await;
    assert_ne!(new, old);
    let def = ecs
        .describe_task_definition()
        .task_definition(&new)
        .include(aws_sdk_ecs::types::TaskDefinitionField::Tags)
        .send()
        .await
        .unwrap();
    let d = def.task_definition().unwrap();
    assert_eq!((d.cpu(), d.memory()), (Some("512"), Some("1024")));
    assert_eq!(d.container_definitions()[0].image(), Some("nginx"));
    assert!(def.tags().iter().any(|t| t.key() == Some("team")));
    w.rolled_back(&req).await;
    assert_eq!(used().await, old);
}

async fn table(w: &World, read: i64, write: i64) -> String {
    use aws_sdk_dynamodb::types::*;
    let name = format!("{}-orders", w.p);
    aws_sdk_dynamodb::Client::new(&w.config)
        .create_table()
        .table_name(&name)
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .provisioned_throughput(
            ProvisionedThroughput::builder()
                .read_capacity_units(read)
                .write_capacity_units(write)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    name
}

async fn table_facts(w: &World, name: &str) -> (String, i64, i64) {
    let t = aws_sdk_dynamodb::Client::new(&w.config)
        .describe_table()
        .table_name(name)
        .send()
        .await
        .unwrap()
        .table
        .unwrap();
    let p = t.provisioned_throughput().unwrap();
    (
        t.billing_mode_summary()
            .and_then(|b| b.billing_mode())
            .map_or("PROVISIONED".into(), |m| m.as_str().to_string()),
        p.read_capacity_units().unwrap_or_default(),
        p.write_capacity_units().unwrap_or_default(),
    )
}

#[tokio::test]
async fn dynamodb_goes_on_demand_and_back_to_its_capacity() {
    let w = World::new().await;
    let name = table(&w, 50, 20).await;
    let req = w
        .approved(Service::DynamoDb, &name, Action::SwitchToOnDemand, None)
        .await;
    w.executed(&req).await;
    assert_eq!(table_facts(&w, &name).await.0, "PAY_PER_REQUEST");
    w.rolled_back(&req).await;
    assert_eq!(table_facts(&w, &name).await, ("PROVISIONED".into(), 50, 20));
}

#[tokio::test]
async fn dynamodb_capacity_is_lowered_and_restored() {
    let w = World::new().await;
    let name = table(&w, 50, 20).await;
    let req = w
        .approved(
            Service::DynamoDb,
            &name,
            Action::LowerProvisionedCapacity,
            Some("10 RCU / 5 WCU"),
        )
        .await;
    w.executed(&req).await;
    assert_eq!(table_facts(&w, &name).await, ("PROVISIONED".into(), 10, 5));
    w.rolled_back(&req).await;
    assert_eq!(table_facts(&w, &name).await, ("PROVISIONED".into(), 50, 20));
}

#[tokio::test]
async fn s3_lifecycle_rule_is_added_next_to_the_users_and_only_ours_is_removed() {
    use aws_sdk_s3::types::*;
    let w = World::new().await;
    let bucket = format!("{}-logs", w.p);
    let s3 = aws_sdk_s3::Client::new(&w.config);
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    s3.put_bucket_lifecycle_configuration()
        .bucket(&bucket)
        .lifecycle_configuration(
            BucketLifecycleConfiguration::builder()
                .rules(
                    LifecycleRule::builder()
                        .id("user-expire-tmp")
                        .status(ExpirationStatus::Enabled)
                        .filter(LifecycleRuleFilter::builder().prefix("tmp/").build())
                        .expiration(LifecycleExpiration::builder().days(7).build())
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let req = w
        .approved(
            Service::S3,
            &bucket,
            Action::AddLifecycleRule,
            Some("STANDARD_IA"),
        )
        .await;
    w.executed(&req).await;
    let rules = || async {
        s3.get_bucket_lifecycle_configuration()
            .bucket(&bucket)
            .send()
            .await
            .unwrap()
            .rules()
            .to_vec()
    };
    let now = rules().await;
    assert_eq!(now.len(), 2, "{now:#?}");
    let user = now
        .iter()
        .find(|r| r.id() == Some("user-expire-tmp"))
        .unwrap();
    assert_eq!(user.expiration().and_then(|e| e.days()), Some(7));
    assert_eq!(user.filter().and_then(|f| f.prefix()), Some("tmp/"));
    let ours = now
        .iter()
        .find(|r| r.id() != Some("user-expire-tmp"))
        .unwrap();
    assert!(ours.id().unwrap().starts_with("finops-"));
    assert_eq!(
        ours.transitions()[0].storage_class(),
        Some(&TransitionStorageClass::StandardIa)
    );
    w.rolled_back(&req).await;
    let back = rules().await;
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].id(), Some("user-expire-tmp"));
}

#[tokio::test]
async fn a_drifted_instance_is_refused_and_left_as_it_is() {
    let w = World::new().await;
    let id = instance(&w, "m5.xlarge", &[]).await;
    let req = w
        .approved(Service::Ec2, &id, Action::Rightsize, Some("m5.large"))
        .await;
    // Someone changes the type after the recommendation was made.
    let ec2 = w.ec2();
    ec2.stop_instances().instance_ids(&id).send().await.unwrap();
    ec2.modify_instance_attribute()
        .instance_id(&id)
        .instance_type(
            aws_sdk_ec2::types::AttributeValue::builder()
                .value("m5.2xlarge")
                .build(),
        )
        .send()
        .await
        .unwrap();
    ec2.start_instances()
        .instance_ids(&id)
        .send()
        .await
        .unwrap();
    let before = w.counter.snapshot();
    match w.execute(&req).await {
        Outcome::Refused(Refusal::Drifted { fields }) => {
            assert!(fields.iter().any(|d| d.field == Field::Type), "{fields:?}")
        }
        other => panic!("{other:#?}"),
    }
    // Only the pre-state was read: no change call went out.
    let after = w.counter.snapshot();
    let changes: Vec<_> = after
        .iter()
        .filter(|(k, n)| before.get(*k) != Some(n) && !k.1.starts_with("Describe"))
        .collect();
    assert!(changes.is_empty(), "{changes:?}");
    assert_eq!(
        instance_type_and_state(&w, &id).await,
        ("m5.2xlarge".into(), "running".into())
    );
    assert_eq!(
        w.approvals.get(&req.id).await.unwrap().unwrap().status,
        ApprovalStatus::Failed
    );
}

#[tokio::test]
async fn the_exclusion_tag_is_read_again_at_execution_time() {
    let w = World::new().await;
    let id = instance(&w, "m5.xlarge", &[]).await;
    let req = w.approved(Service::Ec2, &id, Action::Stop, None).await;
    w.ec2()
        .create_tags()
        .resources(&id)
        .tags(
            aws_sdk_ec2::types::Tag::builder()
                .key(EXCLUSION_TAG)
                .value("true")
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert!(matches!(
        w.execute(&req).await,
        Outcome::Refused(Refusal::Excluded { .. })
    ));
    assert_eq!(instance_type_and_state(&w, &id).await.1, "running");
}

/// The same step under one key, as a redelivery after a crash calls it.
async fn twice(
    w: &World,
    target: &Target,
    step: &Step,
    key: &IdempotencyKey,
    executed: &[StepRecord],
) -> (Applied, Applied) {
    let call = StepCall {
        target,
        step,
        key,
        earlier: &[],
        executed,
    };
    (
        w.actuator.apply(call).await.unwrap(),
        w.actuator.apply(call).await.unwrap(),
    )
}

fn completed(step: Step, output: &str) -> StepRecord {
    let now = Utc::now();
    StepRecord {
        request_id: "req".into(),
        phase: Phase::Execute,
        index: 0,
        key: IdempotencyKey::new("req", Phase::Execute, 0),
        step,
        status: StepStatus::Completed,
        lease_until: now,
        started_at: now,
        finished_at: Some(now),
        applied: Applied {
            aws_request_id: None,
            output: Some(output.into()),
        },
        error: None,
        caveat: None,
    }
}

#[tokio::test]
async fn a_step_applied_twice_under_one_key_creates_once() {
    let w = World::new().await;
    let request = format!("{}-req", w.p);
    let key = |i| IdempotencyKey::new(&request, Phase::Execute, i);

    // A final snapshot: one, however often the step runs.
    let vol = volume(&w, "gp2", 10).await;
    let t = w.target(Service::Ebs, &vol);
    let (a, b) = twice(&w, &t, &Step::EbsSnapshot, &key(0), &[]).await;
    assert_eq!(a.output, b.output);
    let snaps = w
        .ec2()
        .describe_snapshots()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("volume-id")
                .values(&vol)
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(snaps.snapshots().len(), 1);

    // The volume recreated from it: one (CreateVolume's client token).
    let made = [completed(Step::EbsSnapshot, a.output.as_deref().unwrap())];
    let restore = Step::EbsCreateFromSnapshot {
        volume_type: "gp2".into(),
        size_gib: 10,
        availability_zone: "us-east-1a".into(),
    };
    let rk = IdempotencyKey::new(&request, Phase::Rollback, 0);
    let (a, b) = twice(&w, &t, &restore, &rk, &made).await;
    assert_eq!(a.output, b.output);

    // A final image: one.
    let id = instance(&w, "m5.large", &[]).await;
    let t = w.target(Service::Ec2, &id);
    let image = Step::Ec2CreateImage {
        name: format!("finops-final-{id}-{request}"),
    };
    let (a, b) = twice(&w, &t, &image, &key(1), &[]).await;
    assert_eq!(a.output, b.output);
    let images = w
        .ec2()
        .describe_images()
        .owners("self")
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("name")
                .values(format!("finops-final-{id}-{request}"))
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(images.images().len(), 1);

    // The instance relaunched from it: one (RunInstances' client token).
    let made = [completed(image, a.output.as_deref().unwrap())];
    let relaunch = Step::Ec2RunFromImage {
        instance_type: "m5.large".into(),
    };
    let (a, b) = twice(&w, &t, &relaunch, &rk, &made).await;
    assert_eq!(a.output, b.output);

    // A set-to change: the second call finds it done.
    let (a, b) = twice(&w, &t, &Step::Ec2Stop, &key(2), &[]).await;
    assert!(a.aws_request_id.is_some() && b.aws_request_id.is_some());
    assert_eq!(instance_type_and_state(&w, &id).await.1, "stopped");
}
