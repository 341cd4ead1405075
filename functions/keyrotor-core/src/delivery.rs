//! Where a user's new key is delivered (issue 29): the destinations document, its checks,
//! what `deliver-key` reports per destination, and the signed notice a webhook gets.
//!
//! A destination is a place keyrotor *sends the key to*. Whoever may declare one may have
//! any user's next key sent to a place of their choosing, so destinations are declared
//! only in keyrotor's own deployment (`KEYROTOR_DESTINATIONS`, set from the template's
//! `Destinations` parameter), never on the user (a tag the user or an IAM-tagging role
//! could write). docs/SECURITY.md, "Destinations", says why.
//!
//! The document maps a user name (as IAM compares them: case-insensitively) to at most
//! [`MAX_PER_USER`] destinations. A user of a member account (in the organization modes)
//! is named `<account ID>/<user>`; a bare name is a user of keyrotor's own account:
//!
//! ```json
//! {"alice": [
//!   {"type": "ssm", "parameter": "/ci/alice/aws-key"},
//!   {"type": "github", "repository": "acme/deploy", "environment": "production"},
//!   {"type": "webhook", "url": "https://hooks.example.com/keyrotor"}
//! ]}
//! ```

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::payload::{AccountId, CaughtError, UserName};

/// At most this many destinations per user: each is written at every rotation, inside one
/// invocation of `deliver-key`.
pub const MAX_PER_USER: usize = 10;

/// The secret names a GitHub destination writes unless it names its own.
pub const DEFAULT_KEY_ID_NAME: &str = "AWS_ACCESS_KEY_ID";
pub const DEFAULT_SECRET_NAME: &str = "AWS_SECRET_ACCESS_KEY";

/// One place a user's key goes, as declared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase", deny_unknown_fields)]
pub enum Destination {
    /// An SSM Parameter Store SecureString in keyrotor's account, overwritten with a new
    /// version holding `{"AccessKeyId", "SecretAccessKey"}`, encrypted with the key the
    /// template names (`KEYROTOR_PARAMETER_KMS_KEY_ID`).
    #[serde(rename_all = "camelCase")]
    Ssm { parameter: String },
    /// GitHub Actions secrets of a repository, or of one of its environments: two secrets,
    /// the key ID and the secret access key, each sealed to the repository's public key.
    #[serde(rename_all = "camelCase")]
    Github {
        repository: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        environment: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        access_key_id_name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        secret_access_key_name: Option<String>,
    },
    /// A notice with no secret in it (user, new key ID, secret ARN, deadline), signed with
    /// HMAC-SHA256, for a team's own automation to fetch the key with its own role.
    #[serde(rename_all = "camelCase")]
    Webhook { url: String },
}

impl Destination {
    pub fn kind(&self) -> DestinationKind {
        match self {
            Destination::Ssm { .. } => DestinationKind::Ssm,
            Destination::Github { .. } => DestinationKind::Github,
            Destination::Webhook { .. } => DestinationKind::Webhook,
        }
    }

    /// How reports, logs and mails name the destination. A webhook URL may carry a token
    /// of its own (in its path or query), so it is named by its host and a digest only.
    pub fn label(&self) -> String {
        match self {
            Destination::Ssm { parameter } => format!("ssm:{parameter}"),
            Destination::Github {
                repository,
                environment: None,
                ..
            } => format!("github:{repository}"),
            Destination::Github {
                repository,
                environment: Some(env),
                ..
            } => format!("github:{repository} (environment {env})"),
            Destination::Webhook { url } => {
                let host = url
                    .split_once("://")
                    .map_or("", |(_, rest)| rest)
                    .split(['/', '?', '#'])
                    .next()
                    .unwrap_or_default();
                // Whatever user info a URL carries stays out.
                let host = host.rsplit('@').next().unwrap_or_default();
                let digest = Sha256::digest(url.as_bytes());
                let short: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
                format!("webhook:{host} #{short}")
            }
        }
    }

    /// The GitHub secret names: (key ID, secret access key).
    pub fn github_names(&self) -> Option<(&str, &str)> {
        match self {
            Destination::Github {
                access_key_id_name,
                secret_access_key_name,
                ..
            } => Some((
                access_key_id_name.as_deref().unwrap_or(DEFAULT_KEY_ID_NAME),
                secret_access_key_name
                    .as_deref()
                    .unwrap_or(DEFAULT_SECRET_NAME),
            )),
            _ => None,
        }
    }

    fn check(&self) -> Result<(), String> {
        match self {
            Destination::Ssm { parameter } => check_parameter(parameter),
            Destination::Github {
                repository,
                environment,
                ..
            } => {
                check_repository(repository)?;
                if let Some(env) = environment {
                    check_environment(env)?;
                }
                let (id, secret) = self.github_names().unwrap_or_default();
                check_secret_name(id)?;
                check_secret_name(secret)?;
                if id.eq_ignore_ascii_case(secret) {
                    return Err(format!("{repository}: both secrets are named {id}"));
                }
                Ok(())
            }
            Destination::Webhook { url } => check_url(url),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum DestinationKind {
    Ssm,
    Github,
    Webhook,
}

/// SSM parameter names: a path of letters, digits and `_.-/`, at most 1,011 characters,
/// outside the `aws` and `ssm` prefixes AWS reserves.
fn check_parameter(name: &str) -> Result<(), String> {
    let ok = name.starts_with('/')
        && name.len() <= 1011
        && !name.contains("//")
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-/".contains(c));
    let reserved = ["/aws", "/ssm"]
        .iter()
        .any(|p| name.to_ascii_lowercase().starts_with(p));
    if !ok || reserved {
        return Err(format!(
            "{name:?} is not an SSM parameter path keyrotor writes (a /path of letters, digits \
             and _.-, not under /aws or /ssm)"
        ));
    }
    Ok(())
}

/// `owner/name` as GitHub allows them: owner 1–39 letters, digits and `-`; name 1–100
/// letters, digits and `._-`, not `.` or `..`.
fn check_repository(repository: &str) -> Result<(), String> {
    let bad = || format!("{repository:?} is not a GitHub repository (owner/name)");
    let (owner, name) = repository.split_once('/').ok_or_else(bad)?;
    let owner_ok = (1..=39).contains(&owner.len())
        && owner.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    let name_ok = (1..=100).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        && name != "."
        && name != "..";
    (owner_ok && name_ok).then_some(()).ok_or_else(bad)
}

/// Environment names keyrotor writes to: 1–255 letters, digits and `._-` (GitHub allows
/// more; these need no escaping in a URL path).
fn check_environment(env: &str) -> Result<(), String> {
    let ok = (1..=255).contains(&env.len())
        && env
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    ok.then_some(()).ok_or_else(|| {
        format!("{env:?} is not an environment name keyrotor writes (letters, digits and ._-)")
    })
}

/// GitHub Actions secret names: letters, digits and `_`, not starting with a digit or with
/// `GITHUB_`.
fn check_secret_name(name: &str) -> Result<(), String> {
    let ok = (1..=200).contains(&name.len())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && !name.to_ascii_uppercase().starts_with("GITHUB_");
    ok.then_some(())
        .ok_or_else(|| format!("{name:?} is not a GitHub Actions secret name"))
}

/// Webhook URLs: `https://`, or `http://` to the loopback interface only (a local
/// receiver). No user info, no fragment, no whitespace.
pub fn check_url(url: &str) -> Result<(), String> {
    let bad = |why: &str| {
        format!(
            "webhook URL {}: {why}",
            Destination::Webhook {
                url: url.to_owned()
            }
            .label()
        )
    };
    if url.len() > 2048 || url.chars().any(|c| !c.is_ascii_graphic()) {
        return Err(bad("at most 2,048 printable characters"));
    }
    let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("no scheme"))?;
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    if authority.is_empty() || authority.contains('@') || url.contains('#') {
        return Err(bad("needs a host, and no user info or fragment"));
    }
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    };
    match scheme {
        "https" => Ok(()),
        "http" if ["127.0.0.1", "localhost", "::1"].contains(&host) => Ok(()),
        _ => Err(bad("must be https (or http to the loopback interface)")),
    }
}

/// The parsed `KEYROTOR_DESTINATIONS`: each user's destinations, as the account a function
/// works in sees them ([`Destinations::of`]: keyrotor's own account, or the member account
/// of [`Destinations::for_account`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Destinations {
    /// Keyed by the lower-case user name (IAM compares names case-insensitively).
    by_user: BTreeMap<String, Vec<Destination>>,
    /// The member accounts' users, by account ID.
    members: BTreeMap<String, BTreeMap<String, Vec<Destination>>>,
}

impl Destinations {
    /// Reads and checks the document; the error says which user's which entry is wrong.
    pub fn parse(text: &str) -> Result<Self, String> {
        let raw: BTreeMap<String, Vec<Destination>> = serde_json::from_str(text)
            .map_err(|e| format!("not a map of user names to destinations: {e}"))?;
        let mut parsed = Destinations::default();
        for (entry, destinations) in raw {
            let (account, user) = match entry.split_once('/') {
                Some((account, user)) => {
                    let id = AccountId::try_from(account.to_owned())
                        .map_err(|e| format!("{entry:?}: {e}"))?;
                    (Some(id), user.to_owned())
                }
                None => (None, entry.clone()),
            };
            let name = UserName::try_from(user.clone()).map_err(|e| format!("{entry:?}: {e}"))?;
            if destinations.len() > MAX_PER_USER {
                return Err(format!(
                    "{name}: {} destinations, at most {MAX_PER_USER}",
                    destinations.len()
                ));
            }
            for d in &destinations {
                d.check().map_err(|e| format!("{name}: {e}"))?;
            }
            let mut labels: Vec<String> = destinations.iter().map(Destination::label).collect();
            labels.sort();
            if labels.windows(2).any(|w| w[0] == w[1]) {
                return Err(format!("{name}: a destination is listed twice"));
            }
            let key = name.as_str().to_ascii_lowercase();
            let users = match &account {
                None => &mut parsed.by_user,
                Some(id) => parsed.members.entry(id.to_string()).or_default(),
            };
            if users.insert(key, destinations).is_some() {
                return Err(format!(
                    "{entry} is listed twice (IAM user names are case-insensitive)"
                ));
            }
        }
        Ok(parsed)
    }

    /// The document as a function working in the member account `account` sees it: that
    /// account's users by their names, and no one else's.
    pub fn for_account(&self, account: &str) -> Destinations {
        Destinations {
            by_user: self.members.get(account).cloned().unwrap_or_default(),
            members: BTreeMap::new(),
        }
    }

    /// The user's destinations (none if the document does not name them).
    pub fn of(&self, user: &str) -> &[Destination] {
        lookup(&self.by_user, user)
    }

    /// The destinations of `user` of the member account `account`: what
    /// `for_account(account).of(user)` gives, without the copy.
    pub fn of_member(&self, account: &str, user: &str) -> &[Destination] {
        self.members
            .get(account)
            .map_or(&[], |users| lookup(users, user))
    }

    /// Whether no user of any account has a destination.
    pub fn is_empty(&self) -> bool {
        self.by_user.is_empty() && self.members.values().all(BTreeMap::is_empty)
    }

    fn all(&self) -> impl Iterator<Item = &Destination> + '_ {
        self.by_user
            .values()
            .chain(self.members.values().flat_map(BTreeMap::values))
            .flatten()
    }

    /// Every SSM parameter named.
    pub fn parameters(&self) -> impl Iterator<Item = &str> + '_ {
        self.all().filter_map(|d| match d {
            Destination::Ssm { parameter } => Some(parameter.as_str()),
            _ => None,
        })
    }

    pub fn kinds(&self) -> impl Iterator<Item = DestinationKind> + '_ {
        self.all().map(Destination::kind)
    }
}

/// A new key on its way from `create-key` to `deliver-key`: its secret encrypted under
/// keyrotor's delivery key (base64), for that user and key ID only, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Handoff {
    pub sealed: String,
    pub sealed_at: DateTime<Utc>,
}

fn lookup<'a>(users: &'a BTreeMap<String, Vec<Destination>>, user: &str) -> &'a [Destination] {
    users
        .get(&user.to_ascii_lowercase())
        .map_or(&[], Vec::as_slice)
}

/// What became of one destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum DeliveryOutcome {
    /// Written now.
    Delivered,
    /// Already holds this key (an earlier attempt wrote it): not written again.
    AlreadyHeld,
    /// Could not be written; the key is still in the user's secret, and the owner and the
    /// admin are told.
    Failed,
    /// Dry run: would have been written.
    WouldDeliver,
}

/// One destination's line of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryLine {
    pub destination: String,
    pub kind: DestinationKind,
    pub outcome: DeliveryOutcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<DateTime<Utc>>,
    /// Why it failed: the destination's status and message, never a secret or a token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

/// What `deliver-key` did for one rotation, as the state machine carries it on to the
/// mails (`$.created.delivery`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryReport {
    pub destinations: Vec<DeliveryLine>,
    pub delivered: usize,
    pub failed: usize,
    /// Why nothing was attempted, when nothing was (no handoff, a member account).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// deliver-key itself failed (the state machine's Catch): nothing was delivered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<CaughtError>,
}

impl DeliveryReport {
    pub fn new(destinations: Vec<DeliveryLine>, note: Option<String>) -> Self {
        let count = |o: &[DeliveryOutcome]| {
            destinations
                .iter()
                .filter(|l| o.contains(&l.outcome))
                .count()
        };
        DeliveryReport {
            delivered: count(&[DeliveryOutcome::Delivered, DeliveryOutcome::AlreadyHeld]),
            failed: count(&[DeliveryOutcome::Failed]),
            destinations,
            note,
            error: None,
        }
    }

    /// Whether the admin is told too: a destination failed, or the delivery did.
    pub fn needs_admin(&self) -> bool {
        self.failed > 0 || self.error.is_some()
    }
}

/// The notice a webhook destination gets: no secret, only where to fetch the key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Notice<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub user: &'a str,
    pub access_key_id: &'a str,
    pub secret_arn: Option<&'a str>,
    /// When the old key is deactivated at the latest.
    pub deadline: DateTime<Utc>,
    /// The same for every attempt of one delivery: receivers drop repeats by it.
    pub delivery_id: String,
}

/// The header names of a signed notice.
pub const SIGNATURE_HEADER: &str = "x-keyrotor-signature";
pub const TIMESTAMP_HEADER: &str = "x-keyrotor-timestamp";
pub const DELIVERY_HEADER: &str = "x-keyrotor-delivery";

impl<'a> Notice<'a> {
    pub fn new(
        user: &'a str,
        access_key_id: &'a str,
        secret_arn: Option<&'a str>,
        deadline: DateTime<Utc>,
        url: &str,
    ) -> Self {
        let digest = Sha256::digest(format!("{user}\n{access_key_id}\n{url}").as_bytes());
        Notice {
            kind: "keyrotor.newKey",
            user,
            access_key_id,
            secret_arn,
            deadline,
            delivery_id: digest[..16].iter().map(|b| format!("{b:02x}")).collect(),
        }
    }
}

/// The signature of a notice's `body` sent at `timestamp`: `sha256=` and the hex
/// HMAC-SHA256 of `"<timestamp>.<body>"` under the shared signing key. The timestamp is
/// signed too, so a receiver can refuse old notices replayed.
pub fn sign(signing_key: &[u8], timestamp: DateTime<Utc>, body: &[u8]) -> Result<String, String> {
    let mut mac = Hmac::<Sha256>::new_from_slice(signing_key)
        .map_err(|e| format!("the webhook signing key: {e}"))?;
    mac.update(timestamp_text(timestamp).as_bytes());
    mac.update(b".");
    mac.update(body);
    let tag = mac.finalize().into_bytes();
    let hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("sha256={hex}"))
}

/// The timestamp as sent in [`TIMESTAMP_HEADER`]: RFC 3339, whole seconds, `Z`.
pub fn timestamp_text(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

impl fmt::Display for DeliveryOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DeliveryOutcome::Delivered => "delivered",
            DeliveryOutcome::AlreadyHeld => "already held",
            DeliveryOutcome::Failed => "failed",
            DeliveryOutcome::WouldDeliver => "would deliver (dry run)",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(json: &str) -> Result<Destinations, String> {
        Destinations::parse(json)
    }

    #[test]
    fn a_document_with_every_kind_parses_and_is_found_case_insensitively() {
        let d = doc(r#"{"Alice": [
            {"type": "ssm", "parameter": "/ci/alice/key"},
            {"type": "github", "repository": "acme/deploy", "environment": "prod"},
            {"type": "webhook", "url": "https://hooks.example.com/k?token=s3cr3t"}
        ]}"#)
        .expect("valid");
        let of = d.of("ALICE");
        assert_eq!(of.len(), 3);
        assert_eq!(of[0].label(), "ssm:/ci/alice/key");
        assert_eq!(of[1].label(), "github:acme/deploy (environment prod)");
        assert_eq!(
            of[1].github_names(),
            Some(("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"))
        );
        let hook = of[2].label();
        assert!(hook.starts_with("webhook:hooks.example.com #"), "{hook}");
        assert!(!hook.contains("s3cr3t"), "a URL's token stays out: {hook}");
        assert!(d.of("bob").is_empty());
    }

    #[test]
    fn bad_documents_are_refused_with_the_user_and_entry_named() {
        for (json, says) in [
            ("[]", "not a map"),
            (r#"{"a b": []}"#, "\"a b\""),
            (r#"{"alice": [{"type": "s3", "bucket": "x"}]}"#, "not a map"),
            (
                r#"{"alice": [{"type": "ssm", "parameter": "/aws/x"}]}"#,
                "alice",
            ),
            (
                r#"{"alice": [{"type": "ssm", "parameter": "relative"}]}"#,
                "alice",
            ),
            (
                r#"{"alice": [{"type": "ssm", "parameter": "/x", "extra": 1}]}"#,
                "not a map",
            ),
            (
                r#"{"alice": [{"type": "github", "repository": "noslash"}]}"#,
                "noslash",
            ),
            (
                r#"{"alice": [{"type": "github", "repository": "a/../b"}]}"#,
                "a/../b",
            ),
            (
                r#"{"alice": [{"type": "github", "repository": "a/b", "environment": "x/y"}]}"#,
                "x/y",
            ),
            (
                r#"{"alice": [{"type": "github", "repository": "a/b", "accessKeyIdName": "GITHUB_TOKEN"}]}"#,
                "GITHUB_TOKEN",
            ),
            (
                r#"{"alice": [{"type": "github", "repository": "a/b", "accessKeyIdName": "K", "secretAccessKeyName": "k"}]}"#,
                "both secrets",
            ),
            (
                r#"{"alice": [{"type": "webhook", "url": "http://hooks.example.com/"}]}"#,
                "https",
            ),
            (
                r#"{"alice": [{"type": "webhook", "url": "https://user:pw@hooks.example.com/"}]}"#,
                "user info",
            ),
            (
                r#"{"alice": [{"type": "ssm", "parameter": "/x"}, {"type": "ssm", "parameter": "/x"}]}"#,
                "twice",
            ),
            (r#"{"alice": [], "ALICE": []}"#, "twice"),
            (r#"{"12345/alice": []}"#, "12345/alice"),
            (
                r#"{"123456789012/alice": [], "123456789012/Alice": []}"#,
                "twice",
            ),
        ] {
            let err = doc(json).expect_err(json);
            assert!(err.contains(says), "{json}: {err}");
            assert!(!err.contains("pw@"), "{err}");
        }
        let many: Vec<String> = (0..=MAX_PER_USER)
            .map(|i| format!(r#"{{"type": "ssm", "parameter": "/p{i}"}}"#))
            .collect();
        let err = doc(&format!(r#"{{"alice": [{}]}}"#, many.join(","))).expect_err("too many");
        assert!(err.contains("at most 10"), "{err}");
    }

    #[test]
    fn a_member_accounts_users_are_seen_only_from_that_account() {
        let d = doc(r#"{
            "alice": [{"type": "ssm", "parameter": "/own"}],
            "222222222222/alice": [{"type": "ssm", "parameter": "/member"}],
            "333333333333/bob": [{"type": "github", "repository": "acme/x"}]
        }"#)
        .expect("valid");
        assert_eq!(d.of("alice")[0].label(), "ssm:/own");
        assert!(d.of("bob").is_empty(), "bob is another account's");
        let member = d.for_account("222222222222");
        assert_eq!(member.of("ALICE")[0].label(), "ssm:/member");
        assert_eq!(d.of_member("222222222222", "ALICE"), member.of("alice"));
        assert!(d.of_member("222222222222", "bob").is_empty());
        assert!(member.of("bob").is_empty());
        assert!(d.for_account("444444444444").is_empty());
        assert!(
            member.for_account("333333333333").is_empty(),
            "a view sees no other"
        );
        let kinds: Vec<DestinationKind> = d.kinds().collect();
        assert_eq!(kinds.len(), 3);
        assert_eq!(d.parameters().count(), 2);
    }

    #[test]
    fn loopback_http_is_the_only_plain_http_a_webhook_may_use() {
        assert!(check_url("http://127.0.0.1:8080/hook").is_ok());
        assert!(check_url("http://[::1]:8080/hook").is_ok());
        assert!(check_url("https://example.com").is_ok());
        assert!(check_url("http://127.0.0.1.example.com/").is_err());
        assert!(check_url("ftp://example.com/").is_err());
        assert!(check_url("https://example.com/#frag").is_err());
    }

    #[test]
    fn the_signature_covers_the_timestamp_and_the_body() {
        let at = DateTime::parse_from_rfc3339("2026-12-04T10:00:00Z")
            .expect("time")
            .with_timezone(&Utc);
        let sign = |key: &[u8], at, body: &[u8]| sign(key, at, body).expect("signs");
        let reference = sign(b"Jefe", at, b"{}");
        assert!(reference.starts_with("sha256=") && reference.len() == 7 + 64);
        assert_ne!(sign(b"Jefe", at, b"{ }"), reference, "body signed");
        let later = at + chrono::Duration::seconds(1);
        assert_ne!(sign(b"Jefe", later, b"{}"), reference, "time signed");
        assert_ne!(sign(b"Jeff", at, b"{}"), reference, "key used");
        // The construction is HMAC-SHA256 over "<timestamp>.<body>".
        let mut mac = Hmac::<Sha256>::new_from_slice(b"Jefe").expect("key");
        mac.update(b"2026-12-04T10:00:00Z.{}");
        let hex: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(reference, format!("sha256={hex}"));
    }

    #[test]
    fn a_notice_has_no_room_for_a_secret_and_a_stable_delivery_id() {
        let at = Utc::now();
        let a = Notice::new(
            "alice",
            "AKIANEW",
            Some("arn:aws:secretsmanager:x"),
            at,
            "https://h/1",
        );
        let b = Notice::new(
            "alice",
            "AKIANEW",
            Some("arn:aws:secretsmanager:x"),
            at,
            "https://h/1",
        );
        let c = Notice::new("alice", "AKIANEW", None, at, "https://h/2");
        assert_eq!(a.delivery_id, b.delivery_id);
        assert_ne!(a.delivery_id, c.delivery_id);
        let json = serde_json::to_value(&a).expect("json");
        let mut fields: Vec<&String> = json.as_object().expect("object").keys().collect();
        fields.sort();
        assert_eq!(
            fields,
            [
                "accessKeyId",
                "deadline",
                "deliveryId",
                "secretArn",
                "type",
                "user"
            ]
        );
    }

    #[test]
    fn the_report_counts_held_as_delivered() {
        let line = |outcome| DeliveryLine {
            destination: "ssm:/x".into(),
            kind: DestinationKind::Ssm,
            outcome,
            at: None,
            why: None,
        };
        let r = DeliveryReport::new(
            vec![
                line(DeliveryOutcome::Delivered),
                line(DeliveryOutcome::AlreadyHeld),
                line(DeliveryOutcome::Failed),
            ],
            None,
        );
        assert_eq!((r.delivered, r.failed), (2, 1));
    }
}
