//! The api function against the emulator: real DynamoDB, SQS and Cost
//! Explorer through the SDK, requests built from `events/api/*.json` (the
//! shape API Gateway REST sends) and passed to `handle`.
#![allow(dead_code)]

use api::{handle, App, Config, Env};
use chrono::{DateTime, Duration, Utc};
use finops_local::LocalStack;
use serde_json::{json, Value};
use shared::auth::{AuthConfig, LocalClaims};
use shared::domain::*;
use shared::notify::{Event, Notifier};
use std::sync::{Arc, Mutex};

pub const SECRET: &str = "test-secret-test-secret-test-secret-0123";
pub const ISSUER: &str = "https://local.finops/issuer";
pub const AUDIENCE: &str = "finops-local";

#[derive(Clone, Default)]
pub struct Recorder(pub Arc<Mutex<Vec<Event>>>);

#[async_trait::async_trait]
impl Notifier for Recorder {
    async fn publish(&self, event: &Event) -> shared::Result<()> {
        self.0.lock().unwrap().push(event.clone());
        Ok(())
    }
}

pub struct Harness {
    pub stack: LocalStack,
    pub app: App,
    pub events: Recorder,
    pub auth: AuthConfig,
    pub now: DateTime<Utc>,
}

pub fn fixed_now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-23T12:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

pub fn env_of(stack: &LocalStack) -> std::collections::BTreeMap<String, String> {
    let mut env = stack.function_env("ApiFunction");
    env.insert(
        "PAGE_TOKEN_SECRET".into(),
        "page-token-secret-for-tests".into(),
    );
    env.insert("AUTH_ISSUER".into(), ISSUER.into());
    env.insert("AUTH_AUDIENCE".into(), AUDIENCE.into());
    env.insert("AUTH_HS256_SECRET".into(), SECRET.into());
    env.insert("SCHEDULE_EXPRESSION".into(), "rate(1 day)".into());
    // No processor answers previews here.
    env.insert("PREVIEW_WAIT_MS".into(), "200".into());
    env
}

pub async fn harness_on(stack: LocalStack) -> Harness {
    harness_with(stack, &[]).await
}

/// A harness whose function environment has `overrides` on top of the template's.
pub async fn harness_with(stack: LocalStack, overrides: &[(&str, &str)]) -> Harness {
    let mut env = env_of(&stack);
    for (k, v) in overrides {
        env.insert(k.to_string(), v.to_string());
    }
    let config = Config::from_env(&Env::of(env)).expect("config");
    let auth = config.auth.clone();
    let events = Recorder::default();
    let now = fixed_now();
    let app = App::new(config, &stack.config, Box::new(events.clone())).with_clock(move || now);
    Harness {
        stack,
        app,
        events,
        auth,
        now,
    }
}

pub async fn harness() -> Harness {
    harness_on(LocalStack::isolated().await).await
}

pub fn event(name: &str) -> Value {
    let path = finops_local::repo_root().join("events/api").join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).expect("event file")).expect("event json")
}

/// A request in API Gateway's REST proxy shape, starting from a stored event.
pub struct Req {
    pub event: Value,
}

impl Req {
    pub fn new(method: &str, path: &str) -> Req {
        let mut event = event("get-approval-requests.json");
        event["httpMethod"] = json!(method);
        event["requestContext"]["httpMethod"] = json!(method);
        event["queryStringParameters"] = Value::Null;
        event["multiValueQueryStringParameters"] = Value::Null;
        event["body"] = Value::Null;
        let mut r = Req { event };
        r.path(path);
        r.header("Authorization", None);
        r
    }

    pub fn from_event(name: &str) -> Req {
        Req { event: event(name) }
    }

    pub fn path(&mut self, path: &str) -> &mut Self {
        self.event["path"] = json!(path);
        self.event["requestContext"]["path"] = json!(format!("/prod{path}"));
        self
    }

    pub fn header(&mut self, k: &str, v: Option<&str>) -> &mut Self {
        for (field, value) in [
            ("headers", v.map(|v| json!(v))),
            ("multiValueHeaders", v.map(|v| json!([v]))),
        ] {
            let map = self.event[field].as_object_mut().unwrap();
            match value {
                Some(value) => {
                    map.insert(k.into(), value);
                }
                None => {
                    map.remove(k);
                }
            }
        }
        self
    }

    pub fn token(&mut self, token: Option<&str>) -> &mut Self {
        let v = token.map(|t| format!("Bearer {t}"));
        self.header("Authorization", v.as_deref())
    }

    pub fn query(&mut self, pairs: &[(&str, &str)]) -> &mut Self {
        let single: serde_json::Map<String, Value> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        let multi: serde_json::Map<String, Value> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), json!([v])))
            .collect();
        self.event["queryStringParameters"] = Value::Object(single);
        self.event["multiValueQueryStringParameters"] = Value::Object(multi);
        self
    }

    pub fn body(&mut self, body: &Value) -> &mut Self {
        self.event["body"] = json!(body.to_string());
        self.header("Content-Type", Some("application/json"))
    }

    pub fn raw_body(&mut self, body: &str) -> &mut Self {
        self.event["body"] = json!(body);
        self
    }

    pub fn build(&self) -> lambda_http::Request {
        lambda_http::request::from_str(&self.event.to_string()).expect("a valid REST proxy event")
    }
}

pub struct Resp {
    pub status: u16,
    pub body: Value,
    pub headers: lambda_http::http::HeaderMap,
}

impl std::fmt::Debug for Resp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status, self.body)
    }
}

impl Harness {
    pub fn token(&self, user: &str, roles: &[Role]) -> String {
        LocalClaims::new(&self.auth, user, roles, self.now, Duration::hours(1))
            .sign_hs256(SECRET.as_bytes())
            .unwrap()
    }

    pub fn as_role(&self, role: Role) -> String {
        self.token(role.as_str(), &[role])
    }

    pub async fn send(&self, req: &Req) -> Resp {
        let resp = handle(&self.app, req.build()).await;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = match resp.body() {
            lambda_http::Body::Text(t) => serde_json::from_str(t).unwrap_or(Value::Null),
            lambda_http::Body::Binary(b) => serde_json::from_slice(b).unwrap_or(Value::Null),
            _ => Value::Null,
        };
        if status >= 400 {
            // Every error is in the SPEC shape.
            assert!(body["error"]["code"].is_string(), "{status} {body}");
            assert!(body["error"]["message"].is_string(), "{status} {body}");
            assert!(body["error"]["details"].is_object(), "{status} {body}");
        }
        Resp {
            status,
            body,
            headers,
        }
    }

    /// Sends with a token for `role`.
    pub async fn call(
        &self,
        role: Role,
        method: &str,
        path: &str,
        query: &[(&str, &str)],
        body: Option<Value>,
    ) -> Resp {
        let mut r = Req::new(method, path);
        r.token(Some(&self.as_role(role))).query(query);
        if let Some(b) = body {
            r.body(&b);
        }
        self.send(&r).await
    }

    /// Opens a pending approval request for a fresh recommendation.
    pub async fn open_request(&self, resource: &str) -> ApprovalRequest {
        let rec = recommendation(resource, self.now);
        let (req, _) = shared::approvals::open(
            &self.app.approvals,
            rec,
            "cycle",
            Some("cycle-1".into()),
            Duration::days(7),
            self.now,
        )
        .await
        .unwrap();
        req
    }
}

pub fn recommendation(resource: &str, now: DateTime<Utc>) -> Recommendation {
    Recommendation {
        id: Recommendation::stable_id(
            &shared::domain::ResourceKey::new(None, "us-east-1", resource),
            Action::Stop,
        ),
        resource_id: resource.into(),
        service: Service::Ec2,
        region: "us-east-1".into(),
        account_id: None,
        owner: None,
        tags: Default::default(),
        current_monthly_cost_usd: None,
        finding: FindingKind::Idle,
        action: Action::Stop,
        target_type: None,
        monthly_savings_usd: Some(61.32),
        savings_percent: Some(100.0),
        confidence: 0.9,
        risk: 1,
        reason: "daily average CPU 1.2% on 14 of 14 days".into(),
        alternatives: vec![],
        dependencies: vec![],
        dependency_details: Vec::new(),
        utilization_score: Some(2),
        threshold_version: 0,
        created_at: now,
    }
}
