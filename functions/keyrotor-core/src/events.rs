//! The events keyrotor puts on the account's default EventBridge bus (source
//! [`SOURCE`]) for other automation: a pipeline that reads the new key when `KeyRotated`
//! arrives, a ticket when `RotationBlocked` does. `notify` publishes them when it reports
//! an outcome, before its mails, so that a mail that cannot be sent never holds an event
//! back; an event that cannot be published is reported to the admin like a failed mail and
//! never fails the rotation.
//!
//! A detail holds IDs, names, dates and reasons keyrotor wrote, never a secret value nor
//! text from a tag. EventBridge delivers at least once and a retried step publishes again:
//! consumers key on `execution` and the detail type.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::domain::cutover::{Usage, Why};
use crate::domain::Overlap;

/// The `source` of every keyrotor event.
pub const SOURCE: &str = "keyrotor";

/// The `detail-type` of each event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum DetailType {
    /// A new key is the AWSCURRENT value of the user's secret.
    KeyRotated,
    /// The old key was deactivated; it is deleted after the delay.
    OldKeyDeactivated,
    OldKeyDeleted,
    /// The old key was kept, and why.
    OldKeyKept,
    /// The due action is blocked, and why.
    RotationBlocked,
    /// A per-user execution failed: at which step, with which error type.
    RotationFailed,
    /// A scan failed: at which step, with which error type.
    ScanFailed,
    /// The owner was warned that the key will be rotated.
    Warned,
}

impl DetailType {
    pub const ALL: [DetailType; 8] = [
        DetailType::KeyRotated,
        DetailType::OldKeyDeactivated,
        DetailType::OldKeyDeleted,
        DetailType::OldKeyKept,
        DetailType::RotationBlocked,
        DetailType::RotationFailed,
        DetailType::ScanFailed,
        DetailType::Warned,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DetailType::KeyRotated => "KeyRotated",
            DetailType::OldKeyDeactivated => "OldKeyDeactivated",
            DetailType::OldKeyDeleted => "OldKeyDeleted",
            DetailType::OldKeyKept => "OldKeyKept",
            DetailType::RotationBlocked => "RotationBlocked",
            DetailType::RotationFailed => "RotationFailed",
            DetailType::ScanFailed => "ScanFailed",
            DetailType::Warned => "Warned",
        }
    }
}

/// One event: its detail type and its detail (a JSON object).
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub detail_type: DetailType,
    pub detail: Value,
}

/// What every detail carries besides its own fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Context {
    /// The user, as IAM spells them (`None`: a scan, or a key whose owner was not found).
    pub user: Option<String>,
    /// The execution that did it: with the detail type, the idempotency key.
    pub execution: Option<String>,
    /// Whether the rotation was forced (a leak response, a responder).
    pub forced: bool,
    /// The member account it happened in (absent: keyrotor's own account).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Detail<'a, T: Serialize> {
    #[serde(flatten)]
    context: &'a Context,
    #[serde(flatten)]
    fields: T,
}

fn event(detail_type: DetailType, context: &Context, fields: impl Serialize) -> Event {
    let detail =
        serde_json::to_value(Detail { context, fields }).unwrap_or_else(|_| serde_json::json!({}));
    Event {
        detail_type,
        detail,
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Rotated<'a> {
    new_key_id: &'a str,
    old_key_id: &'a str,
    secret_arn: Option<&'a str>,
    secret_name: &'a str,
    secret_version_id: Option<String>,
    /// Where deliver-key sent the new key, destination by destination (absent: nowhere
    /// was declared).
    #[serde(skip_serializing_if = "Option::is_none")]
    delivery: Option<&'a crate::delivery::DeliveryReport>,
}

/// The new key of a rotation and where it is: the rotation's stored and verified key, the
/// AWSCURRENT value of the user's secret.
pub struct NewKey<'a> {
    pub old_key_id: &'a str,
    pub new_key_id: &'a str,
    pub secret_name: &'a str,
    pub secret_arn: Option<&'a str>,
    pub delivery: Option<&'a crate::delivery::DeliveryReport>,
}

/// `KeyRotated`: a rotation's new key is stored. With an overlap window it is published
/// when the window opens (both keys work); without one, beside `OldKeyDeactivated`.
pub fn key_rotated(context: &Context, key: &NewKey<'_>) -> Event {
    event(
        DetailType::KeyRotated,
        context,
        Rotated {
            new_key_id: key.new_key_id,
            old_key_id: key.old_key_id,
            secret_arn: key.secret_arn,
            secret_name: key.secret_name,
            secret_version_id: crate::naming::version_id_for_key(key.new_key_id),
            delivery: key
                .delivery
                .filter(|d| !d.destinations.is_empty() || d.error.is_some()),
        },
    )
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Deactivated<'a> {
    key_id: &'a str,
    delete_after: Option<DateTime<Utc>>,
    /// `immediate`, `forced`, `idle`, `cap` or `owner` (`null`: a rerun after the fact).
    why: Option<Why>,
    /// The window the old key had, if it had one.
    window: Option<&'a Overlap>,
    old_key_last_used: Option<DateTime<Utc>>,
    new_key_last_used: Option<DateTime<Utc>>,
}

/// What decided a deactivation: why, the window, and the keys' last use at that look.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cutover<'a> {
    pub why: Option<Why>,
    pub window: Option<&'a Overlap>,
    pub usage: Usage,
}

/// `OldKeyDeactivated`: the old key was deactivated (it is deleted after the delay), and
/// what decided when.
pub fn old_key_deactivated(
    context: &Context,
    old_key_id: &str,
    delete_after: Option<DateTime<Utc>>,
    cutover: Cutover<'_>,
) -> Event {
    event(
        DetailType::OldKeyDeactivated,
        context,
        Deactivated {
            key_id: old_key_id,
            delete_after,
            why: cutover.why,
            window: cutover.window,
            old_key_last_used: cutover.usage.old_key_last_used,
            new_key_last_used: cutover.usage.new_key_last_used,
        },
    )
}

pub fn deleted(context: &Context, key_id: &str) -> Event {
    event(
        DetailType::OldKeyDeleted,
        context,
        serde_json::json!({ "keyId": key_id }),
    )
}

pub fn kept(context: &Context, key_id: &str, reason: &str) -> Event {
    event(
        DetailType::OldKeyKept,
        context,
        serde_json::json!({"keyId": key_id, "reason": reason}),
    )
}

pub fn blocked(context: &Context, key_id: Option<&str>, reason: &str) -> Event {
    event(
        DetailType::RotationBlocked,
        context,
        serde_json::json!({"keyId": key_id, "reason": reason}),
    )
}

pub fn warned(
    context: &Context,
    key_id: Option<&str>,
    age_days: Option<i64>,
    rotate_on: Option<NaiveDate>,
    retire: bool,
) -> Event {
    event(
        DetailType::Warned,
        context,
        serde_json::json!({
            "keyId": key_id, "ageDays": age_days, "rotateOn": rotate_on, "retire": retire
        }),
    )
}

/// `RotationFailed` for a per-user execution, `ScanFailed` for a scan (no user and no step
/// of the per-user machine). The error's type only: its message may quote AWS.
pub fn failed(context: &Context, scan: bool, step: Option<&str>, error_type: &str) -> Event {
    let detail_type = if scan {
        DetailType::ScanFailed
    } else {
        DetailType::RotationFailed
    };
    event(
        detail_type,
        context,
        serde_json::json!({"step": step, "errorType": error_type}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context() -> Context {
        Context {
            user: Some("alice".into()),
            execution: Some("arn:aws:states:us-east-1:123456789012:execution:m:e".into()),
            forced: false,
            account: None,
        }
    }

    #[test]
    fn a_rotation_gives_the_new_key_its_secret_and_version_and_the_deactivation_its_why() {
        let key = NewKey {
            old_key_id: "AKIAOLDOLDOLDOLDOLD1",
            new_key_id: "AKIANEWNEWNEWNEWNEW1",
            secret_name: "keyrotor/AIDA1",
            secret_arn: Some(
                "arn:aws:secretsmanager:us-east-1:123456789012:secret:keyrotor/AIDA1-abc123",
            ),
            delivery: None,
        };
        let e = key_rotated(&context(), &key);
        assert_eq!(e.detail_type, DetailType::KeyRotated);
        let d = &e.detail;
        assert_eq!(d["user"], "alice");
        assert_eq!(d["newKeyId"], "AKIANEWNEWNEWNEWNEW1");
        assert_eq!(d["secretName"], "keyrotor/AIDA1");
        assert_eq!(
            d["secretVersionId"].as_str(),
            crate::naming::version_id_for_key("AKIANEWNEWNEWNEWNEW1").as_deref()
        );
        assert_eq!(d["forced"], false);
        let used = "2026-12-01T10:00:00Z".parse().ok();
        let cutover = Cutover {
            why: Some(Why::Idle),
            window: None,
            usage: Usage {
                old_key_last_used: used,
                new_key_last_used: None,
            },
        };
        let e = old_key_deactivated(&context(), "AKIAOLDOLDOLDOLDOLD1", None, cutover);
        assert_eq!(e.detail_type, DetailType::OldKeyDeactivated);
        assert_eq!(e.detail["keyId"], "AKIAOLDOLDOLDOLDOLD1");
        assert_eq!(e.detail["why"], "idle");
        assert_eq!(e.detail["oldKeyLastUsed"], "2026-12-01T10:00:00Z");
        assert!(e.detail["window"].is_null());
    }

    #[test]
    fn a_failure_names_its_step_and_error_type_and_a_scan_failure_is_its_own_type() {
        let e = failed(&context(), false, Some("CreateKey"), "Throttled");
        assert_eq!(e.detail_type, DetailType::RotationFailed);
        assert_eq!(e.detail["step"], "CreateKey");
        assert_eq!(e.detail["errorType"], "Throttled");
        let scan = Context {
            user: None,
            ..context()
        };
        assert_eq!(
            failed(&scan, true, Some("AssessPage"), "Transient").detail_type,
            DetailType::ScanFailed
        );
    }

    #[test]
    fn detail_type_names_are_distinct() {
        let mut names: Vec<&str> = DetailType::ALL.iter().map(|t| t.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), DetailType::ALL.len());
    }
}
