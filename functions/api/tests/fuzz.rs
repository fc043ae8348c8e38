//! Every REST route under generated input, in-process against the emulator:
//! path parameters, query strings with known and unknown names and
//! adversarial values, JSON bodies of generated shapes, any role. No case
//! may panic or answer 5xx, and every refusal is in the error shape
//! (`Harness::send` checks that on each answer).
//!
//! `FINOPS_FUZZ_CASES` sets the case count (default 200); the run prints
//! cases per second.

#[path = "common/mod.rs"]
mod common;

use common::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::Value;
use shared::domain::Role;

fn adversarial() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("-262143-01-05".to_string()),
        Just("+262142-12-31".to_string()),
        Just("9999-12-31T23:59:59-23:59".to_string()),
        Just("2026-11-23T10:00:00Z".to_string()),
        Just("2026-11-01".to_string()),
        Just("9223372036854775807".to_string()),
        Just("18446744073709551616".to_string()),
        Just("-1".to_string()),
        Just("0".to_string()),
        Just("1e-200".to_string()),
        Just("%zz%00".to_string()),
        Just("ec2".to_string()),
        Just("CPUUtilization".to_string()),
        Just("tag:team".to_string()),
        Just("=v".to_string()),
        Just("x".repeat(600)),
        "[0-9]{1,25}",
        "\\PC{0,40}",
        any::<i64>().prop_map(|n| n.to_string()),
    ]
}

const NAMES: &[&str] = &[
    "limit",
    "nextToken",
    "from",
    "to",
    "start",
    "end",
    "granularity",
    "groupBy",
    "days",
    "metric",
    "resourceId",
    "service",
    "tag",
    "status",
    "actor",
    "action",
    "entityId",
    "zz",
];

fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON numbers are finite", |f| f.is_finite())
            .prop_map(Value::from),
        prop_oneof![
            Just(1e200),
            Just(-1e200),
            Just(1e-200),
            Just(5e-324),
            Just(f64::MAX)
        ]
        .prop_map(Value::from),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        number(),
        adversarial().prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        let key = prop_oneof![
            prop::sample::select(vec![
                "samples",
                "resources",
                "rules",
                "services",
                "dryRun",
                "reason",
                "outcome",
                "details",
                "note",
                "baseVersion",
                "id",
                "service",
                "region",
                "resourceId",
                "metric",
                "timestamp",
                "value",
                "unit",
                "tags",
                "attributes",
                "relations",
                "monthlyCostUsd",
                "memoryMb",
                "conditions",
            ])
            .prop_map(str::to_string),
            "\\PC{0,8}",
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::btree_map(key, inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

#[derive(Debug, Clone)]
struct Case {
    route: usize,
    params: Vec<String>,
    query: Vec<(String, String)>,
    role: Option<Role>,
    body: Option<Value>,
}

fn case() -> impl Strategy<Value = Case> {
    (
        0..api::ROUTES.len(),
        prop::collection::vec(adversarial(), 2),
        prop::collection::vec((prop::sample::select(NAMES.to_vec()), adversarial()), 0..4),
        prop::option::of(prop::sample::select(vec![
            Role::Viewer,
            Role::Operator,
            Role::Approver,
            Role::Admin,
        ])),
        prop::option::of(json_value()),
    )
        .prop_map(|(route, params, query, role, body)| Case {
            route,
            params,
            query: query.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
            role,
            body,
        })
}

fn path_of(c: &Case) -> String {
    let route = &api::ROUTES[c.route];
    let mut params = c.params.iter();
    let segs: Vec<String> = route
        .path
        .split('/')
        .map(|s| {
            if s.starts_with('{') {
                // Path segments arrive percent-encoded, never with a raw '/'.
                let p = params.next().map_or("x", String::as_str);
                url_encode(p)
            } else {
                s.to_string()
            }
        })
        .collect();
    format!("/api{}", segs.join("/"))
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn every_route_answers_every_input_without_a_5xx() {
    let cases = shared::config::Env::process()
        .positive("FINOPS_FUZZ_CASES", 200u32, 10_000_000)
        .expect("FINOPS_FUZZ_CASES");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let h = rt.block_on(harness());
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let started = std::time::Instant::now();
    let by_status = std::cell::RefCell::new(std::collections::BTreeMap::<u16, u32>::new());
    let result = runner.run(&case(), |c| {
        let route = &api::ROUTES[c.route];
        let mut req = Req::new(route.method, &path_of(&c));
        if let Some(role) = c.role {
            req.token(Some(&h.as_role(role)));
        }
        let pairs: Vec<(&str, &str)> = c
            .query
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        req.query(&pairs);
        if let Some(b) = &c.body {
            req.body(b);
        }
        let r = rt.block_on(h.send(&req));
        *by_status.borrow_mut().entry(r.status).or_default() += 1;
        if r.status >= 500 {
            return Err(TestCaseError::fail(format!("{c:?}: {r:?}")));
        }
        Ok(())
    });
    let secs = started.elapsed().as_secs_f64();
    println!(
        "REST fuzz: {cases} cases in {secs:.1} s, {:.0} cases/s; statuses {:?}",
        f64::from(cases) / secs,
        by_status.borrow()
    );
    if let Err(e) = result {
        panic!("{e}");
    }
    // The stack still answers.
    let r = rt.block_on(h.call(Role::Viewer, "GET", "/api/health", &[], None));
    assert_eq!(r.status, 200);
}
