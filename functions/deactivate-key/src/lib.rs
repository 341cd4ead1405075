//! `deactivate-key`: sets the old key Inactive, but only once its replacement is the
//! AWSCURRENT value of the user's secret and Active, and only when the programs using the
//! old key had their chance to move. `create-key` writes the secret only after the key
//! authenticated, so "stored" implies "verified" (invariant 4).
//!
//! The first call of a rotation opens the overlap window (recorded on the secret) and
//! keeps the old key Active; the state machine calls again every poll interval, and the
//! old key is deactivated once it is idle, at the window's cap, at the owner's word, or at
//! once when the rotation is forced or no window is configured
//! ([`keyrotor_core::domain::cutover`] decides). Records the deactivation on the secret,
//! which is what `delete-key` later checks against.
//!
//! A retirement (`retire`: an unused key, no replacement) deactivates the key at once if
//! the plan on live state still retires it ([`keyrotor_core::domain::retirement`]), with
//! the same record.

use chrono::{DateTime, SubsecRound, Utc};
use keyrotor_aws::{Iam, IamAndSecrets, Secrets};
use keyrotor_core::domain::cutover::{
    contain_step, cutover_step, deactivate_step, owner_request, DeactivateStep, Step, Usage, Why,
};
use keyrotor_core::domain::plan_key;
use keyrotor_core::domain::planner::unsettled_deactivation;
use keyrotor_core::domain::retirement::retire_step;
use keyrotor_core::domain::{Deactivation, KeyStatus, Overlap};
use keyrotor_core::ownership::Trust;
use keyrotor_core::payload::{DeactivateKeyOutput, DeactivateOutcome, KeyPairInput};
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
    let policy = &deps.config.policy;
    let old = input.old_key_id.as_str();
    let new = input.replacement(dry_run)?;

    let live = load_user(
        &deps.iam,
        &deps.secrets,
        &deps.config,
        input.user.as_str(),
        None,
    )
    .await?;
    // Recorded deactivated moments ago, yet Active: read again once the record has
    // settled, so that an owner's reactivation at once is seen as one (and stands).
    let live = match unsettled_deactivation(&live.state, old, Utc::now()) {
        Some(wait) => {
            tokio::time::sleep(wait.to_std().unwrap_or_default()).await;
            load_user(
                &deps.iam,
                &deps.secrets,
                &deps.config,
                input.user.as_str(),
                None,
            )
            .await?
        }
        None => live,
    };
    let user = live.state.user.as_str();
    let described_arn = live.secret.as_ref().map(|s| s.arn.clone());
    let output = |outcome: DeactivateOutcome, note: String| DeactivateKeyOutput {
        user: user.to_owned(),
        old_key_id: old.to_owned(),
        outcome,
        secret_arn: described_arn.clone(),
        deactivated_at: None,
        delete_after: None,
        already_inactive: outcome == DeactivateOutcome::AlreadyInactive,
        why: None,
        window: None,
        next_check_at: None,
        old_key_last_used: None,
        new_key_last_used: None,
        note,
        dry_run,
    };
    let done = |at: DateTime<Utc>, outcome: DeactivateOutcome, note: String| DeactivateKeyOutput {
        deactivated_at: Some(at),
        delete_after: Some(
            Deactivation {
                key_id: old.to_owned(),
                at,
            }
            .delete_after(policy),
        ),
        ..output(outcome, note)
    };

    let Some(old_key) = live.state.key(old) else {
        // Gone. If it exists nowhere and its replacement is the secret's active current key,
        // a concurrent run of this rotation has already deactivated and deleted it.
        // A retired key that is gone was deleted by a concurrent run of the retirement.
        let replaced = new.is_some_and(|n| live.state.is_current_and_active(n)) || input.retire;
        if replaced && deps.iam.key_owner(old).await?.is_none() {
            let recorded = live.state.secret.deactivation_of(old);
            let note = format!("{old} no longer exists");
            return Ok(DeactivateKeyOutput {
                deactivated_at: recorded.map(|d| d.at),
                delete_after: Some(recorded.map_or_else(Utc::now, |d| d.delete_after(policy))),
                ..output(DeactivateOutcome::AlreadyInactive, note)
            });
        }
        return Err(Error::NotFound(format!(
            "access key {old} is not a key of user {user}"
        )));
    };

    let plan = if input.contain {
        plan_key(&live.state, policy, Utc::now(), old)
    } else {
        live.plan(&deps.config, input.force)
    };
    let step = match new {
        Some(new) => deactivate_step(&live.state, &plan, old, new),
        None if input.retire => retire_step(&live.state, &plan, old),
        None if input.contain => contain_step(&live.state, &plan, old),
        None => {
            info!(
                user,
                old_key_id = old,
                "dry run: would deactivate the old key"
            );
            let outcome = if old_key.is_active() {
                DeactivateOutcome::WouldDeactivate
            } else {
                DeactivateOutcome::AlreadyInactive
            };
            return Ok(output(outcome, "dry run: no key was rotated".into()));
        }
    };
    match step {
        DeactivateStep::Refuse(reason) => return Err(Error::Blocked(reason)),
        DeactivateStep::NotTheUsers(reason) => return Err(Error::NotFound(reason)),
        DeactivateStep::Proceed => {}
        DeactivateStep::AlreadyInactive if input.contain => {
            // Out of use already: nothing to contain, and no record to complete (a
            // contained key is deleted by no one but a person, or a later rotation).
            let note = format!("{old} is inactive already");
            return Ok(output(DeactivateOutcome::AlreadyInactive, note));
        }
        DeactivateStep::AlreadyInactive => {
            // A retry after success, or after the tag write was lost.
            let note = format!("{old} is inactive already");
            let at = match live.state.secret.deactivation_of(old) {
                Some(d) => d.at,
                None if dry_run => return Ok(output(DeactivateOutcome::AlreadyInactive, note)),
                None => {
                    let now = whole_seconds(Utc::now());
                    deps.secrets
                        .record_deactivation(secret_arn(&live)?, old, now)
                        .await?;
                    now
                }
            };
            return Ok(done(at, DeactivateOutcome::AlreadyInactive, note));
        }
    }
    if dry_run {
        return Ok(output(
            DeactivateOutcome::WouldDeactivate,
            format!("dry run: {old} would be deactivated or kept for its window"),
        ));
    }
    if input.contain {
        // Recorded on the secret where the secret is keyrotor's (a later rotation then
        // finishes with it as it would with any deactivated key); deactivated all the same
        // where it is not: its trust gates what keyrotor writes there, never containment.
        let at = match (&live.secret, &live.trust) {
            (Some(secret), Trust::Protected | Trust::Outdated) => {
                deactivate(deps, &live, &secret.arn, old).await?
            }
            _ => {
                deps.iam
                    .set_key_status(user, old, KeyStatus::Inactive)
                    .await?;
                whole_seconds(Utc::now())
            }
        };
        info!(
            user,
            key_id = old,
            "leaked key contained: deactivated without a replacement"
        );
        return Ok(DeactivateKeyOutput {
            why: Some(Why::Forced),
            ..done(at, DeactivateOutcome::Deactivated, plan.reason.clone())
        });
    }
    let secret_arn = secret_arn(&live)?;
    let Some(new) = new else {
        // Retired: no replacement, no window.
        let last_used = live.state.last_use.get(old).and_then(|u| u.date());
        let at = deactivate(deps, &live, secret_arn, old).await?;
        info!(
            user,
            old_key_id = old,
            why = Why::Unused.as_str(),
            "unused key retired"
        );
        return Ok(DeactivateKeyOutput {
            why: Some(Why::Unused),
            old_key_last_used: last_used,
            ..done(at, DeactivateOutcome::Deactivated, plan.reason.clone())
        });
    };

    // The window this rotation opened, if any, and what the keys' use and the owner say.
    let window = live.state.window_of(old, new).cloned();
    let watching = !input.force && (window.is_some() || policy.overlap_secs > 0);
    let usage = if watching {
        Usage {
            old_key_last_used: deps.iam.key_last_used(old).await?,
            new_key_last_used: deps.iam.key_last_used(new).await?,
        }
    } else {
        Usage::default()
    };
    let request = owner_request(&live.state.tags, new);
    let now = Utc::now();
    let waiting = |window: Overlap, next_check: DateTime<Utc>, note: String| DeactivateKeyOutput {
        window: Some(window),
        next_check_at: Some(next_check),
        old_key_last_used: usage.old_key_last_used,
        new_key_last_used: usage.new_key_last_used,
        ..output(DeactivateOutcome::Waiting, note)
    };
    let (why, note) = match cutover_step(
        policy,
        old,
        window.as_ref(),
        input.force,
        usage,
        &request,
        now,
    ) {
        Step::Open { window, next_check } => {
            deps.secrets.record_overlap(secret_arn, &window).await?;
            info!(user, old_key_id = old, new_key_id = new, until = %window.until, "overlap window opened");
            let note = format!(
                "both keys work until {} at the latest; {old} is deactivated earlier once \
                 nothing uses it",
                window.until
            );
            return Ok(waiting(window, next_check, note));
        }
        Step::Extend { window, next_check } => {
            deps.secrets.record_overlap(secret_arn, &window).await?;
            info!(user, old_key_id = old, until = %window.until, "overlap window extended");
            let note = format!("the owner extended the window to {}", window.until);
            return Ok(waiting(window, next_check, note));
        }
        Step::Wait { next_check, note } => {
            let window = window.ok_or_else(|| Error::Internal("a wait without a window".into()))?;
            return Ok(waiting(window, next_check, note));
        }
        Step::Deactivate { why, note } => (why, note),
    };

    let at = deactivate(deps, &live, secret_arn, old).await?;
    info!(
        user,
        old_key_id = old,
        new_key_id = new,
        why = why.as_str(),
        "old key deactivated"
    );
    Ok(DeactivateKeyOutput {
        why: Some(why),
        window,
        old_key_last_used: usage.old_key_last_used,
        new_key_last_used: usage.new_key_last_used,
        ..done(at, DeactivateOutcome::Deactivated, note)
    })
}

/// Deactivates `key`, marked on the secret before and recorded after (so that a failure
/// between the writes is recognised as keyrotor's own deactivation): the time recorded.
async fn deactivate<U: UsersPort, S: SecretsPort>(
    deps: &Deps<U, S>,
    live: &keyrotor_core::state::LiveUser,
    secret_arn: &str,
    key: &str,
) -> Result<DateTime<Utc>> {
    deps.secrets.mark_deactivating(secret_arn, key).await?;
    deps.iam
        .set_key_status(&live.state.user, key, KeyStatus::Inactive)
        .await?;
    let at = whole_seconds(Utc::now());
    deps.secrets
        .record_deactivation(secret_arn, key, at)
        .await?;
    Ok(at)
}

/// The ARN of the user's secret, which a rotation (or retirement) under way always has.
fn secret_arn(live: &keyrotor_core::state::LiveUser) -> Result<&str> {
    live.secret
        .as_ref()
        .map(|s| s.arn.as_str())
        .ok_or_else(|| Error::Internal("secret described without ARN".into()))
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
                json!({"user": "alice", "oldKeyId": k1, "newKeyId": "AKIAIOSFODNN7EXAMPL2", "retire": true}),
                json!({"user": "alice", "oldKeyId": k1, "retire": true, "force": true}),
                json!({"user": "alice", "oldKeyId": k1, "contain": true}),
                json!({"user": "alice", "oldKeyId": k1, "contain": true, "force": true, "newKeyId": "AKIAIOSFODNN7EXAMPL2"}),
            ]
        );
    }
}
