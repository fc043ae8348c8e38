//! Lambda functions: memory size (UpdateFunctionConfiguration, then the
//! SDK's FunctionUpdatedV2 waiter). GetFunction is the state, tags included.

use super::{applied, misrouted, state, Clients};
use crate::domain::execution::{ResourceDetails, ResourceState, Step};
use crate::execution::{Applied, StepCall, Target};
use crate::{Error, Result};
use aws_sdk_lambda::client::Waiters;
use aws_sdk_lambda::error::ProvideErrorMetadata;

pub(super) async fn read_state(c: &Clients, t: &Target) -> Result<Option<ResourceState>> {
    let out = match c
        .lambda
        .get_function()
        .function_name(&t.resource_id)
        .send()
        .await
    {
        Ok(out) => out,
        Err(e) if e.code() == Some("ResourceNotFoundException") => return Ok(None),
        Err(e) => return Err(Error::from_sdk("GetFunction", e)),
    };
    let memory_mb = out
        .configuration()
        .and_then(|c| c.memory_size())
        .and_then(|m| u32::try_from(m).ok())
        .ok_or_else(|| Error::Internal("GetFunction: no memory size".into()))?;
    let tags = out
        .tags()
        .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    Ok(Some(state(
        t,
        tags,
        ResourceDetails::LambdaFunction { memory_mb },
    )))
}

pub(super) async fn apply(c: &Clients, call: StepCall<'_>) -> Result<Applied> {
    let Step::LambdaSetMemory { to, .. } = call.step else {
        return Err(misrouted(call.step));
    };
    let name = call.target.resource_id.as_str();
    let memory = i32::try_from(*to).map_err(|_| Error::Validation(format!("memory {to} MB")))?;
    let out = match c
        .lambda
        .update_function_configuration()
        .function_name(name)
        .memory_size(memory)
        .send()
        .await
    {
        Ok(out) => out,
        // Another update of the function is still in progress: the step is
        // taken up again later, under the same key ("set to" semantics).
        Err(e) if e.code() == Some("ResourceConflictException") => {
            return Err(Error::Unavailable(format!(
                "UpdateFunctionConfiguration: {}",
                e.message().unwrap_or("an update is in progress")
            )))
        }
        Err(e) => return Err(Error::from_sdk("UpdateFunctionConfiguration", e)),
    };
    c.lambda
        .wait_until_function_updated_v2()
        .function_name(name)
        .wait(c.max_wait)
        .await
        .map_err(|e| Error::from_waiter("FunctionUpdatedV2", e))?;
    Ok(applied(&out, None))
}
