//! Every request a process sends to AWS, counted on the wire.
//!
//! [`Wire::http_client`] is an HTTP client for an SDK configuration
//! (`SdkConfig::to_builder().http_client(...)`). Every client built from
//! that configuration sends through it, including those the product builds
//! itself from the deployment's configuration: the member accounts'
//! clients of discovery and execution, the STS client of the role
//! provider, each unit's CloudWatch. An SDK interceptor
//! (`shared::calls::CallCounter`) only sees the clients it is attached to,
//! which is why the benchmarks count here.
//!
//! Each request is named by its SigV4 credential scope (the service) and
//! its operation (the `X-Amz-Target` header for the JSON protocols, the
//! `Action` of a Query-protocol form, the path of the REST ones). Kept per
//! operation: calls, request and answer bytes, the metrics a GetMetricData
//! asked for, estimated DynamoDB capacity units, SQS billed requests (64 KB
//! chunks), and the `DelaySeconds` of every delayed SendMessage.
//!
//! With [`CloudWatchUnits`], CloudWatch requests never leave the process:
//! each is answered by the synthetic CloudWatch of its account and region
//! (the account found from the request's access key, asked of the
//! emulator's STS once per key, uncounted), because the emulator cannot
//! hold the points of 10,000 resources.

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use finops_local::synthetic::SyntheticCloudWatch;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// What was sent to one operation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OpStats {
    pub calls: u64,
    pub request_bytes: u64,
    /// The answers' `Content-Length` (0 where an answer gave none).
    pub response_bytes: u64,
    /// GetMetricData: the metric queries asked for (what CloudWatch bills).
    pub metrics: u64,
    /// DynamoDB: write request units (1 KB an item, twice in a
    /// transaction) and read units (4 KB of answer, strongly consistent),
    /// estimated from the bytes on the wire.
    pub write_units: u64,
    pub read_units: u64,
    /// SQS: billed requests (each 64 KB of payload is one).
    pub billed: u64,
    /// Query-protocol calls carrying a NextToken (continuation pages).
    pub continued: u64,
    /// Seconds from sending to the answer, summed over the calls.
    pub seconds: f64,
}

impl OpStats {
    fn add(&mut self, o: &OpStats) {
        self.calls += o.calls;
        self.request_bytes += o.request_bytes;
        self.response_bytes += o.response_bytes;
        self.metrics += o.metrics;
        self.write_units += o.write_units;
        self.read_units += o.read_units;
        self.billed += o.billed;
        self.continued += o.continued;
        self.seconds += o.seconds;
    }
}

/// Per `"Service:Operation"` (e.g. `"EC2:DescribeInstances"`, the names
/// discovery's coverage records use).
pub type Tally = BTreeMap<String, OpStats>;

/// `b` added into `a`.
pub fn merge(a: &mut Tally, b: &Tally) {
    for (k, v) in b {
        a.entry(k.clone()).or_default().add(v);
    }
}

/// The calls of `service` (`"EC2"`), or of one `"Service:Operation"`.
pub fn calls(t: &Tally, key: &str) -> u64 {
    if key.contains(':') {
        t.get(key).map_or(0, |s| s.calls)
    } else {
        t.iter()
            .filter(|(k, _)| k.split(':').next() == Some(key))
            .map(|(_, s)| s.calls)
            .sum()
    }
}

/// The synthetic CloudWatch of each (account, region).
pub struct CloudWatchUnits {
    units: HashMap<(String, String), SyntheticCloudWatch>,
    empty: SyntheticCloudWatch,
    endpoint: String,
    http: reqwest::Client,
    accounts: Mutex<HashMap<String, String>>,
}

impl CloudWatchUnits {
    /// `units` per (account, region); `empty` answers any other; the
    /// emulator at `endpoint` says whose an access key is.
    pub fn new(
        units: HashMap<(String, String), SyntheticCloudWatch>,
        empty: SyntheticCloudWatch,
        endpoint: &str,
    ) -> Result<Self, String> {
        Ok(CloudWatchUnits {
            units,
            empty,
            endpoint: endpoint.trim_end_matches('/').to_string(),
            http: shared::tls::http_client()
                .build()
                .map_err(|e| format!("HTTP client: {e}"))?,
            accounts: Mutex::new(HashMap::new()),
        })
    }

    /// The account of `access_key`: the emulator's STS knows which role
    /// session (or the default account) a key belongs to, and checks no
    /// signature, so one unsigned GetCallerIdentity per key tells.
    async fn account_of(&self, access_key: &str) -> Result<String, String> {
        if let Some(a) = self
            .accounts
            .lock()
            .ok()
            .and_then(|m| m.get(access_key).cloned())
        {
            return Ok(a);
        }
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential={access_key}/20250101/us-east-1/sts/aws4_request, \
             SignedHeaders=host, Signature=0"
        );
        let text = self
            .http
            .post(format!("{}/", self.endpoint))
            .header("authorization", auth)
            .header("content-type", "application/x-www-form-urlencoded")
            .body("Action=GetCallerIdentity&Version=2011-06-15")
            .send()
            .await
            .map_err(|e| format!("GetCallerIdentity: {e}"))?
            .text()
            .await
            .map_err(|e| format!("GetCallerIdentity: {e}"))?;
        let account = between(&text, "<Account>", "</Account>")
            .ok_or_else(|| format!("GetCallerIdentity answered {text}"))?
            .to_string();
        if let Ok(mut m) = self.accounts.lock() {
            m.insert(access_key.to_string(), account.clone());
        }
        Ok(account)
    }

    fn unit(&self, account: &str, region: &str) -> SyntheticCloudWatch {
        self.units
            .get(&(account.to_string(), region.to_string()))
            .unwrap_or(&self.empty)
            .clone()
    }
}

struct Inner {
    tally: Mutex<Tally>,
    delays: Mutex<Vec<i64>>,
    cloudwatch: Option<CloudWatchUnits>,
}

/// A count of the requests sent through its HTTP client; clones share it.
#[derive(Clone)]
pub struct Wire {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Wire {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Wire(..)")
    }
}

impl Wire {
    /// Counts, and sends everything on to AWS.
    pub fn counting() -> Self {
        Self::build(None)
    }

    /// Counts, and answers CloudWatch from `units`.
    pub fn with_cloudwatch(units: CloudWatchUnits) -> Self {
        Self::build(Some(units))
    }

    fn build(cloudwatch: Option<CloudWatchUnits>) -> Self {
        Wire {
            inner: Arc::new(Inner {
                tally: Mutex::new(Tally::new()),
                delays: Mutex::new(Vec::new()),
                cloudwatch,
            }),
        }
    }

    /// The HTTP client to give an SDK configuration (plain HTTP: the
    /// emulator is on loopback).
    pub fn http_client(&self) -> SharedHttpClient {
        SharedHttpClient::new(WireClient {
            inner: aws_smithy_http_client::Builder::new().build_http(),
            wire: self.clone(),
        })
    }

    /// `config` sending through this wire.
    pub fn config(&self, config: &aws_config::SdkConfig) -> aws_config::SdkConfig {
        config.to_builder().http_client(self.http_client()).build()
    }

    pub fn tally(&self) -> Tally {
        self.inner
            .tally
            .lock()
            .map(|t| t.clone())
            .unwrap_or_default()
    }

    /// The `DelaySeconds` of every delayed SendMessage, in order.
    pub fn delays(&self) -> Vec<i64> {
        self.inner
            .delays
            .lock()
            .map(|d| d.clone())
            .unwrap_or_default()
    }

    fn record(&self, key: String, stats: OpStats, delay: Option<i64>) {
        let mut tally = match self.inner.tally.lock() {
            Ok(t) => t,
            Err(p) => p.into_inner(),
        };
        tally.entry(key).or_default().add(&stats);
        if let Some(d) = delay.filter(|d| *d > 0) {
            if let Ok(mut v) = self.inner.delays.lock() {
                v.push(d);
            }
        }
    }
}

#[derive(Debug)]
struct WireClient {
    inner: SharedHttpClient,
    wire: Wire,
}

impl HttpClient for WireClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(WireConnector {
            inner: self.inner.http_connector(settings, components),
            wire: self.wire.clone(),
        })
    }
}

#[derive(Debug)]
struct WireConnector {
    inner: SharedHttpConnector,
    wire: Wire,
}

/// The credential scope of a SigV4 `Authorization` header: (access key,
/// region, service).
fn scope(request: &HttpRequest) -> Option<(String, String, String)> {
    let auth = request.headers().get("authorization")?;
    let cred = auth.split("Credential=").nth(1)?;
    let mut parts = cred.split('/');
    let key = parts.next()?.to_string();
    let _date = parts.next()?;
    let region = parts.next()?.to_string();
    let service = parts.next()?.to_string();
    Some((key, region, service))
}

/// The service as the product names it (discovery's coverage keys).
fn service_name(signing: &str) -> String {
    match signing {
        "ec2" => "EC2",
        "monitoring" => "CloudWatch",
        "dynamodb" => "DynamoDB",
        "sqs" => "SQS",
        "sts" => "STS",
        "organizations" => "Organizations",
        "rds" => "RDS",
        "elasticache" => "ElastiCache",
        "lambda" => "Lambda",
        "ecs" => "ECS",
        "s3" => "S3",
        "application-autoscaling" => "Application Auto Scaling",
        "ce" => "Cost Explorer",
        "iam" => "IAM",
        "execute-api" => "API Gateway",
        other => return other.to_string(),
    }
    .to_string()
}

fn form_value<'b>(body: &'b str, key: &str) -> Option<&'b str> {
    body.split('&')
        .find_map(|kv| kv.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
}

fn between<'t>(text: &'t str, open: &str, close: &str) -> Option<&'t str> {
    let start = text.find(open)? + open.len();
    let end = text[start..].find(close)? + start;
    Some(&text[start..end])
}

/// The path and query of a request URI.
fn path_of(uri: &str) -> &str {
    match uri.find("://") {
        Some(i) => uri[i + 3..].find('/').map_or("/", |j| &uri[i + 3 + j..]),
        None => uri,
    }
}

/// A REST operation's name from its method and path (Lambda and S3, the
/// two REST services discovery reads).
fn rest_operation(service: &str, method: &str, uri: &str) -> String {
    let path = path_of(uri);
    let (p, query) = path.split_once('?').unwrap_or((path, ""));
    let q = |k: &str| {
        query
            .split('&')
            .any(|kv| kv == k || kv.starts_with(&format!("{k}=")))
    };
    if let Some(id) = query.split('&').find_map(|kv| kv.strip_prefix("x-id=")) {
        return id.to_string();
    }
    let name = match (service, method) {
        ("lambda", "GET") if p.starts_with("/2015-03-31/functions") => {
            if p.trim_end_matches('/') == "/2015-03-31/functions" {
                "ListFunctions"
            } else {
                "GetFunction"
            }
        }
        ("lambda", "GET") if p.starts_with("/2015-03-31/event-source-mappings") => {
            "ListEventSourceMappings"
        }
        ("lambda", "GET") if p.starts_with("/2017-03-31/tags") => "ListTags",
        ("lambda", "PUT") if p.ends_with("/configuration") => "UpdateFunctionConfiguration",
        ("s3", "GET") if q("tagging") => "GetBucketTagging",
        ("s3", "GET") if q("lifecycle") => "GetBucketLifecycleConfiguration",
        ("s3", "GET") if q("location") => "GetBucketLocation",
        ("s3", "PUT") if q("lifecycle") => "PutBucketLifecycleConfiguration",
        ("s3", "GET") if p == "/" => "ListBuckets",
        _ => return format!("{method} {}", p.split('/').nth(1).unwrap_or("")),
    };
    name.to_string()
}

fn operation(service: &str, request: &HttpRequest, body: Option<&[u8]>) -> String {
    if let Some(target) = request.headers().get("x-amz-target") {
        return target.rsplit('.').next().unwrap_or(target).to_string();
    }
    if let Some(action) = body
        .and_then(|b| std::str::from_utf8(b).ok())
        .and_then(|b| form_value(b, "Action"))
    {
        return action.to_string();
    }
    rest_operation(service, request.method(), request.uri())
}

/// The metric queries of a Query-protocol GetMetricData form.
fn metric_queries(body: &str) -> u64 {
    body.split('&')
        .filter(|kv| {
            kv.split('=')
                .next()
                .is_some_and(|k| k.starts_with("MetricDataQueries.member.") && k.ends_with(".Id"))
        })
        .count() as u64
}

fn kb_units(bytes: usize, per: usize) -> u64 {
    bytes.div_ceil(per).max(1) as u64
}

/// Write units of a DynamoDB write, from its JSON body: 1 per KB of each
/// item written, twice in a transaction.
fn write_units(op: &str, body: &[u8]) -> u64 {
    let entries = |v: &serde_json::Value| -> u64 {
        v.as_array()
            .map(|a| a.iter().map(|e| kb_units(e.to_string().len(), 1024)).sum())
            .unwrap_or(0)
    };
    match op {
        "PutItem" | "UpdateItem" | "DeleteItem" => kb_units(body.len(), 1024),
        "BatchWriteItem" | "TransactWriteItems" => {
            let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
                return kb_units(body.len(), 1024);
            };
            if op == "TransactWriteItems" {
                2 * entries(&v["TransactItems"])
            } else {
                v["RequestItems"]
                    .as_object()
                    .map(|t| t.values().map(entries).sum())
                    .unwrap_or(0)
            }
        }
        _ => 0,
    }
}

fn is_dynamodb_read(op: &str) -> bool {
    matches!(
        op,
        "GetItem" | "Query" | "Scan" | "BatchGetItem" | "TransactGetItems"
    )
}

impl HttpConnector for WireConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let (key, region, signing) = scope(&request).unwrap_or_default();
        let body = request.body().bytes().map(<[u8]>::to_vec);
        let service = service_name(&signing);
        let op = operation(&signing, &request, body.as_deref());
        let len = body.as_ref().map_or(0, Vec::len);
        let text = body
            .as_deref()
            .and_then(|b| std::str::from_utf8(b).ok())
            .unwrap_or("");
        let mut stats = OpStats {
            calls: 1,
            request_bytes: len as u64,
            ..OpStats::default()
        };
        let mut delay = None;
        if form_value(text, "NextToken").is_some() {
            stats.continued = 1;
        }
        match (signing.as_str(), op.as_str()) {
            ("monitoring", "GetMetricData") => stats.metrics = metric_queries(text),
            ("dynamodb", o) => stats.write_units = write_units(o, text.as_bytes()),
            ("sqs", o) => {
                stats.billed = kb_units(len, 64 * 1024);
                if o == "SendMessage" {
                    delay = serde_json::from_str::<serde_json::Value>(text)
                        .ok()
                        .and_then(|v| v["DelaySeconds"].as_i64());
                }
            }
            _ => {}
        }
        let wire = self.wire.clone();
        let name = format!("{service}:{op}");
        let reads = signing == "dynamodb" && is_dynamodb_read(&op);
        let synthetic = signing == "monitoring" && wire.inner.cloudwatch.is_some();
        let inner = self.inner.clone();
        HttpConnectorFuture::new(async move {
            let sent = std::time::Instant::now();
            let answer = if synthetic {
                let units =
                    wire.inner.cloudwatch.as_ref().ok_or_else(|| {
                        ConnectorError::other("no synthetic CloudWatch".into(), None)
                    })?;
                let account = units
                    .account_of(&key)
                    .await
                    .map_err(|e| ConnectorError::other(e.into(), None))?;
                units.unit(&account, &region).call(request).await
            } else {
                inner.call(request).await
            };
            stats.seconds = sent.elapsed().as_secs_f64();
            if let Ok(response) = &answer {
                stats.response_bytes = response
                    .headers()
                    .get("content-length")
                    .and_then(|l| l.parse().ok())
                    .unwrap_or(0);
                if reads {
                    stats.read_units = kb_units(stats.response_bytes as usize, 4096);
                }
            }
            wire.record(name, stats, delay);
            answer
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_are_named_from_their_paths_and_forms() {
        assert_eq!(
            rest_operation(
                "lambda",
                "GET",
                "http://127.0.0.1:9/2015-03-31/functions/?MaxItems=50"
            ),
            "ListFunctions"
        );
        assert_eq!(
            rest_operation(
                "s3",
                "GET",
                "http://127.0.0.1:9/?x-id=ListBuckets&max-buckets=10000"
            ),
            "ListBuckets"
        );
        assert_eq!(
            rest_operation("s3", "GET", "http://127.0.0.1:9/bucket?tagging"),
            "GetBucketTagging"
        );
        assert_eq!(
            form_value("Version=1&Action=DescribeInstances", "Action"),
            Some("DescribeInstances")
        );
        assert_eq!(
            metric_queries("MetricDataQueries.member.1.Id=a&MetricDataQueries.member.1.MetricStat.Period=60&MetricDataQueries.member.2.Id=b"),
            2
        );
        assert_eq!(write_units("PutItem", &[0u8; 1025]), 2);
        assert_eq!(kb_units(0, 4096), 1);
    }
}
