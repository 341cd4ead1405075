//! Step Functions: starting per-user executions from the scan.

use aws_sdk_sfn::Client;
use tracing::instrument;

use crate::error::{AwsErrorKind, Error, Result};

/// What happened to one StartExecution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartOutcome {
    Started {
        execution_arn: String,
    },
    /// An execution of that name exists already: an earlier run of the scan started it.
    AlreadyStarted,
}

#[derive(Clone, Debug)]
pub struct Executions {
    client: Client,
}

impl Executions {
    pub fn new(client: Client) -> Self {
        Executions { client }
    }

    #[instrument(skip(self, input))]
    pub async fn start(
        &self,
        state_machine_arn: &str,
        name: &str,
        input: String,
    ) -> Result<StartOutcome> {
        let result = self
            .client
            .start_execution()
            .state_machine_arn(state_machine_arn)
            .name(name)
            .input(input)
            .send()
            .await
            .map_err(|e| Error::from_sdk("states:StartExecution", e));
        match result {
            Ok(out) => Ok(StartOutcome::Started {
                execution_arn: out.execution_arn().to_owned(),
            }),
            Err(e) if e.aws_kind() == Some(AwsErrorKind::AlreadyExists) => {
                Ok(StartOutcome::AlreadyStarted)
            }
            Err(e) => Err(e),
        }
    }
}
