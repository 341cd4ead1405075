//! Step Functions: starting per-user executions from the scan.

use aws_sdk_sfn::Client;
use tracing::instrument;

use crate::error::sdk_error;
use keyrotor_core::error::{AwsErrorKind, Result};
use keyrotor_core::ports::ExecutionsPort;
pub use keyrotor_core::ports::StartOutcome;

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

impl ExecutionsPort for Executions {
    /// Starts execution `name`. Step Functions answers a repeated start of a still-running
    /// execution with the same input by returning that execution; one that began before
    /// this call (by more than clock jitter) is reported as already started.
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
            .input(input)
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
                Ok(StartOutcome::AlreadyStarted)
            }
            Err(e) => Err(e),
        }
    }
}
