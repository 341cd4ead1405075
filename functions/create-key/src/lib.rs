//! `create-key`: the first half of a rotation. Creates the user's new access key, proves it
//! authenticates, and stores it as the AWSCURRENT value of the user's secret. The old key is
//! left Active (invariant 4: nobody loses a working key here).
//!
//! Order and compensation:
//! 1. re-plan on live state; recognise earlier work (the secret already names a newer key
//!    of the user) and return it instead of creating another key (invariant 7): the rules
//!    are [`keyrotor_core::domain::creation`]'s;
//! 2. delete an Inactive leftover if the plan says so (two-keys limit);
//! 3. CreateAccessKey, sent once; if its outcome is unknown, keys that appeared and that no
//!    secret names are deleted again (invariant 2);
//! 4. STS GetCallerIdentity with the new key, retried while IAM propagates it;
//! 5. secret: create if missing; a secret that is not provably keyrotor's own and
//!    protected is never written (invariant 10, see [`keyrotor_core::ownership`]); put the
//!    resource policy on a new or empty one and check it again; then the value under a
//!    version ID derived from the key ID (so a repeated write is a no-op);
//! 6. if 4 or 5 fail, the new key is deleted again, unless the secret turns out to hold it;
//! 7. if the user has destinations declared (`KEYROTOR_DESTINATIONS`), the new key is
//!    sealed under keyrotor's delivery key for `deliver-key` (the handoff, in the output):
//!    the user's secret lets nobody but the user read it, so this is the one moment a
//!    keyrotor role holds the key. A key found stored by an earlier attempt has no handoff.
//!
//! A retirement (`retire`: the key is unused and gets no replacement) makes no key: it only
//! makes the user's secret ready as the record of the deactivation that follows (created
//! if missing, protected, keyrotor's own), so that `delete-key` later finds the record.

use std::collections::HashSet;

use aws_config::SdkConfig;
use chrono::Utc;
use keyrotor_aws::FromConfig;
use keyrotor_aws::{Handoffs, Iam, KeyVerifier, Secrets};
use keyrotor_core::config::{Config, ConfigError};
use keyrotor_core::delivery::Handoff;
use keyrotor_core::domain::creation::{create_step, CreateStep, ORPHAN_WINDOW};
use keyrotor_core::domain::Decision;
use keyrotor_core::error::AwsErrorKind;
use keyrotor_core::ownership::{resource_policy, Trust};
use keyrotor_core::payload::{parse, CreateKeyInput, CreateKeyOutput};
use keyrotor_core::ports::SecretDescription;
use keyrotor_core::ports::{HandoffPort, SecretsPort, UsersPort, VerifierPort};
use keyrotor_core::secret::{NewAccessKey, StoredCredential};
use keyrotor_core::state::{load_user, read_secret, LiveUser};
use keyrotor_core::{Error, Result};
use tracing::{error, info, warn};

/// What `create-key` needs: its settings and IAM, Secrets Manager and STS, and KMS when
/// destinations are declared (to seal the handoff), nothing else. Built once per cold start
/// from the SDK configuration; tests build it around an in-memory account.
pub struct Deps<U = Iam, S = Secrets, V = KeyVerifier, H = Handoffs> {
    pub config: Config,
    pub iam: U,
    pub secrets: S,
    pub verifier: V,
    /// `None`: no destinations. Always keyrotor's own account's KMS, also in a member
    /// account: the delivery key is in keyrotor's account, and deliver-key opens there.
    pub handoffs: Option<H>,
}

impl FromConfig for Deps {
    fn from_config(config: Config, sdk: &SdkConfig) -> Result<Self, ConfigError> {
        let handoffs = match config.delivery.destinations.is_empty() {
            true => None,
            false => config
                .delivery
                .handoff_kms_key_id
                .as_deref()
                .map(|key| Handoffs::from_sdk(sdk, key)),
        };
        Ok(Deps {
            iam: Iam::from_sdk(sdk),
            secrets: Secrets::from_sdk(sdk, &config),
            verifier: KeyVerifier::from_sdk(sdk, &config),
            handoffs,
            config,
        })
    }

    fn in_member(&self, config: Config, member: &SdkConfig) -> Result<Self, ConfigError> {
        // The member's view of the document (`member_config`) says whose keys are sealed.
        let handoffs = match config.delivery.destinations.is_empty() {
            true => None,
            false => self.handoffs.clone(),
        };
        Ok(Deps {
            handoffs,
            ..Self::from_config(config, member)?
        })
    }
}

/// Every AWS API action this function calls: its role grants exactly these (checked by
/// `tools/check_infra.py`), and a test holds the calls the code makes to them.
pub const AWS_ACTIONS: &[&str] = &[
    "iam:CreateAccessKey",
    "iam:DeleteAccessKey",
    "iam:GetAccessKeyLastUsed",
    "iam:GetGroup",
    "iam:GetUser",
    "iam:ListAccessKeys",
    "iam:ListUserTags",
    "kms:Encrypt",
    "secretsmanager:CreateSecret",
    "secretsmanager:DescribeSecret",
    "secretsmanager:GetResourcePolicy",
    "secretsmanager:PutResourcePolicy",
    "secretsmanager:PutSecretValue",
    "secretsmanager:UntagResource",
    "sts:GetCallerIdentity",
];

pub async fn handle<U: UsersPort, S: SecretsPort, V: VerifierPort, H: HandoffPort>(
    event: serde_json::Value,
    deps: &Deps<U, S, V, H>,
) -> Result<CreateKeyOutput> {
    let input: CreateKeyInput = parse(event)?;
    let dry_run = input.dry_run || deps.config.dry_run;
    let old = input.old_key_id.as_str();
    if input.retire && input.force {
        return Err(Error::InvalidInput(
            "a forced rotation replaces the key: retire and force do not go together".into(),
        ));
    }
    if !dry_run {
        deps.config.require_trusted_roles()?;
    }

    let live = load_user(
        &deps.iam,
        &deps.secrets,
        &deps.config,
        input.user.as_str(),
        None,
    )
    .await?;
    let user = live.state.user.as_str();
    let output = |new_key_id: Option<String>,
                  secret_arn: Option<String>,
                  leftover: Option<String>,
                  resumed: bool| {
        CreateKeyOutput {
            user: user.to_owned(),
            old_key_id: old.to_owned(),
            new_key_id,
            secret_name: live.secret_name.clone(),
            secret_arn,
            deleted_leftover_key_id: leftover,
            resumed,
            retired: input.retire,
            handoff: None,
            dry_run,
        }
    };
    if input.retire {
        return prepare_retirement(deps, &live, old, dry_run)
            .await
            .map(|arn| output(None, arn, None, false));
    }

    if live.state.key(old).is_none() {
        // Gone. If it exists nowhere and the secret holds another active key of this user,
        // a concurrent run of this rotation has finished it (and deleted the old key).
        let current = live
            .state
            .secret
            .current_key_id
            .as_deref()
            .filter(|c| *c != old && live.state.key(c).is_some_and(|k| k.is_active()));
        if let Some(current) = current {
            if deps.iam.key_owner(old).await?.is_none() {
                info!(
                    user,
                    new_key_id = current,
                    "rotation already finished by another run"
                );
                let arn = live.secret.as_ref().map(|s| s.arn.clone());
                return Ok(output(Some(current.to_owned()), arn, None, true));
            }
        }
        return Err(Error::NotFound(format!(
            "access key {old} is not a key of user {user}"
        )));
    }

    let plan = live.plan(&deps.config, input.force);
    let delete_first = match create_step(&live.state, &plan, old, Utc::now()) {
        CreateStep::AlreadyStored { key_id } => {
            info!(user, new_key_id = %key_id, "new key already created and stored");
            let arn = live.secret.as_ref().map(|s| s.arn.clone());
            return Ok(output(Some(key_id), arn, None, true));
        }
        CreateStep::Conflict(reason) => return Err(Error::Conflict(reason)),
        CreateStep::Refuse(reason) => return Err(Error::Blocked(reason)),
        CreateStep::Create { delete_first } => delete_first,
    };
    if dry_run {
        info!(
            user,
            old_key_id = old,
            "dry run: would create and store a new key"
        );
        return Ok(output(None, None, delete_first.clone(), false));
    }

    if let Some(leftover) = &delete_first {
        deps.iam.delete_access_key(user, leftover).await?;
    }
    let user_arn = live.identity.arn.as_str();
    let before: HashSet<&str> = live
        .state
        .keys
        .iter()
        .map(|k| k.id.as_str())
        .filter(|id| Some(*id) != delete_first.as_deref())
        .collect();

    let started = Utc::now();
    let new_key = match deps.iam.create_access_key(user).await {
        Ok(key) => key,
        Err(err) => return Err(reconcile_failed_create(deps, &live, &before, started, err).await),
    };

    if let Err(err) = deps.verifier.verify(&new_key, user_arn).await {
        return Err(discard(deps, &new_key, err).await);
    }
    let secret_arn = match store(deps, &live, &new_key).await {
        Ok(arn) => arn,
        Err(err) => match secret_now(deps, &live).await {
            // The write landed and only its response was lost.
            Some(s) if s.state.current_key_id.as_deref() == Some(new_key.key_id.as_str()) => s.arn,
            _ => return Err(discard(deps, &new_key, err).await),
        },
    };
    info!(user, old_key_id = old, new_key_id = %new_key.key_id, "new key created, verified and stored");
    Ok(CreateKeyOutput {
        handoff: handoff(deps, &new_key).await,
        ..output(
            Some(new_key.key_id.clone()),
            Some(secret_arn),
            delete_first.clone(),
            false,
        )
    })
}

/// The new key sealed for `deliver-key`, if its user has destinations. Sealing never fails
/// the rotation: the key is stored, and without a handoff `deliver-key` reports every
/// destination as left to the owner.
async fn handoff<U, S, V, H: HandoffPort>(
    deps: &Deps<U, S, V, H>,
    key: &NewAccessKey,
) -> Option<Handoff> {
    let handoffs = deps.handoffs.as_ref()?;
    if deps.config.delivery.destinations.of(&key.user).is_empty() {
        return None;
    }
    match handoffs.seal(key).await {
        Ok(sealed) => Some(Handoff {
            sealed,
            sealed_at: Utc::now(),
        }),
        Err(err) => {
            warn!(user = %key.user, key_id = %key.key_id, %err, "the new key could not be sealed for delivery");
            None
        }
    }
}

/// Makes the user's secret ready for the record of retiring `old`, if the plan on live
/// state still retires it (or finishes its retirement): its ARN (`None` in a dry run
/// before the secret exists, or when the key is gone: nothing is left to record).
async fn prepare_retirement<U: UsersPort, S: SecretsPort, V, H>(
    deps: &Deps<U, S, V, H>,
    live: &LiveUser,
    old: &str,
    dry_run: bool,
) -> Result<Option<String>> {
    let existing = live.secret.as_ref().map(|s| s.arn.clone());
    if live.state.key(old).is_none() {
        info!(user = %live.state.user, key_id = old, "retired key already gone");
        return Ok(existing);
    }
    let plan = live.plan(&deps.config, false);
    match &plan.decision {
        Decision::Retire { key_id, .. } if key_id == old => {}
        other => {
            return Err(Error::Blocked(format!(
                "live state no longer calls for retiring {old} ({}: {})",
                other.name(),
                plan.reason
            )))
        }
    }
    if dry_run {
        info!(user = %live.state.user, key_id = old, "dry run: would retire the unused key");
        return Ok(existing);
    }
    let arn = protected_secret(deps, live).await?;
    // A secret with no value yet gets the retirement's record as its value: only keyrotor
    // can write one under its key, so its records then count (issue 26, M3).
    let empty = live.secret.as_ref().is_none_or(|s| s.version_count == 0);
    if empty {
        let record = keyrotor_core::secret::retirement_record(old, &live.state.user);
        deps.secrets.put_key(&arn, old, &record).await?;
    }
    info!(user = %live.state.user, key_id = old, "secret ready to record the retirement");
    Ok(Some(arn))
}

/// Writes the new key into the user's secret, creating it if needed, and only once the
/// secret is provably keyrotor's own and protected.
async fn store<U, S: SecretsPort, V, H>(
    deps: &Deps<U, S, V, H>,
    live: &LiveUser,
    key: &NewAccessKey,
) -> Result<String> {
    let arn = protected_secret(deps, live).await?;
    let value = StoredCredential {
        key,
        rotated_at: Utc::now(),
    }
    .to_secret_string();
    deps.secrets.put_key(&arn, &key.key_id, &value).await?;
    Ok(arn)
}

/// The user's secret, created if missing, once it is provably keyrotor's own and protected
/// (a new or empty one gets keyrotor's resource policy first, and is checked again).
async fn protected_secret<U, S: SecretsPort, V, H>(
    deps: &Deps<U, S, V, H>,
    live: &LiveUser,
) -> Result<String> {
    let (arn, trust) = match (&live.secret, &live.trust) {
        (Some(secret), trust) => (secret.arn.clone(), trust.clone()),
        (None, _) => match deps
            .secrets
            .create(&live.secret_name, &live.state.user, &live.identity.id)
            .await
        {
            Ok(arn) => (arn, Trust::Empty),
            // Created meanwhile: by a concurrent run, a lost response, or someone else.
            Err(e) if e.aws_kind() == Some(AwsErrorKind::AlreadyExists) => {
                match read_user_secret(deps, live).await? {
                    Some((secret, trust)) => (secret.arn, trust),
                    None => {
                        return Err(Error::Transient(format!(
                            "secret {} vanished",
                            live.secret_name
                        )))
                    }
                }
            }
            Err(e) => return Err(e),
        },
    };
    match trust {
        Trust::Protected => {}
        Trust::Untrusted(problem) => return Err(Error::Blocked(problem)),
        // New, empty, or under keyrotor's previous policy (which let keyrotor's roles
        // rewrite it): the locked policy goes on before any value.
        Trust::Empty | Trust::Outdated => {
            let policy = resource_policy(&arn, &live.expected(&deps.config));
            deps.secrets.put_policy(&arn, &policy).await?;
            // Whatever happened before the policy landed, the secret must now be keyrotor's
            // and protected, or it gets no key.
            match read_user_secret(deps, live).await? {
                Some((secret, Trust::Protected)) if secret.arn == arn => {}
                Some((_, Trust::Untrusted(problem))) => return Err(Error::Blocked(problem)),
                _ => {
                    return Err(Error::Blocked(format!(
                        "secret {} is not protected by keyrotor's policy after writing it",
                        live.secret_name
                    )))
                }
            }
        }
    }
    // No value yet: keyrotor adopts the secret, and whatever records its maker tagged it
    // with go (issue 26, M3). Once keyrotor's value is there, only keyrotor writes them.
    if live.secret.as_ref().is_none_or(|s| s.version_count == 0) {
        deps.secrets.clear_records(&arn).await?;
    }
    Ok(arn)
}

/// The user's secret as it is now, and keyrotor's verdict on it.
async fn read_user_secret<U, S: SecretsPort, V, H>(
    deps: &Deps<U, S, V, H>,
    live: &LiveUser,
) -> Result<Option<(SecretDescription, Trust)>> {
    read_secret(
        &deps.secrets,
        &deps.config,
        &live.identity,
        &live.secret_name,
    )
    .await
}

/// The secret as it is now, if it can be read and is keyrotor's own and protected: after a
/// failed or unconfirmed call, what landed is what counts, and only such a secret's current
/// key counts as stored (anyone may name a version after a key in a secret of theirs).
async fn secret_now<U, S: SecretsPort, V, H>(
    deps: &Deps<U, S, V, H>,
    live: &LiveUser,
) -> Option<SecretDescription> {
    match read_user_secret(deps, live).await {
        Ok(Some((secret, Trust::Protected))) => Some(secret),
        _ => None,
    }
}

/// Deletes a new key that could not be verified or stored, and returns the error to report.
async fn discard<U: UsersPort, S, V, H>(
    deps: &Deps<U, S, V, H>,
    key: &NewAccessKey,
    cause: Error,
) -> Error {
    warn!(user = %key.user, key_id = %key.key_id, error = %cause, "deleting the new key again");
    match deps.iam.delete_access_key(&key.user, &key.key_id).await {
        Ok(_) => cause,
        Err(delete_err) => {
            error!(user = %key.user, key_id = %key.key_id, error = %delete_err, "could not delete the new key: it is an orphan");
            Error::Transient(format!(
                "{cause}; deleting the new key {} failed too ({delete_err}), it will be removed on the next attempt",
                key.key_id
            ))
        }
    }
}

/// After CreateAccessKey failed: if the call may have created a key whose secret we never
/// saw, delete it, so that no orphan key survives (invariant 2).
async fn reconcile_failed_create<U: UsersPort, S: SecretsPort, V, H>(
    deps: &Deps<U, S, V, H>,
    live: &LiveUser,
    before: &HashSet<&str>,
    started: chrono::DateTime<Utc>,
    err: Error,
) -> Error {
    let user = live.state.user.as_str();
    match err.aws_kind() {
        Some(AwsErrorKind::LimitExceeded) => {
            return Error::Conflict(format!(
                "user {user} already has two access keys: another rotation is in progress"
            ));
        }
        Some(AwsErrorKind::Transient) | None => {}
        // Refused outright (throttled, denied, ...): nothing was created.
        Some(_) => return err,
    }
    let keys = match deps.iam.access_keys(user).await {
        Ok(keys) => keys,
        Err(list_err) => {
            return Error::Transient(format!(
                "{err}; listing keys to reconcile failed: {list_err}"
            ));
        }
    };
    let stored = secret_now(deps, live)
        .await
        .and_then(|s| s.state.current_key_id);
    let mut removed = Vec::new();
    for key in keys {
        let appeared = !before.contains(key.id.as_str()) && key.created >= started - ORPHAN_WINDOW;
        if appeared && stored.as_deref() != Some(key.id.as_str()) {
            match deps.iam.delete_access_key(user, &key.id).await {
                Ok(_) => removed.push(key.id),
                Err(e) => error!(user, key_id = %key.id, error = %e, "could not delete orphan key"),
            }
        }
    }
    if !removed.is_empty() {
        warn!(user, removed = ?removed, "deleted keys left by a CreateAccessKey whose response was lost");
    }
    Error::Transient(format!(
        "{err}; keys whose secret was never received and were deleted again: {}",
        if removed.is_empty() {
            "none".to_owned()
        } else {
            removed.join(", ")
        }
    ))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[tokio::test]
    async fn malformed_inputs_are_rejected_before_any_aws_call() {
        keyrotor_aws::assert_rejected!(
            handle,
            [
                json!({}),
                json!({"user": "alice"}),
                json!({"oldKeyId": "AKIAIOSFODNN7EXAMPLE"}),
                json!({"user": "alice", "oldKeyId": "not-a-key"}),
                json!({"user": "alice", "oldKeyId": "akiaiosfodnn7example"}),
                json!({"user": "al ice", "oldKeyId": "AKIAIOSFODNN7EXAMPLE"}),
                json!({"user": "alice", "oldKeyId": "AKIAIOSFODNN7EXAMPLE", "dryRun": "no"}),
                json!({"user": "alice", "oldKeyId": "AKIAIOSFODNN7EXAMPLE", "secret": "x"}),
                json!({"user": "alice", "oldKeyId": "AKIAIOSFODNN7EXAMPLE", "retire": true, "force": true}),
                json!({"user": "alice", "oldKeyId": "AKIAIOSFODNN7EXAMPLE", "retire": "yes"}),
                json!([1, 2, 3]),
            ]
        );
    }
}
