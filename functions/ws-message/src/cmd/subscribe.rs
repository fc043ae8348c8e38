use super::{Context, Parse};
use crate::error::FrameError;
use serde_json::{json, Value};
use shared::domain::Topic;
use shared::dynamo::MAX_SUBSCRIPTIONS;

/// Topics in one subscribe / unsubscribe.
pub const MAX_TOPICS: usize = 25;

/// `subscribe`: topics to receive events of.
#[derive(Debug, Clone, PartialEq)]
pub struct Subscribe {
    pub topics: Vec<Topic>,
}

/// `unsubscribe`: topics to stop receiving.
#[derive(Debug, Clone, PartialEq)]
pub struct Unsubscribe {
    pub topics: Vec<Topic>,
}

fn topics(parse: &mut Parse) -> Result<Vec<Topic>, FrameError> {
    let raw = parse
        .strings("topics", MAX_TOPICS)?
        .ok_or_else(|| parse.missing("topics"))?;
    if raw.is_empty() {
        return Err(FrameError::bad("`topics` must name at least one topic"));
    }
    let mut topics = raw
        .iter()
        .map(|t| {
            t.parse::<Topic>()
                .map_err(|e| FrameError::bad(e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    topics.sort();
    topics.dedup();
    Ok(topics)
}

/// The connection's topics as the ack lists them: at most the store's cap,
/// so the frame stays within API Gateway's 128 KB even if racing
/// subscribes passed the cap; `total` and `truncated` say when more exist.
async fn current_topics(ctx: &Context<'_>, connection_id: &str) -> Result<Value, FrameError> {
    let mut topics = ctx
        .deps
        .connections
        .topics_of(connection_id, ctx.now)
        .await
        .map_err(|e| ctx.core(e))?;
    let total = topics.len();
    topics.truncate(MAX_SUBSCRIPTIONS);
    Ok(
        json!({ "type": "ack", "topics": topics, "total": total, "truncated": total > topics.len() }),
    )
}

impl Subscribe {
    pub fn parse(parse: &mut Parse) -> Result<Self, FrameError> {
        Ok(Subscribe {
            topics: topics(parse)?,
        })
    }

    pub async fn apply(self, ctx: &Context<'_>) -> Result<Value, FrameError> {
        // The store writes the subscriptions on the condition that the
        // connection still exists: no read of our own is needed.
        let id = ctx.connection_id()?;
        match ctx
            .deps
            .connections
            .subscribe(id, &self.topics, ctx.now)
            .await
        {
            Ok(()) => {}
            Err(shared::Error::NotFound { .. }) => return Err(FrameError::unregistered()),
            Err(e) => return Err(ctx.core(e)),
        }
        current_topics(ctx, id).await
    }
}

impl Unsubscribe {
    pub fn parse(parse: &mut Parse) -> Result<Self, FrameError> {
        Ok(Unsubscribe {
            topics: topics(parse)?,
        })
    }

    pub async fn apply(self, ctx: &Context<'_>) -> Result<Value, FrameError> {
        ctx.connection().await?;
        let id = ctx.connection_id()?;
        ctx.deps
            .connections
            .unsubscribe(id, &self.topics)
            .await
            .map_err(|e| ctx.core(e))?;
        current_topics(ctx, id).await
    }
}
