//! Discovery inside the cycle: each (account, region) unit is read through
//! its APIs, recorded in the inventory and in its coverage record, and then
//! analysed with its own CloudWatch. A unit that fails is recorded with its
//! error and counted; it never stops the others.

use super::Ports;
use crate::collector::MetricSource;
use crate::discovery::{unit_error_text, Unit};
use crate::domain::{Coverage, Resource, Scope, Service};
use crate::Result;
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, BTreeSet};

/// What a unit's discovery came to.
pub(crate) enum UnitOutcome {
    /// The unit's resources to analyse (discovered, merged with their
    /// overrides, plus what only CloudWatch or `POST /resources` shows).
    Found(Vec<Resource>),
    /// Discovery failed; the error is recorded on the unit's coverage.
    Failed(String),
}

/// Whether `r`, from the inventory, belongs to `unit`. A resource without
/// an account is the deploying account's.
fn belongs(r: &Resource, unit: &Unit, home_account: Option<&str>) -> bool {
    r.region == unit.region
        && match r.account_id.as_deref() {
            Some(a) => a == unit.account_id,
            None => home_account.is_none_or(|h| h == unit.account_id),
        }
}

/// Discovers `unit`, records what was found, and returns the resources to
/// analyse with the unit's metric source.
pub(crate) async fn discover_unit(
    ports: &Ports<'_>,
    job_id: &str,
    unit: &Unit,
    services: &[Service],
    only_unit: bool,
    now: DateTime<Utc>,
) -> Result<(UnitOutcome, Option<std::sync::Arc<dyn MetricSource>>)> {
    let mut coverage = Coverage {
        account_id: unit.account_id.clone(),
        region: unit.region.clone(),
        job_id: job_id.to_string(),
        attempted_at: now,
        discovered_at: None,
        resources: 0,
        by_service: BTreeMap::new(),
        calls: BTreeMap::new(),
        minimum_calls: BTreeMap::new(),
        error: None,
    };
    let found = match ports.estate.discover(unit, services).await {
        Ok(found) => found,
        Err(e) => {
            tracing::warn!(job_id, unit = %unit, error = %e, "discovery of a unit failed");
            let text = unit_error_text(unit, &e);
            coverage.error = Some(text.clone());
            ports.coverage.record(&coverage).await?;
            return Ok((UnitOutcome::Failed(text), None));
        }
    };
    let source = match ports.estate.metrics(unit).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(job_id, unit = %unit, error = %e, "the CloudWatch of a unit is unreachable");
            let text = unit_error_text(unit, &e);
            coverage.error = Some(text.clone());
            ports.coverage.record(&coverage).await?;
            return Ok((UnitOutcome::Failed(text), None));
        }
    };
    ports.inventory.record_discovered(&found.resources).await?;
    let fresh: BTreeSet<&str> = found.resources.iter().map(|r| r.id.as_str()).collect();
    let home = ports.estate.home_account().await.ok().flatten();
    // The merged view (overrides win), read as the unit's own partition of
    // the inventory (plus, in the deploying account, what was pushed without
    // an account), so no unit reads the others' share. The only unit also
    // takes what was pushed for regions discovery does not cover.
    let stored = if only_unit {
        ports.inventory.all().await?
    } else {
        let mut stored = ports
            .inventory
            .in_scope(&Scope::new(Some(&unit.account_id), &unit.region))
            .await?;
        if home.as_deref() == Some(unit.account_id.as_str()) {
            stored.extend(
                ports
                    .inventory
                    .in_scope(&Scope::new(None, &unit.region))
                    .await?,
            );
        }
        stored
    };
    // Discovered resources of this unit that discovery no longer shows are
    // gone, and not analysed.
    let mut resources: Vec<Resource> = stored
        .into_iter()
        .filter(|r| services.contains(&r.service))
        .filter(|r| {
            // The only unit analyses every resource discovery does not
            // show (pushed or seen in CloudWatch), whatever its region.
            (fresh.contains(r.id.as_str()) && belongs(r, unit, home.as_deref()))
                || (r.discovered_by.is_none() && (only_unit || belongs(r, unit, home.as_deref())))
        })
        .collect();
    let known: BTreeSet<String> = resources.iter().map(|r| r.id.clone()).collect();
    // Seen only in CloudWatch: still analysed, as the unit's.
    let cloudwatch: &dyn MetricSource = source.as_deref().unwrap_or(ports.source);
    for d in cloudwatch
        .discover(services)
        .await?
        .into_iter()
        .filter(|d| !known.contains(&d.id))
    {
        let mut r = Resource::new(d.service, d.id, unit.region.clone());
        r.account_id = Some(unit.account_id.clone());
        resources.push(r);
    }
    resources.sort_by(|a, b| (a.service, &a.id).cmp(&(b.service, &b.id)));
    coverage.discovered_at = Some(now);
    coverage.resources = found.resources.len() as u64;
    for r in &found.resources {
        *coverage
            .by_service
            .entry(r.service.as_str().to_string())
            .or_default() += 1;
    }
    coverage.calls = found.calls;
    coverage.minimum_calls = found.minimum_calls;
    ports.coverage.record(&coverage).await?;
    Ok((UnitOutcome::Found(resources), source))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resource_without_an_account_is_the_deploying_accounts() {
        let unit = Unit {
            account_id: "111111111111".into(),
            region: "eu-west-1".into(),
        };
        let mut r = Resource::new(Service::Ec2, "i-1", "eu-west-1");
        assert!(belongs(&r, &unit, Some("111111111111")));
        assert!(!belongs(&r, &unit, Some("222222222222")));
        assert!(belongs(&r, &unit, None));
        r.account_id = Some("222222222222".into());
        assert!(!belongs(&r, &unit, Some("111111111111")));
        r.region = "us-east-1".into();
        r.account_id = None;
        assert!(!belongs(&r, &unit, Some("111111111111")));
    }
}
