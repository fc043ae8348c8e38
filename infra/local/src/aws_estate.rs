//! The demo estate created through the AWS APIs in the emulator, as an
//! account would hold it (RunInstances, CreateVolume, CreateDBInstance,
//! CreateCacheCluster, CreateFunction, CreateService, CreateTable,
//! CreateBucket, with their types, sizes and tags), so that the cycle's
//! discovery finds it. Ids the APIs choose (instances, volumes) replace the
//! planned ones in the estate's resources and metric series.

use crate::estate::Estate;
use crate::LocalError;
use aws_config::{Region, SdkConfig};
use shared::domain::{Resource, Service};
use std::collections::{BTreeMap, BTreeSet};

/// The image every demo instance runs (one moto knows).
const IMAGE: &str = "ami-760aaa0f";

fn err(resource: &str, e: impl std::fmt::Display) -> LocalError {
    LocalError::Create {
        resource: resource.to_string(),
        message: e.to_string(),
    }
}

fn in_region(config: &SdkConfig, region: &str) -> SdkConfig {
    config
        .to_builder()
        .region(Region::new(region.to_string()))
        .build()
}

/// A minimal Lambda package: the empty zip archive (moto stores it, never runs it).
fn empty_zip() -> Vec<u8> {
    let mut v = vec![0x50, 0x4b, 0x05, 0x06];
    v.extend([0u8; 18]);
    v
}

/// The role every demo function runs as (Lambda refuses a missing one).
async fn lambda_role(config: &SdkConfig) -> Result<String, LocalError> {
    let iam = aws_sdk_iam::Client::new(config);
    if let Ok(out) = iam.get_role().role_name("finops-demo-lambda").send().await {
        if let Some(role) = out.role {
            return Ok(role.arn);
        }
    }
    let role = iam
        .create_role()
        .role_name("finops-demo-lambda")
        .assume_role_policy_document(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#,
        )
        .send()
        .await
        .map_err(|e| err("IAM role finops-demo-lambda", aws_sdk_iam::error::DisplayErrorContext(e)))?
        .role
        .ok_or_else(|| err("IAM role finops-demo-lambda", "no role in the answer"))?;
    Ok(role.arn)
}

fn attr_i32(r: &Resource, key: &str) -> Option<i32> {
    r.attributes
        .get(key)
        .and_then(|v| v.as_i64())
        .and_then(|v| i32::try_from(v).ok())
}

/// Creates every resource of `estate` in the emulator behind `config`, in
/// its region (an account's resources with that account's `config`: the
/// caller splits an organization's estate by account), and renames the
/// instances and volumes to the ids the APIs gave them. Returns how many
/// were created.
pub async fn create(config: &SdkConfig, estate: &mut Estate) -> Result<usize, LocalError> {
    let regions: BTreeSet<String> = estate.resources.iter().map(|r| r.region.clone()).collect();
    let role = lambda_role(config).await?;
    let mut renamed: BTreeMap<String, String> = BTreeMap::new();
    let mut created = 0usize;
    for region in regions {
        let c = in_region(config, &region);
        let mine: Vec<usize> = (0..estate.resources.len())
            .filter(|&k| estate.resources[k].region == region)
            .collect();
        let ec2 = aws_sdk_ec2::Client::new(&c);
        // Per team: the app's security group and the database's, which
        // admits it (the relation discovery reads as a dependency).
        let mut app_sg: BTreeMap<String, String> = BTreeMap::new();
        let mut db_sg: BTreeMap<String, String> = BTreeMap::new();
        for team in ["payments", "search", "data"] {
            let app = ec2
                .create_security_group()
                .group_name(format!("{team}-app"))
                .description("application servers")
                .send()
                .await
                .map_err(|e| err("security group", aws_sdk_ec2::error::DisplayErrorContext(e)))?
                .group_id
                .unwrap_or_default();
            let db = ec2
                .create_security_group()
                .group_name(format!("{team}-db"))
                .description("databases, reached from the application servers")
                .send()
                .await
                .map_err(|e| err("security group", aws_sdk_ec2::error::DisplayErrorContext(e)))?
                .group_id
                .unwrap_or_default();
            ec2.authorize_security_group_ingress()
                .group_id(&db)
                .ip_permissions(
                    aws_sdk_ec2::types::IpPermission::builder()
                        .ip_protocol("tcp")
                        .from_port(5432)
                        .to_port(5432)
                        .user_id_group_pairs(
                            aws_sdk_ec2::types::UserIdGroupPair::builder()
                                .group_id(&app)
                                .build(),
                        )
                        .build(),
                )
                .send()
                .await
                .map_err(|e| {
                    err(
                        "security group rule",
                        aws_sdk_ec2::error::DisplayErrorContext(e),
                    )
                })?;
            app_sg.insert(team.to_string(), app);
            db_sg.insert(team.to_string(), db);
        }
        let team_of = |r: &Resource| r.tags.get("team").cloned().unwrap_or_else(|| "data".into());
        let mut instances_by_planned: BTreeMap<String, String> = BTreeMap::new();
        for &k in &mine {
            let r = estate.resources[k].clone();
            let team = team_of(&r);
            match r.service {
                Service::Ec2 => {
                    let id = ec2::run(&ec2, &r, app_sg.get(&team)).await?;
                    instances_by_planned.insert(r.id.clone(), id.clone());
                    renamed.insert(r.id.clone(), id);
                }
                Service::Ebs => {
                    let id = ec2::volume(&ec2, &r).await?;
                    renamed.insert(r.id.clone(), id);
                }
                Service::Rds => others::rds(&c, &r, db_sg.get(&team)).await?,
                Service::ElastiCache => others::cache(&c, &r).await?,
                Service::Lambda => others::function(&c, &r, &role).await?,
                Service::Ecs => others::ecs_service(&c, &r).await?,
                Service::S3 => others::bucket(&c, &r).await?,
                Service::DynamoDb => others::table(&c, &r).await?,
            }
            created += 1;
        }
        // Every other volume is attached to an instance of its region.
        let instances: Vec<&String> = instances_by_planned.values().collect();
        let volumes: Vec<String> = mine
            .iter()
            .filter(|&&k| estate.resources[k].service == Service::Ebs)
            .filter_map(|&k| renamed.get(&estate.resources[k].id).cloned())
            .collect();
        for (n, vol) in volumes.iter().enumerate().filter(|(n, _)| n % 2 == 0) {
            if let Some(instance) = instances.get(n / 2 % instances.len().max(1)) {
                ec2.attach_volume()
                    .volume_id(vol)
                    .instance_id(*instance)
                    .device("/dev/sdf")
                    .send()
                    .await
                    .map_err(|e| {
                        err(
                            "volume attachment",
                            aws_sdk_ec2::error::DisplayErrorContext(e),
                        )
                    })?;
            }
        }
    }
    rename(estate, &renamed);
    Ok(created)
}

/// The planned ids replaced by the real ones, in resources and series.
fn rename(estate: &mut Estate, renamed: &BTreeMap<String, String>) {
    for r in &mut estate.resources {
        if let Some(id) = renamed.get(&r.id) {
            r.id = id.clone();
        }
        for rel in &mut r.relations {
            if let Some(id) = renamed.get(&rel.target_id) {
                rel.target_id = id.clone();
            }
        }
    }
    for s in &mut estate.series {
        for (_, v) in &mut s.dimensions {
            if let Some(id) = renamed.get(v) {
                *v = id.clone();
            }
        }
    }
}

mod ec2 {
    use super::*;
    use aws_sdk_ec2::types::{InstanceType, ResourceType, Tag, TagSpecification, VolumeType};

    fn tags(kind: ResourceType, r: &Resource) -> TagSpecification {
        let mut spec = TagSpecification::builder().resource_type(kind);
        for (k, v) in &r.tags {
            spec = spec.tags(Tag::builder().key(k).value(v).build());
        }
        spec.build()
    }

    pub(super) async fn run(
        ec2: &aws_sdk_ec2::Client,
        r: &Resource,
        sg: Option<&String>,
    ) -> Result<String, LocalError> {
        let ty = r.resource_type.as_deref().unwrap_or("m5.large");
        let out = ec2
            .run_instances()
            .image_id(IMAGE)
            .instance_type(InstanceType::from(ty))
            .min_count(1)
            .max_count(1)
            .set_security_group_ids(sg.map(|g| vec![g.clone()]))
            .tag_specifications(tags(ResourceType::Instance, r))
            .send()
            .await
            .map_err(|e| err(&r.id, aws_sdk_ec2::error::DisplayErrorContext(e)))?;
        out.instances()
            .first()
            .and_then(|i| i.instance_id())
            .map(str::to_string)
            .ok_or_else(|| err(&r.id, "RunInstances returned no instance"))
    }

    pub(super) async fn volume(
        ec2: &aws_sdk_ec2::Client,
        r: &Resource,
    ) -> Result<String, LocalError> {
        let ty = VolumeType::from(r.resource_type.as_deref().unwrap_or("gp3"));
        let iops = matches!(ty, VolumeType::Io1 | VolumeType::Io2)
            .then_some(attr_i32(r, "iops").unwrap_or(3000));
        let out = ec2
            .create_volume()
            .availability_zone(format!("{}a", r.region))
            .size(attr_i32(r, "sizeGiB").unwrap_or(100))
            .volume_type(ty)
            .set_iops(iops)
            .tag_specifications(tags(ResourceType::Volume, r))
            .send()
            .await
            .map_err(|e| err(&r.id, aws_sdk_ec2::error::DisplayErrorContext(e)))?;
        out.volume_id
            .ok_or_else(|| err(&r.id, "CreateVolume returned no volume"))
    }
}

mod others;
