//! Unused keys are retired, not rotated, in-process: the real per-user state machine
//! (`rotate-user.asl.json`, run by `keyrotor_tests::asl`) calling the real handlers against
//! the in-memory account, which records a key's last use as IAM reports it. A key never
//! used, or idle past `KEYROTOR_UNUSED_DAYS`, is deactivated with no replacement and
//! deleted after the delay; its owner's rollback stands; the scan counts it; a fault in any
//! call of the retirement leaves a state a rerun finishes. The last test runs a scan on the
//! local stack.

use std::time::{Duration, Instant};

use keyrotor_core::config::vars;
use keyrotor_core::events::DetailType;
use keyrotor_core::naming;
use keyrotor_core::ports::SecretsPort;
use keyrotor_localstack::account::{SeededKey, TestUser};
use keyrotor_localstack::stack::{
    execution_output, on_shared_stack, Machine, StackOptions, KMS_KEY_ID,
};
use keyrotor_tests::asl::Execution;
use keyrotor_tests::fake::{FakeAccount, Fault, FaultMode, Faulty};
use keyrotor_tests::in_process::{config, leaks, Account, Functions};
use serde_json::{json, Value};

const USER: &str = "alice";

/// Functions that retire keys unused for 45 days, and delete them `delay` seconds after.
fn retiring(account: &Account, delay: u64) -> Functions {
    let delay = delay.to_string();
    Functions::on(
        account,
        &config(&[
            (vars::UNUSED_DAYS, "45"),
            (vars::DELETION_DELAY_SECONDS, &delay),
        ]),
    )
}

/// An account with alice, whose one key is `age` days old and was last used `used` days
/// ago (`None`: never).
fn alice(age: i64, used: Option<i64>) -> (Account, Vec<SeededKey>, String) {
    let account = Faulty::new(FakeAccount::new(Some(KMS_KEY_ID)));
    let seeded = account.inner.seed(
        &TestUser::new(USER)
            .tag("Email", "alice@example.com")
            .key(age, true),
    );
    if let Some(days) = used {
        account.inner.used_at(
            &seeded[0].id,
            chrono::Utc::now() - chrono::Duration::days(days),
        );
    }
    let id = account.inner.user_id(USER).expect("seeded");
    (account, seeded, naming::secret_name("iam-access-key/", &id))
}

async fn rotate(f: &Functions, name: &str) -> Execution {
    f.run(Machine::RotateUser, name, json!({"user": USER}))
        .await
}

fn subjects(account: &Account) -> Vec<String> {
    account
        .inner
        .mails()
        .into_iter()
        .map(|m| m.subject)
        .collect()
}

/// The `OldKeyDeactivated` events that say why.
fn deactivations(account: &Account) -> Vec<Value> {
    account
        .inner
        .events()
        .into_iter()
        .filter(|e| e.detail_type == DetailType::OldKeyDeactivated && !e.detail["why"].is_null())
        .map(|e| e.detail)
        .collect()
}

/// A finished retirement: no key made, the old one gone, the record on keyrotor's secret
/// (whose value names the retired key and holds no secret), nothing secret in any output,
/// mail or event.
fn check_retired(account: &Account, seeded: &[SeededKey], secret: &str, runs: &[Execution]) {
    assert!(
        account.inner.issued_secrets().is_empty(),
        "no new key was made"
    );
    assert!(
        account.inner.keys(USER).is_empty(),
        "the retired key is gone"
    );
    let snapshot = account.inner.snapshot(USER, secret, seeded);
    assert_eq!(
        snapshot.stored.as_ref().map(|(key, _)| key.as_str()),
        Some(seeded[0].id.as_str()),
        "the secret's value records the retired key: {snapshot:?}"
    );
    assert!(
        snapshot.authenticating.is_empty(),
        "nothing in the secret authenticates: {snapshot:?}"
    );
    let tags = account.inner.secret_tags(secret);
    assert_eq!(
        tags.get(naming::TAG_DEACTIVATED_KEY),
        Some(&seeded[0].id),
        "the deactivation is recorded on keyrotor's secret: {tags:?}"
    );
    assert_eq!(
        leaks(account, runs, seeded.iter().map(|k| k.secret.clone())),
        0,
        "a secret value leaked"
    );
}

#[tokio::test]
async fn a_key_never_used_is_retired_with_no_replacement_and_deleted_after_the_delay() {
    let (account, seeded, secret) = alice(95, None);
    let f = retiring(&account, 0);
    let run = rotate(&f, "scheduled").await;
    assert!(run.succeeded(), "{run:#?}");
    assert_eq!(run.output["assessment"]["action"], "retire", "{run:#?}");
    for state in [
        "PrepareRetirement",
        "NotifyRetired",
        "DeleteOldKey",
        "NotifyDeleted",
    ] {
        assert!(
            run.entered.iter().any(|s| s == state),
            "{state}: {:?}",
            run.entered
        );
    }
    assert!(
        !run.entered.iter().any(|s| s == "CreateKey"),
        "{:?}",
        run.entered
    );
    assert_eq!(run.output["deactivated"]["why"], "unused", "{run:#?}");
    check_retired(&account, &seeded, &secret, &[run]);

    let mails = account.inner.mails();
    let retired = mails
        .iter()
        .find(|m| m.subject.contains("Unused access key"))
        .unwrap_or_else(|| panic!("a retirement mail: {:?}", subjects(&account)));
    assert!(retired.text.contains("was never used"), "{}", retired.text);
    assert!(
        retired.text.contains("no new key was made"),
        "{}",
        retired.text
    );
    assert!(
        retired.text.contains("OIDC federation") && retired.text.contains("Roles Anywhere"),
        "the owner hears that roles need no key: {}",
        retired.text
    );
    assert!(
        mails
            .iter()
            .any(|m| m.subject.contains("Retired access key")),
        "{:?}",
        subjects(&account)
    );
    let d = deactivations(&account);
    assert_eq!(d.len(), 1, "{d:#?}");
    assert_eq!(d[0]["why"], "unused");
    assert!(d[0]["oldKeyLastUsed"].is_null(), "never used: {}", d[0]);
    assert!(
        !account
            .inner
            .events()
            .iter()
            .any(|e| e.detail_type == DetailType::KeyRotated),
        "nothing was rotated"
    );
}

#[tokio::test]
async fn a_key_idle_past_the_threshold_is_retired_and_one_in_use_is_rotated() {
    let (account, seeded, secret) = alice(95, Some(60));
    let run = rotate(&retiring(&account, 0), "idle").await;
    assert!(run.succeeded(), "{run:#?}");
    assert_eq!(run.output["deactivated"]["why"], "unused", "{run:#?}");
    assert!(
        run.output["deactivated"]["oldKeyLastUsed"].is_string(),
        "the last use that decided: {run:#?}"
    );
    check_retired(&account, &seeded, &secret, &[run]);

    let (account, _, _) = alice(95, Some(10));
    let run = rotate(&retiring(&account, 0), "used").await;
    assert!(run.succeeded(), "{run:#?}");
    assert_eq!(run.output["assessment"]["action"], "rotate", "{run:#?}");
    assert_eq!(
        account.inner.issued_secrets().len(),
        1,
        "a key in use is replaced"
    );
}

#[tokio::test]
async fn the_warning_of_an_unused_key_says_it_will_be_retired() {
    let (account, _, _) = alice(80, None);
    let run = rotate(&retiring(&account, 0), "warned").await;
    assert!(run.succeeded(), "{run:#?}");
    assert_eq!(run.output["assessment"]["retire"], true, "{run:#?}");
    let mails = account.inner.mails();
    assert_eq!(mails.len(), 1, "{:?}", subjects(&account));
    assert!(
        mails[0].subject.contains("will be retired"),
        "{}",
        mails[0].subject
    );
    assert!(
        mails[0].text.contains("Use it before then"),
        "{}",
        mails[0].text
    );
    let warned = account
        .inner
        .events()
        .into_iter()
        .find(|e| e.detail_type == DetailType::Warned)
        .expect("a Warned event");
    assert_eq!(warned.detail["retire"], true, "{}", warned.detail);
}

#[tokio::test]
async fn the_scan_counts_retirements_from_the_report_and_from_each_users_keys() {
    for strategy in ["credential-report", "list-access-keys"] {
        let account = Faulty::new(FakeAccount::new(Some(KMS_KEY_ID)));
        let unused = TestUser::new("unused").key(95, true);
        let used = TestUser::new("used").key(95, true);
        account.inner.seed(&unused);
        let used_keys = account.inner.seed(&used);
        account.inner.use_key(&used_keys[0].id);
        let f = Functions::on(
            &account,
            &config(&[(vars::UNUSED_DAYS, "45"), (vars::ASSESS_STRATEGY, strategy)]),
        );
        let assessed = assess_key_age::handle(json!({"users": ["unused", "used"]}), &f.assess)
            .await
            .expect("assessed");
        let assess_key_age::AssessOutput::Batch(page) = assessed else {
            panic!("a page's assessment: {assessed:?}")
        };
        assert_eq!(page.counts.retire, 1, "{strategy}: {page:?}");
        assert_eq!(page.counts.rotate, 1, "{strategy}: {page:?}");
        let actions: Vec<(&str, &str)> = page
            .actionable
            .iter()
            .map(|a| (a.user.as_str(), a.action.as_str()))
            .collect();
        assert_eq!(
            actions,
            [("unused", "retire"), ("used", "rotate")],
            "{strategy}"
        );
    }
}

/// Waits until `probe` holds (at most 20 s).
async fn until(what: &str, probe: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !probe() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn an_owner_who_reactivates_a_retired_key_keeps_it_and_no_run_retires_it_again() {
    let (account, seeded, _) = alice(95, None);
    let old = seeded[0].id.clone();
    let f = retiring(&account, 3);
    let owner = async {
        until("the retirement", || {
            account
                .inner
                .keys(USER)
                .iter()
                .any(|(id, active)| *id == old && !active)
        })
        .await;
        // "I still need it": reactivated within the deletion delay.
        account.inner.set_status(USER, &old, true);
    };
    let (run, ()) = tokio::join!(rotate(&f, "scheduled"), owner);
    assert!(run.succeeded(), "{run:#?}");
    assert_eq!(
        run.output["deleted"]["outcome"], "keptReactivated",
        "{run:#?}"
    );
    assert!(
        run.entered.iter().any(|s| s == "NotifyKept"),
        "{:?}",
        run.entered
    );
    // The next run, after the record settled: the rollback stands.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let again = rotate(&f, "next day").await;
    assert!(again.succeeded(), "{again:#?}");
    assert_eq!(
        again.output["assessment"]["action"], "blocked",
        "{again:#?}"
    );
    assert_eq!(
        account.inner.keys(USER),
        [(old.clone(), true)],
        "the key is kept and active"
    );
    assert_eq!(deactivations(&account).len(), 1, "deactivated once");
}

#[tokio::test]
async fn a_second_execution_while_a_retired_key_waits_deletes_it_once_and_makes_no_key() {
    let (account, seeded, secret) = alice(95, None);
    let old = seeded[0].id.clone();
    let f = retiring(&account, 2);
    let second = async {
        until("the retirement", || {
            account
                .inner
                .keys(USER)
                .iter()
                .any(|(id, active)| *id == old && !active)
        })
        .await;
        rotate(&f, "adhoc").await
    };
    let (first, adhoc) = tokio::join!(rotate(&f, "scheduled"), second);
    for run in [&first, &adhoc] {
        assert!(run.succeeded(), "{run:#?}");
    }
    assert_eq!(adhoc.output["assessment"]["action"], "retire", "{adhoc:#?}");
    assert_eq!(deactivations(&account).len(), 1, "deactivated once");
    check_retired(&account, &seeded, &secret, &[first, adhoc]);
}

#[tokio::test]
async fn a_squatters_secret_blocks_the_retirement_and_nothing_changes() {
    let (account, seeded, secret) = alice(95, None);
    // Made before keyrotor, with a policy of someone else's that lets them read it.
    let id = account.inner.user_id(USER).expect("seeded");
    let arn = account
        .inner
        .create(&secret, USER, &id)
        .await
        .expect("the squatter's secret");
    let theirs = json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::123456789012:user/mallory"},
        "Action": "secretsmanager:GetSecretValue",
        "Resource": "*",
    }]});
    account
        .inner
        .put_policy(&arn, &theirs)
        .await
        .expect("the squatter's policy");
    // A value of theirs under it (an empty secret keyrotor would make its own).
    account
        .inner
        .put_key(&arn, "AKIAIOSFODNN7EXAMPLE", "theirs")
        .await
        .expect("the squatter's value");
    let run = rotate(&retiring(&account, 0), "scheduled").await;
    assert!(run.succeeded(), "{run:#?}");
    assert_eq!(run.output["assessment"]["action"], "blocked", "{run:#?}");
    assert_eq!(account.inner.keys(USER), [(seeded[0].id.clone(), true)]);
}

/// A retirement under a fault in one of its calls; if it fails, the operator clears the
/// cause and reruns, and the rerun finishes it.
async fn retire_cell(action: &'static str, nth: usize, mode: FaultMode, persistent: bool) {
    let (account, seeded, secret) = alice(95, None);
    account.inject(Fault {
        action,
        mode,
        nth,
        times: if persistent { None } else { Some(1) },
    });
    let f = retiring(&account, 0);
    let first = rotate(&f, "first").await;
    assert!(account.injected() > 0, "{action} #{nth} was never called");
    let mut runs = vec![first.clone()];
    if !first.succeeded() {
        assert!(
            persistent,
            "a fault that strikes once is retried away: {first:#?}"
        );
        account.clear();
        let rerun = rotate(&f, "rerun").await;
        assert!(rerun.succeeded(), "the rerun finishes it: {rerun:#?}");
        runs.push(rerun);
    }
    check_retired(&account, &seeded, &secret, &runs);
}

macro_rules! retire_cells {
    ($($name:ident: $action:literal, call $nth:literal);* $(;)?) => {$(
        mod $name {
            use super::*;

            #[tokio::test]
            async fn fails_before_once() {
                retire_cell($action, $nth, FaultMode::FailBefore, false).await;
            }

            #[tokio::test]
            async fn fails_before_every_time() {
                retire_cell($action, $nth, FaultMode::FailBefore, true).await;
            }

            #[tokio::test]
            async fn loses_response_once() {
                retire_cell($action, $nth, FaultMode::LoseResponse, false).await;
            }

            #[tokio::test]
            async fn loses_response_every_time() {
                retire_cell($action, $nth, FaultMode::LoseResponse, true).await;
            }
        }
    )*};
}

// The calls a retirement makes that change something: the record store (the secret, its
// policy and its value), the mark, the deactivation and its record, the deletion.
retire_cells! {
    creating_the_record_store: "secretsmanager:CreateSecret", call 1;
    protecting_the_record_store: "secretsmanager:PutResourcePolicy", call 1;
    mark_before_deactivating: "secretsmanager:TagResource", call 1;
    deactivating: "iam:UpdateAccessKey", call 1;
    recording_the_deactivation: "secretsmanager:TagResource", call 2;
    writing_the_record_value: "secretsmanager:PutSecretValue", call 1;
    deleting: "iam:DeleteAccessKey", call 1;
    mail_of_the_retirement: "ses:SendEmail", call 1;
}

// ---------------------------------------------------------------- on the local stack

/// The local stack retiring keys unused for 45 days.
fn retiring_stack() -> StackOptions {
    let mut options = StackOptions::default();
    options
        .function_env
        .push(("KEYROTOR_UNUSED_DAYS".to_owned(), "45".to_owned()));
    options
}

/// A scheduled scan on the emulator (the real ASL, the real binaries, the credential
/// report as moto writes it): of two users with 95-day-old keys, the one whose program uses
/// it is rotated and the one nobody used is retired, with the scan's totals saying so.
#[test]
fn on_the_emulator_a_scan_retires_the_unused_key_and_rotates_the_used_one() {
    on_shared_stack(retiring_stack, |stack| async move {
        let a = &stack.account;
        let due = |user: &str| {
            TestUser::new(user)
                .tag("Email", &format!("{user}@example.com"))
                .key(95, true)
        };
        let idle = a.seed(&stack.moto, &due("idle-svc")).await.expect("seed");
        let busy = a.seed(&stack.moto, &due("busy-svc")).await.expect("seed");
        a.caller_arn(&busy[0].id, &busy[0].secret)
            .await
            .expect("the busy user's program signs with its key");

        let scan = stack
            .run_scan("retire", &json!({}), Duration::from_secs(120))
            .await
            .expect("the scan ends");
        let out = execution_output(&scan).expect("output");
        assert_eq!(out["totals"]["retire"], 1, "{out:#}");
        assert!(out["totals"]["rotate"].as_u64() >= Some(1), "{out:#}");
        stack
            .wait_all(Duration::from_secs(180))
            .await
            .expect("the executions end");

        assert!(
            a.keys("idle-svc").await.expect("keys").is_empty(),
            "the unused key was retired and deleted"
        );
        let after = a.keys("busy-svc").await.expect("keys");
        assert_eq!(after.len(), 1, "{after:?}");
        assert_ne!(after[0].0, busy[0].id, "the used key was replaced");
        let secret = a.secret_of("idle-svc").await.expect("secret name");
        let tags: std::collections::BTreeMap<String, String> = a
            .secrets
            .describe_secret()
            .secret_id(&secret)
            .send()
            .await
            .expect("the record store exists")
            .tags()
            .iter()
            .filter_map(|t| Some((t.key()?.to_owned(), t.value()?.to_owned())))
            .collect();
        assert_eq!(
            tags.get(naming::TAG_DEACTIVATED_KEY),
            Some(&idle[0].id),
            "{tags:?}"
        );
        let value = a.secret_value(&secret).await.expect("the record's value");
        assert_eq!(value["Retired"], true, "{value}");
        assert_eq!(value["AccessKeyId"], idle[0].id.as_str(), "{value}");
        assert!(
            value.get("SecretAccessKey").is_none(),
            "no secret in it: {value}"
        );
        let subjects: Vec<String> = stack
            .moto
            .sent_emails()
            .expect("mails")
            .into_iter()
            .map(|m| m.subject)
            .filter(|s| s.contains("idle-svc"))
            .collect();
        assert!(
            subjects.iter().any(|s| s.contains("Unused access key")),
            "{subjects:?}"
        );
    });
}
