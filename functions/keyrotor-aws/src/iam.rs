//! IAM: users, their tags and group membership, and their access keys.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

use aws_config::SdkConfig;
use aws_sdk_iam::types::StatusType;
use aws_sdk_iam::Client;
use aws_smithy_types::retry::RetryConfig;
use chrono::{DateTime, Utc};
use tracing::{info, instrument};

use crate::error::sdk_error;
use crate::to_utc;
use keyrotor_core::domain::credential_report::CredentialReport;
use keyrotor_core::domain::{AccessKey, KeyStatus};
use keyrotor_core::error::{AwsErrorKind, Error, Result};
use keyrotor_core::ports::UsersPort;
pub use keyrotor_core::ports::{IamUser, UserPage};
use keyrotor_core::secret::{NewAccessKey, SecretAccessKey};

/// The IAM calls keyrotor makes.
#[derive(Clone, Debug)]
pub struct Iam {
    client: Client,
    /// The last credential report read, with the time it was generated: a scan's pages
    /// come to one warm instance one after another, and each would otherwise download and
    /// parse the same report again.
    last_report: Arc<Mutex<Option<ReadReport>>>,
}

/// A credential report as read, with the time IAM generated it.
type ReadReport = (DateTime<Utc>, Arc<CredentialReport>);

fn user_missing(user: &str, err: Error) -> Error {
    match err.aws_kind() {
        Some(AwsErrorKind::NotFound) => Error::UserNotFound(user.to_owned()),
        _ => err,
    }
}

impl Iam {
    pub fn new(client: Client) -> Self {
        Iam {
            client,
            last_report: Arc::default(),
        }
    }

    /// The client from the SDK configuration.
    pub fn from_sdk(sdk: &SdkConfig) -> Self {
        Iam::new(Client::new(sdk))
    }

    fn cached_report(&self) -> Option<ReadReport> {
        self.last_report.lock().ok().and_then(|last| last.clone())
    }
}

impl UsersPort for Iam {
    /// One page of ListUsers (at most `max_items`, up to 1,000).
    #[instrument(skip(self))]
    async fn list_users_page(&self, marker: Option<&str>, max_items: i32) -> Result<UserPage> {
        let out = self
            .client
            .list_users()
            .set_marker(marker.map(str::to_owned))
            .max_items(max_items)
            .send()
            .await
            .map_err(|e| sdk_error("iam:ListUsers", e))?;
        let next_marker = if out.is_truncated() {
            let marker = out.marker().map(str::to_owned);
            if marker.is_none() {
                return Err(Error::Internal(
                    "ListUsers is truncated but has no marker".into(),
                ));
            }
            marker
        } else {
            None
        };
        Ok(UserPage {
            users: out
                .users()
                .iter()
                .map(|u| u.user_name().to_owned())
                .collect(),
            next_marker,
        })
    }

    /// The user's canonical name, ARN and unique ID (GetUser); `UserNotFound` if there is
    /// no such user.
    #[instrument(skip(self))]
    async fn user(&self, user: &str) -> Result<IamUser> {
        let out = self
            .client
            .get_user()
            .user_name(user)
            .send()
            .await
            .map_err(|e| user_missing(user, sdk_error("iam:GetUser", e)))?;
        let u = out
            .user()
            .ok_or_else(|| Error::Internal("GetUser returned no user".into()))?;
        Ok(IamUser {
            name: u.user_name().to_owned(),
            arn: u.arn().to_owned(),
            id: u.user_id().to_owned(),
        })
    }
    /// All of the user's access keys (ListAccessKeys, every page).
    #[instrument(skip(self))]
    async fn access_keys(&self, user: &str) -> Result<Vec<AccessKey>> {
        let mut keys = Vec::new();
        let mut marker = None;
        loop {
            let out = self
                .client
                .list_access_keys()
                .user_name(user)
                .set_marker(marker.take())
                .send()
                .await
                .map_err(|e| user_missing(user, sdk_error("iam:ListAccessKeys", e)))?;
            for meta in out.access_key_metadata() {
                let (Some(id), Some(created)) =
                    (meta.access_key_id(), meta.create_date().and_then(to_utc))
                else {
                    return Err(Error::Internal(
                        "ListAccessKeys returned a key without ID or date".into(),
                    ));
                };
                let status = match meta.status() {
                    Some(StatusType::Active) => KeyStatus::Active,
                    Some(StatusType::Inactive) => KeyStatus::Inactive,
                    other => {
                        return Err(Error::Internal(format!(
                            "access key {id} has status {other:?}"
                        )));
                    }
                };
                keys.push(AccessKey {
                    id: id.to_owned(),
                    status,
                    created,
                });
            }
            match (out.is_truncated(), out.marker()) {
                (true, Some(m)) => marker = Some(m.to_owned()),
                _ => return Ok(keys),
            }
        }
    }

    /// The user's tags (ListUserTags, every page).
    #[instrument(skip(self))]
    async fn user_tags(&self, user: &str) -> Result<BTreeMap<String, String>> {
        let mut tags = BTreeMap::new();
        let mut marker = None;
        loop {
            let out = self
                .client
                .list_user_tags()
                .user_name(user)
                .set_marker(marker.take())
                .send()
                .await
                .map_err(|e| user_missing(user, sdk_error("iam:ListUserTags", e)))?;
            for tag in out.tags() {
                tags.insert(tag.key().to_owned(), tag.value().to_owned());
            }
            match (out.is_truncated(), out.marker()) {
                (true, Some(m)) => marker = Some(m.to_owned()),
                _ => return Ok(tags),
            }
        }
    }

    /// The members of `group` (GetGroup, every page). A group that does not exist has no
    /// members: the exemption is then simply not in effect.
    #[instrument(skip(self))]
    async fn group_members(&self, group: &str) -> Result<HashSet<String>> {
        let mut members = HashSet::new();
        let mut marker = None;
        loop {
            let result = self
                .client
                .get_group()
                .group_name(group)
                .set_marker(marker.take())
                .send()
                .await
                .map_err(|e| sdk_error("iam:GetGroup", e));
            let out = match result {
                Ok(out) => out,
                Err(e) if e.aws_kind() == Some(AwsErrorKind::NotFound) => {
                    tracing::warn!(group, "exemption group does not exist");
                    return Ok(members);
                }
                Err(e) => return Err(e),
            };
            members.extend(out.users().iter().map(|u| u.user_name().to_owned()));
            match (out.is_truncated(), out.marker()) {
                (true, Some(m)) => marker = Some(m.to_owned()),
                _ => return Ok(members),
            }
        }
    }

    /// Creates an access key. CreateAccessKey is not idempotent: if the SDK retried it after
    /// a lost response, a second key would exist whose secret nobody saw. So it is sent
    /// exactly once, and the caller reconciles the user's keys when the outcome is unknown.
    #[instrument(skip(self))]
    async fn create_access_key(&self, user: &str) -> Result<NewAccessKey> {
        let out = self
            .client
            .create_access_key()
            .user_name(user)
            .customize()
            .config_override(
                aws_sdk_iam::config::Builder::default().retry_config(RetryConfig::disabled()),
            )
            .send()
            .await
            .map_err(|e| user_missing(user, sdk_error("iam:CreateAccessKey", e)))?;
        let key = out
            .access_key()
            .ok_or_else(|| Error::Internal("CreateAccessKey returned no key".into()))?;
        let new_key = NewAccessKey {
            user: key.user_name().to_owned(),
            key_id: key.access_key_id().to_owned(),
            secret: SecretAccessKey::new(key.secret_access_key().to_owned()),
        };
        info!(user, key_id = %new_key.key_id, "created access key");
        Ok(new_key)
    }

    /// Sets a key Active or Inactive (UpdateAccessKey; idempotent).
    #[instrument(skip(self))]
    async fn set_key_status(&self, user: &str, key_id: &str, status: KeyStatus) -> Result<()> {
        let sdk_status = match status {
            KeyStatus::Active => StatusType::Active,
            KeyStatus::Inactive => StatusType::Inactive,
        };
        self.client
            .update_access_key()
            .user_name(user)
            .access_key_id(key_id)
            .status(sdk_status)
            .send()
            .await
            .map_err(|e| sdk_error("iam:UpdateAccessKey", e))?;
        info!(user, key_id, ?status, "updated access key status");
        Ok(())
    }

    /// Deletes a key. Returns `false` if it was already gone.
    #[instrument(skip(self))]
    async fn delete_access_key(&self, user: &str, key_id: &str) -> Result<bool> {
        let result = self
            .client
            .delete_access_key()
            .user_name(user)
            .access_key_id(key_id)
            .send()
            .await
            .map_err(|e| sdk_error("iam:DeleteAccessKey", e));
        match result {
            Ok(_) => {
                info!(user, key_id, "deleted access key");
                Ok(true)
            }
            Err(e) if e.aws_kind() == Some(AwsErrorKind::NotFound) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The user an access key belongs to, or `None` if no such key exists
    /// (GetAccessKeyLastUsed names the owner).
    #[instrument(skip(self))]
    async fn key_owner(&self, key_id: &str) -> Result<Option<String>> {
        let result = self
            .client
            .get_access_key_last_used()
            .access_key_id(key_id)
            .send()
            .await
            .map_err(|e| sdk_error("iam:GetAccessKeyLastUsed", e));
        match result {
            Ok(out) => Ok(out.user_name().map(str::to_owned)),
            Err(e) if e.aws_kind() == Some(AwsErrorKind::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The account's credential report: the one this instance last read, or the account's
    /// current one, if younger than `max_age`; else a new one (GenerateCredentialReport,
    /// polled until it is ready).
    #[instrument(skip(self))]
    async fn credential_report(&self, max_age: chrono::Duration) -> Result<Arc<CredentialReport>> {
        if let Some((at, report)) = self.cached_report() {
            if Utc::now() - at <= max_age {
                return Ok(report);
            }
        }
        let mut generated = false;
        for attempt in 0..30 {
            let result = self
                .client
                .get_credential_report()
                .send()
                .await
                .map_err(|e| sdk_error("iam:GetCredentialReport", e));
            let stale_or_missing = match &result {
                Ok(out) => {
                    let at = out.generated_time().and_then(to_utc);
                    at.is_none_or(|at| Utc::now() - at > max_age)
                }
                Err(Error::Aws { code, .. }) => {
                    matches!(
                        code.as_str(),
                        "ReportNotPresent" | "ReportExpired" | "ReportInProgress"
                    )
                }
                Err(_) => false,
            };
            match result {
                // One we asked for is taken as it comes (it is the newest there is).
                Ok(out) if !stale_or_missing || generated => {
                    let csv = out
                        .content()
                        .map(|b| String::from_utf8_lossy(b.as_ref()).into_owned())
                        .unwrap_or_default();
                    let report = Arc::new(
                        CredentialReport::parse(&csv)
                            .map_err(|e| Error::Internal(e.to_string()))?,
                    );
                    // Kept for the next pages only when IAM says how old it is.
                    if let (Some(at), Ok(mut last)) = (
                        out.generated_time().and_then(to_utc),
                        self.last_report.lock(),
                    ) {
                        *last = Some((at, Arc::clone(&report)));
                    }
                    return Ok(report);
                }
                Err(e) if !stale_or_missing => return Err(e),
                _ => {}
            }
            if !generated {
                self.client
                    .generate_credential_report()
                    .send()
                    .await
                    .map_err(|e| sdk_error("iam:GenerateCredentialReport", e))?;
                generated = true;
            }
            tokio::time::sleep(std::time::Duration::from_millis(if attempt == 0 {
                200
            } else {
                2000
            }))
            .await;
        }
        Err(Error::Transient(
            "the credential report was not ready within a minute".into(),
        ))
    }

    /// When the key was last used to sign a request, if ever (GetAccessKeyLastUsed).
    #[instrument(skip(self))]
    async fn key_last_used(&self, key_id: &str) -> Result<Option<DateTime<Utc>>> {
        let out = self
            .client
            .get_access_key_last_used()
            .access_key_id(key_id)
            .send()
            .await
            .map_err(|e| sdk_error("iam:GetAccessKeyLastUsed", e))?;
        Ok(out
            .access_key_last_used()
            .and_then(|u| u.last_used_date())
            .and_then(to_utc))
    }
}
