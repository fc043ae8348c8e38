//! The services whose resources are named by their creator: RDS,
//! ElastiCache, Lambda, ECS, S3 and DynamoDB.

use super::{attr_i32, empty_zip, err};
use crate::LocalError;
use aws_config::SdkConfig;
use shared::domain::Resource;

pub(super) async fn rds(
    c: &SdkConfig,
    r: &Resource,
    sg: Option<&String>,
) -> Result<(), LocalError> {
    let tags: Vec<aws_sdk_rds::types::Tag> = r
        .tags
        .iter()
        .map(|(k, v)| aws_sdk_rds::types::Tag::builder().key(k).value(v).build())
        .collect();
    aws_sdk_rds::Client::new(c)
        .create_db_instance()
        .db_instance_identifier(&r.id)
        .db_instance_class(r.resource_type.as_deref().unwrap_or("db.m5.large"))
        .engine("postgres")
        .allocated_storage(100)
        .storage_type("gp3")
        .multi_az(r.tags.get("env").is_some_and(|e| e == "prod"))
        .master_username("finops")
        .master_user_password("demo-password-1")
        .set_vpc_security_group_ids(sg.map(|g| vec![g.clone()]))
        .set_tags(Some(tags))
        .send()
        .await
        .map_err(|e| err(&r.id, aws_sdk_rds::error::DisplayErrorContext(e)))?;
    Ok(())
}

pub(super) async fn cache(c: &SdkConfig, r: &Resource) -> Result<(), LocalError> {
    let tags: Vec<aws_sdk_elasticache::types::Tag> = r
        .tags
        .iter()
        .map(|(k, v)| {
            aws_sdk_elasticache::types::Tag::builder()
                .key(k)
                .value(v)
                .build()
        })
        .collect();
    aws_sdk_elasticache::Client::new(c)
        .create_cache_cluster()
        .cache_cluster_id(&r.id)
        .cache_node_type(r.resource_type.as_deref().unwrap_or("cache.m5.large"))
        .engine("redis")
        .num_cache_nodes(1)
        .set_tags(Some(tags))
        .send()
        .await
        .map_err(|e| err(&r.id, aws_sdk_elasticache::error::DisplayErrorContext(e)))?;
    Ok(())
}

pub(super) async fn function(c: &SdkConfig, r: &Resource, role: &str) -> Result<(), LocalError> {
    use aws_sdk_lambda::types::{Architecture, FunctionCode, Runtime};
    let arch = match r.attributes.get("architecture").and_then(|v| v.as_str()) {
        Some("arm64") => Architecture::Arm64,
        _ => Architecture::X8664,
    };
    aws_sdk_lambda::Client::new(c)
        .create_function()
        .function_name(&r.id)
        .runtime(Runtime::Providedal2023)
        .role(role)
        .handler("bootstrap")
        .memory_size(r.memory_mb.map_or(1024, |m| m as i32))
        .architectures(arch)
        .code(
            FunctionCode::builder()
                .zip_file(aws_sdk_lambda::primitives::Blob::new(empty_zip()))
                .build(),
        )
        .set_tags(Some(r.tags.clone().into_iter().collect()))
        .send()
        .await
        .map_err(|e| err(&r.id, aws_sdk_lambda::error::DisplayErrorContext(e)))?;
    Ok(())
}

/// `cluster/service`: the cluster (once), a task definition of the
/// service's CPU and memory, and the service.
pub(super) async fn ecs_service(c: &SdkConfig, r: &Resource) -> Result<(), LocalError> {
    use aws_sdk_ecs::types::{Compatibility, ContainerDefinition, LaunchType, Tag};
    let (cluster, name) = r.id.split_once('/').unwrap_or(("default", r.id.as_str()));
    let ecs = aws_sdk_ecs::Client::new(c);
    let e = |e| err(&r.id, aws_sdk_ecs::error::DisplayErrorContext(e));
    // CreateCluster of an existing name answers with that cluster.
    ecs.create_cluster()
        .cluster_name(cluster)
        .send()
        .await
        .map_err(|x| err(&r.id, aws_sdk_ecs::error::DisplayErrorContext(x)))?;
    let cpu = attr_i32(r, "cpu").unwrap_or(1024);
    let memory = attr_i32(r, "memory").unwrap_or(2048);
    let family = format!("{name}-task");
    ecs.register_task_definition()
        .family(&family)
        .cpu(cpu.to_string())
        .memory(memory.to_string())
        .requires_compatibilities(Compatibility::Fargate)
        .container_definitions(
            ContainerDefinition::builder()
                .name(name)
                .image("public.ecr.aws/nginx/nginx:stable")
                .memory(memory)
                .build(),
        )
        .send()
        .await
        .map_err(|x| err(&r.id, aws_sdk_ecs::error::DisplayErrorContext(x)))?;
    let tags: Vec<Tag> = r
        .tags
        .iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect();
    ecs.create_service()
        .cluster(cluster)
        .service_name(name)
        .task_definition(&family)
        .desired_count(attr_i32(r, "desiredCount").unwrap_or(2))
        .launch_type(LaunchType::Fargate)
        .set_tags(Some(tags))
        .send()
        .await
        .map_err(e)?;
    Ok(())
}

pub(super) async fn bucket(c: &SdkConfig, r: &Resource) -> Result<(), LocalError> {
    use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration, Tag, Tagging};
    let s3 = aws_sdk_s3::Client::new(c);
    let mut create = s3.create_bucket().bucket(&r.id);
    if r.region != "us-east-1" {
        create = create.create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(r.region.as_str()))
                .build(),
        );
    }
    create
        .send()
        .await
        .map_err(|e| err(&r.id, aws_sdk_s3::error::DisplayErrorContext(e)))?;
    let tags: Vec<Tag> = r
        .tags
        .iter()
        .filter_map(|(k, v)| Tag::builder().key(k).value(v).build().ok())
        .collect();
    s3.put_bucket_tagging()
        .bucket(&r.id)
        .tagging(
            Tagging::builder()
                .set_tag_set(Some(tags))
                .build()
                .map_err(|e| err(&r.id, e))?,
        )
        .send()
        .await
        .map_err(|e| err(&r.id, aws_sdk_s3::error::DisplayErrorContext(e)))?;
    Ok(())
}

pub(super) async fn table(c: &SdkConfig, r: &Resource) -> Result<(), LocalError> {
    use aws_sdk_dynamodb::types::*;
    let key = KeySchemaElement::builder()
        .attribute_name("pk")
        .key_type(KeyType::Hash)
        .build()
        .map_err(|e| err(&r.id, e))?;
    let def = AttributeDefinition::builder()
        .attribute_name("pk")
        .attribute_type(ScalarAttributeType::S)
        .build()
        .map_err(|e| err(&r.id, e))?;
    let tags: Vec<Tag> = r
        .tags
        .iter()
        .filter_map(|(k, v)| Tag::builder().key(k).value(v).build().ok())
        .collect();
    let mut create = aws_sdk_dynamodb::Client::new(c)
        .create_table()
        .table_name(&r.id)
        .key_schema(key)
        .attribute_definitions(def)
        .set_tags(Some(tags));
    create = match r.resource_type.as_deref() {
        Some("PAY_PER_REQUEST") => create.billing_mode(BillingMode::PayPerRequest),
        _ => create.provisioned_throughput(
            ProvisionedThroughput::builder()
                .read_capacity_units(
                    attr_i32(r, "provisionedReadCapacityUnits")
                        .unwrap_or(100)
                        .into(),
                )
                .write_capacity_units(
                    attr_i32(r, "provisionedWriteCapacityUnits")
                        .unwrap_or(100)
                        .into(),
                )
                .build()
                .map_err(|e| err(&r.id, e))?,
        ),
    };
    create
        .send()
        .await
        .map_err(|e| err(&r.id, aws_sdk_dynamodb::error::DisplayErrorContext(e)))?;
    Ok(())
}
