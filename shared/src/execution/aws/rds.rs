//! RDS DB instances: stop, start, class change (now or in the maintenance
//! window), deletion with a final snapshot and its rollback (a restore from
//! that snapshot). DescribeDBInstances is the state, tags included.

use super::{applied, misrouted, poll_until, state, tag_map, Clients};
use crate::domain::execution::{ApplyAt, ResourceDetails, ResourceState, ServiceStatus, Step};
use crate::execution::{Applied, StepCall, Target};
use crate::{Error, Result};
use aws_sdk_rds::client::Waiters;
use aws_sdk_rds::error::ProvideErrorMetadata;
use aws_sdk_rds::types::DbInstance;

const NOT_FOUND: &str = "DBInstanceNotFound";
const WRONG_STATE: &str = "InvalidDBInstanceState";

async fn describe(c: &Clients, id: &str) -> Result<Option<DbInstance>> {
    match c
        .rds
        .describe_db_instances()
        .db_instance_identifier(id)
        .send()
        .await
    {
        Ok(out) => Ok(out.db_instances().first().cloned()),
        Err(e) if e.code() == Some(NOT_FOUND) => Ok(None),
        Err(e) => Err(Error::from_sdk("DescribeDBInstances", e)),
    }
}

fn status_of(d: &DbInstance) -> &str {
    d.db_instance_status().unwrap_or_default()
}

/// AWS's status text as the statuses an execution acts on (`Other` for the rest).
fn service_status(s: &str) -> ServiceStatus {
    serde_json::from_value(serde_json::Value::String(s.to_string())).unwrap_or(ServiceStatus::Other)
}

pub(super) async fn read_state(c: &Clients, t: &Target) -> Result<Option<ResourceState>> {
    let Some(d) = describe(c, &t.resource_id).await? else {
        return Ok(None);
    };
    let instance_class = d
        .db_instance_class()
        .ok_or_else(|| Error::Internal("DescribeDBInstances: no class".into()))?
        .to_string();
    Ok(Some(state(
        t,
        tag_map(d.tag_list().iter().map(|t| (t.key(), t.value()))),
        ResourceDetails::RdsInstance {
            instance_class,
            status: service_status(status_of(&d)),
            pending_instance_class: d
                .pending_modified_values()
                .and_then(|p| p.db_instance_class())
                .map(str::to_string),
        },
    )))
}

async fn wait_available(c: &Clients, id: &str) -> Result<Option<DbInstance>> {
    let last = c
        .rds
        .wait_until_db_instance_available()
        .db_instance_identifier(id)
        .wait(c.max_wait)
        .await
        .map_err(|e| Error::from_waiter("DBInstanceAvailable", e))?;
    Ok(last
        .as_result()
        .ok()
        .and_then(|o| o.db_instances().first().cloned()))
}

/// Whether a refusal came from a repeat of this very change: the instance
/// is where (or on its way to where) the step takes it.
async fn already(c: &Clients, id: &str, ok: &[&str]) -> Result<bool> {
    Ok(describe(c, id)
        .await?
        .is_some_and(|d| ok.contains(&status_of(&d))))
}

async fn stop(c: &Clients, id: &str) -> Result<Applied> {
    let answer = match c
        .rds
        .stop_db_instance()
        .db_instance_identifier(id)
        .send()
        .await
    {
        Ok(out) => {
            let stopped = out.db_instance().map(status_of) == Some("stopped");
            (stopped, applied(&out, None))
        }
        Err(e) => {
            if e.code() != Some(WRONG_STATE) || !already(c, id, &["stopping", "stopped"]).await? {
                return Err(Error::from_sdk("StopDBInstance", e));
            }
            (false, Applied::default())
        }
    };
    if !answer.0 {
        // The SDK has no "stopped" waiter for DB instances.
        poll_until("StopDBInstance", c.max_wait, || async {
            Ok(describe(c, id)
                .await?
                .is_some_and(|d| status_of(&d) == "stopped"))
        })
        .await?;
    }
    Ok(answer.1)
}

async fn start(c: &Clients, id: &str) -> Result<Applied> {
    let answer = match c
        .rds
        .start_db_instance()
        .db_instance_identifier(id)
        .send()
        .await
    {
        Ok(out) => applied(&out, None),
        Err(e) => {
            if e.code() != Some(WRONG_STATE) || !already(c, id, &["starting", "available"]).await? {
                return Err(Error::from_sdk("StartDBInstance", e));
            }
            Applied::default()
        }
    };
    wait_available(c, id).await?;
    Ok(answer)
}

async fn modify_class(c: &Clients, id: &str, to: &str, at: ApplyAt) -> Result<Applied> {
    let now = at == ApplyAt::Now;
    let out = c
        .rds
        .modify_db_instance()
        .db_instance_identifier(id)
        .db_instance_class(to)
        .apply_immediately(now)
        .send()
        .await
        .map_err(|e| Error::from_sdk("ModifyDBInstance", e))?;
    if now {
        // Right after ModifyDBInstance the instance may still read
        // `available` with its old class: wait until it serves the new one.
        let last = wait_available(c, id).await?;
        if last.and_then(|d| d.db_instance_class().map(str::to_string)) != Some(to.to_string()) {
            poll_until("ModifyDBInstance", c.max_wait, || async {
                Ok(describe(c, id).await?.is_some_and(|d| {
                    d.db_instance_class() == Some(to) && status_of(&d) == "available"
                }))
            })
            .await?;
        }
    }
    Ok(applied(&out, None))
}

async fn snapshot_exists(c: &Clients, snapshot: &str) -> Result<bool> {
    match c
        .rds
        .describe_db_snapshots()
        .db_snapshot_identifier(snapshot)
        .send()
        .await
    {
        Ok(out) => Ok(!out.db_snapshots().is_empty()),
        Err(e) if e.code() == Some("DBSnapshotNotFound") => Ok(false),
        Err(e) => Err(Error::from_sdk("DescribeDBSnapshots", e)),
    }
}

async fn delete_with_snapshot(c: &Clients, id: &str, snapshot: &str) -> Result<Applied> {
    let answer = match c
        .rds
        .delete_db_instance()
        .db_instance_identifier(id)
        .skip_final_snapshot(false)
        .final_db_snapshot_identifier(snapshot)
        .send()
        .await
    {
        Ok(out) => applied(&out, Some(snapshot.to_string())),
        Err(e) => {
            // Deleted (or being deleted) by an earlier attempt of this step.
            let repeat = match e.code() {
                Some(NOT_FOUND) => snapshot_exists(c, snapshot).await?,
                Some(WRONG_STATE) => already(c, id, &["deleting"]).await?,
                _ => false,
            };
            if !repeat {
                return Err(Error::from_sdk("DeleteDBInstance", e));
            }
            Applied {
                aws_request_id: None,
                output: Some(snapshot.to_string()),
            }
        }
    };
    c.rds
        .wait_until_db_instance_deleted()
        .db_instance_identifier(id)
        .wait(c.max_wait)
        .await
        .map_err(|e| Error::from_waiter("DBInstanceDeleted", e))?;
    c.rds
        .wait_until_db_snapshot_available()
        .db_snapshot_identifier(snapshot)
        .wait(c.max_wait)
        .await
        .map_err(|e| Error::from_waiter("DBSnapshotAvailable", e))?;
    Ok(answer)
}

async fn restore(c: &Clients, id: &str, snapshot: &str, class: &str) -> Result<Applied> {
    let answer = match c
        .rds
        .restore_db_instance_from_db_snapshot()
        .db_instance_identifier(id)
        .db_snapshot_identifier(snapshot)
        .db_instance_class(class)
        .send()
        .await
    {
        Ok(out) => applied(&out, Some(id.to_string())),
        // Restored by an earlier attempt of this step (the identifier is ours).
        Err(e) if e.code() == Some("DBInstanceAlreadyExists") => Applied {
            aws_request_id: None,
            output: Some(id.to_string()),
        },
        Err(e) => return Err(Error::from_sdk("RestoreDBInstanceFromDBSnapshot", e)),
    };
    wait_available(c, id).await?;
    Ok(answer)
}

pub(super) async fn apply(c: &Clients, call: StepCall<'_>) -> Result<Applied> {
    let id = call.target.resource_id.as_str();
    match call.step {
        Step::RdsStop => stop(c, id).await,
        Step::RdsStart => start(c, id).await,
        Step::RdsModifyClass { to, apply_at, .. } => modify_class(c, id, to, *apply_at).await,
        Step::RdsDeleteWithFinalSnapshot { snapshot_id } => {
            delete_with_snapshot(c, id, snapshot_id).await
        }
        Step::RdsRestoreFromSnapshot {
            snapshot_id,
            instance_class,
        } => restore(c, id, snapshot_id, instance_class).await,
        other => Err(misrouted(other)),
    }
}
