//! The price catalogue shipped as `shared/data/prices.json` (its `source`
//! names the public list it was transcribed from): on-demand list prices per
//! region, instance specs, the size ladder of each family, the Graviton and
//! burstable equivalents, the price variants that change an instance's rate
//! (Windows, the RDS engine and Multi-AZ, the ElastiCache engine and node
//! count), RDS storage and EBS volumes. A month is 730 hours.

use super::stats::DAY_SECONDS;
use crate::domain::Service;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// Hours in a billing month, as AWS's calculators use.
pub const HOURS_PER_MONTH: f64 = 730.0;

/// Bytes in the GB S3 bills by.
pub(crate) const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// How many `days`-long windows make a billing month: scales a total measured
/// over the window (requests, consumed units) to a monthly one.
pub(crate) fn windows_per_month(days: u32) -> f64 {
    HOURS_PER_MONTH * 3600.0 / (f64::from(days) * DAY_SECONDS as f64)
}

const BUILTIN: &str = include_str!("../../data/prices.json");

/// An instance, DB instance or cache node type.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TypeSpec {
    pub usd_per_hour: f64,
    pub vcpu: f64,
    pub memory_gib: f64,
}

impl TypeSpec {
    pub fn monthly(&self) -> f64 {
        self.usd_per_hour * HOURS_PER_MONTH
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LambdaArchPrice {
    pub usd_per_gb_second: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LambdaPrices {
    #[serde(rename = "x86_64")]
    pub x86_64: LambdaArchPrice,
    pub arm64: LambdaArchPrice,
    pub usd_per_million_requests: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct S3Prices {
    /// Storage class (as S3 names it, e.g. `STANDARD_IA`) to USD per GB-month.
    pub storage_usd_per_gb_month: BTreeMap<String, f64>,
    #[serde(default)]
    pub retrieval_usd_per_gb: BTreeMap<String, f64>,
    pub intelligent_tiering_infrequent_usd_per_gb_month: f64,
    pub intelligent_tiering_monitoring_usd_per1000_objects: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DynamoPrices {
    pub usd_per_rcu_hour: f64,
    pub usd_per_wcu_hour: f64,
    pub usd_per_million_read_request_units: f64,
    pub usd_per_million_write_request_units: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FargateArchPrice {
    pub usd_per_vcpu_hour: f64,
    pub usd_per_gb_hour: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FargatePrices {
    #[serde(rename = "x86_64")]
    pub x86_64: FargateArchPrice,
    pub arm64: FargateArchPrice,
}

/// RDS storage, per GB-month (doubled by Multi-AZ), and provisioned IOPS.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RdsStoragePrices {
    /// Storage type as RDS names it (`gp2`, `gp3`, `io1`, ...).
    pub usd_per_gb_month: BTreeMap<String, f64>,
    pub usd_per_iops_month: f64,
}

/// One tier of io2's provisioned-IOPS price: IOPS up to `up_to` (none: the rest).
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IopsTier {
    pub up_to: Option<f64>,
    pub usd: f64,
}

/// EBS volumes: storage per GB-month by volume type, gp3's IOPS above 3,000
/// and throughput above 125 MiB/s, io1's and io2's provisioned IOPS.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EbsPrices {
    pub usd_per_gb_month: BTreeMap<String, f64>,
    pub gp3_usd_per_iops_month: f64,
    pub gp3_usd_per_mibps_month: f64,
    pub io1_usd_per_iops_month: f64,
    pub io2_usd_per_iops_month: Vec<IopsTier>,
    pub standard_usd_per_million_io: f64,
    pub snapshot_usd_per_gb_month: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegionPrices {
    #[serde(default)]
    pub ec2: BTreeMap<String, TypeSpec>,
    #[serde(default)]
    pub rds: BTreeMap<String, TypeSpec>,
    #[serde(default)]
    pub elasticache: BTreeMap<String, TypeSpec>,
    #[serde(default)]
    pub lambda: Option<LambdaPrices>,
    #[serde(default)]
    pub s3: Option<S3Prices>,
    #[serde(default)]
    pub dynamodb: Option<DynamoPrices>,
    #[serde(default)]
    pub fargate: Option<FargatePrices>,
    #[serde(default)]
    pub rds_storage: Option<RdsStoragePrices>,
    #[serde(default)]
    pub ebs: Option<EbsPrices>,
}

/// The whole catalogue.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PriceCatalog {
    /// The public list the figures come from, with its date.
    #[serde(default)]
    pub source: String,
    pub hours_per_month: f64,
    /// Size names from smallest to largest.
    pub size_order: Vec<String>,
    /// x86 family to its Graviton counterpart (`m5` -> `m6g`).
    pub graviton: BTreeMap<String, String>,
    /// Family to the burstable family offered when no smaller size fits.
    #[serde(default)]
    pub burstable: BTreeMap<String, String>,
    /// What Windows adds per vCPU-hour on non-burstable EC2 types.
    #[serde(default)]
    pub windows_usd_per_vcpu_hour: f64,
    /// RDS engine to its price relative to MySQL Single-AZ.
    #[serde(default)]
    pub rds_engine_factor: BTreeMap<String, f64>,
    /// ElastiCache engine to its node price relative to Redis OSS.
    #[serde(default)]
    pub elasticache_engine_factor: BTreeMap<String, f64>,
    pub regions: BTreeMap<String, RegionPrices>,
    /// Family ladders, smallest first, keyed by (service, family); built once
    /// at parse time.
    #[serde(skip)]
    ladders: BTreeMap<(Service, String), Vec<String>>,
}

/// A type name split into family and size: `db.m5.xlarge` -> (`db.m5`, `xlarge`).
pub fn split_type(t: &str) -> Option<(&str, &str)> {
    let (family, size) = t.rsplit_once('.')?;
    (!family.is_empty() && !size.is_empty()).then_some((family, size))
}

impl PriceCatalog {
    /// The catalogue compiled into the binary. A unit test proves the file
    /// parses; were it ever broken, every lookup would answer "no price known"
    /// rather than the process failing.
    pub fn builtin() -> &'static PriceCatalog {
        static CAT: OnceLock<PriceCatalog> = OnceLock::new();
        CAT.get_or_init(|| PriceCatalog::parse(BUILTIN).unwrap_or_default())
    }

    pub fn parse(json: &str) -> Result<PriceCatalog, serde_json::Error> {
        let mut c: PriceCatalog = serde_json::from_str(json)?;
        let mut ladders: BTreeMap<(Service, String), Vec<(usize, String)>> = BTreeMap::new();
        for svc in [Service::Ec2, Service::Rds, Service::ElastiCache] {
            for r in c.regions.keys() {
                let Some(table) = c.table(svc, r) else {
                    continue;
                };
                for name in table.keys() {
                    let Some((family, size)) = split_type(name) else {
                        continue;
                    };
                    let Some(i) = c.size_index(size) else {
                        continue;
                    };
                    let l = ladders.entry((svc, family.to_string())).or_default();
                    if !l.iter().any(|(_, n)| n == name) {
                        l.push((i, name.clone()));
                    }
                }
            }
        }
        c.ladders = ladders
            .into_iter()
            .map(|(k, mut v)| {
                v.sort();
                (k, v.into_iter().map(|(_, n)| n).collect())
            })
            .collect();
        Ok(c)
    }

    pub fn region(&self, region: &str) -> Option<&RegionPrices> {
        self.regions.get(region)
    }

    fn table<'a>(
        &'a self,
        service: Service,
        region: &str,
    ) -> Option<&'a BTreeMap<String, TypeSpec>> {
        let r = self.region(region)?;
        match service {
            Service::Ec2 => Some(&r.ec2),
            Service::Rds => Some(&r.rds),
            Service::ElastiCache => Some(&r.elasticache),
            _ => None,
        }
    }

    /// The spec and price of an instance-like type in a region.
    pub fn type_spec(&self, service: Service, region: &str, type_name: &str) -> Option<TypeSpec> {
        self.table(service, region)?.get(type_name).copied()
    }

    /// The spec of a type in any region: specs and within-family price ratios
    /// do not depend on the region, absolute prices do.
    pub fn type_spec_anywhere(&self, service: Service, type_name: &str) -> Option<TypeSpec> {
        self.regions
            .keys()
            .find_map(|r| self.type_spec(service, r, type_name))
    }

    fn size_index(&self, size: &str) -> Option<usize> {
        self.size_order.iter().position(|s| s == size)
    }

    /// The types of `type_name`'s family that the catalogue prices in any
    /// region, smallest first.
    pub fn ladder(&self, service: Service, type_name: &str) -> &[String] {
        split_type(type_name)
            .and_then(|(family, _)| self.ladders.get(&(service, family.to_string())))
            .map_or(&[], |v| v.as_slice())
    }

    /// Smaller types of the same family, nearest first.
    pub fn smaller_types(&self, service: Service, type_name: &str) -> Vec<String> {
        let ladder = self.ladder(service, type_name);
        match ladder.iter().position(|t| t == type_name) {
            Some(i) => ladder[..i].iter().rev().cloned().collect(),
            None => Vec::new(),
        }
    }

    /// One size up within the family.
    pub fn larger_type(&self, service: Service, type_name: &str) -> Option<String> {
        let ladder = self.ladder(service, type_name);
        let i = ladder.iter().position(|t| t == type_name)?;
        ladder.get(i + 1).cloned()
    }

    /// The Graviton type of the same size (`m5.xlarge` -> `m6g.xlarge`), when
    /// the family has a counterpart and the catalogue knows that size.
    pub fn graviton_equivalent(&self, service: Service, type_name: &str) -> Option<String> {
        let (family, size) = split_type(type_name)?;
        let g = self.graviton.get(family)?;
        let name = format!("{g}.{size}");
        self.type_spec_anywhere(service, &name).map(|_| name)
    }

    /// The burstable type of the same size (`m5.large` -> `t3.large`), when
    /// the catalogue knows it.
    pub fn burstable_equivalent(&self, service: Service, type_name: &str) -> Option<String> {
        let (family, size) = split_type(type_name)?;
        let b = self.burstable.get(family)?;
        let name = format!("{b}.{size}");
        self.type_spec_anywhere(service, &name).map(|_| name)
    }

    /// The hourly rate of `type_name` in `region` for the resource's price
    /// variant (platform, engine, Multi-AZ, nodes), or which price is missing
    /// and why.
    pub fn instance_rate(
        &self,
        service: Service,
        region: &str,
        type_name: &str,
        variant: &Variant,
    ) -> Result<f64, String> {
        let Some(spec) = self.type_spec(service, region, type_name) else {
            return Err(if self.region(region).is_none() {
                format!("no price known for {service} {type_name} in {region}: the catalogue has no prices for that region")
            } else if self.type_spec_anywhere(service, type_name).is_some() {
                format!("no price known for {service} {type_name} in {region}")
            } else {
                format!(
                    "no price known for {service} {type_name}: the type is not in the catalogue"
                )
            });
        };
        let rate = match service {
            Service::Ec2 => match variant.platform() {
                Platform::Linux => spec.usd_per_hour,
                Platform::Windows if !type_name.starts_with('t') => {
                    spec.usd_per_hour + self.windows_usd_per_vcpu_hour * spec.vcpu
                }
                Platform::Windows => {
                    return Err(format!("no price known for ec2 {type_name} on Windows in {region}: burstable Windows rates are not in the catalogue"))
                }
                Platform::Other(p) => {
                    return Err(format!("no price known for ec2 {type_name} on {p} in {region}: the catalogue holds Linux and Windows rates"))
                }
            },
            Service::Rds => {
                let engine = variant.engine.as_deref().unwrap_or("mysql");
                let Some(f) = self.rds_engine_factor.get(&engine.to_ascii_lowercase()) else {
                    return Err(format!("no price known for rds {type_name} with engine {engine} in {region}: the catalogue holds MySQL, MariaDB and PostgreSQL rates"));
                };
                spec.usd_per_hour * f * if variant.multi_az { 2.0 } else { 1.0 }
            }
            Service::ElastiCache => {
                let engine = variant.engine.as_deref().unwrap_or("redis");
                let Some(f) = self
                    .elasticache_engine_factor
                    .get(&engine.to_ascii_lowercase())
                else {
                    return Err(format!("no price known for elasticache {type_name} with engine {engine} in {region}"));
                };
                spec.usd_per_hour * f * variant.nodes.max(1.0)
            }
            _ => spec.usd_per_hour,
        };
        Ok(rate)
    }

    pub fn rds_storage(&self, region: &str) -> Option<&RdsStoragePrices> {
        self.region(region)?.rds_storage.as_ref()
    }

    pub fn ebs(&self, region: &str) -> Option<&EbsPrices> {
        self.region(region)?.ebs.as_ref()
    }

    pub fn lambda(&self, region: &str) -> Option<&LambdaPrices> {
        self.region(region)?.lambda.as_ref()
    }

    pub fn s3(&self, region: &str) -> Option<&S3Prices> {
        self.region(region)?.s3.as_ref()
    }

    pub fn dynamodb(&self, region: &str) -> Option<&DynamoPrices> {
        self.region(region)?.dynamodb.as_ref()
    }

    pub fn fargate(&self, region: &str) -> Option<&FargatePrices> {
        self.region(region)?.fargate.as_ref()
    }
}

/// What, besides the type, changes an instance's rate: the EC2 platform,
/// the RDS or ElastiCache engine, RDS Multi-AZ, ElastiCache's node count.
/// Read from the discovered attributes `platform` (or `platformDetails`),
/// `engine`, `multiAz`, `numCacheNodes`.
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    pub platform: Option<String>,
    pub engine: Option<String>,
    pub multi_az: bool,
    pub nodes: f64,
}

/// The platforms the catalogue tells apart.
#[derive(Debug, Clone, PartialEq)]
pub enum Platform {
    Linux,
    Windows,
    Other(String),
}

impl Variant {
    pub fn of(r: &crate::domain::Resource) -> Variant {
        let s = |k: &str| {
            r.attributes
                .get(k)
                .and_then(|v| v.as_str())
                .map(str::to_string)
        };
        let multi_az = ["multiAz", "multiAZ"].iter().any(|k| {
            r.attributes
                .get(*k)
                .is_some_and(|v| v.as_bool() == Some(true) || v.as_str() == Some("true"))
        });
        let nodes = ["numCacheNodes", "nodes"]
            .iter()
            .find_map(|k| {
                let v = r.attributes.get(*k)?;
                v.as_f64().or_else(|| v.as_str()?.parse().ok())
            })
            .filter(|n: &f64| n.is_finite() && *n >= 1.0)
            .unwrap_or(1.0);
        Variant {
            platform: s("platform").or_else(|| s("platformDetails")),
            engine: s("engine"),
            multi_az,
            nodes,
        }
    }

    pub fn platform(&self) -> Platform {
        match self.platform.as_deref().map(str::to_ascii_lowercase) {
            None => Platform::Linux,
            Some(p) if p.is_empty() || p.starts_with("linux") => Platform::Linux,
            Some(p) if p.starts_with("windows") => Platform::Windows,
            Some(_) => Platform::Other(self.platform.clone().unwrap_or_default()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_catalogue_parses_and_has_the_families() {
        let c = PriceCatalog::parse(BUILTIN).expect("prices.json parses");
        assert_eq!(c.hours_per_month, HOURS_PER_MONTH);
        let us = c.region("us-east-1").expect("us-east-1");
        for f in [
            "t3", "t3a", "t4g", "m5", "m6i", "m6g", "m7g", "c5", "c6i", "c6g", "c7g", "r5", "r6i",
            "r6g",
        ] {
            assert!(us.ec2.contains_key(&format!("{f}.large")), "{f}");
        }
        for f in [
            "db.t3", "db.t4g", "db.m5", "db.m6g", "db.m6i", "db.r5", "db.r6g",
        ] {
            assert!(us.rds.contains_key(&format!("{f}.large")), "{f}");
        }
        for t in [
            "cache.t3.micro",
            "cache.t4g.small",
            "cache.m5.large",
            "cache.m6g.large",
            "cache.r5.large",
            "cache.r6g.xlarge",
        ] {
            assert!(us.elasticache.contains_key(t), "{t}");
        }
        assert!(
            us.lambda.is_some() && us.s3.is_some() && us.dynamodb.is_some() && us.fargate.is_some()
        );
        for table in [&us.ec2, &us.rds, &us.elasticache] {
            for (name, spec) in table {
                assert!(
                    spec.usd_per_hour > 0.0 && spec.vcpu > 0.0 && spec.memory_gib > 0.0,
                    "{name}"
                );
                assert!(
                    c.size_index(split_type(name).unwrap().1).is_some(),
                    "{name}"
                );
            }
        }
        assert_eq!(PriceCatalog::builtin(), &c);
        assert!(c.source.starts_with("AWS public on-demand price list, "));
        for r in REGIONS {
            let p = c.region(r).unwrap_or_else(|| panic!("{r}"));
            assert_eq!(p.ec2.len(), us.ec2.len(), "{r}");
            assert_eq!(p.rds.len(), us.rds.len(), "{r}");
            assert_eq!(p.elasticache.len(), us.elasticache.len(), "{r}");
            assert!(
                p.lambda.is_some() && p.s3.is_some() && p.dynamodb.is_some(),
                "{r}"
            );
            assert!(
                p.fargate.is_some() && p.ebs.is_some() && p.rds_storage.is_some(),
                "{r}"
            );
        }
    }

    const REGIONS: [&str; 7] = [
        "us-east-1",
        "us-east-2",
        "us-west-2",
        "eu-west-1",
        "eu-central-1",
        "ap-southeast-1",
        "ap-northeast-1",
    ];

    #[test]
    fn variants_change_the_rate_and_a_missing_one_says_why() {
        let c = PriceCatalog::builtin();
        let mut r = crate::domain::Resource::new(Service::Rds, "db", "eu-west-1");
        let v = |r: &crate::domain::Resource| Variant::of(r);
        let single = c
            .instance_rate(Service::Rds, "eu-west-1", "db.m5.large", &v(&r))
            .unwrap();
        r.attributes.insert("multiAz".into(), true.into());
        r.attributes.insert("engine".into(), "postgres".into());
        let multi = c
            .instance_rate(Service::Rds, "eu-west-1", "db.m5.large", &v(&r))
            .unwrap();
        assert!((multi - single * 2.0 * 1.04).abs() < 1e-9);
        r.attributes.insert("engine".into(), "oracle-ee".into());
        let e = c
            .instance_rate(Service::Rds, "eu-west-1", "db.m5.large", &v(&r))
            .unwrap_err();
        assert!(e.contains("engine oracle-ee"), "{e}");
        let mut i = crate::domain::Resource::new(Service::Ec2, "i", "us-east-1");
        i.attributes.insert("platform".into(), "Windows".into());
        let w = c
            .instance_rate(Service::Ec2, "us-east-1", "m5.large", &v(&i))
            .unwrap();
        assert!((w - (0.096 + 2.0 * 0.046)).abs() < 1e-9);
        assert!(c
            .instance_rate(Service::Ec2, "us-east-1", "t3.large", &v(&i))
            .is_err());
        let e = c
            .instance_rate(Service::Ec2, "sa-east-1", "m5.large", &v(&i))
            .unwrap_err();
        assert!(e.contains("no prices for that region"), "{e}");
        let e = c
            .instance_rate(Service::Ec2, "us-east-1", "x9.huge", &v(&i))
            .unwrap_err();
        assert!(e.contains("not in the catalogue"), "{e}");
        let mut n = crate::domain::Resource::new(Service::ElastiCache, "c", "us-east-1");
        n.attributes.insert("numCacheNodes".into(), 3.into());
        n.attributes.insert("engine".into(), "valkey".into());
        let three = c
            .instance_rate(Service::ElastiCache, "us-east-1", "cache.m5.large", &v(&n))
            .unwrap();
        assert!((three - 0.156 * 3.0 * 0.8).abs() < 1e-9);
        assert_eq!(
            c.burstable_equivalent(Service::Ec2, "m5.large").as_deref(),
            Some("t3.large")
        );
    }

    #[test]
    fn prices_double_per_size_within_a_family() {
        let c = PriceCatalog::builtin();
        for (svc, region) in [Service::Ec2, Service::Rds, Service::ElastiCache]
            .into_iter()
            .flat_map(|s| REGIONS.map(|r| (s, r)))
        {
            for (name, spec) in c.table(svc, region).unwrap() {
                if let Some(up) = c.larger_type(svc, name) {
                    let up = c.type_spec(svc, region, &up).unwrap();
                    let ratio = up.usd_per_hour / spec.usd_per_hour;
                    assert!((1.9..=2.1).contains(&ratio), "{name}: {ratio}");
                }
            }
        }
    }

    #[test]
    fn ladder_and_graviton() {
        let c = PriceCatalog::builtin();
        assert_eq!(c.smaller_types(Service::Ec2, "m5.xlarge"), vec!["m5.large"]);
        assert_eq!(
            c.graviton_equivalent(Service::Ec2, "m5.xlarge").as_deref(),
            Some("m6g.xlarge")
        );
        assert_eq!(c.graviton_equivalent(Service::Ec2, "m6g.xlarge"), None);
        assert_eq!(
            c.smaller_types(Service::Ec2, "t3.small"),
            vec!["t3.micro", "t3.nano"]
        );
        assert_eq!(
            c.larger_type(Service::Rds, "db.r5.large").as_deref(),
            Some("db.r5.xlarge")
        );
        assert_eq!(
            c.graviton_equivalent(Service::ElastiCache, "cache.r5.large")
                .as_deref(),
            Some("cache.r6g.large")
        );
        assert!(c.smaller_types(Service::Ec2, "x9.huge").is_empty());
        assert_eq!(c.type_spec(Service::Ec2, "sa-east-1", "m5.large"), None);
    }
}
