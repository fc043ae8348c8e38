//! The safety checks an execution passes before it changes anything: drift,
//! the exclusion tag, the change cap and the per-account breaker. Pure
//! decisions over what the caller read and counted.

use super::state::{Field, ResourceState, StateSnapshot};
use chrono::{DateTime, Duration, DurationRound, Utc};
use serde::{Deserialize, Serialize};

/// A field whose live value is not the one the recommendation was made on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Drift {
    pub field: Field,
    pub expected: String,
    pub actual: Option<String>,
}

/// Compares the live pre-state with the snapshot the recommendation was
/// made on, over type, size, state and memory; a field the snapshot does not
/// name is not compared. Empty means no drift.
pub fn drift(expected: &StateSnapshot, live: &ResourceState) -> Vec<Drift> {
    let actual = live.snapshot();
    Field::DRIFT
        .into_iter()
        .filter_map(|f| {
            let want = expected.get(&f)?;
            let got = actual.get(&f);
            (got != Some(want)).then(|| Drift {
                field: f,
                expected: want.clone(),
                actual: got.cloned(),
            })
        })
        .collect()
}

/// How many changes may start per clock hour, overall and per account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeCap {
    pub per_hour: u32,
    pub per_account_per_hour: u32,
}

impl Default for ChangeCap {
    fn default() -> Self {
        ChangeCap {
            per_hour: 100,
            per_account_per_hour: 20,
        }
    }
}

/// Changes already started in the current clock hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HourCounts {
    pub total: u32,
    pub account: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "decision",
    rename_all = "snake_case",
    rename_all_fields = "camelCase"
)]
pub enum CapDecision {
    Proceed,
    /// Over a cap: try again when the next hour starts.
    Defer {
        until: DateTime<Utc>,
        per_account: bool,
    },
}

/// The clock hour `now` falls in: the cap's counting bucket.
pub fn hour_of(now: DateTime<Utc>) -> DateTime<Utc> {
    now.duration_trunc(Duration::hours(1)).unwrap_or(now)
}

impl ChangeCap {
    pub fn decide(&self, counts: HourCounts, now: DateTime<Utc>) -> CapDecision {
        let until = hour_of(now) + Duration::hours(1);
        if counts.account >= self.per_account_per_hour {
            CapDecision::Defer {
                until,
                per_account: true,
            }
        } else if counts.total >= self.per_hour {
            CapDecision::Defer {
                until,
                per_account: false,
            }
        } else {
            CapDecision::Proceed
        }
    }
}

/// Stops executing in an account after `threshold` consecutive failures,
/// for `cool_down`; then lets one execution through to probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Breaker {
    pub threshold: u32,
    pub cool_down_minutes: u32,
}

impl Default for Breaker {
    fn default() -> Self {
        Breaker {
            threshold: 3,
            cool_down_minutes: 60,
        }
    }
}

/// An account's failure record, as the executions store keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountHealth {
    pub consecutive_failures: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "decision",
    rename_all = "snake_case",
    rename_all_fields = "camelCase"
)]
pub enum BreakerDecision {
    Closed,
    /// Past the cool-down: one execution may probe the account.
    HalfOpen,
    Open {
        until: DateTime<Utc>,
    },
}

impl Breaker {
    pub fn decide(&self, health: AccountHealth, now: DateTime<Utc>) -> BreakerDecision {
        if health.consecutive_failures < self.threshold {
            return BreakerDecision::Closed;
        }
        let Some(last) = health.last_failure_at else {
            return BreakerDecision::HalfOpen;
        };
        let until = last + Duration::minutes(i64::from(self.cool_down_minutes));
        if now < until {
            BreakerDecision::Open { until }
        } else {
            BreakerDecision::HalfOpen
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::execution::state::tests::ec2;
    use crate::domain::execution::state::Ec2State;
    use proptest::prelude::*;

    #[test]
    fn drift_names_each_differing_field() {
        let live = ec2("i-1", "m5.xlarge", Ec2State::Stopped);
        let expected: StateSnapshot = [
            (Field::Type, "m5.large".to_string()),
            (Field::State, "running".to_string()),
        ]
        .into();
        let d = drift(&expected, &live);
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].field, Field::Type);
        assert_eq!(d[0].actual.as_deref(), Some("m5.xlarge"));
        assert_eq!(d[1].field, Field::State);
        assert!(drift(&live.snapshot(), &live).is_empty());
        // A field the snapshot does not name is not compared.
        assert!(drift(&StateSnapshot::new(), &live).is_empty());
    }

    proptest! {
        #[test]
        fn the_cap_never_lets_a_full_hour_through(
            total in 0u32..300, account in 0u32..300, per_hour in 1u32..200, per_account in 1u32..200, secs in 0i64..86_400,
        ) {
            let cap = ChangeCap { per_hour, per_account_per_hour: per_account };
            let now = DateTime::<Utc>::UNIX_EPOCH + Duration::seconds(1_800_000_000 + secs);
            match cap.decide(HourCounts { total, account }, now) {
                CapDecision::Proceed => prop_assert!(total < per_hour && account < per_account),
                CapDecision::Defer { until, per_account: acc } => {
                    prop_assert!(total >= per_hour || account >= per_account);
                    prop_assert_eq!(acc, account >= per_account);
                    prop_assert!(until > now && until - now <= Duration::hours(1));
                    prop_assert_eq!(until, hour_of(until));
                }
            }
        }

        #[test]
        fn the_breaker_opens_at_the_threshold_and_probes_after_the_cool_down(
            failures in 0u32..10, threshold in 1u32..6, minutes_ago in 0i64..240,
        ) {
            let b = Breaker { threshold, cool_down_minutes: 60 };
            let now = DateTime::<Utc>::UNIX_EPOCH + Duration::days(20_000);
            let health = AccountHealth { consecutive_failures: failures, last_failure_at: Some(now - Duration::minutes(minutes_ago)) };
            let d = b.decide(health, now);
            if failures < threshold {
                prop_assert_eq!(d, BreakerDecision::Closed);
            } else if minutes_ago < 60 {
                let open_later = matches!(d, BreakerDecision::Open { until } if until > now);
                prop_assert!(open_later);
            } else {
                prop_assert_eq!(d, BreakerDecision::HalfOpen);
            }
        }
    }
}
