//! `make bench`: what a scan costs as the account grows, and what each function costs to
//! run. A benchmark, not a test: it prints tables (and writes them to
//! `target/bench/latest.md`); the only failures are the run itself going wrong.
//!
//! On the local stack (moto executing the real ASL, the real function binaries under
//! `cargo lambda watch`, every AWS call of the functions counted by the fault proxy):
//! 1. seeds an account of 1,000 users, then grows it to 5,000 (about 1 in 90 with a key
//!    due for rotation, 1 in 30 on a warning day, some keyless, some exempt);
//! 2. at each size runs the scan once per assessment strategy, in the same run, with the
//!    per-user executions sent to a state machine that does nothing, so the scan alone is
//!    measured: IAM calls by operation, state transitions, history events, wall time;
//! 3. at 1,000 users runs one real day (scan and every per-user execution through to the
//!    deletion of the old keys) and checks its outcome: per-user transitions, e-mails,
//!    calls, which feed the monthly cost estimate;
//! 4. runs each function's release binary under a minimal Lambda Runtime API: time from
//!    process start to ready, and peak RSS and duration for one real invocation;
//! 5. reads the size of each function's deployment zip.
//!
//! `KEYROTOR_BENCH_SIZES=1000,5000` sets the account sizes (ascending).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use aws_sdk_sfn::types::ExecutionStatus;
use keyrotor_tests::account::Account;
use keyrotor_tests::moto::SeedUser;
use keyrotor_tests::probe::{probe, Probe};
use keyrotor_tests::stack::{
    function_environment, LocalStack, StackOptions, ACCOUNT_ID, EXEMPT_GROUP, FUNCTIONS,
};
use keyrotor_tests::workspace_root;
use serde_json::{json, Value};

const STRATEGIES: [&str; 2] = ["list-access-keys", "credential-report"];
/// The host build the stack serves and the probe runs, quicker to build than the
/// deployment's (Cargo.toml says how and why).
const CARGO_PROFILE: &str = "release-local";
const DELETION_DELAY_SECS: u64 = 3;
/// Users per seeding request to moto.
const SEED_CHUNK: usize = 1000;
/// Cold starts per function for the ready time (one more comes with the invocation).
const COLD_STARTS: usize = 5;
const PROBE_USER: &str = "bench-probe";

/// Public list prices, us-east-1, without free tiers (Step Functions read off its pricing
/// page on 2026-11-25; the others as AWS publishes them).
mod price {
    pub const SFN_PER_TRANSITION: f64 = 0.025 / 1000.0;
    pub const LAMBDA_PER_REQUEST: f64 = 0.20 / 1_000_000.0;
    pub const LAMBDA_ARM_PER_GB_SECOND: f64 = 0.000_013_333_4;
    pub const SECRET_PER_MONTH: f64 = 0.40;
    pub const SECRETS_PER_CALL: f64 = 0.05 / 10_000.0;
    pub const SES_PER_EMAIL: f64 = 0.10 / 1000.0;
    pub const KMS_KEY_PER_MONTH: f64 = 1.0;
}
/// The EventBridge schedule runs the scan once a day.
const SCANS_PER_MONTH: f64 = 30.0;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let sizes = match sizes() {
        Ok(sizes) => sizes,
        Err(e) => {
            eprintln!("keyrotor-bench: {e:#}");
            std::process::exit(2);
        }
    };
    let started = Instant::now();
    let outcome = tokio::select! {
        result = bench(&sizes) => result,
        _ = tokio::signal::ctrl_c() => {
            eprintln!("\ninterrupted");
            std::process::exit(130);
        }
    };
    match outcome {
        Ok(report) => {
            println!("{report}");
            let path = workspace_root().join("target/bench/latest.md");
            let written = path
                .parent()
                .map(std::fs::create_dir_all)
                .transpose()
                .and_then(|_| std::fs::write(&path, &report));
            match written {
                Ok(_) => println!(
                    "(also in {}; bench took {:.0?})",
                    path.display(),
                    started.elapsed()
                ),
                Err(e) => eprintln!("could not write {}: {e}", path.display()),
            }
        }
        Err(e) => {
            eprintln!("\nbench failed: {e:#}");
            std::process::exit(1);
        }
    }
}

fn sizes() -> Result<Vec<usize>> {
    let text = std::env::var("KEYROTOR_BENCH_SIZES").unwrap_or_else(|_| "1000,5000".into());
    let sizes: Vec<usize> = text
        .split(',')
        .map(|s| s.trim().parse::<usize>())
        .collect::<Result<_, _>>()
        .with_context(|| format!("KEYROTOR_BENCH_SIZES={text:?} is not a list of numbers"))?;
    ensure!(
        !sizes.is_empty() && sizes.windows(2).all(|w| w[0] < w[1]) && sizes[0] >= 100,
        "KEYROTOR_BENCH_SIZES must ascend from at least 100"
    );
    Ok(sizes)
}

/// What a seeded user is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// One key past the rotation age.
    Due,
    /// One key on a warning day.
    Warn(i64),
    /// No access keys.
    Keyless,
    /// An old key, but in the exemption group.
    Exempt,
    /// One key not due and not on a warning day.
    Young(i64),
}

/// The mix of a daily account: 1 in 90 due, 1 in 30 on one of the three warning days.
fn kind(i: usize) -> Kind {
    const WARNING_DAYS: [i64; 3] = [80, 85, 89];
    if i.is_multiple_of(90) {
        Kind::Due
    } else if i % 30 == 15 {
        Kind::Warn(WARNING_DAYS[(i / 30) % 3])
    } else if i % 100 == 7 {
        Kind::Keyless
    } else if i % 250 == 3 {
        Kind::Exempt
    } else {
        // Spread over 0..=88 days, off the warning days (which move a day younger).
        let age = i64::try_from((i * 7) % 89).unwrap_or(0);
        Kind::Young(if WARNING_DAYS.contains(&age) {
            age - 1
        } else {
            age
        })
    }
}

fn user_name(i: usize) -> String {
    format!("user-{i:05}")
}

#[derive(Default)]
struct Seeded {
    users: usize,
    /// Users due for rotation and the key they had.
    due: BTreeMap<String, String>,
    warned: BTreeSet<String>,
}

/// Adds users `seeded.users..to` to the account, straight in moto's backend (over the API
/// this took half a minute for 5,000 users; set-up is not what the bench measures).
async fn seed(stack: &LocalStack, seeded: &mut Seeded, to: usize) -> Result<Duration> {
    let started = Instant::now();
    if seeded.users == 0 {
        let iam = &stack.account.iam;
        iam.create_group()
            .group_name(EXEMPT_GROUP)
            .send()
            .await
            .context("CreateGroup")?;
    }
    let range: Vec<usize> = (seeded.users..to).collect();
    for chunk in range.chunks(SEED_CHUNK) {
        let users: Vec<SeedUser> = chunk
            .iter()
            .map(|&i| {
                let name = user_name(i);
                let kind = kind(i);
                let key_age_days = match kind {
                    Kind::Due => Some(95),
                    Kind::Warn(age) | Kind::Young(age) => Some(age),
                    Kind::Exempt => Some(150),
                    Kind::Keyless => None,
                };
                let groups = if kind == Kind::Exempt {
                    vec![EXEMPT_GROUP.to_owned()]
                } else {
                    Vec::new()
                };
                SeedUser {
                    tags: BTreeMap::from([("Email".to_owned(), format!("{name}@example.com"))]),
                    name,
                    key_age_days,
                    groups,
                }
            })
            .collect();
        let keys = stack.moto.seed_users(ACCOUNT_ID, &users)?;
        for &i in chunk {
            let name = user_name(i);
            match kind(i) {
                Kind::Due => {
                    let key = keys.get(&name).context("a due user got no key")?;
                    seeded.due.insert(name, key.clone());
                }
                Kind::Warn(_) => {
                    seeded.warned.insert(name);
                }
                _ => {}
            }
        }
    }
    seeded.users = to;
    Ok(started.elapsed())
}

/// One scan, measured.
struct ScanRun {
    users: usize,
    strategy: &'static str,
    calls: BTreeMap<String, u64>,
    transitions: usize,
    events: usize,
    wall: Duration,
    totals: Value,
    invocations: u64,
    /// Seconds in listing, assessing and starting executions.
    phases: [f64; 3],
}

impl ScanRun {
    fn calls_of(&self, service: &str) -> u64 {
        self.calls
            .iter()
            .filter(|(op, _)| op.starts_with(service))
            .map(|(_, n)| n)
            .sum()
    }
}

fn stack_options(strategy: &str, start_executions_on: Option<&str>) -> StackOptions {
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
async fn sink(account: &Account, name: &str) -> Result<String> {
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
fn warm_up(stack: &LocalStack, functions: &[&str]) -> Result<()> {
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
const SCAN_FUNCTIONS: [&str; 3] = ["list-users", "assess-key-age", "start-rotations"];

/// Restarts the functions with `options`, warms up `functions`, and sets the day as any
/// scan finds it: yesterday's credential report too old, so the scan generates today's.
/// Clears the call counts; returns the Lambda invocations so far.
fn prepare(stack: &mut LocalStack, options: &StackOptions, functions: &[&str]) -> Result<u64> {
    stack.restart_functions(options)?;
    warm_up(stack, functions)?;
    stack.moto.expire_credential_report()?;
    stack.reset_proxy()?;
    total_invocations(stack)
}

fn total_invocations(stack: &LocalStack) -> Result<u64> {
    Ok(stack.invocations()?.values().sum())
}

async fn run_scan(stack: &mut LocalStack, users: usize, strategy: &'static str) -> Result<ScanRun> {
    let sink_arn = sink(&stack.account, &format!("bench-sink-{users}-{strategy}")).await?;
    let invocations_before = prepare(
        stack,
        &stack_options(strategy, Some(&sink_arn)),
        &SCAN_FUNCTIONS,
    )?;
    let arn = stack
        .start_scan(&format!("bench-scan-{users}-{strategy}"), &json!({}))
        .await?;
    let (out, wall) = finish(stack, &arn, Duration::from_secs(600)).await?;
    let calls = stack.proxy.calls()?;
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
async fn finish(
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
const IDLE_PATIENCE: Duration = Duration::from_secs(900);

/// State transitions as Step Functions bills them: one per state entered.
fn transitions(history: &[Value]) -> usize {
    history
        .iter()
        .filter(|e| {
            e["type"]
                .as_str()
                .is_some_and(|t| t.ends_with("StateEntered"))
        })
        .count()
}

fn lambda_tasks(history: &[Value]) -> usize {
    history
        .iter()
        .filter(|e| {
            e["type"]
                .as_str()
                .is_some_and(|t| t == "TaskScheduled" || t == "LambdaFunctionScheduled")
        })
        .count()
}

fn entered(history: &[Value], state: &str) -> bool {
    history.iter().any(|e| {
        e["type"]
            .as_str()
            .is_some_and(|t| t.ends_with("StateEntered"))
            && e["state"] == state
    })
}

/// Seconds spent in each state, summed over its visits (entered to exited).
fn time_in_states(history: &[Value]) -> BTreeMap<String, f64> {
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

/// One real day at this account size: the scan and every per-user execution.
struct Day {
    users: usize,
    wall: Duration,
    scan_transitions: usize,
    /// Per kind: executions, transitions (min, max), Lambda tasks (max), events (max).
    kinds: BTreeMap<&'static str, KindStats>,
    calls: BTreeMap<String, u64>,
    invocations: u64,
    emails: usize,
    secrets: usize,
}

#[derive(Default)]
struct KindStats {
    executions: usize,
    transitions: Vec<usize>,
    tasks: usize,
    events_max: usize,
}

async fn real_day(stack: &mut LocalStack, seeded: &Seeded) -> Result<Day> {
    let emails_before = stack.moto.sent_emails()?.len();
    let all: Vec<&str> = FUNCTIONS.iter().map(|&(_, name)| name).collect();
    let invocations_before = prepare(stack, &stack_options("credential-report", None), &all)?;
    let started = Instant::now();
    let scan = stack
        .start_scan(&format!("bench-day-{}", seeded.users), &json!({}))
        .await?;
    finish(stack, &scan, Duration::from_secs(600)).await?;
    let machine = stack.state_machine_arn.clone();
    stack.wait_all_of(&machine, IDLE_PATIENCE).await?;
    let wall = started.elapsed();

    let mut kinds: BTreeMap<&'static str, KindStats> = BTreeMap::new();
    let scan_transitions = transitions(&stack.history(&scan).await?);
    for execution in stack.executions_of(&machine).await? {
        ensure!(
            execution.status() == &ExecutionStatus::Succeeded,
            "{} ended {:?}",
            execution.name(),
            execution.status()
        );
        let history = stack.history(execution.execution_arn()).await?;
        let kind = if entered(&history, "DeleteOldKey") {
            "rotation"
        } else if entered(&history, "NotifyWarning") {
            "warning"
        } else {
            "other"
        };
        let stats = kinds.entry(kind).or_default();
        stats.executions += 1;
        stats.transitions.push(transitions(&history));
        stats.tasks += lambda_tasks(&history);
        stats.events_max = stats.events_max.max(history.len());
    }

    // The day's outcome: every due user rotated (one active key, not the old one, which
    // is gone) and every user on a warning day warned.
    for (user, old) in &seeded.due {
        let keys = stack.account.keys(user).await?;
        ensure!(
            keys.len() == 1 && keys[0].1 == "Active" && &keys[0].0 != old,
            "{user} was not rotated cleanly: {keys:?}"
        );
    }
    let emails = stack.moto.sent_emails()?;
    for user in &seeded.warned {
        let address = format!("{user}@example.com");
        ensure!(
            emails.iter().any(|e| e.to.contains(&address)),
            "{user} was not warned"
        );
    }
    let secrets = stack.account.secret_names().await?;
    Ok(Day {
        users: seeded.users,
        wall,
        scan_transitions,
        kinds,
        calls: stack.proxy.calls()?,
        invocations: total_invocations(stack)? - invocations_before,
        emails: emails.len() - emails_before,
        secrets: secrets.len(),
    })
}

/// One function's release binary, measured.
struct FunctionRow {
    name: &'static str,
    zip: Option<(u64, String)>,
    ready: Vec<Duration>,
    peak_rss: u64,
    duration: Duration,
    event: &'static str,
}

/// The binary the stack serves (`make bench` builds it).
fn release_binary(name: &str) -> PathBuf {
    workspace_root().join(format!("target/{CARGO_PROFILE}/{name}"))
}

/// The size of the function's deployment zip from `make package`, and its architecture.
fn zip_size(name: &str) -> Option<(u64, String)> {
    let lambda = workspace_root().join("target/lambda");
    let arch = std::fs::read_to_string(lambda.join("ARCHITECTURE")).ok()?;
    let size = std::fs::metadata(lambda.join(name).join("bootstrap.zip"))
        .ok()?
        .len();
    Some((size, arch.trim().to_owned()))
}

/// Runs every function's release binary: cold starts, then one real invocation each, in
/// the order of a rotation, against the stack's account.
async fn probe_functions(stack: &LocalStack) -> Result<Vec<FunctionRow>> {
    let sink_arn = sink(&stack.account, "bench-sink-probes").await?;
    let options = stack_options("credential-report", Some(&sink_arn));
    let env = function_environment(&stack.proxy.endpoint(), &options, &stack.state_machine_arn);
    let account = &stack.account;
    account
        .create_user(PROBE_USER, &[("Email", "bench-probe@example.com")])
        .await?;
    let old = keyrotor_tests::account::aged_key(&stack.moto, account, PROBE_USER, 95)
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

async fn bench(sizes: &[usize]) -> Result<String> {
    let started = Instant::now();
    // Progress on stderr, with the time since the start, so slow phases show.
    let progress = |what: &str| eprintln!("[{:6.1} s] {what}", started.elapsed().as_secs_f64());
    progress("starting the local stack");
    let mut stack = LocalStack::start(stack_options("credential-report", None)).await?;
    let mut seeded = Seeded::default();
    let mut scans = Vec::new();
    let mut day = None;
    let mut seeding = Vec::new();
    for &size in sizes {
        progress(&format!("seeding {size} users"));
        seeding.push((size, seed(&stack, &mut seeded, size).await?));
        for strategy in STRATEGIES {
            progress(&format!("scanning {size} users with {strategy}"));
            let run = run_scan(&mut stack, size, strategy).await?;
            progress(&format!("  scanned in {:.2?}", run.wall));
            scans.push(run);
        }
        if day.is_none() {
            progress(&format!("one real day at {size} users"));
            day = Some(real_day(&mut stack, &seeded).await?);
        }
    }
    progress("probing the function binaries");
    let functions = probe_functions(&stack).await?;
    drop(stack);
    progress("done");
    let day = day.context("no day was run")?;
    Ok(render(
        &scans,
        &day,
        &functions,
        &seeding,
        started.elapsed(),
    ))
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kib| kib.parse::<u64>().ok())
        })
        .map_or(0, |kib| kib / 1024 / 1024);
    format!(
        "{cores} cores ({cpu}), {memory} GiB, {}",
        std::env::consts::ARCH
    )
}

fn mb(bytes: u64) -> String {
    format!("{:.2} MB", bytes as f64 / 1_000_000.0)
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

fn short(op: &str) -> &str {
    op.split_once(':').map_or(op, |(_, name)| name)
}

fn render(
    scans: &[ScanRun],
    day: &Day,
    functions: &[FunctionRow],
    seeding: &[(usize, Duration)],
    took: Duration,
) -> String {
    let mut out = String::new();
    let now = chrono::Utc::now().format("%Y-%m-%d %H:%M UTC");
    let _ = writeln!(out, "## `make bench`, {now}\n");
    let _ = writeln!(out, "Machine: {}. Local stack: moto 5.2.5 executing the real ASL, the function binaries under `cargo lambda watch --profile {CARGO_PROFILE}` (a quicker build than the deployment's: no fat LTO, SDK service crates unoptimized; Cargo.toml says why), calls counted by the fault proxy.\n", machine());

    let _ = writeln!(out, "### Scan (per-user executions sent to a no-op state machine, so the scan alone is measured)\n");
    let _ = writeln!(out, "| users | strategy | IAM calls | IAM calls by operation | other calls | state transitions | history events | wall time | in list / assess / start |");
    let _ = writeln!(out, "|---:|---|---:|---|---|---:|---:|---:|---|");
    for run in scans {
        let by_op: Vec<String> = run
            .calls
            .iter()
            .filter(|(op, _)| op.starts_with("iam:"))
            .map(|(op, n)| format!("{} {n}", short(op)))
            .collect();
        let other: Vec<String> = run
            .calls
            .iter()
            .filter(|(op, _)| !op.starts_with("iam:"))
            .map(|(op, n)| format!("{op} {n}"))
            .collect();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {:.2} / {:.2} / {:.2} s |",
            run.users,
            run.strategy,
            run.calls_of("iam:"),
            by_op.join(", "),
            other.join(", "),
            run.transitions,
            run.events,
            secs(run.wall),
            run.phases[0],
            run.phases[1],
            run.phases[2],
        );
    }
    let _ = writeln!(out);
    for pair in scans.chunks(2) {
        if let [listing, report] = pair {
            let _ = writeln!(
                out,
                "- {} users: the credential report scans {:.1}× faster than listing each user's keys ({} vs {}), with {:.1}× fewer IAM calls ({} vs {}); both found {} (Lambda invocations: {} vs {}).",
                report.users,
                listing.wall.as_secs_f64() / report.wall.as_secs_f64(),
                secs(report.wall),
                secs(listing.wall),
                listing.calls_of("iam:") as f64 / report.calls_of("iam:").max(1) as f64,
                report.calls_of("iam:"),
                listing.calls_of("iam:"),
                describe_totals(&report.totals),
                report.invocations,
                listing.invocations,
            );
            if report.totals != listing.totals {
                let _ = writeln!(
                    out,
                    "  - **the two strategies disagree**: list-access-keys found {}",
                    describe_totals(&listing.totals)
                );
            }
        }
    }
    for (size, took) in seeding {
        let _ = writeln!(out, "- seeding up to {size} users took {}", secs(*took));
    }

    let _ = writeln!(out, "\n### One real day at {} users (scan, then every per-user execution through to deletion; deletion delay {DELETION_DELAY_SECS} s)\n", day.users);
    let _ = writeln!(out, "| per-user execution | count | state transitions | Lambda invocations each | history events (max) |");
    let _ = writeln!(out, "|---|---:|---:|---:|---:|");
    for (kind, stats) in &day.kinds {
        let min = stats.transitions.iter().min().copied().unwrap_or(0);
        let max = stats.transitions.iter().max().copied().unwrap_or(0);
        let range = if min == max {
            max.to_string()
        } else {
            format!("{min}–{max}")
        };
        let _ = writeln!(
            out,
            "| {kind} | {} | {range} | {:.1} | {} |",
            stats.executions,
            stats.tasks as f64 / stats.executions.max(1) as f64,
            stats.events_max
        );
    }
    let day_calls: Vec<String> = day
        .calls
        .iter()
        .map(|(op, n)| format!("{op} {n}"))
        .collect();
    let _ = writeln!(
        out,
        "\nThe day took {} wall time: scan {} transitions, {} Lambda invocations, {} e-mails, {} secrets; every due user rotated and every user on a warning day warned (checked). AWS calls of the functions: {}.",
        secs(day.wall),
        day.scan_transitions,
        day.invocations,
        day.emails,
        day.secrets,
        day_calls.join(", ")
    );

    let _ = writeln!(out, "\n### Functions (ready time and RSS: the `{CARGO_PROFILE}` binaries the stack ran, {} here, larger than the deployment build, so RSS and ready times are upper bounds; zips: the deployment build, as `make package` makes it)\n", std::env::consts::ARCH);
    let _ = writeln!(out, "| function | zip | peak RSS, one invocation | ready after start (median / max of {}) | invocation | event |", COLD_STARTS + 1);
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---|");
    for f in functions {
        let mut ready = f.ready.clone();
        ready.sort();
        let median = ready.get(ready.len() / 2).copied().unwrap_or_default();
        let max = ready.last().copied().unwrap_or_default();
        let zip = f
            .zip
            .as_ref()
            .map_or("not built".to_owned(), |(bytes, arch)| {
                format!("{} ({arch})", mb(*bytes))
            });
        let _ = writeln!(
            out,
            "| {} | {zip} | {} | {} / {} | {} | {} |",
            f.name,
            mb(f.peak_rss),
            ms(median),
            ms(max),
            ms(f.duration),
            f.event
        );
    }

    out.push_str(&targets(scans, day, functions));
    out.push_str(&cost(scans, day, functions));
    let _ = writeln!(out, "\n(The bench itself took {}.)", secs(took));
    out
}

fn describe_totals(totals: &Value) -> String {
    format!(
        "{} seen, {} to rotate, {} to warn, {} exempt, {} started",
        totals["seen"], totals["rotate"], totals["warn"], totals["exempt"], totals["started"]
    )
}

fn targets(scans: &[ScanRun], day: &Day, functions: &[FunctionRow]) -> String {
    let mut out = String::from("\n### Targets\n\n| target | measured | met |\n|---|---|---|\n");
    let mut row = |target: &str, measured: String, met: bool| {
        let _ = writeln!(
            out,
            "| {target} | {measured} | {} |",
            if met { "yes" } else { "**no**" }
        );
    };
    let largest = scans.iter().map(|s| s.users).max().unwrap_or(0);
    let report = scans
        .iter()
        .find(|s| s.users == largest && s.strategy == "credential-report");
    let listing = scans
        .iter()
        .find(|s| s.users == largest && s.strategy == "list-access-keys");
    if let (Some(report), Some(listing)) = (report, listing) {
        // The scan's own calls, and those for users whose keys may need action (each of
        // them gets one ListUserTags, and ListAccessKeys when a rotation may be under way).
        let tags = report.calls.get("iam:ListUserTags").copied().unwrap_or(0);
        let per_user = tags + report.calls.get("iam:ListAccessKeys").copied().unwrap_or(0);
        let fixed = report.calls_of("iam:") - per_user;
        let acted = ["rotate", "warn", "blocked", "finish"]
            .iter()
            .filter_map(|k| report.totals[*k].as_u64())
            .sum::<u64>();
        // An exempt user whose key is due needs its tags read to be known as exempt.
        let exempt = report.totals["exempt"].as_u64().unwrap_or(0);
        row(
            &format!("{largest}-user scan, credential report: ≤ 20 IAM calls + none per user needing no action"),
            format!("{fixed} IAM calls + {per_user} for the {tags} users whose keys may need action: {acted} needed it, {exempt} were exempt"),
            fixed <= 20 && tags <= acted + exempt,
        );
        row(
            &format!("{largest}-user scan: ≤ 300 history events"),
            format!("{} events", report.events),
            report.events <= 300,
        );
        let ratio = listing.wall.as_secs_f64() / report.wall.as_secs_f64();
        row(
            &format!("{largest}-user scan: wall time ≥ 10× below list-access-keys"),
            format!(
                "{ratio:.1}× ({} vs {})",
                secs(report.wall),
                secs(listing.wall)
            ),
            ratio >= 10.0,
        );
    }
    if let Some(rotation) = day.kinds.get("rotation") {
        let max = rotation.transitions.iter().max().copied().unwrap_or(0);
        row(
            "rotation execution: ≤ 15 state transitions",
            format!("{max} (max of {})", rotation.executions),
            max <= 15,
        );
    }
    let zip_max = functions
        .iter()
        .filter_map(|f| f.zip.as_ref())
        .max_by_key(|z| z.0);
    if let Some((bytes, arch)) = zip_max {
        row(
            "each zip ≤ 5 MB (arm64)",
            format!("largest {} ({arch})", mb(*bytes)),
            *bytes <= 5_000_000 && arch == "arm64",
        );
    }
    let rss = functions.iter().map(|f| f.peak_rss).max().unwrap_or(0);
    row(
        "each function: peak RSS ≤ 40 MB",
        format!("largest {}", mb(rss)),
        rss <= 40_000_000,
    );
    let ready = functions
        .iter()
        .flat_map(|f| f.ready.iter().copied())
        .max()
        .unwrap_or_default();
    row(
        "each function: ready ≤ 50 ms after start",
        format!("slowest {}", ms(ready)),
        ready <= Duration::from_millis(50),
    );
    out
}

/// What the deployment configures: each function's memory in GB (`MemorySize`) and the
/// number of customer-managed KMS keys, read from infra/template.yaml.
fn deployed() -> Result<(f64, f64)> {
    let path = workspace_root().join("infra/template.yaml");
    let template =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let memory_mb: f64 = template
        .lines()
        .find_map(|l| l.trim().strip_prefix("MemorySize:"))
        .and_then(|v| v.trim().parse().ok())
        .context("no MemorySize in infra/template.yaml")?;
    let kms_keys = template
        .lines()
        .filter(|l| l.trim() == "Type: AWS::KMS::Key")
        .count();
    Ok((memory_mb / 1024.0, kms_keys as f64))
}

/// A month of keyrotor at 1k, 10k and 100k users, from this run's counts.
fn cost(scans: &[ScanRun], day: &Day, functions: &[FunctionRow]) -> String {
    let mut out = String::from(
        "\n### Monthly cost estimate (us-east-1 list prices, no free tiers; daily scan)\n\n",
    );
    let (memory_gb, kms_keys) = match deployed() {
        Ok(figures) => figures,
        Err(e) => {
            let _ = writeln!(out, "(no estimate: {e:#})");
            return out;
        }
    };
    let reports: Vec<&ScanRun> = scans
        .iter()
        .filter(|s| s.strategy == "credential-report")
        .collect();
    // Scan transitions and invocations grow per ListUsers page of 1,000.
    let pages = |users: usize| users.div_ceil(1000) as f64;
    let (first, last) = match (reports.first(), reports.last()) {
        (Some(f), Some(l)) => (f, l),
        _ => return out,
    };
    let per_page = |a: f64, b: f64| {
        let span = pages(last.users) - pages(first.users);
        if span > 0.0 {
            (b - a) / span
        } else {
            a / pages(first.users)
        }
    };
    let t_page = per_page(first.transitions as f64, last.transitions as f64);
    let t_fixed = first.transitions as f64 - t_page * pages(first.users);
    let i_page = per_page(first.invocations as f64, last.invocations as f64);
    let i_fixed = first.invocations as f64 - i_page * pages(first.users);
    // One real day per 1,000 users: the per-user executions, e-mails and calls.
    let scale = 1000.0 / day.users as f64;
    let per_user_transitions: usize = day.kinds.values().flat_map(|k| k.transitions.iter()).sum();
    let per_user_transitions = per_user_transitions as f64 * scale;
    let day_tasks: usize = day.kinds.values().map(|k| k.tasks).sum();
    let per_user_invocations = day_tasks as f64 * scale;
    let emails = day.emails as f64 * scale;
    let secret_calls: u64 = day
        .calls
        .iter()
        .filter(|(op, _)| op.starts_with("secretsmanager:"))
        .map(|(_, n)| n)
        .sum();
    let secret_calls = secret_calls as f64 * scale;
    let mean_seconds = functions
        .iter()
        .map(|f| f.duration.as_secs_f64())
        .sum::<f64>()
        / functions.len().max(1) as f64;
    let _ = writeln!(out, "| users | state transitions | Step Functions | Lambda invocations | Lambda | secrets stored | Secrets Manager | e-mails | SES | KMS | total |");
    let _ = writeln!(
        out,
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for users in [1_000usize, 10_000, 100_000] {
        let thousands = users as f64 / 1000.0;
        // IAM holds at most 5,000 users per account; each account runs its own stack.
        let accounts = users.div_ceil(5000) as f64;
        let pages = pages(users);
        let transitions = SCANS_PER_MONTH
            * (accounts * t_fixed + t_page * pages + per_user_transitions * thousands);
        let invocations = SCANS_PER_MONTH
            * (accounts * i_fixed + i_page * pages + per_user_invocations * thousands);
        // Lambda time: the measured release durations against the local emulator; AWS
        // APIs answer slower, so count ten times that.
        let lambda = invocations * price::LAMBDA_PER_REQUEST
            + invocations * mean_seconds * 10.0 * memory_gb * price::LAMBDA_ARM_PER_GB_SECOND;
        let sfn = transitions * price::SFN_PER_TRANSITION;
        // Steady state, at most: every user's current key is held in one secret.
        let secrets = users as f64;
        let sm = secrets * price::SECRET_PER_MONTH
            + SCANS_PER_MONTH * secret_calls * thousands * price::SECRETS_PER_CALL;
        let mails = SCANS_PER_MONTH * emails * thousands;
        let ses = mails * price::SES_PER_EMAIL;
        let kms = accounts * kms_keys * price::KMS_KEY_PER_MONTH;
        let _ = writeln!(
            out,
            "| {users} | {transitions:.0} | ${sfn:.2} | {invocations:.0} | ${lambda:.2} | {secrets:.0} | ${sm:.2} | {mails:.0} | ${ses:.2} | ${kms:.2} | **${:.2}** |",
            sfn + lambda + sm + ses + kms
        );
    }
    let _ = writeln!(out, "\nInputs from this run: scan {t_fixed:.1} + {t_page:.1} transitions per 1,000-user page; per 1,000 users a day {per_user_transitions:.0} per-user transitions, {per_user_invocations:.0} per-user Lambda invocations, {emails:.0} e-mails, {secret_calls:.0} Secrets Manager calls; Lambda at {:.0} MB arm64 for ten times the mean local duration of the seven functions ({}); {kms_keys:.0} KMS keys per account. IAM allows 5,000 users per account, so 10k and 100k users are 2 and 20 accounts, each with its own deployment. Secrets are counted for every user (keyless and exempt users have none, so this is an upper bound). Prices: Step Functions $0.025 per 1,000 transitions; Lambda $0.20 per million requests and $0.0000133334 per GB-s (arm64); Secrets Manager $0.40 per secret-month and $0.05 per 10,000 calls; SES $0.10 per 1,000 e-mails; KMS $1 per key-month. Not included: CloudWatch Logs, KMS requests, data transfer.", memory_gb * 1024.0, ms(Duration::from_secs_f64(mean_seconds)));
    out
}
