//! `GET /websocket/status`: live connections and subscriptions per topic.

use super::{Ctx, Res};
use crate::error::json_response;
use crate::extract::NoQuery;
use serde_json::json;
use shared::dynamo::ConnectionStatsSource;

/// Topics listed in `byTopic`, the most subscribed first: every
/// `resource:<id>` topic is its own entry, so the full map grows with the
/// estate while the totals say all there is.
pub const MAX_STATUS_TOPICS: usize = 100;

pub async fn status(ctx: &Ctx<'_>, _: NoQuery) -> Res {
    let stats = ctx.app.connection_stats.stats(ctx.now).await?;
    let topics = stats.by_topic.len();
    let mut ranked: Vec<(String, u64)> = stats.by_topic.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    ranked.truncate(MAX_STATUS_TOPICS);
    let by_topic: serde_json::Map<String, serde_json::Value> =
        ranked.into_iter().map(|(t, n)| (t, json!(n))).collect();
    Ok(json_response(
        200,
        &json!({
            "connections": stats.connections,
            "subscriptions": stats.subscriptions,
            "topics": topics,
            "byTopic": by_topic,
            "byTopicTruncated": topics > MAX_STATUS_TOPICS,
            "pagesRead": stats.pages_read,
        }),
    ))
}
