//! `assess-key-age`: runs the planner on live state.
//!
//! - Single mode (`{"user": ..., "force"?, "reason"?, "dryRun"?}`, the per-user execution
//!   input): the user's full plan.
//! - Key mode (`{"accessKeyId": ..., "force": true, "reason"?, "exposure"?}`, a leak
//!   response): the key's owner, resolved with GetAccessKeyLastUsed before anything else,
//!   and the forced plan for exactly that key.
//! - Batch mode (`{"users": [...], "dryRun"?}`, a page of the scan): counts per decision
//!   and only the users that need a per-user execution.

use std::collections::{BTreeMap, HashSet};

use aws_config::SdkConfig;
use futures_util::stream::{self, StreamExt, TryStreamExt};
use keyrotor_aws::{FromConfig, Health, Iam, IamAndSecrets, Secrets};
use keyrotor_core::config::AssessStrategy;
use keyrotor_core::config::{Config, ConfigError};
use keyrotor_core::domain::credential_report::{keys_may_need_action, CredentialReport, ReportKey};
use keyrotor_core::domain::planner::depends_on_records;
use keyrotor_core::domain::retirement::needs_last_use;
use keyrotor_core::domain::{
    plan, plan_key, plan_reported_key, AccessKey, Decision, KeyStatus, LastUse, Plan, Policy,
    SecretState, UserState,
};
use keyrotor_core::exposure::{confirmation, Confirmation};
use keyrotor_core::metrics::{Emf, Metric};
use keyrotor_core::payload::{
    parse, ActionableUser, AssessBatchOutput, AssessInput, Assessment, Cause, DecisionCounts,
    KeyId, Text, UserName,
};
use keyrotor_core::ports::{HealthPort, SecretsPort, UsersPort};
use keyrotor_core::state::{deletion_record, load_user};
use keyrotor_core::{Error, ErrorType, Result};
use serde::Serialize;

/// A credential report younger than this is reused rather than generated again.
pub const REPORT_MAX_AGE: chrono::Duration = chrono::Duration::hours(4);

/// Users read at once in batch mode. Each due user costs one call, so under real latency
/// (tens of milliseconds per IAM call) a page's reads take round trips / this. IAM publishes
/// no request rate for its read actions and throttles per account, shared with every other
/// caller: 8 in flight (about 160 calls a second at 50 ms each, for the fraction of a second a
/// page needs) halves the round trips of 4 and stays modest. A throttled call is retried by
/// the SDK with backoff, and then the page by the state machine.
pub const BATCH_CONCURRENCY: usize = 8;
/// Largest batch accepted (one ListUsers page).
pub const MAX_BATCH: usize = 1000;

/// The result in either mode.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum AssessOutput {
    /// Boxed: an assessment (its cause) is several times the size of a batch's counts.
    Single(Box<Assessment>),
    Batch(AssessBatchOutput),
}

/// What `assess-key-age` needs: its settings, IAM, Secrets Manager and AWS Health (to
/// confirm an exposure report), nothing else. Built once per cold start from the SDK
/// configuration; tests build it around an in-memory account.
pub struct Deps<U = Iam, S = Secrets, H = Health> {
    pub config: Config,
    pub iam: U,
    pub secrets: S,
    pub health: H,
}

impl FromConfig for Deps {
    const CHECKS_SCOPE: bool = true;

    fn from_config(config: Config, sdk: &SdkConfig) -> std::result::Result<Self, ConfigError> {
        let IamAndSecrets {
            config,
            iam,
            secrets,
        } = IamAndSecrets::from_config(config, sdk)?;
        Ok(Deps {
            config,
            iam,
            secrets,
            health: Health::from_sdk(sdk),
        })
    }
}

/// Every AWS API action this function calls: its role grants exactly these (checked by
/// `tools/check_infra.py`), and a test holds the calls the code makes to them.
pub const AWS_ACTIONS: &[&str] = &[
    "iam:GenerateCredentialReport",
    "iam:GetAccessKeyLastUsed",
    "iam:GetCredentialReport",
    "iam:GetGroup",
    "iam:GetUser",
    "iam:ListAccessKeys",
    "iam:ListUserTags",
    "health:DescribeAffectedEntities",
    "health:DescribeEventDetails",
    "secretsmanager:DescribeSecret",
    "secretsmanager:GetResourcePolicy",
    "secretsmanager:ListSecrets",
];

pub async fn handle<U: UsersPort, S: SecretsPort, H: HealthPort>(
    event: serde_json::Value,
    deps: &Deps<U, S, H>,
) -> Result<AssessOutput> {
    let input: AssessInput = parse(event)?;
    let dry_run = input.dry_run || deps.config.dry_run;
    let cause = match (input.reason, input.exposure) {
        (None, None) => None,
        (reason, exposure) => Some(Cause {
            reason,
            exposure,
            confirmed: false,
            unconfirmed: None,
        }),
    };
    if !input.force && (cause.is_some() || input.access_key_id.is_some()) {
        return Err(Error::InvalidInput(
            "accessKeyId, reason and exposure belong to a forced rotation: add \"force\": true"
                .into(),
        ));
    }
    if let Some(exposure) = cause.as_ref().and_then(|c| c.exposure.as_ref()) {
        if input.access_key_id.as_ref() != Some(&exposure.access_key_id) {
            return Err(Error::InvalidInput(format!(
                "the exposure names {}: give it as accessKeyId",
                exposure.access_key_id
            )));
        }
    }
    let one = |target| Assessing {
        target,
        force: input.force,
        dry_run,
        cause: cause.clone(),
    };
    match (input.user, input.access_key_id, input.users) {
        (Some(user), None, None) => Ok(AssessOutput::Single(Box::new(
            assess_one(deps, one(Target::User(user))).await?,
        ))),
        (None, Some(key), None) => Ok(AssessOutput::Single(Box::new(
            assess_one(deps, one(Target::Key(key))).await?,
        ))),
        (None, None, Some(users)) => {
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
            let page = assess_batch(deps, &users).await?;
            if !dry_run {
                page_metrics(&page, chrono::Utc::now()).emit();
            }
            Ok(AssessOutput::Batch(page))
        }
        _ => Err(Error::InvalidInput(
            "give exactly one of user, accessKeyId or users".into(),
        )),
    }
}

/// Whose keys a single assessment is about.
enum Target {
    User(UserName),
    /// The user who owns this key, and only this key.
    Key(KeyId),
}

/// One single-mode request, checked.
struct Assessing {
    target: Target,
    force: bool,
    dry_run: bool,
    cause: Option<Cause>,
}

async fn assess_one<U: UsersPort, S: SecretsPort, H: HealthPort>(
    deps: &Deps<U, S, H>,
    mut request: Assessing,
) -> Result<Assessment> {
    let (live, plan) = match &request.target {
        Target::User(user) => {
            let live =
                load_user(&deps.iam, &deps.secrets, &deps.config, user.as_str(), None).await?;
            let plan = live.plan(&deps.config, request.force);
            (live, plan)
        }
        Target::Key(key) => {
            let not_ours = || {
                Error::NotFound(format!(
                    "{key} is not (or no longer) an access key of an IAM user in this account"
                ))
            };
            // The owner as IAM says, then that user's own key list must hold the key: a
            // name alone proves nothing (the emulator, for one, answers for any account).
            let Some(owner) = deps.iam.key_owner(key.as_str()).await? else {
                // Gone from IAM. If keyrotor deactivated it and then deleted it (a second
                // report of a key already replaced), its records say so: nothing to do.
                let Some(user) = deletion_record(&deps.secrets, &deps.config, key.as_str()).await?
                else {
                    return Err(not_ours());
                };
                let reason = format!(
                    "{key} was deactivated by keyrotor (recorded on the secret of {}) and is \
                     deleted: nothing to rotate",
                    user.name
                );
                tracing::info!(user = %user.name, key_id = %key, "a reported key keyrotor already deleted");
                return Ok(Assessment {
                    user: user.name,
                    plan: Plan {
                        decision: Decision::None,
                        reason,
                    },
                    force: request.force,
                    dry_run: request.dry_run,
                    assessed_at: chrono::Utc::now(),
                    cause: request.cause,
                });
            };
            let live = load_user(&deps.iam, &deps.secrets, &deps.config, &owner, None)
                .await
                .map_err(|e| match e {
                    Error::UserNotFound(_) => not_ours(),
                    e => e,
                })?;
            if live.state.key(key.as_str()).is_none() {
                return Err(not_ours());
            }
            let now = chrono::Utc::now();
            let policy = &deps.config.policy;
            let reported = request.cause.as_mut().and_then(|cause| {
                let exposure = cause.exposure.take()?;
                Some((cause, exposure))
            });
            let plan = match reported {
                // Asked before anything changes: the plan follows what AWS says of the
                // report, and only what AWS confirms is quoted from here on (M9).
                Some((cause, exposure)) => {
                    let answer = match exposure.health_event() {
                        Some(arn) => Some(deps.health.event(arn).await?),
                        None => None,
                    };
                    let confirmation = confirmation(&exposure, answer);
                    tracing::info!(key_id = %key, ?confirmation, "asked AWS about the report");
                    cause.confirmed = matches!(confirmation, Confirmation::Confirmed { .. });
                    cause.unconfirmed = match &confirmation {
                        Confirmation::Confirmed { .. } => None,
                        Confirmation::Unconfirmed(why) | Confirmation::Refuted(why) => {
                            Text::try_from(why.clone()).ok()
                        }
                    };
                    cause.exposure = Some(exposure.vetted(&confirmation));
                    plan_reported_key(&live.state, policy, now, key.as_str(), &confirmation)
                }
                // A responder naming the key by hand: a person's decision.
                None => plan_key(&live.state, policy, now, key.as_str()),
            };
            (live, plan)
        }
    };
    let user = live.state.user;
    tracing::info!(user = %user, action = plan.decision.name(), reason = %plan.reason, "assessed");
    Ok(Assessment {
        user,
        plan,
        force: request.force,
        dry_run: request.dry_run,
        assessed_at: chrono::Utc::now(),
        cause: request.cause,
    })
}

/// How closely the scan looks at a user whose key ages may need action (the others get
/// no call at all).
enum Look {
    /// One active key of known age: the plan needs only the user's tags (and the group,
    /// read once per page) and, once the key is old enough to be retired, its last use;
    /// never the secret or the key's ID. The last use comes with the credential report
    /// (`Some`), or is read for the key listed (`None`).
    Tags(Vec<AccessKey>, Option<BTreeMap<String, LastUse>>),
    /// Anything else: the user's whole live state, as a per-user execution reads it.
    Full,
}

async fn assess_batch<U: UsersPort, S: SecretsPort, H: HealthPort>(
    deps: &Deps<U, S, H>,
    users: &[UserName],
) -> Result<AssessBatchOutput> {
    let now = chrono::Utc::now();
    let policy = &deps.config.policy;
    // The exemption group and the key ages are read at once: two round trips become one.
    let (members, report) =
        futures_util::future::join(exemption_group(deps), key_ages_report(deps)).await;
    let members = members?;
    let members: Option<&HashSet<String>> = members.as_ref();
    let report = report?;
    // How closely to look at each user, from their key ages: read from the credential
    // report without a call of their own, else from one ListAccessKeys each. A user not in
    // the report, or gone since ListUsers, gets the whole live look (which says so).
    // The oldest active key, from the ages each user's look was chosen by (a user looked at
    // in full adds theirs from the live state below).
    let mut oldest = OldestKey(None);
    let looks: Vec<Option<Look>> = match &report {
        Some(report) => users
            .iter()
            .map(|user| match report.users.get(user.as_str()) {
                Some(ages) => {
                    oldest.add(ages.iter().map(|k| (k.active, k.created)), now);
                    look_for(ages, || from_report(ages), policy, now).map(|look| match look {
                        Look::Tags(keys, _) => Look::Tags(keys, Some(report_last_use(ages))),
                        full => full,
                    })
                }
                None => Some(Look::Full),
            })
            .collect(),
        None => {
            let listed: Vec<(Option<Look>, Vec<ReportKey>)> = stream::iter(users)
                .map(|user| async move {
                    match deps.iam.access_keys(user.as_str()).await {
                        Ok(keys) => {
                            let ages: Vec<ReportKey> = keys.iter().map(ReportKey::from).collect();
                            Ok((look_for(&ages, || keys, policy, now), ages))
                        }
                        Err(Error::UserNotFound(_)) => Ok((Some(Look::Full), Vec::new())),
                        Err(e) => Err(e),
                    }
                })
                .buffered(BATCH_CONCURRENCY)
                .try_collect()
                .await?;
            listed
                .into_iter()
                .map(|(look, ages)| {
                    oldest.add(ages.iter().map(|k| (k.active, k.created)), now);
                    look
                })
                .collect()
        }
    };
    let to_look: Vec<(&UserName, Look)> = users
        .iter()
        .zip(looks)
        .filter_map(|(user, look)| look.map(|look| (user, look)))
        .collect();
    let skipped = users.len() - to_look.len();
    let plans: Vec<(String, Option<Planned>)> = stream::iter(to_look)
        .map(|(user, look)| async move {
            let plan = match look {
                Look::Tags(keys, last_use) => {
                    match tags_and_last_use(deps, user, &keys, last_use, now).await {
                        Ok((tags, last_use)) => {
                            let state = UserState {
                                user: user.to_string(),
                                keys,
                                tags,
                                in_exempt_group: members.is_some_and(|m| m.contains(user.as_str())),
                                secret: SecretState::default(),
                                secret_problem: None,
                                last_use,
                            };
                            Some((plan(&state, policy, now, false), state.keys))
                        }
                        Err(e) => per_user_outcome(user, e)?.map(|p| (p, Vec::new())),
                    }
                }
                Look::Full => match load_user(
                    &deps.iam,
                    &deps.secrets,
                    &deps.config,
                    user.as_str(),
                    members,
                )
                .await
                {
                    Ok(live) => Some((live.plan(&deps.config, false), live.state.keys)),
                    Err(e) => per_user_outcome(user, e)?.map(|p| (p, Vec::new())),
                },
            };
            Ok::<_, Error>((user.to_string(), plan))
        })
        .buffered(BATCH_CONCURRENCY)
        .try_collect()
        .await?;

    let mut counts = DecisionCounts {
        none: u32::try_from(skipped).unwrap_or(u32::MAX),
        ..DecisionCounts::default()
    };
    let mut actionable = Vec::new();
    let mut non_compliant = 0u32;
    for (user, plan) in &plans {
        let Some((plan, keys)) = plan else { continue };
        // Not in the report: this user's ages were not counted above.
        if report.as_ref().is_some_and(|r| !r.users.contains_key(user)) {
            oldest.add(keys.iter().map(|k| (k.is_active(), k.created)), now);
        }
        let overdue = keys
            .iter()
            .filter(|k| plan.decision.counts_as_non_compliant(k, policy, now))
            .count();
        non_compliant += u32::try_from(overdue).unwrap_or(u32::MAX);
        let needs_action = plan.decision.needs_action(now);
        match plan.decision {
            Decision::None => counts.none += 1,
            Decision::Exempt => counts.exempt += 1,
            Decision::Warn { .. } => counts.warn += 1,
            Decision::Rotate { .. } => counts.rotate += 1,
            // A scan never plans one key (only a leak response does); counted as blocked
            // should it ever.
            Decision::Blocked { .. } | Decision::Contain { .. } => counts.blocked += 1,
            // Waiting for its deletion time: its own execution is on it.
            Decision::Finish { .. } if !needs_action => counts.none += 1,
            Decision::Finish { .. } => counts.finish += 1,
            // In or past its window: the execution watching it, or one the scan starts once
            // the window has ended, deactivates the old key.
            Decision::Cutover { .. } => counts.cutover += 1,
            // Retired and waiting for its deletion time: its own execution is on it.
            Decision::Retire { .. } if !needs_action => counts.none += 1,
            Decision::Retire { .. } => counts.retire += 1,
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
        non_compliant,
        oldest_key_age_days: oldest.0,
        actionable,
    })
}

/// A user's plan, with the keys it was made from (none if they could not be read).
type Planned = (Plan, Vec<AccessKey>);

/// The age in days of the oldest active key seen so far.
struct OldestKey(Option<i64>);

impl OldestKey {
    fn add(
        &mut self,
        keys: impl Iterator<Item = (bool, chrono::DateTime<chrono::Utc>)>,
        now: chrono::DateTime<chrono::Utc>,
    ) {
        for (active, created) in keys {
            if active {
                let age = (now - created).num_days();
                self.0 = Some(self.0.map_or(age, |oldest| oldest.max(age)));
            }
        }
    }
}

/// A page's figures as metrics: summed over a scan's pages, the scan's (the oldest key's
/// age by its maximum).
pub fn page_metrics(page: &AssessBatchOutput, at: chrono::DateTime<chrono::Utc>) -> Emf {
    let emf = Emf::new(at)
        .value(Metric::UsersSeen, f64::from(page.seen))
        // Due keys: to rotate, or (unused) to retire.
        .value(
            Metric::KeysDue,
            f64::from(page.counts.rotate.saturating_add(page.counts.retire)),
        )
        .value(Metric::Warned, f64::from(page.counts.warn))
        .value(Metric::Blocked, f64::from(page.counts.blocked))
        .value(Metric::Exempt, f64::from(page.counts.exempt))
        .value(Metric::NonCompliantKeys, f64::from(page.non_compliant));
    match page.oldest_key_age_days {
        Some(days) => emf.value(Metric::OldestKeyAgeDays, days as f64),
        None => emf,
    }
}

/// The members of the exemption group, if one is configured.
async fn exemption_group<U: UsersPort, S, H>(
    deps: &Deps<U, S, H>,
) -> Result<Option<HashSet<String>>> {
    match &deps.config.exempt_group {
        Some(group) => Ok(Some(deps.iam.group_members(group).await?)),
        None => Ok(None),
    }
}

/// The credential report, when the strategy reads key ages from it and IAM gives it; `None`
/// means one ListAccessKeys per user instead.
async fn key_ages_report<U: UsersPort, S, H>(
    deps: &Deps<U, S, H>,
) -> Result<Option<std::sync::Arc<CredentialReport>>> {
    if deps.config.assess_strategy == AssessStrategy::ListAccessKeys {
        return Ok(None);
    }
    match deps.iam.credential_report(REPORT_MAX_AGE).await {
        Ok(report) => Ok(Some(report)),
        Err(e)
            if matches!(
                e.error_type(),
                ErrorType::AccessDenied | ErrorType::ServiceError
            ) =>
        {
            tracing::warn!(error = %e, "credential report unavailable; listing each user's keys");
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// What a failure to read one user means for the page (invariant 13). A user deleted since
/// ListUsers needs nothing. A retryable error fails the page, which the state machine
/// retries. Anything else is that user's problem, not the scan's: the user is reported
/// blocked (a per-user execution then tells the admin), and the page goes on.
fn per_user_outcome(user: &UserName, error: Error) -> Result<Option<Plan>> {
    if let Error::UserNotFound(_) = error {
        return Ok(None);
    }
    if error.error_type().is_retryable() {
        return Err(error);
    }
    tracing::warn!(user = %user, error = %error, "user could not be assessed; reported blocked");
    Ok(Some(Plan {
        decision: Decision::Blocked { key_id: None },
        reason: format!("could not be assessed: {error}"),
    }))
}

/// How closely to look at a user with these key ages, if at all; `keys` gives them as the
/// planner takes them, made only for a user worth a look.
fn look_for(
    ages: &[ReportKey],
    keys: impl FnOnce() -> Vec<AccessKey>,
    policy: &Policy,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<Look> {
    if !keys_may_need_action(ages, policy, now) {
        return None;
    }
    let keys = keys();
    Some(if depends_on_records(&keys) {
        Look::Full
    } else {
        Look::Tags(keys, None)
    })
}

/// The tags of a user looked at by [`Look::Tags`], and the last use of their key where the
/// plan needs it and the credential report did not give it (one GetAccessKeyLastUsed).
async fn tags_and_last_use<U: UsersPort, S, H>(
    deps: &Deps<U, S, H>,
    user: &UserName,
    keys: &[AccessKey],
    reported: Option<BTreeMap<String, LastUse>>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(BTreeMap<String, String>, BTreeMap<String, LastUse>)> {
    let tags = deps.iam.user_tags(user.as_str()).await?;
    let last_use = match reported {
        Some(reported) => reported,
        None => match needs_last_use(keys, &deps.config.policy, now) {
            Some(key) => {
                let used = deps.iam.key_last_used(&key.id).await?;
                BTreeMap::from([(key.id.clone(), LastUse::from_date(used))])
            }
            None => BTreeMap::new(),
        },
    };
    Ok((tags, last_use))
}

/// The report's last use of each key, under the ID [`from_report`] gives the keys (a
/// [`Look::Tags`] user has one key).
fn report_last_use(keys: &[ReportKey]) -> BTreeMap<String, LastUse> {
    keys.iter()
        .filter_map(|k| k.last_used)
        .map(|used| (REPORT_KEY_ID.to_owned(), used))
        .collect()
}

/// The ID of a key known only from the credential report, which names none.
const REPORT_KEY_ID: &str = "(from the credential report)";

/// The report's keys as the planner takes them. The report names no key IDs; a plan made
/// from these is only ever used where the IDs cannot matter (see [`depends_on_records`]).
fn from_report(keys: &[ReportKey]) -> Vec<AccessKey> {
    keys.iter()
        .map(|k| AccessKey {
            id: REPORT_KEY_ID.into(),
            status: if k.active {
                KeyStatus::Active
            } else {
                KeyStatus::Inactive
            },
            created: k.created,
        })
        .collect()
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
                // A leak response by key ID is forced, names one key, and says only text.
                json!({"accessKeyId": "AKIAIOSFODNN7EXAMPLE"}),
                json!({"accessKeyId": "AKIAIOSFODNN7EXAMPLE", "force": false}),
                json!({"accessKeyId": "akia-not-a-key", "force": true}),
                json!({"accessKeyId": "AKIAIOSFODNN7EXAMPLE", "user": "alice", "force": true}),
                json!({"user": "alice", "reason": "leaked"}),
                json!({"user": "alice", "force": true, "reason": ""}),
                json!({"user": "alice", "force": true, "reason": "a\u{1b}[31m"}),
                json!({"user": "alice", "force": true, "reason": "x".repeat(501)}),
                json!({"user": "alice", "force": true, "exposure": {"accessKeyId": "AKIAIOSFODNN7EXAMPLE", "reporter": "awsHealth", "reportedAt": "2026-11-30T09:15:00Z"}}),
                json!({"accessKeyId": "AKIAIOSFODNN7EXAMPLE", "force": true, "exposure": {"accessKeyId": "AKIAI44QH8DHBEXAMPLE", "reporter": "awsHealth", "reportedAt": "2026-11-30T09:15:00Z"}}),
                json!({"accessKeyId": "AKIAIOSFODNN7EXAMPLE", "force": true, "exposure": {"accessKeyId": "AKIAIOSFODNN7EXAMPLE", "reporter": "someone", "reportedAt": "2026-11-30T09:15:00Z"}}),
            ]
        );
    }

    #[tokio::test]
    async fn batches_over_one_page_are_rejected() {
        let users: Vec<String> = (0..=MAX_BATCH).map(|i| format!("u{i}")).collect();
        let err = handle(json!({ "users": users }), &offline::<Deps>())
            .await
            .expect_err("too many");
        assert_eq!(err.error_type(), ErrorType::InvalidInput);
    }
}
