//! The rotation planner: a pure function from a user's live state to one decision.
//!
//! Every mutating step re-runs it on live state before acting, so a rerun, a redrive or a
//! concurrent execution acts only if the decision still holds. The table it implements is
//! the one in DESIGN.md ("The planner's decision table").

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::cutover::LONGEST_WINDOW;
use super::retirement::{retired_leftover, unused};
use super::{exemption, AccessKey, Exemption, Policy, UserState};
use crate::exposure::Confirmation;

/// How long after its creation a key of ours next to a still-active old key counts as an
/// interrupted rotation to resume. Retries and redrives of the same rotation happen well
/// within it; an older pair means someone reactivated the old key on purpose.
pub const RESUME_WINDOW: Duration = Duration::hours(24);

/// How long after keyrotor recorded a deactivation an active key counts as reactivated by
/// its owner rather than as a read that IAM has not caught up with yet.
pub const RECORD_SETTLE: Duration = Duration::seconds(5);

/// What to do with one user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "action",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum Decision {
    /// Nothing to do today.
    None,
    /// The user is exempt from rotation; nothing is changed.
    Exempt,
    /// Tell the owner that `key_id` will be rotated on `rotate_on` (retired instead, when
    /// `retire`: it is unused, and gets no replacement).
    Warn {
        key_id: String,
        age_days: i64,
        rotate_on: NaiveDate,
        #[serde(default)]
        retire: bool,
    },
    /// Replace `old_key_id` with a new key.
    Rotate {
        old_key_id: String,
        age_days: i64,
        /// An Inactive leftover key to delete first, so that the new key fits under IAM's
        /// limit of two keys per user.
        delete_first: Option<String>,
        /// A key of ours that an interrupted run already created and stored: no new key is
        /// created, the rotation continues with this one.
        resume_with: Option<String>,
        forced: bool,
    },
    /// Action is due but cannot be taken safely; report it, change nothing.
    Blocked { key_id: Option<String> },
    /// A rotation got as far as deactivating `old_key_id` and its replacement `new_key_id`
    /// is the secret's current key: what is left is to delete the old key at `delete_after`
    /// (`None` when the deactivation time was never recorded: the resumed run records it
    /// and waits the whole delay). An execution that failed after the deactivation is
    /// finished this way by a new run.
    Finish {
        old_key_id: String,
        new_key_id: String,
        delete_after: Option<DateTime<Utc>>,
    },
    /// `key_id` is unused (never, or not for `unused_days`) and due: it is deactivated with
    /// no replacement, and deleted at `delete_after` (`None` until its deactivation is
    /// recorded). A leftover retirement is finished this way by a new run.
    Retire {
        key_id: String,
        age_days: i64,
        /// Its last use as IAM reported it (`None`: never).
        last_used: Option<DateTime<Utc>>,
        delete_after: Option<DateTime<Utc>>,
    },
    /// A reported leak of `key_id` that no replacement can follow now (the user's other key
    /// is in the way, or the secret cannot be trusted): the key is deactivated at once all
    /// the same, with no new key. A leaked key is worse than an outage.
    Contain { key_id: String },
    /// A rotation is in its overlap window: `new_key_id` is stored, and `old_key_id` stays
    /// Active until nothing uses it any more, and at the latest until `until`. The
    /// execution that opened the window watches it; a new one only looks again.
    Cutover {
        old_key_id: String,
        new_key_id: String,
        until: DateTime<Utc>,
    },
}

impl Decision {
    /// Whether `key` counts as non-compliant under this decision for its user: Active, past
    /// the rotation age, the user not exempt, and the key not the old key of a rotation in
    /// its overlap window (it has a stored replacement and goes by the window's end). The
    /// one rule behind the `NonCompliantKeys` metric and `keyrotor report`'s exit code 3.
    pub fn counts_as_non_compliant(
        &self,
        key: &AccessKey,
        policy: &Policy,
        now: DateTime<Utc>,
    ) -> bool {
        let in_window = matches!(self, Decision::Cutover { old_key_id, until, .. }
            if *old_key_id == key.id && now < *until);
        *self != Decision::Exempt && !in_window && key.is_past_rotation_age(policy, now)
    }

    /// The short name used in payloads, reports and execution names.
    pub fn name(&self) -> &'static str {
        match self {
            Decision::None => "none",
            Decision::Exempt => "exempt",
            Decision::Warn { .. } => "warn",
            Decision::Rotate { .. } => "rotate",
            Decision::Blocked { .. } => "blocked",
            Decision::Finish { .. } => "finish",
            Decision::Cutover { .. } => "cutover",
            Decision::Retire { .. } => "retire",
            Decision::Contain { .. } => "contain",
        }
    }

    /// Whether the scan should start a per-user execution for this decision at `now`. A
    /// rotation waiting for its deletion time or in its overlap window is left to the
    /// execution that is waiting; once that time has passed (for a window, by a day), a
    /// leftover rotation is finished.
    pub fn needs_action(&self, now: DateTime<Utc>) -> bool {
        match self {
            Decision::Warn { .. }
            | Decision::Rotate { .. }
            | Decision::Blocked { .. }
            | Decision::Contain { .. } => true,
            Decision::Finish { delete_after, .. } | Decision::Retire { delete_after, .. } => {
                delete_after.is_none_or(|at| at <= now)
            }
            // The watching execution deactivates the old key at `until` itself; a day later
            // it has died, and the scan starts one to finish the window.
            Decision::Cutover { until, .. } => *until + RESUME_WINDOW <= now,
            Decision::None | Decision::Exempt => false,
        }
    }
}

/// A decision with the human-readable reason for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    #[serde(flatten)]
    pub decision: Decision,
    pub reason: String,
}

impl Plan {
    fn new(decision: Decision, reason: impl Into<String>) -> Self {
        Plan {
            decision,
            reason: reason.into(),
        }
    }
}

/// Decides what to do with one user. `force` (an ad hoc "rotate now") overrides the key's
/// age, any exemption and an owner's rollback, never the two-keys-per-user rules nor a
/// secret keyrotor cannot trust.
pub fn plan(state: &UserState, policy: &Policy, now: DateTime<Utc>, force: bool) -> Plan {
    let tag = state.tags.get(&policy.exempt_tag).map(String::as_str);
    let exemption = exemption(tag, now, policy.max_exemption_days);
    if !force {
        if let Exemption::Exempt(reason) = &exemption {
            return Plan::new(Decision::Exempt, reason.clone());
        }
        if state.in_exempt_group {
            return Plan::new(Decision::Exempt, "member of the exemption group");
        }
    }
    let plan = plan_keys(state, policy, now, force, &exemption);
    let plan = guard_secret(state, plan);
    match &exemption {
        Exemption::TooFar(note) if !force => Plan {
            reason: format!("{}; {note}", plan.reason),
            ..plan
        },
        _ => plan,
    }
}

/// Decides what to do about one named key of the user: a forced rotation of exactly that
/// key (a leak response). A key that is inactive or gone needs nothing: the rotation that
/// replaced it, or a person, already took it out of use, and a second report of the same
/// leak must not rotate its replacement. An active key the forced plan would not replace
/// (the user's other key is active, or a rotation's old key still inside its delay; the
/// exposed key is the replacement of a rotation under way; the secret cannot be trusted)
/// is contained: deactivated at once without a replacement (issue 26, M2: a reported leak
/// always ends with the exposed key Inactive).
pub fn plan_key(state: &UserState, policy: &Policy, now: DateTime<Utc>, key_id: &str) -> Plan {
    let Some(key) = state.key(key_id) else {
        return Plan::new(
            Decision::None,
            format!(
                "{key_id} is no longer a key of {}: nothing to rotate",
                state.user
            ),
        );
    };
    if !key.is_active() {
        let how = state.secret.deactivation_of(key_id).map_or_else(
            || "it is inactive".to_owned(),
            |d| format!("keyrotor deactivated it at {}", d.at),
        );
        return Plan::new(
            Decision::None,
            format!("{key_id} is already out of use ({how}): nothing to rotate"),
        );
    }
    let forced = plan(state, policy, now, true);
    match &forced.decision {
        Decision::Rotate { old_key_id, .. } if old_key_id == key_id => forced,
        _ => Plan::new(
            Decision::Contain {
                key_id: key_id.to_owned(),
            },
            format!(
                "{key_id} cannot be replaced now ({}), so it is deactivated without a \
                 replacement: a leaked key is worse than an outage",
                forced.reason
            ),
        ),
    }
}

/// Decides what to do about a key an exposure report names, given what AWS said of the
/// report (issue 26, M9: an event's shape proves nothing). A key that is gone or inactive
/// needs nothing, whoever reported it. Otherwise:
/// - confirmed by AWS: [`plan_key`], whatever the user's exemption;
/// - denied by AWS: blocked, nothing changed (the report was not AWS's);
/// - not confirmable: [`plan_key`] for a user a scheduled rotation would rotate too, and
///   blocked for a person's decision for an exempt one (the exemption group holds the
///   break-glass users, whose only key a forged report must not take away).
pub fn plan_reported_key(
    state: &UserState,
    policy: &Policy,
    now: DateTime<Utc>,
    key_id: &str,
    confirmation: &Confirmation,
) -> Plan {
    let planned = plan_key(state, policy, now, key_id);
    if planned.decision == Decision::None {
        return planned;
    }
    let blocked = |reason: String| {
        Plan::new(
            Decision::Blocked {
                key_id: Some(key_id.to_owned()),
            },
            reason,
        )
    };
    match confirmation {
        Confirmation::Confirmed { .. } => planned,
        Confirmation::Refuted(why) => blocked(format!(
            "the report of {key_id} is not AWS's ({why}), so nothing was changed; a responder \
             who knows the key leaked forces its rotation by hand"
        )),
        Confirmation::Unconfirmed(why) => {
            let unforced = plan(state, policy, now, false);
            if unforced.decision == Decision::Exempt {
                return blocked(format!(
                    "the report of {key_id} could not be confirmed with AWS ({why}) and {} is \
                     exempt ({}), so nothing was changed: a person decides (a responder \
                     forces the rotation by hand)",
                    state.user, unforced.reason
                ));
            }
            Plan {
                reason: format!(
                    "{} (the report could not be confirmed with AWS: {why})",
                    planned.reason
                ),
                ..planned
            }
        }
    }
}

fn plan_keys(
    state: &UserState,
    policy: &Policy,
    now: DateTime<Utc>,
    force: bool,
    exemption: &Exemption,
) -> Plan {
    if state.keys.len() > 2 {
        return Plan::new(
            Decision::Blocked { key_id: None },
            format!(
                "user has {} access keys, more than IAM allows",
                state.keys.len()
            ),
        );
    }

    let mut active: Vec<&AccessKey> = state.active_keys().collect();
    active.sort_by(|a, b| a.created.cmp(&b.created).then(a.id.cmp(&b.id)));

    match active.as_slice() {
        [] => retired_leftover(state, policy, now)
            .unwrap_or_else(|| Plan::new(Decision::None, "no active access key")),
        [only] => plan_single_active(state, policy, now, force, only, exemption),
        // At most two keys reach this point, so this arm means exactly two.
        [.., older, newer] => plan_two_active(state, policy, now, force, older, newer),
    }
}

/// A rotation or a retirement writes the user's secret, and finishing one trusts its
/// records: neither happens while the secret is not provably keyrotor's own (invariant 10).
fn guard_secret(state: &UserState, plan: Plan) -> Plan {
    let Some(problem) = &state.secret_problem else {
        return plan;
    };
    let key_id = match &plan.decision {
        Decision::Rotate { old_key_id, .. }
        | Decision::Finish { old_key_id, .. }
        | Decision::Cutover { old_key_id, .. } => old_key_id.clone(),
        // A retirement records its deactivation there, and trusts the record to delete.
        Decision::Retire { key_id, .. } => key_id.clone(),
        _ => return plan,
    };
    Plan::new(
        Decision::Blocked {
            key_id: Some(key_id),
        },
        format!("{}, but {problem}", plan.reason),
    )
}

/// Whether a plan for a user with these keys may depend on keyrotor's records (the
/// secret) or on the keys' IDs. It cannot when the user has at most one key and no
/// inactive one: such a user is planned from the key's age, the tags and the exemption
/// group alone, so the scan can plan them from the credential report's key ages.
pub fn depends_on_records(keys: &[AccessKey]) -> bool {
    !(keys.len() <= 1 && keys.iter().all(AccessKey::is_active))
}

fn plan_single_active(
    state: &UserState,
    policy: &Policy,
    now: DateTime<Utc>,
    force: bool,
    key: &AccessKey,
    exemption: &Exemption,
) -> Plan {
    let age = key.age_days(now);
    let inactive = state.keys.iter().find(|k| !k.is_active());
    if let Some(finish) = inactive.and_then(|old| unfinished_rotation(state, policy, key, old)) {
        return finish;
    }
    let due = age >= i64::from(policy.rotate_after_days);
    if due || force {
        if let (Some(rollback), false) = (owner_reactivated(state, key, now), force) {
            return rollback;
        }
        if let (Some(rollback), false) = (window_rolled_back(state, key), force) {
            return rollback;
        }
        if let (Exemption::Invalid(reason), false) = (exemption, force) {
            return Plan::new(
                Decision::Blocked {
                    key_id: Some(key.id.clone()),
                },
                reason.clone(),
            );
        }
        if let Some(waiting) = inactive.filter(|k| awaits_deletion(state, policy, now, &k.id)) {
            let reason = format!(
                "the previous rotation's old key {} is still inside its deletion delay",
                waiting.id
            );
            // A forced rotation that cannot proceed must say so; a scheduled one just waits.
            let decision = if force {
                Decision::Blocked {
                    key_id: Some(key.id.clone()),
                }
            } else {
                Decision::None
            };
            return Plan::new(decision, reason);
        }
        // A leak response replaces even an unused key: its owner asked for a new one.
        if let (Some(why), false) = (unused(state, policy, key, now), force) {
            return Plan::new(
                Decision::Retire {
                    key_id: key.id.clone(),
                    age_days: age,
                    last_used: state.last_use.get(&key.id).and_then(|u| u.date()),
                    delete_after: None,
                },
                format!(
                    "{why}: it is retired (deactivated, then deleted after the delay) instead \
                     of rotated, and no new key is made"
                ),
            );
        }
        let reason = if force && !due {
            format!("forced rotation of a key {age} days old")
        } else {
            format!(
                "key is {age} days old, rotation age is {}",
                policy.rotate_after_days
            )
        };
        return Plan::new(
            Decision::Rotate {
                old_key_id: key.id.clone(),
                age_days: age,
                delete_first: inactive.map(|k| k.id.clone()),
                resume_with: None,
                forced: force && !due,
            },
            reason,
        );
    }
    let retire = unused(state, policy, key, now).is_some();
    if let Some(warn) = warning(policy, key, age, retire) {
        return warn;
    }
    Plan::new(Decision::None, format!("key is {age} days old"))
}

fn plan_two_active(
    state: &UserState,
    policy: &Policy,
    now: DateTime<Utc>,
    force: bool,
    older: &AccessKey,
    newer: &AccessKey,
) -> Plan {
    let ours = state.secret.current_key_id.as_deref() == Some(newer.id.as_str());
    // A window record on a pair older than the longest window is stale (and the scan no
    // longer looks at such a pair in full).
    let window = state
        .window_of(&older.id, &newer.id)
        .filter(|_| now - newer.created < LONGEST_WINDOW + RESUME_WINDOW);
    if ours && (window.is_some() || now - newer.created < RESUME_WINDOW) {
        if let (Some(rollback), false) = (owner_reactivated(state, older, now), force) {
            return rollback;
        }
        if let (Some(window), false) = (window, force) {
            return Plan::new(
                Decision::Cutover {
                    old_key_id: older.id.clone(),
                    new_key_id: newer.id.clone(),
                    until: window.until,
                },
                format!(
                    "rotated to {}; the old key {} stays active until nothing uses it, \
                     and at the latest until {}",
                    newer.id, older.id, window.until
                ),
            );
        }
        return Plan::new(
            Decision::Rotate {
                old_key_id: older.id.clone(),
                age_days: older.age_days(now),
                delete_first: None,
                resume_with: Some(newer.id.clone()),
                forced: force,
            },
            format!(
                "resuming a rotation: new key {} is stored, old key {} is still active",
                newer.id, older.id
            ),
        );
    }
    let age = older.age_days(now);
    if age >= i64::from(policy.rotate_after_days) || force {
        return Plan::new(
            Decision::Blocked {
                key_id: Some(older.id.clone()),
            },
            format!(
                "two active access keys ({} is {age} days old); keyrotor cannot add a third \
                 and will not deactivate a key it did not replace",
                older.id
            ),
        );
    }
    if let Some(warn) = warning(policy, older, age, false) {
        return warn;
    }
    Plan::new(
        Decision::None,
        format!("two active keys, the oldest is {age} days old"),
    )
}

/// `old` is the key keyrotor deactivated (or marked on the secret as the one it was
/// deactivating) and `active` is the secret's current key: a rotation that still has to
/// delete `old`.
fn unfinished_rotation(
    state: &UserState,
    policy: &Policy,
    active: &AccessKey,
    old: &AccessKey,
) -> Option<Plan> {
    let ours = state.secret.current_key_id.as_deref() == Some(active.id.as_str());
    if !ours {
        return None;
    }
    let recorded = state.secret.deactivation_of(&old.id);
    let marked = state.secret.deactivating.as_deref() == Some(old.id.as_str());
    if recorded.is_none() && !marked {
        return None;
    }
    let delete_after = recorded.map(|d| d.delete_after(policy));
    let when = delete_after.map_or_else(
        || "once its deactivation is recorded and the delay has passed".to_owned(),
        |at| format!("after {at}"),
    );
    Some(Plan::new(
        Decision::Finish {
            old_key_id: old.id.clone(),
            new_key_id: active.id.clone(),
            delete_after,
        },
        format!(
            "rotated to {}; the old key {} may be deleted {when}",
            active.id, old.id
        ),
    ))
}

/// `key` is the only active key and the old key of a rotation's overlap window, but the
/// new key the secret holds is gone or Inactive: its owner took the rotation back during
/// the window. That stands like a rollback after deactivation (invariant 11): no run
/// replaces the key again unless a rotation is forced.
fn window_rolled_back(state: &UserState, key: &AccessKey) -> Option<Plan> {
    state.secret.overlap_of(&key.id)?;
    let new = state.secret.current_key_id.as_deref()?;
    if new == key.id || state.key(new).is_some_and(AccessKey::is_active) {
        return None;
    }
    let how = if state.key(new).is_some() {
        "deactivated"
    } else {
        "deleted"
    };
    Some(Plan::new(
        Decision::Blocked {
            key_id: Some(key.id.clone()),
        },
        format!(
            "the new key {new} was {how} during the overlap window and {} is still active: \
             the owner's rollback stands; a person must decide, or force a rotation",
            key.id
        ),
    ))
}

/// How long until keyrotor's record of deactivating `key_id`, which is Active now, proves
/// something: `Some` while the record is younger than [`RECORD_SETTLE`]. Until then the
/// Active status may be IAM not having caught up (a concurrent run) or an owner's
/// reactivation at once; a step about to deactivate the key waits this long and reads
/// again, so that a reactivation is never undone (the planner calls it a rollback once the
/// record has settled).
pub fn unsettled_deactivation(
    state: &UserState,
    key_id: &str,
    now: DateTime<Utc>,
) -> Option<Duration> {
    let recorded = state.secret.deactivation_of(key_id)?;
    let left = recorded.at + RECORD_SETTLE - now;
    (state.key(key_id).is_some_and(AccessKey::is_active) && left > Duration::zero())
        .then_some(left.min(RECORD_SETTLE))
}

/// `key` is active although keyrotor recorded deactivating it: its owner rolled the
/// rotation back. That decision is final (invariant 11): no run deactivates or deletes the
/// key again unless a rotation is forced; the user is reported until a person acts. A
/// record younger than [`RECORD_SETTLE`] proves nothing yet: a concurrent run can read it
/// while IAM still lists the key as active.
fn owner_reactivated(state: &UserState, key: &AccessKey, now: DateTime<Utc>) -> Option<Plan> {
    let deactivation = state
        .secret
        .deactivation_of(&key.id)
        .filter(|d| now - d.at >= RECORD_SETTLE)?;
    Some(Plan::new(
        Decision::Blocked {
            key_id: Some(key.id.clone()),
        },
        format!(
            "{} was reactivated after keyrotor deactivated it at {}: the owner's rollback \
             stands; a person must deactivate one key, or force a rotation",
            key.id, deactivation.at
        ),
    ))
}

fn warning(policy: &Policy, key: &AccessKey, age: i64, retire: bool) -> Option<Plan> {
    let is_warning_day = policy.warn_days.iter().any(|d| i64::from(*d) == age);
    is_warning_day.then(|| {
        let rotate_on =
            (key.created + Duration::days(i64::from(policy.rotate_after_days))).date_naive();
        let what = if retire {
            "is unused and will be retired (deactivated, not replaced)"
        } else {
            "will be rotated"
        };
        Plan::new(
            Decision::Warn {
                key_id: key.id.clone(),
                age_days: age,
                rotate_on,
                retire,
            },
            format!("key is {age} days old and {what} on {rotate_on}"),
        )
    })
}

/// Whether `key_id` is the old key of a rotation that is still inside its deletion delay.
pub fn awaits_deletion(
    state: &UserState,
    policy: &Policy,
    now: DateTime<Utc>,
    key_id: &str,
) -> bool {
    state
        .secret
        .deactivation_of(key_id)
        .is_some_and(|d| now < d.delete_after(policy))
}

/// The deletion delay as a duration (saturating for absurd configured values).
pub fn deletion_delay(policy: &Policy) -> Duration {
    super::cutover::seconds(policy.deletion_delay_secs)
}

#[cfg(test)]
#[path = "planner_tests.rs"]
mod tests;
