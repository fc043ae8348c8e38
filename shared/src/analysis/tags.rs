//! What a resource's tags decide before any rule runs: whether it is
//! excluded from recommendations (`finops:exclude=true`, the key
//! configurable) and who owns it (the first of the configured owner keys).

use crate::config::{ConfigError, Env};
use crate::domain::resource::DEFAULT_OWNER_TAG_KEYS;
use crate::domain::Resource;

/// The tag key that excludes a resource when it is set to `true`.
pub const DEFAULT_EXCLUDE_TAG_KEY: &str = "finops:exclude";

#[derive(Debug, Clone, PartialEq)]
pub struct TagPolicy {
    pub exclude_key: String,
    /// Tried in order; compared without case.
    pub owner_keys: Vec<String>,
}

impl Default for TagPolicy {
    fn default() -> Self {
        TagPolicy {
            exclude_key: DEFAULT_EXCLUDE_TAG_KEY.to_string(),
            owner_keys: DEFAULT_OWNER_TAG_KEYS
                .iter()
                .map(|k| k.to_string())
                .collect(),
        }
    }
}

impl TagPolicy {
    /// Env: `EXCLUDE_TAG_KEY` (default `finops:exclude`), `OWNER_TAG_KEYS`
    /// (comma-separated, default `owner,team`).
    pub fn from_env(env: &Env) -> Result<TagPolicy, ConfigError> {
        let d = TagPolicy::default();
        let exclude_key = env.get("EXCLUDE_TAG_KEY").unwrap_or(d.exclude_key);
        let owner_keys = match env.get("OWNER_TAG_KEYS") {
            None => d.owner_keys,
            Some(v) => {
                let keys: Vec<String> = v
                    .split(',')
                    .map(str::trim)
                    .filter(|k| !k.is_empty())
                    .map(str::to_string)
                    .collect();
                if keys.is_empty() {
                    return Err(ConfigError::invalid(
                        "OWNER_TAG_KEYS",
                        "a comma-separated list of tag keys",
                        v,
                    ));
                }
                keys
            }
        };
        Ok(TagPolicy {
            exclude_key,
            owner_keys,
        })
    }

    /// Tagged `<exclude key>=true` (key and value compared without case).
    pub fn excluded(&self, r: &Resource) -> bool {
        r.tags.iter().any(|(k, v)| {
            k.trim().eq_ignore_ascii_case(&self.exclude_key)
                && v.trim().eq_ignore_ascii_case("true")
        })
    }

    pub fn owner(&self, r: &Resource) -> Option<String> {
        r.owner(&self.owner_keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Service;

    #[test]
    fn exclusion_and_owner_follow_the_configured_keys() {
        let mut r = Resource::new(Service::Ec2, "i-1", "us-east-1");
        let d = TagPolicy::default();
        assert!(!d.excluded(&r));
        r.tags.insert("FinOps:Exclude".into(), " TRUE ".into());
        assert!(d.excluded(&r));
        r.tags.insert("FinOps:Exclude".into(), "false".into());
        assert!(!d.excluded(&r));
        r.tags.insert("team".into(), "data".into());
        assert_eq!(d.owner(&r).as_deref(), Some("data"));
        r.tags.insert("Owner".into(), "alice".into());
        assert_eq!(d.owner(&r).as_deref(), Some("alice"));
        let p = TagPolicy::from_env(&Env::from_pairs(&[
            ("EXCLUDE_TAG_KEY", "skip"),
            ("OWNER_TAG_KEYS", "cost-center, team"),
        ]))
        .unwrap();
        r.tags.insert("skip".into(), "true".into());
        assert!(p.excluded(&r));
        assert_eq!(p.owner(&r).as_deref(), Some("data"));
        assert!(TagPolicy::from_env(&Env::from_pairs(&[("OWNER_TAG_KEYS", " , ")])).is_err());
    }
}
