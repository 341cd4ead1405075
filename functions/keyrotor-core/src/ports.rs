//! Ports: the narrow account operations keyrotor's steps use, as traits. The SDK adapters in
//! [`crate::aws`] implement them against AWS; tests implement them with an in-memory account
//! that keeps IAM's and Secrets Manager's rules (`keyrotor_tests::fake`), and a wrapper that
//! fails chosen calls. A function's dependencies name only the ports it uses, so its
//! signature says which services it touches, and its `AWS_ACTIONS` list says which calls.

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::domain::credential_report::CredentialReport;
use crate::domain::{AccessKey, KeyStatus, SecretState};
use crate::email::EmailAddress;
use crate::error::Result;
use crate::exposure::HealthAnswer;
use crate::payload::{AccountId, OrgNodeId};
use crate::secret::NewAccessKey;

/// An IAM user as GetUser returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IamUser {
    /// The name as IAM spells it (names are case-insensitive: `ALICE` finds `alice`).
    pub name: String,
    pub arn: String,
    /// The unique ID (`AIDA…`), never reused by another user.
    pub id: String,
}

/// One page of user names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserPage {
    pub users: Vec<String>,
    pub next_marker: Option<String>,
}

/// What DescribeSecret says about a user's secret (never its value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretDescription {
    pub arn: String,
    pub name: String,
    pub tags: BTreeMap<String, String>,
    pub state: SecretState,
    /// The KMS key as DescribeSecret names it (`None`: the AWS managed key).
    pub kms_key_id: Option<String>,
    pub replicated: bool,
    pub rotation_enabled: bool,
    pub scheduled_for_deletion: bool,
    /// How many versions hold a value.
    pub version_count: usize,
}

/// An e-mail to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    pub to: Vec<EmailAddress>,
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// The outcome of starting a named execution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartOutcome {
    Started {
        execution_arn: String,
    },
    /// An execution of that name exists already, with the same input (started by an
    /// earlier run of the same scan).
    AlreadyStarted,
    /// An execution of that name exists with another input: someone else started it (a dry
    /// run, another account or user, made-up fields) and took the name keyrotor would use.
    /// It is not keyrotor's and does not stand for what keyrotor would have started: the
    /// caller reports it loudly (issue 26, H2).
    Conflicting {
        execution_arn: String,
    },
}

/// IAM: users, their tags and group membership, and their access keys.
pub trait UsersPort: Sync {
    /// One page of ListUsers (at most `max_items`, up to 1,000).
    fn list_users_page(
        &self,
        marker: Option<&str>,
        max_items: i32,
    ) -> impl Future<Output = Result<UserPage>> + Send;

    /// The user's canonical name, ARN and unique ID; `UserNotFound` if there is no such user.
    fn user(&self, user: &str) -> impl Future<Output = Result<IamUser>> + Send;

    /// All of the user's access keys.
    fn access_keys(&self, user: &str) -> impl Future<Output = Result<Vec<AccessKey>>> + Send;

    /// The user's tags.
    fn user_tags(
        &self,
        user: &str,
    ) -> impl Future<Output = Result<BTreeMap<String, String>>> + Send;

    /// The members of `group`; a group that does not exist has none.
    fn group_members(&self, group: &str) -> impl Future<Output = Result<HashSet<String>>> + Send;

    /// Creates an access key. Not idempotent: sent exactly once, never retried.
    fn create_access_key(&self, user: &str) -> impl Future<Output = Result<NewAccessKey>> + Send;

    /// Sets a key Active or Inactive (idempotent).
    fn set_key_status(
        &self,
        user: &str,
        key_id: &str,
        status: KeyStatus,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Deletes a key; `false` if it was already gone.
    fn delete_access_key(
        &self,
        user: &str,
        key_id: &str,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// The user an access key belongs to, or `None` if no such key exists.
    fn key_owner(&self, key_id: &str) -> impl Future<Output = Result<Option<String>>> + Send;

    /// When the key was last used to sign a request, if ever.
    fn key_last_used(
        &self,
        key_id: &str,
    ) -> impl Future<Output = Result<Option<DateTime<Utc>>>> + Send;

    /// The account's credential report, no older than `max_age`.
    fn credential_report(
        &self,
        max_age: chrono::Duration,
    ) -> impl Future<Output = Result<Arc<CredentialReport>>> + Send;
}

/// Secrets Manager: one secret per user holding the current access key.
pub trait SecretsPort: Sync {
    /// Describes the secret, or `None` if it does not exist.
    fn describe(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<SecretDescription>>> + Send;

    /// Removes keyrotor's record tags ([`crate::naming::RECORD_TAGS`]) from a secret it
    /// adopts before its first value: whoever made the secret may have planted them.
    fn clear_records(&self, secret_arn: &str) -> impl Future<Output = Result<()>> + Send;

    /// The names of the secrets tagged `key` = `value` (ListSecrets by tag): who says what
    /// is for the caller to judge.
    fn tagged(&self, key: &str, value: &str) -> impl Future<Output = Result<Vec<String>>> + Send;

    /// Creates the user's secret without a value, tagged with the user's name and unique ID,
    /// encrypted with keyrotor's key; returns its ARN. An existing secret is an
    /// `AlreadyExists` error.
    fn create(
        &self,
        name: &str,
        user: &str,
        user_id: &str,
    ) -> impl Future<Output = Result<String>> + Send;

    /// The secret's resource policy, if it has one.
    fn policy(&self, secret_arn: &str) -> impl Future<Output = Result<Option<String>>> + Send;

    /// Puts keyrotor's resource policy on the secret.
    fn put_policy(
        &self,
        secret_arn: &str,
        policy: &serde_json::Value,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Stores `value` as AWSCURRENT under the version ID derived from `key_id`; repeating it
    /// with the same key and value is a no-op.
    fn put_key(
        &self,
        secret_arn: &str,
        key_id: &str,
        value: &str,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Marks the key a rotation is about to deactivate.
    fn mark_deactivating(
        &self,
        secret_arn: &str,
        key_id: &str,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Records the overlap window of a rotation: its old key, kept Active, and the window's
    /// times.
    fn record_overlap(
        &self,
        secret_arn: &str,
        window: &crate::domain::Overlap,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Records which key a rotation deactivated, and when.
    fn record_deactivation(
        &self,
        secret_arn: &str,
        key_id: &str,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<()>> + Send;
}

/// STS: proves that a new key authenticates as its user.
pub trait VerifierPort: Sync {
    /// `Ok` once the key authenticates as `expected_arn`; retried while IAM propagates it.
    fn verify(
        &self,
        key: &NewAccessKey,
        expected_arn: &str,
    ) -> impl Future<Output = Result<()>> + Send;
}

/// SES: sends one e-mail; returns its message ID.
pub trait MailerPort: Sync {
    fn send(
        &self,
        from: &EmailAddress,
        email: &Email,
    ) -> impl Future<Output = Result<String>> + Send;
}

/// Step Functions: starts a named execution. A name already taken is `AlreadyStarted` only
/// when that execution's input is the one given (compared as JSON), `Conflicting` otherwise.
pub trait ExecutionsPort: Sync {
    fn start(
        &self,
        state_machine_arn: &str,
        name: &str,
        input: String,
    ) -> impl Future<Output = Result<StartOutcome>> + Send;
}

/// AWS Health: what it records about one event, in the account asked. Not finding the
/// event, or not being allowed to ask, is an answer ([`HealthAnswer`]); an error only
/// when asking failed and may be retried.
pub trait HealthPort: Sync {
    fn event(&self, event_arn: &str) -> impl Future<Output = Result<HealthAnswer>> + Send;
}

/// How an execution stands, as DescribeExecution says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecutionStatus {
    Running,
    Succeeded,
    /// Failed, timed out or aborted, with the error it ended with, if any.
    Ended {
        error: Option<String>,
    },
}

/// Step Functions: how an execution stands.
pub trait ExecutionStatusPort: Sync {
    fn status(&self, execution_arn: &str) -> impl Future<Output = Result<ExecutionStatus>> + Send;
}

/// EventBridge: puts events on the account's default bus (source `keyrotor`).
pub trait EventsPort: Sync {
    /// Publishes every event, or fails: an entry EventBridge refused fails the whole call.
    fn publish(&self, events: &[crate::events::Event]) -> impl Future<Output = Result<()>> + Send;
}

/// An account as Organizations describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgAccount {
    pub id: AccountId,
    pub name: String,
    /// `State` (ACTIVE, PENDING_ACTIVATION, SUSPENDED, PENDING_CLOSURE, CLOSED), which
    /// replaces `Status`; older responses (and moto) carry only `Status`.
    pub state: Option<String>,
    pub status: Option<String>,
}

impl OrgAccount {
    /// Whether keyrotor can work in the account: `State` ACTIVE, or without a `State`,
    /// `Status` ACTIVE. Returns the state that rules it out otherwise.
    pub fn activity(&self) -> std::result::Result<(), String> {
        match self.state.as_deref().or(self.status.as_deref()) {
            Some("ACTIVE") => Ok(()),
            Some(other) => Err(other.to_owned()),
            None => Err("UNKNOWN".to_owned()),
        }
    }
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_token: Option<String>,
}

/// AWS Organizations, read-only: what the inventory walks.
pub trait OrganizationPort: Sync {
    /// The management account's ID (DescribeOrganization).
    fn management_account(&self) -> impl Future<Output = Result<AccountId>> + Send;
    /// The organization's roots (ListRoots).
    fn roots(&self) -> impl Future<Output = Result<Vec<OrgNodeId>>> + Send;
    /// One page of the OUs directly under `parent` (ListChildren, OrganizationalUnit).
    fn child_ous(
        &self,
        parent: &OrgNodeId,
        token: Option<&str>,
    ) -> impl Future<Output = Result<Page<OrgNodeId>>> + Send;
    /// One page of the accounts directly under `parent` (ListAccountsForParent).
    fn accounts_under(
        &self,
        parent: &OrgNodeId,
        token: Option<&str>,
    ) -> impl Future<Output = Result<Page<OrgAccount>>> + Send;
    /// One account (DescribeAccount); `NotFound` if it is not in the organization.
    fn account(&self, id: &AccountId) -> impl Future<Output = Result<OrgAccount>> + Send;
    /// The root or OU directly above an account or OU (ListParents); `NotFound` if it is not
    /// in the organization.
    fn parent(&self, child: &str) -> impl Future<Output = Result<OrgNodeId>> + Send;
    /// The account's tags (ListTagsForResource, every page).
    fn account_tags(
        &self,
        id: &AccountId,
    ) -> impl Future<Output = Result<BTreeMap<String, String>>> + Send;
}

/// KMS: the handoff of a new key from `create-key`, which made it, to `deliver-key`, which
/// sends it to the user's destinations. The user's secret cannot serve: its policy lets
/// nobody but the user read it, keyrotor's roles included. The handoff is the secret access
/// key encrypted under keyrotor's delivery key, bound to the user and key ID by the
/// encryption context; only `deliver-key`'s role may decrypt it (the key's policy).
pub trait HandoffPort: Sync {
    /// The sealed secret of `key` (base64 ciphertext).
    fn seal(&self, key: &NewAccessKey) -> impl Future<Output = Result<String>> + Send;
    /// The key again, if `sealed` was sealed for that user and key ID.
    fn open(
        &self,
        user: &str,
        key_id: &str,
        sealed: &str,
    ) -> impl Future<Output = Result<NewAccessKey>> + Send;
}

/// SSM Parameter Store: the SecureString destinations.
pub trait ParametersPort: Sync {
    /// The parameter's description, or `None` if there is no such parameter.
    fn description(&self, name: &str) -> impl Future<Output = Result<Option<String>>> + Send;
    /// Writes `value` as a new version of the SecureString `name` (created if missing).
    fn put_secure(
        &self,
        name: &str,
        value: &str,
        description: &str,
    ) -> impl Future<Output = Result<()>> + Send;
}

/// Secrets Manager: the values of keyrotor's own settings secrets (the GitHub token, the
/// webhook signing key), which an administrator keeps. Never a user's secret.
pub trait SettingsPort: Sync {
    fn read(
        &self,
        secret_arn: &str,
    ) -> impl Future<Output = Result<zeroize::Zeroizing<String>>> + Send;
}
