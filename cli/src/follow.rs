//! Following executions until they finish, with a line of progress per state change
//! (on stderr, so that `--output json` stays clean on stdout).

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Result;
use aws_sdk_sfn::types::ExecutionStatus;
use serde_json::{json, Value};

use crate::status::{stage, Stage};
use crate::{aws_error, Colour, Ctx, Output};

/// A followed execution as it ended.
#[derive(Debug, Clone)]
pub struct Finished {
    pub name: String,
    pub arn: String,
    pub started: Option<chrono::DateTime<chrono::Utc>>,
    pub stage: Stage,
}

impl Finished {
    pub fn succeeded(&self) -> bool {
        self.stage.status == ExecutionStatus::Succeeded
    }
}

/// Polls the executions until none is running; prints each state change.
pub async fn follow(ctx: &Ctx, arns: &[String]) -> Result<Vec<Finished>> {
    let spinner = ['|', '/', '-', '\\'];
    let mut last: BTreeMap<&str, String> = BTreeMap::new();
    let mut tick = 0usize;
    loop {
        let mut done = Vec::new();
        for arn in arns {
            let desc = crate::describe(ctx, arn).await?;
            let stage = stage(ctx, &desc).await?;
            let shown = stage.describe();
            if last.get(arn.as_str()) != Some(&shown) {
                let who = stage.user.clone().unwrap_or_else(|| "(scan)".into());
                eprintln!("  {:<16} {}", who, ctx.paint(&shown, stage.colour()));
                last.insert(arn, shown);
            }
            if stage.status != ExecutionStatus::Running {
                done.push(Finished {
                    name: desc.name().unwrap_or_default().to_owned(),
                    arn: arn.clone(),
                    started: keyrotor_aws::to_utc(desc.start_date()),
                    stage,
                });
            }
        }
        if done.len() == arns.len() {
            return Ok(done);
        }
        if ctx.colour {
            eprint!(
                "  {} {} of {} running\r",
                spinner[tick % 4],
                arns.len() - done.len(),
                arns.len()
            );
        }
        tick += 1;
        tokio::time::sleep(Duration::from_millis(1000)).await;
    }
}

/// The per-user executions a finished scan started (named after the scan's day).
pub async fn started_by_scan(ctx: &Ctx, machine: &str, scan: &Finished) -> Result<Vec<String>> {
    let Some(started) = scan.started else {
        return Ok(Vec::new());
    };
    let day = started.format("%Y%m%d").to_string();
    let dry = scan.stage.dry_run;
    let prefix = format!("{}-{day}-", if dry { "dryrun" } else { "scheduled" });
    let mut arns = Vec::new();
    let mut token = None;
    loop {
        let out = ctx
            .sfn
            .list_executions()
            .state_machine_arn(machine)
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| aws_error("listing executions", e))?;
        for e in out.executions() {
            let after = keyrotor_aws::to_utc(e.start_date()).is_some_and(|t| t >= started);
            if e.name().starts_with(&prefix) && after {
                arns.push(e.execution_arn().to_owned());
            }
        }
        match out.next_token() {
            Some(t) => token = Some(t.to_owned()),
            None => return Ok(arns),
        }
    }
}

/// Prints the outcome of followed executions.
pub fn summarise(ctx: &Ctx, done: &[Finished]) {
    let rows: Vec<_> = done
        .iter()
        .map(|f| {
            json!({
                "user": f.stage.user,
                "name": f.name,
                "status": f.stage.status.as_str(),
                "stage": f.stage.describe(),
                "executionArn": f.arn,
            })
        })
        .collect();
    if ctx.output == Output::Json {
        println!(
            "{}",
            serde_json::to_string_pretty(&ctx.in_context(Value::Array(rows))).unwrap_or_default()
        );
        return;
    }
    println!("{:<16} {:<10} STAGE", "USER", "STATUS");
    for f in done {
        let user = f.stage.user.clone().unwrap_or_else(|| "(scan)".into());
        let status = format!("{:<10}", f.stage.status.as_str());
        println!(
            "{user:<16} {} {}",
            ctx.paint(&status, f.stage.colour()),
            f.stage.describe()
        );
    }
    let failed = done.iter().filter(|f| !f.succeeded()).count();
    if failed > 0 {
        println!(
            "{}",
            ctx.paint(
                &format!("{failed} execution(s) did not succeed: see `keyrotor status`"),
                Colour::Red
            )
        );
    }
}
