//! AWS Organizations, read-only: the inventory of an organization scan.

use std::collections::BTreeMap;

use aws_sdk_organizations::types::{Account, ChildType};
use aws_sdk_organizations::Client;
use chrono::{DateTime, Utc};
use tracing::instrument;

use crate::error::sdk_error;
use keyrotor_core::accounts::{AccountId, OrgAccount, OrgNodeId, OrganizationPort, Page};
use keyrotor_core::error::{Error, Result};

#[derive(Clone, Debug)]
pub struct Organizations {
    client: Client,
}

impl Organizations {
    pub fn new(client: Client) -> Self {
        Organizations { client }
    }

    /// The client from the SDK configuration (the caller's own credentials, or those of the
    /// role in the management account the caller assumed).
    pub fn from_sdk(sdk: &aws_config::SdkConfig) -> Self {
        Organizations::new(Client::new(sdk))
    }

    /// The client signed by a session of `role_arn` (`KEYROTOR_ORG_ROLE_ARN`, a role in the
    /// management account that grants the reads), and when that session expires.
    pub async fn through_role(
        sts: &aws_sdk_sts::Client,
        base: &aws_config::SdkConfig,
        role_arn: &str,
        session_name: &str,
    ) -> Result<(Self, DateTime<Utc>)> {
        let (sdk, expires) =
            crate::member::assume_role(sts, base, role_arn, session_name, None).await?;
        Ok((Organizations::from_sdk(&sdk), expires))
    }
}

/// An ID AWS returned that is not of the shape AWS documents: an unexpected response.
fn checked<T: TryFrom<String, Error = String>>(value: Option<&str>, what: &str) -> Result<T> {
    T::try_from(value.unwrap_or_default().to_owned())
        .map_err(|e| Error::Internal(format!("Organizations returned a bad {what}: {e}")))
}

fn org_account(account: &Account) -> Result<OrgAccount> {
    Ok(OrgAccount {
        id: checked(account.id(), "account ID")?,
        name: account.name().unwrap_or_default().to_owned(),
        state: account.state().map(|s| s.as_str().to_owned()),
        status: account.status().map(|s| s.as_str().to_owned()),
    })
}

impl OrganizationPort for Organizations {
    #[instrument(skip(self))]
    async fn management_account(&self) -> Result<AccountId> {
        let out = self
            .client
            .describe_organization()
            .send()
            .await
            .map_err(|e| sdk_error("organizations:DescribeOrganization", e))?;
        checked(
            out.organization().and_then(|o| o.master_account_id()),
            "management account ID",
        )
    }

    #[instrument(skip(self))]
    async fn roots(&self) -> Result<Vec<OrgNodeId>> {
        let mut roots = Vec::new();
        let mut token = None;
        loop {
            let out = self
                .client
                .list_roots()
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| sdk_error("organizations:ListRoots", e))?;
            for root in out.roots() {
                roots.push(checked(root.id(), "root ID")?);
            }
            token = out.next_token;
            if token.is_none() {
                return Ok(roots);
            }
        }
    }

    #[instrument(skip(self))]
    async fn child_ous(&self, parent: &OrgNodeId, token: Option<&str>) -> Result<Page<OrgNodeId>> {
        let out = self
            .client
            .list_children()
            .parent_id(parent.as_str())
            .child_type(ChildType::OrganizationalUnit)
            .set_next_token(token.map(str::to_owned))
            .send()
            .await
            .map_err(|e| sdk_error("organizations:ListChildren", e))?;
        let items = out
            .children()
            .iter()
            .map(|child| checked(child.id(), "OU ID"))
            .collect::<Result<_>>()?;
        Ok(Page {
            items,
            next_token: out.next_token,
        })
    }

    #[instrument(skip(self))]
    async fn accounts_under(
        &self,
        parent: &OrgNodeId,
        token: Option<&str>,
    ) -> Result<Page<OrgAccount>> {
        let out = self
            .client
            .list_accounts_for_parent()
            .parent_id(parent.as_str())
            .set_next_token(token.map(str::to_owned))
            .send()
            .await
            .map_err(|e| sdk_error("organizations:ListAccountsForParent", e))?;
        let items = out
            .accounts()
            .iter()
            .map(org_account)
            .collect::<Result<_>>()?;
        Ok(Page {
            items,
            next_token: out.next_token,
        })
    }

    #[instrument(skip(self))]
    async fn account(&self, id: &AccountId) -> Result<OrgAccount> {
        let out = self
            .client
            .describe_account()
            .account_id(id.as_str())
            .send()
            .await
            .map_err(|e| sdk_error("organizations:DescribeAccount", e))?;
        let account = out
            .account()
            .ok_or_else(|| Error::Internal("DescribeAccount returned no account".into()))?;
        org_account(account)
    }

    #[instrument(skip(self))]
    async fn parent(&self, child: &str) -> Result<OrgNodeId> {
        let out = self
            .client
            .list_parents()
            .child_id(child)
            .send()
            .await
            .map_err(|e| sdk_error("organizations:ListParents", e))?;
        match out.parents() {
            [parent] => checked(parent.id(), "parent ID"),
            other => Err(Error::Internal(format!(
                "ListParents of {child} returned {} parents, not one",
                other.len()
            ))),
        }
    }

    #[instrument(skip(self))]
    async fn account_tags(&self, id: &AccountId) -> Result<BTreeMap<String, String>> {
        let mut tags = BTreeMap::new();
        let mut token = None;
        loop {
            let out = self
                .client
                .list_tags_for_resource()
                .resource_id(id.as_str())
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| sdk_error("organizations:ListTagsForResource", e))?;
            for tag in out.tags() {
                tags.insert(tag.key().to_owned(), tag.value().to_owned());
            }
            token = out.next_token;
            if token.is_none() {
                return Ok(tags);
            }
        }
    }
}
