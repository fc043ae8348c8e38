//! Execution jobs: the processor is the one function that holds the SDKs of
//! the services an execution changes, so it also carries out what was
//! approved (ARCHITECTURE.md, "Where executions run").

use crate::Processor;
use chrono::{DateTime, Utc};
use shared::config::{ConfigError, Env};
use shared::domain::execution::{ApplyAt, Breaker, ChangeCap, PlanOptions, Schedule, Window};
use shared::domain::JobMessage;
use shared::execution::job::{run_execution_job, Ran};
use shared::execution::{Deps, Settings};

/// SQS holds a message back at most this long; a longer deferral comes
/// back, finds the cap still closed and is sent again.
const MAX_DELAY_SECONDS: i64 = 900;

/// The execution rules from the environment: EXECUTION_WINDOWS (windows
/// separated by `;`, e.g. `Mon-Fri 22:00-06:00 Europe/Paris`; empty means
/// always), CHANGES_PER_HOUR, CHANGES_PER_ACCOUNT_PER_HOUR,
/// BREAKER_FAILURES, BREAKER_COOL_DOWN_MINUTES, EXCLUDE_TAG_KEY,
/// WINDOW_TAG_KEY and RDS_APPLY_AT (`now`, the default, or
/// `maintenance_window`: when a DB class change takes effect).
pub fn settings_from_env(env: &Env) -> Result<Settings, ConfigError> {
    let d = Settings::default();
    let schedule = match env.get("EXECUTION_WINDOWS") {
        None => Schedule::default(),
        Some(text) => Schedule(
            text.split(';')
                .map(str::trim)
                .filter(|w| !w.is_empty())
                .map(|w| {
                    w.parse::<Window>()
                        .map_err(|e| ConfigError::Rule(format!("EXECUTION_WINDOWS: {e}")))
                })
                .collect::<Result<_, _>>()?,
        ),
    };
    Ok(Settings {
        cap: ChangeCap {
            per_hour: env.positive("CHANGES_PER_HOUR", d.cap.per_hour, 100_000)?,
            per_account_per_hour: env.positive(
                "CHANGES_PER_ACCOUNT_PER_HOUR",
                d.cap.per_account_per_hour,
                100_000,
            )?,
        },
        breaker: Breaker {
            threshold: env.positive("BREAKER_FAILURES", d.breaker.threshold, 1_000)?,
            cool_down_minutes: env.positive(
                "BREAKER_COOL_DOWN_MINUTES",
                d.breaker.cool_down_minutes,
                7 * 24 * 60,
            )?,
        },
        schedule,
        exclusion_tag: env.get("EXCLUDE_TAG_KEY").unwrap_or(d.exclusion_tag),
        window_tag: env.get("WINDOW_TAG_KEY").unwrap_or(d.window_tag),
        plan: PlanOptions {
            rds_apply_at: match env.get("RDS_APPLY_AT").as_deref() {
                None | Some("now") => ApplyAt::Now,
                Some("maintenance_window") => ApplyAt::MaintenanceWindow,
                Some(other) => {
                    return Err(ConfigError::invalid(
                        "RDS_APPLY_AT",
                        "now or maintenance_window",
                        other,
                    ))
                }
            },
        },
        step_lease: d.step_lease,
    })
}

/// One delivery of an execution job; `Err` lets SQS deliver it again.
pub async fn handle(
    p: &Processor,
    message: &JobMessage,
    receive_count: u32,
    now: DateTime<Utc>,
) -> Result<String, String> {
    let deps = Deps {
        approvals: &p.approvals,
        audit: &p.audit,
        executions: &p.executions,
        actuator: p.actuator.as_ref(),
        notifier: p.notifier.as_ref(),
    };
    let last = receive_count >= p.config.cycle.max_receives;
    let ran = run_execution_job(
        &p.jobs,
        &deps,
        p.notifier.as_ref(),
        &p.config.execution,
        &message.job_id,
        last,
        now,
    )
    .await
    .map_err(|e| e.to_string())?;
    match ran {
        Ran::Finished { status, summary } => {
            Ok(format!("execution {}: {summary}", status.as_str()))
        }
        Ran::Duplicate => Ok("duplicate delivery".into()),
        Ran::Deferred { until } => {
            let delay = (until - now).num_seconds().clamp(1, MAX_DELAY_SECONDS);
            p.queue
                .send_delayed(message, delay as i32)
                .await
                .map_err(|e| e.to_string())?;
            Ok(format!("deferred until {until}, sent again in {delay} s"))
        }
        Ran::Busy => Err("another worker holds a step of this execution".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env::of(pairs.iter().copied())
    }

    #[test]
    fn the_rules_come_from_the_environment_and_bad_values_are_refused() {
        let s = settings_from_env(&env(&[
            (
                "EXECUTION_WINDOWS",
                "Mon-Fri 22:00-06:00 Europe/Paris; Sat 00:00-23:59 UTC",
            ),
            ("CHANGES_PER_HOUR", "5"),
            ("CHANGES_PER_ACCOUNT_PER_HOUR", "2"),
            ("BREAKER_FAILURES", "1"),
            ("RDS_APPLY_AT", "maintenance_window"),
        ]))
        .unwrap();
        assert_eq!(s.schedule.0.len(), 2);
        assert_eq!((s.cap.per_hour, s.cap.per_account_per_hour), (5, 2));
        assert_eq!(s.breaker.threshold, 1);
        assert_eq!(s.plan.rds_apply_at, ApplyAt::MaintenanceWindow);
        // Empty values (the template's defaults) are the defaults.
        let d =
            settings_from_env(&env(&[("EXECUTION_WINDOWS", ""), ("RDS_APPLY_AT", "")])).unwrap();
        assert!(d.schedule.0.is_empty());
        assert_eq!(d.plan.rds_apply_at, ApplyAt::Now);
        for (key, bad) in [
            ("RDS_APPLY_AT", "later"),
            ("CHANGES_PER_HOUR", "0"),
            ("EXECUTION_WINDOWS", "whenever"),
        ] {
            let err = settings_from_env(&env(&[(key, bad)])).unwrap_err();
            assert!(err.to_string().contains(key), "{key}: {err}");
        }
    }
}
