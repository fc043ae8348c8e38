//! The accounts of the estate: the deploying account (STS
//! GetCallerIdentity), the active accounts of the Organization
//! (ListAccounts, paginated), and the member role assumed in each
//! ([`AccountConfigs`], shared by discovery and execution).

use crate::{Error, Result};
use aws_config::sts::AssumeRoleProvider;
use aws_config::{Region, SdkConfig};
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sdk_organizations::types::AccountStatus;
use std::collections::HashMap;
use std::sync::Mutex;

/// The SDK configuration reaching each account: the deployment's own for
/// its account, the member role's credentials for any other (when a role
/// is named, i.e. `AccountsMode::Organization`). Each account's role is
/// assumed once; the provider refreshes its credentials itself.
pub(crate) struct AccountConfigs {
    base: SdkConfig,
    role_name: Option<String>,
    /// The STS session name, which CloudTrail shows for every call made
    /// with the role: discovery and execution are told apart there.
    session_name: &'static str,
    own: tokio::sync::OnceCell<String>,
    cache: Mutex<HashMap<String, SdkConfig>>,
}

impl AccountConfigs {
    pub fn new(base: SdkConfig, role_name: Option<String>, session_name: &'static str) -> Self {
        AccountConfigs {
            base,
            role_name,
            session_name,
            own: tokio::sync::OnceCell::new(),
            cache: Mutex::new(HashMap::new()),
        }
    }

    pub fn base(&self) -> &SdkConfig {
        &self.base
    }

    /// The deploying account, asked once.
    pub async fn own_account(&self) -> Result<String> {
        self.own
            .get_or_try_init(|| caller_account(&self.base))
            .await
            .cloned()
    }

    /// The configuration reaching `account` (`None`: the deploying one) in `region`.
    pub async fn config_for(&self, account: Option<&str>, region: &str) -> Result<SdkConfig> {
        let account_config = match (account, &self.role_name) {
            (Some(account), Some(role)) => self.member_config(account, role).await?,
            _ => self.base.clone(),
        };
        Ok(account_config
            .to_builder()
            .region(Region::new(region.to_string()))
            .build())
    }

    async fn member_config(&self, account: &str, role: &str) -> Result<SdkConfig> {
        let cached = self
            .cache
            .lock()
            .map_err(|_| Error::Internal("account credentials lock poisoned".into()))?
            .get(account)
            .cloned();
        if let Some(c) = cached {
            return Ok(c);
        }
        let c = if account == self.own_account().await? {
            self.base.clone()
        } else {
            assume_member_role(&self.base, account, role, self.session_name).await?
        };
        if let Ok(mut map) = self.cache.lock() {
            map.insert(account.to_string(), c.clone());
        }
        Ok(c)
    }
}

/// The account the deployment's credentials belong to.
async fn caller_account(base: &SdkConfig) -> Result<String> {
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
async fn assume_member_role(
    base: &SdkConfig,
    account: &str,
    role_name: &str,
    session_name: &str,
) -> Result<SdkConfig> {
    let partition = "aws";
    let arn = format!("arn:{partition}:iam::{account}:role/{role_name}");
    let provider = AssumeRoleProvider::builder(arn.clone())
        .session_name(session_name)
        .configure(base)
        .build()
        .await;
    let first = provider.provide_credentials().await.map_err(|e| {
        tracing::warn!(account, role = %arn, error = %e, "AssumeRole failed");
        Error::Internal(format!("AssumeRole {arn}: {e}"))
    })?;
    Ok(base
        .to_builder()
        .credentials_provider(SharedCredentialsProvider::new(Assumed {
            first: Mutex::new(Some(first)),
            provider,
        }))
        .build())
}

/// The member role's provider, which hands the credentials of the check
/// above to the clients' identity cache before it asks STS again: the
/// provider caches nothing, so without this every process assumed each
/// role twice (measured by discovery-bench: 32 AssumeRole for 16
/// process-account pairs). Later refreshes go to STS.
#[derive(Debug)]
struct Assumed {
    first: Mutex<Option<aws_credential_types::Credentials>>,
    provider: AssumeRoleProvider,
}

impl ProvideCredentials for Assumed {
    fn provide_credentials<'a>(
        &'a self,
    ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        match self.first.lock().ok().and_then(|mut f| f.take()) {
            Some(c) => aws_credential_types::provider::future::ProvideCredentials::ready(Ok(c)),
            None => self.provider.provide_credentials(),
        }
    }
}
