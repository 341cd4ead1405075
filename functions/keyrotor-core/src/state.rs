//! Reading one user's live state: identity, keys, tags, exemption group, and keyrotor's
//! secret with the verdict on whether it is keyrotor's own.

use std::collections::HashSet;

use crate::config::Config;
use crate::domain::retirement::needs_last_use;
use crate::domain::{plan, LastUse, Plan, UserState};
use crate::error::Result;
use crate::naming;
use crate::ownership::{self, Expected, Trust};
use crate::ports::{IamUser, SecretDescription, SecretsPort, UsersPort};

/// A user's live state and, if it exists, their secret.
#[derive(Debug, Clone)]
pub struct LiveUser {
    /// Who the user is, as IAM says: every later call and output uses this name.
    pub identity: IamUser,
    pub state: UserState,
    pub secret_name: String,
    pub secret: Option<SecretDescription>,
    /// Whether the secret is keyrotor's own and protected (`Empty` when there is none yet:
    /// nothing in it to distrust).
    pub trust: Trust,
}

impl LiveUser {
    /// Runs the planner on this state now.
    pub fn plan(&self, config: &Config, force: bool) -> Plan {
        plan(&self.state, &config.policy, chrono::Utc::now(), force)
    }

    /// What keyrotor expects of this user's secret.
    pub fn expected<'a>(&'a self, config: &'a Config) -> Expected<'a> {
        expected(config, &self.identity)
    }
}

fn expected<'a>(config: &'a Config, identity: &'a IamUser) -> Expected<'a> {
    Expected {
        user_id: &identity.id,
        user_arn: &identity.arn,
        kms_key_id: config.kms_key_id.as_deref(),
        trusted_role_arns: &config.trusted_role_arns,
    }
}

/// Reads `user`'s live state. The name may be spelled in any case (IAM user names are
/// case-insensitive); the state carries the name as IAM spells it. `exempt_members` is the
/// exemption group's member list when the caller already has it (a batch reads it once);
/// otherwise it is read here if an exemption group is configured.
pub async fn load_user(
    iam: &impl UsersPort,
    secrets: &impl SecretsPort,
    config: &Config,
    user: &str,
    exempt_members: Option<&HashSet<String>>,
) -> Result<LiveUser> {
    let identity = iam.user(user).await?;
    let user = identity.name.as_str();
    // The secret before the keys: keyrotor records a deactivation only after IAM applied
    // it, so a run racing another never reads the record together with a key that is
    // still active (which would look like an owner's rollback).
    let secret_name = naming::secret_name(&config.secret_prefix, &identity.id);
    let (secret, trust) = match read_secret(secrets, config, &identity, &secret_name).await? {
        Some((secret, trust)) => (Some(secret), trust),
        None => (None, Trust::Empty),
    };
    let keys = iam.access_keys(user).await?;
    let tags = iam.user_tags(user).await?;
    let in_exempt_group = match (&config.exempt_group, exempt_members) {
        (None, _) => false,
        (Some(_), Some(members)) => members.contains(user),
        (Some(group), None) => iam.group_members(group).await?.contains(user),
    };
    let secret_problem = match &trust {
        Trust::Untrusted(problem) => Some(problem.clone()),
        Trust::Protected | Trust::Outdated | Trust::Empty => None,
    };
    // Only the records of a secret under keyrotor's policy (its current one, or its
    // previous one) count: its current key, the deactivation it recorded. Anyone could have
    // written them into any other.
    // And only once keyrotor wrote a value there: anyone may create an empty secret with
    // keyrotor's key, tags and exact policy, but nobody else can encrypt a value with
    // keyrotor's key (issue 26, M3). A deactivation recorded in the future is not one.
    let records = match (&trust, &secret) {
        (Trust::Protected | Trust::Outdated, Some(s)) if s.version_count > 0 => {
            let mut records = s.state.clone();
            let latest = chrono::Utc::now() + chrono::Duration::minutes(5);
            records.deactivated = records.deactivated.filter(|d| d.at <= latest);
            records
        }
        _ => Default::default(),
    };
    // The one key whose last use can change the plan (an unused key is retired), if any.
    let mut last_use = std::collections::BTreeMap::new();
    if let Some(key) = needs_last_use(&keys, &config.policy, chrono::Utc::now()) {
        let used = iam.key_last_used(&key.id).await?;
        last_use.insert(key.id.clone(), LastUse::from_date(used));
    }
    let state = UserState {
        user: user.to_owned(),
        keys,
        tags,
        in_exempt_group,
        secret: records,
        secret_problem,
        last_use,
    };
    Ok(LiveUser {
        identity,
        state,
        secret_name,
        secret,
        trust,
    })
}

/// The user whose key `key_id` keyrotor deactivated, as keyrotor's own records say once IAM
/// no longer knows the key (it was deleted after its rotation or retirement): a secret
/// tagged with that deactivation, named after its user's unique ID, and keyrotor's own
/// under its policy (judged for the user that policy names). `None` when no such record
/// exists: then the key is not one keyrotor handled here.
pub async fn deletion_record(
    secrets: &impl SecretsPort,
    config: &Config,
    key_id: &str,
) -> Result<Option<IamUser>> {
    for name in secrets.tagged(naming::TAG_DEACTIVATED_KEY, key_id).await? {
        let Some(secret) = secrets.describe(&name).await? else {
            continue;
        };
        let Some(user_id) = secret.tags.get(naming::TAG_USER_ID) else {
            continue;
        };
        if name != naming::secret_name(&config.secret_prefix, user_id)
            || secret.state.deactivation_of(key_id).is_none()
            || secret.version_count == 0
        {
            continue;
        }
        let Some(policy) = secrets.policy(&secret.arn).await? else {
            continue;
        };
        let Some(user_arn) = ownership::owner_arn(&policy) else {
            continue;
        };
        let identity = IamUser {
            name: user_arn.rsplit('/').next().unwrap_or_default().to_owned(),
            id: user_id.clone(),
            arn: user_arn,
        };
        let ours = matches!(
            ownership::judge(&secret, Some(&policy), &expected(config, &identity)),
            Trust::Protected | Trust::Outdated
        );
        if ours && !config.trusted_role_arns.is_empty() {
            return Ok(Some(identity));
        }
    }
    Ok(None)
}

/// The user's secret, if it exists, and keyrotor's verdict on it.
pub async fn read_secret(
    secrets: &impl SecretsPort,
    config: &Config,
    identity: &IamUser,
    secret_name: &str,
) -> Result<Option<(SecretDescription, Trust)>> {
    let Some(secret) = secrets.describe(secret_name).await? else {
        return Ok(None);
    };
    let trust = if config.trusted_role_arns.is_empty() {
        Trust::Untrusted(format!(
            "keyrotor's own roles are not configured ({}), so no secret can be shown to be its own",
            crate::config::vars::TRUSTED_ROLE_ARNS
        ))
    } else {
        let policy = secrets.policy(&secret.arn).await?;
        ownership::judge(&secret, policy.as_deref(), &expected(config, identity))
    };
    Ok(Some((secret, trust)))
}
