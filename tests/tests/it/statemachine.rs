//! Static checks of both state machines (`statemachine/scan.asl.json` and
//! `statemachine/rotate-user.asl.json`): placeholders, structure, the one retry policy and
//! the one failure path of every Task, error names against what the functions really emit,
//! and npm asl-validator.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use keyrotor_core::error::{Backoff, LAMBDA_SERVICE_ERRORS, LAMBDA_SERVICE_RETRY};
use keyrotor_core::ErrorType;
use keyrotor_localstack::stack::{local_substitutions, Machine, FUNCTIONS};
use keyrotor_localstack::workspace_root;
use serde_json::{json, Value};

fn raw(machine: Machine) -> String {
    std::fs::read_to_string(machine.asl_path()).expect("ASL file")
}

fn definition(machine: Machine) -> Value {
    let text = machine
        .local_definition(false)
        .expect("every placeholder has a value");
    serde_json::from_str(&text).expect("the substituted ASL is JSON")
}

fn states(def: &Value) -> &serde_json::Map<String, Value> {
    def["States"].as_object().expect("States")
}

fn targets(state: &Value) -> Vec<&str> {
    let mut out = Vec::new();
    for key in ["Next", "Default"] {
        if let Some(t) = state[key].as_str() {
            out.push(t);
        }
    }
    for list in ["Choices", "Catch"] {
        for item in state[list].as_array().into_iter().flatten() {
            if let Some(t) = item["Next"].as_str() {
                out.push(t);
            }
        }
    }
    out
}

fn placeholders(text: &str) -> BTreeSet<String> {
    text.split("${")
        .skip(1)
        .filter_map(|rest| rest.split_once('}').map(|(name, _)| name.to_owned()))
        .collect()
}

#[test]
fn each_machine_uses_only_its_own_placeholders_and_no_arn() {
    let function = |name: &str| {
        FUNCTIONS
            .iter()
            .find(|(_, package)| *package == name)
            .map(|(placeholder, _)| (*placeholder).to_owned())
            .expect("a function")
    };
    let expected: BTreeMap<Machine, BTreeSet<String>> = [
        (
            Machine::Scan,
            ["list-users", "assess-key-age", "start-rotations", "notify"]
                .map(function)
                .into_iter()
                .collect(),
        ),
        (
            Machine::RotateUser,
            [
                "assess-key-age",
                "create-key",
                "deliver-key",
                "deactivate-key",
                "notify",
                "delete-key",
            ]
            .map(function)
            .into_iter()
            .chain(["AllowForce".to_owned()])
            .collect(),
        ),
        (
            Machine::Organization,
            ["list-accounts", "scan-accounts", "notify"]
                .map(function)
                .into_iter()
                .chain(["AccountPollSeconds".to_owned()])
                .collect(),
        ),
    ]
    .into();
    for machine in Machine::ALL {
        let text = raw(machine);
        assert_eq!(placeholders(&text), expected[&machine], "{machine:?}");
        assert!(!text.contains("arn:aws"), "{machine:?} holds an ARN");
    }
}

#[test]
fn every_transition_target_exists_and_every_state_is_reachable() {
    for machine in Machine::ALL {
        let def = definition(machine);
        let states = states(&def);
        let start = def["StartAt"].as_str().expect("StartAt");
        assert!(states.contains_key(start));
        let mut seen = BTreeSet::new();
        let mut todo = vec![start];
        while let Some(name) = todo.pop() {
            if !seen.insert(name) {
                continue;
            }
            let state = &states[name];
            let ty = state["Type"].as_str().expect("Type");
            let next = targets(state);
            for t in &next {
                assert!(
                    states.contains_key(*t),
                    "{machine:?}: {name} goes to missing state {t}"
                );
            }
            let terminal = matches!(ty, "Succeed" | "Fail") || state["End"] == Value::Bool(true);
            assert!(
                terminal || !next.is_empty(),
                "{machine:?}: {name} goes nowhere"
            );
            todo.extend(next);
        }
        let unreachable: Vec<_> = states
            .keys()
            .filter(|k| !seen.contains(k.as_str()))
            .collect();
        assert!(
            unreachable.is_empty(),
            "{machine:?}: unreachable states: {unreachable:?}"
        );
    }
}

fn rule(errors: Vec<&str>, backoff: Backoff) -> Value {
    json!({
        "ErrorEquals": errors,
        "IntervalSeconds": backoff.first_interval_secs,
        "MaxAttempts": backoff.max_attempts,
        "BackoffRate": Backoff::RATE,
        "MaxDelaySeconds": Backoff::MAX_DELAY_SECS,
        "JitterStrategy": "FULL",
    })
}

/// The one retry policy, from `ErrorType::retry`: the Lambda service's errors, then one
/// rule per schedule for the function errors that have one (order-free: no error name is
/// in two rules).
fn the_retry_policy() -> BTreeSet<String> {
    let mut by_backoff: Vec<(Backoff, Vec<&str>)> = Vec::new();
    for ty in ErrorType::ALL {
        let Some(backoff) = ty.retry() else { continue };
        match by_backoff.iter_mut().find(|(b, _)| *b == backoff) {
            Some((_, errors)) => errors.push(ty.as_str()),
            None => by_backoff.push((backoff, vec![ty.as_str()])),
        }
    }
    std::iter::once(rule(LAMBDA_SERVICE_ERRORS.to_vec(), LAMBDA_SERVICE_RETRY))
        .chain(by_backoff.into_iter().map(|(b, errors)| rule(errors, b)))
        .map(|r| r.to_string())
        .collect()
}

/// A failure step: tells the admin (`kind: failure`) and ends in `Fail`.
fn is_failure_report(state: &Value) -> bool {
    state["Type"] == "Task" && state["Parameters"]["kind"] == "failure"
}

/// An admin's report that an owner's mail failed (`kind: undelivered`).
fn is_undelivered_report(state: &Value) -> bool {
    state["Type"] == "Task" && state["Parameters"]["kind"] == "undelivered"
}

#[test]
fn every_task_retries_by_the_one_policy_and_catches_into_the_one_failure_path() {
    let policy = the_retry_policy();
    let function_arns: BTreeSet<String> = local_substitutions(true)
        .into_iter()
        .filter(|(k, _)| k.ends_with("FunctionArn"))
        .map(|(_, v)| v)
        .collect();
    let catch = |result_path: &str, next: &str| json!([{"ErrorEquals": ["States.ALL"], "ResultPath": result_path, "Next": next}]);
    let mut tasks = 0;
    for machine in Machine::ALL {
        let def = definition(machine);
        let states = states(&def);
        // The machine's one failure path: report, then fail with the step's error.
        let failure: Vec<&String> = states
            .iter()
            .filter(|(_, s)| is_failure_report(s))
            .map(|(name, _)| name)
            .collect();
        assert_eq!(failure, ["NotifyFailure"], "{machine:?}");
        assert_eq!(states["NotifyFailure"]["Next"], "Failed");
        assert_eq!(states["Failed"]["Type"], "Fail");
        assert_eq!(states["Failed"]["ErrorPath"], "$.error.Error");

        for (name, state) in states.iter().filter(|(_, s)| s["Type"] == "Task") {
            tasks += 1;
            let resource = state["Resource"].as_str().expect("Resource");
            assert!(function_arns.contains(resource), "{name} calls {resource}");
            let retry: BTreeSet<String> = state["Retry"]
                .as_array()
                .unwrap_or_else(|| panic!("{name} has no Retry"))
                .iter()
                .map(Value::to_string)
                .collect();
            assert_eq!(retry, policy, "{machine:?}: {name} retries otherwise");

            let next = state["Next"].as_str().expect("Next");
            let expected = if is_failure_report(state) || is_undelivered_report(state) {
                // A report that fails changes nothing about where the execution goes.
                let path = if is_failure_report(state) {
                    "$.notifyError"
                } else {
                    "$.adminMailError"
                };
                catch(path, next)
            } else if resource.ends_with(":deliver-key") {
                // Delivery is a service to the owner, never a gate: if deliver-key itself
                // fails, the rotation goes on where it would have, and says so.
                let pass = &states["DeliveryNotDone"];
                assert_eq!(pass["Type"], "Pass", "{machine:?}: DeliveryNotDone");
                assert_eq!(pass["Next"], next, "{machine:?}: DeliveryNotDone goes on");
                assert_eq!(pass["ResultPath"], "$.created");
                assert_eq!(pass["Parameters"]["delivery"]["error.$"], "$.deliveryError");
                catch("$.deliveryError", "DeliveryNotDone")
            } else if state["Parameters"]["kind"].is_string() {
                // An owner's mail is a report, never a gate: its failure is reported to
                // the admin, and the execution goes on to where the mail would have led.
                let report = state["Catch"][0]["Next"].as_str().unwrap_or_default();
                assert!(
                    states.get(report).is_some_and(is_undelivered_report),
                    "{machine:?}: {name}'s failure goes to {report}, not an undelivered report"
                );
                assert_eq!(
                    states[report]["Next"], next,
                    "{machine:?}: after {report} the execution goes where {name} leads"
                );
                catch("$.mailError", report)
            } else {
                // A step's failure names the step, then reaches the one failure report.
                let named = format!("{name}Failed");
                let pass = &states[named.as_str()];
                assert_eq!(pass["Type"], "Pass", "{machine:?}: {named}");
                assert_eq!(pass["Result"], name.as_str(), "{machine:?}: {named}");
                assert_eq!(pass["ResultPath"], "$.failedStep", "{machine:?}: {named}");
                reaches_failure_report_with_account(machine, states, &pass["Next"]);
                catch("$.error", &named)
            };
            assert_eq!(
                state["Catch"], expected,
                "{machine:?}: {name} catches otherwise"
            );
        }
    }
    assert!(tasks >= 15, "found only {tasks} tasks");
}

/// From a `<Step>Failed` pass, every way leads to NotifyFailure with `$.account` set: the
/// scan sets it at its start; the per-user machine, whose input may lack it, sets it to
/// `null` on the way if the input had none. The organization machine names no account.
fn reaches_failure_report_with_account(
    machine: Machine,
    states: &serde_json::Map<String, Value>,
    next: &Value,
) {
    match next.as_str() {
        Some("NotifyFailure") if machine == Machine::Organization => {}
        Some("NotifyFailure") => {
            assert_eq!(
                machine,
                Machine::Scan,
                "only the scan sets $.account at its start"
            );
            assert_sets_account(states, "AccountGiven", "ListFirstPage");
        }
        Some("FailureAccountGiven") => {
            assert_sets_account(states, "FailureAccountGiven", "NotifyFailure")
        }
        other => panic!("{machine:?}: a failure pass leads to {other:?}"),
    }
}

/// `choice` goes on to `next` with the input's `$.account`, or sets it to `null` first.
fn assert_sets_account(states: &serde_json::Map<String, Value>, choice: &str, next: &str) {
    let choice = &states[choice];
    assert_eq!(choice["Choices"][0]["Variable"], "$.account");
    assert_eq!(choice["Choices"][0]["IsPresent"], true);
    assert_eq!(choice["Choices"][0]["Next"], next);
    let own = &states[choice["Default"].as_str().expect("Default")];
    assert_eq!(own["Type"], "Pass");
    assert_eq!(own["Result"], Value::Null);
    assert_eq!(own["ResultPath"], "$.account");
    assert_eq!(own["Next"], next);
}

#[test]
fn every_error_name_is_one_a_function_emits() {
    let emitted: BTreeSet<&str> = ErrorType::ALL.iter().map(|t| t.as_str()).collect();
    for machine in Machine::ALL {
        let def = definition(machine);
        for (name, state) in states(&def) {
            for list in ["Retry", "Catch"] {
                for rule in state[list].as_array().into_iter().flatten() {
                    for error in rule["ErrorEquals"].as_array().expect("ErrorEquals") {
                        let error = error.as_str().expect("string");
                        let known = error.starts_with("States.")
                            || LAMBDA_SERVICE_ERRORS.contains(&error)
                            || emitted.contains(error);
                        assert!(
                            known,
                            "{machine:?}: {name}: {error} is emitted by no function"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn every_wait_of_a_rotation_reads_a_time_deactivate_key_gave() {
    // One road for the deletion delay (configuration → deactivate-key's deleteAfter →
    // the Wait) and for the window's polls (nextCheckAt): no Wait counts seconds itself.
    let def = definition(Machine::RotateUser);
    let waits: BTreeMap<&str, &Value> = states(&def)
        .iter()
        .filter(|(_, s)| s["Type"] == "Wait")
        .map(|(name, s)| (name.as_str(), s))
        .collect();
    assert_eq!(
        waits.keys().copied().collect::<Vec<_>>(),
        ["WaitForCutover", "WaitUntilDeletionTime"]
    );
    assert_eq!(
        waits["WaitUntilDeletionTime"]["TimestampPath"],
        "$.deactivated.deleteAfter"
    );
    assert_eq!(
        waits["WaitForCutover"]["TimestampPath"],
        "$.deactivated.nextCheckAt"
    );
    for wait in waits.values() {
        assert!(wait.get("Seconds").is_none() && wait.get("SecondsPath").is_none());
    }
}

#[test]
fn the_scan_starts_no_rotation_itself_and_the_rotation_lists_no_users() {
    // The split: each machine reaches only its own functions.
    let scan = raw(Machine::Scan);
    for step in [
        "CreateKeyFunctionArn",
        "DeliverKeyFunctionArn",
        "DeactivateKeyFunctionArn",
        "DeleteKeyFunctionArn",
    ] {
        assert!(!scan.contains(step), "the scan calls {step}");
    }
    let rotate = raw(Machine::RotateUser);
    for step in ["ListUsersFunctionArn", "StartRotationsFunctionArn"] {
        assert!(!rotate.contains(step), "the per-user machine calls {step}");
    }
}

#[test]
fn asl_validator_accepts_both_definitions() {
    let root = workspace_root();
    let validator = root.join("tools/node_modules/.bin/asl-validator");
    if !validator.exists() {
        let status = Command::new("make")
            .arg("-C")
            .arg(&root)
            .arg("node-tools")
            .status()
            .expect("make");
        assert!(status.success(), "`make node-tools` failed");
    }
    let dir = root.join("target/keyrotor-local");
    std::fs::create_dir_all(&dir).expect("dir");
    for machine in Machine::ALL {
        let file = dir.join(format!("substituted.{}", machine.file_name()));
        std::fs::write(&file, definition(machine).to_string()).expect("write");
        let out = Command::new(&validator)
            .arg("--json-path")
            .arg(&file)
            .output()
            .expect("asl-validator runs");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains("is valid"),
            "{machine:?}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Every step of the scan and per-user machines works in the execution's account: each Task hands its
/// function the `account` the execution was given (`null` for keyrotor's own), so no step
/// of a member account's execution can land in another account. Assess, which gets the
/// whole input, carries it on as `$.assessment.account`.
#[test]
fn every_task_passes_the_executions_account_on() {
    for machine in Machine::ALL {
        let def = definition(machine);
        for (name, state) in states(&def) {
            if state["Type"] != "Task" {
                continue;
            }
            let passed = &state["Parameters"]["account.$"];
            let expected = match (machine, name.as_str()) {
                (Machine::RotateUser, "Assess") => {
                    assert!(state["Parameters"].is_null(), "Assess gets the whole input");
                    continue;
                }
                (Machine::RotateUser, "NotifyFailure") | (Machine::Scan, _) => "$.account",
                (Machine::RotateUser, _) => "$.assessment.account",
                // It works in keyrotor's own account: its account scans get theirs.
                (Machine::Organization, _) => {
                    assert!(passed.is_null(), "{name} passes no account");
                    continue;
                }
            };
            assert_eq!(passed, expected, "{machine:?}: {name}");
        }
    }
    // The scan keeps it in its state from page to page.
    let scan = definition(Machine::Scan);
    let scan = states(&scan);
    assert_eq!(
        scan["ListFirstPage"]["ResultSelector"]["account.$"],
        "$.account"
    );
    assert_eq!(scan["Tally"]["Parameters"]["account.$"], "$.account");
    assert_eq!(scan["ScanDone"]["Parameters"]["account.$"], "$.account");
}
