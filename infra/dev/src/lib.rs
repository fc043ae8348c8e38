//! `make dev` as a library: the functions of template.yaml wired behind the
//! local API Gateway (WebSocket + `@connections`), the REST API, the
//! EventBridge schedule and the SQS event source, all in one process against
//! the AWS emulator. The end-to-end tests start exactly this, on ephemeral
//! ports, so what they check is what a user runs.

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use aws_lambda_events::eventbridge::EventBridgeEvent;
use chrono::Utc;
use finops_local::demo_estate::{self, Seeded};
use finops_local::estate::Estate;
use finops_local::event_source::EventSource;
use finops_local::gateway::{Gateway, GatewayConfig, GatewayHandle};
use finops_local::LocalStack;
use shared::auth::{AuthConfig, KeyMode, LocalClaims};
pub use shared::config::Env;
use shared::domain::Role;
use shared::dynamo::DynamoConnections;
use shared::notify::Notifier;
use shared::store::{ConnectionStore, PageTokenCodec};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The local issuer and audience of `make dev` tokens.
pub const LOCAL_ISSUER: &str = "finops-local";
pub const LOCAL_AUDIENCE: &str = "finops-lambda";

/// What to seed.
pub enum Seed {
    /// The demo estate: 205 resources over the seven services, 14 days of
    /// hourly metrics, 90 days of daily costs.
    Demo,
    /// Nothing (`SEED=none`): the user's own data.
    None,
    /// A given estate (tests); no costs.
    Estate(Estate),
}

pub struct Settings {
    /// REST API (`serve_rest`); port 0 picks a free one.
    pub rest: SocketAddr,
    /// WebSocket + `@connections`; port 0 picks a free one.
    pub ws: SocketAddr,
    pub seed: Seed,
    /// The rate of the schedule; `None` runs no schedule.
    pub schedule: Option<Duration>,
    /// HS256 secret the functions verify tokens with (>= 32 bytes).
    pub auth_secret: String,
    pub gateway: GatewayConfig,
    /// Long-poll wait of the SQS event source, seconds.
    pub poll_wait_seconds: i32,
    /// Concurrent pollers of the jobs queue (Lambda starts with several).
    pub pollers: usize,
    /// The built dashboard (`web/dist`), served at `/` beside `/api`, with
    /// `/config.json` and the role picker's `/local/tokens`; `None` serves
    /// only `/api`.
    pub web: Option<PathBuf>,
    /// Synthetic pending approval requests opened in the background after
    /// start (the dashboard's 10,000-request benchmark); 0 for none.
    pub bench_requests: usize,
}

/// The demo estate on an emulator of its own, served as `make dev` serves
/// it (long polls of 20 s, two pollers) on ephemeral ports, without a
/// schedule: what the benchmarks measure. The emulator must outlive the stack.
pub async fn demo_stack(prefix: &str) -> Result<(finops_local::Emulator, Dev), String> {
    let emulator = finops_local::Emulator::start().map_err(|e| e.to_string())?;
    let aws = finops_local::sdk_config(&emulator.endpoint).await;
    let template = finops_local::Template::load().map_err(|e| e.to_string())?;
    let stack = LocalStack::create(&aws, &emulator.endpoint, &template, prefix)
        .await
        .map_err(|e| e.to_string())?;
    let settings = Settings {
        poll_wait_seconds: 20,
        ..Settings::ephemeral(Seed::Demo)
    };
    let dev = Dev::start(stack, settings, |g, _| g).await?;
    Ok((emulator, dev))
}

impl Settings {
    /// Loopback, ephemeral ports, no schedule, a fresh secret: for tests.
    pub fn ephemeral(seed: Seed) -> Settings {
        Settings {
            rest: SocketAddr::from(([127, 0, 0, 1], 0)),
            ws: SocketAddr::from(([127, 0, 0, 1], 0)),
            seed,
            schedule: None,
            auth_secret: random_secret(),
            gateway: GatewayConfig::default(),
            poll_wait_seconds: 1,
            pollers: 2,
            web: None,
            bench_requests: 0,
        }
    }
}

/// 48 random hex characters.
pub fn random_secret() -> String {
    use rand::RngCore;
    let mut b = [0u8; 24];
    rand::thread_rng().fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The environment a function gets: its variables from template.yaml
/// (resolved against the local stack), then `extra` (AUTH_*,
/// WEBSOCKET_ENDPOINT), then, for anything else (SLACK_WEBHOOK_URL,
/// NOTIFY_CONCURRENCY, ...), the process environment.
pub fn function_env(
    stack: &LocalStack,
    logical_ids: &[&str],
    extra: &BTreeMap<String, String>,
) -> Env {
    Env::of(function_vars(stack, logical_ids, extra)).or(&Env::process())
}

/// The variables of [`function_env`] resolved locally, without the process
/// environment (to hand to a child process).
pub fn function_vars(
    stack: &LocalStack,
    logical_ids: &[&str],
    extra: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut vars = BTreeMap::new();
    for id in logical_ids {
        vars.extend(stack.function_env(id));
    }
    vars.extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
    vars
}

/// Every function, built once, as each Lambda's `main` would.
pub struct Functions {
    pub processor: processor::Processor,
    pub scheduler: scheduler::Scheduler,
    pub api: api::App,
    pub ws: Arc<WsFunctions>,
    /// A notifier built as the functions build theirs (tests publish with it).
    notifier: Box<dyn Notifier>,
    connections: Arc<dyn ConnectionStore>,
}

/// The three functions behind the WebSocket API.
pub struct WsFunctions {
    pub connect: ws_connect::Deps,
    pub disconnect: ws_disconnect::Deps,
    pub message: ws_message::Deps,
}

impl WsFunctions {
    /// Each function from its own constructor, as its `main` calls it.
    pub fn from_env(env: &Env, aws: &aws_config::SdkConfig) -> Result<WsFunctions, String> {
        Ok(WsFunctions {
            connect: ws_connect::Deps::from_env(env, aws)
                .map_err(|e| format!("WsConnectFunction: {e}"))?,
            disconnect: ws_disconnect::Deps::from_env(env, aws)
                .map_err(|e| format!("WsDisconnectFunction: {e}"))?,
            message: ws_message::Deps::from_env(env, aws)
                .map_err(|e| format!("WsMessageFunction: {e}"))?,
        })
    }

    /// The WebSocket API with the routes template.yaml declares (each
    /// route's integration names the function behind it).
    pub fn gateway(self: Arc<Self>, config: GatewayConfig) -> Result<Gateway, String> {
        let template = finops_local::Template::load().map_err(|e| e.to_string())?;
        let mut gateway = Gateway::new(config);
        for (key, function) in websocket_routes(&template)? {
            let f = self.clone();
            gateway = match function.as_str() {
                "WsConnectFunction" => gateway.route(key, move |e| {
                    let f = f.clone();
                    async move { ws_connect::handle(&f.connect, e, Utc::now()).await }
                }),
                "WsDisconnectFunction" => gateway.route(key, move |e| {
                    let f = f.clone();
                    async move { ws_disconnect::handle(&f.disconnect, e, Utc::now()).await }
                }),
                "WsMessageFunction" => gateway.route(key, move |e| {
                    let f = f.clone();
                    async move { ws_message::handle(&f.message, e, Utc::now()).await }
                }),
                other => {
                    return Err(format!(
                        "route '{key}' targets {other}, which the local stack does not run"
                    ))
                }
            };
        }
        Ok(gateway)
    }
}

/// The WebSocket routes of template.yaml: (route key, function logical id),
/// following each `AWS::ApiGatewayV2::Route`'s `Target`
/// (`integrations/${Integration}`) to the integration's `IntegrationUri`
/// (`...${Function.Arn}/invocations`).
pub fn websocket_routes(
    template: &finops_local::Template,
) -> Result<Vec<(String, String)>, String> {
    fn text(v: &serde_yaml::Value) -> Option<String> {
        match v {
            serde_yaml::Value::String(s) => Some(s.clone()),
            serde_yaml::Value::Tagged(t) => text(&t.value),
            _ => None,
        }
    }
    fn field(v: &serde_yaml::Value, key: &str) -> Option<String> {
        text(v.as_mapping()?.get(serde_yaml::Value::String(key.into()))?)
    }
    /// The logical id inside `${...}`, without an attribute.
    fn reference(s: &str) -> Option<String> {
        let start = s.find("${")? + 2;
        let end = start + s[start..].find('}')?;
        Some(s[start..end].split('.').next()?.to_string())
    }
    let mut routes = Vec::new();
    for (id, props) in template.of_type("AWS::ApiGatewayV2::Route") {
        let key = field(props, "RouteKey").ok_or(format!("route {id} has no RouteKey"))?;
        let integration = field(props, "Target")
            .as_deref()
            .and_then(reference)
            .ok_or(format!(
                "route {id}: Target is not integrations/${{Integration}}"
            ))?;
        let function = template
            .properties(&integration)
            .and_then(|p| field(p, "IntegrationUri"))
            .as_deref()
            .and_then(|uri| {
                let at = uri.find(".Arn}")?;
                reference(&uri[uri[..at].rfind("${")?..])
            })
            .ok_or(format!("integration {integration} names no function"))?;
        routes.push((key, function));
    }
    if routes.is_empty() {
        return Err("template.yaml declares no WebSocket routes".into());
    }
    Ok(routes)
}

impl Functions {
    /// Builds every function with its environment (see [`function_env`])
    /// through the constructor its Lambda `main` calls.
    pub fn build(
        stack: &LocalStack,
        extra: &BTreeMap<String, String>,
    ) -> Result<Functions, String> {
        let aws = &stack.config;
        let env = |ids: &[&str]| function_env(stack, ids, extra);
        let processor_env = env(&["ProcessorFunction"]);
        let processor = processor::Processor::from_env(&processor_env, aws)
            .map_err(|e| format!("ProcessorFunction: {e}"))?;
        let scheduler = scheduler::Scheduler::from_env(&env(&["SchedulerFunction"]), aws)
            .map_err(|e| format!("SchedulerFunction: {e}"))?;
        let api = api::App::from_env(&env(&["ApiFunction"]), aws)
            .map_err(|e| format!("ApiFunction: {e}"))?;
        let ws_env = env(&[
            "WsConnectFunction",
            "WsDisconnectFunction",
            "WsMessageFunction",
        ]);
        let ws = Arc::new(WsFunctions::from_env(&ws_env, aws)?);

        // What tests publish and read with: built as the processor builds its own.
        let connections_table = ws_env
            .require("CONNECTIONS_TABLE")
            .map_err(|e| format!("WsConnectFunction: {e}"))?;
        let connections: Arc<dyn ConnectionStore> = Arc::new(DynamoConnections::new(
            aws_sdk_dynamodb::Client::new(aws),
            &connections_table,
            PageTokenCodec::new(uuid::Uuid::new_v4().as_bytes()),
        ));
        let notifier = shared::channels::from_env(&processor_env, aws, connections.clone())
            .map_err(|err| format!("notification channels: {err}"))?;
        Ok(Functions {
            processor,
            scheduler,
            api,
            ws,
            notifier,
            connections,
        })
    }

    /// A notifier configured as the processor's.
    pub fn notifier(&self) -> &dyn Notifier {
        self.notifier.as_ref()
    }

    /// The connections store the WebSocket functions use.
    pub fn connections(&self) -> Arc<dyn ConnectionStore> {
        self.connections.clone()
    }

    pub async fn ws_connect(
        &self,
        event: ApiGatewayWebsocketProxyRequest,
    ) -> ApiGatewayProxyResponse {
        ws_connect::handle(&self.ws.connect, event, Utc::now()).await
    }

    pub async fn ws_disconnect(
        &self,
        event: ApiGatewayWebsocketProxyRequest,
    ) -> ApiGatewayProxyResponse {
        ws_disconnect::handle(&self.ws.disconnect, event, Utc::now()).await
    }

    pub async fn ws_message(
        &self,
        event: ApiGatewayWebsocketProxyRequest,
    ) -> ApiGatewayProxyResponse {
        ws_message::handle(&self.ws.message, event, Utc::now()).await
    }

    /// The WebSocket API with the real functions on its routes.
    pub fn gateway(&self, config: GatewayConfig) -> Result<Gateway, String> {
        self.ws.clone().gateway(config)
    }

    /// One scheduled event, as EventBridge delivers it to the scheduler.
    pub async fn on_schedule(&self, event: EventBridgeEvent) {
        match self.scheduler.handle(event, Utc::now()).await {
            Ok(outcome) => tracing::info!(
                job_id = %outcome.job_id,
                status = outcome.status,
                "schedule fired"
            ),
            Err(e) => tracing::error!(error = %e, "schedule: the scheduler failed"),
        }
    }
}

/// The local HS256 token configuration for `secret`.
pub fn local_auth(secret: &str) -> AuthConfig {
    AuthConfig {
        issuer: LOCAL_ISSUER.into(),
        audience: LOCAL_AUDIENCE.into(),
        mode: KeyMode::Hs256 {
            secret: secret.as_bytes().to_vec(),
        },
    }
}

/// The local sign-in's users: one per role, and a second approver (two
/// people deciding at once is what the dashboard's live updates are for).
pub const LOCAL_USERS: [(&str, Role); 5] = [
    ("local-viewer", Role::Viewer),
    ("local-operator", Role::Operator),
    ("local-approver", Role::Approver),
    ("local-approver-2", Role::Approver),
    ("local-admin", Role::Admin),
];

/// `/local/tokens`: a fresh 12-hour token for each of [`LOCAL_USERS`].
fn local_tokens(auth: &AuthConfig, secret: &str) -> serde_json::Value {
    let users: Vec<serde_json::Value> = LOCAL_USERS
        .iter()
        .map(|(user, role)| {
            let token = LocalClaims::new(
                auth,
                user,
                &[*role],
                Utc::now(),
                chrono::Duration::hours(12),
            )
            .sign_hs256(secret.as_bytes())
            .unwrap_or_default();
            serde_json::json!({ "user": user, "role": role.as_str(), "token": token })
        })
        .collect();
    serde_json::json!({ "users": users })
}

/// The running stack.
pub struct Dev {
    pub stack: LocalStack,
    pub auth: AuthConfig,
    pub auth_secret: String,
    pub gateway: GatewayHandle,
    pub rest_addr: SocketAddr,
    pub seeded: Option<Seeded>,
    pub functions: Arc<Functions>,
    pub schedule_expression: Option<String>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Dev {
    /// Seeds, builds every function and serves them; `routes` may replace
    /// routes of the WebSocket API (tests wrap `$disconnect`).
    pub async fn start(
        stack: LocalStack,
        settings: Settings,
        routes: impl FnOnce(Gateway, &Arc<Functions>) -> Gateway,
    ) -> Result<Dev, String> {
        if settings.auth_secret.len() < 32 {
            return Err("AUTH_HS256_SECRET must be at least 32 bytes".into());
        }
        let now = Utc::now();
        let mut chart_samples = Vec::new();
        let demo = matches!(settings.seed, Seed::Demo);
        let seeded = match settings.seed {
            Seed::None => None,
            Seed::Demo => {
                let thresholds =
                    shared::analysis::default_thresholds().map_err(|e| e.to_string())?;
                // Created through the services' APIs: the cycle's discovery finds it.
                // A two-account Organization: a fifth of the estate lives in
                // a member account, reached through its discovery role.
                let role = stack
                    .parameter_default("MemberRoleName")
                    .unwrap_or_else(|| "FinOpsDiscoveryRole".into());
                let member = demo_estate::create_member_account(&stack, &role)
                    .await
                    .map_err(|e| e.to_string())?;
                let mut estate = finops_local::estate::demo(&thresholds, now, 14);
                for (k, r) in estate.resources.iter_mut().enumerate() {
                    if k % 5 == 1 {
                        r.account_id = Some(member.0.clone());
                    }
                }
                let seeded = demo_estate::create_estate(&stack, &mut estate, Some(&member))
                    .await
                    .map_err(|e| e.to_string())?;
                demo_estate::inject_daily_costs(&stack, &estate.resources, now, 90, 32)
                    .await
                    .map_err(|e| e.to_string())?;
                chart_samples = demo_estate::metric_samples(&estate);
                Some(seeded)
            }
            Seed::Estate(estate) => Some(
                demo_estate::seed_estate(&stack, &estate)
                    .await
                    .map_err(|e| e.to_string())?,
            ),
        };

        // Bound first, so the functions learn the real addresses.
        let ws_listener = TcpListener::bind(settings.ws)
            .await
            .map_err(|e| format!("WebSocket port {}: {e}", settings.ws))?;
        let rest_listener = TcpListener::bind(settings.rest)
            .await
            .map_err(|e| format!("REST port {}: {e}", settings.rest))?;
        let ws_addr = ws_listener.local_addr().map_err(|e| e.to_string())?;
        let rest_addr = rest_listener.local_addr().map_err(|e| e.to_string())?;

        let auth = local_auth(&settings.auth_secret);
        let extra: BTreeMap<String, String> = [
            ("AUTH_ISSUER", LOCAL_ISSUER.to_string()),
            ("AUTH_AUDIENCE", LOCAL_AUDIENCE.to_string()),
            ("AUTH_HS256_SECRET", settings.auth_secret.clone()),
            ("WEBSOCKET_ENDPOINT", format!("http://{ws_addr}")),
            // The api's listing-token key: stable for this run (or as set).
            (
                "PAGE_TOKEN_SECRET",
                Env::process()
                    .get("PAGE_TOKEN_SECRET")
                    .unwrap_or_else(random_secret),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let mut extra = extra;
        if demo {
            // The demo estate spans two regions and two accounts: each
            // (account, region) is discovered as its own unit of work.
            extra.insert(
                "REGIONS".to_string(),
                finops_local::estate::DEMO_REGIONS.join(","),
            );
            extra.insert("ACCOUNTS_MODE".to_string(), "organization".to_string());
        }
        let functions = Arc::new(Functions::build(&stack, &extra)?);

        let gateway = routes(functions.gateway(settings.gateway.clone())?, &functions)
            .spawn(ws_listener)
            .map_err(|e| e.to_string())?;
        let (stop, stop_rx) = watch::channel(false);
        let mut tasks = Vec::new();

        let site = settings.web.map(|dir| {
            let (auth, secret) = (auth.clone(), settings.auth_secret.clone());
            finops_local::site::Site {
                dir,
                config: serde_json::json!({
                    "auth": "local",
                    "wsUrl": gateway.ws_url(),
                    "tokensUrl": "/local/tokens",
                    // What this API offers: the app shows execution and
                    // realised savings only where the routes exist.
                    "routes": api::ROUTES
                        .iter()
                        .map(|r| format!("{} {}", r.method, r.path))
                        .collect::<Vec<_>>(),
                }),
                tokens: Arc::new(move || local_tokens(&auth, &secret)),
            }
            .router()
        });
        let f = functions.clone();
        let mut rest_stop = stop_rx.clone();
        tasks.push(tokio::spawn(async move {
            let serve = finops_local::rest::serve_rest_with_site(
                rest_listener,
                move |req| {
                    let f = f.clone();
                    async move { api::handle(&f.api, req).await }
                },
                site,
            );
            tokio::select! {
                r = serve => if let Err(e) = r {
                    tracing::error!(error = %e, "the REST server stopped");
                },
                _ = finops_local::gateway::stopped(&mut rest_stop) => {}
            }
        }));

        let sqs = aws_sdk_sqs::Client::new(&stack.config);
        for _ in 0..settings.pollers.max(1) {
            let mut source = EventSource::new(
                sqs.clone(),
                stack.queue_url("JobsQueue"),
                stack.queue_arn("JobsQueue"),
            );
            source.wait_seconds = settings.poll_wait_seconds;
            let f = functions.clone();
            let stop_rx = stop_rx.clone();
            tasks.push(tokio::spawn(async move {
                source
                    .run(stop_rx, |event| {
                        let f = f.clone();
                        async move { processor::handle(&f.processor, event, Utc::now()).await }
                    })
                    .await;
            }));
        }

        if !chart_samples.is_empty() {
            // The dashboard charts GET /metrics/{id}, which reads what
            // POST /metrics stored; the demo's series go there too, in the
            // background so the stack answers at once.
            let stack = stack.clone();
            tasks.push(tokio::spawn(async move {
                let started = std::time::Instant::now();
                match demo_estate::seed_metrics_table(&stack, &chart_samples, now, 4).await {
                    Ok(n) => tracing::info!(
                        samples = n,
                        seconds = started.elapsed().as_secs_f64(),
                        "demo metrics stored for GET /metrics"
                    ),
                    Err(e) => tracing::warn!(error = %e, "demo metrics for GET /metrics"),
                }
            }));
        }

        if settings.bench_requests > 0 {
            let (stack, n) = (stack.clone(), settings.bench_requests);
            tasks.push(tokio::spawn(async move {
                let started = std::time::Instant::now();
                match demo_estate::seed_approval_requests(&stack, n, now, 8).await {
                    Ok(n) => tracing::info!(
                        requests = n,
                        seconds = started.elapsed().as_secs_f64(),
                        "benchmark approval requests opened"
                    ),
                    Err(e) => tracing::warn!(error = %e, "benchmark approval requests"),
                }
            }));
        }

        let schedule_expression = settings.schedule.map(|every| {
            let f = functions.clone();
            let stop_rx = stop_rx.clone();
            tasks.push(tokio::spawn(async move {
                finops_local::schedule::run(
                    every,
                    finops_local::schedule::LOCAL_RULE_ARN.to_string(),
                    stop_rx,
                    |event| {
                        let f = f.clone();
                        async move { f.on_schedule(event).await }
                    },
                )
                .await;
            }));
            format!("every {} s", every.as_secs())
        });

        Ok(Dev {
            stack,
            auth,
            auth_secret: settings.auth_secret,
            gateway,
            rest_addr,
            seeded,
            functions,
            schedule_expression,
            stop,
            tasks,
        })
    }

    /// A token for `user` with `roles`, valid for `ttl`.
    pub fn token(&self, user: &str, roles: &[Role], ttl: chrono::Duration) -> String {
        LocalClaims::new(&self.auth, user, roles, Utc::now(), ttl)
            .sign_hs256(self.auth_secret.as_bytes())
            .unwrap_or_default()
    }

    pub fn ws_url(&self) -> String {
        self.gateway.ws_url()
    }

    pub fn rest_url(&self) -> String {
        format!("http://{}", self.rest_addr)
    }

    /// Stops the loops and the servers; every WebSocket gets its `$disconnect`.
    /// A batch still being processed is abandoned after a short grace: its
    /// messages were not deleted, so the queue redelivers them (as after a
    /// Lambda timeout).
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        self.gateway.shutdown().await;
        for mut t in self.tasks {
            if tokio::time::timeout(Duration::from_secs(2), &mut t)
                .await
                .is_err()
            {
                t.abort();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_templates_routes_lead_to_the_websocket_functions() {
        let template = finops_local::Template::load().unwrap();
        let routes: BTreeMap<String, String> =
            websocket_routes(&template).unwrap().into_iter().collect();
        assert_eq!(routes["$connect"], "WsConnectFunction");
        assert_eq!(routes["$disconnect"], "WsDisconnectFunction");
        assert_eq!(routes["$default"], "WsMessageFunction");
        assert!(routes
            .iter()
            .filter(|(k, _)| !k.starts_with('$'))
            .all(|(_, f)| f == "WsMessageFunction"));
    }
}
