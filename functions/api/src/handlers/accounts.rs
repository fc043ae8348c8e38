//! `GET /accounts`: what discovery covers, per account and region: the last
//! completed discovery, what it found and what it cost, and the last error.

use super::{to_json, Ctx, Res};
use crate::error::json_response;
use crate::extract::NoQuery;
use serde_json::json;
use shared::store::CoverageStore;
use std::collections::BTreeSet;

pub async fn list(ctx: &Ctx<'_>, _: NoQuery) -> Res {
    let units = ctx.app.coverage.all().await?;
    let accounts: BTreeSet<&str> = units.iter().map(|u| u.account_id.as_str()).collect();
    let regions: BTreeSet<&str> = units.iter().map(|u| u.region.as_str()).collect();
    let failing = units.iter().filter(|u| u.error.is_some()).count();
    let last = units.iter().filter_map(|u| u.discovered_at).max();
    let body = json!({
        "accounts": accounts,
        "regions": regions,
        "units": to_json(&units)?,
        "failing": failing,
        "lastDiscoveredAt": last,
    });
    Ok(json_response(200, &body))
}
