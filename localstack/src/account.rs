//! Seeding an emulated account and reading it back through the SDK, the way the tests
//! check what the functions really did.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use anyhow::{Context, Result};
use aws_config::SdkConfig;
use aws_credential_types::Credentials;
use aws_sdk_iam::types::{StatusType, Tag};
use serde_json::{json, Value};

use crate::moto::{MotoServer, SeedUser};

/// SDK clients for the test's own view of the account.
#[derive(Clone, Debug)]
pub struct Account {
    sdk: SdkConfig,
    pub iam: aws_sdk_iam::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
    pub ses: aws_sdk_ses::Client,
    pub sfn: aws_sdk_sfn::Client,
    pub events: aws_sdk_eventbridge::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub kms: aws_sdk_kms::Client,
    pub ssm: aws_sdk_ssm::Client,
}

/// The queue a rule on the default bus sends every keyrotor event to, as a pipeline of the
/// account's own would receive them.
pub const EVENTS_QUEUE: &str = "keyrotor-events";

/// A test user: name, tags, groups, and keys by age in days and status. The one way the
/// tests (in-process and on the emulator), the demo and the bench describe whom they seed:
/// [`Account::seed`] on the emulator, `keyrotor_tests::fake::FakeAccount::seed` in-process,
/// and [`TestUser::backend_seed`] for the bench's thousands.
#[derive(Debug, Clone, Default)]
pub struct TestUser {
    pub name: String,
    pub tags: Vec<(String, String)>,
    pub groups: Vec<String>,
    /// (age in days, active)
    pub keys: Vec<(i64, bool)>,
}

impl TestUser {
    pub fn new(name: &str) -> Self {
        TestUser {
            name: name.to_owned(),
            ..TestUser::default()
        }
    }

    pub fn tag(mut self, key: &str, value: &str) -> Self {
        self.tags.push((key.to_owned(), value.to_owned()));
        self
    }

    pub fn group(mut self, group: &str) -> Self {
        self.groups.push(group.to_owned());
        self
    }

    pub fn key(mut self, age_days: i64, active: bool) -> Self {
        self.keys.push((age_days, active));
        self
    }
}

/// A key as the test created it, secret included (the tests need it to prove a key works
/// and to scan outputs for leaks).
#[derive(Debug, Clone)]
pub struct SeededKey {
    pub id: String,
    pub secret: String,
}

impl TestUser {
    /// The user as moto's backend seeds it in bulk (`MotoServer::seed_users`), which
    /// takes one active key at most; `None` for a user it cannot express.
    pub fn backend_seed(&self) -> Option<SeedUser> {
        let key_age_days = match self.keys.as_slice() {
            [] => None,
            [(age, true)] => Some(*age),
            _ => return None,
        };
        Some(SeedUser {
            name: self.name.clone(),
            tags: self.tags.iter().cloned().collect(),
            key_age_days,
            groups: self.groups.clone(),
        })
    }
}

impl Account {
    /// Creates the user with its tags, its keys aged by moving moto's clock (created oldest
    /// first; inactive ones set so), and its group memberships. Returns the keys in the
    /// order of `user.keys`.
    pub async fn seed(&self, moto: &MotoServer, user: &TestUser) -> Result<Vec<SeededKey>> {
        let tags: Vec<(&str, &str)> = user
            .tags
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        self.create_user(&user.name, &tags).await?;
        let mut oldest_first: Vec<usize> = (0..user.keys.len()).collect();
        oldest_first.sort_by_key(|&i| -user.keys[i].0);
        let mut keys: Vec<Option<SeededKey>> = vec![None; user.keys.len()];
        for i in oldest_first {
            let (age, active) = user.keys[i];
            let key = aged_key(moto, self, &user.name, age).await?;
            if !active {
                self.set_key_status(&user.name, &key.id, false).await?;
            }
            keys[i] = Some(key);
        }
        let keys: Vec<SeededKey> = keys.into_iter().flatten().collect();
        for group in &user.groups {
            self.add_to_group(group, &user.name).await?;
        }
        Ok(keys)
    }

    pub fn new(sdk: &SdkConfig) -> Self {
        Account {
            sdk: sdk.clone(),
            iam: aws_sdk_iam::Client::new(sdk),
            secrets: aws_sdk_secretsmanager::Client::new(sdk),
            ses: aws_sdk_ses::Client::new(sdk),
            sfn: aws_sdk_sfn::Client::new(sdk),
            events: aws_sdk_eventbridge::Client::new(sdk),
            sqs: aws_sdk_sqs::Client::new(sdk),
            kms: aws_sdk_kms::Client::new(sdk),
            ssm: aws_sdk_ssm::Client::new(sdk),
        }
    }

    /// What delivery needs in the account, as an administrator sets it up: the delivery
    /// key under its alias, and the settings secrets (GitHub token, webhook signing key).
    pub async fn prepare_delivery(&self, settings: &[(&str, &str)]) -> Result<()> {
        let key = self
            .kms
            .create_key()
            .description("keyrotor - seals a new key from create-key to deliver-key")
            .send()
            .await?;
        let key_id = key
            .key_metadata()
            .map(|m| m.key_id().to_owned())
            .context("no key ID")?;
        self.kms
            .create_alias()
            .alias_name(crate::github::DELIVERY_KEY_ALIAS)
            .target_key_id(key_id)
            .send()
            .await?;
        for (name, value) in settings {
            self.secrets
                .create_secret()
                .name(*name)
                .secret_string(*value)
                .send()
                .await?;
        }
        Ok(())
    }

    /// An SSM SecureString's value, decrypted, parsed as JSON (`None`: no such parameter).
    pub async fn parameter_value(&self, name: &str) -> Result<Option<Value>> {
        match self
            .ssm
            .get_parameter()
            .name(name)
            .with_decryption(true)
            .send()
            .await
        {
            Ok(out) => {
                let text = out
                    .parameter()
                    .and_then(|p| p.value())
                    .context("no value")?;
                Ok(Some(serde_json::from_str(text)?))
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_parameter_not_found()) =>
            {
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    pub async fn create_user(&self, name: &str, tags: &[(&str, &str)]) -> Result<()> {
        let mut req = self.iam.create_user().user_name(name);
        for (k, v) in tags {
            req = req.tags(Tag::builder().key(*k).value(*v).build()?);
        }
        req.send()
            .await
            .with_context(|| format!("CreateUser {name}"))?;
        Ok(())
    }

    /// Creates a key now (in moto's clock, which the caller may have shifted).
    pub async fn create_key(&self, user: &str) -> Result<SeededKey> {
        let out = self.iam.create_access_key().user_name(user).send().await?;
        let key = out.access_key().context("no key")?;
        Ok(SeededKey {
            id: key.access_key_id().to_owned(),
            secret: key.secret_access_key().to_owned(),
        })
    }

    pub async fn set_key_status(&self, user: &str, key: &str, active: bool) -> Result<()> {
        let status = if active {
            StatusType::Active
        } else {
            StatusType::Inactive
        };
        self.iam
            .update_access_key()
            .user_name(user)
            .access_key_id(key)
            .status(status)
            .send()
            .await?;
        Ok(())
    }

    /// The user's keys as `(id, "Active"|"Inactive")`, oldest first.
    pub async fn keys(&self, user: &str) -> Result<Vec<(String, String)>> {
        let out = self.iam.list_access_keys().user_name(user).send().await?;
        let mut keys: Vec<_> = out
            .access_key_metadata()
            .iter()
            .map(|k| {
                (
                    k.create_date().map(|d| (d.secs(), d.subsec_nanos())),
                    k.access_key_id().unwrap_or_default().to_owned(),
                    k.status()
                        .map(|s| s.as_str().to_owned())
                        .unwrap_or_default(),
                )
            })
            .collect();
        keys.sort();
        Ok(keys
            .into_iter()
            .map(|(_, id, status)| (id, status))
            .collect())
    }

    pub async fn add_to_group(&self, group: &str, user: &str) -> Result<()> {
        let _ = self.iam.create_group().group_name(group).send().await;
        self.iam
            .add_user_to_group()
            .group_name(group)
            .user_name(user)
            .send()
            .await?;
        Ok(())
    }

    /// The user's unique ID (`AIDA…`).
    pub async fn user_id(&self, user: &str) -> Result<String> {
        let out = self.iam.get_user().user_name(user).send().await?;
        Ok(out.user().context("no user")?.user_id().to_owned())
    }

    /// The name of the user's secret with the default prefix: `iam-access-key/<unique ID>`.
    pub async fn secret_of(&self, user: &str) -> Result<String> {
        Ok(keyrotor_core::naming::secret_name(
            "iam-access-key/",
            &self.user_id(user).await?,
        ))
    }

    /// The secret's AWSCURRENT value, parsed.
    pub async fn secret_value(&self, name: &str) -> Result<Value> {
        let out = self
            .secrets
            .get_secret_value()
            .secret_id(name)
            .send()
            .await?;
        Ok(serde_json::from_str(
            out.secret_string().context("no string")?,
        )?)
    }

    /// The secret's versions and their stages, sorted.
    pub async fn secret_versions(&self, name: &str) -> Result<Vec<(String, Vec<String>)>> {
        let out = self
            .secrets
            .list_secret_version_ids()
            .secret_id(name)
            .send()
            .await?;
        let mut versions: Vec<_> = out
            .versions()
            .iter()
            .map(|v| {
                let mut stages = v.version_stages().to_vec();
                stages.sort();
                (v.version_id().unwrap_or_default().to_owned(), stages)
            })
            .collect();
        versions.sort();
        Ok(versions)
    }

    /// The names of all secrets, every page.
    pub async fn secret_names(&self) -> Result<Vec<String>> {
        let pages = self
            .secrets
            .list_secrets()
            .into_paginator()
            .send()
            .try_collect()
            .await?;
        Ok(pages
            .iter()
            .flat_map(|page| page.secret_list())
            .filter_map(|s| s.name().map(str::to_owned))
            .collect())
    }

    pub async fn secret_exists(&self, name: &str) -> bool {
        self.secrets
            .describe_secret()
            .secret_id(name)
            .send()
            .await
            .is_ok()
    }

    /// The ARN a key authenticates as (STS GetCallerIdentity with that key).
    pub async fn caller_arn(&self, key_id: &str, secret: &str) -> Result<String> {
        let creds = Credentials::new(key_id, secret, None, None, "keyrotor-tests");
        let conf = aws_sdk_sts::config::Builder::from(&self.sdk)
            .credentials_provider(creds)
            .build();
        let out = aws_sdk_sts::Client::from_conf(conf)
            .get_caller_identity()
            .send()
            .await?;
        Ok(out.arn().unwrap_or_default().to_owned())
    }

    /// A rule on the default bus that sends every event of source `keyrotor` to the queue
    /// [`EVENTS_QUEUE`] (the README's example rule, with a queue as its target).
    pub async fn route_events_to_queue(&self) -> Result<()> {
        let queue = self
            .sqs
            .create_queue()
            .queue_name(EVENTS_QUEUE)
            .send()
            .await
            .context("CreateQueue")?;
        let url = queue.queue_url().context("a queue URL")?;
        let attributes = self
            .sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .context("GetQueueAttributes")?;
        let arn = attributes
            .attributes()
            .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
            .context("the queue's ARN")?;
        self.events
            .put_rule()
            .name("keyrotor-to-queue")
            .event_pattern(json!({"source": [keyrotor_core::events::SOURCE]}).to_string())
            .send()
            .await
            .context("PutRule")?;
        self.events
            .put_targets()
            .rule("keyrotor-to-queue")
            .targets(
                aws_sdk_eventbridge::types::Target::builder()
                    .id("queue")
                    .arn(arn)
                    .build()?,
            )
            .send()
            .await
            .context("PutTargets")?;
        Ok(())
    }

    /// Every keyrotor event the queue received since the last call (each taken off the
    /// queue), as EventBridge delivered it: `detail-type`, `source`, `detail`, ...
    pub async fn received_events(&self) -> Result<Vec<Value>> {
        let url = self
            .sqs
            .get_queue_url()
            .queue_name(EVENTS_QUEUE)
            .send()
            .await
            .context("GetQueueUrl")?
            .queue_url()
            .context("a queue URL")?
            .to_owned();
        let mut events = Vec::new();
        loop {
            let out = self
                .sqs
                .receive_message()
                .queue_url(&url)
                .max_number_of_messages(10)
                .send()
                .await
                .context("ReceiveMessage")?;
            if out.messages().is_empty() {
                return Ok(events);
            }
            for message in out.messages() {
                let body = message.body().unwrap_or_default();
                events.push(serde_json::from_str(body).context("an event is JSON")?);
                if let Some(handle) = message.receipt_handle() {
                    self.sqs
                        .delete_message()
                        .queue_url(&url)
                        .receipt_handle(handle)
                        .send()
                        .await
                        .context("DeleteMessage")?;
                }
            }
        }
    }

    pub async fn verify_sender(&self, address: &str) -> Result<()> {
        self.ses
            .verify_email_identity()
            .email_address(address)
            .send()
            .await?;
        Ok(())
    }

    /// Everything keyrotor could change, as one canonical JSON text: users, their tags,
    /// groups, keys (ID, status, creation), secrets (versions, stages, tags, policy, and a
    /// hash of each value, so that a failing comparison never prints a secret).
    pub async fn snapshot(&self) -> Result<String> {
        let mut users = Vec::new();
        let mut names: Vec<String> = self
            .iam
            .list_users()
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await?
            .iter()
            .map(|u| u.user_name().to_owned())
            .collect();
        names.sort();
        for name in &names {
            let tags = self.iam.list_user_tags().user_name(name).send().await?;
            let mut tags: Vec<_> = tags
                .tags()
                .iter()
                .map(|t| (t.key().to_owned(), t.value().to_owned()))
                .collect();
            tags.sort();
            let keys = self.iam.list_access_keys().user_name(name).send().await?;
            let mut keys: Vec<_> = keys
                .access_key_metadata()
                .iter()
                .map(|k| {
                    json!([
                        k.access_key_id(),
                        k.status().map(|s| s.as_str()),
                        k.create_date().map(|d| d.secs())
                    ])
                })
                .collect();
            keys.sort_by_key(|k| k.to_string());
            let groups = self
                .iam
                .list_groups_for_user()
                .user_name(name)
                .send()
                .await?;
            let mut groups: Vec<_> = groups
                .groups()
                .iter()
                .map(|g| g.group_name().to_owned())
                .collect();
            groups.sort();
            users.push(json!({ "name": name, "tags": tags, "keys": keys, "groups": groups }));
        }
        let mut secrets = Vec::new();
        let mut names = self.secret_names().await?;
        names.sort();
        for name in &names {
            let d = self
                .secrets
                .describe_secret()
                .secret_id(name)
                .send()
                .await?;
            let mut tags: Vec<_> = d
                .tags()
                .iter()
                .map(|t| {
                    (
                        t.key().unwrap_or_default().to_owned(),
                        t.value().unwrap_or_default().to_owned(),
                    )
                })
                .collect();
            tags.sort();
            let policy = self
                .secrets
                .get_resource_policy()
                .secret_id(name)
                .send()
                .await?;
            let mut values = Vec::new();
            for (version, stages) in self.secret_versions(name).await? {
                let v = self
                    .secrets
                    .get_secret_value()
                    .secret_id(name)
                    .version_id(&version)
                    .send()
                    .await;
                let digest = v.ok().and_then(|v| v.secret_string().map(fingerprint));
                values.push(json!([version, stages, digest]));
            }
            secrets.push(json!({ "name": name, "tags": tags, "policy": policy.resource_policy(), "versions": values }));
        }
        Ok(json!({ "users": users, "secrets": secrets }).to_string())
    }
}

fn fingerprint(value: &str) -> String {
    let mut h = DefaultHasher::new();
    value.hash(&mut h);
    format!("{:016x}", h.finish())
}

/// Creates `user` with one key that is `age_days` old, by moving moto's clock back while
/// the key is created. Returns the key.
pub async fn user_with_aged_key(
    moto: &MotoServer,
    account: &Account,
    user: &str,
    tags: &[(&str, &str)],
    age_days: i64,
) -> Result<SeededKey> {
    let user = tags
        .iter()
        .fold(TestUser::new(user), |u, (k, v)| u.tag(k, v))
        .key(age_days, true);
    let mut keys = account.seed(moto, &user).await?;
    keys.pop().context("one key seeded")
}

/// Adds a key of `age_days` to an existing user.
pub async fn aged_key(
    moto: &MotoServer,
    account: &Account,
    user: &str,
    age_days: i64,
) -> Result<SeededKey> {
    moto.set_clock_offset(-age_days * 86_400)?;
    let key = account.create_key(user).await;
    moto.set_clock_offset(0)?;
    key
}
