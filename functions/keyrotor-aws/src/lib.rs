//! keyrotor's AWS adapters: the SDK clients behind the ports of [`keyrotor_core::ports`],
//! the translation of SDK errors into keyrotor's typed errors ([`error`]), and how a
//! function builds its dependencies from the SDK configuration at cold start
//! ([`FromConfig`]). Each adapter wraps one SDK client built once per cold start from the
//! standard SDK configuration (region, credentials, `AWS_ENDPOINT_URL`).

pub mod error;
pub mod events;
pub mod health;
pub mod iam;
pub mod kms;
pub mod member;
pub mod organizations;
pub mod secrets;
pub mod ses;
pub mod settings;
pub mod sfn;
pub mod ssm;
pub mod sts;

use aws_config::SdkConfig;
use chrono::{DateTime, Utc};
use keyrotor_core::config::{Config, ConfigError};

pub use error::sdk_error;
pub use events::EventBus;
pub use health::Health;
pub use iam::Iam;
pub use kms::Handoffs;
pub use member::Accounts;
pub use organizations::Organizations;
pub use secrets::Secrets;
pub use ses::Mailer;
pub use settings::Settings;
pub use sfn::Executions;
pub use ssm::Parameters;
pub use sts::KeyVerifier;

#[cfg(any(test, feature = "testing"))]
pub mod testing;

/// A function's dependencies: its configuration and only the SDK clients it uses, built
/// once per cold start and shared by every invocation. Building them checks the settings
/// the function cannot work without, so a misconfigured function stops at its cold start
/// with one clear line instead of failing every invocation.
pub trait FromConfig: Sized {
    /// Whether the function holds every member account it is asked to work in to the
    /// deployment's scope as the organization gives it now (see
    /// [`member::Accounts::checking_scope`]): the steps an execution starts with, and
    /// notify. The other steps run only after one of those in the same execution.
    const CHECKS_SCOPE: bool = false;

    fn from_config(config: Config, sdk: &SdkConfig) -> Result<Self, ConfigError>;

    /// The dependencies for a member account, given the function's own (`self`), the
    /// member account's configuration and an SDK configuration holding a session of the
    /// function's member role there. By default every client works in the member account;
    /// a function that also uses its own account's services (notify: SES, EventBridge)
    /// keeps those clients.
    fn in_member(&self, config: Config, member: &SdkConfig) -> Result<Self, ConfigError> {
        Self::from_config(config, member)
    }
}

/// The dependencies of a step that reads and changes a user's keys and secret, and nothing
/// else (assess-key-age, deactivate-key, delete-key): its settings, IAM and Secrets
/// Manager. Each of those functions names it as its `Deps`.
pub struct IamAndSecrets<U = Iam, S = Secrets> {
    pub config: Config,
    pub iam: U,
    pub secrets: S,
}

impl FromConfig for IamAndSecrets {
    fn from_config(config: Config, sdk: &SdkConfig) -> Result<Self, ConfigError> {
        Ok(IamAndSecrets {
            iam: Iam::from_sdk(sdk),
            secrets: Secrets::from_sdk(sdk, &config),
            config,
        })
    }
}

/// The dependencies of a step that starts executions of the per-user machine and does
/// nothing else (start-rotations, respond-to-exposure): its settings, the machine's ARN
/// (`KEYROTOR_STATE_MACHINE_ARN`, required, checked at the cold start) and Step Functions.
pub struct ExecutionStarter<E = Executions> {
    pub config: Config,
    pub state_machine_arn: String,
    pub executions: E,
}

impl<E> ExecutionStarter<E> {
    pub fn new(config: Config, executions: E) -> Result<Self, ConfigError> {
        Ok(ExecutionStarter {
            state_machine_arn: config.require_state_machine_arn()?.to_owned(),
            config,
            executions,
        })
    }
}

impl FromConfig for ExecutionStarter {
    fn from_config(config: Config, sdk: &SdkConfig) -> Result<Self, ConfigError> {
        ExecutionStarter::new(config, Executions::from_sdk(sdk))
    }
}

/// Converts an SDK timestamp; out-of-range values (which AWS never sends) become `None`.
pub fn to_utc(t: &aws_smithy_types::DateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}
