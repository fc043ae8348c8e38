//! `/costs`: Cost Explorer's figures through the cache, and the forecast.

use super::{to_json, Ctx, Res};
use crate::app::App;
use crate::error::json_response;
use serde::de::{Error as _, Unexpected};
use serde::{Deserialize, Deserializer};
use shared::costs::{Allowance, CostQuery, Costs};

fn cost_service(app: &App) -> Costs<'_> {
    Costs {
        source: &app.cost_explorer,
        cache: &app.cost_cache,
        ttl: app.config.cost_cache_ttl,
        forecast_source: app.config.forecast_source,
        allowance: Some(Allowance {
            quota: &app.cost_cache,
            pages_per_hour: app.config.cost_pages_per_user_hour,
        }),
    }
}

/// Left as text: `CostQuery::parse` validates the question as a whole.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CostsQuery {
    start: Option<String>,
    end: Option<String>,
    granularity: Option<String>,
    group_by: Option<String>,
}

pub async fn report(ctx: &Ctx<'_>, q: CostsQuery) -> Res {
    let cq = CostQuery::parse(
        q.start.as_deref(),
        q.end.as_deref(),
        q.granularity.as_deref(),
        q.group_by.as_deref(),
        ctx.now,
    )?;
    let report = cost_service(ctx.app)
        .report(&cq, &ctx.actor, ctx.now)
        .await?;
    Ok(json_response(200, &to_json(report)?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ForecastQuery {
    #[serde(default, deserialize_with = "days")]
    days: Option<u32>,
}

/// Only the form is checked here; the range is the forecast's own rule.
fn days<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    let Some(v) = Option::<String>::deserialize(d)? else {
        return Ok(None);
    };
    v.parse::<u32>()
        .map(Some)
        .map_err(|_| D::Error::invalid_value(Unexpected::Str(&v), &"an integer from 1 to 90"))
}

pub async fn forecast(ctx: &Ctx<'_>, q: ForecastQuery) -> Res {
    let f = cost_service(ctx.app)
        .forecast(q.days.unwrap_or(30), &ctx.actor, ctx.now)
        .await?;
    Ok(json_response(200, &to_json(f)?))
}
