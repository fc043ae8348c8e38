//! Judgement a rule's own conditions cannot make: a removal (stop,
//! terminate, delete) must not rest on one metric when another shows real
//! work. A database with a handful of connections but a steady 50 % CPU is
//! busy (batch jobs, replication, a connection pool of one), not idle.

use super::facts::lookback;
use crate::analysis::evaluate::Ctx;
use crate::analysis::stats::Statistic;
use crate::domain::metric::names;
use crate::domain::{Action, Service, ThresholdRule};

/// Average CPU over a rule's lookback at or above which a resource is doing
/// real work. Compute Optimizer's idle rules ask for "low CPU" next to no
/// connections; 10 % is Trusted Advisor's low-utilisation bound.
pub const BUSY_CPU_PERCENT: f64 = 10.0;

/// Why a flagged removal is refused, when the rule did not read CPU and the
/// resource's average CPU over the rule's lookback shows work.
pub(super) fn busy(ctx: &mut Ctx<'_>, rule: &ThresholdRule) -> Option<String> {
    if !matches!(
        rule.action,
        Action::Stop | Action::Terminate | Action::DeleteUnused
    ) || !matches!(
        ctx.resource.service,
        Service::Ec2 | Service::Rds | Service::ElastiCache | Service::Ecs
    ) || rule
        .conditions
        .iter()
        .any(|c| c.metric == names::CPU_UTILIZATION)
    {
        return None;
    }
    let days = lookback(rule);
    let avg = ctx.metric_stat(names::CPU_UTILIZATION, Statistic::Average, days)?;
    (avg >= BUSY_CPU_PERCENT).then(|| {
        format!(
            "{} not applied: average CPU over {days} days is {avg:.1}% (>= {BUSY_CPU_PERCENT}%), real work",
            rule.id
        )
    })
}
