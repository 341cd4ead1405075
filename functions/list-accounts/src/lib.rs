//! `list-accounts`: the organization scan's inventory. Walks the organization (or describes
//! the listed accounts), leaves out what the configuration and the accounts' tags exclude,
//! and returns the accounts to scan.

use aws_config::SdkConfig;
use keyrotor_aws::{FromConfig, Organizations};
use keyrotor_core::accounts::{inventory, AccountsMode, OrganizationPort};
use keyrotor_core::config::{vars, Config, ConfigError};
use keyrotor_core::payload::{parse, AccountRef, ListAccountsInput, ListAccountsOutput};
use keyrotor_core::{Error, Result};
use tracing::info;

/// The most the account list may take in the organization scan's state, of the 256 KB
/// Step Functions allows: about 2,000 accounts with names and admin addresses.
pub const MAX_STATE_BYTES: usize = 200 * 1024;

/// What `list-accounts` needs: its settings and the SDK configuration Organizations is
/// read with (directly, or through `KEYROTOR_ORG_ROLE_ARN`).
pub struct Deps {
    pub config: Config,
    sdk: SdkConfig,
}

impl FromConfig for Deps {
    fn from_config(config: Config, sdk: &SdkConfig) -> Result<Self, ConfigError> {
        if config.accounts.mode == AccountsMode::OwnAccount {
            return Err(ConfigError {
                var: vars::ACCOUNTS,
                reason: "is self: list-accounts serves the organization and listed modes".into(),
            });
        }
        Ok(Deps {
            config,
            sdk: sdk.clone(),
        })
    }
}

impl Deps {
    /// Organizations as this deployment reads it: with the function's own role (the
    /// management account, or a delegated administrator), or through the role in the
    /// management account named by `KEYROTOR_ORG_ROLE_ARN`.
    pub async fn organizations(&self) -> Result<Organizations> {
        match &self.config.accounts.org_role_arn {
            None => Ok(Organizations::from_sdk(&self.sdk)),
            Some(role) => {
                let sts = aws_sdk_sts::Client::new(&self.sdk);
                let (org, _) =
                    Organizations::through_role(&sts, &self.sdk, role, "keyrotor-list-accounts")
                        .await?;
                Ok(org)
            }
        }
    }
}

/// Every AWS API action this function calls: its role grants exactly these (checked by
/// `tools/check_infra.py`), and a test holds the calls the code makes to them.
pub const AWS_ACTIONS: &[&str] = &[
    "organizations:DescribeAccount",
    "organizations:DescribeOrganization",
    "organizations:ListAccountsForParent",
    "organizations:ListChildren",
    "organizations:ListRoots",
    "organizations:ListTagsForResource",
];

pub async fn handle(event: serde_json::Value, deps: &Deps) -> Result<ListAccountsOutput> {
    let input: ListAccountsInput = parse(event)?;
    check(&input)?;
    let org = deps.organizations().await?;
    list(input, &deps.config, &org).await
}

fn check(input: &ListAccountsInput) -> Result<()> {
    if input.scan.account.is_some() {
        return Err(Error::InvalidInput(
            "an organization scan names no account: it lists them".into(),
        ));
    }
    Ok(())
}

/// The accounts of the configured mode and scope, through `org`.
pub async fn list<O: OrganizationPort>(
    input: ListAccountsInput,
    config: &Config,
    org: &O,
) -> Result<ListAccountsOutput> {
    check(&input)?;
    let found = inventory(org, &config.accounts.mode, &config.accounts.scope).await?;
    let accounts: Vec<AccountRef> = found
        .accounts
        .into_iter()
        .map(|member| AccountRef::from_member(&member))
        .collect();
    let size = serde_json::to_vec(&accounts).map_or(usize::MAX, |v| v.len());
    if size > MAX_STATE_BYTES {
        return Err(Error::Config(ConfigError {
            var: vars::INCLUDE_OUS,
            reason: format!(
                "{} accounts take {size} bytes, more than one organization scan's state holds \
                 ({MAX_STATE_BYTES}); split the organization with KEYROTOR_INCLUDE_OUS across \
                 deployments",
                accounts.len()
            ),
        }));
    }
    info!(
        accounts = accounts.len(),
        skipped = found.skipped.len(),
        pruned_ous = found.pruned_ous.len(),
        "organization inventory"
    );
    Ok(ListAccountsOutput {
        accounts,
        skipped: found.skipped,
        pruned_ous: found.pruned_ous,
        dry_run: input.scan.dry_run || config.dry_run,
        listed_at: chrono::Utc::now(),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use keyrotor_core::accounts::{AccountId, OrgAccount, OrgNodeId, Page};
    use keyrotor_core::ErrorType;
    use serde_json::json;

    use super::*;

    /// An organization of `n` active accounts under its root, each with a long name, and an
    /// admin address tag that is not plain text on the first.
    struct Flat(usize);

    fn id(i: usize) -> AccountId {
        format!("{:012}", 300_000_000_000u64 + i as u64)
            .parse()
            .expect("valid")
    }

    impl OrganizationPort for Flat {
        async fn management_account(&self) -> Result<AccountId> {
            Ok("999999999999".parse().expect("valid"))
        }
        async fn roots(&self) -> Result<Vec<OrgNodeId>> {
            Ok(vec!["r-root".parse().expect("valid")])
        }
        async fn child_ous(&self, _: &OrgNodeId, _: Option<&str>) -> Result<Page<OrgNodeId>> {
            Ok(Page {
                items: Vec::new(),
                next_token: None,
            })
        }
        async fn accounts_under(&self, _: &OrgNodeId, _: Option<&str>) -> Result<Page<OrgAccount>> {
            Ok(Page {
                items: (0..self.0)
                    .map(|i| OrgAccount {
                        id: id(i),
                        name: format!("{i}-{}", "n".repeat(45)),
                        state: Some("ACTIVE".into()),
                        status: None,
                    })
                    .collect(),
                next_token: None,
            })
        }
        async fn account(&self, wanted: &AccountId) -> Result<OrgAccount> {
            Err(Error::NotFound(format!("{wanted}")))
        }
        async fn parent(&self, _: &str) -> Result<OrgNodeId> {
            Ok("r-root".parse().expect("valid"))
        }
        async fn account_tags(&self, account: &AccountId) -> Result<BTreeMap<String, String>> {
            let address = if *account == id(0) {
                "bad\naddress".to_owned()
            } else {
                format!("team-{account}@example.com")
            };
            Ok([("keyrotor:admin-address".to_owned(), address)].into())
        }
    }

    fn config() -> Config {
        Config::from_lookup(|name| (name == "KEYROTOR_ACCOUNTS").then(|| "organization".into()))
            .expect("valid")
    }

    #[tokio::test]
    async fn accounts_come_with_names_and_plain_admin_addresses_only() {
        let out = list(ListAccountsInput::default(), &config(), &Flat(3))
            .await
            .expect("listed");
        assert_eq!(out.accounts.len(), 3);
        assert!(
            out.accounts[0].admin_address.is_none(),
            "a control character"
        );
        assert_eq!(
            out.accounts[1].admin_address.as_ref().map(|a| a.as_str()),
            Some("team-300000000001@example.com")
        );
        assert!(out.accounts[2].name.is_some());
    }

    #[tokio::test]
    async fn an_organization_too_big_for_one_scans_state_is_refused_with_the_way_out() {
        let err = list(ListAccountsInput::default(), &config(), &Flat(2500))
            .await
            .expect_err("too big");
        assert_eq!(err.error_type(), ErrorType::ConfigurationError);
        assert!(err.to_string().contains("KEYROTOR_INCLUDE_OUS"), "{err}");
        list(ListAccountsInput::default(), &config(), &Flat(1000))
            .await
            .expect("1,000 accounts fit");
    }

    #[tokio::test]
    async fn an_organization_scan_names_no_account() {
        let input: ListAccountsInput =
            keyrotor_core::payload::parse(json!({"scan": {"account": {"id": "222222222222"}}}))
                .expect("parses");
        let err = list(input, &config(), &Flat(1)).await.expect_err("refused");
        assert_eq!(err.error_type(), ErrorType::InvalidInput);
    }

    #[test]
    fn the_self_mode_stops_the_cold_start() {
        let own = Config::from_lookup(|_| None).expect("defaults");
        let err = Deps::from_config(own, &keyrotor_aws::testing::unreachable_sdk_config())
            .err()
            .expect("refused");
        assert_eq!(err.var, "KEYROTOR_ACCOUNTS");
    }
}
