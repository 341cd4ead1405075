//! Many accounts: which accounts keyrotor works in ([`AccountsMode`]), the organization's
//! inventory ([`inventory`]: nested OUs at any depth, every page, exclusions), and the member
//! role each function assumes in an account ([`member_role_arn`]).
//!
//! In the default mode, `self`, none of this is used: keyrotor works in the account it is
//! deployed in and assumes no role.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};

use crate::error::{AwsErrorKind, Error, Result};
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
    /// Under an OU of `KEYROTOR_EXCLUDE_OUS`.
    ExcludedOu { ou: OrgNodeId },
    /// Under none of `KEYROTOR_INCLUDE_OUS`.
    OutsideIncludedOus,
    /// Not one of `KEYROTOR_ACCOUNTS` (the listed mode).
    NotListed,
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SkipReason::ExcludedAccount => f.write_str("the account is in KEYROTOR_EXCLUDE_ACCOUNTS"),
            SkipReason::ExcludedByTag => write!(f, "the account is tagged {TAG_EXCLUDE}=true"),
            SkipReason::NotActive { state } => write!(f, "the account is not active ({state})"),
            SkipReason::ManagementAccount => f.write_str(
                "the account is the organization's management account, which this deployment leaves out",
            ),
            SkipReason::ExcludedOu { ou } => {
                write!(f, "the account is under {ou}, one of KEYROTOR_EXCLUDE_OUS")
            }
            SkipReason::OutsideIncludedOus => {
                f.write_str("the account is under none of KEYROTOR_INCLUDE_OUS")
            }
            SkipReason::NotListed => f.write_str("the account is not one of KEYROTOR_ACCOUNTS"),
        }
    }
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
        let name = account.name.clone();
        match judge(org, scope, &management, account).await? {
            Ok(member) => inventory.accounts.push(member),
            Err(reason) => inventory.skipped.push(Skipped { id, name, reason }),
        }
    }
    Ok(inventory)
}

/// The deepest an account can sit: five levels of OUs under the root.
const MAX_DEPTH: usize = 6;

/// Whether one account is in scope, judged on what the organization says now, as
/// [`inventory`] would judge it: its place in the OU tree (through every parent up to the
/// root), its ID, its state, whether it is the management account, and its tags. Its [`Member`] (name and admin address from the
/// organization, never from a request) when it is; why not otherwise.
///
/// Every execution naming an account is held to this before anything is read there: the
/// scope must not depend on whether the account came from a scan or from someone who
/// started an execution by hand (issue 26, M5).
pub async fn member<O: OrganizationPort>(
    org: &O,
    mode: &AccountsMode,
    scope: &Scope,
    id: &AccountId,
) -> Result<std::result::Result<Member, SkipReason>> {
    match mode {
        AccountsMode::OwnAccount => {
            return Err(Error::InvalidInput(
                "KEYROTOR_ACCOUNTS is self: this deployment works in its own account only".into(),
            ))
        }
        AccountsMode::Listed(ids) if !ids.contains(id) => return Ok(Err(SkipReason::NotListed)),
        AccountsMode::Listed(_) => {}
        AccountsMode::Organization => {
            let mut path = Vec::new();
            let mut node = org
                .parent(id.as_str())
                .await
                .map_err(|e| not_in_organization(e, id))?;
            loop {
                path.push(node.clone());
                if node.as_str().starts_with("r-") {
                    break;
                }
                if path.len() > MAX_DEPTH {
                    return Err(Error::Internal(format!(
                        "account {id} is more than {MAX_DEPTH} levels under its root"
                    )));
                }
                node = org.parent(node.as_str()).await?;
            }
            if let Some(ou) = path.iter().find(|n| scope.exclude_ous.contains(n)) {
                return Ok(Err(SkipReason::ExcludedOu { ou: ou.clone() }));
            }
            if !scope.include_ous.is_empty() && !path.iter().any(|n| scope.include_ous.contains(n))
            {
                return Ok(Err(SkipReason::OutsideIncludedOus));
            }
        }
    }
    let account = org
        .account(id)
        .await
        .map_err(|e| not_in_organization(e, id))?;
    let management = org.management_account().await?;
    judge(org, scope, &management, account).await
}

/// An account the organization does not know, as the request's fault.
fn not_in_organization(err: Error, id: &AccountId) -> Error {
    if matches!(err, Error::NotFound(_)) || err.aws_kind() == Some(AwsErrorKind::NotFound) {
        Error::InvalidInput(format!("account {id} is not in the organization"))
    } else {
        err
    }
}

/// What [`inventory`] and [`member`] decide of an account found in scope of the OU tree.
async fn judge<O: OrganizationPort>(
    org: &O,
    scope: &Scope,
    management: &AccountId,
    account: OrgAccount,
) -> Result<std::result::Result<Member, SkipReason>> {
    let id = account.id.clone();
    if scope.exclude_accounts.contains(&id) {
        return Ok(Err(SkipReason::ExcludedAccount));
    }
    if let Err(state) = account.activity() {
        return Ok(Err(SkipReason::NotActive { state }));
    }
    if id == *management && !scope.include_management {
        return Ok(Err(SkipReason::ManagementAccount));
    }
    let tags = org.account_tags(&id).await?;
    if tags
        .get(TAG_EXCLUDE)
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
    {
        return Ok(Err(SkipReason::ExcludedByTag));
    }
    Ok(Ok(Member {
        admin_address: tags.get(TAG_ADMIN_ADDRESS).cloned(),
        name: account.name,
        id,
    }))
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
        async fn parent(&self, child: &str) -> Result<OrgNodeId> {
            self.log(format!("parent {child}"));
            let parent = self
                .ous
                .iter()
                .find(|(_, c)| *c == child)
                .map(|(p, _)| *p)
                .or_else(|| self.accounts.iter().find(|a| a.1 == child).map(|a| a.0))
                .ok_or_else(|| Error::NotFound(format!("{child} is not in the organization")))?;
            Ok(id(parent))
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

    /// Every scope the tests try: the default, OUs left out, OUs included (a root too),
    /// accounts left out, the management account in.
    fn scopes() -> Vec<Scope> {
        vec![
            Scope::default(),
            Scope {
                exclude_ous: vec![id("ou-root-sandbox1"), id("ou-root-deepdeep")],
                ..Scope::default()
            },
            Scope {
                include_ous: vec![id("ou-root-prodprod"), id("ou-root-sandbox2")],
                exclude_accounts: vec![id("300000000000")],
                ..Scope::default()
            },
            Scope {
                include_ous: vec![id("r-root")],
                exclude_ous: vec![id("ou-root-prodprod")],
                include_management: true,
                ..Scope::default()
            },
        ]
    }

    #[tokio::test]
    async fn one_account_is_judged_in_scope_exactly_as_the_inventory_judges_it() {
        let org = organization();
        for scope in scopes() {
            let inv = inventory(&org, &AccountsMode::Organization, &scope)
                .await
                .unwrap();
            for row in &org.accounts {
                let account: AccountId = id(row.1);
                let judged = member(&org, &AccountsMode::Organization, &scope, &account)
                    .await
                    .unwrap();
                let listed = inv.accounts.iter().find(|m| m.id == account);
                assert_eq!(judged.as_ref().ok(), listed, "{account} in {scope:?}");
                if let Some(skipped) = inv.skipped.iter().find(|s| s.id == account) {
                    assert_eq!(judged.as_ref().err(), Some(&skipped.reason), "{account}");
                }
            }
        }
    }

    #[tokio::test]
    async fn an_account_outside_the_scope_is_named_with_the_reason() {
        let org = organization();
        let judge = |scope: Scope, account: &'static str| {
            let org = &org;
            async move {
                member(org, &AccountsMode::Organization, &scope, &id(account))
                    .await
                    .unwrap()
            }
        };
        let excluded = Scope {
            exclude_ous: vec![id("ou-root-sandbox1")],
            ..Scope::default()
        };
        // Two levels under the excluded OU: every parent up to the root is looked at.
        assert_eq!(
            judge(excluded.clone(), "600000000000").await,
            Err(SkipReason::ExcludedOu {
                ou: id("ou-root-sandbox1")
            })
        );
        let included = Scope {
            include_ous: vec![id("ou-root-prodprod")],
            ..Scope::default()
        };
        assert_eq!(
            judge(included.clone(), "200000000000").await,
            Err(SkipReason::OutsideIncludedOus)
        );
        assert!(
            judge(included, "400000000000").await.is_ok(),
            "deeper inside"
        );
        assert_eq!(
            judge(excluded, "100000000000").await,
            Err(SkipReason::ManagementAccount)
        );
        // The admin address comes from the organization's tag.
        assert_eq!(
            judge(Scope::default(), "300000000001")
                .await
                .expect("in scope")
                .admin_address
                .as_deref(),
            Some("prod-sec@example.com")
        );

        let listed = AccountsMode::Listed(vec![id("300000000000")]);
        assert_eq!(
            member(&org, &listed, &Scope::default(), &id("300000000001"))
                .await
                .unwrap(),
            Err(SkipReason::NotListed)
        );
        for (mode, account) in [
            (AccountsMode::Organization, "999999999999"),
            (AccountsMode::OwnAccount, "300000000000"),
        ] {
            let err = member(&org, &mode, &Scope::default(), &id(account))
                .await
                .expect_err("refused");
            assert_eq!(err.error_type().as_str(), "InvalidInput", "{err}");
        }
        assert_eq!(
            SkipReason::ExcludedOu {
                ou: id("ou-root-sandbox1")
            }
            .to_string(),
            "the account is under ou-root-sandbox1, one of KEYROTOR_EXCLUDE_OUS"
        );
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
