//! The overlap window and its cutover: when a rotation's old key, kept Active beside its
//! stored new key so that the programs using it can move, is deactivated.
//!
//! Pure rules over what `deactivate-key` read: the user's live state, the plan, the keys'
//! last use (GetAccessKeyLastUsed) and the owner's request (user tags). The step acts on
//! the verdict; nothing here does I/O, so every rule has a table test and a property test
//! (`cutover_tests.rs`): a key in use is never deactivated before the cap, a window never
//! outlives its cap plus one extension, a forced rotation never waits.
//!
//! What IAM's last use tells, and what it does not: `LastUsedDate` is the time of the
//! latest request signed with the key (denied ones too), reported with a delay (AWS says
//! recent activity usually appears within four hours), with the service and region of
//! that request. It is one timestamp, not a history: a program that uses the old key once
//! a week looks idle for six days. So the window ends early only once the new key has been
//! used after the window opened, the old key's latest use is older than the new key's, and
//! the old key has been silent for the settle margin (`cutover_settle_secs`, two days by
//! default: IAM's reporting delay and a daily job's interval); in any case at the cap.

use chrono::{DateTime, Duration, SubsecRound, Utc};
use serde::{Deserialize, Serialize};

use super::planner::Decision;
use super::{Overlap, Plan, Policy, UserState};
use crate::naming;

/// The most an owner may extend a window, once.
pub const MAX_EXTENSION: Duration = Duration::days(7);

/// The longest cap `KEYROTOR_OVERLAP_SECONDS` may set: 30 days.
pub const MAX_OVERLAP_SECS: u64 = 30 * 86_400;

/// The longest a window can last: the longest cap and one extension. A pair of active keys
/// whose newer key is younger than this may be a rotation in its window, so the scan looks
/// at it in full.
pub const LONGEST_WINDOW: Duration =
    Duration::seconds(MAX_OVERLAP_SECS as i64 + MAX_EXTENSION.num_seconds());

/// Why the old key was deactivated when it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Why {
    /// No window: `KEYROTOR_OVERLAP_SECONDS` is 0.
    Immediate,
    /// A forced rotation (a leak response): a leaked key gets no window.
    Forced,
    /// The new key was used and the old one has been silent since, for the settle margin.
    Idle,
    /// The window reached its end.
    Cap,
    /// The owner said their programs have moved (tag `keyrotor:cutover` = the new key).
    Owner,
    /// No rotation: the key was never used, or not for `KEYROTOR_UNUSED_DAYS`, and is
    /// retired without a replacement.
    Unused,
}

impl Why {
    pub fn as_str(self) -> &'static str {
        match self {
            Why::Immediate => "immediate",
            Why::Forced => "forced",
            Why::Idle => "idle",
            Why::Cap => "cap",
            Why::Owner => "owner",
            Why::Unused => "unused",
        }
    }
}

/// When each key of the rotation was last used, as IAM reports it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    pub old_key_last_used: Option<DateTime<Utc>>,
    pub new_key_last_used: Option<DateTime<Utc>>,
}

/// What the owner asked for, through the user's tags: the tag's value names the new key,
/// so a request is about this rotation only and a stale tag from an earlier one does
/// nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnerRequest {
    None,
    /// `keyrotor:cutover` = the new key's ID: deactivate the old key now.
    Cutover,
    /// `keyrotor:extend` = the new key's ID, or `<ID>:<days>` (1 to 7): more time, once.
    Extend(Duration),
    /// A value for this rotation that cannot be read; reported, not acted on.
    Unreadable(String),
}

/// Reads the owner's request about the window of `new_key_id` from the user's tags.
pub fn owner_request(
    tags: &std::collections::BTreeMap<String, String>,
    new_key_id: &str,
) -> OwnerRequest {
    if tags
        .get(naming::USER_TAG_CUTOVER)
        .is_some_and(|v| v.trim() == new_key_id)
    {
        return OwnerRequest::Cutover;
    }
    let Some(value) = tags.get(naming::USER_TAG_EXTEND).map(|v| v.trim()) else {
        return OwnerRequest::None;
    };
    let (key, days) = match value.split_once(':') {
        Some((key, days)) => (key, Some(days)),
        None => (value, None),
    };
    if key != new_key_id {
        return OwnerRequest::None;
    }
    match days.map(|d| d.trim().parse::<i64>()) {
        None => OwnerRequest::Extend(MAX_EXTENSION),
        Some(Ok(d)) if (1..=MAX_EXTENSION.num_days()).contains(&d) => {
            OwnerRequest::Extend(Duration::days(d))
        }
        Some(_) => OwnerRequest::Unreadable(format!(
            "the {} tag asks for a number of days that is not 1 to {}",
            naming::USER_TAG_EXTEND,
            MAX_EXTENSION.num_days()
        )),
    }
}

/// What `deactivate-key` does about the old key now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Deactivate it now.
    Deactivate { why: Why, note: String },
    /// Keep it Active: record this window on the secret, tell the owner, look again at
    /// `next_check`.
    Open {
        window: Overlap,
        next_check: DateTime<Utc>,
    },
    /// Keep it Active: record the extended window, look again at `next_check`.
    Extend {
        window: Overlap,
        next_check: DateTime<Utc>,
    },
    /// Keep it Active; look again at `next_check`.
    Wait {
        next_check: DateTime<Utc>,
        note: String,
    },
}

/// Decides what happens to the old key of a rotation whose new key is stored, verified and
/// Active (the caller has checked that, see [`deactivate_step`]). `window` is the one the
/// secret records for the old key `old_key_id`, if any.
pub fn cutover_step(
    policy: &Policy,
    old_key_id: &str,
    window: Option<&Overlap>,
    force: bool,
    usage: Usage,
    request: &OwnerRequest,
    now: DateTime<Utc>,
) -> Step {
    if force {
        return Step::Deactivate {
            why: Why::Forced,
            note: "a forced rotation deactivates the old key at once".into(),
        };
    }
    let Some(window) = window else {
        if policy.overlap_secs == 0 {
            return Step::Deactivate {
                why: Why::Immediate,
                note: "no overlap window is configured".into(),
            };
        }
        // Whole seconds (as recorded), rounded up: keyrotor's own check of the new key,
        // made before this look, is never taken for a program's use of it.
        let since = up_to_second(now);
        let window = Overlap {
            key_id: old_key_id.to_owned(),
            since,
            until: since + seconds(policy.overlap_secs),
            extended: false,
        };
        let next_check = next_check(policy, &window, now);
        return Step::Open { window, next_check };
    };
    if *request == OwnerRequest::Cutover {
        return Step::Deactivate {
            why: Why::Owner,
            note: format!(
                "the owner asked for the cutover (tag {})",
                naming::USER_TAG_CUTOVER
            ),
        };
    }
    if let (OwnerRequest::Extend(more), false) = (request, window.extended) {
        let extended = Overlap {
            until: window.until + *more,
            extended: true,
            ..window.clone()
        };
        let next_check = next_check(policy, &extended, now);
        return Step::Extend {
            window: extended,
            next_check,
        };
    }
    if now >= window.until {
        return Step::Deactivate {
            why: Why::Cap,
            note: format!("the overlap window ended at {}", window.until),
        };
    }
    // An owner who asked for more time knows of a program that uses the old key rarely:
    // an extended window ends at its end or at the owner's word, not on silence.
    let note = if window.extended {
        format!(
            "the owner extended the window: the old key stays active until {}",
            window.until
        )
    } else {
        match idleness(policy, window, usage, now) {
            Ok(note) => {
                return Step::Deactivate {
                    why: Why::Idle,
                    note,
                }
            }
            Err(waiting) => waiting,
        }
    };
    let note = match request {
        OwnerRequest::Unreadable(problem) => format!("{note}; {problem}"),
        OwnerRequest::Extend(_) if window.extended => {
            format!("{note}; the window was already extended once, it is not extended again")
        }
        _ => note,
    };
    Step::Wait {
        next_check: next_check(policy, window, now),
        note,
    }
}

/// Whether the old key is no longer used: `Ok` with the evidence, `Err` with what is
/// still missing.
fn idleness(
    policy: &Policy,
    window: &Overlap,
    usage: Usage,
    now: DateTime<Utc>,
) -> Result<String, String> {
    let Some(new_used) = usage.new_key_last_used.filter(|t| *t > window.since) else {
        return Err("the new key has not been used since the window opened".into());
    };
    let settle = seconds(policy.cutover_settle_secs);
    match usage.old_key_last_used {
        None => Ok(format!(
            "the new key was used at {new_used} and the old key never was"
        )),
        Some(old_used) if old_used >= new_used => Err(format!(
            "the old key was used at {old_used}, after the new key's latest use at {new_used}"
        )),
        Some(old_used) if now - old_used < settle => Err(format!(
            "the old key was used at {old_used}, less than {} ago",
            human(settle)
        )),
        Some(old_used) => Ok(format!(
            "the new key was used at {new_used}; the old key was last used at {old_used}, \
             more than {} before this check",
            human(settle)
        )),
    }
}

/// The next look: one poll interval ahead, in whole seconds (a Wait's timestamp), never
/// past the window's end.
fn next_check(policy: &Policy, window: &Overlap, now: DateTime<Utc>) -> DateTime<Utc> {
    up_to_second(now + seconds(policy.cutover_poll_secs.max(1))).min(window.until)
}

/// `t` rounded up to a whole second.
fn up_to_second(t: DateTime<Utc>) -> DateTime<Utc> {
    let down = t.trunc_subsecs(0);
    if down == t {
        t
    } else {
        down + Duration::seconds(1)
    }
}

/// A number of seconds of the configuration as a duration (saturating).
pub fn seconds(secs: u64) -> Duration {
    i64::try_from(secs)
        .ok()
        .and_then(Duration::try_seconds)
        .unwrap_or(Duration::MAX)
}

/// A duration as people read it: whole days, hours, minutes or seconds.
pub fn human(d: Duration) -> String {
    let plural = |n: i64, unit: &str| format!("{n} {unit}{}", if n == 1 { "" } else { "s" });
    match d.num_seconds() {
        s if s >= 86_400 && s % 86_400 == 0 => plural(s / 86_400, "day"),
        s if s >= 3_600 && s % 3_600 == 0 => plural(s / 3_600, "hour"),
        s if s >= 60 && s % 60 == 0 => plural(s / 60, "minute"),
        s => plural(s, "second"),
    }
}

/// What `deactivate-key` may do with the pair (`old`, `new`) of the user's live state, once
/// it has found the old key among the user's keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeactivateStep {
    /// The old key is Inactive already (a retry after success): nothing to change, only
    /// the record to complete if it is missing.
    AlreadyInactive,
    /// Live state no longer allows this step: the `Blocked` error's text.
    Refuse(String),
    /// A key of the pair is not the user's: the `NotFound` error's text (a bad request).
    NotTheUsers(String),
    /// The pair is a rotation whose new key is in place: decide with [`cutover_step`].
    Proceed,
}

/// The rules `deactivate-key` keeps before it may touch the old key (invariant 4): the new
/// key is the user's, Active, newer than the old one and the secret's current value, and
/// the plan on live state is still this rotation (not exempt meanwhile unless forced, not
/// rolled back by the owner, the same pair).
pub fn deactivate_step(state: &UserState, plan: &Plan, old: &str, new: &str) -> DeactivateStep {
    let (Some(old_key), Some(new_key)) = (state.key(old), state.key(new)) else {
        let missing = if state.key(old).is_none() { old } else { new };
        return DeactivateStep::NotTheUsers(format!(
            "access key {missing} is not a key of user {}",
            state.user
        ));
    };
    if !new_key.is_active() {
        return DeactivateStep::Refuse(format!(
            "new key {new} is not active; keeping {old} active"
        ));
    }
    if state.secret.current_key_id.as_deref() != Some(new) {
        return DeactivateStep::Refuse(format!(
            "new key {new} is not the current value of the user's secret; keeping {old} active"
        ));
    }
    if new_key.created < old_key.created {
        return DeactivateStep::Refuse(format!(
            "{new} is older than {old}; refusing to deactivate"
        ));
    }
    if !old_key.is_active() {
        return DeactivateStep::AlreadyInactive;
    }
    match &plan.decision {
        Decision::Rotate {
            old_key_id,
            resume_with: Some(resume),
            ..
        } if old_key_id == old && resume == new => DeactivateStep::Proceed,
        Decision::Cutover {
            old_key_id,
            new_key_id,
            ..
        } if old_key_id == old && new_key_id == new => DeactivateStep::Proceed,
        _ => DeactivateStep::Refuse(format!(
            "live state no longer calls for deactivating {old} ({}: {})",
            plan.decision.name(),
            plan.reason
        )),
    }
}

/// The rules `deactivate-key` keeps before it contains a leaked key (no replacement): it is
/// the user's, and the leak response's plan on live state ([`super::plan_key`]) still
/// contains it. An Inactive key is out of use already.
pub fn contain_step(state: &UserState, plan: &Plan, key: &str) -> DeactivateStep {
    let Some(found) = state.key(key) else {
        return DeactivateStep::NotTheUsers(format!(
            "access key {key} is not a key of user {}",
            state.user
        ));
    };
    if !found.is_active() {
        return DeactivateStep::AlreadyInactive;
    }
    match &plan.decision {
        Decision::Contain { key_id } if key_id == key => DeactivateStep::Proceed,
        _ => DeactivateStep::Refuse(format!(
            "live state no longer calls for containing {key} ({}: {})",
            plan.decision.name(),
            plan.reason
        )),
    }
}

#[cfg(test)]
#[path = "cutover_tests.rs"]
mod tests;
