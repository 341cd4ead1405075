//! Reading one user's live state: keys, tags, exemption group, and keyrotor's secret.

use std::collections::HashSet;

use crate::aws::SecretDescription;
use crate::domain::{plan, Plan, UserState};
use crate::error::{Error, Result};
use crate::naming;
use crate::runtime::Env;

/// A user's live state and, if it exists, their secret.
#[derive(Debug, Clone)]
pub struct LiveUser {
    pub state: UserState,
    pub secret_name: String,
    pub secret: Option<SecretDescription>,
}

impl LiveUser {
    /// Runs the planner on this state now.
    pub fn plan(&self, env: &Env, force: bool) -> Plan {
        plan(&self.state, &env.config.policy, chrono::Utc::now(), force)
    }
}

/// Reads `user`'s live state. `exempt_members` is the exemption group's member list when
/// the caller already has it (a batch reads it once); otherwise it is read here if an
/// exemption group is configured.
pub async fn load_user(
    env: &Env,
    user: &str,
    exempt_members: Option<&HashSet<String>>,
) -> Result<LiveUser> {
    let keys = env.iam.access_keys(user).await?;
    let tags = env.iam.user_tags(user).await?;
    let in_exempt_group = match (&env.config.exempt_group, exempt_members) {
        (None, _) => false,
        (Some(_), Some(members)) => members.contains(user),
        (Some(group), None) => env.iam.group_members(group).await?.contains(user),
    };
    let secret_name = naming::secret_name(&env.config.secret_prefix, user);
    let secret = env.secrets.describe(&secret_name).await?;
    if let Some(owner) = secret.as_ref().and_then(|s| s.tags.get(naming::TAG_USER)) {
        if owner != user {
            return Err(Error::Blocked(format!(
                "secret {secret_name} is tagged for user {owner:?}, not {user:?}"
            )));
        }
    }
    let state = UserState {
        user: user.to_owned(),
        keys,
        tags,
        in_exempt_group,
        secret: secret.as_ref().map(|s| s.state.clone()).unwrap_or_default(),
    };
    Ok(LiveUser {
        state,
        secret_name,
        secret,
    })
}
