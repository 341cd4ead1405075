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
}

/// `KeyRotated` and `OldKeyDeactivated`: a rotation's new key is stored and its old key is
/// deactivated (the state machine calls `notify` once for both).
pub fn rotated(
    context: &Context,
    old_key_id: &str,
    new_key_id: &str,
    secret_name: &str,
    secret_arn: Option<&str>,
    delete_after: Option<DateTime<Utc>>,
) -> Vec<Event> {
    vec![
        event(
            DetailType::KeyRotated,
            context,
            Rotated {
                new_key_id,
                old_key_id,
                secret_arn,
                secret_name,
                secret_version_id: crate::naming::version_id_for_key(new_key_id),
            },
        ),
        event(
            DetailType::OldKeyDeactivated,
            context,
            serde_json::json!({"keyId": old_key_id, "deleteAfter": delete_after}),
        ),
    ]
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
) -> Event {
    event(
        DetailType::Warned,
        context,
        serde_json::json!({"keyId": key_id, "ageDays": age_days, "rotateOn": rotate_on}),
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
    fn a_rotation_gives_the_new_key_its_secret_and_version_and_the_deactivation() {
        let events = rotated(
            &context(),
            "AKIAOLDOLDOLDOLDOLD1",
            "AKIANEWNEWNEWNEWNEW1",
            "keyrotor/AIDA1",
            Some("arn:aws:secretsmanager:us-east-1:123456789012:secret:keyrotor/AIDA1-abc123"),
            None,
        );
        let types: Vec<DetailType> = events.iter().map(|e| e.detail_type).collect();
        assert_eq!(
            types,
            [DetailType::KeyRotated, DetailType::OldKeyDeactivated]
        );
        let d = &events[0].detail;
        assert_eq!(d["user"], "alice");
        assert_eq!(d["newKeyId"], "AKIANEWNEWNEWNEWNEW1");
        assert_eq!(d["secretName"], "keyrotor/AIDA1");
        assert_eq!(
            d["secretVersionId"].as_str(),
            crate::naming::version_id_for_key("AKIANEWNEWNEWNEWNEW1").as_deref()
        );
        assert_eq!(d["forced"], false);
        assert_eq!(events[1].detail["keyId"], "AKIAOLDOLDOLDOLDOLD1");
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
