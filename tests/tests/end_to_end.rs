//! End to end: executions of the real state machine (moto interpreting the ASL) calling the
//! real function binaries (served by `cargo lambda watch` through the local gateway), with
//! the account read back afterwards.

use std::time::Duration;

use aws_sdk_sfn::types::ExecutionStatus;
use keyrotor_tests::account::{aged_key, user_with_aged_key};
use keyrotor_tests::stack::{LocalStack, StackOptions};
use serde_json::json;

const TIMEOUT: Duration = Duration::from_secs(240);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_per_user_execution_rotates_waits_and_deletes() {
    let stack = LocalStack::start(StackOptions::default()).await.expect("stack starts");
    let old = user_with_aged_key(&stack.moto, &stack.account, "alice", &[("Email", "alice@example.com")], 95)
        .await
        .expect("seed");
    let arn = stack.start_execution("adhoc-alice", &json!({"user": "alice"})).await.expect("start");
    let done = stack.wait_for(&arn, TIMEOUT).await.expect("finishes");
    assert_eq!(done.status(), &ExecutionStatus::Succeeded, "{:?}", done.output());
    let keys = stack.account.keys("alice").await.expect("keys");
    assert_eq!(keys.len(), 1);
    assert_ne!(keys[0].0, old.id);
    let _ = aged_key;
}
