//! A cost question, validated once. REST `GET /costs`, the WebSocket
//! `analyzeCosts` action and the processor that runs a cost job all parse
//! through [`CostQuery::parse`], so what an edge acknowledges is exactly what
//! the processor accepts (a job's params are [`CostQuery::to_params`]).

use crate::{Error, Result};
use chrono::{DateTime, Days, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The cost metric reported: what was billed, before credits and discounts
/// are spread (Cost Explorer's default view).
pub const METRIC: &str = "UnblendedCost";

/// Days a question covers when it names no start.
pub const DEFAULT_DAYS: u64 = 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Granularity {
    Daily,
    Monthly,
}

impl Granularity {
    /// Cost Explorer's HOURLY needs an opt-in and date-time bounds; it is
    /// refused here rather than acknowledged and failed later.
    pub fn parse(s: &str) -> Option<Granularity> {
        match s.trim().to_ascii_uppercase().as_str() {
            "DAILY" => Some(Granularity::Daily),
            "MONTHLY" => Some(Granularity::Monthly),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Granularity::Daily => "DAILY",
            Granularity::Monthly => "MONTHLY",
        }
    }

    /// The longest range asked in one question: Cost Explorer keeps 13
    /// months of history by default (38 when opted in).
    pub fn max_days(self) -> i64 {
        match self {
            Granularity::Daily => 366,
            Granularity::Monthly => 38 * 31,
        }
    }
}

/// A Cost Explorer dimension costs can be grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dimension {
    Service,
    LinkedAccount,
    Region,
    UsageType,
    InstanceType,
    Operation,
    PurchaseType,
    Az,
}

impl Dimension {
    pub const ALL: [Dimension; 8] = [
        Dimension::Service,
        Dimension::LinkedAccount,
        Dimension::Region,
        Dimension::UsageType,
        Dimension::InstanceType,
        Dimension::Operation,
        Dimension::PurchaseType,
        Dimension::Az,
    ];

    /// Cost Explorer's name for it.
    pub fn key(self) -> &'static str {
        match self {
            Dimension::Service => "SERVICE",
            Dimension::LinkedAccount => "LINKED_ACCOUNT",
            Dimension::Region => "REGION",
            Dimension::UsageType => "USAGE_TYPE",
            Dimension::InstanceType => "INSTANCE_TYPE",
            Dimension::Operation => "OPERATION",
            Dimension::PurchaseType => "PURCHASE_TYPE",
            Dimension::Az => "AZ",
        }
    }

    /// The name clients see in reports; `service` and `account` keep the
    /// names the API has always used.
    pub fn label(self) -> &'static str {
        match self {
            Dimension::Service => "service",
            Dimension::LinkedAccount => "account",
            Dimension::Region => "region",
            Dimension::UsageType => "usage_type",
            Dimension::InstanceType => "instance_type",
            Dimension::Operation => "operation",
            Dimension::PurchaseType => "purchase_type",
            Dimension::Az => "az",
        }
    }

    fn parse(s: &str) -> Option<Dimension> {
        Dimension::ALL.into_iter().find(|d| {
            s.eq_ignore_ascii_case(d.key())
                || s.eq_ignore_ascii_case(d.label())
                || (*d == Dimension::LinkedAccount && s.eq_ignore_ascii_case("linked_account"))
        })
    }
}

/// How costs are grouped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupBy {
    None,
    Dimension(Dimension),
    Tag(String),
}

impl GroupBy {
    pub const SERVICE: GroupBy = GroupBy::Dimension(Dimension::Service);
    pub const ACCOUNT: GroupBy = GroupBy::Dimension(Dimension::LinkedAccount);

    /// A dimension by its label or Cost Explorer key (any case),
    /// `tag:<key>`, or `none` (also when absent).
    pub fn parse(s: Option<&str>) -> Option<GroupBy> {
        let v = match s.map(str::trim) {
            None | Some("") => return Some(GroupBy::None),
            Some(v) if v.eq_ignore_ascii_case("none") => return Some(GroupBy::None),
            Some(v) => v,
        };
        if let Some(d) = Dimension::parse(v) {
            return Some(GroupBy::Dimension(d));
        }
        let key = v.get(..4).filter(|p| p.eq_ignore_ascii_case("tag:"))?;
        let key = &v[key.len()..];
        (!key.is_empty() && key.chars().count() <= 128 && !key.chars().any(char::is_control))
            .then(|| GroupBy::Tag(key.to_string()))
    }

    pub fn label(&self) -> String {
        match self {
            GroupBy::None => "none".into(),
            GroupBy::Dimension(d) => d.label().into(),
            GroupBy::Tag(k) => format!("tag:{k}"),
        }
    }
}

/// A validated cost question. `end` is exclusive, as in Cost Explorer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CostQuery {
    pub start: NaiveDate,
    pub end: NaiveDate,
    pub granularity: Granularity,
    pub group_by: GroupBy,
}

/// The question as a job carries it: the fields of [`CostQuery::parse`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CostParams {
    #[serde(default)]
    start: Option<String>,
    #[serde(default)]
    end: Option<String>,
    #[serde(default)]
    granularity: Option<String>,
    #[serde(default)]
    group_by: Option<String>,
}

/// The earliest date a question may name: Cost Explorer holds nothing older
/// (13 months by default, 38 when opted in), and a bound keeps every date
/// computed from input far from the calendar's edge.
pub const EARLIEST: NaiveDate = match NaiveDate::from_ymd_opt(2000, 1, 1) {
    Some(d) => d,
    None => NaiveDate::MIN,
};

fn parse_date(field: &str, s: &str) -> Result<NaiveDate> {
    let d = NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").map_err(|_| {
        Error::Validation(format!("{field} must be a date as YYYY-MM-DD, got '{s}'"))
    })?;
    if d < EARLIEST {
        return Err(Error::Validation(format!(
            "{field} ({d}) is before {EARLIEST}; Cost Explorer holds no costs that old"
        )));
    }
    Ok(d)
}

impl CostQuery {
    /// Validates a question as a client asks it. Defaults: the last 30 days,
    /// daily, not grouped. Every date computed from input is checked, so no
    /// input can overflow the calendar.
    pub fn parse(
        start: Option<&str>,
        end: Option<&str>,
        granularity: Option<&str>,
        group_by: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<CostQuery> {
        let today = now.date_naive();
        let end = match end {
            Some(s) => parse_date("end", s)?,
            None => today,
        };
        let start = match start {
            Some(s) => parse_date("start", s)?,
            None => end
                .checked_sub_days(Days::new(DEFAULT_DAYS))
                .ok_or_else(|| Error::Validation(format!("end ({end}) is too far in the past")))?,
        };
        let granularity = match granularity {
            None => Granularity::Daily,
            Some(g) => Granularity::parse(g).ok_or_else(|| {
                Error::Validation(format!("granularity must be DAILY or MONTHLY, got '{g}'"))
            })?,
        };
        let group_by = GroupBy::parse(group_by).ok_or_else(|| {
            let names: Vec<&str> = Dimension::ALL.iter().map(|d| d.label()).collect();
            Error::Validation(format!(
                "groupBy must be one of {}, tag:<key> or none, got '{}'",
                names.join(", "),
                group_by.unwrap_or_default()
            ))
        })?;
        if start >= end {
            return Err(Error::Validation(format!(
                "start ({start}) must be before end ({end}); end is exclusive"
            )));
        }
        if today
            .checked_add_days(Days::new(1))
            .is_some_and(|t| end > t)
        {
            return Err(Error::Validation(format!(
                "end ({end}) is in the future; use /costs/forecast for what is to come"
            )));
        }
        if end.signed_duration_since(start).num_days() > granularity.max_days() {
            return Err(Error::Validation(format!(
                "{} costs cover at most {} days per question",
                granularity.as_str().to_lowercase(),
                granularity.max_days()
            )));
        }
        Ok(CostQuery {
            start,
            end,
            granularity,
            group_by,
        })
    }

    /// The normalised question, and its cache key: equal questions, however
    /// they were spelled, share one entry.
    pub fn normalised(&self) -> String {
        format!(
            "usage|v1|{}|{}|{}|{}|{}",
            self.start,
            self.end,
            self.granularity.as_str(),
            self.group_by.label(),
            METRIC
        )
    }

    pub fn cache_key(&self) -> String {
        let digest = Sha256::digest(self.normalised().as_bytes());
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// A job's params: `{start, end, granularity, groupBy}`.
    pub fn to_params(&self) -> serde_json::Value {
        serde_json::to_value(CostParams {
            start: Some(self.start.to_string()),
            end: Some(self.end.to_string()),
            granularity: Some(self.granularity.as_str().into()),
            group_by: Some(self.group_by.label()),
        })
        .unwrap_or_default()
    }

    /// A job's params as a question, through the same parser as the edges.
    pub fn from_params(params: &serde_json::Value, now: DateTime<Utc>) -> Result<CostQuery> {
        let p: CostParams = serde_json::from_value(params.clone())
            .map_err(|e| Error::Validation(format!("cost job params: {e}")))?;
        CostQuery::parse(
            p.start.as_deref(),
            p.end.as_deref(),
            p.granularity.as_deref(),
            p.group_by.as_deref(),
            now,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-23T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn equal_questions_share_a_key_however_spelled() {
        let q =
            |g, gb| CostQuery::parse(Some("2026-10-01"), Some("2026-11-01"), g, gb, now()).unwrap();
        let a = q(Some("daily"), Some("SERVICE"));
        let b = q(Some("DAILY"), Some("service"));
        assert_eq!(a.cache_key(), b.cache_key());
        assert_ne!(
            a.cache_key(),
            q(Some("MONTHLY"), Some("service")).cache_key()
        );
        assert_eq!(
            q(None, Some("LINKED_ACCOUNT")).cache_key(),
            q(None, Some("account")).cache_key()
        );
        assert_eq!(
            q(None, Some("TAG:team")).group_by,
            GroupBy::Tag("team".into())
        );
    }

    #[test]
    fn refuses_bad_questions() {
        for (s, e, g, gb) in [
            (Some("2026-13-01"), Some("2026-11-01"), None, None),
            (Some("2026-11-01"), Some("2026-10-01"), None, None),
            (Some("2026-10-01"), Some("2026-11-01"), Some("HOURLY"), None),
            (Some("2026-10-01"), Some("2026-11-01"), None, Some("colour")),
            (Some("2026-10-01"), Some("2026-11-01"), None, Some("tag:")),
            (Some("2024-01-01"), Some("2026-11-01"), Some("DAILY"), None),
            (Some("2026-10-01"), Some("2027-01-01"), None, None),
            // The calendar's edge: `end - 30 days` would overflow.
            (None, Some("-262143-01-05"), None, None),
            (None, Some("+262142-12-31"), None, None),
            (Some("1999-12-01"), Some("2000-01-05"), None, None),
            (None, Some("0000-01-01"), None, None),
        ] {
            assert!(
                matches!(
                    CostQuery::parse(s, e, g, gb, now()),
                    Err(Error::Validation(_))
                ),
                "{s:?} {e:?} {g:?} {gb:?}"
            );
        }
        let q = CostQuery::parse(None, None, None, Some("tag:team"), now()).unwrap();
        assert_eq!(q.group_by, GroupBy::Tag("team".into()));
        assert_eq!((q.end - q.start).num_days(), 30);
        let q = CostQuery::parse(None, None, None, Some("region"), now()).unwrap();
        assert_eq!(q.group_by, GroupBy::Dimension(Dimension::Region));
    }

    fn any_text() -> impl Strategy<Value = Option<String>> {
        prop_oneof![
            Just(None),
            "[-+]?[0-9]{1,6}-[0-9]{1,2}-[0-9]{1,2}".prop_map(Some),
            "2026-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])".prop_map(Some),
            "(?i)(daily|monthly|hourly|weekly|none|service|account|region|az|tag:[a-z]{0,3}|linked_account)"
                .prop_map(Some),
            ".{0,12}".prop_map(Some),
        ]
    }

    proptest! {
        /// Whatever is accepted survives the trip through a job's params
        /// unchanged, at the time it was asked or any later time.
        #[test]
        fn accepted_questions_round_trip_through_params(
            s in any_text(), e in any_text(), g in any_text(), gb in any_text(), later in 0i64..400
        ) {
            if let Ok(q) = CostQuery::parse(s.as_deref(), e.as_deref(), g.as_deref(), gb.as_deref(), now()) {
                let params = q.to_params();
                let back = CostQuery::from_params(&params, now() + chrono::Duration::days(later));
                prop_assert_eq!(back.ok(), Some(q));
            }
        }
    }
}
