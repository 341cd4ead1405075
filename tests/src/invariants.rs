//! The invariants of DESIGN.md, checked by reading the account back through the SDK. Used by
//! the fault, race and end-to-end tests after every scenario.

use std::collections::BTreeSet;

use anyhow::{bail, Context, Result};

use keyrotor_localstack::account::{Account, SeededKey};

/// What a user looked like before the scenario, and what it should end as.
#[derive(Debug, Clone)]
pub struct UserCase<'a> {
    pub user: &'a str,
    /// The keys the test created (with their secrets).
    pub seeded: &'a [SeededKey],
    pub secret_name: String,
    /// The rotation should have completed: the old key gone, one new key.
    pub expect_rotated: bool,
}

/// The user's state as checked, for reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    pub keys: usize,
    pub secret_versions: usize,
    pub current_key: Option<String>,
}

/// A user's keys and secret as read back after a scenario, from the emulator or the
/// in-process account.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Every key: ID and whether it is active.
    pub keys: Vec<(String, bool)>,
    /// The secret's AWSCURRENT value, if the secret exists: the key ID and user name it
    /// holds.
    pub stored: Option<(String, String)>,
    /// How many versions of the secret hold a value.
    pub versions: usize,
    /// The keys whose known secret (the stored one, the seeded ones) authenticates as the
    /// user now.
    pub authenticating: BTreeSet<String>,
}

/// Checks invariants 1-4 and 7 for one user:
/// - at most two keys;
/// - no orphan: every key is either one the test seeded or the secret's AWSCURRENT key;
/// - the secret, if any, names an existing active key of the user that authenticates as
///   the user (and holds exactly that key);
/// - the user still has a working key;
/// - one rotation stored exactly one version, and a completed rotation left only the new key.
pub fn judge(case: &UserCase<'_>, snapshot: &Snapshot) -> Result<Checked> {
    let user = case.user;
    let keys = &snapshot.keys;
    if keys.len() > 2 {
        bail!("{user}: {} keys", keys.len());
    }
    let seeded: BTreeSet<&str> = case.seeded.iter().map(|k| k.id.as_str()).collect();
    let mut current = None;
    if let Some((id, stored_user)) = &snapshot.stored {
        if stored_user != user {
            bail!("{user}: the secret names user {stored_user}");
        }
        if !keys.iter().any(|(k, active)| k == id && *active) {
            bail!(
                "{user}: the secret holds {id}, which is not an active key of the user ({keys:?})"
            );
        }
        if !snapshot.authenticating.contains(id) {
            bail!("{user}: the stored key {id} does not authenticate as the user");
        }
        current = Some(id.clone());
    }
    for (id, _) in keys {
        if !seeded.contains(id.as_str()) && current.as_deref() != Some(id.as_str()) {
            bail!("{user}: orphan key {id}: neither seeded nor in the secret");
        }
    }
    let working = current.is_some()
        || case
            .seeded
            .iter()
            .any(|k| snapshot.authenticating.contains(&k.id));
    if !working && !case.seeded.is_empty() {
        bail!("{user}: no working key left ({keys:?})");
    }
    let versions = if current.is_some() {
        snapshot.versions
    } else {
        0
    };
    if case.expect_rotated {
        if keys.len() != 1
            || current.is_none()
            || keys.iter().any(|(k, _)| seeded.contains(k.as_str()))
        {
            bail!("{user}: rotation not completed: keys {keys:?}, secret holds {current:?}");
        }
        if versions != 1 {
            bail!("{user}: {versions} secret versions for one rotation");
        }
    }
    Ok(Checked {
        keys: keys.len(),
        secret_versions: versions,
        current_key: current,
    })
}

/// Reads the user back from the emulator and [`judge`]s it.
pub async fn check_user(account: &Account, case: &UserCase<'_>) -> Result<Checked> {
    let user = case.user;
    let mut snapshot = Snapshot {
        keys: account
            .keys(user)
            .await?
            .into_iter()
            .map(|(id, status)| (id, status == "Active"))
            .collect(),
        ..Snapshot::default()
    };
    let authenticates = |arn: &str| arn.ends_with(&format!(":user/{user}"));
    if account.secret_exists(&case.secret_name).await {
        let stored = account
            .secret_value(&case.secret_name)
            .await
            .context("secret value")?;
        let id = stored["AccessKeyId"]
            .as_str()
            .context("AccessKeyId")?
            .to_owned();
        let secret = stored["SecretAccessKey"]
            .as_str()
            .context("SecretAccessKey")?;
        let active = snapshot.keys.iter().any(|(k, a)| *k == id && *a);
        if active && authenticates(&account.caller_arn(&id, secret).await?) {
            snapshot.authenticating.insert(id.clone());
        }
        let stored_user = stored["UserName"].as_str().unwrap_or_default().to_owned();
        snapshot.versions = account.secret_versions(&case.secret_name).await?.len();
        snapshot.stored = Some((id, stored_user));
    }
    for key in case.seeded {
        let active = snapshot.keys.iter().any(|(k, a)| *k == key.id && *a);
        if active && authenticates(&account.caller_arn(&key.id, &key.secret).await?) {
            snapshot.authenticating.insert(key.id.clone());
        }
    }
    judge(case, &snapshot)
}

/// Checks that none of `secrets` appears in any of `texts` (invariant 6); returns the
/// number of hits.
pub fn leak_hits(secrets: &[String], texts: &[&str]) -> usize {
    secrets
        .iter()
        .filter(|s| !s.is_empty())
        .map(|s| texts.iter().filter(|t| t.contains(s.as_str())).count())
        .sum()
}
