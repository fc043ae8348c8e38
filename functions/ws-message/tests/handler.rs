//! The ws-message handler, called directly with the events of
//! events/ws-message/, against the tables and queue built from template.yaml.
//! Every frame is read back as the client would see it; every refusal is
//! checked to have changed nothing.

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use aws_lambda_events::encodings::Body;
use chrono::{DateTime, Duration, Utc};
use finops_local::LocalStack;
use serde_json::{json, Value};
use shared::domain::{Connection, JobKind, JobMessage, Role, Service, Topic};
use shared::dynamo::{DynamoConnections, DynamoJobs};
use shared::store::{ConnectionStore, JobStore, PageTokenCodec};
use ws_message::{handle, Config, Deps, Env, MAX_BODY_BYTES};

fn now() -> DateTime<Utc> {
    "2026-11-23T12:05:00Z".parse().unwrap()
}

fn event(name: &str) -> ApiGatewayWebsocketProxyRequest {
    let path = format!(
        "{}/../../events/ws-message/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn with_body(
    mut e: ApiGatewayWebsocketProxyRequest,
    body: &str,
) -> ApiGatewayWebsocketProxyRequest {
    e.body = Some(body.to_string());
    e
}

fn frame(r: &ApiGatewayProxyResponse) -> Value {
    assert_eq!(r.status_code, 200, "frames always travel with 200");
    match &r.body {
        Some(Body::Text(t)) => serde_json::from_str(t).unwrap(),
        other => panic!("expected a text frame, got {other:?}"),
    }
}

struct Fixture {
    deps: Deps,
    connections: DynamoConnections,
    jobs: DynamoJobs,
    sqs: aws_sdk_sqs::Client,
    ddb: aws_sdk_dynamodb::Client,
    config: Config,
    _stack: LocalStack,
}

async fn fixture() -> Fixture {
    let stack = LocalStack::isolated().await;
    let env = stack.function_env("WsMessageFunction");
    let config = Config::from_env(&Env::of(env)).unwrap();
    let ddb = aws_sdk_dynamodb::Client::new(&stack.config);
    let f = Fixture {
        deps: Deps::new(&config, &stack.config),
        connections: DynamoConnections::new(
            ddb.clone(),
            &config.connections_table,
            PageTokenCodec::new(b"test"),
        ),
        jobs: DynamoJobs::new(ddb.clone(), &config.jobs_table),
        sqs: aws_sdk_sqs::Client::new(&stack.config),
        ddb,
        config,
        _stack: stack,
    };
    for (id, user, role) in [
        ("Conn-Operator1=", "olivia", Role::Operator),
        ("Conn-Viewer001=", "vera", Role::Viewer),
    ] {
        f.connections
            .put(&Connection {
                connection_id: id.into(),
                user_id: user.into(),
                roles: vec![role],
                connected_at: now(),
                expires_at: now() + Duration::hours(2),
            })
            .await
            .unwrap();
    }
    f
}

impl Fixture {
    async fn send(&self, e: ApiGatewayWebsocketProxyRequest) -> Value {
        frame(&handle(&self.deps, e, now()).await)
    }

    async fn messages(&self) -> Vec<JobMessage> {
        let mut out = Vec::new();
        loop {
            let got = self
                .sqs
                .receive_message()
                .queue_url(&self.config.jobs_queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(0)
                .visibility_timeout(0)
                .send()
                .await
                .unwrap()
                .messages
                .unwrap_or_default();
            if got.is_empty() || out.len() > 100 {
                return out;
            }
            for m in got {
                self.sqs
                    .delete_message()
                    .queue_url(&self.config.jobs_queue_url)
                    .receipt_handle(m.receipt_handle().unwrap())
                    .send()
                    .await
                    .unwrap();
                out.push(serde_json::from_str(m.body().unwrap()).unwrap());
            }
        }
    }

    async fn count(&self, table: &str) -> usize {
        self.ddb
            .scan()
            .table_name(table)
            .send()
            .await
            .unwrap()
            .items
            .unwrap_or_default()
            .len()
    }

    async fn job_count(&self) -> usize {
        self.count(&self.config.jobs_table).await
    }

    /// The two connection records and nothing else.
    async fn only_connections_stored(&self) {
        assert_eq!(self.count(&self.config.connections_table).await, 2);
    }
}

#[tokio::test]
async fn subscribe_and_unsubscribe_answer_with_the_current_topics() {
    let f = fixture().await;
    let ack = f.send(event("subscribe.json")).await;
    assert_eq!(
        ack,
        json!({
            "type": "ack",
            "action": "subscribe",
            "requestId": "sub-1",
            "topics": ["approvals", "jobs", "resource:i-0abc123def4567890"],
            "total": 3,
            "truncated": false,
        })
    );
    let jobs = f
        .connections
        .subscribers(&Topic::Jobs, None, None, now())
        .await
        .unwrap();
    assert_eq!(jobs.items, vec!["Conn-Operator1="]);

    let ack = f.send(event("unsubscribe.json")).await;
    assert_eq!(ack["type"], "ack");
    assert_eq!(ack["requestId"], "unsub-1");
    assert_eq!(
        ack["topics"],
        json!(["jobs", "resource:i-0abc123def4567890"])
    );
    assert!(f
        .connections
        .subscribers(&Topic::Approvals, None, None, now())
        .await
        .unwrap()
        .items
        .is_empty());
}

#[tokio::test]
async fn subscriptions_per_connection_are_capped_and_the_ack_stays_within_128_kb() {
    let f = fixture().await;
    let cap = shared::dynamo::MAX_SUBSCRIPTIONS;
    // The longest topics there are, a frame's worth at a time, up to the cap.
    let topic = |i: usize| format!("resource:{i:03}{}", "r".repeat(509));
    let mut sent = 0;
    while sent < cap {
        let batch: Vec<String> = (sent..(sent + 25).min(cap)).map(topic).collect();
        sent += batch.len();
        let body = json!({"action": "subscribe", "requestId": sent, "topics": batch}).to_string();
        let r = handle(&f.deps, with_body(event("subscribe.json"), &body), now()).await;
        let ack = frame(&r);
        assert_eq!(ack["type"], "ack", "{ack}");
        assert_eq!(ack["total"], sent);
        let Some(Body::Text(t)) = &r.body else {
            unreachable!()
        };
        assert!(t.len() < 128 * 1024, "{} bytes", t.len());
    }
    // Re-subscribing to held topics adds nothing and is fine at the cap.
    let body = json!({"action": "subscribe", "topics": [topic(0)]}).to_string();
    assert_eq!(
        f.send(with_body(event("subscribe.json"), &body)).await["type"],
        "ack"
    );
    let body = json!({"action": "subscribe", "requestId": "over", "topics": ["jobs"]}).to_string();
    let err = f.send(with_body(event("subscribe.json"), &body)).await;
    assert_eq!(err["type"], "error", "{err}");
    assert_eq!(err["code"], "bad_request");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains(&format!("at most {cap} subscriptions")),
        "{err}"
    );
    assert!(f
        .connections
        .subscribers(&Topic::Jobs, None, None, now())
        .await
        .unwrap()
        .items
        .is_empty());
}

#[tokio::test]
async fn run_cycle_queues_exactly_one_job_and_one_message_read_like_a_scheduled_one() {
    let f = fixture().await;
    let ack = f.send(event("run-cycle.json")).await;
    assert_eq!(ack["type"], "ack", "{ack}");
    assert_eq!(ack["action"], "runCycle");
    assert_eq!(ack["requestId"], "run-1");
    assert_eq!(ack["status"], "queued");
    let job_id = ack["jobId"].as_str().unwrap().to_string();

    let job = f.jobs.get(&job_id, now()).await.unwrap().unwrap();
    assert_eq!(job.kind, JobKind::OptimizationCycle);
    assert_eq!(job.requester, "olivia");
    assert!(job.enqueued);
    assert_eq!(job.params["trigger"], "manual");
    assert_eq!(job.params["requestedBy"], "olivia");
    assert_eq!(job.params["dryRun"], true);
    // The cycle reads `services` as a list of Service, like the scheduler's.
    let services: Vec<Service> = serde_json::from_value(job.params["services"].clone()).unwrap();
    assert_eq!(services, vec![Service::Ec2, Service::Rds]);
    assert_eq!(f.job_count().await, 1);
    let messages = f.messages().await;
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].job_id, job_id);
    assert_eq!(messages[0].kind, JobKind::OptimizationCycle);

    // The client resending the same request inside the window is told the
    // window's job (its own) and when the next cycle may be asked for.
    let again = f.send(event("run-cycle.json")).await;
    assert_eq!(again["type"], "error", "{again}");
    assert_eq!(again["code"], "rate_limited");
    assert_eq!(again["jobId"], job_id.as_str());
    assert_eq!(again["requestId"], "run-1");
    assert_eq!(f.job_count().await, 1);
    assert!(f.messages().await.is_empty());
}

#[tokio::test]
async fn run_cycle_shares_the_rest_triggers_one_a_minute_window() {
    let f = fixture().await;
    // 12:05:00 opens a window; REST would derive the same job id.
    let expected = shared::jobs::manual_cycle(now());
    let ack = f.send(event("run-cycle.json")).await;
    assert_eq!(ack["jobId"], expected.job_id.as_str(), "{ack}");
    // A flood of distinct requests inside the window queues nothing more.
    for i in 0..5 {
        let body = json!({"action": "runCycle", "requestId": format!("flood-{i}")}).to_string();
        let r = handle(
            &f.deps,
            with_body(event("run-cycle.json"), &body),
            now() + Duration::seconds(50),
        )
        .await;
        let err = frame(&r);
        assert_eq!(err["code"], "rate_limited", "{err}");
        assert_eq!(err["retryAfterSeconds"], 10);
        assert_eq!(err["jobId"], expected.job_id.as_str());
    }
    assert_eq!(f.job_count().await, 1);
    // The next window takes the next cycle.
    let body = json!({"action": "runCycle", "requestId": "later"}).to_string();
    let r = handle(
        &f.deps,
        with_body(event("run-cycle.json"), &body),
        now() + Duration::seconds(60),
    )
    .await;
    assert_eq!(frame(&r)["status"], "queued");
    assert_eq!(f.job_count().await, 2);
}

#[tokio::test]
async fn run_cycle_without_services_covers_all_eight() {
    let f = fixture().await;
    let e = with_body(event("run-cycle.json"), r#"{"action":"runCycle"}"#);
    let ack = f.send(e).await;
    assert!(ack.get("requestId").is_none());
    let job = f
        .jobs
        .get(ack["jobId"].as_str().unwrap(), now())
        .await
        .unwrap()
        .unwrap();
    let services: Vec<Service> = serde_json::from_value(job.params["services"].clone()).unwrap();
    assert_eq!(services, Service::ALL.to_vec());
    assert_eq!(job.params["dryRun"], false);
}

#[tokio::test]
async fn a_viewer_may_not_run_a_cycle() {
    let f = fixture().await;
    let err = f.send(event("run-cycle-viewer.json")).await;
    assert_eq!(err["type"], "error");
    assert_eq!(err["code"], "forbidden");
    assert_eq!(err["requestId"], "run-2");
    assert_eq!(f.job_count().await, 0);
    assert!(f.messages().await.is_empty());
}

#[tokio::test]
async fn analyze_costs_queues_a_cost_job_with_validated_params() {
    let f = fixture().await;
    // Any role may ask.
    let mut e = event("analyze-costs.json");
    e.request_context.connection_id = Some("Conn-Viewer001=".into());
    let ack = f.send(e).await;
    assert_eq!(ack["type"], "ack", "{ack}");
    assert_eq!(ack["requestId"], "costs-1");
    let job = f
        .jobs
        .get(ack["jobId"].as_str().unwrap(), now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(job.kind, JobKind::CostAnalysis);
    assert_eq!(job.requester, "vera");
    assert_eq!(
        job.params,
        json!({"start": "2026-10-01", "end": "2026-11-01", "granularity": "DAILY", "groupBy": "service"})
    );
    let messages = f.messages().await;
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].kind, JobKind::CostAnalysis);

    for (body, needle) in [
        (
            r#"{"action":"analyzeCosts","start":"2026-10-01","end":"2026-09-01"}"#,
            "before end",
        ),
        (
            r#"{"action":"analyzeCosts","start":"2026-13-01","end":"2026-12-01"}"#,
            "YYYY-MM-DD",
        ),
        (
            r#"{"action":"analyzeCosts","start":"2026-10-01","end":"2026-11-01","granularity":"WEEKLY"}"#,
            "granularity",
        ),
        (
            r#"{"action":"analyzeCosts","start":"2026-10-01","end":"2026-11-01","groupBy":"COLOUR"}"#,
            "groupBy",
        ),
        (
            r#"{"action":"analyzeCosts","start":"2024-01-01","end":"2026-11-01"}"#,
            "at most",
        ),
        (
            r#"{"action":"analyzeCosts","start":20261001,"end":"2026-11-01"}"#,
            "`start` must be a string",
        ),
    ] {
        let err = f.send(with_body(event("analyze-costs.json"), body)).await;
        assert_eq!(err["code"], "bad_request", "{body}");
        assert!(err["message"].as_str().unwrap().contains(needle), "{err}");
    }
    assert_eq!(f.job_count().await, 1);
    assert!(f.messages().await.is_empty());
}

#[tokio::test]
async fn get_job_returns_the_job_or_not_found() {
    let f = fixture().await;
    let ack = f.send(event("run-cycle.json")).await;
    let job_id = ack["jobId"].as_str().unwrap();
    let body = json!({"action": "getJob", "jobId": job_id, "requestId": "job-1"}).to_string();
    let ack = f.send(with_body(event("get-job.json"), &body)).await;
    assert_eq!(ack["type"], "ack");
    assert_eq!(ack["requestId"], "job-1");
    assert_eq!(ack["job"]["id"], job_id);
    assert_eq!(ack["job"]["status"], "queued");
    assert_eq!(ack["job"]["kind"], "optimization_cycle");

    let err = f.send(event("get-job.json")).await;
    assert_eq!(err["type"], "error");
    assert_eq!(err["code"], "not_found");
    assert_eq!(err["requestId"], "job-1");
}

#[tokio::test]
async fn ping_answers_pong() {
    let f = fixture().await;
    assert_eq!(
        f.send(event("ping.json")).await,
        json!({"type": "pong", "action": "ping", "requestId": "ping-1"})
    );
}

#[tokio::test]
async fn malformed_requests_get_error_frames_with_clear_codes_and_change_nothing() {
    let f = fixture().await;
    let oversize = format!(
        r#"{{"action":"ping","requestId":"big-1","pad":"{}"}}"#,
        "x".repeat(MAX_BODY_BYTES)
    );
    let too_many: Vec<String> = (0..26).map(|i| format!("resource:r-{i}")).collect();
    let cases: Vec<(ApiGatewayWebsocketProxyRequest, &str, Option<&str>, &str)> = vec![
        (
            event("unknown-action.json"),
            "unknown_action",
            Some("x-1"),
            "dance",
        ),
        (event("invalid-json.json"), "bad_request", None, "JSON"),
        (
            event("wrong-type.json"),
            "bad_request",
            Some("bad-1"),
            "`topics` must be an array",
        ),
        (
            event("missing-field.json"),
            "bad_request",
            Some("bad-2"),
            "`end`",
        ),
        (
            event("unknown-topic.json"),
            "bad_request",
            Some("bad-3"),
            "unknown topic",
        ),
        (
            with_body(event("ping.json"), &oversize),
            "payload_too_large",
            None,
            "128 KB",
        ),
        (
            with_body(event("ping.json"), ""),
            "bad_request",
            None,
            "empty",
        ),
        (
            with_body(event("ping.json"), "[1,2]"),
            "bad_request",
            None,
            "object",
        ),
        (
            with_body(event("ping.json"), r#"{"requestId":"r-9"}"#),
            "bad_request",
            Some("r-9"),
            "`action`",
        ),
        (
            with_body(event("ping.json"), r#"{"action":7}"#),
            "bad_request",
            None,
            "`action` must be a string",
        ),
        (
            with_body(
                event("ping.json"),
                r#"{"action":"ping","requestId":{"a":1}}"#,
            ),
            "bad_request",
            None,
            "requestId",
        ),
        (
            with_body(
                event("subscribe.json"),
                r#"{"action":"subscribe","topic":["jobs"],"requestId":"t-1"}"#,
            ),
            "bad_request",
            Some("t-1"),
            "`topics`",
        ),
        (
            with_body(
                event("subscribe.json"),
                r#"{"action":"subscribe","topics":["jobs"],"extra":1}"#,
            ),
            "bad_request",
            None,
            "unknown field `extra`",
        ),
        (
            with_body(
                event("subscribe.json"),
                &json!({"action":"subscribe","topics": too_many}).to_string(),
            ),
            "bad_request",
            None,
            "at most 25",
        ),
        (
            with_body(
                event("subscribe.json"),
                &json!({"action":"subscribe","topics": [format!("resource:{}", "r".repeat(700))]})
                    .to_string(),
            ),
            "bad_request",
            None,
            "longer than",
        ),
        (
            with_body(
                event("run-cycle.json"),
                r#"{"action":"runCycle","services":["ec2","mainframe"]}"#,
            ),
            "bad_request",
            None,
            "mainframe",
        ),
        (
            with_body(
                event("run-cycle.json"),
                r#"{"action":"runCycle","dryRun":"yes"}"#,
            ),
            "bad_request",
            None,
            "`dryRun`",
        ),
        (
            with_body(event("get-job.json"), r#"{"action":"getJob"}"#),
            "bad_request",
            None,
            "`jobId`",
        ),
    ];
    for (e, code, request_id, needle) in cases {
        let body = e.body.clone().unwrap_or_default();
        let shown: String = body.chars().take(80).collect();
        let err = f.send(e).await;
        assert_eq!(err["type"], "error", "{shown}");
        assert_eq!(err["code"], code, "{shown}: {err}");
        assert_eq!(
            err.get("requestId").and_then(Value::as_str),
            request_id,
            "{shown}"
        );
        let message = err["message"].as_str().unwrap();
        assert!(message.contains(needle), "{shown}: {message}");
    }
    // A frame from a connection that was never registered (or expired).
    let mut e = event("subscribe.json");
    e.request_context.connection_id = Some("Conn-Unknown01=".into());
    let err = f.send(e).await;
    assert_eq!(err["code"], "unauthorized");
    assert_eq!(err["requestId"], "sub-1");

    f.only_connections_stored().await;
    assert_eq!(f.job_count().await, 0);
    assert!(f.messages().await.is_empty());
}

#[tokio::test]
async fn base64_frames_are_decoded() {
    use base64::Engine;
    let f = fixture().await;
    let mut e = event("ping.json");
    e.body = Some(
        base64::engine::general_purpose::STANDARD.encode(r#"{"action":"ping","requestId":7}"#),
    );
    e.is_base64_encoded = true;
    assert_eq!(
        f.send(e).await,
        json!({"type": "pong", "action": "ping", "requestId": 7})
    );
}
