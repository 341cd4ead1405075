//! An in-memory AWS account behind keyrotor's ports, with the rules the rotation depends on:
//! IAM's two-key limit, case-insensitive user names, unique IDs, key statuses and last use;
//! Secrets Manager's names, tags, resource policies and idempotent versions (a version ID
//! written again with the same value is a no-op, with another value an error); STS that
//! accepts a key only while it exists and is active. Beside it, [`Faulty`] wraps the account
//! and fails chosen calls before they are applied or after (the response lost), as the fault
//! proxy does on the emulator. Both record every call by its IAM action name, which is how a
//! test holds each function to the actions it declares.
//!
//! Invariant tests run the functions in-process against this account in milliseconds; the
//! emulator keeps what only it can show (the SDK on the wire, the state machine service).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Duration, Utc};
use keyrotor_core::domain::credential_report::{CredentialReport, ReportKey};
use keyrotor_core::domain::{AccessKey, KeyStatus, LastUse, Overlap};
use keyrotor_core::email::EmailAddress;
use keyrotor_core::error::{AwsErrorKind, Error, Result};
use keyrotor_core::events::Event;
use keyrotor_core::exposure::{HealthAnswer, HealthEvent, EXPOSED_EVENT_TYPE, NO_HEALTH_PLAN};
use keyrotor_core::naming;
use keyrotor_core::ports::{
    Email, EventsPort, ExecutionsPort, HandoffPort, HealthPort, IamUser, MailerPort,
    ParametersPort, SecretDescription, SecretsPort, SettingsPort, StartOutcome, UserPage,
    UsersPort, VerifierPort,
};
use keyrotor_core::secret::{NewAccessKey, SecretAccessKey};

use crate::invariants::Snapshot;
use keyrotor_localstack::account::{SeededKey, TestUser};

pub const ACCOUNT_ID: &str = "123456789012";
pub const REGION: &str = "us-east-1";

#[derive(Debug, Clone)]
struct Key {
    id: String,
    secret: String,
    status: KeyStatus,
    created: DateTime<Utc>,
    last_used: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
struct User {
    name: String,
    id: String,
    tags: BTreeMap<String, String>,
    groups: BTreeSet<String>,
    keys: Vec<Key>,
}

impl User {
    fn arn(&self) -> String {
        format!("arn:aws:iam::{ACCOUNT_ID}:user/{}", self.name)
    }
}

#[derive(Debug, Clone)]
struct Secret {
    arn: String,
    name: String,
    tags: BTreeMap<String, String>,
    kms_key_id: Option<String>,
    policy: Option<String>,
    /// Version ID and value, oldest first.
    versions: Vec<(String, String)>,
    current: Option<String>,
}

#[derive(Debug, Default)]
struct State {
    users: Vec<User>,
    secrets: BTreeMap<String, Secret>,
    serial: u64,
    calls: Vec<&'static str>,
    issued: Vec<String>,
    mails: Vec<Email>,
    started: Vec<(String, String, String)>,
    events: Vec<Event>,
    /// What AWS Health answers about an event ARN, as the fake Health API of the local
    /// stack does (`tools/fake_health.py`): its own event, or (`None`) that it has no such
    /// event. An ARN not recorded answers as an account without a support plan that gives
    /// the Health API (the usual case): no report of it can be confirmed.
    health: BTreeMap<String, Option<HealthEvent>>,
    /// SSM parameters keyrotor delivered to: name to (value, description).
    parameters: BTreeMap<String, (String, String)>,
    /// keyrotor's settings secrets (the GitHub token, the webhook key): ARN to value.
    settings: BTreeMap<String, String>,
}

impl State {
    fn next(&mut self) -> u64 {
        self.serial += 1;
        self.serial
    }

    fn user(&self, name: &str) -> Result<&User> {
        self.users
            .iter()
            .find(|u| u.name.eq_ignore_ascii_case(name))
            .ok_or_else(|| Error::UserNotFound(name.to_owned()))
    }

    fn user_mut(&mut self, name: &str) -> Result<&mut User> {
        self.users
            .iter_mut()
            .find(|u| u.name.eq_ignore_ascii_case(name))
            .ok_or_else(|| Error::UserNotFound(name.to_owned()))
    }

    fn secret_by_id(&mut self, id: &str) -> Result<&mut Secret> {
        self.secrets
            .values_mut()
            .find(|s| s.arn == id || s.name == id)
            .ok_or_else(|| {
                aws_error(
                    "secretsmanager",
                    AwsErrorKind::NotFound,
                    "ResourceNotFoundException",
                    "Secrets Manager can't find the specified secret.",
                )
            })
    }
}

/// An error as an SDK adapter would classify it.
pub fn aws_error(operation: &'static str, kind: AwsErrorKind, code: &str, message: &str) -> Error {
    Error::Aws {
        operation,
        kind,
        code: code.to_owned(),
        message: message.to_owned(),
        source: message.to_owned().into(),
    }
}

/// The in-memory account. Clones share it.
#[derive(Debug, Clone, Default)]
pub struct FakeAccount {
    state: Arc<Mutex<State>>,
    /// The KMS key CreateSecret encrypts with (keyrotor's, as configured).
    kms_key_id: Option<String>,
}

impl FakeAccount {
    pub fn new(kms_key_id: Option<&str>) -> Self {
        FakeAccount {
            state: Arc::default(),
            kms_key_id: kms_key_id.map(str::to_owned),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Locks the state and records the call.
    fn call(&self, action: &'static str) -> MutexGuard<'_, State> {
        let mut state = self.lock();
        state.calls.push(action);
        state
    }

    /// Creates the user, its keys and group memberships; returns the keys in the order of
    /// `user.keys`.
    pub fn seed(&self, user: &TestUser) -> Vec<SeededKey> {
        let mut state = self.lock();
        let serial = state.next();
        let mut keys = Vec::new();
        for &(age, active) in &user.keys {
            let n = state.next();
            let key = Key {
                id: format!("AKIAFAKE{n:012}"),
                secret: format!("seeded-secret-{n:032}"),
                status: if active {
                    KeyStatus::Active
                } else {
                    KeyStatus::Inactive
                },
                created: Utc::now() - Duration::days(age),
                last_used: None,
            };
            keys.push(key);
        }
        let seeded = keys
            .iter()
            .map(|k| SeededKey {
                id: k.id.clone(),
                secret: k.secret.clone(),
            })
            .collect();
        state.users.push(User {
            name: user.name.clone(),
            id: format!("AIDAFAKE{serial:012}"),
            tags: user.tags.iter().cloned().collect(),
            groups: user.groups.iter().cloned().collect(),
            keys,
        });
        seeded
    }

    /// The user's keys: (ID, active), oldest first.
    pub fn keys(&self, user: &str) -> Vec<(String, bool)> {
        let state = self.lock();
        state.user(user).map_or_else(
            |_| Vec::new(),
            |u| {
                u.keys
                    .iter()
                    .map(|k| (k.id.clone(), k.status == KeyStatus::Active))
                    .collect()
            },
        )
    }

    /// Sets a key's status as the owner would (a rollback).
    pub fn set_status(&self, user: &str, key_id: &str, active: bool) {
        let mut state = self.lock();
        if let Ok(u) = state.user_mut(user) {
            if let Some(k) = u.keys.iter_mut().find(|k| k.id == key_id) {
                k.status = if active {
                    KeyStatus::Active
                } else {
                    KeyStatus::Inactive
                };
            }
        }
    }

    /// Tags the user as its owner (or an operator) would.
    pub fn tag_user(&self, user: &str, key: &str, value: &str) {
        let mut state = self.lock();
        if let Ok(u) = state.user_mut(user) {
            u.tags.insert(key.to_owned(), value.to_owned());
        }
    }

    /// The secret's tags (keyrotor's records among them); empty if there is no such secret.
    pub fn secret_tags(&self, secret_name: &str) -> BTreeMap<String, String> {
        self.lock()
            .secrets
            .get(secret_name)
            .map(|s| s.tags.clone())
            .unwrap_or_default()
    }

    /// The user's unique ID.
    pub fn user_id(&self, user: &str) -> Option<String> {
        self.lock().user(user).ok().map(|u| u.id.clone())
    }

    /// The user's keys and secret, for [`crate::invariants::judge`]: what the stored value
    /// and the `seeded` keys' secrets authenticate as is decided by the account's keys.
    pub fn snapshot(&self, user: &str, secret_name: &str, seeded: &[SeededKey]) -> Snapshot {
        let state = self.lock();
        let Ok(u) = state.user(user) else {
            return Snapshot::default();
        };
        let works = |id: &str, secret: &str| {
            u.keys
                .iter()
                .any(|k| k.id == id && k.secret == secret && k.status == KeyStatus::Active)
        };
        let mut snapshot = Snapshot {
            keys: u
                .keys
                .iter()
                .map(|k| (k.id.clone(), k.status == KeyStatus::Active))
                .collect(),
            ..Snapshot::default()
        };
        let secret = state.secrets.get(secret_name);
        if let Some((secret, current)) = secret.and_then(|s| Some((s, s.current.as_ref()?))) {
            let value = secret
                .versions
                .iter()
                .find(|(v, _)| v == current)
                .and_then(|(_, value)| serde_json::from_str::<serde_json::Value>(value).ok())
                .unwrap_or_default();
            let id = value["AccessKeyId"].as_str().unwrap_or_default().to_owned();
            if works(&id, value["SecretAccessKey"].as_str().unwrap_or_default()) {
                snapshot.authenticating.insert(id.clone());
            }
            let stored_user = value["UserName"].as_str().unwrap_or_default().to_owned();
            snapshot.stored = Some((id, stored_user));
            snapshot.versions = secret.versions.len();
        }
        for key in seeded {
            if works(&key.id, &key.secret) {
                snapshot.authenticating.insert(key.id.clone());
            }
        }
        snapshot
    }

    /// Every call so far, by action name, in order.
    pub fn calls(&self) -> Vec<&'static str> {
        self.lock().calls.clone()
    }

    /// Every secret access key CreateAccessKey handed out (for leak scans).
    pub fn issued_secrets(&self) -> Vec<String> {
        self.lock().issued.clone()
    }

    /// Every e-mail sent.
    pub fn mails(&self) -> Vec<Email> {
        self.lock().mails.clone()
    }

    /// The SSM parameters delivered to: name to (value, description).
    pub fn parameters(&self) -> BTreeMap<String, (String, String)> {
        self.lock().parameters.clone()
    }

    /// Keeps a settings secret (as an administrator would).
    pub fn set_setting(&self, arn: &str, value: &str) {
        self.lock()
            .settings
            .insert(arn.to_owned(), value.to_owned());
    }

    /// Every event published.
    pub fn events(&self) -> Vec<Event> {
        self.lock().events.clone()
    }

    /// Every execution started: (state machine, name, input).
    pub fn started(&self) -> Vec<(String, String, String)> {
        self.lock().started.clone()
    }

    /// Records AWS Health's own event reporting `key` exposed (AWS's time and place): a
    /// report naming that event is then confirmed.
    pub fn record_health_exposure(&self, event_arn: &str, key: &str, at: DateTime<Utc>, url: &str) {
        let event = HealthEvent {
            event_type_code: EXPOSED_EVENT_TYPE.to_owned(),
            start_time: Some(at),
            exposed_url: Some(url.to_owned()),
            entities: vec![key.to_owned()],
        };
        self.lock().health.insert(event_arn.to_owned(), Some(event));
    }

    /// Makes AWS Health answer that it has no event `event_arn` (the account can ask).
    pub fn deny_health_event(&self, event_arn: &str) {
        self.lock().health.insert(event_arn.to_owned(), None);
    }

    /// Marks a key as used now (someone signed a request with it).
    pub fn use_key(&self, key_id: &str) {
        self.used_at(key_id, Utc::now());
    }

    /// Marks a key as last used at `at` (a request signed with it then, as IAM would
    /// report it later).
    pub fn used_at(&self, key_id: &str, at: DateTime<Utc>) {
        let mut state = self.lock();
        for u in &mut state.users {
            for k in &mut u.keys {
                if k.id == key_id {
                    k.last_used = Some(at);
                }
            }
        }
    }
}

fn throttled_free_page(names: Vec<String>, marker: Option<&str>, max: usize) -> UserPage {
    let start = marker.and_then(|m| m.parse::<usize>().ok()).unwrap_or(0);
    let end = (start + max).min(names.len());
    UserPage {
        users: names[start.min(end)..end].to_vec(),
        next_marker: (end < names.len()).then(|| end.to_string()),
    }
}

impl UsersPort for FakeAccount {
    async fn list_users_page(&self, marker: Option<&str>, max_items: i32) -> Result<UserPage> {
        let state = self.call("iam:ListUsers");
        let mut names: Vec<String> = state.users.iter().map(|u| u.name.clone()).collect();
        names.sort_by_key(|n| n.to_ascii_lowercase());
        let max = usize::try_from(max_items.clamp(1, 1000)).unwrap_or(1000);
        Ok(throttled_free_page(names, marker, max))
    }

    async fn user(&self, user: &str) -> Result<IamUser> {
        let state = self.call("iam:GetUser");
        let u = state.user(user)?;
        Ok(IamUser {
            name: u.name.clone(),
            arn: u.arn(),
            id: u.id.clone(),
        })
    }

    async fn access_keys(&self, user: &str) -> Result<Vec<AccessKey>> {
        let state = self.call("iam:ListAccessKeys");
        Ok(state
            .user(user)?
            .keys
            .iter()
            .map(|k| AccessKey {
                id: k.id.clone(),
                status: k.status,
                created: k.created,
            })
            .collect())
    }

    async fn user_tags(&self, user: &str) -> Result<BTreeMap<String, String>> {
        let state = self.call("iam:ListUserTags");
        Ok(state.user(user)?.tags.clone())
    }

    async fn group_members(&self, group: &str) -> Result<HashSet<String>> {
        let state = self.call("iam:GetGroup");
        Ok(state
            .users
            .iter()
            .filter(|u| u.groups.contains(group))
            .map(|u| u.name.clone())
            .collect())
    }

    async fn create_access_key(&self, user: &str) -> Result<NewAccessKey> {
        let mut state = self.call("iam:CreateAccessKey");
        let n = state.next();
        let u = state.user_mut(user)?;
        if u.keys.len() >= 2 {
            return Err(aws_error(
                "iam:CreateAccessKey",
                AwsErrorKind::LimitExceeded,
                "LimitExceeded",
                "Cannot exceed quota for AccessKeysPerUser: 2",
            ));
        }
        let key = Key {
            id: format!("AKIAFAKE{n:012}"),
            secret: format!("issued-secret-{n:034}"),
            status: KeyStatus::Active,
            created: Utc::now(),
            last_used: None,
        };
        let new = NewAccessKey {
            user: u.name.clone(),
            key_id: key.id.clone(),
            secret: SecretAccessKey::new(key.secret.clone()),
        };
        u.keys.push(key);
        let secret = new.secret.expose().to_owned();
        state.issued.push(secret);
        Ok(new)
    }

    async fn set_key_status(&self, user: &str, key_id: &str, status: KeyStatus) -> Result<()> {
        let mut state = self.call("iam:UpdateAccessKey");
        let key = state
            .user_mut(user)?
            .keys
            .iter_mut()
            .find(|k| k.id == key_id)
            .ok_or_else(|| no_such_key("iam:UpdateAccessKey", key_id))?;
        key.status = status;
        Ok(())
    }

    async fn delete_access_key(&self, user: &str, key_id: &str) -> Result<bool> {
        let mut state = self.call("iam:DeleteAccessKey");
        let keys = &mut state.user_mut(user)?.keys;
        let before = keys.len();
        keys.retain(|k| k.id != key_id);
        Ok(keys.len() < before)
    }

    async fn key_owner(&self, key_id: &str) -> Result<Option<String>> {
        let state = self.call("iam:GetAccessKeyLastUsed");
        Ok(state
            .users
            .iter()
            .find(|u| u.keys.iter().any(|k| k.id == key_id))
            .map(|u| u.name.clone()))
    }

    async fn key_last_used(&self, key_id: &str) -> Result<Option<DateTime<Utc>>> {
        let state = self.call("iam:GetAccessKeyLastUsed");
        state
            .users
            .iter()
            .flat_map(|u| &u.keys)
            .find(|k| k.id == key_id)
            .map(|k| k.last_used)
            .ok_or_else(|| no_such_key("iam:GetAccessKeyLastUsed", key_id))
    }

    async fn credential_report(&self, _max_age: Duration) -> Result<Arc<CredentialReport>> {
        // A fresh report every time: generated, then read.
        let mut state = self.call("iam:GenerateCredentialReport");
        state.calls.push("iam:GetCredentialReport");
        let users = state
            .users
            .iter()
            .map(|u| {
                let keys = u
                    .keys
                    .iter()
                    .map(|k| ReportKey {
                        active: k.status == KeyStatus::Active,
                        created: k.created,
                        last_used: Some(LastUse::from_date(k.last_used)),
                    })
                    .collect();
                (u.name.clone(), keys)
            })
            .collect();
        Ok(Arc::new(CredentialReport { users }))
    }
}

fn no_such_key(operation: &'static str, key_id: &str) -> Error {
    aws_error(
        operation,
        AwsErrorKind::NotFound,
        "NoSuchEntity",
        &format!("The Access Key with id {key_id} cannot be found."),
    )
}

impl SecretsPort for FakeAccount {
    async fn describe(&self, name: &str) -> Result<Option<SecretDescription>> {
        let state = self.call("secretsmanager:DescribeSecret");
        Ok(state.secrets.get(name).map(|s| SecretDescription {
            arn: s.arn.clone(),
            name: s.name.clone(),
            tags: s.tags.clone(),
            state: naming::secret_state(&s.tags, s.current.as_deref()),
            kms_key_id: s.kms_key_id.clone(),
            replicated: false,
            rotation_enabled: false,
            scheduled_for_deletion: false,
            version_count: s.versions.len(),
        }))
    }

    async fn clear_records(&self, secret_arn: &str) -> Result<()> {
        let mut state = self.call("secretsmanager:UntagResource");
        let tags = &mut state.secret_by_id(secret_arn)?.tags;
        for tag in naming::RECORD_TAGS {
            tags.remove(tag);
        }
        Ok(())
    }

    async fn tagged(&self, key: &str, value: &str) -> Result<Vec<String>> {
        let state = self.call("secretsmanager:ListSecrets");
        Ok(state
            .secrets
            .values()
            .filter(|s| s.tags.get(key).is_some_and(|v| v == value))
            .map(|s| s.name.clone())
            .collect())
    }

    async fn create(&self, name: &str, user: &str, user_id: &str) -> Result<String> {
        let mut state = self.call("secretsmanager:CreateSecret");
        if state.secrets.contains_key(name) {
            return Err(aws_error(
                "secretsmanager:CreateSecret",
                AwsErrorKind::AlreadyExists,
                "ResourceExistsException",
                "the secret already exists",
            ));
        }
        let n = state.next();
        let arn = format!("arn:aws:secretsmanager:{REGION}:{ACCOUNT_ID}:secret:{name}-{n:06}");
        let tags = [
            (naming::TAG_USER, user),
            (naming::TAG_USER_ID, user_id),
            (naming::TAG_MANAGED_BY, naming::MANAGED_BY_VALUE),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        state.secrets.insert(
            name.to_owned(),
            Secret {
                arn: arn.clone(),
                name: name.to_owned(),
                tags,
                kms_key_id: self.kms_key_id.clone(),
                policy: None,
                versions: Vec::new(),
                current: None,
            },
        );
        Ok(arn)
    }

    async fn policy(&self, secret_arn: &str) -> Result<Option<String>> {
        let mut state = self.call("secretsmanager:GetResourcePolicy");
        Ok(state.secret_by_id(secret_arn)?.policy.clone())
    }

    async fn put_policy(&self, secret_arn: &str, policy: &serde_json::Value) -> Result<()> {
        let mut state = self.call("secretsmanager:PutResourcePolicy");
        state.secret_by_id(secret_arn)?.policy = Some(policy.to_string());
        Ok(())
    }

    async fn put_key(&self, secret_arn: &str, key_id: &str, value: &str) -> Result<()> {
        let mut state = self.call("secretsmanager:PutSecretValue");
        let version = naming::version_id_for_key(key_id)
            .ok_or_else(|| Error::Internal(format!("{key_id} cannot name a version")))?;
        let secret = state.secret_by_id(secret_arn)?;
        match secret.versions.iter().find(|(v, _)| *v == version) {
            Some((_, stored)) if stored == value => {}
            Some(_) => {
                return Err(aws_error(
                    "secretsmanager:PutSecretValue",
                    AwsErrorKind::AlreadyExists,
                    "ResourceExistsException",
                    "a version with this ID already exists with another value",
                ))
            }
            None => secret.versions.push((version.clone(), value.to_owned())),
        }
        secret.current = Some(version);
        Ok(())
    }

    async fn mark_deactivating(&self, secret_arn: &str, key_id: &str) -> Result<()> {
        let mut state = self.call("secretsmanager:TagResource");
        state
            .secret_by_id(secret_arn)?
            .tags
            .insert(naming::TAG_DEACTIVATING_KEY.to_owned(), key_id.to_owned());
        Ok(())
    }

    async fn record_overlap(&self, secret_arn: &str, window: &Overlap) -> Result<()> {
        let mut state = self.call("secretsmanager:TagResource");
        let tags = &mut state.secret_by_id(secret_arn)?.tags;
        for (k, v) in naming::overlap_tags(window) {
            tags.insert(k.to_owned(), v);
        }
        Ok(())
    }

    async fn record_deactivation(
        &self,
        secret_arn: &str,
        key_id: &str,
        at: DateTime<Utc>,
    ) -> Result<()> {
        let mut state = self.call("secretsmanager:TagResource");
        let tags = &mut state.secret_by_id(secret_arn)?.tags;
        for (k, v) in naming::deactivation_tags(key_id, at) {
            tags.insert(k.to_owned(), v);
        }
        Ok(())
    }
}

impl VerifierPort for FakeAccount {
    async fn verify(&self, key: &NewAccessKey, expected_arn: &str) -> Result<()> {
        let mut state = self.call("sts:GetCallerIdentity");
        // A signed request is a use of the key, as IAM records it (keyrotor's own check of
        // a new key included).
        let works = state.users.iter_mut().any(|u| {
            let arn = u.arn();
            u.keys.iter_mut().any(|k| {
                let signs = arn == expected_arn
                    && k.id == key.key_id
                    && k.secret == key.secret.expose()
                    && k.status == KeyStatus::Active;
                if signs {
                    k.last_used = Some(Utc::now());
                }
                signs
            })
        });
        if works {
            Ok(())
        } else {
            Err(Error::Transient(format!(
                "new access key {} did not authenticate",
                key.key_id
            )))
        }
    }
}

/// The handoff "ciphertext" is the user, key ID and secret, reversed and tagged: not the
/// secret in the clear, as KMS's is not, and opened only for the same user and key ID, as
/// KMS checks its encryption context.
impl HandoffPort for FakeAccount {
    async fn seal(&self, key: &NewAccessKey) -> Result<String> {
        drop(self.call("kms:Encrypt"));
        let text = format!("{}|{}|{}", key.user, key.key_id, key.secret.expose());
        Ok(format!("sealed:{}", text.chars().rev().collect::<String>()))
    }

    async fn open(&self, user: &str, key_id: &str, sealed: &str) -> Result<NewAccessKey> {
        drop(self.call("kms:Decrypt"));
        let text: String = sealed
            .strip_prefix("sealed:")
            .unwrap_or_default()
            .chars()
            .rev()
            .collect();
        match text.splitn(3, '|').collect::<Vec<_>>().as_slice() {
            [u, k, secret] if *u == user && *k == key_id => Ok(NewAccessKey {
                user: user.to_owned(),
                key_id: key_id.to_owned(),
                secret: SecretAccessKey::new((*secret).to_owned()),
            }),
            _ => Err(aws_error(
                "kms:Decrypt",
                AwsErrorKind::Rejected,
                "InvalidCiphertextException",
                "not sealed for this user and key",
            )),
        }
    }
}

impl ParametersPort for FakeAccount {
    async fn description(&self, name: &str) -> Result<Option<String>> {
        let state = self.call("ssm:DescribeParameters");
        Ok(state.parameters.get(name).map(|(_, d)| d.clone()))
    }

    async fn put_secure(&self, name: &str, value: &str, description: &str) -> Result<()> {
        let mut state = self.call("ssm:PutParameter");
        state
            .parameters
            .insert(name.to_owned(), (value.to_owned(), description.to_owned()));
        Ok(())
    }
}

impl SettingsPort for FakeAccount {
    async fn read(&self, secret_arn: &str) -> Result<zeroize::Zeroizing<String>> {
        let state = self.call("secretsmanager:GetSecretValue");
        state
            .settings
            .get(secret_arn)
            .map(|v| zeroize::Zeroizing::new(v.clone()))
            .ok_or_else(|| Error::NotFound(format!("no settings secret {secret_arn}")))
    }
}

impl MailerPort for FakeAccount {
    async fn send(&self, _from: &EmailAddress, email: &Email) -> Result<String> {
        let mut state = self.call("ses:SendEmail");
        let n = state.next();
        state.mails.push(email.clone());
        Ok(format!("fake-message-{n}"))
    }
}

impl HealthPort for FakeAccount {
    async fn event(&self, event_arn: &str) -> Result<HealthAnswer> {
        let mut state = self.call("health:DescribeEventDetails");
        Ok(match state.health.get(event_arn).cloned() {
            None => HealthAnswer::NoAccess(NO_HEALTH_PLAN.to_owned()),
            Some(None) => HealthAnswer::Unknown,
            Some(Some(event)) => {
                state.calls.push("health:DescribeAffectedEntities");
                HealthAnswer::Event(event)
            }
        })
    }
}

impl EventsPort for FakeAccount {
    async fn publish(&self, events: &[Event]) -> Result<()> {
        self.call("events:PutEvents")
            .events
            .extend_from_slice(events);
        Ok(())
    }
}

impl ExecutionsPort for FakeAccount {
    async fn start(
        &self,
        state_machine_arn: &str,
        name: &str,
        input: String,
    ) -> Result<StartOutcome> {
        let mut state = self.call("states:StartExecution");
        let arn = naming::execution_arn(state_machine_arn, name);
        let existing = state
            .started
            .iter()
            .find(|(m, n, _)| m == state_machine_arn && n == name)
            .map(|(_, _, existing)| existing.clone());
        if let Some(existing) = existing {
            // As the adapter does: Step Functions refuses the name, DescribeExecution
            // gives the input it was started with.
            state.calls.push("states:DescribeExecution");
            return Ok(if naming::same_input(&existing, &input) {
                StartOutcome::AlreadyStarted
            } else {
                StartOutcome::Conflicting { execution_arn: arn }
            });
        }
        state
            .started
            .push((state_machine_arn.to_owned(), name.to_owned(), input));
        Ok(StartOutcome::Started { execution_arn: arn })
    }
}

/// When a fault strikes a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultMode {
    /// The call fails and changes nothing (throttled, or a 5xx before it was applied).
    FailBefore,
    /// The call is applied and its response lost (the caller sees a transient error).
    LoseResponse,
}

/// One fault: on calls of `action` from the `nth` on (1: the first), `times` times (`None`:
/// every time).
#[derive(Debug, Clone)]
pub struct Fault {
    pub action: &'static str,
    pub mode: FaultMode,
    pub nth: usize,
    pub times: Option<usize>,
}

#[derive(Debug, Default)]
struct Faults {
    rules: Vec<(Fault, usize)>,
    injected: usize,
    /// How many calls of each action went through this layer.
    counts: BTreeMap<&'static str, usize>,
    /// xorshift state for how often to yield before a call (0: once, always).
    jitter: u64,
    /// Calls under way through this layer now, and the most there ever were at once.
    in_flight: usize,
    max_in_flight: usize,
}

/// Wraps an account and fails chosen calls, before or after applying them, and records the
/// actions called through it. Before each call it yields to the runtime, so that executions
/// running at once interleave at every AWS call.
#[derive(Debug, Clone)]
pub struct Faulty<A> {
    pub inner: A,
    faults: Arc<Mutex<Faults>>,
}

impl<A> Faulty<A> {
    pub fn new(inner: A) -> Self {
        Faulty {
            inner,
            faults: Arc::default(),
        }
    }

    /// Yields a pseudo-random number of times (from `seed`) before each call, so that
    /// executions running at once interleave differently for each seed.
    pub fn with_jitter(self, seed: u64) -> Self {
        // Any non-zero start: xorshift never leaves zero.
        self.lock().jitter = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        self
    }

    fn yields(&self) -> u64 {
        let mut faults = self.lock();
        if faults.jitter == 0 {
            return 1;
        }
        let mut x = faults.jitter;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        faults.jitter = x;
        x % 4
    }

    /// Adds a fault.
    pub fn inject(&self, fault: Fault) {
        self.lock().rules.push((fault, 0));
    }

    /// Removes every fault (the operator fixed the cause).
    pub fn clear(&self) {
        self.lock().rules.clear();
    }

    /// Every action called through this layer so far.
    pub fn seen(&self) -> BTreeSet<&'static str> {
        self.lock().counts.keys().copied().collect()
    }

    /// The most calls that were ever under way through this layer at once.
    pub fn max_in_flight(&self) -> usize {
        self.lock().max_in_flight
    }

    /// How many faults were injected so far.
    pub fn injected(&self) -> usize {
        self.lock().injected
    }

    fn lock(&self) -> MutexGuard<'_, Faults> {
        self.faults.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The fault that strikes this call of `action` now, if any (and counts it).
    /// Counts a call of `action`; returns its number (1: the first).
    fn count(&self, action: &'static str) -> usize {
        let mut faults = self.lock();
        let n = faults.counts.entry(action).or_default();
        *n += 1;
        *n
    }

    /// The fault that strikes call number `index` of `action` now, if any (and counts it).
    fn strike(&self, action: &'static str, index: usize, mode: FaultMode) -> Option<Error> {
        let mut faults = self.lock();
        let (fault, fired) = faults.rules.iter_mut().find(|(f, fired)| {
            f.action == action
                && f.mode == mode
                && index >= f.nth
                && f.times.is_none_or(|t| *fired < t)
        })?;
        *fired += 1;
        let persistent = fault.times.is_none();
        faults.injected += 1;
        Some(match (mode, persistent) {
            (FaultMode::FailBefore, false) => aws_error(
                action,
                AwsErrorKind::Throttled,
                "Throttling",
                "Rate exceeded",
            ),
            (FaultMode::FailBefore, true) => aws_error(
                action,
                AwsErrorKind::Transient,
                "ServiceUnavailable",
                "injected: service unavailable",
            ),
            (FaultMode::LoseResponse, _) => aws_error(
                action,
                AwsErrorKind::Transient,
                "DispatchFailure",
                "injected: the response was lost",
            ),
        })
    }

    async fn around<T>(
        &self,
        action: &'static str,
        call: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        let index = self.count(action);
        let _flight = Flight::start(self);
        for _ in 0..self.yields() {
            tokio::task::yield_now().await;
        }
        if let Some(err) = self.strike(action, index, FaultMode::FailBefore) {
            return Err(err);
        }
        let result = call.await;
        if let Some(err) = self.strike(action, index, FaultMode::LoseResponse) {
            return Err(err);
        }
        result
    }
}

/// One call under way through a [`Faulty`] layer, from its start to its end (or its drop).
struct Flight<'a, A>(&'a Faulty<A>);

impl<'a, A> Flight<'a, A> {
    fn start(layer: &'a Faulty<A>) -> Self {
        let mut faults = layer.lock();
        faults.in_flight += 1;
        faults.max_in_flight = faults.max_in_flight.max(faults.in_flight);
        Flight(layer)
    }
}

impl<A> Drop for Flight<'_, A> {
    fn drop(&mut self) {
        self.0.lock().in_flight -= 1;
    }
}

impl<A: UsersPort + Send> UsersPort for Faulty<A> {
    async fn list_users_page(&self, marker: Option<&str>, max_items: i32) -> Result<UserPage> {
        self.around(
            "iam:ListUsers",
            self.inner.list_users_page(marker, max_items),
        )
        .await
    }
    async fn user(&self, user: &str) -> Result<IamUser> {
        self.around("iam:GetUser", self.inner.user(user)).await
    }
    async fn access_keys(&self, user: &str) -> Result<Vec<AccessKey>> {
        self.around("iam:ListAccessKeys", self.inner.access_keys(user))
            .await
    }
    async fn user_tags(&self, user: &str) -> Result<BTreeMap<String, String>> {
        self.around("iam:ListUserTags", self.inner.user_tags(user))
            .await
    }
    async fn group_members(&self, group: &str) -> Result<HashSet<String>> {
        self.around("iam:GetGroup", self.inner.group_members(group))
            .await
    }
    async fn create_access_key(&self, user: &str) -> Result<NewAccessKey> {
        self.around("iam:CreateAccessKey", self.inner.create_access_key(user))
            .await
    }
    async fn set_key_status(&self, user: &str, key_id: &str, status: KeyStatus) -> Result<()> {
        self.around(
            "iam:UpdateAccessKey",
            self.inner.set_key_status(user, key_id, status),
        )
        .await
    }
    async fn delete_access_key(&self, user: &str, key_id: &str) -> Result<bool> {
        self.around(
            "iam:DeleteAccessKey",
            self.inner.delete_access_key(user, key_id),
        )
        .await
    }
    async fn key_owner(&self, key_id: &str) -> Result<Option<String>> {
        self.around("iam:GetAccessKeyLastUsed", self.inner.key_owner(key_id))
            .await
    }
    async fn key_last_used(&self, key_id: &str) -> Result<Option<DateTime<Utc>>> {
        self.around("iam:GetAccessKeyLastUsed", self.inner.key_last_used(key_id))
            .await
    }
    async fn credential_report(&self, max_age: Duration) -> Result<Arc<CredentialReport>> {
        // The port generates a report when there is none young enough.
        self.count("iam:GenerateCredentialReport");
        self.around(
            "iam:GetCredentialReport",
            self.inner.credential_report(max_age),
        )
        .await
    }
}

impl<A: SecretsPort + Send> SecretsPort for Faulty<A> {
    async fn describe(&self, name: &str) -> Result<Option<SecretDescription>> {
        self.around("secretsmanager:DescribeSecret", self.inner.describe(name))
            .await
    }
    async fn tagged(&self, key: &str, value: &str) -> Result<Vec<String>> {
        self.around("secretsmanager:ListSecrets", self.inner.tagged(key, value))
            .await
    }
    async fn clear_records(&self, secret_arn: &str) -> Result<()> {
        self.around(
            "secretsmanager:UntagResource",
            self.inner.clear_records(secret_arn),
        )
        .await
    }
    async fn create(&self, name: &str, user: &str, user_id: &str) -> Result<String> {
        self.around(
            "secretsmanager:CreateSecret",
            self.inner.create(name, user, user_id),
        )
        .await
    }
    async fn policy(&self, secret_arn: &str) -> Result<Option<String>> {
        self.around(
            "secretsmanager:GetResourcePolicy",
            self.inner.policy(secret_arn),
        )
        .await
    }
    async fn put_policy(&self, secret_arn: &str, policy: &serde_json::Value) -> Result<()> {
        self.around(
            "secretsmanager:PutResourcePolicy",
            self.inner.put_policy(secret_arn, policy),
        )
        .await
    }
    async fn put_key(&self, secret_arn: &str, key_id: &str, value: &str) -> Result<()> {
        self.around(
            "secretsmanager:PutSecretValue",
            self.inner.put_key(secret_arn, key_id, value),
        )
        .await
    }
    async fn mark_deactivating(&self, secret_arn: &str, key_id: &str) -> Result<()> {
        self.around(
            "secretsmanager:TagResource",
            self.inner.mark_deactivating(secret_arn, key_id),
        )
        .await
    }
    async fn record_overlap(&self, secret_arn: &str, window: &Overlap) -> Result<()> {
        self.around(
            "secretsmanager:TagResource",
            self.inner.record_overlap(secret_arn, window),
        )
        .await
    }
    async fn record_deactivation(
        &self,
        secret_arn: &str,
        key_id: &str,
        at: DateTime<Utc>,
    ) -> Result<()> {
        self.around(
            "secretsmanager:TagResource",
            self.inner.record_deactivation(secret_arn, key_id, at),
        )
        .await
    }
}

impl<A: VerifierPort + Send> VerifierPort for Faulty<A> {
    async fn verify(&self, key: &NewAccessKey, expected_arn: &str) -> Result<()> {
        self.around(
            "sts:GetCallerIdentity",
            self.inner.verify(key, expected_arn),
        )
        .await
    }
}

impl<A: HandoffPort + Send> HandoffPort for Faulty<A> {
    async fn seal(&self, key: &NewAccessKey) -> Result<String> {
        self.around("kms:Encrypt", self.inner.seal(key)).await
    }
    async fn open(&self, user: &str, key_id: &str, sealed: &str) -> Result<NewAccessKey> {
        self.around("kms:Decrypt", self.inner.open(user, key_id, sealed))
            .await
    }
}

impl<A: ParametersPort + Send> ParametersPort for Faulty<A> {
    async fn description(&self, name: &str) -> Result<Option<String>> {
        self.around("ssm:DescribeParameters", self.inner.description(name))
            .await
    }
    async fn put_secure(&self, name: &str, value: &str, description: &str) -> Result<()> {
        self.around(
            "ssm:PutParameter",
            self.inner.put_secure(name, value, description),
        )
        .await
    }
}

impl<A: SettingsPort + Send> SettingsPort for Faulty<A> {
    async fn read(&self, secret_arn: &str) -> Result<zeroize::Zeroizing<String>> {
        self.around("secretsmanager:GetSecretValue", self.inner.read(secret_arn))
            .await
    }
}

impl<A: MailerPort + Send> MailerPort for Faulty<A> {
    async fn send(&self, from: &EmailAddress, email: &Email) -> Result<String> {
        self.around("ses:SendEmail", self.inner.send(from, email))
            .await
    }
}

impl<A: EventsPort + Send> EventsPort for Faulty<A> {
    async fn publish(&self, events: &[Event]) -> Result<()> {
        self.around("events:PutEvents", self.inner.publish(events))
            .await
    }
}

impl<A: HealthPort + Send> HealthPort for Faulty<A> {
    async fn event(&self, event_arn: &str) -> Result<HealthAnswer> {
        let answer = self
            .around("health:DescribeEventDetails", self.inner.event(event_arn))
            .await?;
        match answer {
            // As the adapter does: an event found, its affected entities are read.
            HealthAnswer::Event(_) => {
                self.around("health:DescribeAffectedEntities", async { Ok(answer) })
                    .await
            }
            other => Ok(other),
        }
    }
}

impl<A: ExecutionsPort + Send> ExecutionsPort for Faulty<A> {
    async fn start(
        &self,
        state_machine_arn: &str,
        name: &str,
        input: String,
    ) -> Result<StartOutcome> {
        let outcome = self
            .around(
                "states:StartExecution",
                self.inner.start(state_machine_arn, name, input),
            )
            .await?;
        match outcome {
            StartOutcome::Started { .. } => Ok(outcome),
            // The name is taken: the adapter reads that execution's input.
            taken => {
                self.around("states:DescribeExecution", async { Ok(taken) })
                    .await
            }
        }
    }
}
