//! STS: proving that a new access key authenticates before anything depends on it.

use std::time::Duration;

use aws_credential_types::Credentials;
use aws_sdk_sts::config::Builder;
use tracing::{instrument, warn};

use crate::error::sdk_error;
use keyrotor_core::config::Config;
use keyrotor_core::error::{Error, ErrorType, Result};
use keyrotor_core::ports::VerifierPort;
use keyrotor_core::secret::NewAccessKey;

/// Checks new keys with GetCallerIdentity, retrying while IAM propagates the key.
#[derive(Clone, Debug)]
pub struct KeyVerifier {
    base: Builder,
    delays: Vec<Duration>,
}

impl KeyVerifier {
    /// `base` carries region and endpoint; credentials are replaced per check. Attempts back
    /// off (0.5 s, 1 s, 2 s, then 3-5 s) until `budget` is spent.
    pub fn new(base: Builder, budget: Duration) -> Self {
        let mut delays = Vec::new();
        let mut spent = Duration::ZERO;
        for ms in [500u64, 1000, 2000, 3000, 4000]
            .into_iter()
            .chain(std::iter::repeat(5000))
        {
            let delay = Duration::from_millis(ms);
            if spent + delay > budget {
                break;
            }
            spent += delay;
            delays.push(delay);
        }
        KeyVerifier { base, delays }
    }

    /// The verifier from the SDK configuration, trying for the configured time.
    pub fn from_sdk(sdk: &aws_config::SdkConfig, config: &Config) -> Self {
        KeyVerifier::new(
            Builder::from(sdk),
            Duration::from_secs(config.verify_timeout_secs),
        )
    }
}

impl VerifierPort for KeyVerifier {
    /// Succeeds once the key authenticates as `expected_arn`.
    #[instrument(skip(self, key), fields(key_id = %key.key_id))]
    async fn verify(&self, key: &NewAccessKey, expected_arn: &str) -> Result<()> {
        let credentials = Credentials::new(
            &key.key_id,
            key.secret.expose(),
            None,
            None,
            "keyrotor-new-key",
        );
        let client = aws_sdk_sts::Client::from_conf(
            self.base.clone().credentials_provider(credentials).build(),
        );
        let mut last = String::new();
        for (attempt, delay) in std::iter::once(Duration::ZERO)
            .chain(self.delays.iter().copied())
            .enumerate()
        {
            tokio::time::sleep(delay).await;
            match client.get_caller_identity().send().await {
                Ok(out) if out.arn() == Some(expected_arn) => return Ok(()),
                Ok(out) => {
                    last = format!(
                        "the key authenticates as {:?}, not {expected_arn}",
                        out.arn().unwrap_or("")
                    );
                }
                Err(e) => {
                    let err = sdk_error("sts:GetCallerIdentity", e);
                    match err.error_type() {
                        // Not yet propagated (InvalidClientTokenId), throttled or a blip.
                        ErrorType::AccessDenied | ErrorType::Throttled | ErrorType::Transient => {}
                        _ => return Err(err),
                    }
                    last = err.to_string();
                }
            }
            warn!(attempt, reason = %last, "new key does not authenticate yet");
        }
        Err(Error::Transient(format!(
            "new access key {} did not authenticate: {last}",
            key.key_id
        )))
    }
}
