//! The functions' log subscriber, configured as Lambda's advanced logging
//! controls say: the level from `AWS_LAMBDA_LOG_LEVEL` (else `RUST_LOG`,
//! read as a level; INFO by default), JSON lines when
//! `AWS_LAMBDA_LOG_FORMAT` is `JSON` (each with the runtime's span and its
//! `requestId`), and no timestamp, which CloudWatch Logs adds to every line.
//!
//! A level, not per-module directives: the filter that reads those
//! (tracing-subscriber's `env-filter`, which lambda_runtime's default
//! subscriber uses) brings a regex engine into every binary, and the api
//! would pass 10 MB with it.

use crate::config::Env;
use tracing_subscriber::filter::LevelFilter;

/// The level `AWS_LAMBDA_LOG_LEVEL` or, without it, `RUST_LOG` names;
/// INFO when neither names one. Lambda's FATAL is ERROR here.
pub fn level(lambda: Option<&str>, rust_log: Option<&str>) -> LevelFilter {
    lambda
        .or(rust_log)
        .map(str::trim)
        .and_then(|l| {
            if l.eq_ignore_ascii_case("fatal") {
                Some(LevelFilter::ERROR)
            } else {
                l.parse::<LevelFilter>().ok()
            }
        })
        .unwrap_or(LevelFilter::INFO)
}

/// Installs the subscriber once, at start-up (a second call changes nothing).
pub fn init(env: &Env) {
    let level = level(
        env.get("AWS_LAMBDA_LOG_LEVEL").as_deref(),
        env.get("RUST_LOG").as_deref(),
    );
    let json = env
        .get("AWS_LAMBDA_LOG_FORMAT")
        .is_some_and(|f| f.eq_ignore_ascii_case("json"));
    let fmt = tracing_subscriber::fmt()
        .with_target(false)
        .without_time()
        .with_max_level(level);
    let _ = if json {
        fmt.json().try_init()
    } else {
        fmt.try_init()
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lambda_level_wins_and_anything_unreadable_is_info() {
        assert_eq!(level(Some("DEBUG"), Some("trace")), LevelFilter::DEBUG);
        assert_eq!(level(None, Some("warn")), LevelFilter::WARN);
        assert_eq!(level(Some("FATAL"), None), LevelFilter::ERROR);
        assert_eq!(level(None, None), LevelFilter::INFO);
        // Directives are not read: the level falls back to INFO.
        assert_eq!(level(None, Some("info,aws_smithy=warn")), LevelFilter::INFO);
    }
}
