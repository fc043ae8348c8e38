//! The local stack: the AWS emulator as a child process, and the tables and
//! queues of `template.yaml` created in it. Tests and `make dev` both use this
//! crate, so the template stays the one definition of every resource.

pub mod aws_estate;
pub mod demo_estate;
mod emulator;
pub mod estate;
pub mod event_source;
pub mod faults;
pub mod gateway;
pub mod rest;
pub mod schedule;
pub mod seed;
pub mod site;
pub mod synthetic;
mod template;

pub use emulator::{sdk_config, Emulator};
pub use template::{LocalStack, Template};

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error("emulator: {0}")]
    Emulator(String),
    #[error("template.yaml: {0}")]
    Template(String),
    #[error("creating {resource}: {message}")]
    Create { resource: String, message: String },
}

/// The repository root (this crate lives at `infra/local`).
/// Every approval request in `store`, following its pages to the end
/// (tests and benchmarks check what a cycle opened).
pub async fn all_requests(
    store: &dyn shared::store::ApprovalStore,
) -> shared::Result<Vec<shared::domain::ApprovalRequest>> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = store
            .list(
                &shared::store::ApprovalFilter::default(),
                Some(100),
                token.as_deref(),
            )
            .await?;
        out.extend(page.items);
        token = page.next_token;
        if token.is_none() {
            return Ok(out);
        }
    }
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap_or_else(|_| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")))
}
