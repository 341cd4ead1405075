//! `delete-key`: deletes the old key after the deletion delay, and only if that is still
//! safe (invariant 5): it is Inactive, keyrotor recorded its deactivation, the delay has
//! passed, it signed nothing since, and its replacement is in place (a retired key has
//! none; the rules: [`keyrotor_core::domain::deletion`]). A key someone
//! reactivated (a rollback) or used after deactivation is kept, with the reason. A key that
//! is already gone is success (idempotent).

use chrono::Utc;
use keyrotor_aws::{Iam, IamAndSecrets, Secrets};
use keyrotor_core::domain::deletion::{after_last_use, delete_check, DeleteCheck};
use keyrotor_core::error::AwsErrorKind;
use keyrotor_core::payload::{DeleteKeyOutput, DeleteOutcome, KeyPairInput};
use keyrotor_core::ports::{SecretsPort, UsersPort};
use keyrotor_core::state::load_user;
use keyrotor_core::{Error, Result};
use tracing::{info, warn};

/// How early a deletion may arrive and still be waited out rather than refused.
const CLOCK_SKEW: chrono::Duration = chrono::Duration::seconds(5);

/// What `delete-key` needs: its settings, IAM and Secrets Manager, nothing else. Built once
/// per cold start from the SDK configuration; tests build it around an in-memory account.
pub type Deps<U = Iam, S = Secrets> = IamAndSecrets<U, S>;

/// Every AWS API action this function calls: its role grants exactly these (checked by
/// `tools/check_infra.py`), and a test holds the calls the code makes to them.
pub const AWS_ACTIONS: &[&str] = &[
    "iam:DeleteAccessKey",
    "iam:GetAccessKeyLastUsed",
    "iam:GetGroup",
    "iam:GetUser",
    "iam:ListAccessKeys",
    "iam:ListUserTags",
    "secretsmanager:DescribeSecret",
    "secretsmanager:GetResourcePolicy",
];

pub async fn handle<U: UsersPort, S: SecretsPort>(
    event: serde_json::Value,
    deps: &Deps<U, S>,
) -> Result<DeleteKeyOutput> {
    let input = KeyPairInput::parse(event)?;
    let dry_run = input.dry_run || deps.config.dry_run;
    let old = input.old_key_id.as_str();
    // `force` changes nothing here: a forced rotation's old key is deleted by the same rules.
    let mut live = load_user(
        &deps.iam,
        &deps.secrets,
        &deps.config,
        input.user.as_str(),
        None,
    )
    .await?;
    // As IAM spells the name; `live` is read again below, so the name is kept apart.
    let name = live.identity.name.clone();
    let user = name.as_str();
    let output = |outcome: DeleteOutcome, reason: String| DeleteKeyOutput {
        user: user.to_owned(),
        old_key_id: old.to_owned(),
        outcome,
        reason,
        dry_run,
    };
    // A Wait that ended a moment before the deletion time (clock skew between Step Functions
    // and Lambda, or whole-second rounding) is waited out here, then the state re-read.
    if let Some(early) = live
        .state
        .secret
        .deactivation_of(old)
        .map(|d| d.delete_after(&deps.config.policy) - Utc::now())
        .filter(|early| *early > chrono::Duration::zero() && *early <= CLOCK_SKEW)
    {
        tokio::time::sleep(early.to_std().unwrap_or_default()).await;
        live = load_user(&deps.iam, &deps.secrets, &deps.config, user, None).await?;
    }
    if live.state.key(old).is_none() {
        // Gone is success; a key of someone else is a bad request.
        return match deps.iam.key_owner(old).await? {
            Some(owner) if owner != user => Err(Error::NotFound(format!(
                "access key {old} is not a key of user {user}"
            ))),
            _ => Ok(output(
                DeleteOutcome::AlreadyDeleted,
                format!("{old} no longer exists"),
            )),
        };
    }
    let new = input.replacement(dry_run)?;
    if dry_run && new.is_none() && !input.retire {
        return Ok(output(
            DeleteOutcome::WouldDelete,
            "dry run: no key was rotated".into(),
        ));
    }
    let deactivated_at = match delete_check(&live.state, &deps.config.policy, old, new, Utc::now())
    {
        DeleteCheck::Refuse(reason) => return Err(Error::Blocked(reason)),
        DeleteCheck::KeptReactivated(reason) => {
            warn!(
                user,
                old_key_id = old,
                "old key was reactivated; keeping it"
            );
            return Ok(output(DeleteOutcome::KeptReactivated, reason));
        }
        DeleteCheck::LastUse { deactivated_at } => deactivated_at,
    };
    let last_used = match deps.iam.key_last_used(old).await {
        Ok(used) => used,
        // Deleted since we looked, by a concurrent run of the same rotation.
        Err(e) if e.aws_kind() == Some(AwsErrorKind::NotFound) => {
            return Ok(output(
                DeleteOutcome::AlreadyDeleted,
                format!("{old} no longer exists"),
            ));
        }
        Err(e) => return Err(e),
    };
    if let Err(reason) = after_last_use(old, last_used, deactivated_at) {
        warn!(
            user,
            old_key_id = old,
            "old key used after deactivation; keeping it"
        );
        return Ok(output(DeleteOutcome::KeptUsedAfterDeactivation, reason));
    }
    if dry_run {
        return Ok(output(
            DeleteOutcome::WouldDelete,
            format!("dry run: {old} would be deleted"),
        ));
    }
    let outcome = if deps.iam.delete_access_key(user, old).await? {
        DeleteOutcome::Deleted
    } else {
        DeleteOutcome::AlreadyDeleted
    };
    info!(user, old_key_id = old, "old key deleted");
    Ok(output(
        outcome,
        format!("{old} was inactive and unused since {deactivated_at}"),
    ))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[tokio::test]
    async fn malformed_inputs_are_rejected_before_any_aws_call() {
        let k1 = "AKIAIOSFODNN7EXAMPLE";
        keyrotor_aws::assert_rejected!(
            handle,
            [
                json!({}),
                json!({"user": "alice"}),
                json!({"user": "alice", "oldKeyId": k1, "newKeyId": k1}),
                json!({"user": "alice", "oldKeyId": k1, "newKeyId": "bad"}),
                json!({"user": "alice", "oldKeyId": k1, "delete": "all"}),
                json!({"user": "alice", "oldKeyId": k1, "newKeyId": "AKIAIOSFODNN7EXAMPL2", "retire": true}),
            ]
        );
    }
}
