//! Many accounts against mocked SDK responses: the organization's inventory through the
//! Organizations adapter (paging that moto ignores, `State` that moto does not send), and
//! the member sessions (caching, renewal, and which failures make an account unreachable).

use std::sync::Arc;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::ProvideCredentials;
use aws_sdk_organizations::types::{
    Account, AccountState, AccountStatus, Child, ChildType, Organization, Root,
};
use aws_sdk_sts::types::Credentials as StsCredentials;
use aws_smithy_mocks::{mock, mock_client, RuleMode};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::DateTime;
use keyrotor_aws::{Accounts, FromConfig, Organizations};
use keyrotor_core::accounts::{inventory, AccountId, AccountsMode, Scope, SkipReason};
use keyrotor_core::config::{Config, ConfigError};
use keyrotor_core::ErrorType;

fn account(id: &str, state: Option<AccountState>, status: Option<AccountStatus>) -> Account {
    Account::builder()
        .id(id)
        .name(format!("name-{id}"))
        .set_state(state)
        .set_status(status)
        .build()
}

#[tokio::test]
async fn the_inventory_follows_every_page_of_list_children_and_reads_state_before_status() {
    let org = mock!(aws_sdk_organizations::Client::describe_organization).then_output(|| {
        aws_sdk_organizations::operation::describe_organization::DescribeOrganizationOutput::builder()
            .organization(Organization::builder().master_account_id("100000000000").build())
            .build()
    });
    let roots = mock!(aws_sdk_organizations::Client::list_roots).then_output(|| {
        aws_sdk_organizations::operation::list_roots::ListRootsOutput::builder()
            .roots(Root::builder().id("r-abcd").build())
            .build()
    });
    let ou = |id: &str| {
        Child::builder()
            .id(id)
            .r#type(ChildType::OrganizationalUnit)
            .build()
    };
    // The root's OUs come in two pages; the second page's OU has none below it.
    let root_page_1 = mock!(aws_sdk_organizations::Client::list_children)
        .match_requests(|r| r.parent_id() == Some("r-abcd") && r.next_token().is_none())
        .then_output(move || {
            aws_sdk_organizations::operation::list_children::ListChildrenOutput::builder()
                .children(ou("ou-abcd-aaaaaaaa"))
                .next_token("page-2")
                .build()
        });
    let root_page_2 = mock!(aws_sdk_organizations::Client::list_children)
        .match_requests(|r| r.parent_id() == Some("r-abcd") && r.next_token() == Some("page-2"))
        .then_output(move || {
            aws_sdk_organizations::operation::list_children::ListChildrenOutput::builder()
                .children(ou("ou-abcd-bbbbbbbb"))
                .build()
        });
    let leaves = mock!(aws_sdk_organizations::Client::list_children)
        .match_requests(|r| r.parent_id() != Some("r-abcd"))
        .then_output(|| {
            aws_sdk_organizations::operation::list_children::ListChildrenOutput::builder().build()
        });
    let accounts = mock!(aws_sdk_organizations::Client::list_accounts_for_parent).then_compute_output(
        |r| {
            let out = aws_sdk_organizations::operation::list_accounts_for_parent::ListAccountsForParentOutput::builder();
            match r.parent_id() {
                Some("r-abcd") => out.accounts(account("100000000000", Some(AccountState::Active), Some(AccountStatus::Active))),
                // State wins: closing although Status still says active.
                Some("ou-abcd-aaaaaaaa") => out
                    .accounts(account("200000000000", Some(AccountState::Active), None))
                    .accounts(account("200000000001", Some(AccountState::PendingClosure), Some(AccountStatus::Active))),
                // Only Status, as older responses (and moto) give it.
                Some("ou-abcd-bbbbbbbb") => out
                    .accounts(account("300000000000", None, Some(AccountStatus::Active)))
                    .accounts(account("300000000001", None, Some(AccountStatus::Suspended))),
                _ => out,
            }
            .build()
        },
    );
    let tags = mock!(aws_sdk_organizations::Client::list_tags_for_resource).then_output(|| {
        aws_sdk_organizations::operation::list_tags_for_resource::ListTagsForResourceOutput::builder().build()
    });
    let client = mock_client!(
        aws_sdk_organizations,
        RuleMode::MatchAny,
        [
            &org,
            &roots,
            &root_page_1,
            &root_page_2,
            &leaves,
            &accounts,
            &tags
        ]
    );
    let found = inventory(
        &Organizations::new(client),
        &AccountsMode::Organization,
        &Scope::default(),
    )
    .await
    .expect("inventory");
    let ids: Vec<&str> = found.accounts.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids, ["200000000000", "300000000000"]);
    let skipped: Vec<(&str, &SkipReason)> = found
        .skipped
        .iter()
        .map(|s| (s.id.as_str(), &s.reason))
        .collect();
    assert_eq!(
        skipped,
        [
            ("100000000000", &SkipReason::ManagementAccount),
            (
                "200000000001",
                &SkipReason::NotActive {
                    state: "PENDING_CLOSURE".into()
                }
            ),
            (
                "300000000001",
                &SkipReason::NotActive {
                    state: "SUSPENDED".into()
                }
            ),
        ]
    );
    assert_eq!((root_page_1.num_calls(), root_page_2.num_calls()), (1, 1));
    assert_eq!(leaves.num_calls(), 2, "both OUs of both pages were walked");
}

/// A function's dependencies that keep the SDK configuration they were built with.
struct Probe {
    sdk: SdkConfig,
    config: Config,
}

impl FromConfig for Probe {
    fn from_config(config: Config, sdk: &SdkConfig) -> Result<Self, ConfigError> {
        Ok(Probe {
            sdk: sdk.clone(),
            config,
        })
    }
}

impl Probe {
    async fn access_key(&self) -> String {
        let provider = self.sdk.credentials_provider().expect("credentials");
        provider
            .provide_credentials()
            .await
            .expect("credentials")
            .access_key_id()
            .to_owned()
    }
}

fn organization_config(extra: &[(&str, &str)]) -> Config {
    let extra: Vec<(String, String)> = extra
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    Config::from_lookup(|name| match name {
        "KEYROTOR_ACCOUNTS" => Some("organization".into()),
        _ => extra
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone()),
    })
    .expect("valid")
}

fn base_sdk() -> SdkConfig {
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("eu-west-1"))
        .build()
}

fn session(key: &'static str, expires_in_secs: i64) -> aws_smithy_mocks::Rule {
    session_if(key, expires_in_secs, |_| true)
}

fn session_if(
    key: &'static str,
    expires_in_secs: i64,
    matches: impl Fn(&aws_sdk_sts::operation::assume_role::AssumeRoleInput) -> bool
        + Send
        + Sync
        + 'static,
) -> aws_smithy_mocks::Rule {
    mock!(aws_sdk_sts::Client::assume_role)
        .match_requests(matches)
        .sequence()
        .output(move || {
            aws_sdk_sts::operation::assume_role::AssumeRoleOutput::builder()
                .credentials(
                    StsCredentials::builder()
                        .access_key_id(key)
                        .secret_access_key("member-secret-not-logged")
                        .session_token("token")
                        .expiration(DateTime::from_secs(
                            chrono::Utc::now().timestamp() + expires_in_secs,
                        ))
                        .build()
                        .expect("credentials"),
                )
                .build()
        })
        .repeatedly()
        .build()
}

fn id(s: &str) -> AccountId {
    s.parse().expect("valid")
}

#[tokio::test]
async fn a_member_session_is_kept_per_account_and_renewed_before_it_expires() {
    let assume = session_if("ASIAMEMBER", 3600, |r| {
        r.role_arn() == Some("arn:aws:iam::222222222222:role/keyrotor/list-users")
            && r.external_id() == Some("keyrotor-prod")
            && r.role_session_name() == Some("keyrotor-list-users")
    });
    let sts = mock_client!(aws_sdk_sts, [&assume]);
    let config = organization_config(&[("KEYROTOR_MEMBER_EXTERNAL_ID", "keyrotor-prod")]);
    let accounts: Accounts<Probe> =
        Accounts::with_sts(config, &base_sdk(), "list-users", sts).expect("built");

    let own = accounts.deps(None).await.expect("own");
    assert!(
        own.sdk.credentials_provider().is_none(),
        "its own account: the cold start's"
    );
    let first = accounts
        .deps(Some(&id("222222222222")))
        .await
        .expect("member");
    assert_eq!(first.access_key().await, "ASIAMEMBER");
    assert_eq!(
        first.config.trusted_role_arns,
        [
            "arn:aws:iam::222222222222:role/keyrotor/create-key",
            "arn:aws:iam::222222222222:role/keyrotor/deactivate-key"
        ]
    );
    let again = accounts
        .deps(Some(&id("222222222222")))
        .await
        .expect("member");
    assert!(
        Arc::ptr_eq(&first, &again),
        "a warm instance reuses the session"
    );
    assert_eq!(assume.num_calls(), 1);

    // A session with less than 20 minutes left is renewed before it is used again.
    let short = session("ASIASHORT", 600);
    let sts = mock_client!(aws_sdk_sts, [&short]);
    let accounts: Accounts<Probe> =
        Accounts::with_sts(organization_config(&[]), &base_sdk(), "list-users", sts)
            .expect("built");
    accounts
        .deps(Some(&id("333333333333")))
        .await
        .expect("member");
    accounts
        .deps(Some(&id("333333333333")))
        .await
        .expect("member");
    assert_eq!(short.num_calls(), 2);
}

#[tokio::test]
async fn sessions_are_renewed_one_at_a_time_per_account() {
    let assume = session("ASIAMEMBER", 3600);
    let sts = mock_client!(aws_sdk_sts, [&assume]);
    let accounts: Accounts<Probe> =
        Accounts::with_sts(organization_config(&[]), &base_sdk(), "create-key", sts)
            .expect("built");
    let a = id("222222222222");
    let b = id("444444444444");
    let (x, y, z) = tokio::join!(
        accounts.deps(Some(&a)),
        accounts.deps(Some(&a)),
        accounts.deps(Some(&b))
    );
    assert!(Arc::ptr_eq(&x.expect("a"), &y.expect("a")));
    z.expect("b");
    assert_eq!(assume.num_calls(), 2, "one per account");
}

fn sts_error(status: u16, code: &str) -> HttpResponse {
    let body = format!(
        "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{code} happened</Message></Error><RequestId>r</RequestId></ErrorResponse>"
    );
    HttpResponse::new(
        StatusCode::try_from(status).expect("status"),
        SdkBody::from(body),
    )
}

#[tokio::test]
async fn a_refused_role_makes_the_account_unreachable_and_throttling_stays_retryable() {
    for (status, code, expected) in [
        (403, "AccessDenied", ErrorType::AccountUnreachable),
        (
            403,
            "RegionDisabledException",
            ErrorType::AccountUnreachable,
        ),
        (400, "Throttling", ErrorType::Throttled),
        (503, "ServiceUnavailable", ErrorType::Transient),
    ] {
        let refused = mock!(aws_sdk_sts::Client::assume_role)
            .then_http_response(move || sts_error(status, code));
        let sts = mock_client!(aws_sdk_sts, RuleMode::Sequential, [&refused], |c| c
            .retry_config(aws_smithy_types::retry::RetryConfig::disabled()));
        let accounts: Accounts<Probe> =
            Accounts::with_sts(organization_config(&[]), &base_sdk(), "delete-key", sts)
                .expect("built");
        let err = accounts
            .deps(Some(&id("555555555555")))
            .await
            .err()
            .expect("refused");
        assert_eq!(err.error_type(), expected, "{code}: {err}");
        if expected == ErrorType::AccountUnreachable {
            let text = err.to_string();
            assert!(
                text.contains("arn:aws:iam::555555555555:role/keyrotor/delete-key")
                    && text.contains(code)
                    && text.contains("StackSet"),
                "{text}"
            );
        }
    }
}

#[tokio::test]
async fn accounts_outside_the_configuration_are_refused_without_a_call() {
    let assume = session("ASIAMEMBER", 3600);
    let sts = mock_client!(aws_sdk_sts, [&assume]);
    let own_only = Config::from_lookup(|_| None).expect("defaults");
    let accounts: Accounts<Probe> =
        Accounts::with_sts(own_only, &base_sdk(), "list-users", sts.clone()).expect("built");
    let err = accounts
        .deps(Some(&id("222222222222")))
        .await
        .err()
        .expect("self mode");
    assert_eq!(err.error_type(), ErrorType::InvalidInput, "{err}");

    let listed = Config::from_lookup(|name| {
        (name == "KEYROTOR_ACCOUNTS").then(|| "222222222222,333333333333".to_owned())
    })
    .expect("valid");
    let accounts: Accounts<Probe> =
        Accounts::with_sts(listed, &base_sdk(), "list-users", sts.clone()).expect("built");
    let err = accounts
        .deps(Some(&id("444444444444")))
        .await
        .err()
        .expect("not listed");
    assert_eq!(err.error_type(), ErrorType::InvalidInput, "{err}");
    accounts
        .deps(Some(&id("333333333333")))
        .await
        .expect("listed");

    let excluded = organization_config(&[("KEYROTOR_EXCLUDE_ACCOUNTS", "666666666666")]);
    let accounts: Accounts<Probe> =
        Accounts::with_sts(excluded, &base_sdk(), "list-users", sts).expect("built");
    let err = accounts
        .deps(Some(&id("666666666666")))
        .await
        .err()
        .expect("excluded");
    assert_eq!(err.error_type(), ErrorType::InvalidInput, "{err}");
    assert_eq!(
        assume.num_calls(),
        1,
        "only the listed account was assumed into"
    );
}

/// M5 of the second review: a hand-started execution naming an account the scan leaves out
/// (under an excluded OU, tagged `keyrotor:exclude=true`, the management account) was worked
/// in. With the scope checked, the organization is asked first, and no session is made there.
#[tokio::test]
async fn an_account_outside_the_scope_is_refused_before_any_session_is_made() {
    use aws_sdk_organizations::operation::describe_account::DescribeAccountOutput;
    use aws_sdk_organizations::operation::describe_organization::DescribeOrganizationOutput;
    use aws_sdk_organizations::operation::list_parents::ListParentsOutput;
    use aws_sdk_organizations::operation::list_tags_for_resource::ListTagsForResourceOutput;
    use aws_sdk_organizations::types::{Parent, ParentType, Tag};

    let parents = mock!(aws_sdk_organizations::Client::list_parents).then_compute_output(|req| {
        let parent = match req.child_id().unwrap_or_default() {
            "222222222222" => ("ou-ab12-prod0000", ParentType::OrganizationalUnit),
            "777777777777" => ("ou-ab12-deeper00", ParentType::OrganizationalUnit),
            "ou-ab12-deeper00" => ("ou-ab12-sandbox1", ParentType::OrganizationalUnit),
            _ => ("r-ab12", ParentType::Root),
        };
        ListParentsOutput::builder()
            .parents(Parent::builder().id(parent.0).r#type(parent.1).build())
            .build()
    });
    let describe =
        mock!(aws_sdk_organizations::Client::describe_account).then_compute_output(|req| {
            let id = req.account_id().unwrap_or_default();
            DescribeAccountOutput::builder()
                .account(account(id, Some(AccountState::Active), None))
                .build()
        });
    let organization =
        mock!(aws_sdk_organizations::Client::describe_organization).then_output(|| {
            DescribeOrganizationOutput::builder()
                .organization(
                    Organization::builder()
                        .master_account_id("100000000000")
                        .build(),
                )
                .build()
        });
    let tags =
        mock!(aws_sdk_organizations::Client::list_tags_for_resource).then_compute_output(|req| {
            let tag = |k: &str, v: &str| Tag::builder().key(k).value(v).build().expect("tag");
            let tags = match req.resource_id().unwrap_or_default() {
                "222222222222" => vec![tag("keyrotor:admin-address", "prod-sec@example.com")],
                "888888888888" => vec![tag("keyrotor:exclude", "true")],
                _ => Vec::new(),
            };
            ListTagsForResourceOutput::builder()
                .set_tags(Some(tags))
                .build()
        });
    let org = mock_client!(
        aws_sdk_organizations,
        RuleMode::MatchAny,
        [&parents, &describe, &organization, &tags]
    );
    let assume = session("ASIAMEMBER", 3600);
    let sts = mock_client!(aws_sdk_sts, [&assume]);
    let config = organization_config(&[("KEYROTOR_EXCLUDE_OUS", "ou-ab12-sandbox1")]);
    let accounts: Accounts<Probe> = Accounts::with_sts(config, &base_sdk(), "assess-key-age", sts)
        .expect("built")
        .checking_scope_with(Organizations::new(org));

    for (refused, why) in [
        ("777777777777", "under ou-ab12-sandbox1"),
        ("888888888888", "tagged keyrotor:exclude=true"),
        ("100000000000", "management account"),
    ] {
        let err = accounts
            .deps(Some(&id(refused)))
            .await
            .err()
            .expect("out of scope");
        assert_eq!(err.error_type(), ErrorType::InvalidInput, "{err}");
        assert!(err.to_string().contains(why), "{err}");
    }
    assert_eq!(assume.num_calls(), 0, "no session outside the scope");

    accounts
        .deps(Some(&id("222222222222")))
        .await
        .expect("in scope");
    let member = accounts
        .member(&id("222222222222"))
        .await
        .expect("in scope")
        .expect("checked");
    assert_eq!(
        member.admin_address.as_deref(),
        Some("prod-sec@example.com"),
        "from the organization's tag"
    );
    assert_eq!(assume.num_calls(), 1);
    // A warm instance asks the organization once per account in a while.
    let asked = parents.num_calls() + describe.num_calls() + tags.num_calls();
    accounts
        .deps(Some(&id("222222222222")))
        .await
        .expect("in scope");
    assert_eq!(
        parents.num_calls() + describe.num_calls() + tags.num_calls(),
        asked
    );
    // Every action SCOPE_ACTIONS declares was called (and the mocks allow no other).
    let called = [
        ("organizations:ListParents", parents.num_calls()),
        ("organizations:DescribeAccount", describe.num_calls()),
        (
            "organizations:DescribeOrganization",
            organization.num_calls(),
        ),
        ("organizations:ListTagsForResource", tags.num_calls()),
    ];
    let mut declared: Vec<&str> = keyrotor_aws::member::SCOPE_ACTIONS.to_vec();
    declared.sort_unstable();
    let mut used: Vec<&str> = called
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(a, _)| *a)
        .collect();
    used.sort_unstable();
    assert_eq!(used, declared);

    // Without the check (the other steps), nothing is asked.
    let plain: Accounts<Probe> = Accounts::with_sts(
        organization_config(&[]),
        &base_sdk(),
        "create-key",
        mock_client!(aws_sdk_sts, [&session("ASIAOTHER", 3600)]),
    )
    .expect("built");
    assert!(plain
        .member(&id("222222222222"))
        .await
        .expect("allowed")
        .is_none());
}
