//! The fault matrix and the race trials in-process: the real per-user state machine
//! (`statemachine/rotate-user.asl.json`, run by `keyrotor_tests::asl`) calling the real
//! handlers, against the in-memory account (`keyrotor_tests::fake`) wrapped in a layer that
//! fails a chosen AWS call before it is applied or loses its response, once or every time.
//! Every cell is a test of its own, named after the call and the fault
//! (`create_access_key::loses_response_once`), and ends with the invariant check of
//! `keyrotor_tests::invariants::judge` and a leak scan. A representative subset of these
//! cells also runs on the emulator (`tests/tests/it/faults.rs`).

use keyrotor_localstack::account::SeededKey;
use keyrotor_localstack::account::TestUser;
use keyrotor_localstack::stack::{Machine, KMS_KEY_ID};
use keyrotor_tests::asl::{Execution, Status};
use keyrotor_tests::fake::{FakeAccount, Fault, FaultMode, Faulty};
use keyrotor_tests::in_process::{config, leaks, Account, Functions};
use keyrotor_tests::invariants::{judge, UserCase};
use serde_json::{json, Value};

async fn run(f: &Functions, name: &str, input: Value) -> Execution {
    f.run(Machine::RotateUser, name, input).await
}

/// A user due for rotation (95-day-old key, an owner address).
fn seed_due(account: &Account, name: &str) -> (Vec<SeededKey>, String) {
    let seeded = account.inner.seed(
        &TestUser::new(name)
            .tag("Email", &format!("{name}@example.com"))
            .key(95, true),
    );
    let id = account.inner.user_id(name).expect("seeded");
    (
        seeded,
        keyrotor_core::naming::secret_name("iam-access-key/", &id),
    )
}

/// Checks the invariants for `user`, and that no secret the account issued appears in any
/// execution's output, error or e-mail.
fn check(account: &Account, user: &str, seeded: &[SeededKey], secret: &str, runs: &[Execution]) {
    let case = UserCase {
        user,
        seeded,
        secret_name: secret.to_owned(),
        expect_rotated: true,
    };
    let snapshot = account.inner.snapshot(user, secret, seeded);
    if let Err(e) = judge(&case, &snapshot) {
        panic!(
            "{e:#}\nexecutions: {runs:#?}\ncalls: {:?}",
            account.inner.calls()
        );
    }
    assert_eq!(
        leaks(account, runs, seeded.iter().map(|k| k.secret.clone())),
        0,
        "a secret value leaked"
    );
}

/// One cell: a rotation under the fault; if it fails, the operator clears the cause and
/// reruns, and the rerun must finish it. Every invariant holds at the end either way.
async fn cell(action: &'static str, nth: usize, mode: FaultMode, persistent: bool) {
    let account = Faulty::new(FakeAccount::new(Some(KMS_KEY_ID)));
    let user = "alice";
    let (seeded, secret) = seed_due(&account, user);
    account.inject(Fault {
        action,
        mode,
        nth,
        times: if persistent { None } else { Some(1) },
    });
    let f = Functions::on(&account, &config(&[]));
    let first = run(&f, "first", json!({"user": user})).await;
    assert!(account.injected() > 0, "{action} was never called");
    let mut runs = vec![first.clone()];
    if !first.succeeded() {
        assert!(
            persistent,
            "a fault that strikes once is retried away, but: {first:#?}"
        );
        account.clear();
        let rerun = run(&f, "rerun", json!({"user": user})).await;
        assert!(rerun.succeeded(), "the rerun finishes it: {rerun:#?}");
        runs.push(rerun);
    }
    check(&account, user, &seeded, &secret, &runs);
    // Whatever the first execution went through, the old key is gone for good.
    assert!(account
        .inner
        .keys(user)
        .iter()
        .all(|(id, _)| *id != seeded[0].id));
}

macro_rules! cells {
    ($($name:ident: $action:literal $(, call $nth:literal)?);* $(;)?) => {$(
        mod $name {
            use super::*;

            const NTH: usize = 1 $(- 1 + $nth)?;

            #[tokio::test]
            async fn fails_before_once() {
                cell($action, NTH, FaultMode::FailBefore, false).await;
            }

            #[tokio::test]
            async fn fails_before_every_time() {
                cell($action, NTH, FaultMode::FailBefore, true).await;
            }

            #[tokio::test]
            async fn loses_response_once() {
                cell($action, NTH, FaultMode::LoseResponse, false).await;
            }

            #[tokio::test]
            async fn loses_response_every_time() {
                cell($action, NTH, FaultMode::LoseResponse, true).await;
            }
        }
    )*};
}

// Every call that changes something in a rotation, the STS check and the mail, and the
// reads every step re-plans from; from the first call of each, and from the later call
// where a rotation makes a second one that matters: the TagResource that records the
// deactivation (after the key went Inactive), the mail that the old key was deleted, the
// GetUser and DescribeSecret of the deactivation and of the deletion.
cells! {
    create_access_key: "iam:CreateAccessKey";
    create_secret: "secretsmanager:CreateSecret";
    put_resource_policy: "secretsmanager:PutResourcePolicy";
    put_secret_value: "secretsmanager:PutSecretValue";
    get_caller_identity: "sts:GetCallerIdentity";
    update_access_key: "iam:UpdateAccessKey";
    tag_resource: "secretsmanager:TagResource";
    tag_resource_recording_the_deactivation: "secretsmanager:TagResource", call 2;
    delete_access_key: "iam:DeleteAccessKey";
    send_email: "ses:SendEmail";
    send_email_of_the_deletion: "ses:SendEmail", call 2;
    get_user: "iam:GetUser";
    get_user_of_the_deactivation: "iam:GetUser", call 3;
    get_user_of_the_deletion: "iam:GetUser", call 5;
    list_access_keys: "iam:ListAccessKeys";
    list_user_tags: "iam:ListUserTags";
    describe_secret: "secretsmanager:DescribeSecret";
    describe_secret_of_the_deletion: "secretsmanager:DescribeSecret", call 5;
    get_resource_policy: "secretsmanager:GetResourcePolicy";
    get_access_key_last_used: "iam:GetAccessKeyLastUsed";
}

/// Two executions for one user started together (the scan's and a responder's forced one),
/// interleaved at every AWS call in a different order each trial: exactly one new key, and
/// both succeed.
#[tokio::test]
async fn concurrent_executions_for_one_user_make_exactly_one_new_key() {
    for trial in 0..40u64 {
        let account = Faulty::new(FakeAccount::new(Some(KMS_KEY_ID))).with_jitter(trial);
        let user = format!("race-{trial}");
        let (seeded, secret) = seed_due(&account, &user);
        let f = Functions::on(&account, &config(&[]));
        let (a, b) = tokio::join!(
            run(&f, "scheduled", json!({ "user": user })),
            run(&f, "adhoc", json!({ "user": user, "force": true })),
        );
        for e in [&a, &b] {
            assert!(
                matches!(e.status, Status::Succeeded),
                "trial {trial}: {e:#?}"
            );
        }
        check(&account, &user, &seeded, &secret, &[a, b]);
    }
}
