//! DynamoDB tables: billing mode and provisioned capacity (UpdateTable,
//! then the SDK's TableExists waiter, which waits for ACTIVE).
//! DescribeTable and ListTagsOfResource are the state.

use super::{applied, misrouted, state, tag_map, Clients};
use crate::domain::execution::{BillingMode, ResourceDetails, ResourceState, Step};
use crate::execution::{Applied, StepCall, Target};
use crate::{Error, Result};
use aws_sdk_dynamodb::client::Waiters;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{BillingMode as Mode, ProvisionedThroughput, TableDescription};

async fn describe(c: &Clients, name: &str) -> Result<Option<TableDescription>> {
    match c.dynamodb.describe_table().table_name(name).send().await {
        Ok(out) => Ok(out.table),
        Err(e) if e.code() == Some("ResourceNotFoundException") => Ok(None),
        Err(e) => Err(Error::from_sdk("DescribeTable", e)),
    }
}

/// A table created before on-demand existed has no billing summary: provisioned.
fn mode_of(t: &TableDescription) -> BillingMode {
    match t.billing_mode_summary().and_then(|b| b.billing_mode()) {
        Some(Mode::PayPerRequest) => BillingMode::PayPerRequest,
        _ => BillingMode::Provisioned,
    }
}

fn capacity(t: &TableDescription) -> (Option<u64>, Option<u64>) {
    let p = t.provisioned_throughput();
    let units = |v: Option<i64>| v.and_then(|v| u64::try_from(v).ok());
    (
        units(p.and_then(|p| p.read_capacity_units())),
        units(p.and_then(|p| p.write_capacity_units())),
    )
}

pub(super) async fn read_state(c: &Clients, t: &Target) -> Result<Option<ResourceState>> {
    let Some(table) = describe(c, &t.resource_id).await? else {
        return Ok(None);
    };
    let tags = match table.table_arn() {
        Some(arn) => {
            let out = c
                .dynamodb
                .list_tags_of_resource()
                .resource_arn(arn)
                .send()
                .await
                .map_err(|e| Error::from_sdk("ListTagsOfResource", e))?;
            tag_map(out.tags().iter().map(|t| (Some(t.key()), Some(t.value()))))
        }
        None => Default::default(),
    };
    let billing_mode = mode_of(&table);
    // On demand, the capacity AWS still reports means nothing.
    let (read_capacity, write_capacity) = match billing_mode {
        BillingMode::Provisioned => capacity(&table),
        BillingMode::PayPerRequest => (None, None),
    };
    Ok(Some(state(
        t,
        tags,
        ResourceDetails::DynamoDbTable {
            billing_mode,
            read_capacity,
            write_capacity,
        },
    )))
}

fn throughput(read: u64, write: u64) -> Result<ProvisionedThroughput> {
    let units =
        |v: u64| i64::try_from(v).map_err(|_| Error::Validation(format!("capacity {v} units")));
    ProvisionedThroughput::builder()
        .read_capacity_units(units(read)?)
        .write_capacity_units(units(write)?)
        .build()
        .map_err(|e| Error::Internal(format!("ProvisionedThroughput: {e}")))
}

/// UpdateTable to `mode` (and `capacity`), or nothing if the table is there
/// already: AWS refuses an update that changes nothing (a repeat).
async fn update(
    c: &Clients,
    name: &str,
    mode: Option<BillingMode>,
    capacity: Option<(u64, u64)>,
) -> Result<Applied> {
    let wanted = |t: &TableDescription| {
        mode.is_none_or(|m| mode_of(t) == m)
            && capacity.is_none_or(|(r, w)| self::capacity(t) == (Some(r), Some(w)))
    };
    let throughput = capacity.map(|(r, w)| throughput(r, w)).transpose()?;
    let out = c
        .dynamodb
        .update_table()
        .table_name(name)
        .set_billing_mode(mode.map(|m| match m {
            BillingMode::Provisioned => Mode::Provisioned,
            BillingMode::PayPerRequest => Mode::PayPerRequest,
        }))
        .set_provisioned_throughput(throughput)
        .send()
        .await;
    let answer = match out {
        Ok(out) => applied(&out, None),
        Err(e) => {
            let repeat = e.code() == Some("ValidationException")
                && describe(c, name).await?.is_some_and(|t| wanted(&t));
            if !repeat {
                return Err(Error::from_sdk("UpdateTable", e));
            }
            Applied::default()
        }
    };
    c.dynamodb
        .wait_until_table_exists()
        .table_name(name)
        .wait(c.max_wait)
        .await
        .map_err(|e| Error::from_waiter("TableExists", e))?;
    Ok(answer)
}

pub(super) async fn apply(c: &Clients, call: StepCall<'_>) -> Result<Applied> {
    let name = call.target.resource_id.as_str();
    match call.step {
        Step::DynamoSetBillingMode {
            to,
            read_capacity,
            write_capacity,
        } => {
            let capacity = match (to, read_capacity, write_capacity) {
                (BillingMode::Provisioned, Some(r), Some(w)) => Some((*r, *w)),
                (BillingMode::Provisioned, _, _) => {
                    return Err(Error::Validation(
                        "a provisioned table needs its read and write capacity".into(),
                    ))
                }
                (BillingMode::PayPerRequest, _, _) => None,
            };
            update(c, name, Some(*to), capacity).await
        }
        Step::DynamoSetCapacity {
            to_read, to_write, ..
        } => update(c, name, None, Some((*to_read, *to_write))).await,
        other => Err(misrouted(other)),
    }
}
