//! Step Functions: starting per-user executions from the scan.

use aws_sdk_sfn::Client;
use tracing::instrument;

use crate::error::sdk_error;
use keyrotor_core::error::{AwsErrorKind, Result};
use keyrotor_core::naming;
pub use keyrotor_core::ports::StartOutcome;
use keyrotor_core::ports::{ExecutionStatus, ExecutionStatusPort, ExecutionsPort};

#[derive(Clone, Debug)]
pub struct Executions {
    client: Client,
}

impl Executions {
    pub fn new(client: Client) -> Self {
        Executions { client }
    }

    /// The client from the SDK configuration.
    pub fn from_sdk(sdk: &aws_config::SdkConfig) -> Self {
        Executions::new(Client::new(sdk))
    }
}

impl Executions {
    /// The execution `name` exists: keyrotor's own earlier start if its input is `input`,
    /// someone else's otherwise (DescribeExecution gives the input).
    async fn existing(
        &self,
        state_machine_arn: &str,
        name: &str,
        input: &str,
    ) -> Result<StartOutcome> {
        let execution_arn = naming::execution_arn(state_machine_arn, name);
        let out = self
            .client
            .describe_execution()
            .execution_arn(&execution_arn)
            .send()
            .await
            .map_err(|e| sdk_error("states:DescribeExecution", e))?;
        Ok(
            if naming::same_input(out.input().unwrap_or_default(), input) {
                StartOutcome::AlreadyStarted
            } else {
                StartOutcome::Conflicting { execution_arn }
            },
        )
    }
}

impl ExecutionsPort for Executions {
    /// Starts execution `name`. Step Functions answers a repeated start of a still-running
    /// execution with the same input by returning that execution; one that began before
    /// this call (by more than clock jitter) is reported as already started. A name that is
    /// taken (`ExecutionAlreadyExists`: another input, or an execution that has ended) is
    /// looked at: already started only if its input is this one.
    #[instrument(skip(self, input))]
    async fn start(
        &self,
        state_machine_arn: &str,
        name: &str,
        input: String,
    ) -> Result<StartOutcome> {
        let called_at = chrono::Utc::now();
        let result = self
            .client
            .start_execution()
            .state_machine_arn(state_machine_arn)
            .name(name)
            .input(&input)
            .send()
            .await
            .map_err(|e| sdk_error("states:StartExecution", e));
        match result {
            Ok(out) => {
                let began = crate::to_utc(out.start_date());
                if began.is_some_and(|b| b < called_at - chrono::Duration::seconds(1)) {
                    return Ok(StartOutcome::AlreadyStarted);
                }
                Ok(StartOutcome::Started {
                    execution_arn: out.execution_arn().to_owned(),
                })
            }
            Err(e) if e.aws_kind() == Some(AwsErrorKind::AlreadyExists) => {
                self.existing(state_machine_arn, name, &input).await
            }
            Err(e) => Err(e),
        }
    }
}

impl ExecutionStatusPort for Executions {
    #[instrument(skip(self))]
    async fn status(&self, execution_arn: &str) -> Result<ExecutionStatus> {
        use aws_sdk_sfn::types::ExecutionStatus as Sdk;
        let out = self
            .client
            .describe_execution()
            .execution_arn(execution_arn)
            .send()
            .await
            .map_err(|e| sdk_error("states:DescribeExecution", e))?;
        Ok(match out.status() {
            Sdk::Running | Sdk::PendingRedrive => ExecutionStatus::Running,
            Sdk::Succeeded => ExecutionStatus::Succeeded,
            _ => ExecutionStatus::Ended {
                error: out.error().map(str::to_owned),
            },
        })
    }
}
