//! `respond-to-exposure`: the target of the EventBridge rules on AWS's reports of an exposed
//! access key (AWS Health `AWS_RISK_CREDENTIALS_EXPOSED`, Trusted Advisor "Exposed Access
//! Keys"). It reads the report and starts a forced per-user execution for the key on the
//! responder machine, named after the key and the report's time, so the same report
//! delivered twice starts one execution. It reads nothing in IAM and changes nothing itself:
//! the execution resolves the key's owner and decides. (A function, not a rule target on
//! the machine: a rule's target cannot name the execution, and an unnamed one would start
//! again on every delivery.)

use keyrotor_aws::{ExecutionStarter, Executions};
use keyrotor_core::exposure::parse_event;
use keyrotor_core::payload::RespondToExposureOutput;
use keyrotor_core::ports::{ExecutionsPort, StartOutcome};
use keyrotor_core::{Error, Result};
use tracing::info;

/// What `respond-to-exposure` needs: its settings, the responder machine (its
/// `KEYROTOR_STATE_MACHINE_ARN`) and Step Functions, nothing else.
pub type Deps<E = Executions> = ExecutionStarter<E>;

/// Every AWS API action this function calls: its role grants exactly these (checked by
/// `tools/check_infra.py`, which also holds the machine it may start to the responder's).
pub const AWS_ACTIONS: &[&str] = &["states:DescribeExecution", "states:StartExecution"];

pub async fn handle<E: ExecutionsPort>(
    event: serde_json::Value,
    deps: &Deps<E>,
) -> Result<RespondToExposureOutput> {
    let exposure = parse_event(&event)?;
    // A report forwarded from another account names a key of that account: looked for
    // here, it would fail "not a key here" while the leaked key stays active there. Say so
    // instead (L5 of the second review).
    let own = deps.state_machine_arn.split(':').nth(4);
    if let Some(account) = event["account"].as_str().filter(|a| Some(*a) != own) {
        return Err(Error::InvalidInput(format!(
            "the report is about {} in account {account}, but keyrotor here works in {}: \
             it was forwarded from another account; answer it there (or start a forced \
             rotation with that account named), the key is still active",
            exposure.access_key_id,
            own.unwrap_or("its own account")
        )));
    }
    let name = exposure.execution_name();
    let input = exposure.execution_input().to_string();
    let outcome = deps
        .executions
        .start(&deps.state_machine_arn, &name, input)
        .await?;
    if let StartOutcome::Conflicting { execution_arn } = &outcome {
        // Someone started the leak response's name with another input: the leak is not
        // being answered. Fail, so the rule's delivery is retried and the errors alarm.
        return Err(Error::Conflict(format!(
            "the execution {execution_arn} exists with another input than this report's: \
             it was not started by keyrotor, and the exposed key {} is not being answered",
            exposure.access_key_id
        )));
    }
    let started = matches!(outcome, StartOutcome::Started { .. });
    info!(
        access_key_id = %exposure.access_key_id,
        reporter = exposure.reporter.name(),
        execution = %name,
        started,
        "exposed access key reported"
    );
    Ok(RespondToExposureOutput {
        access_key_id: exposure.access_key_id.to_string(),
        execution_name: name,
        started,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[tokio::test]
    async fn other_events_are_rejected_before_any_aws_call() {
        keyrotor_aws::assert_rejected!(
            handle,
            [
                json!({}),
                json!(null),
                json!({"accessKeyId": "AKIAIOSFODNN7EXAMPLE", "force": true}),
                json!({"source": "aws.health", "detail-type": "AWS Health Event", "detail": {"eventTypeCode": "AWS_EC2_OPERATIONAL_ISSUE"}}),
                json!({"source": "aws.health", "detail-type": "AWS Health Event", "detail": {
                    "eventTypeCode": "AWS_RISK_CREDENTIALS_EXPOSED",
                    "startTime": "Wed, 12 Feb 2025 00:37:54 GMT",
                    "affectedEntities": [{"entityValue": "ASIAIOSFODNN7EXAMPLE"}]}}),
                json!({"source": "aws.trustedadvisor", "detail-type": "Trusted Advisor Check Item Refresh Notification", "detail": {
                    "check-name": "Exposed Access Keys", "status": "OK"}}),
                // A member account's report, forwarded: its key is not this account's.
                json!({"source": "aws.health", "detail-type": "AWS Health Event", "account": "999999999999", "detail": {
                    "eventTypeCode": "AWS_RISK_CREDENTIALS_EXPOSED",
                    "startTime": "Wed, 12 Feb 2025 00:37:54 GMT",
                    "affectedEntities": [{"entityValue": "AKIAIOSFODNN7EXAMPLE"}]}}),
            ]
        );
    }
}
