//! What the suites on the local stack share: a per-user execution run beside a program, and
//! a key's status there.

use std::time::Duration;

use keyrotor_localstack::account::{SeededKey, TestUser};
use keyrotor_localstack::stack::{execution_output, LocalStack};
use serde_json::{json, Value};

/// Runs a per-user execution for `user` (named after it) while `alongside` runs; the
/// execution's ARN and output, once it has succeeded, and what `alongside` gave. Panics
/// (the test fails) if it does not succeed within three minutes.
pub async fn rotate_beside<T>(
    stack: &LocalStack,
    user: &str,
    alongside: impl std::future::Future<Output = T>,
) -> (String, Value, T) {
    let (done, beside) = tokio::join!(
        async {
            stack
                .run(user, &json!({"user": user}), Duration::from_secs(180))
                .await
                .expect("execution ends")
        },
        alongside
    );
    let out = execution_output(&done).expect("output");
    assert_eq!(
        done.status(),
        &aws_sdk_sfn::types::ExecutionStatus::Succeeded,
        "{out:#}"
    );
    (done.execution_arn().to_owned(), out, beside)
}

/// Whether `key` of `user` is Active on the emulator.
pub async fn active_on(stack: &LocalStack, user: &str, key: &str) -> bool {
    stack
        .account
        .keys(user)
        .await
        .expect("keys")
        .iter()
        .any(|(id, status)| id == key && status == "Active")
}

/// `user` on the emulator, due for rotation: one 95-day-old key and an owner address.
pub async fn seed_due_on(stack: &LocalStack, user: &str) -> SeededKey {
    let seeded = stack
        .account
        .seed(
            &stack.moto,
            &TestUser::new(user)
                .tag("Email", &format!("{user}@example.com"))
                .key(95, true),
        )
        .await
        .expect("seed");
    seeded.into_iter().next().expect("the key")
}
