//! The JSON each function reads and writes (camelCase). None of these types can hold a
//! secret value: key IDs, names and ARNs only. Inputs reject unknown fields, so a typo in a
//! hand-written ad hoc input is an `InvalidInput` error rather than a silently ignored flag.

use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::domain::cutover::Why;
use crate::domain::{Overlap, Plan};
use crate::error::{Error, Result};
use crate::events::DetailType;
use crate::exposure::Exposure;

/// Parses a function's event into its input type; any mismatch is `InvalidInput`. Only a
/// JSON object is accepted (serde would otherwise read a struct from an array too).
pub fn parse<T: DeserializeOwned>(event: serde_json::Value) -> Result<T> {
    if !event.is_object() {
        return Err(Error::InvalidInput(
            "the event must be a JSON object".into(),
        ));
    }
    serde_json::from_value(event).map_err(|e| Error::InvalidInput(e.to_string()))
}

/// What every checked string of a payload has besides its own check (`TryFrom<String>`):
/// back to `String` (serialization), `as_str` and `Display`.
macro_rules! checked_string {
    ($($name:ident),+) => {$(
        impl From<$name> for String {
            fn from(value: $name) -> Self {
                value.0
            }
        }

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    )+};
}

checked_string!(UserName, KeyId, Text, Arn, StepName, AccountId, OrgNodeId);

/// An IAM user name: 1–64 characters of letters, digits and `+=,.@_-`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UserName(String);

impl TryFrom<String> for UserName {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        let ok = (1..=64).contains(&value.len())
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c));
        if ok {
            Ok(UserName(value))
        } else {
            Err(format!(
                "{:?} is not an IAM user name (1-64 letters, digits or +=,.@_-)",
                value.chars().take(80).collect::<String>()
            ))
        }
    }
}

/// An AWS account ID: exactly twelve digits.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AccountId(String);

impl TryFrom<String> for AccountId {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        if value.len() == 12 && value.bytes().all(|b| b.is_ascii_digit()) {
            Ok(AccountId(value))
        } else {
            Err(format!(
                "{:?} is not an AWS account ID (twelve digits)",
                value.chars().take(40).collect::<String>()
            ))
        }
    }
}

impl std::str::FromStr for AccountId {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AccountId::try_from(s.to_owned())
    }
}

/// The ID of an organization's root (`r-…`) or organizational unit (`ou-…`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct OrgNodeId(String);

impl TryFrom<String> for OrgNodeId {
    type Error = String;

    /// As Organizations defines them: `r-` and 4–32 lower-case letters or digits, or `ou-`,
    /// 4–32 of them, `-`, and 8–32 more.
    fn try_from(value: String) -> Result<Self, Self::Error> {
        let alnum = |s: &str, min: usize| {
            (min..=32).contains(&s.len())
                && s.bytes()
                    .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
        };
        let valid = if let Some(rest) = value.strip_prefix("r-") {
            alnum(rest, 4)
        } else if let Some(rest) = value.strip_prefix("ou-") {
            rest.split_once('-')
                .is_some_and(|(root, ou)| alnum(root, 4) && alnum(ou, 8))
        } else {
            false
        };
        if valid {
            Ok(OrgNodeId(value))
        } else {
            Err(format!(
                "{:?} is neither a root ID (r-…) nor an OU ID (ou-…)",
                value.chars().take(80).collect::<String>()
            ))
        }
    }
}

impl std::str::FromStr for OrgNodeId {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        OrgNodeId::try_from(s.to_owned())
    }
}

/// An access key ID: 16–128 upper-case letters and digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct KeyId(String);

impl TryFrom<String> for KeyId {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        let ok = (16..=128).contains(&value.len())
            && value
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
        if ok {
            Ok(KeyId(value))
        } else {
            Err(format!(
                "{:?} is not an access key ID",
                value.chars().take(80).collect::<String>()
            ))
        }
    }
}

/// Free text a person or AWS wrote (why a rotation was forced, where a key was found): 1–500
/// characters, none of them control characters, so it reads the same in a mail, a log line
/// and a table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Text(String);

impl Text {
    pub const MAX_CHARS: usize = 500;
}

impl TryFrom<String> for Text {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        let chars = value.chars().count();
        if value.trim().is_empty() || chars > Text::MAX_CHARS {
            return Err(format!(
                "the text must have 1-{} characters, not {chars}",
                Text::MAX_CHARS
            ));
        }
        if value.chars().any(char::is_control) {
            return Err("the text must not contain control characters".into());
        }
        Ok(Text(value))
    }
}

/// Why a rotation was forced, carried from the execution's input to the mails about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Cause {
    /// What the person or rule that forced it said.
    #[serde(default)]
    pub reason: Option<Text>,
    /// The exposure AWS reported, when an exposure event started the rotation, as it may
    /// be quoted ([`Exposure::vetted`]).
    #[serde(default)]
    pub exposure: Option<Exposure>,
    /// Whether AWS confirmed that report (assess-key-age asked AWS Health): only a
    /// confirmed report's time and place are quoted.
    #[serde(default)]
    pub confirmed: bool,
    /// Why the report could not be confirmed, when it was not.
    #[serde(default)]
    pub unconfirmed: Option<Text>,
}

// ---------------------------------------------------------------- list-users

/// The input of a scan execution (`{}` from the schedule, or `{"dryRun": true}`), which
/// the state machine hands to the scan's first `list-users` call for checking.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScanRequest {
    #[serde(default)]
    pub dry_run: bool,
    /// The member account an organization scan gave this scan (`null`: keyrotor's own).
    #[serde(default)]
    pub account: Option<AccountRef>,
}

/// The member account an execution works in, as the organization scan hands it on: every
/// input and output of a step that reads or changes an account carries it (`null`, or
/// absent, for the account keyrotor is deployed in). Only its `id` chooses the account;
/// the name and address are for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccountRef {
    pub id: AccountId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<Text>,
    /// Where the account's admin notices go, from the account's `keyrotor:admin-address` tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_address: Option<Text>,
}

impl AccountRef {
    /// An account as the organization describes it. Names and addresses are for people; one
    /// that is not plain text is dropped.
    pub fn from_member(member: &crate::accounts::Member) -> Self {
        AccountRef {
            id: member.id.clone(),
            name: Text::try_from(member.name.clone()).ok(),
            admin_address: member
                .admin_address
                .clone()
                .and_then(|a| Text::try_from(a).ok()),
        }
    }

    /// An account named by its ID alone.
    pub fn id_only(id: AccountId) -> Self {
        AccountRef {
            id,
            name: None,
            admin_address: None,
        }
    }
}

impl fmt::Display for AccountRef {
    /// `222222222222 (payments-prod)`, or the ID alone.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(name) => write!(f, "{} ({name})", self.id),
            None => write!(f, "{}", self.id),
        }
    }
}

/// `list-users`: one page of users after `marker`, or exactly the named `users`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListUsersInput {
    /// The scan execution's input, on the first page.
    #[serde(default)]
    pub scan: Option<ScanRequest>,
    #[serde(default)]
    pub dry_run: bool,
    #[serde(default)]
    pub marker: Option<String>,
    #[serde(default)]
    pub users: Option<Vec<UserName>>,
    /// Page size, 1–1000 (default 1000).
    #[serde(default)]
    pub page_size: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListUsersOutput {
    pub users: Vec<String>,
    /// Where the next page starts; `null` on the last page.
    pub next_marker: Option<String>,
    /// Whether this scan is a dry run (input or configuration).
    pub dry_run: bool,
    /// When this page was listed. The first page's time names the scan's per-user
    /// executions (the state machine keeps it as the scan's start).
    pub listed_at: DateTime<Utc>,
}

// ---------------------------------------------------------------- assess-key-age

/// `assess-key-age`: one user (the per-user execution's input: `user`, or `accessKeyId`
/// for the user who owns that key) or a batch of users (a page of the scan).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AssessInput {
    #[serde(default)]
    pub user: Option<UserName>,
    /// Rotate exactly this key, whoever owns it (a leak response: requires `force`).
    #[serde(default)]
    pub access_key_id: Option<KeyId>,
    #[serde(default)]
    pub users: Option<Vec<UserName>>,
    /// Rotate regardless of age or exemption (single user only).
    #[serde(default)]
    pub force: bool,
    /// Why the rotation is forced (requires `force`).
    #[serde(default)]
    pub reason: Option<Text>,
    /// The exposure report that forced it (requires `force`).
    #[serde(default)]
    pub exposure: Option<Exposure>,
    #[serde(default)]
    pub dry_run: bool,
}

/// One user's assessment: the plan, and the flags the rest of the execution carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Assessment {
    pub user: String,
    #[serde(flatten)]
    pub plan: Plan,
    pub force: bool,
    pub dry_run: bool,
    pub assessed_at: DateTime<Utc>,
    /// Why the rotation was forced; always present (`null` when it was not), because the
    /// state machine hands it to each mail by path and a missing path fails the execution.
    pub cause: Option<Cause>,
}

/// Counts of decisions over a batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DecisionCounts {
    pub none: u32,
    pub exempt: u32,
    pub warn: u32,
    pub rotate: u32,
    pub blocked: u32,
    /// Rotations whose old key is past its deletion time but still there.
    pub finish: u32,
    /// Rotations in their overlap window: both keys work, the old one until it is idle or
    /// the window ends.
    pub cutover: u32,
    /// Unused keys due for retirement (deactivated without a replacement), or retired and
    /// past their deletion time.
    #[serde(default)]
    pub retire: u32,
}

/// A user that needs a per-user execution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionableUser {
    pub user: String,
    pub action: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssessBatchOutput {
    pub seen: u32,
    pub counts: DecisionCounts,
    /// Active keys past the rotation age whose user is not exempt.
    pub non_compliant: u32,
    /// The age of the page's oldest active key, exempt users' included (`null`: none).
    pub oldest_key_age_days: Option<i64>,
    /// Only the users needing action leave the page, which keeps the state small.
    pub actionable: Vec<ActionableUser>,
}

// ---------------------------------------------------------------- create-key

/// `create-key`: replace `old_key_id` of `user`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateKeyInput {
    pub user: UserName,
    pub old_key_id: KeyId,
    #[serde(default)]
    pub force: bool,
    /// The key is retired, not rotated: no new key is made, only the user's secret (the
    /// record of its deactivation) is made ready.
    #[serde(default)]
    pub retire: bool,
    #[serde(default)]
    pub dry_run: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateKeyOutput {
    pub user: String,
    pub old_key_id: String,
    /// The new key (absent in a dry run).
    pub new_key_id: Option<String>,
    pub secret_name: String,
    pub secret_arn: Option<String>,
    /// An Inactive leftover key deleted to make room.
    pub deleted_leftover_key_id: Option<String>,
    /// The key had already been created and stored by an earlier attempt.
    pub resumed: bool,
    /// The old key is retired: no new key was made (`newKeyId` is `null`).
    pub retired: bool,
    /// The new key sealed for `deliver-key` (only if its user has destinations).
    pub handoff: Option<crate::delivery::Handoff>,
    pub dry_run: bool,
}

// ---------------------------------------------------------------- deactivate-key / delete-key

/// `deactivate-key` and `delete-key`: the pair of keys of one rotation.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeyPairInput {
    pub user: UserName,
    pub old_key_id: KeyId,
    /// The replacement; required unless `dry_run` (a dry run never created one).
    #[serde(default)]
    pub new_key_id: Option<KeyId>,
    /// The rotation was forced: it goes on for an exempt user, or over an owner's rollback.
    #[serde(default)]
    pub force: bool,
    /// The old key is retired (unused): there is no replacement, and `newKeyId` is absent
    /// or `null`.
    #[serde(default)]
    pub retire: bool,
    /// The old key was reported leaked and cannot be replaced now: it is deactivated with
    /// no replacement (forced, without `newKeyId`).
    #[serde(default)]
    pub contain: bool,
    #[serde(default)]
    pub dry_run: bool,
}

impl KeyPairInput {
    /// Parses the event of `deactivate-key` or `delete-key`: a pair whose two keys are one
    /// is `InvalidInput` (the step would act on the key it is meant to keep).
    pub fn parse(event: serde_json::Value) -> Result<Self> {
        let input: KeyPairInput = parse(event)?;
        if input.new_key_id.as_ref() == Some(&input.old_key_id) {
            return Err(Error::InvalidInput(
                "newKeyId and oldKeyId are the same key".into(),
            ));
        }
        if input.retire && (input.new_key_id.is_some() || input.force) {
            return Err(Error::InvalidInput(
                "a retired key has no replacement and is never forced: retire goes without \
                 newKeyId and force"
                    .into(),
            ));
        }
        if input.contain && (input.new_key_id.is_some() || !input.force || input.retire) {
            return Err(Error::InvalidInput(
                "a contained key is a forced leak response with no replacement: contain goes \
                 with force, without newKeyId and retire"
                    .into(),
            ));
        }
        Ok(input)
    }

    /// The replacement this step works with: `None` for a retirement, or in a dry run
    /// (which never made one); otherwise it is required.
    pub fn replacement(&self, dry_run: bool) -> Result<Option<&str>> {
        match (&self.new_key_id, self.retire || self.contain || dry_run) {
            (Some(new), _) => Ok(Some(new.as_str())),
            (None, true) => Ok(None),
            (None, false) => Err(Error::InvalidInput("newKeyId is required".into())),
        }
    }
}

/// What `deactivate-key` did with the old key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum DeactivateOutcome {
    /// Deactivated now (`why` says why).
    Deactivated,
    /// It was Inactive already: a retry after success.
    AlreadyInactive,
    /// Kept Active in the overlap window: look again at `nextCheckAt`.
    Waiting,
    /// Dry run: nothing was changed.
    WouldDeactivate,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeactivateKeyOutput {
    pub user: String,
    pub old_key_id: String,
    pub outcome: DeactivateOutcome,
    /// The user's secret, which holds the new key (`null` when there is none yet: a dry
    /// run). The rotated mail's event names it.
    pub secret_arn: Option<String>,
    /// When the old key was deactivated (absent in a dry run and while waiting).
    pub deactivated_at: Option<DateTime<Utc>>,
    /// When it may be deleted.
    pub delete_after: Option<DateTime<Utc>>,
    pub already_inactive: bool,
    /// Why it was deactivated when it was (`null` while waiting, in a dry run, and on a
    /// retry after success).
    pub why: Option<Why>,
    /// The overlap window, when one was opened: since when the two keys are both valid,
    /// until when at the latest, and whether it was extended.
    pub window: Option<Overlap>,
    /// When the state machine looks again (`waiting` only).
    pub next_check_at: Option<DateTime<Utc>>,
    /// The keys' last use as IAM reported it at this look (`null`: never, or not read).
    pub old_key_last_used: Option<DateTime<Utc>>,
    pub new_key_last_used: Option<DateTime<Utc>>,
    /// What decided, in words (the evidence for an early cutover, or what is awaited).
    pub note: String,
    pub dry_run: bool,
}

/// What `delete-key` did with the old key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum DeleteOutcome {
    Deleted,
    AlreadyDeleted,
    /// Dry run: it would have been deleted.
    WouldDelete,
    /// Kept: someone reactivated it (a rollback).
    KeptReactivated,
    /// Kept: it signed a request after it was deactivated.
    KeptUsedAfterDeactivation,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteKeyOutput {
    pub user: String,
    pub old_key_id: String,
    pub outcome: DeleteOutcome,
    pub reason: String,
    pub dry_run: bool,
}

// ---------------------------------------------------------------- notify

/// Which message `notify` sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum NotificationKind {
    /// To the owner: the key will be rotated on a date.
    Warning,
    /// To the owner: a new key is in the secret and the old one still works until the
    /// overlap window ends: switch every program to the new key by then.
    NewKey,
    /// To the owner: the old key is deactivated (the new key is in the secret).
    Rotated,
    /// To the owner: an unused key was deactivated with no replacement (retired).
    Retired,
    /// To the owner: the old key was deleted.
    Deleted,
    /// To the owner and admin: the old key was kept (rollback or use after deactivation).
    Kept,
    /// To the owner and admin: action is due but blocked.
    Blocked,
    /// To the owner and admin: a leaked key was deactivated without a replacement.
    Contained,
    /// To the admin: an execution failed.
    Failure,
    /// To the admin: a message to the owner could not be sent; the rotation went on.
    Undelivered,
}

impl NotificationKind {
    /// Messages only the admin gets, which must go out even when the user is gone.
    pub fn is_for_admin_only(self) -> bool {
        matches!(
            self,
            NotificationKind::Failure | NotificationKind::Undelivered
        )
    }
}

/// The error a Catch recorded (Step Functions' `{"Error", "Cause"}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaughtError {
    #[serde(rename = "Error")]
    pub error: String,
    #[serde(rename = "Cause", default)]
    pub cause: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NotifyInput {
    pub kind: NotificationKind,
    /// The user the message is about; only a failure of a whole scan has none.
    #[serde(default)]
    pub user: Option<UserName>,
    #[serde(default)]
    pub key_id: Option<KeyId>,
    #[serde(default)]
    pub new_key_id: Option<KeyId>,
    #[serde(default)]
    pub age_days: Option<i64>,
    #[serde(default)]
    pub rotate_on: Option<NaiveDate>,
    #[serde(default)]
    pub delete_after: Option<DateTime<Utc>>,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub error: Option<CaughtError>,
    #[serde(default)]
    pub execution: Option<String>,
    /// Why the rotation was forced: said in the mail, and the admin gets a copy.
    #[serde(default)]
    pub cause: Option<Cause>,
    /// The user's secret that holds the new key (`rotated`): named in the `KeyRotated` event.
    #[serde(default)]
    pub secret_arn: Option<Arn>,
    /// The state that failed (`failure`): named in the mail and the failure event.
    #[serde(default)]
    pub step: Option<StepName>,
    /// The failure is a scan's, not a per-user execution's.
    #[serde(default)]
    pub scan: bool,
    /// When the execution started: a rotation's outcome is measured from it.
    #[serde(default)]
    pub started_at: Option<DateTime<Utc>>,
    /// The rotation's overlap window (`newKey`, `rotated`; `null`: none was opened).
    #[serde(default)]
    pub window: Option<Overlap>,
    /// Why the old key was deactivated when it was (`rotated`).
    #[serde(default)]
    pub why: Option<Why>,
    /// The keys' last use at the look that decided (`rotated`, `retired`).
    #[serde(default)]
    pub old_key_last_used: Option<DateTime<Utc>>,
    #[serde(default)]
    pub new_key_last_used: Option<DateTime<Utc>>,
    /// The key was retired, not rotated (`deleted`, `kept`): it had no replacement.
    #[serde(default)]
    pub retired: bool,
    /// The member account the execution works in (`null`: keyrotor's own).
    #[serde(default)]
    pub account: Option<AccountRef>,
    /// What deliver-key did with the new key (`newKey`, `rotated`): listed in the mail, and
    /// a failed destination gets the admin a copy.
    #[serde(default)]
    pub delivery: Option<crate::delivery::DeliveryReport>,
    #[serde(default)]
    pub dry_run: bool,
}

/// An ARN as a state machine passes it on: `arn:` and up to 2,048 printable characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Arn(String);

impl TryFrom<String> for Arn {
    type Error = String;
    fn try_from(value: String) -> std::result::Result<Self, String> {
        let printable = value.chars().all(|c| c.is_ascii_graphic());
        if value.starts_with("arn:") && value.len() <= 2048 && printable {
            Ok(Arn(value))
        } else {
            Err("not an ARN".into())
        }
    }
}

/// The name of a state of keyrotor's state machines: 1–80 ASCII letters and digits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct StepName(String);

impl TryFrom<String> for StepName {
    type Error = String;
    fn try_from(value: String) -> std::result::Result<Self, String> {
        if (1..=80).contains(&value.len()) && value.chars().all(|c| c.is_ascii_alphanumeric()) {
            Ok(StepName(value))
        } else {
            Err("a step is a state's name: 1-80 letters and digits".into())
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotifyOutput {
    pub kind: NotificationKind,
    pub sent: bool,
    pub recipients: Vec<String>,
    /// One message per recipient: owner and admin never share one.
    pub message_ids: Vec<String>,
    /// Why nothing was sent, when nothing was.
    pub skipped: Option<String>,
    /// The events put on the default bus (none in a dry run).
    pub events: Vec<DetailType>,
    /// Why the events could not be published, if they could not (the admin was told).
    pub events_error: Option<String>,
    pub dry_run: bool,
}

// ---------------------------------------------------------------- start-rotations

/// `start-rotations`: start one per-user execution for each actionable user of a scan.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StartRotationsInput {
    pub users: Vec<ActionableUser>,
    /// The member account the users are in (`null`: keyrotor's own).
    #[serde(default)]
    pub account: Option<AccountRef>,
    /// The scan's start time: names the executions, so a rerun the same day starts nothing new.
    pub scan_started_at: DateTime<Utc>,
    #[serde(default)]
    pub dry_run: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StartRotationsOutput {
    pub started: u32,
    pub already_started: u32,
    /// Users whose execution name for today was taken by an execution with another input
    /// (not keyrotor's): not acted on; the scan fails at its end.
    pub conflicting: u32,
    pub conflicting_users: Vec<String>,
    pub dry_run: bool,
}

// ---------------------------------------------------------------- respond-to-exposure

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RespondToExposureOutput {
    pub access_key_id: String,
    /// The forced rotation's execution: named after the key and the report's time.
    pub execution_name: String,
    /// `false`: an execution of that name already exists (the same report, delivered again).
    pub started: bool,
}

// ---------------------------------------------------------------- list-accounts

/// `list-accounts`: the organization scan's execution input, checked.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListAccountsInput {
    #[serde(default)]
    pub scan: ScanRequest,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListAccountsOutput {
    /// The accounts to scan, in ID order.
    pub accounts: Vec<AccountRef>,
    /// The accounts left out, and why.
    pub skipped: Vec<crate::accounts::Skipped>,
    /// Excluded OUs the walk did not enter.
    pub pruned_ous: Vec<OrgNodeId>,
    pub dry_run: bool,
    /// When the organization scan started: names its account scans.
    pub listed_at: DateTime<Utc>,
}

// ---------------------------------------------------------------- scan-accounts

/// `scan-accounts`: one round of an organization scan. Follows the account scans running,
/// then starts more, up to `concurrency` at a time, in the accounts' order.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScanAccountsInput {
    pub accounts: Vec<AccountRef>,
    /// The last round's progress (`null` on the first round).
    #[serde(default)]
    pub progress: Option<Progress>,
    /// The organization scan's start: names the account scans.
    pub started_at: DateTime<Utc>,
    #[serde(default)]
    pub dry_run: bool,
}

/// How far an organization scan has come.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Progress {
    /// The index in `accounts` of the next account to start.
    pub next: usize,
    /// The account scans started and not yet seen to end.
    pub running: Vec<RunningScan>,
    pub succeeded: u32,
    /// Account scans that failed for another reason than an unreachable account.
    pub failed: Vec<AccountId>,
    /// Accounts whose member role keyrotor could not assume.
    pub unreachable: Vec<AccountId>,
    /// Accounts whose scan name of today was taken by an execution with another input
    /// (not keyrotor's): not scanned; the organization scan fails at its end.
    #[serde(default)]
    pub conflicting: Vec<AccountId>,
    /// Every account scan has ended.
    pub done: bool,
    /// Rounds so far: each adds to the organization scan's history.
    #[serde(default)]
    pub rounds: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RunningScan {
    pub account: AccountId,
    pub execution: Arn,
}
