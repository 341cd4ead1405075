//! Bad input, generated: every function's event parsing and the configuration parser over
//! arbitrary and near-valid JSON and strings. No panic, typed errors only, and no AWS call
//! for rejected input: the environment's AWS endpoint is a closed port, so an input that got
//! as far as AWS fails `Transient`, and the test checks that such inputs really were valid.
//!
//! `make test` runs 10,000 cases per target; `make fuzz` sets KEYROTOR_FUZZ_CASES higher.

use std::collections::HashMap;
use std::future::Future;
use std::sync::LazyLock;

use keyrotor_aws::member::take_account;
use keyrotor_aws::testing::offline;
use keyrotor_core::config::{vars, Config};
use keyrotor_core::exposure::parse_event;
use keyrotor_core::payload::{
    self, AssessInput, CreateKeyInput, KeyPairInput, ListUsersInput, NotifyInput,
    ScanAccountsInput, StartRotationsInput,
};
use keyrotor_core::{ErrorType, Result};
use keyrotor_tests::events::{health_exposure, trusted_advisor_exposure};
use proptest::prelude::*;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"))
});

fn config() -> ProptestConfig {
    let cases = std::env::var("KEYROTOR_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Arbitrary JSON, biased towards the field names and shapes the functions read.
fn arb_json() -> impl Strategy<Value = Value> {
    let names = prop_oneof![
        Just("user".to_owned()),
        Just("users".to_owned()),
        Just("oldKeyId".to_owned()),
        Just("newKeyId".to_owned()),
        Just("dryRun".to_owned()),
        Just("force".to_owned()),
        Just("kind".to_owned()),
        Just("marker".to_owned()),
        Just("pageSize".to_owned()),
        Just("scan".to_owned()),
        Just("scanStartedAt".to_owned()),
        Just("error".to_owned()),
        Just("keyId".to_owned()),
        Just("ageDays".to_owned()),
        Just("rotateOn".to_owned()),
        Just("action".to_owned()),
        "[a-zA-Z]{1,8}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        prop_oneof![
            Just("alice".to_owned()),
            Just("AKIAIOSFODNN7EXAMPLE".to_owned()),
            Just("warning".to_owned()),
            Just("2026-11-25T00:00:00Z".to_owned()),
            Just("2026-11-25".to_owned()),
            Just("".to_owned()),
            "\\PC{0,70}",
        ]
        .prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((names.clone(), inner), 0..6)
                .prop_map(|fields| Value::Object(fields.into_iter().collect())),
        ]
    })
}

/// AWS's exposure reports with one field replaced by arbitrary JSON: near-valid events, where
/// a parser's mistakes hide.
fn arb_exposure_event() -> impl Strategy<Value = Value> {
    let at = chrono::Utc::now();
    let bases = vec![
        health_exposure(
            "AKIAIOSFODNN7EXAMPLE",
            at,
            "https://github.com/example/repo",
        ),
        trusted_advisor_exposure("AKIAIOSFODNN7EXAMPLE", "alice", at),
    ];
    let fields = prop_oneof![
        Just("/source"),
        Just("/detail-type"),
        Just("/detail"),
        Just("/detail/eventTypeCode"),
        Just("/detail/startTime"),
        Just("/detail/affectedEntities"),
        Just("/detail/affectedEntities/0/entityValue"),
        Just("/detail/eventMetadata/exposedUrl"),
        Just("/detail/status"),
        Just("/detail/check-name"),
        Just("/detail/check-item-detail/Access Key ID"),
        Just("/detail/check-item-detail/Time Updated"),
        Just("/detail/check-item-detail/Location"),
    ];
    (prop::sample::select(bases), fields, arb_json()).prop_map(|(mut event, field, value)| {
        if let Some(slot) = event.pointer_mut(field) {
            *slot = value;
        }
        event
    })
}

/// Runs `handler` on `event`; the error type must be stable, and anything but InvalidInput
/// must come from an input that parses as `T` (so only valid input ever reaches AWS).
fn check<T, D, F, Fut, O>(
    event: Value,
    deps: &'static D,
    handler: F,
) -> std::result::Result<(), TestCaseError>
where
    T: DeserializeOwned,
    F: FnOnce(Value, &'static D) -> Fut,
    Fut: Future<Output = Result<O>>,
{
    let result = RUNTIME.block_on(handler(event.clone(), deps));
    if let Err(err) = result {
        let ty = err.error_type();
        prop_assert!(ErrorType::ALL.contains(&ty));
        if ty != ErrorType::InvalidInput {
            prop_assert!(
                payload::parse::<T>(event.clone()).is_ok(),
                "{ty:?} for input that does not parse: {event}"
            );
        }
        prop_assert!(!err.to_string().is_empty());
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn list_users_never_panics(event in arb_json()) {
        static DEPS: LazyLock<list_users::Deps> = LazyLock::new(offline);
        check::<ListUsersInput, _, _, _, _>(event, &*DEPS, list_users::handle)?;
    }

    #[test]
    fn assess_key_age_never_panics(event in arb_json()) {
        static DEPS: LazyLock<assess_key_age::Deps> = LazyLock::new(offline);
        check::<AssessInput, _, _, _, _>(event, &*DEPS, assess_key_age::handle)?;
    }

    #[test]
    fn create_key_never_panics(event in arb_json()) {
        static DEPS: LazyLock<create_key::Deps> = LazyLock::new(offline);
        check::<CreateKeyInput, _, _, _, _>(event, &*DEPS, create_key::handle)?;
    }

    #[test]
    fn deliver_key_never_panics(event in arb_json()) {
        static DEPS: LazyLock<deliver_key::Deps> = LazyLock::new(offline);
        check::<deliver_key::DeliverKeyInput, _, _, _, _>(event, &*DEPS, deliver_key::handle)?;
    }

    #[test]
    fn deactivate_key_never_panics(event in arb_json()) {
        static DEPS: LazyLock<deactivate_key::Deps> = LazyLock::new(offline);
        check::<KeyPairInput, _, _, _, _>(event, &*DEPS, deactivate_key::handle)?;
    }

    #[test]
    fn delete_key_never_panics(event in arb_json()) {
        static DEPS: LazyLock<delete_key::Deps> = LazyLock::new(offline);
        check::<KeyPairInput, _, _, _, _>(event, &*DEPS, delete_key::handle)?;
    }

    #[test]
    fn notify_never_panics(event in arb_json()) {
        static DEPS: LazyLock<notify::Deps> = LazyLock::new(offline);
        check::<NotifyInput, _, _, _, _>(event, &*DEPS, notify::handle)?;
    }

    #[test]
    fn start_rotations_never_panics(event in arb_json()) {
        static DEPS: LazyLock<start_rotations::Deps> = LazyLock::new(offline);
        check::<StartRotationsInput, _, _, _, _>(event, &*DEPS, start_rotations::handle)?;
    }

    #[test]
    fn scan_accounts_never_panics(event in arb_json()) {
        static DEPS: LazyLock<scan_accounts::Deps> = LazyLock::new(offline);
        check::<ScanAccountsInput, _, _, _, _>(event, &*DEPS, scan_accounts::handle)?;
    }

    #[test]
    fn an_account_on_any_event_is_taken_or_refused_never_a_panic(event in arb_json()) {
        // What serve_in_account does to every event before a handler sees it.
        match take_account(event.clone()) {
            Ok((account, rest)) => {
                prop_assert!(rest.get("account").is_none());
                if let Some(account) = account {
                    prop_assert_eq!(account.id.as_str().len(), 12);
                }
            }
            Err(err) => prop_assert_eq!(err.error_type(), ErrorType::InvalidInput),
        }
    }

    #[test]
    fn respond_to_exposure_never_panics(event in arb_exposure_event()) {
        static DEPS: LazyLock<respond_to_exposure::Deps> = LazyLock::new(offline);
        let result = RUNTIME.block_on(respond_to_exposure::handle(event.clone(), &DEPS));
        if let Err(err) = result {
            let ty = err.error_type();
            prop_assert!(ErrorType::ALL.contains(&ty));
            if ty != ErrorType::InvalidInput {
                prop_assert!(parse_event(&event).is_ok(), "{ty:?} for an event that does not parse: {event}");
            }
        }
    }

    #[test]
    fn configuration_is_valid_or_names_the_bad_variable(
        values in prop::collection::hash_map(
            prop_oneof![
                Just(vars::ROTATE_AFTER_DAYS), Just(vars::WARN_DAYS), Just(vars::DELETION_DELAY_SECONDS),
                Just(vars::SECRET_PREFIX), Just(vars::KMS_KEY_ID), Just(vars::EMAIL_TAG), Just(vars::EXEMPT_TAG),
                Just(vars::EXEMPT_GROUP), Just(vars::FROM_ADDRESS), Just(vars::ADMIN_ADDRESS),
                Just(vars::ALLOWED_EMAIL_DOMAINS), Just(vars::DRY_RUN), Just(vars::STATE_MACHINE_ARN),
                Just(vars::VERIFY_TIMEOUT_SECONDS), Just(vars::ACCOUNTS), Just(vars::INCLUDE_OUS),
                Just(vars::EXCLUDE_OUS), Just(vars::EXCLUDE_ACCOUNTS), Just(vars::ACCOUNT_CONCURRENCY),
                Just(vars::MEMBER_EXTERNAL_ID), Just(vars::ORG_ROLE_ARN),
                Just(vars::OVERLAP_SECONDS), Just(vars::CUTOVER_SETTLE_SECONDS),
                Just(vars::CUTOVER_POLL_SECONDS),
            ],
            prop_oneof![
                "\\PC{0,40}", "[0-9]{1,6}", "[0-9]{1,3}(,[0-9]{1,3}){0,4}", "[a-z]{1,8}@[a-z]{1,8}\\.com",
                Just("true".to_owned()), Just("-1".to_owned()), Just("organization".to_owned()),
                "[0-9]{12}(,[0-9]{12}){0,2}", "ou-[a-z0-9]{4}-[a-z0-9]{8}",
            ],
            0..8,
        )
    ) {
        let map: HashMap<&str, String> = values;
        match Config::from_lookup(|k| map.get(k).cloned()) {
            Ok(c) => {
                prop_assert!(c.policy.warn_days.iter().all(|d| *d < c.policy.rotate_after_days));
                prop_assert!(c.policy.rotate_after_days >= 1);
            }
            Err(e) => {
                prop_assert!(map.contains_key(e.var), "{} is not among the variables set", e.var);
                prop_assert!(e.to_string().contains(e.var));
            }
        }
    }
}
