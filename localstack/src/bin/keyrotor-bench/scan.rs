//! One measured scan, and reading an execution's history.

use super::*;

/// One scan, measured.
pub(crate) struct ScanRun {
    pub(crate) users: usize,
    pub(crate) strategy: &'static str,
    /// Added by the fault proxy to each AWS call of the functions.
    pub(crate) latency: Duration,
    pub(crate) calls: BTreeMap<String, u64>,
    pub(crate) transitions: usize,
    pub(crate) events: usize,
    pub(crate) wall: Duration,
    pub(crate) totals: Value,
    pub(crate) invocations: u64,
    /// Seconds in listing, assessing and starting executions.
    pub(crate) phases: [f64; 3],
}

impl ScanRun {
    pub(crate) fn calls_of(&self, service: &str) -> u64 {
        self.calls
            .iter()
            .filter(|(op, _)| op.starts_with(service))
            .map(|(_, n)| n)
            .sum()
    }
}

pub(crate) fn stack_options(strategy: &str, start_executions_on: Option<&str>) -> StackOptions {
    let mut options = StackOptions {
        deletion_delay_secs: DELETION_DELAY_SECS,
        cargo_profile: Some(CARGO_PROFILE),
        ..StackOptions::default()
    };
    options
        .function_env
        .push(("KEYROTOR_ASSESS_STRATEGY".into(), strategy.into()));
    if let Some(arn) = start_executions_on {
        options
            .function_env
            .push(("KEYROTOR_STATE_MACHINE_ARN".into(), arn.into()));
    }
    options
}

/// A state machine that does nothing, for the per-user executions of a measured scan.
pub(crate) async fn sink(account: &Account, name: &str) -> Result<String> {
    let out = account
        .sfn
        .create_state_machine()
        .name(name)
        .role_arn(format!("arn:aws:iam::{ACCOUNT_ID}:role/keyrotor-bench"))
        .definition(r#"{"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}"#)
        .send()
        .await?;
    Ok(out.state_machine_arn().to_owned())
}

/// Starts each of `functions` once with an input it rejects, so no measurement pays for
/// `cargo lambda watch` starting a process.
pub(crate) fn warm_up(stack: &LocalStack, functions: &[&str]) -> Result<()> {
    // Each function's first invocation has cargo lambda watch run `cargo run` (about 1.7 s
    // here); all at once, so that the bench spends seconds, not tens of seconds, on it.
    std::thread::scope(|scope| {
        let warming: Vec<_> = functions
            .iter()
            .map(|&function| {
                scope.spawn(move || -> Result<()> {
                    let (status, body) = stack.invoke(function, &json!({"bench": "warm-up"}))?;
                    ensure!(
                        status == 200 && body.contains("InvalidInput"),
                        "warming up {function}: {status} {body}"
                    );
                    Ok(())
                })
            })
            .collect();
        warming.into_iter().try_for_each(|warm| {
            warm.join()
                .map_err(|_| anyhow::anyhow!("a warm-up thread panicked"))?
        })
    })
}

/// The functions a scan invokes; its per-user executions go to a no-op state machine.
pub(crate) const SCAN_FUNCTIONS: [&str; 3] = ["list-users", "assess-key-age", "start-rotations"];

/// Restarts the functions with `options`, warms up `functions`, and sets the day as any
/// scan finds it: yesterday's credential report too old, so the scan generates today's.
/// Clears the call counts; returns the Lambda invocations so far.
pub(crate) fn prepare(
    stack: &mut LocalStack,
    options: &StackOptions,
    functions: &[&str],
) -> Result<u64> {
    stack.restart_functions(options)?;
    warm_up(stack, functions)?;
    stack.moto.expire_credential_report()?;
    stack.reset_proxy()?;
    total_invocations(stack)
}

pub(crate) fn total_invocations(stack: &LocalStack) -> Result<u64> {
    Ok(stack.invocations()?.values().sum())
}

pub(crate) async fn run_scan(
    stack: &mut LocalStack,
    users: usize,
    strategy: &'static str,
    latency: Duration,
) -> Result<ScanRun> {
    let label = format!("{users}-{strategy}-{}ms", latency.as_millis());
    let sink_arn = sink(&stack.account, &format!("bench-sink-{label}")).await?;
    let invocations_before = prepare(
        stack,
        &stack_options(strategy, Some(&sink_arn)),
        &SCAN_FUNCTIONS,
    )?;
    stack.proxy.set_latency(latency)?;
    let arn = stack
        .start_scan(&format!("bench-scan-{label}"), &json!({}))
        .await?;
    let (out, wall) = finish(stack, &arn, Duration::from_secs(600)).await?;
    let calls = stack.proxy.calls()?;
    stack.proxy.set_latency(Duration::ZERO)?;
    let invocations = total_invocations(stack)? - invocations_before;
    let history = stack.history(&arn).await?;
    let totals: Value = serde_json::from_str(out.output().unwrap_or("{}"))?;
    stack.wait_all_of(&sink_arn, IDLE_PATIENCE).await?;
    let spent = time_in_states(&history);
    let sum = |states: &[&str]| states.iter().filter_map(|s| spent.get(*s)).sum::<f64>();
    let phases = [
        sum(&["ListFirstPage", "ListNextPage"]),
        sum(&["AssessPage"]),
        sum(&["StartRotations"]),
    ];
    Ok(ScanRun {
        users,
        strategy,
        latency,
        calls,
        transitions: transitions(&history),
        events: history.len(),
        wall,
        totals: totals["totals"].clone(),
        invocations,
        phases,
    })
}

/// Waits for the execution to end; it must succeed. Returns it and its duration as Step
/// Functions recorded it.
pub(crate) async fn finish(
    stack: &LocalStack,
    arn: &str,
    timeout: Duration,
) -> Result<(
    aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput,
    Duration,
)> {
    let out = stack.wait_for(arn, timeout).await?;
    ensure!(
        out.status() == &ExecutionStatus::Succeeded,
        "{arn} ended {:?}: {:?}",
        out.status(),
        out.cause()
    );
    let start = out.start_date();
    let stop = out.stop_date().context("no stop date")?;
    let nanos = (stop.secs() - start.secs()) * 1_000_000_000 + i64::from(stop.subsec_nanos())
        - i64::from(start.subsec_nanos());
    let wall = Duration::from_nanos(u64::try_from(nanos).unwrap_or(0));
    Ok((out, wall))
}

/// How long the bench waits for the per-user executions of one scan or day.
pub(crate) const IDLE_PATIENCE: Duration = Duration::from_secs(900);

/// State transitions as Step Functions bills them: one per state entered.
pub(crate) fn transitions(history: &[Value]) -> usize {
    history
        .iter()
        .filter(|e| {
            e["type"]
                .as_str()
                .is_some_and(|t| t.ends_with("StateEntered"))
        })
        .count()
}

pub(crate) fn lambda_tasks(history: &[Value]) -> usize {
    history
        .iter()
        .filter(|e| {
            e["type"]
                .as_str()
                .is_some_and(|t| t == "TaskScheduled" || t == "LambdaFunctionScheduled")
        })
        .count()
}

pub(crate) fn entered(history: &[Value], state: &str) -> bool {
    history.iter().any(|e| {
        e["type"]
            .as_str()
            .is_some_and(|t| t.ends_with("StateEntered"))
            && e["state"] == state
    })
}

/// Seconds spent in each state, summed over its visits (entered to exited).
pub(crate) fn time_in_states(history: &[Value]) -> BTreeMap<String, f64> {
    let mut open: BTreeMap<String, f64> = BTreeMap::new();
    let mut spent: BTreeMap<String, f64> = BTreeMap::new();
    for e in history {
        let (Some(kind), Some(state), Some(at)) =
            (e["type"].as_str(), e["state"].as_str(), e["at"].as_f64())
        else {
            continue;
        };
        if kind.ends_with("StateEntered") {
            open.insert(state.to_owned(), at);
        } else if let Some(entered) = kind
            .ends_with("StateExited")
            .then(|| open.remove(state))
            .flatten()
        {
            *spent.entry(state.to_owned()).or_default() += at - entered;
        }
    }
    spent
}
