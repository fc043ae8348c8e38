//! EBS volumes: delete an unattached or unused volume after a snapshot,
//! gp2 to gp3 at an equal or better baseline, lower over-provisioned
//! io1/io2 (and gp3) IOPS to the observed peak plus headroom. Priced from
//! the catalogue's per-region volume prices: GB-month by type, gp3's IOPS
//! above 3,000 and throughput above 125 MiB/s, io1's IOPS-month and io2's
//! tiers. The volume's shape comes from discovery: its type (`resourceType`,
//! or the `volumeType` attribute) and the attributes `sizeGiB`, `iops`,
//! `throughputMiBps`, `state` and `attachedTo`.

use super::Opt;
use crate::analysis::evaluate::{Ctx, Verdict};
use crate::analysis::pricing::{EbsPrices, PriceCatalog};
use crate::analysis::recommend::facts::{attr_f64, attr_str, known_cost, limit, lookback};
use crate::analysis::recommend::rank::{projection_risk, removal_risk};
use crate::analysis::recommend::PROJECTION_PERCENTILE;
use crate::analysis::stats::Statistic;
use crate::domain::metric::names;
use crate::domain::{Action, Resource, ThresholdRule};

/// gp3's included baseline.
pub const GP3_BASELINE_IOPS: f64 = 3000.0;
pub const GP3_BASELINE_MIBPS: f64 = 125.0;
/// The least IOPS io1/io2 may be provisioned with.
const MIN_PROVISIONED_IOPS: f64 = 100.0;

/// A volume's shape: what it is billed on.
#[derive(Debug, Clone, PartialEq)]
pub struct Volume {
    pub kind: String,
    pub size_gib: f64,
    pub iops: f64,
    pub throughput_mibps: f64,
}

impl Volume {
    fn of(r: &Resource) -> Option<Volume> {
        let kind = r
            .resource_type
            .as_deref()
            .or_else(|| attr_str(r, &["volumeType"]))?
            .trim()
            .to_ascii_lowercase();
        Some(Volume {
            kind,
            size_gib: attr_f64(r, &["sizeGiB", "size"])?.max(0.0),
            iops: attr_f64(r, &["iops"]).unwrap_or(0.0).max(0.0),
            throughput_mibps: attr_f64(r, &["throughputMiBps", "throughput"])
                .unwrap_or(0.0)
                .max(0.0),
        })
    }

    /// gp2's baseline: 3 IOPS per GiB, at least 100, at most 16,000; its
    /// throughput 128 MiB/s up to 170 GiB, 250 MiB/s above.
    pub fn gp2_baseline(size_gib: f64) -> (f64, f64) {
        let iops = (3.0 * size_gib).clamp(100.0, 16_000.0);
        let mibps = if size_gib <= 170.0 { 128.0 } else { 250.0 };
        (iops, mibps)
    }

    /// The gp3 volume with at least this gp2 volume's baseline (and burst).
    pub fn gp3_for_gp2(&self) -> Volume {
        let (iops, mibps) = Volume::gp2_baseline(self.size_gib);
        Volume {
            kind: "gp3".into(),
            size_gib: self.size_gib,
            iops: iops.max(GP3_BASELINE_IOPS),
            throughput_mibps: mibps.max(GP3_BASELINE_MIBPS),
        }
    }
}

/// What a volume of this shape costs a month in a region, or which price is
/// missing.
pub fn volume_monthly(p: &EbsPrices, v: &Volume) -> Result<f64, String> {
    let Some(per_gb) = p.usd_per_gb_month.get(&v.kind) else {
        return Err(format!(
            "no price known for EBS volume type {}: not in the catalogue",
            v.kind
        ));
    };
    let storage = v.size_gib * per_gb;
    let extra = match v.kind.as_str() {
        "gp3" => {
            (v.iops - GP3_BASELINE_IOPS).max(0.0) * p.gp3_usd_per_iops_month
                + (v.throughput_mibps - GP3_BASELINE_MIBPS).max(0.0) * p.gp3_usd_per_mibps_month
        }
        "io1" => v.iops * p.io1_usd_per_iops_month,
        "io2" => io2_iops_monthly(p, v.iops),
        _ => 0.0,
    };
    Ok(storage + extra)
}

fn io2_iops_monthly(p: &EbsPrices, iops: f64) -> f64 {
    let (mut left, mut floor, mut total) = (iops, 0.0, 0.0);
    for t in &p.io2_usd_per_iops_month {
        let ceiling = t.up_to.unwrap_or(f64::INFINITY);
        let here = left.min(ceiling - floor).max(0.0);
        total += here * t.usd;
        left -= here;
        floor = ceiling;
        if left <= 0.0 {
            break;
        }
    }
    total
}

pub(super) fn options(
    ctx: &mut Ctx<'_>,
    prices: &PriceCatalog,
    rule: &ThresholdRule,
    v: &Verdict,
) -> Option<(Vec<Opt>, Option<f64>)> {
    let r = ctx.resource;
    let volume = Volume::of(r);
    let p = prices.ebs(&r.region);
    let catalogue = match (&volume, p) {
        (Some(vol), Some(p)) => volume_monthly(p, vol),
        (None, _) => Err(format!(
            "no price known for EBS volume {}: its type or size is unknown",
            r.id
        )),
        (_, None) => Err(format!("no price known for EBS in {}", r.region)),
    };
    let known = known_cost(r);
    let current = known.or(catalogue.as_ref().ok().copied());
    let monthly: Result<f64, String> = known.map_or(catalogue.clone(), Ok);
    // A saving between two shapes, scaled to the inventory's cost when given.
    let saving_to = |target: &Volume| -> Result<f64, String> {
        let (Some(p), Ok(cur)) = (p, &catalogue) else {
            return Err(catalogue.clone().err().unwrap_or_default());
        };
        let to = volume_monthly(p, target)?;
        Ok(match known {
            Some(k) if *cur > 0.0 => k * (1.0 - to / cur),
            _ => cur - to,
        })
    };
    let attached = attr_str(r, &["attachedTo"]).is_some_and(|s| !s.trim().is_empty());
    let related = attached || !r.relations.is_empty();
    let mut opts = Vec::new();
    match rule.action {
        Action::DeleteUnused => {
            let snapshot = match (&volume, p) {
                (Some(vol), Some(p)) => vol.size_gib * p.snapshot_usd_per_gb_month,
                _ => 0.0,
            };
            let detach = if attached { "detach it, " } else { "" };
            opts.push(Opt {
                action: Action::DeleteUnused,
                target: None,
                // The snapshot bills on: at most the volume's size, as a
                // first snapshot stores only the blocks written.
                savings: monthly.clone().map(|m| m - snapshot),
                risk: removal_risk(Action::DeleteUnused, v.finding, related),
                text: format!(
                    "Snapshot the volume, {detach}then delete it (the snapshot costs at most ${snapshot:.2}/month; restore it to a new volume if needed)"
                ),
            });
        }
        Action::ChangeStorageClass => {
            let vol = volume.as_ref()?;
            if vol.kind != "gp2" {
                return None;
            }
            let target = vol.gp3_for_gp2();
            opts.push(Opt {
                action: Action::ChangeStorageClass,
                target: Some("gp3".into()),
                savings: saving_to(&target),
                risk: 0,
                text: format!(
                    "Change the volume from gp2 to gp3 with {:.0} IOPS and {:.0} MiB/s, at least gp2's baseline for {:.0} GiB (Elastic Volumes: online, no detach)",
                    target.iops, target.throughput_mibps, vol.size_gib
                ),
            });
        }
        _ => {
            // Lower provisioned IOPS to the observed peak plus headroom.
            let vol = volume.as_ref()?;
            let floor = match vol.kind.as_str() {
                "io1" | "io2" => MIN_PROVISIONED_IOPS,
                "gp3" if vol.iops > GP3_BASELINE_IOPS => GP3_BASELINE_IOPS,
                _ => return None,
            };
            let limit = limit(rule);
            let peak = ctx.metric_stat(
                names::VOLUME_IOPS,
                Statistic::Percentile(PROJECTION_PERCENTILE),
                lookback(rule),
            )?;
            let target_iops = ((peak / (limit / 100.0) / 100.0).ceil() * 100.0).max(floor);
            if target_iops >= vol.iops {
                return None;
            }
            let target = Volume {
                iops: target_iops,
                ..vol.clone()
            };
            let projected = 100.0 * peak / target_iops;
            opts.push(Opt {
                action: Action::LowerProvisionedCapacity,
                target: Some(format!("{target_iops:.0} IOPS")),
                savings: saving_to(&target),
                risk: projection_risk(Some(projected), limit),
                text: format!(
                    "Lower the {} volume's provisioned IOPS from {:.0} to {target_iops:.0}: the p99.5 of {peak:.0} IOPS would be {projected:.0}% (Elastic Volumes: online)",
                    vol.kind, vol.iops
                ),
            });
        }
    }
    // A gp2 volume kept is cheaper as gp3 in every case.
    if rule.action != Action::ChangeStorageClass {
        if let Some(vol) = volume.as_ref().filter(|v| v.kind == "gp2") {
            let target = vol.gp3_for_gp2();
            opts.push(Opt {
                action: Action::ChangeStorageClass,
                target: Some("gp3".into()),
                savings: saving_to(&target),
                risk: 0,
                text: "Keep the volume but change it from gp2 to gp3 at gp2's baseline".into(),
            });
        }
    }
    Some((opts, current))
}
