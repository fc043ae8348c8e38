//! EC2 instances, EBS volumes and security groups (DescribeInstances,
//! DescribeVolumes, DescribeSecurityGroups), and the enabled regions
//! (DescribeRegions).

use super::{pages, UnitClients, SECURITY_GROUPS};
use crate::domain::{relation_kinds, Relation, Resource, Service};
use crate::{Error, Result};
use aws_config::SdkConfig;
use aws_sdk_ec2::types::{Instance, Tag, Volume};
use serde_json::json;
use std::collections::{BTreeMap, HashMap};

/// DescribeInstances, DescribeVolumes and DescribeSecurityGroups return at
/// most 1,000 items a page.
const PAGE: usize = 1000;

/// The tag EC2 Auto Scaling puts on every instance it launches.
const ASG_TAG: &str = "aws:autoscaling:groupName";

/// A security group and the groups its inbound rules admit.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SecurityGroupRefs {
    pub group_id: String,
    pub admits: Vec<String>,
}

pub(crate) struct Ec2Found {
    pub resources: Vec<Resource>,
    pub security_groups: Vec<SecurityGroupRefs>,
    pub minimum: BTreeMap<String, u64>,
}

/// The regions enabled for the account (opted in, or needing no opt-in).
pub(super) async fn enabled_regions(base: &SdkConfig) -> Result<Vec<String>> {
    let out = aws_sdk_ec2::Client::new(base)
        .describe_regions()
        .all_regions(false)
        .send()
        .await
        .map_err(|e| Error::from_sdk("DescribeRegions", e))?;
    let mut regions: Vec<String> = out
        .regions()
        .iter()
        .filter(|r| r.opt_in_status() != Some("not-opted-in"))
        .filter_map(|r| r.region_name().map(str::to_string))
        .collect();
    regions.sort();
    Ok(regions)
}

fn tags(list: &[Tag]) -> BTreeMap<String, String> {
    list.iter()
        .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or("").to_string())))
        .collect()
}

pub(super) async fn discover(c: &UnitClients, instances: bool, volumes: bool) -> Result<Ec2Found> {
    let config = aws_sdk_ec2::config::Builder::from(&c.config)
        .interceptor(c.counter.clone())
        .build();
    let client = aws_sdk_ec2::Client::from_conf(config);
    let mut minimum = BTreeMap::new();
    let mut resources = Vec::new();
    // Instances are read for volumes too: a volume's attachment names them.
    let reservations: Vec<_> = client
        .describe_instances()
        .max_results(PAGE as i32)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| Error::from_sdk("DescribeInstances", e))?;
    let all: Vec<&Instance> = reservations.iter().flat_map(|r| r.instances()).collect();
    minimum.insert("EC2:DescribeInstances".into(), pages(all.len(), PAGE));
    if instances {
        resources.extend(all.iter().filter_map(|i| instance(c, i)));
    }
    if volumes {
        let found: Vec<Volume> = client
            .describe_volumes()
            .max_results(PAGE as i32)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| Error::from_sdk("DescribeVolumes", e))?;
        minimum.insert("EC2:DescribeVolumes".into(), pages(found.len(), PAGE));
        resources.extend(found.iter().filter_map(|v| volume(c, v)));
    }
    let groups: Vec<_> = client
        .describe_security_groups()
        .max_results(PAGE as i32)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| Error::from_sdk("DescribeSecurityGroups", e))?;
    minimum.insert(
        "EC2:DescribeSecurityGroups".into(),
        pages(groups.len(), PAGE),
    );
    let security_groups = groups
        .iter()
        .filter_map(|g| {
            let admits: Vec<String> = g
                .ip_permissions()
                .iter()
                .flat_map(|p| p.user_id_group_pairs())
                .filter_map(|pair| pair.group_id().map(str::to_string))
                .filter(|id| Some(id.as_str()) != g.group_id())
                .collect();
            Some(SecurityGroupRefs {
                group_id: g.group_id()?.to_string(),
                admits,
            })
        })
        .filter(|g| !g.admits.is_empty())
        .collect();
    Ok(Ec2Found {
        resources,
        security_groups,
        minimum,
    })
}

fn instance(c: &UnitClients, i: &Instance) -> Option<Resource> {
    let id = i.instance_id()?;
    let mut r = c.resource(Service::Ec2, id, "ec2:DescribeInstances");
    r.resource_type = i.instance_type().map(|t| t.as_str().to_string());
    r.tags = tags(i.tags());
    let state = i.state().and_then(|s| s.name()).map(|s| s.as_str());
    let a = &mut r.attributes;
    a.insert("state".into(), json!(state));
    // No lifecycle means on-demand (spot and scheduled are named).
    a.insert(
        "lifecycle".into(),
        json!(i.instance_lifecycle().map_or("on-demand", |l| l.as_str())),
    );
    a.insert(
        "platform".into(),
        json!(i
            .platform_details()
            .or(i.platform().map(|p| p.as_str()))
            .unwrap_or("Linux/UNIX")),
    );
    if let Some(t) = i.launch_time() {
        a.insert("launchTime".into(), json!(t.to_string()));
    }
    if let Some(arch) = i.architecture() {
        a.insert("architecture".into(), json!(arch.as_str()));
    }
    if let Some(az) = i.placement().and_then(|p| p.availability_zone()) {
        a.insert("availabilityZone".into(), json!(az));
    }
    let groups: Vec<&str> = i
        .security_groups()
        .iter()
        .filter_map(|g| g.group_id())
        .collect();
    a.insert(SECURITY_GROUPS.into(), json!(groups));
    let mut volumes = Vec::new();
    for m in i.block_device_mappings() {
        if let Some(v) = m.ebs().and_then(|e| e.volume_id()) {
            volumes.push(v.to_string());
            r.relations.push(
                Relation::new(relation_kinds::USES, v).with_evidence(format!(
                    "DescribeInstances: {id} has {v} at {}",
                    m.device_name().unwrap_or("?")
                )),
            );
        }
    }
    r.attributes.insert("volumes".into(), json!(volumes));
    if let Some(asg) = r.tags.get(ASG_TAG).cloned() {
        r.attributes.insert("autoScalingGroup".into(), json!(asg));
        r.relations.push(
            Relation::new(relation_kinds::MEMBER_OF, asg.clone())
                .with_evidence(format!("DescribeInstances: {id} tagged {ASG_TAG}={asg}")),
        );
    }
    Some(r)
}

fn volume(c: &UnitClients, v: &Volume) -> Option<Resource> {
    let id = v.volume_id()?;
    let mut r = c.resource(Service::Ebs, id, "ec2:DescribeVolumes");
    r.resource_type = v.volume_type().map(|t| t.as_str().to_string());
    r.tags = tags(v.tags());
    let a = &mut r.attributes;
    a.insert("sizeGiB".into(), json!(v.size()));
    a.insert("iops".into(), json!(v.iops()));
    a.insert("throughputMiBps".into(), json!(v.throughput()));
    a.insert("state".into(), json!(v.state().map(|s| s.as_str())));
    if let Some(az) = v.availability_zone() {
        a.insert("availabilityZone".into(), json!(az));
    }
    let attached: Vec<_> = v
        .attachments()
        .iter()
        .filter_map(|att| Some((att.instance_id()?, att.device().unwrap_or("?"))))
        .collect();
    a.insert("attached".into(), json!(!attached.is_empty()));
    // The analysis reads the instance a volume serves and the volume's age
    // (a volume younger than the lookback is judged on its own days).
    if let Some((instance, _)) = attached.first() {
        a.insert("attachedTo".into(), json!(instance));
    }
    if let Some(t) = v.create_time() {
        a.insert("createdAt".into(), json!(t.to_string()));
    }
    let mut by_instance: HashMap<&str, &str> = HashMap::new();
    for (instance, device) in attached {
        by_instance.insert(instance, device);
    }
    let mut pairs: Vec<_> = by_instance.into_iter().collect();
    pairs.sort();
    for (instance, device) in pairs {
        r.relations.push(
            Relation::new(relation_kinds::ATTACHED_TO, instance).with_evidence(format!(
                "DescribeVolumes: {id} attached to {instance} as {device}"
            )),
        );
    }
    Some(r)
}
