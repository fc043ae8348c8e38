//! `GET /recommendations`: what the latest finished cycle recommends.

use super::{Ctx, Res};
use crate::error::json_response;
use crate::extract::field;
use serde::Deserialize;
use serde_json::{json, Value};
use shared::domain::*;
use shared::store::*;
use std::collections::BTreeMap;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ListQuery {
    #[serde(default, deserialize_with = "field::parsed")]
    service: Option<Service>,
}

pub async fn list(ctx: &Ctx<'_>, q: ListQuery) -> Res {
    let runs = ctx.app.cycles.recent_runs(100).await?;
    let latest = runs
        .into_iter()
        .find(|r| matches!(r.status, RunStatus::Succeeded | RunStatus::Partial));
    let Some(run) = latest else {
        return Ok(json_response(
            200,
            &json!({ "cycle": null, "items": [], "totals": { "count": 0, "monthlySavingsUsd": 0.0, "unpriced": 0, "byService": {} } }),
        ));
    };
    let mut items = ctx.app.recommendations.all(&run.job_id).await?;
    if let Some(s) = q.service {
        items.retain(|r| r.service == s);
    }
    items.sort_by(|a, b| {
        b.monthly_savings_usd
            .unwrap_or(0.0)
            .total_cmp(&a.monthly_savings_usd.unwrap_or(0.0))
    });
    let mut by_service: BTreeMap<String, (u64, f64)> = BTreeMap::new();
    let mut total = 0.0;
    let mut unpriced = 0;
    for r in &items {
        let e = by_service.entry(r.service.to_string()).or_default();
        e.0 += 1;
        match r.monthly_savings_usd {
            Some(v) => {
                e.1 += v;
                total += v;
            }
            None => unpriced += 1,
        }
    }
    let by_service: BTreeMap<String, Value> = by_service
        .into_iter()
        .map(|(k, (c, v))| {
            (
                k,
                json!({ "count": c, "monthlySavingsUsd": shared::analysis::round2(v) }),
            )
        })
        .collect();
    Ok(json_response(
        200,
        &json!({
            "cycle": { "runId": run.run_id, "jobId": run.job_id, "status": run.status, "startedAt": run.started_at, "finishedAt": run.finished_at },
            "items": items,
            "totals": { "count": items.len(), "monthlySavingsUsd": shared::analysis::round2(total), "unpriced": unpriced, "byService": by_service },
        }),
    ))
}
