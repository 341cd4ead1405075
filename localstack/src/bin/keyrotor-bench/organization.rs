//! An organization scan, measured: 50 member accounts of 200 users each (by default), the
//! account scans' per-user executions sent to a state machine that does nothing, once per
//! account concurrency. Each run sends its account scans to a copy of the scan machine of
//! its own (account scan names carry only the account and the day).

use keyrotor_localstack::organization::{AccountSpec, LocalOrganization};
use keyrotor_localstack::stack::Machine;

use super::*;

/// One organization scan, measured.
pub(crate) struct OrgRun {
    pub(crate) accounts: usize,
    pub(crate) users: usize,
    pub(crate) concurrency: u16,
    pub(crate) wall: Duration,
    pub(crate) transitions: usize,
    pub(crate) events: usize,
    pub(crate) rounds: usize,
    /// The account scans' history events: the largest, and all of them.
    pub(crate) scan_events_max: usize,
    pub(crate) scan_events_total: usize,
    pub(crate) calls: BTreeMap<String, u64>,
    pub(crate) invocations: u64,
}

/// `KEYROTOR_BENCH_ORG=50x200` sets the organization (accounts × users each).
pub(crate) fn org_size() -> Result<(usize, usize)> {
    let text = std::env::var("KEYROTOR_BENCH_ORG").unwrap_or_else(|_| "50x200".into());
    let parsed = text
        .split_once('x')
        .and_then(|(a, u)| Some((a.trim().parse().ok()?, u.trim().parse().ok()?)));
    match parsed {
        Some((accounts, users)) if (1..=500).contains(&accounts) && (1..=5000).contains(&users) => {
            Ok((accounts, users))
        }
        _ => anyhow::bail!("KEYROTOR_BENCH_ORG={text:?} is not ACCOUNTSxUSERS (1-500 x 1-5000)"),
    }
}

/// The account concurrencies compared.
pub(crate) const CONCURRENCIES: [u16; 2] = [5, 25];

pub(crate) async fn run_organization(
    stack: &mut LocalStack,
    (accounts, users): (usize, usize),
) -> Result<Vec<OrgRun>> {
    // Five OUs under the root, the accounts spread over them.
    let ous: Vec<(String, Option<&str>)> = (0..5).map(|i| (format!("ou-{i}"), None)).collect();
    let ou_specs: Vec<(&str, Option<&str>)> = ous.iter().map(|(n, p)| (n.as_str(), *p)).collect();
    let names: Vec<String> = (0..accounts).map(|i| format!("member-{i:03}")).collect();
    let ou_names: Vec<String> = (0..accounts).map(|i| format!("ou-{}", i % 5)).collect();
    let account_specs: Vec<AccountSpec> = names
        .iter()
        .zip(&ou_names)
        .map(|(n, ou)| (n.as_str(), Some(ou.as_str()), &[][..]))
        .collect();
    let org =
        LocalOrganization::create(&stack.moto.sdk_config(), &ou_specs, &account_specs).await?;
    for name in &names {
        let seeds: Vec<SeedUser> = (0..users)
            .map(|i| SeedUser {
                name: format!("user-{i:04}"),
                tags: [("Email".to_owned(), format!("user-{i}@example.com"))].into(),
                // About 1 in 90 due, 1 in 30 on a warning day, the rest younger.
                key_age_days: Some(match i % 90 {
                    0 => 95,
                    n if n % 30 == 1 => 80,
                    n => i64::try_from(n % 60).unwrap_or(0),
                }),
                groups: Vec::new(),
            })
            .collect();
        stack.moto.seed_users(org.id(name), &seeds)?;
    }

    let mut runs = Vec::new();
    for concurrency in CONCURRENCIES {
        let label = format!("c{concurrency}");
        let sink_arn = sink(&stack.account, &format!("bench-org-sink-{label}")).await?;
        let scan_machine = stack
            .account
            .sfn
            .create_state_machine()
            .name(format!("bench-org-scan-{label}"))
            .role_arn(format!("arn:aws:iam::{ACCOUNT_ID}:role/keyrotor-bench"))
            .definition(Machine::Scan.local_definition(false)?)
            .send()
            .await?
            .state_machine_arn()
            .to_owned();
        let mut options = stack_options("credential-report", Some(&sink_arn));
        options.function_env.extend([
            ("KEYROTOR_ACCOUNTS".to_owned(), "organization".to_owned()),
            (
                "KEYROTOR_ACCOUNT_CONCURRENCY".to_owned(),
                concurrency.to_string(),
            ),
            (
                "KEYROTOR_SCAN_STATE_MACHINE_ARN".to_owned(),
                scan_machine.clone(),
            ),
        ]);
        let invocations_before = prepare(
            stack,
            &options,
            &[
                "list-accounts",
                "scan-accounts",
                "list-users",
                "assess-key-age",
                "start-rotations",
            ],
        )?;
        let arn = stack
            .start_execution_on(
                &stack.organization_state_machine_arn,
                &format!("bench-org-{label}"),
                &json!({}),
            )
            .await?;
        let (out, wall) = finish(stack, &arn, Duration::from_secs(1800)).await?;
        let summary: Value = serde_json::from_str(out.output().unwrap_or("{}"))?;
        ensure!(
            summary["succeeded"] == accounts && summary["failed"] == json!([]),
            "the organization scan did not scan every account: {summary}"
        );
        let calls = stack.proxy.calls()?;
        let invocations = total_invocations(stack)? - invocations_before;
        let history = stack.history(&arn).await?;
        let rounds = history
            .iter()
            .filter(|e| {
                e["state"] == "FollowScans"
                    && e["type"]
                        .as_str()
                        .is_some_and(|t| t.ends_with("StateEntered"))
            })
            .count();
        let mut scan_events = Vec::new();
        for scan in stack.executions_of(&scan_machine).await? {
            scan_events.push(stack.history(scan.execution_arn()).await?.len());
        }
        stack.wait_all_of(&sink_arn, IDLE_PATIENCE).await?;
        runs.push(OrgRun {
            accounts,
            users,
            concurrency,
            wall,
            transitions: transitions(&history),
            events: history.len(),
            rounds,
            scan_events_max: scan_events.iter().copied().max().unwrap_or(0),
            scan_events_total: scan_events.iter().sum(),
            calls,
            invocations,
        });
    }
    Ok(runs)
}

/// The table, and the 25,000-event limit checked on paper at 1,000 accounts.
pub(crate) fn render_organization(out: &mut String, runs: &[OrgRun]) {
    let _ = writeln!(out, "### Organization scan (account scans' per-user executions sent to a no-op state machine)\n");
    let _ = writeln!(out, "| accounts × users | account concurrency | wall time | rounds | organization scan: transitions / history events | account scans: history events, largest / all | AssumeRole calls | IAM calls | Organizations calls | Step Functions calls | Lambda invocations |");
    let _ = writeln!(
        out,
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for r in runs {
        let calls = |prefix: &str| -> u64 {
            r.calls
                .iter()
                .filter(|(op, _)| op.starts_with(prefix))
                .map(|(_, n)| n)
                .sum()
        };
        let _ = writeln!(
            out,
            "| {} × {} | {} | {} | {} | {} / {} | {} / {} | {} | {} | {} | {} | {} |",
            r.accounts,
            r.users,
            r.concurrency,
            secs(r.wall),
            r.rounds,
            r.transitions,
            r.events,
            r.scan_events_max,
            r.scan_events_total,
            calls("sts:AssumeRole"),
            calls("iam:"),
            calls("organizations:"),
            calls("states:"),
            r.invocations,
        );
    }
    if let Some(r) = runs.first() {
        // Each round adds the same events whatever the number of accounts or users; how
        // many rounds an organization takes depends on the concurrency and on how many
        // 60-second waits an account scan lasts.
        let per_round = r.events as f64 / r.rounds.max(1) as f64;
        let at_1000 = |concurrency: f64, waits: f64| {
            ((1000.0 / concurrency).ceil() * waits + 1.0) * per_round
        };
        let _ = writeln!(
            out,
            "\nThe 25,000-event history limit, on paper at 1,000 accounts: a round adds {per_round:.1} events here (its Task, Choice and Wait). Deployed, rounds are 60 s apart; with account scans that end within one wait, 1,000 accounts take about 1,000 / concurrency rounds: {:.0} events at the default concurrency 10, {:.0} at 5, {:.0} at 1. If every account scan lasted three waits, {:.0} at 10 and {:.0} at 1. An account scan's own history grows with its pages, not with the accounts ({} events at most here, {} users: one page). So the concurrency must not be too low for a large organization: `scan-accounts` stops an organization scan at {} rounds (about {:.0} events) and tells the admin to raise the concurrency or split the organization, rather than let Step Functions fail it at the limit.\n",
            at_1000(10.0, 1.0),
            at_1000(5.0, 1.0),
            at_1000(1.0, 1.0),
            at_1000(10.0, 3.0),
            at_1000(1.0, 3.0),
            r.scan_events_max,
            r.users,
            scan_accounts::MAX_ROUNDS,
            f64::from(scan_accounts::MAX_ROUNDS) * per_round
        );
        let _ = writeln!(
            out,
            "On the emulator wall times say little here: moto is one Python process and was the busy one (100% of a core). What the concurrency changes for certain is the rounds and the organization scan's history. In AWS, account scans run in parallel for real, and the concurrency bounds the IAM calls in flight across accounts (each account has its own IAM quota; Step Functions' StartExecution is the tooling account's).\n"
        );
    }
}
