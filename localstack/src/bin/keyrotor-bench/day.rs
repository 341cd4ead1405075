//! One real day: the scan and every per-user execution through to the deletion.

use super::*;

/// One real day at this account size: the scan and every per-user execution.
pub(crate) struct Day {
    pub(crate) users: usize,
    pub(crate) wall: Duration,
    pub(crate) scan_transitions: usize,
    /// Per kind: executions, transitions (min, max), Lambda tasks (max), events (max).
    pub(crate) kinds: BTreeMap<&'static str, KindStats>,
    pub(crate) calls: BTreeMap<String, u64>,
    pub(crate) invocations: u64,
    pub(crate) emails: usize,
    pub(crate) secrets: usize,
}

#[derive(Default)]
pub(crate) struct KindStats {
    pub(crate) executions: usize,
    pub(crate) transitions: Vec<usize>,
    pub(crate) tasks: usize,
    pub(crate) events_max: usize,
    /// Looks at the keys' use in the overlap window (CheckCutover), per execution.
    pub(crate) looks: Vec<usize>,
}

/// The overlap window of the real day: 3 s, looked at every second, so a rotation whose
/// old key nobody uses makes about three looks before the cap. The cost estimate scales
/// the looks to the deployed window ([`DEPLOYED_LOOKS`]).
pub(crate) const DAY_WINDOW: [(&str, &str); 3] = [
    ("KEYROTOR_OVERLAP_SECONDS", "3"),
    ("KEYROTOR_CUTOVER_SETTLE_SECONDS", "1"),
    ("KEYROTOR_CUTOVER_POLL_SECONDS", "1"),
];

/// Looks a deployed window makes at the most: 7 days (OverlapSeconds) at one every 6 hours
/// (CutoverPollSeconds), for an old key that is never idle.
pub(crate) const DEPLOYED_LOOKS: usize = 28;

pub(crate) async fn real_day(stack: &mut LocalStack, seeded: &Seeded) -> Result<Day> {
    let emails_before = stack.moto.sent_emails()?.len();
    // Every function of the scan and per-user machines (the organization's refuse the self
    // mode at their cold start).
    let all: Vec<&str> = FUNCTIONS
        .iter()
        .map(|&(_, name)| name)
        .filter(|name| !ORGANIZATION_FUNCTIONS.contains(name))
        .collect();
    let mut options = stack_options("credential-report", None);
    options
        .function_env
        .extend(DAY_WINDOW.map(|(k, v)| (k.to_owned(), v.to_owned())));
    let invocations_before = prepare(stack, &options, &all)?;
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
        stats.looks.push(
            history
                .iter()
                .filter(|e| e["type"] == "TaskStateEntered" && e["state"] == "CheckCutover")
                .count(),
        );
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
