//! `keyrotor status`, and the "stage reached" of one execution, read from its output (when
//! finished) or its latest state (when running).

use anyhow::{anyhow, Result};
use aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput;
use aws_sdk_sfn::types::ExecutionStatus;
use chrono::{Duration, Utc};
use keyrotor_core::payload::UserName;
use serde_json::{json, Value};

use crate::{aws_error, safe, Colour, Ctx, Output};

/// Where an execution got to.
#[derive(Debug, Clone)]
pub struct Stage {
    pub user: Option<String>,
    /// The member account the execution works in (`None`: keyrotor's own).
    pub account: Option<String>,
    pub status: ExecutionStatus,
    pub dry_run: bool,
    what: String,
}

impl Stage {
    pub fn describe(&self) -> String {
        self.what.clone()
    }

    pub fn colour(&self) -> Colour {
        match self.status {
            ExecutionStatus::Succeeded
                if self.what.starts_with("blocked") || self.what.contains("kept") =>
            {
                Colour::Yellow
            }
            ExecutionStatus::Succeeded => Colour::Green,
            ExecutionStatus::Running => Colour::Dim,
            _ => Colour::Red,
        }
    }
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or("?")
}

/// `s` with every control character (escape sequences, carriage returns, bells) shown as
/// its escape, so that text from an execution's input or output can neither move the
/// cursor nor rewrite what an operator's terminal shows.
pub fn printable(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// The stage of an execution.
pub async fn stage(ctx: &Ctx, desc: &DescribeExecutionOutput) -> Result<Stage> {
    let input: Value = serde_json::from_str(desc.input().unwrap_or("{}")).unwrap_or_default();
    let status = desc.status().clone();
    let output: Value = serde_json::from_str(desc.output().unwrap_or("null")).unwrap_or_default();
    // A leak response names the key; its owner is known once the assessment found them.
    let user = [&input["user"], &output["assessment"]["user"]]
        .into_iter()
        .find_map(|u| u.as_str().map(str::to_owned))
        .or_else(|| input["accessKeyId"].as_str().map(|k| format!("(key {k})")));
    let account = input["account"]["id"].as_str().map(str::to_owned);
    let dry_run = input["dryRun"] == json!(true)
        || output["dryRun"] == json!(true)
        || output["assessment"]["dryRun"] == json!(true);
    let what = match &status {
        ExecutionStatus::Running => running_stage(ctx, desc.execution_arn()).await?,
        ExecutionStatus::Succeeded => finished_stage(&output),
        ExecutionStatus::Failed => {
            let cause: Value =
                serde_json::from_str(desc.cause().unwrap_or("{}")).unwrap_or_default();
            let detail = cause["errorMessage"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| desc.cause().unwrap_or("").chars().take(160).collect());
            format!("failed: {}: {detail}", desc.error().unwrap_or("error"))
        }
        other => other.as_str().to_lowercase(),
    };
    // Anyone who may start an execution writes its input: nothing of it reaches an
    // operator's terminal as a control character (L3 of the second review).
    Ok(Stage {
        user: user.as_deref().map(printable),
        account: account.as_deref().map(printable),
        status,
        dry_run,
        what: printable(&what),
    })
}

fn finished_stage(out: &Value) -> String {
    if out["kind"] == "scan" {
        let t = &out["totals"];
        // Totals of a scan from before retirement have no `retire`.
        let retire = t["retire"].as_u64().unwrap_or(0);
        return format!(
            "scan{}: {} users, {} to rotate, {retire} to retire, {} warned, {} blocked, {} exempt; {} executions started",
            if out["dryRun"] == json!(true) { " (dry run)" } else { "" },
            t["seen"], t["rotate"], t["warn"], t["blocked"], t["exempt"], t["started"]
        );
    }
    let a = &out["assessment"];
    let dry = a["dryRun"] == json!(true);
    match text(&a["action"]) {
        "none" => format!("nothing to do: {}", text(&a["reason"])),
        "exempt" => format!("exempt: {}", text(&a["reason"])),
        "warn" if dry => format!("dry run: would warn (rotation on {})", text(&a["rotateOn"])),
        "warn" => format!("warned (rotation on {})", text(&a["rotateOn"])),
        "blocked" => format!("blocked: {}", text(&a["reason"])),
        "contain" if dry => format!(
            "dry run: would deactivate the leaked key {} without a replacement",
            text(&a["keyId"])
        ),
        "contain" => format!(
            "leaked key {} deactivated without a replacement: {}",
            text(&a["keyId"]),
            text(&a["reason"])
        ),
        "retire" if dry => format!("dry run: would retire the unused key {}", text(&a["keyId"])),
        "retire" => match text(&out["deleted"]["outcome"]) {
            "deleted" | "alreadyDeleted" => {
                format!("retired the unused key {}, now deleted", text(&a["keyId"]))
            }
            "keptReactivated" => format!("retired {}, kept: it was reactivated", text(&a["keyId"])),
            "keptUsedAfterDeactivation" => {
                format!(
                    "retired {}, kept: used after deactivation",
                    text(&a["keyId"])
                )
            }
            other => format!("retired {} ({other})", text(&a["keyId"])),
        },
        "rotate" | "finish" | "cutover" if dry => {
            format!("dry run: would rotate {}", text(&a["oldKeyId"]))
        }
        "rotate" | "finish" | "cutover" => {
            let delivered = delivery(&out["created"]);
            let new = match out["deactivated"]["why"].as_str() {
                Some(why) => format!(
                    "{} (old key deactivated: {why})",
                    text(&out["created"]["newKeyId"])
                ),
                None => text(&out["created"]["newKeyId"]).to_owned(),
            };
            let outcome = match text(&out["deleted"]["outcome"]) {
                "deleted" => format!("rotated to {new}, old key deleted"),
                "alreadyDeleted" => format!("rotated to {new}, old key already gone"),
                "keptReactivated" => format!("rotated to {new}, old key kept: it was reactivated"),
                "keptUsedAfterDeactivation" => {
                    format!("rotated to {new}, old key kept: used after deactivation")
                }
                other => format!("rotated to {new} ({other})"),
            };
            format!("{outcome}{delivered}")
        }
        other => format!("finished ({other})"),
    }
}

/// What deliver-key did, from `$.created.delivery`: "" when nothing was declared, else
/// "; delivered to N of M places" and the places that failed.
fn delivery(created: &Value) -> String {
    let report = &created["delivery"];
    let lines = report["destinations"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if report["error"].is_object() {
        return "; NOT delivered (deliver-key failed)".into();
    }
    if lines.is_empty() {
        return String::new();
    }
    let failed: Vec<&str> = lines
        .iter()
        .filter(|l| l["outcome"] == "failed")
        .map(|l| text(&l["destination"]))
        .collect();
    let delivered = lines.len() - failed.len();
    match failed.is_empty() {
        true => format!("; delivered to {delivered} of {} places", lines.len()),
        false => format!(
            "; delivered to {delivered} of {} places, NOT to {}",
            lines.len(),
            failed.join(", ")
        ),
    }
}

async fn running_stage(ctx: &Ctx, arn: &str) -> Result<String> {
    let out = ctx
        .sfn
        .get_execution_history()
        .execution_arn(arn)
        .max_results(1000)
        .send()
        .await
        .map_err(|e| aws_error("reading the execution history", e))?;
    // Oldest first (moto ignores reverseOrder); a per-user history is a few dozen events.
    let entered = out
        .events()
        .iter()
        .rev()
        .find_map(|e| e.state_entered_event_details());
    let Some(entered) = entered else {
        return Ok("starting".into());
    };
    let state = entered.name();
    let input: Value = serde_json::from_str(entered.input().unwrap_or("{}")).unwrap_or_default();
    let deactivated = &input["deactivated"];
    Ok(match state {
        "WaitForCutover" | "CheckCutover" => format!(
            "overlap window: both keys work; the old key goes once idle, by {} at the latest (next look {}){}",
            text(&deactivated["window"]["until"]),
            text(&deactivated["nextCheckAt"]),
            delivery(&input["created"])
        ),
        "WaitUntilDeletionTime" => format!(
            "waiting for deletion until {}",
            text(&deactivated["deleteAfter"])
        ),
        _ => format!("running: {state}"),
    })
}

/// Appends the executions of `machine` started since `since` (for `user`, if given), each
/// with its start, stage and ARN.
async fn executions_since(
    ctx: &Ctx,
    machine: &str,
    user: Option<&UserName>,
    since: chrono::DateTime<Utc>,
    rows: &mut Vec<(Option<chrono::DateTime<Utc>>, Stage, String)>,
) -> Result<()> {
    let mut token = None;
    'pages: loop {
        let out = ctx
            .sfn
            .list_executions()
            .state_machine_arn(machine)
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| aws_error("listing executions", e))?;
        for e in out.executions() {
            let started = keyrotor_aws::to_utc(e.start_date());
            if started.is_some_and(|s| s < since) {
                // Newest first: everything after this is older.
                break 'pages;
            }
            if let Some(user) = user {
                // Executions by key ID (leak responses) do not carry the user's name.
                let by_key = ["rerun-", "exposed-", "adhoc-key-"]
                    .iter()
                    .any(|p| e.name().starts_with(p));
                if !e.name().contains(&safe(user.as_str(), 40)) && !by_key {
                    continue;
                }
            }
            let desc = crate::describe(ctx, e.execution_arn()).await?;
            let stage = stage(ctx, &desc).await?;
            if user.is_some_and(|u| stage.user.as_deref() != Some(u.as_str())) {
                continue;
            }
            // With --account, that member account's executions only (else all of them).
            if ctx
                .account()
                .is_some_and(|a| stage.account.as_deref() != Some(a.as_str()))
            {
                continue;
            }
            rows.push((started, stage, e.execution_arn().to_owned()));
        }
        match out.next_token() {
            Some(t) => token = Some(t.to_owned()),
            None => break,
        }
    }
    Ok(())
}

pub async fn status(ctx: &Ctx, user: Option<&str>, since_days: u32) -> Result<i32> {
    let user = user
        .map(|u| UserName::try_from(u.to_owned()).map_err(|e| anyhow!(e)))
        .transpose()?;
    // Forced rotations run on the responder machine: its executions are shown too.
    let main = ctx.state_machine().await?;
    let responder = ctx.responder_state_machine().await?;
    let machines: Vec<&str> = std::iter::once(main.as_str())
        .chain(responder.as_deref().filter(|r| *r != main))
        .collect();
    ctx.acting_on(machines.iter().copied()).await;
    let since = Utc::now() - Duration::days(i64::from(since_days));
    let mut rows = Vec::new();
    for machine in machines {
        executions_since(ctx, machine, user.as_ref(), since, &mut rows).await?;
    }
    // Newest first, across the machines.
    rows.sort_by_key(|row| std::cmp::Reverse(row.0));
    let value = json!(rows
        .iter()
        .map(|(started, stage, arn)| json!({
            "started": started,
            "user": stage.user,
            "account": stage.account,
            "status": stage.status.as_str(),
            "stage": stage.describe(),
            "executionArn": arn,
        }))
        .collect::<Vec<_>>());
    if ctx.output == Output::Json {
        println!("{}", serde_json::to_string_pretty(&ctx.in_context(value))?);
        return Ok(0);
    }
    if rows.is_empty() {
        println!(
            "no executions in the last {since_days} day(s){}",
            user.map(|u| format!(" for {u}")).unwrap_or_default()
        );
        return Ok(0);
    }
    println!(
        "{:<20} {:<16} {:<10} {:<60} EXECUTION",
        "STARTED", "USER", "STATUS", "STAGE"
    );
    for (started, stage, arn) in &rows {
        let when = started
            .map(|s| s.format("%Y-%m-%d %H:%M:%S").to_string())
            .unwrap_or_default();
        let who = stage.user.clone().unwrap_or_else(|| "(scan)".into());
        let status = format!("{:<10}", stage.status.as_str());
        println!(
            "{when:<20} {who:<16} {} {:<60} {arn}",
            ctx.paint(&status, stage.colour()),
            stage.describe()
        );
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stage_says_where_the_key_was_delivered_and_where_not() {
        let line = |d: &str, o: &str| json!({"destination": d, "kind": "github", "outcome": o});
        let rotated = |delivery: Value| {
            json!({
                "assessment": {"action": "rotate"},
                "created": {"newKeyId": "AKIANEW", "delivery": delivery},
                "deactivated": {"why": "idle"},
                "deleted": {"outcome": "deleted"}
            })
        };
        let none = finished_stage(&rotated(json!({"destinations": []})));
        assert_eq!(
            none,
            "rotated to AKIANEW (old key deactivated: idle), old key deleted"
        );
        let some = finished_stage(&rotated(json!({"destinations": [
            line("ssm:/keyrotor/ci", "delivered"),
            line("github:acme/x", "failed")
        ]})));
        assert!(
            some.ends_with("; delivered to 1 of 2 places, NOT to github:acme/x"),
            "{some}"
        );
        let broken = finished_stage(&rotated(
            json!({"destinations": [], "error": {"Error": "X"}}),
        ));
        assert!(
            broken.ends_with("NOT delivered (deliver-key failed)"),
            "{broken}"
        );
    }

    #[test]
    fn control_characters_from_an_execution_never_reach_the_terminal() {
        let hostile = "alice\u{1b}]52;c;ZWNobyBwd25lZA==\u{7}\r\u{1b}[2K\u{9b}31m";
        let shown = printable(hostile);
        assert!(!shown.chars().any(char::is_control), "{shown:?}");
        assert!(shown.starts_with("alice\\u{1b}]52;c;"), "{shown}");
        assert_eq!(
            printable("svc+deploy=ci (key AKIA…)"),
            "svc+deploy=ci (key AKIA…)"
        );
    }
}
