//! finops-lambda core: domain, analysis, persistence and AWS adapters.
//!
//! Nothing here knows about Lambda event types; the functions in `functions/`
//! translate events into calls on this crate.

pub mod analysis;
pub mod approvals;
pub mod auth;
pub mod calls;
pub mod channels;
pub mod collector;
pub mod config;
pub mod costs;
pub mod cycle;
pub mod discovery;
pub mod domain;
pub mod dynamo;
pub mod error;
pub mod execution;
pub mod jobs;
pub mod logging;
pub mod notify;
pub mod observe;
pub mod policies;
pub mod queue;
pub mod savings;
pub mod store;
pub mod tls;

pub use error::{Error, Result};
