//! Fault injection for tests, as an SDK interceptor: a share of the calls a
//! client makes get a 503 (or a throttling 400) back instead of AWS's answer.
//!
//! The fault is applied after the request was transmitted and the emulator
//! acted on it: the caller sees a failure for a write that happened. That is
//! the harsh case for idempotency (the SDK's retry repeats a write that had
//! already landed), and the one AWS produces when a response is lost.

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeDeserializationInterceptorContextMut;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::ConfigBag;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Fails about `percent` % of attempts, deterministically from a seed, so a
/// failing run can be replayed. Clones share their counters.
#[derive(Debug, Clone)]
pub struct FaultInjector {
    percent: u64,
    seed: u64,
    attempts: Arc<AtomicU64>,
    injected: Arc<AtomicU64>,
}

impl FaultInjector {
    pub fn new(percent: u64, seed: u64) -> Self {
        FaultInjector {
            percent: percent.min(100),
            seed,
            attempts: Arc::new(AtomicU64::new(0)),
            injected: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Attempts seen and faults injected so far.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.attempts.load(Ordering::Relaxed),
            self.injected.load(Ordering::Relaxed),
        )
    }

    fn roll(&self, n: u64) -> u64 {
        // SplitMix64: a well-spread value per attempt number.
        let mut z = n
            .wrapping_add(self.seed)
            .wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % 100
    }
}

impl Intercept for FaultInjector {
    fn name(&self) -> &'static str {
        "FaultInjector"
    }

    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // CloudWatch speaks the Query protocol (XML errors); the others JSON.
        let xml = cfg
            .load::<Metadata>()
            .is_some_and(|m| m.service().eq_ignore_ascii_case("cloudwatch"));
        let n = self.attempts.fetch_add(1, Ordering::Relaxed);
        let roll = self.roll(n);
        if roll >= self.percent {
            return Ok(());
        }
        self.injected.fetch_add(1, Ordering::Relaxed);
        let response = context.response_mut();
        // Half throttling (a 400 the SDK's classifier knows by its code),
        // half a plain service error.
        if roll.is_multiple_of(2) {
            *response.status_mut() = StatusCode::try_from(400u16)?;
            *response.body_mut() = SdkBody::from(if xml {
                "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code>\
                 <Message>injected: rate exceeded</Message></Error></ErrorResponse>"
            } else {
                r#"{"__type":"ThrottlingException","message":"injected: rate exceeded"}"#
            });
            response
                .headers_mut()
                .insert("x-amzn-query-error", "ThrottlingException;Sender");
        } else {
            *response.status_mut() = StatusCode::try_from(503u16)?;
            *response.body_mut() = SdkBody::from(
                r#"{"__type":"ServiceUnavailable","message":"injected: unavailable"}"#,
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_share_is_near_what_was_asked_and_replayable() {
        let f = FaultInjector::new(10, 7);
        let hits = (0..10_000).filter(|n| f.roll(*n) < 10).count();
        assert!((800..1200).contains(&hits), "{hits}");
        let g = FaultInjector::new(10, 7);
        assert!((0..100).all(|n| f.roll(n) == g.roll(n)));
    }
}
