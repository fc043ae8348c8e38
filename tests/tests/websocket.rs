//! End to end through the local API Gateway: real WebSocket clients on
//! loopback, the real ws-connect / ws-message / ws-disconnect handlers, the
//! real processor fed by the SQS event source loop, the real notifier
//! posting to `@connections`, all against the AWS emulator. Each test starts
//! the `make dev` stack (infra/dev) on ephemeral ports with its own tables.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use finops_dev::{Dev, Functions, Seed, Settings};
use finops_local::gateway::Gateway;
use finops_local::{Emulator, LocalStack, Template};
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use shared::auth::LocalClaims;
use shared::domain::Role;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;

const FRAME_WAIT: Duration = Duration::from_secs(20);

async fn stack() -> LocalStack {
    let emulator = Emulator::shared();
    let config = finops_local::sdk_config(&emulator.endpoint).await;
    let template = Template::load().expect("template.yaml parses");
    let prefix = format!("e{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    LocalStack::create(&config, &emulator.endpoint, &template, &prefix)
        .await
        .expect("local stack from template.yaml")
}

async fn dev(seed: Seed) -> Dev {
    Dev::start(stack().await, Settings::ephemeral(seed), |g, _| g)
        .await
        .expect("the local stack starts")
}

fn token(dev: &Dev, user: &str, role: Role) -> String {
    dev.token(user, &[role], chrono::Duration::hours(1))
}

async fn connect(dev: &Dev, token: &str) -> Client {
    let url = format!("{}/?token={token}", dev.ws_url());
    tokio_tungstenite::connect_async(url)
        .await
        .expect("the connection is accepted")
        .0
}

/// The HTTP status a refused connect got.
async fn refused(dev: &Dev, query: &str) -> u16 {
    let url = format!("{}/{query}", dev.ws_url());
    match tokio_tungstenite::connect_async(url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => r.status().as_u16(),
        Ok(_) => panic!("'{query}' was accepted"),
        Err(e) => panic!("'{query}': {e}"),
    }
}

async fn send(client: &mut Client, frame: Value) {
    client
        .send(Message::text(frame.to_string()))
        .await
        .expect("the frame is sent");
}

async fn next_frame(client: &mut Client) -> Value {
    loop {
        match tokio::time::timeout(FRAME_WAIT, client.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => {
                return serde_json::from_str(&t).expect("frames are JSON")
            }
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
            other => panic!("expected a frame, got {other:?}"),
        }
    }
}

/// Nothing arrives within `wait`.
async fn silent(client: &mut Client, wait: Duration) -> Option<Value> {
    match tokio::time::timeout(wait, client.next()).await {
        Ok(Some(Ok(Message::Text(t)))) => {
            Some(serde_json::from_str(&t).unwrap_or(json!(t.to_string())))
        }
        _ => None,
    }
}

async fn subscribe(client: &mut Client, topics: &[&str]) {
    send(
        client,
        json!({"action": "subscribe", "topics": topics, "requestId": "sub"}),
    )
    .await;
    let ack = next_frame(client).await;
    assert_eq!(ack["type"], "ack", "{ack}");
    assert_eq!(ack["requestId"], "sub");
}

fn alg_none(dev: &Dev) -> String {
    let claims = LocalClaims::new(
        &dev.auth,
        "mallory",
        &[Role::Admin],
        chrono::Utc::now(),
        chrono::Duration::hours(1),
    );
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap());
    format!("{header}.{body}.")
}

#[tokio::test]
async fn only_a_valid_token_connects() {
    let dev = dev(Seed::None).await;
    let now = chrono::Utc::now();

    let valid = token(&dev, "alice", Role::Viewer);
    let mut client = connect(&dev, &valid).await;
    send(&mut client, json!({"action": "ping", "requestId": "p"})).await;
    let pong = next_frame(&mut client).await;
    assert_eq!(pong["type"], "pong");
    assert_eq!(pong["requestId"], "p");

    // The token as the subprotocol, as browsers send it, is echoed back.
    let mut request = dev.ws_url().into_client_request().unwrap();
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", valid.parse().unwrap());
    let (_browser, response) = tokio_tungstenite::connect_async(request)
        .await
        .expect("the subprotocol token is accepted");
    assert_eq!(
        response.headers().get("sec-websocket-protocol").unwrap(),
        valid.as_str()
    );

    let expired = LocalClaims::new(
        &dev.auth,
        "alice",
        &[Role::Viewer],
        now - chrono::Duration::hours(3),
        chrono::Duration::hours(1),
    )
    .sign_hs256(dev.auth_secret.as_bytes())
    .unwrap();
    let forged = LocalClaims::new(
        &dev.auth,
        "alice",
        &[Role::Admin],
        now,
        chrono::Duration::hours(1),
    )
    .sign_hs256(b"not-the-secret-not-the-secret-not-the-secret")
    .unwrap();
    assert_eq!(refused(&dev, "").await, 401, "no token");
    assert_eq!(
        refused(&dev, &format!("?token={expired}")).await,
        401,
        "expired"
    );
    assert_eq!(
        refused(&dev, &format!("?token={forged}")).await,
        401,
        "wrong signature"
    );
    assert_eq!(
        refused(&dev, &format!("?token={}", alg_none(&dev))).await,
        401,
        "alg none"
    );
    assert_eq!(dev.gateway.open_connections(), 2);

    // The same stack serves the REST API, with the same tokens.
    let http = shared::tls::http_client().build().unwrap();
    let health = http
        .get(format!("{}/api/health", dev.rest_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);
    let unauthorised = http
        .get(format!("{}/api/recommendations", dev.rest_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthorised.status().as_u16(), 401);
    let listed = http
        .get(format!("{}/api/recommendations", dev.rest_url()))
        .bearer_auth(&valid)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status().as_u16(), 200);
    dev.shutdown().await;
}

#[tokio::test]
async fn run_cycle_acks_then_streams_progress_in_order_then_completes() {
    let now = chrono::Utc::now();
    let thresholds = shared::analysis::default_thresholds().unwrap();
    let estate = finops_local::estate::ec2_fleet(&thresholds, now, 14, 4);
    let dev = dev(Seed::Estate(estate)).await;

    let mut client = connect(&dev, &token(&dev, "olivia", Role::Operator)).await;
    subscribe(&mut client, &["jobs"]).await;
    send(
        &mut client,
        json!({"action": "runCycle", "requestId": "run-1"}),
    )
    .await;
    let ack = next_frame(&mut client).await;
    assert_eq!(ack["type"], "ack", "{ack}");
    assert_eq!(ack["requestId"], "run-1");
    let job_id = ack["jobId"]
        .as_str()
        .expect("the ack names the job")
        .to_string();

    let mut progress = Vec::new();
    let completed = loop {
        let frame = tokio::time::timeout(Duration::from_secs(180), next_frame(&mut client))
            .await
            .expect("the cycle finishes within 3 minutes");
        assert_eq!(frame["jobId"], job_id.as_str(), "{frame}");
        match frame["type"].as_str() {
            Some("job.progress") => progress.push(frame),
            Some("job.completed") => break frame,
            _ => panic!("unexpected frame {frame}"),
        }
    };
    assert!(!progress.is_empty(), "progress came before completion");
    let percents: Vec<f64> = progress
        .iter()
        .map(|f| f["percent"].as_f64().unwrap())
        .collect();
    assert!(
        percents.windows(2).all(|w| w[0] <= w[1]),
        "progress is in order: {percents:?}"
    );
    for f in &progress {
        assert!(
            f["done"].as_u64().unwrap() <= f["total"].as_u64().unwrap(),
            "{f}"
        );
        assert!(f["stage"].as_str().is_some_and(|s| !s.is_empty()));
    }
    assert!(completed["summary"].is_object(), "{completed}");
    // Nothing about this job after its completion.
    assert!(silent(&mut client, Duration::from_millis(500))
        .await
        .is_none());
    dev.shutdown().await;
}

#[tokio::test]
async fn approval_events_reach_approvals_and_that_resources_subscribers_only() {
    let now = chrono::Utc::now();
    let thresholds = shared::analysis::default_thresholds().unwrap();
    let estate = finops_local::estate::ec2_fleet(&thresholds, now, 14, 4);
    let ids: Vec<String> = estate.resources.iter().map(|r| r.id.clone()).collect();
    let dev = dev(Seed::Estate(estate)).await;

    let mut approvals = connect(&dev, &token(&dev, "ann", Role::Approver)).await;
    subscribe(&mut approvals, &["approvals"]).await;
    // One subscriber per resource, and one of a resource nobody touches.
    let mut per_resource = Vec::new();
    for id in &ids {
        let mut c = connect(&dev, &token(&dev, "rita", Role::Viewer)).await;
        subscribe(&mut c, &[&format!("resource:{id}")]).await;
        per_resource.push((id.clone(), c));
    }
    let mut bystander = connect(&dev, &token(&dev, "bob", Role::Viewer)).await;
    subscribe(&mut bystander, &["resource:i-not-in-this-estate", "costs"]).await;
    let mut operator = connect(&dev, &token(&dev, "olivia", Role::Operator)).await;
    subscribe(&mut operator, &["jobs"]).await;

    send(
        &mut operator,
        json!({"action": "runCycle", "requestId": "r"}),
    )
    .await;
    assert_eq!(next_frame(&mut operator).await["type"], "ack");
    loop {
        let f = tokio::time::timeout(Duration::from_secs(180), next_frame(&mut operator))
            .await
            .expect("the cycle finishes");
        assert!(
            f["type"].as_str().is_some_and(|t| t.starts_with("job.")),
            "a jobs subscriber gets job events only: {f}"
        );
        if f["type"] == "job.completed" {
            break;
        }
    }

    // Every approval request the cycle opened reached `approvals` ...
    let mut opened: Vec<String> = Vec::new();
    while let Some(f) = silent(&mut approvals, Duration::from_secs(2)).await {
        assert_eq!(f["type"], "approval_request_created", "{f}");
        opened.push(
            f["request"]["recommendation"]["resourceId"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    assert!(!opened.is_empty(), "the cycle opened approval requests");
    // ... and each resource's subscriber got exactly its own.
    for (id, client) in &mut per_resource {
        let mut got = Vec::new();
        while let Some(f) = silent(client, Duration::from_millis(300)).await {
            assert_eq!(f["type"], "approval_request_created", "{f}");
            got.push(
                f["request"]["recommendation"]["resourceId"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            );
        }
        let expected: Vec<String> = opened.iter().filter(|r| *r == id).cloned().collect();
        assert_eq!(got, expected, "resource:{id}");
    }
    assert!(silent(&mut bystander, Duration::from_millis(300))
        .await
        .is_none());
    dev.shutdown().await;
}

#[tokio::test]
async fn a_vanished_client_is_pruned_at_the_next_publish_and_the_others_still_receive() {
    // API Gateway invokes $disconnect on a best-effort basis; here it is
    // lost for the connections in `lose`, which is what leaves a stale record.
    let accepted: Arc<Mutex<Vec<String>>> = Arc::default();
    let lose: Arc<Mutex<HashSet<String>>> = Arc::default();
    let (acc, lost) = (accepted.clone(), lose.clone());
    let dev = Dev::start(
        stack().await,
        Settings::ephemeral(Seed::None),
        move |g: Gateway, f: &Arc<Functions>| {
            let (connect, disconnect) = (f.clone(), f.clone());
            g.route(
                "$connect",
                move |e: aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest| {
                    let (f, acc) = (connect.clone(), acc.clone());
                    async move {
                        let id = e.request_context.connection_id.clone().unwrap_or_default();
                        let r = f.ws_connect(e).await;
                        if r.status_code == 200 {
                            acc.lock().unwrap().push(id);
                        }
                        r
                    }
                },
            )
            .route(
                "$disconnect",
                move |e: aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest| {
                    let (f, lost) = (disconnect.clone(), lost.clone());
                    async move {
                        let id = e.request_context.connection_id.clone().unwrap_or_default();
                        if lost.lock().unwrap().contains(&id) {
                            return aws_lambda_events::apigw::ApiGatewayProxyResponse::default();
                        }
                        f.ws_disconnect(e).await
                    }
                },
            )
        },
    )
    .await
    .expect("the local stack starts");

    let mut stays = connect(&dev, &token(&dev, "sam", Role::Viewer)).await;
    subscribe(&mut stays, &["jobs"]).await;
    let vanishing = {
        let mut c = connect(&dev, &token(&dev, "vic", Role::Viewer)).await;
        subscribe(&mut c, &["jobs"]).await;
        c
    };
    let vanished_id = accepted.lock().unwrap().last().cloned().unwrap();
    lose.lock().unwrap().insert(vanished_id.clone());
    // No close frame: the client just goes.
    drop(vanishing);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while dev.gateway.open_connections() > 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "the gateway noticed the client left"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let topic = shared::domain::Topic::Jobs;
    let subscribers = |dev: &Dev| {
        let store = dev.functions.connections();
        let topic = topic.clone();
        async move {
            store
                .subscribers(&topic, None, None, chrono::Utc::now())
                .await
                .unwrap()
                .items
        }
    };
    assert!(
        subscribers(&dev).await.contains(&vanished_id),
        "the lost $disconnect left the record"
    );

    let event = shared::notify::Event::JobFailed {
        job_id: "job-e2e".into(),
        error: "a test event".into(),
    };
    dev.functions.notifier().publish(&event).await.unwrap();
    let got = next_frame(&mut stays).await;
    assert_eq!(got["type"], "job.failed");
    assert_eq!(got["jobId"], "job-e2e");
    let left = subscribers(&dev).await;
    assert!(
        !left.contains(&vanished_id),
        "410 pruned the vanished connection"
    );
    assert_eq!(left.len(), 1, "and only it: {left:?}");
    dev.shutdown().await;
}

/// Sends a message in frames of at most 32 KB, API Gateway's frame limit.
async fn send_fragmented(client: &mut Client, message: Message) {
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    let (kind, payload) = match message {
        Message::Text(t) => (Data::Text, t.as_bytes().to_vec()),
        Message::Binary(b) => (Data::Binary, b.to_vec()),
        other => return client.send(other).await.expect("still open"),
    };
    let chunks: Vec<&[u8]> = payload
        .chunks(finops_local::gateway::MAX_FRAME_BYTES)
        .collect();
    for (i, chunk) in chunks.iter().enumerate() {
        let opcode = if i == 0 { kind } else { Data::Continue };
        let frame = Frame::message(chunk.to_vec(), OpCode::Data(opcode), i + 1 == chunks.len());
        client
            .feed(Message::Frame(frame))
            .await
            .expect("still open");
    }
    client.flush().await.expect("still open");
}

#[tokio::test]
async fn malformed_frames_get_error_frames_and_the_connection_stays_open() {
    let dev = dev(Seed::None).await;
    let mut client = connect(&dev, &token(&dev, "val", Role::Viewer)).await;
    let cases = [
        Message::text("this is not json"),
        Message::text(r#"["an","array"]"#),
        Message::text(r#"{"requestId":"m1"}"#),
        Message::text(r#"{"action":"selfDestruct","requestId":"m2"}"#),
        Message::text(r#"{"action":"subscribe","topics":"jobs","requestId":"m3"}"#),
        Message::text(r#"{"action":"subscribe","topics":["no-such-topic"],"requestId":"m4"}"#),
        Message::text(r#"{"action":"getJob","requestId":"m5"}"#),
        Message::text(r#"{"action":"runCycle","requestId":"m6"}"#),
        // 100 KB, through the gateway in 32 KB frames (as API Gateway
        // requires): it reaches ws-message, which refuses the unknown field.
        Message::text(format!(
            r#"{{"action":"ping","pad":"{}"}}"#,
            "x".repeat(100 * 1024)
        )),
        Message::binary(vec![0xff, 0x00, 0x13]),
    ];
    let n = cases.len();
    for (i, frame) in cases.into_iter().enumerate() {
        let shown = format!("{frame:?}").chars().take(80).collect::<String>();
        send_fragmented(&mut client, frame).await;
        let reply = next_frame(&mut client).await;
        assert_eq!(reply["type"], "error", "case {i} {shown}: {reply}");
        assert!(
            reply["code"].as_str().is_some_and(|c| !c.is_empty()),
            "{reply}"
        );
        assert!(
            reply["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{reply}"
        );
        if let Some(id) = ["", "", "", "m2", "m3", "m4", "m5", "m6", "", ""]
            .get(i)
            .filter(|s| !s.is_empty())
        {
            assert_eq!(reply["requestId"], *id, "case {i}: {reply}");
        }
    }
    // A viewer may not run a cycle: that was an error too, and nothing was queued.
    send(&mut client, json!({"action": "ping", "requestId": "after"})).await;
    let pong = next_frame(&mut client).await;
    assert_eq!(
        pong["type"], "pong",
        "after {n} malformed frames the connection works"
    );
    assert_eq!(pong["requestId"], "after");
    assert_eq!(dev.gateway.open_connections(), 1);
    dev.shutdown().await;
}

/// The question a WebSocket client asks is the one the processor answers:
/// each shape the edge acknowledges (a Cost Explorer dimension, an account
/// spelled as Cost Explorer names it, a tag) ends `succeeded`, through SQS
/// and the real processor, and its report reaches the client.
#[tokio::test]
async fn every_acknowledged_cost_question_succeeds_in_the_processor() {
    let dev = dev(Seed::None).await;
    let mut client = connect(&dev, &token(&dev, "vera", Role::Viewer)).await;
    subscribe(&mut client, &["jobs", "costs"]).await;
    let today = chrono::Utc::now().date_naive();
    let start = (today - chrono::Duration::days(20)).to_string();
    let end = today.to_string();
    let questions = [
        json!({"groupBy": "REGION"}),
        json!({"groupBy": "LINKED_ACCOUNT", "granularity": "monthly"}),
        json!({"groupBy": "tag:team"}),
        json!({}),
    ];
    for (i, q) in questions.iter().enumerate() {
        let mut frame = json!({
            "action": "analyzeCosts",
            "start": start,
            "end": end,
            "requestId": format!("costs-{i}"),
        });
        for (k, v) in q.as_object().unwrap() {
            frame[k] = v.clone();
        }
        send(&mut client, frame).await;
        let ack = next_frame(&mut client).await;
        assert_eq!(ack["type"], "ack", "{q}: {ack}");
        let job_id = ack["jobId"].as_str().unwrap().to_string();
        // Its completion (after a cost.report) arrives without polling.
        let completed = loop {
            let f = next_frame(&mut client).await;
            assert_ne!(f["type"], "job.failed", "{q}: {f}");
            if f["type"] == "job.completed" && f["jobId"] == job_id.as_str() {
                break f;
            }
        };
        assert_eq!(completed["summary"]["currency"], "USD", "{completed}");
        let job = shared::store::JobStore::get(
            &dev.functions.processor.jobs,
            &job_id,
            chrono::Utc::now(),
        )
        .await
        .unwrap()
        .unwrap();
        assert_eq!(
            job.status,
            shared::domain::JobStatus::Succeeded,
            "{q}: {:?}",
            job.error
        );
    }
    // What the processor could not run is refused at the edge, with a
    // reason, and queues nothing.
    send(
        &mut client,
        json!({"action": "analyzeCosts", "start": start, "end": end, "granularity": "HOURLY", "requestId": "h"}),
    )
    .await;
    let refused = next_frame(&mut client).await;
    assert_eq!(refused["type"], "error", "{refused}");
    assert!(refused["message"].as_str().unwrap().contains("granularity"));
    dev.shutdown().await;
}
