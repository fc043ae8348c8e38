//! Every WebSocket action under generated frames, in-process against the
//! emulator: known and unknown actions, fields and values of any JSON
//! shape, raw non-JSON bodies. Every answer must be an `ack`, `pong` or an
//! `error` with a code (never `internal`), and no case may panic.
//!
//! `FINOPS_FUZZ_CASES` sets the case count (default 200); the run prints
//! cases per second.

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use aws_lambda_events::encodings::Body;
use chrono::{DateTime, Duration, Utc};
use finops_local::LocalStack;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{json, Value};
use shared::domain::{Connection, Role};
use shared::dynamo::DynamoConnections;
use shared::store::{ConnectionStore, PageTokenCodec};
use ws_message::{handle, Deps, Env};

fn now() -> DateTime<Utc> {
    "2026-11-23T12:05:00Z".parse().unwrap()
}

fn event() -> ApiGatewayWebsocketProxyRequest {
    let path = format!(
        "{}/../../events/ws-message/subscribe.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn text() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!("-262143-01-05")),
        Just(json!("+262142-12-31")),
        Just(json!("2026-11-01")),
        Just(json!("approvals")),
        Just(json!("resource:i-1")),
        Just(json!("ec2")),
        Just(json!("DAILY")),
        Just(json!("tag:team")),
        Just(json!("x".repeat(700))),
        "\\PC{0,30}".prop_map(Value::from),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        Just(json!(1e200)),
        Just(json!(5e-324)),
        text(),
    ];
    leaf.prop_recursive(3, 40, 30, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..30).prop_map(Value::from),
            prop::collection::btree_map("\\PC{0,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn frame() -> impl Strategy<Value = String> {
    let action = prop_oneof![
        prop::sample::select(vec![
            "subscribe",
            "unsubscribe",
            "runCycle",
            "analyzeCosts",
            "getJob",
            "ping",
            "Ping",
            "",
        ])
        .prop_map(Value::from),
        value(),
    ];
    let field = prop::sample::select(vec![
        "topics",
        "services",
        "dryRun",
        "start",
        "end",
        "granularity",
        "groupBy",
        "jobId",
        "requestId",
        "extra",
    ]);
    let object = (
        prop::option::of(action),
        prop::collection::btree_map(field, value(), 0..4),
    )
        .prop_map(|(action, fields)| {
            let mut m: serde_json::Map<String, Value> = fields
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
            if let Some(a) = action {
                m.insert("action".into(), a);
            }
            Value::Object(m).to_string()
        });
    prop_oneof![8 => object, 1 => "\\PC{0,40}", 1 => value().prop_map(|v| v.to_string())]
}

#[test]
fn every_action_answers_every_frame_with_a_typed_frame() {
    let cases = Env::process()
        .positive("FINOPS_FUZZ_CASES", 200u32, 10_000_000)
        .expect("FINOPS_FUZZ_CASES");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (stack, deps) = rt.block_on(async {
        let stack = LocalStack::isolated().await;
        let config =
            ws_message::Config::from_env(&Env::of(stack.function_env("WsMessageFunction")))
                .unwrap();
        let conns = DynamoConnections::new(
            aws_sdk_dynamodb::Client::new(&stack.config),
            &config.connections_table,
            PageTokenCodec::new(b"fuzz"),
        );
        for (id, role) in [
            ("Conn-Operator1=", Role::Operator),
            ("Conn-Viewer001=", Role::Viewer),
        ] {
            conns
                .put(&Connection {
                    connection_id: id.into(),
                    user_id: "u".into(),
                    roles: vec![role],
                    connected_at: now(),
                    expires_at: now() + Duration::hours(2),
                })
                .await
                .unwrap();
        }
        let deps = Deps::new(&config, &stack.config);
        (stack, deps)
    });
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let started = std::time::Instant::now();
    let conn = prop::sample::select(vec!["Conn-Operator1=", "Conn-Viewer001=", "Conn-Gone0001="]);
    let result = runner.run(&(frame(), conn, 0i64..180), |(body, conn, later)| {
        let mut e = event();
        e.body = Some(body.clone());
        e.request_context.connection_id = Some(conn.to_string());
        let r = rt.block_on(handle(&deps, e, now() + Duration::seconds(later)));
        let text = match &r.body {
            Some(Body::Text(t)) => t.clone(),
            other => return Err(TestCaseError::fail(format!("{body}: {other:?}"))),
        };
        let f: Value = serde_json::from_str(&text)
            .map_err(|e| TestCaseError::fail(format!("{body}: {e}: {text}")))?;
        let ok = r.status_code == 200
            && text.len() < 128 * 1024
            && match f["type"].as_str() {
                Some("ack") | Some("pong") => true,
                Some("error") => f["code"].is_string() && f["code"] != "internal",
                _ => false,
            };
        if !ok {
            return Err(TestCaseError::fail(format!("{body} -> {text}")));
        }
        Ok(())
    });
    let secs = started.elapsed().as_secs_f64();
    println!(
        "WebSocket fuzz: {cases} cases in {secs:.1} s, {:.0} cases/s",
        f64::from(cases) / secs
    );
    drop(stack);
    if let Err(e) = result {
        panic!("{e}");
    }
}
