//! The one environment reader. Every function reads its configuration once,
//! at start-up, through [`Env`], so every variable follows one rule set:
//! values are trimmed, an empty value is unset, a bad value is a typed
//! [`ConfigError`] naming the variable, and secrets never reach a log
//! through `Debug`.
//!
//! This is the only module that reads the process environment; tests, the
//! local stack and the benchmarks hand functions an [`Env`] over a lookup of
//! their own (template.yaml's resolved environment, a fixed map).

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0} is not set")]
    Missing(String),
    #[error("configuration: {key} must be {expected}, got '{value}'")]
    Invalid {
        key: String,
        expected: String,
        value: String,
    },
    /// A rule spanning variables, or a value checked by its own parser.
    #[error("configuration: {0}")]
    Rule(String),
}

impl ConfigError {
    pub fn invalid(key: &str, expected: impl Into<String>, value: impl Into<String>) -> Self {
        ConfigError::Invalid {
            key: key.to_string(),
            expected: expected.into(),
            value: value.into(),
        }
    }
}

impl From<ConfigError> for crate::Error {
    fn from(e: ConfigError) -> Self {
        crate::Error::Validation(e.to_string())
    }
}

/// A value that must not be logged: `Debug` and `Display` print a mask.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// How long an AWS call may take. Without these the SDK waits for ever: a
/// stalled endpoint would hold a function until Lambda's own timeout, and
/// the api past API Gateway's 29 s. An attempt is cut at 20 s (a page of
/// GetMetricData is the slowest honest call), the whole call with its
/// retries at 28 s, just inside API Gateway's limit.
pub fn sdk_timeouts() -> aws_config::timeout::TimeoutConfig {
    aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(std::time::Duration::from_secs(3))
        .operation_attempt_timeout(std::time::Duration::from_secs(20))
        .operation_timeout(std::time::Duration::from_secs(28))
        .build()
}

/// The SDK configuration a deployed function loads once: the standard
/// chain (region, credentials, `AWS_ENDPOINT_URL`) with [`sdk_timeouts`].
pub async fn load_sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .timeout_config(sdk_timeouts())
        .load()
        .await
}

/// Whether this process is a Lambda function (the runtime sets
/// `AWS_LAMBDA_FUNCTION_NAME`); what changes is only where logs go.
pub fn in_lambda() -> bool {
    Env::process().get("AWS_LAMBDA_FUNCTION_NAME").is_some()
}

type Lookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// A source of configuration variables with the project's one rule set.
#[derive(Clone)]
pub struct Env {
    lookup: Lookup,
}

impl fmt::Debug for Env {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Env(..)")
    }
}

impl Env {
    /// The process environment: what a deployed function reads.
    pub fn process() -> Env {
        Env::new(|k| std::env::var(k).ok())
    }

    pub fn new(lookup: impl Fn(&str) -> Option<String> + Send + Sync + 'static) -> Env {
        Env {
            lookup: Arc::new(lookup),
        }
    }

    pub fn from_pairs<K: AsRef<str>, V: AsRef<str>>(pairs: &[(K, V)]) -> Env {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.as_ref().to_string(), v.as_ref().to_string()))
            .collect();
        Env::from_map(map)
    }

    pub fn from_map(map: HashMap<String, String>) -> Env {
        Env::new(move |k| map.get(k).cloned())
    }

    /// Any map-like collection of variables (template.yaml's resolved
    /// environment is a `BTreeMap`).
    pub fn of<K: Into<String>, V: Into<String>>(vars: impl IntoIterator<Item = (K, V)>) -> Env {
        Env::from_map(
            vars.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }

    /// This environment, falling back to `other` for what it does not set.
    pub fn or(&self, other: &Env) -> Env {
        let (first, second) = (self.lookup.clone(), other.lookup.clone());
        Env::new(move |k| {
            first(k)
                .filter(|v| !v.trim().is_empty())
                .or_else(|| second(k))
        })
    }

    /// This environment with `overrides` winning over it.
    pub fn with(&self, overrides: &[(&str, &str)]) -> Env {
        let map: HashMap<String, String> = overrides
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let base = self.lookup.clone();
        Env::new(move |k| map.get(k).cloned().or_else(|| base(k)))
    }

    /// The trimmed value; empty means unset.
    pub fn get(&self, key: &str) -> Option<String> {
        (self.lookup)(key)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    pub fn require(&self, key: &str) -> Result<String, ConfigError> {
        self.get(key)
            .ok_or_else(|| ConfigError::Missing(key.to_string()))
    }

    pub fn secret(&self, key: &str) -> Option<Secret> {
        self.get(key).map(Secret)
    }

    /// A required secret of at least `min_bytes`.
    pub fn require_secret(&self, key: &str, min_bytes: usize) -> Result<Secret, ConfigError> {
        let s = self.require(key)?;
        if s.len() < min_bytes {
            return Err(ConfigError::Rule(format!(
                "{key} must be at least {min_bytes} bytes"
            )));
        }
        Ok(Secret(s))
    }

    /// A positive integer (1 ..= `max`), `default` when unset.
    pub fn positive<T>(&self, key: &str, default: T, max: T) -> Result<T, ConfigError>
    where
        T: FromStr + PartialOrd + From<u8> + Copy + fmt::Display,
    {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .parse::<T>()
                .ok()
                .filter(|n| *n >= T::from(1) && *n <= max)
                .ok_or_else(|| ConfigError::invalid(key, format!("an integer in 1..={max}"), v)),
        }
    }

    /// `true` or `false` (any case), `default` when unset.
    pub fn flag(&self, key: &str, default: bool) -> Result<bool, ConfigError> {
        match self.get(key) {
            None => Ok(default),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
            Some(v) => Err(ConfigError::invalid(key, "true or false", v)),
        }
    }

    /// An http(s) URL with a host.
    pub fn url(&self, key: &str) -> Result<Option<reqwest::Url>, ConfigError> {
        self.get(key)
            .map(|v| {
                reqwest::Url::parse(&v)
                    .ok()
                    .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
                    .ok_or_else(|| ConfigError::invalid(key, "an http(s) URL", v))
            })
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_and_treats_empty_as_unset() {
        let env = Env::from_pairs(&[("A", "  x "), ("B", "   "), ("C", "")]);
        assert_eq!(env.get("A").as_deref(), Some("x"));
        assert_eq!(env.get("B"), None);
        assert_eq!(env.get("C"), None);
        assert_eq!(env.require("B"), Err(ConfigError::Missing("B".into())));
        assert_eq!(
            env.require("B").unwrap_err().to_string(),
            "configuration: B is not set"
        );
    }

    #[test]
    fn positive_integers_have_one_rule() {
        let env = Env::from_pairs(&[("N", "12"), ("Z", "0"), ("X", "ten"), ("BIG", "99999")]);
        assert_eq!(env.positive("N", 5u32, 100).unwrap(), 12);
        assert_eq!(env.positive("UNSET", 5u32, 100).unwrap(), 5);
        for k in ["Z", "X", "BIG"] {
            let e = env.positive(k, 5u32, 100).unwrap_err();
            assert!(
                matches!(&e, ConfigError::Invalid { key, .. } if key == k),
                "{e}"
            );
        }
        assert_eq!(
            env.positive("Z", 5i64, 10).unwrap_err().to_string(),
            "configuration: Z must be an integer in 1..=10, got '0'"
        );
    }

    #[test]
    fn flags_and_urls() {
        let env = Env::from_pairs(&[
            ("T", "TRUE"),
            ("F", "false"),
            ("Y", "yes"),
            ("U", "https://example.test/x"),
            ("V", "ftp://x"),
        ]);
        assert!(env.flag("T", false).unwrap());
        assert!(!env.flag("F", true).unwrap());
        assert!(env.flag("UNSET", true).unwrap());
        assert!(env.flag("Y", true).is_err());
        assert!(env.url("U").unwrap().is_some());
        assert!(env.url("V").is_err());
        assert!(env.url("UNSET").unwrap().is_none());
    }

    #[test]
    fn secrets_are_masked_in_debug() {
        let env = Env::from_pairs(&[("S", "a-very-secret-value-of-32-bytes!!")]);
        let s = env.require_secret("S", 16).unwrap();
        assert_eq!(format!("{s:?}"), "Secret(***)");
        assert_eq!(format!("{s}"), "***");
        assert_eq!(s.expose(), "a-very-secret-value-of-32-bytes!!");
        assert!(env.require_secret("S", 64).is_err());
    }

    #[test]
    fn aws_calls_end_before_api_gateway_gives_up() {
        let t = sdk_timeouts();
        let op = t.operation_timeout().unwrap_or_default();
        let attempt = t.operation_attempt_timeout().unwrap_or_default();
        assert!(!attempt.is_zero() && attempt <= op, "{t:?}");
        assert!(op < std::time::Duration::from_secs(29), "{t:?}");
        assert!(t.connect_timeout().is_some());
    }

    #[test]
    fn overrides_win() {
        let env = Env::from_pairs(&[("A", "1"), ("B", "2")]).with(&[("A", "3")]);
        assert_eq!(env.get("A").as_deref(), Some("3"));
        assert_eq!(env.get("B").as_deref(), Some("2"));
    }
}
