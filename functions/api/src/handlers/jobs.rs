//! `GET /jobs/{id}`: one job's state.

use super::{to_json, Ctx, Res};
use crate::error::json_response;
use crate::extract::NoQuery;
use shared::store::*;

pub async fn get(ctx: &Ctx<'_>, id: &str, _: NoQuery) -> Res {
    let job = ctx
        .app
        .jobs
        .get(id, ctx.now)
        .await?
        .ok_or_else(|| shared::Error::not_found("job", id))?;
    Ok(json_response(200, &to_json(job)?))
}
