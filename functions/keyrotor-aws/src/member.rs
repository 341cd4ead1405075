//! Working in member accounts: each function assumes its own role there
//! (`role/keyrotor/<function>`), and builds its dependencies from that session. Sessions are
//! kept per account in a warm instance and renewed before they expire, one renewal at a
//! time per account.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use aws_config::SdkConfig;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;
use chrono::{DateTime, Duration, Utc};
use tokio::sync::Mutex;
use tracing::info;

use crate::error::sdk_error;
use crate::{FromConfig, Organizations};
use keyrotor_core::accounts::{self, member_role_arn, AccountId, AccountsMode, Member, SkipReason};
use keyrotor_core::config::Config;
use keyrotor_core::error::{AwsErrorKind, Error, Result};
use keyrotor_core::payload::AccountRef;
use serde::Serialize;

/// How long a member session is asked for: the member roles' default maximum.
pub const SESSION_SECONDS: i32 = 3600;
/// A session is renewed once it has less than this left: more than a Lambda invocation
/// can last (15 minutes), so no call of an invocation runs on expired credentials.
pub const RENEW_BEFORE: Duration = Duration::minutes(20);

/// The partition of an AWS region: `aws-cn` for China, `aws-us-gov` for GovCloud, else `aws`.
pub fn partition_of(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// What a member account's configuration differs in: its secrets are protected by its own
/// key (the member stack's alias) and may be changed only by the member roles of
/// `create-key` and `deactivate-key` in that account.
pub fn member_config(config: &Config, partition: &str, account: &AccountId) -> Config {
    let mut member = config.clone();
    member.kms_key_id = Some(MEMBER_KMS_ALIAS.to_owned());
    // That account's users' destinations, by their names: no other account's.
    member.delivery.destinations = config.delivery.destinations.for_account(account.as_str());
    member.trusted_role_arns = ["create-key", "deactivate-key"]
        .iter()
        .map(|function| member_role_arn(partition, account, function))
        .collect();
    member
}

/// The alias of the KMS key `infra/member-account.yaml` creates in each member account for
/// the users' secrets.
pub const MEMBER_KMS_ALIAS: &str = "alias/keyrotor-secrets";

type Slot<D> = Arc<Mutex<Option<(Arc<D>, DateTime<Utc>)>>>;

/// The AWS actions the scope check calls (besides `sts:AssumeRole` of
/// `KEYROTOR_ORG_ROLE_ARN`, if set): granted, with many accounts, to the roles of the
/// functions with [`FromConfig::CHECKS_SCOPE`] (checked by `tools/check_infra.py`).
pub const SCOPE_ACTIONS: &[&str] = &[
    "organizations:DescribeAccount",
    "organizations:DescribeOrganization",
    "organizations:ListParents",
    "organizations:ListTagsForResource",
];

/// How long what the organization said of an account (in scope, its admin address) is
/// taken as still true by a warm instance.
pub const SCOPE_TTL: Duration = Duration::minutes(15);

/// Where Organizations is read: with the function's own role (the management account, or a
/// delegated administrator), or through `KEYROTOR_ORG_ROLE_ARN`'s role, whose session is
/// kept like a member session.
enum OrgSource {
    Direct(Organizations),
    ThroughRole {
        role_arn: String,
        session: Mutex<Option<(Organizations, DateTime<Utc>)>>,
    },
}

/// Each account's scope as the organization gives it now, checked before a member session
/// is made (issue 26, M5).
struct ScopeCheck {
    source: OrgSource,
    judged: Mutex<HashMap<AccountId, (Member, DateTime<Utc>)>>,
}

/// A function's dependencies in each account it is asked to work in: its own account's,
/// built at the cold start, or a member account's, built from a session of the function's
/// member role there.
pub struct Accounts<D> {
    own: Arc<D>,
    config: Config,
    function: &'static str,
    partition: &'static str,
    base: SdkConfig,
    sts: aws_sdk_sts::Client,
    slots: Mutex<HashMap<AccountId, Slot<D>>>,
    scope: Option<ScopeCheck>,
}

impl<D: FromConfig> Accounts<D> {
    /// `function` names the member role (`role/keyrotor/<function>`).
    /// With [`FromConfig::CHECKS_SCOPE`], the scope is checked through Organizations.
    pub fn new(config: Config, sdk: &SdkConfig, function: &'static str) -> Result<Self> {
        let accounts = Self::with_sts(config, sdk, function, aws_sdk_sts::Client::new(sdk))?;
        Ok(if D::CHECKS_SCOPE {
            accounts.checking_scope()
        } else {
            accounts
        })
    }

    /// As [`Accounts::new`], assuming roles through `sts` (a mocked client, in tests).
    pub fn with_sts(
        config: Config,
        sdk: &SdkConfig,
        function: &'static str,
        sts: aws_sdk_sts::Client,
    ) -> Result<Self> {
        let own = Arc::new(D::from_config(config.clone(), sdk)?);
        let region = sdk
            .region()
            .map(|r| r.as_ref().to_owned())
            .unwrap_or_default();
        Ok(Accounts {
            own,
            partition: partition_of(&region),
            function,
            sts,
            base: sdk.clone(),
            config,
            slots: Mutex::new(HashMap::new()),
            scope: None,
        })
    }

    /// Also holds every account to the deployment's scope as the organization gives it
    /// (OUs, exclusion tag, management account, state) before a session is made there, and
    /// gives [`Accounts::member`] its answer. For the steps an execution starts with
    /// (list-users, assess-key-age) and for notify, which takes an account's admin address
    /// from the organization only.
    pub fn checking_scope(self) -> Self {
        let source = match &self.config.accounts.org_role_arn {
            None => OrgSource::Direct(Organizations::from_sdk(&self.base)),
            Some(role_arn) => OrgSource::ThroughRole {
                role_arn: role_arn.clone(),
                session: Mutex::new(None),
            },
        };
        self.with_scope_source(source)
    }

    /// As [`Accounts::checking_scope`], reading Organizations through `org` (a mocked
    /// client, in tests).
    pub fn checking_scope_with(self, org: Organizations) -> Self {
        self.with_scope_source(OrgSource::Direct(org))
    }

    fn with_scope_source(mut self, source: OrgSource) -> Self {
        if self.config.accounts.mode != AccountsMode::OwnAccount {
            self.scope = Some(ScopeCheck {
                source,
                judged: Mutex::new(HashMap::new()),
            });
        }
        self
    }

    /// `account` as the organization describes it now (its name and admin address), if
    /// it is in scope; an `InvalidInput` naming the reason if not. `None` where scope is not
    /// checked.
    pub async fn member(&self, account: &AccountId) -> Result<Option<Member>> {
        self.check_allowed(account)?;
        let Some(scope) = &self.scope else {
            return Ok(None);
        };
        if let Some((member, at)) = scope.judged.lock().await.get(account) {
            if Utc::now() - *at < SCOPE_TTL {
                return Ok(Some(member.clone()));
            }
        }
        let org = self.organizations(&scope.source).await?;
        let accounts = &self.config.accounts;
        match accounts::member(&org, &accounts.mode, &accounts.scope, account).await? {
            Ok(member) => {
                scope
                    .judged
                    .lock()
                    .await
                    .insert(account.clone(), (member.clone(), Utc::now()));
                Ok(Some(member))
            }
            Err(reason) => Err(out_of_scope(account, &reason)),
        }
    }

    async fn organizations(&self, source: &OrgSource) -> Result<Organizations> {
        let (role_arn, session) = match source {
            OrgSource::Direct(org) => return Ok(org.clone()),
            OrgSource::ThroughRole { role_arn, session } => (role_arn, session),
        };
        let mut held = session.lock().await;
        if let Some((org, expires)) = held.as_ref() {
            if *expires - Utc::now() > RENEW_BEFORE {
                return Ok(org.clone());
            }
        }
        let session_name = format!("keyrotor-{}", self.function);
        let (org, expires) =
            Organizations::through_role(&self.sts, &self.base, role_arn, &session_name).await?;
        *held = Some((org.clone(), expires));
        Ok(org)
    }

    /// The dependencies for `account` (`None`: the function's own account).
    pub async fn deps(&self, account: Option<&AccountId>) -> Result<Arc<D>> {
        let Some(account) = account else {
            return Ok(Arc::clone(&self.own));
        };
        self.member(account).await?;
        let slot = {
            let mut slots = self.slots.lock().await;
            Arc::clone(slots.entry(account.clone()).or_default())
        };
        // One renewal at a time per account: a second caller waits for the first's session.
        let mut held = slot.lock().await;
        if let Some((deps, expires)) = held.as_ref() {
            if *expires - Utc::now() > RENEW_BEFORE {
                return Ok(Arc::clone(deps));
            }
        }
        let (sdk, expires) = self.assume(account).await?;
        let config = member_config(&self.config, self.partition, account);
        let deps = Arc::new(self.own.in_member(config, &sdk)?);
        *held = Some((Arc::clone(&deps), expires));
        Ok(deps)
    }

    /// Whether this deployment may work in `account` at all.
    fn check_allowed(&self, account: &AccountId) -> Result<()> {
        let accounts = &self.config.accounts;
        let refused = match &accounts.mode {
            AccountsMode::OwnAccount => {
                return Err(Error::InvalidInput(format!(
                    "account {account}: this deployment works in its own account only"
                )))
            }
            AccountsMode::Listed(ids) if !ids.contains(account) => Some(SkipReason::NotListed),
            _ if accounts.scope.exclude_accounts.contains(account) => {
                Some(SkipReason::ExcludedAccount)
            }
            _ => None,
        };
        refused.map_or(Ok(()), |reason| Err(out_of_scope(account, &reason)))
    }

    /// A session of this function's member role in `account`.
    async fn assume(&self, account: &AccountId) -> Result<(SdkConfig, DateTime<Utc>)> {
        let role_arn = member_role_arn(self.partition, account, self.function);
        let session = assume_role(
            &self.sts,
            &self.base,
            &role_arn,
            &format!("keyrotor-{}", self.function),
            self.config.accounts.external_id.as_deref(),
        )
        .await
        .map_err(|e| unreachable(e, account, &role_arn))?;
        info!(account = %account, role = %role_arn, expires = %session.1, "assumed the member role");
        Ok(session)
    }
}

/// The refusal of an account outside the deployment's scope, with the reason the scan would
/// give for leaving it out.
fn out_of_scope(account: &AccountId, reason: &SkipReason) -> Error {
    Error::InvalidInput(format!(
        "account {account}: {reason}; this deployment does not work there"
    ))
}

/// An SDK configuration like `base` but signed by a session of `role_arn` (one hour), and
/// when that session expires.
pub async fn assume_role(
    sts: &aws_sdk_sts::Client,
    base: &SdkConfig,
    role_arn: &str,
    session_name: &str,
    external_id: Option<&str>,
) -> Result<(SdkConfig, DateTime<Utc>)> {
    let out = sts
        .assume_role()
        .role_arn(role_arn)
        .role_session_name(session_name)
        .set_external_id(external_id.map(str::to_owned))
        .duration_seconds(SESSION_SECONDS)
        .send()
        .await
        .map_err(|e| sdk_error("sts:AssumeRole", e))?;
    let credentials = out.credentials().ok_or_else(|| {
        Error::Internal(format!("AssumeRole of {role_arn} returned no credentials"))
    })?;
    let expires = crate::to_utc(credentials.expiration())
        .ok_or_else(|| Error::Internal("AssumeRole returned a bad expiry".into()))?;
    let provider = Credentials::new(
        credentials.access_key_id(),
        credentials.secret_access_key(),
        Some(credentials.session_token().to_owned()),
        Some(SystemTime::from(expires)),
        "keyrotor-assumed-role",
    );
    let sdk = base
        .to_builder()
        .credentials_provider(SharedCredentialsProvider::new(provider))
        .build();
    Ok((sdk, expires))
}

/// AssumeRole's failures that no retry mends, as `AccountUnreachable`: the role is missing
/// or its trust policy refuses keyrotor (both AccessDenied), or STS is not enabled in the
/// region for the account. Throttling and transient failures stay as they are (retried).
fn unreachable(err: Error, account: &AccountId, role_arn: &str) -> Error {
    let code = match &err {
        Error::Aws { code, .. } => code.clone(),
        _ => return err,
    };
    let permanent = matches!(
        err.aws_kind(),
        Some(AwsErrorKind::AccessDenied | AwsErrorKind::NotFound)
    ) || matches!(
        code.as_str(),
        "RegionDisabledException" | "ExpiredTokenException" | "InvalidIdentityToken"
    );
    if !permanent {
        return err;
    }
    Error::AccountUnreachable {
        account: account.to_string(),
        role_arn: role_arn.to_owned(),
        reason: code,
    }
}

/// The member account an event names (`account` at its top, an object or `null`), and the
/// event without it.
pub fn take_account(
    mut event: serde_json::Value,
) -> Result<(Option<AccountRef>, serde_json::Value), Error> {
    let field = event.as_object_mut().and_then(|o| o.remove("account"));
    let account = match field {
        None | Some(serde_json::Value::Null) => None,
        Some(value) => Some(
            serde_json::from_value(value)
                .map_err(|e| Error::InvalidInput(format!("account: {e}")))?,
        ),
    };
    Ok((account, event))
}

/// The output with the account it was made in (`null`: the function's own).
pub fn with_account<O: Serialize>(
    output: O,
    account: Option<AccountRef>,
) -> Result<serde_json::Value, Error> {
    let mut value = serde_json::to_value(output)
        .map_err(|e| Error::Internal(format!("output not serializable: {e}")))?;
    if let Some(object) = value.as_object_mut() {
        let account = serde_json::to_value(account)
            .map_err(|e| Error::Internal(format!("account not serializable: {e}")))?;
        object.insert("account".to_owned(), account);
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_follow_the_region() {
        assert_eq!(partition_of("eu-west-1"), "aws");
        assert_eq!(partition_of("cn-north-1"), "aws-cn");
        assert_eq!(partition_of("us-gov-west-1"), "aws-us-gov");
    }

    #[test]
    fn a_member_accounts_secrets_trust_only_its_own_member_roles() {
        let config = crate::testing::test_config();
        let account: AccountId = "222222222222".parse().expect("valid");
        let member = member_config(&config, "aws", &account);
        assert_eq!(
            member.trusted_role_arns,
            [
                "arn:aws:iam::222222222222:role/keyrotor/create-key",
                "arn:aws:iam::222222222222:role/keyrotor/deactivate-key"
            ]
        );
        assert_eq!(member.kms_key_id.as_deref(), Some(MEMBER_KMS_ALIAS));
    }

    #[test]
    fn the_account_is_taken_from_the_event_and_carried_to_the_output() {
        use serde_json::json;

        let event = json!({"user": "alice", "account": {"id": "222222222222", "name": "prod"}});
        let (account, rest) = take_account(event).expect("valid");
        let account = account.expect("named");
        assert_eq!(account.id.as_str(), "222222222222");
        assert_eq!(rest, json!({"user": "alice"}));

        let out = with_account(json!({"ok": true}), Some(account)).expect("object");
        assert_eq!(
            out["account"],
            json!({"id": "222222222222", "name": "prod"})
        );
        // Its own account: `null`, so the next state's `$.account` always exists.
        let (none, _) = take_account(json!({"account": null})).expect("valid");
        assert_eq!(
            with_account(json!({}), none).expect("object"),
            json!({"account": null})
        );

        for bad in [
            json!({"account": "222222222222"}),
            json!({"account": {"id": "2222"}}),
            json!({"account": {"id": "222222222222", "role": "admin"}}),
        ] {
            let err = take_account(bad.clone()).expect_err("refused");
            assert_eq!(err.error_type().as_str(), "InvalidInput", "{bad}");
        }
    }
}
