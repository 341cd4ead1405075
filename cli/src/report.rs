//! `keyrotor report`: every user's keys straight from IAM, read-only, with what the policy
//! does next and when. The policy is the deployed one, read from the configuration of the
//! state machine's `assess-key-age` function; when that cannot be read (no permission, the
//! local stack), this shell's `KEYROTOR_*` variables (defaults: rotate at 90 days, warn at
//! 80, 85 and 89). The report always says which it used.

use std::collections::HashMap;

use anyhow::{anyhow, Context, Result};
use aws_config::SdkConfig;
use chrono::{DateTime, Duration, Utc};
use keyrotor_aws::member::{assume_role, member_config, partition_of};
use keyrotor_aws::{Iam, Secrets};
use keyrotor_core::accounts::{member_role_arn, AccountId};
use keyrotor_core::domain::planner::RESUME_WINDOW;
use keyrotor_core::domain::{plan, Decision, KeyStatus};
use keyrotor_core::ports::UsersPort;
use keyrotor_core::state::load_user;
use keyrotor_core::Config;
use serde::Serialize;

use crate::{Colour, Ctx, ReportFormat, EXIT_NON_COMPLIANT};

/// One key (or a user without keys) in the report.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Row {
    pub user: String,
    pub key_id: Option<String>,
    pub status: Option<&'static str>,
    pub age_days: Option<i64>,
    pub last_used: Option<DateTime<Utc>>,
    pub next: String,
    /// Active, past the rotation age, the user not exempt, and not an old key in its overlap
    /// window.
    pub overdue: bool,
    /// An active key never used ("never used"), or not for the policy's `unused_days`
    /// ("unused N days"): retired at its rotation age instead of rotated.
    pub unused: Option<String>,
}

/// Whether an active key last used at `last_used` counts as unused at `now`, in words.
fn unused_label(
    active: bool,
    last_used: Option<DateTime<Utc>>,
    unused_days: u32,
    now: DateTime<Utc>,
) -> Option<String> {
    if !active {
        return None;
    }
    match last_used {
        None => Some("never used".to_owned()),
        Some(t) if unused_days > 0 && (now - t).num_days() >= i64::from(unused_days) => {
            Some(format!("unused {} days", (now - t).num_days()))
        }
        Some(_) => None,
    }
}

/// The policy the report judges by, and where it came from.
pub struct PolicyOrigin {
    pub config: Config,
    /// For people: "the deployed configuration of FUNCTION", or this shell's variables and
    /// why the deployed one could not be read.
    pub source: String,
    pub deployed: bool,
}

/// The deployed policy if it can be read, else this shell's, saying which.
pub async fn policy(ctx: &Ctx) -> Result<PolicyOrigin> {
    let lambda = aws_sdk_lambda::Client::new(&ctx.sdk);
    let deployed = match ctx.state_machine().await {
        Ok(machine) => deployed_config(&ctx.sfn, &lambda, &machine).await,
        Err(e) => Err(e),
    };
    match deployed {
        Ok((config, function)) => Ok(PolicyOrigin {
            config,
            source: format!("the deployed configuration of {function}"),
            deployed: true,
        }),
        Err(why) => Ok(PolicyOrigin {
            config: Config::from_env().context("reading the rotation policy")?,
            source: format!(
                "this shell's KEYROTOR_* variables (the deployed policy could not be read: {})",
                crate::one_line(&why)
            ),
            deployed: false,
        }),
    }
}

/// The configuration of the function the state machine's `Assess` step calls.
pub async fn deployed_config(
    sfn: &aws_sdk_sfn::Client,
    lambda: &aws_sdk_lambda::Client,
    machine: &str,
) -> Result<(Config, String)> {
    let described = sfn
        .describe_state_machine()
        .state_machine_arn(machine)
        .send()
        .await
        .map_err(|e| crate::aws_error("describing the state machine", e))?;
    let definition: serde_json::Value = serde_json::from_str(described.definition())
        .context("the state machine's definition is not JSON")?;
    let function = definition["States"]["Assess"]["Resource"]
        .as_str()
        .ok_or_else(|| anyhow!("the state machine has no Assess step calling a function"))?
        .to_owned();
    let out = lambda
        .get_function_configuration()
        .function_name(&function)
        .send()
        .await
        .map_err(|e| crate::aws_error("reading the function's configuration", e))?;
    let variables: HashMap<String, String> = out
        .environment()
        .and_then(|e| e.variables())
        .cloned()
        .unwrap_or_default();
    let config = Config::from_lookup(|name| variables.get(name).cloned())
        .with_context(|| format!("the configuration of {function}"))?;
    Ok((config, function))
}

pub async fn report(ctx: &Ctx, format: ReportFormat) -> Result<i32> {
    // The machine whose policy judges the keys, if there is one; the keys are this
    // account's either way.
    let machine = ctx.state_machine().await.ok();
    ctx.acting_on(machine.as_deref()).await;
    let origin = policy(ctx).await?;
    if format != ReportFormat::Json {
        eprintln!("policy: {}", origin.source);
    }
    let config = match ctx.account() {
        None => origin.config.clone(),
        Some(account) => member_config(&origin.config, partition(ctx), account),
    };
    let sdk = match ctx.account() {
        None => ctx.sdk.clone(),
        Some(account) => reader_session(ctx, &origin.config, account).await?,
    };
    let policy = &config.policy;
    let now = Utc::now();
    let rows = collect_rows(&sdk, &config, now).await?;
    let overdue = rows.iter().filter(|r| r.overdue).count();
    let unused: Vec<&Row> = rows.iter().filter(|r| r.unused.is_some()).collect();
    match format {
        ReportFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&ctx.in_context(serde_json::json!({
                "generatedAt": now,
                "policySource": origin.source,
                "policyDeployed": origin.deployed,
                "rotateAfterDays": policy.rotate_after_days,
                "unusedDays": policy.unused_days,
                "overdueKeys": overdue,
                "unusedKeys": unused.len(),
                "keys": rows,
            })))?
        ),
        ReportFormat::Html => {
            let target = ctx.target();
            print!(
                "{}",
                crate::html::render(&crate::html::Page {
                    generated_at: now,
                    target: target.as_ref(),
                    policy,
                    policy_source: &origin.source,
                    rows: &rows,
                })
            );
        }
        ReportFormat::Csv => {
            println!("user,key_id,status,age_days,last_used,next,overdue,unused");
            for r in &rows {
                let fields = [
                    r.user.clone(),
                    r.key_id.clone().unwrap_or_default(),
                    r.status.unwrap_or_default().to_owned(),
                    r.age_days.map(|a| a.to_string()).unwrap_or_default(),
                    r.last_used.map(|t| t.to_rfc3339()).unwrap_or_default(),
                    r.next.clone(),
                    r.overdue.to_string(),
                    r.unused.clone().unwrap_or_default(),
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
            if !unused.is_empty() {
                let rule = if policy.unused_days > 0 {
                    format!(
                        "never used, or not for {} days: retired at the rotation age, not rotated",
                        policy.unused_days
                    )
                } else {
                    "never used (retirement is off: KEYROTOR_UNUSED_DAYS is 0)".to_owned()
                };
                println!("\nUnused keys ({rule}):");
                for r in &unused {
                    println!(
                        "  {:<16} {:<22} {}",
                        r.user,
                        r.key_id.as_deref().unwrap_or("-"),
                        r.unused.as_deref().unwrap_or_default()
                    );
                }
            }
        }
    }
    Ok(if overdue > 0 { EXIT_NON_COMPLIANT } else { 0 })
}

/// Every user's keys in the account `sdk` signs for, judged by `config`'s policy.
async fn collect_rows(sdk: &SdkConfig, config: &Config, now: DateTime<Utc>) -> Result<Vec<Row>> {
    let iam = Iam::from_sdk(sdk);
    let secrets = Secrets::from_sdk(sdk, config);
    let policy = &config.policy;
    let members = match &config.exempt_group {
        Some(group) => Some(iam.group_members(group).await?),
        None => None,
    };
    let mut rows = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let page = iam.list_users_page(marker.as_deref(), 1000).await?;
        for user in &page.users {
            let live = match load_user(&iam, &secrets, config, user, members.as_ref()).await {
                Ok(live) => live,
                Err(keyrotor_core::Error::UserNotFound(_)) => continue,
                Err(e) => return Err(e.into()),
            };
            let decision = plan(&live.state, policy, now, false).decision;
            if live.state.keys.is_empty() {
                rows.push(Row {
                    user: user.clone(),
                    key_id: None,
                    status: None,
                    age_days: None,
                    last_used: None,
                    next: "no access keys".into(),
                    overdue: false,
                    unused: None,
                });
            }
            let mut keys = live.state.keys.clone();
            keys.sort_by_key(|k| k.created);
            for key in &keys {
                let age = key.age_days(now);
                let overdue = decision.counts_as_non_compliant(key, policy, now);
                let next = next_step(
                    &decision,
                    key.id.as_str(),
                    key.status,
                    key.created,
                    policy.rotate_after_days,
                    &policy.warn_days,
                    now,
                );
                let last_used = iam.key_last_used(&key.id).await?;
                rows.push(Row {
                    user: user.clone(),
                    key_id: Some(key.id.clone()),
                    status: Some(if key.is_active() {
                        "Active"
                    } else {
                        "Inactive"
                    }),
                    age_days: Some(age),
                    last_used,
                    next,
                    overdue,
                    unused: unused_label(key.is_active(), last_used, policy.unused_days, now),
                });
            }
        }
        match page.next_marker {
            Some(m) => marker = Some(m),
            None => break,
        }
    }
    Ok(rows)
}

/// The partition of the region the command runs in.
fn partition(ctx: &Ctx) -> &'static str {
    partition_of(ctx.sdk.region().map_or("", |r| r.as_ref()))
}

/// The role `report` reads a member account with: `role/keyrotor/report`, read-only, made by
/// `infra/member-account.yaml`, and assumable by operators (the operator policy).
pub const READER_ROLE: &str = "report";

/// A session of the member account's reader role.
async fn reader_session(ctx: &Ctx, config: &Config, account: &AccountId) -> Result<SdkConfig> {
    let role = member_role_arn(partition(ctx), account, READER_ROLE);
    let sts = aws_sdk_sts::Client::new(&ctx.sdk);
    let (sdk, _) = assume_role(
        &sts,
        &ctx.sdk,
        &role,
        "keyrotor-report",
        config.accounts.external_id.as_deref(),
    )
    .await
    .with_context(|| format!("reading account {account} through {role}"))?;
    Ok(sdk)
}

/// One account of `report --organization`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct AccountReport {
    id: String,
    name: Option<String>,
    users: usize,
    keys: usize,
    overdue_keys: usize,
    /// Why the account could not be read (its reader role refused, say).
    unreachable: Option<String>,
    rows: Vec<Row>,
}

/// `keyrotor report --organization`: every account the latest organization scan covered,
/// each read through its reader role. Exits 3 when a key is overdue or an account is
/// unreachable (by the organization scan or by this report).
pub async fn organization(ctx: &Ctx) -> Result<i32> {
    let machine = ctx.organization_state_machine().await?;
    ctx.acting_on([machine.as_str()]).await;
    let origin = policy(ctx).await?;
    if ctx.output != crate::Output::Json {
        eprintln!("policy: {}", origin.source);
    }
    let scan = latest_succeeded(ctx, &machine).await?;
    let output: serde_json::Value = serde_json::from_str(scan.output().unwrap_or("null"))
        .context("the organization scan's output is not JSON")?;
    let scanned: Vec<keyrotor_core::payload::AccountRef> =
        serde_json::from_value(output["scanned"].clone())
            .context("the organization scan's output lists no scanned accounts")?;
    let unreachable_in_scan: Vec<String> =
        serde_json::from_value(output["unreachable"].clone()).unwrap_or_default();
    let now = Utc::now();
    let mut accounts = Vec::new();
    for account in &scanned {
        let name = account.name.as_ref().map(ToString::to_string);
        let member = member_config(&origin.config, partition(ctx), &account.id);
        let read = async {
            let sdk = reader_session(ctx, &origin.config, &account.id).await?;
            collect_rows(&sdk, &member, now).await
        };
        let report = match read.await {
            Ok(rows) => AccountReport {
                id: account.id.to_string(),
                name,
                users: count_users(&rows),
                keys: rows.iter().filter(|r| r.key_id.is_some()).count(),
                overdue_keys: rows.iter().filter(|r| r.overdue).count(),
                unreachable: unreachable_in_scan
                    .contains(&account.id.to_string())
                    .then(|| "the organization scan could not assume its roles".to_owned()),
                rows,
            },
            Err(e) => AccountReport {
                id: account.id.to_string(),
                name,
                users: 0,
                keys: 0,
                overdue_keys: 0,
                unreachable: Some(crate::one_line(&e)),
                rows: Vec::new(),
            },
        };
        accounts.push(report);
    }
    let overdue: usize = accounts.iter().map(|a| a.overdue_keys).sum();
    let unreachable = accounts.iter().filter(|a| a.unreachable.is_some()).count();
    let value = serde_json::json!({
        "generatedAt": now,
        "organizationScan": scan.execution_arn(),
        "policySource": origin.source,
        "rotateAfterDays": origin.config.policy.rotate_after_days,
        "overdueKeys": overdue,
        "unreachableAccounts": unreachable,
        "accounts": accounts,
        "skipped": output["skipped"],
    });
    ctx.emit(&value, || {
        let mut text = format!(
            "{:<14} {:<24} {:>6} {:>6} {:>8}  STATE\n",
            "ACCOUNT", "NAME", "USERS", "KEYS", "OVERDUE"
        );
        for a in &accounts {
            let state = match &a.unreachable {
                Some(why) => ctx.paint(&format!("unreachable: {why}"), Colour::Red),
                None if a.overdue_keys > 0 => ctx.paint("NOT compliant", Colour::Red),
                None => ctx.paint("compliant", Colour::Green),
            };
            text.push_str(&format!(
                "{:<14} {:<24} {:>6} {:>6} {:>8}  {state}\n",
                a.id,
                a.name.as_deref().unwrap_or("-"),
                a.users,
                a.keys,
                a.overdue_keys
            ));
        }
        text.push_str(&format!(
            "\n{} accounts, {overdue} overdue key(s), {unreachable} unreachable account(s); \
             skipped: {}\n",
            accounts.len(),
            output["skipped"].as_array().map_or(0, Vec::len)
        ));
        text
    });
    Ok(if overdue > 0 || unreachable > 0 {
        EXIT_NON_COMPLIANT
    } else {
        0
    })
}

/// The newest succeeded execution of `machine`.
async fn latest_succeeded(
    ctx: &Ctx,
    machine: &str,
) -> Result<aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput> {
    let listed = ctx
        .sfn
        .list_executions()
        .state_machine_arn(machine)
        .status_filter(aws_sdk_sfn::types::ExecutionStatus::Succeeded)
        .max_results(1)
        .send()
        .await
        .map_err(|e| crate::aws_error("listing the organization scans", e))?;
    let Some(latest) = listed.executions().first() else {
        anyhow::bail!(
            "no organization scan has succeeded yet: run one (the schedule, or start {machine})"
        );
    };
    crate::describe(ctx, latest.execution_arn()).await
}

/// How many users the rows are about (a user's rows are consecutive).
pub(crate) fn count_users(rows: &[Row]) -> usize {
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
        Decision::Cutover {
            old_key_id, until, ..
        } if old_key_id == key_id => format!(
            "overlap window: deactivated once idle, by {} at the latest",
            until.format("%Y-%m-%d %H:%M UTC")
        ),
        Decision::Cutover { new_key_id, .. } if new_key_id == key_id => {
            "new key of a rotation in its overlap window".into()
        }
        Decision::Blocked { key_id: Some(k) } if k == key_id => {
            "blocked: two active keys; reported to owner and admin".into()
        }
        Decision::Blocked { .. } if status == KeyStatus::Active => {
            "blocked: see the other key".into()
        }
        Decision::Warn {
            key_id: k,
            rotate_on,
            retire,
            ..
        } if k == key_id => {
            let what = if *retire {
                "retired (unused)"
            } else {
                "rotated"
            };
            format!("warning due today; {what} on {rotate_on}")
        }
        Decision::Retire {
            key_id: k,
            delete_after,
            ..
        } if k == key_id => match delete_after {
            Some(at) if status == KeyStatus::Inactive => {
                format!("retired: deleted after {}", at.format("%Y-%m-%d %H:%M UTC"))
            }
            _ if status == KeyStatus::Inactive => "retired: deleted after the delay".into(),
            _ => "unused: retired at the next scan (deactivated, not replaced)".into(),
        },
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

#[cfg(test)]
mod tests {
    use aws_sdk_lambda::operation::get_function_configuration::GetFunctionConfigurationOutput;
    use aws_sdk_lambda::types::EnvironmentResponse;
    use aws_sdk_sfn::operation::describe_state_machine::DescribeStateMachineOutput;
    use aws_smithy_mocks::{mock, mock_client};

    use super::*;

    const MACHINE: &str = "arn:aws:states:us-east-1:123456789012:stateMachine:prod-keyrotor-rotate";
    const FUNCTION: &str = "arn:aws:lambda:us-east-1:123456789012:function:prod-assess-key-age";

    fn machine() -> aws_sdk_sfn::Client {
        let rule = mock!(aws_sdk_sfn::Client::describe_state_machine)
            .match_requests(|r| r.state_machine_arn() == Some(MACHINE))
            .then_output(|| {
                let definition = serde_json::json!({
                    "StartAt": "CheckForce",
                    "States": {"Assess": {"Type": "Task", "Resource": FUNCTION, "End": true}}
                });
                DescribeStateMachineOutput::builder()
                    .state_machine_arn(MACHINE)
                    .name("prod-keyrotor-rotate")
                    .definition(definition.to_string())
                    .role_arn("arn:aws:iam::123456789012:role/sm")
                    .r#type(aws_sdk_sfn::types::StateMachineType::Standard)
                    .creation_date(aws_smithy_types::DateTime::from_secs(0))
                    .build()
                    .expect("output")
            });
        mock_client!(aws_sdk_sfn, [&rule])
    }

    #[tokio::test]
    async fn the_report_judges_by_the_deployed_functions_policy() {
        let config = mock!(aws_sdk_lambda::Client::get_function_configuration)
            .match_requests(|r| r.function_name() == Some(FUNCTION))
            .then_output(|| {
                GetFunctionConfigurationOutput::builder()
                    .environment(
                        EnvironmentResponse::builder()
                            .variables("KEYROTOR_ROTATE_AFTER_DAYS", "30")
                            .variables("KEYROTOR_WARN_DAYS", "none")
                            .variables("KEYROTOR_MAX_EXEMPTION_DAYS", "30")
                            .build(),
                    )
                    .build()
            });
        let lambda = mock_client!(aws_sdk_lambda, [&config]);
        let (config, function) = deployed_config(&machine(), &lambda, MACHINE)
            .await
            .expect("read");
        assert_eq!(function, FUNCTION);
        assert_eq!(config.policy.rotate_after_days, 30);
        assert!(config.policy.warn_days.is_empty());
        assert_eq!(config.policy.max_exemption_days, 30);
    }

    #[tokio::test]
    async fn an_invalid_deployed_configuration_is_an_error_not_a_default() {
        let config = mock!(aws_sdk_lambda::Client::get_function_configuration).then_output(|| {
            GetFunctionConfigurationOutput::builder()
                .environment(
                    EnvironmentResponse::builder()
                        .variables("KEYROTOR_ROTATE_AFTER_DAYS", "soon")
                        .build(),
                )
                .build()
        });
        let lambda = mock_client!(aws_sdk_lambda, [&config]);
        let err = deployed_config(&machine(), &lambda, MACHINE)
            .await
            .expect_err("invalid");
        assert!(
            crate::one_line(&err).contains("KEYROTOR_ROTATE_AFTER_DAYS"),
            "{err:#}"
        );
    }
}
