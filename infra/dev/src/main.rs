//! `make dev`: the whole system on loopback, no AWS account and no Docker.
//! See docs/local-stack.md.

use finops_dev::{random_secret, Dev, Env, Seed, Settings};
use finops_local::gateway::GatewayConfig;
use finops_local::{Emulator, LocalStack, Template};
use shared::domain::Role;
use std::net::SocketAddr;
use std::process::ExitCode;

fn port(env: &Env, var: &str, default: u16) -> Result<u16, String> {
    env.positive(var, default, u16::MAX)
        .map_err(|e| e.to_string())
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,finops_dev=info")),
        )
        .with_target(false)
        .init();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("make dev failed: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), String> {
    let env = Env::process();
    let emulator_port = port(&env, "FINOPS_EMULATOR_PORT", 4566)?;
    let rest_port = port(&env, "FINOPS_REST_PORT", 3000)?;
    let ws_port = port(&env, "FINOPS_WS_PORT", 3001)?;
    let seed = match env.get("SEED").unwrap_or_default().as_str() {
        "" | "demo" => Seed::Demo,
        "none" => Seed::None,
        other => return Err(format!("SEED must be 'demo' or 'none', got '{other}'")),
    };
    let auth_secret = env.get("AUTH_HS256_SECRET").unwrap_or_else(random_secret);
    // The dashboard `make bootstrap` built (FINOPS_WEB_DIR to serve another).
    let web = env
        .get("FINOPS_WEB_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| finops_local::repo_root().join("web/dist"));
    let template = Template::load().map_err(|e| e.to_string())?;
    let expression = env
        .get("SCHEDULE_EXPRESSION")
        .or_else(|| template.parameter_default("ScheduleExpression"))
        .ok_or("template.yaml has no ScheduleExpression default; set SCHEDULE_EXPRESSION")?;
    let every = finops_local::schedule::parse_rate(&expression)?;

    println!("Starting the AWS emulator on 127.0.0.1:{emulator_port} ...");
    let emulator = Emulator::start_on(emulator_port)
        .map_err(|e| format!("{e} (is port {emulator_port} in use? set FINOPS_EMULATOR_PORT)"))?;
    // The functions find AWS the standard way, as they would in Lambda.
    std::env::set_var("AWS_ENDPOINT_URL", &emulator.endpoint);
    std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
    std::env::set_var("AWS_REGION", "us-east-1");
    let aws = shared::config::load_sdk_config().await;
    let stack = LocalStack::create(&aws, &emulator.endpoint, &template, "finops")
        .await
        .map_err(|e| e.to_string())?;
    println!("Created the tables and queues of template.yaml (prefix 'finops-').");
    if matches!(seed, Seed::Demo) {
        println!("Seeding the demo estate (SEED=none to skip) ...");
    }

    let settings = Settings {
        rest: SocketAddr::from(([127, 0, 0, 1], rest_port)),
        ws: SocketAddr::from(([127, 0, 0, 1], ws_port)),
        seed,
        schedule: Some(every),
        auth_secret,
        gateway: GatewayConfig::default(),
        poll_wait_seconds: 20,
        pollers: 2,
        web: Some(web.clone()),
        // Unset: none; the dashboard's benchmark sets 10,000.
        bench_requests: env
            .positive::<u32>("FINOPS_BENCH_REQUESTS", 0, 100_000)
            .map_err(|e| e.to_string())? as usize,
    };
    let dev = Dev::start(stack, settings, |g, _| g).await?;

    let ws = dev.ws_url();
    println!();
    println!("finops-lambda is running locally.");
    if web.join("index.html").is_file() {
        println!(
            "  Dashboard          {}/   (sign in with a role)",
            dev.rest_url()
        );
    } else {
        println!(
            "  Dashboard          not built ({} has no index.html; run make bootstrap)",
            web.display()
        );
    }
    println!(
        "  REST API           {}/api   (try {}/api/health)",
        dev.rest_url(),
        dev.rest_url()
    );
    println!("  WebSocket          {ws}/?token=<token>   (or the token as Sec-WebSocket-Protocol)");
    println!(
        "  @connections API   http://{}/@connections/{{connectionId}}",
        dev.gateway.addr()
    );
    println!(
        "  AWS emulator       {}   (AWS_ENDPOINT_URL)",
        emulator.endpoint
    );
    println!("  Schedule           {expression} -> scheduler (fired once now)");
    println!(
        "  SQS event source   {} -> processor",
        dev.stack.queue_url("JobsQueue")
    );
    match &dev.seeded {
        Some(s) => println!(
            "  Demo estate        {} resources over {} services, {} metric points (14 days, hourly), 90 days of daily costs",
            s.resources, s.services, s.points
        ),
        None => println!("  Demo estate        none (SEED=none)"),
    }
    println!();
    println!(
        "Tokens (HS256, issuer {}, audience {}, valid 12 h; AUTH_HS256_SECRET={}):",
        finops_dev::LOCAL_ISSUER,
        finops_dev::LOCAL_AUDIENCE,
        dev.auth_secret
    );
    let mut admin = String::new();
    for (name, role) in [
        ("viewer", Role::Viewer),
        ("operator", Role::Operator),
        ("approver", Role::Approver),
        ("admin", Role::Admin),
    ] {
        let token = dev.token(
            &format!("local-{name}"),
            &[role],
            chrono::Duration::hours(12),
        );
        println!("  {name:<9} {token}");
        if role == Role::Admin {
            admin = token;
        }
    }
    println!();
    println!("Try it:");
    println!(
        "  curl -H 'Authorization: Bearer {admin}' {}/api/recommendations",
        dev.rest_url()
    );
    println!("  websocat '{ws}/?token={admin}'");
    println!(r#"    {{"action":"subscribe","topics":["jobs","approvals"]}}"#);
    println!(r#"    {{"action":"runCycle","requestId":"r1"}}"#);
    println!();
    println!("Ctrl-C stops everything.");

    tokio::signal::ctrl_c()
        .await
        .map_err(|e| format!("waiting for Ctrl-C: {e}"))?;
    println!("\nStopping ...");
    dev.shutdown().await;
    drop(emulator);
    Ok(())
}
