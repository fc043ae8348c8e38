//! [`Estate`] over the AWS APIs: one module per service, the SDK's
//! paginators (page sizes at each API's maximum, so the calls made are the
//! fewest pagination allows) and retries, every attempt counted by a
//! [`CallCounter`] attached to the unit's clients.
//!
//! A unit's clients are built from the deployment's SDK configuration with
//! the unit's region and, for another account of the Organization, the
//! credentials of the member role assumed there ([`accounts`]).

pub(crate) mod accounts;
mod dynamodb;
mod ec2;
mod ecs;
mod elasticache;
mod lambda;
mod rds;
mod s3;

use super::{AccountsMode, Estate, Regions, Scope, Unit, UnitDiscovery};
use crate::calls::CallCounter;
use crate::collector::{CloudWatchSource, MetricSource};
use crate::domain::{relation_kinds, Relation, Resource, Service};
use crate::Result;
use accounts::AccountConfigs;
use async_trait::async_trait;
use aws_config::SdkConfig;
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

/// Most `admits` relations one resource gets from security-group
/// references: a group admitted by a whole fleet would otherwise give each
/// database thousands of edges that say the same thing.
const MAX_SG_RELATIONS: usize = 50;

/// The clients of one unit, each counting its calls on one counter.
pub(crate) struct UnitClients {
    pub unit: Unit,
    pub config: SdkConfig,
    pub counter: CallCounter,
    /// When this discovery started: every resource's `discoveredAt`.
    pub now: DateTime<Utc>,
}

impl UnitClients {
    /// `Resource::new` with the unit's account and region and the discovery stamp.
    pub fn resource(&self, service: Service, id: impl Into<String>, by: &str) -> Resource {
        let mut r = Resource::new(service, id, self.unit.region.clone());
        r.account_id = Some(self.unit.account_id.clone());
        r.discovered_at = Some(self.now);
        r.discovered_by = Some(by.to_string());
        r
    }
}

/// The discovery adapter.
pub struct AwsEstate {
    scope: Scope,
    home_region: String,
    /// Per account: the SDK configuration whose credentials reach it.
    accounts: AccountConfigs,
}

impl AwsEstate {
    /// An estate over `base` (the deployment's configuration: its region is
    /// the home region, where Organizations and STS are asked).
    pub fn new(base: SdkConfig, scope: Scope) -> Self {
        let home_region = base
            .region()
            .map(|r| r.to_string())
            .unwrap_or_else(|| "us-east-1".to_string());
        let accounts = AccountConfigs::new(base, scope.accounts.role_name(), "finops-discovery");
        AwsEstate {
            scope,
            home_region,
            accounts,
        }
    }

    async fn own_account(&self) -> Result<String> {
        self.accounts.own_account().await
    }

    /// The configuration reaching the unit's account (assuming the member
    /// role there unless it is the deploying account), in its region.
    async fn config_for(&self, unit: &Unit) -> Result<SdkConfig> {
        self.accounts
            .config_for(Some(&unit.account_id), &unit.region)
            .await
    }
}

#[async_trait]
impl Estate for AwsEstate {
    async fn units(&self) -> Result<Vec<Unit>> {
        let own = self.own_account().await?;
        let accounts = match &self.scope.accounts {
            AccountsMode::SelfOnly => vec![own],
            AccountsMode::Organization { .. } => {
                accounts::active_accounts(self.accounts.base()).await?
            }
        };
        let regions = match &self.scope.regions {
            Regions::List(list) => list.clone(),
            Regions::All => ec2::enabled_regions(self.accounts.base()).await?,
        };
        let mut units: Vec<Unit> = accounts
            .iter()
            .flat_map(|a| {
                regions.iter().map(move |r| Unit {
                    account_id: a.clone(),
                    region: r.clone(),
                })
            })
            .collect();
        units.sort();
        units.dedup();
        Ok(units)
    }

    async fn discover(&self, unit: &Unit, services: &[Service]) -> Result<UnitDiscovery> {
        let config = self.config_for(unit).await?;
        let clients = UnitClients {
            unit: unit.clone(),
            config,
            counter: CallCounter::new(),
            now: Utc::now(),
        };
        let wanted: BTreeSet<Service> = services.iter().copied().collect();
        let has = |s: Service| wanted.contains(&s);
        let mut minimum: BTreeMap<String, u64> = BTreeMap::new();
        // The services one after the other, each with its own pages in
        // order: a unit is one Lambda invocation's work, and the units run
        // in parallel instead.
        let mut resources: Vec<Resource> = Vec::new();
        let mut groups: Vec<ec2::SecurityGroupRefs> = Vec::new();
        if has(Service::Ec2) || has(Service::Ebs) || has(Service::Rds) || has(Service::ElastiCache)
        {
            let found = ec2::discover(&clients, has(Service::Ec2), has(Service::Ebs)).await?;
            resources.extend(found.resources);
            groups = found.security_groups;
            minimum.extend(found.minimum);
        }
        let services_fns: [(Service, &str); 6] = [
            (Service::Rds, "rds"),
            (Service::ElastiCache, "elasticache"),
            (Service::Lambda, "lambda"),
            (Service::Ecs, "ecs"),
            (Service::DynamoDb, "dynamodb"),
            (Service::S3, "s3"),
        ];
        for (service, _) in services_fns {
            if !has(service) {
                continue;
            }
            let (found, min) = match service {
                Service::Rds => rds::discover(&clients).await?,
                Service::ElastiCache => elasticache::discover(&clients).await?,
                Service::Lambda => lambda::discover(&clients).await?,
                Service::Ecs => ecs::discover(&clients).await?,
                Service::DynamoDb => dynamodb::discover(&clients).await?,
                Service::S3 => s3::discover(&clients).await?,
                _ => (Vec::new(), BTreeMap::new()),
            };
            resources.extend(found);
            minimum.extend(min);
        }
        link_security_groups(&mut resources, &groups);
        resources.retain(|r| wanted.contains(&r.service));
        resources.sort_by(|a, b| (a.service, &a.id).cmp(&(b.service, &b.id)));
        let calls = clients
            .counter
            .snapshot()
            .into_iter()
            .map(|((service, op), n)| (format!("{service}:{op}"), n))
            .collect();
        Ok(UnitDiscovery {
            resources,
            calls,
            minimum_calls: minimum,
        })
    }

    async fn home_account(&self) -> Result<Option<String>> {
        self.own_account().await.map(Some)
    }

    async fn metrics(&self, unit: &Unit) -> Result<Option<Arc<dyn MetricSource>>> {
        if unit.region == self.home_region && unit.account_id == self.own_account().await? {
            return Ok(None);
        }
        let config = self.config_for(unit).await?;
        Ok(Some(Arc::new(CloudWatchSource::new(
            aws_sdk_cloudwatch::Client::new(&config),
        ))))
    }
}

/// The fewest pages for `items` at `page_size` a page (one page even when
/// there is nothing).
pub(crate) fn pages(items: usize, page_size: usize) -> u64 {
    (items.max(1)).div_ceil(page_size.max(1)) as u64
}

/// A resource's security groups, as discovery records them.
pub(crate) const SECURITY_GROUPS: &str = "securityGroups";

/// A database (or any resource) whose security group admits another
/// resource's security group depends on that resource being there: each
/// becomes an `admits` relation, with the groups as evidence.
fn link_security_groups(resources: &mut [Resource], groups: &[ec2::SecurityGroupRefs]) {
    let admitted: HashMap<&str, &ec2::SecurityGroupRefs> =
        groups.iter().map(|g| (g.group_id.as_str(), g)).collect();
    // Which resources hold each group.
    let mut holders: HashMap<String, Vec<String>> = HashMap::new();
    for r in resources.iter() {
        for g in groups_of(r) {
            holders.entry(g).or_default().push(r.id.clone());
        }
    }
    for r in resources.iter_mut() {
        let mut added = 0usize;
        for own in groups_of(r) {
            let Some(refs) = admitted.get(own.as_str()) else {
                continue;
            };
            for source in &refs.admits {
                for other in holders.get(source).map(Vec::as_slice).unwrap_or_default() {
                    if other == &r.id
                        || r.relations.iter().any(|x| &x.target_id == other)
                        || added >= MAX_SG_RELATIONS
                    {
                        continue;
                    }
                    r.relations.push(
                        Relation::new(relation_kinds::ADMITS, other.clone()).with_evidence(
                            format!(
                            "DescribeSecurityGroups: {own} (on {}) admits {source} (on {other})",
                            r.id
                        ),
                        ),
                    );
                    added += 1;
                }
            }
        }
    }
}

fn groups_of(r: &Resource) -> Vec<String> {
    r.attributes
        .get(SECURITY_GROUPS)
        .and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|g| g.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_database_admitting_an_instance_group_depends_on_the_instance() {
        let mut db = Resource::new(Service::Rds, "orders", "us-east-1");
        db.attributes
            .insert(SECURITY_GROUPS.into(), json!(["sg-db"]));
        let mut app = Resource::new(Service::Ec2, "i-1", "us-east-1");
        app.attributes
            .insert(SECURITY_GROUPS.into(), json!(["sg-app"]));
        let mut other = Resource::new(Service::Ec2, "i-2", "us-east-1");
        other
            .attributes
            .insert(SECURITY_GROUPS.into(), json!(["sg-other"]));
        let mut all = vec![db, app, other];
        let groups = vec![ec2::SecurityGroupRefs {
            group_id: "sg-db".into(),
            admits: vec!["sg-app".into()],
        }];
        link_security_groups(&mut all, &groups);
        assert_eq!(all[0].relations.len(), 1);
        assert_eq!(all[0].relations[0].target_id, "i-1");
        assert_eq!(all[0].relations[0].kind, relation_kinds::ADMITS);
        assert!(all[0].relations[0]
            .evidence
            .as_deref()
            .unwrap()
            .contains("sg-db (on orders) admits sg-app (on i-1)"));
        assert!(all[1].relations.is_empty() && all[2].relations.is_empty());
        assert_eq!(pages(0, 100), 1);
        assert_eq!(pages(201, 100), 3);
    }
}
