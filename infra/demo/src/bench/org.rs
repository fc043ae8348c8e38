//! An Organization in the emulator, as `functions/processor/tests/organization.rs`
//! makes it: the emulator's default account is the management account;
//! each member account is created by Organizations (which puts
//! `OrganizationAccountAccessRole` in it) and gets the discovery role
//! (infra/member-role.yaml's), which the processor assumes.

use aws_config::SdkConfig;
use aws_credential_types::provider::SharedCredentialsProvider;

/// An account and the SDK configuration that administers it.
#[derive(Clone, Debug)]
pub struct Account {
    pub id: String,
    pub admin: SdkConfig,
}

/// The management account and the members.
#[derive(Clone, Debug)]
pub struct Organization {
    pub management: Account,
    pub members: Vec<Account>,
}

impl Organization {
    /// Every account, the management account first.
    pub fn accounts(&self) -> Vec<&Account> {
        std::iter::once(&self.management)
            .chain(self.members.iter())
            .collect()
    }
}

/// `base` with the credentials of `role` in `account` (assumed through STS).
pub async fn as_account(base: &SdkConfig, account: &str, role: &str) -> SdkConfig {
    let provider =
        aws_config::sts::AssumeRoleProvider::builder(format!("arn:aws:iam::{account}:role/{role}"))
            .session_name("finops-bench-setup")
            .configure(base)
            .build()
            .await;
    base.to_builder()
        .credentials_provider(SharedCredentialsProvider::new(provider))
        .build()
}

/// An Organization of the management account and `members` new accounts,
/// each holding `role_name`.
pub async fn create(
    base: &SdkConfig,
    members: usize,
    role_name: &str,
) -> Result<Organization, String> {
    let org = aws_sdk_organizations::Client::new(base);
    org.create_organization()
        .send()
        .await
        .map_err(|e| format!("CreateOrganization: {e}"))?;
    let management = aws_sdk_sts::Client::new(base)
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| format!("GetCallerIdentity: {e}"))?
        .account
        .ok_or("GetCallerIdentity: no account")?;
    let mut accounts = Vec::new();
    for k in 0..members {
        let name = format!("bench-member-{k}");
        let status = org
            .create_account()
            .email(format!("{name}@example.com"))
            .account_name(&name)
            .send()
            .await
            .map_err(|e| format!("CreateAccount: {e}"))?
            .create_account_status
            .ok_or("CreateAccount: no status")?;
        let id = status.account_id.ok_or("CreateAccount: no account id")?;
        let admin = as_account(base, &id, "OrganizationAccountAccessRole").await;
        aws_sdk_iam::Client::new(&admin)
            .create_role()
            .role_name(role_name)
            .assume_role_policy_document(format!(
                r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{management}:root"}},"Action":"sts:AssumeRole"}}]}}"#
            ))
            .send()
            .await
            .map_err(|e| format!("CreateRole {role_name} in {id}: {e}"))?;
        accounts.push(Account { id, admin });
    }
    Ok(Organization {
        management: Account {
            id: management,
            admin: base.clone(),
        },
        members: accounts,
    })
}
