//! Secrets Manager: one secret per user holding the current access key.

use std::collections::BTreeMap;

use aws_config::SdkConfig;
use aws_sdk_secretsmanager::types::Tag;
use aws_sdk_secretsmanager::Client;
use chrono::{DateTime, Utc};
use keyrotor_core::domain::Overlap;
use tracing::{info, instrument};

use crate::error::sdk_error;
use keyrotor_core::config::Config;
use keyrotor_core::error::{AwsErrorKind, Error, Result};
use keyrotor_core::naming;
pub use keyrotor_core::ports::SecretDescription;
use keyrotor_core::ports::SecretsPort;

/// The Secrets Manager calls keyrotor makes.
#[derive(Clone, Debug)]
pub struct Secrets {
    client: Client,
    kms_key_id: Option<String>,
}

fn tag(key: &str, value: &str) -> Tag {
    Tag::builder().key(key).value(value).build()
}

impl Secrets {
    pub fn new(client: Client, kms_key_id: Option<String>) -> Self {
        Secrets { client, kms_key_id }
    }

    /// The client from the SDK configuration, creating secrets with the configured KMS key.
    pub fn from_sdk(sdk: &SdkConfig, config: &Config) -> Self {
        Secrets::new(Client::new(sdk), config.kms_key_id.clone())
    }
}

impl SecretsPort for Secrets {
    /// Describes the secret, or `None` if it does not exist. Whether keyrotor may trust it
    /// is for [`keyrotor_core::ownership::judge`] to say.
    #[instrument(skip(self))]
    async fn describe(&self, name: &str) -> Result<Option<SecretDescription>> {
        let result = self
            .client
            .describe_secret()
            .secret_id(name)
            .send()
            .await
            .map_err(|e| sdk_error("secretsmanager:DescribeSecret", e));
        let out = match result {
            Ok(out) => out,
            Err(e) if e.aws_kind() == Some(AwsErrorKind::NotFound) => return Ok(None),
            Err(e) => return Err(e),
        };
        let tags: BTreeMap<String, String> = out
            .tags()
            .iter()
            .filter_map(|t| Some((t.key()?.to_owned(), t.value()?.to_owned())))
            .collect();
        let current_version = out.version_ids_to_stages().and_then(|versions| {
            versions
                .iter()
                .find(|(_, stages)| stages.iter().any(|s| s == "AWSCURRENT"))
                .map(|(version, _)| version.as_str())
        });
        Ok(Some(SecretDescription {
            arn: out.arn().unwrap_or_default().to_owned(),
            name: out.name().unwrap_or(name).to_owned(),
            state: naming::secret_state(&tags, current_version),
            tags,
            kms_key_id: out.kms_key_id().map(str::to_owned),
            replicated: !out.replication_status().is_empty(),
            rotation_enabled: out.rotation_enabled().unwrap_or(false)
                || out.rotation_lambda_arn().is_some_and(|a| !a.is_empty()),
            scheduled_for_deletion: out.deleted_date().is_some(),
            version_count: out.version_ids_to_stages().map_or(0, |v| v.len()),
        }))
    }

    #[instrument(skip(self))]
    async fn clear_records(&self, secret_arn: &str) -> Result<()> {
        self.client
            .untag_resource()
            .secret_id(secret_arn)
            .set_tag_keys(Some(
                naming::RECORD_TAGS
                    .iter()
                    .map(|t| (*t).to_owned())
                    .collect(),
            ))
            .send()
            .await
            .map_err(|e| sdk_error("secretsmanager:UntagResource", e))?;
        Ok(())
    }

    /// ListSecrets by tag key and value (the filters match each on its own, so a secret is
    /// kept only if one tag has both), every page.
    #[instrument(skip(self))]
    async fn tagged(&self, key: &str, value: &str) -> Result<Vec<String>> {
        use aws_sdk_secretsmanager::types::{Filter, FilterNameStringType};
        let filters = [
            (FilterNameStringType::TagKey, key),
            (FilterNameStringType::TagValue, value),
        ]
        .map(|(name, v)| Filter::builder().key(name).values(v).build());
        let mut names = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let out = self
                .client
                .list_secrets()
                .set_filters(Some(filters.to_vec()))
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| sdk_error("secretsmanager:ListSecrets", e))?;
            for entry in out.secret_list() {
                let tagged = entry
                    .tags()
                    .iter()
                    .any(|t| t.key() == Some(key) && t.value() == Some(value));
                if let (true, Some(name)) = (tagged, entry.name()) {
                    names.push(name.to_owned());
                }
            }
            match out.next_token() {
                Some(next) if !next.is_empty() => token = Some(next.to_owned()),
                _ => return Ok(names),
            }
        }
    }

    /// Creates the user's secret without a value (the value is written once the resource
    /// policy is in place), tagged with the user's name and unique ID. Returns its ARN; an
    /// existing secret is a conflict the caller resolves by describing it.
    #[instrument(skip(self))]
    async fn create(&self, name: &str, user: &str, user_id: &str) -> Result<String> {
        let out = self
            .client
            .create_secret()
            .name(name)
            .description(format!(
                "Access key of IAM user {user}, rotated by keyrotor"
            ))
            .set_kms_key_id(self.kms_key_id.clone())
            .tags(tag(naming::TAG_USER, user))
            .tags(tag(naming::TAG_USER_ID, user_id))
            .tags(tag(naming::TAG_MANAGED_BY, naming::MANAGED_BY_VALUE))
            .send()
            .await
            .map_err(|e| sdk_error("secretsmanager:CreateSecret", e))?;
        let arn = out
            .arn()
            .ok_or_else(|| Error::Internal("CreateSecret returned no ARN".into()))?;
        info!(secret = name, "created secret");
        Ok(arn.to_owned())
    }

    /// The secret's resource policy, if it has one.
    #[instrument(skip(self))]
    async fn policy(&self, secret_arn: &str) -> Result<Option<String>> {
        let out = self
            .client
            .get_resource_policy()
            .secret_id(secret_arn)
            .send()
            .await
            .map_err(|e| sdk_error("secretsmanager:GetResourcePolicy", e))?;
        Ok(out.resource_policy().map(str::to_owned))
    }

    /// Puts keyrotor's resource policy on the secret (see [`keyrotor_core::ownership`]).
    #[instrument(skip(self, policy))]
    async fn put_policy(&self, secret_arn: &str, policy: &serde_json::Value) -> Result<()> {
        self.client
            .put_resource_policy()
            .secret_id(secret_arn)
            .resource_policy(policy.to_string())
            .block_public_policy(true)
            .send()
            .await
            .map_err(|e| sdk_error("secretsmanager:PutResourcePolicy", e))?;
        Ok(())
    }

    /// Stores `value` as the AWSCURRENT version with the version ID derived from `key_id`.
    /// Repeating the call with the same key and value is a no-op, so it is safe to retry.
    #[instrument(skip(self, value))]
    async fn put_key(&self, secret_arn: &str, key_id: &str, value: &str) -> Result<()> {
        let version = naming::version_id_for_key(key_id).ok_or_else(|| {
            Error::Internal(format!(
                "access key ID {key_id} cannot name a secret version"
            ))
        })?;
        self.client
            .put_secret_value()
            .secret_id(secret_arn)
            .client_request_token(version)
            .secret_string(value)
            .send()
            .await
            .map_err(|e| sdk_error("secretsmanager:PutSecretValue", e))?;
        info!(
            secret = secret_arn,
            key_id, "stored access key as AWSCURRENT"
        );
        Ok(())
    }

    /// Marks on the secret the key a rotation is about to deactivate, so that a failure
    /// between deactivating it and recording the time is recognised by a new run.
    #[instrument(skip(self))]
    async fn mark_deactivating(&self, secret_arn: &str, key_id: &str) -> Result<()> {
        self.client
            .tag_resource()
            .secret_id(secret_arn)
            .tags(tag(naming::TAG_DEACTIVATING_KEY, key_id))
            .send()
            .await
            .map_err(|e| sdk_error("secretsmanager:TagResource", e))?;
        Ok(())
    }

    /// Records on the secret the overlap window of a rotation.
    #[instrument(skip(self))]
    async fn record_overlap(&self, secret_arn: &str, window: &Overlap) -> Result<()> {
        self.put_tags(secret_arn, &naming::overlap_tags(window))
            .await
    }

    /// Records on the secret which key a rotation deactivated, and when.
    #[instrument(skip(self))]
    async fn record_deactivation(
        &self,
        secret_arn: &str,
        key_id: &str,
        at: DateTime<Utc>,
    ) -> Result<()> {
        self.put_tags(secret_arn, &naming::deactivation_tags(key_id, at))
            .await
    }
}

impl Secrets {
    /// Writes keyrotor's record tags on the secret in one TagResource call.
    async fn put_tags(&self, secret_arn: &str, tags: &[(&str, String)]) -> Result<()> {
        let tags = tags.iter().map(|(k, v)| tag(k, v)).collect();
        self.client
            .tag_resource()
            .secret_id(secret_arn)
            .set_tags(Some(tags))
            .send()
            .await
            .map_err(|e| sdk_error("secretsmanager:TagResource", e))?;
        Ok(())
    }
}
