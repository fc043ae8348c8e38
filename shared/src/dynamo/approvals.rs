use super::*;
use crate::domain::{Action, ApprovalRequest, ApprovalStatus, AuditEntry, Decision, ResourceKey};
use crate::store::{clamp_limit, ApprovalFilter, ApprovalStore, CreateOutcome, Page};
use async_trait::async_trait;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::KeysAndAttributes;
use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem, Update};
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use std::collections::HashMap;

/// Approvals table, key (`pk`, `sk`), three item kinds:
/// - request  `REQ#<id>` / `META`: the request, with top-level `status`,
///   `resourceId`, `service` and `sortKey` projected into the GSIs
///   `byStatus`, `byResource` and `byCreated` (sparse: only requests carry them);
/// - decision `REQ#<id>` / `DECISION#<from-status>`: written once per transition;
/// - open lock `OPEN#<account>#<region>#<resourceId>#<action>` / `LOCK`:
///   exists while a request for that resource and action is open, so a
///   second one cannot be created (one name in two accounts or regions is
///   two resources, with a lock each).
#[derive(Clone, Debug)]
pub struct DynamoApprovals {
    client: Client,
    table: String,
    audit_table: String,
    tokens: PageTokenCodec,
}

fn request_pk(id: &str) -> String {
    format!("REQ#{id}")
}

fn lock_pk(req: &ApprovalRequest) -> String {
    lock_key(&req.recommendation.key(), req.recommendation.action)
}

fn lock_key(resource: &ResourceKey, action: Action) -> String {
    format!("OPEN#{resource}#{}", action.as_str())
}

/// BatchGetItem's limit of keys a call.
const BATCH_GET_KEYS: usize = 100;
/// Rounds of UnprocessedKeys retried before giving up (each after a pause).
const BATCH_GET_ROUNDS: u32 = 5;

fn build<T, E: std::fmt::Display>(r: std::result::Result<T, E>) -> Result<T> {
    r.map_err(|e| Error::Internal(format!("building DynamoDB request: {e}")))
}

/// Which actions of a cancelled transaction failed their condition.
fn cancelled_reasons(
    err: &SdkError<TransactWriteItemsError, aws_smithy_runtime_api::http::Response>,
) -> Option<Vec<bool>> {
    match err.as_service_error()? {
        TransactWriteItemsError::TransactionCanceledException(e) => Some(
            e.cancellation_reasons()
                .iter()
                .map(|r| r.code() == Some("ConditionalCheckFailed"))
                .collect(),
        ),
        _ => None,
    }
}

fn is_transaction_conflict(
    err: &SdkError<TransactWriteItemsError, aws_smithy_runtime_api::http::Response>,
) -> bool {
    matches!(
        err.as_service_error(),
        Some(TransactWriteItemsError::TransactionCanceledException(_))
    ) || err
        .as_service_error()
        .and_then(|e| e.code())
        .is_some_and(|c| c == "TransactionConflictException")
}

impl DynamoApprovals {
    pub fn new(
        client: Client,
        table: impl Into<String>,
        audit_table: impl Into<String>,
        tokens: PageTokenCodec,
    ) -> Self {
        DynamoApprovals {
            client,
            table: table.into(),
            audit_table: audit_table.into(),
            tokens,
        }
    }

    fn request_item(&self, req: &ApprovalRequest) -> Result<Item> {
        let mut item = to_item(req)?;
        item.insert("pk".into(), s(request_pk(&req.id)));
        item.insert("sk".into(), s("META"));
        item.insert("entity".into(), s("approval"));
        item.insert(
            "resourceId".into(),
            s(req.recommendation.resource_id.clone()),
        );
        item.insert("service".into(), s(req.recommendation.service.as_str()));
        item.insert(
            "sortKey".into(),
            s(format!("{}#{}", sortable(req.created_at), req.id)),
        );
        Ok(item)
    }

    fn audit_put(&self, entry: &AuditEntry) -> Result<TransactWriteItem> {
        let item = audit::audit_item(entry)?;
        Ok(TransactWriteItem::builder()
            .put(build(
                Put::builder()
                    .table_name(&self.audit_table)
                    .set_item(Some(item))
                    .condition_expression("attribute_not_exists(entityId)")
                    .build(),
            )?)
            .build())
    }

    async fn open_lock_holder(&self, req: &ApprovalRequest) -> Result<Option<String>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(lock_pk(req)))
            .key("sk", s("LOCK"))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| Error::from_sdk("GetItem", e))?;
        Ok(out.item.and_then(|mut i| match i.remove("requestId") {
            Some(AttributeValue::S(id)) => Some(id),
            _ => None,
        }))
    }
}

#[async_trait]
impl ApprovalStore for DynamoApprovals {
    async fn create(&self, request: &ApprovalRequest, audit: &AuditEntry) -> Result<CreateOutcome> {
        let lock: Item = [
            ("pk".to_string(), s(lock_pk(request))),
            ("sk".to_string(), s("LOCK")),
            ("requestId".to_string(), s(request.id.clone())),
        ]
        .into();
        let res = self
            .client
            .transact_write_items()
            .transact_items(
                TransactWriteItem::builder()
                    .put(build(
                        Put::builder()
                            .table_name(&self.table)
                            .set_item(Some(self.request_item(request)?))
                            .condition_expression("attribute_not_exists(pk)")
                            .build(),
                    )?)
                    .build(),
            )
            .transact_items(
                TransactWriteItem::builder()
                    .put(build(
                        Put::builder()
                            .table_name(&self.table)
                            .set_item(Some(lock))
                            .condition_expression("attribute_not_exists(pk)")
                            .build(),
                    )?)
                    .build(),
            )
            .transact_items(self.audit_put(audit)?)
            .send()
            .await;
        match res {
            Ok(_) => Ok(CreateOutcome::Created),
            Err(e) if is_transaction_conflict(&e) => {
                // Either this very request exists (a redelivery) or another
                // open request holds the lock: both mean "do not create".
                let reasons = cancelled_reasons(&e).unwrap_or_default();
                if reasons.first().copied().unwrap_or(false) {
                    return Ok(CreateOutcome::AlreadyOpen {
                        existing_id: request.id.clone(),
                    });
                }
                match self.open_lock_holder(request).await? {
                    Some(existing_id) => Ok(CreateOutcome::AlreadyOpen { existing_id }),
                    None => Err(Error::Conflict(format!(
                        "creating approval request {} raced with another writer",
                        request.id
                    ))),
                }
            }
            Err(e) => Err(Error::from_sdk("TransactWriteItems", e)),
        }
    }

    async fn open_requests(
        &self,
        keys: &[(ResourceKey, Action)],
    ) -> Result<HashMap<(ResourceKey, Action), String>> {
        let by_pk: HashMap<String, &(ResourceKey, Action)> =
            keys.iter().map(|k| (lock_key(&k.0, k.1), k)).collect();
        let mut pks: Vec<&String> = by_pk.keys().collect();
        pks.sort();
        let mut open = HashMap::new();
        for chunk in pks.chunks(BATCH_GET_KEYS) {
            let mut pending: Vec<Item> = chunk
                .iter()
                .map(|pk| {
                    [
                        ("pk".to_string(), s(pk.as_str())),
                        ("sk".to_string(), s("LOCK")),
                    ]
                    .into()
                })
                .collect();
            let mut round = 0;
            while !pending.is_empty() {
                if round == BATCH_GET_ROUNDS {
                    return Err(Error::Unavailable(format!(
                        "BatchGetItem left {} open-locks unread after {round} rounds",
                        pending.len()
                    )));
                }
                if round > 0 {
                    tokio::time::sleep(std::time::Duration::from_millis(50 << round)).await;
                }
                round += 1;
                let request = build(
                    KeysAndAttributes::builder()
                        .set_keys(Some(std::mem::take(&mut pending)))
                        .consistent_read(true)
                        .build(),
                )?;
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(|e| Error::from_sdk("BatchGetItem", e))?;
                for mut item in out
                    .responses
                    .unwrap_or_default()
                    .remove(&self.table)
                    .unwrap_or_default()
                {
                    if let (Some(AttributeValue::S(pk)), Some(AttributeValue::S(id))) =
                        (item.remove("pk"), item.remove("requestId"))
                    {
                        if let Some(k) = by_pk.get(&pk) {
                            open.insert((*k).clone(), id);
                        }
                    }
                }
                pending = out
                    .unprocessed_keys
                    .and_then(|mut u| u.remove(&self.table))
                    .map(|k| k.keys)
                    .unwrap_or_default();
            }
        }
        Ok(open)
    }

    async fn get(&self, id: &str) -> Result<Option<ApprovalRequest>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(request_pk(id)))
            .key("sk", s("META"))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| Error::from_sdk("GetItem", e))?;
        out.item.map(from_item).transpose()
    }

    async fn record(
        &self,
        current: &ApprovalRequest,
        next: &ApprovalRequest,
        decision: &Decision,
        audit: &AuditEntry,
    ) -> Result<()> {
        if current.id != next.id || next.version != current.version + 1 {
            return Err(Error::Internal(
                "record: next is not the successor of current".into(),
            ));
        }
        // A decision from pending also holds the stored expiry to the
        // decision's time, so no path that skips or races the domain's check
        // approves an expired request. `expiresAt` is an ISO-8601 string
        // whose fixed-width prefix sorts as time; comparing it with the
        // decision's whole second keeps the condition from ever refusing
        // what the domain accepted (the domain's check is the exact one).
        let decides = current.status == ApprovalStatus::Pending
            && matches!(
                next.status,
                ApprovalStatus::Approved | ApprovalStatus::Rejected
            );
        // The execution fields travel with the status: `scheduledFor` lives
        // only while scheduled, `changedResource` once a step changed it.
        let mut expression = String::from(
            "SET #status = :to, #version = :next, updatedAt = :now, changedResource = :changed",
        );
        let mut update = Update::builder()
            .table_name(&self.table)
            .key("pk", s(request_pk(&current.id)))
            .key("sk", s("META"));
        // A policy's approval brings the window its execution waits for.
        if let Some(window) = next
            .execution_window
            .as_ref()
            .filter(|_| next.execution_window != current.execution_window)
        {
            expression.push_str(", executionWindow = :window");
            update = update.expression_attribute_values(":window", to_av(window)?);
        }
        match next.scheduled_for {
            Some(at) => {
                expression.push_str(", scheduledFor = :scheduledFor");
                update = update.expression_attribute_values(":scheduledFor", to_av(&at)?);
            }
            None => expression.push_str(" REMOVE scheduledFor"),
        }
        let mut update = update
            .update_expression(expression)
            .expression_attribute_values(":changed", AttributeValue::Bool(next.changed_resource))
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(":to", to_av(&next.status)?)
            .expression_attribute_values(":from", to_av(&current.status)?)
            .expression_attribute_values(":next", n(next.version))
            .expression_attribute_values(":expected", n(current.version))
            .expression_attribute_values(":now", to_av(&next.updated_at)?);
        update = if decides {
            update
                .condition_expression(
                    "#version = :expected AND #status = :from AND expiresAt > :decidedAt",
                )
                .expression_attribute_values(
                    ":decidedAt",
                    s(next.updated_at.format("%Y-%m-%dT%H:%M:%S").to_string()),
                )
        } else {
            update.condition_expression("#version = :expected AND #status = :from")
        };
        let update = build(update.build())?;
        let mut decision_item = to_item(decision)?;
        decision_item.insert("pk".into(), s(request_pk(&current.id)));
        decision_item.insert(
            "sk".into(),
            s(format!("DECISION#{}", decision.from.as_str())),
        );
        let mut tx = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(update).build())
            .transact_items(
                TransactWriteItem::builder()
                    .put(build(
                        Put::builder()
                            .table_name(&self.table)
                            .set_item(Some(decision_item))
                            .condition_expression("attribute_not_exists(pk)")
                            .build(),
                    )?)
                    .build(),
            )
            .transact_items(self.audit_put(audit)?);
        if current.status.is_open() && !next.status.is_open() {
            tx = tx.transact_items(
                TransactWriteItem::builder()
                    .delete(build(
                        Delete::builder()
                            .table_name(&self.table)
                            .key("pk", s(lock_pk(current)))
                            .key("sk", s("LOCK"))
                            .condition_expression("attribute_not_exists(pk) OR requestId = :id")
                            .expression_attribute_values(":id", s(current.id.clone()))
                            .build(),
                    )?)
                    .build(),
            );
        }
        match tx.send().await {
            Ok(_) => Ok(()),
            Err(e) if is_transaction_conflict(&e) => Err(Error::Conflict(format!(
                "approval request {} changed since version {} was read",
                current.id, current.version
            ))),
            Err(e) => Err(Error::from_sdk("TransactWriteItems", e)),
        }
    }

    async fn decisions(&self, request_id: &str) -> Result<Vec<Decision>> {
        let items: Vec<Item> = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :d)")
            .expression_attribute_values(":pk", s(request_pk(request_id)))
            .expression_attribute_values(":d", s("DECISION#"))
            .consistent_read(true)
            .into_paginator()
            .items()
            .send()
            .collect::<std::result::Result<Vec<_>, _>>()
            .await
            .map_err(|e| Error::from_sdk("Query", e))?;
        let mut decisions = items
            .into_iter()
            .map(from_item)
            .collect::<Result<Vec<Decision>>>()?;
        decisions.sort_by_key(|d| d.decided_at);
        Ok(decisions)
    }

    async fn list(
        &self,
        filter: &ApprovalFilter,
        limit: Option<u32>,
        token: Option<&str>,
    ) -> Result<Page<ApprovalRequest>> {
        let (index, key_attr, key_value) = if let Some(r) = &filter.resource_id {
            ("byResource", "resourceId", r.clone())
        } else if let Some(st) = filter.status {
            ("byStatus", "status", st.as_str().to_string())
        } else {
            ("byCreated", "entity", "approval".to_string())
        };
        let mut filters = Vec::new();
        let mut req = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(index)
            .key_condition_expression("#k = :k")
            .expression_attribute_names("#k", key_attr)
            .expression_attribute_values(":k", s(key_value.clone()))
            .scan_index_forward(false)
            .limit(clamp_limit(limit));
        if let (Some(st), true) = (filter.status, index != "byStatus") {
            filters.push("#status = :status");
            req = req
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":status", s(st.as_str()));
        }
        if let Some(svc) = filter.service {
            filters.push("#service = :service");
            req = req
                .expression_attribute_names("#service", "service")
                .expression_attribute_values(":service", s(svc.as_str()));
        }
        if !filters.is_empty() {
            req = req.filter_expression(filters.join(" AND "));
        }
        let scope = format!(
            "{}:{index}:{key_value}:{:?}:{:?}",
            self.table, filter.status, filter.service
        );
        let key_attrs = ["pk", "sk", key_attr, "sortKey"];
        let start = decode_start(&self.tokens, &scope, token, &key_attrs)?;
        let (items, lek) = filled_page(clamp_limit(limit) as usize, &key_attrs, start, |start| {
            let req = req.clone().set_exclusive_start_key(start);
            async move {
                let out = req.send().await.map_err(|e| Error::from_sdk("Query", e))?;
                Ok((out.items.unwrap_or_default(), out.last_evaluated_key))
            }
        })
        .await?;
        let items = items
            .into_iter()
            .map(from_item)
            .collect::<Result<Vec<ApprovalRequest>>>()?;
        Ok(Page {
            items,
            next_token: encode_next(&self.tokens, &scope, lek.as_ref())?,
        })
    }
}
