use super::*;
use crate::domain::ThresholdSet;
use crate::store::{clamp_limit, Page, ThresholdStore};
use async_trait::async_trait;

const SET_ID: &str = "thresholds";

/// Thresholds table: key (`setId`, `version`); every version is kept.
#[derive(Clone, Debug)]
pub struct DynamoThresholds {
    client: Client,
    table: String,
    tokens: PageTokenCodec,
}

impl DynamoThresholds {
    pub fn new(client: Client, table: impl Into<String>, tokens: PageTokenCodec) -> Self {
        DynamoThresholds {
            client,
            table: table.into(),
            tokens,
        }
    }

    async fn page(
        &self,
        limit: i32,
        start: Option<Item>,
    ) -> Result<(Vec<ThresholdSet>, Option<Item>)> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("setId = :id")
            .expression_attribute_values(":id", s(SET_ID))
            .scan_index_forward(false)
            .limit(limit)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| Error::from_sdk("Query", e))?;
        let sets = out
            .items
            .unwrap_or_default()
            .into_iter()
            .map(from_item)
            .collect::<Result<Vec<ThresholdSet>>>()?;
        Ok((sets, out.last_evaluated_key))
    }
}

#[async_trait]
impl ThresholdStore for DynamoThresholds {
    async fn put_version(&self, set: &ThresholdSet) -> Result<()> {
        let mut item = to_item(set)?;
        item.insert("setId".into(), s(SET_ID));
        let res = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(setId)")
            .send()
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(e) if is_conditional_failure(&e) => Err(Error::Conflict(format!(
                "threshold version {} exists already",
                set.version
            ))),
            Err(e) => Err(Error::from_sdk("PutItem", e)),
        }
    }

    async fn latest(&self) -> Result<Option<ThresholdSet>> {
        Ok(self.page(1, None).await?.0.into_iter().next())
    }

    async fn history(&self, limit: Option<u32>, token: Option<&str>) -> Result<Page<ThresholdSet>> {
        let scope = format!("{}:history", self.table);
        let start = decode_start(&self.tokens, &scope, token, &["setId", "version"])?;
        let (items, lek) = self.page(clamp_limit(limit), start).await?;
        Ok(Page {
            items,
            next_token: encode_next(&self.tokens, &scope, lek.as_ref())?,
        })
    }
}
