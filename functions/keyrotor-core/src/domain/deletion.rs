//! When `delete-key` may delete a rotation's old key (invariant 5): it is Inactive, keyrotor
//! recorded deactivating it, the deletion delay has passed since, it signed nothing since,
//! and its replacement is the secret's current, Active key (a retired key has none). Pure rules over the live state
//! and the key's last use; the step reads, asks these, and acts.

use chrono::{DateTime, Utc};

use super::{Deactivation, Policy, UserState};

impl Deactivation {
    /// When the key may be deleted: the deactivation plus the deletion delay. The one place
    /// that adds them (the planner's `finish`, `deactivate-key`'s `deleteAfter`, and
    /// `delete-key`'s check all ask here).
    pub fn delete_after(&self, policy: &Policy) -> DateTime<Utc> {
        self.at + super::planner::deletion_delay(policy)
    }
}

/// What `delete-key` may do with the old key, before it looks at the key's last use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeleteCheck {
    /// Live state no longer allows the deletion: the `Blocked` error's text.
    Refuse(String),
    /// Someone reactivated it (a rollback): it is kept, with this reason.
    KeptReactivated(String),
    /// Every rule but the last use holds: ask IAM when the key was last used, and delete
    /// it unless that was after `deactivated_at` ([`after_last_use`]).
    LastUse { deactivated_at: DateTime<Utc> },
}

/// The rules before the last use, for the old key `old` (a key of the user) replaced by
/// `new`, or retired (`None`).
pub fn delete_check(
    state: &UserState,
    policy: &Policy,
    old: &str,
    new: Option<&str>,
    now: DateTime<Utc>,
) -> DeleteCheck {
    if let Some(new) = new.filter(|new| !state.is_current_and_active(new)) {
        return DeleteCheck::Refuse(format!(
            "replacement key {new} is not active and current in the user's secret; keeping {old}"
        ));
    }
    if state.key(old).is_some_and(|k| k.is_active()) {
        return DeleteCheck::KeptReactivated(format!(
            "{old} was reactivated after the rotation (a rollback); it is kept"
        ));
    }
    let Some(deactivated) = state.secret.deactivation_of(old) else {
        return DeleteCheck::Refuse(format!(
            "keyrotor has no record of deactivating {old}; keeping it"
        ));
    };
    let delete_after = deactivated.delete_after(policy);
    if now < delete_after {
        return DeleteCheck::Refuse(format!("{old} may not be deleted before {delete_after}"));
    }
    DeleteCheck::LastUse {
        deactivated_at: deactivated.at,
    }
}

/// The last rule: a key that signed a request after keyrotor deactivated it is in use by
/// someone, and is kept (`Err` with the reason).
pub fn after_last_use(
    old: &str,
    last_used: Option<DateTime<Utc>>,
    deactivated_at: DateTime<Utc>,
) -> Result<(), String> {
    match last_used {
        Some(used) if used > deactivated_at => Err(format!(
            "{old} was used at {used}, after it was deactivated at {deactivated_at}; it is kept"
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;
    use proptest::prelude::*;

    use super::*;
    use crate::domain::{AccessKey, KeyStatus, SecretState};

    fn now() -> DateTime<Utc> {
        crate::domain::test_now()
    }

    fn key(id: &str, status: KeyStatus) -> AccessKey {
        AccessKey {
            id: id.into(),
            status,
            created: now() - Duration::days(100),
        }
    }

    /// alice after a rotation: AKIANEW current and Active, AKIAOLD as given, deactivated
    /// `ago` before now (if recorded).
    fn rotated(old: KeyStatus, ago: Option<Duration>) -> UserState {
        UserState {
            user: "alice".into(),
            keys: vec![key("AKIAOLD", old), key("AKIANEW", KeyStatus::Active)],
            secret: SecretState {
                current_key_id: Some("AKIANEW".into()),
                deactivated: ago.map(|ago| Deactivation {
                    key_id: "AKIAOLD".into(),
                    at: now() - ago,
                }),
                ..SecretState::default()
            },
            ..UserState::default()
        }
    }

    fn check(state: &UserState) -> DeleteCheck {
        let policy = crate::domain::test_policy();
        delete_check(state, &policy, "AKIAOLD", Some("AKIANEW"), now())
    }

    #[test]
    fn an_old_key_is_deleted_only_inactive_recorded_after_the_delay_and_unused_since() {
        let week = Duration::days(7);
        assert_eq!(
            check(&rotated(KeyStatus::Inactive, Some(week))),
            DeleteCheck::LastUse {
                deactivated_at: now() - week
            }
        );
        assert!(matches!(
            check(&rotated(KeyStatus::Active, Some(week))),
            DeleteCheck::KeptReactivated(_)
        ));
        assert!(matches!(
            check(&rotated(KeyStatus::Inactive, None)),
            DeleteCheck::Refuse(r) if r.contains("no record")
        ));
        assert!(matches!(
            check(&rotated(KeyStatus::Inactive, Some(week - Duration::seconds(1)))),
            DeleteCheck::Refuse(r) if r.contains("may not be deleted before")
        ));
        let mut replaced_gone = rotated(KeyStatus::Inactive, Some(week));
        replaced_gone.keys[1].status = KeyStatus::Inactive;
        assert!(matches!(check(&replaced_gone), DeleteCheck::Refuse(_)));
        let at = now() - week;
        assert!(after_last_use("AKIAOLD", None, at).is_ok());
        assert!(after_last_use("AKIAOLD", Some(at - Duration::hours(1)), at).is_ok());
        assert!(after_last_use("AKIAOLD", Some(at + Duration::seconds(1)), at).is_err());
    }

    proptest! {
        #[test]
        fn an_active_key_is_never_deleted(
            active in any::<bool>(),
            recorded in proptest::option::of(0i64..(20 * 86_400)),
            new_active in any::<bool>(),
            used in proptest::option::of(0i64..(20 * 86_400)),
        ) {
            let status = if active { KeyStatus::Active } else { KeyStatus::Inactive };
            let mut state = rotated(status, recorded.map(Duration::seconds));
            if !new_active {
                state.keys[1].status = KeyStatus::Inactive;
            }
            if let DeleteCheck::LastUse { deactivated_at } = check(&state) {
                prop_assert!(!active, "never an active key");
                prop_assert!(new_active, "never without its replacement");
                prop_assert!(now() - deactivated_at >= Duration::days(7), "only after the delay");
                let used = used.map(|s| now() - Duration::seconds(s));
                if after_last_use("AKIAOLD", used, deactivated_at).is_ok() {
                    prop_assert!(used.is_none_or(|u| u <= deactivated_at), "never one used since");
                }
            }
        }
    }
}
