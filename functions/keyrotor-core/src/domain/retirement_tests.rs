use chrono::Duration;
use proptest::prelude::*;

use super::*;
use crate::domain::deletion::{delete_check, DeleteCheck};
use crate::domain::{plan, test_now, test_policy, Deactivation, KeyStatus};

use KeyStatus::{Active, Inactive};

fn key(id: &str, status: KeyStatus, age_days: i64) -> AccessKey {
    AccessKey {
        id: id.into(),
        status,
        created: test_now() - Duration::days(age_days) - Duration::minutes(5),
    }
}

/// alice with one key `age_days` old, last used `used` days ago (`None`: never).
fn alice(age_days: i64, used: Option<i64>) -> UserState {
    let mut state = UserState {
        user: "alice".into(),
        keys: vec![key("AKIAOLD", Active, age_days)],
        ..UserState::default()
    };
    let used = used.map(|d| test_now() - Duration::days(d));
    state
        .last_use
        .insert("AKIAOLD".into(), LastUse::from_date(used));
    state
}

fn decide(state: &UserState) -> Decision {
    plan(state, &test_policy(), test_now(), false).decision
}

#[test]
fn a_due_key_never_used_or_idle_past_the_threshold_is_retired_not_rotated() {
    for (used, retired) in [
        (None, true),
        (Some(45), true),
        (Some(89), true),
        (Some(44), false),
        (Some(0), false),
    ] {
        let d = decide(&alice(95, used));
        assert_eq!(
            d.name(),
            if retired { "retire" } else { "rotate" },
            "{used:?}: {d:?}"
        );
    }
    let d = decide(&alice(95, Some(60)));
    assert_eq!(
        d,
        Decision::Retire {
            key_id: "AKIAOLD".into(),
            age_days: 95,
            last_used: Some(test_now() - Duration::days(60)),
            delete_after: None,
        }
    );
    assert!(d.needs_action(test_now()));
}

#[test]
fn a_key_of_unknown_use_is_rotated_and_the_threshold_zero_turns_retirement_off() {
    let mut unknown = alice(95, None);
    unknown.last_use.clear();
    assert_eq!(decide(&unknown).name(), "rotate");
    let off = Policy {
        unused_days: 0,
        ..test_policy()
    };
    let d = plan(&alice(95, None), &off, test_now(), false).decision;
    assert_eq!(d.name(), "rotate", "{d:?}");
}

#[test]
fn a_forced_rotation_replaces_even_an_unused_key_and_exemptions_hold() {
    let p = plan(&alice(10, None), &test_policy(), test_now(), true);
    assert_eq!(
        p.decision.name(),
        "rotate",
        "a leak response gets a new key"
    );
    let mut exempt = alice(95, None);
    exempt
        .tags
        .insert("key-rotation:exempt".into(), "true".into());
    assert_eq!(decide(&exempt), Decision::Exempt);
    let mut grouped = alice(95, None);
    grouped.in_exempt_group = true;
    assert_eq!(decide(&grouped), Decision::Exempt);
}

#[test]
fn the_warning_says_retire_for_an_unused_key() {
    let d = decide(&alice(80, None));
    assert!(matches!(d, Decision::Warn { retire: true, .. }), "{d:?}");
    let d = decide(&alice(80, Some(1)));
    assert!(matches!(d, Decision::Warn { retire: false, .. }), "{d:?}");
}

#[test]
fn a_retirement_into_a_secret_keyrotor_cannot_trust_is_blocked() {
    let mut state = alice(95, None);
    state.secret_problem = Some("someone else's secret".into());
    let p = plan(&state, &test_policy(), test_now(), false);
    assert_eq!(
        p.decision,
        Decision::Blocked {
            key_id: Some("AKIAOLD".into())
        },
        "{p:?}"
    );
}

/// alice after keyrotor retired AKIAOLD `ago` before now.
fn retired(status: KeyStatus, ago: Duration) -> UserState {
    let mut state = alice(95, None);
    state.keys[0].status = status;
    state.secret.deactivated = Some(Deactivation {
        key_id: "AKIAOLD".into(),
        at: test_now() - ago,
    });
    state
}

#[test]
fn a_retired_key_waits_for_deletion_and_a_dead_retirement_is_finished() {
    let state = retired(Inactive, Duration::days(1));
    let d = decide(&state);
    let Decision::Retire { delete_after, .. } = &d else {
        panic!("{d:?}");
    };
    assert_eq!(
        *delete_after,
        Some(test_now() - Duration::days(1) + Duration::days(7))
    );
    assert!(!d.needs_action(test_now()), "its execution is waiting");
    let d = decide(&retired(Inactive, Duration::days(8)));
    assert!(
        d.needs_action(test_now()),
        "past its time: finished by a new run"
    );
    // Marked but never recorded (the run died between the two writes).
    let mut marked = alice(95, None);
    marked.keys[0].status = Inactive;
    marked.secret.deactivating = Some("AKIAOLD".into());
    let d = decide(&marked);
    assert!(
        matches!(
            d,
            Decision::Retire {
                delete_after: None,
                ..
            }
        ),
        "{d:?}"
    );
}

#[test]
fn an_inactive_key_keyrotor_did_not_retire_is_left_alone() {
    // Deactivated by its owner: no record.
    let mut state = alice(95, None);
    state.keys[0].status = Inactive;
    assert_eq!(decide(&state), Decision::None);
    // A rotation's old key whose replacement the owner deleted: not a retirement.
    let mut rotated = retired(Inactive, Duration::days(8));
    rotated.secret.current_key_id = Some("AKIANEW".into());
    assert_eq!(decide(&rotated), Decision::None);
}

#[test]
fn an_owner_who_reactivates_a_retired_key_keeps_it() {
    let d = decide(&retired(Active, Duration::days(1)));
    assert_eq!(
        d,
        Decision::Blocked {
            key_id: Some("AKIAOLD".into())
        },
        "the rollback stands"
    );
}

#[test]
fn the_retire_step_proceeds_only_on_the_plan_and_never_takes_over_a_key() {
    let state = alice(95, None);
    let p = plan(&state, &test_policy(), test_now(), false);
    assert_eq!(retire_step(&state, &p, "AKIAOLD"), DeactivateStep::Proceed);
    assert!(matches!(
        retire_step(&state, &p, "AKIAOTHER"),
        DeactivateStep::NotTheUsers(_)
    ));
    // Used meanwhile: rotated instead.
    let used = alice(95, Some(0));
    let p = plan(&used, &test_policy(), test_now(), false);
    assert!(matches!(
        retire_step(&used, &p, "AKIAOLD"),
        DeactivateStep::Refuse(_)
    ));
    // Inactive with keyrotor's record: done already; without: someone else's doing.
    let done = retired(Inactive, Duration::seconds(1));
    let p = plan(&done, &test_policy(), test_now(), false);
    assert_eq!(
        retire_step(&done, &p, "AKIAOLD"),
        DeactivateStep::AlreadyInactive
    );
    let mut theirs = alice(95, None);
    theirs.keys[0].status = Inactive;
    let p = plan(&theirs, &test_policy(), test_now(), false);
    assert!(matches!(
        retire_step(&theirs, &p, "AKIAOLD"),
        DeactivateStep::Refuse(_)
    ));
}

#[test]
fn a_retired_key_is_deleted_by_the_rotations_rules_without_a_replacement() {
    let check =
        |state: &UserState| delete_check(state, &test_policy(), "AKIAOLD", None, test_now());
    assert!(matches!(
        check(&retired(Inactive, Duration::days(8))),
        DeleteCheck::LastUse { .. }
    ));
    assert!(matches!(
        check(&retired(Inactive, Duration::days(6))),
        DeleteCheck::Refuse(_)
    ));
    assert!(matches!(
        check(&retired(Active, Duration::days(8))),
        DeleteCheck::KeptReactivated(_)
    ));
    let mut unrecorded = alice(95, None);
    unrecorded.keys[0].status = Inactive;
    assert!(matches!(check(&unrecorded), DeleteCheck::Refuse(_)));
}

#[test]
fn only_the_one_active_key_old_enough_for_a_warning_has_its_use_read() {
    let policy = test_policy();
    let now = test_now();
    assert!(needs_last_use(&[key("A", Active, 80)], &policy, now).is_some());
    assert!(needs_last_use(&[key("A", Active, 95)], &policy, now).is_some());
    assert!(needs_last_use(&[key("A", Active, 79)], &policy, now).is_none());
    assert!(
        needs_last_use(&[key("A", Active, 95), key("B", Active, 1)], &policy, now).is_none(),
        "two active keys are never retired"
    );
    assert!(needs_last_use(
        &[key("A", Active, 95), key("B", Inactive, 200)],
        &policy,
        now
    )
    .is_some());
    let off = Policy {
        unused_days: 0,
        ..policy
    };
    assert!(needs_last_use(&[key("A", Active, 95)], &off, now).is_none());
}

proptest! {
    /// A key used within the threshold is never retired; a forced plan never retires; a
    /// retirement is only ever of the user's one active key, or of a key keyrotor recorded.
    #[test]
    fn retirement_takes_only_unused_or_recorded_keys(
        age in 0i64..400,
        used in proptest::option::of(0i64..400),
        other in proptest::option::of((any::<bool>(), 0i64..400)),
        force in any::<bool>(),
        recorded in any::<bool>(),
    ) {
        let mut state = alice(age, used);
        if let Some((active, age)) = other {
            state.keys.push(key("AKIAOTHER", if active { Active } else { Inactive }, age));
        }
        if recorded {
            state.secret.deactivated = Some(Deactivation {
                key_id: "AKIAOLD".into(),
                at: test_now() - Duration::days(1),
            });
        }
        let policy = test_policy();
        let p = plan(&state, &policy, test_now(), force);
        if let Decision::Retire { key_id, .. } = &p.decision {
            prop_assert!(!force, "{p:?}");
            let key = state.key(key_id).expect("a key of the user");
            if key.is_active() {
                prop_assert_eq!(state.active_keys().count(), 1);
                let idle = used.is_none_or(|d| d >= i64::from(policy.unused_days));
                prop_assert!(idle, "{:?}", p);
            } else {
                prop_assert!(state.secret.deactivation_of(key_id).is_some(), "{:?}", p);
            }
        }
    }
}
