//! The local API Gateway for WebSocket APIs: what `sam local` cannot do.
//!
//! A WebSocket server that turns every connect, frame and disconnect into the
//! exact `ApiGatewayWebsocketProxyRequest` AWS hands a Lambda function, calls
//! the function handlers in-process, and serves the `@connections`
//! management API on the same port, so the unchanged notifier (an
//! `aws_sdk_apigatewaymanagement::Client` pointed at this port) delivers
//! through it.
//!
//! What it enforces, as API Gateway does (AWS quotas page for WebSocket APIs):
//! - an incoming frame over 32 KB or message over 128 KB closes the
//!   connection with 1009;
//! - `POST @connections` with more than 128 KB answers 413
//!   `PayloadTooLargeException`; what it accepts goes out in frames of at
//!   most 32 KB (a fragmented message above that);
//! - a connection with no message from its client for the idle timeout
//!   (10 min), or open for the maximum duration (2 h), is closed with 1001;
//! - an unknown or ended connection id answers 410 `GoneException`;
//! - `$disconnect` is invoked once for every connection that was accepted,
//!   whatever ended it (client close, network error, a client that vanished,
//!   a limit, `DELETE @connections`, the gateway shutting down).

use aws_lambda_events::apigw::{
    ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest,
    ApiGatewayWebsocketProxyRequestContext,
};
use aws_lambda_events::encodings::Body as LambdaBody;
use aws_lambda_events::http::{HeaderMap, HeaderName, HeaderValue};
use aws_lambda_events::query_map::QueryMap;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, Request, Response, StatusCode};
use axum::routing::{any, get};
use axum::Router;
use base64::Engine;
use chrono::{DateTime, Utc};
use futures::{SinkExt, StreamExt};
use rand::RngCore;
use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::error::{CapacityError, Error as WsError, ProtocolError};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

mod http;
mod management;
use http::*;
use management::*;

/// API Gateway's WebSocket frame size quota.
pub const MAX_FRAME_BYTES: usize = 32 * 1024;
/// API Gateway's WebSocket message payload quota (inbound and `@connections`).
pub const MAX_MESSAGE_BYTES: usize = 128 * 1024;

/// A function behind a route: the Lambda handler, called in-process.
///
/// Any `Fn(ApiGatewayWebsocketProxyRequest) -> impl Future<Output =
/// ApiGatewayProxyResponse>` is one, so the real handlers plug in as
/// `move |event| async move { ws_connect::handle(&deps, event, Utc::now()).await }`.
pub trait WsHandler: Send + Sync + 'static {
    fn call(
        &self,
        event: ApiGatewayWebsocketProxyRequest,
    ) -> futures::future::BoxFuture<'static, ApiGatewayProxyResponse>;
}

impl<F, Fut> WsHandler for F
where
    F: Fn(ApiGatewayWebsocketProxyRequest) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ApiGatewayProxyResponse> + Send + 'static,
{
    fn call(
        &self,
        event: ApiGatewayWebsocketProxyRequest,
    ) -> futures::future::BoxFuture<'static, ApiGatewayProxyResponse> {
        Box::pin(self(event))
    }
}

/// Limits and names of the emulated API; defaults are AWS's.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// `requestContext.stage`.
    pub stage: String,
    /// `requestContext.apiId`.
    pub api_id: String,
    /// Closed after this long without a message from the client (AWS: 10 min).
    pub idle_timeout: Duration,
    /// Closed after this long whatever happens (AWS: 2 h).
    pub max_duration: Duration,
    /// How long a `POST @connections` may wait for a client that does not
    /// read; past it the connection is closed and the POST answers 410.
    pub send_timeout: Duration,
    /// How long a handler may run (AWS: the 29 s integration timeout).
    pub integration_timeout: Duration,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            stage: "local".into(),
            api_id: "local".into(),
            idle_timeout: Duration::from_secs(600),
            max_duration: Duration::from_secs(7200),
            send_timeout: Duration::from_secs(10),
            integration_timeout: Duration::from_secs(29),
        }
    }
}

/// A WebSocket API: its routes (`$connect`, `$disconnect`, `$default`, and
/// custom route keys matched against `$request.body.action`) and limits.
#[derive(Clone, Default)]
pub struct Gateway {
    config: GatewayConfig,
    routes: HashMap<String, Arc<dyn WsHandler>>,
}

impl Gateway {
    pub fn new(config: GatewayConfig) -> Gateway {
        Gateway {
            config,
            routes: HashMap::new(),
        }
    }

    /// Sends the frames whose route key is `key` to `handler`.
    pub fn route(mut self, key: impl Into<String>, handler: impl WsHandler) -> Gateway {
        self.routes.insert(key.into(), Arc::new(handler));
        self
    }

    /// Serves on `listener` until the handle is shut down or dropped.
    pub fn spawn(self, listener: TcpListener) -> std::io::Result<GatewayHandle> {
        let addr = listener.local_addr()?;
        let (stop_tx, stop_rx) = watch::channel(false);
        let shared = Arc::new(Shared {
            config: self.config,
            routes: self.routes,
            domain_name: addr.to_string(),
            connections: Mutex::new(HashMap::new()),
            stop: stop_rx.clone(),
            tasks: Mutex::new(Vec::new()),
        });
        let management = Router::new()
            .route(
                "/@connections/{id}",
                get(get_connection).post(post_to).delete(delete_connection),
            )
            .route(
                "/{stage}/@connections/{id}",
                get(get_connection_staged)
                    .post(post_to_staged)
                    .delete(delete_connection_staged),
            )
            .route_layer(axum::middleware::from_fn(require_signature));
        let app = Router::new()
            .route("/", any(upgrade))
            .merge(management)
            .with_state(shared.clone());
        let mut stop = stop_rx;
        let server = tokio::spawn(async move {
            let _ = axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(async move {
                stopped(&mut stop).await;
            })
            .await;
        });
        Ok(GatewayHandle {
            addr,
            stop: stop_tx,
            server: Some(server),
            shared,
        })
    }
}

/// A running gateway. Dropping it stops it; [`GatewayHandle::shutdown`]
/// also waits until every connection had its `$disconnect`.
pub struct GatewayHandle {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    server: Option<JoinHandle<()>>,
    shared: Arc<Shared>,
}

impl GatewayHandle {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `ws://host:port`, what clients connect to.
    pub fn ws_url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    /// `http://host:port`, the `@connections` endpoint (`WEBSOCKET_ENDPOINT`).
    pub fn management_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Connections open right now.
    pub fn open_connections(&self) -> usize {
        self.shared.lock_connections().len()
    }

    /// Closes every connection (1001, as a deployment would), runs their
    /// `$disconnect`, and stops listening.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        let tasks: Vec<JoinHandle<()>> =
            std::mem::take(&mut *self.shared.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        for t in tasks {
            let _ = t.await;
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }
}

impl Drop for GatewayHandle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

struct Shared {
    config: GatewayConfig,
    routes: HashMap<String, Arc<dyn WsHandler>>,
    domain_name: String,
    connections: Mutex<HashMap<String, Connection>>,
    stop: watch::Receiver<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Shared {
    fn lock_connections(&self) -> std::sync::MutexGuard<'_, HashMap<String, Connection>> {
        // A poisoned map is still a consistent map: every critical section
        // is a single insert, remove or lookup.
        self.connections.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn connection(&self, id: &str) -> Option<Connection> {
        self.lock_connections().get(id).cloned()
    }
}

/// What the `@connections` API knows of an open connection.
#[derive(Clone)]
struct Connection {
    outbound: mpsc::Sender<Outbound>,
    connected_at: DateTime<Utc>,
    /// Epoch milliseconds.
    last_active: Arc<AtomicI64>,
    source_ip: String,
    user_agent: Option<String>,
}

enum Outbound {
    /// A message to send; the answer says whether it was written.
    Data {
        payload: Bytes,
        done: Option<oneshot::Sender<bool>>,
    },
    /// `DELETE @connections/{id}`.
    Close,
}

/// Why a connection ended: `requestContext.disconnectStatusCode` and
/// `disconnectReason` of its `$disconnect` event.
struct Ending {
    code: u16,
    reason: String,
    /// A close frame the gateway still owes the client.
    send_close: Option<CloseFrame>,
}

impl Ending {
    fn by_gateway(code: CloseCode, reason: &str) -> Ending {
        Ending {
            code: code.into(),
            reason: reason.into(),
            send_close: Some(CloseFrame {
                code,
                reason: reason.to_string().into(),
            }),
        }
    }

    fn abnormal(reason: impl Into<String>) -> Ending {
        Ending {
            code: 1006,
            reason: reason.into(),
            send_close: None,
        }
    }
}

fn random_id(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut b);
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// API Gateway's `requestTime` format, e.g. `23/Nov/2026:12:00:00 +0000`.
fn request_time(t: DateTime<Utc>) -> String {
    t.format("%d/%b/%Y:%H:%M:%S %z").to_string()
}

impl Shared {
    fn context(
        &self,
        route_key: &str,
        event_type: &str,
        connection_id: &str,
        connected_at: DateTime<Utc>,
        source_ip: &str,
        user_agent: Option<&str>,
    ) -> ApiGatewayWebsocketProxyRequestContext {
        let now = Utc::now();
        let mut ctx = ApiGatewayWebsocketProxyRequestContext::default();
        ctx.route_key = Some(route_key.into());
        ctx.event_type = Some(event_type.into());
        ctx.message_direction = Some("IN".into());
        ctx.stage = Some(self.config.stage.clone());
        ctx.apiid = Some(self.config.api_id.clone());
        ctx.domain_name = Some(self.domain_name.clone());
        ctx.connection_id = Some(connection_id.into());
        ctx.connected_at = connected_at.timestamp_millis();
        ctx.request_time_epoch = now.timestamp_millis();
        ctx.request_time = Some(request_time(now));
        ctx.request_id = Some(random_id(6).trim_end_matches('=').to_string() + "=");
        ctx.extended_request_id = ctx.request_id.clone();
        ctx.identity.source_ip = Some(source_ip.into());
        ctx.identity.user_agent = user_agent.map(str::to_string);
        ctx
    }

    /// Calls a route's handler in its own task, so a panicking handler is
    /// an integration failure (AWS: `Internal server error`), never a
    /// gateway crash; and within the integration timeout.
    async fn invoke(
        &self,
        handler: &Arc<dyn WsHandler>,
        event: ApiGatewayWebsocketProxyRequest,
    ) -> Option<ApiGatewayProxyResponse> {
        let call = tokio::spawn(handler.call(event));
        match tokio::time::timeout(self.config.integration_timeout, call).await {
            Ok(Ok(response)) => Some(response),
            Ok(Err(e)) => {
                tracing::error!(error = %e, "WebSocket handler failed");
                None
            }
            Err(_) => {
                tracing::error!("WebSocket handler timed out");
                None
            }
        }
    }
}

/// `GET /` with an Upgrade: the `$connect` route decides, then the handshake.
async fn upgrade(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut req: Request<Body>,
) -> Response<Body> {
    let is_upgrade = req
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let key = req.headers().get(header::SEC_WEBSOCKET_KEY).cloned();
    let (Some(key), true) = (key, is_upgrade) else {
        return simple(
            StatusCode::UPGRADE_REQUIRED,
            r#"{"message":"This endpoint speaks WebSocket: connect with ws://"}"#,
        );
    };
    if *shared.stop.borrow() {
        return simple(StatusCode::GONE, r#"{"message":"Shutting down"}"#);
    }
    let connection_id = random_id(11);
    let connected_at = Utc::now();
    let source_ip = peer.ip().to_string();
    let user_agent = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);

    let mut protocol = None;
    if let Some(handler) = shared.routes.get("$connect") {
        let mut event = ApiGatewayWebsocketProxyRequest::default();
        event.headers = connect_headers(&req, peer);
        event.multi_value_headers = event.headers.clone();
        (
            event.query_string_parameters,
            event.multi_value_query_string_parameters,
        ) = query_of(&req);
        event.request_context = shared.context(
            "$connect",
            "CONNECT",
            &connection_id,
            connected_at,
            &source_ip,
            user_agent.as_deref(),
        );
        let Some(response) = shared.invoke(handler, event).await else {
            return simple(
                StatusCode::INTERNAL_SERVER_ERROR,
                r#"{"message":"Internal server error"}"#,
            );
        };
        if !(200..300).contains(&response.status_code) {
            let status = status_of(response.status_code);
            let body = body_bytes(response.body).unwrap_or_default();
            return Response::builder()
                .status(status)
                .body(Body::from(body))
                .unwrap_or_default();
        }
        protocol = response
            .headers
            .get("sec-websocket-protocol")
            .or_else(|| response.multi_value_headers.get("sec-websocket-protocol"))
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
    }

    let on_upgrade = hyper::upgrade::on(&mut req);
    let mut response = Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "upgrade")
        .header(header::UPGRADE, "websocket")
        .header(
            header::SEC_WEBSOCKET_ACCEPT,
            derive_accept_key(key.as_bytes()),
        );
    if let Some(p) = &protocol {
        response = response.header(header::SEC_WEBSOCKET_PROTOCOL, p.as_str());
    }
    let info = Connection {
        outbound: mpsc::channel(1).0,
        connected_at,
        last_active: Arc::new(AtomicI64::new(connected_at.timestamp_millis())),
        source_ip,
        user_agent,
    };
    let task_shared = shared.clone();
    let task = tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else {
            // The client left during the handshake; $connect had accepted it.
            task_shared
                .disconnect(&connection_id, &info, Ending::abnormal("Handshake aborted"))
                .await;
            return;
        };
        let mut config = WebSocketConfig::default();
        // Small eager read buffers keep 10,000 idle connections cheap.
        config.read_buffer_size = 4 * 1024;
        config.write_buffer_size = 0;
        config.max_frame_size = Some(MAX_FRAME_BYTES);
        config.max_message_size = Some(MAX_MESSAGE_BYTES);
        let ws = WebSocketStream::from_raw_socket(
            hyper_util::rt::TokioIo::new(upgraded),
            Role::Server,
            Some(config),
        )
        .await;
        run_connection(task_shared, connection_id, info, ws).await;
    });
    let mut tasks = shared.tasks.lock().unwrap_or_else(|e| e.into_inner());
    tasks.retain(|t| !t.is_finished());
    tasks.push(task);
    drop(tasks);
    response.body(Body::empty()).unwrap_or_default()
}

type Socket = WebSocketStream<hyper_util::rt::TokioIo<hyper::upgrade::Upgraded>>;

async fn run_connection(shared: Arc<Shared>, id: String, mut info: Connection, mut ws: Socket) {
    let (out_tx, mut out_rx) = mpsc::channel::<Outbound>(64);
    info.outbound = out_tx.clone();
    shared.lock_connections().insert(id.clone(), info.clone());

    // Frames are handled one at a time, in order, beside the socket loop, so
    // pushes keep flowing while a handler runs.
    let (in_tx, mut in_rx) = mpsc::channel::<(String, bool)>(64);
    let handler_shared = shared.clone();
    let handler_info = info.clone();
    let handler_id = id.clone();
    let messages = tokio::spawn(async move {
        while let Some((body, binary)) = in_rx.recv().await {
            if let Some(reply) = handler_shared
                .on_message(&handler_id, &handler_info, body, binary)
                .await
            {
                let _ = out_tx
                    .send(Outbound::Data {
                        payload: reply,
                        done: None,
                    })
                    .await;
            }
        }
    });

    let started = tokio::time::Instant::now();
    let max_deadline = started + shared.config.max_duration;
    let mut idle_deadline = started + shared.config.idle_timeout;
    let mut stop = shared.stop.clone();
    let ending = loop {
        tokio::select! {
            frame = ws.next() => match frame {
                Some(Ok(Message::Text(text))) => {
                    idle_deadline = tokio::time::Instant::now() + shared.config.idle_timeout;
                    touch(&info);
                    if in_tx.send((text.to_string(), false)).await.is_err() {
                        break Ending::by_gateway(CloseCode::Error, "Internal server error");
                    }
                }
                Some(Ok(Message::Binary(data))) => {
                    idle_deadline = tokio::time::Instant::now() + shared.config.idle_timeout;
                    touch(&info);
                    let body = base64::engine::general_purpose::STANDARD.encode(&data);
                    if in_tx.send((body, true)).await.is_err() {
                        break Ending::by_gateway(CloseCode::Error, "Internal server error");
                    }
                }
                // Pongs to pings are queued by tungstenite and flushed on the
                // next read or write; neither resets the idle timer, which
                // counts messages as API Gateway does.
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                Some(Ok(Message::Close(frame))) => {
                    let (code, reason) = match frame {
                        Some(f) => (u16::from(f.code), f.reason.to_string()),
                        None => (1005, "Client-side close frame status not set".to_string()),
                    };
                    break Ending { code, reason, send_close: None };
                }
                Some(Err(WsError::Capacity(CapacityError::MessageTooLong { .. }))) => {
                    break Ending::by_gateway(CloseCode::Size, "Message too big");
                }
                // RFC 6455 7.1.7: a peer that breaks the protocol is told so
                // with a close frame (1002, or 1007 for text that is not
                // UTF-8) before the TCP connection goes.
                // A peer that vanished without a closing handshake broke no
                // rule of the frames: that is 1006 below, not 1002.
                Some(Err(WsError::Protocol(e)))
                    if !matches!(e, ProtocolError::ResetWithoutClosingHandshake) =>
                {
                    tracing::info!(error = %e, "protocol error from a client");
                    break Ending::by_gateway(CloseCode::Protocol, "Protocol error");
                }
                Some(Err(WsError::Utf8(_))) => {
                    break Ending::by_gateway(CloseCode::Invalid, "Invalid frame payload data");
                }
                Some(Err(e)) => break Ending::abnormal(format!("Connection lost: {e}")),
                None => break Ending::abnormal("Connection lost"),
            },
            out = out_rx.recv() => match out {
                Some(Outbound::Data { payload, done }) => {
                    let sent = tokio::time::timeout(shared.config.send_timeout, send_fragmented(&mut ws, payload)).await;
                    let ok = matches!(sent, Ok(Ok(())));
                    if ok {
                        touch(&info);
                    }
                    if let Some(done) = done {
                        let _ = done.send(ok);
                    }
                    if !ok {
                        break Ending::abnormal("Client did not read in time");
                    }
                }
                Some(Outbound::Close) | None => {
                    break Ending::by_gateway(CloseCode::Normal, "Connection deleted");
                }
            },
            _ = tokio::time::sleep_until(idle_deadline) => {
                break Ending::by_gateway(CloseCode::Away, "Going away");
            }
            _ = tokio::time::sleep_until(max_deadline) => {
                break Ending::by_gateway(CloseCode::Away, "Going away");
            }
            _ = stopped(&mut stop) => {
                break Ending::by_gateway(CloseCode::Away, "Going away");
            }
        }
    };
    // Gone for @connections before $disconnect runs, as in AWS.
    shared.lock_connections().remove(&id);
    drop(in_tx);
    messages.abort();
    // Whatever was queued for the client is lost with it.
    out_rx.close();
    while let Some(out) = out_rx.recv().await {
        if let Outbound::Data {
            done: Some(done), ..
        } = out
        {
            let _ = done.send(false);
        }
    }
    if let Some(frame) = &ending.send_close {
        let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(Some(frame.clone()))).await;
    }
    shared.disconnect(&id, &info, ending).await;
}

/// Resolves once `stop` turns true (or its sender is gone).
pub async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

fn touch(info: &Connection) {
    info.last_active
        .store(Utc::now().timestamp_millis(), Ordering::Relaxed);
}

/// Writes a message in frames of at most 32 KB, as API Gateway does.
async fn send_fragmented(ws: &mut Socket, payload: Bytes) -> Result<(), WsError> {
    let kind = if std::str::from_utf8(&payload).is_ok() {
        Data::Text
    } else {
        Data::Binary
    };
    if payload.len() <= MAX_FRAME_BYTES {
        let msg = match kind {
            Data::Text => Message::Frame(Frame::message(payload, OpCode::Data(Data::Text), true)),
            _ => Message::Binary(payload),
        };
        return ws.send(msg).await;
    }
    let chunks = payload.len().div_ceil(MAX_FRAME_BYTES);
    for i in 0..chunks {
        let chunk =
            payload.slice(i * MAX_FRAME_BYTES..((i + 1) * MAX_FRAME_BYTES).min(payload.len()));
        let opcode = if i == 0 { kind } else { Data::Continue };
        ws.feed(Message::Frame(Frame::message(
            chunk,
            OpCode::Data(opcode),
            i + 1 == chunks,
        )))
        .await?;
    }
    ws.flush().await
}

impl Shared {
    /// A MESSAGE event for the route `$request.body.action` names, else
    /// `$default`; the handler's non-empty body is the route response.
    async fn on_message(
        &self,
        id: &str,
        info: &Connection,
        body: String,
        binary: bool,
    ) -> Option<Bytes> {
        let action = if binary {
            None
        } else {
            serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("action")?.as_str().map(str::to_string))
        };
        let route_key = match action {
            Some(a) if !a.starts_with('$') && self.routes.contains_key(&a) => a,
            _ => "$default".to_string(),
        };
        let mut event = ApiGatewayWebsocketProxyRequest::default();
        event.request_context = self.context(
            &route_key,
            "MESSAGE",
            id,
            info.connected_at,
            &info.source_ip,
            info.user_agent.as_deref(),
        );
        event.request_context.message_id =
            Some(random_id(6).trim_end_matches('=').to_string() + "=");
        let request_id = event.request_context.request_id.clone().unwrap_or_default();
        event.body = Some(body);
        event.is_base64_encoded = binary;
        let error = |message: &str| {
            let frame = serde_json::json!({
                "message": message,
                "connectionId": id,
                "requestId": request_id,
            });
            Some(Bytes::from(frame.to_string()))
        };
        let Some(handler) = self.routes.get(&route_key) else {
            // What API Gateway answers when no route matches and there is no $default.
            return error("Forbidden");
        };
        match self.invoke(handler, event).await {
            Some(response) => body_bytes(response.body),
            None => error("Internal server error"),
        }
    }

    async fn disconnect(&self, id: &str, info: &Connection, ending: Ending) {
        let Some(handler) = self.routes.get("$disconnect") else {
            return;
        };
        let mut event = ApiGatewayWebsocketProxyRequest::default();
        let mut headers = HeaderMap::new();
        if let Ok(host) = HeaderValue::from_str(&self.domain_name) {
            headers.insert(header::HOST.as_str(), host);
        }
        event.multi_value_headers = headers.clone();
        event.headers = headers;
        event.request_context = self.context(
            "$disconnect",
            "DISCONNECT",
            id,
            info.connected_at,
            &info.source_ip,
            info.user_agent.as_deref(),
        );
        event.request_context.disconnect_status_code = Some(i64::from(ending.code));
        event.request_context.disconnect_reason = Some(ending.reason);
        let _ = self.invoke(handler, event).await;
    }
}
