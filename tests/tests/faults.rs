//! Faults of the backing services, end to end through the `make dev` stack
//! on an emulator of the test's own (it is frozen here, so it cannot be the
//! one other tests share).

use finops_dev::{Dev, Seed, Settings};
use finops_local::{Emulator, LocalStack, Template};
use shared::domain::Role;
use std::time::{Duration, Instant};

/// The emulator frozen (SIGSTOP) past the SDK's timeouts: a request made
/// meanwhile is answered, with a 503 and no internals, within the operation
/// timeout instead of hanging; once the emulator resumes, the stack answers
/// again within 5 s.
#[tokio::test]
async fn a_frozen_backend_gets_a_bounded_503_and_the_stack_recovers_on_resume() {
    let emulator = Emulator::start().expect("emulator starts");
    // The production timeouts, scaled down so the test is quick.
    let config = finops_local::sdk_config(&emulator.endpoint)
        .await
        .to_builder()
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .connect_timeout(Duration::from_millis(500))
                .operation_attempt_timeout(Duration::from_millis(800))
                .operation_timeout(Duration::from_millis(2500))
                .build(),
        )
        .build();
    let template = Template::load().unwrap();
    let stack = LocalStack::create(&config, &emulator.endpoint, &template, "frz")
        .await
        .unwrap();
    let dev = Dev::start(stack, Settings::ephemeral(Seed::None), |g, _| g)
        .await
        .unwrap();
    let token = dev.token("vera", &[Role::Viewer], chrono::Duration::hours(1));
    let http = shared::tls::http_client()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let url = format!("{}/api/approval-requests", dev.rest_url());
    let ok = http.get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(ok.status().as_u16(), 200);

    emulator.pause();
    let t = Instant::now();
    let frozen = http.get(&url).bearer_auth(&token).send().await.unwrap();
    let took = t.elapsed();
    let status = frozen.status().as_u16();
    let body = frozen.text().await.unwrap_or_default();
    emulator.resume();
    assert_eq!(status, 503, "{body}");
    assert!(took < Duration::from_secs(6), "answered after {took:?}");
    assert!(body.contains("\"code\""), "{body}");
    for leak in ["dynamodb", "DynamoDB", "Table", "timeout", "dispatch"] {
        assert!(!body.contains(leak), "internals in the body: {body}");
    }

    let t = Instant::now();
    loop {
        let r = http.get(&url).bearer_auth(&token).send().await.unwrap();
        if r.status().as_u16() == 200 {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "still {} after {:?}",
            r.status(),
            t.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    dev.shutdown().await;
}
