//! Each function binary under a minimal Lambda Runtime API: ready time, peak RSS, one invocation.

use super::*;

/// Cold starts per function for the ready time (one more comes with the invocation).
pub(crate) const COLD_STARTS: usize = 5;
pub(crate) const PROBE_USER: &str = "bench-probe";

/// One function's release binary, measured.
pub(crate) struct FunctionRow {
    pub(crate) name: &'static str,
    pub(crate) zip: Option<(u64, String)>,
    pub(crate) ready: Vec<Duration>,
    pub(crate) peak_rss: u64,
    pub(crate) duration: Duration,
    pub(crate) event: &'static str,
}

/// The binary the stack serves (`make bench` builds it).
pub(crate) fn release_binary(name: &str) -> PathBuf {
    workspace_root().join(format!("target/{CARGO_PROFILE}/{name}"))
}

/// The size of the function's deployment zip from `make package`, and its architecture.
pub(crate) fn zip_size(name: &str) -> Option<(u64, String)> {
    let lambda = workspace_root().join("target/lambda");
    let arch = std::fs::read_to_string(lambda.join("ARCHITECTURE")).ok()?;
    let size = std::fs::metadata(lambda.join(name).join("bootstrap.zip"))
        .ok()?
        .len();
    Some((size, arch.trim().to_owned()))
}

/// Runs every function's release binary: cold starts, then one real invocation each, in
/// the order of a rotation, against the stack's account.
pub(crate) async fn probe_functions(stack: &LocalStack) -> Result<Vec<FunctionRow>> {
    let sink_arn = sink(&stack.account, "bench-sink-probes").await?;
    let options = stack_options("credential-report", Some(&sink_arn));
    let env = function_environment(
        &stack.proxy.endpoint(),
        &options,
        [&stack.state_machine_arn, &stack.scan_state_machine_arn],
    );
    let account = &stack.account;
    account
        .create_user(PROBE_USER, &[("Email", "bench-probe@example.com")])
        .await?;
    let old = keyrotor_localstack::account::aged_key(&stack.moto, account, PROBE_USER, 95)
        .await?
        .id;
    let mut rows = Vec::new();
    let run = |name: &'static str, event: Value, what: &'static str| {
        let env = env.clone();
        async move {
            let binary = release_binary(name);
            ensure!(
                binary.exists(),
                "{} is missing: `make bench` builds it",
                binary.display()
            );
            let mut ready = Vec::new();
            for _ in 0..COLD_STARTS {
                ready.push(probe(&binary, name, &env, None).await?.ready);
            }
            let Probe {
                ready: last,
                invocation,
            } = probe(&binary, name, &env, Some(&event)).await?;
            ready.push(last);
            let invocation = invocation.context("no invocation")?;
            Ok::<_, anyhow::Error>((
                FunctionRow {
                    name,
                    zip: zip_size(name),
                    ready,
                    peak_rss: invocation.peak_rss,
                    duration: invocation.duration,
                    event: what,
                },
                invocation.response,
            ))
        }
    };

    let (row, page) = run("list-users", json!({}), "one page of 1,000 users").await?;
    rows.push(row);
    let users = page["users"].clone();
    let (row, _) = run(
        "assess-key-age",
        json!({ "users": users }),
        "a page of 1,000 users, credential report",
    )
    .await?;
    rows.push(row);
    let (row, _) = run(
        "start-rotations",
        json!({
            "users": [{"user": PROBE_USER, "action": "rotate"}],
            "scanStartedAt": chrono::Utc::now(),
            "dryRun": true,
        }),
        "starts one execution",
    )
    .await?;
    rows.push(row);
    let pair = |new: &Value| json!({"user": PROBE_USER, "oldKeyId": old, "newKeyId": new});
    let (row, created) = run(
        "create-key",
        json!({"user": PROBE_USER, "oldKeyId": old}),
        "creates, verifies, stores a key",
    )
    .await?;
    rows.push(row);
    let new = created["newKeyId"].clone();
    ensure!(new.is_string(), "create-key made no key: {created}");
    let (row, deactivated) = run("deactivate-key", pair(&new), "deactivates the old key").await?;
    rows.push(row);
    let (row, _) = run(
        "notify",
        json!({
            "kind": "rotated",
            "user": PROBE_USER,
            "keyId": old,
            "newKeyId": new,
            "deleteAfter": deactivated["deleteAfter"],
        }),
        "one e-mail (rotated)",
    )
    .await?;
    rows.push(row);
    tokio::time::sleep(Duration::from_secs(DELETION_DELAY_SECS + 2)).await;
    let (row, deleted) = run("delete-key", pair(&new), "deletes the old key").await?;
    ensure!(
        deleted["outcome"] == "deleted",
        "delete-key did not delete: {deleted}"
    );
    rows.push(row);
    stack.wait_all_of(&sink_arn, IDLE_PATIENCE).await?;
    Ok(rows)
}
