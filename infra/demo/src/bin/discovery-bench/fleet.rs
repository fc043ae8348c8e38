//! The estate of the discovery benchmark, created through the AWS APIs in
//! the emulator, one (account, region) unit at a time:
//! - EC2 instances by RunInstances in batches (`MaxCount`), five instance
//!   types; each comes with its root EBS volume, as on AWS;
//! - unattached EBS volumes (CreateVolume);
//! - a few of every other discovered service (RDS, ElastiCache, Lambda,
//!   ECS, DynamoDB, S3), by `finops_local::aws_estate`.
//!
//! What each unit holds is written to a file the workers read, so each
//! unit's synthetic CloudWatch publishes the metrics of exactly its own
//! resources.

use aws_config::{Region, SdkConfig};
use aws_sdk_ec2::types::{InstanceType, ResourceType, Tag, TagSpecification, VolumeType};
use finops_local::estate::{self, Estate};
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use shared::domain::Service;
use std::time::Instant;

/// The regions of the benchmark's Organization.
pub const REGIONS: [&str; 4] = ["us-east-1", "us-east-2", "eu-west-1", "ap-southeast-1"];

const IMAGE: &str = "ami-12c6146b";
const TYPES: [&str; 5] = [
    "m5.xlarge",
    "c5.2xlarge",
    "t3.large",
    "r5.large",
    "m5.2xlarge",
];
const TEAMS: [&str; 3] = ["payments", "search", "data"];

/// What one unit holds: (service, id, type) per resource.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct UnitFleet {
    pub account: String,
    pub region: String,
    pub resources: Vec<(Service, String, Option<String>)>,
    /// Seconds the APIs took to create it.
    pub created_s: f64,
    pub run_instances_calls: u64,
}

impl UnitFleet {
    pub fn count(&self, service: Service) -> usize {
        self.resources.iter().filter(|r| r.0 == service).count()
    }
}

/// How a unit of `target` resources is made up: a few of each other
/// service (13 when there is room), then instances with their root volumes
/// and the rest as unattached volumes (about 46 % instances, 46 % root
/// volumes, 8 % extra volumes of what is left).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Plan {
    pub instances: usize,
    pub extra_volumes: usize,
    pub others: [(Service, usize); 6],
}

impl Plan {
    pub fn of(target: usize) -> Plan {
        let mut others = [
            (Service::Rds, 2),
            (Service::ElastiCache, 2),
            (Service::Lambda, 4),
            (Service::Ecs, 2),
            (Service::DynamoDb, 2),
            (Service::S3, 1),
        ];
        if target < 100 {
            for o in &mut others {
                o.1 = usize::from(target >= 20 && o.0 != Service::Lambda);
            }
        }
        let rest = target.saturating_sub(others.iter().map(|o| o.1).sum());
        let instances = rest * 46 / 100;
        Plan {
            instances,
            extra_volumes: rest - 2 * instances,
            others,
        }
    }

    pub fn total(&self) -> usize {
        2 * self.instances + self.extra_volumes + self.others.iter().map(|o| o.1).sum::<usize>()
    }
}

fn in_region(config: &SdkConfig, region: &str) -> SdkConfig {
    config
        .to_builder()
        .region(Region::new(region.to_string()))
        .build()
}

fn team_tag(kind: ResourceType, team: &str) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(kind)
        .tags(Tag::builder().key("team").value(team).build())
        .tags(
            Tag::builder()
                .key("owner")
                .value(format!("{team}@example.com"))
                .build(),
        )
        .build()
}

/// Creates `plan` in `region` of the account `config` administers.
pub async fn create_unit(
    config: &SdkConfig,
    account: &str,
    region: &str,
    plan: &Plan,
    batch: usize,
) -> Result<UnitFleet, String> {
    let t = Instant::now();
    let c = in_region(config, region);
    let ec2 = aws_sdk_ec2::Client::new(&c);
    let mut unit = UnitFleet {
        account: account.to_string(),
        region: region.to_string(),
        ..UnitFleet::default()
    };
    let mut left = plan.instances;
    let mut k = 0usize;
    while left > 0 {
        let n = left.min(batch.max(1));
        let ty = TYPES[k % TYPES.len()];
        let out = ec2
            .run_instances()
            .image_id(IMAGE)
            .instance_type(InstanceType::from(ty))
            .min_count(n as i32)
            .max_count(n as i32)
            .tag_specifications(team_tag(ResourceType::Instance, TEAMS[k % TEAMS.len()]))
            .send()
            .await
            .map_err(|e| {
                format!(
                    "RunInstances in {account}/{region}: {}",
                    aws_sdk_ec2::error::DisplayErrorContext(e)
                )
            })?;
        unit.run_instances_calls += 1;
        for i in out.instances() {
            let Some(id) = i.instance_id() else { continue };
            unit.resources
                .push((Service::Ec2, id.to_string(), Some(ty.to_string())));
            for m in i.block_device_mappings() {
                if let Some(v) = m.ebs().and_then(|e| e.volume_id()) {
                    unit.resources.push((Service::Ebs, v.to_string(), None));
                }
            }
        }
        left -= n;
        k += 1;
    }
    let volumes: Vec<(String, String)> = futures::stream::iter(0..plan.extra_volumes)
        .map(|v| {
            let ec2 = ec2.clone();
            async move {
                let ty = ["gp2", "gp3", "io1"][v % 3];
                let out = ec2
                    .create_volume()
                    .availability_zone(format!("{region}a"))
                    .size(100)
                    .volume_type(VolumeType::from(ty))
                    .set_iops((ty == "io1").then_some(5000))
                    .tag_specifications(team_tag(ResourceType::Volume, TEAMS[v % TEAMS.len()]))
                    .send()
                    .await
                    .map_err(|e| {
                        format!(
                            "CreateVolume in {region}: {}",
                            aws_sdk_ec2::error::DisplayErrorContext(e)
                        )
                    })?;
                Ok::<_, String>((out.volume_id.unwrap_or_default(), ty.to_string()))
            }
        })
        .buffered(4)
        .try_collect()
        .await?;
    for (id, ty) in volumes {
        unit.resources.push((Service::Ebs, id, Some(ty)));
    }
    let mut others = Estate {
        resources: estate::resources(&plan.others),
        series: Vec::new(),
    };
    for r in &mut others.resources {
        r.region = region.to_string();
        if r.service == Service::S3 {
            // Bucket names are global.
            r.id = format!("{}-{account}-{region}", r.id);
        }
    }
    if !others.resources.is_empty() {
        finops_local::aws_estate::create(&c, &mut others)
            .await
            .map_err(|e| format!("{account}/{region}: {e}"))?;
    }
    unit.resources.extend(
        others
            .resources
            .into_iter()
            .map(|r| (r.service, r.id, r.resource_type)),
    );
    unit.created_s = t.elapsed().as_secs_f64();
    Ok(unit)
}

/// `total` resources over `units` units: as even as it divides.
pub fn split(total: usize, units: usize) -> Vec<usize> {
    let units = units.max(1);
    (0..units)
        .map(|k| total / units + usize::from(k < total % units))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_unit_plan_adds_up() {
        for t in [0, 5, 20, 99, 100, 500, 501, 2000] {
            let p = Plan::of(t);
            assert!(p.total() <= t && t - p.total() <= 1, "{t}: {p:?}");
        }
        assert_eq!(split(10, 4), vec![3, 3, 2, 2]);
    }
}
