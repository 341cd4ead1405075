//! SDK errors as keyrotor's typed errors: each AWS error code or transport failure mapped
//! to the [`AwsErrorKind`] the functions act on (and through it to the stable `errorType`
//! the state machines retry or catch by).

use aws_sdk_iam::error::ProvideErrorMetadata;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use keyrotor_core::error::{AwsErrorKind, Error};

/// Classifies an SDK error from `operation` (e.g. `"iam:CreateAccessKey"`).
pub fn sdk_error<E>(operation: &'static str, err: SdkError<E, HttpResponse>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let (kind, code, message) = match &err {
        SdkError::ServiceError(ctx) => {
            let code = ctx.err().code().unwrap_or("Unknown").to_owned();
            let message = ctx.err().message().unwrap_or("").to_owned();
            let status = ctx.raw().status().as_u16();
            (classify(&code, status), code, message)
        }
        SdkError::TimeoutError(_) => (AwsErrorKind::Transient, "Timeout".into(), String::new()),
        SdkError::DispatchFailure(_) => (
            AwsErrorKind::Transient,
            "DispatchFailure".into(),
            "the request could not be sent or its response was lost".into(),
        ),
        SdkError::ResponseError(_) => (
            AwsErrorKind::Transient,
            "ResponseError".into(),
            "the response could not be read".into(),
        ),
        _ => (
            AwsErrorKind::Rejected,
            "ConstructionFailure".into(),
            String::new(),
        ),
    };
    Error::Aws {
        operation,
        kind,
        code,
        message,
        source: Box::new(err),
    }
}

fn classify(code: &str, status: u16) -> AwsErrorKind {
    match code {
        "Throttling"
        | "ThrottlingException"
        | "TooManyRequestsException"
        | "RequestLimitExceeded"
        | "SlowDown" => AwsErrorKind::Throttled,
        "NoSuchEntity"
        | "ResourceNotFoundException"
        | "ExecutionDoesNotExist"
        | "StateMachineDoesNotExist"
        | "AccountNotFoundException"
        | "ParentNotFoundException"
        | "ChildNotFoundException"
        | "TargetNotFoundException" => AwsErrorKind::NotFound,
        "LimitExceeded" | "LimitExceededException" => AwsErrorKind::LimitExceeded,
        "EntityAlreadyExists" | "ResourceExistsException" | "ExecutionAlreadyExists" => {
            AwsErrorKind::AlreadyExists
        }
        "AccessDenied"
        | "AccessDeniedException"
        | "AWSOrganizationsNotInUseException"
        | "UnauthorizedOperation"
        | "InvalidClientTokenId"
        | "SignatureDoesNotMatch" => AwsErrorKind::AccessDenied,
        "ServiceFailure"
        | "InternalFailure"
        | "InternalServiceError"
        | "InternalServiceErrorException"
        | "ServiceUnavailable"
        | "RequestTimeout" => AwsErrorKind::Transient,
        _ if status >= 500 => AwsErrorKind::Transient,
        _ => AwsErrorKind::Rejected,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_codes_map_to_throttled_and_5xx_to_transient() {
        assert_eq!(classify("Throttling", 400), AwsErrorKind::Throttled);
        assert_eq!(classify("SomethingNew", 503), AwsErrorKind::Transient);
        assert_eq!(classify("ValidationError", 400), AwsErrorKind::Rejected);
        assert_eq!(classify("NoSuchEntity", 404), AwsErrorKind::NotFound);
    }
}
