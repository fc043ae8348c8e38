//! The sample events of events/<function>/ (used by the handler tests and by
//! `sam local invoke -e`) are in exactly the shape AWS sends: every function
//! under functions/ has some, and each one deserialises as that function's
//! aws_lambda_events type without a member the type does not know (a
//! misspelt `messageID` would otherwise vanish silently).

use aws_lambda_events::apigw::{ApiGatewayProxyRequest, ApiGatewayWebsocketProxyRequest};
use aws_lambda_events::eventbridge::EventBridgeEvent;
use aws_lambda_events::sqs::SqsEvent;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate lives in the repository")
        .to_path_buf()
}

/// The AWS event type each function receives: the one its `main` gives to
/// `service_fn`. A new function must be added here (the test says so).
fn round_trip(function: &str, event: Value) -> Option<Result<Value, serde_json::Error>> {
    fn via<T: serde::de::DeserializeOwned + serde::Serialize>(
        v: Value,
    ) -> Result<Value, serde_json::Error> {
        serde_json::to_value(serde_json::from_value::<T>(v)?)
    }
    Some(match function {
        "scheduler" => via::<EventBridgeEvent>(event),
        "processor" => via::<SqsEvent>(event),
        "ws-connect" | "ws-disconnect" | "ws-message" => {
            via::<ApiGatewayWebsocketProxyRequest>(event)
        }
        "api" => via::<ApiGatewayProxyRequest>(event),
        _ => return None,
    })
}

/// Every path to a non-null value, member names lower-cased (HTTP header
/// names come back lower-cased from the typed header maps), array indices
/// left out.
fn paths(v: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                paths(v, &format!("{prefix}/{}", k.to_lowercase()), out);
            }
        }
        // Indices are left out: query-string maps come back as lists of
        // values, and a member is a member in any element.
        Value::Array(items) => {
            for v in items {
                paths(v, prefix, out);
            }
        }
        Value::Null => {}
        _ => {
            out.insert(prefix.to_string());
        }
    }
}

/// Members AWS does send that aws_lambda_events does not model (so they
/// cannot come back from the round trip); anything else missing is a mistake.
fn is_known_aws_extra(path: &str) -> bool {
    const EXTRAS: &[&str] = &["/requestcontext/extendedrequestid"];
    EXTRAS
        .iter()
        .any(|e| path == *e || path.starts_with(&format!("{e}/")))
}

fn functions() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(repo().join("functions"))
        .expect("functions/ exists")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("Cargo.toml").is_file())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    names
}

fn events_of(function: &str) -> Vec<PathBuf> {
    let dir = repo().join("events").join(function);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

#[test]
fn every_function_has_sample_events() {
    let functions = functions();
    assert!(
        functions.iter().any(|f| f == "scheduler"),
        "functions/ lists {functions:?}"
    );
    for f in &functions {
        assert!(
            !events_of(f).is_empty(),
            "events/{f}/ has no sample event (*.json) for functions/{f}"
        );
    }
}

/// The functions, and any events/<name>/ directory besides (a sample set
/// whose function was renamed must not go unchecked).
fn event_sets() -> Vec<String> {
    let mut names = functions();
    if let Ok(rd) = std::fs::read_dir(repo().join("events")) {
        for e in rd.filter_map(|e| e.ok()).filter(|e| e.path().is_dir()) {
            if let Ok(name) = e.file_name().into_string() {
                if !names.contains(&name) {
                    names.push(name);
                }
            }
        }
    }
    names.sort();
    names
}

#[test]
fn every_sample_event_has_the_shape_aws_sends() {
    let (mut checked, mut problems) = (0, Vec::new());
    for f in event_sets() {
        for path in events_of(&f) {
            let name = path.display();
            let text = std::fs::read_to_string(&path).unwrap();
            let original: Value =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name} is not JSON: {e}"));
            let typed = round_trip(&f, original.clone())
                .unwrap_or_else(|| {
                    panic!("no AWS event type is known for events/{f}/: add it to round_trip()")
                })
                .unwrap_or_else(|e| panic!("{name} does not deserialise as {f}'s event: {e}"));
            let (mut want, mut got) = (BTreeSet::new(), BTreeSet::new());
            paths(&original, "", &mut want);
            paths(&typed, "", &mut got);
            let unknown: Vec<_> = want
                .difference(&got)
                .filter(|p| !is_known_aws_extra(p))
                .collect();
            if !unknown.is_empty() {
                problems.push(format!(
                    "{name}: members the AWS event type does not have (misspelt or misplaced): {unknown:?}"
                ));
            }
            checked += 1;
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(checked >= 7, "only {checked} events checked");
}

/// The processor's samples carry what their names say: job messages the
/// processor parses, and a malformed one it must refuse.
#[test]
fn processor_samples_carry_real_job_messages() {
    use shared::domain::JobMessage;
    let read = |n: &str| -> SqsEvent {
        let text = std::fs::read_to_string(repo().join("events/processor").join(n)).unwrap();
        serde_json::from_str(&text).unwrap()
    };
    let body = |e: &SqsEvent, i: usize| e.records[i].body.clone().unwrap();
    let parse = |b: &str| serde_json::from_str::<JobMessage>(b);

    let cycle = read("cycle-message.json");
    assert!(parse(&body(&cycle, 0)).unwrap().shard.is_none());
    let shard = read("shard-message.json");
    let s = parse(&body(&shard, 0)).unwrap().shard.unwrap();
    assert_eq!((s.index, s.of, s.resources.len()), (1, 4, 2));
    let malformed = read("malformed-message.json");
    assert!(parse(&body(&malformed, 0)).is_err());
    let batch = read("batch.json");
    assert_eq!(batch.records.len(), 3);
    let parsed: Vec<bool> = (0..3).map(|i| parse(&body(&batch, i)).is_ok()).collect();
    assert_eq!(parsed, [true, true, false]);
    for e in [&cycle, &shard, &malformed, &batch] {
        for r in &e.records {
            assert_eq!(r.event_source.as_deref(), Some("aws:sqs"));
            assert!(r.attributes.contains_key("ApproximateReceiveCount"));
        }
    }
}
