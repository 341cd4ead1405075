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
//!    measured: IAM calls by operation, state transitions, history events, wall time; and
//!    the seed article's scan loop on the same account ([`baseline`]); each at emulator
//!    speed, and again with a modelled latency added to every AWS call by the fault proxy;
//! 3. at 1,000 users runs one real day (scan and every per-user execution through to the
//!    deletion of the old keys) and checks its outcome: per-user transitions, e-mails,
//!    calls, which feed the monthly cost estimate;
//! 4. runs each function's release binary under a minimal Lambda Runtime API: time from
//!    process start to ready, and peak RSS and duration for one real invocation;
//! 5. reads the size of each function's deployment zip;
//! 6. at the largest size, weighs GetAccountAuthorizationDetails against the calls of the
//!    scan it would replace ([`details`]);
//! 7. runs an organization scan of 50 accounts of 200 users at two account concurrencies
//!    ([`organization`]).
//!
//! `KEYROTOR_BENCH_SIZES=1000,5000` sets the account sizes (ascending);
//! `KEYROTOR_BENCH_LATENCY_MS=40` the modelled latency per AWS call (0: emulator speed only);
//! `KEYROTOR_BENCH_ORG=50x200` the organization; `KEYROTOR_BENCH_ONLY=organization` runs
//! only the organization scans (and prints only their table).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use aws_sdk_sfn::types::ExecutionStatus;
use keyrotor_localstack::account::{Account, TestUser};
use keyrotor_localstack::moto::SeedUser;
use keyrotor_localstack::probe::{probe, Probe};
use keyrotor_localstack::stack::{
    function_environment, LocalStack, StackOptions, ACCOUNT_ID, EXEMPT_GROUP, FUNCTIONS,
    ORGANIZATION_FUNCTIONS,
};
use keyrotor_localstack::workspace_root;
use serde_json::{json, Value};

mod baseline;
mod cost;
mod day;
mod details;
mod organization;
mod probe;
mod render;
mod scan;
mod seed;

use baseline::*;
use cost::*;
use day::*;
use details::*;
use organization::*;
use probe::*;
use render::*;
use scan::*;
use seed::*;

const STRATEGIES: [&str; 2] = ["list-access-keys", "credential-report"];
/// The host build the stack serves and the probe runs, quicker to build than the
/// deployment's (Cargo.toml says how and why).
const CARGO_PROFILE: &str = "release-local";
const DELETION_DELAY_SECS: u64 = 3;
#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let settings = sizes().and_then(|sizes| Ok((sizes, latency()?)));
    let (sizes, latency) = match settings {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("keyrotor-bench: {e:#}");
            std::process::exit(2);
        }
    };
    let started = Instant::now();
    let outcome = tokio::select! {
        result = bench(&sizes, latency) => result,
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

/// The modelled latency per AWS call: real IAM answers in tens of milliseconds, moto in a few.
fn latency() -> Result<Duration> {
    let text = std::env::var("KEYROTOR_BENCH_LATENCY_MS").unwrap_or_else(|_| "40".into());
    let ms: u64 = text
        .trim()
        .parse()
        .ok()
        .filter(|ms| *ms <= 1000)
        .with_context(|| format!("KEYROTOR_BENCH_LATENCY_MS={text:?} is not 0 to 1000"))?;
    Ok(Duration::from_millis(ms))
}

async fn bench(sizes: &[usize], latency: Duration) -> Result<String> {
    let started = Instant::now();
    // Progress on stderr, with the time since the start, so slow phases show.
    let progress = |what: &str| eprintln!("[{:6.1} s] {what}", started.elapsed().as_secs_f64());
    let org = org_size()?;
    progress("starting the local stack");
    let mut stack = LocalStack::start(stack_options("credential-report", None)).await?;
    if std::env::var("KEYROTOR_BENCH_ONLY").as_deref() == Ok("organization") {
        progress(&format!(
            "an organization of {} accounts × {} users",
            org.0, org.1
        ));
        let runs = run_organization(&mut stack, org).await?;
        let mut out = String::new();
        render_organization(&mut out, &runs);
        return Ok(out);
    }
    let mut seeded = Seeded::default();
    let mut scans = Vec::new();
    let mut loops = Vec::new();
    let mut weighed = Vec::new();
    let mut day = None;
    let mut seeding = Vec::new();
    for &size in sizes {
        progress(&format!("seeding {size} users"));
        seeding.push((size, seed(&stack, &mut seeded, size).await?));
        let latencies = if latency.is_zero() {
            vec![Duration::ZERO]
        } else {
            vec![Duration::ZERO, latency]
        };
        for &latency in &latencies {
            let per_call = format!("{} ms per call added", latency.as_millis());
            for strategy in STRATEGIES {
                progress(&format!(
                    "scanning {size} users with {strategy}, {per_call}"
                ));
                let run = run_scan(&mut stack, size, strategy, latency).await?;
                progress(&format!("  scanned in {:.2?}", run.wall));
                scans.push(run);
            }
            progress(&format!("the seed's loop over {size} users, {per_call}"));
            let run = run_seed_loop(&stack, size, latency).await?;
            progress(&format!("  looped in {:.2?}", run.wall));
            loops.push(run);
            if Some(&size) == sizes.last() {
                progress(&format!(
                    "weighing GetAccountAuthorizationDetails, {per_call}"
                ));
                weighed.push(weigh_details(&stack, size, latency).await?);
            }
        }
        if day.is_none() {
            progress(&format!("one real day at {size} users"));
            day = Some(real_day(&mut stack, &seeded).await?);
        }
    }
    progress(&format!(
        "an organization of {} accounts × {} users",
        org.0, org.1
    ));
    let organization = run_organization(&mut stack, org).await?;
    progress("probing the function binaries");
    let functions = probe_functions(&stack).await?;
    drop(stack);
    progress("done");
    let day = day.context("no day was run")?;
    Ok(render(
        &scans,
        &loops,
        &weighed,
        &day,
        &functions,
        &organization,
        (&seeding, started.elapsed()),
    ))
}
