//! Typed errors shared by every function, and their mapping to the stable `errorType`
//! names that the state machine retries and catches by.

use crate::config::ConfigError;

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The stable `errorType` names a function can fail with. The ASL refers to these by name,
/// so renaming one is a breaking change (a test checks the ASL against this list).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorType {
    /// The event does not have the expected shape or values. Not retryable.
    InvalidInput,
    /// The function's environment configuration is invalid. Not retryable.
    ConfigurationError,
    /// A user, key or secret named in the input does not exist. Not retryable.
    NotFound,
    /// Live state no longer calls for this step (the plan changed). Not retryable.
    Blocked,
    /// Another change to the same user is in flight. Retryable.
    Conflict,
    /// AWS throttled a call. Retryable.
    Throttled,
    /// A network error, a 5xx, or an outcome that could not be confirmed. Retryable.
    Transient,
    /// The function's role may not do this. Not retryable.
    AccessDenied,
    /// AWS rejected a request for another reason. Not retryable.
    ServiceError,
    /// keyrotor cannot work in a member account: its role there is missing or refuses
    /// keyrotor, or the region is not enabled for the account. Not retryable: the account
    /// is reported, and an organization scan goes on with the others.
    AccountUnreachable,
    /// A bug or an unexpected response. Not retryable.
    Internal,
}

impl ErrorType {
    pub const ALL: [ErrorType; 11] = [
        ErrorType::InvalidInput,
        ErrorType::ConfigurationError,
        ErrorType::NotFound,
        ErrorType::Blocked,
        ErrorType::Conflict,
        ErrorType::Throttled,
        ErrorType::Transient,
        ErrorType::AccessDenied,
        ErrorType::ServiceError,
        ErrorType::AccountUnreachable,
        ErrorType::Internal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorType::InvalidInput => "InvalidInput",
            ErrorType::ConfigurationError => "ConfigurationError",
            ErrorType::NotFound => "NotFound",
            ErrorType::Blocked => "Blocked",
            ErrorType::Conflict => "Conflict",
            ErrorType::Throttled => "Throttled",
            ErrorType::Transient => "Transient",
            ErrorType::AccessDenied => "AccessDenied",
            ErrorType::ServiceError => "ServiceError",
            ErrorType::AccountUnreachable => "AccountUnreachable",
            ErrorType::Internal => "Internal",
        }
    }

    /// Whether repeating the same step later can succeed.
    pub fn is_retryable(self) -> bool {
        self.retry().is_some()
    }

    /// How the state machines retry a step that failed with this error, or `None` when
    /// repeating it cannot help and the execution takes its failure path. Every Task of
    /// both state machines carries exactly this policy (a test holds the ASL to it).
    pub fn retry(self) -> Option<Backoff> {
        match self {
            ErrorType::Throttled | ErrorType::Transient => Some(Backoff {
                first_interval_secs: 2,
                max_attempts: 5,
            }),
            // Another run for the same user finishes within seconds; wait a little longer.
            ErrorType::Conflict => Some(Backoff {
                first_interval_secs: 5,
                max_attempts: 3,
            }),
            ErrorType::InvalidInput
            | ErrorType::ConfigurationError
            | ErrorType::NotFound
            | ErrorType::Blocked
            | ErrorType::AccessDenied
            | ErrorType::ServiceError
            | ErrorType::AccountUnreachable
            | ErrorType::Internal => None,
        }
    }
}

/// A Step Functions retry rule's schedule: exponential backoff (rate 2, capped at 60 s)
/// with full jitter, starting at `first_interval_secs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Backoff {
    pub first_interval_secs: u32,
    pub max_attempts: u32,
}

impl Backoff {
    pub const RATE: u32 = 2;
    pub const MAX_DELAY_SECS: u32 = 60;
}

/// The Lambda service's own errors (the invocation, not the function, failed): always
/// worth repeating, and retried this way on every Task.
pub const LAMBDA_SERVICE_ERRORS: [&str; 4] = [
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
];
pub const LAMBDA_SERVICE_RETRY: Backoff = Backoff {
    first_interval_secs: 2,
    max_attempts: 6,
};

/// How an AWS call failed, as far as the caller needs to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AwsErrorKind {
    Throttled,
    Transient,
    AccessDenied,
    NotFound,
    LimitExceeded,
    AlreadyExists,
    Rejected,
}

/// Everything that can go wrong in a keyrotor function.
///
/// Messages carry user names, key IDs and AWS error codes, never a secret value. `Debug`
/// (which the Lambda runtime logs) shows the same, not the SDK error inside: that one can
/// hold a raw HTTP response, and the response of CreateAccessKey carries a secret.
#[derive(thiserror::Error)]
pub enum Error {
    #[error("invalid input: {0}")]
    InvalidInput(String),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("IAM user {0:?} does not exist")]
    UserNotFound(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Blocked(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Transient(String),
    #[error("{operation} failed ({code}): {message}")]
    Aws {
        operation: &'static str,
        kind: AwsErrorKind,
        code: String,
        message: String,
        #[source]
        source: BoxError,
    },
    #[error(
        "account {account} is unreachable: cannot assume {role_arn} ({reason}); is keyrotor's \
         member stack (the StackSet instance) deployed in that account and enabled region?"
    )]
    AccountUnreachable {
        account: String,
        role_arn: String,
        reason: String,
    },
    #[error("internal error: {0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl std::fmt::Debug for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}({self})", self.error_type().as_str())
    }
}

impl Error {
    pub fn error_type(&self) -> ErrorType {
        match self {
            Error::InvalidInput(_) => ErrorType::InvalidInput,
            Error::Config(_) => ErrorType::ConfigurationError,
            Error::UserNotFound(_) | Error::NotFound(_) => ErrorType::NotFound,
            Error::Blocked(_) => ErrorType::Blocked,
            Error::Conflict(_) => ErrorType::Conflict,
            Error::Transient(_) => ErrorType::Transient,
            Error::Aws { kind, .. } => match kind {
                AwsErrorKind::Throttled => ErrorType::Throttled,
                AwsErrorKind::Transient => ErrorType::Transient,
                AwsErrorKind::AccessDenied => ErrorType::AccessDenied,
                AwsErrorKind::NotFound => ErrorType::NotFound,
                AwsErrorKind::LimitExceeded | AwsErrorKind::AlreadyExists => ErrorType::Conflict,
                AwsErrorKind::Rejected => ErrorType::ServiceError,
            },
            Error::AccountUnreachable { .. } => ErrorType::AccountUnreachable,
            Error::Internal(_) => ErrorType::Internal,
        }
    }

    /// The AWS error kind, when this error came from an AWS call.
    pub fn aws_kind(&self) -> Option<AwsErrorKind> {
        match self {
            Error::Aws { kind, .. } => Some(*kind),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_types_are_exactly_conflict_throttled_and_transient() {
        let retryable: Vec<_> = ErrorType::ALL
            .iter()
            .filter(|t| t.is_retryable())
            .map(|t| t.as_str())
            .collect();
        assert_eq!(retryable, ["Conflict", "Throttled", "Transient"]);
    }

    #[test]
    fn debug_output_never_includes_the_raw_sdk_error() {
        let err = Error::Aws {
            operation: "iam:CreateAccessKey",
            kind: AwsErrorKind::Transient,
            code: "ResponseError".into(),
            message: "the response could not be read".into(),
            source: "body: {\"SecretAccessKey\": \"wJalrXUtnFEMI\"}".into(),
        };
        let shown = format!("{err:?}");
        assert!(!shown.contains("wJalrXUtnFEMI"), "{shown}");
        assert!(
            shown.starts_with("Transient(iam:CreateAccessKey failed"),
            "{shown}"
        );
    }
}
