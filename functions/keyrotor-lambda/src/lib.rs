//! What every function's `main` shares: logging, the cold start (configuration, then the
//! function's own dependencies, built once), and the Lambda runtime loop, which reports a
//! function's error with its stable `errorType`. Only the function binaries link this crate
//! (and `lambda_runtime`); the CLI and the tests do not.

use std::future::Future;
use std::sync::Arc;

use aws_config::BehaviorVersion;
use lambda_runtime::{service_fn, LambdaEvent};
use serde::Serialize;
use tracing_subscriber::EnvFilter;

use keyrotor_aws::member::{take_account, with_account};
use keyrotor_aws::{Accounts, FromConfig};
use keyrotor_core::config::Config;
use keyrotor_core::error::Error;
use lambda_runtime::Diagnostic;

/// Logs as text, or as JSON when `AWS_LAMBDA_LOG_FORMAT=JSON`, at `AWS_LAMBDA_LOG_LEVEL`
/// (or `RUST_LOG`, default `info`). The SDK's wire-level logging is capped at `warn`
/// whatever the level, because at `trace` it prints response bodies, and the body of
/// CreateAccessKey holds a secret.
pub fn init_logging() {
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info".into())
        .to_ascii_lowercase();
    let mut filter = EnvFilter::builder().parse_lossy(level);
    for quiet in [
        "aws_smithy_runtime",
        "aws_smithy_runtime_api",
        "aws_smithy_http",
        "aws_smithy_http_client",
        "aws_sdk_iam",
        "aws_sdk_secretsmanager",
        "aws_sdk_sts",
        "hyper",
        "hyper_util",
        "rustls",
    ] {
        if let Ok(directive) = format!("{quiet}=warn").parse() {
            filter = filter.add_directive(directive);
        }
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_target(false)
        .without_time();
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    // A second initialisation (tests) keeps the first subscriber.
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// The variables the Lambda service sets and `lambda_runtime` expects (it panics without
/// them).
const SET_BY_LAMBDA: [&str; 4] = [
    "AWS_LAMBDA_RUNTIME_API",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
];

/// What is wrong when a function binary is started outside Lambda, if anything.
fn outside_lambda(var: impl Fn(&str) -> Option<String>) -> Option<String> {
    if let Some(missing) = SET_BY_LAMBDA.iter().find(|name| var(name).is_none()) {
        return Some(format!(
            "{missing} is not set: this is a Lambda function; run it in AWS Lambda or under \
             `cargo lambda watch`"
        ));
    }
    let memory = var("AWS_LAMBDA_FUNCTION_MEMORY_SIZE").unwrap_or_default();
    memory
        .parse::<i32>()
        .is_err()
        .then(|| format!("AWS_LAMBDA_FUNCTION_MEMORY_SIZE is not a number of MB: {memory:?}"))
}

/// The cold start every function shares: logging, the metrics sink, the Lambda environment,
/// the configuration and the SDK's. Invalid configuration stops it with one clear line.
async fn cold_start() -> Result<(Config, aws_config::SdkConfig), lambda_runtime::Error> {
    init_logging();
    keyrotor_core::metrics::write_to_stdout();
    if let Some(problem) = outside_lambda(|name| std::env::var(name).ok()) {
        // lambda_runtime would panic on it; say it in one line instead.
        tracing::error!("{problem}");
        return Err(problem.into());
    }
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(err) => {
            tracing::error!(variable = err.var, "{err}");
            return Err(err.into());
        }
    };
    Ok((
        config,
        aws_config::load_defaults(BehaviorVersion::latest()).await,
    ))
}

/// Runs a function that works in keyrotor's own account only (or in none): logging,
/// configuration, its dependencies, then the invocation loop.
pub async fn serve<D, F, Fut, O>(handler: F) -> Result<(), lambda_runtime::Error>
where
    D: FromConfig,
    F: Fn(serde_json::Value, Arc<D>) -> Fut,
    Fut: Future<Output = Result<O, Error>>,
    O: Serialize,
{
    let (config, sdk) = cold_start().await?;
    let deps = match D::from_config(config, &sdk) {
        Ok(deps) => Arc::new(deps),
        Err(err) => {
            tracing::error!(variable = err.var, "{err}");
            return Err(err.into());
        }
    };
    let handler = &handler;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let deps = Arc::clone(&deps);
        // Boxed: handler futures nest deeply (SDK calls inside retries inside steps).
        async move {
            Box::pin(handler(event.payload, deps))
                .await
                .map_err(diagnostic)
        }
    }))
    .await
}

/// Runs a function that reads or changes an account: like [`serve`], but each event may
/// name a member account (`"account": {"id": …}`). The function then works there through
/// its member role `role/keyrotor/<function>` (see [`Accounts`]), and its output carries
/// the same `account` on, so the next step works in the same account. Without one (or with
/// `null`) it works in its own account, as in the `self` mode. The handler never sees the
/// `account` field.
pub async fn serve_in_account<D, F, Fut, O>(
    function: &'static str,
    handler: F,
) -> Result<(), lambda_runtime::Error>
where
    D: FromConfig,
    F: Fn(serde_json::Value, Arc<D>) -> Fut,
    Fut: Future<Output = Result<O, Error>>,
    O: Serialize,
{
    let handler = &handler;
    serve_with_accounts(
        function,
        move |event, accounts: Arc<Accounts<D>>| async move {
            let (account, payload) = take_account(event)?;
            let deps = accounts.deps(account.as_ref().map(|a| &a.id)).await?;
            let output = handler(payload, deps).await?;
            with_account(output, account)
        },
    )
    .await
}

/// Runs a function that chooses for itself, per event, in which account to work (notify:
/// an admin's notice about a member account needs nothing from that account, not even a
/// role that may be missing): its handler gets the dependencies of every account.
pub async fn serve_with_accounts<D, F, Fut, O>(
    function: &'static str,
    handler: F,
) -> Result<(), lambda_runtime::Error>
where
    D: FromConfig,
    F: Fn(serde_json::Value, Arc<Accounts<D>>) -> Fut,
    Fut: Future<Output = Result<O, Error>>,
    O: Serialize,
{
    let (config, sdk) = cold_start().await?;
    let accounts = match Accounts::<D>::new(config, &sdk, function) {
        Ok(accounts) => Arc::new(accounts),
        Err(err) => {
            tracing::error!("{err}");
            return Err(err.into());
        }
    };
    let handler = &handler;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let accounts = Arc::clone(&accounts);
        async move {
            Box::pin(handler(event.payload, accounts))
                .await
                .map_err(diagnostic)
        }
    }))
    .await
}

/// A function's error as the Lambda service reports it: the stable `errorType` the state
/// machines retry or catch by, and the message (names and key IDs, never a secret).
pub fn diagnostic(err: Error) -> Diagnostic {
    Diagnostic {
        error_type: err.error_type().as_str().to_owned(),
        error_message: err.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::{diagnostic, outside_lambda, Error, SET_BY_LAMBDA};

    #[test]
    fn diagnostic_carries_stable_type_and_message() {
        let d = diagnostic(Error::InvalidInput("missing field `user`".into()));
        assert_eq!(d.error_type, "InvalidInput");
        assert_eq!(d.error_message, "invalid input: missing field `user`");
    }

    fn lambda_env(name: &str) -> Option<String> {
        match name {
            "AWS_LAMBDA_RUNTIME_API" => Some("127.0.0.1:9001".into()),
            "AWS_LAMBDA_FUNCTION_NAME" => Some("keyrotor-list-users".into()),
            "AWS_LAMBDA_FUNCTION_VERSION" => Some("$LATEST".into()),
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE" => Some("128".into()),
            _ => None,
        }
    }

    #[test]
    fn inside_lambda_nothing_is_wrong() {
        assert_eq!(outside_lambda(lambda_env), None);
    }

    #[test]
    fn each_missing_lambda_variable_is_named() {
        for missing in SET_BY_LAMBDA {
            let problem =
                outside_lambda(|name| (name != missing).then(|| lambda_env(name)).flatten())
                    .expect("a missing variable is a problem");
            assert!(problem.starts_with(missing), "{problem}");
        }
    }

    #[test]
    fn a_memory_size_that_is_not_a_number_is_refused() {
        let problem = outside_lambda(|name| match name {
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE" => Some("lots".into()),
            other => lambda_env(other),
        })
        .expect("refused");
        assert!(problem.contains("\"lots\""), "{problem}");
    }
}
