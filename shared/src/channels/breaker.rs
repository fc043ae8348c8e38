//! A circuit breaker for an HTTP endpoint: after `failure_threshold`
//! consecutive failed calls it opens and refuses calls for `cooldown`, then
//! lets exactly one trial call through (half-open); the trial's outcome
//! closes it again or re-opens it for another cooldown.
//!
//! The clock is a parameter, so the state machine is tested without sleeping.

use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    pub failure_threshold: u32,
    pub cooldown: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            failure_threshold: 5,
            cooldown: Duration::from_secs(60),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls go through; `failures` consecutive ones have failed.
    Closed { failures: u32 },
    /// No calls until `until`.
    Open { until: Instant },
    /// The cooldown is over; one trial call is (or may be) in flight.
    HalfOpen { trial_in_flight: bool },
}

#[derive(Debug, Clone)]
pub struct Breaker {
    config: BreakerConfig,
    state: BreakerState,
}

impl Breaker {
    pub fn new(config: BreakerConfig) -> Breaker {
        Breaker {
            config: BreakerConfig {
                failure_threshold: config.failure_threshold.max(1),
                ..config
            },
            state: BreakerState::Closed { failures: 0 },
        }
    }

    pub fn state(&self) -> BreakerState {
        self.state
    }

    /// Whether a call may be made now. A `true` in half-open state reserves
    /// the single trial call; its outcome must be reported.
    pub fn try_acquire(&mut self, now: Instant) -> bool {
        match self.state {
            BreakerState::Closed { .. } => true,
            BreakerState::Open { until } if now >= until => {
                self.state = BreakerState::HalfOpen {
                    trial_in_flight: true,
                };
                true
            }
            BreakerState::Open { .. } => false,
            BreakerState::HalfOpen { trial_in_flight } => {
                if trial_in_flight {
                    false
                } else {
                    self.state = BreakerState::HalfOpen {
                        trial_in_flight: true,
                    };
                    true
                }
            }
        }
    }

    pub fn on_success(&mut self) {
        self.state = BreakerState::Closed { failures: 0 };
    }

    pub fn on_failure(&mut self, now: Instant) {
        self.state = match self.state {
            BreakerState::Closed { failures } if failures + 1 < self.config.failure_threshold => {
                BreakerState::Closed {
                    failures: failures + 1,
                }
            }
            // The threshold reached, or the half-open trial failed.
            BreakerState::Closed { .. } | BreakerState::HalfOpen { .. } => BreakerState::Open {
                until: now + self.config.cooldown,
            },
            // A call that started before the breaker opened: already open.
            open @ BreakerState::Open { .. } => open,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cfg(threshold: u32, cooldown_ms: u64) -> BreakerConfig {
        BreakerConfig {
            failure_threshold: threshold,
            cooldown: Duration::from_millis(cooldown_ms),
        }
    }

    #[test]
    fn opens_after_the_threshold_then_half_opens_after_the_cooldown() {
        let t0 = Instant::now();
        let mut b = Breaker::new(cfg(3, 1000));
        for _ in 0..2 {
            assert!(b.try_acquire(t0));
            b.on_failure(t0);
        }
        assert_eq!(b.state(), BreakerState::Closed { failures: 2 });
        assert!(b.try_acquire(t0));
        b.on_failure(t0);
        assert!(matches!(b.state(), BreakerState::Open { .. }));
        assert!(!b.try_acquire(t0 + Duration::from_millis(999)));
        // One trial after the cooldown, and only one.
        assert!(b.try_acquire(t0 + Duration::from_millis(1000)));
        assert!(!b.try_acquire(t0 + Duration::from_millis(1001)));
        b.on_success();
        assert_eq!(b.state(), BreakerState::Closed { failures: 0 });
        assert!(b.try_acquire(t0 + Duration::from_millis(1002)));
    }

    #[test]
    fn a_failed_trial_reopens_for_a_full_cooldown() {
        let t0 = Instant::now();
        let mut b = Breaker::new(cfg(1, 100));
        assert!(b.try_acquire(t0));
        b.on_failure(t0);
        let t1 = t0 + Duration::from_millis(150);
        assert!(b.try_acquire(t1));
        b.on_failure(t1);
        assert_eq!(
            b.state(),
            BreakerState::Open {
                until: t1 + Duration::from_millis(100)
            }
        );
        assert!(!b.try_acquire(t1 + Duration::from_millis(99)));
        assert!(b.try_acquire(t1 + Duration::from_millis(100)));
    }

    #[test]
    fn a_success_resets_the_count_of_consecutive_failures() {
        let t0 = Instant::now();
        let mut b = Breaker::new(cfg(2, 100));
        b.on_failure(t0);
        b.on_success();
        b.on_failure(t0);
        assert_eq!(b.state(), BreakerState::Closed { failures: 1 });
    }

    #[derive(Debug, Clone)]
    enum Op {
        Call { ok: bool },
        Wait(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            any::<bool>().prop_map(|ok| Op::Call { ok }),
            (0u64..300).prop_map(Op::Wait),
        ]
    }

    proptest! {
        /// Against a simple model: the breaker lets a call through exactly
        /// when the model says so, and never during a cooldown.
        #[test]
        fn matches_the_model(threshold in 1u32..6, cooldown in 1u64..200, ops in proptest::collection::vec(op(), 0..80)) {
            let t0 = Instant::now();
            let mut b = Breaker::new(cfg(threshold, cooldown));
            let mut now_ms = 0u64;
            // Model: consecutive failures, and when the cooldown ends (if open).
            let mut failures = 0u32;
            let mut open_until: Option<u64> = None;
            for op in ops {
                match op {
                    Op::Wait(ms) => now_ms += ms,
                    Op::Call { ok } => {
                        let now = t0 + Duration::from_millis(now_ms);
                        let expect_allowed = open_until.is_none_or(|u| now_ms >= u);
                        let allowed = b.try_acquire(now);
                        prop_assert_eq!(allowed, expect_allowed);
                        if !allowed {
                            let open = matches!(b.state(), BreakerState::Open { .. });
                            prop_assert!(open);
                            continue;
                        }
                        let trial = open_until.is_some();
                        if trial {
                            // Nobody else gets through while the trial runs.
                            prop_assert!(!b.try_acquire(now));
                        }
                        if ok {
                            b.on_success();
                            failures = 0;
                            open_until = None;
                        } else {
                            b.on_failure(now);
                            failures += 1;
                            if trial || failures >= threshold {
                                open_until = Some(now_ms + cooldown);
                                failures = 0;
                            }
                        }
                    }
                }
            }
        }
    }
}
