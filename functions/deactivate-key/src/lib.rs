//! `deactivate-key`: sets the old key Inactive, but only once its replacement is the
//! AWSCURRENT value of the user's secret and Active. `create-key` writes the secret only
//! after the key authenticated, so "stored" implies "verified" (invariant 4). Records the
//! deactivation on the secret, which is what `delete-key` later checks against.

use chrono::{SubsecRound, Utc};
use keyrotor_aws::{Iam, IamAndSecrets, Secrets};
use keyrotor_core::domain::planner::deletion_delay;
use keyrotor_core::domain::{Decision, KeyStatus};
use keyrotor_core::payload::{DeactivateKeyOutput, KeyPairInput};
use keyrotor_core::ports::{SecretsPort, UsersPort};
use keyrotor_core::state::load_user;
use keyrotor_core::{Error, Result};
use tracing::info;

/// What `deactivate-key` needs: its settings, IAM and Secrets Manager, nothing else. Built once
/// per cold start from the SDK configuration; tests build it around an in-memory account.
pub type Deps<U = Iam, S = Secrets> = IamAndSecrets<U, S>;

/// Every AWS API action this function calls: its role grants exactly these (checked by
/// `tools/check_infra.py`), and a test holds the calls the code makes to them.
pub const AWS_ACTIONS: &[&str] = &[
    "iam:GetAccessKeyLastUsed",
    "iam:GetGroup",
    "iam:GetUser",
    "iam:ListAccessKeys",
    "iam:ListUserTags",
    "iam:UpdateAccessKey",
    "secretsmanager:DescribeSecret",
    "secretsmanager:GetResourcePolicy",
    "secretsmanager:TagResource",
];

pub async fn handle<U: UsersPort, S: SecretsPort>(
    event: serde_json::Value,
    deps: &Deps<U, S>,
) -> Result<DeactivateKeyOutput> {
    let input = KeyPairInput::parse(event)?;
    let dry_run = input.dry_run || deps.config.dry_run;
    let old = input.old_key_id.as_str();
    let new = match (&input.new_key_id, dry_run) {
        (Some(new), _) => Some(new.as_str()),
        (None, true) => None,
        (None, false) => return Err(Error::InvalidInput("newKeyId is required".into())),
    };
    let delay = deletion_delay(&deps.config.policy);

    let live = load_user(
        &deps.iam,
        &deps.secrets,
        &deps.config,
        input.user.as_str(),
        None,
    )
    .await?;
    let user = live.state.user.as_str();
    let described_arn = live.secret.as_ref().map(|s| s.arn.clone());
    let output = |deactivated_at: Option<chrono::DateTime<Utc>>, already_inactive: bool| {
        DeactivateKeyOutput {
            user: user.to_owned(),
            old_key_id: old.to_owned(),
            secret_arn: described_arn.clone(),
            deactivated_at,
            delete_after: deactivated_at.map(|at| at + delay),
            already_inactive,
            dry_run,
        }
    };

    let Some(old_key) = live.state.key(old) else {
        // Gone. If it exists nowhere and its replacement is the secret's active current key,
        // a concurrent run of this rotation has already deactivated and deleted it.
        let replaced = new.is_some_and(|n| live.state.is_current_and_active(n));
        if replaced && deps.iam.key_owner(old).await?.is_none() {
            let recorded = live.state.secret.deactivation_of(old).map(|d| d.at);
            return Ok(DeactivateKeyOutput {
                delete_after: Some(recorded.map_or_else(Utc::now, |at| at + delay)),
                ..output(recorded, true)
            });
        }
        return Err(Error::NotFound(format!(
            "access key {old} is not a key of user {user}"
        )));
    };

    let Some(new) = new else {
        info!(
            user,
            old_key_id = old,
            "dry run: would deactivate the old key"
        );
        return Ok(output(None, old_key.status == KeyStatus::Inactive));
    };
    let new_key = live
        .state
        .key(new)
        .ok_or_else(|| Error::NotFound(format!("access key {new} is not a key of user {user}")))?;
    if !new_key.is_active() {
        return Err(Error::Blocked(format!(
            "new key {new} is not active; keeping {old} active"
        )));
    }
    if live.state.secret.current_key_id.as_deref() != Some(new) {
        return Err(Error::Blocked(format!(
            "new key {new} is not the current value of secret {}; keeping {old} active",
            live.secret_name
        )));
    }
    if new_key.created < old_key.created {
        return Err(Error::Blocked(format!(
            "{new} is older than {old}; refusing to deactivate"
        )));
    }
    let secret_arn = live
        .secret
        .as_ref()
        .map(|s| s.arn.clone())
        .ok_or_else(|| Error::Internal("secret described without ARN".into()))?;

    if old_key.status == KeyStatus::Inactive {
        // A retry after success, or after the tag write was lost.
        let recorded = live.state.secret.deactivation_of(old).map(|d| d.at);
        let at = match recorded {
            Some(at) => at,
            None if dry_run => return Ok(output(None, true)),
            None => {
                let now = whole_seconds(Utc::now());
                deps.secrets
                    .record_deactivation(&secret_arn, old, now)
                    .await?;
                now
            }
        };
        return Ok(output(Some(at), true));
    }

    // The plan must still be "resume this rotation": not exempt meanwhile (unless the
    // rotation is forced), not rolled back by the owner, same pair of keys.
    let plan = live.plan(&deps.config, input.force);
    match &plan.decision {
        Decision::Rotate {
            old_key_id,
            resume_with: Some(resume),
            ..
        } if old_key_id == old && resume == new => {}
        _ => {
            return Err(Error::Blocked(format!(
                "live state no longer calls for deactivating {old} ({}: {})",
                plan.decision.name(),
                plan.reason
            )))
        }
    }

    if dry_run {
        return Ok(output(None, false));
    }
    deps.secrets.mark_deactivating(&secret_arn, old).await?;
    deps.iam
        .set_key_status(user, old, KeyStatus::Inactive)
        .await?;
    let now = whole_seconds(Utc::now());
    deps.secrets
        .record_deactivation(&secret_arn, old, now)
        .await?;
    info!(
        user,
        old_key_id = old,
        new_key_id = new,
        "old key deactivated"
    );
    Ok(output(Some(now), false))
}

/// The deactivation time as recorded: whole seconds (the tag and the output agree), taken
/// down, so that a Wait that starts after the deactivation never ends before it plus the
/// delay (which `delete-key` checks against the recorded time).
fn whole_seconds(t: chrono::DateTime<Utc>) -> chrono::DateTime<Utc> {
    t.trunc_subsecs(0)
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
                json!({"user": "alice", "oldKeyId": k1}),
                json!({"user": "alice", "oldKeyId": k1, "newKeyId": k1}),
                json!({"user": "alice", "oldKeyId": "x", "newKeyId": k1}),
                json!({"user": 1, "oldKeyId": k1, "newKeyId": "AKIAIOSFODNN7EXAMPL2"}),
                json!({"user": "alice", "oldKeyId": k1, "newKeyId": "AKIAIOSFODNN7EXAMPL2", "force": "yes"}),
                json!({"user": "alice", "oldKeyId": k1, "newKeyId": "AKIAIOSFODNN7EXAMPL2", "again": true}),
            ]
        );
    }
}
