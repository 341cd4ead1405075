//! `scan-accounts`: one round of an organization scan. Sees which account scans have ended
//! (counting the unreachable accounts apart), then starts the next accounts' scans, so that
//! at most `KEYROTOR_ACCOUNT_CONCURRENCY` run at a time. The organization machine calls it,
//! waits, and calls it again until every account's scan has ended: its history grows with
//! the rounds, never with the users, and the accounts' scans run as executions of their own.

use aws_config::SdkConfig;
use futures_util::stream::{self, StreamExt, TryStreamExt};
use keyrotor_aws::{Executions, FromConfig};
use keyrotor_core::config::{Config, ConfigError};
use keyrotor_core::error::ErrorType;
use keyrotor_core::payload::{parse, Arn, Progress, RunningScan, ScanAccountsInput};
use keyrotor_core::ports::{ExecutionStatus, ExecutionStatusPort, ExecutionsPort, StartOutcome};
use keyrotor_core::{naming, Error, Result};
use tracing::{info, warn};

/// Executions described at once.
pub const DESCRIBE_CONCURRENCY: usize = 10;
/// The most accounts one organization scan takes (`list-accounts` keeps within it).
pub const MAX_ACCOUNTS: usize = 5000;
/// The most rounds one organization scan runs. A round adds about 9.4 events to its
/// history (`make bench`), so this keeps it under the 25,000 Step Functions allows: rather
/// than fail there, unexplained, the scan stops here and says what to change.
pub const MAX_ROUNDS: u32 = 2400;

/// What `scan-accounts` needs: its settings, the scan machine (`KEYROTOR_SCAN_STATE_MACHINE_ARN`,
/// required, checked at the cold start) and Step Functions, nothing else.
pub struct Deps<E = Executions> {
    pub config: Config,
    pub scan_state_machine_arn: String,
    pub executions: E,
}

impl<E> Deps<E> {
    pub fn new(config: Config, executions: E) -> Result<Self, ConfigError> {
        Ok(Deps {
            scan_state_machine_arn: config.require_scan_state_machine_arn()?.to_owned(),
            config,
            executions,
        })
    }
}

impl FromConfig for Deps {
    fn from_config(config: Config, sdk: &SdkConfig) -> Result<Self, ConfigError> {
        Deps::new(config, Executions::from_sdk(sdk))
    }
}

/// Every AWS API action this function calls: its role grants exactly these (checked by
/// `tools/check_infra.py`), and a test holds the calls the code makes to them.
pub const AWS_ACTIONS: &[&str] = &["states:DescribeExecution", "states:StartExecution"];

pub async fn handle<E: ExecutionsPort + ExecutionStatusPort>(
    event: serde_json::Value,
    deps: &Deps<E>,
) -> Result<Progress> {
    let input: ScanAccountsInput = parse(event)?;
    if input.accounts.len() > MAX_ACCOUNTS {
        return Err(Error::InvalidInput(format!(
            "at most {MAX_ACCOUNTS} accounts in one organization scan"
        )));
    }
    let mut progress = input.progress.unwrap_or_default();
    if progress.next > input.accounts.len() {
        return Err(Error::InvalidInput(format!(
            "progress.next {} is past the {} accounts",
            progress.next,
            input.accounts.len()
        )));
    }
    progress.rounds += 1;
    if progress.rounds > MAX_ROUNDS {
        return Err(Error::Config(keyrotor_core::config::ConfigError {
            var: keyrotor_core::config::vars::ACCOUNT_CONCURRENCY,
            reason: format!(
                "the organization scan ran {MAX_ROUNDS} rounds with {} of {} accounts started, \
                 near Step Functions' history limit; the account scans already started finish \
                 on their own. Raise the concurrency, or split the organization with \
                 KEYROTOR_INCLUDE_OUS",
                progress.next,
                input.accounts.len()
            ),
        }));
    }
    let dry_run = input.dry_run || deps.config.dry_run;
    let machine = deps.scan_state_machine_arn.as_str();

    // The scans running: which have ended, and how.
    let running = std::mem::take(&mut progress.running);
    let statuses: Vec<(RunningScan, ExecutionStatus)> = stream::iter(running)
        .map(|scan| async move {
            let status = deps.executions.status(scan.execution.as_str()).await?;
            Ok::<_, Error>((scan, status))
        })
        .buffered(DESCRIBE_CONCURRENCY)
        .try_collect()
        .await?;
    for (scan, status) in statuses {
        match status {
            ExecutionStatus::Running => progress.running.push(scan),
            ExecutionStatus::Succeeded => progress.succeeded += 1,
            ExecutionStatus::Ended { error } => {
                if error.as_deref() == Some(ErrorType::AccountUnreachable.as_str()) {
                    progress.unreachable.push(scan.account);
                } else {
                    progress.failed.push(scan.account);
                }
            }
        }
    }

    // Then the next accounts, up to the concurrency. A scan already started (a rerun of
    // the organization scan the same day) is followed, not started again.
    let concurrency = usize::from(deps.config.accounts.concurrency);
    let day = input.started_at.date_naive();
    let mut started = 0;
    while progress.running.len() < concurrency && progress.next < input.accounts.len() {
        let account = &input.accounts[progress.next];
        let name = naming::account_scan_name(day, &account.id, dry_run);
        let body = serde_json::json!({ "account": account, "dryRun": dry_run }).to_string();
        let arn = match deps.executions.start(machine, &name, body).await? {
            StartOutcome::Started { execution_arn } => {
                started += 1;
                execution_arn
            }
            StartOutcome::AlreadyStarted => naming::execution_arn(machine, &name),
            // Not this scan's: that account is not being scanned. The others are, and
            // then the organization scan fails, naming it.
            StartOutcome::Conflicting { execution_arn } => {
                warn!(
                    account = %account.id,
                    execution = %execution_arn,
                    "an account scan of today's name exists with another input: not keyrotor's"
                );
                progress.conflicting.push(account.id.clone());
                progress.next += 1;
                continue;
            }
        };
        progress.running.push(RunningScan {
            account: account.id.clone(),
            execution: Arn::try_from(arn).map_err(Error::Internal)?,
        });
        progress.next += 1;
    }
    progress.done = progress.running.is_empty() && progress.next == input.accounts.len();
    if progress.done && !progress.conflicting.is_empty() {
        let accounts: Vec<&str> = progress.conflicting.iter().map(|a| a.as_str()).collect();
        return Err(Error::Blocked(format!(
            "the account scans of today's names for {} already exist with another input than \
             this organization scan's: they were not started by keyrotor, and those accounts \
             were not scanned (the executions' inputs say who started what); every other \
             account was",
            accounts.join(", ")
        )));
    }
    info!(
        started,
        running = progress.running.len(),
        succeeded = progress.succeeded,
        failed = progress.failed.len(),
        unreachable = progress.unreachable.len(),
        done = progress.done,
        "organization scan round"
    );
    Ok(progress)
}

#[cfg(test)]
mod tests {
    use keyrotor_aws::testing::offline;
    use keyrotor_core::ErrorType;
    use serde_json::json;

    use super::*;

    #[tokio::test]
    async fn malformed_inputs_are_rejected_before_any_aws_call() {
        keyrotor_aws::assert_rejected!(
            handle,
            [
                json!({}),
                json!({"accounts": []}),
                json!({"accounts": [{"id": "12"}], "startedAt": "2026-11-30T06:00:00Z"}),
                json!({"accounts": [], "startedAt": "2026-11-30T06:00:00Z", "progress": {"next": 1, "running": [], "succeeded": 0, "failed": [], "unreachable": [], "done": false}}),
                json!({"accounts": [], "startedAt": "2026-11-30T06:00:00Z", "extra": 1}),
            ]
        );
    }

    #[test]
    fn an_already_started_scans_arn_is_derived_from_its_name() {
        assert_eq!(
            naming::execution_arn(
                "arn:aws:states:eu-west-1:111111111111:stateMachine:keyrotor-scan",
                "account-222222222222-20261130"
            ),
            "arn:aws:states:eu-west-1:111111111111:execution:keyrotor-scan:account-222222222222-20261130"
        );
    }

    /// Step Functions in memory: executions started by name, each ending when the test says.
    #[derive(Default)]
    struct Machines {
        started: std::sync::Mutex<Vec<(String, String)>>,
        ended: std::sync::Mutex<std::collections::BTreeMap<String, ExecutionStatus>>,
    }

    impl ExecutionsPort for Machines {
        async fn start(&self, machine: &str, name: &str, input: String) -> Result<StartOutcome> {
            let mut started = self.started.lock().unwrap();
            if let Some((_, existing)) = started.iter().find(|(n, _)| n == name) {
                return Ok(if naming::same_input(existing, &input) {
                    StartOutcome::AlreadyStarted
                } else {
                    StartOutcome::Conflicting {
                        execution_arn: naming::execution_arn(machine, name),
                    }
                });
            }
            started.push((name.to_owned(), input));
            Ok(StartOutcome::Started {
                execution_arn: naming::execution_arn(machine, name),
            })
        }
    }

    impl ExecutionStatusPort for Machines {
        async fn status(&self, arn: &str) -> Result<ExecutionStatus> {
            let name = arn.rsplit(':').next().unwrap_or_default();
            Ok(self
                .ended
                .lock()
                .unwrap()
                .get(name)
                .cloned()
                .unwrap_or(ExecutionStatus::Running))
        }
    }

    impl Machines {
        /// The names of the executions started, in order.
        fn names(&self) -> Vec<String> {
            self.started
                .lock()
                .unwrap()
                .iter()
                .map(|(n, _)| n.clone())
                .collect()
        }

        fn end(&self, name: &str, status: ExecutionStatus) {
            self.ended.lock().unwrap().insert(name.to_owned(), status);
        }
    }

    fn deps(concurrency: &str) -> Deps<Machines> {
        let config = keyrotor_core::Config::from_lookup(|name| match name {
            "KEYROTOR_ACCOUNTS" => Some("organization".into()),
            "KEYROTOR_ACCOUNT_CONCURRENCY" => Some(concurrency.into()),
            "KEYROTOR_SCAN_STATE_MACHINE_ARN" => {
                Some("arn:aws:states:us-east-1:111111111111:stateMachine:keyrotor-scan".into())
            }
            _ => None,
        })
        .expect("valid");
        Deps::new(config, Machines::default()).expect("valid")
    }

    fn accounts(n: usize) -> serde_json::Value {
        json!((0..n)
            .map(|i| json!({"id": format!("{:012}", 200_000_000_000u64 + i as u64), "name": format!("a{i}")}))
            .collect::<Vec<_>>())
    }

    #[tokio::test]
    async fn at_most_the_concurrency_runs_and_each_ending_makes_room_for_the_next() {
        let deps = deps("2");
        let round = |progress: Option<&Progress>| json!({"accounts": accounts(5), "progress": progress, "startedAt": "2026-11-30T06:00:00Z"});
        let p = handle(round(None), &deps).await.expect("first round");
        assert_eq!((p.next, p.running.len(), p.done), (2, 2, false));
        // Nothing ended: nothing more starts.
        let p = handle(round(Some(&p)), &deps).await.expect("round");
        assert_eq!((p.next, p.running.len()), (2, 2));
        let names = deps.executions.names();
        assert_eq!(
            names,
            [
                "account-200000000000-20261130",
                "account-200000000001-20261130"
            ]
        );
        // One succeeds, one is unreachable: two more start.
        let unreachable = ExecutionStatus::Ended {
            error: Some("AccountUnreachable".into()),
        };
        deps.executions.end(&names[0], ExecutionStatus::Succeeded);
        deps.executions.end(&names[1], unreachable);
        let p = handle(round(Some(&p)), &deps).await.expect("round");
        assert_eq!((p.next, p.running.len(), p.succeeded), (4, 2, 1));
        assert_eq!(
            p.unreachable.iter().map(|a| a.as_str()).collect::<Vec<_>>(),
            ["200000000001"]
        );
        // Another failure is counted as failed, not unreachable.
        let names = deps.executions.names();
        let failed = ExecutionStatus::Ended {
            error: Some("ServiceError".into()),
        };
        deps.executions.end(&names[2], failed);
        deps.executions.end(&names[3], ExecutionStatus::Succeeded);
        let p = handle(round(Some(&p)), &deps).await.expect("round");
        assert_eq!((p.next, p.running.len(), p.done), (5, 1, false));
        assert_eq!(
            p.failed.iter().map(|a| a.as_str()).collect::<Vec<_>>(),
            ["200000000002"]
        );
        deps.executions
            .end(&deps.executions.names()[4], ExecutionStatus::Succeeded);
        let p = handle(round(Some(&p)), &deps).await.expect("last round");
        assert!(p.done && p.running.is_empty());
        assert_eq!(p.succeeded, 3);
        // Each account scan's input names its account.
        let input: serde_json::Value =
            serde_json::from_str(&deps.executions.started.lock().unwrap()[0].1).expect("JSON");
        assert_eq!(input["account"]["id"], "200000000000");
        assert_eq!(input["account"]["name"], "a0");
    }

    #[tokio::test]
    async fn an_organization_scan_stops_before_the_history_limit_and_says_what_to_change() {
        let deps = deps("1");
        let progress = Progress {
            rounds: MAX_ROUNDS,
            ..Progress::default()
        };
        let event = json!({"accounts": accounts(3), "progress": progress, "startedAt": "2026-11-30T06:00:00Z"});
        let err = handle(event, &deps).await.expect_err("stopped");
        assert_eq!(err.error_type(), ErrorType::ConfigurationError);
        assert!(
            err.to_string().contains("KEYROTOR_ACCOUNT_CONCURRENCY"),
            "{err}"
        );
        assert!(deps.executions.names().is_empty(), "nothing more started");
    }

    #[tokio::test]
    async fn a_rerun_the_same_day_follows_the_scans_already_started() {
        let deps = deps("10");
        let event = json!({"accounts": accounts(3), "startedAt": "2026-11-30T06:00:00Z"});
        handle(event.clone(), &deps).await.expect("first run");
        let again = handle(event, &deps).await.expect("rerun");
        assert_eq!(again.running.len(), 3, "followed, by the names' ARNs");
        assert_eq!(
            deps.executions.started.lock().unwrap().len(),
            3,
            "nothing started twice"
        );
    }

    /// Someone started today's scan of an account first, as a dry run: that scan is not
    /// keyrotor's. The other accounts are scanned as usual, and then the organization scan
    /// fails, naming the account (issue 26, H2).
    #[tokio::test]
    async fn an_account_scan_name_taken_with_another_input_fails_the_organization_scan() {
        let deps = deps("10");
        let taken = r#"{"account":{"id":"200000000001","name":"a1"},"dryRun":true}"#;
        deps.executions
            .started
            .lock()
            .unwrap()
            .push(("account-200000000001-20261130".into(), taken.into()));
        let round = |progress: Option<&Progress>| json!({"accounts": accounts(3), "progress": progress, "startedAt": "2026-11-30T06:00:00Z"});
        let p = handle(round(None), &deps).await.expect("round");
        assert_eq!(
            p.conflicting.iter().map(|a| a.as_str()).collect::<Vec<_>>(),
            ["200000000001"]
        );
        let running: Vec<&str> = p.running.iter().map(|r| r.account.as_str()).collect();
        assert_eq!(
            running,
            ["200000000000", "200000000002"],
            "the others scanned"
        );
        assert_eq!(p.next, 3);
        for name in deps.executions.names() {
            deps.executions.end(&name, ExecutionStatus::Succeeded);
        }
        // Once the others are done, the organization scan fails, naming the account.
        let err = handle(round(Some(&p)), &deps).await.expect_err("loud");
        assert_eq!(err.error_type(), ErrorType::Blocked);
        assert!(err.to_string().contains("200000000001"), "{err}");
    }

    #[tokio::test]
    async fn aws_failures_surface_as_retryable_errors() {
        let event = json!({
            "accounts": [{"id": "222222222222"}],
            "startedAt": "2026-11-30T06:00:00Z"
        });
        let err = handle(event, &offline::<Deps>())
            .await
            .expect_err("no endpoint");
        assert_eq!(err.error_type(), ErrorType::Transient, "{err}");
    }
}
