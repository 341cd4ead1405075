//! The benchmark's Lambda Runtime API (`tests/src/probe.rs`) against a real function
//! binary: `make bench` is not part of `make test`, so this keeps its measuring honest. The
//! binary reaches no AWS endpoint (port 9 on loopback); the events need none.

use std::time::Duration;

use keyrotor_localstack::probe::probe;
use keyrotor_localstack::workspace_root;
use serde_json::json;

fn env() -> Vec<(String, String)> {
    [
        ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "AKIAKEYROTORPROBE000"),
        ("AWS_SECRET_ACCESS_KEY", "probe-secret"),
        (
            "KEYROTOR_STATE_MACHINE_ARN",
            "arn:aws:states:us-east-1:123456789012:stateMachine:keyrotor",
        ),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect()
}

#[tokio::test]
async fn a_function_binary_is_timed_fed_one_event_and_measured() {
    let binary = workspace_root().join("target/debug/start-rotations");
    assert!(
        binary.exists(),
        "{} is missing: `make test` builds the binaries first",
        binary.display()
    );

    let ready = probe(&binary, "start-rotations", &env(), None)
        .await
        .expect("the binary asks for its first event");
    assert!(ready.invocation.is_none());
    assert!(ready.ready > Duration::ZERO && ready.ready < Duration::from_secs(30));

    let event = json!({"users": [], "scanStartedAt": "2026-11-25T06:00:00Z"});
    let answered = probe(&binary, "start-rotations", &env(), Some(&event))
        .await
        .expect("the binary answers");
    let invocation = answered.invocation.expect("one invocation");
    assert_eq!(invocation.response["started"], 0);
    assert_eq!(invocation.response["alreadyStarted"], 0);
    assert!(
        invocation.peak_rss > 1_000_000,
        "peak RSS {} bytes",
        invocation.peak_rss
    );

    // A function error is the probe's error, with the function's error type in it.
    let err = probe(
        &binary,
        "start-rotations",
        &env(),
        Some(&json!({"bogus": 1})),
    )
    .await
    .expect_err("rejected");
    assert!(format!("{err:#}").contains("InvalidInput"), "{err:#}");
}

#[test]
fn a_function_binary_started_outside_lambda_says_so_without_panicking() {
    let binary = workspace_root().join("target/debug/list-users");
    assert!(
        binary.exists(),
        "{} is missing: `make test` builds the binaries first",
        binary.display()
    );
    let out = std::process::Command::new(&binary)
        .env_clear()
        .envs(env())
        .output()
        .expect("the binary runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        stderr.contains("AWS_LAMBDA_RUNTIME_API is not set"),
        "{stderr}"
    );
}
