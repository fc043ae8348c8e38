//! The metrics port: what the analysis needs from CloudWatch, and the
//! adapter that asks it as few times as the API limits allow.
//!
//! - [`MetricSource`] is the port: fetch series for many resources at once,
//!   and discover which resources publish metrics.
//! - [`planner`] is pure: it packs requests into GetMetricData calls (at most
//!   500 queries and 100,800 expected points each, first-fit-decreasing) and
//!   states the lower bound [`minimum_get_metric_data_calls`] that tests and
//!   benchmarks hold the adapter to.
//! - [`CloudWatchSource`] is the adapter: the SDK's paginators and retries,
//!   bounded concurrency, and call counters.
//!
//! Invariant: only this module knows CloudWatch's dimension names; the rest of
//! the core talks about `(Service, id)`.

mod cloudwatch;
pub mod planner;

pub use cloudwatch::{CallCounts, CloudWatchSource, DEFAULT_CONCURRENCY};
pub use planner::{minimum_get_metric_data_calls, plan, Plan, PlannedCall};

use crate::domain::metric::namespaces;
use crate::domain::{MetricSeries, Service};
use crate::Result;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// One series to fetch: a metric of one resource, with one statistic per
/// period.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MetricRequest {
    pub resource_id: String,
    pub service: Service,
    pub namespace: String,
    pub metric: String,
    /// The complete dimension set of the series (see [`dimensions_for`]).
    pub dimensions: Vec<(String, String)>,
    /// `Average`, `Sum`, `Minimum`, `Maximum`, `SampleCount` or a percentile
    /// such as `p99.5`.
    pub statistic: String,
    pub period_seconds: u32,
}

impl MetricRequest {
    /// A request for a resource's metric, with its dimensions derived from the
    /// id by [`dimensions_for`]; `extra_dimensions` are the metric's own (for
    /// example `StorageType` for S3).
    pub fn new(
        service: Service,
        resource_id: impl Into<String>,
        namespace: impl Into<String>,
        metric: impl Into<String>,
        statistic: impl Into<String>,
        period_seconds: u32,
        extra_dimensions: &[(String, String)],
    ) -> Self {
        let resource_id = resource_id.into();
        let namespace = namespace.into();
        MetricRequest {
            dimensions: dimensions_in(&namespace, service, &resource_id, extra_dimensions),
            resource_id,
            service,
            namespace,
            metric: metric.into(),
            statistic: statistic.into(),
            period_seconds,
        }
    }
}

/// A resource seen in CloudWatch.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DiscoveredResource {
    pub service: Service,
    /// The id the inventory uses: the identifying dimension's value, or
    /// `cluster/service` for ECS services.
    pub id: String,
    /// The identifying dimensions, sorted. For S3 also every `StorageType`
    /// seen for the bucket (so one name may repeat: these are facts about the
    /// bucket, not one query's dimension set).
    pub dimensions: Vec<(String, String)>,
}

/// The metrics port.
#[async_trait]
pub trait MetricSource: Send + Sync {
    /// One series per request, in request order, points ascending by time.
    /// A series CloudWatch has no data for comes back with no points.
    async fn fetch(
        &self,
        requests: &[MetricRequest],
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<Vec<MetricSeries>>;

    /// Every resource of `services` that has published metrics, sorted by
    /// service and id, each once.
    async fn discover(&self, services: &[Service]) -> Result<Vec<DiscoveredResource>>;

    /// Replaces each request's dimensions by the set its series really
    /// carries, where the publisher appends dimensions of its own (the
    /// CloudWatch agent's `ImageId`, `InstanceType`, `AutoScalingGroupName`):
    /// CloudWatch matches dimension sets exactly, so the set derived from
    /// the id alone would find no point. A request whose series is not
    /// listed keeps its dimensions.
    async fn resolve(&self, _requests: &mut [MetricRequest]) -> Result<()> {
        Ok(())
    }
}

/// Namespaces whose publishers append dimensions of their own, so a series'
/// dimension set is found with ListMetrics rather than derived from the id.
pub const APPENDED_DIMENSION_NAMESPACES: [&str; 1] = [namespaces::CW_AGENT];

/// The dimension set of a query in `namespace` for resource `id`: as
/// [`dimensions_for`], except where a namespace names its identity
/// otherwise (Lambda Insights publishes under `function_name`, lower case).
pub fn dimensions_in(
    namespace: &str,
    service: Service,
    id: &str,
    known_dims: &[(String, String)],
) -> Vec<(String, String)> {
    if namespace == namespaces::LAMBDA_INSIGHTS && service == Service::Lambda {
        let mut dims = vec![("function_name".to_string(), id.to_string())];
        for (name, value) in known_dims {
            if !dims.iter().any(|(n, _)| n == name) {
                dims.push((name.clone(), value.clone()));
            }
        }
        dims.sort();
        return dims;
    }
    dimensions_for(service, id, known_dims)
}

/// Of the listed dimension sets of one metric, the one for `wanted` (a
/// request's identity): the exact set if listed, else the smallest set
/// holding every pair of `wanted` (ties: the first in sort order).
pub fn best_listed_set<'a>(
    wanted: &[(String, String)],
    listed: &'a [Vec<(String, String)>],
) -> Option<&'a Vec<(String, String)>> {
    listed
        .iter()
        .filter(|set| wanted.iter().all(|w| set.contains(w)))
        .min_by(|a, b| a.len().cmp(&b.len()).then_with(|| a.cmp(b)))
}

/// The dimensions that identify a resource of `service` in its namespace.
/// ListMetrics is asked for series carrying all of them.
pub fn identifying_dimensions(service: Service) -> &'static [&'static str] {
    match service {
        Service::Ec2 => &["InstanceId"],
        Service::Ebs => &["VolumeId"],
        Service::Rds => &["DBInstanceIdentifier"],
        Service::ElastiCache => &["CacheClusterId"],
        Service::Lambda => &["FunctionName"],
        Service::Ecs => &["ClusterName", "ServiceName"],
        Service::S3 => &["BucketName", "StorageType"],
        Service::DynamoDb => &["TableName"],
    }
}

/// The dimension set of a query for resource `id` of `service`.
///
/// The identifying dimensions come from the id (`cluster/service` for ECS;
/// an ECS id without `/` is a cluster, queried by `ClusterName` alone).
/// `known_dims` adds what the id cannot tell: the metric's own dimensions,
/// such as `StorageType=AllStorageTypes` for S3 `NumberOfObjects`. Names the
/// id already sets are ignored there, and when a name repeats the first one
/// wins, because a dimension set holds each name once. Sorted by name, so
/// equal queries compare equal.
pub fn dimensions_for(
    service: Service,
    id: &str,
    known_dims: &[(String, String)],
) -> Vec<(String, String)> {
    let mut dims: Vec<(String, String)> = match service {
        Service::Ecs => match id.split_once('/') {
            Some((cluster, svc)) => vec![
                ("ClusterName".into(), cluster.into()),
                ("ServiceName".into(), svc.into()),
            ],
            None => vec![("ClusterName".into(), id.into())],
        },
        Service::S3 => vec![("BucketName".into(), id.into())],
        other => vec![(identifying_dimensions(other)[0].into(), id.into())],
    };
    for (name, value) in known_dims {
        if !dims.iter().any(|(n, _)| n == name) {
            dims.push((name.clone(), value.clone()));
        }
    }
    dims.sort();
    dims
}

/// The resource a listed series belongs to, if it carries all of the
/// service's identifying dimensions: `(id, identifying dimensions)`.
pub fn resource_of_series(
    service: Service,
    dims: &[(String, String)],
) -> Option<(String, Vec<(String, String)>)> {
    let names = identifying_dimensions(service);
    let mut found: Vec<(String, String)> = Vec::with_capacity(names.len());
    for name in names {
        let (n, v) = dims.iter().find(|(n, _)| n == name)?;
        found.push((n.clone(), v.clone()));
    }
    let value = |name: &str| {
        found
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let id = match service {
        Service::Ecs => format!("{}/{}", value("ClusterName")?, value("ServiceName")?),
        Service::S3 => value("BucketName")?.to_string(),
        _ => found.first()?.1.clone(),
    };
    if id.is_empty() {
        return None;
    }
    found.sort();
    Some((id, found))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn dimensions_for_derives_identity_from_the_id_and_keeps_metric_dimensions() {
        assert_eq!(
            dimensions_for(Service::Ec2, "i-1", &[]),
            d(&[("InstanceId", "i-1")])
        );
        assert_eq!(
            dimensions_for(Service::Ecs, "prod/web", &[]),
            d(&[("ClusterName", "prod"), ("ServiceName", "web")])
        );
        assert_eq!(
            dimensions_for(Service::Ecs, "prod", &[]),
            d(&[("ClusterName", "prod")])
        );
        // The id wins over a stale identifying dimension; the first StorageType wins.
        assert_eq!(
            dimensions_for(
                Service::S3,
                "logs",
                &d(&[
                    ("StorageType", "AllStorageTypes"),
                    ("BucketName", "old"),
                    ("StorageType", "StandardStorage")
                ])
            ),
            d(&[("BucketName", "logs"), ("StorageType", "AllStorageTypes")])
        );
        assert_eq!(
            dimensions_for(
                Service::DynamoDb,
                "orders",
                &d(&[("GlobalSecondaryIndexName", "by-user")])
            ),
            d(&[
                ("GlobalSecondaryIndexName", "by-user"),
                ("TableName", "orders")
            ])
        );
    }

    #[test]
    fn lambda_insights_names_its_function_in_lower_case_and_agents_append_dimensions() {
        assert_eq!(
            dimensions_in(namespaces::LAMBDA_INSIGHTS, Service::Lambda, "f", &[]),
            d(&[("function_name", "f")])
        );
        assert_eq!(
            dimensions_in(namespaces::LAMBDA, Service::Lambda, "f", &[]),
            d(&[("FunctionName", "f")])
        );
        let listed = vec![
            d(&[
                ("ImageId", "ami-1"),
                ("InstanceId", "i-1"),
                ("InstanceType", "m5.large"),
            ]),
            d(&[("InstanceId", "i-2")]),
            d(&[
                ("AutoScalingGroupName", "web"),
                ("ImageId", "ami-1"),
                ("InstanceId", "i-1"),
                ("InstanceType", "m5.large"),
            ]),
        ];
        assert_eq!(
            best_listed_set(&d(&[("InstanceId", "i-1")]), &listed),
            Some(&listed[0])
        );
        assert_eq!(
            best_listed_set(&d(&[("InstanceId", "i-2")]), &listed),
            Some(&listed[1])
        );
        assert_eq!(best_listed_set(&d(&[("InstanceId", "i-3")]), &listed), None);
    }

    #[test]
    fn series_map_to_resources_only_with_every_identifying_dimension() {
        assert_eq!(
            resource_of_series(
                Service::Ecs,
                &d(&[("ServiceName", "web"), ("ClusterName", "prod")])
            ),
            Some((
                "prod/web".into(),
                d(&[("ClusterName", "prod"), ("ServiceName", "web")])
            ))
        );
        assert_eq!(
            resource_of_series(Service::Ecs, &d(&[("ClusterName", "prod")])),
            None
        );
        assert_eq!(
            resource_of_series(
                Service::Lambda,
                &d(&[("FunctionName", "f"), ("Resource", "f:live")])
            ),
            Some(("f".into(), d(&[("FunctionName", "f")])))
        );
        assert_eq!(
            resource_of_series(
                Service::S3,
                &d(&[("StorageType", "StandardStorage"), ("BucketName", "b")])
            ),
            Some((
                "b".into(),
                d(&[("BucketName", "b"), ("StorageType", "StandardStorage")])
            ))
        );
        assert_eq!(
            resource_of_series(Service::Ec2, &d(&[("InstanceId", "")])),
            None
        );
        // Every service round-trips through dimensions_for.
        for (service, id) in [
            (Service::Ec2, "i-1"),
            (Service::Ebs, "vol-1"),
            (Service::Rds, "db"),
            (Service::ElastiCache, "c"),
            (Service::Lambda, "f"),
            (Service::Ecs, "c/s"),
            (Service::DynamoDb, "t"),
        ] {
            let dims = dimensions_for(service, id, &[]);
            assert_eq!(
                resource_of_series(service, &dims),
                Some((id.to_string(), dims.clone()))
            );
        }
    }
}
