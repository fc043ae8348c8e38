//! The action catalogue: for a flagged rule, the ways to act on the resource,
//! each with its savings (or why none is known) and risk. One file per
//! service's cost model; EC2, RDS and ElastiCache share the instance model.

mod dynamodb;
pub(crate) mod ebs;
mod ecs;
mod instance;
mod lambda;
mod s3;

pub(crate) use instance::rds_memory_used_pct;

use super::text::verb;
use crate::analysis::evaluate::{Ctx, Verdict};
use crate::analysis::pricing::PriceCatalog;
use crate::domain::{Action, Service, ThresholdRule};

/// One way to act, with its own savings (or why none is known) and risk.
#[derive(Debug, Clone)]
pub(crate) struct Opt {
    pub action: Action,
    pub target: Option<String>,
    pub savings: Result<f64, String>,
    pub risk: u8,
    pub text: String,
}

/// The options for a flagged rule, preferred first, and the resource's
/// current monthly cost when known.
pub(crate) fn options(
    ctx: &mut Ctx<'_>,
    prices: &PriceCatalog,
    rule: &ThresholdRule,
    v: &Verdict,
) -> (Vec<Opt>, Option<f64>) {
    let svc = ctx.resource.service;
    let mut out = match svc {
        Service::Ec2 | Service::Rds | Service::ElastiCache => {
            instance::options(ctx, prices, rule, v)
        }
        Service::Lambda => lambda::options(ctx, prices, rule, v),
        Service::Ecs => ecs::options(ctx, prices, rule),
        Service::S3 => s3::options(ctx, prices, rule),
        Service::DynamoDb => dynamodb::options(ctx, prices, rule),
        // A volume rule that does not fit the volume's type (gp2 to gp3 on
        // io2) offers nothing, rather than an unpriced action.
        Service::Ebs => match ebs::options(ctx, prices, rule, v) {
            Some(o) => o,
            None => return (Vec::new(), None),
        },
    };
    // The rule's own action leads; the catalogue may add others after it.
    if let Some(i) = out.0.iter().position(|o| o.action == rule.action) {
        let o = out.0.remove(i);
        out.0.insert(0, o);
    } else if let Some(i) = out
        .0
        .iter()
        .position(|o| o.target.is_some() && o.savings.as_ref().is_ok_and(|s| *s > 0.0))
    {
        // Nothing to name for the rule's own action (the smallest size of
        // its family), but a priced alternative (Graviton) saves: it leads.
        let o = out.0.remove(i);
        out.0.insert(0, o);
    } else {
        out.0.insert(
            0,
            Opt {
                action: rule.action,
                target: None,
                savings: Err(format!(
                    "no price known for {} {}: the action {} has no cost model for this service",
                    svc,
                    ctx.resource.id,
                    rule.action.as_str()
                )),
                risk: 2,
                text: format!("{} {}", verb(rule.action), ctx.resource.id),
            },
        );
    }
    out
}
