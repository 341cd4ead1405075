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
use keyrotor_localstack::account::{Account, SeededKey, TestUser, EVENTS_QUEUE};
use keyrotor_localstack::github::{self, FakeGitHub};
use keyrotor_localstack::operator;
use keyrotor_localstack::stack::{LocalStack, StackOptions, ADMIN_ADDRESS, EXEMPT_GROUP};
use keyrotor_localstack::workspace_root;
use serde_json::Value;

const DELETION_DELAY_SECS: u64 = 6;
/// The overlap window's cap here: 20 s (7 days deployed), ended early 3 s after the old
/// key's last use once the new key is in use (2 days deployed).
const OVERLAP_SECS: u64 = 20;
const SETTLE_SECS: u64 = 3;
/// A due key never used, or not for this many days, is retired (as deployed).
const UNUSED_DAYS: u64 = 45;
/// The user whose CI job uses its key all through the demo, and moves to the new key.
const CI_USER: &str = "ci-runner";
/// The repository whose GitHub Actions secrets hold the CI user's key (on the fake GitHub).
const CI_REPOSITORY: &str = "acme/deploy";
const EXEMPT_TAG: &str = "key-rotation:exempt";

struct DemoUser {
    name: &'static str,
    story: &'static str,
    keys: &'static [(i64, bool)],
    tags: &'static [(&'static str, &'static str)],
    group: bool,
    /// A program signs requests with the user's active keys (once, at seeding): a key
    /// nobody uses is retired instead of rotated.
    used: bool,
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
        used: true,
    },
    DemoUser {
        name: "bob",
        story: "one key, 80 days old (a warning day)",
        keys: &[(80, true)],
        tags: &[("Email", "bob@example.com")],
        group: false,
        used: true,
    },
    DemoUser {
        name: "carol",
        story: "two active keys, the older 120 days",
        keys: &[(120, true), (30, true)],
        tags: &[("Email", "carol@example.com")],
        group: false,
        used: true,
    },
    DemoUser {
        name: "dave",
        story: "100-day key plus an inactive leftover",
        keys: &[(200, false), (100, true)],
        tags: &[("Email", "dave@example.com")],
        group: false,
        used: true,
    },
    DemoUser {
        name: "erin",
        story: "one key, 10 days old",
        keys: &[(10, true)],
        tags: &[("Email", "erin@example.com")],
        group: false,
        used: true,
    },
    DemoUser {
        name: "frank",
        story: "150 days old, tagged exempt",
        keys: &[(150, true)],
        tags: &[("Email", "frank@example.com"), (EXEMPT_TAG, "true")],
        group: false,
        used: true,
    },
    DemoUser {
        name: "grace",
        story: "150 days old, exempt until 2099-12-31",
        keys: &[(150, true)],
        tags: &[("Email", "grace@example.com"), (EXEMPT_TAG, "2099-12-31")],
        group: false,
        used: true,
    },
    DemoUser {
        name: "heidi",
        story: "150 days old, in the break-glass group",
        keys: &[(150, true)],
        tags: &[("Email", "heidi@example.com")],
        group: true,
        used: true,
    },
    DemoUser {
        name: "ivan",
        story: "91 days old, no Email tag",
        keys: &[(91, true)],
        tags: &[],
        group: false,
        used: true,
    },
    DemoUser {
        name: "judy",
        story: "no access keys at all",
        keys: &[],
        tags: &[("Email", "judy@example.com")],
        group: false,
        used: true,
    },
    DemoUser {
        name: "kim",
        story: "one key, 120 days old, never used",
        keys: &[(120, true)],
        tags: &[("Email", "kim@example.com")],
        group: false,
        used: false,
    },
    DemoUser {
        name: CI_USER,
        story: "100 days old, used by a GitHub Actions job every half second",
        keys: &[(100, true)],
        tags: &[("Email", "ci@example.com")],
        group: false,
        used: true,
    },
    DemoUser {
        name: "svc+deploy=ci",
        story: "service user, 120 days old",
        keys: &[(120, true)],
        tags: &[("Email", "platform@example.com")],
        group: false,
        used: true,
    },
];

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let started = Instant::now();
    println!("keyrotor demo: the whole pipeline against a local AWS emulator\n");
    println!("Starting the local stack: moto (IAM, STS, Secrets Manager, SES, Step Functions),");
    println!("cargo lambda watch serving the eleven function binaries, the state machines, and a");
    println!("fake GitHub (Actions secrets, opened with libsodium) with a webhook receiver...");
    let fake = match FakeGitHub::start() {
        Ok(fake) => fake,
        Err(e) => {
            eprintln!("could not start the fake GitHub: {e:#}");
            std::process::exit(1);
        }
    };
    let mut options = StackOptions {
        deletion_delay_secs: DELETION_DELAY_SECS,
        ..StackOptions::default()
    };
    options.function_env.extend(
        [
            ("KEYROTOR_OVERLAP_SECONDS", OVERLAP_SECS),
            ("KEYROTOR_CUTOVER_SETTLE_SECONDS", SETTLE_SECS),
            ("KEYROTOR_UNUSED_DAYS", UNUSED_DAYS),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_string())),
    );
    // The CI user's key goes to its repository's Actions secrets, and its team's
    // automation gets a signed notice (the template's Destinations parameter).
    options
        .function_env
        .extend(fake.settings(&serde_json::json!({
            CI_USER: [
                {"type": "github", "repository": CI_REPOSITORY},
                {"type": "webhook", "url": fake.hook_url("")}
            ]
        })));
    let stack = match LocalStack::start(options).await {
        Ok(stack) => stack,
        Err(e) => {
            eprintln!("could not start the local stack: {e:#}");
            std::process::exit(1);
        }
    };
    let outcome = tokio::select! {
        result = demo(&stack, &fake, started) => result,
        _ = tokio::signal::ctrl_c() => {
            eprintln!("\ninterrupted: stopping the local stack");
            drop(stack);
            std::process::exit(130);
        }
    };
    drop(stack);
    operator::end_demo(outcome, started);
}

async fn demo(stack: &LocalStack, fake: &FakeGitHub, started: Instant) -> Result<()> {
    let a = &stack.account;
    a.prepare_delivery(&[
        (github::TOKEN_SECRET, github::TOKEN),
        (github::WEBHOOK_SECRET, github::WEBHOOK_KEY),
    ])
    .await?;
    println!(
        "  ready in {:.0?}: state machines {} and {}\n",
        started.elapsed(),
        stack.scan_state_machine_arn,
        stack.state_machine_arn
    );

    println!("Seeding the demo account (keys are aged by moving the emulator's clock):");
    let mut before: BTreeMap<&str, Vec<(String, String)>> = BTreeMap::new();
    let mut ci_key = None;
    for user in USERS {
        let keys = a.seed(&stack.moto, &user.test_user()).await?;
        if user.used {
            for (key, (_, active)) in keys.iter().zip(user.keys) {
                if *active {
                    a.caller_arn(&key.id, &key.secret)
                        .await
                        .with_context(|| format!("{}'s program", user.name))?;
                }
            }
        }
        if user.name == CI_USER {
            ci_key = keys.into_iter().next();
        }
        before.insert(user.name, a.keys(user.name).await?);
        println!("  {:<14} {}", user.name, user.story);
    }
    let ci_key = ci_key.context("the CI user's key")?;
    let job = tokio::spawn(ci_job(a.clone(), ci_key, fake.port));

    println!("\nRunning the daily scan now, as the EventBridge schedule would, with the operator's command.");
    println!("Rotated keys keep working for an overlap window ({OVERLAP_SECS} s here, 7 days deployed), ended");
    println!("early {SETTLE_SECS} s after the old key's last use once the new key is in use (2 days deployed):");
    let log_start = stack.functions_log_len();
    // The command blocks this thread; the CI job goes on on the other.
    tokio::task::block_in_place(|| cli(stack, &["scan", "--wait"], None))?;
    let job = job.await.context("the CI job")??;
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
    report(stack, a, &before, &totals["totals"], &events, fake).await?;
    timeline(stack, &job).await?;
    delivered(fake)?;
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
    fake: &FakeGitHub,
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
                        "rotated ({}), old key {}{}",
                        output["deactivated"]["why"].as_str().unwrap_or("?"),
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
                    "retire" => format!(
                        "retired (unused), no new key; key {}",
                        output["deleted"]["outcome"].as_str().unwrap_or("?")
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
        let name = s.name().unwrap_or_default();
        // The users' secrets, not delivery's settings (the GitHub token, the webhook key).
        if !name.starts_with("iam-access-key/") {
            continue;
        }
        let value = a.secret_value(name).await?;
        // A retired key's record names the key and holds no secret.
        if value["Retired"] == true {
            continue;
        }
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
    // What went to GitHub (sealed boxes) and the webhook (a notice), as sent.
    haystack.push_str(&fake.request_log());
    let hits = secrets
        .iter()
        .filter(|s| haystack.contains(s.as_str()))
        .count();
    println!(
        "\nLeak check: {} new secret access keys searched for in {} execution histories, the function logs, every e-mail, the {} events and every request to GitHub and the webhook: {hits} found.",
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
    if subject.contains("will be rotated") || subject.contains("will be retired") {
        "warning"
    } else if subject.contains("Unused access key") {
        "retired"
    } else if subject.contains("New access key") {
        "new key"
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

/// What the fake GitHub and the webhook receiver hold after the demo.
fn delivered(fake: &FakeGitHub) -> Result<()> {
    let state = fake.state()?;
    println!("\nWhat deliver-key sent (the fake GitHub opened each value with its private key):");
    if let Some(secrets) = state["secrets"].as_object() {
        for (path, held) in secrets {
            let value = held["value"].as_str().unwrap_or_default();
            // The key ID is not secret; the secret is shown by its length only.
            let shown = if path.ends_with("AWS_ACCESS_KEY_ID") {
                value.to_owned()
            } else {
                format!("({} characters, sealed on the wire)", value.len())
            };
            println!(
                "  GitHub {path:<46} {shown}, updated {}",
                held["updated_at"].as_str().unwrap_or("?")
            );
        }
    }
    for notice in state["notices"].as_array().into_iter().flatten() {
        println!("  webhook notice (signature checked): {}", notice["notice"]);
    }
    Ok(())
}

/// What the CI job saw: when the new key was in its repository's secrets, its last request
/// with the old key, and whether every request worked.
struct Job {
    new_key_seen: chrono::DateTime<chrono::Utc>,
    requests: usize,
}

/// A GitHub Actions job on `key`: a request (STS GetCallerIdentity, which the emulator
/// records as the key's use) every half second, with the key its repository's secrets
/// `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` hold, as each run gets them. Nobody
/// copies the new key by hand: once deliver-key has written it there, the next run uses
/// it, until the old key is deactivated. Every request must work: a failed one is an
/// outage.
async fn ci_job(a: Account, key: SeededKey, github_port: u16) -> Result<Job> {
    let tick = std::time::Duration::from_millis(500);
    let deadline = Instant::now() + std::time::Duration::from_secs(240);
    let mut requests = 0;
    let held = |name: &str| -> Option<String> {
        let state = github::state_at(github_port).ok()?;
        state["secrets"][format!("{CI_REPOSITORY}/{name}")]["value"]
            .as_str()
            .map(str::to_owned)
    };
    let (new_id, new_secret) = loop {
        a.caller_arn(&key.id, &key.secret)
            .await
            .context("the CI job's request with the old key failed: an outage")?;
        requests += 1;
        match (held("AWS_ACCESS_KEY_ID"), held("AWS_SECRET_ACCESS_KEY")) {
            (Some(id), Some(secret)) if id != key.id => break (id, secret),
            _ => {}
        }
        if Instant::now() > deadline {
            bail!("the CI user's key was never delivered");
        }
        tokio::time::sleep(tick).await;
    };
    let seen = chrono::Utc::now();
    let (new_id, new_secret) = (new_id.as_str(), new_secret.as_str());
    while a
        .keys(CI_USER)
        .await?
        .iter()
        .any(|(id, status)| *id == key.id && status == "Active")
    {
        a.caller_arn(new_id, new_secret)
            .await
            .context("the CI job's request with the new key failed")?;
        requests += 1;
        if Instant::now() > deadline {
            bail!("the CI user's old key was never deactivated");
        }
        tokio::time::sleep(tick).await;
    }
    Ok(Job {
        new_key_seen: seen,
        requests,
    })
}

/// The CI user's rotation as it unfolded, from its execution's output and the job's view.
async fn timeline(stack: &LocalStack, job: &Job) -> Result<()> {
    let executions = stack.executions().await?;
    let mut rotation = None;
    for e in &executions {
        let desc = stack
            .account
            .sfn
            .describe_execution()
            .execution_arn(e.execution_arn())
            .send()
            .await?;
        let input: Value = serde_json::from_str(desc.input().unwrap_or("{}"))?;
        if input["user"] == CI_USER {
            rotation = Some(desc);
        }
    }
    let rotation = rotation.context("the CI user's execution")?;
    let out: Value = serde_json::from_str(rotation.output().unwrap_or("null"))?;
    let start = chrono::DateTime::<chrono::Utc>::from_timestamp(
        rotation.start_date().secs(),
        rotation.start_date().subsec_nanos(),
    )
    .context("start time")?;
    let at = |v: &Value| {
        v.as_str()
            .and_then(|t| t.parse::<chrono::DateTime<chrono::Utc>>().ok())
    };
    let offset = |t: Option<chrono::DateTime<chrono::Utc>>| {
        t.map_or_else(
            || "    ?".to_owned(),
            |t| format!("{:>5.1}", (t - start).num_milliseconds() as f64 / 1000.0),
        )
    };
    let d = &out["deactivated"];
    let mut lines = vec![
        (at(&d["window"]["since"]), format!("deactivate-key opens the overlap window: both keys work, until {} at the latest", d["window"]["until"].as_str().unwrap_or("?"))),
        (at(&out["created"]["delivery"]["destinations"][0]["at"]), format!("the new key is created, verified and stored, and deliver-key writes it to {CI_REPOSITORY}'s Actions secrets (sealed) and notifies the team's webhook")),
        (Some(job.new_key_seen), "the CI job's next run gets the new key from the repository's secrets: its last request with the old key, from here on it uses the new one".to_owned()),
        (at(&d["deactivatedAt"]), format!("old key deactivated, why: {} (the new key was in use, the old one silent {SETTLE_SECS} s)", d["why"].as_str().unwrap_or("?"))),
        (at(&d["deleteAfter"]), format!("old key {} after the deletion delay", out["deleted"]["outcome"].as_str().unwrap_or("?"))),
    ];
    lines.sort_by_key(|(t, _)| *t);
    println!("\nTimeline of {CI_USER}'s rotation, seconds from its execution's start (the CI job made {} requests, none failed; the other users' programs never moved to their new keys, so their old keys went at the window's end):", job.requests);
    for (t, what) in &lines {
        println!("  {} s  {what}", offset(*t));
    }
    if d["why"] != "idle" {
        bail!(
            "{CI_USER}'s old key was deactivated for {} rather than once idle",
            d["why"]
        );
    }
    Ok(())
}
