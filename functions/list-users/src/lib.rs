//! `list-users`: one page of IAM user names for the scan, or exactly the users named in the
//! input (checked to exist).

use aws_config::SdkConfig;
use keyrotor_aws::FromConfig;
use keyrotor_aws::Iam;
use keyrotor_core::config::{Config, ConfigError};
use keyrotor_core::payload::{parse, ListUsersInput, ListUsersOutput};
use keyrotor_core::ports::UsersPort;
use keyrotor_core::{Error, Result};

/// Largest page ListUsers returns.
pub const MAX_PAGE_SIZE: u16 = 1000;

/// What `list-users` needs: its settings and IAM (the users), nothing else. Built once per
/// cold start from the SDK configuration; tests build it around an in-memory account.
pub struct Deps<U = Iam> {
    pub config: Config,
    pub iam: U,
}

impl FromConfig for Deps {
    const CHECKS_SCOPE: bool = true;

    fn from_config(config: Config, sdk: &SdkConfig) -> Result<Self, ConfigError> {
        Ok(Deps {
            iam: Iam::from_sdk(sdk),
            config,
        })
    }
}

/// Every AWS API action this function calls: its role grants exactly these (checked by
/// `tools/check_infra.py`), and a test holds the calls the code makes to them.
pub const AWS_ACTIONS: &[&str] = &["iam:GetUser", "iam:ListUsers"];

pub async fn handle<U: UsersPort>(
    event: serde_json::Value,
    deps: &Deps<U>,
) -> Result<ListUsersOutput> {
    let input: ListUsersInput = parse(event)?;
    let dry_run = input.dry_run || input.scan.is_some_and(|s| s.dry_run) || deps.config.dry_run;
    let page_size = input.page_size.unwrap_or(MAX_PAGE_SIZE);
    if !(1..=MAX_PAGE_SIZE).contains(&page_size) {
        return Err(Error::InvalidInput(format!(
            "pageSize must be between 1 and {MAX_PAGE_SIZE}"
        )));
    }
    if let Some(users) = input.users {
        if input.marker.is_some() {
            return Err(Error::InvalidInput(
                "give either users or marker, not both".into(),
            ));
        }
        if users.len() > usize::from(MAX_PAGE_SIZE) {
            return Err(Error::InvalidInput(format!(
                "at most {MAX_PAGE_SIZE} users at a time"
            )));
        }
        // As IAM spells them: names are case-insensitive.
        let mut canonical = Vec::with_capacity(users.len());
        for user in &users {
            canonical.push(deps.iam.user(user.as_str()).await?.name);
        }
        return Ok(ListUsersOutput {
            users: canonical,
            next_marker: None,
            dry_run,
            listed_at: chrono::Utc::now(),
        });
    }
    if input
        .marker
        .as_deref()
        .is_some_and(|m| m.is_empty() || m.len() > 320)
    {
        return Err(Error::InvalidInput("marker is empty or too long".into()));
    }
    let page = deps
        .iam
        .list_users_page(input.marker.as_deref(), i32::from(page_size))
        .await?;
    Ok(ListUsersOutput {
        users: page.users,
        next_marker: page.next_marker,
        dry_run,
        listed_at: chrono::Utc::now(),
    })
}

#[cfg(test)]
mod tests {
    use keyrotor_aws::testing::offline;
    use keyrotor_core::ErrorType;
    use serde_json::json;

    use super::*;

    #[tokio::test]
    async fn malformed_inputs_are_rejected_before_any_aws_call() {
        keyrotor_aws::assert_rejected!(
            handle,
            [
                json!([]),
                json!("alice"),
                json!({"marker": 7}),
                json!({"users": "alice"}),
                json!({"users": ["bad name!"]}),
                json!({"pageSize": 0}),
                json!({"pageSize": 1001}),
                json!({"users": ["alice"], "marker": "m"}),
                json!({"marker": ""}),
                json!({"unexpected": true}),
                json!({"scan": {"user": "alice"}}),
                json!({"scan": {"dryRun": "yes"}}),
            ]
        );
    }

    #[tokio::test]
    async fn aws_failures_surface_as_retryable_errors() {
        let err = handle(json!({}), &offline::<Deps>())
            .await
            .expect_err("no endpoint");
        assert_eq!(err.error_type(), ErrorType::Transient, "{err}");
    }
}
