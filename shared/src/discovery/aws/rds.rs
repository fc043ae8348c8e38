//! RDS instances (DescribeDBInstances: class, engine, Multi-AZ, storage,
//! replicas, security groups and tags in one listing).

use super::{pages, UnitClients, SECURITY_GROUPS};
use crate::domain::{relation_kinds, Relation, Resource, Service};
use crate::{Error, Result};
use aws_sdk_rds::types::DbInstance;
use serde_json::json;
use std::collections::BTreeMap;

/// DescribeDBInstances' MaxRecords: 20 to 100.
const PAGE: usize = 100;

pub(super) async fn discover(c: &UnitClients) -> Result<(Vec<Resource>, BTreeMap<String, u64>)> {
    let config = aws_sdk_rds::config::Builder::from(&c.config)
        .interceptor(c.counter.clone())
        .build();
    let found: Vec<DbInstance> = aws_sdk_rds::Client::from_conf(config)
        .describe_db_instances()
        .max_records(PAGE as i32)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| Error::from_sdk("DescribeDBInstances", e))?;
    let minimum = BTreeMap::from([(
        "RDS:DescribeDBInstances".to_string(),
        pages(found.len(), PAGE),
    )]);
    Ok((
        found.iter().filter_map(|d| instance(c, d)).collect(),
        minimum,
    ))
}

fn instance(c: &UnitClients, d: &DbInstance) -> Option<Resource> {
    let id = d.db_instance_identifier()?;
    let mut r = c.resource(Service::Rds, id, "rds:DescribeDBInstances");
    r.resource_type = d.db_instance_class().map(str::to_string);
    r.tags = d
        .tag_list()
        .iter()
        .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or("").to_string())))
        .collect();
    let a = &mut r.attributes;
    a.insert("engine".into(), json!(d.engine()));
    a.insert("engineVersion".into(), json!(d.engine_version()));
    a.insert("multiAz".into(), json!(d.multi_az().unwrap_or(false)));
    a.insert("storageType".into(), json!(d.storage_type()));
    a.insert("allocatedStorageGiB".into(), json!(d.allocated_storage()));
    a.insert("iops".into(), json!(d.iops()));
    a.insert("status".into(), json!(d.db_instance_status()));
    let groups: Vec<&str> = d
        .vpc_security_groups()
        .iter()
        .filter_map(|g| g.vpc_security_group_id())
        .collect();
    a.insert(SECURITY_GROUPS.into(), json!(groups));
    a.insert(
        "readReplicas".into(),
        json!(d.read_replica_db_instance_identifiers()),
    );
    if let Some(source) = d.read_replica_source_db_instance_identifier() {
        // The source may be an ARN (a cross-region replica); the inventory
        // knows it by its identifier.
        let source_id = source.rsplit(':').next().unwrap_or(source);
        a.insert("replicaSource".into(), json!(source_id));
        r.relations.push(
            Relation::new(relation_kinds::REPLICA_OF, source_id).with_evidence(format!(
                "DescribeDBInstances: {id} is a read replica of {source}"
            )),
        );
    }
    Some(r)
}
