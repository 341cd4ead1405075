//! Unused keys are retired, not rotated. A key due for rotation that was never used, or not
//! for `unused_days` (the CIS benchmark's 45 by default), has no program to move to a new
//! key: replacing it would only hand out a second unused credential. It is deactivated at
//! the rotation age with no replacement, and deleted the deletion delay later by the same
//! rules as a rotation's old key (recorded on the user's secret, still Inactive, unused
//! since). Its owner is warned on the warning days like anyone else, and can keep the key by
//! using it before then (it is then rotated), or by reactivating it afterwards (a rollback,
//! which stands like any other).
//!
//! What "unused" rests on: IAM's last use of the key (GetAccessKeyLastUsed, or the
//! credential report's `access_key_N_last_used_date`), read only for the one active key of
//! a user whose plan it can change ([`needs_last_use`]). A key whose last use was not read
//! is of unknown use and is rotated, never retired.

use chrono::{DateTime, Duration, Utc};

use super::cutover::DeactivateStep;
use super::planner::Decision;
use super::{AccessKey, LastUse, Plan, Policy, UserState};

/// Why `key` counts as unused at `now`, if it does: never used, or last used at least
/// `unused_days` ago. `None` when retirement is off, or the key's use is unknown or recent.
pub fn unused(
    state: &UserState,
    policy: &Policy,
    key: &AccessKey,
    now: DateTime<Utc>,
) -> Option<String> {
    if policy.unused_days == 0 {
        return None;
    }
    let threshold = Duration::days(i64::from(policy.unused_days));
    match state.last_use.get(&key.id)? {
        LastUse::Never => Some(format!("{} was never used", key.id)),
        LastUse::At(used) if now - *used >= threshold => Some(format!(
            "{} was last used {} days ago ({used}), {} days or more without use",
            key.id,
            (now - *used).num_days(),
            policy.unused_days
        )),
        LastUse::At(_) => None,
    }
}

/// The key whose last use the plan for a user with these keys may read: the one active key,
/// once it is old enough for a warning or the rotation. Every other plan is the same
/// whatever the keys' use, so nothing else is worth a call.
pub fn needs_last_use<'a>(
    keys: &'a [AccessKey],
    policy: &Policy,
    now: DateTime<Utc>,
) -> Option<&'a AccessKey> {
    if policy.unused_days == 0 {
        return None;
    }
    let mut active = keys.iter().filter(|k| k.is_active());
    let (Some(only), None) = (active.next(), active.next()) else {
        return None;
    };
    let first_look = policy
        .warn_days
        .first()
        .copied()
        .unwrap_or(policy.rotate_after_days)
        .min(policy.rotate_after_days);
    (only.age_days(now) >= i64::from(first_look)).then_some(only)
}

/// A key keyrotor retired that is waiting for its deletion: the user has no active key, and
/// `key` is Inactive, recorded (or marked) by keyrotor as deactivated, and not the old key
/// of a rotation (the secret holds no other key). Planned as `Retire` with the deletion
/// time, so that a scan finishes a retirement whose execution died.
pub fn retired_leftover(state: &UserState, policy: &Policy, now: DateTime<Utc>) -> Option<Plan> {
    let secret = &state.secret;
    let key = state.keys.iter().find(|k| {
        !k.is_active()
            && (secret.deactivation_of(&k.id).is_some()
                || secret.deactivating.as_deref() == Some(k.id.as_str()))
    })?;
    if secret
        .current_key_id
        .as_deref()
        .is_some_and(|current| current != key.id)
    {
        return None;
    }
    let delete_after = secret
        .deactivation_of(&key.id)
        .map(|d| d.delete_after(policy));
    let when = delete_after.map_or_else(
        || "once its deactivation is recorded and the delay has passed".to_owned(),
        |at| format!("after {at}"),
    );
    Some(Plan {
        decision: Decision::Retire {
            key_id: key.id.clone(),
            age_days: key.age_days(now),
            last_used: state.last_use.get(&key.id).and_then(|u| u.date()),
            delete_after,
        },
        reason: format!("{} was retired unused; it may be deleted {when}", key.id),
    })
}

/// The rules `deactivate-key` keeps before it retires `key`: it is the user's, and the plan
/// on live state still retires it. A key already Inactive counts as done only where
/// keyrotor marked or recorded its deactivation; one that someone else deactivated is left
/// to them, never taken over and later deleted.
pub fn retire_step(state: &UserState, plan: &Plan, key: &str) -> DeactivateStep {
    let Some(found) = state.key(key) else {
        return DeactivateStep::NotTheUsers(format!(
            "access key {key} is not a key of user {}",
            state.user
        ));
    };
    if !found.is_active() {
        let ours = state.secret.deactivation_of(key).is_some()
            || state.secret.deactivating.as_deref() == Some(key);
        return if ours {
            DeactivateStep::AlreadyInactive
        } else {
            DeactivateStep::Refuse(format!(
                "{key} was deactivated by someone else meanwhile; keyrotor leaves it alone"
            ))
        };
    }
    match &plan.decision {
        Decision::Retire { key_id, .. } if key_id == key => DeactivateStep::Proceed,
        _ => DeactivateStep::Refuse(format!(
            "live state no longer calls for retiring {key} ({}: {})",
            plan.decision.name(),
            plan.reason
        )),
    }
}

#[cfg(test)]
#[path = "retirement_tests.rs"]
mod tests;
