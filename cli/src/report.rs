//! `keyrotor report`: every user's keys straight from IAM, read-only, with what the policy
//! does next and when. The policy is read from the same `KEYROTOR_*` variables as the
//! functions (defaults: rotate at 90 days, warn at 80, 85 and 89).

use anyhow::{Context, Result};
use chrono::{DateTime, Duration, Utc};
use keyrotor_core::domain::planner::RESUME_WINDOW;
use keyrotor_core::domain::{plan, Decision, KeyStatus};
use keyrotor_core::state::load_user;
use keyrotor_core::{Config, Env};
use serde::Serialize;

use crate::{Colour, Ctx, ReportFormat, EXIT_NON_COMPLIANT};

/// One key (or a user without keys) in the report.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Row {
    user: String,
    key_id: Option<String>,
    status: Option<&'static str>,
    age_days: Option<i64>,
    last_used: Option<DateTime<Utc>>,
    next: String,
    overdue: bool,
}

pub async fn report(ctx: &Ctx, format: ReportFormat) -> Result<i32> {
    let config = Config::from_env().context("reading the rotation policy")?;
    let env = Env::new(config, &ctx.sdk);
    let policy = &env.config.policy;
    let members = match &env.config.exempt_group {
        Some(group) => Some(env.iam.group_members(group).await?),
        None => None,
    };
    let now = Utc::now();
    let mut rows = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let page = env.iam.list_users_page(marker.as_deref(), 1000).await?;
        for user in &page.users {
            let live = match load_user(&env, user, members.as_ref()).await {
                Ok(live) => live,
                Err(keyrotor_core::Error::UserNotFound(_)) => continue,
                Err(e) => return Err(e.into()),
            };
            let decision = plan(&live.state, policy, now, false).decision;
            let exempt = decision == Decision::Exempt;
            if live.state.keys.is_empty() {
                rows.push(Row {
                    user: user.clone(),
                    key_id: None,
                    status: None,
                    age_days: None,
                    last_used: None,
                    next: "no access keys".into(),
                    overdue: false,
                });
            }
            let mut keys = live.state.keys.clone();
            keys.sort_by_key(|k| k.created);
            for key in &keys {
                let age = key.age_days(now);
                let overdue =
                    key.is_active() && !exempt && age >= i64::from(policy.rotate_after_days);
                let next = next_step(
                    &decision,
                    key.id.as_str(),
                    key.status,
                    key.created,
                    policy.rotate_after_days,
                    &policy.warn_days,
                    now,
                );
                rows.push(Row {
                    user: user.clone(),
                    key_id: Some(key.id.clone()),
                    status: Some(if key.is_active() {
                        "Active"
                    } else {
                        "Inactive"
                    }),
                    age_days: Some(age),
                    last_used: env.iam.key_last_used(&key.id).await?,
                    next,
                    overdue,
                });
            }
        }
        match page.next_marker {
            Some(m) => marker = Some(m),
            None => break,
        }
    }
    let overdue = rows.iter().filter(|r| r.overdue).count();
    match format {
        ReportFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "generatedAt": now,
                "rotateAfterDays": policy.rotate_after_days,
                "overdueKeys": overdue,
                "keys": rows,
            }))?
        ),
        ReportFormat::Csv => {
            println!("user,key_id,status,age_days,last_used,next,overdue");
            for r in &rows {
                let fields = [
                    r.user.clone(),
                    r.key_id.clone().unwrap_or_default(),
                    r.status.unwrap_or_default().to_owned(),
                    r.age_days.map(|a| a.to_string()).unwrap_or_default(),
                    r.last_used.map(|t| t.to_rfc3339()).unwrap_or_default(),
                    r.next.clone(),
                    r.overdue.to_string(),
                ];
                println!(
                    "{}",
                    fields
                        .iter()
                        .map(|f| csv_field(f))
                        .collect::<Vec<_>>()
                        .join(",")
                );
            }
        }
        ReportFormat::Table => {
            println!(
                "{:<16} {:<22} {:<9} {:>5}  {:<11} NEXT",
                "USER", "ACCESS KEY", "STATUS", "AGE", "LAST USED"
            );
            for r in &rows {
                let last = r
                    .last_used
                    .map_or_else(|| "never".to_owned(), |t| t.format("%Y-%m-%d").to_string());
                let age = r.age_days.map(|a| format!("{a}d")).unwrap_or_default();
                let next = if r.overdue {
                    ctx.paint(&r.next, Colour::Red)
                } else {
                    r.next.clone()
                };
                println!(
                    "{:<16} {:<22} {:<9} {:>5}  {:<11} {next}",
                    r.user,
                    r.key_id.as_deref().unwrap_or("-"),
                    r.status.unwrap_or("-"),
                    age,
                    if r.key_id.is_some() {
                        last
                    } else {
                        String::new()
                    },
                );
            }
            let verdict = if overdue == 0 {
                ctx.paint(
                    "compliant: no active key past the rotation age",
                    Colour::Green,
                )
            } else {
                ctx.paint(
                    &format!(
                        "NOT compliant: {overdue} active key(s) past {} days",
                        policy.rotate_after_days
                    ),
                    Colour::Red,
                )
            };
            println!(
                "\n{} users, {} keys. {verdict}",
                count_users(&rows),
                rows.iter().filter(|r| r.key_id.is_some()).count()
            );
        }
    }
    Ok(if overdue > 0 { EXIT_NON_COMPLIANT } else { 0 })
}

fn count_users(rows: &[Row]) -> usize {
    let mut users: Vec<&str> = rows.iter().map(|r| r.user.as_str()).collect();
    users.dedup();
    users.len()
}

/// What the policy does next with one key.
fn next_step(
    decision: &Decision,
    key_id: &str,
    status: KeyStatus,
    created: DateTime<Utc>,
    rotate_after: u32,
    warn_days: &[u32],
    now: DateTime<Utc>,
) -> String {
    let rotate_on = (created + Duration::days(i64::from(rotate_after))).date_naive();
    match decision {
        Decision::Exempt => "exempt: never rotated".into(),
        Decision::Rotate { old_key_id, .. } if old_key_id == key_id => {
            "rotate at the next scan (overdue)".into()
        }
        Decision::Rotate {
            delete_first: Some(k),
            ..
        } if k == key_id => "deleted before the next rotation (leftover)".into(),
        Decision::Rotate {
            resume_with: Some(k),
            ..
        } if k == key_id => "new key of a rotation in progress".into(),
        Decision::Finish {
            old_key_id,
            delete_after,
            ..
        } if old_key_id == key_id => match delete_after {
            Some(at) => format!("deleted after {}", at.format("%Y-%m-%d %H:%M UTC")),
            None => "deleted after the delay, counted from the next run".into(),
        },
        Decision::Blocked { key_id: Some(k) } if k == key_id => {
            "blocked: two active keys; reported to owner and admin".into()
        }
        Decision::Blocked { .. } if status == KeyStatus::Active => {
            "blocked: see the other key".into()
        }
        Decision::Warn {
            key_id: k,
            rotate_on,
            ..
        } if k == key_id => format!("warning due today; rotated on {rotate_on}"),
        _ if status == KeyStatus::Inactive => "inactive: deleted before the next rotation".into(),
        _ if now - created < RESUME_WINDOW => format!("new; rotated on {rotate_on}"),
        _ => {
            let next_warning = warn_days
                .iter()
                .map(|d| (created + Duration::days(i64::from(*d))).date_naive())
                .find(|d| *d > now.date_naive());
            match next_warning {
                Some(w) => format!("warning on {w}; rotated on {rotate_on}"),
                None => format!("rotated on {rotate_on}"),
            }
        }
    }
}

fn csv_field(field: &str) -> String {
    if field.contains([',', '"', '\n']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_owned()
    }
}
