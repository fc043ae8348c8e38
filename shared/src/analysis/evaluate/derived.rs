//! Derived metrics as the context reads them: aggregates computed from their
//! components' summaries over a span (network bytes, error rate, GETs per GB)
//! and pointwise series built once per resource (DynamoDB capacity
//! utilisation). What they mean is defined in [`Derived`].

use super::series::{Ctx, Span};
use crate::analysis::metrics::Derived;
use crate::analysis::pricing::GIB;
use crate::analysis::stats::{Statistic, DAY_SECONDS};
use crate::domain::metric::names;
use crate::domain::MetricPoint;
use chrono::{DateTime, Utc};

impl Ctx<'_> {
    /// The series of each component of an aggregate-derived metric.
    pub(super) fn components_of(&mut self, d: Derived) -> [Option<usize>; 2] {
        let mut idx = [None; 2];
        for (j, (m, s)) in d.components().iter().enumerate().take(2) {
            let st = component_statistic(s);
            idx[j] = self.find_plain(m, st);
        }
        idx
    }

    /// An aggregate-derived metric over a span, from its components'
    /// summaries; `None` where a component has no data or the ratio is
    /// undefined.
    pub(super) fn aggregate_value(
        &mut self,
        d: Derived,
        idx: [Option<usize>; 2],
        span: Span,
        memo: bool,
    ) -> Option<f64> {
        let comps = d.components();
        let mut vals = [0.0f64; 2];
        for (j, (_, s)) in comps.iter().enumerate().take(2) {
            let st = component_statistic(s);
            let sum = self.summary(idx[j]?, span, memo);
            if sum.count == 0 {
                return None;
            }
            vals[j] = sum.get(st)?;
        }
        match d {
            Derived::NetworkBytes => Some(vals[0] + vals[1]),
            Derived::ErrorRate => (vals[1] > 0.0).then(|| 100.0 * vals[0] / vals[1]),
            Derived::GetRequestsPerGb => (vals[1] > 0.0).then(|| vals[0] / (vals[1] / GIB)),
            _ => None,
        }
    }

    /// Builds a pointwise derived series (DynamoDB capacity utilisation,
    /// EBS IOPS, IOPS utilisation, unattached hours).
    pub(super) fn materialise(
        &mut self,
        d: Derived,
        horizon_days: u32,
    ) -> Option<(Vec<MetricPoint>, i64)> {
        match d {
            Derived::VolumeIops | Derived::IopsUtilization => return self.volume_iops(d),
            Derived::Unattached => return self.unattached(horizon_days),
            _ => {}
        }
        let comps = d.components();
        let (consumed_name, provisioned_name) = (comps[0].0, comps[1].0);
        let consumed = self.find_plain(consumed_name, Statistic::Sum)?;
        let provisioned = self.find_plain(provisioned_name, Statistic::Average);
        let cview = &self.views[consumed];
        let cperiod = cview.period as f64;
        let attr = match d {
            Derived::ReadCapacityUtilization => "provisionedReadCapacityUnits",
            _ => "provisionedWriteCapacityUnits",
        };
        let mut out = Vec::new();
        let mut ci = 0usize;
        let cpts = &cview.points;
        let mut consumed_at = |t: DateTime<Utc>| -> f64 {
            while ci < cpts.len() && cpts[ci].timestamp < t {
                ci += 1;
            }
            match cpts.get(ci) {
                Some(p) if p.timestamp == t && p.value.is_finite() => p.value,
                _ => 0.0,
            }
        };
        if let Some(pi) = provisioned {
            let pview = &self.views[pi];
            for p in pview.points.iter() {
                if p.value.is_finite() && p.value > 0.0 {
                    let c = consumed_at(p.timestamp);
                    out.push(MetricPoint {
                        timestamp: p.timestamp,
                        value: 100.0 * (c / cperiod) / p.value,
                    });
                }
            }
            return Some((out, pview.period));
        }
        let prov = self
            .resource
            .attributes
            .get(attr)
            .and_then(|v| v.as_f64())?;
        if prov <= 0.0 || !prov.is_finite() {
            return None;
        }
        // A constant provisioned level: evaluate on the consumed series' grid.
        let step = cview.period.max(60);
        let end = self.now_s.div_euclid(step) * step;
        // From the first midnight of the horizon: rules read whole UTC days.
        let first = self.today() - i64::from(horizon_days) * DAY_SECONDS;
        let start = self.effective_from(Span::new(first, end));
        let start = start.div_euclid(step) * step;
        let mut t = start;
        while t < end {
            let ts = DateTime::from_timestamp(t, 0)?;
            let c = consumed_at(ts);
            out.push(MetricPoint {
                timestamp: ts,
                value: 100.0 * (c / cperiod) / prov,
            });
            t += step;
        }
        Some((out, step))
    }
}

impl Ctx<'_> {
    /// Read plus write operations per second, point by point on the read
    /// series' grid (a missing write point counts as none); as a percentage
    /// of the provisioned `iops` for `IopsUtilization`.
    fn volume_iops(&mut self, d: Derived) -> Option<(Vec<MetricPoint>, i64)> {
        let reads = self.find_plain(names::VOLUME_READ_OPS, Statistic::Sum)?;
        let writes = self.find_plain(names::VOLUME_WRITE_OPS, Statistic::Sum);
        let scale = match d {
            Derived::IopsUtilization => {
                let prov = self
                    .resource
                    .attributes
                    .get("iops")
                    .and_then(|v| v.as_f64())
                    .filter(|p| p.is_finite() && *p > 0.0)?;
                100.0 / prov
            }
            _ => 1.0,
        };
        let rv = &self.views[reads];
        let period = rv.period.max(1);
        let wpts: &[MetricPoint] = writes.map_or(&[], |w| &self.views[w].points);
        let mut wi = 0usize;
        let mut out = Vec::with_capacity(rv.points.len());
        for p in rv.points.iter() {
            while wi < wpts.len() && wpts[wi].timestamp < p.timestamp {
                wi += 1;
            }
            let w = match wpts.get(wi) {
                Some(q) if q.timestamp == p.timestamp && q.value.is_finite() => q.value,
                _ => 0.0,
            };
            if p.value.is_finite() {
                out.push(MetricPoint {
                    timestamp: p.timestamp,
                    value: (p.value + w) / period as f64 * scale,
                });
            }
        }
        Some((out, period))
    }

    /// One point an hour over the horizon: 1 while the volume is unattached
    /// and did no I/O that hour, else 0.
    fn unattached(&mut self, horizon_days: u32) -> Option<(Vec<MetricPoint>, i64)> {
        let r = self.resource;
        let state = r.attributes.get("state").and_then(|v| v.as_str())?;
        let attached = r
            .attributes
            .get("attachedTo")
            .is_some_and(|v| v.as_str().is_some_and(|s| !s.trim().is_empty()));
        let free = state.eq_ignore_ascii_case("available") && !attached;
        let step = 3600i64;
        let mut busy: Vec<i64> = Vec::new();
        for m in [names::VOLUME_READ_OPS, names::VOLUME_WRITE_OPS] {
            if let Some(i) = self.find_plain(m, Statistic::Sum) {
                busy.extend(
                    self.views[i]
                        .points
                        .iter()
                        .filter(|p| p.value.is_finite() && p.value > 0.0)
                        .map(|p| p.timestamp.timestamp().div_euclid(step)),
                );
            }
        }
        busy.sort_unstable();
        let end = self.today();
        let first = end - i64::from(horizon_days) * DAY_SECONDS;
        let start = self.effective_from(Span::new(first, end)).div_euclid(step) * step;
        let mut out = Vec::new();
        let mut t = start;
        while t < end {
            let ts = DateTime::from_timestamp(t, 0)?;
            let io = busy.binary_search(&t.div_euclid(step)).is_ok();
            out.push(MetricPoint {
                timestamp: ts,
                value: if free && !io { 1.0 } else { 0.0 },
            });
            t += step;
        }
        Some((out, step))
    }
}

/// The statistic a derived metric's component is read with.
pub(super) fn component_statistic(s: &str) -> Statistic {
    if s == "Sum" {
        Statistic::Sum
    } else {
        Statistic::Average
    }
}
