//! The contract test: schemathesis (pinned in infra/requirements.txt)
//! fuzzes every operation of openapi.yaml against the REST API served over
//! loopback by the local gateway (`finops_local::rest::serve_rest`), with the
//! function's tables in the emulator. It must find no 5xx and no response
//! that breaks the schema. Bounded: a few examples per operation and a time
//! budget.

mod common;

use common::*;
use finops_local::LocalStack;
use serde_json::{json, Value};
use shared::domain::{transition, ApprovalRequest, Role};
use shared::store::ApprovalStore;
use std::process::Command;
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_errors_and_no_schema_violations() {
    let root = finops_local::repo_root();
    let status = Command::new("bash")
        .arg(root.join("infra/scripts/bootstrap.sh"))
        .status()
        .expect("bootstrap runs");
    assert!(status.success(), "infra/scripts/bootstrap.sh failed");
    let schemathesis = root.join("infra/.venv/bin/schemathesis");

    let (_emulator, stack) = LocalStack::with_own_emulator().await;
    let h = harness_on(stack).await;
    // Something to find: an open approval request and a resource.
    let request = h.open_request("i-contract").await;
    let token = h.token("contract", &[Role::Admin]);
    let app = Arc::new(h.app);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let served = app.clone();
    tokio::spawn(finops_local::rest::serve_rest(listener, move |req| {
        let app = served.clone();
        async move { api::handle(&app, req).await }
    }));

    let max_examples = std::env::var("CONTRACT_MAX_EXAMPLES").unwrap_or_else(|_| "15".into());
    // One worker: with two, a CI run failed inside hypothesis, not on our
    // side ("AST constructor recursion depth mismatch" from ast.parse while
    // it described a lambda). On CPython 3.11 that check reads a counter
    // kept per interpreter, so two threads parsing at once can trip it.
    // --max-time bounds the run either way; one worker only covers fewer
    // examples in it.
    let header = format!("Authorization: Bearer {token}");
    let out = tokio::task::spawn_blocking(move || {
        Command::new(schemathesis)
            .current_dir(&root)
            .args(["run", "openapi.yaml", "--url"])
            .arg(format!("http://127.0.0.1:{port}/api"))
            .args(["--header", &header])
            .args(["--checks", "not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance"])
            .args(["--max-examples", &max_examples, "--max-time", "150", "--workers", "1"])
            .args(["--seed", "20261123", "--generation-database", "none", "--no-color"])
            .env("NO_COLOR", "1")
            .output()
            .expect("schemathesis runs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "schemathesis found problems:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The seeded request is reachable: schemathesis infers links (a listed
    // id into a decision's path) and its stateful phase decides on it. So the
    // check is not "unchanged" but "changed only through the state machine":
    // still stored and served, its snapshot intact, every change a recorded
    // decision by the fuzzer's user, replaying from pending to the status it
    // has now, with one version bump per decision.
    let stored = app
        .approvals
        .get(&request.id)
        .await
        .unwrap()
        .expect("the seeded request is still stored");
    let decisions = app.approvals.decisions(&request.id).await.unwrap();
    let mut get = Req::new("GET", &format!("/api/approval-requests/{}", request.id));
    get.token(Some(&token));
    let resp = api::handle(&app, get.build()).await;
    assert_eq!(
        resp.status().as_u16(),
        200,
        "the seeded request is still served"
    );
    let body: Value = match resp.body() {
        lambda_http::Body::Text(t) => serde_json::from_str(t).unwrap(),
        other => panic!("not a JSON body: {other:?}"),
    };
    assert_eq!(body["request"], json!(stored), "served as stored");
    assert_eq!(body["decisions"], json!(decisions), "served as stored");

    let unchanged = |r: &ApprovalRequest| {
        (
            r.id.clone(),
            json!(r.recommendation),
            r.requested_by.clone(),
            r.cycle_id.clone(),
            r.created_at,
            r.expires_at,
        )
    };
    assert_eq!(
        unchanged(&stored),
        unchanged(&request),
        "the snapshot changed"
    );
    assert_eq!(
        stored.version,
        request.version + decisions.len() as u64,
        "one version per recorded decision: {decisions:?}"
    );
    let mut status = request.status;
    let mut left = decisions.clone();
    while let Some(i) = left.iter().position(|d| d.from == status) {
        let d = left.remove(i);
        assert_eq!(transition(d.from, d.event), Ok(d.to), "{d:?}");
        assert_eq!(d.actor, "contract", "{d:?}");
        status = d.to;
    }
    assert!(
        left.is_empty(),
        "decisions off the chain from {:?}: {left:?}",
        request.status
    );
    assert_eq!(
        stored.status, status,
        "the status is where the decisions lead"
    );
    println!(
        "seeded request: {:?} -> {:?} in {} decision(s)",
        request.status,
        stored.status,
        decisions.len()
    );
}
