//! One page of the scan (`assess-key-age` in batch mode) in-process, against the in-memory
//! account: its per-user reads run a fixed number at a time, and its output is the same,
//! byte for byte, whatever order those reads complete in, and the same as assessing each
//! user on their own would say.

use std::collections::BTreeMap;

use keyrotor_localstack::account::TestUser;
use keyrotor_localstack::stack::EXEMPT_GROUP;
use keyrotor_tests::fake::{FakeAccount, Fault, FaultMode, Faulty};
use keyrotor_tests::in_process::config;
use serde_json::{json, Value};

/// An account with every kind of user a page holds, and the page's names in ListUsers
/// order (including one deleted since it was listed).
fn account() -> (FakeAccount, Vec<String>) {
    let account = FakeAccount::new(Some(keyrotor_localstack::stack::KMS_KEY_ID));
    let mut names = Vec::new();
    for i in 0..60 {
        let name = format!("user-{i:02}");
        let user = TestUser::new(&name).tag("Email", &format!("{name}@example.com"));
        let user = match i % 10 {
            0 => user.key(95, true),
            1 => user.key(80, true),
            2 => user.key(85, true),
            3 => user.key(89, true),
            4 => user.key(30, true),
            5 => user,
            6 => user.group(EXEMPT_GROUP).key(150, true),
            7 => user.tag("key-rotation:exempt", "true").key(120, true),
            // A rotation under way: the whole live look.
            8 => user.key(95, false).key(2, true),
            _ => user.key(91, true).key(40, true),
        };
        account.seed(&user);
        names.push(name);
    }
    names.insert(17, "user-deleted-since".into());
    (account, names)
}

fn deps(
    layer: &Faulty<FakeAccount>,
) -> assess_key_age::Deps<Faulty<FakeAccount>, Faulty<FakeAccount>, Faulty<FakeAccount>> {
    assess_key_age::Deps {
        config: config(&[]),
        iam: layer.clone(),
        secrets: layer.clone(),
        health: layer.clone(),
    }
}

async fn assess_page(
    layer: &Faulty<FakeAccount>,
    names: &[String],
) -> keyrotor_core::Result<Value> {
    let out = assess_key_age::handle(json!({ "users": names }), &deps(layer)).await?;
    Ok(serde_json::to_value(out).expect("serializable"))
}

#[tokio::test]
async fn reads_a_fixed_number_at_a_time_and_answers_in_input_order() {
    let (account, names) = account();
    let mut outputs = Vec::new();
    for strategy in ["credential-report", "list-access-keys"] {
        for seed in 1..=12 {
            let layer = Faulty::new(account.clone()).with_jitter(seed);
            let deps = assess_key_age::Deps {
                config: config(&[("KEYROTOR_ASSESS_STRATEGY", strategy)]),
                ..deps(&layer)
            };
            let out = assess_key_age::handle(json!({ "users": names }), &deps)
                .await
                .expect("the page is assessed");
            let text = serde_json::to_string(&out).expect("serializable");
            assert!(
                layer.max_in_flight() <= assess_key_age::BATCH_CONCURRENCY,
                "{strategy}, seed {seed}: {} reads at once",
                layer.max_in_flight()
            );
            outputs.push((strategy, seed, text));
        }
    }
    // Without jitter every read waits once before it is answered: the page keeps exactly
    // BATCH_CONCURRENCY of them under way.
    for strategy in ["credential-report", "list-access-keys"] {
        let layer = Faulty::new(account.clone());
        let deps = assess_key_age::Deps {
            config: config(&[("KEYROTOR_ASSESS_STRATEGY", strategy)]),
            ..deps(&layer)
        };
        assess_key_age::handle(json!({ "users": names }), &deps)
            .await
            .expect("the page is assessed");
        assert_eq!(
            layer.max_in_flight(),
            assess_key_age::BATCH_CONCURRENCY,
            "{strategy}"
        );
    }
    let (_, _, first) = &outputs[0];
    for (strategy, seed, text) in &outputs {
        assert_eq!(text, first, "{strategy}, seed {seed}: the output changed");
    }

    // The same as each user assessed alone, in the order ListUsers gave them.
    let layer = Faulty::new(account.clone());
    let mut expected: Vec<Value> = Vec::new();
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for name in names.iter().filter(|n| !n.contains("deleted")) {
        let single = assess_key_age::handle(json!({ "user": name }), &deps(&layer))
            .await
            .expect("assessed alone");
        let single = serde_json::to_value(single).expect("serializable");
        let action = single["action"].as_str().expect("a decision").to_owned();
        *counts.entry(action.clone()).or_default() += 1;
        if !["none", "exempt"].contains(&action.as_str()) {
            expected.push(json!({ "user": name, "action": action }));
        }
    }
    let batch: Value = serde_json::from_str(first).expect("json");
    assert_eq!(batch["actionable"], Value::Array(expected));
    for (action, n) in &counts {
        assert_eq!(
            batch["counts"][action],
            json!(n),
            "count of {action}: {batch}"
        );
    }
    // The user deleted since ListUsers was seen, and needs nothing.
    assert_eq!(batch["seen"], json!(names.len()), "{batch}");
    assert_eq!(counts.values().sum::<u64>(), names.len() as u64 - 1);
}

#[tokio::test]
async fn throttled_reads_fail_the_page_for_a_retry_that_answers_the_same() {
    let (account, names) = account();
    let calm = assess_page(&Faulty::new(account.clone()), &names)
        .await
        .expect("assessed");
    let layer = Faulty::new(account.clone()).with_jitter(7);
    layer.inject(Fault {
        action: "iam:ListUserTags",
        mode: FaultMode::FailBefore,
        nth: 5,
        times: Some(1),
    });
    let err = assess_page(&layer, &names)
        .await
        .expect_err("a throttled read fails the page");
    assert!(err.error_type().is_retryable(), "{err}");
    let retried = assess_page(&layer, &names).await.expect("the retry");
    assert_eq!(retried, calm);
}
