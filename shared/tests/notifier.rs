//! The notifier's channels against loopback HTTP servers started here:
//! one answering PostToConnection the way API Gateway does (200, or 410
//! GoneException for gone ids), one standing in for a webhook receiver.
//! Subscriptions live in the emulator's Connections table (template.yaml).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{any, post};
use axum::Router;
use chrono::{Duration, Utc};
use finops_local::LocalStack;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use shared::channels::http::{
    verify_signature, Delivery, DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER,
};
use shared::channels::{
    BreakerConfig, BreakerState, FanOut, HttpChannelConfig, SlackChannel, WebSocketNotifier,
    WebhookChannel, MAX_MESSAGE_BYTES,
};
use shared::domain::{Connection, Role, Topic};
use shared::dynamo::DynamoConnections;
use shared::notify::{Event, Notifier};
use shared::store::{ConnectionStore, PageTokenCodec};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

/// A stand-in for API Gateway's `@connections` API.
#[derive(Default)]
struct Gateway {
    gone: BTreeSet<String>,
    /// Ids answering 500 this many more times before succeeding.
    flaky: Mutex<BTreeMap<String, usize>>,
    posts: Mutex<Vec<(String, Vec<u8>)>>,
    in_flight: AtomicUsize,
    peak: AtomicUsize,
}

async fn post_to_connection(
    State(gw): State<Arc<Gateway>>,
    Path(id): Path<String>,
    body: Bytes,
) -> impl IntoResponse {
    let now = gw.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    gw.peak.fetch_max(now, Ordering::SeqCst);
    // Long enough for concurrent calls to overlap.
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    gw.in_flight.fetch_sub(1, Ordering::SeqCst);
    gw.posts.lock().unwrap().push((id.clone(), body.to_vec()));
    let error = |status: StatusCode, kind: &str| {
        (
            status,
            [
                ("x-amzn-ErrorType", kind.to_string()),
                ("content-type", "application/json".to_string()),
            ],
            format!(r#"{{"message":"{kind}"}}"#),
        )
            .into_response()
    };
    if gw.gone.contains(&id) {
        return error(StatusCode::GONE, "GoneException");
    }
    if let Some(left) = gw.flaky.lock().unwrap().get_mut(&id) {
        if *left > 0 {
            *left -= 1;
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServerErrorException",
            );
        }
    }
    StatusCode::OK.into_response()
}

struct WsFixture {
    stack: LocalStack,
    store: Arc<DynamoConnections>,
    gateway: Arc<Gateway>,
    endpoint: String,
}

async fn ws_fixture(gone: &[&str]) -> WsFixture {
    let stack = LocalStack::isolated().await;
    let store = Arc::new(DynamoConnections::new(
        aws_sdk_dynamodb::Client::new(&stack.config),
        stack.table("ConnectionsTable"),
        PageTokenCodec::new(b"test"),
    ));
    let gateway = Arc::new(Gateway {
        gone: gone.iter().map(|s| s.to_string()).collect(),
        ..Gateway::default()
    });
    let endpoint = serve(
        Router::new()
            .route("/@connections/{id}", post(post_to_connection))
            .with_state(gateway.clone()),
    )
    .await;
    WsFixture {
        stack,
        store,
        gateway,
        endpoint,
    }
}

impl WsFixture {
    async fn connect(&self, id: &str, topics: &[Topic]) {
        let now = Utc::now();
        self.store
            .put(&Connection {
                connection_id: id.into(),
                user_id: "u".into(),
                roles: vec![Role::Viewer],
                connected_at: now,
                expires_at: now + Duration::hours(2),
            })
            .await
            .unwrap();
        if !topics.is_empty() {
            self.store.subscribe(id, topics, now).await.unwrap();
        }
    }

    fn notifier(&self, concurrency: usize) -> WebSocketNotifier {
        WebSocketNotifier::new(
            &self.stack.config,
            &self.endpoint,
            concurrency,
            3,
            self.store.clone(),
        )
    }

    fn posts_to(&self, id: &str) -> Vec<Vec<u8>> {
        self.gateway
            .posts
            .lock()
            .unwrap()
            .iter()
            .filter(|(to, _)| to == id)
            .map(|(_, b)| b.clone())
            .collect()
    }
}

fn alert(error: &str) -> Event {
    // Goes to `approvals` and `jobs`: two topics, so overlap is exercised.
    Event::OperatorAlert {
        stage: shared::domain::Stage::Collect,
        consecutive_failures: 3,
        error: error.into(),
    }
}

#[tokio::test]
async fn a_gone_connection_is_pruned_and_everyone_else_gets_the_event_once() {
    let f = ws_fixture(&["gone-1="]).await;
    f.connect("both-1=", &[Topic::Approvals, Topic::Jobs]).await;
    f.connect("gone-1=", &[Topic::Jobs, Topic::Resource("i-1".into())])
        .await;
    f.connect("appr-1=", &[Topic::Approvals]).await;
    f.connect("costs-1=", &[Topic::Costs]).await;
    let event = alert("throttled");

    let delivery = f.notifier(8).deliver(&event).await.unwrap();
    assert_eq!(delivery.recipients, 3);
    assert_eq!(delivery.delivered, 2);
    assert_eq!(delivery.gone, vec!["gone-1=".to_string()]);
    assert!(delivery.failed.is_empty());

    let expected = serde_json::to_vec(&event).unwrap();
    assert_eq!(
        f.posts_to("both-1="),
        vec![expected.clone()],
        "once, not twice"
    );
    assert_eq!(f.posts_to("appr-1="), vec![expected]);
    assert!(f.posts_to("costs-1=").is_empty());

    let now = Utc::now();
    assert!(f.store.get("gone-1=", now).await.unwrap().is_none());
    assert!(f.store.topics_of("gone-1=", now).await.unwrap().is_empty());
    assert!(f
        .store
        .subscribers(&Topic::Resource("i-1".into()), None, None, now)
        .await
        .unwrap()
        .items
        .is_empty());
    for id in ["both-1=", "appr-1=", "costs-1="] {
        assert!(f.store.get(id, now).await.unwrap().is_some(), "{id} kept");
    }

    // The next publish no longer tries the pruned connection.
    let before = f.posts_to("gone-1=").len();
    f.notifier(8).deliver(&event).await.unwrap();
    assert_eq!(f.posts_to("gone-1=").len(), before);
}

#[tokio::test]
async fn an_event_over_128_kb_is_refused_before_any_call() {
    let f = ws_fixture(&[]).await;
    f.connect("c-1=", &[Topic::Jobs]).await;
    let err = f
        .notifier(4)
        .deliver(&alert(&"x".repeat(MAX_MESSAGE_BYTES)))
        .await
        .unwrap_err();
    assert!(matches!(err, shared::Error::Validation(_)));
    assert!(err.to_string().contains("payload_too_large"), "{err}");
    assert!(f.gateway.posts.lock().unwrap().is_empty());
    // Just under the limit goes through.
    let overhead = serde_json::to_vec(&alert("")).unwrap().len();
    let fits = alert(&"x".repeat(MAX_MESSAGE_BYTES - overhead));
    assert_eq!(f.notifier(4).deliver(&fits).await.unwrap().delivered, 1);
}

#[tokio::test]
async fn concurrency_is_bounded_and_transient_failures_are_retried() {
    let f = ws_fixture(&[]).await;
    for i in 0..24 {
        f.connect(&format!("c-{i}="), &[Topic::Jobs]).await;
    }
    f.gateway.flaky.lock().unwrap().insert("c-0=".into(), 1);
    let notifier = f.notifier(4);
    let event = Event::JobFailed {
        job_id: "j".into(),
        error: "e".into(),
    };
    let delivery = notifier.deliver(&event).await.unwrap();
    assert_eq!(delivery.delivered, 24, "{delivery:?}");
    assert_eq!(f.gateway.peak.load(Ordering::SeqCst), 4);
    assert_eq!(f.posts_to("c-0=").len(), 2, "one 500, then the SDK's retry");

    // An id that keeps failing is counted, and the rest still get it.
    f.gateway.flaky.lock().unwrap().insert("c-1=".into(), 100);
    let delivery = notifier.deliver(&event).await.unwrap();
    assert_eq!(delivery.failed, vec!["c-1=".to_string()]);
    assert_eq!(delivery.delivered, 23);
    assert_eq!(notifier.stats().failed.load(Ordering::Relaxed), 1);
    // Failures other than 410 keep the connection.
    assert!(f.store.get("c-1=", Utc::now()).await.unwrap().is_some());
}

/// A webhook receiver whose answer the test sets.
#[derive(Default)]
struct Receiver {
    status: AtomicU16,
    calls: Mutex<Vec<(HeaderMap, Vec<u8>)>>,
}

async fn receive(State(r): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    r.calls.lock().unwrap().push((headers, body.to_vec()));
    StatusCode::from_u16(r.status.load(Ordering::SeqCst)).unwrap()
}

async fn receiver() -> (Arc<Receiver>, reqwest::Url) {
    let r = Arc::new(Receiver {
        status: AtomicU16::new(200),
        ..Receiver::default()
    });
    let base = serve(
        Router::new()
            .route("/hook", post(receive))
            .with_state(r.clone()),
    )
    .await;
    (r, format!("{base}/hook").parse().unwrap())
}

fn fast(failure_threshold: u32, cooldown_ms: u64) -> HttpChannelConfig {
    HttpChannelConfig {
        max_attempts: 2,
        base_backoff: std::time::Duration::from_millis(10),
        timeout: std::time::Duration::from_secs(2),
        breaker: BreakerConfig {
            failure_threshold,
            cooldown: std::time::Duration::from_millis(cooldown_ms),
        },
    }
}

const SECRET: &str = "a-shared-webhook-secret";

#[tokio::test]
async fn webhook_deliveries_carry_a_signature_the_receiver_verifies() {
    let (r, url) = receiver().await;
    let hook = WebhookChannel::new(url, SECRET, fast(3, 1000)).unwrap();
    let event = Event::JobCompleted {
        job_id: "job-1".into(),
        summary: serde_json::json!({"recommendations": 4}),
    };
    hook.publish(&event).await.unwrap();
    // Progress is for live screens only.
    hook.publish(&Event::JobProgress {
        job_id: "job-1".into(),
        stage: shared::domain::Stage::Collect,
        done: 1,
        total: 2,
        percent: 50.0,
    })
    .await
    .unwrap();

    let calls = r.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 1);
    let (headers, body) = &calls[0];
    assert_eq!(body, &serde_json::to_vec(&event).unwrap());
    assert_eq!(headers["x-finops-event"], "job.completed");
    let ts = headers[TIMESTAMP_HEADER].to_str().unwrap();
    let sig = headers[SIGNATURE_HEADER].to_str().unwrap();
    let delivery = headers[DELIVERY_HEADER].to_str().unwrap();
    let kind = headers[EVENT_HEADER].to_str().unwrap();
    // As any receiver would, with nothing but hmac and the shared secret:
    // the delivery id and event type are signed with the body, so neither
    // can be swapped to replay a body as another delivery or event.
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{ts}.{delivery}.{kind}.").as_bytes());
    mac.update(body);
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(sig, format!("sha256={expected}"));
    let now = Utc::now().timestamp();
    let received = Delivery {
        timestamp: ts,
        delivery,
        event_type: kind,
        signature: sig,
        body,
    };
    assert!(verify_signature(SECRET.as_bytes(), &received, now, 300));
    assert!(!verify_signature(b"another-secret", &received, now, 300));
    for altered in [
        Delivery {
            body: b"{}",
            ..received
        },
        Delivery {
            delivery: "another-delivery",
            ..received
        },
        Delivery {
            event_type: "job.failed",
            ..received
        },
    ] {
        assert!(!verify_signature(SECRET.as_bytes(), &altered, now, 300));
    }
}

#[tokio::test]
async fn a_redirect_is_a_failed_delivery_and_is_not_followed() {
    let target = Arc::new(Receiver {
        status: AtomicU16::new(200),
        ..Receiver::default()
    });
    // This one takes any method: a followed 302 turns the POST into a GET.
    let target_any = serve(
        Router::new()
            .route("/hook", any(receive))
            .with_state(target.clone()),
    )
    .await;
    let location = format!("{target_any}/hook");
    let redirector = serve(Router::new().route(
        "/hook",
        any(move || {
            let location = location.clone();
            async move { (StatusCode::FOUND, [("location", location)]) }
        }),
    ))
    .await;
    let url: reqwest::Url = format!("{redirector}/hook").parse().unwrap();
    let event = alert("x");
    let hook = WebhookChannel::new(url.clone(), SECRET, fast(5, 1000)).unwrap();
    assert!(hook.publish(&event).await.is_err());
    let slack = SlackChannel::new(url, fast(5, 1000)).unwrap();
    assert!(slack.publish(&event).await.is_err());
    assert!(target.calls.lock().unwrap().is_empty());
}

#[tokio::test]
async fn slack_text_from_events_cannot_mention_or_link() {
    let (r, url) = receiver().await;
    let slack = SlackChannel::new(url, fast(5, 1000)).unwrap();
    slack
        .publish(&alert("<!channel> & <https://evil.example|click>"))
        .await
        .unwrap();
    let calls = r.calls.lock().unwrap();
    let body: serde_json::Value = serde_json::from_slice(&calls[0].1).unwrap();
    let text = body["text"].as_str().unwrap();
    assert!(
        text.contains("&lt;!channel&gt; &amp; &lt;https://evil.example|click&gt;"),
        "{text}"
    );
    assert!(!text.contains('<') && !text.contains('>'), "{text}");
}

#[tokio::test]
async fn a_failing_webhook_trips_the_breaker_and_recovers_through_half_open() {
    let (r, url) = receiver().await;
    r.status.store(503, Ordering::SeqCst);
    let hook = WebhookChannel::new(url, SECRET, fast(3, 400)).unwrap();
    let calls = || r.calls.lock().unwrap().len();
    let event = Event::JobFailed {
        job_id: "j".into(),
        error: "boom".into(),
    };

    // Two attempts (retry with backoff), both failing.
    assert!(hook.publish(&event).await.is_err());
    assert_eq!(calls(), 2);
    // The third failed call opens the breaker; the retry is not made.
    assert!(hook.publish(&event).await.is_err());
    assert_eq!(calls(), 3);
    assert!(matches!(
        hook.breaker_state(),
        Some(BreakerState::Open { .. })
    ));
    // During the cooldown nothing is called at all.
    for _ in 0..5 {
        let err = hook.publish(&event).await.unwrap_err();
        assert!(err.to_string().contains("circuit open"), "{err}");
    }
    assert_eq!(calls(), 3);
    // A fan-out swallows the channel's failure: publishers never fail on it.
    let fan = FanOut::new(vec![("webhook", Box::new(hook) as Box<dyn Notifier>)]);
    fan.publish(&event).await.unwrap();
    assert_eq!(calls(), 3);

    // After the cooldown one trial is let through; it fails and re-opens.
    tokio::time::sleep(std::time::Duration::from_millis(450)).await;
    fan.publish(&event).await.unwrap();
    assert_eq!(calls(), 4, "exactly one trial call");
    fan.publish(&event).await.unwrap();
    assert_eq!(calls(), 4);

    // The endpoint recovers: the next trial closes the breaker.
    r.status.store(200, Ordering::SeqCst);
    tokio::time::sleep(std::time::Duration::from_millis(450)).await;
    fan.publish(&event).await.unwrap();
    fan.publish(&event).await.unwrap();
    assert_eq!(calls(), 6, "closed again: every event is sent");
}

#[tokio::test]
async fn slack_gets_a_text_message_and_4xx_is_not_retried() {
    let (r, url) = receiver().await;
    let slack = SlackChannel::new(url, fast(5, 1000)).unwrap();
    slack
        .publish(&Event::JobFailed {
            job_id: "job-9".into(),
            error: "collect failed".into(),
        })
        .await
        .unwrap();
    {
        let calls = r.calls.lock().unwrap();
        let body: serde_json::Value = serde_json::from_slice(&calls[0].1).unwrap();
        let text = body["text"].as_str().unwrap();
        assert!(
            text.contains("job-9") && text.contains("collect failed"),
            "{text}"
        );
        assert_eq!(body.as_object().unwrap().len(), 1);
    }
    r.status.store(404, Ordering::SeqCst);
    assert!(slack.publish(&alert("x")).await.is_err());
    assert_eq!(r.calls.lock().unwrap().len(), 2, "a 404 is final");
    assert_eq!(slack.stats().failed.load(Ordering::Relaxed), 1);
}
