//! Secrets Manager: keyrotor's own settings secrets, which an administrator keeps (the
//! GitHub token, the webhook signing key). Never a user's secret: those deny every reader
//! but their user, keyrotor's roles included.

use tracing::instrument;
use zeroize::Zeroizing;

use crate::error::sdk_error;
use keyrotor_core::error::{Error, Result};
use keyrotor_core::ports::SettingsPort;

#[derive(Clone, Debug)]
pub struct Settings {
    client: aws_sdk_secretsmanager::Client,
}

impl Settings {
    pub fn from_sdk(sdk: &aws_config::SdkConfig) -> Self {
        Settings {
            client: aws_sdk_secretsmanager::Client::new(sdk),
        }
    }
}

impl SettingsPort for Settings {
    #[instrument(skip(self))]
    async fn read(&self, secret_arn: &str) -> Result<Zeroizing<String>> {
        let out = self
            .client
            .get_secret_value()
            .secret_id(secret_arn)
            .send()
            .await
            .map_err(|e| sdk_error("secretsmanager:GetSecretValue", e))?;
        let value = out
            .secret_string()
            .map(|s| Zeroizing::new(s.trim().to_owned()))
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                Error::NotFound(format!("the settings secret {secret_arn} holds no text"))
            })?;
        Ok(value)
    }
}
