//! Costs and forecasts from Cost Explorer.
//!
//! Every Cost Explorer request costs USD 0.01 (each page counts), so answers
//! are cached in DynamoDB under a hash of the normalised question: the same
//! question inside the cache's lifetime makes no Cost Explorer call at all.
//! The question itself is [`crate::domain::cost_query`]; [`port`] is what a
//! source and a cache must do, [`explorer`] the SDK adapter, [`service`] the
//! use cases.

pub mod explorer;
pub mod forecast;
pub mod port;
pub mod service;

pub use crate::domain::cost_query::{CostQuery, Dimension, Granularity, GroupBy, METRIC};
pub use explorer::CostExplorerSource;
pub use port::{CostCache, CostQuota, CostReport, CostSource, GroupCost, PeriodCost};
pub use service::{
    daily_series, run_cost_job, Allowance, CostJobOutcome, Costs, ForecastReport, ForecastSource,
    FORECAST_HISTORY_DAYS, MAX_FORECAST_DAYS,
};
