//! The EventBridge schedule, locally: a "Scheduled Event" at the rate of the
//! template's `ScheduleExpression`, shaped as EventBridge delivers it (the
//! rule ARN in `resources`, the fire time in `time`), handed to a handler.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use chrono::{DateTime, SubsecRound, Utc};
use std::future::Future;
use std::time::Duration;
use tokio::sync::watch;

/// The rule ARN local events name: the template's logical ids, as SAM
/// would name the rule (`<stack>-<Function><Event>-<suffix>`).
pub const LOCAL_RULE_ARN: &str =
    "arn:aws:events:us-east-1:123456789012:rule/finops-local-SchedulerFunctionSchedule";

/// Parses an EventBridge `rate(...)` expression. `cron(...)` is refused with
/// a clear message rather than run at a guessed rate.
pub fn parse_rate(expression: &str) -> Result<Duration, String> {
    let e = expression.trim();
    let inner = e
        .strip_prefix("rate(")
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| {
            format!(
                "schedule expression '{e}': only rate(N unit) runs locally; \
                 set SCHEDULE_EXPRESSION to e.g. 'rate(1 hour)'"
            )
        })?;
    let mut parts = inner.split_whitespace();
    let (Some(n), Some(unit), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(format!("schedule expression '{e}': expected rate(N unit)"));
    };
    let n: u64 = n
        .parse()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("schedule expression '{e}': N must be a positive integer"))?;
    // EventBridge insists on the singular for 1 and the plural otherwise.
    let seconds = match (unit, n == 1) {
        ("second", true) | ("seconds", false) => 1,
        ("minute", true) | ("minutes", false) => 60,
        ("hour", true) | ("hours", false) => 3600,
        ("day", true) | ("days", false) => 86_400,
        _ => {
            return Err(format!(
                "schedule expression '{e}': unit must be minute(s), hour(s) or day(s), \
                 singular for 1"
            ))
        }
    };
    Ok(Duration::from_secs(n * seconds))
}

/// The event EventBridge sends when the rule fires at `time`.
pub fn scheduled_event(rule_arn: &str, time: DateTime<Utc>) -> EventBridgeEvent {
    let mut event = EventBridgeEvent::default();
    event.version = Some("0".into());
    event.id = Some(uuid::Uuid::new_v4().to_string());
    event.detail_type = "Scheduled Event".into();
    event.source = "aws.events".into();
    event.account = Some("123456789012".into());
    event.time = Some(time.trunc_subsecs(0));
    event.region = Some("us-east-1".into());
    event.resources = Some(vec![rule_arn.to_string()]);
    event.detail = serde_json::json!({});
    event
}

/// Fires `handler` with a scheduled event once at start (as if the rule had
/// just been created and caught up) and then every `every`, until `stop`.
pub async fn run<F, Fut>(
    every: Duration,
    rule_arn: String,
    mut stop: watch::Receiver<bool>,
    handler: F,
) where
    F: Fn(EventBridgeEvent) -> Fut,
    Fut: Future<Output = ()>,
{
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = ticks.tick() => handler(scheduled_event(&rule_arn, Utc::now())).await,
            _ = crate::gateway::stopped(&mut stop) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_as_eventbridge_writes_them() {
        assert_eq!(parse_rate("rate(1 hour)"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_rate("rate(5 minutes)"), Ok(Duration::from_secs(300)));
        assert_eq!(
            parse_rate(" rate(2 days) "),
            Ok(Duration::from_secs(172_800))
        );
        assert!(parse_rate("rate(1 hours)").is_err());
        assert!(parse_rate("rate(0 minutes)").is_err());
        assert!(parse_rate("cron(0 * * * ? *)")
            .unwrap_err()
            .contains("only rate"));
    }

    #[test]
    fn the_event_has_the_fixture_shape() {
        let fixture: serde_json::Value = serde_json::from_str(include_str!(
            "../../../events/scheduler/scheduled-event.json"
        ))
        .unwrap();
        let time = DateTime::parse_from_rfc3339("2026-11-23T10:00:00.250Z")
            .unwrap()
            .with_timezone(&Utc);
        let ours = serde_json::to_value(scheduled_event(LOCAL_RULE_ARN, time)).unwrap();
        let keys = |v: &serde_json::Value| {
            let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
            k.sort();
            k
        };
        assert_eq!(keys(&ours), keys(&fixture));
        assert_eq!(ours["detail-type"], "Scheduled Event");
        assert_eq!(ours["time"], "2026-11-23T10:00:00Z");
        assert_eq!(ours["resources"][0], LOCAL_RULE_ARN);
    }
}
