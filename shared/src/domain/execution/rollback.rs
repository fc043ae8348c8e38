//! Undoing an execution: each completed step's inverse, in reverse order,
//! and a plain statement of what cannot come back as it was.

use super::plan::Step;
use super::state::{BillingMode, ResourceDetails, ResourceState};
use serde::{Deserialize, Serialize};

/// How one completed step is undone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "kind",
    rename_all = "snake_case",
    rename_all_fields = "camelCase"
)]
pub enum Undo {
    /// Nothing to undo: the step only added a copy (image, snapshot, revision).
    Nothing,
    /// The inverse restores the pre-state.
    Restore { step: Step },
    /// The inverse brings the resource back, but not as it was.
    Partial { step: Step, caveat: String },
    /// AWS offers no way back.
    Impossible { why: String },
}

/// The undo of a completed `step`, given the pre-state the execution read.
/// What a step created (image, snapshot, revision) is its recorded output,
/// which the actuator is handed when it runs the undo.
pub fn undo(step: &Step, pre: &ResourceState) -> Undo {
    let restore = |step| Undo::Restore { step };
    match step {
        Step::Ec2CreateImage { .. } | Step::EbsSnapshot | Step::EcsRegisterTaskSize { .. } => Undo::Nothing,
        Step::Ec2Stop => restore(Step::Ec2Start),
        Step::Ec2Start => restore(Step::Ec2Stop),
        Step::Ec2ModifyType { from, to } => restore(Step::Ec2ModifyType { from: to.clone(), to: from.clone() }),
        Step::Ec2Terminate => match &pre.details {
            ResourceDetails::Ec2Instance { instance_type, .. } => Undo::Partial {
                step: Step::Ec2RunFromImage { instance_type: instance_type.clone() },
                caveat: "a terminated instance cannot be started again: a NEW instance is launched from the final image, with a new id, new private IP and no instance-store data".into(),
            },
            _ => Undo::Impossible { why: "no instance type in the pre-state".into() },
        },
        Step::EbsDelete => match &pre.details {
            ResourceDetails::EbsVolume { volume_type, size_gib, availability_zone, .. } => Undo::Partial {
                step: Step::EbsCreateFromSnapshot {
                    volume_type: volume_type.clone(),
                    size_gib: *size_gib,
                    availability_zone: availability_zone.clone(),
                },
                caveat: "a deleted volume is recreated from its snapshot as a new volume with a new id; its blocks load lazily on first read".into(),
            },
            _ => Undo::Impossible { why: "no volume in the pre-state".into() },
        },
        Step::EbsModifyType { from, to } => Undo::Partial {
            step: Step::EbsModifyType { from: to.clone(), to: from.clone() },
            caveat: "AWS allows one modification of a volume every 6 hours: the change back may have to wait".into(),
        },
        Step::RdsStop => restore(Step::RdsStart),
        Step::RdsStart => restore(Step::RdsStop),
        Step::RdsModifyClass { from, to, apply_at } => restore(Step::RdsModifyClass { from: to.clone(), to: from.clone(), apply_at: *apply_at }),
        Step::RdsDeleteWithFinalSnapshot { snapshot_id } => match &pre.details {
            ResourceDetails::RdsInstance { instance_class, .. } => Undo::Partial {
                step: Step::RdsRestoreFromSnapshot { snapshot_id: snapshot_id.clone(), instance_class: instance_class.clone() },
                caveat: "restored from the final snapshot as a new DB instance under the same identifier: writes after the snapshot are lost and parameter or option groups must be checked".into(),
            },
            _ => Undo::Impossible { why: "no DB instance in the pre-state".into() },
        },
        Step::CacheModifyNodeType { from, to } => Undo::Partial {
            step: Step::CacheModifyNodeType { from: to.clone(), to: from.clone() },
            caveat: "a smaller node type is refused when the data no longer fits".into(),
        },
        Step::LambdaSetMemory { from, to } => restore(Step::LambdaSetMemory { from: *to, to: *from }),
        Step::EcsSetDesiredCount { cluster, from, to } => restore(Step::EcsSetDesiredCount { cluster: cluster.clone(), from: *to, to: *from }),
        Step::EcsUseTaskDefinition { cluster, from, .. } => restore(Step::EcsUseTaskDefinition { cluster: cluster.clone(), from: String::new(), to: Some(from.clone()) }),
        Step::DynamoSetBillingMode { to: BillingMode::PayPerRequest, .. } => match &pre.details {
            ResourceDetails::DynamoDbTable { read_capacity, write_capacity, .. } => Undo::Partial {
                step: Step::DynamoSetBillingMode { to: BillingMode::Provisioned, read_capacity: *read_capacity, write_capacity: *write_capacity },
                caveat: "AWS limits how often a table switches billing mode (once in 24 hours): the switch back may be refused until then".into(),
            },
            _ => Undo::Impossible { why: "no table in the pre-state".into() },
        },
        Step::DynamoSetBillingMode { to: BillingMode::Provisioned, .. } => {
            restore(Step::DynamoSetBillingMode { to: BillingMode::PayPerRequest, read_capacity: None, write_capacity: None })
        }
        Step::DynamoSetCapacity { from_read, from_write, to_read, to_write } => restore(Step::DynamoSetCapacity {
            from_read: *to_read,
            from_write: *to_write,
            to_read: *from_read,
            to_write: *from_write,
        }),
        Step::S3AddLifecycleRule { rule_id, .. } => Undo::Partial {
            step: Step::S3RemoveLifecycleRule { rule_id: rule_id.clone() },
            caveat: "the rule is removed; objects it already moved stay in their new storage class".into(),
        },
        Step::Ec2RunFromImage { .. }
        | Step::EbsCreateFromSnapshot { .. }
        | Step::RdsRestoreFromSnapshot { .. }
        | Step::S3RemoveLifecycleRule { .. } => Undo::Impossible { why: "a rollback step is not itself rolled back".into() },
    }
}

/// The rollback of the steps that completed (in the order they ran): their
/// undos in reverse order, each with its caveat.
pub fn rollback_plan(completed: &[Step], pre: &ResourceState) -> Vec<Undo> {
    completed.iter().rev().map(|s| undo(s, pre)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::execution::plan::{plan, PlanOptions};
    use crate::domain::execution::state::tests::ec2;
    use crate::domain::execution::state::Ec2State;

    #[test]
    fn a_rightsizing_is_undone_in_reverse_order() {
        let pre = ec2("i-1", "m5.xlarge", Ec2State::Running);
        let mut r = crate::domain::execution::tests::recommendation(
            crate::domain::Action::Rightsize,
            Some("m5.large"),
        );
        r.resource_id = "i-1".into();
        let p = plan("req-1", &r, &pre, PlanOptions::default()).unwrap();
        let back = rollback_plan(&p.steps, &pre);
        assert_eq!(
            back,
            vec![
                Undo::Restore {
                    step: Step::Ec2Stop
                },
                Undo::Restore {
                    step: Step::Ec2ModifyType {
                        from: "m5.large".into(),
                        to: "m5.xlarge".into()
                    }
                },
                Undo::Restore {
                    step: Step::Ec2Start
                },
            ]
        );
    }

    #[test]
    fn a_terminated_instance_comes_back_as_a_new_one() {
        let pre = ec2("i-1", "m5.xlarge", Ec2State::Running);
        let r =
            crate::domain::execution::tests::recommendation(crate::domain::Action::Terminate, None);
        let p = plan("req-1", &r, &pre, PlanOptions::default()).unwrap();
        let back = rollback_plan(&p.steps, &pre);
        assert!(
            matches!(&back[0], Undo::Partial { step: Step::Ec2RunFromImage { instance_type }, caveat } if instance_type == "m5.xlarge" && caveat.contains("NEW instance"))
        );
        assert_eq!(back[1], Undo::Nothing);
    }
}
