//! The tables: scans, the day, the functions, the targets.

use super::*;

pub(crate) fn machine() -> String {
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

pub(crate) fn mb(bytes: u64) -> String {
    format!("{:.2} MB", bytes as f64 / 1_000_000.0)
}

pub(crate) fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

pub(crate) fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

pub(crate) fn short(op: &str) -> &str {
    op.split_once(':').map_or(op, |(_, name)| name)
}

pub(crate) fn render(
    scans: &[ScanRun],
    loops: &[LoopRun],
    weighed: &[Weighed],
    day: &Day,
    functions: &[FunctionRow],
    organization: &[OrgRun],
    // How long seeding took at each size, and the whole bench.
    (seeding, took): (&[(usize, Duration)], Duration),
) -> String {
    let mut out = String::new();
    let now = chrono::Utc::now().format("%Y-%m-%d %H:%M UTC");
    let _ = writeln!(out, "## `make bench`, {now}\n");
    let _ = writeln!(out, "Machine: {}. Local stack: moto 5.2.5 executing the real ASL, the function binaries under `cargo lambda watch --profile {CARGO_PROFILE}` (a quicker build than the deployment's: no fat LTO, SDK service crates unoptimized; Cargo.toml says why), calls counted by the fault proxy.\n", machine());

    let _ = writeln!(out, "### Scan (per-user executions sent to a no-op state machine, so the scan alone is measured)\n");
    let _ = writeln!(out, "| users | latency per call | strategy | IAM calls | IAM calls by operation | other calls | state transitions | history events | wall time | in list / assess / start |");
    let _ = writeln!(out, "|---:|---:|---|---:|---|---|---:|---:|---:|---|");
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
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.2} / {:.2} / {:.2} s |",
            run.users,
            latency(run.latency),
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
                "- {} users, {}: the credential report scans {:.1}× faster than listing each user's keys ({} vs {}), with {:.1}× fewer IAM calls ({} vs {}); both found {} (Lambda invocations: {} vs {}).",
                report.users,
                latency(report.latency),
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
    out.push_str(&against_the_seed(scans, loops));
    out.push_str(&authorization_details(weighed));
    for (size, took) in seeding {
        let _ = writeln!(out, "- seeding up to {size} users took {}", secs(*took));
    }

    let _ = writeln!(out, "\n### One real day at {} users (scan, then every per-user execution through to deletion; deletion delay {DELETION_DELAY_SECS} s)\n", day.users);
    let _ = writeln!(out, "| per-user execution | count | state transitions | Lambda invocations each | history events (max) | looks in the overlap window |");
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|");
    for (kind, stats) in &day.kinds {
        let min = stats.transitions.iter().min().copied().unwrap_or(0);
        let max = stats.transitions.iter().max().copied().unwrap_or(0);
        let range = if min == max {
            max.to_string()
        } else {
            format!("{min}–{max}")
        };
        let looks_min = stats.looks.iter().min().copied().unwrap_or(0);
        let looks_max = stats.looks.iter().max().copied().unwrap_or(0);
        let looks = if looks_min == looks_max {
            looks_max.to_string()
        } else {
            format!("{looks_min}–{looks_max}")
        };
        let _ = writeln!(
            out,
            "| {kind} | {} | {range} | {:.1} | {} | {looks} |",
            stats.executions,
            stats.tasks as f64 / stats.executions.max(1) as f64,
            stats.events_max
        );
    }
    if let Some(rotation) = day.kinds.get("rotation") {
        let looks: usize = rotation.looks.iter().sum();
        let events_max = rotation.events_max;
        let most_looks = rotation.looks.iter().max().copied().unwrap_or(0);
        let _ = writeln!(
            out,
            "\nThe overlap window here is 3 s with a look every second (nobody uses these keys, so each window runs to its cap): {looks} looks in all. A look is a Wait, one `deactivate-key` invocation and a Choice: 3 transitions and 9 history events. Deployed (7 days, a look every 6 h) a rotation whose old key is never idle makes {DEPLOYED_LOOKS} looks: about {} history events at the most (this run's largest, {events_max} with {most_looks} looks, plus {} more looks), and a 30-day window with a 7-day extension 148 looks, about {}: far below the 25,000-event limit. The cost estimate below counts {DEPLOYED_LOOKS} looks for every rotation, an upper bound (an early cutover makes fewer).",
            events_max + 9 * DEPLOYED_LOOKS.saturating_sub(most_looks),
            DEPLOYED_LOOKS.saturating_sub(most_looks),
            events_max + 9 * 148usize.saturating_sub(most_looks),
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

    out.push_str(&targets(scans, loops, day, functions));
    out.push_str(&cost(scans, day, functions));
    out.push('\n');
    render_organization(&mut out, organization);
    let _ = writeln!(out, "\n(The bench itself took {}.)", secs(took));
    out
}

pub(crate) fn describe_totals(totals: &Value) -> String {
    format!(
        "{} seen, {} to rotate, {} to warn, {} exempt, {} started",
        totals["seen"], totals["rotate"], totals["warn"], totals["exempt"], totals["started"]
    )
}

pub(crate) fn latency(latency: Duration) -> String {
    if latency.is_zero() {
        "emulator speed".into()
    } else {
        format!("+{} ms", latency.as_millis())
    }
}

/// The scan of `strategy` measured beside this run of the seed's loop.
fn beside<'a>(scans: &'a [ScanRun], run: &LoopRun, strategy: &str) -> Option<&'a ScanRun> {
    scans
        .iter()
        .find(|s| s.users == run.users && s.latency == run.latency && s.strategy == strategy)
}

/// keyrotor's scan against the seed article's loop, on the same account through the same
/// proxy in the same run.
pub(crate) fn against_the_seed(scans: &[ScanRun], loops: &[LoopRun]) -> String {
    let mut out = String::from(
        "\n#### Against the seed article's scan loop (same account, same proxy, same run)\n\n",
    );
    out.push_str("| users | latency per call | seed's loop: IAM calls | wall time | keyrotor, credential report: AWS calls | wall time | faster | of which reading (list + assess) | faster | keyrotor, list-access-keys: wall time | faster |\n");
    out.push_str("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for run in loops {
        let (Some(report), Some(listing)) = (
            beside(scans, run, "credential-report"),
            beside(scans, run, "list-access-keys"),
        ) else {
            continue;
        };
        let all_calls: u64 = report.calls.values().sum();
        // The part of the scan that does what the loop does: find who is due.
        let reading = report.phases[0] + report.phases[1];
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | **{:.1}×** | {:.2} s | {:.1}× | {} | {:.1}× |",
            run.users,
            latency(run.latency),
            run.iam_calls(),
            secs(run.wall),
            all_calls,
            secs(report.wall),
            run.wall.as_secs_f64() / report.wall.as_secs_f64(),
            reading,
            run.wall.as_secs_f64() / reading,
            secs(listing.wall),
            run.wall.as_secs_f64() / listing.wall.as_secs_f64(),
        );
    }
    out.push_str("\nThe loop reads only (ListUsers in pages of 100, ListAccessKeys per user, ListUserTags per key 80 to 89 days old), one call after another. keyrotor's scan also starts the per-user executions (its AWS calls and wall time include them); the reading column is the time in its list and assess states, the part that does what the loop does. ");
    if let Some(run) = loops.last() {
        let _ = writeln!(
            out,
            "At {} users the loop found {} keys to rotate and {} to warn about (every day from 80 to 89; keyrotor warns on 3 of them and leaves exempt users alone).",
            run.users, run.due, run.warned
        );
    }
    out
}

/// GetAccountAuthorizationDetails against the calls it would replace.
pub(crate) fn authorization_details(weighed: &[Weighed]) -> String {
    let mut out = String::from("\n#### GetAccountAuthorizationDetails (Filter=User) against the calls it would replace\n\n");
    out.push_str("| users | latency per call | reads | calls | reply bytes | wall time |\n|---:|---:|---|---:|---:|---:|\n");
    for w in weighed {
        let scan = format!(
            "ListUsers + GetGroup per page, ListUserTags for users worth a look ({} in flight)",
            assess_key_age::BATCH_CONCURRENCY
        );
        for (what, side) in [
            (scan.as_str(), &w.scan),
            ("GetAccountAuthorizationDetails, Filter=User", &w.details),
        ] {
            let _ = writeln!(
                out,
                "| {} | {} | {what} | {} | {} | {} |",
                w.users,
                latency(w.latency),
                side.calls,
                mb(side.bytes),
                secs(side.wall)
            );
        }
    }
    out.push_str("\nmoto answers GetAccountAuthorizationDetails in one reply whatever the page size, and its users carry no inline policies; AWS pages at 1,000 and adds each user's inline policy documents, attached policies and groups.\n");
    out
}

pub(crate) fn targets(
    scans: &[ScanRun],
    loops: &[LoopRun],
    day: &Day,
    functions: &[FunctionRow],
) -> String {
    let mut out = String::from("\n### Targets\n\n| target | measured | met |\n|---|---|---|\n");
    let mut row = |target: &str, measured: String, met: bool| {
        let _ = writeln!(
            out,
            "| {target} | {measured} | {} |",
            if met { "yes" } else { "**no**" }
        );
    };
    let largest = scans.iter().map(|s| s.users).max().unwrap_or(0);
    let at_emulator_speed = |strategy: &str| {
        scans
            .iter()
            .find(|s| s.users == largest && s.latency.is_zero() && s.strategy == strategy)
    };
    let report = at_emulator_speed("credential-report");
    let listing = at_emulator_speed("list-access-keys");
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
    for run in loops.iter().filter(|run| run.users == largest) {
        let Some(report) = beside(scans, run, "credential-report") else {
            continue;
        };
        let wanted = if run.latency.is_zero() { 15.0 } else { 50.0 };
        let ratio = run.wall.as_secs_f64() / report.wall.as_secs_f64();
        row(
            &format!(
                "{largest}-user scan, {}: ≥ {wanted}× faster than the seed's loop",
                latency(run.latency)
            ),
            format!("{ratio:.1}× ({} vs {})", secs(report.wall), secs(run.wall)),
            ratio >= wanted,
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
