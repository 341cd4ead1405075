//! Adapters: the AWS calls keyrotor makes, translated into domain types and typed errors.
//! Each adapter wraps one SDK client built once per cold start from the standard SDK
//! configuration (region, credentials, `AWS_ENDPOINT_URL`).

pub mod iam;
pub mod secrets;
pub mod ses;
pub mod sfn;
pub mod sts;

use chrono::{DateTime, Utc};

pub use iam::Iam;
pub use secrets::{SecretDescription, Secrets};
pub use ses::{Email, Mailer};
pub use sfn::{Executions, StartOutcome};
pub use sts::KeyVerifier;

/// Converts an SDK timestamp; out-of-range values (which AWS never sends) become `None`.
pub fn to_utc(t: &aws_smithy_types::DateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}
