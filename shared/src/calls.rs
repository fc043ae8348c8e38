//! Counting AWS API calls per service and operation, as an SDK interceptor.
//!
//! Attached to a client's config (`.interceptor(counter.clone())`), a
//! [`CallCounter`] sees every HTTP attempt the SDK makes, whatever code made
//! the call, so benchmarks compare what really went over the wire with the
//! minimum the API limits allow without counting at each call site. Retries
//! are attempts too, and are counted: they cost a request each.

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Calls per `(service, operation)`, e.g. `("DynamoDB", "BatchWriteItem")`.
pub type CallTally = BTreeMap<(String, String), u64>;

/// An interceptor counting HTTP attempts per service and operation. Clones
/// share one tally, so one counter can be attached to several clients.
#[derive(Debug, Clone, Default)]
pub struct CallCounter {
    tally: Arc<Mutex<CallTally>>,
}

impl CallCounter {
    pub fn new() -> Self {
        Self::default()
    }

    /// The calls counted so far.
    pub fn snapshot(&self) -> CallTally {
        self.tally.lock().map(|t| t.clone()).unwrap_or_default()
    }

    /// The calls counted so far to one operation of one service.
    pub fn get(&self, service: &str, operation: &str) -> u64 {
        self.tally
            .lock()
            .ok()
            .and_then(|t| {
                t.get(&(service.to_string(), operation.to_string()))
                    .copied()
            })
            .unwrap_or(0)
    }

    /// Every call counted so far.
    pub fn total(&self) -> u64 {
        self.tally.lock().map(|t| t.values().sum()).unwrap_or(0)
    }

    fn add(&self, service: &str, operation: &str) {
        // A poisoned lock only means another thread panicked mid-increment;
        // the counts are still the best there are.
        let mut tally = match self.tally.lock() {
            Ok(t) => t,
            Err(poisoned) => poisoned.into_inner(),
        };
        *tally
            .entry((service.to_string(), operation.to_string()))
            .or_insert(0) += 1;
    }
}

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "CallCounter"
    }

    // Before transmit runs once per attempt, after signing: exactly the
    // requests that leave the process.
    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        match cfg.load::<Metadata>() {
            Some(m) => self.add(m.service(), m.name()),
            None => self.add("unknown", "unknown"),
        }
        Ok(())
    }
}
