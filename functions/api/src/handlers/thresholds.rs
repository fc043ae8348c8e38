//! `/thresholds`: the versioned rule set the analysis judges by.

use super::{page_json, to_json, Ctx, Res};
use crate::error::{json_response, ApiError};
use crate::extract::{field, NoQuery};
use serde::Deserialize;
use serde_json::json;
use shared::analysis::{default_thresholds, validate_set};
use shared::domain::*;
use shared::store::*;

/// `GET /thresholds`: the current set; the built-in defaults before any was stored.
pub async fn get(ctx: &Ctx<'_>, _: NoQuery) -> Res {
    let set = match ctx.app.thresholds.latest().await? {
        Some(s) => s,
        None => default_thresholds()?,
    };
    Ok(json_response(200, &to_json(set)?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThresholdsBody {
    rules: Vec<ThresholdRule>,
    note: Option<String>,
    /// The version the change was based on; when given, a newer stored
    /// version makes the write a 409 instead of silently replacing it.
    #[serde(rename = "baseVersion")]
    base_version: Option<u32>,
}

/// `POST /thresholds`: a new version, validated whole.
pub async fn put(ctx: &Ctx<'_>, _: NoQuery, b: ThresholdsBody) -> Res {
    if b.rules.is_empty() {
        return Err(ApiError::new(422, "unprocessable", "rules is empty"));
    }
    if b.note.as_ref().is_some_and(|n| n.len() > 1000) {
        return Err(ApiError::new(
            422,
            "unprocessable",
            "note is longer than 1000 characters",
        ));
    }
    if let Some(problems) = unbounded(&b.rules) {
        return Err(
            ApiError::new(422, "unprocessable", "the threshold set is not valid")
                .with_details(json!({ "problems": problems })),
        );
    }
    if let Some(problems) = unstorable_numbers(&b.rules) {
        return Err(
            ApiError::new(422, "unprocessable", "the threshold set is not valid")
                .with_details(json!({ "problems": problems })),
        );
    }
    let current = ctx.app.thresholds.latest().await?;
    let current_version = current.as_ref().map_or(0, |s| s.version);
    if let Some(base) = b.base_version {
        if base != current_version {
            return Err(ApiError::new(
                409,
                "conflict",
                format!("thresholds are at version {current_version}, not {base}"),
            )
            .with_details(json!({ "currentVersion": current_version })));
        }
    }
    let set = ThresholdSet {
        version: current_version + 1,
        created_at: ctx.now,
        created_by: ctx.actor.clone(),
        note: b.note,
        rules: b.rules,
    };
    if let Err(e) = validate_set(&set) {
        let message = match e {
            shared::Error::Validation(m) => m,
            other => return Err(other.into()),
        };
        return Err(
            ApiError::new(422, "unprocessable", "the threshold set is not valid")
                .with_details(json!({ "problems": message.split("; ").collect::<Vec<_>>() })),
        );
    }
    if serde_json::to_vec(&set).map_or(0, |v| v.len()) > 300 * 1024 {
        return Err(ApiError::new(
            413,
            "payload_too_large",
            "a threshold set is at most 300 KB",
        ));
    }
    // Conditional on the version not existing: of two admins racing, one gets 409.
    ctx.app.thresholds.put_version(&set).await?;
    let mut entry = ctx.audit_entry(
        "thresholds",
        "thresholds",
        AuditAction::ThresholdsUpdated,
        Some(json!({ "version": current_version })),
        Some(json!({ "version": set.version, "rules": set.rules.len(), "note": set.note })),
    );
    entry.id = format!("thresholds|v{}", set.version);
    ctx.app.audit.append(&entry).await?;
    Ok(json_response(201, &to_json(&set)?))
}

/// Rules in one set: the built-in set has 25.
const MAX_RULES: usize = 200;
const MAX_CONDITIONS: usize = 20;
const MAX_RULE_ID: usize = 128;
const MAX_DESCRIPTION: usize = 1000;
const MAX_NAME: usize = 255;

/// Counts and lengths past the bounds, checked before the rules are
/// validated so a refusal's problem list stays small whatever was sent.
fn unbounded(rules: &[ThresholdRule]) -> Option<Vec<String>> {
    if rules.len() > MAX_RULES {
        return Some(vec![format!(
            "at most {MAX_RULES} rules, got {}",
            rules.len()
        )]);
    }
    let mut problems = Vec::new();
    for (i, r) in rules.iter().enumerate() {
        if r.id.chars().count() > MAX_RULE_ID {
            problems.push(format!(
                "rules[{i}].id is longer than {MAX_RULE_ID} characters"
            ));
        }
        if r.description.chars().count() > MAX_DESCRIPTION {
            problems.push(format!(
                "rules[{i}].description is longer than {MAX_DESCRIPTION} characters"
            ));
        }
        if r.conditions.len() > MAX_CONDITIONS {
            problems.push(format!(
                "rules[{i}] has more than {MAX_CONDITIONS} conditions"
            ));
        }
        if r.conditions
            .iter()
            .any(|c| c.metric.len() > MAX_NAME || c.statistic.len() > MAX_NAME)
        {
            problems.push(format!(
                "rules[{i}]: a condition's metric or statistic is longer than {MAX_NAME} bytes"
            ));
        }
    }
    (!problems.is_empty()).then_some(problems)
}

/// The rules' numbers DynamoDB could not store, worded as `validate_set`
/// words its problems; `None` when every number is storable.
fn unstorable_numbers(rules: &[ThresholdRule]) -> Option<Vec<String>> {
    let mut problems = Vec::new();
    for (i, r) in rules.iter().enumerate() {
        let mut check = |field: String, x: Option<f64>| {
            if let Some(Err(e)) = x.map(number::storable) {
                problems.push(format!("rules[{i}].{field} {e}"));
            }
        };
        check("minCoverage".into(), Some(r.min_coverage));
        check("headroomPercent".into(), r.headroom_percent);
        for (j, c) in r.conditions.iter().enumerate() {
            check(format!("conditions[{j}].value"), Some(c.value));
            check(format!("conditions[{j}].upper"), c.upper);
        }
    }
    (!problems.is_empty()).then_some(problems)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HistoryQuery {
    #[serde(default, deserialize_with = "field::limit")]
    limit: Option<u32>,
    next_token: Option<String>,
}

/// `GET /thresholds/history`: every version, newest first.
pub async fn history(ctx: &Ctx<'_>, q: HistoryQuery) -> Res {
    let page = ctx
        .app
        .thresholds
        .history(q.limit, q.next_token.as_deref())
        .await?;
    Ok(json_response(200, &page_json(page)))
}
