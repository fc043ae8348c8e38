//! The reason text: the evidence a rule fired on, the action and its saving,
//! the confidence, and values written in their metric's unit.

use super::options::Opt;
use super::rank::Candidate;
use super::MetricTrend;
use crate::analysis::evaluate::{ConditionResult, Ctx, Verdict};
use crate::analysis::metrics::{unit_of, Unit};
use crate::analysis::trend::TrendDirection;
use crate::domain::{Action, Operator, Service};
use std::fmt::Write as _;

pub(super) fn noun(s: Service) -> &'static str {
    match s {
        Service::Ec2 => "instance",
        Service::Ebs => "volume",
        Service::Rds => "DB instance",
        Service::ElastiCache => "cache cluster",
        Service::Lambda => "function",
        Service::Ecs => "service",
        Service::S3 => "bucket",
        Service::DynamoDb => "table",
    }
}

pub(super) fn verb(a: Action) -> &'static str {
    match a {
        Action::Stop => "Stop",
        Action::Terminate => "Terminate",
        Action::Rightsize => "Rightsize",
        Action::MoveToGraviton => "Move to Graviton",
        Action::ChangeStorageClass => "Change the storage class of",
        Action::AddLifecycleRule => "Add a lifecycle rule to",
        Action::SwitchToOnDemand => "Switch to on-demand",
        Action::LowerProvisionedCapacity => "Lower the provisioned capacity of",
        Action::ReduceMemory => "Reduce the memory of",
        Action::IncreaseMemory => "Increase the memory of",
        Action::ShrinkTasks => "Shrink the tasks of",
        Action::ReduceTaskCount => "Reduce the task count of",
        Action::DeleteUnused => "Delete",
        Action::InvestigateErrors => "Investigate the errors of",
        Action::ScaleUp => "Scale up",
    }
}

/// A number with at most `decimals` decimals, trailing zeros dropped.
pub(super) fn trim(v: f64, decimals: usize) -> String {
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

pub(super) fn money(v: f64) -> String {
    format!("${v:.2}")
}

/// A value in its metric's unit: `4.2%`, `1.2 MB`, `350 ms`.
pub fn format_value(service: Service, metric: &str, v: f64) -> String {
    match unit_of(service, metric) {
        Some(Unit::Percent) => format!("{}%", trim(v, 1)),
        Some(Unit::Bytes) => {
            let a = v.abs();
            if a >= 1e12 {
                format!("{} TB", trim(v / 1e12, 1))
            } else if a >= 1e9 {
                format!("{} GB", trim(v / 1e9, 1))
            } else if a >= 1e6 {
                format!("{} MB", trim(v / 1e6, 1))
            } else if a >= 1e3 {
                format!("{} KB", trim(v / 1e3, 1))
            } else {
                format!("{} B", trim(v, 0))
            }
        }
        Some(Unit::Milliseconds) => format!("{} ms", trim(v, 0)),
        Some(Unit::Count) | None => {
            if v.abs() >= 100.0 {
                trim(v, 0)
            } else {
                trim(v, 2)
            }
        }
    }
}

fn op_text(service: Service, c: &ConditionResult) -> String {
    let f = |x: f64| format_value(service, &c.metric, x);
    match (c.operator, c.upper) {
        (Operator::LessThan, _) => format!("< {}", f(c.threshold)),
        (Operator::GreaterThan, _) => format!("> {}", f(c.threshold)),
        (Operator::Equals, _) => format!("= {}", f(c.threshold)),
        (Operator::Between, Some(u)) if c.threshold.min(u) == 0.0 => {
            format!("<= {}", f(c.threshold.max(u)))
        }
        (Operator::Between, Some(u)) => format!(
            "between {} and {}",
            f(c.threshold.min(u)),
            f(c.threshold.max(u))
        ),
        (Operator::Between, None) => "between ?".to_string(),
    }
}

fn evidence(service: Service, v: &Verdict, lookback: u32) -> String {
    match v.daily {
        Some(d) => {
            let conds: Vec<String> = v
                .conditions
                .iter()
                .map(|c| format!("{} daily {} {}", c.metric, c.statistic, op_text(service, c)))
                .collect();
            let worst: Vec<String> = v
                .conditions
                .iter()
                .filter_map(|c| {
                    c.measured
                        .map(|m| format!("{} {}", c.metric, format_value(service, &c.metric, m)))
                })
                .collect();
            format!(
                "{} on {} of the last {} days (rule needs {}); least favourable qualifying day: {}",
                conds.join(" and "),
                d.qualifying_days,
                d.of_last_days,
                d.min_days,
                worst.join(", ")
            )
        }
        None => v
            .conditions
            .iter()
            .map(|c| {
                let m = c.measured.map_or("no data".to_string(), |m| {
                    format_value(service, &c.metric, m)
                });
                format!(
                    "{} {} over {lookback} days is {m} (threshold {})",
                    c.metric,
                    c.statistic,
                    op_text(service, c)
                )
            })
            .collect::<Vec<_>>()
            .join("; "),
    }
}

pub(super) fn trend_note(service: Service, t: &MetricTrend) -> String {
    let per_day = format_value(service, &t.metric, t.trend.slope.abs());
    format!(
        "{} is trending {} ({}{} a day, Mann-Kendall p = {:.3}), which lowers confidence",
        t.metric,
        if t.trend.direction == TrendDirection::Increasing {
            "up"
        } else {
            "down"
        },
        if t.trend.slope >= 0.0 { "+" } else { "-" },
        per_day,
        t.trend.p_value
    )
}

pub(super) fn reason_text(
    ctx: &Ctx<'_>,
    c: &Candidate<'_>,
    o: &Opt,
    savings: Option<f64>,
    pct: Option<f64>,
    version: u32,
) -> String {
    let svc = ctx.resource.service;
    let mut s = evidence(svc, c.verdict, c.rule.lookback_days);
    s.push_str(". ");
    s.push_str(&o.text);
    match (savings, &o.savings) {
        (Some(v), _) if v < 0.0 => {
            let _ = write!(s, ". Costs about {}/month more", money(-v));
            if let Some(p) = pct {
                let _ = write!(s, " ({}% of its cost)", trim(-p, 0));
            }
        }
        (Some(v), _) => {
            let _ = write!(s, ". Saves about {}/month", money(v));
            if let Some(p) = pct {
                let _ = write!(s, " ({}% of its cost)", trim(p, 0));
            }
        }
        (None, Err(why)) => {
            let _ = write!(s, ". No savings estimate: {why}");
        }
        (None, Ok(_)) => {}
    }
    let _ = write!(
        s,
        ". Data coverage {}%, confidence {:.2}",
        trim(c.verdict.coverage * 100.0, 0),
        c.confidence
    );
    if let Some(t) = &c.trend_note {
        let _ = write!(s, "; {t}");
    }
    let _ = write!(s, ". [rule {}, thresholds v{version}]", c.verdict.rule_id);
    s
}

pub(super) fn projection_text(cpu: Option<f64>, mem: Option<f64>) -> String {
    match (cpu, mem) {
        (Some(c), Some(m)) => format!(
            ": projected p99.5 CPU {}%, memory {}%",
            trim(c, 1),
            trim(m, 1)
        ),
        (Some(c), None) => format!(": projected p99.5 CPU {}%", trim(c, 1)),
        (None, Some(m)) => format!(": projected p99.5 memory {}%", trim(m, 1)),
        (None, None) => String::new(),
    }
}
