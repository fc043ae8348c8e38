//! Discovery: the estate read through the services' own list / describe
//! APIs, one unit of work per (account, region).
//!
//! - [`Estate`] is the port the cycle talks to: which units the deployment
//!   covers, what one unit holds, and the CloudWatch of that unit. Tests
//!   drive the cycle with a fake; [`NoEstate`] keeps the CloudWatch-only
//!   behaviour (a deployment or test that discovers nothing).
//! - [`Scope`] is what the deployment covers (`Regions`, `AccountsMode`,
//!   `MemberRoleName` in template.yaml), parsed once from the environment.
//! - With the `discovery` feature, [`AwsEstate`] is the adapter: one module
//!   per service, the SDK's paginators and retries, every call counted.
//!
//! Invariant: only the processor enables the feature; the api, the WebSocket
//! functions and the scheduler link none of these SDKs (checked by
//! tests/tests/architecture.rs).

use crate::collector::MetricSource;
pub use crate::domain::Unit;
use crate::domain::{Resource, Service};
use crate::{Error, Result};
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::Arc;

#[cfg(feature = "discovery")]
pub(crate) mod aws;
#[cfg(feature = "discovery")]
pub use aws::AwsEstate;

/// What discovering one unit found, and what it cost.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UnitDiscovery {
    pub resources: Vec<Resource>,
    /// Calls made per API, `"EC2:DescribeInstances"` (service:operation, as
    /// the SDK names them), retries included.
    pub calls: BTreeMap<String, u64>,
    /// The fewest calls pagination allows for what was found, per API.
    pub minimum_calls: BTreeMap<String, u64>,
}

/// The regions a deployment covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Regions {
    /// These regions (at least one).
    List(Vec<String>),
    /// Every region enabled for the account (EC2 DescribeRegions).
    All,
}

/// The accounts a deployment covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountsMode {
    /// The deploying account alone.
    SelfOnly,
    /// Every active account of the Organization, reached by assuming
    /// `role_name` in each (the management account through its own role).
    Organization { role_name: String },
}

impl AccountsMode {
    /// The member role assumed in the other accounts, if any.
    pub fn role_name(&self) -> Option<String> {
        match self {
            AccountsMode::SelfOnly => None,
            AccountsMode::Organization { role_name } => Some(role_name.clone()),
        }
    }
}

/// What a deployment covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub regions: Regions,
    pub accounts: AccountsMode,
}

impl Scope {
    /// From template.yaml's parameters as the processor sees them:
    /// `regions` is `all` or a comma-separated list (empty: `home`), `mode`
    /// is `self` or `organization`.
    pub fn parse(
        regions: Option<&str>,
        mode: Option<&str>,
        role: Option<&str>,
        home: &str,
    ) -> Result<Scope> {
        let regions = match regions.map(str::trim).filter(|r| !r.is_empty()) {
            None => Regions::List(vec![home.to_string()]),
            Some(r) if r.eq_ignore_ascii_case("all") => Regions::All,
            Some(r) => {
                let mut list: Vec<String> = Vec::new();
                for name in r.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                    if !is_region_name(name) {
                        return Err(Error::Validation(format!(
                            "Regions: '{name}' is not a region name (e.g. us-east-1)"
                        )));
                    }
                    if !list.iter().any(|l| l == name) {
                        list.push(name.to_string());
                    }
                }
                Regions::List(list)
            }
        };
        let accounts = match mode.map(str::trim).filter(|m| !m.is_empty()) {
            None | Some("self") => AccountsMode::SelfOnly,
            Some("organization") => {
                let role_name = role
                    .map(str::trim)
                    .filter(|r| !r.is_empty())
                    .ok_or_else(|| {
                        Error::Validation("AccountsMode organization needs MemberRoleName".into())
                    })?;
                if !role_name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-/".contains(c))
                    || role_name.len() > 64
                {
                    return Err(Error::Validation(format!(
                        "MemberRoleName: '{role_name}' is not an IAM role name"
                    )));
                }
                AccountsMode::Organization {
                    role_name: role_name.to_string(),
                }
            }
            Some(other) => {
                return Err(Error::Validation(format!(
                    "AccountsMode: '{other}' (expected self or organization)"
                )))
            }
        };
        Ok(Scope { regions, accounts })
    }
}

/// `us-east-1`, `eu-central-2`, `ap-southeast-5`, `us-gov-west-1`: letters,
/// dashes and a final number.
fn is_region_name(name: &str) -> bool {
    let parts: Vec<&str> = name.split('-').collect();
    parts.len() >= 3
        && parts.len() <= 4
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[parts.len() - 1].parse::<u8>().is_ok()
}

/// The discovery port.
#[async_trait]
pub trait Estate: Send + Sync {
    /// The units this deployment covers, sorted. Empty: nothing is
    /// discovered through the APIs (CloudWatch and the inventory only).
    async fn units(&self) -> Result<Vec<Unit>>;

    /// Every resource of `services` in `unit`, as its APIs show it.
    async fn discover(&self, unit: &Unit, services: &[Service]) -> Result<UnitDiscovery>;

    /// The CloudWatch of `unit` (its account's credentials, its region);
    /// `None` for the deployment's own account and region, whose CloudWatch
    /// the cycle already has.
    async fn metrics(&self, unit: &Unit) -> Result<Option<Arc<dyn MetricSource>>>;

    /// The deploying account, whose resources carry no account id when
    /// pushed or seen only in CloudWatch; `None` when not known.
    async fn home_account(&self) -> Result<Option<String>>;
}

/// An estate that discovers nothing: the cycle then analyses what CloudWatch
/// and the inventory show, as before discovery existed.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoEstate;

#[async_trait]
impl Estate for NoEstate {
    async fn units(&self) -> Result<Vec<Unit>> {
        Ok(Vec::new())
    }

    async fn discover(&self, unit: &Unit, _: &[Service]) -> Result<UnitDiscovery> {
        Err(Error::Validation(format!(
            "discovery is not configured (unit {unit})"
        )))
    }

    async fn metrics(&self, _: &Unit) -> Result<Option<Arc<dyn MetricSource>>> {
        Ok(None)
    }

    async fn home_account(&self) -> Result<Option<String>> {
        Ok(None)
    }
}

/// The public text of a unit's failure: what an operator can act on,
/// without AWS's text (which is logged).
pub fn unit_error_text(unit: &Unit, e: &Error) -> String {
    let text = e.to_string();
    if text.contains("AssumeRole") || text.contains("assume") {
        format!(
            "could not assume the member role in account {} (check that the role exists and trusts this deployment)",
            unit.account_id
        )
    } else if text.contains("AccessDenied") || text.contains("UnauthorizedOperation") {
        format!("access denied while discovering {unit} (check the role's read-only permissions)")
    } else {
        match e {
            Error::Unavailable(_) => {
                format!("a service of {unit} was unavailable; retried next cycle")
            }
            _ => format!("discovery of {unit} failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_parses_the_template_parameters() {
        let s = Scope::parse(None, None, None, "eu-west-1").unwrap();
        assert_eq!(s.regions, Regions::List(vec!["eu-west-1".into()]));
        assert_eq!(s.accounts, AccountsMode::SelfOnly);
        let s = Scope::parse(
            Some(" us-east-1, eu-west-1,us-east-1"),
            Some("organization"),
            Some("FinOpsMember"),
            "x",
        )
        .unwrap();
        assert_eq!(
            s.regions,
            Regions::List(vec!["us-east-1".into(), "eu-west-1".into()])
        );
        assert_eq!(
            s.accounts,
            AccountsMode::Organization {
                role_name: "FinOpsMember".into()
            }
        );
        assert_eq!(
            Scope::parse(Some("ALL"), Some("self"), None, "x")
                .unwrap()
                .regions,
            Regions::All
        );
        assert!(Scope::parse(Some("us-east"), None, None, "x").is_err());
        assert!(Scope::parse(Some("us-east-1;rm"), None, None, "x").is_err());
        assert!(Scope::parse(None, Some("organization"), None, "x").is_err());
        assert!(Scope::parse(None, Some("organization"), Some("a b"), "x").is_err());
        assert!(Scope::parse(None, Some("everyone"), None, "x").is_err());
        assert!(is_region_name("us-gov-west-1") && is_region_name("ap-southeast-5"));
    }
}
