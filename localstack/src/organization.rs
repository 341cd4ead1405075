//! An AWS Organization on the local stack: moto's Organizations, with OUs nested to any
//! depth, member accounts moved into them and tagged, and the test's view of each member
//! account (moto keeps every account's IAM, credential report and Secrets Manager apart,
//! and signs a session from `sts:AssumeRole` as the account the role is in).

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};
use aws_config::SdkConfig;
use aws_sdk_organizations::types::{ChildType, Tag};
use keyrotor_aws::member::assume_role;

use crate::account::Account;

/// An OU: its name and its parent's name (`None`: the root).
pub type OuSpec<'a> = (&'a str, Option<&'a str>);

/// The OU tree the end-to-end test and `make demo-org` share: three levels of workloads, and
/// a sandbox with an OU of its own to exclude.
pub const EXAMPLE_OUS: [OuSpec<'static>; 5] = [
    ("Workloads", None),
    ("Prod", Some("Workloads")),
    ("Payments", Some("Prod")),
    ("Sandbox", None),
    ("Experiments", Some("Sandbox")),
];
/// A member account: its name, its OU's name (`None`: the root) and its tags.
pub type AccountSpec<'a> = (&'a str, Option<&'a str>, &'a [(&'a str, &'a str)]);

/// The organization the test made: IDs by name.
#[derive(Debug, Clone)]
pub struct LocalOrganization {
    pub root: String,
    pub ous: BTreeMap<String, String>,
    pub accounts: BTreeMap<String, String>,
}

impl LocalOrganization {
    /// Creates the organization (the caller's account is its management account), then the
    /// OUs in order (a parent before its children), then the accounts.
    pub async fn create(
        sdk: &SdkConfig,
        ous: &[OuSpec<'_>],
        accounts: &[AccountSpec<'_>],
    ) -> Result<Self> {
        let org = aws_sdk_organizations::Client::new(sdk);
        org.create_organization()
            .feature_set(aws_sdk_organizations::types::OrganizationFeatureSet::All)
            .send()
            .await
            .context("creating the organization")?;
        let roots = org.list_roots().send().await?;
        let root = roots
            .roots()
            .first()
            .and_then(|r| r.id())
            .context("the organization has no root")?
            .to_owned();
        let mut made = LocalOrganization {
            root,
            ous: BTreeMap::new(),
            accounts: BTreeMap::new(),
        };
        for (name, parent) in ous {
            let parent_id = made.parent_id(*parent)?;
            let out = org
                .create_organizational_unit()
                .parent_id(parent_id)
                .name(*name)
                .send()
                .await
                .with_context(|| format!("creating OU {name}"))?;
            let id = out
                .organizational_unit()
                .and_then(|ou| ou.id())
                .context("CreateOrganizationalUnit returned no ID")?;
            made.ous.insert((*name).to_owned(), id.to_owned());
        }
        for (name, ou, tags) in accounts {
            let out = org
                .create_account()
                .account_name(*name)
                .email(format!("{name}@example.com"))
                .send()
                .await
                .with_context(|| format!("creating account {name}"))?;
            let id = out
                .create_account_status()
                .and_then(|s| s.account_id())
                .context("CreateAccount returned no account ID")?
                .to_owned();
            if let Some(ou) = ou {
                org.move_account()
                    .account_id(&id)
                    .source_parent_id(&made.root)
                    .destination_parent_id(made.parent_id(Some(ou))?)
                    .send()
                    .await
                    .with_context(|| format!("moving account {name} to {ou}"))?;
            }
            if !tags.is_empty() {
                let tags: Vec<Tag> = tags
                    .iter()
                    .map(|(k, v)| Tag::builder().key(*k).value(*v).build())
                    .collect::<Result<_, _>>()?;
                org.tag_resource()
                    .resource_id(&id)
                    .set_tags(Some(tags))
                    .send()
                    .await?;
            }
            made.accounts.insert((*name).to_owned(), id);
        }
        // Check the shape moto made: every OU lists its accounts.
        for (name, ou, _) in accounts {
            let parent = made.parent_id(*ou)?;
            let children = org
                .list_children()
                .parent_id(&parent)
                .child_type(ChildType::Account)
                .send()
                .await?;
            let id = &made.accounts[*name];
            if !children.children().iter().any(|c| c.id() == Some(id)) {
                bail!("account {name} is not under {parent}");
            }
        }
        Ok(made)
    }

    fn parent_id(&self, name: Option<&str>) -> Result<String> {
        match name {
            None => Ok(self.root.clone()),
            Some(name) => self
                .ous
                .get(name)
                .cloned()
                .with_context(|| format!("no OU {name} (a parent must come first)")),
        }
    }

    /// The ID of the account or OU named `name`.
    pub fn id(&self, name: &str) -> &str {
        self.accounts
            .get(name)
            .or_else(|| self.ous.get(name))
            .map_or("", String::as_str)
    }
}

/// The test's own view of a member account: clients signed by a session of a role there.
pub async fn member_account(sdk: &SdkConfig, account_id: &str) -> Result<Account> {
    let sts = aws_sdk_sts::Client::new(sdk);
    let role = format!("arn:aws:iam::{account_id}:role/OrganizationAccountAccessRole");
    let (member, _) = assume_role(&sts, sdk, &role, "keyrotor-tests", None)
        .await
        .with_context(|| format!("assuming a role in {account_id}"))?;
    Ok(Account::new(&member))
}
