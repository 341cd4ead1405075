//! Helpers for unit tests of the functions (feature `testing`): a function's dependencies whose clients
//! point at a closed loopback port, so any AWS call fails at once with `Transient`. A test
//! that expects `InvalidInput` from it therefore also proves no AWS call was needed.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_smithy_types::retry::RetryConfig;

use keyrotor_core::config::Config;

use crate::FromConfig;

/// An SDK configuration that reaches nothing (port 9 on loopback, no retries).
pub fn unreachable_sdk_config() -> SdkConfig {
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url("http://127.0.0.1:9")
        .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(
            Credentials::for_tests(),
        ))
        .retry_config(RetryConfig::disabled())
        .build()
}

/// The default configuration with a sender and an admin address.
pub fn test_config() -> Config {
    Config::from_lookup(|name| match name {
        "KEYROTOR_FROM_ADDRESS" => Some("keyrotor@example.com".into()),
        "KEYROTOR_ADMIN_ADDRESS" => Some("security@example.com".into()),
        "KEYROTOR_SCAN_STATE_MACHINE_ARN" => {
            Some("arn:aws:states:us-east-1:123456789012:stateMachine:keyrotor-scan".into())
        }
        "KEYROTOR_STATE_MACHINE_ARN" => {
            Some("arn:aws:states:us-east-1:123456789012:stateMachine:keyrotor".into())
        }
        _ => None,
    })
    .unwrap_or_else(|e| panic!("test configuration is valid: {e}"))
}

/// A function's dependencies with the test configuration and clients that reach nothing:
/// for tests that must fail before any AWS call.
pub fn offline<D: FromConfig>() -> D {
    D::from_config(test_config(), &unreachable_sdk_config())
        .unwrap_or_else(|e| panic!("test configuration is valid: {e}"))
}

/// Asserts that `handler` answers every event with `InvalidInput`, on [`offline`] dependencies: an
/// input that got as far as an AWS call would fail `Transient` instead.
#[macro_export]
macro_rules! assert_rejected {
    ($handler:path, [$($event:expr),* $(,)?]) => {{
        let deps = $crate::testing::offline();
        for event in [$($event),*] {
            match $handler(event.clone(), &deps).await {
                Ok(_) => panic!("{event} was accepted"),
                Err(err) => assert_eq!(
                    err.error_type(),
                    ::keyrotor_core::ErrorType::InvalidInput,
                    "{event}: {err}"
                ),
            }
        }
    }};
}
