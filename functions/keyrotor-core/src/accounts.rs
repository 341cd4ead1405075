//! Many accounts: which accounts keyrotor works in ([`AccountsMode`]), the organization's
//! inventory ([`inventory`]: nested OUs at any depth, every page, exclusions), and the member
//! role each function assumes in an account ([`member_role_arn`]).
//!
//! In the default mode, `self`, none of this is used: keyrotor works in the account it is
//! deployed in and assumes no role.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
pub use crate::payload::{AccountId, OrgNodeId};
pub use crate::ports::{OrgAccount, OrganizationPort, Page};

/// Which accounts keyrotor works in (`KEYROTOR_ACCOUNTS`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum AccountsMode {
    /// The account it is deployed in, with its own roles: no role is assumed.
    #[default]
    OwnAccount,
    /// Every active account of the organization under the include roots, less exclusions.
    Organization,
    /// Exactly these accounts (members of the organization), less exclusions.
    Listed(Vec<AccountId>),
}

/// Where the organization's inventory looks, and what it leaves out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    /// Roots or OUs to walk; empty means the organization's root.
    pub include_ous: Vec<OrgNodeId>,
    /// OUs whose whole subtree is left out.
    pub exclude_ous: Vec<OrgNodeId>,
    pub exclude_accounts: Vec<AccountId>,
    /// Whether the management account is scanned too (it is left out by default: StackSets
    /// do not deploy to it, so its member roles come from a stack of their own).
    pub include_management: bool,
}

/// The account tag that leaves an account out (value `true`, any case).
pub const TAG_EXCLUDE: &str = "keyrotor:exclude";
/// The account tag naming the address that gets the account's admin notices.
pub const TAG_ADMIN_ADDRESS: &str = "keyrotor:admin-address";
/// The IAM path of the member roles: `role/keyrotor/<function>` in each member account.
pub const MEMBER_ROLE_PATH: &str = "/keyrotor/";

/// The role `function` assumes in `account`: `arn:<partition>:iam::<account>:role/keyrotor/<function>`.
pub fn member_role_arn(partition: &str, account: &AccountId, function: &str) -> String {
    format!("arn:{partition}:iam::{account}:role{MEMBER_ROLE_PATH}{function}")
}

/// An account keyrotor will scan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    pub id: AccountId,
    pub name: String,
    /// From the account's `keyrotor:admin-address` tag, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_address: Option<String>,
}

/// Why an account is not scanned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "reason")]
pub enum SkipReason {
    /// Named in `KEYROTOR_EXCLUDE_ACCOUNTS`.
    ExcludedAccount,
    /// Tagged `keyrotor:exclude=true`.
    ExcludedByTag,
    /// Not active: its `State` (or `Status`).
    NotActive { state: String },
    /// The organization's management account (`KEYROTOR_INCLUDE_MANAGEMENT_ACCOUNT` is off).
    ManagementAccount,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Skipped {
    pub id: AccountId,
    pub name: String,
    #[serde(flatten)]
    pub reason: SkipReason,
}

/// What the inventory found: the accounts to scan, in ID order, and those it left out.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Inventory {
    pub accounts: Vec<Member>,
    pub skipped: Vec<Skipped>,
    /// Excluded OUs met on the walk: their subtrees were not listed.
    pub pruned_ous: Vec<OrgNodeId>,
}

/// The most OUs the walk visits: Organizations allows five levels of OUs and 2,000 OUs in
/// all, so a walk past this is a bug (or a cycle), not an organization.
const MAX_OUS: usize = 10_000;

/// The accounts of `mode` within `scope`, through `org`.
///
/// The organization mode walks every include root through nested OUs at any depth, every
/// page of each listing, and does not enter an excluded OU. Each account found is then
/// dropped if excluded by ID, tagged `keyrotor:exclude=true`, not active, or the management
/// account (unless included). The listed mode describes each listed account instead of
/// walking; a listed account outside the organization is an error.
pub async fn inventory<O: OrganizationPort>(
    org: &O,
    mode: &AccountsMode,
    scope: &Scope,
) -> Result<Inventory> {
    let mut found = BTreeMap::new();
    let mut pruned_ous = Vec::new();
    match mode {
        AccountsMode::OwnAccount => {
            return Err(Error::InvalidInput(
                "KEYROTOR_ACCOUNTS is self: there is no organization to list".into(),
            ))
        }
        AccountsMode::Listed(ids) => {
            for id in ids {
                let account = org.account(id).await?;
                found.insert(account.id.clone(), account);
            }
        }
        AccountsMode::Organization => {
            let roots = if scope.include_ous.is_empty() {
                org.roots().await?
            } else {
                scope.include_ous.clone()
            };
            let excluded: BTreeSet<&OrgNodeId> = scope.exclude_ous.iter().collect();
            let mut seen = BTreeSet::new();
            let mut queue: VecDeque<OrgNodeId> = roots.into();
            while let Some(parent) = queue.pop_front() {
                if excluded.contains(&parent) {
                    pruned_ous.push(parent);
                    continue;
                }
                if !seen.insert(parent.clone()) {
                    continue;
                }
                if seen.len() > MAX_OUS {
                    return Err(Error::Internal(format!(
                        "the organization walk passed {MAX_OUS} OUs"
                    )));
                }
                let mut token = None;
                loop {
                    let page = org.accounts_under(&parent, token.as_deref()).await?;
                    for account in page.items {
                        found.insert(account.id.clone(), account);
                    }
                    token = page.next_token;
                    if token.is_none() {
                        break;
                    }
                }
                let mut token = None;
                loop {
                    let page = org.child_ous(&parent, token.as_deref()).await?;
                    queue.extend(page.items);
                    token = page.next_token;
                    if token.is_none() {
                        break;
                    }
                }
            }
        }
    }

    let management = org.management_account().await?;
    let mut inventory = Inventory {
        pruned_ous,
        ..Inventory::default()
    };
    for (id, account) in found {
        let skip = |reason| Skipped {
            id: id.clone(),
            name: account.name.clone(),
            reason,
        };
        if scope.exclude_accounts.contains(&id) {
            inventory.skipped.push(skip(SkipReason::ExcludedAccount));
            continue;
        }
        if let Err(state) = account.activity() {
            inventory
                .skipped
                .push(skip(SkipReason::NotActive { state }));
            continue;
        }
        if id == management && !scope.include_management {
            inventory.skipped.push(skip(SkipReason::ManagementAccount));
            continue;
        }
        let tags = org.account_tags(&id).await?;
        if tags
            .get(TAG_EXCLUDE)
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
        {
            inventory.skipped.push(skip(SkipReason::ExcludedByTag));
            continue;
        }
        inventory.accounts.push(Member {
            admin_address: tags.get(TAG_ADMIN_ADDRESS).cloned(),
            name: account.name,
            id,
        });
    }
    Ok(inventory)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// An account of the test organization: parent, ID, State, Status and tags.
    type Row = (
        &'static str,
        &'static str,
        Option<&'static str>,
        Option<&'static str>,
        &'static [(&'static str, &'static str)],
    );

    /// An organization in memory that hands out one item per page, and counts calls.
    struct Org {
        management: &'static str,
        /// (parent, child OU)
        ous: Vec<(&'static str, &'static str)>,
        /// (parent, id, name, state, status, tags)
        accounts: Vec<Row>,
        calls: Mutex<Vec<String>>,
    }

    fn id<T: std::str::FromStr<Err = String>>(s: &str) -> T {
        s.parse().expect("valid ID")
    }

    fn one_at_a_time<T: Clone>(items: Vec<T>, token: Option<&str>) -> Page<T> {
        let at: usize = token.map_or(0, |t| t.parse().expect("our token"));
        Page {
            items: items.get(at).cloned().into_iter().collect(),
            next_token: (at + 1 < items.len()).then(|| (at + 1).to_string()),
        }
    }

    impl Org {
        fn org_account(&self, a: &Row) -> OrgAccount {
            OrgAccount {
                id: id(a.1),
                name: format!("name-{}", a.1),
                state: a.2.map(str::to_owned),
                status: a.3.map(str::to_owned),
            }
        }
        fn log(&self, call: String) {
            self.calls.lock().unwrap().push(call);
        }
    }

    impl OrganizationPort for Org {
        async fn management_account(&self) -> Result<AccountId> {
            Ok(id(self.management))
        }
        async fn roots(&self) -> Result<Vec<OrgNodeId>> {
            self.log("roots".into());
            Ok(vec![id("r-root")])
        }
        async fn child_ous(
            &self,
            parent: &OrgNodeId,
            token: Option<&str>,
        ) -> Result<Page<OrgNodeId>> {
            self.log(format!("ous {parent}"));
            let ous = self
                .ous
                .iter()
                .filter(|(p, _)| *p == parent.as_str())
                .map(|(_, c)| id(c))
                .collect();
            Ok(one_at_a_time(ous, token))
        }
        async fn accounts_under(
            &self,
            parent: &OrgNodeId,
            token: Option<&str>,
        ) -> Result<Page<OrgAccount>> {
            self.log(format!("accounts {parent}"));
            let accounts = self
                .accounts
                .iter()
                .filter(|a| a.0 == parent.as_str())
                .map(|a| self.org_account(a))
                .collect();
            Ok(one_at_a_time(accounts, token))
        }
        async fn account(&self, wanted: &AccountId) -> Result<OrgAccount> {
            self.accounts
                .iter()
                .find(|a| a.1 == wanted.as_str())
                .map(|a| self.org_account(a))
                .ok_or_else(|| {
                    Error::NotFound(format!("account {wanted} is not in the organization"))
                })
        }
        async fn account_tags(&self, wanted: &AccountId) -> Result<BTreeMap<String, String>> {
            self.log(format!("tags {wanted}"));
            let a = self
                .accounts
                .iter()
                .find(|a| a.1 == wanted.as_str())
                .expect("known");
            Ok(a.4
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect())
        }
    }

    /// root ── 100000000000 (management)
    ///      ├─ ou-root-workload1 ── 200000000000, 200000000001 (suspended), 200000000002 (tagged out)
    ///      │   └─ ou-root-prodprod ── 300000000000, 300000000001 (admin tag)
    ///      │       └─ ou-root-deepdeep ── 400000000000 (only Status, as moto)
    ///      └─ ou-root-sandbox1 ── 500000000000
    ///          └─ ou-root-sandbox2 ── 600000000000
    fn organization() -> Org {
        Org {
            management: "100000000000",
            ous: vec![
                ("r-root", "ou-root-workload1"),
                ("r-root", "ou-root-sandbox1"),
                ("ou-root-workload1", "ou-root-prodprod"),
                ("ou-root-prodprod", "ou-root-deepdeep"),
                ("ou-root-sandbox1", "ou-root-sandbox2"),
            ],
            accounts: vec![
                (
                    "r-root",
                    "100000000000",
                    Some("ACTIVE"),
                    Some("ACTIVE"),
                    &[],
                ),
                (
                    "ou-root-workload1",
                    "200000000000",
                    Some("ACTIVE"),
                    Some("ACTIVE"),
                    &[],
                ),
                (
                    "ou-root-workload1",
                    "200000000001",
                    Some("SUSPENDED"),
                    Some("SUSPENDED"),
                    &[],
                ),
                (
                    "ou-root-workload1",
                    "200000000002",
                    Some("ACTIVE"),
                    None,
                    &[(TAG_EXCLUDE, " TRUE ")],
                ),
                (
                    "ou-root-prodprod",
                    "300000000000",
                    Some("ACTIVE"),
                    Some("ACTIVE"),
                    &[(TAG_EXCLUDE, "false")],
                ),
                (
                    "ou-root-prodprod",
                    "300000000001",
                    Some("ACTIVE"),
                    Some("ACTIVE"),
                    &[(TAG_ADMIN_ADDRESS, "prod-sec@example.com")],
                ),
                (
                    "ou-root-deepdeep",
                    "400000000000",
                    None,
                    Some("ACTIVE"),
                    &[],
                ),
                (
                    "ou-root-sandbox1",
                    "500000000000",
                    Some("ACTIVE"),
                    Some("ACTIVE"),
                    &[],
                ),
                (
                    "ou-root-sandbox2",
                    "600000000000",
                    Some("PENDING_CLOSURE"),
                    Some("ACTIVE"),
                    &[],
                ),
            ],
            calls: Mutex::new(Vec::new()),
        }
    }

    fn ids_of(inventory: &Inventory) -> Vec<&str> {
        inventory.accounts.iter().map(|a| a.id.as_str()).collect()
    }

    #[tokio::test]
    async fn the_walk_reaches_every_depth_through_every_page() {
        let org = organization();
        let inv = inventory(&org, &AccountsMode::Organization, &Scope::default())
            .await
            .unwrap();
        assert_eq!(
            ids_of(&inv),
            [
                "200000000000",
                "300000000000",
                "300000000001",
                "400000000000",
                "500000000000"
            ]
        );
        assert_eq!(
            inv.accounts[2].admin_address.as_deref(),
            Some("prod-sec@example.com")
        );
        let skipped: Vec<_> = inv
            .skipped
            .iter()
            .map(|s| (s.id.as_str(), s.reason.clone()))
            .collect();
        assert_eq!(
            skipped,
            [
                ("100000000000", SkipReason::ManagementAccount),
                (
                    "200000000001",
                    SkipReason::NotActive {
                        state: "SUSPENDED".into()
                    }
                ),
                ("200000000002", SkipReason::ExcludedByTag),
                (
                    "600000000000",
                    SkipReason::NotActive {
                        state: "PENDING_CLOSURE".into()
                    }
                ),
            ]
        );
        // Paging: one item a page, so workload1's three accounts took three calls.
        let calls = org.calls.lock().unwrap();
        assert_eq!(
            calls
                .iter()
                .filter(|c| *c == "accounts ou-root-workload1")
                .count(),
            3
        );
        assert_eq!(calls.iter().filter(|c| *c == "ous r-root").count(), 2);
        // Tags are read only for accounts that could still be scanned.
        assert!(!calls
            .iter()
            .any(|c| c == "tags 200000000001" || c == "tags 100000000000"));
    }

    #[tokio::test]
    async fn excluded_ous_are_not_entered_and_include_roots_narrow_the_walk() {
        let org = organization();
        let scope = Scope {
            exclude_ous: vec![id("ou-root-sandbox1"), id("ou-root-deepdeep")],
            exclude_accounts: vec![id("300000000000")],
            include_management: true,
            ..Scope::default()
        };
        let inv = inventory(&org, &AccountsMode::Organization, &scope)
            .await
            .unwrap();
        assert_eq!(
            ids_of(&inv),
            ["100000000000", "200000000000", "300000000001"]
        );
        assert_eq!(
            inv.pruned_ous,
            [id::<OrgNodeId>("ou-root-sandbox1"), id("ou-root-deepdeep")]
        );
        assert!(inv
            .skipped
            .iter()
            .any(|s| s.id.as_str() == "300000000000" && s.reason == SkipReason::ExcludedAccount));
        assert!(!org
            .calls
            .lock()
            .unwrap()
            .iter()
            .any(|c| c.contains("sandbox")));

        let org = organization();
        let scope = Scope {
            include_ous: vec![id("ou-root-prodprod")],
            ..Scope::default()
        };
        let inv = inventory(&org, &AccountsMode::Organization, &scope)
            .await
            .unwrap();
        assert_eq!(
            ids_of(&inv),
            ["300000000000", "300000000001", "400000000000"]
        );
        assert!(!org.calls.lock().unwrap().contains(&"roots".to_owned()));
    }

    #[tokio::test]
    async fn listed_accounts_are_described_and_still_filtered() {
        let org = organization();
        let mode = AccountsMode::Listed(vec![
            id("400000000000"),
            id("200000000002"),
            id("100000000000"),
        ]);
        let inv = inventory(&org, &mode, &Scope::default()).await.unwrap();
        assert_eq!(ids_of(&inv), ["400000000000"]);
        assert_eq!(inv.skipped.len(), 2);
        let stranger = AccountsMode::Listed(vec![id("999999999999")]);
        let err = inventory(&org, &stranger, &Scope::default())
            .await
            .unwrap_err();
        assert_eq!(err.error_type(), crate::ErrorType::NotFound);
        let err = inventory(&org, &AccountsMode::OwnAccount, &Scope::default())
            .await
            .unwrap_err();
        assert_eq!(err.error_type(), crate::ErrorType::InvalidInput);
    }

    #[test]
    fn account_and_node_ids_are_checked() {
        assert!("123456789012".parse::<AccountId>().is_ok());
        for bad in [
            "",
            "12345678901",
            "1234567890123",
            "12345678901a",
            " 23456789012",
        ] {
            assert!(bad.parse::<AccountId>().is_err(), "{bad:?}");
        }
        for good in ["r-ab12", "ou-ab12-abcd1234", "ou-ab12cd-0123456789abcdef"] {
            assert!(good.parse::<OrgNodeId>().is_ok(), "{good}");
        }
        for bad in [
            "r-ab1",
            "R-ab12",
            "ou-ab12",
            "ou-ab12-abc",
            "ou-AB12-abcd1234",
            "ou-ab12-abcd1234-x",
            "123456789012",
        ] {
            assert!(bad.parse::<OrgNodeId>().is_err(), "{bad}");
        }
    }

    #[test]
    fn state_wins_over_status_and_neither_is_not_active() {
        let account = |state: Option<&str>, status: Option<&str>| OrgAccount {
            id: "111111111111".parse().unwrap(),
            name: "a".into(),
            state: state.map(str::to_owned),
            status: status.map(str::to_owned),
        };
        assert_eq!(
            account(Some("ACTIVE"), Some("SUSPENDED")).activity(),
            Ok(())
        );
        assert_eq!(
            account(Some("PENDING_CLOSURE"), Some("ACTIVE")).activity(),
            Err("PENDING_CLOSURE".into())
        );
        assert_eq!(account(None, Some("ACTIVE")).activity(), Ok(()));
        assert_eq!(
            account(None, Some("SUSPENDED")).activity(),
            Err("SUSPENDED".into())
        );
        assert_eq!(account(None, None).activity(), Err("UNKNOWN".into()));
    }

    #[test]
    fn member_roles_live_under_the_keyrotor_path() {
        let id: AccountId = "222222222222".parse().unwrap();
        assert_eq!(
            member_role_arn("aws", &id, "create-key"),
            "arn:aws:iam::222222222222:role/keyrotor/create-key"
        );
    }
}
