//! Each function declares the AWS actions it calls (`AWS_ACTIONS` in its lib.rs), and
//! `tools/check_infra.py` holds its role to exactly that list. This test holds the list to
//! the code: a day of scans and rotations in-process, each function on its own recording
//! layer over one in-memory account, must call nothing a function did not declare, and must
//! call everything each one declared (a stale declaration would grant an unused permission).

use std::collections::BTreeSet;

use keyrotor_core::config::vars;
use keyrotor_localstack::account::TestUser;
use keyrotor_localstack::stack::{Machine, EXEMPT_GROUP, KMS_KEY_ID};
use keyrotor_tests::events::{health_event_arn, health_exposure};
use keyrotor_tests::fake::{FakeAccount, Faulty};
use keyrotor_tests::in_process::{config, Functions, Layers};
use serde_json::{json, Value};

const DESTINATIONS: &str = r#"{"alice": [
    {"type": "ssm", "parameter": "/ci/alice/aws"},
    {"type": "webhook", "url": "http://127.0.0.1:9/hook"}
]}"#;
const WEBHOOK_KEY: &str =
    "arn:aws:secretsmanager:us-east-1:123456789012:secret:keyrotor/webhook-AbCdEf";

#[tokio::test]
async fn every_function_calls_exactly_the_aws_actions_it_declares() {
    let account = FakeAccount::new(Some(KMS_KEY_ID));
    let layer = || Faulty::new(account.clone());
    let (list, assess, start, create, deactivate, notify, delete, deliver) = (
        layer(),
        layer(),
        layer(),
        layer(),
        layer(),
        layer(),
        layer(),
        layer(),
    );
    let f = Functions::with(
        &Layers {
            list: &list,
            assess: &assess,
            start: &start,
            create: &create,
            deactivate: &deactivate,
            notify: &notify,
            delete: &delete,
            deliver: &deliver,
        },
        // alice's key goes to SSM and to a webhook (which does not answer in-process).
        &config(&[
            (vars::DESTINATIONS, DESTINATIONS),
            (vars::DELIVERY_KMS_KEY_ID, "alias/keyrotor-delivery"),
            (vars::WEBHOOK_KEY_SECRET_ARN, WEBHOOK_KEY),
        ]),
    );
    account.set_setting(WEBHOOK_KEY, "signing-key");
    // Due, with an inactive leftover to delete first; on a warning day; exempt by group.
    account.seed(
        &TestUser::new("alice")
            .tag("Email", "alice@example.com")
            .key(120, false)
            .key(95, true),
    );
    account.seed(
        &TestUser::new("bob")
            .tag("Email", "bob@example.com")
            .key(80, true),
    );
    account.seed(&TestUser::new("carol").group(EXEMPT_GROUP).key(200, true));

    let scan = f.run(Machine::Scan, "scan", json!({})).await;
    assert!(scan.succeeded(), "{scan:#?}");
    let started = account.started();
    assert_eq!(started.len(), 2, "alice and bob: {started:?}");
    let mut pair = None;
    for (_, name, input) in &started {
        let input: Value = serde_json::from_str(input).expect("JSON input");
        let run = f.run(Machine::RotateUser, name, input).await;
        assert!(run.succeeded(), "{run:#?}");
        if run.output["created"]["newKeyId"].is_string() {
            pair = Some(run.output["created"].clone());
        }
    }
    let pair = pair.expect("alice was rotated");
    // A late rerun of each step of alice's finished rotation finds the work done.
    let old_pair = json!({
        "user": "alice",
        "oldKeyId": pair["oldKeyId"],
        "newKeyId": pair["newKeyId"],
    });
    create_key::handle(
        json!({"user": "alice", "oldKeyId": pair["oldKeyId"]}),
        &f.create,
    )
    .await
    .expect("create-key recognises the finished rotation");
    deactivate_key::handle(old_pair.clone(), &f.deactivate)
        .await
        .expect("deactivate-key recognises the finished rotation");
    // The next assessment of alice reads her secret and its policy.
    assess_key_age::handle(json!({"user": "alice"}), &f.assess)
        .await
        .expect("assessed");
    list_users::handle(json!({"users": ["ALICE"]}), &f.list)
        .await
        .expect("named users");
    // A rerun of the scan the same day finds bob's warning started already (start-rotations
    // reads that execution's input before it counts it as its own).
    let rerun = f.run(Machine::Scan, "rerun", json!({})).await;
    assert!(rerun.succeeded(), "{rerun:#?}");

    // carol's key leaks: the report starts a forced rotation by key ID, whose owner
    // assess-key-age looks up.
    let respond = layer();
    let carol_key = account.keys("carol")[0].0.clone();
    let deps = respond_to_exposure::Deps::new(config(&[]), respond.clone()).expect("deps");
    let reported_at = chrono::Utc::now();
    let report = health_exposure(&carol_key, reported_at, "https://example.com/leak");
    // AWS Health has the report: assess-key-age asks it (both Health actions) and acts.
    account.record_health_exposure(
        &health_event_arn(&carol_key),
        &carol_key,
        reported_at,
        "https://example.com/leak",
    );
    let out = respond_to_exposure::handle(report.clone(), &deps)
        .await
        .expect("the report is accepted");
    // The same report again (EventBridge delivers at least once): started already.
    let again = respond_to_exposure::handle(report, &deps)
        .await
        .expect("a repeated report is accepted");
    assert!(!again.started, "{again:?}");
    let (_, name, input) = account
        .started()
        .into_iter()
        .find(|(_, n, _)| *n == out.execution_name)
        .expect("started");
    let input: Value = serde_json::from_str(&input).expect("JSON input");
    let run = f.run(Machine::RotateUser, &name, input).await;
    assert!(run.succeeded(), "{run:#?}");
    // A later report of the same key, deleted by then: keyrotor's record says so.
    let later = assess_key_age::handle(
        json!({"accessKeyId": carol_key, "force": true, "reason": "reported again"}),
        &f.assess,
    )
    .await
    .expect("a key keyrotor deleted is handled");
    let assess_key_age::AssessOutput::Single(later) = later else {
        panic!("one key's assessment: {later:?}")
    };
    assert_eq!(later.plan.decision, keyrotor_core::domain::Decision::None);

    let functions: [(&str, &[&str], &Faulty<FakeAccount>); 9] = [
        ("list-users", list_users::AWS_ACTIONS, &list),
        ("assess-key-age", assess_key_age::AWS_ACTIONS, &assess),
        ("start-rotations", start_rotations::AWS_ACTIONS, &start),
        (
            "respond-to-exposure",
            respond_to_exposure::AWS_ACTIONS,
            &respond,
        ),
        ("create-key", create_key::AWS_ACTIONS, &create),
        ("deactivate-key", deactivate_key::AWS_ACTIONS, &deactivate),
        ("notify", notify::AWS_ACTIONS, &notify),
        ("delete-key", delete_key::AWS_ACTIONS, &delete),
        ("deliver-key", deliver_key::AWS_ACTIONS, &deliver),
    ];
    let mut problems = Vec::new();
    for (name, declared, layer) in functions {
        let declared: BTreeSet<&str> = declared.iter().copied().collect();
        let seen = layer.seen();
        let undeclared: Vec<_> = seen.difference(&declared).collect();
        let unused: Vec<_> = declared.difference(&seen).collect();
        if !undeclared.is_empty() || !unused.is_empty() {
            problems.push(format!(
                "{name}: called but not declared {undeclared:?}; declared but not called {unused:?}"
            ));
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

/// The deployed functions are built on their own (`make package`: the functions of
/// LAMBDA_FUNCTIONS, nothing else), so the features only the `keyrotor` command enables,
/// IAM Identity Center sign-in and credential_process, never reach them: no SSO client,
/// and no code path that reads a token cache, in a Lambda binary.
#[test]
fn the_deployed_functions_link_none_of_the_operators_sign_in_code() {
    let root = keyrotor_localstack::workspace_root();
    let makefile = std::fs::read_to_string(root.join("Makefile")).expect("Makefile");
    let functions: Vec<&str> = makefile
        .lines()
        .find_map(|l| l.strip_prefix("LAMBDA_FUNCTIONS := "))
        .expect("LAMBDA_FUNCTIONS in the Makefile")
        .split_whitespace()
        .collect();
    assert!(functions.len() >= 8, "{functions:?}");
    let tree = |packages: &[&str]| {
        let mut command = std::process::Command::new(env!("CARGO"));
        command.current_dir(&root).args([
            "tree",
            "--offline",
            "--locked",
            "-e",
            "normal",
            "--prefix",
            "none",
        ]);
        for p in packages {
            command.args(["-p", p]);
        }
        let out = command.output().expect("cargo tree runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let deployed = tree(&functions);
    assert!(deployed.contains("aws-config"), "the tree is read");
    for crate_name in ["aws-sdk-sso ", "aws-sdk-ssooidc "] {
        assert!(!deployed.contains(crate_name), "{crate_name}in a function");
    }
    // And the command has them: the test would pass for nothing otherwise.
    assert!(tree(&["keyrotor"]).contains("aws-sdk-sso "));
}
