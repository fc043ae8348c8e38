use super::{queue, Action, Context, Parse};
use crate::error::FrameError;
use serde_json::Value;
use shared::domain::{has_role, CycleParams, Job, JobSource, Role, Service, Trigger};

/// `runCycle`: an optimisation cycle, for operators and above.
#[derive(Debug, Clone, PartialEq)]
pub struct RunCycle {
    /// Sorted, without repeats; `None` means every service.
    pub services: Option<Vec<Service>>,
    pub dry_run: bool,
}

impl RunCycle {
    pub fn parse(parse: &mut Parse) -> Result<Self, FrameError> {
        let services = match parse.strings("services", Service::ALL.len() * 2)? {
            None => None,
            Some(raw) if raw.is_empty() => {
                return Err(FrameError::bad(
                    "`services` must name at least one service; omit it for all",
                ))
            }
            Some(raw) => Some(
                raw.iter()
                    .map(|s| {
                        s.parse::<Service>()
                            .map_err(|e| FrameError::bad(e.to_string()))
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            ),
        };
        let dry_run = parse.boolean("dryRun")?.unwrap_or(false);
        Ok(RunCycle { services, dry_run })
    }

    pub async fn apply(self, ctx: &Context<'_>) -> Result<Value, FrameError> {
        let connection = ctx.connection().await?;
        if !has_role(&connection.roles, Role::Operator) {
            return Err(FrameError::new(
                "forbidden",
                format!(
                    "runCycle needs the {} role or higher",
                    Role::Operator.as_str()
                ),
            ));
        }
        let params = CycleParams {
            dry_run: self.dry_run,
            requested_by: Some(connection.user_id.clone()),
            ..CycleParams::new(Trigger::Manual, JobSource::Websocket, self.services)
        };
        let requester = connection.user_id.clone();
        queue(ctx, &connection, Action::RunCycle, |id| {
            Job::cycle(id, requester, &params, ctx.now)
        })
        .await
    }
}
