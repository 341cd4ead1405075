//! `make demo`: the whole keyrotor pipeline on this machine. Starts the local stack (moto
//! executing the real ASL, the real function binaries under `cargo lambda watch`), seeds an
//! account with users of every kind (keys aged by moving moto's clock), runs a scheduled
//! scan, follows the per-user executions, and prints what was found and done. Stops
//! everything it started, also on Ctrl-C.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use aws_sdk_sfn::types::ExecutionStatus;
use keyrotor_core::metrics::{Metric, Summary};
use keyrotor_localstack::account::{Account, TestUser, EVENTS_QUEUE};
use keyrotor_localstack::operator;
use keyrotor_localstack::stack::{LocalStack, StackOptions, ADMIN_ADDRESS, EXEMPT_GROUP};
use keyrotor_localstack::workspace_root;
use serde_json::Value;

const DELETION_DELAY_SECS: u64 = 6;
const EXEMPT_TAG: &str = "key-rotation:exempt";

struct DemoUser {
    name: &'static str,
    story: &'static str,
    keys: &'static [(i64, bool)],
    tags: &'static [(&'static str, &'static str)],
    group: bool,
}

impl DemoUser {
    fn test_user(&self) -> TestUser {
        let mut user = TestUser::new(self.name);
        for (k, v) in self.tags {
            user = user.tag(k, v);
        }
        for (age, active) in self.keys {
            user = user.key(*age, *active);
        }
        if self.group {
            user = user.group(EXEMPT_GROUP);
        }
        user
    }
}

const USERS: &[DemoUser] = &[
    DemoUser {
        name: "alice",
        story: "one key, 95 days old",
        keys: &[(95, true)],
        tags: &[("Email", "alice@example.com")],
        group: false,
    },
    DemoUser {
        name: "bob",
        story: "one key, 80 days old (a warning day)",
        keys: &[(80, true)],
        tags: &[("Email", "bob@example.com")],
        group: false,
    },
    DemoUser {
        name: "carol",
        story: "two active keys, the older 120 days",
        keys: &[(120, true), (30, true)],
        tags: &[("Email", "carol@example.com")],
        group: false,
    },
    DemoUser {
        name: "dave",
        story: "100-day key plus an inactive leftover",
        keys: &[(200, false), (100, true)],
        tags: &[("Email", "dave@example.com")],
        group: false,
    },
    DemoUser {
        name: "erin",
        story: "one key, 10 days old",
        keys: &[(10, true)],
        tags: &[("Email", "erin@example.com")],
        group: false,
    },
    DemoUser {
        name: "frank",
        story: "150 days old, tagged exempt",
        keys: &[(150, true)],
        tags: &[("Email", "frank@example.com"), (EXEMPT_TAG, "true")],
        group: false,
    },
    DemoUser {
        name: "grace",
        story: "150 days old, exempt until 2099-12-31",
        keys: &[(150, true)],
        tags: &[("Email", "grace@example.com"), (EXEMPT_TAG, "2099-12-31")],
        group: false,
    },
    DemoUser {
        name: "heidi",
        story: "150 days old, in the break-glass group",
        keys: &[(150, true)],
        tags: &[("Email", "heidi@example.com")],
        group: true,
    },
    DemoUser {
        name: "ivan",
        story: "91 days old, no Email tag",
        keys: &[(91, true)],
        tags: &[],
        group: false,
    },
    DemoUser {
        name: "judy",
        story: "no access keys at all",
        keys: &[],
        tags: &[("Email", "judy@example.com")],
        group: false,
    },
    DemoUser {
        name: "svc+deploy=ci",
        story: "service user, 120 days old",
        keys: &[(120, true)],
        tags: &[("Email", "platform@example.com")],
        group: false,
    },
];

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let started = Instant::now();
    println!("keyrotor demo: the whole pipeline against a local AWS emulator\n");
    println!("Starting the local stack: moto (IAM, STS, Secrets Manager, SES, Step Functions),");
    println!("cargo lambda watch serving the ten function binaries, and the state machines...");
    let stack = match LocalStack::start(StackOptions {
        deletion_delay_secs: DELETION_DELAY_SECS,
        ..StackOptions::default()
    })
    .await
    {
        Ok(stack) => stack,
        Err(e) => {
            eprintln!("could not start the local stack: {e:#}");
            std::process::exit(1);
        }
    };
    let outcome = tokio::select! {
        result = demo(&stack, started) => result,
        _ = tokio::signal::ctrl_c() => {
            eprintln!("\ninterrupted: stopping the local stack");
            drop(stack);
            std::process::exit(130);
        }
    };
    drop(stack);
    operator::end_demo(outcome, started);
}

async fn demo(stack: &LocalStack, started: Instant) -> Result<()> {
    let a = &stack.account;
    println!(
        "  ready in {:.0?}: state machines {} and {}\n",
        started.elapsed(),
        stack.scan_state_machine_arn,
        stack.state_machine_arn
    );

    println!("Seeding the demo account (keys are aged by moving the emulator's clock):");
    let mut before: BTreeMap<&str, Vec<(String, String)>> = BTreeMap::new();
    for user in USERS {
        a.seed(&stack.moto, &user.test_user()).await?;
        before.insert(user.name, a.keys(user.name).await?);
        println!("  {:<14} {}", user.name, user.story);
    }

    println!("\nRunning the daily scan now, as the EventBridge schedule would, with the operator's command:");
    let log_start = stack.functions_log_len();
    cli(stack, &["scan", "--wait"], None)?;
    let scans = stack.executions_of(&stack.scan_state_machine_arn).await?;
    let scan = scans.first().context("the scan execution")?;
    let scan = a
        .sfn
        .describe_execution()
        .execution_arn(scan.execution_arn())
        .send()
        .await?;
    if scan.status() != &ExecutionStatus::Succeeded {
        bail!("the scan ended {:?}: {:?}", scan.status(), scan.cause());
    }
    let totals: Value = serde_json::from_str(scan.output().unwrap_or("{}"))?;
    cli(stack, &["status"], None)?;
    cli(stack, &["report"], None)?;
    let page = workspace_root().join("target/demo/keyrotor-report.html");
    cli(stack, &["report", "--format", "html"], Some(&page))?;
    let events = a.received_events().await?;
    report(stack, a, &before, &totals["totals"], &events).await?;
    observed(stack, &events, log_start)?;
    println!("\nWhere to look:");
    println!(
        "  the auditors' page      {} (open it in a browser)",
        page.display()
    );
    println!(
        "  the metric lines        {} (lines starting {{\"_aws\"; on AWS, CloudWatch turns them into the dashboard's metrics)",
        stack.functions_log.display()
    );
    println!("  the events              the queue {EVENTS_QUEUE}, fed by a rule on the default bus for source keyrotor");
    Ok(())
}

/// What keyrotor told other automation during the demo: the events a rule on the default
/// bus sent to a queue, and the metric lines the functions wrote since `log_start`.
fn observed(stack: &LocalStack, events: &[Value], log_start: u64) -> Result<()> {
    let mut by_type: BTreeMap<String, usize> = BTreeMap::new();
    for e in events {
        *by_type
            .entry(e["detail-type"].as_str().unwrap_or("?").to_owned())
            .or_default() += 1;
    }
    println!("\nEvents on the default bus (source keyrotor), as a rule delivered them to a queue:");
    for (detail_type, count) in &by_type {
        println!("  {detail_type:<18} {count}");
    }
    if let Some(rotated) = events.iter().find(|e| e["detail-type"] == "KeyRotated") {
        println!("  e.g. KeyRotated: {}", rotated["detail"]);
    }

    let lines = stack.metrics_since(log_start)?;
    println!(
        "\nMetrics the functions wrote ({} CloudWatch embedded-metric lines, namespace keyrotor):",
        lines.len()
    );
    let summary = Summary::of(&lines);
    for (name, (sum, max)) in &summary.scan {
        // Ages are read by their maximum, counts by their sum.
        let shown = if name == Metric::OldestKeyAgeDays.name() {
            *max
        } else {
            *sum
        };
        println!("  {name:<18} {shown}");
    }
    for (outcome, (count, seconds)) in &summary.outcomes {
        println!(
            "  Rotations {outcome:<8} {count}, {:.1} s on average from the execution's start",
            seconds / *count as f64
        );
    }
    Ok(())
}

/// Runs `keyrotor ARGS` against the local stack (see [`operator::keyrotor`]); exit code 3
/// of a report is expected here (the blocked user's key).
fn cli(stack: &LocalStack, args: &[&str], to: Option<&std::path::Path>) -> Result<()> {
    match operator::keyrotor(stack, args, to)? {
        Some(0) => {}
        Some(3) if args[0] == "report" => {
            println!("  (exit code 3: a key past the rotation age remains, here the blocked one)")
        }
        other => bail!("keyrotor {} exited with {other:?}", args.join(" ")),
    }
    Ok(())
}

async fn report(
    stack: &LocalStack,
    a: &Account,
    before: &BTreeMap<&str, Vec<(String, String)>>,
    totals: &Value,
    events: &[Value],
) -> Result<()> {
    let executions = stack.executions().await?;
    let mut per_user: BTreeMap<String, (Value, usize, String)> = BTreeMap::new();
    for e in &executions {
        let desc = a
            .sfn
            .describe_execution()
            .execution_arn(e.execution_arn())
            .send()
            .await?;
        let input: Value = serde_json::from_str(desc.input().unwrap_or("{}")).unwrap_or_default();
        let output: Value =
            serde_json::from_str(desc.output().unwrap_or("null")).unwrap_or_default();
        let history = stack.history(e.execution_arn()).await?;
        let transitions = history
            .iter()
            .filter(|h| {
                h["type"]
                    .as_str()
                    .is_some_and(|t| t.ends_with("StateEntered"))
            })
            .count();
        if let Some(user) = input["user"].as_str() {
            per_user.insert(
                user.to_owned(),
                (output, transitions, e.status().as_str().to_owned()),
            );
        }
    }
    let mails = stack.moto.sent_emails()?;

    println!("\nScan summary: {totals}");
    println!("\nWhat keyrotor found and did:");
    println!(
        "  {:<14} {:<9} {:<46} e-mails",
        "user", "decision", "outcome"
    );
    let mut transitions = BTreeSet::new();
    for user in USERS {
        let (decision, outcome) = match per_user.get(user.name) {
            None if user.tags.iter().any(|(k, _)| *k == EXEMPT_TAG) || user.group => {
                ("exempt".to_owned(), "untouched".to_owned())
            }
            None => ("none".to_owned(), "untouched: nothing due".to_owned()),
            Some((output, count, status)) => {
                transitions.insert((*count, user.name));
                let action = output["assessment"]["action"]
                    .as_str()
                    .unwrap_or("?")
                    .to_owned();
                let outcome = match action.as_str() {
                    "rotate" => format!(
                        "rotated, old key {}{}",
                        output["deleted"]["outcome"].as_str().unwrap_or("?"),
                        if output["created"]["deletedLeftoverKeyId"].is_string() {
                            " (leftover removed first)"
                        } else {
                            ""
                        }
                    ),
                    "warn" => format!(
                        "warned: rotation on {}",
                        output["assessment"]["rotateOn"].as_str().unwrap_or("?")
                    ),
                    "blocked" => "reported to owner and admin, nothing changed".to_owned(),
                    _ => format!(
                        "{status}: {}",
                        output["assessment"]["reason"].as_str().unwrap_or("")
                    ),
                };
                (action, outcome)
            }
        };
        let address = user
            .tags
            .iter()
            .find(|(k, _)| *k == "Email")
            .map(|(_, v)| *v);
        let subjects: Vec<&str> = mails
            .iter()
            .filter(|m| {
                m.subject.contains(user.name)
                    || address.is_some_and(|ad| {
                        m.to.iter().any(|t| t == ad) && m.subject.contains(user.name)
                    })
            })
            .map(|m| kind_of(&m.subject))
            .collect();
        println!(
            "  {:<14} {:<9} {:<46} {}",
            user.name,
            decision,
            outcome,
            if subjects.is_empty() {
                "-".to_owned()
            } else {
                subjects.join(", ")
            }
        );
    }

    println!("\nAccess keys before → after:");
    for user in USERS {
        let after = a.keys(user.name).await?;
        let show = |keys: &[(String, String)]| -> String {
            if keys.is_empty() {
                "(none)".into()
            } else {
                keys.iter()
                    .map(|(id, st)| format!("{id} {}", st.to_lowercase()))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        };
        let changed = before.get(user.name).map(Vec::as_slice) != Some(after.as_slice());
        println!(
            "  {:<14} {:<52} → {}{}",
            user.name,
            show(&before[user.name]),
            show(&after),
            if changed { "" } else { "  (unchanged)" }
        );
    }

    println!("\nE-mails sent ({}):", mails.len());
    for m in &mails {
        println!("  to {:<36} {}", m.to.join(", "), m.subject);
    }
    let admin = mails
        .iter()
        .filter(|m| m.to.iter().any(|t| t == ADMIN_ADDRESS))
        .count();
    println!("  ({admin} of them to the admin, {ADMIN_ADDRESS})");

    println!("\nState transitions per per-user execution:");
    for (count, user) in &transitions {
        println!("  {user:<14} {count}");
    }
    println!("\nLambda invocations (through the local gateway):");
    for (function, count) in stack.invocations()? {
        println!("  {function:<16} {count}");
    }

    // The secrets are in Secrets Manager and nowhere else.
    let mut secrets = Vec::new();
    for s in a.secrets.list_secrets().send().await?.secret_list() {
        let value = a.secret_value(s.name().unwrap_or_default()).await?;
        secrets.push(
            value["SecretAccessKey"]
                .as_str()
                .context("secret value")?
                .to_owned(),
        );
    }
    let mut haystack = std::fs::read_to_string(&stack.functions_log).unwrap_or_default();
    let executions = stack.all_executions().await?;
    for e in &executions {
        haystack.push_str(&serde_json::to_string(
            &stack.history(e.execution_arn()).await?,
        )?);
    }
    for m in &mails {
        haystack.push_str(&m.body);
    }
    haystack.push_str(&serde_json::to_string(events)?);
    let hits = secrets
        .iter()
        .filter(|s| haystack.contains(s.as_str()))
        .count();
    println!(
        "\nLeak check: {} new secret access keys searched for in {} execution histories, the function logs, every e-mail and the {} events: {hits} found.",
        secrets.len(),
        executions.len(),
        events.len()
    );
    if hits > 0 {
        bail!("a secret value leaked");
    }
    Ok(())
}

fn kind_of(subject: &str) -> &'static str {
    if subject.contains("will be rotated") {
        "warning"
    } else if subject.contains("rotated: new key") {
        "rotated"
    } else if subject.contains("deleted") {
        "deleted"
    } else if subject.contains("blocked") {
        "blocked"
    } else if subject.contains("kept") {
        "kept"
    } else if subject.contains("failed") {
        "failure"
    } else {
        "other"
    }
}
