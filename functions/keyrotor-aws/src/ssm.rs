//! SSM Parameter Store: the SecureString destinations of `deliver-key`
//! ([`keyrotor_core::ports::ParametersPort`]).

use aws_sdk_ssm::types::{ParameterStringFilter, ParameterType};
use tracing::instrument;

use crate::error::sdk_error;
use keyrotor_core::error::{Error, Result};
use keyrotor_core::ports::ParametersPort;

/// Writes SecureStrings under the KMS key the template names (`alias/aws/ssm` if none).
#[derive(Clone, Debug)]
pub struct Parameters {
    client: aws_sdk_ssm::Client,
    kms_key_id: Option<String>,
}

impl Parameters {
    pub fn from_sdk(sdk: &aws_config::SdkConfig, kms_key_id: Option<&str>) -> Self {
        Parameters {
            client: aws_sdk_ssm::Client::new(sdk),
            kms_key_id: kms_key_id.map(str::to_owned),
        }
    }
}

impl ParametersPort for Parameters {
    #[instrument(skip(self))]
    async fn description(&self, name: &str) -> Result<Option<String>> {
        let filter = ParameterStringFilter::builder()
            .key("Name")
            .option("Equals")
            .values(name)
            .build()
            .map_err(|e| Error::Internal(format!("ssm filter: {e}")))?;
        let out = self
            .client
            .describe_parameters()
            .parameter_filters(filter)
            .send()
            .await
            .map_err(|e| sdk_error("ssm:DescribeParameters", e))?;
        Ok(out
            .parameters()
            .iter()
            .find(|p| p.name() == Some(name))
            .map(|p| p.description().unwrap_or_default().to_owned()))
    }

    #[instrument(skip(self, value))]
    async fn put_secure(&self, name: &str, value: &str, description: &str) -> Result<()> {
        self.client
            .put_parameter()
            .name(name)
            .value(value)
            .r#type(ParameterType::SecureString)
            .set_key_id(self.kms_key_id.clone())
            .description(description)
            .overwrite(true)
            .send()
            .await
            .map_err(|e| sdk_error("ssm:PutParameter", e))?;
        Ok(())
    }
}
