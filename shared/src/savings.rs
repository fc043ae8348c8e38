//! Realised savings: what an executed change saves, priced from the state
//! before and after it as the execution read them back (not from the
//! recommendation's estimate), and the report `GET /savings` serves.

use crate::analysis::PriceCatalog;
use crate::domain::execution::{Ec2State, ResourceDetails, ResourceState};
use serde::Serialize;
use std::collections::BTreeMap;

/// The monthly list price of a resource in `state`, where the catalogue
/// prices it by its shape alone (instance, DB or node type, volume type and
/// size); `None` where the price depends on use (Lambda, ECS, DynamoDB
/// on demand, S3) or the type is not in the catalogue.
pub fn monthly_price(catalog: &PriceCatalog, state: &ResourceState) -> Option<f64> {
    use crate::domain::Service;
    let region = state.region.as_str();
    match &state.details {
        ResourceDetails::Ec2Instance {
            instance_type,
            state,
        } => match state {
            // A stopped instance pays for its volumes only, which are priced apart.
            Ec2State::Stopped | Ec2State::Terminated => Some(0.0),
            _ => Some(
                catalog
                    .type_spec(Service::Ec2, region, instance_type)?
                    .monthly(),
            ),
        },
        ResourceDetails::RdsInstance { instance_class, .. } => Some(
            catalog
                .type_spec(Service::Rds, region, instance_class)?
                .monthly(),
        ),
        ResourceDetails::CacheCluster {
            node_type,
            num_nodes,
            ..
        } => Some(
            catalog
                .type_spec(Service::ElastiCache, region, node_type)?
                .monthly()
                * f64::from(*num_nodes),
        ),
        ResourceDetails::EbsVolume {
            volume_type,
            size_gib,
            ..
        } => {
            let per_gb = catalog
                .region(region)?
                .ebs
                .as_ref()?
                .usd_per_gb_month
                .get(volume_type)?;
            Some(per_gb * f64::from(*size_gib))
        }
        _ => None,
    }
}

/// What the change saves a month: the pre-state's price less the
/// post-state's (nothing left costs nothing); `None` when either is unpriced.
pub fn realised(
    catalog: &PriceCatalog,
    pre: &ResourceState,
    post: Option<&ResourceState>,
) -> Option<f64> {
    let before = monthly_price(catalog, pre)?;
    let after = match post {
        None => 0.0,
        Some(p) => monthly_price(catalog, p)?,
    };
    Some(crate::analysis::round2(before - after))
}

/// Estimated against realised, for one group.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Tally {
    pub executions: u64,
    pub estimated_monthly_usd: f64,
    pub realised_monthly_usd: f64,
    /// Executions whose realised figure is the estimate (their states are
    /// not priced by shape).
    pub from_estimate: u64,
}

impl Tally {
    pub fn add(&mut self, estimated: f64, realised: Option<f64>) {
        self.executions += 1;
        self.estimated_monthly_usd =
            crate::analysis::round2(self.estimated_monthly_usd + estimated);
        let r = realised.unwrap_or_else(|| {
            self.from_estimate += 1;
            estimated
        });
        self.realised_monthly_usd = crate::analysis::round2(self.realised_monthly_usd + r);
    }
}

/// `GET /savings`: totals and the same split by service, account and owner.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SavingsReport {
    pub total: Tally,
    pub by_service: BTreeMap<String, Tally>,
    pub by_account: BTreeMap<String, Tally>,
    pub by_owner: BTreeMap<String, Tally>,
    /// Executed changes rolled back in the period: they no longer count.
    pub rolled_back: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::execution::VolumeState;

    fn ec2(ty: &str, state: Ec2State) -> ResourceState {
        ResourceState {
            resource_id: "i-1".into(),
            region: "us-east-1".into(),
            account_id: None,
            tags: Default::default(),
            details: ResourceDetails::Ec2Instance {
                instance_type: ty.into(),
                state,
            },
        }
    }

    #[test]
    fn a_rightsizing_saves_the_difference_of_list_prices() {
        let c = PriceCatalog::builtin();
        let xl = monthly_price(c, &ec2("m5.xlarge", Ec2State::Running)).unwrap();
        let l = monthly_price(c, &ec2("m5.large", Ec2State::Running)).unwrap();
        assert!(xl > l && l > 0.0);
        let saved = realised(
            c,
            &ec2("m5.xlarge", Ec2State::Running),
            Some(&ec2("m5.large", Ec2State::Running)),
        )
        .unwrap();
        assert!((saved - (xl - l)).abs() < 0.01, "{saved} vs {}", xl - l);
        // Stopped or gone: the whole compute price.
        let stop = realised(
            c,
            &ec2("m5.large", Ec2State::Running),
            Some(&ec2("m5.large", Ec2State::Stopped)),
        );
        assert_eq!(stop, Some(crate::analysis::round2(l)));
        assert_eq!(
            realised(c, &ec2("m5.large", Ec2State::Running), None),
            Some(crate::analysis::round2(l))
        );
    }

    #[test]
    fn a_volume_type_change_is_priced_per_gb_and_an_unknown_type_is_not() {
        let c = PriceCatalog::builtin();
        let vol = |t: &str| ResourceState {
            details: ResourceDetails::EbsVolume {
                volume_type: t.into(),
                size_gib: 100,
                iops: None,
                throughput: None,
                state: VolumeState::InUse,
                availability_zone: "us-east-1a".into(),
            },
            ..ec2("x", Ec2State::Running)
        };
        let saved = realised(c, &vol("gp2"), Some(&vol("gp3"))).unwrap();
        assert!(saved > 0.0, "gp3 is cheaper per GB: {saved}");
        assert_eq!(realised(c, &ec2("zz9.huge", Ec2State::Running), None), None);
        let mut t = Tally::default();
        t.add(10.0, None);
        t.add(5.0, Some(4.5));
        assert_eq!((t.executions, t.from_estimate), (2, 1));
        assert_eq!(
            (t.estimated_monthly_usd, t.realised_monthly_usd),
            (15.0, 14.5)
        );
    }
}
