//! The overlap window in-process: the real per-user state machine (`rotate-user.asl.json`,
//! run by `keyrotor_tests::asl`) calling the real handlers against the in-memory account,
//! with windows of seconds and a program that signs requests with the keys meanwhile. The
//! account records a key's last use on every signed request, keyrotor's own check of a new
//! key included, as IAM does (without IAM's reporting delay). The last test runs the same
//! on the local stack, with a program signing STS requests with the keys.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use keyrotor_core::config::vars;
use keyrotor_core::events::DetailType;
use keyrotor_core::naming;
use keyrotor_localstack::account::{SeededKey, TestUser};
use keyrotor_localstack::stack::{on_shared_stack, LocalStack, Machine, StackOptions, KMS_KEY_ID};
use keyrotor_tests::asl::Execution;
use keyrotor_tests::fake::{FakeAccount, Fault, FaultMode, Faulty};
use keyrotor_tests::in_process::{config, leaks, Account, Functions};
use keyrotor_tests::invariants::{judge, UserCase};
use keyrotor_tests::on_stack::{active_on, rotate_beside, seed_due_on};
use serde_json::{json, Value};

const USER: &str = "alice";

/// Functions whose rotations keep the old key for up to `overlap` seconds, ending early
/// once it was silent for `settle` seconds after the new key was used.
fn windowed(account: &Account, overlap: u64, settle: u64) -> Functions {
    let (overlap, settle) = (overlap.to_string(), settle.to_string());
    Functions::on(
        account,
        &config(&[
            (vars::OVERLAP_SECONDS, &overlap),
            (vars::CUTOVER_SETTLE_SECONDS, &settle),
        ]),
    )
}

/// An account with alice, due for rotation: her one key is 95 days old.
struct Alice {
    account: Account,
    seeded: Vec<SeededKey>,
    /// The name of her secret.
    secret: String,
    /// Her old key's ID.
    old: String,
}

fn alice() -> Alice {
    let account = Faulty::new(FakeAccount::new(Some(KMS_KEY_ID)));
    let seeded = account.inner.seed(
        &TestUser::new(USER)
            .tag("Email", "alice@example.com")
            .key(95, true),
    );
    let id = account.inner.user_id(USER).expect("seeded");
    let old = seeded[0].id.clone();
    Alice {
        secret: naming::secret_name("iam-access-key/", &id),
        account,
        seeded,
        old,
    }
}

async fn rotate(f: &Functions, name: &str, input: Value) -> Execution {
    f.run(Machine::RotateUser, name, input).await
}

/// Waits until `probe` gives something (at most 20 s).
async fn until<T>(what: &str, probe: impl Fn() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(found) = probe() {
            return found;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn is_active(account: &Account, key: &str) -> bool {
    account
        .inner
        .keys(USER)
        .iter()
        .any(|(id, active)| id == key && *active)
}

/// The key the user's secret holds, once it holds one other than `old`.
fn new_key(account: &Account, secret: &str, old: &str) -> Option<String> {
    let stored = account.inner.snapshot(USER, secret, &[]).stored?.0;
    (stored != old).then_some(stored)
}

/// The window keyrotor recorded on the secret: (until, extended).
fn recorded_window(account: &Account, secret: &str) -> Option<(String, String)> {
    let tags = account.inner.secret_tags(secret);
    Some((
        tags.get(naming::TAG_OVERLAP_UNTIL)?.clone(),
        tags.get(naming::TAG_OVERLAP_EXTENDED)?.clone(),
    ))
}

/// The detail of the one `OldKeyDeactivated` event that says why (a run that found the key
/// inactive already reports it again, without a why).
fn deactivation(account: &Account) -> Value {
    let events: Vec<Value> = account
        .inner
        .events()
        .into_iter()
        .filter(|e| e.detail_type == DetailType::OldKeyDeactivated && !e.detail["why"].is_null())
        .map(|e| e.detail)
        .collect();
    assert_eq!(events.len(), 1, "one deactivation: {events:#?}");
    events[0].clone()
}

fn time(v: &Value) -> DateTime<Utc> {
    v.as_str()
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("a time: {v}"))
}

/// Every invariant at the end of a rotation, and no secret in any output, mail or event.
fn check_done(account: &Account, seeded: &[SeededKey], secret: &str, runs: &[Execution]) {
    let case = UserCase {
        user: USER,
        seeded,
        secret_name: secret.to_owned(),
        expect_rotated: true,
    };
    let snapshot = account.inner.snapshot(USER, secret, seeded);
    if let Err(e) = judge(&case, &snapshot) {
        panic!("{e:#}\nexecutions: {runs:#?}");
    }
    assert_eq!(
        leaks(account, runs, seeded.iter().map(|k| k.secret.clone())),
        0,
        "a secret value leaked"
    );
    assert_eq!(account.inner.issued_secrets().len(), 1, "one new key");
}

#[tokio::test]
async fn the_old_key_stays_active_while_used_and_goes_once_idle_after_the_switch() {
    let Alice {
        account,
        seeded,
        secret,
        old,
    } = alice();
    let f = windowed(&account, 60, 2);
    let program = async {
        // A job on the old key, every 200 ms, for 3 s after the new key is stored: the old
        // key must keep working all that time.
        let new = until("the new key", || new_key(&account, &secret, &old)).await;
        let switch = Instant::now() + Duration::from_secs(3);
        while Instant::now() < switch {
            assert!(is_active(&account, &old), "the old key broke while in use");
            account.inner.use_key(&old);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let last_old_use = Utc::now();
        // Moved: from now on the job signs with the new key.
        while is_active(&account, &old) {
            account.inner.use_key(&new);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        (new, last_old_use)
    };
    let started = Utc::now();
    let (run, (new, last_old_use)) =
        tokio::join!(rotate(&f, "alice", json!({"user": USER})), program);
    assert!(run.succeeded(), "{run:#?}");
    assert!(
        run.entered.iter().any(|s| s == "CheckCutover"),
        "{:?}",
        run.entered
    );

    let d = deactivation(&account);
    assert_eq!(d["why"], "idle", "{d}");
    let at = time(&d["deleteAfter"]); // the deletion delay is 0 here
    assert!(
        at >= last_old_use + chrono::Duration::seconds(1),
        "deactivated at {at}, the old key was last used at {last_old_use} (settle 2 s)"
    );
    assert!(
        at < started + chrono::Duration::seconds(60),
        "early, not at the cap"
    );
    assert!(time(&d["newKeyLastUsed"]) > time(&d["oldKeyLastUsed"]));

    let mails = account.inner.mails();
    let subjects: Vec<&str> = mails.iter().map(|m| m.subject.as_str()).collect();
    assert!(
        subjects[0].contains(&format!("switch to {new} by")),
        "{subjects:?}"
    );
    assert!(
        mails[0]
            .text
            .contains(&format!("{}={new}", naming::USER_TAG_CUTOVER)),
        "the owner is told how to end the window: {}",
        mails[0].text
    );
    assert!(
        mails
            .iter()
            .any(|m| m.text.contains("nothing has used the old key")),
        "{subjects:?}"
    );
    check_done(&account, &seeded, &secret, &[run]);
}

#[tokio::test]
async fn a_window_ends_at_its_cap_when_the_new_key_is_never_used() {
    let Alice {
        account,
        seeded,
        secret,
        old,
    } = alice();
    // keyrotor's own check of the new key signed a request with it: that is no switch.
    let f = windowed(&account, 3, 1);
    let watch = async {
        until("the new key", || new_key(&account, &secret, &old)).await;
        until("the window", || recorded_window(&account, &secret)).await;
        let opened = Instant::now();
        while is_active(&account, &old) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        opened.elapsed()
    };
    let (run, kept_for) = tokio::join!(rotate(&f, "alice", json!({"user": USER})), watch);
    assert!(run.succeeded(), "{run:#?}");
    assert!(
        kept_for >= Duration::from_secs(2),
        "the old key was kept {kept_for:?} of a 3 s window"
    );
    let d = deactivation(&account);
    assert_eq!(d["why"], "cap", "{d}");
    assert!(d["window"]["until"].is_string(), "{d}");
    check_done(&account, &seeded, &secret, &[run]);
}

#[tokio::test]
async fn the_owner_extends_the_window_once_and_then_ends_it() {
    let Alice {
        account,
        seeded,
        secret,
        old,
    } = alice();
    let f = windowed(&account, 60, 1);
    let owner = async {
        let new = until("the new key", || new_key(&account, &secret, &old)).await;
        let (opened_until, _) = until("the window", || recorded_window(&account, &secret)).await;
        account
            .inner
            .tag_user(USER, naming::USER_TAG_EXTEND, &format!("{new}:2"));
        let (extended_until, _) = until("the extension", || {
            recorded_window(&account, &secret).filter(|(_, extended)| extended == "true")
        })
        .await;
        let shift = time(&json!(extended_until)) - time(&json!(opened_until));
        assert_eq!(
            shift,
            chrono::Duration::days(2),
            "extended by the days asked"
        );
        // Asked again: not granted.
        account
            .inner
            .tag_user(USER, naming::USER_TAG_EXTEND, &format!("{new}:7"));
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert_eq!(
            recorded_window(&account, &secret).map(|w| w.0),
            Some(extended_until),
            "a second extension changes nothing"
        );
        assert!(is_active(&account, &old));
        // Done: the owner ends the window.
        account.inner.tag_user(USER, naming::USER_TAG_CUTOVER, &new);
    };
    let (run, ()) = tokio::join!(rotate(&f, "alice", json!({"user": USER})), owner);
    assert!(run.succeeded(), "{run:#?}");
    let d = deactivation(&account);
    assert_eq!(d["why"], "owner", "{d}");
    assert_eq!(d["window"]["extended"], true, "{d}");
    check_done(&account, &seeded, &secret, &[run]);
}

#[tokio::test]
async fn a_second_execution_in_the_window_watches_it_without_a_second_key_or_mail() {
    let Alice {
        account,
        seeded,
        secret,
        old,
    } = alice();
    let f = windowed(&account, 4, 1);
    let second = async {
        until("the window", || recorded_window(&account, &secret)).await;
        // What a scan sees: a rotation in its window, which it leaves to its execution.
        let assessed = assess_key_age::handle(json!({"users": [USER]}), &f.assess)
            .await
            .expect("assessed");
        let assess_key_age::AssessOutput::Batch(page) = assessed else {
            panic!("a page's assessment: {assessed:?}")
        };
        assert_eq!(page.counts.cutover, 1, "{page:?}");
        assert_eq!(
            page.non_compliant, 0,
            "an old key in its window has its replacement: not counted non-compliant"
        );
        assert!(page.actionable.is_empty(), "{page:?}");
        // An operator's "rotate alice now" (not forced) during the window.
        rotate(&f, "adhoc", json!({"user": USER})).await
    };
    let (first, adhoc) = tokio::join!(rotate(&f, "scheduled", json!({"user": USER})), second);
    for run in [&first, &adhoc] {
        assert!(run.succeeded(), "{run:#?}");
    }
    assert!(
        adhoc.entered.iter().any(|s| s == "ResumeCutover"),
        "{:?}",
        adhoc.entered
    );
    assert!(!adhoc
        .entered
        .iter()
        .any(|s| s == "CreateKey" || s == "NotifyNewKey"));
    let new_key_mails = account
        .inner
        .mails()
        .iter()
        .filter(|m| m.subject.contains("New access key"))
        .count();
    assert_eq!(new_key_mails, 1);
    assert!(!is_active(&account, &old));
    check_done(&account, &seeded, &secret, &[first, adhoc]);
}

#[tokio::test]
async fn a_leak_of_the_old_key_during_the_window_deactivates_it_at_once() {
    let Alice {
        account,
        seeded,
        secret,
        old,
    } = alice();
    let f = windowed(&account, 60, 1);
    let responder = async {
        until("the window", || recorded_window(&account, &secret)).await;
        let run = rotate(
            &f,
            "exposed",
            json!({"accessKeyId": old, "force": true, "reason": "found in a public repository"}),
        )
        .await;
        assert!(!is_active(&account, &old), "deactivated by the forced run");
        run
    };
    let started = Instant::now();
    let (first, forced) = tokio::join!(rotate(&f, "scheduled", json!({"user": USER})), responder);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "no wait for the cap"
    );
    for run in [&first, &forced] {
        assert!(run.succeeded(), "{run:#?}");
    }
    // The scheduled execution, finding the key inactive, reports the deactivation again
    // (events are at least once); only the forced one decided it.
    let d = deactivation(&account);
    assert_eq!(d["why"], "forced", "{d}");
    check_done(&account, &seeded, &secret, &[first, forced]);
}

#[tokio::test]
async fn an_owner_who_deactivates_the_new_key_in_the_window_keeps_the_old_one() {
    let Alice {
        account,
        secret,
        old,
        ..
    } = alice();
    let f = windowed(&account, 60, 1);
    let owner = async {
        let new = until("the new key", || new_key(&account, &secret, &old)).await;
        until("the window", || recorded_window(&account, &secret)).await;
        account.inner.set_status(USER, &new, false);
    };
    let (first, ()) = tokio::join!(rotate(&f, "scheduled", json!({"user": USER})), owner);
    // The watching execution refuses to deactivate the only working key and says so.
    assert!(!first.succeeded(), "{first:#?}");
    assert!(is_active(&account, &old), "the old key still works");
    // A new run reports the rollback and changes nothing.
    let again = rotate(&f, "again", json!({"user": USER})).await;
    assert!(again.succeeded(), "{again:#?}");
    assert_eq!(
        again.output["assessment"]["action"], "blocked",
        "{again:#?}"
    );
    assert!(
        again.output["assessment"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("rollback")),
        "{again:#?}"
    );
    assert!(is_active(&account, &old));
    assert_eq!(account.inner.keys(USER).len(), 2, "nothing deleted");
}

/// A rotation with a 1 s window under a fault in one of the window's calls; if it fails,
/// the operator clears the cause and reruns, and the rerun finishes it.
async fn window_cell(action: &'static str, nth: usize, mode: FaultMode, persistent: bool) {
    let Alice {
        account,
        seeded,
        secret,
        ..
    } = alice();
    account.inject(Fault {
        action,
        mode,
        nth,
        times: if persistent { None } else { Some(1) },
    });
    let f = windowed(&account, 1, 1);
    let first = rotate(&f, "first", json!({"user": USER})).await;
    assert!(account.injected() > 0, "{action} #{nth} was never called");
    let mut runs = vec![first.clone()];
    if !first.succeeded() {
        assert!(
            persistent,
            "a fault that strikes once is retried away: {first:#?}"
        );
        account.clear();
        let rerun = rotate(&f, "rerun", json!({"user": USER})).await;
        assert!(rerun.succeeded(), "the rerun finishes it: {rerun:#?}");
        runs.push(rerun);
    }
    check_done(&account, &seeded, &secret, &runs);
}

macro_rules! window_cells {
    ($($name:ident: $action:literal, call $nth:literal);* $(;)?) => {$(
        mod $name {
            use super::*;

            #[tokio::test]
            async fn fails_before_once() {
                window_cell($action, $nth, FaultMode::FailBefore, false).await;
            }

            #[tokio::test]
            async fn fails_before_every_time() {
                window_cell($action, $nth, FaultMode::FailBefore, true).await;
            }

            #[tokio::test]
            async fn loses_response_once() {
                window_cell($action, $nth, FaultMode::LoseResponse, false).await;
            }

            #[tokio::test]
            async fn loses_response_every_time() {
                window_cell($action, $nth, FaultMode::LoseResponse, true).await;
            }
        }
    )*};
}

// The calls the window adds: the record of the window (the first TagResource), the keys'
// last use at the first look and at a later one, and, after the window, the deactivation
// and its records.
window_cells! {
    recording_the_window: "secretsmanager:TagResource", call 1;
    last_use_at_the_first_look: "iam:GetAccessKeyLastUsed", call 1;
    last_use_at_a_later_look: "iam:GetAccessKeyLastUsed", call 3;
    mark_before_deactivating: "secretsmanager:TagResource", call 2;
    deactivating_at_the_cap: "iam:UpdateAccessKey", call 1;
    recording_the_deactivation: "secretsmanager:TagResource", call 3;
    mail_of_the_new_key: "ses:SendEmail", call 1;
}

// ---------------------------------------------------------------- on the local stack

/// The local stack with a 30 s window that ends 2 s after the old key's last use once the
/// new key is used, looked at every second.
fn windowed_stack() -> StackOptions {
    let mut options = StackOptions::default();
    options.function_env.extend(
        [
            ("KEYROTOR_OVERLAP_SECONDS", "30"),
            ("KEYROTOR_CUTOVER_SETTLE_SECONDS", "2"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned())),
    );
    options
}

/// How many times `execution` has entered `state` so far (none while it has not started).
async fn entered(stack: &LocalStack, execution: &str, state: &str) -> usize {
    stack.history(execution).await.map_or(0, |history| {
        history
            .iter()
            .filter(|e| e["type"] == "TaskStateEntered" || e["type"] == "PassStateEntered")
            .filter(|e| e["state"] == state)
            .count()
    })
}

/// A program that uses the old key (STS GetCallerIdentity signed with it, which moto
/// records as the key's last use) and moves to the new one on the emulator: the real ASL,
/// the real binaries, the SDK on the wire. The old key is deactivated only after the
/// move, with `why: idle`, then deleted.
#[test]
fn on_the_emulator_a_program_moves_to_the_new_key_and_then_the_old_one_goes() {
    on_shared_stack(windowed_stack, |stack| async move {
        let user = "ci-bot";
        let old = seed_due_on(stack, user).await;
        let secret = stack.account.secret_of(user).await.expect("secret name");
        let arn = stack
            .account
            .caller_arn(&old.id, &old.secret)
            .await
            .expect("the old key works");
        // The execution `rotate_beside` starts, named after the user.
        let execution = format!(
            "{}:{user}",
            stack
                .state_machine_arn
                .replacen(":stateMachine:", ":execution:", 1)
        );
        let program = async {
            // On the old key, every 300 ms, until the new key is in the secret and the window
            // has been looked at once (so that look saw the old key in use, however slowly
            // the machine got there), and 4 s more.
            let mut switch_at = None;
            let new = loop {
                let caller = stack.account.caller_arn(&old.id, &old.secret).await;
                assert_eq!(
                    caller.ok().as_ref(),
                    Some(&arn),
                    "the old key broke while in use"
                );
                match (switch_at, stack.account.secret_value(&secret).await) {
                    (Some(at), Ok(value)) if Instant::now() >= at => break value,
                    (None, Ok(value))
                        if value["AccessKeyId"] != old.id.as_str()
                            && entered(stack, &execution, "CheckCutover").await > 0 =>
                    {
                        switch_at = Some(Instant::now() + Duration::from_secs(4));
                    }
                    _ => {}
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            };
            let last_old_use = Utc::now();
            let new_id = new["AccessKeyId"].as_str().expect("key ID").to_owned();
            let new_secret = new["SecretAccessKey"].as_str().expect("secret").to_owned();
            // Moved: the program reads the new key from the secret and signs with it.
            let deadline = Instant::now() + Duration::from_secs(60);
            while active_on(stack, user, &old.id).await {
                let caller = stack.account.caller_arn(&new_id, &new_secret).await;
                assert_eq!(caller.ok().as_ref(), Some(&arn), "the new key works");
                assert!(
                    Instant::now() < deadline,
                    "the old key was never deactivated"
                );
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            (new_id, new_secret, last_old_use)
        };
        let started = Utc::now();
        let (ran, out, (new_id, new_secret, last_old_use)) =
            rotate_beside(stack, user, program).await;
        assert_eq!(ran, execution);
        assert_eq!(out["deactivated"]["why"], "idle", "{out:#}");
        let at = time(&out["deactivated"]["deactivatedAt"]);
        assert!(
            at >= last_old_use + chrono::Duration::seconds(1),
            "deactivated at {at}, the old key was last used at {last_old_use}"
        );
        assert!(
            at < started + chrono::Duration::seconds(30),
            "before the cap"
        );
        assert_eq!(out["deleted"]["outcome"], "deleted", "{out:#}");
        let keys = stack.account.keys(user).await.expect("keys");
        assert_eq!(keys, [(new_id.clone(), "Active".to_owned())]);
        assert_eq!(
            stack.account.caller_arn(&new_id, &new_secret).await.ok(),
            Some(arn)
        );
        // The window in the history: opened once, looked at until the switch.
        assert_eq!(entered(stack, &execution, "NotifyNewKey").await, 1);
        let looks = entered(stack, &execution, "CheckCutover").await;
        assert!(looks >= 2, "{looks}");
        let history = stack.history(&execution).await.expect("history");
        let text = serde_json::to_string(&history).unwrap_or_default();
        assert!(!text.contains(&new_secret) && !text.contains(&old.secret));
    });
}

/// The operator's `keyrotor` command, as `cargo build --workspace --bins` (which `make
/// test` runs first) leaves it.
fn operator_cli(stack: &LocalStack, args: &[&str]) -> std::process::Output {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || keyrotor_localstack::workspace_root().join("target"),
        Into::into,
    );
    let binary = target.join("debug/keyrotor");
    assert!(
        binary.exists(),
        "{} is missing: run cargo build --workspace --bins",
        binary.display()
    );
    stack
        .operator_command(&binary)
        .args(args)
        .output()
        .expect("keyrotor runs")
}

/// An operator gives the window more time once (a second time is refused), then ends it:
/// `keyrotor extend` and `keyrotor cutover` against the running execution. (It found that
/// keyrotor's canonical form of a secret's policy depended on the order of its keys: see
/// `policies::keyrotors_policy_read_back_with_its_keys_in_another_order_is_still_keyrotors`.)
#[test]
fn on_the_emulator_an_operator_extends_the_window_once_then_cuts_over() {
    on_shared_stack(windowed_stack, |stack| async move {
        let user = "ops-bot";
        let old = seed_due_on(stack, user).await.id;
        let secret = stack.account.secret_of(user).await.expect("secret name");
        let refused = operator_cli(stack, &["cutover", user]);
        assert_eq!(refused.status.code(), Some(1), "no window yet: {refused:?}");
        let operator = async {
            let deadline = Instant::now() + Duration::from_secs(60);
            let window = |tags: &[aws_sdk_secretsmanager::types::Tag], key: &str| {
                tags.iter()
                    .find(|t| t.key() == Some(key))
                    .and_then(|t| t.value().map(str::to_owned))
            };
            let tags = || async {
                stack
                    .account
                    .secrets
                    .describe_secret()
                    .secret_id(&secret)
                    .send()
                    .await
                    .map(|d| d.tags().to_vec())
                    .unwrap_or_default()
            };
            while window(&tags().await, naming::TAG_OVERLAP_UNTIL).is_none() {
                assert!(Instant::now() < deadline, "no window opened");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            let extend = operator_cli(stack, &["extend", user, "--days", "2"]);
            assert_eq!(extend.status.code(), Some(0), "{extend:?}");
            let said = String::from_utf8_lossy(&extend.stdout).into_owned();
            assert!(said.contains("keyrotor:extend="), "{said}");
            while window(&tags().await, naming::TAG_OVERLAP_EXTENDED).as_deref() != Some("true") {
                assert!(
                    Instant::now() < deadline,
                    "the extension was never recorded"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            let again = operator_cli(stack, &["extend", user]);
            assert_eq!(again.status.code(), Some(1), "{again:?}");
            assert!(
                String::from_utf8_lossy(&again.stderr).contains("extended once already"),
                "{again:?}"
            );
            assert!(active_on(stack, user, &old).await);
            let cutover = operator_cli(stack, &["--output", "json", "cutover", user]);
            assert_eq!(cutover.status.code(), Some(0), "{cutover:?}");
            let out: Value = serde_json::from_slice(&cutover.stdout).expect("JSON");
            assert_eq!(out["oldKeyId"], old.as_str(), "{out}");
            assert_eq!(out["tag"]["key"], naming::USER_TAG_CUTOVER, "{out}");
        };
        let (_, out, ()) = rotate_beside(stack, user, operator).await;
        assert_eq!(out["deactivated"]["why"], "owner", "{out:#}");
        assert_eq!(out["deactivated"]["window"]["extended"], true, "{out:#}");
        assert_eq!(out["deleted"]["outcome"], "deleted", "{out:#}");
    });
}
