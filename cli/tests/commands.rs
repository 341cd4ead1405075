//! Every `keyrotor` subcommand against the local stack (moto executing the real state
//! machine, the real function binaries), run as a process the way an operator runs it.

use std::future::Future;
use std::process::Output;

use keyrotor_localstack::account::user_with_aged_key;
use keyrotor_localstack::stack::{on_shared_stack, LocalStack, StackOptions};
use serde_json::Value;

fn on_stack<F, Fut>(test: F)
where
    F: FnOnce(&'static LocalStack) -> Fut,
    Fut: Future<Output = ()>,
{
    on_shared_stack(StackOptions::default, test);
}

/// Runs `keyrotor ARGS` against the stack, with the state machine found by discovery.
fn keyrotor(stack: &LocalStack, args: &[&str]) -> Output {
    stack
        .operator_command(std::path::Path::new(env!("CARGO_BIN_EXE_keyrotor")))
        .args(args)
        .output()
        .expect("keyrotor runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("JSON output ({e}): {}", stdout(out)))
}

#[test]
fn report_passes_a_compliant_account_and_fails_an_overdue_key() {
    on_stack(|stack| async move {
        let (m, a) = (&stack.moto, &stack.account);
        user_with_aged_key(m, a, "fresh", &[], 10)
            .await
            .expect("seed");
        user_with_aged_key(m, a, "warned", &[], 85)
            .await
            .expect("seed");
        user_with_aged_key(m, a, "exempt", &[("key-rotation:exempt", "true")], 200)
            .await
            .expect("seed");
        a.create_user("keyless", &[]).await.expect("seed");

        let out = keyrotor(stack, &["report"]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}{}",
            stdout(&out),
            stderr(&out)
        );
        let table = stdout(&out);
        assert!(
            table.contains("compliant: no active key past the rotation age"),
            "{table}"
        );
        // The local stack has no deployed functions to read the policy from: the report
        // says it used the shell's settings, and why.
        assert!(
            stderr(&out).contains(
                "policy: this shell's KEYROTOR_* variables (the deployed policy could not be read"
            ),
            "{}",
            stderr(&out)
        );
        assert!(
            table.contains("exempt: never rotated") && table.contains("no access keys"),
            "{table}"
        );

        user_with_aged_key(m, a, "overdue", &[], 120)
            .await
            .expect("seed");
        let out = keyrotor(stack, &["report"]);
        assert_eq!(out.status.code(), Some(3), "{}", stdout(&out));
        assert!(stdout(&out).contains("NOT compliant: 1 active key(s) past 90 days"));

        let out = keyrotor(stack, &["report", "--format", "json"]);
        assert_eq!(out.status.code(), Some(3));
        let report = json(&out);
        assert_eq!(report["overdueKeys"], 1);
        assert_eq!(report["policyDeployed"], false);
        let keys = report["keys"].as_array().expect("keys");
        let overdue: Vec<&Value> = keys.iter().filter(|k| k["overdue"] == true).collect();
        assert_eq!(overdue.len(), 1);
        assert_eq!(overdue[0]["user"], "overdue");
        assert_eq!(overdue[0]["ageDays"], 120);

        let out = keyrotor(stack, &["report", "--format", "csv"]);
        let csv = stdout(&out);
        assert!(
            csv.starts_with("user,key_id,status,age_days,last_used,next,overdue\n"),
            "{csv}"
        );
        assert_eq!(csv.lines().count(), 1 + 5, "{csv}");
    });
}

#[test]
fn rotate_status_and_rerun_follow_a_rotation_through() {
    on_stack(|stack| async move {
        let old = user_with_aged_key(
            &stack.moto,
            &stack.account,
            "alice",
            &[("Email", "alice@example.com")],
            95,
        )
        .await
        .expect("seed");

        let mut outputs = Vec::new();
        let out = keyrotor(stack, &["rotate", "alice", "--wait"]);
        outputs.push(out.clone());
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}{}",
            stdout(&out),
            stderr(&out)
        );
        assert!(stdout(&out).contains("rotated to"), "{}", stdout(&out));
        assert!(
            stderr(&out).contains("waiting for deletion until"),
            "progress shows the wait: {}",
            stderr(&out)
        );
        let keys = stack.account.keys("alice").await.expect("keys");
        assert_eq!(keys.len(), 1);
        assert_ne!(keys[0].0, old.id);

        let out = keyrotor(stack, &["status", "--user", "alice", "--output", "json"]);
        outputs.push(out.clone());
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let rows = json(&out);
        let rows = rows.as_array().expect("rows");
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(rows[0]["status"], "SUCCEEDED");
        assert!(
            rows[0]["stage"]
                .as_str()
                .is_some_and(|s| s.contains("old key deleted")),
            "{rows:?}"
        );
        let arn = rows[0]["executionArn"].as_str().expect("arn").to_owned();

        let out = keyrotor(stack, &["status"]);
        outputs.push(out.clone());
        assert!(
            stdout(&out).contains("alice") && stdout(&out).contains(&arn),
            "{}",
            stdout(&out)
        );

        let out = keyrotor(stack, &["rerun", &arn, "--wait", "--output", "json"]);
        outputs.push(out.clone());
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let rerun = json(&out);
        assert!(
            rerun[0]["stage"]
                .as_str()
                .is_some_and(|s| s.starts_with("nothing to do")),
            "{rerun}"
        );
        assert_eq!(
            stack.account.keys("alice").await.expect("keys").len(),
            1,
            "a rerun changes nothing"
        );
        outputs.push(keyrotor(stack, &["report", "--format", "json"]));
        // Whatever the commands show, they never show the new secret.
        let stored = stack
            .account
            .secret_value(&stack.account.secret_of("alice").await.expect("id"))
            .await
            .expect("secret");
        let secret = stored["SecretAccessKey"].as_str().expect("value");
        for out in &outputs {
            assert!(
                !stdout(out).contains(secret) && !stderr(out).contains(secret),
                "secret in CLI output"
            );
        }
    });
}

#[test]
fn rotate_key_force_replaces_exactly_the_leaked_key() {
    on_stack(|stack| async move {
        // dave's key is young: only a forced rotation by key ID replaces it.
        let leaked = user_with_aged_key(
            &stack.moto,
            &stack.account,
            "dave",
            &[("Email", "dave@example.com")],
            3,
        )
        .await
        .expect("seed");
        let out = keyrotor(
            stack,
            &[
                "rotate",
                "--key",
                &leaked.id,
                "--force",
                "--reason",
                "pasted in a chat",
                "--wait",
                "--output",
                "json",
            ],
        );
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}{}",
            stdout(&out),
            stderr(&out)
        );
        let done = json(&out);
        assert_eq!(done[0]["user"], "dave", "{done}");
        let keys = stack.account.keys("dave").await.expect("keys");
        assert_eq!(keys.len(), 1, "{keys:?}");
        assert_ne!(keys[0].0, leaked.id);
        let mails = stack.moto.sent_emails().expect("mails");
        let why = mails
            .iter()
            .filter(|m| {
                m.body
                    .contains("a responder forced this rotation: pasted in a chat.")
            })
            .count();
        assert!(why >= 2, "owner and admin are told why: {mails:#?}");
        // `status --user` finds the rotation by key under its owner's name.
        let out = keyrotor(stack, &["status", "--user", "dave", "--output", "json"]);
        let rows = json(&out);
        assert!(
            rows.as_array()
                .is_some_and(|r| r.iter().any(|row| row["user"] == "dave"
                    && row["executionArn"]
                        .as_str()
                        .is_some_and(|a| a.contains(":adhoc-key-")))),
            "{rows}"
        );
    });
}

#[test]
fn scan_wait_follows_the_per_user_executions_it_starts() {
    on_stack(|stack| async move {
        let (m, a) = (&stack.moto, &stack.account);
        user_with_aged_key(m, a, "bob", &[("Email", "bob@example.com")], 80)
            .await
            .expect("seed");
        user_with_aged_key(m, a, "erin", &[], 10)
            .await
            .expect("seed");

        let out = keyrotor(stack, &["scan", "--dry-run", "--wait", "--output", "json"]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let rows = json(&out);
        let bob = rows
            .as_array()
            .expect("rows")
            .iter()
            .find(|r| r["user"] == "bob")
            .expect("bob followed")
            .clone();
        assert!(
            bob["stage"]
                .as_str()
                .is_some_and(|s| s.contains("dry run: would warn")),
            "{bob}"
        );
        assert!(
            stack.moto.sent_emails().expect("mails").is_empty(),
            "a dry run sends nothing"
        );

        let out = keyrotor(stack, &["scan", "--wait"]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert!(
            stdout(&out).contains("warned (rotation on"),
            "{}",
            stdout(&out)
        );
        assert_eq!(stack.moto.sent_emails().expect("mails").len(), 1);
    });
}

#[test]
fn bad_arguments_and_unknown_things_are_one_clear_line() {
    on_stack(|stack| async move {
        stack.account.create_user("carol", &[]).await.expect("seed");
        let machine = stack.state_machine_arn.replace(":keyrotor", ":missing");
        let unknown_execution = stack
            .state_machine_arn
            .replace(":stateMachine:", ":execution:")
            + ":nope";
        let cases: [(&[&str], i32, &str); 13] = [
            (&["rotate", "bad name!"], 1, "is not an IAM user name"),
            (&["rotate", "ghost"], 1, "unknown user ghost"),
            (&["rerun", "not-an-arn"], 1, "is not an execution ARN"),
            (&["rerun", &unknown_execution], 1, "unknown execution"),
            (
                &["status", "--state-machine", &machine],
                1,
                "unknown state machine",
            ),
            (&["status", "--since", "0"], 2, "--since"),
            (&["rotate"], 2, "USER"),
            (&["rotate", "--key", "AKIAIOSFODNN7EXAMPLE"], 2, "--force"),
            (&["rotate", "carol", "--reason", "leak"], 2, "--force"),
            (
                &[
                    "rotate",
                    "carol",
                    "--key",
                    "AKIAIOSFODNN7EXAMPLE",
                    "--force",
                ],
                2,
                "cannot be used with",
            ),
            (&["rotate", "--key", "akia-nope", "--force"], 1, "--key"),
            (
                &["rotate", "carol", "--force", "--reason", "two\nlines"],
                1,
                "--reason",
            ),
            (
                &["rotate", "--key", "AKIAIOSFODNN7EXAMPLE", "--force"],
                1,
                "unknown key AKIAIOSFODNN7EXAMPLE",
            ),
        ];
        for (args, code, needle) in cases {
            let out = keyrotor(stack, args);
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
            assert!(err.contains(needle), "{args:?}: {err}");
            if code == 1 {
                assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
                assert!(err.starts_with("error: "), "{err}");
            }
        }
        // Discovery refuses to guess between two keyrotor-like state machines.
        stack
            .account
            .sfn
            .create_state_machine()
            .name("staging-keyrotor-rotate")
            .definition(r#"{"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}"#)
            .role_arn("arn:aws:iam::123456789012:role/x")
            .send()
            .await
            .expect("second machine");
        let out = keyrotor(stack, &["status"]);
        assert_eq!(out.status.code(), Some(1));
        assert!(
            stderr(&out).contains("several state machines"),
            "{}",
            stderr(&out)
        );
        // Nothing was started by any of it.
        let executions = stack.executions().await.expect("list");
        assert!(executions.is_empty(), "{executions:?}");
    });
}
