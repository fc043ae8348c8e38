//! An in-process CloudWatch for benchmarks too large for the emulator.
//!
//! The emulator keeps every data point as a Python object: 10,000 resources
//! of 14 days hourly are tens of millions of points, more than it can hold
//! or ingest in a benchmark's time (ANCHORS.md, "Size"). This CloudWatch sits
//! behind the SDK's HTTP client instead (`http_client(...)` on the client's
//! config), answers the Query protocol aws-sdk-cloudwatch 1.99.0 speaks
//! (form-encoded requests, XML responses) for `ListMetrics` and
//! `GetMetricData`, and computes every data point when it is asked for: the
//! same values [`crate::estate`] would seed into the emulator, from the same
//! profiles, so the real collector and cycle run unchanged over it.
//!
//! What it holds is the estate's shape (one small entry per resource), not
//! its points. Test and benchmark infrastructure only: the functions never
//! link it.

use crate::estate::{self, Profile};
use aws_smithy_runtime_api::client::http::{
    http_client_fn, HttpConnector, HttpConnectorFuture, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::date_time::{DateTime as SmithyTime, Format};
use chrono::{DateTime, Duration, DurationRound, Utc};
use shared::analysis::MetricQuery;
use shared::collector::resource_of_series;
use shared::domain::{Service, ThresholdSet};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// What one ListMetrics page holds, as in CloudWatch.
pub const LIST_METRICS_PAGE: usize = 500;
/// GetMetricData's default and largest page, in data points.
pub const MAX_DATAPOINTS: usize = 100_800;
/// GetMetricData's limit on queries per call.
pub const MAX_QUERIES: usize = 500;

const XMLNS: &str = "http://monitoring.amazonaws.com/doc/2010-08-01/";

struct Member {
    profile: Profile,
    /// The resource's index within its service (the value generator's seed).
    index: usize,
    id: String,
    resource_type: Option<String>,
}

struct Fleet {
    /// Per service: the metrics each resource publishes, and the resources.
    services: BTreeMap<Service, (Vec<MetricQuery>, Vec<Member>)>,
    by_id: HashMap<(Service, String), usize>,
    /// Where every series ends (exclusive), epoch seconds.
    end: i64,
    days: i64,
    list_metrics: AtomicU64,
    get_metric_data: AtomicU64,
    rejected: AtomicU64,
}

/// The synthetic CloudWatch of an estate of `mix` (see
/// [`crate::estate::resources`]); clones share one.
#[derive(Clone)]
pub struct SyntheticCloudWatch {
    fleet: Arc<Fleet>,
}

impl std::fmt::Debug for SyntheticCloudWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyntheticCloudWatch")
            .field("resources", &self.fleet.by_id.len())
            .finish()
    }
}

/// Requests the synthetic CloudWatch answered, and those it refused.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Served {
    pub list_metrics: u64,
    pub get_metric_data: u64,
    /// Requests it answered with an error (unknown action, over a limit).
    pub rejected: u64,
}

impl SyntheticCloudWatch {
    /// The metrics of the resources of `mix` over `days` ending at the last
    /// full hour before `now`, as [`crate::estate`] builds them.
    pub fn new(
        set: &ThresholdSet,
        now: DateTime<Utc>,
        days: i64,
        mix: &[(Service, usize)],
    ) -> Self {
        let members = mix.iter().flat_map(|&(service, count)| {
            (0..count).map(move |i| {
                let r = estate::resource(service, i);
                (service, r.id, r.resource_type)
            })
        });
        Self::build(set, now, days, members)
    }

    /// The metrics of `resources` (service, id, type: e.g. what the APIs
    /// of an account created), each with the profile and values the
    /// estate gives the resource at its position among its service's.
    pub fn of_resources(
        set: &ThresholdSet,
        now: DateTime<Utc>,
        days: i64,
        resources: &[(Service, String, Option<String>)],
    ) -> Self {
        Self::build(set, now, days, resources.iter().cloned())
    }

    fn build(
        set: &ThresholdSet,
        now: DateTime<Utc>,
        days: i64,
        members: impl Iterator<Item = (Service, String, Option<String>)>,
    ) -> Self {
        let end = now.duration_trunc(Duration::hours(1)).unwrap_or(now);
        let mut services: BTreeMap<Service, (Vec<MetricQuery>, Vec<Member>)> = BTreeMap::new();
        let mut by_id = HashMap::new();
        for (service, id, resource_type) in members {
            let (_, list) = services
                .entry(service)
                .or_insert_with(|| (estate::published_metrics(set, service), Vec::new()));
            let i = list.len();
            by_id.insert((service, id.clone()), i);
            list.push(Member {
                profile: estate::profile_for(service, i),
                index: i,
                id,
                resource_type,
            });
        }
        SyntheticCloudWatch {
            fleet: Arc::new(Fleet {
                services,
                by_id,
                end: end.timestamp(),
                days,
                list_metrics: AtomicU64::new(0),
                get_metric_data: AtomicU64::new(0),
                rejected: AtomicU64::new(0),
            }),
        }
    }

    /// The HTTP client to give an SDK config (`http_client(...)`): every
    /// request it sends is answered here, in process.
    pub fn http_client(&self) -> SharedHttpClient {
        let me = self.clone();
        http_client_fn(move |_, _| SharedHttpConnector::new(me.clone()))
    }

    /// What it has answered so far.
    pub fn served(&self) -> Served {
        Served {
            list_metrics: self.fleet.list_metrics.load(Ordering::Relaxed),
            get_metric_data: self.fleet.get_metric_data.load(Ordering::Relaxed),
            rejected: self.fleet.rejected.load(Ordering::Relaxed),
        }
    }

    /// Answers one Query-protocol request body.
    fn answer(&self, body: &[u8]) -> (u16, String) {
        let form: Vec<(String, String)> = form_urlencoded::parse(body).into_owned().collect();
        let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        let result = match get("Action") {
            Some("ListMetrics") => {
                self.fleet.list_metrics.fetch_add(1, Ordering::Relaxed);
                self.list_metrics(&form)
            }
            Some("GetMetricData") => {
                self.fleet.get_metric_data.fetch_add(1, Ordering::Relaxed);
                self.get_metric_data(&form)
            }
            other => Err(Fault::new(
                "InvalidAction",
                format!("the synthetic CloudWatch does not answer {other:?}"),
            )),
        };
        match result {
            Ok(xml) => (200, xml),
            Err(fault) => {
                self.fleet.rejected.fetch_add(1, Ordering::Relaxed);
                (400, fault.xml())
            }
        }
    }

    fn list_metrics(&self, form: &[(String, String)]) -> Result<String, Fault> {
        let namespace = value(form, "Namespace");
        let metric_name = value(form, "MetricName");
        let wanted: Vec<(&str, Option<&str>)> = indexed(form, "Dimensions.member.")
            .into_values()
            .filter_map(|fields| {
                let name = fields.get("Name")?;
                Some((*name, fields.get("Value").copied()))
            })
            .collect();
        let offset: usize = match value(form, "NextToken") {
            None => 0,
            Some(t) => t
                .parse()
                .map_err(|_| Fault::new("InvalidNextToken", format!("bad token {t}")))?,
        };
        // The series in a fixed order: (service, metric, resource); only the
        // page asked for is materialised.
        let matching = self
            .fleet
            .services
            .iter()
            .flat_map(|(service, (metrics, members))| {
                metrics
                    .iter()
                    .flat_map(move |q| members.iter().map(move |m| (*service, q, m)))
            });
        let mut page = String::with_capacity(LIST_METRICS_PAGE * 200);
        let mut taken = 0;
        let mut seen = 0;
        let mut more = false;
        for (service, q, m) in matching {
            if namespace.is_some_and(|n| n != q.namespace)
                || metric_name.is_some_and(|n| n != q.metric)
            {
                continue;
            }
            let dims = estate::series_dimensions(q, service, &m.id, m.resource_type.as_deref());
            let all_there = wanted.iter().all(|(name, v)| {
                dims.iter()
                    .any(|(n, dv)| n == name && v.is_none_or(|v| v == dv))
            });
            if !all_there {
                continue;
            }
            seen += 1;
            if seen <= offset {
                continue;
            }
            if taken == LIST_METRICS_PAGE {
                more = true;
                break;
            }
            taken += 1;
            let _ = write!(
                page,
                "<member><Namespace>{}</Namespace><MetricName>{}</MetricName><Dimensions>",
                escape(&q.namespace),
                escape(&q.metric)
            );
            for (n, v) in &dims {
                let _ = write!(
                    page,
                    "<member><Name>{}</Name><Value>{}</Value></member>",
                    escape(n),
                    escape(v)
                );
            }
            page.push_str("</Dimensions></member>");
        }
        let token = if more {
            format!("<NextToken>{}</NextToken>", offset + taken)
        } else {
            String::new()
        };
        Ok(format!(
            "<ListMetricsResponse xmlns=\"{XMLNS}\"><ListMetricsResult><Metrics>{page}</Metrics>\
             {token}</ListMetricsResult><ResponseMetadata><RequestId>synthetic</RequestId>\
             </ResponseMetadata></ListMetricsResponse>"
        ))
    }

    fn get_metric_data(&self, form: &[(String, String)]) -> Result<String, Fault> {
        let time = |k: &str| -> Result<i64, Fault> {
            let v = value(form, k)
                .ok_or_else(|| Fault::new("MissingParameter", format!("{k} is required")))?;
            SmithyTime::from_str(v, Format::DateTime)
                .map(|t| t.secs())
                .map_err(|e| Fault::new("InvalidParameterValue", format!("{k}: {e}")))
        };
        let (start, end) = (time("StartTime")?, time("EndTime")?);
        if end <= start {
            return Err(Fault::new(
                "InvalidParameterValue",
                "EndTime must be after StartTime".into(),
            ));
        }
        let max_points =
            match value(form, "MaxDatapoints") {
                None => MAX_DATAPOINTS,
                Some(v) => v.parse::<usize>().ok().filter(|n| *n > 0).ok_or_else(|| {
                    Fault::new("InvalidParameterValue", format!("MaxDatapoints {v}"))
                })?,
            };
        let queries = indexed(form, "MetricDataQueries.member.");
        if queries.is_empty() || queries.len() > MAX_QUERIES {
            return Err(Fault::new(
                "InvalidParameterValue",
                format!("{} queries: 1 to {MAX_QUERIES} are allowed", queries.len()),
            ));
        }
        // The token is (query position, points of it already returned).
        let (mut pos, mut skip) = match value(form, "NextToken") {
            None => (0usize, 0usize),
            Some(t) => t
                .split_once(':')
                .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
                .ok_or_else(|| Fault::new("InvalidNextToken", format!("bad token {t}")))?,
        };
        let queries: Vec<&BTreeMap<&str, &str>> = queries.values().collect();
        let mut results = String::with_capacity(max_points.min(MAX_DATAPOINTS) * 64);
        let mut budget = max_points;
        let mut token = None;
        while pos < queries.len() {
            let q = queries[pos];
            let id = q.get("Id").copied().unwrap_or_default();
            let series = self.series(q, start, end)?;
            let take = series.len().saturating_sub(skip).min(budget);
            let part = &series[skip.min(series.len())..skip.min(series.len()) + take];
            let complete = skip + take >= series.len();
            let _ = write!(
                results,
                "<member><Id>{}</Id><Label>{}</Label><StatusCode>{}</StatusCode><Timestamps>",
                escape(id),
                escape(
                    q.get("MetricStat.Metric.MetricName")
                        .copied()
                        .unwrap_or_default()
                ),
                if complete { "Complete" } else { "PartialData" }
            );
            for (t, _) in part {
                let _ = write!(
                    results,
                    "<member>{}</member>",
                    SmithyTime::from_secs(*t)
                        .fmt(Format::DateTime)
                        .unwrap_or_default()
                );
            }
            results.push_str("</Timestamps><Values>");
            for (_, v) in part {
                let _ = write!(results, "<member>{v}</member>");
            }
            results.push_str("</Values></member>");
            budget -= take;
            if !complete {
                token = Some(format!("{pos}:{}", skip + take));
                break;
            }
            pos += 1;
            skip = 0;
            if budget == 0 && pos < queries.len() {
                token = Some(format!("{pos}:0"));
                break;
            }
        }
        let token = token
            .map(|t| format!("<NextToken>{t}</NextToken>"))
            .unwrap_or_default();
        Ok(format!(
            "<GetMetricDataResponse xmlns=\"{XMLNS}\"><GetMetricDataResult><MetricDataResults>\
             {results}</MetricDataResults>{token}<Messages/></GetMetricDataResult>\
             <ResponseMetadata><RequestId>synthetic</RequestId></ResponseMetadata>\
             </GetMetricDataResponse>"
        ))
    }

    /// The data points of one query in `[start, end)`: buckets of its period
    /// counted from `start`, each the statistic of the stored samples in it
    /// (as the emulator buckets them); empty buckets are left out.
    fn series(
        &self,
        q: &BTreeMap<&str, &str>,
        start: i64,
        end: i64,
    ) -> Result<Vec<(i64, f64)>, Fault> {
        if q.contains_key("Expression") {
            return Err(Fault::new(
                "InvalidParameterValue",
                "the synthetic CloudWatch answers MetricStat queries only".into(),
            ));
        }
        let field = |k: &str| {
            q.get(k).copied().ok_or_else(|| {
                Fault::new("MissingParameter", format!("MetricStat.{k} is required"))
            })
        };
        let namespace = field("MetricStat.Metric.Namespace")?;
        let metric = field("MetricStat.Metric.MetricName")?;
        let stat = field("MetricStat.Stat")?;
        let period: i64 = field("MetricStat.Period")?
            .parse()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| Fault::new("InvalidParameterValue", "bad Period".into()))?;
        let mut dims: Vec<(String, String)> = Vec::new();
        for n in 1.. {
            let name = q.get(format!("MetricStat.Metric.Dimensions.member.{n}.Name").as_str());
            let value = q.get(format!("MetricStat.Metric.Dimensions.member.{n}.Value").as_str());
            match (name, value) {
                (Some(name), Some(value)) => dims.push((name.to_string(), value.to_string())),
                _ => break,
            }
        }
        dims.sort();
        // The service whose resources publish this metric (the agent's
        // CWAgent namespace serves EC2, so not by namespace alone), then the
        // resource its dimensions name, then the series whose full dimension
        // set is the query's.
        let found = self
            .fleet
            .services
            .iter()
            .find_map(|(service, (metrics, members))| {
                let (id, _) = resource_of_series(*service, &dims)?;
                let &index = self.fleet.by_id.get(&(*service, id))?;
                let member = members.get(index)?;
                let (k, mq) = metrics.iter().enumerate().find(|(_, m)| {
                    m.namespace == namespace
                        && m.metric == metric
                        && estate::series_dimensions(
                            m,
                            *service,
                            &member.id,
                            member.resource_type.as_deref(),
                        ) == dims
                })?;
                Some((k, mq, member))
            });
        let Some((k, mq, member)) = found else {
            return Ok(Vec::new());
        };
        let stored = i64::from(estate::stored_period(mq));
        let count = self.fleet.days * 86_400 / stored;
        let first = self.fleet.end - count * stored;
        let sample = |h: i64| {
            estate::sample(
                metric,
                member.profile,
                member.index,
                k,
                first,
                stored as u32,
                h as u64,
            )
        };
        // Stored samples inside the window, walked bucket by bucket.
        let h0 = (start - first).max(0).div_euclid(stored)
            + i64::from((start - first).max(0) % stored != 0);
        let h_end = (count).min((end - first + stored - 1).div_euclid(stored).max(0));
        let mut out = Vec::new();
        let mut h = h0;
        let mut bucket: Vec<f64> = Vec::new();
        while h < h_end {
            let t = first + h * stored;
            if t >= end {
                break;
            }
            let k_bucket = (t - start) / period;
            bucket.clear();
            while h < h_end && (first + h * stored - start) / period == k_bucket {
                bucket.push(sample(h));
                h += 1;
            }
            if let Some(v) = statistic(stat, &mut bucket)? {
                out.push((start + k_bucket * period, v));
            }
        }
        Ok(out)
    }
}

impl HttpConnector for SyntheticCloudWatch {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let (status, xml) = match request.body().bytes() {
            Some(body) => self.answer(body),
            None => (
                400,
                Fault::new("InvalidRequest", "a streaming body was sent".into()).xml(),
            ),
        };
        let status = match StatusCode::try_from(status) {
            Ok(s) => s,
            Err(e) => {
                return HttpConnectorFuture::ready(Err(ConnectorError::other(e.into(), None)))
            }
        };
        let mut response = HttpResponse::new(status, SdkBody::from(xml));
        response.headers_mut().insert("content-type", "text/xml");
        HttpConnectorFuture::ready(Ok(response))
    }
}

/// A statistic of one bucket's samples: CloudWatch's names, and percentiles
/// `pNN` / `pNN.N` by nearest rank.
fn statistic(stat: &str, xs: &mut [f64]) -> Result<Option<f64>, Fault> {
    if xs.is_empty() {
        return Ok(None);
    }
    let n = xs.len() as f64;
    let v = match stat {
        "Average" => xs.iter().sum::<f64>() / n,
        "Sum" => xs.iter().sum(),
        "Minimum" => xs.iter().copied().fold(f64::INFINITY, f64::min),
        "Maximum" => xs.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        "SampleCount" => n,
        p if p.starts_with('p') => {
            let q: f64 = p[1..]
                .parse()
                .ok()
                .filter(|q| (0.0..=100.0).contains(q))
                .ok_or_else(|| Fault::new("InvalidParameterValue", format!("Stat {p}")))?;
            xs.sort_by(f64::total_cmp);
            let rank = ((q / 100.0 * n).ceil() as usize).clamp(1, xs.len());
            xs[rank - 1]
        }
        other => {
            return Err(Fault::new(
                "InvalidParameterValue",
                format!("the synthetic CloudWatch has no statistic {other}"),
            ))
        }
    };
    Ok(Some(v))
}

fn value<'f>(form: &'f [(String, String)], key: &str) -> Option<&'f str> {
    form.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// The members of a Query-protocol list: `prefix` + `N.` + field -> value,
/// grouped by N (ascending).
fn indexed<'f>(
    form: &'f [(String, String)],
    prefix: &str,
) -> BTreeMap<usize, BTreeMap<&'f str, &'f str>> {
    let mut out: BTreeMap<usize, BTreeMap<&str, &str>> = BTreeMap::new();
    for (k, v) in form {
        let Some(rest) = k.strip_prefix(prefix) else {
            continue;
        };
        let Some((n, field)) = rest.split_once('.') else {
            continue;
        };
        if let Ok(n) = n.parse::<usize>() {
            out.entry(n).or_default().insert(field, v.as_str());
        }
    }
    out
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

struct Fault {
    code: &'static str,
    message: String,
}

impl Fault {
    fn new(code: &'static str, message: String) -> Self {
        Fault { code, message }
    }

    fn xml(&self) -> String {
        format!(
            "<ErrorResponse xmlns=\"{XMLNS}\"><Error><Type>Sender</Type><Code>{}</Code>\
             <Message>{}</Message></Error><RequestId>synthetic</RequestId></ErrorResponse>",
            self.code,
            escape(&self.message)
        )
    }
}
