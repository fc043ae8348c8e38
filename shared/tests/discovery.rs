//! Discovery against the emulator, through the real SDK: every service's
//! resources created with their APIs in two regions, then found with their
//! attributes and relations; an Organization of three member accounts
//! reached by AssumeRole, one of which has no member role.
//!
//! Each test has an emulator of its own: discovery lists the whole account.

use aws_config::{Region, SdkConfig};
use finops_local::{Emulator, LocalStack};
use shared::discovery::{AccountsMode, AwsEstate, Estate, Regions, Scope, Unit};
use shared::domain::{relation_kinds, Resource, Service};
use std::collections::BTreeMap;

const ACCOUNT: &str = "123456789012";

fn in_region(config: &SdkConfig, region: &str) -> SdkConfig {
    config
        .to_builder()
        .region(Region::new(region.to_string()))
        .build()
}

fn unit(account: &str, region: &str) -> Unit {
    Unit {
        account_id: account.into(),
        region: region.into(),
    }
}

fn find<'a>(found: &'a [Resource], service: Service, id: &str) -> &'a Resource {
    found
        .iter()
        .find(|r| r.service == service && r.id == id)
        .unwrap_or_else(|| panic!("{service} {id} not discovered in {:#?}", ids(found)))
}

fn ids(found: &[Resource]) -> Vec<String> {
    found
        .iter()
        .map(|r| format!("{}:{}", r.service, r.id))
        .collect()
}

fn attr<'a>(r: &'a Resource, key: &str) -> &'a serde_json::Value {
    r.attributes.get(key).unwrap_or(&serde_json::Value::Null)
}

/// A minimal Lambda package (moto stores it, never runs it).
fn zip() -> Vec<u8> {
    // An empty zip archive: the end-of-central-directory record alone.
    let mut v = vec![0x50, 0x4b, 0x05, 0x06];
    v.extend([0u8; 18]);
    v
}

async fn lambda_role(config: &SdkConfig) -> String {
    let iam = aws_sdk_iam::Client::new(config);
    iam.create_role()
        .role_name("lambda-exec")
        .assume_role_policy_document(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#,
        )
        .send()
        .await
        .unwrap()
        .role
        .unwrap()
        .arn
}

/// One of each service in `region`, named with `p`.
async fn create_estate(config: &SdkConfig, region: &str, p: &str, role_arn: &str) {
    use aws_sdk_ec2::types::{
        IpPermission, ResourceType, Tag, TagSpecification, UserIdGroupPair, VolumeType,
    };
    let c = in_region(config, region);
    let ec2 = aws_sdk_ec2::Client::new(&c);
    let sg_app = ec2
        .create_security_group()
        .group_name(format!("{p}-app"))
        .description("app")
        .send()
        .await
        .unwrap()
        .group_id
        .unwrap();
    let sg_db = ec2
        .create_security_group()
        .group_name(format!("{p}-db"))
        .description("db")
        .send()
        .await
        .unwrap()
        .group_id
        .unwrap();
    ec2.authorize_security_group_ingress()
        .group_id(&sg_db)
        .ip_permissions(
            IpPermission::builder()
                .ip_protocol("tcp")
                .from_port(5432)
                .to_port(5432)
                .user_id_group_pairs(UserIdGroupPair::builder().group_id(&sg_app).build())
                .build(),
        )
        .send()
        .await
        .unwrap();
    let tags = |kind: ResourceType, pairs: &[(&str, &str)]| {
        let mut spec = TagSpecification::builder().resource_type(kind);
        for (k, v) in pairs {
            spec = spec.tags(Tag::builder().key(*k).value(*v).build());
        }
        spec.build()
    };
    let run = ec2
        .run_instances()
        .image_id("ami-12c6146b")
        .instance_type(aws_sdk_ec2::types::InstanceType::M5Xlarge)
        .min_count(1)
        .max_count(1)
        .security_group_ids(&sg_app)
        .tag_specifications(tags(
            ResourceType::Instance,
            &[
                ("team", "payments"),
                ("aws:autoscaling:groupName", "web-asg"),
            ],
        ))
        .send()
        .await
        .unwrap();
    let instance = run.instances()[0].instance_id().unwrap().to_string();
    let az = format!("{region}a");
    let vol = ec2
        .create_volume()
        .availability_zone(&az)
        .size(100)
        .volume_type(VolumeType::Gp2)
        .tag_specifications(tags(ResourceType::Volume, &[("owner", "data")]))
        .send()
        .await
        .unwrap()
        .volume_id
        .unwrap();
    ec2.attach_volume()
        .volume_id(&vol)
        .instance_id(&instance)
        .device("/dev/sdf")
        .send()
        .await
        .unwrap();
    ec2.create_volume()
        .availability_zone(&az)
        .size(500)
        .volume_type(VolumeType::Io1)
        .iops(5000)
        .send()
        .await
        .unwrap();

    let rds = aws_sdk_rds::Client::new(&c);
    rds.create_db_instance()
        .db_instance_identifier(format!("{p}-orders"))
        .db_instance_class("db.r5.xlarge")
        .engine("postgres")
        .allocated_storage(200)
        .storage_type("gp3")
        .multi_az(true)
        .master_username("finops")
        .master_user_password("not-a-secret-1")
        .vpc_security_group_ids(&sg_db)
        .tags(
            aws_sdk_rds::types::Tag::builder()
                .key("team")
                .value("payments")
                .build(),
        )
        .send()
        .await
        .unwrap();
    rds.create_db_instance_read_replica()
        .db_instance_identifier(format!("{p}-orders-ro"))
        .source_db_instance_identifier(format!("{p}-orders"))
        .db_instance_class("db.r5.large")
        .send()
        .await
        .unwrap();

    let cache = aws_sdk_elasticache::Client::new(&c);
    cache
        .create_cache_cluster()
        .cache_cluster_id(format!("{p}-sessions"))
        .cache_node_type("cache.m5.large")
        .engine("redis")
        .num_cache_nodes(1)
        .tags(
            aws_sdk_elasticache::types::Tag::builder()
                .key("team")
                .value("search")
                .build(),
        )
        .send()
        .await
        .unwrap();

    let ddb = aws_sdk_dynamodb::Client::new(&c);
    use aws_sdk_dynamodb::types::*;
    let table = ddb
        .create_table()
        .table_name(format!("{p}-events"))
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .provisioned_throughput(
            ProvisionedThroughput::builder()
                .read_capacity_units(100)
                .write_capacity_units(50)
                .build()
                .unwrap(),
        )
        .stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::NewImage)
                .build()
                .unwrap(),
        )
        .tags(
            aws_sdk_dynamodb::types::Tag::builder()
                .key("team")
                .value("data")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap()
        .table_description
        .unwrap();
    aws_sdk_applicationautoscaling::Client::new(&c)
        .register_scalable_target()
        .service_namespace(aws_sdk_applicationautoscaling::types::ServiceNamespace::Dynamodb)
        .resource_id(format!("table/{p}-events"))
        .scalable_dimension(
            aws_sdk_applicationautoscaling::types::ScalableDimension::DynamoDbTableReadCapacityUnits,
        )
        .min_capacity(5)
        .max_capacity(200)
        .send()
        .await
        .unwrap();

    let lambda = aws_sdk_lambda::Client::new(&c);
    lambda
        .create_function()
        .function_name(format!("{p}-ingest"))
        .runtime(aws_sdk_lambda::types::Runtime::Providedal2023)
        .role(role_arn)
        .handler("bootstrap")
        .memory_size(2048)
        .architectures(aws_sdk_lambda::types::Architecture::Arm64)
        .code(
            aws_sdk_lambda::types::FunctionCode::builder()
                .zip_file(aws_sdk_lambda::primitives::Blob::new(zip()))
                .build(),
        )
        .tags("team", "data")
        .send()
        .await
        .unwrap();
    lambda
        .create_event_source_mapping()
        .function_name(format!("{p}-ingest"))
        .event_source_arn(table.latest_stream_arn().unwrap())
        .starting_position(aws_sdk_lambda::types::EventSourcePosition::Latest)
        .send()
        .await
        .unwrap();

    let ecs = aws_sdk_ecs::Client::new(&c);
    ecs.create_cluster()
        .cluster_name(format!("{p}-prod"))
        .send()
        .await
        .unwrap();
    ecs.register_task_definition()
        .family(format!("{p}-web"))
        .cpu("1024")
        .memory("2048")
        .requires_compatibilities(aws_sdk_ecs::types::Compatibility::Fargate)
        .container_definitions(
            aws_sdk_ecs::types::ContainerDefinition::builder()
                .name("web")
                .image("nginx")
                .memory(2048)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let tg = format!("arn:aws:elasticloadbalancing:{region}:{ACCOUNT}:targetgroup/{p}-web/1");
    ecs.create_service()
        .cluster(format!("{p}-prod"))
        .service_name("web")
        .task_definition(format!("{p}-web"))
        .desired_count(4)
        .launch_type(aws_sdk_ecs::types::LaunchType::Fargate)
        .load_balancers(
            aws_sdk_ecs::types::LoadBalancer::builder()
                .target_group_arn(&tg)
                .container_name("web")
                .container_port(80)
                .build(),
        )
        .tags(
            aws_sdk_ecs::types::Tag::builder()
                .key("team")
                .value("search")
                .build(),
        )
        .send()
        .await
        .unwrap();

    let s3 = aws_sdk_s3::Client::new(&c);
    let mut bucket = s3.create_bucket().bucket(format!("{p}-logs"));
    if region != "us-east-1" {
        bucket = bucket.create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(region))
                .build(),
        );
    }
    bucket.send().await.unwrap();
    s3.put_bucket_tagging()
        .bucket(format!("{p}-logs"))
        .tagging(
            aws_sdk_s3::types::Tagging::builder()
                .tag_set(
                    aws_sdk_s3::types::Tag::builder()
                        .key("team")
                        .value("data")
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn every_service_is_discovered_with_its_attributes_in_two_regions() {
    let (_emulator, stack) = LocalStack::with_own_emulator().await;
    let role = lambda_role(&stack.config).await;
    create_estate(&stack.config, "us-east-1", "use", &role).await;
    create_estate(&stack.config, "eu-west-1", "euw", &role).await;
    let scope = Scope {
        regions: Regions::List(vec!["us-east-1".into(), "eu-west-1".into()]),
        accounts: AccountsMode::SelfOnly,
    };
    let estate = AwsEstate::new(stack.config.clone(), scope);
    assert_eq!(
        estate.units().await.unwrap(),
        vec![unit(ACCOUNT, "eu-west-1"), unit(ACCOUNT, "us-east-1")]
    );
    for (region, p) in [("us-east-1", "use"), ("eu-west-1", "euw")] {
        let found = estate
            .discover(&unit(ACCOUNT, region), &Service::ALL)
            .await
            .unwrap();
        let rs = &found.resources;
        // Nothing of the other region.
        assert!(rs.iter().all(|r| r.region == region), "{:?}", ids(rs));
        assert!(rs.iter().all(|r| r.account_id.as_deref() == Some(ACCOUNT)));
        assert!(rs
            .iter()
            .all(|r| r.discovered_at.is_some() && r.discovered_by.is_some()));

        let i = rs
            .iter()
            .find(|r| r.service == Service::Ec2)
            .expect("an instance");
        assert_eq!(i.resource_type.as_deref(), Some("m5.xlarge"));
        assert_eq!(attr(i, "state"), "running");
        assert_eq!(attr(i, "lifecycle"), "on-demand");
        assert_eq!(attr(i, "autoScalingGroup"), "web-asg");
        assert_eq!(i.tags.get("team").map(String::as_str), Some("payments"));
        assert!(i
            .relations
            .iter()
            .any(|x| x.kind == relation_kinds::MEMBER_OF && x.target_id == "web-asg"));

        let vols: Vec<&Resource> = rs.iter().filter(|r| r.service == Service::Ebs).collect();
        let gp2 = vols
            .iter()
            // Not the instance's root volume, which RunInstances makes gp2 too.
            .find(|v| {
                v.resource_type.as_deref() == Some("gp2")
                    && v.tags.get("owner").map(String::as_str) == Some("data")
            })
            .expect("the gp2 volume");
        assert_eq!(attr(gp2, "sizeGiB"), 100);
        assert_eq!(attr(gp2, "attached"), true);
        assert_eq!(gp2.tags.get("owner").map(String::as_str), Some("data"));
        let rel = &gp2.relations[0];
        assert_eq!(
            (rel.kind.as_str(), rel.target_id.as_str()),
            (relation_kinds::ATTACHED_TO, i.id.as_str())
        );
        assert!(
            rel.evidence.as_deref().unwrap().contains("as /dev/sdf"),
            "{rel:?}"
        );
        let io1 = vols
            .iter()
            .find(|v| v.resource_type.as_deref() == Some("io1"))
            .expect("the io1 volume");
        assert_eq!(
            (attr(io1, "iops"), attr(io1, "attached")),
            (&serde_json::json!(5000), &serde_json::json!(false))
        );

        let db = find(rs, Service::Rds, &format!("{p}-orders"));
        assert_eq!(db.resource_type.as_deref(), Some("db.r5.xlarge"));
        assert_eq!(
            (attr(db, "engine"), attr(db, "multiAz")),
            (&serde_json::json!("postgres"), &serde_json::json!(true))
        );
        assert_eq!(attr(db, "allocatedStorageGiB"), 200);
        assert_eq!(db.tags.get("team").map(String::as_str), Some("payments"));
        // Its security group admits the instance's: it depends on it.
        assert!(
            db.relations
                .iter()
                .any(|x| x.kind == relation_kinds::ADMITS && x.target_id == i.id),
            "{:?}",
            db.relations
        );
        let replica = find(rs, Service::Rds, &format!("{p}-orders-ro"));
        assert!(replica
            .relations
            .iter()
            .any(|x| x.kind == relation_kinds::REPLICA_OF && x.target_id == format!("{p}-orders")));

        let cache = find(rs, Service::ElastiCache, &format!("{p}-sessions"));
        assert_eq!(cache.resource_type.as_deref(), Some("cache.m5.large"));
        assert_eq!(
            (attr(cache, "engine"), attr(cache, "numCacheNodes")),
            (&serde_json::json!("redis"), &serde_json::json!(1))
        );
        assert_eq!(cache.tags.get("team").map(String::as_str), Some("search"));

        let f = find(rs, Service::Lambda, &format!("{p}-ingest"));
        assert_eq!(f.memory_mb, Some(2048));
        assert_eq!(
            (attr(f, "architecture"), attr(f, "runtime")),
            (
                &serde_json::json!("arm64"),
                &serde_json::json!("provided.al2023")
            )
        );
        assert_eq!(f.tags.get("team").map(String::as_str), Some("data"));
        let esm = f
            .relations
            .iter()
            .find(|x| x.target_id == format!("{p}-events"))
            .expect("the event source mapping");
        assert!(esm
            .evidence
            .as_deref()
            .unwrap()
            .starts_with("ListEventSourceMappings"));

        let svc = find(rs, Service::Ecs, &format!("{p}-prod/web"));
        assert_eq!(
            (attr(svc, "cpu"), attr(svc, "memory")),
            (&serde_json::json!(1024), &serde_json::json!(2048))
        );
        assert_eq!(
            (attr(svc, "desiredCount"), attr(svc, "launchType")),
            (&serde_json::json!(4), &serde_json::json!("FARGATE"))
        );
        assert_eq!(svc.tags.get("team").map(String::as_str), Some("search"));
        assert!(svc
            .relations
            .iter()
            .any(|x| x.kind == relation_kinds::MEMBER_OF && x.target_id == format!("{p}-prod")));
        assert!(svc
            .relations
            .iter()
            .any(|x| x.kind == relation_kinds::REGISTERED_WITH
                && x.target_id.contains("targetgroup")));

        let t = find(rs, Service::DynamoDb, &format!("{p}-events"));
        assert_eq!(t.resource_type.as_deref(), Some("PROVISIONED"));
        assert_eq!(
            (
                attr(t, "provisionedReadCapacityUnits"),
                attr(t, "provisionedWriteCapacityUnits")
            ),
            (&serde_json::json!(100), &serde_json::json!(50))
        );
        assert_eq!(attr(t, "autoScaling"), true);
        assert_eq!(t.tags.get("team").map(String::as_str), Some("data"));

        let b = find(rs, Service::S3, &format!("{p}-logs"));
        assert_eq!(b.tags.get("team").map(String::as_str), Some("data"));
        assert_eq!(b.region, region);

        // Every call counted, and none beyond what pagination needs.
        for (api, min) in &found.minimum_calls {
            let made = found.calls.get(api).copied().unwrap_or(0);
            assert!(
                made >= *min && made <= *min + 1,
                "{api}: {made} calls, minimum {min}; {:?}",
                found.calls
            );
        }
    }
}

/// Credentials of `role` in `account`, through STS in the emulator.
async fn as_account(config: &SdkConfig, account: &str, role: &str) -> SdkConfig {
    let provider =
        aws_config::sts::AssumeRoleProvider::builder(format!("arn:aws:iam::{account}:role/{role}"))
            .session_name("setup")
            .configure(config)
            .build()
            .await;
    config
        .to_builder()
        .credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(provider),
        )
        .build()
}

#[tokio::test]
async fn an_organization_is_discovered_through_member_roles_and_a_failing_account_is_reported() {
    let (_emulator, stack) = LocalStack::with_own_emulator().await;
    let org = aws_sdk_organizations::Client::new(&stack.config);
    org.create_organization().send().await.unwrap();
    let mut members = Vec::new();
    for name in ["alpha", "beta", "gamma"] {
        let status = org
            .create_account()
            .email(format!("{name}@example.com"))
            .account_name(name)
            .send()
            .await
            .unwrap()
            .create_account_status
            .unwrap();
        members.push(status.account_id.unwrap());
    }
    // The member role exists in alpha and beta (deployed by the StackSet),
    // not in gamma.
    for (k, account) in members.iter().enumerate() {
        let admin = as_account(&stack.config, account, "OrganizationAccountAccessRole").await;
        if k < 2 {
            aws_sdk_iam::Client::new(&admin)
                .create_role()
                .role_name("FinOpsDiscoveryRole")
                .assume_role_policy_document("{}")
                .send()
                .await
                .unwrap();
        }
        aws_sdk_ec2::Client::new(&admin)
            .run_instances()
            .image_id("ami-12c6146b")
            .min_count(k as i32 + 1)
            .max_count(k as i32 + 1)
            .send()
            .await
            .unwrap();
    }
    let estate = AwsEstate::new(
        stack.config.clone(),
        Scope {
            regions: Regions::List(vec!["us-east-1".into()]),
            accounts: AccountsMode::Organization {
                role_name: "FinOpsDiscoveryRole".into(),
            },
        },
    );
    let units = estate.units().await.unwrap();
    let mut expected: Vec<Unit> = members.iter().map(|a| unit(a, "us-east-1")).collect();
    expected.push(unit(ACCOUNT, "us-east-1"));
    expected.sort();
    assert_eq!(units, expected);
    let mut found: BTreeMap<String, usize> = BTreeMap::new();
    let mut failed = Vec::new();
    for u in &units {
        match estate.discover(u, &[Service::Ec2]).await {
            Ok(d) => {
                assert!(d
                    .resources
                    .iter()
                    .all(|r| r.account_id.as_deref() == Some(u.account_id.as_str())));
                found.insert(u.account_id.clone(), d.resources.len());
            }
            Err(e) => failed.push((u.account_id.clone(), e.to_string())),
        }
    }
    assert_eq!(found.get(&members[0]), Some(&1));
    assert_eq!(found.get(&members[1]), Some(&2));
    assert_eq!(found.get(ACCOUNT), Some(&0));
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].0, members[2]);
    assert!(failed[0].1.contains("AssumeRole"), "{}", failed[0].1);
    let _ = Emulator::shared;
}
