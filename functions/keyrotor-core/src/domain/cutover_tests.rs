use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use proptest::prelude::*;

use super::*;
use crate::domain::{plan, AccessKey, KeyStatus, SecretState};

fn now() -> DateTime<Utc> {
    crate::domain::test_now()
}

fn policy() -> Policy {
    crate::domain::test_policy()
}

/// A window opened `opened_hours_ago` hours ago, of the policy's length.
fn window(opened_hours_ago: i64) -> Overlap {
    let since = now() - Duration::hours(opened_hours_ago);
    Overlap {
        key_id: "AKIAOLD".into(),
        since,
        until: since + Duration::days(7),
        extended: false,
    }
}

fn hours_ago(h: i64) -> Option<DateTime<Utc>> {
    Some(now() - Duration::hours(h))
}

fn usage(old: Option<DateTime<Utc>>, new: Option<DateTime<Utc>>) -> Usage {
    Usage {
        old_key_last_used: old,
        new_key_last_used: new,
    }
}

fn step(w: Option<&Overlap>, force: bool, u: Usage, request: &OwnerRequest) -> Step {
    cutover_step(&policy(), "AKIAOLD", w, force, u, request, now())
}

fn why(s: &Step) -> Option<Why> {
    match s {
        Step::Deactivate { why, .. } => Some(*why),
        _ => None,
    }
}

#[test]
fn the_first_look_opens_a_window_of_the_configured_length() {
    let s = step(None, false, Usage::default(), &OwnerRequest::None);
    let Step::Open { window, next_check } = s else {
        panic!("expected a window, got {s:?}")
    };
    assert_eq!(window.key_id, "AKIAOLD");
    assert_eq!(window.since, now());
    assert_eq!(window.until, now() + Duration::days(7));
    assert!(!window.extended);
    assert_eq!(next_check, now() + Duration::hours(6), "the poll interval");
}

#[test]
fn without_a_window_or_when_forced_the_old_key_goes_at_once() {
    let none = Policy {
        overlap_secs: 0,
        ..policy()
    };
    let s = cutover_step(
        &none,
        "AKIAOLD",
        None,
        false,
        Usage::default(),
        &OwnerRequest::None,
        now(),
    );
    assert_eq!(why(&s), Some(Why::Immediate), "{s:?}");
    // A leak response gets no window, whether one is open or not, and whatever the owner
    // asked for.
    for w in [None, Some(window(1))] {
        let s = step(
            w.as_ref(),
            true,
            usage(hours_ago(0), None),
            &OwnerRequest::Extend(MAX_EXTENSION),
        );
        assert_eq!(why(&s), Some(Why::Forced), "{s:?}");
    }
}

/// The decision table of an open window (opened 72 hours ago, settle 48 hours).
#[test]
fn an_open_window_ends_early_only_when_the_old_key_is_idle() {
    let w = window(72);
    let cases: &[(&str, Usage, Option<Why>)] = &[
        ("nothing used yet", usage(None, None), None),
        (
            "old key still in use, new key unused",
            usage(hours_ago(1), None),
            None,
        ),
        (
            "new key used only by keyrotor's check, before the window",
            usage(hours_ago(80), hours_ago(73)),
            None,
        ),
        (
            "both in use: the old key's latest use is after the new key's",
            usage(hours_ago(1), hours_ago(2)),
            None,
        ),
        (
            "switched, but the old key was used within the settle margin",
            usage(hours_ago(47), hours_ago(1)),
            None,
        ),
        (
            "switched, the old key silent for the settle margin",
            usage(hours_ago(49), hours_ago(1)),
            Some(Why::Idle),
        ),
        (
            "new key used, old key never used",
            usage(None, hours_ago(10)),
            Some(Why::Idle),
        ),
    ];
    for (case, u, expected) in cases {
        let s = step(Some(&w), false, *u, &OwnerRequest::None);
        assert_eq!(why(&s), *expected, "{case}: {s:?}");
        if let Step::Wait { next_check, note } = &s {
            assert_eq!(*next_check, now() + Duration::hours(6), "{case}");
            assert!(!note.is_empty(), "{case}: the wait says why");
        }
    }
}

#[test]
fn the_window_ends_at_its_cap_whatever_the_use() {
    let mut w = window(24 * 7);
    assert_eq!(w.until, now());
    let s = step(
        Some(&w),
        false,
        usage(hours_ago(0), None),
        &OwnerRequest::None,
    );
    assert_eq!(why(&s), Some(Why::Cap), "{s:?}");
    // The last look before the cap is at the cap, not a poll interval after it.
    w.until = now() + Duration::hours(2);
    let s = step(
        Some(&w),
        false,
        usage(hours_ago(0), None),
        &OwnerRequest::None,
    );
    assert_eq!(
        s,
        Step::Wait {
            next_check: w.until,
            note: "the new key has not been used since the window opened".into()
        }
    );
}

#[test]
fn the_owner_ends_the_window_or_extends_it_once() {
    let w = window(24);
    let s = step(
        Some(&w),
        false,
        usage(hours_ago(0), None),
        &OwnerRequest::Cutover,
    );
    assert_eq!(why(&s), Some(Why::Owner), "{s:?}");

    let more = OwnerRequest::Extend(Duration::days(3));
    let Step::Extend {
        window: extended, ..
    } = step(Some(&w), false, Usage::default(), &more)
    else {
        panic!("expected an extension")
    };
    assert_eq!(extended.until, w.until + Duration::days(3));
    assert!(extended.extended);
    // Asked again: refused and said so; the window stays as extended.
    let s = step(Some(&extended), false, Usage::default(), &more);
    let Step::Wait { note, .. } = &s else {
        panic!("expected a wait, got {s:?}")
    };
    assert!(note.contains("already extended once"), "{note}");
    // An extended window does not end on silence, only at its end or by the owner.
    let idle = usage(hours_ago(60), hours_ago(1));
    assert_eq!(
        why(&step(Some(&w), false, idle, &OwnerRequest::None)),
        Some(Why::Idle)
    );
    assert_eq!(
        why(&step(Some(&extended), false, idle, &OwnerRequest::None)),
        None
    );
    let over = Overlap {
        until: now(),
        ..extended
    };
    assert_eq!(why(&step(Some(&over), false, idle, &more)), Some(Why::Cap));
}

#[test]
fn owner_requests_name_the_new_key() {
    let tags = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    let new = "AKIANEW";
    assert_eq!(owner_request(&tags(&[]), new), OwnerRequest::None);
    assert_eq!(
        owner_request(&tags(&[("keyrotor:cutover", " AKIANEW ")]), new),
        OwnerRequest::Cutover
    );
    // A tag left from an earlier rotation names another key: it does nothing.
    assert_eq!(
        owner_request(&tags(&[("keyrotor:cutover", "AKIAEARLIER")]), new),
        OwnerRequest::None
    );
    assert_eq!(
        owner_request(&tags(&[("keyrotor:extend", "AKIANEW")]), new),
        OwnerRequest::Extend(MAX_EXTENSION)
    );
    assert_eq!(
        owner_request(&tags(&[("keyrotor:extend", "AKIANEW:2")]), new),
        OwnerRequest::Extend(Duration::days(2))
    );
    for bad in ["AKIANEW:0", "AKIANEW:8", "AKIANEW:forever"] {
        assert!(
            matches!(
                owner_request(&tags(&[("keyrotor:extend", bad)]), new),
                OwnerRequest::Unreadable(_)
            ),
            "{bad}"
        );
    }
}

fn key(id: &str, status: KeyStatus, age_days: i64) -> AccessKey {
    AccessKey {
        id: id.into(),
        status,
        created: now() - Duration::days(age_days) - Duration::minutes(5),
    }
}

/// alice mid-rotation: the old key 95 days old, the new one stored minutes ago.
fn rotating(old: KeyStatus) -> UserState {
    UserState {
        user: "alice".into(),
        keys: vec![
            key("AKIAOLD", old, 95),
            AccessKey {
                id: "AKIANEW".into(),
                status: KeyStatus::Active,
                created: now() - Duration::minutes(3),
            },
        ],
        secret: SecretState {
            current_key_id: Some("AKIANEW".into()),
            ..SecretState::default()
        },
        ..UserState::default()
    }
}

#[test]
fn deactivation_needs_the_new_key_in_place_and_this_rotation_planned() {
    let state = rotating(KeyStatus::Active);
    let p = plan(&state, &policy(), now(), false);
    assert_eq!(
        deactivate_step(&state, &p, "AKIAOLD", "AKIANEW"),
        DeactivateStep::Proceed
    );
    // In its window, the plan is the cutover of the same pair.
    let mut open = state.clone();
    open.secret.overlap = Some(Overlap {
        since: now() - Duration::minutes(1),
        ..window(0)
    });
    let p = plan(&open, &policy(), now(), false);
    assert_eq!(p.decision.name(), "cutover", "{p:?}");
    assert_eq!(
        deactivate_step(&open, &p, "AKIAOLD", "AKIANEW"),
        DeactivateStep::Proceed
    );

    let refused = |state: &UserState, new: &str| {
        let p = plan(state, &policy(), now(), false);
        matches!(
            deactivate_step(state, &p, "AKIAOLD", new),
            DeactivateStep::Refuse(_)
        )
    };
    let mut inactive_new = state.clone();
    inactive_new.keys[1].status = KeyStatus::Inactive;
    assert!(refused(&inactive_new, "AKIANEW"), "the new key is inactive");
    let mut not_stored = state.clone();
    not_stored.secret.current_key_id = None;
    assert!(refused(&not_stored, "AKIANEW"), "the new key is not stored");
    let p = plan(&state, &policy(), now(), false);
    assert!(
        matches!(
            deactivate_step(&state, &p, "AKIAOLD", "AKIAOTHER"),
            DeactivateStep::NotTheUsers(_)
        ),
        "not a key of the user: a bad request"
    );
    let mut exempt = state.clone();
    exempt.in_exempt_group = true;
    assert!(refused(&exempt, "AKIANEW"), "exempt meanwhile");

    let done = rotating(KeyStatus::Inactive);
    let p = plan(&done, &policy(), now(), false);
    assert_eq!(
        deactivate_step(&done, &p, "AKIAOLD", "AKIANEW"),
        DeactivateStep::AlreadyInactive
    );
}

#[test]
fn a_window_is_planned_as_a_cutover_and_an_owners_rollback_in_it_stands() {
    let mut state = rotating(KeyStatus::Active);
    state.keys[1].created = now() - Duration::days(3);
    state.secret.overlap = Some(window(72));
    let p = plan(&state, &policy(), now(), false);
    assert_eq!(
        p.decision,
        Decision::Cutover {
            old_key_id: "AKIAOLD".into(),
            new_key_id: "AKIANEW".into(),
            until: window(72).until,
        },
        "three days into the window, past the resume window: still this rotation"
    );
    assert!(
        !p.decision.needs_action(now()),
        "the waiting execution owns it"
    );
    // Forced (a leak of the old key): deactivate now.
    let forced = plan(&state, &policy(), now(), true);
    assert!(
        matches!(forced.decision, Decision::Rotate { resume_with: Some(ref n), .. } if n == "AKIANEW"),
        "{forced:?}"
    );
    // The owner deactivated or deleted the new key during the window: no new rotation.
    let mut deactivated = state.clone();
    deactivated.keys[1].status = KeyStatus::Inactive;
    let mut deleted = state.clone();
    deleted.keys.truncate(1);
    for rolled_back in [deactivated, deleted] {
        let p = plan(&rolled_back, &policy(), now(), false);
        assert!(
            matches!(p.decision, Decision::Blocked { key_id: Some(ref k) } if k == "AKIAOLD"),
            "{p:?}"
        );
        assert!(p.reason.contains("rollback"), "{p:?}");
        assert_eq!(
            plan(&rolled_back, &policy(), now(), true).decision.name(),
            "rotate",
            "a forced rotation goes on"
        );
    }
    // A window record older than the new key is an earlier replacement's.
    let mut stale = state.clone();
    stale.secret.overlap = Some(window(24 * 5));
    assert_eq!(
        plan(&stale, &policy(), now(), false).decision.name(),
        "blocked"
    );
}

fn arb_usage() -> impl Strategy<Value = Usage> {
    let time =
        proptest::option::of(0i64..(24 * 40)).prop_map(|h| h.map(|h| now() - Duration::hours(h)));
    (time.clone(), time).prop_map(|(old, new)| usage(old, new))
}

fn arb_window() -> impl Strategy<Value = Overlap> {
    (0i64..(24 * 40), 0i64..(24 * 37), any::<bool>()).prop_map(|(ago, len, extended)| {
        let since = now() - Duration::hours(ago);
        Overlap {
            key_id: "AKIAOLD".into(),
            since,
            until: since + Duration::hours(len),
            extended,
        }
    })
}

fn arb_request() -> impl Strategy<Value = OwnerRequest> {
    prop_oneof![
        Just(OwnerRequest::None),
        Just(OwnerRequest::Cutover),
        (1i64..=7).prop_map(|d| OwnerRequest::Extend(Duration::days(d))),
        Just(OwnerRequest::Unreadable("bad".into())),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(5_000))]

    #[test]
    fn a_key_in_use_is_never_deactivated_before_the_cap(
        w in arb_window(),
        u in arb_usage(),
        request in arb_request(),
    ) {
        let s = step(Some(&w), false, u, &request);
        if let Step::Deactivate { why, .. } = &s {
            let used_lately = u.old_key_last_used.is_some_and(|t| now() - t < Duration::days(2));
            let switched = u.new_key_last_used.is_some_and(|t| t > w.since);
            match why {
                Why::Cap => prop_assert!(now() >= w.until),
                Why::Owner => prop_assert_eq!(&request, &OwnerRequest::Cutover),
                Why::Idle => {
                    prop_assert!(now() < w.until && !w.extended);
                    prop_assert!(switched, "the new key was used in the window");
                    prop_assert!(!used_lately, "the old key was silent for the settle margin");
                    prop_assert!(u.old_key_last_used < u.new_key_last_used);
                }
                other => prop_assert!(false, "{:?} without force", other),
            }
        }
    }

    #[test]
    fn a_window_never_outlives_its_cap_plus_one_extension(
        w in arb_window(),
        u in arb_usage(),
        requests in proptest::collection::vec(arb_request(), 1..6),
    ) {
        let w = Overlap { extended: false, ..w };
        let cap = w.until;
        let mut current = w;
        for request in &requests {
            match step(Some(&current), false, u, request) {
                Step::Extend { window, next_check } => {
                    prop_assert!(!current.extended, "extended once only");
                    prop_assert!(window.until <= cap + MAX_EXTENSION);
                    prop_assert!(next_check <= window.until);
                    current = window;
                }
                Step::Wait { next_check, .. } => {
                    prop_assert!(next_check > now() && next_check <= current.until);
                }
                Step::Deactivate { .. } => break,
                Step::Open { .. } => prop_assert!(false, "a window exists"),
            }
        }
    }

    #[test]
    fn a_forced_rotation_never_waits(w in proptest::option::of(arb_window()), u in arb_usage(), request in arb_request()) {
        let s = step(w.as_ref(), true, u, &request);
        prop_assert_eq!(why(&s), Some(Why::Forced));
    }
}
