//! Reliability under faults and races, end to end through the real state machine and
//! binaries: the fault proxy in front of moto fails chosen AWS operations before they are
//! applied, or applies them and loses the response; the invariant checker reads the account
//! back after every scenario.
//!
//! The whole matrix (every call x fail-before/lose-response x once/every time) runs
//! in-process in `fault_matrix.rs`, in under a second. Here runs the subset where the wire
//! and the service matter: the SDK's own retries of a throttled call, CreateAccessKey that
//! must never be resent, a dropped connection after a write, STS refusing a new key once,
//! throttled calls the SDK's own retry absorbs.

use std::future::Future;
use std::time::{Duration, Instant};

use aws_sdk_sfn::types::ExecutionStatus;
use futures_util::future::join_all;
use keyrotor_localstack::account::{user_with_aged_key, SeededKey};
use keyrotor_localstack::stack::{execution_output, on_shared_stack, LocalStack, StackOptions};
use keyrotor_tests::invariants::{check_user, leak_hits, UserCase};
use serde_json::{json, Value};

const TIMEOUT: Duration = Duration::from_secs(600);

/// The cells run on the emulator: (operation as the proxy names it, short name, mode,
/// every time). The rest of the matrix runs in-process (`fault_matrix.rs`).
const CELLS: [(&str, &str, &str, bool); 7] = [
    // Never resent by the SDK; a lost reply leaves a key only reconciliation finds. (Every
    // time, and the rerun after the failed execution, run in-process, and a failed execution
    // finished by a rerun runs in end_to_end.rs: on the emulator they would mostly wait out
    // Step Functions' backoff.)
    ("iam:CreateAccessKey", "createkey", "lose_response", false),
    // The version ID makes a repeated write a no-op on the real service.
    (
        "secretsmanager:PutSecretValue",
        "putvalue",
        "lose_response",
        false,
    ),
    // Refused once by real STS: the verifier's own retry through the SDK absorbs it.
    ("sts:GetCallerIdentity", "sts", "fail_before", false),
    // Throttled once: the SDK's own retry absorbs it.
    ("iam:UpdateAccessKey", "deactivate", "fail_before", false),
    ("secretsmanager:TagResource", "tag", "lose_response", false),
    ("iam:DeleteAccessKey", "deletekey", "lose_response", false),
    // SES throttles the owner's mail once. (SES refusing it every time is in adversaries.rs
    // and in-process: here it would mostly wait out two rounds of Step Functions' backoff.)
    ("ses:SendEmail", "email", "fail_before", false),
];

fn on_stack<F, Fut>(test: F)
where
    F: FnOnce(&'static LocalStack) -> Fut,
    Fut: Future<Output = ()>,
{
    on_shared_stack(StackOptions::default, test);
}

fn owner_address(user: &str) -> String {
    format!("{user}@example.com")
}

#[derive(Debug, Clone)]
struct Cell {
    operation: &'static str,
    user: String,
    mode: &'static str,
    kind: &'static str,
    persistent: bool,
    /// What the faulted request's body must contain: the user's name, or for Secrets
    /// Manager the user's unique ID (secrets are named by it; set once the user exists).
    target: String,
}

impl Cell {
    fn rule(&self) -> Value {
        let mut rule = json!({
            "operation": self.operation,
            "mode": self.mode,
            "kind": self.kind,
            "times": if self.persistent { -1 } else { 1 },
        });
        // STS requests name no user: those rules apply to whatever verification comes. Mail
        // fails for the owner's address only: the admin hears of it, and the rotation goes on.
        if self.operation == "ses:SendEmail" {
            rule["match"] = json!(owner_address(&self.user));
        } else if !self.operation.starts_with("sts:") {
            rule["match"] = json!(self.target);
        }
        rule
    }
}

fn cells() -> Vec<Cell> {
    CELLS
        .iter()
        .map(|&(operation, short, mode, persistent)| {
            let kind = match (mode, persistent) {
                ("fail_before", false) => "throttle",
                ("fail_before", true) => "503",
                (_, false) => "500",
                (_, true) => "drop",
            };
            let m = if mode == "fail_before" {
                "before"
            } else {
                "lost"
            };
            let user = format!(
                "f-{short}-{m}-{}",
                if persistent { "persistent" } else { "once" }
            );
            Cell {
                operation,
                target: user.clone(),
                user,
                mode,
                kind,
                persistent,
            }
        })
        .collect()
}

async fn wait(stack: &LocalStack, arn: &str) -> (ExecutionStatus, Value) {
    let done = stack.wait_for(arn, TIMEOUT).await.expect("execution ends");
    let output = execution_output(&done).unwrap_or(Value::Null);
    (done.status().clone(), output)
}

/// Runs one cell: a rotation under the fault; if it fails, the fault is removed and a new
/// run must finish it. Returns the outcome for the matrix.
async fn run_cell(stack: &LocalStack, cell: &Cell, seeded: &SeededKey) -> Result<String, String> {
    let first = stack
        .start_execution(&format!("{}-1", cell.user), &json!({"user": cell.user}))
        .await
        .map_err(|e| e.to_string())?;
    let outcome = match wait(stack, &first).await {
        // A mail that cannot be sent is reported to the admin, and the rotation goes on.
        (ExecutionStatus::Succeeded, out) if out.get("mailError").is_some() => {
            "went on, the admin told of the undelivered mail".to_owned()
        }
        (ExecutionStatus::Succeeded, _) => "recovered by retries".to_owned(),
        (ExecutionStatus::Failed, _) => {
            // The operator fixes the cause, then reruns (moto has no redrive).
            clear_rule(stack, cell);
            let second = stack
                .start_execution(&format!("{}-2", cell.user), &json!({"user": cell.user}))
                .await
                .map_err(|e| e.to_string())?;
            match wait(stack, &second).await {
                (ExecutionStatus::Succeeded, _) => "failed, rerun finished".to_owned(),
                (other, _) => return Err(format!("rerun ended {other:?}")),
            }
        }
        (other, _) => return Err(format!("ended {other:?}")),
    };
    let case = UserCase {
        user: &cell.user,
        seeded: std::slice::from_ref(seeded),
        secret_name: stack
            .account
            .secret_of(&cell.user)
            .await
            .map_err(|e| format!("{e:#}"))?,
        expect_rotated: true,
    };
    check_user(&stack.account, &case)
        .await
        .map_err(|e| format!("{e:#}"))?;
    Ok(outcome)
}

fn clear_rule(stack: &LocalStack, cell: &Cell) {
    let rule = cell.rule();
    let stats = stack.proxy_stats().expect("stats");
    let rules: Vec<Value> = stats["rules"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r["operation"] != cell.operation || r.get("match") != rule.get("match"))
        .collect();
    stack.set_faults(json!(rules)).expect("rules");
}

#[test]
fn rotation_calls_failing_on_the_wire_keep_every_invariant() {
    on_stack(|stack| async move {
        let t0 = Instant::now();
        stack.reset_proxy().expect("reset");
        let all = cells();
        // STS calls carry no user name, so a persistent STS fault would hit every rotation
        // running at the time: those cells run on their own, after the others.
        let (alone, together): (Vec<Cell>, Vec<Cell>) = all
            .iter()
            .cloned()
            .partition(|c| c.operation.starts_with("sts:") && c.persistent);
        let mut results: Vec<(Cell, Result<String, String>)> = Vec::new();
        let mut seeded_secrets = Vec::new();
        let batches = std::iter::once(together).chain(alone.into_iter().map(|cell| vec![cell]));
        for batch in batches {
            let mut seeded = Vec::new();
            let mut batch = batch;
            for cell in &mut batch {
                let key = user_with_aged_key(
                    &stack.moto,
                    &stack.account,
                    &cell.user,
                    &[("Email", &owner_address(&cell.user))],
                    95,
                )
                .await
                .expect("seed");
                if cell.operation.starts_with("secretsmanager:") {
                    cell.target = stack.account.user_id(&cell.user).await.expect("user id");
                }
                seeded_secrets.push(key.secret.clone());
                seeded.push(key);
            }
            stack
                .set_faults(json!(batch.iter().map(Cell::rule).collect::<Vec<_>>()))
                .expect("rules");
            let runs = batch
                .iter()
                .zip(&seeded)
                .map(|(cell, key)| run_cell(stack, cell, key));
            let outcomes = join_all(runs).await;
            stack.set_faults(json!([])).expect("clear");
            results.extend(batch.into_iter().zip(outcomes));
        }

        let injected = stack.proxy_stats().expect("stats")["injected"]
            .as_array()
            .map_or(0, Vec::len);
        println!(
            "\nfault matrix ({} cells, {injected} faults injected, {:.0?}):",
            results.len(),
            t0.elapsed()
        );
        println!(
            "  {:<34} {:<14} {:<10} {:<11} outcome",
            "operation", "mode", "kind", "duration"
        );
        for (cell, result) in &results {
            let outcome = match result {
                Ok(o) => format!("ok: {o}"),
                Err(e) => format!("FAILED: {e}"),
            };
            println!(
                "  {:<34} {:<14} {:<10} {:<11} {outcome}",
                cell.operation,
                cell.mode,
                cell.kind,
                if cell.persistent {
                    "persistent"
                } else {
                    "once"
                }
            );
        }
        let failed: Vec<_> = results
            .iter()
            .filter(|(_, r)| r.is_err())
            .map(|(c, r)| format!("{}: {:?}", c.user, r))
            .collect();
        let passed = results.len() - failed.len();
        println!("fault matrix: {passed} passed, {} failed", failed.len());
        assert!(failed.is_empty(), "{failed:#?}");
        let stats = stack.proxy_stats().expect("stats");
        let never: Vec<&str> = results
            .iter()
            .map(|(cell, _)| cell)
            .filter(|cell| {
                let rule = cell.rule();
                !stats["injected"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|i| i["operation"] == cell.operation && i["match"] == rule["match"])
            })
            .map(|cell| cell.user.as_str())
            .collect();
        assert!(
            never.is_empty(),
            "cells whose fault never struck ({injected} injected): {never:?}"
        );

        // Invariant 6 over everything this produced: the secret of every key the functions
        // created, including those whose reply the proxy dropped, and the seeded ones.
        let mut secrets: Vec<String> =
            serde_json::from_value(stack.proxy_stats().expect("stats")["issuedSecrets"].clone())
                .expect("issued secrets");
        let issued = secrets.len();
        secrets.extend(seeded_secrets);
        let log = std::fs::read_to_string(&stack.functions_log).unwrap_or_default();
        let mut histories = Vec::new();
        for e in stack.executions().await.expect("list") {
            histories.push(
                serde_json::to_string(&stack.history(e.execution_arn()).await.expect("history"))
                    .expect("json"),
            );
        }
        let mails: Vec<String> = stack
            .moto
            .sent_emails()
            .expect("mails")
            .into_iter()
            .map(|m| m.subject + &m.body)
            .collect();
        let mut texts: Vec<&str> = vec![log.as_str()];
        texts.extend(histories.iter().map(String::as_str));
        texts.extend(mails.iter().map(String::as_str));
        let hits = leak_hits(&secrets, &texts);
        println!(
            "leak scan: {} secrets ({issued} issued by CreateAccessKey through the functions, lost replies \
             included) searched in {} execution histories, the function log and {} e-mails: {hits} hits",
            secrets.len(),
            histories.len(),
            mails.len()
        );
        assert_eq!(hits, 0, "a secret value leaked");
        assert!(
            issued >= results.len(),
            "every rotation issued a key ({issued})"
        );
    });
}

#[test]
fn concurrent_executions_for_one_user_make_exactly_one_new_key() {
    on_stack(|stack| async move {
        const TRIALS: usize = 4;
        let mut seeded = Vec::new();
        for i in 0..TRIALS {
            let user = format!("race-{i}");
            seeded.push(
                user_with_aged_key(&stack.moto, &stack.account, &user, &[], 95)
                    .await
                    .expect("seed"),
            );
        }
        // A scheduled per-user execution and an ad hoc one for the same user, started together.
        let starts = (0..TRIALS).map(|i| async move {
            let user = format!("race-{i}");
            let input = json!({ "user": user });
            let forced = json!({ "user": user, "force": true });
            let (scheduled, adhoc) = (
                format!("scheduled-20261125-{user}"),
                format!("adhoc-{user}"),
            );
            let (a, b) = tokio::join!(
                stack.start_execution(&scheduled, &input),
                stack.start_execution(&adhoc, &forced),
            );
            (a.expect("scheduled"), b.expect("ad hoc"))
        });
        let started = join_all(starts).await;
        // Two scans started together over three more users.
        let mut scanned = Vec::new();
        for i in 0..3 {
            let user = format!("scanned-{i}");
            scanned.push((
                user.clone(),
                user_with_aged_key(&stack.moto, &stack.account, &user, &[], 100)
                    .await
                    .expect("seed"),
            ));
        }
        let scan_input = json!({});
        let (s1, s2) = tokio::join!(
            stack.start_scan("scan-a", &scan_input),
            stack.start_scan("scan-b", &scan_input)
        );
        // The scans first: what they start is then listed by wait_all.
        wait(stack, &s1.expect("scan a")).await;
        wait(stack, &s2.expect("scan b")).await;
        for (a, b) in &started {
            wait(stack, a).await;
            wait(stack, b).await;
        }
        stack.wait_all(TIMEOUT).await.expect("all finish");

        let mut failures = Vec::new();
        for (i, key) in seeded.iter().enumerate() {
            let user = format!("race-{i}");
            let case = UserCase {
                user: &user,
                seeded: std::slice::from_ref(key),
                secret_name: stack.account.secret_of(&user).await.expect("user id"),
                expect_rotated: true,
            };
            if let Err(e) = check_user(&stack.account, &case).await {
                failures.push(format!("{e:#}"));
            }
        }
        for (user, key) in &scanned {
            let case = UserCase {
                user,
                seeded: std::slice::from_ref(key),
                secret_name: stack.account.secret_of(user).await.expect("user id"),
                expect_rotated: true,
            };
            if let Err(e) = check_user(&stack.account, &case).await {
                failures.push(format!("{e:#}"));
            }
        }
        let executions = stack.executions().await.expect("list");
        let per_user_scan_runs = executions
            .iter()
            .filter(|e| e.name().contains("-scanned-"))
            .count();
        let mut failed = Vec::new();
        for e in executions
            .iter()
            .filter(|e| e.status() != &ExecutionStatus::Succeeded)
        {
            let d = stack
                .wait_for(e.execution_arn(), TIMEOUT)
                .await
                .expect("describe");
            failed.push(format!("{}: {:?} {:?}", e.name(), d.error(), d.cause()));
        }
        println!(
            "races: {TRIALS} trials of a scheduled and an ad hoc execution together, and 2 scans together over 3 users: \
             {} executions, {} not succeeded, {} invariant failures; {per_user_scan_runs} per-user executions from the two scans",
            executions.len(),
            failed.len(),
            failures.len()
        );
        assert!(failures.is_empty(), "{failures:#?}");
        assert_eq!(
            per_user_scan_runs, 3,
            "two scans together start one execution per user"
        );
        assert!(
            failed.is_empty(),
            "executions that did not succeed: {failed:?}"
        );
    });
}
