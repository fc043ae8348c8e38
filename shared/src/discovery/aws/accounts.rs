//! The accounts of the estate: the deploying account (STS
//! GetCallerIdentity), the active accounts of the Organization
//! (ListAccounts, paginated), and the member role assumed in each.

use crate::{Error, Result};
use aws_config::sts::AssumeRoleProvider;
use aws_config::SdkConfig;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sdk_organizations::types::AccountStatus;

/// The account the deployment's credentials belong to.
pub(super) async fn caller_account(base: &SdkConfig) -> Result<String> {
    let out = aws_sdk_sts::Client::new(base)
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| Error::from_sdk("GetCallerIdentity", e))?;
    out.account
        .filter(|a| !a.is_empty())
        .ok_or_else(|| Error::Internal("GetCallerIdentity: no account".into()))
}

/// Every ACTIVE account of the Organization, sorted. ListAccounts is
/// answered by the management account (or a delegated administrator).
pub(super) async fn active_accounts(base: &SdkConfig) -> Result<Vec<String>> {
    let pages: Vec<_> = aws_sdk_organizations::Client::new(base)
        .list_accounts()
        .max_results(20)
        .into_paginator()
        .send()
        .try_collect()
        .await
        .map_err(|e| Error::from_sdk("ListAccounts", e))?;
    let mut ids: Vec<String> = pages
        .into_iter()
        .flat_map(|p| p.accounts.unwrap_or_default())
        .filter(|a| {
            a.status
                .as_ref()
                .is_none_or(|s| *s == AccountStatus::Active)
        })
        .filter_map(|a| a.id)
        .collect();
    ids.sort();
    ids.dedup();
    Ok(ids)
}

/// The configuration of `base` with the credentials of `role_name` in
/// `account`. The role is assumed at once, so that an account whose role is
/// missing or does not trust this deployment fails here, with its own error,
/// rather than inside the first describe call.
pub(super) async fn assume_member_role(
    base: &SdkConfig,
    account: &str,
    role_name: &str,
) -> Result<SdkConfig> {
    let partition = "aws";
    let arn = format!("arn:{partition}:iam::{account}:role/{role_name}");
    let provider = AssumeRoleProvider::builder(arn.clone())
        .session_name("finops-discovery")
        .configure(base)
        .build()
        .await;
    provider.provide_credentials().await.map_err(|e| {
        tracing::warn!(account, role = %arn, error = %e, "AssumeRole failed");
        Error::Internal(format!("AssumeRole {arn}: {e}"))
    })?;
    Ok(base
        .to_builder()
        .credentials_provider(SharedCredentialsProvider::new(provider))
        .build())
}
