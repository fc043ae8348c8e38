//! `GET /websocket/status`: live connections and subscriptions per topic.

use super::{to_json, Ctx, Res};
use crate::error::json_response;
use crate::extract::NoQuery;
use shared::dynamo::ConnectionStatsSource;

pub async fn status(ctx: &Ctx<'_>, _: NoQuery) -> Res {
    let stats = ctx.app.connection_stats.stats(ctx.now).await?;
    Ok(json_response(200, &to_json(stats)?))
}
