//! Execution jobs: the processor is the one function that holds the SDKs of
//! the services an execution changes, so it also carries out what was
//! approved (ARCHITECTURE.md, "Where executions run").

use crate::Processor;
use chrono::{DateTime, Utc};
use shared::config::{ConfigError, Env};
use shared::domain::execution::{Breaker, ChangeCap, Schedule, Window};
use shared::domain::JobMessage;
use shared::execution::job::{run_execution_job, Ran};
use shared::execution::{Deps, Settings};

/// SQS holds a message back at most this long; a longer deferral comes
/// back, finds the cap still closed and is sent again.
const MAX_DELAY_SECONDS: i64 = 900;

/// The execution rules from the environment: EXECUTION_WINDOWS (windows
/// separated by `;`, e.g. `Mon-Fri 22:00-06:00 Europe/Paris`; empty means
/// always), CHANGES_PER_HOUR, CHANGES_PER_ACCOUNT_PER_HOUR,
/// BREAKER_FAILURES, BREAKER_COOL_DOWN_MINUTES, EXCLUDE_TAG_KEY and
/// WINDOW_TAG_KEY.
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
        plan: d.plan,
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
