//! `start-rotations`: the scan's fan-out. Starts one per-user execution for each user that
//! needs action, with a deterministic name per scan day, so a rerun of the scan finds
//! `ExecutionAlreadyExists` and starts nothing twice. A name taken by an execution with
//! another input is not keyrotor's (someone pre-started it, a dry run for one): it is
//! counted `conflicting`, and the scan fails at its end. (A function, not the native
//! `states:startExecution` integration, because the local ASL interpreter lacks that.)

use futures_util::stream::{self, StreamExt, TryStreamExt};
use keyrotor_aws::{ExecutionStarter, Executions};
use keyrotor_core::metrics::{Emf, Metric};
use keyrotor_core::payload::{parse, StartRotationsInput, StartRotationsOutput, UserName};
use keyrotor_core::ports::ExecutionsPort;
use keyrotor_core::ports::StartOutcome;
use keyrotor_core::{naming, Error, Result};
use tracing::{info, warn};

/// Executions started at once: far below what Step Functions allows for StartExecution
/// (its token bucket holds hundreds), and the SDK retries a throttled call.
pub const START_CONCURRENCY: usize = 10;
pub const MAX_USERS: usize = 1000;

/// What `start-rotations` needs: its settings, the per-user machine and Step Functions,
/// nothing else. Built once per cold start from the SDK configuration; tests build it
/// around an in-memory account.
pub type Deps<E = Executions> = ExecutionStarter<E>;

/// Every AWS API action this function calls: its role grants exactly these (checked by
/// `tools/check_infra.py`), and a test holds the calls the code makes to them.
pub const AWS_ACTIONS: &[&str] = &["states:DescribeExecution", "states:StartExecution"];

pub async fn handle<E: ExecutionsPort>(
    event: serde_json::Value,
    deps: &Deps<E>,
) -> Result<StartRotationsOutput> {
    let input: StartRotationsInput = parse(event)?;
    if input.users.len() > MAX_USERS {
        return Err(Error::InvalidInput(format!(
            "at most {MAX_USERS} users at a time"
        )));
    }
    let users = input
        .users
        .iter()
        .map(|u| UserName::try_from(u.user.clone()).map_err(Error::InvalidInput))
        .collect::<Result<Vec<_>>>()?;
    let dry_run = input.dry_run || deps.config.dry_run;
    let state_machine = deps.state_machine_arn.as_str();
    let day = input.scan_started_at.date_naive();

    // Each start's outcome, and whether the execution is to rotate a key (or finish a
    // rotation) rather than to warn or report.
    let outcomes: Vec<(&UserName, bool, StartOutcome)> =
        stream::iter(users.iter().zip(&input.users))
            .map(|(user, actionable)| {
                let account = input.account.as_ref();
                let name =
                    naming::execution_name(day, account.map(|a| &a.id), user.as_str(), dry_run);
                let mut body = serde_json::json!({ "user": user.as_str(), "dryRun": dry_run });
                if let Some(account) = account {
                    body["account"] = serde_json::json!(account);
                }
                let body = body.to_string();
                let rotation =
                    matches!(actionable.action.as_str(), "rotate" | "finish" | "cutover");
                async move {
                    let outcome = deps.executions.start(state_machine, &name, body).await?;
                    Ok::<_, Error>((user, rotation, outcome))
                }
            })
            .buffer_unordered(START_CONCURRENCY)
            .try_collect()
            .await?;

    let is_started = |o: &StartOutcome| matches!(o, StartOutcome::Started { .. });
    let started = outcomes.iter().filter(|(_, _, o)| is_started(o)).count();
    let rotations = outcomes
        .iter()
        .filter(|(_, rotation, o)| *rotation && is_started(o))
        .count();
    // Today's name taken by an execution keyrotor did not start: that user is not acted
    // on. The scan goes on with the others and fails at its end (the admin is told).
    let mut conflicting: Vec<String> = outcomes
        .iter()
        .filter_map(|(user, _, o)| match o {
            StartOutcome::Conflicting { execution_arn } => {
                warn!(user = %user, execution = %execution_arn, "today's execution name was taken by an execution with another input: not keyrotor's");
                Some(user.to_string())
            }
            _ => None,
        })
        .collect();
    conflicting.sort();
    let already = outcomes.len() - started - conflicting.len();
    info!(
        started,
        already_started = already,
        conflicting = conflicting.len(),
        "per-user executions"
    );
    if !dry_run {
        Emf::new(chrono::Utc::now())
            .value(Metric::RotationsStarted, rotations as f64)
            .emit();
    }
    Ok(StartRotationsOutput {
        started: u32::try_from(started).unwrap_or(u32::MAX),
        already_started: u32::try_from(already).unwrap_or(u32::MAX),
        conflicting: u32::try_from(conflicting.len()).unwrap_or(u32::MAX),
        conflicting_users: conflicting,
        dry_run,
    })
}

#[cfg(test)]
mod tests {
    use keyrotor_aws::testing::offline;
    use serde_json::json;

    use super::*;

    #[tokio::test]
    async fn malformed_inputs_are_rejected_before_any_aws_call() {
        keyrotor_aws::assert_rejected!(
            handle,
            [
                json!({}),
                json!({"users": []}),
                json!({"users": [], "scanStartedAt": "yesterday"}),
                json!({"users": [{"user": "bad name", "action": "rotate"}], "scanStartedAt": "2026-11-25T00:00:00Z"}),
                json!({"users": [{"user": "alice"}], "scanStartedAt": "2026-11-25T00:00:00Z"}),
            ]
        );
    }

    #[tokio::test]
    async fn an_empty_list_starts_nothing() {
        let out = handle(
            json!({"users": [], "scanStartedAt": "2026-11-25T00:00:00Z"}),
            &offline(),
        )
        .await
        .expect("nothing to start");
        assert_eq!((out.started, out.already_started), (0, 0));
    }
}
