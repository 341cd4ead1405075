//! The rotation domain: what keyrotor knows about a user's keys, and the rules that decide
//! what to do with them. Nothing in here talks to AWS or knows an SDK type; adapters in
//! [`crate::aws`] translate into these types, which keeps the rules pure and testable.

pub mod creation;
pub mod credential_report;
pub mod cutover;
pub mod deletion;
pub mod planner;
pub mod retirement;

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

pub use planner::{plan, plan_key, plan_reported_key, Decision, Plan};

/// Status of an IAM access key, as IAM reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum KeyStatus {
    Active,
    Inactive,
}

/// One access key of a user: metadata only, never the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessKey {
    pub id: String,
    pub status: KeyStatus,
    pub created: DateTime<Utc>,
}

impl AccessKey {
    /// Whole days since the key was created (a key created 23 hours ago is 0 days old).
    pub fn age_days(&self, now: DateTime<Utc>) -> i64 {
        (now - self.created).num_days()
    }

    pub fn is_active(&self) -> bool {
        self.status == KeyStatus::Active
    }

    /// Active and at or past the rotation age: non-compliant unless its user is exempt or it
    /// is in its overlap window (see `Decision::counts_as_non_compliant`, which the
    /// `NonCompliantKeys` metric and `keyrotor report`'s exit code 3 use).
    pub fn is_past_rotation_age(&self, policy: &Policy, now: DateTime<Utc>) -> bool {
        self.is_active() && self.age_days(now) >= i64::from(policy.rotate_after_days)
    }
}

/// What keyrotor's own records (the user's secret in Secrets Manager) say about the user.
///
/// The secret's AWSCURRENT version is written with a version ID derived from the key ID it
/// holds (see [`crate::naming::version_id_for_key`]), so the key that is "ours" can be read
/// from DescribeSecret without ever decrypting the value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecretState {
    /// The access key ID held by the AWSCURRENT version, if the secret has one.
    pub current_key_id: Option<String>,
    /// The key that the last rotation deactivated, and when (from the secret's tags).
    pub deactivated: Option<Deactivation>,
    /// The key a rotation was about to deactivate (tagged before UpdateAccessKey, so that a
    /// failure between the two writes is recognised).
    pub deactivating: Option<String>,
    /// The overlap window a rotation opened for its old key (from the secret's tags).
    pub overlap: Option<Overlap>,
}

impl SecretState {
    /// keyrotor's record of deactivating `key_id`, if that is the key it last deactivated.
    pub fn deactivation_of(&self, key_id: &str) -> Option<&Deactivation> {
        self.deactivated.as_ref().filter(|d| d.key_id == key_id)
    }

    /// The overlap window keyrotor opened for `key_id`, if that is the key it last kept
    /// active beside its replacement.
    pub fn overlap_of(&self, key_id: &str) -> Option<&Overlap> {
        self.overlap.as_ref().filter(|o| o.key_id == key_id)
    }
}

/// The overlap window of a rotation: its new key is stored and verified, and its old key
/// `key_id` stays Active from `since` until the programs using it have moved to the new
/// one, and at the latest until `until` (the cap, plus an extension once).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Overlap {
    pub key_id: String,
    /// When the window opened: after keyrotor's own verification of the new key, so a use
    /// of the new key after this time is a program's, not keyrotor's.
    pub since: DateTime<Utc>,
    /// When the old key is deactivated whatever its use.
    pub until: DateTime<Utc>,
    /// Whether the window was extended (at most once).
    pub extended: bool,
}

/// A key that keyrotor deactivated, waiting for deletion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deactivation {
    pub key_id: String,
    pub at: DateTime<Utc>,
}

/// Everything the planner needs to know about one user, read live from the account.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserState {
    pub user: String,
    pub keys: Vec<AccessKey>,
    pub tags: BTreeMap<String, String>,
    pub in_exempt_group: bool,
    pub secret: SecretState,
    /// Why the user's secret cannot be trusted with a key (someone else's secret under the
    /// name, another KMS key, a resource policy that is not keyrotor's, ...). While this is
    /// set, the secret's records are ignored and no rotation proceeds (invariant 10).
    pub secret_problem: Option<String>,
    /// When keys were last used, for the keys whose plan may depend on it (see
    /// [`retirement::needs_last_use`]); a key not in here is of unknown use, and is never
    /// taken for unused.
    pub last_use: BTreeMap<String, LastUse>,
}

/// When a key last signed a request, as IAM reports it (GetAccessKeyLastUsed, or the
/// credential report's `access_key_N_last_used_date`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum LastUse {
    Never,
    At(DateTime<Utc>),
}

impl LastUse {
    pub fn from_date(date: Option<DateTime<Utc>>) -> Self {
        date.map_or(LastUse::Never, LastUse::At)
    }

    pub fn date(self) -> Option<DateTime<Utc>> {
        match self {
            LastUse::Never => None,
            LastUse::At(t) => Some(t),
        }
    }
}

impl UserState {
    pub fn key(&self, id: &str) -> Option<&AccessKey> {
        self.keys.iter().find(|k| k.id == id)
    }

    pub fn active_keys(&self) -> impl Iterator<Item = &AccessKey> {
        self.keys.iter().filter(|k| k.is_active())
    }

    /// The overlap window keyrotor recorded for the rotation of `old` to `new`: one opened
    /// after `new` was created (an older record is an earlier replacement's, and proves
    /// nothing about this pair).
    pub fn window_of(&self, old: &str, new: &str) -> Option<&Overlap> {
        let created = self.key(new)?.created;
        self.secret.overlap_of(old).filter(|w| w.since >= created)
    }

    /// Whether `key_id` is an active key of the user and the secret's current value: a
    /// replacement that is in place.
    pub fn is_current_and_active(&self, key_id: &str) -> bool {
        self.secret.current_key_id.as_deref() == Some(key_id)
            && self.key(key_id).is_some_and(AccessKey::is_active)
    }
}

/// The rotation policy: the part of the configuration the planner applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Age in days at which an active key is rotated (R).
    pub rotate_after_days: u32,
    /// Ages in days at which the owner is warned (W), each below R, ascending.
    pub warn_days: Vec<u32>,
    /// Seconds between deactivating the old key and deleting it.
    pub deletion_delay_secs: u64,
    /// Seconds the old key stays Active beside its stored new key at the most (the cap of
    /// the overlap window); 0 deactivates it as soon as the new key is stored.
    pub overlap_secs: u64,
    /// How long the old key must have been silent, after the new key was used, before the
    /// window ends early: longer than IAM's delay in reporting a key's last use, and than
    /// the longest interval between two runs of a program on the old key.
    pub cutover_settle_secs: u64,
    /// Seconds between two looks at the keys' last use during the window.
    pub cutover_poll_secs: u64,
    /// Days without use after which a key due for rotation is retired (deactivated and
    /// later deleted, with no replacement) instead of rotated; a key never used counts
    /// too. 0: every due key is rotated.
    pub unused_days: u32,
    /// User tag that exempts a user: `true`, or a date (YYYY-MM-DD) until which it holds.
    pub exempt_tag: String,
    /// How far ahead an exemption date may lie and still be honoured. Users who may tag
    /// themselves could otherwise exempt themselves forever with `9999-12-31`.
    pub max_exemption_days: u32,
}

/// The "now" of the unit tests of the steps' rules (cutover, creation, deletion).
#[cfg(test)]
pub(crate) fn test_now() -> DateTime<Utc> {
    use chrono::TimeZone;
    Utc.with_ymd_and_hms(2026, 12, 3, 12, 0, 0)
        .single()
        .expect("valid date")
}

/// The default policy, for unit tests: rotation at 90 days, warnings at 80, 85 and 89, a
/// week's delay, exemptions at most a year ahead.
#[cfg(test)]
pub(crate) fn test_policy() -> Policy {
    Policy {
        rotate_after_days: 90,
        warn_days: vec![80, 85, 89],
        deletion_delay_secs: 7 * 86_400,
        overlap_secs: 7 * 86_400,
        cutover_settle_secs: 2 * 86_400,
        cutover_poll_secs: 6 * 3_600,
        unused_days: 45,
        exempt_tag: "key-rotation:exempt".into(),
        max_exemption_days: 365,
    }
}

/// How the exemption tag reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exemption {
    /// No tag, or a date that has passed.
    NotExempt,
    /// `true`, or a date that has not passed yet.
    Exempt(String),
    /// A value that is neither `true`/`false` nor a date: treated as a reason to hold back.
    Invalid(String),
    /// A date further ahead than the policy allows: reported and not honoured.
    TooFar(String),
}

/// Reads the exemption tag value. `true`/`false` (any case) or an ISO date; the user is
/// exempt up to and including that date, if it is at most `max_days` ahead. The tag's text
/// is written by whoever may tag the user, so the reasons never quote it.
pub fn exemption(tag_value: Option<&str>, now: DateTime<Utc>, max_days: u32) -> Exemption {
    let Some(raw) = tag_value else {
        return Exemption::NotExempt;
    };
    let value = raw.trim();
    if value.eq_ignore_ascii_case("true") {
        return Exemption::Exempt("exemption tag is true".to_owned());
    }
    if value.eq_ignore_ascii_case("false") || value.is_empty() {
        return Exemption::NotExempt;
    }
    let today = now.date_naive();
    match NaiveDate::parse_from_str(value, "%Y-%m-%d") {
        Ok(until) if (until - today).num_days() > i64::from(max_days) => {
            Exemption::TooFar(format!(
                "the exemption tag's date {until} is more than {max_days} days ahead and is not honoured"
            ))
        }
        Ok(until) if today <= until => Exemption::Exempt(format!("exempt until {until}")),
        Ok(_) => Exemption::NotExempt,
        Err(_) => Exemption::Invalid(
            "the exemption tag's value is neither true, false nor a YYYY-MM-DD date".to_owned(),
        ),
    }
}
