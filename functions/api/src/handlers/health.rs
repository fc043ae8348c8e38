//! `GET /health`: unauthenticated liveness.

use super::{Ctx, Res};
use crate::error::json_response;
use crate::extract::NoQuery;
use serde_json::json;

pub async fn get(ctx: &Ctx<'_>, _: NoQuery) -> Res {
    Ok(json_response(
        200,
        &json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION"), "time": ctx.now }),
    ))
}
