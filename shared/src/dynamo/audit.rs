use super::*;
use crate::domain::AuditEntry;
use crate::store::{clamp_limit, AuditQuery, AuditStore, Page};
use async_trait::async_trait;
use chrono::{Duration as ChronoDuration, NaiveDate};

/// Audit table, key (`entityId`, `sk` = `<time>#<id>`), append-only.
/// GSIs `byActor`, `byAction` and `byDay` (`YYYY-MM-DD`) share the same sort
/// key, so every query the API offers is a Query over a time range.
#[derive(Clone, Debug)]
pub struct DynamoAudit {
    client: Client,
    table: String,
    tokens: PageTokenCodec,
}

/// The default retention of audit entries.
pub const AUDIT_RETENTION_DAYS: i64 = 90;

pub(crate) fn audit_item(entry: &AuditEntry) -> Result<Item> {
    let mut item = to_item(entry)?;
    item.insert(
        "sk".into(),
        s(format!("{}#{}", sortable(entry.at), entry.id)),
    );
    item.insert("day".into(), s(entry.at.format("%Y-%m-%d").to_string()));
    item.insert(
        "ttl".into(),
        n((entry.at + ChronoDuration::days(AUDIT_RETENTION_DAYS)).timestamp()),
    );
    Ok(item)
}

/// Where a time-only listing stands: the day being read and the position in it.
#[derive(serde::Serialize, serde::Deserialize)]
struct DayPosition {
    day: NaiveDate,
    key: Option<KeyPosition>,
}

impl DynamoAudit {
    pub fn new(client: Client, table: impl Into<String>, tokens: PageTokenCodec) -> Self {
        DynamoAudit {
            client,
            table: table.into(),
            tokens,
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn query_index(
        &self,
        index: Option<&str>,
        key_attr: &str,
        key_value: &str,
        q: &AuditQuery,
        lo: &str,
        hi: &str,
        limit: i32,
        start: Option<Item>,
        now: DateTime<Utc>,
    ) -> Result<(Vec<AuditEntry>, Option<Item>)> {
        let mut filters = vec![TTL_FILTER];
        let mut req = self
            .client
            .query()
            .table_name(&self.table)
            .set_index_name(index.map(str::to_string))
            .key_condition_expression("#k = :k AND sk BETWEEN :lo AND :hi")
            .expression_attribute_names("#k", key_attr)
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":k", s(key_value))
            .expression_attribute_values(":lo", s(lo))
            .expression_attribute_values(":hi", s(hi))
            .expression_attribute_values(":now", n(now.timestamp()))
            .scan_index_forward(false)
            .limit(limit)
            .set_exclusive_start_key(start);
        // The index picks one dimension; the others become filters.
        for (attr, value) in [
            ("entityId", &q.entity_id),
            ("actor", &q.actor),
            ("action", &q.action),
        ] {
            if let Some(v) = value {
                if attr != key_attr {
                    let (name, val) = match attr {
                        "entityId" => ("#fe = :fe", ("#fe", ":fe")),
                        "actor" => ("#fa = :fa", ("#fa", ":fa")),
                        _ => ("#fx = :fx", ("#fx", ":fx")),
                    };
                    filters.push(name);
                    req = req
                        .expression_attribute_names(val.0, attr)
                        .expression_attribute_values(val.1, s(v.clone()));
                }
            }
        }
        let out = req
            .filter_expression(filters.join(" AND "))
            .send()
            .await
            .map_err(|e| Error::from_sdk("Query", e))?;
        let entries = out
            .items
            .unwrap_or_default()
            .into_iter()
            .filter(|i| is_live(i, now))
            .map(from_item)
            .collect::<Result<Vec<AuditEntry>>>()?;
        Ok((entries, out.last_evaluated_key))
    }
}

#[async_trait]
impl AuditStore for DynamoAudit {
    async fn append(&self, entry: &AuditEntry) -> Result<()> {
        let res = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(audit_item(entry)?))
            .condition_expression("attribute_not_exists(entityId)")
            .send()
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(e) if is_conditional_failure(&e) => Err(Error::AlreadyExists {
                entity: "audit entry",
                id: entry.id.clone(),
            }),
            Err(e) => Err(Error::from_sdk("PutItem", e)),
        }
    }

    async fn query(
        &self,
        q: &AuditQuery,
        limit: Option<u32>,
        token: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Page<AuditEntry>> {
        let to = q.to.unwrap_or(now);
        let from = q
            .from
            .unwrap_or(to - ChronoDuration::days(AUDIT_RETENTION_DAYS));
        if from > to {
            return Err(Error::Validation("'from' is after 'to'".into()));
        }
        let lo = sortable(from);
        let hi = format!("{}#~", sortable(to));
        let limit = clamp_limit(limit);
        let scope = format!("{}:audit:{q:?}", self.table);

        let indexed = if let Some(e) = &q.entity_id {
            Some((None, "entityId", e.clone()))
        } else if let Some(a) = &q.actor {
            Some((Some("byActor"), "actor", a.clone()))
        } else {
            q.action
                .as_ref()
                .map(|a| (Some("byAction"), "action", a.clone()))
        };
        if let Some((index, key_attr, key_value)) = indexed {
            let mut key_attrs = vec!["entityId", "sk"];
            if key_attr != "entityId" {
                key_attrs.push(key_attr);
            }
            let start = decode_start(&self.tokens, &scope, token, &key_attrs)?;
            let (items, lek) = self
                .query_index(index, key_attr, &key_value, q, &lo, &hi, limit, start, now)
                .await?;
            return Ok(Page {
                items,
                next_token: encode_next(&self.tokens, &scope, lek.as_ref())?,
            });
        }

        // Time only: walk the byDay index from the newest day back.
        let first_day = from.date_naive();
        let (mut day, mut start) = match token {
            None | Some("") => (to.date_naive(), None),
            Some(t) => {
                let pos: DayPosition = self.tokens.decode(&scope, t)?;
                if pos.day < first_day || pos.day > to.date_naive() {
                    return Err(Error::Validation(
                        "nextToken is outside the requested period".into(),
                    ));
                }
                let key = pos
                    .key
                    .map(|k| k.into_key(&["entityId", "sk", "day"]))
                    .transpose()?;
                (pos.day, key)
            }
        };
        let mut items = Vec::new();
        loop {
            let want = limit - items.len() as i32;
            let (mut got, lek) = self
                .query_index(
                    Some("byDay"),
                    "day",
                    &day.format("%Y-%m-%d").to_string(),
                    q,
                    &lo,
                    &hi,
                    want,
                    start.take(),
                    now,
                )
                .await?;
            items.append(&mut got);
            let next = match lek {
                Some(k) if !k.is_empty() => Some(DayPosition {
                    day,
                    key: Some(KeyPosition::from_item(&k)?),
                }),
                _ => day
                    .pred_opt()
                    .filter(|d| *d >= first_day)
                    .map(|d| DayPosition { day: d, key: None }),
            };
            match next {
                None => {
                    return Ok(Page {
                        items,
                        next_token: None,
                    })
                }
                Some(pos) if items.len() as i32 >= limit => {
                    return Ok(Page {
                        items,
                        next_token: Some(self.tokens.encode(&scope, &pos)?),
                    })
                }
                Some(pos) => {
                    day = pos.day;
                    start = pos
                        .key
                        .map(|k| k.into_key(&["entityId", "sk", "day"]))
                        .transpose()?;
                }
            }
        }
    }
}
