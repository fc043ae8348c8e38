//! The local WebSocket gateway with small handlers of the contract's shape:
//! the events it produces, route selection, route responses, the
//! `@connections` API through the real SDK, the limits, and `$disconnect`
//! for every way a connection ends. Real clients over loopback.

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use aws_lambda_events::encodings::Body;
use finops_local::gateway::{Gateway, GatewayConfig, GatewayHandle, MAX_FRAME_BYTES};
use futures::{SinkExt, StreamExt};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;
type Events = mpsc::UnboundedReceiver<ApiGatewayWebsocketProxyRequest>;

const WAIT: Duration = Duration::from_secs(10);

fn reply(status: i64, body: Option<&str>) -> ApiGatewayProxyResponse {
    let mut r = ApiGatewayProxyResponse::default();
    r.status_code = status;
    r.body = body.map(|b| Body::Text(b.to_string()));
    r
}

/// Every event each route received, in order.
struct Seen {
    connects: Events,
    messages: Events,
    disconnects: Events,
}

/// A gateway whose `$connect` accepts `?token=good` (401 without a token,
/// 403 otherwise) and echoes the requested subprotocol, whose `$default`
/// echoes `{"route":..,"body":..}`, and whose `echo` route answers its body;
/// `{"action":"quiet"}` gets no route response.
async fn start(config: GatewayConfig) -> (GatewayHandle, Seen) {
    let (ctx, connects) = mpsc::unbounded_channel();
    let (mtx, messages) = mpsc::unbounded_channel();
    let (dtx, disconnects) = mpsc::unbounded_channel();
    let mtx2 = mtx.clone();
    let gateway = Gateway::new(config)
        .route("$connect", move |e: ApiGatewayWebsocketProxyRequest| {
            let ctx = ctx.clone();
            async move {
                let token = e.query_string_parameters.first("token").map(str::to_string);
                let protocol = e
                    .headers
                    .get("sec-websocket-protocol")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                let _ = ctx.send(e);
                match token.as_deref() {
                    None => reply(401, Some("Unauthorized")),
                    Some("good") => {
                        let mut r = reply(200, None);
                        if let Some(p) = protocol {
                            r.headers
                                .insert("sec-websocket-protocol", p.parse().unwrap());
                        }
                        r
                    }
                    Some(_) => reply(403, Some("Forbidden")),
                }
            }
        })
        .route("$default", move |e: ApiGatewayWebsocketProxyRequest| {
            let mtx = mtx.clone();
            async move {
                let route = e.request_context.route_key.clone();
                let body = e.body.clone();
                let quiet = body.as_deref() == Some(r#"{"action":"quiet"}"#);
                let _ = mtx.send(e);
                if quiet {
                    return reply(200, None);
                }
                let frame = serde_json::json!({ "route": route, "body": body });
                reply(200, Some(&frame.to_string()))
            }
        })
        .route("echo", move |e: ApiGatewayWebsocketProxyRequest| {
            let mtx = mtx2.clone();
            async move {
                let body = e.body.clone().unwrap_or_default();
                let _ = mtx.send(e);
                reply(200, Some(&body))
            }
        })
        .route("$disconnect", move |e: ApiGatewayWebsocketProxyRequest| {
            let dtx = dtx.clone();
            async move {
                let _ = dtx.send(e);
                reply(200, None)
            }
        });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let handle = gateway.spawn(listener).unwrap();
    (
        handle,
        Seen {
            connects,
            messages,
            disconnects,
        },
    )
}

async fn connect(
    gw: &GatewayHandle,
    query: &str,
) -> Result<Client, tokio_tungstenite::tungstenite::Error> {
    let url = format!("{}/?{query}", gw.ws_url());
    tokio_tungstenite::connect_async(url).await.map(|(c, _)| c)
}

async fn next_text(client: &mut Client) -> String {
    loop {
        match tokio::time::timeout(WAIT, client.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return t.to_string(),
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
}

/// The close frame's code the client receives, or None if the socket just ended.
async fn close_code(client: &mut Client) -> Option<u16> {
    loop {
        match tokio::time::timeout(WAIT, client.next()).await {
            Ok(Some(Ok(Message::Close(f)))) => return f.map(|f| u16::from(f.code)),
            Ok(Some(Ok(_))) => continue,
            Ok(Some(Err(_)) | None) => return None,
            Err(_) => panic!("the connection was not closed"),
        }
    }
}

async fn recv(events: &mut Events) -> ApiGatewayWebsocketProxyRequest {
    tokio::time::timeout(WAIT, events.recv())
        .await
        .expect("an event within 10 s")
        .expect("the gateway is running")
}

async fn management(gw: &GatewayHandle) -> aws_sdk_apigatewaymanagement::Client {
    let config = finops_local::sdk_config(&gw.management_url()).await;
    aws_sdk_apigatewaymanagement::Client::new(&config)
}

fn connection_id(e: &ApiGatewayWebsocketProxyRequest) -> String {
    e.request_context.connection_id.clone().unwrap()
}

#[tokio::test]
async fn connect_is_the_event_api_gateway_sends_and_the_protocol_is_echoed() {
    let (gw, mut seen) = start(GatewayConfig::default()).await;
    let mut request = format!("{}/?token=good&x=1&x=2", gw.ws_url())
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "good".parse().unwrap());
    let (_client, response) = tokio_tungstenite::connect_async(request).await.unwrap();
    assert_eq!(
        response.headers().get("sec-websocket-protocol").unwrap(),
        "good"
    );
    let e = recv(&mut seen.connects).await;
    let ctx = &e.request_context;
    assert_eq!(ctx.route_key.as_deref(), Some("$connect"));
    assert_eq!(ctx.event_type.as_deref(), Some("CONNECT"));
    assert_eq!(ctx.message_direction.as_deref(), Some("IN"));
    assert_eq!(ctx.stage.as_deref(), Some("local"));
    assert_eq!(ctx.apiid.as_deref(), Some("local"));
    assert_eq!(
        ctx.domain_name.as_deref(),
        Some(gw.addr().to_string().as_str())
    );
    assert_eq!(ctx.identity.source_ip.as_deref(), Some("127.0.0.1"));
    assert!(ctx.request_id.as_deref().is_some_and(|r| !r.is_empty()));
    assert!(ctx.request_time.is_some());
    let id = connection_id(&e);
    assert_eq!(id.len(), 16, "API Gateway's id shape: {id}");
    let now = chrono::Utc::now().timestamp_millis();
    assert!((now - ctx.connected_at).abs() < 10_000);
    assert!(ctx.request_time_epoch >= ctx.connected_at);
    assert_eq!(e.query_string_parameters.first("token"), Some("good"));
    assert_eq!(
        e.multi_value_query_string_parameters.all("x"),
        Some(vec!["1", "2"])
    );
    assert_eq!(e.headers.get("sec-websocket-protocol").unwrap(), "good");
    assert_eq!(e.headers.get("x-forwarded-for").unwrap(), "127.0.0.1");
    assert!(e.headers.get("sec-websocket-key").is_some());
    assert!(e.headers.get("host").is_some());
    // The names on the wire are API Gateway's.
    let json = serde_json::to_value(&e).unwrap();
    for key in [
        "routeKey",
        "eventType",
        "connectionId",
        "connectedAt",
        "requestId",
        "domainName",
        "stage",
        "apiId",
        "requestTimeEpoch",
        "identity",
    ] {
        assert!(
            json["requestContext"].get(key).is_some(),
            "requestContext.{key}"
        );
    }
}

#[tokio::test]
async fn a_refused_connect_is_refused_with_the_handlers_status_and_never_disconnects() {
    let (gw, mut seen) = start(GatewayConfig::default()).await;
    for (query, status) in [("", 401), ("token=bad", 403)] {
        match connect(&gw, query).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(r)) => {
                assert_eq!(r.status().as_u16(), status, "query '{query}'")
            }
            other => panic!("expected HTTP {status}, got {other:?}"),
        }
        recv(&mut seen.connects).await;
    }
    assert_eq!(gw.open_connections(), 0);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        seen.disconnects.try_recv().is_err(),
        "no $disconnect for a refused $connect"
    );
}

#[tokio::test]
async fn frames_route_by_action_and_non_empty_bodies_come_back() {
    let (gw, mut seen) = start(GatewayConfig::default()).await;
    let mut client = connect(&gw, "token=good").await.unwrap();
    let id = connection_id(&recv(&mut seen.connects).await);

    client
        .send(Message::text(r#"{"action":"echo","n":1}"#))
        .await
        .unwrap();
    assert_eq!(next_text(&mut client).await, r#"{"action":"echo","n":1}"#);
    let e = recv(&mut seen.messages).await;
    assert_eq!(e.request_context.route_key.as_deref(), Some("echo"));
    assert_eq!(e.request_context.event_type.as_deref(), Some("MESSAGE"));
    assert_eq!(
        e.request_context.connection_id.as_deref(),
        Some(id.as_str())
    );
    assert!(e.request_context.message_id.is_some());
    assert!(!e.is_base64_encoded);

    // Unknown actions, reserved keys and non-JSON go to $default.
    for body in [
        r#"{"action":"nope"}"#,
        r#"{"action":"$connect"}"#,
        "not json",
        r#"{"action":7}"#,
    ] {
        client.send(Message::text(body)).await.unwrap();
        let frame: serde_json::Value = serde_json::from_str(&next_text(&mut client).await).unwrap();
        assert_eq!(frame["route"], "$default", "{body}");
        assert_eq!(frame["body"], body);
    }
    // An empty body is no route response: the next frame answers the next message.
    client
        .send(Message::text(r#"{"action":"quiet"}"#))
        .await
        .unwrap();
    client
        .send(Message::text(r#"{"action":"echo","n":2}"#))
        .await
        .unwrap();
    assert_eq!(next_text(&mut client).await, r#"{"action":"echo","n":2}"#);

    // Binary frames arrive base64-encoded at $default.
    client
        .send(Message::binary(vec![0u8, 159, 146, 150]))
        .await
        .unwrap();
    let frame: serde_json::Value = serde_json::from_str(&next_text(&mut client).await).unwrap();
    assert_eq!(frame["body"], "AJ+Slg==");
}

#[tokio::test]
async fn without_a_default_route_unmatched_frames_get_forbidden() {
    let (dtx, mut disconnects) = mpsc::unbounded_channel();
    let gateway = Gateway::new(GatewayConfig::default()).route("$disconnect", move |e| {
        let dtx = dtx.clone();
        async move {
            let _ = dtx.send(e);
            reply(200, None)
        }
    });
    let gw = gateway
        .spawn(TcpListener::bind("127.0.0.1:0").await.unwrap())
        .unwrap();
    // No $connect route: every connection is accepted.
    let mut client = connect(&gw, "").await.unwrap();
    client
        .send(Message::text(r#"{"action":"x"}"#))
        .await
        .unwrap();
    let frame: serde_json::Value = serde_json::from_str(&next_text(&mut client).await).unwrap();
    assert_eq!(frame["message"], "Forbidden");
    assert!(frame["connectionId"]
        .as_str()
        .is_some_and(|c| !c.is_empty()));
    client.close(None).await.unwrap();
    let e = recv(&mut disconnects).await;
    assert_eq!(e.request_context.disconnect_status_code, Some(1005));
}

#[tokio::test]
async fn connections_api_posts_gets_and_deletes_with_aws_semantics() {
    let (gw, mut seen) = start(GatewayConfig::default()).await;
    let api = management(&gw).await;
    let mut client = connect(&gw, "token=good").await.unwrap();
    let id = connection_id(&recv(&mut seen.connects).await);

    api.post_to_connection()
        .connection_id(&id)
        .data(aws_smithy_types::Blob::new(r#"{"type":"hello"}"#))
        .send()
        .await
        .unwrap();
    assert_eq!(next_text(&mut client).await, r#"{"type":"hello"}"#);

    // 128 KB exactly is allowed and arrives whole (sent as 32 KB frames).
    let big = "x".repeat(128 * 1024);
    api.post_to_connection()
        .connection_id(&id)
        .data(aws_smithy_types::Blob::new(big.clone()))
        .send()
        .await
        .unwrap();
    assert_eq!(next_text(&mut client).await.len(), big.len());
    let too_big = api
        .post_to_connection()
        .connection_id(&id)
        .data(aws_smithy_types::Blob::new("x".repeat(128 * 1024 + 1)))
        .send()
        .await
        .unwrap_err();
    assert!(
        too_big
            .as_service_error()
            .is_some_and(|e| e.is_payload_too_large_exception()),
        "{too_big:?}"
    );

    let info = api
        .get_connection()
        .connection_id(&id)
        .send()
        .await
        .unwrap();
    assert_eq!(
        info.identity().and_then(|i| i.source_ip()),
        Some("127.0.0.1")
    );
    let connected = info.connected_at().unwrap().secs();
    assert!((chrono::Utc::now().timestamp() - connected).abs() < 10);
    assert!(info.last_active_at().unwrap().secs() >= connected);

    let unknown = api
        .post_to_connection()
        .connection_id("AAAAAAAAAAAAAAA=")
        .data(aws_smithy_types::Blob::new("x"))
        .send()
        .await
        .unwrap_err();
    assert!(unknown
        .as_service_error()
        .is_some_and(|e| e.is_gone_exception()));

    api.delete_connection()
        .connection_id(&id)
        .send()
        .await
        .unwrap();
    assert_eq!(close_code(&mut client).await, Some(1000));
    let e = recv(&mut seen.disconnects).await;
    assert_eq!(connection_id(&e), id);
    assert_eq!(e.request_context.event_type.as_deref(), Some("DISCONNECT"));
    assert_eq!(e.request_context.route_key.as_deref(), Some("$disconnect"));
    let gone = api
        .get_connection()
        .connection_id(&id)
        .send()
        .await
        .unwrap_err();
    assert!(gone
        .as_service_error()
        .is_some_and(|e| e.is_gone_exception()));
    let gone = api
        .delete_connection()
        .connection_id(&id)
        .send()
        .await
        .unwrap_err();
    assert!(gone
        .as_service_error()
        .is_some_and(|e| e.is_gone_exception()));
}

#[tokio::test]
async fn a_client_that_closes_or_vanishes_gets_its_disconnect_and_then_410() {
    let (gw, mut seen) = start(GatewayConfig::default()).await;
    let api = management(&gw).await;

    let mut polite = connect(&gw, "token=good").await.unwrap();
    let polite_id = connection_id(&recv(&mut seen.connects).await);
    polite
        .close(Some(tokio_tungstenite::tungstenite::protocol::CloseFrame {
            code: 4000.into(),
            reason: "bye".into(),
        }))
        .await
        .unwrap();
    let e = recv(&mut seen.disconnects).await;
    assert_eq!(connection_id(&e), polite_id);
    assert_eq!(e.request_context.disconnect_status_code, Some(4000));
    assert_eq!(e.request_context.disconnect_reason.as_deref(), Some("bye"));

    // Dropping the socket sends no close frame: the client just vanishes.
    let vanishing = connect(&gw, "token=good").await.unwrap();
    let vanished_id = connection_id(&recv(&mut seen.connects).await);
    drop(vanishing);
    let e = recv(&mut seen.disconnects).await;
    assert_eq!(connection_id(&e), vanished_id);
    assert_eq!(e.request_context.disconnect_status_code, Some(1006));

    for id in [polite_id, vanished_id] {
        let err = api
            .post_to_connection()
            .connection_id(&id)
            .data(aws_smithy_types::Blob::new("late"))
            .send()
            .await
            .unwrap_err();
        assert!(err
            .as_service_error()
            .is_some_and(|e| e.is_gone_exception()));
    }
    assert_eq!(gw.open_connections(), 0);
}

#[tokio::test]
async fn frames_over_32_kb_and_messages_over_128_kb_close_with_1009() {
    let (gw, mut seen) = start(GatewayConfig::default()).await;

    // A 100 KB message in 32 KB frames is fine.
    let mut client = connect(&gw, "token=good").await.unwrap();
    recv(&mut seen.connects).await;
    let body = format!(r#"{{"action":"echo","pad":"{}"}}"#, "y".repeat(100 * 1024));
    let bytes = body.as_bytes();
    let chunks: Vec<&[u8]> = bytes.chunks(MAX_FRAME_BYTES).collect();
    for (i, chunk) in chunks.iter().enumerate() {
        let opcode = if i == 0 { Data::Text } else { Data::Continue };
        client
            .feed(Message::Frame(Frame::message(
                chunk.to_vec(),
                OpCode::Data(opcode),
                i + 1 == chunks.len(),
            )))
            .await
            .unwrap();
    }
    client.flush().await.unwrap();
    assert_eq!(next_text(&mut client).await.len(), body.len());

    // One frame over 32 KB.
    client
        .send(Message::text("z".repeat(MAX_FRAME_BYTES + 1)))
        .await
        .unwrap();
    assert_eq!(close_code(&mut client).await, Some(1009));
    let e = recv(&mut seen.disconnects).await;
    assert_eq!(e.request_context.disconnect_status_code, Some(1009));

    // 160 KB in frames of 32 KB.
    let mut client = connect(&gw, "token=good").await.unwrap();
    recv(&mut seen.connects).await;
    let big = vec![b'w'; 160 * 1024];
    let chunks: Vec<&[u8]> = big.chunks(MAX_FRAME_BYTES).collect();
    for (i, chunk) in chunks.iter().enumerate() {
        let opcode = if i == 0 { Data::Text } else { Data::Continue };
        let _ = client
            .feed(Message::Frame(Frame::message(
                chunk.to_vec(),
                OpCode::Data(opcode),
                i + 1 == chunks.len(),
            )))
            .await;
    }
    let _ = client.flush().await;
    assert_eq!(close_code(&mut client).await, Some(1009));
    let e = recv(&mut seen.disconnects).await;
    assert_eq!(e.request_context.disconnect_status_code, Some(1009));
    // Nothing of either oversize message reached a handler.
    assert_eq!(
        recv(&mut seen.messages).await.body.unwrap().len(),
        body.len()
    );
    assert!(seen.messages.try_recv().is_err());
}

#[tokio::test]
async fn idle_and_too_old_connections_are_closed_with_1001_and_disconnected() {
    let config = GatewayConfig {
        idle_timeout: Duration::from_millis(400),
        max_duration: Duration::from_millis(1500),
        ..GatewayConfig::default()
    };
    let (gw, mut seen) = start(config).await;

    let mut idle = connect(&gw, "token=good").await.unwrap();
    let idle_id = connection_id(&recv(&mut seen.connects).await);
    assert_eq!(close_code(&mut idle).await, Some(1001));
    let e = recv(&mut seen.disconnects).await;
    assert_eq!(connection_id(&e), idle_id);
    assert_eq!(e.request_context.disconnect_status_code, Some(1001));

    // Busy, but past the maximum duration.
    let mut busy = connect(&gw, "token=good").await.unwrap();
    let busy_id = connection_id(&recv(&mut seen.connects).await);
    let started = std::time::Instant::now();
    let code = loop {
        if busy
            .send(Message::text(r#"{"action":"quiet"}"#))
            .await
            .is_err()
        {
            break close_code(&mut busy).await;
        }
        match tokio::time::timeout(Duration::from_millis(150), busy.next()).await {
            Ok(Some(Ok(Message::Close(f)))) => break f.map(|f| u16::from(f.code)),
            Ok(None | Some(Err(_))) => break None,
            _ => {}
        }
        assert!(started.elapsed() < WAIT, "never closed");
    };
    assert_eq!(code, Some(1001));
    assert!(started.elapsed() >= Duration::from_millis(1000));
    let e = recv(&mut seen.disconnects).await;
    assert_eq!(connection_id(&e), busy_id);
}

#[tokio::test]
async fn shutdown_disconnects_every_open_connection() {
    let (gw, mut seen) = start(GatewayConfig::default()).await;
    let mut clients = Vec::new();
    for _ in 0..3 {
        clients.push(connect(&gw, "token=good").await.unwrap());
        recv(&mut seen.connects).await;
    }
    gw.shutdown().await;
    let mut codes = Vec::new();
    for _ in 0..3 {
        codes.push(
            recv(&mut seen.disconnects)
                .await
                .request_context
                .disconnect_status_code,
        );
    }
    assert_eq!(codes, vec![Some(1001); 3]);
    for c in &mut clients {
        assert_eq!(close_code(c).await, Some(1001));
    }
}

/// Keys of a JSON object whose values are not null.
fn keys(v: &serde_json::Value) -> std::collections::BTreeSet<String> {
    v.as_object()
        .map(|o| {
            o.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, _)| k.clone())
                .collect()
        })
        .unwrap_or_default()
}

fn fixture(path: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(finops_local::repo_root().join("events").join(path))
        .expect("the sample event exists");
    serde_json::from_str(&text).expect("the sample event is JSON")
}

/// Every field the API Gateway sample events carry, ours carry too.
fn assert_covers(ours: &ApiGatewayWebsocketProxyRequest, sample: &serde_json::Value) {
    let ours = serde_json::to_value(ours).unwrap();
    let missing: Vec<_> = keys(sample).difference(&keys(&ours)).cloned().collect();
    assert!(missing.is_empty(), "top-level fields missing: {missing:?}");
    let missing: Vec<_> = keys(&sample["requestContext"])
        .difference(&keys(&ours["requestContext"]))
        .cloned()
        .collect();
    assert!(
        missing.is_empty(),
        "requestContext fields missing: {missing:?}"
    );
}

#[tokio::test]
async fn events_carry_every_field_of_the_api_gateway_samples() {
    let (gw, mut seen) = start(GatewayConfig::default()).await;
    let mut client = connect(&gw, "token=good").await.unwrap();
    assert_covers(
        &recv(&mut seen.connects).await,
        &fixture("ws-connect/valid-token.json"),
    );
    client
        .send(Message::text(r#"{"action":"ping"}"#))
        .await
        .unwrap();
    next_text(&mut client).await;
    assert_covers(
        &recv(&mut seen.messages).await,
        &fixture("ws-message/ping.json"),
    );
    client.close(None).await.unwrap();
    assert_covers(
        &recv(&mut seen.disconnects).await,
        &fixture("ws-disconnect/disconnect.json"),
    );
}

/// A client that breaks the protocol (a reserved bit set without an
/// extension) is answered with a close frame, 1002, before the TCP
/// connection goes (RFC 6455 7.1.7), and `$disconnect` still runs.
#[tokio::test]
async fn a_protocol_error_gets_a_close_frame_not_a_dropped_socket() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (gw, mut seen) = start(GatewayConfig::default()).await;
    let mut tcp = TcpStream::connect(gw.addr()).await.unwrap();
    let request = format!(
        "GET /?token=good HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        gw.addr()
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        tcp.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    assert!(
        String::from_utf8_lossy(&head).starts_with("HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    // FIN + RSV1 + text, masked, empty payload.
    tcp.write_all(&[0xC1, 0x80, 1, 2, 3, 4]).await.unwrap();
    let mut frame = [0u8; 4];
    tokio::time::timeout(WAIT, tcp.read_exact(&mut frame))
        .await
        .expect("a close frame arrives")
        .expect("the socket is readable");
    assert_eq!(frame[0], 0x88, "a final close frame: {frame:?}");
    assert_eq!(u16::from_be_bytes([frame[2], frame[3]]), 1002, "{frame:?}");
    let gone = tokio::time::timeout(WAIT, seen.disconnects.recv())
        .await
        .expect("$disconnect runs");
    assert!(gone.is_some());
}

/// `@connections` refuses a caller that does not sign its request, as API
/// Gateway does; the SDK's signed calls go through (the test above).
#[tokio::test]
async fn an_unsigned_connections_call_is_forbidden_and_delivers_nothing() {
    let (gw, _seen) = start(GatewayConfig::default()).await;
    let mut client = connect(&gw, "token=good").await.unwrap();
    let http = shared::tls::http_client().build().unwrap();
    let url = format!("http://{}/@connections/anything", gw.addr());
    for method in [
        reqwest::Method::POST,
        reqwest::Method::GET,
        reqwest::Method::DELETE,
    ] {
        let r = http
            .request(method.clone(), &url)
            .body("{\"type\":\"spoof\"}")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 403, "{method}");
    }
    let forged = http
        .post(&url)
        .header("authorization", "Bearer whatever")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status().as_u16(), 403);
    // Nothing reached the connected client.
    let nothing = tokio::time::timeout(Duration::from_millis(300), client.next()).await;
    assert!(nothing.is_err(), "{nothing:?}");
}
