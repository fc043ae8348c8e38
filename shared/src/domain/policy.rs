//! Auto-approval policies (SPEC section 10): what an admin lets the system
//! approve and execute without a person, inside the policy's window.

use super::execution::Schedule;
use super::{Action, Recommendation, Service};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What a recommendation must be for the policy to approve it. An empty
/// list matches anything; every condition given must hold.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicyMatch {
    #[serde(default)]
    pub services: Vec<Service>,
    #[serde(default)]
    pub actions: Vec<Action>,
    /// The highest risk approved (0..4).
    pub max_risk: u8,
    /// Savings bounds in USD a month; with either, an unknown saving never matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_savings_usd: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_savings_usd: Option<f64>,
    /// Tags the resource must carry, with these values.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Tags that keep a resource out (e.g. `env=production`).
    #[serde(default)]
    pub exclude_tags: BTreeMap<String, String>,
    #[serde(default)]
    pub accounts: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Policy {
    pub id: String,
    /// Bumped by every change; a change names the version it was based on.
    pub version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub enabled: bool,
    /// Only reports what it would have approved; approves nothing.
    pub dry_run: bool,
    #[serde(rename = "match")]
    pub matcher: PolicyMatch,
    /// When its approvals execute; empty means the global schedule alone.
    #[serde(default)]
    pub window: Schedule,
    pub updated_by: String,
    pub updated_at: DateTime<Utc>,
}

/// What the recommendation itself does not carry yet: the resource's tags
/// and account, from the inventory.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ResourceFacts {
    pub tags: BTreeMap<String, String>,
    pub account_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("policy is not valid: {0}")]
pub struct PolicyError(pub String);

impl Policy {
    /// The actor its decisions are audited with.
    pub fn actor(&self) -> String {
        format!("policy:{}", self.id)
    }

    pub fn validate(&self) -> Result<(), PolicyError> {
        let bad = |m: &str| Err(PolicyError(m.into()));
        let id_ok = !self.id.is_empty()
            && self.id.len() <= 64
            && self
                .id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !id_ok {
            return bad("id is 1 to 64 of a-z, 0-9 and '-'");
        }
        let m = &self.matcher;
        if m.max_risk > 4 {
            return bad("match.maxRisk is 0 to 4");
        }
        for v in [m.min_savings_usd, m.max_savings_usd].into_iter().flatten() {
            if let Err(e) = super::number::storable(v) {
                return Err(PolicyError(format!("a savings bound {e}")));
            }
            if v.abs() >= 1e9 {
                return bad("savings bounds are amounts under 1e9 USD");
            }
        }
        let text_ok = |s: &String, max: usize| !s.trim().is_empty() && s.chars().count() <= max;
        let tags_ok = |t: &BTreeMap<String, String>| {
            t.iter()
                .all(|(k, v)| text_ok(k, 128) && v.chars().count() <= 256)
        };
        if !tags_ok(&m.tags) || !tags_ok(&m.exclude_tags) {
            return bad("tag keys are 1 to 128 characters and values at most 256");
        }
        if !m.accounts.iter().all(|a| text_ok(a, 64)) {
            return bad("accounts are 1 to 64 characters each");
        }
        if let (Some(lo), Some(hi)) = (m.min_savings_usd, m.max_savings_usd) {
            if lo > hi {
                return bad("match.minSavingsUsd is above match.maxSavingsUsd");
            }
        }
        if m.actions.contains(&Action::InvestigateErrors) {
            return bad("investigate_errors is not executable: no policy may approve it");
        }
        let sizes = m.services.len()
            + m.actions.len()
            + m.tags.len()
            + m.exclude_tags.len()
            + m.accounts.len();
        if sizes > 200 || self.window.0.len() > 20 {
            return bad("at most 200 match entries and 20 windows");
        }
        if self
            .description
            .as_ref()
            .is_some_and(|d| d.chars().count() > 1000)
        {
            return bad("description is at most 1000 characters");
        }
        Ok(())
    }

    /// Whether the policy approves `r` on a resource with `facts`. A
    /// disabled policy matches nothing.
    pub fn matches(&self, r: &Recommendation, facts: &ResourceFacts) -> bool {
        let m = &self.matcher;
        let any_or = |list_empty: bool, hit: bool| list_empty || hit;
        if !self.enabled || r.action == Action::InvestigateErrors || r.risk > m.max_risk {
            return false;
        }
        if !any_or(m.services.is_empty(), m.services.contains(&r.service))
            || !any_or(m.actions.is_empty(), m.actions.contains(&r.action))
        {
            return false;
        }
        if m.min_savings_usd.is_some() || m.max_savings_usd.is_some() {
            let Some(saving) = r.monthly_savings_usd else {
                return false;
            };
            if m.min_savings_usd.is_some_and(|lo| saving < lo)
                || m.max_savings_usd.is_some_and(|hi| saving > hi)
            {
                return false;
            }
        }
        let has = |k: &String, v: &String| facts.tags.get(k) == Some(v);
        if !m.tags.iter().all(|(k, v)| has(k, v)) || m.exclude_tags.iter().any(|(k, v)| has(k, v)) {
            return false;
        }
        m.accounts.is_empty()
            || facts
                .account_id
                .as_ref()
                .is_some_and(|a| m.accounts.contains(a))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::FindingKind;
    use proptest::prelude::*;

    fn rec(service: Service, action: Action, risk: u8, saving: Option<f64>) -> Recommendation {
        Recommendation {
            id: "r".into(),
            resource_id: "i-1".into(),
            service,
            region: "us-east-1".into(),
            account_id: None,
            owner: None,
            tags: Default::default(),
            current_monthly_cost_usd: None,
            finding: FindingKind::Idle,
            action,
            target_type: None,
            monthly_savings_usd: saving,
            savings_percent: None,
            confidence: 0.9,
            risk,
            reason: "idle".into(),
            alternatives: vec![],
            dependencies: vec![],
            dependency_details: Vec::new(),
            utilization_score: None,
            threshold_version: 1,
            created_at: DateTime::<Utc>::MIN_UTC,
        }
    }

    fn policy(m: PolicyMatch) -> Policy {
        Policy {
            id: "low-risk".into(),
            version: 1,
            description: None,
            enabled: true,
            dry_run: false,
            matcher: m,
            window: Schedule::default(),
            updated_by: "admin".into(),
            updated_at: DateTime::<Utc>::MIN_UTC,
        }
    }

    #[test]
    fn risk_savings_and_production_as_the_spec_example() {
        let p = policy(PolicyMatch {
            max_risk: 1,
            max_savings_usd: Some(100.0),
            exclude_tags: [("env".to_string(), "production".to_string())].into(),
            ..PolicyMatch::default()
        });
        assert_eq!(p.actor(), "policy:low-risk");
        let dev = ResourceFacts {
            tags: [("env".to_string(), "dev".to_string())].into(),
            account_id: None,
        };
        let prod = ResourceFacts {
            tags: [("env".to_string(), "production".to_string())].into(),
            account_id: None,
        };
        assert!(p.matches(&rec(Service::Ec2, Action::Stop, 1, Some(50.0)), &dev));
        assert!(!p.matches(&rec(Service::Ec2, Action::Stop, 1, Some(50.0)), &prod));
        assert!(!p.matches(&rec(Service::Ec2, Action::Stop, 2, Some(50.0)), &dev));
        assert!(!p.matches(&rec(Service::Ec2, Action::Stop, 1, Some(500.0)), &dev));
        assert!(!p.matches(&rec(Service::Ec2, Action::Stop, 1, None), &dev));
        assert!(!p.matches(
            &rec(Service::Lambda, Action::InvestigateErrors, 0, Some(1.0)),
            &dev
        ));
        let off = Policy {
            enabled: false,
            ..p.clone()
        };
        assert!(!off.matches(&rec(Service::Ec2, Action::Stop, 1, Some(50.0)), &dev));
        assert!(p.validate().is_ok());
        assert!(Policy {
            id: "Bad Id".into(),
            ..p.clone()
        }
        .validate()
        .is_err());
    }

    proptest! {
        #[test]
        fn a_match_meets_every_condition(
            risk in 0u8..5, max_risk in 0u8..5, saving in proptest::option::of(-100.0f64..1000.0),
            lo in proptest::option::of(0.0f64..500.0), svc in proptest::sample::select(Service::ALL.to_vec()),
            only in proptest::option::of(proptest::sample::select(Service::ALL.to_vec())),
            account in proptest::option::of("[0-9]{3}"), allowed in proptest::collection::vec("[0-9]{3}", 0..3),
        ) {
            let p = policy(PolicyMatch { max_risk, min_savings_usd: lo, services: only.into_iter().collect(), accounts: allowed.clone(), ..PolicyMatch::default() });
            let r = rec(svc, Action::Rightsize, risk, saving);
            let facts = ResourceFacts { tags: BTreeMap::new(), account_id: account.clone() };
            let expected = risk <= max_risk
                && only.is_none_or(|o| o == svc)
                && lo.is_none_or(|lo| saving.is_some_and(|s| s >= lo))
                && (allowed.is_empty() || account.is_some_and(|a| allowed.contains(&a)));
            prop_assert_eq!(p.matches(&r, &facts), expected);
        }
    }
}
