//! When `create-key` may create a rotation's new key (invariants 2 and 7): the plan on live
//! state is still this rotation, and no earlier or concurrent run has made the key already.
//! Pure rules over the live state; the step reads, asks these, and acts (creating,
//! verifying and storing, and the compensation when one of those fails, are I/O and stay
//! in the step).

use chrono::{DateTime, Duration, Utc};

use super::planner::Decision;
use super::{Plan, UserState};

/// Keys younger than this that appear after a failed CreateAccessKey, and that no secret
/// names, are taken to be that call's work (or another run's, about to be stored).
pub const ORPHAN_WINDOW: Duration = Duration::minutes(15);

/// What `create-key` does for the rotation of `old`, a key of the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateStep {
    /// The secret already holds a newer key of the user: an earlier run of this rotation
    /// created and stored it. Return it; create nothing.
    AlreadyStored { key_id: String },
    /// Another run is between creating its key and storing it: try again soon (`Conflict`).
    Conflict(String),
    /// Live state no longer calls for this rotation: the `Blocked` error's text.
    Refuse(String),
    /// Create the key, after deleting the Inactive leftover `delete_first` if there is one.
    Create { delete_first: Option<String> },
}

pub fn create_step(state: &UserState, plan: &Plan, old: &str, now: DateTime<Utc>) -> CreateStep {
    let current = state.secret.current_key_id.as_deref();
    let old_created = state.key(old).map(|k| k.created);
    if let Some(current) = current.filter(|c| *c != old) {
        let newer = state
            .key(current)
            .is_some_and(|k| old_created.is_some_and(|created| k.created >= created));
        if newer {
            return CreateStep::AlreadyStored {
                key_id: current.to_owned(),
            };
        }
    }
    if let Decision::Blocked { .. } = plan.decision {
        // Two active keys, the newer minutes old and in no secret: most likely another
        // execution for this user between creating its key and storing it. Try again soon
        // rather than give up; if that key is still unclaimed later, Blocked stands.
        let unclaimed = state.active_keys().find(|k| {
            Some(k.id.as_str()) != current && k.id != old && now - k.created < ORPHAN_WINDOW
        });
        if let Some(key) = unclaimed {
            return CreateStep::Conflict(format!(
                "key {} of user {} was created moments ago and is in no secret yet: another \
                 rotation is in progress",
                key.id, state.user
            ));
        }
    }
    match &plan.decision {
        Decision::Rotate {
            old_key_id,
            delete_first,
            ..
        } if old_key_id == old => CreateStep::Create {
            delete_first: delete_first.clone(),
        },
        Decision::Rotate { old_key_id, .. } => {
            CreateStep::Refuse(format!("the plan now rotates {old_key_id}, not {old}"))
        }
        _ => CreateStep::Refuse(format!(
            "live state no longer calls for rotating {old} ({}: {})",
            plan.decision.name(),
            plan.reason
        )),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::domain::{plan, AccessKey, KeyStatus, SecretState};

    fn now() -> DateTime<Utc> {
        crate::domain::test_now()
    }

    fn key(id: &str, status: KeyStatus, age: Duration) -> AccessKey {
        AccessKey {
            id: id.into(),
            status,
            created: now() - age,
        }
    }

    fn step(state: &UserState, force: bool) -> CreateStep {
        let p = plan(state, &crate::domain::test_policy(), now(), force);
        create_step(state, &p, "AKIAOLD", now())
    }

    fn alice(keys: Vec<AccessKey>, current: Option<&str>) -> UserState {
        UserState {
            user: "alice".into(),
            keys,
            secret: SecretState {
                current_key_id: current.map(str::to_owned),
                ..SecretState::default()
            },
            ..UserState::default()
        }
    }

    #[test]
    fn a_due_key_gets_one_new_key_and_a_rerun_finds_it() {
        let old = key("AKIAOLD", KeyStatus::Active, Duration::days(95));
        let leftover = key("AKIALEFT", KeyStatus::Inactive, Duration::days(200));
        assert_eq!(
            step(&alice(vec![old.clone(), leftover], None), false),
            CreateStep::Create {
                delete_first: Some("AKIALEFT".into())
            }
        );
        // The secret already holds a newer key: that run's work, returned.
        let new = key("AKIANEW", KeyStatus::Active, Duration::minutes(2));
        assert_eq!(
            step(&alice(vec![old.clone(), new], Some("AKIANEW")), false),
            CreateStep::AlreadyStored {
                key_id: "AKIANEW".into()
            }
        );
        // Another run's key, minutes old and in no secret yet: try again soon.
        let theirs = key("AKIATHEIRS", KeyStatus::Active, Duration::minutes(1));
        assert!(matches!(
            step(&alice(vec![old.clone(), theirs], None), false),
            CreateStep::Conflict(_)
        ));
        // A second key of the owner's own, long there: blocked, never a third key.
        let owners = key("AKIAOWN", KeyStatus::Active, Duration::days(30));
        assert!(matches!(
            step(&alice(vec![old.clone(), owners], None), false),
            CreateStep::Refuse(_)
        ));
        // Not due, not forced.
        let young = key("AKIAOLD", KeyStatus::Active, Duration::days(10));
        assert!(matches!(
            step(&alice(vec![young.clone()], None), false),
            CreateStep::Refuse(_)
        ));
        assert!(matches!(
            step(&alice(vec![young], None), true),
            CreateStep::Create { .. }
        ));
    }

    proptest! {
        #[test]
        fn a_key_is_created_only_where_it_fits_and_none_is_stored_yet(
            keys in proptest::collection::vec((any::<bool>(), 0i64..(200 * 86_400)), 1..=3),
            current in 0usize..4,
            force in any::<bool>(),
        ) {
            let keys: Vec<AccessKey> = keys
                .iter()
                .enumerate()
                .map(|(i, (active, age))| {
                    let id = if i == 0 { "AKIAOLD".to_owned() } else { format!("AKIAKEY{i}") };
                    let status = if *active { KeyStatus::Active } else { KeyStatus::Inactive };
                    key(&id, status, Duration::seconds(*age))
                })
                .collect();
            let current = keys.get(current).map(|k| k.id.clone());
            let state = alice(keys, current.as_deref());
            if let CreateStep::Create { delete_first } = step(&state, force) {
                let remaining = state.keys.len() - usize::from(delete_first.is_some());
                prop_assert!(remaining < 2, "never a third key");
                prop_assert!(state.key("AKIAOLD").is_some_and(AccessKey::is_active));
                if let Some(leftover) = &delete_first {
                    prop_assert!(state.key(leftover).is_some_and(|k| !k.is_active()), "never delete an active key");
                }
                let newer_stored = current.as_deref().is_some_and(|c| {
                    c != "AKIAOLD"
                        && state.key(c).is_some_and(|k| k.created >= state.keys[0].created)
                });
                prop_assert!(!newer_stored, "never create while the secret names a newer key");
            }
        }
    }
}
