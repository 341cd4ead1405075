//! `assess-key-age`: runs the planner on live state.
//!
//! - Single mode (`{"user": ..., "force"?, "dryRun"?}`, the per-user execution input):
//!   the user's full plan.
//! - Batch mode (`{"users": [...], "dryRun"?}`, a page of the scan): counts per decision
//!   and only the users that need a per-user execution.

use std::collections::HashSet;

use futures_util::stream::{self, StreamExt, TryStreamExt};
use keyrotor_core::config::AssessStrategy;
use keyrotor_core::domain::credential_report::{keys_may_need_action, ReportKey};
use keyrotor_core::domain::{Decision, Plan};
use keyrotor_core::payload::{
    parse, ActionableUser, AssessBatchOutput, AssessInput, Assessment, DecisionCounts, UserName,
};
use keyrotor_core::state::load_user;
use keyrotor_core::{Env, Error, ErrorType, Result};
use serde::Serialize;

/// A credential report younger than this is reused rather than generated again.
pub const REPORT_MAX_AGE: chrono::Duration = chrono::Duration::hours(4);

/// Users assessed at once in batch mode: low, because IAM throttles.
pub const BATCH_CONCURRENCY: usize = 4;
/// Largest batch accepted (one ListUsers page).
pub const MAX_BATCH: usize = 1000;

/// The result in either mode.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum AssessOutput {
    Single(Assessment),
    Batch(AssessBatchOutput),
}

pub async fn handle(event: serde_json::Value, env: &Env) -> Result<AssessOutput> {
    let input: AssessInput = parse(event)?;
    let dry_run = input.dry_run || env.config.dry_run;
    match (input.user, input.users) {
        (Some(user), None) => Ok(AssessOutput::Single(
            assess_one(env, &user, input.force, dry_run).await?,
        )),
        (None, Some(users)) => {
            if input.force {
                return Err(Error::InvalidInput(
                    "force applies to a single user only".into(),
                ));
            }
            if users.len() > MAX_BATCH {
                return Err(Error::InvalidInput(format!(
                    "at most {MAX_BATCH} users per batch"
                )));
            }
            Ok(AssessOutput::Batch(assess_batch(env, &users).await?))
        }
        _ => Err(Error::InvalidInput(
            "give exactly one of user or users".into(),
        )),
    }
}

async fn assess_one(env: &Env, user: &UserName, force: bool, dry_run: bool) -> Result<Assessment> {
    let live = load_user(env, user.as_str(), None).await?;
    let plan = live.plan(env, force);
    tracing::info!(user = %user, action = plan.decision.name(), reason = %plan.reason, "assessed");
    Ok(Assessment {
        user: user.to_string(),
        plan,
        force,
        dry_run,
        assessed_at: chrono::Utc::now(),
    })
}

async fn assess_batch(env: &Env, users: &[UserName]) -> Result<AssessBatchOutput> {
    let members = match &env.config.exempt_group {
        Some(group) => Some(env.iam.group_members(group).await?),
        None => None,
    };
    let members: Option<&HashSet<String>> = members.as_ref();
    let now = chrono::Utc::now();
    // Users whose keys certainly need nothing are counted from their key ages alone: with
    // the credential report without a single call of their own, else with one
    // ListAccessKeys each. Only the rest get a full live look (tags, group, secret).
    let policy = &env.config.policy;
    let report = match env.config.assess_strategy {
        AssessStrategy::ListAccessKeys => None,
        AssessStrategy::CredentialReport => match env.iam.credential_report(REPORT_MAX_AGE).await {
            Ok(report) => Some(report),
            Err(e)
                if matches!(
                    e.error_type(),
                    ErrorType::AccessDenied | ErrorType::ServiceError
                ) =>
            {
                tracing::warn!(error = %e, "credential report unavailable; listing each user's keys");
                None
            }
            Err(e) => return Err(e),
        },
    };
    let look: Vec<bool> = match &report {
        Some(report) => users
            .iter()
            .map(|u| report.may_need_action(u.as_str(), policy, now))
            .collect(),
        None => {
            stream::iter(users)
                .map(|user| async move {
                    match env.iam.access_keys(user.as_str()).await {
                        Ok(keys) => {
                            let keys: Vec<ReportKey> = keys.iter().map(ReportKey::from).collect();
                            Ok(keys_may_need_action(&keys, policy, now))
                        }
                        // Gone since ListUsers: the live look says so.
                        Err(Error::UserNotFound(_)) => Ok(true),
                        Err(e) => Err(e),
                    }
                })
                .buffered(BATCH_CONCURRENCY)
                .try_collect()
                .await?
        }
    };
    let live: Vec<&UserName> = users
        .iter()
        .zip(&look)
        .filter_map(|(user, look)| look.then_some(user))
        .collect();
    let skipped = users.len() - live.len();
    let plans: Vec<(String, Option<Plan>)> = stream::iter(live)
        .map(|user| async move {
            match load_user(env, user.as_str(), members).await {
                Ok(live) => Ok((user.to_string(), Some(live.plan(env, false)))),
                // Deleted between ListUsers and now: nothing to do.
                Err(Error::UserNotFound(_)) => Ok((user.to_string(), None)),
                Err(e) => Err(e),
            }
        })
        .buffered(BATCH_CONCURRENCY)
        .try_collect()
        .await?;

    let mut counts = DecisionCounts {
        none: u32::try_from(skipped).unwrap_or(u32::MAX),
        ..DecisionCounts::default()
    };
    let mut actionable = Vec::new();
    for (user, plan) in &plans {
        let Some(plan) = plan else { continue };
        let needs_action = plan.decision.needs_action(now);
        match plan.decision {
            Decision::None => counts.none += 1,
            Decision::Exempt => counts.exempt += 1,
            Decision::Warn { .. } => counts.warn += 1,
            Decision::Rotate { .. } => counts.rotate += 1,
            Decision::Blocked { .. } => counts.blocked += 1,
            // Waiting for its deletion time: its own execution is on it.
            Decision::Finish { .. } if !needs_action => counts.none += 1,
            Decision::Finish { .. } => counts.finish += 1,
        }
        if needs_action {
            actionable.push(ActionableUser {
                user: user.clone(),
                action: plan.decision.name().to_owned(),
            });
        }
    }
    Ok(AssessBatchOutput {
        seen: u32::try_from(plans.len() + skipped).unwrap_or(u32::MAX),
        counts,
        actionable,
    })
}

#[cfg(test)]
mod tests {
    use keyrotor_core::testing::offline_env;
    use keyrotor_core::ErrorType;
    use serde_json::json;

    use super::*;

    #[tokio::test]
    async fn malformed_inputs_are_rejected_before_any_aws_call() {
        keyrotor_core::assert_rejected!(
            handle,
            [
                json!({}),
                json!(null),
                json!({"user": ""}),
                json!({"user": 42}),
                json!({"user": "a b"}),
                json!({"user": "x".repeat(65)}),
                json!({"user": "alice", "users": ["bob"]}),
                json!({"users": ["bob"], "force": true}),
                json!({"user": "alice", "force": "yes"}),
                json!({"user": "alice", "rotate": true}),
            ]
        );
    }

    #[tokio::test]
    async fn batches_over_one_page_are_rejected() {
        let users: Vec<String> = (0..=MAX_BATCH).map(|i| format!("u{i}")).collect();
        let err = handle(json!({ "users": users }), &offline_env())
            .await
            .expect_err("too many");
        assert_eq!(err.error_type(), ErrorType::InvalidInput);
    }
}
