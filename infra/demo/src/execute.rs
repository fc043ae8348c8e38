//! The end of `make demo`: the lowest-risk recommendation that AWS can carry
//! out is approved and executed through the REST API (the api function
//! behind the local REST gateway, with a bearer token as a browser would
//! send), the processor runs the execution job from SQS, and the resource's
//! state is read back from the emulator before and after.

use chrono::Utc;
use finops_local::event_source::EventSource;
use finops_local::LocalStack;
use serde_json::{json, Value};
use shared::auth::LocalClaims;
use shared::config::Env;
use shared::domain::execution::{plan, PlanOptions, ResourceState};
use shared::domain::{Action, Recommendation, Role};
use shared::execution::Target;
use std::sync::Arc;

/// The demo's own signing key; it never leaves this process.
const SECRET: &str = "finops-demo-local-signing-key-0123456789";

fn describe(state: &Option<ResourceState>) -> String {
    match state {
        None => "gone".into(),
        Some(s) => s
            .snapshot()
            .iter()
            .map(|(f, v)| format!("{}={v}", f.as_str()))
            .collect::<Vec<_>>()
            .join(", "),
    }
}

struct Rest {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Rest {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(u16, Value), String> {
        let mut req = self
            .http
            .request(method, format!("{}/api{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let body = resp.json().await.unwrap_or(Value::Null);
        Ok((status, body))
    }
}

pub async fn approve_and_execute(
    aws: &aws_config::SdkConfig,
    stack: &LocalStack,
    processor: &processor::Processor,
    source: &EventSource,
    recs: &[Recommendation],
) -> Result<(), String> {
    let mut vars = stack.function_env("ApiFunction");
    vars.insert("AUTH_ISSUER".into(), "finops-demo".into());
    vars.insert("AUTH_AUDIENCE".into(), "finops-lambda".into());
    vars.insert("AUTH_HS256_SECRET".into(), SECRET.into());
    vars.entry("PAGE_TOKEN_SECRET".into())
        .or_insert_with(|| SECRET.into());
    let config = api::Config::from_env(&Env::of(vars)).map_err(|e| e.to_string())?;
    let app = Arc::new(api::App::new(
        config,
        aws,
        Box::new(shared::notify::LogNotifier),
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let base = format!(
        "http://{}",
        listener.local_addr().map_err(|e| e.to_string())?
    );
    let served = app.clone();
    tokio::spawn(finops_local::rest::serve_rest(listener, move |req| {
        let app = served.clone();
        async move { api::handle(&app, req).await }
    }));
    let token = LocalClaims::new(
        &app.config.auth,
        "demo-approver",
        &[Role::Approver],
        Utc::now(),
        chrono::Duration::hours(1),
    )
    .sign_hs256(SECRET.as_bytes())
    .map_err(|e| e.to_string())?;
    let rest = Rest {
        base,
        token,
        http: reqwest::Client::new(),
    };

    let mut candidates: Vec<&Recommendation> = recs
        .iter()
        .filter(|r| r.action != Action::InvestigateErrors)
        .collect();
    candidates.sort_by(|a, b| {
        a.risk.cmp(&b.risk).then(
            b.monthly_savings_usd
                .unwrap_or(0.0)
                .total_cmp(&a.monthly_savings_usd.unwrap_or(0.0)),
        )
    });
    for rec in candidates {
        let target = Target {
            service: rec.service,
            resource_id: rec.resource_id.clone(),
            region: rec.region.clone(),
            account_id: rec.account_id.clone(),
        };
        let Ok(Some(pre)) = processor.actuator.read_state(&target).await else {
            continue;
        };
        if plan("demo", rec, &pre, PlanOptions::default()).is_err() {
            continue;
        }
        let (_, page) = rest
            .call(
                reqwest::Method::GET,
                &format!(
                    "/approval-requests?status=pending&resourceId={}",
                    rec.resource_id
                ),
                None,
            )
            .await?;
        let Some(request) = page["items"].as_array().and_then(|items| {
            items
                .iter()
                .find(|i| i["recommendation"]["action"] == rec.action.as_str())
        }) else {
            continue;
        };
        let id = request["id"].as_str().unwrap_or_default().to_string();
        println!(
            "\nExecuting the lowest-risk recommendation through the REST API: {} {} {} (risk {}, {} a month)",
            rec.action.as_str(),
            rec.service,
            rec.resource_id,
            rec.risk,
            rec.monthly_savings_usd
                .map_or("no saving".into(), |s| format!("USD {s:.2}"))
        );
        let before = Some(pre);
        println!("  before (read from the emulator): {}", describe(&before));
        let (status, body) = rest
            .call(
                reqwest::Method::POST,
                &format!("/approval-requests/{id}/approve"),
                Some(json!({ "reason": "make demo: lowest risk" })),
            )
            .await?;
        if status != 200 {
            return Err(format!("approve answered {status}: {body}"));
        }
        let (status, body) = rest
            .call(
                reqwest::Method::POST,
                &format!("/approval-requests/{id}/execute"),
                Some(json!({})),
            )
            .await?;
        if status != 202 {
            return Err(format!("execute answered {status}: {body}"));
        }
        let job_id = body["jobId"].as_str().unwrap_or_default().to_string();
        println!("  POST /approval-requests/{id}/execute -> 202, job {job_id}");
        let started = std::time::Instant::now();
        let job = loop {
            let (_, job) = rest
                .call(reqwest::Method::GET, &format!("/jobs/{job_id}"), None)
                .await?;
            if matches!(job["status"].as_str(), Some("succeeded" | "failed")) {
                break job;
            }
            if started.elapsed() > std::time::Duration::from_secs(120) {
                return Err("the execution did not finish within 2 minutes".into());
            }
            let batch = source.receive().await?;
            if batch.is_empty() {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
            let response = processor::handle(processor, batch.event.clone(), Utc::now()).await;
            source.settle(&batch, &response, false).await?;
        };
        let after = processor
            .actuator
            .read_state(&target)
            .await
            .map_err(|e| e.to_string())?;
        println!(
            "  job {} after {:.1} s: {}",
            job["status"].as_str().unwrap_or_default(),
            started.elapsed().as_secs_f64(),
            job["result"]["outcome"]
                .as_str()
                .or(job["error"].as_str())
                .unwrap_or_default()
        );
        println!("  after  (read from the emulator): {}", describe(&after));
        let (_, req) = rest
            .call(
                reqwest::Method::GET,
                &format!("/approval-requests/{id}"),
                None,
            )
            .await?;
        println!(
            "  request {id} is {}",
            req["request"]["status"].as_str().unwrap_or_default()
        );
        return if job["status"] == "succeeded" {
            Ok(())
        } else {
            Err(format!("the execution failed: {}", job["error"]))
        };
    }
    Err("no recommendation of this cycle can be carried out through the AWS APIs".into())
}
