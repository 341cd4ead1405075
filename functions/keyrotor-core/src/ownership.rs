//! Whether a user's secret is keyrotor's own and protected (invariant 10).
//!
//! Anyone with ordinary Secrets Manager rights (the managed policy `SecretsManagerReadWrite`)
//! can create `<prefix><user id>` before keyrotor does, with a KMS key or a resource policy
//! of their choosing, and read the next key keyrotor stores there. keyrotor therefore writes
//! a key only into a secret that is, as DescribeSecret and GetResourcePolicy show it:
//!
//! - bound to the user's unique ID (tag [`naming::TAG_USER_ID`]), not scheduled for deletion;
//! - encrypted with keyrotor's KMS key, whose policy lets no one but keyrotor's `create-key`
//!   role encrypt, and only the user with that unique ID decrypt (so nobody else can have
//!   put a value in it);
//! - neither replicated to another region nor set up for rotation by a Lambda function
//!   (either would hand the value to someone else's key or code);
//! - under exactly the resource policy of [`resource_policy`], which lets only the user read
//!   it, denies every change to every principal but keyrotor's own roles, and denies changes
//!   to the policy itself to every principal, keyrotor's roles included.
//!
//! A secret that meets all but the last and holds no value yet is [`Trust::Empty`]: keyrotor
//! created it and stopped before its policy was written, or someone created an empty copy
//! with keyrotor's key and tags, which holds nothing and cannot be changed by them once
//! keyrotor's policy is on it. `create-key` writes the policy, checks the secret again and
//! only then stores the key.

use serde_json::{json, Value};

use crate::naming;
use crate::ports::SecretDescription;

/// Changes to the secret's resource policy: denied to every principal, keyrotor's own roles
/// included, once keyrotor's policy is on the secret. Whoever may rewrite the policy may
/// grant themselves GetSecretValue, and `create-key` holds `kms:Decrypt` through Secrets
/// Manager (Secrets Manager asks the writer of a value for it): so no role of keyrotor may
/// rewrite a policy it wrote (issue 26, H1). A secret whose policy must change is deleted
/// by a trusted role (the break-glass role) and made again.
pub const POLICY_ACTIONS: [&str; 2] = [
    "secretsmanager:PutResourcePolicy",
    "secretsmanager:DeleteResourcePolicy",
];

/// Every other change to a secret, denied to all but keyrotor's roles.
pub const GUARDED_ACTIONS: [&str; 12] = [
    "secretsmanager:DeleteSecret",
    "secretsmanager:RestoreSecret",
    "secretsmanager:UpdateSecret",
    "secretsmanager:PutSecretValue",
    "secretsmanager:UpdateSecretVersionStage",
    "secretsmanager:TagResource",
    "secretsmanager:UntagResource",
    "secretsmanager:RotateSecret",
    "secretsmanager:CancelRotateSecret",
    "secretsmanager:ReplicateSecretToRegions",
    "secretsmanager:RemoveRegionsFromReplication",
    "secretsmanager:StopReplicationToReplica",
];

/// What keyrotor expects of one user's secret.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    /// The IAM user's unique ID (`AIDA…`): survives renames and path changes, and is never
    /// reused by a new user of the same name.
    pub user_id: &'a str,
    pub user_arn: &'a str,
    /// keyrotor's KMS key (`None`: the AWS managed key, local runs only).
    pub kms_key_id: Option<&'a str>,
    pub trusted_role_arns: &'a [String],
}

/// The resource policy of a user's secret: only the user with that unique ID reads it; only
/// keyrotor's roles change it (its value, tags, replication, rotation), delete or restore
/// it; and nobody, keyrotor's roles included, changes the policy itself.
pub fn resource_policy(secret_arn: &str, expected: &Expected<'_>) -> Value {
    let mut policy = legacy_resource_policy(secret_arn, expected, &GUARDED_ACTIONS);
    if let Some(statements) = policy["Statement"].as_array_mut() {
        statements.push(json!({
            "Sid": "NobodyChangesThePolicy",
            "Effect": "Deny",
            "Principal": "*",
            "Action": POLICY_ACTIONS,
            "Resource": secret_arn
        }));
    }
    policy
}

/// keyrotor's policy before the policy was locked (until issue 26): the same statements,
/// its roles exempt from the Deny on policy changes too. A secret under it is keyrotor's
/// ([`Trust::Outdated`]); `create-key` puts the locked policy on it at its next write.
pub fn previous_resource_policy(secret_arn: &str, expected: &Expected<'_>) -> Value {
    let guarded: Vec<&str> = POLICY_ACTIONS
        .iter()
        .chain(&GUARDED_ACTIONS)
        .copied()
        .collect();
    legacy_resource_policy(secret_arn, expected, &guarded)
}

/// The three statements both versions share, with `guarded` denied to all but keyrotor's
/// roles.
fn legacy_resource_policy(secret_arn: &str, expected: &Expected<'_>, guarded: &[&str]) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "OwnerReadsOwnKey",
                "Effect": "Allow",
                "Principal": { "AWS": expected.user_arn },
                "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
                "Resource": secret_arn,
                "Condition": { "StringEquals": { "aws:userid": expected.user_id } }
            },
            {
                "Sid": "NobodyElseReadsTheKey",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "secretsmanager:GetSecretValue",
                "Resource": secret_arn,
                "Condition": { "StringNotEquals": { "aws:userid": expected.user_id } }
            },
            {
                "Sid": "OnlyKeyrotorChangesTheSecret",
                "Effect": "Deny",
                "Principal": "*",
                "Action": guarded,
                "Resource": secret_arn,
                "Condition": { "ArnNotEquals": { "aws:PrincipalArn": expected.trusted_role_arns } }
            }
        ]
    })
}

/// The user ARN keyrotor's policy lets read the secret (its `OwnerReadsOwnKey` statement),
/// if `policy` has such a statement: who the secret was made for, to judge it by.
pub fn owner_arn(policy: &str) -> Option<String> {
    let policy: Value = serde_json::from_str(policy).ok()?;
    policy["Statement"]
        .as_array()?
        .iter()
        .find(|s| s["Sid"] == "OwnerReadsOwnKey")?["Principal"]["AWS"]
        .as_str()
        .map(str::to_owned)
}

/// What keyrotor may do with an existing secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// keyrotor's own and protected: its records count and a key may be written.
    Protected,
    /// keyrotor's key and tags, no value, not (yet) keyrotor's policy: `create-key` may put
    /// its policy on it, and must check again before writing a key.
    Empty,
    /// keyrotor's own under its previous policy, which let keyrotor's roles rewrite the
    /// policy: its records count, and `create-key` puts the locked policy on it (and checks
    /// again) before it writes a key.
    Outdated,
    /// Not provably keyrotor's: never written, its records ignored, the user blocked.
    Untrusted(String),
}

/// Judges `secret` (with its resource policy, if any) against what keyrotor expects. The
/// reasons name only keyrotor's own names and the secret's, never text from the secret.
pub fn judge(secret: &SecretDescription, policy: Option<&str>, expected: &Expected<'_>) -> Trust {
    let name = &secret.name;
    let problem = if secret.scheduled_for_deletion {
        Some("is scheduled for deletion; restore it or let it go".to_owned())
    } else if secret.tags.get(naming::TAG_USER_ID).map(String::as_str) != Some(expected.user_id) {
        Some(format!(
            "is not tagged {}={}",
            naming::TAG_USER_ID,
            expected.user_id
        ))
    } else if !same_kms_key(secret.kms_key_id.as_deref(), expected.kms_key_id) {
        Some("is not encrypted with keyrotor's KMS key".to_owned())
    } else if secret.replicated {
        Some("is replicated to another region".to_owned())
    } else if secret.rotation_enabled {
        Some("has rotation by a Lambda function configured".to_owned())
    } else {
        None
    };
    if let Some(problem) = problem {
        return Trust::Untrusted(format!("the secret {name} {problem}"));
    }
    let policy = policy
        .and_then(|p| serde_json::from_str::<Value>(p).ok())
        .map(|p| canonical(&p));
    let is = |expected_policy: Value| policy.as_ref() == Some(&canonical(&expected_policy));
    if is(resource_policy(&secret.arn, expected)) {
        return Trust::Protected;
    }
    if is(previous_resource_policy(&secret.arn, expected)) {
        return Trust::Outdated;
    }
    match secret.version_count {
        0 => Trust::Empty,
        _ => Trust::Untrusted(format!(
            "the secret {name} holds a value under a resource policy that is not keyrotor's"
        )),
    }
}

/// Whether the secret's KMS key is keyrotor's. DescribeSecret gives the key as it was
/// named at creation: keyrotor names it the same way every time, so anything else, an
/// alias of the same key included, is refused (the safe side).
fn same_kms_key(actual: Option<&str>, expected: Option<&str>) -> bool {
    match (actual, expected) {
        (None, None) => true,
        (Some(a), None) => a == "alias/aws/secretsmanager",
        (Some(a), Some(e)) => a == e,
        (None, Some(_)) => false,
    }
}

/// A policy in a form where equal meaning compares equal: one-element lists and single
/// strings alike, lists sorted, statements in any order, keys in any order. Objects are
/// rebuilt with their keys sorted, so that the text lists and statements are sorted by
/// does not depend on the order a policy's keys came in: serde_json keeps insertion order
/// here (its `preserve_order` feature is on through the AWS SDK), and a policy read back
/// may list its keys in another order than keyrotor wrote them (moto's does, sorted).
fn canonical(policy: &Value) -> Value {
    fn norm(value: &Value) -> Value {
        match value {
            Value::String(_) => Value::Array(vec![value.clone()]),
            Value::Array(items) => {
                let mut items: Vec<Value> = items.iter().map(norm).flat_map(flatten).collect();
                items.sort_by_key(Value::to_string);
                items.dedup();
                Value::Array(items)
            }
            Value::Object(map) => {
                let mut entries: Vec<(String, Value)> = map
                    .iter()
                    .map(|(k, v)| {
                        let v = if k == "Principal" && v.is_string() {
                            v.clone()
                        } else {
                            norm(v)
                        };
                        (k.clone(), v)
                    })
                    .collect();
                entries.sort_by(|a, b| a.0.cmp(&b.0));
                Value::Object(entries.into_iter().collect())
            }
            other => other.clone(),
        }
    }
    fn flatten(value: Value) -> Vec<Value> {
        match value {
            Value::Array(items) if items.len() == 1 && items[0].is_string() => items,
            other => vec![other],
        }
    }
    let mut statements: Vec<Value> = match policy.get("Statement") {
        Some(Value::Array(items)) => items.iter().map(norm).collect(),
        Some(one) => vec![norm(one)],
        None => Vec::new(),
    };
    statements.sort_by_key(Value::to_string);
    json!({ "Version": policy.get("Version"), "Statement": statements })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::domain::SecretState;

    const ARN: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:k/AIDAOWNER-AbCdEf";
    const KMS: &str = "arn:aws:kms:us-east-1:123456789012:key/1111";

    fn roles() -> Vec<String> {
        vec!["arn:aws:iam::123456789012:role/keyrotor-create-key".to_owned()]
    }

    fn expected(roles: &[String]) -> Expected<'_> {
        Expected {
            user_id: "AIDAOWNER",
            user_arn: "arn:aws:iam::123456789012:user/alice",
            kms_key_id: Some(KMS),
            trusted_role_arns: roles,
        }
    }

    fn secret(tags: &[(&str, &str)], kms: Option<&str>, versions: usize) -> SecretDescription {
        SecretDescription {
            arn: ARN.into(),
            name: "k/AIDAOWNER".into(),
            tags: tags
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<BTreeMap<_, _>>(),
            state: SecretState::default(),
            kms_key_id: kms.map(str::to_owned),
            replicated: false,
            rotation_enabled: false,
            scheduled_for_deletion: false,
            version_count: versions,
        }
    }

    fn ours() -> String {
        resource_policy(ARN, &expected(&roles())).to_string()
    }

    #[test]
    fn keyrotors_secret_under_its_policy_is_protected() {
        let r = roles();
        let s = secret(&[(naming::TAG_USER_ID, "AIDAOWNER")], Some(KMS), 1);
        assert_eq!(judge(&s, Some(&ours()), &expected(&r)), Trust::Protected);
    }

    #[test]
    fn the_same_policy_written_differently_is_still_keyrotors() {
        let r = roles();
        let mut p: Value = serde_json::from_str(&ours()).expect("json");
        let statements = p["Statement"].as_array_mut().expect("list");
        statements.reverse();
        // A single action as a one-element list.
        let single = statements
            .iter_mut()
            .find(|s| s["Sid"] == "NobodyElseReadsTheKey")
            .expect("the statement");
        single["Action"] = json!(["secretsmanager:GetSecretValue"]);
        let s = secret(&[(naming::TAG_USER_ID, "AIDAOWNER")], Some(KMS), 1);
        assert_eq!(
            judge(&s, Some(&p.to_string()), &expected(&r)),
            Trust::Protected
        );
    }

    #[test]
    fn squatted_secrets_are_never_trusted() {
        let r = roles();
        let e = expected(&r);
        let tag = [(naming::TAG_USER_ID, "AIDAOWNER")];
        let untrusted =
            |s: &SecretDescription, p: Option<&str>| matches!(judge(s, p, &e), Trust::Untrusted(_));
        // Untagged, or tagged for someone else.
        assert!(untrusted(&secret(&[], Some(KMS), 0), None));
        assert!(untrusted(
            &secret(&[(naming::TAG_USER_ID, "AIDAOTHER")], Some(KMS), 1),
            Some(&ours())
        ));
        // The AWS managed key, or a key the squatter controls.
        assert!(untrusted(&secret(&tag, None, 0), None));
        assert!(untrusted(
            &secret(&tag, Some("arn:aws:kms:us-east-1:999999999999:key/evil"), 1),
            Some(&ours())
        ));
        // A value under somebody else's policy, or under none.
        let theirs = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"secretsmanager:*","Resource":"*"}]}"#;
        assert!(untrusted(&secret(&tag, Some(KMS), 1), Some(theirs)));
        assert!(untrusted(&secret(&tag, Some(KMS), 1), None));
        // Replicated, rotated by someone's Lambda, or scheduled for deletion.
        for change in [
            |s: &mut SecretDescription| s.replicated = true,
            |s: &mut SecretDescription| s.rotation_enabled = true,
            |s: &mut SecretDescription| s.scheduled_for_deletion = true,
        ] {
            let mut s = secret(&tag, Some(KMS), 1);
            change(&mut s);
            assert!(untrusted(&s, Some(&ours())));
        }
        // keyrotor's policy naming other roles as trusted is not keyrotor's policy.
        let other_roles = vec!["arn:aws:iam::123456789012:role/mallory".to_owned()];
        let theirs = resource_policy(ARN, &expected(&other_roles)).to_string();
        assert!(untrusted(&secret(&tag, Some(KMS), 1), Some(&theirs)));
    }

    #[test]
    fn an_empty_secret_with_keyrotors_key_and_tag_may_be_adopted() {
        let r = roles();
        let s = secret(&[(naming::TAG_USER_ID, "AIDAOWNER")], Some(KMS), 0);
        assert_eq!(judge(&s, None, &expected(&r)), Trust::Empty);
    }

    #[test]
    fn the_policy_lets_only_the_owner_read_only_keyrotor_change_and_nobody_rewrite_it() {
        let r = roles();
        let p = resource_policy(ARN, &expected(&r));
        let statements = p["Statement"].as_array().expect("list");
        assert_eq!(statements.len(), 4);
        let guard = &statements[2];
        assert_eq!(guard["Effect"], "Deny");
        assert_eq!(guard["Principal"], "*");
        let actions = |s: &Value| s["Action"].as_array().expect("list").clone();
        for action in [
            "DeleteSecret",
            "UpdateSecret",
            "PutSecretValue",
            "TagResource",
            "UntagResource",
        ] {
            let action = json!(format!("secretsmanager:{action}"));
            assert!(actions(guard).contains(&action), "{action}");
        }
        assert_eq!(
            guard["Condition"]["ArnNotEquals"]["aws:PrincipalArn"],
            json!(r)
        );
        let lock = &statements[3];
        assert_eq!(lock["Effect"], "Deny");
        assert_eq!(lock["Principal"], "*");
        assert!(lock.get("Condition").is_none(), "no exemption: {lock}");
        for action in POLICY_ACTIONS {
            assert!(actions(lock).contains(&json!(action)), "{action}");
            assert!(!actions(guard).contains(&json!(action)), "{action}");
        }
    }

    #[test]
    fn a_secret_under_keyrotors_previous_policy_is_outdated_and_its_records_count() {
        let r = roles();
        let previous = previous_resource_policy(ARN, &expected(&r)).to_string();
        let s = secret(&[(naming::TAG_USER_ID, "AIDAOWNER")], Some(KMS), 1);
        assert_eq!(judge(&s, Some(&previous), &expected(&r)), Trust::Outdated);
        // The previous policy naming other roles is no more keyrotor's than the current.
        let other_roles = vec!["arn:aws:iam::123456789012:role/mallory".to_owned()];
        let theirs = previous_resource_policy(ARN, &expected(&other_roles)).to_string();
        assert!(matches!(
            judge(&s, Some(&theirs), &expected(&r)),
            Trust::Untrusted(_)
        ));
    }
}
