use std::collections::BTreeMap;

use chrono::{DateTime, Duration, TimeZone, Utc};
use proptest::prelude::*;

use super::*;
use crate::domain::credential_report::{keys_may_need_action, ReportKey};
use crate::domain::{AccessKey, Deactivation, KeyStatus, LastUse, Overlap, SecretState, UserState};
use crate::exposure::Confirmation;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0)
        .single()
        .expect("valid date")
}

fn policy() -> Policy {
    crate::domain::test_policy()
}

fn key(id: &str, status: KeyStatus, age_days: i64) -> AccessKey {
    AccessKey {
        id: id.into(),
        status,
        created: now() - Duration::days(age_days) - Duration::minutes(5),
    }
}

fn user(keys: Vec<AccessKey>) -> UserState {
    UserState {
        user: "alice".into(),
        keys,
        ..UserState::default()
    }
}

fn decide(state: &UserState) -> Decision {
    plan(state, &policy(), now(), false).decision
}

use KeyStatus::{Active, Inactive};

#[test]
fn rotation_is_due_at_the_rotation_age() {
    let d = decide(&user(vec![key("AKIAOLD", Active, 90)]));
    assert_eq!(
        d,
        Decision::Rotate {
            old_key_id: "AKIAOLD".into(),
            age_days: 90,
            delete_first: None,
            resume_with: None,
            forced: false
        }
    );
}

#[test]
fn a_young_key_needs_nothing_and_warning_days_warn() {
    assert_eq!(decide(&user(vec![key("K", Active, 10)])), Decision::None);
    assert_eq!(decide(&user(vec![key("K", Active, 81)])), Decision::None);
    for day in [80, 85, 89] {
        let d = decide(&user(vec![key("K", Active, day)]));
        assert!(
            matches!(d, Decision::Warn { age_days, .. } if age_days == day),
            "{day}: {d:?}"
        );
    }
}

#[test]
fn warning_names_the_rotation_date() {
    let state = user(vec![key("K", Active, 80)]);
    let Decision::Warn { rotate_on, .. } = decide(&state) else {
        panic!("expected a warning")
    };
    assert_eq!(
        rotate_on,
        (state.keys[0].created + Duration::days(90)).date_naive()
    );
}

#[test]
fn rotation_is_skipped_when_user_is_exempt() {
    let mut state = user(vec![key("K", Active, 200)]);
    state
        .tags
        .insert("key-rotation:exempt".into(), "true".into());
    assert_eq!(decide(&state), Decision::Exempt);
    state
        .tags
        .insert("key-rotation:exempt".into(), "2026-12-31".into());
    assert_eq!(decide(&state), Decision::Exempt);
    state
        .tags
        .insert("key-rotation:exempt".into(), "2026-11-25".into());
    assert_eq!(
        decide(&state),
        Decision::Exempt,
        "exempt through the named day"
    );
    state
        .tags
        .insert("key-rotation:exempt".into(), "2026-11-24".into());
    assert!(
        matches!(decide(&state), Decision::Rotate { .. }),
        "expired exemption"
    );
    state
        .tags
        .insert("key-rotation:exempt".into(), "false".into());
    assert!(matches!(decide(&state), Decision::Rotate { .. }));
}

#[test]
fn exemption_group_members_are_exempt() {
    let mut state = user(vec![key("K", Active, 200)]);
    state.in_exempt_group = true;
    assert_eq!(decide(&state), Decision::Exempt);
}

#[test]
fn an_unreadable_exemption_tag_blocks_rotation_but_not_warnings() {
    let mut state = user(vec![key("K", Active, 200)]);
    state
        .tags
        .insert("key-rotation:exempt".into(), "until further notice".into());
    let p = plan(&state, &policy(), now(), false);
    assert!(matches!(p.decision, Decision::Blocked { .. }));
    assert!(p.reason.contains("exemption tag"));
    state.keys = vec![key("K", Active, 85)];
    assert!(matches!(decide(&state), Decision::Warn { .. }));
}

#[test]
fn force_overrides_age_and_exemption() {
    let mut state = user(vec![key("K", Active, 3)]);
    state
        .tags
        .insert("key-rotation:exempt".into(), "true".into());
    let d = plan(&state, &policy(), now(), true).decision;
    assert!(matches!(d, Decision::Rotate { forced: true, .. }), "{d:?}");
}

#[test]
fn nobody_without_an_active_key_gets_one() {
    assert_eq!(decide(&user(vec![])), Decision::None);
    assert_eq!(decide(&user(vec![key("K", Inactive, 300)])), Decision::None);
    assert_eq!(
        plan(&user(vec![key("K", Inactive, 300)]), &policy(), now(), true).decision,
        Decision::None
    );
}

#[test]
fn an_inactive_leftover_is_deleted_first() {
    let d = decide(&user(vec![
        key("OLD", Active, 95),
        key("LEFT", Inactive, 400),
    ]));
    assert!(
        matches!(d, Decision::Rotate { delete_first: Some(ref k), .. } if k == "LEFT"),
        "{d:?}"
    );
}

#[test]
fn the_old_key_of_a_rotation_in_its_delay_is_left_alone() {
    let mut state = user(vec![key("NEW", Active, 95), key("PREV", Inactive, 200)]);
    state.secret.deactivated = Some(Deactivation {
        key_id: "PREV".into(),
        at: now() - Duration::days(2),
    });
    assert_eq!(decide(&state), Decision::None);
    assert!(matches!(
        plan(&state, &policy(), now(), true).decision,
        Decision::Blocked { .. }
    ));
    // Once the delay is over it is an ordinary leftover.
    state.secret.deactivated = Some(Deactivation {
        key_id: "PREV".into(),
        at: now() - Duration::days(8),
    });
    assert!(matches!(
        decide(&state),
        Decision::Rotate {
            delete_first: Some(_),
            ..
        }
    ));
}

#[test]
fn two_active_keys_block_rotation() {
    let d = decide(&user(vec![key("A", Active, 120), key("B", Active, 30)]));
    assert_eq!(
        d,
        Decision::Blocked {
            key_id: Some("A".into())
        }
    );
    let d = decide(&user(vec![key("A", Active, 85), key("B", Active, 30)]));
    assert!(matches!(d, Decision::Warn { ref key_id, .. } if key_id == "A"));
    assert_eq!(
        decide(&user(vec![key("A", Active, 40), key("B", Active, 30)])),
        Decision::None
    );
}

#[test]
fn an_interrupted_rotation_resumes_with_the_stored_key() {
    let mut state = user(vec![
        key("OLD", Active, 95),
        AccessKey {
            id: "NEW".into(),
            status: Active,
            created: now() - Duration::minutes(3),
        },
    ]);
    state.secret = SecretState {
        current_key_id: Some("NEW".into()),
        deactivated: None,
        deactivating: None,
        overlap: None,
    };
    let d = decide(&state);
    assert!(
        matches!(d, Decision::Rotate { ref old_key_id, resume_with: Some(ref n), .. } if old_key_id == "OLD" && n == "NEW"),
        "{d:?}"
    );
    // A day later the pair means a deliberate rollback: blocked, not re-deactivated.
    state.keys[1].created = now() - Duration::days(2);
    assert!(matches!(decide(&state), Decision::Blocked { .. }));
}

#[test]
fn a_rotation_that_stopped_after_deactivation_is_finished() {
    let mut state = user(vec![key("NEW", Active, 2), key("OLD", Inactive, 100)]);
    state.secret = SecretState {
        current_key_id: Some("NEW".into()),
        deactivated: Some(Deactivation {
            key_id: "OLD".into(),
            at: now() - Duration::days(2),
        }),
        deactivating: None,
        overlap: None,
    };
    let d = decide(&state);
    let Decision::Finish {
        old_key_id,
        new_key_id,
        delete_after,
    } = &d
    else {
        panic!("expected finish, got {d:?}")
    };
    assert_eq!((old_key_id.as_str(), new_key_id.as_str()), ("OLD", "NEW"));
    assert_eq!(
        *delete_after,
        Some(now() - Duration::days(2) + Duration::days(7))
    );
    assert!(!d.needs_action(now()), "the waiting execution deletes it");
    assert!(
        d.needs_action(now() + Duration::days(6)),
        "a stuck rotation is picked up"
    );
}

#[test]
fn a_rotation_that_stopped_between_deactivating_and_recording_is_finished() {
    let mut state = user(vec![key("NEW", Active, 0), key("OLD", Inactive, 100)]);
    state.secret = SecretState {
        current_key_id: Some("NEW".into()),
        deactivated: None,
        deactivating: Some("OLD".into()),
        overlap: None,
    };
    let d = decide(&state);
    assert!(
        matches!(d, Decision::Finish { ref old_key_id, delete_after: None, .. } if old_key_id == "OLD"),
        "{d:?}"
    );
    assert!(
        d.needs_action(now()),
        "the resumed run records the time and waits the whole delay"
    );
    // Without the mark, an inactive key next to ours is not taken for keyrotor's.
    state.secret.deactivating = None;
    assert_eq!(decide(&state), Decision::None);
}

#[test]
fn an_owners_rollback_within_the_resume_window_is_not_undone() {
    // keyrotor deactivated OLD (and recorded it); the owner reactivated it an hour later.
    let mut state = user(vec![
        key("OLD", Active, 95),
        AccessKey {
            id: "NEW".into(),
            status: Active,
            created: now() - Duration::hours(2),
        },
    ]);
    state.secret = SecretState {
        current_key_id: Some("NEW".into()),
        deactivated: Some(Deactivation {
            key_id: "OLD".into(),
            at: now() - Duration::hours(1),
        }),
        deactivating: Some("OLD".into()),
        overlap: None,
    };
    let p = plan(&state, &policy(), now(), false);
    assert_eq!(
        p.decision,
        Decision::Blocked {
            key_id: Some("OLD".into())
        }
    );
    assert!(p.reason.contains("reactivated"), "{}", p.reason);
    // A forced rotation (a responder) may override the owner.
    let forced = plan(&state, &policy(), now(), true).decision;
    assert!(
        matches!(forced, Decision::Rotate { resume_with: Some(ref n), .. } if n == "NEW"),
        "{forced:?}"
    );
    // A record written a moment ago next to an active key is a racing read (IAM not caught
    // up yet, or another run between its writes), not a rollback: the rotation resumes.
    if let Some(d) = state.secret.deactivated.as_mut() {
        d.at = now() - Duration::seconds(1);
    }
    let racing = decide(&state);
    assert!(
        matches!(racing, Decision::Rotate { resume_with: Some(ref n), .. } if n == "NEW"),
        "{racing:?}"
    );
}

#[test]
fn a_full_rollback_to_the_old_key_is_not_rotated_again() {
    // The owner reactivated OLD and deactivated keyrotor's NEW.
    let mut state = user(vec![key("OLD", Active, 96), key("NEW", Inactive, 3)]);
    state.secret = SecretState {
        current_key_id: Some("NEW".into()),
        deactivated: Some(Deactivation {
            key_id: "OLD".into(),
            at: now() - Duration::days(3),
        }),
        deactivating: Some("OLD".into()),
        overlap: None,
    };
    assert_eq!(
        decide(&state),
        Decision::Blocked {
            key_id: Some("OLD".into())
        }
    );
    let forced = plan(&state, &policy(), now(), true).decision;
    assert!(matches!(forced, Decision::Rotate { .. }), "{forced:?}");
}

#[test]
fn a_secret_keyrotor_cannot_trust_blocks_rotations_but_not_warnings() {
    let mut state = user(vec![key("K", Active, 95)]);
    state.secret_problem = Some("the secret k/AIDA is not tagged keyrotor:user-id=AIDA".into());
    for force in [false, true] {
        let p = plan(&state, &policy(), now(), force);
        assert_eq!(
            p.decision,
            Decision::Blocked {
                key_id: Some("K".into())
            }
        );
        assert!(p.reason.contains("not tagged"), "{}", p.reason);
    }
    state.keys = vec![key("K", Active, 85)];
    assert!(matches!(decide(&state), Decision::Warn { .. }));
}

#[test]
fn an_exemption_too_far_ahead_is_reported_and_not_honoured() {
    let mut state = user(vec![key("K", Active, 95)]);
    state
        .tags
        .insert("key-rotation:exempt".into(), "9999-12-31".into());
    let p = plan(&state, &policy(), now(), false);
    assert!(matches!(p.decision, Decision::Rotate { .. }), "{p:?}");
    assert!(p.reason.contains("not honoured"), "{}", p.reason);
    // 365 days ahead is the limit and still holds.
    state.tags.insert(
        "key-rotation:exempt".into(),
        (now() + Duration::days(365)).date_naive().to_string(),
    );
    assert_eq!(decide(&state), Decision::Exempt);
}

#[test]
fn reasons_never_quote_the_exemption_tag() {
    let mut state = user(vec![key("K", Active, 200)]);
    let planted = "<a href=//evil.example>click</a>";
    state
        .tags
        .insert("key-rotation:exempt".into(), planted.into());
    let p = plan(&state, &policy(), now(), false);
    assert!(matches!(p.decision, Decision::Blocked { .. }));
    assert!(!p.reason.contains("evil"), "{}", p.reason);
}

// ---------------------------------------------------------------- properties

fn arb_key(index: usize) -> impl Strategy<Value = AccessKey> {
    (any::<bool>(), 0i64..400, 0i64..86_400).prop_map(move |(active, days, secs)| AccessKey {
        id: format!("AKIAKEY{index}"),
        status: if active { Active } else { Inactive },
        created: now() - Duration::days(days) - Duration::seconds(secs),
    })
}

fn arb_state() -> impl Strategy<Value = UserState> {
    let keys = (0usize..=3).prop_flat_map(|n| (0..n).map(arb_key).collect::<Vec<_>>());
    let tag = prop_oneof![
        Just(None),
        Just(Some("true".to_owned())),
        Just(Some("2027-01-01".to_owned())),
        Just(Some("2020-01-01".to_owned())),
        Just(Some("garbage".to_owned())),
    ];
    let window = (0usize..5, 0i64..400, 0i64..20);
    let used = (0usize..5, proptest::option::of(0i64..200));
    (
        keys,
        tag,
        any::<bool>(),
        0usize..5,
        0usize..5,
        0i64..20,
        window,
        used,
    )
        .prop_map(
            |(
                keys,
                tag,
                group,
                current,
                deactivated,
                deactivated_days,
                (opened, since_hours, len_days),
                (used_key, used_days),
            )| {
                let pick = |i: usize| keys.get(i).map(|k| k.id.clone());
                let last_use = pick(used_key)
                    .map(|id| {
                        let used = used_days.map(|d| now() - Duration::days(d));
                        (id, LastUse::from_date(used))
                    })
                    .into_iter()
                    .collect();
                let mut tags = BTreeMap::new();
                if let Some(v) = tag {
                    tags.insert("key-rotation:exempt".to_owned(), v);
                }
                UserState {
                    user: "alice".into(),
                    secret: SecretState {
                        current_key_id: pick(current),
                        deactivating: pick(deactivated),
                        deactivated: pick(deactivated).map(|key_id| Deactivation {
                            key_id,
                            at: now() - Duration::days(deactivated_days),
                        }),
                        overlap: pick(opened).map(|key_id| Overlap {
                            key_id,
                            since: now() - Duration::hours(since_hours),
                            until: now() - Duration::hours(since_hours) + Duration::days(len_days),
                            extended: len_days > 7,
                        }),
                    },
                    keys,
                    tags,
                    in_exempt_group: group,
                    secret_problem: None,
                    last_use,
                }
            },
        )
}

// ---------------------------------------------------------------- one named key (a leak)

fn confirmed() -> Confirmation {
    Confirmation::Confirmed {
        reported_at: now(),
        found_at: None,
    }
}

/// Issue 26, M9: a report's shape proves nothing, so what AWS says of it decides.
#[test]
fn a_report_is_acted_on_as_aws_confirms_it() {
    let decide_reported = |state: &UserState, confirmation: &Confirmation| {
        plan_reported_key(state, &policy(), now(), "AKIALEAK", confirmation)
    };
    let unconfirmed = Confirmation::Unconfirmed("no Health API".into());
    let refuted = Confirmation::Refuted("AWS Health has no such event".into());
    let plain = user(vec![key("AKIALEAK", Active, 10)]);
    let mut exempt = plain.clone();
    exempt
        .tags
        .insert("key-rotation:exempt".into(), "true".into());
    let mut in_group = plain.clone();
    in_group.in_exempt_group = true;
    let rotates = |p: &Plan| matches!(&p.decision, Decision::Rotate { old_key_id, .. } if old_key_id == "AKIALEAK");
    let blocked =
        |p: &Plan| matches!(&p.decision, Decision::Blocked { key_id: Some(k) } if k == "AKIALEAK");

    // Confirmed: the leaked key goes, exempt or not.
    for state in [&plain, &exempt, &in_group] {
        assert!(rotates(&decide_reported(state, &confirmed())));
    }
    // Unconfirmed: as for any user a rotation may touch, but an exempt (break-glass) user's
    // key is left for a person, and the reason says why.
    let p = decide_reported(&plain, &unconfirmed);
    assert!(rotates(&p), "{p:?}");
    assert!(p.reason.contains("could not be confirmed"), "{}", p.reason);
    for state in [&exempt, &in_group] {
        let p = decide_reported(state, &unconfirmed);
        assert!(blocked(&p), "{p:?}");
        assert!(p.reason.contains("a person decides"), "{}", p.reason);
    }
    // Denied by AWS: nothing changes for anyone.
    for state in [&plain, &exempt, &in_group] {
        let p = decide_reported(state, &refuted);
        assert!(blocked(&p), "{p:?}");
        assert!(p.reason.contains("not AWS's"), "{}", p.reason);
    }
    // A key already out of use needs nothing, whoever reported it.
    let mut gone = plain.clone();
    gone.keys[0].status = Inactive;
    for confirmation in [confirmed(), unconfirmed, refuted] {
        assert_eq!(
            decide_reported(&gone, &confirmation).decision,
            Decision::None
        );
    }
}

fn decide_key(state: &UserState, key_id: &str) -> Plan {
    plan_key(state, &policy(), now(), key_id)
}

#[test]
fn an_exposed_key_is_rotated_whatever_its_age_or_exemption() {
    let mut state = user(vec![key("AKIALEAK", Active, 10)]);
    state
        .tags
        .insert("key-rotation:exempt".into(), "true".into());
    state.in_exempt_group = true;
    let p = decide_key(&state, "AKIALEAK");
    assert!(
        matches!(p.decision, Decision::Rotate { ref old_key_id, forced: true, .. } if old_key_id == "AKIALEAK"),
        "{p:?}"
    );
    // On a warning day, and next to an inactive leftover key (deleted first to make room).
    let state = user(vec![
        key("AKIALEAK", Active, 80),
        key("AKIALEFT", Inactive, 300),
    ]);
    let p = decide_key(&state, "AKIALEAK");
    assert!(
        matches!(p.decision, Decision::Rotate { ref delete_first, .. } if delete_first.as_deref() == Some("AKIALEFT")),
        "{p:?}"
    );
}

#[test]
fn a_second_report_of_a_replaced_key_rotates_nothing() {
    // The first report's rotation deactivated the key and waits to delete it.
    let mut state = user(vec![
        key("AKIANEW", Active, 0),
        key("AKIALEAK", Inactive, 10),
    ]);
    state.secret = SecretState {
        current_key_id: Some("AKIANEW".into()),
        deactivated: Some(Deactivation {
            key_id: "AKIALEAK".into(),
            at: now() - Duration::hours(1),
        }),
        deactivating: None,
        overlap: None,
    };
    let p = decide_key(&state, "AKIALEAK");
    assert_eq!(p.decision, Decision::None, "{p:?}");
    assert!(p.reason.contains("keyrotor deactivated it"), "{p:?}");
    // ... and once it was deleted.
    state.keys.truncate(1);
    assert_eq!(decide_key(&state, "AKIALEAK").decision, Decision::None);
    // A forced plan for the user, without the key, would rotate the replacement.
    assert_eq!(
        plan(&state, &policy(), now(), true).decision.name(),
        "rotate"
    );
}

/// M2 of the second review: a reported leak always ends with the exposed key Inactive, also
/// where no replacement fits (these three were left Active, reported only).
#[test]
fn an_exposed_key_that_cannot_be_replaced_now_is_contained() {
    // The user's other key is the old key of a rotation still inside its delay: a third
    // key does not fit, and that key is not deleted early.
    let mut state = user(vec![
        key("AKIALEAK", Active, 1),
        key("AKIAOLD", Inactive, 95),
    ]);
    state.secret = SecretState {
        current_key_id: Some("AKIALEAK".into()),
        deactivated: Some(Deactivation {
            key_id: "AKIAOLD".into(),
            at: now() - Duration::days(1),
        }),
        deactivating: None,
        overlap: None,
    };
    let contained = Decision::Contain {
        key_id: "AKIALEAK".into(),
    };
    let p = decide_key(&state, "AKIALEAK");
    assert_eq!(p.decision, contained, "{p:?}");
    assert!(
        p.reason.starts_with("AKIALEAK cannot be replaced now"),
        "{p:?}"
    );
    // Two active keys: no third key fits, and the other key is not keyrotor's to touch;
    // the leaked one is deactivated all the same.
    let two = user(vec![
        key("AKIALEAK", Active, 10),
        key("AKIAOTHER", Active, 5),
    ]);
    assert_eq!(decide_key(&two, "AKIALEAK").decision, contained);
    // A secret keyrotor cannot trust: nothing is written there, the key still goes.
    let mut squatted = user(vec![key("AKIALEAK", Active, 10)]);
    squatted.secret_problem = Some("someone else's secret".into());
    assert_eq!(decide_key(&squatted, "AKIALEAK").decision, contained);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(5_000))]

    #[test]
    fn plans_never_endanger_a_key(state in arb_state(), force in any::<bool>()) {
        let p = plan(&state, &policy(), now(), force);
        prop_assert_eq!(&p, &plan(&state, &policy(), now(), force), "deterministic");
        if let Decision::Rotate { old_key_id, delete_first, resume_with, .. } = &p.decision {
            let old = state.key(old_key_id);
            prop_assert!(old.is_some_and(|k| k.is_active()), "only an active key is replaced");
            if let Some(leftover) = delete_first {
                let k = state.key(leftover);
                prop_assert!(k.is_some_and(|k| !k.is_active()), "never delete an active key");
                prop_assert_ne!(leftover, old_key_id);
            }
            match resume_with {
                Some(new) => {
                    prop_assert!(state.key(new).is_some_and(|k| k.is_active()));
                    prop_assert_eq!(state.secret.current_key_id.as_ref(), Some(new), "resume only with a stored key");
                }
                None => {
                    let remaining = state.keys.len() - usize::from(delete_first.is_some());
                    prop_assert!(remaining < 2, "never plan a third key");
                    // The replacement is created before the old key is touched, so the
                    // user keeps a working key.
                }
            }
        }
        if let Decision::Finish { old_key_id, new_key_id, .. } = &p.decision {
            prop_assert!(state.key(old_key_id).is_some_and(|k| !k.is_active()), "only an inactive key is deleted");
            prop_assert!(state.key(new_key_id).is_some_and(|k| k.is_active()), "its replacement works");
            prop_assert_eq!(state.secret.current_key_id.as_ref(), Some(new_key_id));
            prop_assert_eq!(state.secret.deactivated.as_ref().map(|d| &d.key_id), Some(old_key_id));
        }
        if let Decision::Cutover { old_key_id, new_key_id, until } = &p.decision {
            prop_assert!(!force, "a forced rotation never waits in a window");
            prop_assert!(state.key(old_key_id).is_some_and(|k| k.is_active()));
            prop_assert!(state.key(new_key_id).is_some_and(|k| k.is_active()), "the new key works");
            prop_assert_eq!(state.secret.current_key_id.as_ref(), Some(new_key_id), "and is stored");
            prop_assert_eq!(state.secret.overlap.as_ref().map(|w| w.until), Some(*until));
            prop_assert_eq!(p.decision.needs_action(now()), *until + RESUME_WINDOW <= now());
            let old = state.key(old_key_id).expect("the old key");
            prop_assert_eq!(
                p.decision.counts_as_non_compliant(old, &policy(), now()),
                now() >= *until && old.is_past_rotation_age(&policy(), now()),
                "an old key in its window is not counted until the window's end"
            );
        }
        if let Decision::Retire { key_id, .. } = &p.decision {
            let key = state.key(key_id).expect("a key of the user");
            if key.is_active() {
                prop_assert!(!force, "a forced rotation replaces the key");
                prop_assert_eq!(state.active_keys().count(), 1, "the user's only active key");
            } else {
                let ours = state.secret.deactivation_of(key_id).is_some()
                    || state.secret.deactivating.as_ref() == Some(key_id);
                prop_assert!(ours, "only a key keyrotor retired is deleted");
                prop_assert_eq!(state.active_keys().count(), 0);
            }
        }
        if p.decision == Decision::None || p.decision == Decision::Exempt {
            prop_assert!(!p.decision.needs_action(now()));
        }
    }

    #[test]
    fn exempt_users_are_never_rotated_unless_forced(state in arb_state()) {
        let exempt = state.in_exempt_group
            || matches!(state.tags.get("key-rotation:exempt").map(String::as_str), Some("true" | "2027-01-01"));
        let p = plan(&state, &policy(), now(), false);
        if exempt {
            prop_assert_eq!(p.decision, Decision::Exempt);
        }
    }

    #[test]
    fn a_plan_that_needs_no_records_follows_from_ages_tags_and_group(
        state in arb_state(),
        key in proptest::option::of(arb_key(0)),
        force in any::<bool>(),
    ) {
        let mut state = state;
        state.keys = key.into_iter().filter(AccessKey::is_active).collect();
        prop_assert!(!depends_on_records(&state.keys));
        // What the scan knows from the credential report: no secret, no key IDs.
        let mut summary = state.clone();
        summary.secret = SecretState::default();
        for key in &mut summary.keys {
            if let Some(used) = summary.last_use.remove(&key.id) {
                summary.last_use.insert("from-the-credential-report".into(), used);
            }
            key.id = "from-the-credential-report".into();
        }
        let live = plan(&state, &policy(), now(), force);
        let known = plan(&summary, &policy(), now(), force);
        // The records can only hold a rotation back (an owner's rollback): the scan then
        // starts an execution that reads them and reports the user blocked.
        let held_back = matches!(live.decision, Decision::Blocked { .. })
            && matches!(known.decision, Decision::Rotate { .. } | Decision::Retire { .. });
        prop_assert!(held_back || live.decision.name() == known.decision.name(), "{:?} vs {:?}", live, known);
        prop_assert_eq!(live.decision.needs_action(now()), known.decision.needs_action(now()));
    }

    #[test]
    fn a_user_the_scan_passes_over_needs_nothing(state in arb_state()) {
        let ages: Vec<ReportKey> = state.keys.iter().map(ReportKey::from).collect();
        if !keys_may_need_action(&ages, &policy(), now()) {
            let p = plan(&state, &policy(), now(), false);
            prop_assert!(!p.decision.needs_action(now()), "{:?} for {:?}", p, state);
        }
    }

    #[test]
    fn an_overdue_single_key_is_always_acted_on(days in 90i64..2000, leftover in any::<bool>()) {
        let mut keys = vec![key("AKIAOLD", Active, days)];
        if leftover {
            keys.push(key("AKIALEFT", Inactive, days + 10));
        }
        let d = decide(&user(keys));
        prop_assert!(matches!(d, Decision::Rotate { .. }), "{:?}", d);
    }

    #[test]
    fn a_plan_for_a_named_key_acts_on_that_key_or_changes_nothing(state in arb_state(), pick in 0usize..4) {
        let key_id = state.keys.get(pick).map_or_else(|| "AKIAGONE".to_owned(), |k| k.id.clone());
        let p = plan_key(&state, &policy(), now(), &key_id);
        let active = state.key(&key_id).is_some_and(AccessKey::is_active);
        match &p.decision {
            Decision::Rotate { old_key_id, .. } => prop_assert!(active && *old_key_id == key_id, "{:?}", p),
            Decision::Contain { key_id: k } => prop_assert!(active && *k == key_id, "{:?}", p),
            Decision::None => prop_assert!(!active, "{:?}", p),
            other => prop_assert!(false, "{:?} for {:?}", other, state),
        }
    }
}

#[test]
fn a_fresh_record_of_an_active_key_is_unsettled_until_it_can_tell_a_rollback() {
    let mut state = user(vec![key("AKIAOLD", Active, 95), key("AKIANEW", Active, 0)]);
    state.secret = SecretState {
        current_key_id: Some("AKIANEW".into()),
        deactivated: Some(Deactivation {
            key_id: "AKIAOLD".into(),
            at: now() - Duration::seconds(1),
        }),
        ..SecretState::default()
    };
    assert_eq!(
        unsettled_deactivation(&state, "AKIAOLD", now()),
        Some(RECORD_SETTLE - Duration::seconds(1))
    );
    assert_eq!(unsettled_deactivation(&state, "AKIANEW", now()), None);
    // Settled: the planner calls it a rollback, nothing to wait for.
    let later = now() + RECORD_SETTLE;
    assert_eq!(unsettled_deactivation(&state, "AKIAOLD", later), None);
    assert!(matches!(
        plan(&state, &policy(), later, false).decision,
        Decision::Blocked { .. }
    ));
    // Inactive as recorded: nothing to wait for either.
    state.keys[0].status = Inactive;
    assert_eq!(unsettled_deactivation(&state, "AKIAOLD", now()), None);
}
