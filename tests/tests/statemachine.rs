//! Static checks of `statemachine/key-rotation.asl.json`: placeholders, structure, error
//! names against what the functions really emit, and npm asl-validator.

use std::collections::{BTreeSet, HashMap};
use std::process::Command;

use keyrotor_core::ErrorType;
use keyrotor_tests::stack::{asl_path, local_substitutions, substitute, FUNCTIONS};
use keyrotor_tests::workspace_root;
use serde_json::Value;

const LAMBDA_ERRORS: [&str; 4] = [
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
];

fn raw() -> String {
    std::fs::read_to_string(asl_path()).expect("ASL file")
}

fn definition() -> Value {
    let text = substitute(&raw(), &local_substitutions(604_800, false))
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

#[test]
fn only_the_documented_placeholders_are_used_and_no_arn() {
    let text = raw();
    let used: BTreeSet<String> = text
        .split("${")
        .skip(1)
        .filter_map(|rest| rest.split_once('}').map(|(name, _)| name.to_owned()))
        .collect();
    let mut allowed: BTreeSet<String> = FUNCTIONS.iter().map(|(p, _)| (*p).to_owned()).collect();
    allowed.insert("DeletionDelaySeconds".into());
    allowed.insert("AllowForce".into());
    assert_eq!(used, allowed);
    assert!(!text.contains("arn:aws"), "the ASL holds no ARNs");
}

#[test]
fn every_transition_target_exists_and_every_state_is_reachable() {
    let def = definition();
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
            assert!(states.contains_key(*t), "{name} goes to missing state {t}");
        }
        let terminal = matches!(ty, "Succeed" | "Fail") || state["End"] == Value::Bool(true);
        assert!(terminal || !next.is_empty(), "{name} goes nowhere");
        todo.extend(next);
    }
    let unreachable: Vec<_> = states
        .keys()
        .filter(|k| !seen.contains(k.as_str()))
        .collect();
    assert!(
        unreachable.is_empty(),
        "unreachable states: {unreachable:?}"
    );
}

#[test]
fn every_error_name_is_one_a_function_emits_and_every_task_retries_and_catches() {
    let def = definition();
    let emitted: BTreeSet<&str> = ErrorType::ALL.iter().map(|t| t.as_str()).collect();
    let retryable: BTreeSet<&str> = ErrorType::ALL
        .iter()
        .filter(|t| t.is_retryable())
        .map(|t| t.as_str())
        .collect();
    let function_arns: BTreeSet<String> = local_substitutions(1, true)
        .into_iter()
        .filter(|(k, _)| k.ends_with("FunctionArn"))
        .map(|(_, v)| v)
        .collect();
    let mut tasks = 0;
    for (name, state) in states(&def) {
        let mut retried = BTreeSet::new();
        for (list, is_retry) in [("Retry", true), ("Catch", false)] {
            for rule in state[list].as_array().into_iter().flatten() {
                for error in rule["ErrorEquals"].as_array().expect("ErrorEquals") {
                    let error = error.as_str().expect("string");
                    let known = error.starts_with("States.")
                        || LAMBDA_ERRORS.contains(&error)
                        || emitted.contains(error);
                    assert!(known, "{name}: {error} is emitted by no function");
                    if is_retry {
                        retried.insert(error.to_owned());
                    }
                }
            }
        }
        if state["Type"] == "Task" {
            tasks += 1;
            let resource = state["Resource"].as_str().expect("Resource");
            assert!(function_arns.contains(resource), "{name} calls {resource}");
            for e in LAMBDA_ERRORS.iter().chain(&retryable) {
                assert!(retried.contains(*e), "{name} does not retry {e}");
            }
            let catches_all = state["Catch"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["ErrorEquals"][0] == "States.ALL");
            assert!(catches_all, "{name} does not catch the rest");
            for rule in state["Retry"].as_array().into_iter().flatten() {
                assert!(
                    rule["BackoffRate"].as_f64().is_some_and(|b| b >= 1.5),
                    "{name}: backoff"
                );
                assert_eq!(rule["JitterStrategy"], "FULL", "{name}: jitter");
            }
        }
    }
    assert!(tasks >= 10, "found only {tasks} tasks");
}

#[test]
fn the_wait_before_deletion_uses_the_deletion_delay() {
    let def = definition();
    let waits: HashMap<&String, &Value> = states(&def)
        .iter()
        .filter(|(_, s)| s["Type"] == "Wait")
        .collect();
    assert!(waits.values().any(|w| w["Seconds"] == 604_800), "{waits:?}");
}

#[test]
fn asl_validator_accepts_the_definition() {
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
    let file = dir.join("key-rotation.substituted.asl.json");
    std::fs::write(&file, definition().to_string()).expect("write");
    let out = Command::new(&validator)
        .arg("--json-path")
        .arg(&file)
        .output()
        .expect("asl-validator runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("is valid"),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
