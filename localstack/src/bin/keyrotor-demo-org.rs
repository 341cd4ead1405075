//! `make demo-org`: keyrotor for every account of an AWS Organization, on this machine.
//! Makes an organization on the local emulator (nested OUs, an excluded OU, an account
//! tagged out, one whose keyrotor roles refuse it), gives each member account users of its
//! own, runs the organization scan as the schedule would, and prints what happened in each
//! account and the operator's per-account report.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use aws_sdk_sfn::types::ExecutionStatus;
use keyrotor_localstack::account::{Account, TestUser};
use keyrotor_localstack::moto::SeedUser;
use keyrotor_localstack::operator;
use keyrotor_localstack::organization::{member_account, LocalOrganization, EXAMPLE_OUS};
use keyrotor_localstack::stack::{
    execution_output, local_settings, LocalStack, StackOptions, ACCOUNT_ID,
};
use serde_json::{json, Value};

const TIMEOUT: Duration = Duration::from_secs(600);

/// An account of the demo: its name, OU, tags, users (name, key age) and what it shows.
struct DemoAccount {
    name: &'static str,
    ou: &'static str,
    tags: &'static [(&'static str, &'static str)],
    users: &'static [(&'static str, i64)],
    story: &'static str,
}

const ACCOUNTS: &[DemoAccount] = &[
    DemoAccount {
        name: "prod",
        ou: "Prod",
        tags: &[("keyrotor:admin-address", "prod-security@example.com")],
        users: &[("deploy", 120), ("ops", 30)],
        story: "Workloads/Prod, tagged keyrotor:admin-address=prod-security@example.com",
    },
    DemoAccount {
        name: "payments",
        ou: "Payments",
        tags: &[],
        users: &[("deploy", 100), ("batch", 85)],
        story: "Workloads/Prod/Payments, three levels down",
    },
    DemoAccount {
        name: "dev",
        ou: "Workloads",
        tags: &[],
        users: &[("deploy", 80)],
        story: "Workloads",
    },
    DemoAccount {
        name: "legacy",
        ou: "Workloads",
        tags: &[],
        users: &[("deploy", 130)],
        story: "Workloads; its keyrotor roles refuse keyrotor (no StackSet instance)",
    },
    DemoAccount {
        name: "vendor",
        ou: "Workloads",
        tags: &[("keyrotor:exclude", "true")],
        users: &[("deploy", 140)],
        story: "Workloads, tagged keyrotor:exclude=true",
    },
    DemoAccount {
        name: "lab",
        ou: "Experiments",
        tags: &[],
        users: &[("deploy", 150)],
        story: "Sandbox/Experiments; Sandbox is an excluded OU",
    },
];

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let started = Instant::now();
    println!("keyrotor organization demo: every account of an AWS Organization, locally\n");
    let stack = match LocalStack::start(StackOptions::default()).await {
        Ok(stack) => stack,
        Err(e) => {
            eprintln!("could not start the local stack: {e:#}");
            std::process::exit(1);
        }
    };
    let outcome = tokio::select! {
        result = demo(stack) => result,
        _ = tokio::signal::ctrl_c() => {
            eprintln!("\ninterrupted: stopping the local stack");
            std::process::exit(130);
        }
    };
    operator::end_demo(outcome, started);
}

async fn demo(mut stack: LocalStack) -> Result<()> {
    let admin = stack.moto.sdk_config();
    println!("The organization (keyrotor runs in the management account {ACCOUNT_ID} here):");
    let accounts: Vec<_> = ACCOUNTS
        .iter()
        .map(|a| (a.name, Some(a.ou), a.tags))
        .collect();
    let org = LocalOrganization::create(&admin, &EXAMPLE_OUS, &accounts).await?;
    let mut members: BTreeMap<&str, Account> = BTreeMap::new();
    for account in ACCOUNTS {
        let id = org.id(account.name);
        let users: Vec<SeedUser> = account
            .users
            .iter()
            .map(|(name, age)| SeedUser {
                name: (*name).into(),
                tags: [(
                    "Email".to_owned(),
                    format!("{name}@{}.example.com", account.name),
                )]
                .into(),
                key_age_days: Some(*age),
                groups: Vec::new(),
            })
            .collect();
        stack.moto.seed_users(id, &users)?;
        let member = member_account(&admin, id).await?;
        if account.name == "prod" {
            // Two active keys: rotating would need a third, so keyrotor reports it blocked,
            // to the owner and to this account's admin address.
            member
                .seed(
                    &stack.moto,
                    &TestUser::new("shared")
                        .tag("Email", "shared@prod.example.com")
                        .key(150, true)
                        .key(20, true),
                )
                .await?;
        }
        members.insert(account.name, member);
        let users: Vec<String> = account
            .users
            .iter()
            .map(|(n, age)| format!("{n} ({age} days)"))
            .collect();
        println!(
            "  {id} {:<9} {}: {}",
            account.name,
            account.story,
            users.join(", ")
        );
    }

    println!("\nkeyrotor in the organization mode (KEYROTOR_ACCOUNTS=organization, KEYROTOR_EXCLUDE_OUS=Sandbox),");
    println!("and the legacy account's role refusing it (AccessDenied, injected: the emulator checks no trust policy).");
    let mut env = local_settings();
    env.push(("KEYROTOR_ACCOUNTS".into(), "organization".into()));
    env.push(("KEYROTOR_EXCLUDE_OUS".into(), org.id("Sandbox").into()));
    stack.restart_functions(&StackOptions {
        function_env: env,
        ..StackOptions::default()
    })?;
    stack.set_faults(json!([{
        "operation": "sts:AssumeRole", "match": org.id("legacy"),
        "mode": "fail_before", "kind": "denied", "times": -1
    }]))?;

    println!("\nRunning the organization scan, as the schedule would...");
    let begun = Instant::now();
    let arn = stack
        .start_execution_on(
            &stack.organization_state_machine_arn,
            "demo-organization-scan",
            &json!({}),
        )
        .await?;
    let done = stack.wait_for(&arn, TIMEOUT).await?;
    if done.status() != &ExecutionStatus::Succeeded {
        bail!(
            "the organization scan ended {:?}: {:?}",
            done.status(),
            done.cause()
        );
    }
    stack
        .wait_all_of(&stack.scan_state_machine_arn, TIMEOUT)
        .await?;
    stack.wait_all(TIMEOUT).await?;
    let summary = execution_output(&done)?;
    let history = stack.history(&arn).await?;
    println!(
        "  done in {:.0?}: {} accounts scanned, {} unreachable; {} history events in the organization scan",
        begun.elapsed(),
        summary["succeeded"],
        summary["unreachable"].as_array().map_or(0, Vec::len),
        history.len()
    );

    println!("\nWhat happened in each account:");
    let skipped: BTreeMap<String, String> = summary["skipped"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| (text(&s["id"]), text(&s["reason"])))
        .collect();
    let unreachable: Vec<String> = summary["unreachable"]
        .as_array()
        .into_iter()
        .flatten()
        .map(text)
        .collect();
    for account in ACCOUNTS {
        let id = org.id(account.name);
        let secrets = members[account.name].secret_names().await?.len();
        let outcome = if let Some(reason) = skipped.get(id) {
            format!("skipped ({reason})")
        } else if unreachable.iter().any(|u| u == id) {
            "UNREACHABLE: its scan failed, the admin was told".to_owned()
        } else if summary["prunedOus"]
            .as_array()
            .is_some_and(|p| !p.is_empty())
            && account.ou == "Experiments"
        {
            "not listed: its OU is under an excluded one".to_owned()
        } else {
            match secrets {
                0 => "scanned: nothing due yet (its owner was warned)".to_owned(),
                n => {
                    format!("scanned: {n} key(s) rotated, each new key in a secret of this account")
                }
            }
        };
        println!("  {id} {:<9} {outcome}", account.name);
    }
    println!(
        "  {ACCOUNT_ID} {:<9} skipped ({})",
        "(mgmt)",
        skipped.get(ACCOUNT_ID).map_or("?", String::as_str)
    );

    println!("\nMails (each names the account; SES stays in keyrotor's account):");
    for mail in stack.moto.sent_emails()? {
        println!("  to {:<32} {}", mail.to.join(", "), mail.subject);
    }
    if let Some(mail) = stack
        .moto
        .sent_emails()?
        .into_iter()
        .find(|m| m.subject.contains(org.id("legacy")))
    {
        // The error as the function reported it, out of the mail's HTML.
        let body = mail.body.replace("&quot;", "\"").replace("&#39;", "'");
        let start = body
            .find(&format!("account {} is unreachable", org.id("legacy")))
            .context("the unreachable account's mail explains")?;
        let reason = body[start..].split('"').next().unwrap_or_default();
        println!("\nThe admin's mail about the legacy account says:\n  {reason}");
    }

    println!("\nThe operator's view, account by account, through each account's read-only keyrotor/report role:");
    let code = operator::keyrotor(&stack, &["report", "--organization"], None)?;
    println!(
        "  (exit code {}: an account is unreachable, and keys past the rotation age remain: the blocked one, and the unreachable account's)",
        code.map_or_else(|| "none".to_owned(), |c| c.to_string())
    );
    Ok(())
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or("?").to_owned()
}
