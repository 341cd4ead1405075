//! Names keyrotor derives: secret names, secret version IDs and execution names. They are
//! deterministic, which is what lets a rerun recognise earlier work.

use chrono::NaiveDate;
use sha2::{Digest, Sha256};

use crate::payload::AccountId;

/// Tag on the secret naming the IAM user it belongs to, for people reading it.
pub const TAG_USER: &str = "keyrotor:user";
/// Tag on the secret with the unique ID of the IAM user it belongs to: what binds it.
pub const TAG_USER_ID: &str = "keyrotor:user-id";
/// Tag on the secret naming the key the last rotation deactivated.
pub const TAG_DEACTIVATED_KEY: &str = "keyrotor:deactivated-key";
/// Tag on the secret naming the key a rotation is deactivating (written before the change).
pub const TAG_DEACTIVATING_KEY: &str = "keyrotor:deactivating-key";
/// Tag on the secret with the time (RFC 3339) that key was deactivated.
pub const TAG_DEACTIVATED_AT: &str = "keyrotor:deactivated-at";
/// Tag on the secret naming the old key a rotation keeps Active in its overlap window.
pub const TAG_OVERLAP_KEY: &str = "keyrotor:overlap-key";
/// Tag on the secret with the time (RFC 3339) that window opened.
pub const TAG_OVERLAP_SINCE: &str = "keyrotor:overlap-since";
/// Tag on the secret with the time (RFC 3339) the window ends at the latest.
pub const TAG_OVERLAP_UNTIL: &str = "keyrotor:overlap-until";
/// Tag on the secret: `true` once the window was extended (it is extended only once).
pub const TAG_OVERLAP_EXTENDED: &str = "keyrotor:overlap-extended";
/// Every tag keyrotor records a rotation's or a retirement's progress in: what a secret
/// keyrotor adopts (with no value yet) is cleared of, since anyone could have written them.
pub const RECORD_TAGS: [&str; 7] = [
    TAG_DEACTIVATED_KEY,
    TAG_DEACTIVATING_KEY,
    TAG_DEACTIVATED_AT,
    TAG_OVERLAP_KEY,
    TAG_OVERLAP_SINCE,
    TAG_OVERLAP_UNTIL,
    TAG_OVERLAP_EXTENDED,
];

/// User tag by which the owner ends a window: its value is the new key's ID.
pub const USER_TAG_CUTOVER: &str = "keyrotor:cutover";
/// User tag by which the owner asks for more time, once: the new key's ID, or
/// `<ID>:<days>` (1 to 7).
pub const USER_TAG_EXTEND: &str = "keyrotor:extend";
/// Tag marking resources keyrotor manages.
pub const TAG_MANAGED_BY: &str = "managed-by";
pub const MANAGED_BY_VALUE: &str = "keyrotor";

const VERSION_PREFIX: &str = "keyrotor-v1-";

fn short_hash(value: &str) -> String {
    let digest = Sha256::digest(value.as_bytes());
    digest.iter().take(4).map(|b| format!("{b:02x}")).collect()
}

/// The name of the user's secret: `<prefix><unique user ID>`. The unique ID (`AIDA…`) is
/// what the KMS key policy binds decryption to (`aws:userid`): it survives renames and path
/// changes, is never reused by a new user of the same name, and holds only letters and
/// digits, which every secret name allows.
pub fn secret_name(prefix: &str, user_id: &str) -> String {
    format!("{prefix}{user_id}")
}

/// The secret version ID under which the value holding `key_id` is stored. Secrets Manager
/// treats a repeated PutSecretValue with the same token and value as a no-op, so storing is
/// idempotent, and DescribeSecret tells which key is AWSCURRENT without decrypting anything.
/// Returns `None` for key IDs that cannot form a token (32–64 characters).
pub fn version_id_for_key(key_id: &str) -> Option<String> {
    if key_id.is_empty() || !key_id.chars().all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    let mut token = format!("{VERSION_PREFIX}{key_id}");
    if token.len() > 64 {
        return None;
    }
    while token.len() < 32 {
        token.push('-');
    }
    Some(token)
}

/// The key ID a version ID made by [`version_id_for_key`] holds.
pub fn key_from_version_id(version_id: &str) -> Option<&str> {
    let key = version_id
        .strip_prefix(VERSION_PREFIX)?
        .trim_end_matches('-');
    (!key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric())).then_some(key)
}

/// The ARN of the execution `name` of `state_machine` (an execution's ARN is its machine's
/// with `execution` for `stateMachine`, and its name after it).
pub fn execution_arn(state_machine: &str, name: &str) -> String {
    format!(
        "{}:{name}",
        state_machine.replacen(":stateMachine:", ":execution:", 1)
    )
}

/// Whether an existing execution's input is the one keyrotor would start it with: equal as
/// JSON (Step Functions may hand the text back with other spacing), and nothing else.
pub fn same_input(existing: &str, ours: &str) -> bool {
    match (
        serde_json::from_str::<serde_json::Value>(existing),
        serde_json::from_str::<serde_json::Value>(ours),
    ) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// The name of the per-user execution a scan on `date` starts for `user`:
/// `scheduled-<yyyymmdd>-<safe user>-<hash>` (`dryrun-...` for a dry run, so that a dry run
/// never takes the name of the real one), at most 80 characters of the set Step Functions
/// allows. In a member account the account ID follows the date
/// (`scheduled-<yyyymmdd>-<account>-<safe user>-<hash>`), so that users of the same name in
/// two accounts get two executions. The same scan day, account and user always give the
/// same name, so a rerun of the scan gets `ExecutionAlreadyExists` instead of a second
/// execution.
pub fn execution_name(
    date: NaiveDate,
    account: Option<&AccountId>,
    user: &str,
    dry_run: bool,
) -> String {
    let kind = if dry_run { "dryrun" } else { "scheduled" };
    let account = account.map(|a| format!("{a}-")).unwrap_or_default();
    // 80, less the rest: kind 9, date 8, account 13, hash 8 and three dashes (52 without
    // an account).
    let room = 52 - account.len();
    let safe: String = user
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(room)
        .collect();
    format!(
        "{kind}-{}-{account}{safe}-{}",
        date.format("%Y%m%d"),
        short_hash(user)
    )
}

/// The name of the account scan an organization scan on `date` starts for `account`:
/// `account-<account>-<yyyymmdd>` (`dryrun-account-…` for a dry run). A rerun of the
/// organization scan the same day finds it started.
pub fn account_scan_name(date: NaiveDate, account: &AccountId, dry_run: bool) -> String {
    let kind = if dry_run { "dryrun-account" } else { "account" };
    format!("{kind}-{account}-{}", date.format("%Y%m%d"))
}

/// The tags that record on a secret which key a rotation deactivated, and when (read back
/// by [`secret_state`]). The SDK adapter and the test account both write them this way.
pub fn deactivation_tags(
    key_id: &str,
    at: chrono::DateTime<chrono::Utc>,
) -> [(&'static str, String); 2] {
    [
        (TAG_DEACTIVATED_KEY, key_id.to_owned()),
        (
            TAG_DEACTIVATED_AT,
            at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        ),
    ]
}

/// The tags that record on a secret the overlap window of a rotation (read back by
/// [`secret_state`]). The SDK adapter and the test account both write them this way.
pub fn overlap_tags(window: &crate::domain::Overlap) -> [(&'static str, String); 4] {
    let time =
        |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    [
        (TAG_OVERLAP_KEY, window.key_id.clone()),
        (TAG_OVERLAP_SINCE, time(window.since)),
        (TAG_OVERLAP_UNTIL, time(window.until)),
        (TAG_OVERLAP_EXTENDED, window.extended.to_string()),
    ]
}

/// What keyrotor's records on a secret say: the key its AWSCURRENT version holds (named by
/// the version ID), and the deactivation its tags record. The SDK adapter and the test
/// account both read a secret this way.
pub fn secret_state(
    tags: &std::collections::BTreeMap<String, String>,
    current_version_id: Option<&str>,
) -> crate::domain::SecretState {
    let deactivated = match (
        tags.get(TAG_DEACTIVATED_KEY),
        tags.get(TAG_DEACTIVATED_AT)
            .and_then(|at| chrono::DateTime::parse_from_rfc3339(at).ok()),
    ) {
        (Some(key_id), Some(at)) => Some(crate::domain::Deactivation {
            key_id: key_id.clone(),
            at: at.with_timezone(&chrono::Utc),
        }),
        _ => None,
    };
    let time = |tag: &str| {
        tags.get(tag)
            .and_then(|at| chrono::DateTime::parse_from_rfc3339(at).ok())
            .map(|at| at.with_timezone(&chrono::Utc))
    };
    // A window whose record is incomplete or unreadable counts as none: the step that
    // finds it opens a new one (or, past the resume window, the user is reported).
    let overlap = match (
        tags.get(TAG_OVERLAP_KEY),
        time(TAG_OVERLAP_SINCE),
        time(TAG_OVERLAP_UNTIL),
    ) {
        (Some(key_id), Some(since), Some(until)) if since <= until => {
            Some(crate::domain::Overlap {
                key_id: key_id.clone(),
                since,
                until,
                extended: tags.get(TAG_OVERLAP_EXTENDED).is_some_and(|v| v == "true"),
            })
        }
        _ => None,
    };
    crate::domain::SecretState {
        current_key_id: current_version_id
            .and_then(key_from_version_id)
            .map(str::to_owned),
        deactivated,
        deactivating: tags.get(TAG_DEACTIVATING_KEY).cloned(),
        overlap,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_named_after_the_unique_user_id() {
        assert_eq!(
            secret_name("iam-access-key/", "AIDAEXAMPLE123456789"),
            "iam-access-key/AIDAEXAMPLE123456789"
        );
    }

    #[test]
    fn version_ids_round_trip_and_fit_the_token_length() {
        for key in ["AKIAIOSFODNN7EXAMPLE", "AKIA1234567890AB"] {
            let token = version_id_for_key(key).expect("valid key id");
            assert!((32..=64).contains(&token.len()), "{token}");
            assert_eq!(key_from_version_id(&token), Some(key));
        }
        assert_eq!(
            key_from_version_id("3f2a9c1e-aaaa-bbbb-cccc-000000000000"),
            None
        );
        assert_eq!(version_id_for_key("AKIA/../x"), None);
    }

    #[test]
    fn execution_names_are_deterministic_valid_and_distinct() {
        let day = NaiveDate::from_ymd_opt(2026, 11, 25).expect("date");
        let long = "x".repeat(64);
        let a: AccountId = "111111111111".parse().expect("valid");
        let b: AccountId = "222222222222".parse().expect("valid");
        for user in ["alice", "a+b=c,d.e@f-g_h", long.as_str()] {
            for account in [None, Some(&a)] {
                let name = execution_name(day, account, user, false);
                assert_eq!(name, execution_name(day, account, user, false));
                assert_ne!(name, execution_name(day, account, user, true));
                assert!(name.len() <= 80, "{name}");
                assert!(
                    name.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
                    "{name}"
                );
                assert!(name.starts_with("scheduled-20261125-"));
            }
            // The same user in two accounts: two executions.
            assert_ne!(
                execution_name(day, Some(&a), user, false),
                execution_name(day, Some(&b), user, false)
            );
        }
        assert_eq!(
            execution_name(day, Some(&a), "alice", false),
            format!(
                "scheduled-20261125-111111111111-alice-{}",
                short_hash("alice")
            )
        );
        assert_eq!(
            execution_name(day, None, &long, false).len(),
            80,
            "the own account's names are as before"
        );
        assert_eq!(execution_name(day, Some(&a), &long, false).len(), 80);
        assert_ne!(
            execution_name(day, None, "a.b", false),
            execution_name(day, None, "a_b", false)
        );
        assert_eq!(
            account_scan_name(day, &b, false),
            "account-222222222222-20261125"
        );
        assert_eq!(
            account_scan_name(day, &b, true),
            "dryrun-account-222222222222-20261125"
        );
    }
}
