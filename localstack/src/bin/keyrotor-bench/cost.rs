//! The monthly cost estimate from list prices and the measured counts.

use super::*;

/// Public list prices, us-east-1, without free tiers (Step Functions read off its pricing
/// page on 2026-11-25; the others as AWS publishes them).
pub(crate) mod price {
    pub const SFN_PER_TRANSITION: f64 = 0.025 / 1000.0;
    pub const LAMBDA_PER_REQUEST: f64 = 0.20 / 1_000_000.0;
    pub const LAMBDA_ARM_PER_GB_SECOND: f64 = 0.000_013_333_4;
    pub const SECRET_PER_MONTH: f64 = 0.40;
    pub const SECRETS_PER_CALL: f64 = 0.05 / 10_000.0;
    pub const SES_PER_EMAIL: f64 = 0.10 / 1000.0;
    pub const KMS_KEY_PER_MONTH: f64 = 1.0;
    pub const EVENTS_PER_EVENT: f64 = 1.0 / 1_000_000.0;
    pub const CUSTOM_METRIC_PER_MONTH: f64 = 0.30;
    pub const DASHBOARD_PER_MONTH: f64 = 3.0;
    pub const ALARM_METRIC_PER_MONTH: f64 = 0.10;
}
/// The EventBridge schedule runs the scan once a day.
pub(crate) const SCANS_PER_MONTH: f64 = 30.0;

/// What the deployment configures, read from infra/template.yaml.
pub(crate) struct Deployed {
    /// Each function's memory in GB (`MemorySize`).
    memory_gb: f64,
    kms_keys: f64,
    dashboards: f64,
    /// Metrics the alarms watch (a metric-math alarm is billed per metric).
    alarm_metrics: f64,
}

pub(crate) fn deployed() -> Result<Deployed> {
    let path = workspace_root().join("infra/template.yaml");
    let template =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let memory_mb: f64 = template
        .lines()
        .find_map(|l| l.trim().strip_prefix("MemorySize:"))
        .and_then(|v| v.trim().parse().ok())
        .context("no MemorySize in infra/template.yaml")?;
    let count = |wanted: &dyn Fn(&str) -> bool| {
        template.lines().filter(|l| wanted(l.trim())).count() as f64
    };
    Ok(Deployed {
        memory_gb: memory_mb / 1024.0,
        kms_keys: count(&|l| l == "Type: AWS::KMS::Key"),
        dashboards: count(&|l| l == "Type: AWS::CloudWatch::Dashboard"),
        alarm_metrics: count(&|l| l.starts_with("MetricName:") || l.contains("MetricStat:")),
    })
}

/// A month of keyrotor at 1k, 10k and 100k users, from this run's counts.
pub(crate) fn cost(scans: &[ScanRun], day: &Day, functions: &[FunctionRow]) -> String {
    let mut out = String::from(
        "\n### Monthly cost estimate (us-east-1 list prices, no free tiers; daily scan)\n\n",
    );
    let Deployed {
        memory_gb,
        kms_keys,
        dashboards,
        alarm_metrics,
    } = match deployed() {
        Ok(figures) => figures,
        Err(e) => {
            let _ = writeln!(out, "(no estimate: {e:#})");
            return out;
        }
    };
    let reports: Vec<&ScanRun> = scans
        .iter()
        .filter(|s| s.strategy == "credential-report" && s.latency.is_zero())
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
    let day_tasks: usize = day.kinds.values().map(|k| k.tasks).sum();
    // Each rotation's window as deployed: DEPLOYED_LOOKS looks of 3 transitions and one
    // deactivate-key invocation each, in place of the looks this run's short window made.
    let extra_looks: usize = day
        .kinds
        .values()
        .flat_map(|k| k.looks.iter())
        .filter(|looks| **looks > 0)
        .map(|looks| DEPLOYED_LOOKS.saturating_sub(*looks))
        .sum();
    let per_user_transitions = (per_user_transitions + 3 * extra_looks) as f64 * scale;
    let per_user_invocations = (day_tasks + extra_looks) as f64 * scale;
    let emails = day.emails as f64 * scale;
    let secret_calls: u64 = day
        .calls
        .iter()
        .filter(|(op, _)| op.starts_with("secretsmanager:"))
        .map(|(_, n)| n)
        .sum();
    let secret_calls = secret_calls as f64 * scale;
    // At most two events per PutEvents call (KeyRotated with OldKeyDeactivated).
    let events_per_day =
        day.calls.get("events:PutEvents").copied().unwrap_or(0) as f64 * 2.0 * scale;
    let metrics = keyrotor_core::metrics::Metric::cloudwatch_metrics() as f64;
    let mean_seconds = functions
        .iter()
        .map(|f| f.duration.as_secs_f64())
        .sum::<f64>()
        / functions.len().max(1) as f64;
    let _ = writeln!(out, "| users | state transitions | Step Functions | Lambda invocations | Lambda | secrets stored | Secrets Manager | e-mails | SES | KMS | events | CloudWatch metrics, dashboard, alarms | total |");
    let _ = writeln!(
        out,
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
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
        let events = SCANS_PER_MONTH * events_per_day * thousands * price::EVENTS_PER_EVENT;
        let cloudwatch = accounts
            * (metrics * price::CUSTOM_METRIC_PER_MONTH
                + dashboards * price::DASHBOARD_PER_MONTH
                + alarm_metrics * price::ALARM_METRIC_PER_MONTH);
        let _ = writeln!(
            out,
            "| {users} | {transitions:.0} | ${sfn:.2} | {invocations:.0} | ${lambda:.2} | {secrets:.0} | ${sm:.2} | {mails:.0} | ${ses:.2} | ${kms:.2} | ${events:.2} | ${cloudwatch:.2} | **${:.2}** |",
            sfn + lambda + sm + ses + kms + events + cloudwatch
        );
    }
    let _ = writeln!(out, "\nInputs from this run: scan {t_fixed:.1} + {t_page:.1} transitions per 1,000-user page; per 1,000 users a day {per_user_transitions:.0} per-user transitions, {per_user_invocations:.0} per-user Lambda invocations, {emails:.0} e-mails, {secret_calls:.0} Secrets Manager calls; Lambda at {:.0} MB arm64 for ten times the mean local duration of the functions ({}); {kms_keys:.0} KMS keys per account; per account {metrics:.0} custom metrics, {dashboards:.0} dashboard and {alarm_metrics:.0} alarm metrics, and at most {events_per_day:.0} events per 1,000 users a day. IAM allows 5,000 users per account, so 10k and 100k users are 2 and 20 accounts, each with its own deployment. Secrets are counted for every user (keyless and exempt users have none, so this is an upper bound). Prices: Step Functions $0.025 per 1,000 transitions; Lambda $0.20 per million requests and $0.0000133334 per GB-s (arm64); Secrets Manager $0.40 per secret-month and $0.05 per 10,000 calls; SES $0.10 per 1,000 e-mails; KMS $1 per key-month; EventBridge $1 per million custom events; CloudWatch $0.30 per custom metric-month, $3 per dashboard-month (the first three of an account are free), $0.10 per alarm metric-month. Not included: CloudWatch Logs, KMS requests, data transfer.", memory_gb * 1024.0, ms(Duration::from_secs_f64(mean_seconds)));
    out
}
