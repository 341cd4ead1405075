//! `deliver-key`: sends a rotation's new key to the places its user's programs read it
//! from, as keyrotor's deployment declares them (`KEYROTOR_DESTINATIONS`, see
//! [`keyrotor_core::delivery`]): an SSM SecureString, GitHub Actions secrets, or a signed
//! webhook notice that carries no secret. Runs after `create-key` stored the key and before
//! the overlap window opens, so every destination holds the new key for the whole window,
//! and the usage-aware cutover then sees the programs move.
//!
//! It never fails a rotation over a destination: each one's outcome (delivered, already
//! held, failed and why) is reported to the state machine, which tells the owner and the
//! admin, and the key stays in the user's secret. It fails only when it cannot tell what to
//! do (bad input) or when a retry may help before anything was sent (a throttled KMS or
//! Secrets Manager call).
//!
//! In a member account (organization modes) it writes that account's SSM destinations
//! through its member role `role/keyrotor/deliver-key`, assumed only for a user with
//! destinations there; the handoff is opened, the settings secrets read and GitHub and the
//! webhooks reached from keyrotor's own account ([`handle_in_account`]).
//!
//! It gets the key from `create-key` as a KMS ciphertext (the handoff) only its role may
//! decrypt, because the user's secret lets no one but the user read it. A rerun does not
//! write a destination that already holds this key: an SSM parameter whose description
//! names the key, GitHub secrets both written after the key was sealed. A webhook notice
//! carries a delivery ID that stays the same for every attempt.

pub mod github;
pub mod http;

use aws_config::SdkConfig;
use chrono::{DateTime, Duration, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use tracing::{info, warn};
use zeroize::Zeroizing;

use keyrotor_aws::member::{take_account, with_account};
use keyrotor_aws::{Accounts, FromConfig, Handoffs, Parameters, Settings};
use keyrotor_core::config::{Config, ConfigError};
use keyrotor_core::delivery::{
    self, DeliveryLine, DeliveryOutcome, DeliveryReport, Destination, Handoff, Notice,
};
use keyrotor_core::error::{Error, Result};
use keyrotor_core::payload::{parse, Arn, KeyId, UserName};
use keyrotor_core::ports::{HandoffPort, ParametersPort, SettingsPort};
use keyrotor_core::secret::{NewAccessKey, StoredCredential};

use crate::http::{HttpPort, Https, Request};

/// What `deliver-key` needs: its settings, KMS (to open the handoff), SSM, Secrets Manager
/// (its own settings secrets only) and an HTTPS client.
pub struct Deps<H = Handoffs, P = Parameters, S = Settings, W = Https> {
    pub config: Config,
    pub handoffs: Option<H>,
    pub parameters: P,
    pub settings: S,
    pub http: W,
}

impl FromConfig for Deps {
    fn from_config(config: Config, sdk: &SdkConfig) -> std::result::Result<Self, ConfigError> {
        config.delivery.require_settings()?;
        let http = Https::new();
        let delivery = &config.delivery;
        Ok(Deps {
            handoffs: delivery
                .handoff_kms_key_id
                .as_deref()
                .map(|key| Handoffs::from_sdk(sdk, key)),
            parameters: Parameters::from_sdk(sdk, delivery.parameter_kms_key_id.as_deref()),
            settings: Settings::from_sdk(sdk),
            http,
            config,
        })
    }

    /// In a member account only SSM is the member's (its member role's session, under the
    /// AWS managed key: the template's `ParameterKmsKeyArn` is a key of keyrotor's
    /// account); the handoff, the settings and the web stay keyrotor's own.
    fn in_member(
        &self,
        config: Config,
        member: &SdkConfig,
    ) -> std::result::Result<Self, ConfigError> {
        Ok(Deps {
            handoffs: self.handoffs.clone(),
            parameters: Parameters::from_sdk(member, None),
            settings: self.settings.clone(),
            http: self.http.clone(),
            config,
        })
    }
}

/// Every AWS API action this function calls: its role grants exactly these (checked by
/// `tools/check_infra.py`), and a test holds the calls the code makes to them.
pub const AWS_ACTIONS: &[&str] = &[
    "kms:Decrypt",
    "secretsmanager:GetSecretValue",
    "ssm:DescribeParameters",
    "ssm:PutParameter",
];

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeliverKeyInput {
    pub user: UserName,
    pub old_key_id: KeyId,
    /// `null` in a dry run.
    #[serde(default)]
    pub new_key_id: Option<KeyId>,
    #[serde(default)]
    pub secret_arn: Option<Arn>,
    /// `null` when create-key found its key stored by an earlier attempt, or in a dry run.
    #[serde(default)]
    pub handoff: Option<Handoff>,
    #[serde(default)]
    pub resumed: bool,
    /// Forced: the old key is deactivated at once, so the deadline is now.
    #[serde(default)]
    pub force: bool,
    #[serde(default)]
    pub dry_run: bool,
}

/// Replaces `$.created`: the key pair the later steps need, and the delivery report (the
/// handoff is dropped, so it is not carried through the rest of the execution).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliverKeyOutput {
    pub user: String,
    pub old_key_id: String,
    pub new_key_id: Option<String>,
    pub resumed: bool,
    pub retired: bool,
    pub delivery: DeliveryReport,
}

/// How one attempt at a destination ended, when it did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// May work if tried again soon (no answer, a 5xx).
    Retry(String),
    /// Rate limited: may work after `wait_secs`.
    RateLimited {
        wait_secs: u64,
        why: String,
    },
    NotFound(String),
    /// Will not work as things are.
    Fail(String),
}

impl Attempt {
    fn map(self, f: impl FnOnce(String) -> String) -> Attempt {
        match self {
            Attempt::Retry(w) => Attempt::Retry(f(w)),
            Attempt::RateLimited { wait_secs, why } => Attempt::RateLimited {
                wait_secs,
                why: f(why),
            },
            Attempt::NotFound(w) => Attempt::NotFound(f(w)),
            Attempt::Fail(w) => Attempt::Fail(f(w)),
        }
    }

    fn why(self) -> String {
        match self {
            Attempt::Retry(w) | Attempt::NotFound(w) | Attempt::Fail(w) => w,
            Attempt::RateLimited { why, .. } => why,
        }
    }
}

/// How often, and how long, one destination is tried within one invocation: three tries,
/// one and then two seconds apart; a rate limit is waited out only if it lifts within
/// [`MAX_RATE_WAIT_SECS`] (else the destination fails, and the report says until when).
const TRIES: u32 = 3;
const MAX_RATE_WAIT_SECS: u64 = 10;
/// No destination is started after this much of an invocation: one takes at most about
/// 55 s (three tries of 10 s, their pauses, two waits for a rate limit), so the last one
/// ends inside the function's 300 s timeout, and the report names those not tried.
pub const BUDGET: std::time::Duration = std::time::Duration::from_secs(240);

async fn with_retries<T, F, Fut>(mut attempt: F) -> std::result::Result<T, String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = std::result::Result<T, Attempt>>,
{
    let mut tries = 0;
    loop {
        tries += 1;
        let wait = match attempt().await {
            Ok(value) => return Ok(value),
            Err(Attempt::Retry(why)) if tries < TRIES => {
                warn!(%why, "will try again");
                u64::from(tries)
            }
            Err(Attempt::RateLimited { wait_secs, why })
                if tries < TRIES && wait_secs <= MAX_RATE_WAIT_SECS =>
            {
                warn!(%why, wait_secs, "rate limited; will try again");
                wait_secs.max(1)
            }
            Err(Attempt::RateLimited { wait_secs, why }) => {
                return Err(format!("{why}; it lifts in about {wait_secs} s"))
            }
            Err(other) => return Err(other.why()),
        };
        tokio::time::sleep(std::time::Duration::from_secs(wait)).await;
    }
}

/// The event as `keyrotor_lambda::serve_with_accounts` gives it, `account` and all: in a
/// member account, the member role is assumed only if the user has destinations there (a
/// user without any, the usual case, needs no role of deliver-key in that account), and
/// the output carries `account` on.
pub async fn handle_in_account(
    event: serde_json::Value,
    accounts: &Accounts<Deps>,
) -> Result<serde_json::Value> {
    let (account, payload) = take_account(event)?;
    let own = accounts.deps(None).await?;
    let deps = match &account {
        None => own,
        Some(member) => {
            let input: DeliverKeyInput = parse(payload.clone())?;
            let destinations = &own.config.delivery.destinations;
            if destinations
                .of_member(member.id.as_str(), input.user.as_str())
                .is_empty()
            {
                return with_account(output_of(&input, DeliveryReport::default()), account);
            }
            accounts.deps(Some(&member.id)).await?
        }
    };
    with_account(handle(payload, &deps).await?, account)
}

/// The output for `input` with `delivery`.
fn output_of(input: &DeliverKeyInput, delivery: DeliveryReport) -> DeliverKeyOutput {
    DeliverKeyOutput {
        user: input.user.to_string(),
        old_key_id: input.old_key_id.to_string(),
        new_key_id: input.new_key_id.as_ref().map(ToString::to_string),
        resumed: input.resumed,
        retired: false,
        delivery,
    }
}

/// Delivers to the destinations the account `deps` works in has for the user (the
/// member's own view in a member account, see `keyrotor_aws::member::member_config`).
pub async fn handle<H: HandoffPort, P: ParametersPort, S: SettingsPort, W: HttpPort>(
    event: serde_json::Value,
    deps: &Deps<H, P, S, W>,
) -> Result<DeliverKeyOutput> {
    let input: DeliverKeyInput = parse(event)?;
    let dry_run = input.dry_run || deps.config.dry_run;
    let user = input.user.as_str();
    let output = |delivery: DeliveryReport| output_of(&input, delivery);
    let destinations = deps.config.delivery.destinations.of(user);
    if destinations.is_empty() {
        return Ok(output(DeliveryReport::default()));
    }
    let line = |d: &Destination, outcome, why: Option<String>| DeliveryLine {
        destination: d.label(),
        kind: d.kind(),
        outcome,
        at: matches!(outcome, DeliveryOutcome::Delivered).then(Utc::now),
        why,
    };
    let all = |outcome, why: &str| {
        destinations
            .iter()
            .map(|d| line(d, outcome, Some(why.to_owned())))
            .collect::<Vec<_>>()
    };
    if dry_run {
        let lines = destinations
            .iter()
            .map(|d| line(d, DeliveryOutcome::WouldDeliver, None))
            .collect();
        return Ok(output(DeliveryReport::new(lines, None)));
    }
    let new_key_id = input
        .new_key_id
        .as_ref()
        .ok_or_else(|| Error::InvalidInput("newKeyId is required outside a dry run".into()))?;

    let (Some(handoff), Some(handoffs)) = (&input.handoff, &deps.handoffs) else {
        let why = "create-key handed no sealed key over (it found the key stored by an \
                   earlier attempt, or could not seal it): copy it from the user's secret by \
                   hand";
        let lines = all(DeliveryOutcome::Failed, why);
        warn!(user, "no handoff: nothing delivered");
        return Ok(output(DeliveryReport::new(lines, Some(why.into()))));
    };
    let key = match handoffs
        .open(user, new_key_id.as_str(), &handoff.sealed)
        .await
    {
        Ok(key) => key,
        Err(err) if err.error_type().is_retryable() => return Err(err),
        Err(err) => {
            let why = format!("the handoff could not be opened: {err}");
            warn!(user, %why, "nothing delivered");
            return Ok(output(DeliveryReport::new(
                all(DeliveryOutcome::Failed, &why),
                Some(why.clone()),
            )));
        }
    };

    let target = Target {
        key: &key,
        sealed_at: handoff.sealed_at,
        secret_arn: input.secret_arn.as_ref().map(Arn::as_str),
        deadline: deadline(&deps.config, input.force),
    };
    let mut secrets = Secrets::default();
    let mut lines = Vec::with_capacity(destinations.len());
    let started = tokio::time::Instant::now();
    for destination in destinations {
        let result = match started.elapsed() < BUDGET {
            true => deliver(deps, &mut secrets, destination, &target).await,
            false => Err(format!(
                "not tried: the other destinations took the invocation's {} s",
                BUDGET.as_secs()
            )),
        };
        let (outcome, why) = match result {
            Ok(outcome) => (outcome, None),
            Err(why) => (DeliveryOutcome::Failed, Some(why)),
        };
        info!(user, destination = %destination.label(), %outcome, why = why.as_deref().unwrap_or(""), "delivery");
        lines.push(line(destination, outcome, why));
    }
    Ok(output(DeliveryReport::new(lines, None)))
}

/// What is delivered, and what the notices say.
struct Target<'a> {
    key: &'a NewAccessKey,
    sealed_at: DateTime<Utc>,
    secret_arn: Option<&'a str>,
    deadline: DateTime<Utc>,
}

/// When the old key is deactivated at the latest: now if forced or with no window, else
/// at the window's cap from now.
fn deadline(config: &Config, force: bool) -> DateTime<Utc> {
    let window = match force {
        true => 0,
        false => config.policy.overlap_secs,
    };
    // The window is at most 30 days (the configuration), far inside what a Duration holds.
    Utc::now().trunc_subsecs(0) + Duration::seconds(i64::try_from(window).unwrap_or(0))
}

/// The settings secrets, read once per invocation and only if a destination needs them.
#[derive(Default)]
struct Secrets {
    github_token: Option<Zeroizing<String>>,
    webhook_key: Option<Zeroizing<String>>,
}

async fn setting<'s, S: SettingsPort>(
    slot: &'s mut Option<Zeroizing<String>>,
    settings: &S,
    arn: Option<&str>,
    what: &str,
) -> std::result::Result<&'s str, String> {
    if slot.is_none() {
        let arn = arn.ok_or_else(|| format!("no {what} is configured"))?;
        let value = settings
            .read(arn)
            .await
            .map_err(|e| format!("the {what} could not be read: {e}"))?;
        *slot = Some(value);
    }
    Ok(slot.as_deref().map(String::as_str).unwrap_or_default())
}

/// The description an SSM destination's parameter gets: it names the key it holds, which
/// is how a rerun knows not to write it again.
pub fn parameter_description(key_id: &str, user: &str) -> String {
    format!("keyrotor: access key {key_id} of IAM user {user}")
}

async fn deliver<H, P: ParametersPort, S: SettingsPort, W: HttpPort>(
    deps: &Deps<H, P, S, W>,
    secrets: &mut Secrets,
    destination: &Destination,
    target: &Target<'_>,
) -> std::result::Result<DeliveryOutcome, String> {
    let key = target.key;
    let settings = &deps.config.delivery;
    match destination {
        Destination::Ssm { parameter } => {
            let description = parameter_description(&key.key_id, &key.user);
            let now = deps
                .parameters
                .description(parameter)
                .await
                .map_err(|e| e.to_string())?;
            if now.as_deref() == Some(description.as_str()) {
                return Ok(DeliveryOutcome::AlreadyHeld);
            }
            let value = StoredCredential {
                key,
                rotated_at: target.sealed_at,
            }
            .to_secret_string();
            with_retries(|| async {
                deps.parameters
                    .put_secure(parameter, &value, &description)
                    .await
                    .map_err(|err| match err.error_type().is_retryable() {
                        true => Attempt::Retry(err.to_string()),
                        false => Attempt::Fail(err.to_string()),
                    })
            })
            .await?;
            Ok(DeliveryOutcome::Delivered)
        }
        Destination::Github {
            repository,
            environment,
            ..
        } => {
            let (id_name, secret_name) = destination.github_names().unwrap_or_default();
            let token = setting(
                &mut secrets.github_token,
                &deps.settings,
                settings.github_token_secret_arn.as_deref(),
                "GitHub token",
            )
            .await?;
            let client = github::Client {
                http: &deps.http,
                token,
                url: github::secrets_url(
                    &settings.github_api_url,
                    repository,
                    environment.as_deref(),
                ),
            };
            let updated = with_retries(|| client.updated([id_name, secret_name])).await?;
            // GitHub gives whole seconds.
            if updated.is_some_and(|at| at >= target.sealed_at.trunc_subsecs(0)) {
                return Ok(DeliveryOutcome::AlreadyHeld);
            }
            with_retries(|| {
                client.put([
                    (id_name, key.key_id.as_str()),
                    (secret_name, key.secret.expose()),
                ])
            })
            .await?;
            Ok(DeliveryOutcome::Delivered)
        }
        Destination::Webhook { url } => {
            let signing_key = setting(
                &mut secrets.webhook_key,
                &deps.settings,
                settings.webhook_key_secret_arn.as_deref(),
                "webhook signing key",
            )
            .await?;
            let notice = Notice::new(
                &key.user,
                &key.key_id,
                target.secret_arn,
                target.deadline,
                url,
            );
            let body = serde_json::to_vec(&notice).map_err(|e| e.to_string())?;
            with_retries(|| async {
                let at = Utc::now();
                let signature =
                    delivery::sign(signing_key.as_bytes(), at, &body).map_err(Attempt::Fail)?;
                let request = Request {
                    method: "POST",
                    url: url.clone(),
                    headers: vec![
                        ("content-type", "application/json".to_owned()),
                        ("user-agent", "keyrotor".to_owned()),
                        (delivery::SIGNATURE_HEADER, signature),
                        (delivery::TIMESTAMP_HEADER, delivery::timestamp_text(at)),
                        (delivery::DELIVERY_HEADER, notice.delivery_id.clone()),
                    ],
                    body: Some(body.clone()),
                };
                let response = deps
                    .http
                    .send(request)
                    .await
                    .map_err(|e| Attempt::Retry(e.0))?;
                match response.status {
                    200..=299 => Ok(()),
                    429 | 500..=599 => Err(Attempt::Retry(format!(
                        "the webhook answered {}",
                        response.status
                    ))),
                    status => Err(Attempt::Fail(format!("the webhook answered {status}"))),
                }
            })
            .await?;
            Ok(DeliveryOutcome::Delivered)
        }
    }
}

#[cfg(test)]
mod tests;
