//! The execution model of SPEC section 10, pure: what an approved
//! recommendation becomes (a plan of typed steps over the live pre-state),
//! the checks before any change (drift, exclusion, window, cap, breaker),
//! the verification of the post-state and the rollback. No clock, no I/O:
//! the use case in [`crate::execution`] reads, decides here, then acts.

pub mod checks;
pub mod plan;
pub mod rollback;
pub mod state;
pub mod window;

pub use checks::{
    drift, hour_of, AccountHealth, Breaker, BreakerDecision, CapDecision, ChangeCap, Drift,
    HourCounts,
};
pub use plan::{
    is_graviton, plan, verify, ApplyAt, ExecutionPlan, IdempotencyKey, Intended, Mismatch,
    NotExecutable, Phase, PlanOptions, Step,
};
pub use rollback::{rollback_plan, undo, Undo};
pub use state::expected_from;
pub use state::{
    BillingMode, Ec2State, Field, ResourceDetails, ResourceState, ServiceStatus, StateSnapshot,
    StorageClass, VolumeState, EXCLUSION_TAG,
};
pub use window::{Schedule, Window, WindowDecision, WindowError, WINDOW_TAG};

#[cfg(test)]
pub(crate) mod tests {
    use super::state::tests::ec2;
    use super::*;
    use crate::domain::{Action, FindingKind, Recommendation, Service};
    use chrono::{DateTime, Utc};
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    pub fn recommendation(action: Action, target: Option<&str>) -> Recommendation {
        Recommendation {
            id: Recommendation::stable_id(
                &crate::domain::ResourceKey::new(None, "us-east-1", "r-1"),
                action,
            ),
            resource_id: "r-1".into(),
            service: Service::Ec2,
            region: "us-east-1".into(),
            account_id: None,
            owner: None,
            tags: Default::default(),
            current_monthly_cost_usd: None,
            finding: FindingKind::Idle,
            action,
            target_type: target.map(str::to_string),
            monthly_savings_usd: Some(10.0),
            savings_percent: None,
            confidence: 0.9,
            risk: 1,
            reason: "idle".into(),
            alternatives: vec![],
            dependencies: vec![],
            dependency_details: Vec::new(),
            utilization_score: None,
            threshold_version: 1,
            created_at: DateTime::<Utc>::MIN_UTC,
        }
    }

    fn state(details: ResourceDetails) -> ResourceState {
        ResourceState {
            resource_id: "r-1".into(),
            region: "us-east-1".into(),
            account_id: None,
            tags: BTreeMap::new(),
            details,
        }
    }

    fn planned(
        action: Action,
        target: Option<&str>,
        details: ResourceDetails,
    ) -> Result<ExecutionPlan, NotExecutable> {
        plan(
            "req-1",
            &recommendation(action, target),
            &state(details),
            PlanOptions::default(),
        )
    }

    fn ops(p: &ExecutionPlan) -> Vec<String> {
        p.steps.iter().map(Step::op).collect()
    }

    #[test]
    fn each_service_action_has_its_steps() {
        let running = ec2("r-1", "m5.xlarge", Ec2State::Running).details;
        let p = planned(Action::Rightsize, Some("m5.large"), running.clone()).unwrap();
        assert_eq!(ops(&p), ["ec2_stop", "ec2_modify_type", "ec2_start"]);
        assert_eq!(p.intended.fields[&Field::Type], "m5.large");
        assert_eq!(p.intended.fields[&Field::State], "running");
        assert_eq!(
            ops(&planned(Action::Stop, None, running.clone()).unwrap()),
            ["ec2_stop"]
        );
        let t = planned(Action::Terminate, None, running.clone()).unwrap();
        assert_eq!(ops(&t), ["ec2_create_image", "ec2_terminate"]);
        assert!(t.intended.gone);
        let vol = ResourceDetails::EbsVolume {
            volume_type: "gp2".into(),
            size_gib: 100,
            iops: None,
            throughput: None,
            state: VolumeState::Available,
            availability_zone: "us-east-1a".into(),
        };
        assert_eq!(
            ops(&planned(Action::DeleteUnused, None, vol.clone()).unwrap()),
            ["ebs_snapshot", "ebs_delete"]
        );
        assert_eq!(
            ops(&planned(Action::Rightsize, Some("gp3"), vol).unwrap()),
            ["ebs_modify_type"]
        );
        let db = ResourceDetails::RdsInstance {
            instance_class: "db.m5.large".into(),
            status: ServiceStatus::Available,
            pending_instance_class: None,
        };
        assert_eq!(
            ops(&planned(Action::Stop, None, db.clone()).unwrap()),
            ["rds_stop"]
        );
        let later = plan(
            "req-1",
            &recommendation(Action::Rightsize, Some("db.t3.medium")),
            &state(db.clone()),
            PlanOptions {
                rds_apply_at: ApplyAt::MaintenanceWindow,
            },
        )
        .unwrap();
        assert_eq!(later.intended.fields[&Field::Type], "db.m5.large");
        assert_eq!(later.intended.fields[&Field::PendingType], "db.t3.medium");
        assert_eq!(
            ops(&planned(Action::Terminate, None, db).unwrap()),
            ["rds_delete_with_final_snapshot"]
        );
        let cache = ResourceDetails::CacheCluster {
            node_type: "cache.m5.large".into(),
            num_nodes: 2,
            status: ServiceStatus::Available,
        };
        assert_eq!(
            ops(&planned(Action::Rightsize, Some("cache.t3.medium"), cache).unwrap()),
            ["cache_modify_node_type"]
        );
        let f = ResourceDetails::LambdaFunction { memory_mb: 1024 };
        let m = planned(Action::ReduceMemory, Some("512 MB"), f).unwrap();
        assert_eq!(
            m.steps,
            [Step::LambdaSetMemory {
                from: 1024,
                to: 512
            }]
        );
        let svc = ResourceDetails::EcsService {
            cluster: "c".into(),
            desired_count: 4,
            task_definition: "arn:td:1".into(),
            task_cpu: Some(1024),
            task_memory_mb: Some(2048),
        };
        assert_eq!(
            planned(Action::ReduceTaskCount, Some("desiredCount 2"), svc.clone())
                .unwrap()
                .steps,
            [Step::EcsSetDesiredCount {
                cluster: "c".into(),
                from: 4,
                to: 2
            }]
        );
        assert_eq!(
            ops(&planned(Action::ShrinkTasks, Some("cpu 512 / memory 1024 MB"), svc).unwrap()),
            ["ecs_register_task_size", "ecs_use_task_definition"]
        );
        let table = ResourceDetails::DynamoDbTable {
            billing_mode: BillingMode::Provisioned,
            read_capacity: Some(100),
            write_capacity: Some(50),
        };
        assert_eq!(
            ops(&planned(
                Action::SwitchToOnDemand,
                Some("PAY_PER_REQUEST"),
                table.clone()
            )
            .unwrap()),
            ["dynamo_set_billing_mode"]
        );
        assert_eq!(
            planned(
                Action::LowerProvisionedCapacity,
                Some("10 RCU / 5 WCU"),
                table
            )
            .unwrap()
            .steps,
            [Step::DynamoSetCapacity {
                from_read: 100,
                from_write: 50,
                to_read: 10,
                to_write: 5
            }]
        );
        let bucket = ResourceDetails::S3Bucket {
            lifecycle_rule_ids: vec!["users-own".into()],
        };
        let s3 = planned(Action::AddLifecycleRule, Some("GLACIER_IR"), bucket).unwrap();
        assert_eq!(ops(&s3), ["s3_add_lifecycle_rule"]);
        // The user's rule stays; ours is added.
        assert_eq!(
            s3.intended.fields[&Field::LifecycleRules],
            "finops-req-1,users-own"
        );
    }

    #[test]
    fn what_the_system_does_not_do_says_why() {
        let f = ResourceDetails::LambdaFunction { memory_mb: 1024 };
        let e = planned(Action::InvestigateErrors, None, f.clone()).unwrap_err();
        assert!(matches!(e, NotExecutable::NoAwsAction(_)));
        assert!(matches!(
            planned(Action::ReduceMemory, None, f.clone()),
            Err(NotExecutable::NoTarget(_))
        ));
        assert!(matches!(
            planned(Action::ReduceMemory, Some("lots"), f),
            Err(NotExecutable::BadTarget(_))
        ));
        let x86 = ec2("r-1", "m5.xlarge", Ec2State::Running).details;
        assert!(matches!(
            planned(Action::MoveToGraviton, Some("m6g.xlarge"), x86.clone()),
            Err(NotExecutable::Unsupported(_))
        ));
        let stopped = ec2("r-1", "m5.xlarge", Ec2State::Stopped).details;
        assert!(matches!(
            planned(Action::Stop, None, stopped),
            Err(NotExecutable::Precondition(_))
        ));
        let attached = ResourceDetails::EbsVolume {
            volume_type: "gp2".into(),
            size_gib: 100,
            iops: None,
            throughput: None,
            state: VolumeState::InUse,
            availability_zone: "us-east-1a".into(),
        };
        assert!(matches!(
            planned(Action::DeleteUnused, None, attached),
            Err(NotExecutable::Precondition(_))
        ));
        let cache = ResourceDetails::CacheCluster {
            node_type: "cache.m5.large".into(),
            num_nodes: 2,
            status: ServiceStatus::Available,
        };
        assert!(matches!(
            planned(Action::Stop, None, cache),
            Err(NotExecutable::Unsupported(_))
        ));
        assert!(
            is_graviton("m6g.large") && is_graviton("db.r7g.xlarge") && is_graviton("c7gn.large")
        );
        assert!(!is_graviton("m5.large") && !is_graviton("g5.xlarge") && !is_graviton("m7i.large"));
    }

    #[test]
    fn verification_compares_the_post_state_with_the_intent() {
        let pre = ec2("r-1", "m5.xlarge", Ec2State::Running);
        let p = plan(
            "req-1",
            &recommendation(Action::Rightsize, Some("m5.large")),
            &pre,
            PlanOptions::default(),
        )
        .unwrap();
        assert_eq!(verify(&p.intended, Some(&pre)).len(), 1);
        let post = ec2("r-1", "m5.large", Ec2State::Running);
        assert!(verify(&p.intended, Some(&post)).is_empty());
        assert_eq!(verify(&p.intended, None).len(), 1);
        let t = plan(
            "req-1",
            &recommendation(Action::Terminate, None),
            &pre,
            PlanOptions::default(),
        )
        .unwrap();
        assert!(verify(
            &t.intended,
            Some(&ec2("r-1", "m5.xlarge", Ec2State::Terminated))
        )
        .is_empty());
        assert!(verify(&t.intended, None).is_empty());
        assert_eq!(verify(&t.intended, Some(&pre)).len(), 1);
    }

    #[test]
    fn idempotency_keys_are_stable_per_request_phase_and_step() {
        let a = IdempotencyKey::new("req-1", Phase::Execute, 2);
        assert_eq!(a, IdempotencyKey::new("req-1", Phase::Execute, 2));
        assert_ne!(a, IdempotencyKey::new("req-1", Phase::Rollback, 2));
        assert_ne!(a, IdempotencyKey::new("req-1", Phase::Execute, 3));
        assert_eq!(
            a.client_token(),
            IdempotencyKey::new("req-1", Phase::Execute, 2).client_token()
        );
        assert_eq!(a.client_token().len(), 36);
    }

    fn any_details() -> impl Strategy<Value = ResourceDetails> {
        let ty = proptest::sample::select(vec![
            "m5.large",
            "m6g.large",
            "t3.micro",
            "db.m5.large",
            "cache.t4g.small",
            "x",
        ]);
        prop_oneof![
            (
                ty.clone(),
                proptest::sample::select(vec![
                    Ec2State::Running,
                    Ec2State::Stopped,
                    Ec2State::Pending,
                    Ec2State::Terminated
                ])
            )
                .prop_map(|(t, s)| ResourceDetails::Ec2Instance {
                    instance_type: t.into(),
                    state: s
                }),
            (
                any::<u32>(),
                proptest::sample::select(vec![VolumeState::Available, VolumeState::InUse])
            )
                .prop_map(|(g, s)| ResourceDetails::EbsVolume {
                    volume_type: "gp2".into(),
                    size_gib: g,
                    iops: None,
                    throughput: None,
                    state: s,
                    availability_zone: "a".into()
                }),
            ty.clone().prop_map(|t| ResourceDetails::RdsInstance {
                instance_class: t.into(),
                status: ServiceStatus::Available,
                pending_instance_class: None
            }),
            ty.prop_map(|t| ResourceDetails::CacheCluster {
                node_type: t.into(),
                num_nodes: 1,
                status: ServiceStatus::Available
            }),
            any::<u32>().prop_map(|m| ResourceDetails::LambdaFunction { memory_mb: m }),
            any::<u32>().prop_map(|n| ResourceDetails::EcsService {
                cluster: "c".into(),
                desired_count: n,
                task_definition: "td".into(),
                task_cpu: None,
                task_memory_mb: None
            }),
            (
                proptest::option::of(any::<u64>()),
                proptest::option::of(any::<u64>())
            )
                .prop_map(|(r, w)| ResourceDetails::DynamoDbTable {
                    billing_mode: BillingMode::Provisioned,
                    read_capacity: r,
                    write_capacity: w
                }),
            proptest::collection::vec("[a-z]{1,8}", 0..4).prop_map(|ids| {
                ResourceDetails::S3Bucket {
                    lifecycle_rule_ids: ids,
                }
            }),
        ]
    }

    fn any_action() -> impl Strategy<Value = Action> {
        proptest::sample::select(vec![
            Action::Stop,
            Action::Terminate,
            Action::Rightsize,
            Action::MoveToGraviton,
            Action::ChangeStorageClass,
            Action::AddLifecycleRule,
            Action::SwitchToOnDemand,
            Action::LowerProvisionedCapacity,
            Action::ReduceMemory,
            Action::IncreaseMemory,
            Action::ShrinkTasks,
            Action::ReduceTaskCount,
            Action::DeleteUnused,
            Action::InvestigateErrors,
            Action::ScaleUp,
        ])
    }

    proptest! {
        #[test]
        fn every_plan_is_undoable_step_by_step_or_says_why(
            details in any_details(), action in any_action(),
            target in proptest::option::of("[ -~]{0,40}|[0-9]{1,25} MB|desiredCount [0-9]{1,12}|GLACIER_IR|m5\\.large|gp3"),
        ) {
            let pre = state(details);
            match plan("req-1", &recommendation(action, target.as_deref()), &pre, PlanOptions::default()) {
                Ok(p) => {
                    prop_assert!(!p.steps.is_empty());
                    prop_assert_ne!(action, Action::InvestigateErrors);
                    // Every step of a plan has an undo, and none is an error.
                    for u in rollback_plan(&p.steps, &pre) {
                        let possible = !matches!(u, Undo::Impossible { .. });
                        prop_assert!(possible, "{:?}", u);
                    }
                    // Some step of every plan changes the resource.
                    prop_assert!(p.steps.iter().any(Step::changes_resource));
                }
                Err(e) => prop_assert!(!e.to_string().is_empty()),
            }
        }
    }
}
