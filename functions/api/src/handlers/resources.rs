//! `/resources`: the inventory the cycle analyses, listed, read and upserted.

use super::{page_json, problem, storable, to_json, unprocessable, Ctx, Res};
use crate::error::{json_response, ApiError};
use crate::extract::{field, NoQuery};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{json, Value};
use shared::domain::*;
use shared::store::*;

/// Most resources in one `POST /resources`.
pub const MAX_RESOURCE_BATCH: usize = 100;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ListQuery {
    #[serde(default, deserialize_with = "field::parsed")]
    service: Option<Service>,
    tag: Option<String>,
    account_id: Option<String>,
    region: Option<String>,
    #[serde(default, deserialize_with = "field::limit")]
    limit: Option<u32>,
    next_token: Option<String>,
}

fn is_account_id(a: &str) -> bool {
    a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit())
}

/// The `accountId` and `region` filters, checked.
fn scope_filters(account_id: &Option<String>, region: &Option<String>) -> Result<(), ApiError> {
    if account_id.as_deref().is_some_and(|a| !is_account_id(a)) {
        return Err(ApiError::bad_request(
            "accountId must be a 12-digit AWS account id",
        ));
    }
    if region
        .as_deref()
        .is_some_and(|r| r.trim().is_empty() || r.len() > 64)
    {
        return Err(ApiError::bad_request("region must be 1 to 64 characters"));
    }
    Ok(())
}

pub async fn list(ctx: &Ctx<'_>, q: ListQuery) -> Res {
    if q.tag
        .as_deref()
        .is_some_and(|t| t.is_empty() || t.starts_with('=') || t.len() > 256)
    {
        return Err(ApiError::bad_request("tag must be 'key' or 'key=value'"));
    }
    scope_filters(&q.account_id, &q.region)?;
    let filter = InventoryFilter {
        service: q.service,
        tag: q.tag,
        account_id: q.account_id,
        region: q.region,
    };
    let page = ctx
        .app
        .inventory
        .list(&filter, q.limit, q.next_token.as_deref())
        .await?;
    Ok(json_response(200, &page_json(page)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GetQuery {
    account_id: Option<String>,
    region: Option<String>,
}

/// One resource by id. A name is unique only within an account and region:
/// when it is held in several and the query does not say which, the answer
/// is 409 with the candidates, so a caller never gets an arbitrary one.
pub async fn get(ctx: &Ctx<'_>, id: &str, q: GetQuery) -> Res {
    scope_filters(&q.account_id, &q.region)?;
    let found: Vec<Resource> = match (&q.account_id, &q.region) {
        (Some(a), Some(r)) => ctx
            .app
            .inventory
            .get(&ResourceKey::new(Some(a), r, id))
            .await?
            .into_iter()
            .collect(),
        _ => ctx
            .app
            .inventory
            .find(id)
            .await?
            .into_iter()
            .filter(|r| q.account_id.is_none() || r.account_id == q.account_id)
            .filter(|r| q.region.as_ref().is_none_or(|want| &r.region == want))
            .collect(),
    };
    match <[Resource; 1]>::try_from(found) {
        Ok([r]) => Ok(json_response(200, &to_json(r)?)),
        Err(found) if found.is_empty() => Err(shared::Error::not_found("resource", id).into()),
        Err(found) => {
            let candidates: Vec<Value> = found
                .iter()
                .map(|r| json!({ "accountId": r.account_id, "region": r.region }))
                .collect();
            Err(ApiError::new(
                409,
                "ambiguous",
                format!(
                    "resource '{id}' exists in {} accounts or regions; give accountId and region",
                    found.len()
                ),
            )
            .with_details(json!({ "candidates": candidates })))
        }
    }
}

/// Largest resource record accepted: its audit entry carries it twice and
/// must stay well under DynamoDB's 400 KB item limit.
const MAX_RESOURCE_BYTES: usize = 32 * 1024;

/// Service-specific facts on one resource.
const MAX_ATTRIBUTES: usize = 100;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourcesBody {
    resources: Vec<Value>,
}

pub async fn upsert(ctx: &Ctx<'_>, _: NoQuery, b: ResourcesBody) -> Res {
    super::batch_bounds(b.resources.len(), MAX_RESOURCE_BATCH, "resources")?;
    let mut problems = Vec::new();
    let mut resources = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for (i, v) in b.resources.into_iter().enumerate() {
        if let Some(s) = v.get("service").and_then(Value::as_str) {
            if s.parse::<Service>().is_err() {
                problems.push(problem(i, "service", format!("unknown service '{s}'")));
                continue;
            }
        }
        if let Err(p) = storable(&v, 0) {
            problems.push(problem(i, "", p));
            continue;
        }
        let mut r: Resource = match serde_json::from_value(v) {
            Ok(r) => r,
            Err(e) => {
                problems.push(problem(i, "", e.to_string()));
                continue;
            }
        };
        if r.id.trim().is_empty() || r.id.len() > 512 {
            problems.push(problem(i, "id", "must be 1 to 512 characters"));
        }
        if r.region.trim().is_empty() || r.region.len() > 64 {
            problems.push(problem(i, "region", "must be 1 to 64 characters"));
        }
        if r.account_id.as_deref().is_some_and(|a| !is_account_id(a)) {
            problems.push(problem(i, "accountId", "must be a 12-digit AWS account id"));
        }
        if r.monthly_cost_usd
            .is_some_and(|c| !c.is_finite() || c < 0.0)
        {
            problems.push(problem(i, "monthlyCostUsd", "must be a finite number >= 0"));
        }
        if r.memory_mb == Some(0) {
            problems.push(problem(i, "memoryMb", "must be positive"));
        }
        if r.tags.len() > 50 {
            problems.push(problem(i, "tags", "at most 50 tags"));
        }
        // AWS's own tag limits.
        if r.tags
            .iter()
            .any(|(k, v)| k.is_empty() || k.chars().count() > 128 || v.chars().count() > 256)
        {
            problems.push(problem(
                i,
                "tags",
                "a tag key is 1 to 128 characters, a value at most 256",
            ));
        }
        if r.attributes.len() > MAX_ATTRIBUTES || r.attributes.keys().any(|k| k.len() > 255) {
            problems.push(problem(
                i,
                "attributes",
                format!("at most {MAX_ATTRIBUTES} attributes, each name at most 255 bytes"),
            ));
        }
        if r.resource_type
            .as_ref()
            .is_some_and(|t| t.chars().count() > 128)
        {
            problems.push(problem(i, "resourceType", "at most 128 characters"));
        }
        if r.relations.len() > 100 {
            problems.push(problem(i, "relations", "at most 100 relations"));
        }
        for rel in &r.relations {
            if rel.target_id.len() > 512 || rel.kind.len() > 64 {
                problems.push(problem(
                    i,
                    "relations",
                    "a relation's kind is at most 64 bytes and its targetId 512",
                ));
            } else if rel.target_id.trim().is_empty() || rel.kind.trim().is_empty() {
                problems.push(problem(
                    i,
                    "relations",
                    "each relation needs kind and targetId",
                ));
            } else if rel.target_id == r.id {
                problems.push(problem(
                    i,
                    "relations",
                    "a resource cannot relate to itself",
                ));
            }
        }
        if serde_json::to_vec(&r).map_or(0, |v| v.len()) > MAX_RESOURCE_BYTES {
            problems.push(problem(
                i,
                "",
                format!("larger than {MAX_RESOURCE_BYTES} bytes"),
            ));
        }
        // Without an account, a resource is the deploying account's: so a
        // push for a discovered resource of that account lands on it.
        if r.account_id.is_none() {
            r.account_id = ctx.app.config.home_account_id.clone();
        }
        if !seen.insert(r.key()) {
            problems.push(problem(
                i,
                "id",
                format!("'{}' in {} appears twice in the batch", r.id, r.scope()),
            ));
        }
        resources.push(r);
    }
    if !problems.is_empty() {
        return Err(unprocessable("resource problem(s)", problems));
    }
    // Pre-states for the audit trail, read before the write.
    let inventory = &ctx.app.inventory;
    // async_trait already boxes each call's future; collecting them first keeps
    // the stream free of closures over borrowed items (which would not be `Send`
    // for every lifetime, as the Lambda runtime needs).
    let keys: Vec<ResourceKey> = resources.iter().map(Resource::key).collect();
    let lookups: Vec<_> = keys.iter().map(|k| inventory.get(k)).collect();
    let before: Vec<Option<Resource>> = futures::stream::iter(lookups)
        .buffered(16)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<shared::Result<_>>()?;
    let written = ctx.app.inventory.upsert(&resources).await?;
    let created = before.iter().filter(|b| b.is_none()).count();
    // One entry per resource, so each carries its own pre- and post-state.
    let entries: Vec<AuditEntry> = resources
        .iter()
        .zip(&before)
        .map(|(r, b)| {
            ctx.audit_entry(
                "resource",
                &r.id,
                if b.is_some() {
                    AuditAction::ResourceUpdated
                } else {
                    AuditAction::ResourceCreated
                },
                b.as_ref().map(|b| json!(b)),
                Some(json!(r)),
            )
        })
        .collect();
    let audit = &ctx.app.audit;
    let appends: Vec<_> = entries.iter().map(|e| audit.append(e)).collect();
    futures::stream::iter(appends)
        .buffered(16)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<shared::Result<Vec<()>>>()?;
    Ok(json_response(
        200,
        &json!({ "written": written, "created": created, "updated": written - created.min(written) }),
    ))
}
