//! Configuration, read once at cold start from `KEYROTOR_*` environment variables and
//! validated there, so that a bad value fails the start with a clear message instead of
//! misbehaving on some later event.

use std::fmt;

use crate::accounts::{AccountId, AccountsMode, OrgNodeId, Scope};
use crate::delivery::{DestinationKind, Destinations};
use crate::domain::Policy;
use crate::email::EmailAddress;

/// A configuration variable that is missing or does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration: {var}: {reason}")]
pub struct ConfigError {
    pub var: &'static str,
    pub reason: String,
}

impl ConfigError {
    fn new(var: &'static str, reason: impl Into<String>) -> Self {
        ConfigError {
            var,
            reason: reason.into(),
        }
    }
}

/// The validated configuration of every keyrotor function.
#[derive(Clone, PartialEq, Eq)]
pub struct Config {
    pub policy: Policy,
    pub secret_prefix: String,
    pub kms_key_id: Option<String>,
    pub email_tag: String,
    pub exempt_group: Option<String>,
    pub from_address: Option<EmailAddress>,
    pub admin_address: Option<EmailAddress>,
    /// Lower-case domains that owner addresses must belong to; empty allows any.
    pub allowed_email_domains: Vec<String>,
    pub dry_run: bool,
    pub state_machine_arn: Option<String>,
    /// The scan machine, whose account scans an organization scan starts.
    pub scan_state_machine_arn: Option<String>,
    /// How long `create-key` keeps trying a new key against STS (IAM propagation).
    pub verify_timeout_secs: u64,
    pub assess_strategy: AssessStrategy,
    /// The IAM roles that may change users' secrets: keyrotor's `create-key` and
    /// `deactivate-key` roles, and an optional break-glass role. Every secret's resource
    /// policy denies any change to every other principal.
    pub trusted_role_arns: Vec<String>,
    /// Which accounts keyrotor works in, and how it reaches them.
    pub accounts: AccountsConfig,
    /// Where new keys are delivered (`create-key` and `deliver-key`).
    pub delivery: DeliveryConfig,
}

/// The delivery settings (issue 29). With no destinations declared, none is used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryConfig {
    pub destinations: Destinations,
    /// The KMS key `create-key` seals a new key's handoff to `deliver-key` with; required
    /// when any destination is declared.
    pub handoff_kms_key_id: Option<String>,
    /// The KMS key of the SSM SecureStrings keyrotor writes (`None`: `alias/aws/ssm`).
    pub parameter_kms_key_id: Option<String>,
    /// The SSM path every ssm destination must lie under (`/` when unset): the template
    /// grants deliver-key PutParameter there only.
    pub parameter_path: String,
    /// The Secrets Manager secret holding the GitHub token (a fine-grained token or an
    /// installation token, with "Secrets" read and write on the repositories named).
    pub github_token_secret_arn: Option<String>,
    /// GitHub's REST API (`https://api.github.com`; a GitHub Enterprise Server's API, or a
    /// local fake on loopback).
    pub github_api_url: String,
    /// The Secrets Manager secret holding the webhook signing key.
    pub webhook_key_secret_arn: Option<String>,
}

impl DeliveryConfig {
    pub const GITHUB_API_URL: &'static str = "https://api.github.com";

    /// What `deliver-key` cannot work without: the settings secret of every kind of
    /// destination declared (`create-key`, which only seals, needs neither).
    pub fn require_settings(&self) -> Result<(), ConfigError> {
        let kinds: Vec<DestinationKind> = self.destinations.kinds().collect();
        let needs = |kind, var: &'static str, set: bool| {
            (kinds.contains(&kind) && !set).then(|| {
                ConfigError::new(
                    var,
                    format!(
                        "is required by deliver-key: a destination of kind {kind:?} is declared"
                    ),
                )
            })
        };
        let missing = [
            needs(
                DestinationKind::Github,
                vars::GITHUB_TOKEN_SECRET_ARN,
                self.github_token_secret_arn.is_some(),
            ),
            needs(
                DestinationKind::Webhook,
                vars::WEBHOOK_KEY_SECRET_ARN,
                self.webhook_key_secret_arn.is_some(),
            ),
        ];
        match missing.into_iter().flatten().next() {
            Some(err) => Err(err),
            None => Ok(()),
        }
    }

    fn from_lookup(get: &impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let destinations = match get(vars::DESTINATIONS) {
            None => Destinations::default(),
            Some(text) => {
                Destinations::parse(&text).map_err(|e| ConfigError::new(vars::DESTINATIONS, e))?
            }
        };
        let secret_arn = |var: &'static str| -> Result<Option<String>, ConfigError> {
            let arn = get(var);
            match &arn {
                Some(a) if !(a.starts_with("arn:") && a.contains(":secretsmanager:")) => Err(
                    ConfigError::new(var, format!("{a:?} is not a Secrets Manager secret ARN")),
                ),
                _ => Ok(arn),
            }
        };
        let github_token_secret_arn = secret_arn(vars::GITHUB_TOKEN_SECRET_ARN)?;
        let webhook_key_secret_arn = secret_arn(vars::WEBHOOK_KEY_SECRET_ARN)?;
        let github_api_url = get(vars::GITHUB_API_URL)
            .unwrap_or_else(|| Self::GITHUB_API_URL.to_owned())
            .trim_end_matches('/')
            .to_owned();
        crate::delivery::check_url(&github_api_url)
            .map_err(|e| ConfigError::new(vars::GITHUB_API_URL, e))?;
        let parameter_path = get(vars::PARAMETER_PATH).unwrap_or_else(|| "/".to_owned());
        let path_ok = parameter_path.starts_with('/')
            && parameter_path.ends_with('/')
            && !parameter_path.contains("//")
            && parameter_path
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-/".contains(c));
        if !path_ok {
            return Err(ConfigError::new(
                vars::PARAMETER_PATH,
                format!("{parameter_path:?} is not an SSM path (/a/b/)"),
            ));
        }
        if let Some(outside) = destinations
            .parameters()
            .find(|p| !p.starts_with(&parameter_path))
        {
            return Err(ConfigError::new(
                vars::DESTINATIONS,
                format!("the parameter {outside} is not under {parameter_path}, where keyrotor may write"),
            ));
        }
        let handoff_kms_key_id = get(vars::DELIVERY_KMS_KEY_ID);
        if !destinations.is_empty() && handoff_kms_key_id.is_none() {
            return Err(ConfigError::new(
                vars::DELIVERY_KMS_KEY_ID,
                "is required when destinations are declared",
            ));
        }
        Ok(DeliveryConfig {
            destinations,
            handoff_kms_key_id,
            parameter_kms_key_id: get(vars::PARAMETER_KMS_KEY_ID),
            parameter_path,
            github_token_secret_arn,
            github_api_url,
            webhook_key_secret_arn,
        })
    }
}

/// The many-accounts settings. In the default mode (`self`) none of them is used.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountsConfig {
    pub mode: AccountsMode,
    pub scope: Scope,
    /// A role in the management account to read the organization through, when keyrotor is
    /// deployed neither there nor in a delegated administrator account.
    pub org_role_arn: Option<String>,
    /// How many account scans an organization scan runs at a time.
    pub concurrency: u16,
    /// The `sts:ExternalId` the member roles' trust policies ask for, if any.
    pub external_id: Option<String>,
}

impl AccountsConfig {
    pub const DEFAULT_CONCURRENCY: u16 = 10;
    pub const MAX_CONCURRENCY: u16 = 100;
}

/// How the scan assesses a page of users.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssessStrategy {
    /// From the account's credential report (one call), looking live only at users whose
    /// keys may need action; falls back to ListAccessKeys if the report is unavailable.
    CredentialReport,
    /// ListAccessKeys (and the rest of the live state) for every user.
    ListAccessKeys,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("rotate_after_days", &self.policy.rotate_after_days)
            .field("warn_days", &self.policy.warn_days)
            .field("deletion_delay_secs", &self.policy.deletion_delay_secs)
            .field("overlap_secs", &self.policy.overlap_secs)
            .field("exempt_tag", &self.policy.exempt_tag)
            .field("secret_prefix", &self.secret_prefix)
            .field("kms_key_id", &self.kms_key_id)
            .field("email_tag", &self.email_tag)
            .field("exempt_group", &self.exempt_group)
            .field("dry_run", &self.dry_run)
            .finish_non_exhaustive()
    }
}

/// Names of the environment variables, in one place for the README and the SAM template.
pub mod vars {
    pub const ROTATE_AFTER_DAYS: &str = "KEYROTOR_ROTATE_AFTER_DAYS";
    pub const WARN_DAYS: &str = "KEYROTOR_WARN_DAYS";
    pub const DELETION_DELAY_SECONDS: &str = "KEYROTOR_DELETION_DELAY_SECONDS";
    pub const OVERLAP_SECONDS: &str = "KEYROTOR_OVERLAP_SECONDS";
    pub const CUTOVER_SETTLE_SECONDS: &str = "KEYROTOR_CUTOVER_SETTLE_SECONDS";
    pub const CUTOVER_POLL_SECONDS: &str = "KEYROTOR_CUTOVER_POLL_SECONDS";
    pub const UNUSED_DAYS: &str = "KEYROTOR_UNUSED_DAYS";
    pub const SECRET_PREFIX: &str = "KEYROTOR_SECRET_PREFIX";
    pub const KMS_KEY_ID: &str = "KEYROTOR_KMS_KEY_ID";
    pub const EMAIL_TAG: &str = "KEYROTOR_EMAIL_TAG";
    pub const EXEMPT_TAG: &str = "KEYROTOR_EXEMPT_TAG";
    pub const EXEMPT_GROUP: &str = "KEYROTOR_EXEMPT_GROUP";
    pub const FROM_ADDRESS: &str = "KEYROTOR_FROM_ADDRESS";
    pub const ADMIN_ADDRESS: &str = "KEYROTOR_ADMIN_ADDRESS";
    pub const ALLOWED_EMAIL_DOMAINS: &str = "KEYROTOR_ALLOWED_EMAIL_DOMAINS";
    pub const DRY_RUN: &str = "KEYROTOR_DRY_RUN";
    pub const STATE_MACHINE_ARN: &str = "KEYROTOR_STATE_MACHINE_ARN";
    pub const SCAN_STATE_MACHINE_ARN: &str = "KEYROTOR_SCAN_STATE_MACHINE_ARN";
    pub const VERIFY_TIMEOUT_SECONDS: &str = "KEYROTOR_VERIFY_TIMEOUT_SECONDS";
    pub const ASSESS_STRATEGY: &str = "KEYROTOR_ASSESS_STRATEGY";
    pub const MAX_EXEMPTION_DAYS: &str = "KEYROTOR_MAX_EXEMPTION_DAYS";
    pub const TRUSTED_ROLE_ARNS: &str = "KEYROTOR_TRUSTED_ROLE_ARNS";
    pub const ACCOUNTS: &str = "KEYROTOR_ACCOUNTS";
    pub const INCLUDE_OUS: &str = "KEYROTOR_INCLUDE_OUS";
    pub const EXCLUDE_OUS: &str = "KEYROTOR_EXCLUDE_OUS";
    pub const EXCLUDE_ACCOUNTS: &str = "KEYROTOR_EXCLUDE_ACCOUNTS";
    pub const INCLUDE_MANAGEMENT_ACCOUNT: &str = "KEYROTOR_INCLUDE_MANAGEMENT_ACCOUNT";
    pub const ORG_ROLE_ARN: &str = "KEYROTOR_ORG_ROLE_ARN";
    pub const ACCOUNT_CONCURRENCY: &str = "KEYROTOR_ACCOUNT_CONCURRENCY";
    pub const MEMBER_EXTERNAL_ID: &str = "KEYROTOR_MEMBER_EXTERNAL_ID";
    pub const DESTINATIONS: &str = "KEYROTOR_DESTINATIONS";
    pub const DELIVERY_KMS_KEY_ID: &str = "KEYROTOR_DELIVERY_KMS_KEY_ID";
    pub const PARAMETER_KMS_KEY_ID: &str = "KEYROTOR_PARAMETER_KMS_KEY_ID";
    pub const PARAMETER_PATH: &str = "KEYROTOR_PARAMETER_PATH";
    pub const GITHUB_TOKEN_SECRET_ARN: &str = "KEYROTOR_GITHUB_TOKEN_SECRET_ARN";
    pub const GITHUB_API_URL: &str = "KEYROTOR_GITHUB_API_URL";
    pub const WEBHOOK_KEY_SECRET_ARN: &str = "KEYROTOR_WEBHOOK_KEY_SECRET_ARN";
}

/// IAM tag keys: 1–128 characters of letters, digits, spaces and `_.:/=+-@`.
fn valid_tag_key(key: &str) -> bool {
    !key.is_empty()
        && key.chars().count() <= 128
        && key
            .chars()
            .all(|c| c.is_alphanumeric() || " _.:/=+-@".contains(c))
        && !key.to_ascii_lowercase().starts_with("aws:")
}

impl Config {
    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `lookup` (the environment, or a map in tests).
    /// Empty values count as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };

        let rotate_after_days = match get(vars::ROTATE_AFTER_DAYS) {
            None => 90,
            Some(v) => parse_days(vars::ROTATE_AFTER_DAYS, &v)?,
        };
        if rotate_after_days == 0 {
            return Err(ConfigError::new(
                vars::ROTATE_AFTER_DAYS,
                "must be at least 1",
            ));
        }

        let mut warn_days = match get(vars::WARN_DAYS) {
            // 10, 5 and 1 days before the rotation age: 80, 85 and 89 for the default 90.
            None => [10, 5, 1]
                .iter()
                .filter_map(|before| rotate_after_days.checked_sub(*before))
                .filter(|d| *d > 0)
                .collect(),
            Some(v) if v.eq_ignore_ascii_case("none") => Vec::new(),
            Some(v) => v
                .split(',')
                .map(|d| parse_days(vars::WARN_DAYS, d.trim()))
                .collect::<Result<Vec<_>, _>>()?,
        };
        warn_days.sort_unstable();
        warn_days.dedup();
        if let Some(bad) = warn_days.iter().find(|d| **d >= rotate_after_days) {
            return Err(ConfigError::new(
                vars::WARN_DAYS,
                format!("warning day {bad} is not below the rotation age {rotate_after_days}"),
            ));
        }

        let deletion_delay_secs = match get(vars::DELETION_DELAY_SECONDS) {
            None => 7 * 24 * 3600,
            Some(v) => v
                .parse::<u64>()
                .ok()
                .filter(|s| *s <= 365 * 24 * 3600)
                .ok_or_else(|| {
                    ConfigError::new(
                        vars::DELETION_DELAY_SECONDS,
                        format!("{v:?} is not a number of seconds between 0 and one year"),
                    )
                })?,
        };

        // The overlap window: at most 30 days (the old key of a rotation is valid that much
        // longer; SECURITY.md says why the cap bounds an attacker holding it).
        let overlap_secs = seconds(
            &get,
            vars::OVERLAP_SECONDS,
            7 * DAY,
            0,
            crate::domain::cutover::MAX_OVERLAP_SECS,
        )?;
        let cutover_settle_secs =
            seconds(&get, vars::CUTOVER_SETTLE_SECONDS, 2 * DAY, 0, 30 * DAY)?;
        let cutover_poll_secs = seconds(&get, vars::CUTOVER_POLL_SECONDS, 6 * 3600, 1, DAY)?;
        // The CIS benchmark's figure: a key unused for 45 days is disabled.
        let unused_days = match get(vars::UNUSED_DAYS) {
            None => 45,
            Some(v) => parse_days(vars::UNUSED_DAYS, v.trim())?,
        };

        let secret_prefix = get(vars::SECRET_PREFIX).unwrap_or_else(|| "iam-access-key/".into());
        if secret_prefix.len() > 256
            || !secret_prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "/_+=.@-".contains(c))
        {
            return Err(ConfigError::new(
                vars::SECRET_PREFIX,
                format!(
                    "{secret_prefix:?} may only hold letters, digits and /_+=.@- (at most 256)"
                ),
            ));
        }

        let email_tag = get(vars::EMAIL_TAG).unwrap_or_else(|| "Email".into());
        if !valid_tag_key(&email_tag) {
            return Err(ConfigError::new(
                vars::EMAIL_TAG,
                format!("{email_tag:?} is not a valid IAM tag key"),
            ));
        }
        let exempt_tag = get(vars::EXEMPT_TAG).unwrap_or_else(|| "key-rotation:exempt".into());
        if !valid_tag_key(&exempt_tag) {
            return Err(ConfigError::new(
                vars::EXEMPT_TAG,
                format!("{exempt_tag:?} is not a valid IAM tag key"),
            ));
        }

        let exempt_group = get(vars::EXEMPT_GROUP);
        if let Some(group) = &exempt_group {
            let ok = group.len() <= 128
                && group
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c));
            if !ok {
                return Err(ConfigError::new(
                    vars::EXEMPT_GROUP,
                    format!("{group:?} is not a valid IAM group name"),
                ));
            }
        }

        let address = |var: &'static str| -> Result<Option<EmailAddress>, ConfigError> {
            get(var)
                .map(|v| EmailAddress::parse(&v).map_err(|e| ConfigError::new(var, e.to_string())))
                .transpose()
        };
        let from_address = address(vars::FROM_ADDRESS)?;
        let admin_address = address(vars::ADMIN_ADDRESS)?;

        let allowed_email_domains = match get(vars::ALLOWED_EMAIL_DOMAINS) {
            None => Vec::new(),
            Some(v) => v
                .split(',')
                .map(|d| {
                    let d = d.trim().trim_start_matches('@').to_ascii_lowercase();
                    let ok = !d.is_empty()
                        && d.len() <= 253
                        && d.contains('.')
                        && d.chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
                    ok.then_some(d.clone()).ok_or_else(|| {
                        ConfigError::new(
                            vars::ALLOWED_EMAIL_DOMAINS,
                            format!("{d:?} is not a domain name"),
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()?,
        };

        let dry_run = parse_flag(vars::DRY_RUN, get(vars::DRY_RUN))?;

        let machine = |var: &'static str| -> Result<Option<String>, ConfigError> {
            let arn = get(var);
            if let Some(arn) = &arn {
                let ok = arn.starts_with("arn:")
                    && arn.contains(":states:")
                    && arn.contains(":stateMachine:");
                if !ok {
                    return Err(ConfigError::new(
                        var,
                        format!("{arn:?} is not a Step Functions state machine ARN"),
                    ));
                }
            }
            Ok(arn)
        };
        let state_machine_arn = machine(vars::STATE_MACHINE_ARN)?;
        let scan_state_machine_arn = machine(vars::SCAN_STATE_MACHINE_ARN)?;

        let verify_timeout_secs = match get(vars::VERIFY_TIMEOUT_SECONDS) {
            None => 30,
            Some(v) => v
                .parse::<u64>()
                .ok()
                .filter(|s| (1..=600).contains(s))
                .ok_or_else(|| {
                    ConfigError::new(
                        vars::VERIFY_TIMEOUT_SECONDS,
                        format!("{v:?} is not a number of seconds between 1 and 600"),
                    )
                })?,
        };

        let assess_strategy = match get(vars::ASSESS_STRATEGY).as_deref() {
            None | Some("credential-report") => AssessStrategy::CredentialReport,
            Some("list-access-keys") => AssessStrategy::ListAccessKeys,
            Some(other) => {
                return Err(ConfigError::new(
                    vars::ASSESS_STRATEGY,
                    format!("{other:?} is neither credential-report nor list-access-keys"),
                ))
            }
        };

        let max_exemption_days = match get(vars::MAX_EXEMPTION_DAYS) {
            None => 365,
            Some(v) => parse_days(vars::MAX_EXEMPTION_DAYS, &v)?,
        };

        let trusted_role_arns = match get(vars::TRUSTED_ROLE_ARNS) {
            None => Vec::new(),
            Some(v) => v
                .split(',')
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .map(|arn| {
                    is_role_arn(arn).then(|| arn.to_owned()).ok_or_else(|| {
                        ConfigError::new(
                            vars::TRUSTED_ROLE_ARNS,
                            format!("{arn:?} is not an IAM role ARN"),
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()?,
        };

        let accounts = AccountsConfig::from_lookup(&get)?;
        let delivery = DeliveryConfig::from_lookup(&get)?;

        Ok(Config {
            accounts,
            delivery,
            verify_timeout_secs,
            trusted_role_arns,
            assess_strategy,
            policy: Policy {
                rotate_after_days,
                warn_days,
                deletion_delay_secs,
                overlap_secs,
                cutover_settle_secs,
                cutover_poll_secs,
                unused_days,
                exempt_tag,
                max_exemption_days,
            },
            secret_prefix,
            kms_key_id: get(vars::KMS_KEY_ID),
            email_tag,
            exempt_group,
            from_address,
            admin_address,
            allowed_email_domains,
            dry_run,
            state_machine_arn,
            scan_state_machine_arn,
        })
    }

    /// The sender address, which `notify` cannot work without.
    pub fn require_from_address(&self) -> Result<&EmailAddress, ConfigError> {
        self.from_address
            .as_ref()
            .ok_or_else(|| ConfigError::new(vars::FROM_ADDRESS, "is required by notify"))
    }

    /// The roles allowed to change users' secrets, without which `create-key` would write a
    /// resource policy that locks keyrotor itself out.
    pub fn require_trusted_roles(&self) -> Result<&[String], ConfigError> {
        if self.trusted_role_arns.is_empty() {
            return Err(ConfigError::new(
                vars::TRUSTED_ROLE_ARNS,
                "is required to write a user's secret",
            ));
        }
        Ok(&self.trusted_role_arns)
    }

    /// The state machine to start per-user executions of.
    pub fn require_state_machine_arn(&self) -> Result<&str, ConfigError> {
        self.state_machine_arn.as_deref().ok_or_else(|| {
            ConfigError::new(
                vars::STATE_MACHINE_ARN,
                "is required by start-rotations and respond-to-exposure",
            )
        })
    }

    /// The scan machine's ARN, which `scan-accounts` cannot work without.
    pub fn require_scan_state_machine_arn(&self) -> Result<&str, ConfigError> {
        self.scan_state_machine_arn.as_deref().ok_or_else(|| {
            ConfigError::new(vars::SCAN_STATE_MACHINE_ARN, "is required by scan-accounts")
        })
    }

    /// Whether an owner's address may receive mail (the allow-list, if any, names its domain).
    pub fn allows_recipient(&self, address: &EmailAddress) -> bool {
        self.allowed_email_domains.is_empty()
            || self
                .allowed_email_domains
                .iter()
                .any(|d| d == address.domain())
    }
}

/// `true`/`1`/`yes` or `false`/`0`/`no` (any case); unset is `false`.
fn parse_flag(var: &'static str, value: Option<String>) -> Result<bool, ConfigError> {
    match value.map(|v| v.to_ascii_lowercase()) {
        None => Ok(false),
        Some(v) if v == "true" || v == "1" || v == "yes" => Ok(true),
        Some(v) if v == "false" || v == "0" || v == "no" => Ok(false),
        Some(v) => Err(ConfigError::new(var, format!("{v:?} is not true or false"))),
    }
}

/// A comma-separated list, each item parsed by `T::from_str`; unset is empty.
fn parse_list<T: std::str::FromStr<Err = String>>(
    var: &'static str,
    value: Option<String>,
) -> Result<Vec<T>, ConfigError> {
    value
        .iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| item.parse().map_err(|e| ConfigError::new(var, e)))
        .collect()
}

impl AccountsConfig {
    fn from_lookup(get: &impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mode = match get(vars::ACCOUNTS) {
            None => AccountsMode::OwnAccount,
            Some(v) if v.eq_ignore_ascii_case("self") => AccountsMode::OwnAccount,
            Some(v) if v.eq_ignore_ascii_case("organization") => AccountsMode::Organization,
            Some(v) => {
                let ids: Vec<AccountId> = parse_list(vars::ACCOUNTS, Some(v)).map_err(|e| {
                    ConfigError::new(
                        vars::ACCOUNTS,
                        format!("{}: give self, organization or account IDs", e.reason),
                    )
                })?;
                AccountsMode::Listed(ids)
            }
        };
        let scope = Scope {
            include_ous: parse_list::<OrgNodeId>(vars::INCLUDE_OUS, get(vars::INCLUDE_OUS))?,
            exclude_ous: parse_list::<OrgNodeId>(vars::EXCLUDE_OUS, get(vars::EXCLUDE_OUS))?,
            exclude_accounts: parse_list(vars::EXCLUDE_ACCOUNTS, get(vars::EXCLUDE_ACCOUNTS))?,
            include_management: parse_flag(
                vars::INCLUDE_MANAGEMENT_ACCOUNT,
                get(vars::INCLUDE_MANAGEMENT_ACCOUNT),
            )?,
        };
        let org_role_arn = get(vars::ORG_ROLE_ARN);
        if let Some(arn) = &org_role_arn {
            if !is_role_arn(arn) {
                return Err(ConfigError::new(
                    vars::ORG_ROLE_ARN,
                    format!("{arn:?} is not an IAM role ARN"),
                ));
            }
        }
        let concurrency = match get(vars::ACCOUNT_CONCURRENCY) {
            None => Self::DEFAULT_CONCURRENCY,
            Some(v) => v
                .parse::<u16>()
                .ok()
                .filter(|n| (1..=Self::MAX_CONCURRENCY).contains(n))
                .ok_or_else(|| {
                    ConfigError::new(
                        vars::ACCOUNT_CONCURRENCY,
                        format!(
                            "{v:?} is not a number between 1 and {}",
                            Self::MAX_CONCURRENCY
                        ),
                    )
                })?,
        };
        // As sts:AssumeRole allows it: 2–1224 characters of letters, digits and +=,.@:/-_.
        let external_id = get(vars::MEMBER_EXTERNAL_ID);
        if let Some(id) = &external_id {
            let ok = (2..=1224).contains(&id.len())
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+=,.@:/-_".contains(c));
            if !ok {
                return Err(ConfigError::new(
                    vars::MEMBER_EXTERNAL_ID,
                    "must be 2-1224 letters, digits or +=,.@:/-_",
                ));
            }
        }
        if mode == AccountsMode::OwnAccount {
            let stray = [
                (vars::INCLUDE_OUS, !scope.include_ous.is_empty()),
                (vars::EXCLUDE_OUS, !scope.exclude_ous.is_empty()),
                (vars::ORG_ROLE_ARN, org_role_arn.is_some()),
            ];
            if let Some((var, _)) = stray.iter().find(|(_, set)| *set) {
                return Err(ConfigError::new(
                    var,
                    format!("is set, but {} is self", vars::ACCOUNTS),
                ));
            }
        }
        Ok(AccountsConfig {
            mode,
            scope,
            org_role_arn,
            concurrency,
            external_id,
        })
    }
}

/// An IAM role ARN without wildcards or characters that would break a policy document.
fn is_role_arn(arn: &str) -> bool {
    arn.starts_with("arn:")
        && arn.split(':').nth(2) == Some("iam")
        && arn
            .split(':')
            .nth(5)
            .is_some_and(|r| r.starts_with("role/"))
        && !arn.contains(['*', '?', '"', '\\'])
        && arn.len() <= 2048
}

const DAY: u64 = 86_400;

/// A number of seconds from `min` to `max`, `default` when unset.
fn seconds(
    get: &impl Fn(&str) -> Option<String>,
    var: &'static str,
    default: u64,
    min: u64,
    max: u64,
) -> Result<u64, ConfigError> {
    let Some(value) = get(var) else {
        return Ok(default);
    };
    value
        .parse::<u64>()
        .ok()
        .filter(|s| (min..=max).contains(s))
        .ok_or_else(|| {
            ConfigError::new(
                var,
                format!("{value:?} is not a whole number of seconds from {min} to {max}"),
            )
        })
}

fn parse_days(var: &'static str, value: &str) -> Result<u32, ConfigError> {
    value
        .parse::<u32>()
        .ok()
        .filter(|d| *d <= 3650)
        .ok_or_else(|| {
            ConfigError::new(
                var,
                format!("{value:?} is not a whole number of days (0 to 3650)"),
            )
        })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let c = config(&[]).expect("defaults are valid");
        assert_eq!(c.policy.rotate_after_days, 90);
        assert_eq!(c.policy.warn_days, [80, 85, 89]);
        assert_eq!(c.policy.deletion_delay_secs, 604_800);
        assert_eq!(c.policy.overlap_secs, 604_800, "a week's overlap window");
        assert_eq!(c.policy.cutover_settle_secs, 172_800);
        assert_eq!(c.policy.cutover_poll_secs, 21_600);
        assert_eq!(c.policy.unused_days, 45, "the CIS benchmark's 45 days");
        assert_eq!(c.secret_prefix, "iam-access-key/");
        assert_eq!(c.email_tag, "Email");
        assert_eq!(c.policy.exempt_tag, "key-rotation:exempt");
        assert!(!c.dry_run);
        assert!(c.from_address.is_none());
        assert!(c.allowed_email_domains.is_empty());
    }

    #[test]
    fn every_variable_is_read() {
        let c = config(&[
            (vars::ROTATE_AFTER_DAYS, "30"),
            (vars::WARN_DAYS, "29, 20,20"),
            (vars::DELETION_DELAY_SECONDS, "5"),
            (vars::SECRET_PREFIX, "keys/"),
            (vars::KMS_KEY_ID, "alias/keyrotor"),
            (vars::EMAIL_TAG, "owner-email"),
            (vars::EXEMPT_TAG, "no-rotate"),
            (vars::EXEMPT_GROUP, "break-glass"),
            (vars::FROM_ADDRESS, "security@example.com"),
            (vars::ADMIN_ADDRESS, "admin@example.com"),
            (
                vars::ALLOWED_EMAIL_DOMAINS,
                "Example.com, @corp.example.org",
            ),
            (vars::DRY_RUN, "TRUE"),
            (
                vars::STATE_MACHINE_ARN,
                "arn:aws:states:us-east-1:123456789012:stateMachine:keyrotor",
            ),
            (vars::VERIFY_TIMEOUT_SECONDS, "45"),
            (vars::OVERLAP_SECONDS, "0"),
            (vars::CUTOVER_SETTLE_SECONDS, "3600"),
            (vars::CUTOVER_POLL_SECONDS, "60"),
            (vars::UNUSED_DAYS, "0"),
        ])
        .expect("valid");
        assert_eq!(c.policy.unused_days, 0, "0 turns retirement off");
        assert_eq!(c.policy.overlap_secs, 0, "0 turns the window off");
        assert_eq!(c.policy.cutover_settle_secs, 3600);
        assert_eq!(c.policy.cutover_poll_secs, 60);
        assert_eq!(c.policy.rotate_after_days, 30);
        assert_eq!(c.policy.warn_days, [20, 29]);
        assert_eq!(c.policy.deletion_delay_secs, 5);
        assert_eq!(c.secret_prefix, "keys/");
        assert_eq!(c.kms_key_id.as_deref(), Some("alias/keyrotor"));
        assert_eq!(c.email_tag, "owner-email");
        assert_eq!(c.policy.exempt_tag, "no-rotate");
        assert_eq!(c.exempt_group.as_deref(), Some("break-glass"));
        assert_eq!(
            c.from_address.as_ref().map(|a| a.as_str()),
            Some("security@example.com")
        );
        assert_eq!(
            c.admin_address.as_ref().map(|a| a.as_str()),
            Some("admin@example.com")
        );
        assert_eq!(c.allowed_email_domains, ["example.com", "corp.example.org"]);
        assert!(c.dry_run);
        assert!(c.require_state_machine_arn().is_ok());
        assert_eq!(c.verify_timeout_secs, 45);
    }

    #[test]
    fn bad_values_name_the_variable() {
        let cases: &[(&str, &str)] = &[
            (vars::ROTATE_AFTER_DAYS, "ninety"),
            (vars::ROTATE_AFTER_DAYS, "0"),
            (vars::ROTATE_AFTER_DAYS, "-5"),
            (vars::WARN_DAYS, "80,,89"),
            (vars::WARN_DAYS, "95"),
            (vars::DELETION_DELAY_SECONDS, "7d"),
            (vars::OVERLAP_SECONDS, "2592001"),
            (vars::OVERLAP_SECONDS, "-1"),
            (vars::CUTOVER_SETTLE_SECONDS, "2 days"),
            (vars::CUTOVER_POLL_SECONDS, "0"),
            (vars::CUTOVER_POLL_SECONDS, "86401"),
            (vars::UNUSED_DAYS, "3651"),
            (vars::UNUSED_DAYS, "45d"),
            (vars::SECRET_PREFIX, "bad prefix"),
            (vars::EMAIL_TAG, "aws:reserved"),
            (vars::EXEMPT_TAG, "bad\ttag"),
            (vars::EXEMPT_GROUP, "group with spaces"),
            (vars::FROM_ADDRESS, "not-an-address"),
            (vars::ADMIN_ADDRESS, "a@b@c"),
            (vars::ALLOWED_EMAIL_DOMAINS, "example.com,bad domain"),
            (vars::DRY_RUN, "maybe"),
            (vars::STATE_MACHINE_ARN, "keyrotor"),
            (
                vars::SCAN_STATE_MACHINE_ARN,
                "arn:aws:states:us-east-1:1:activity:x",
            ),
            (vars::VERIFY_TIMEOUT_SECONDS, "0"),
            (vars::VERIFY_TIMEOUT_SECONDS, "forever"),
            (vars::ASSESS_STRATEGY, "guess"),
            (vars::ACCOUNTS, "all"),
            (vars::ACCOUNTS, "111111111111,22222222222"),
            (vars::INCLUDE_OUS, "ou-ab12"),
            (vars::EXCLUDE_OUS, "Sandbox"),
            (vars::EXCLUDE_ACCOUNTS, "111111111111;222222222222"),
            (vars::INCLUDE_MANAGEMENT_ACCOUNT, "sometimes"),
            (vars::ORG_ROLE_ARN, "arn:aws:iam::111111111111:user/admin"),
            (vars::ACCOUNT_CONCURRENCY, "0"),
            (vars::ACCOUNT_CONCURRENCY, "101"),
            (vars::MEMBER_EXTERNAL_ID, "x"),
            (vars::MEMBER_EXTERNAL_ID, "has space"),
        ];
        for (var, value) in cases {
            let err =
                config(&[(var, value)]).expect_err(&format!("{var}={value} must be rejected"));
            assert_eq!(err.var, *var);
            assert!(err.to_string().contains(var), "{err}");
        }
    }

    #[test]
    fn accounts_default_to_this_account_alone() {
        let c = config(&[]).expect("valid");
        assert_eq!(
            c.accounts,
            AccountsConfig {
                concurrency: 10,
                ..AccountsConfig::default()
            }
        );
        assert_eq!(c.accounts.mode, AccountsMode::OwnAccount);
        // Organization settings without the organization mode are a mistake, not ignored.
        let err = config(&[(vars::EXCLUDE_OUS, "ou-ab12-abcd1234")]).expect_err("stray");
        assert_eq!(err.var, vars::EXCLUDE_OUS);
    }

    #[test]
    fn organization_settings_are_read() {
        let c = config(&[
            (vars::ACCOUNTS, "Organization"),
            (vars::INCLUDE_OUS, "r-ab12, ou-ab12-abcd1234"),
            (vars::EXCLUDE_OUS, "ou-ab12-sandbox1"),
            (vars::EXCLUDE_ACCOUNTS, "111111111111 ,222222222222"),
            (vars::INCLUDE_MANAGEMENT_ACCOUNT, "yes"),
            (
                vars::ORG_ROLE_ARN,
                "arn:aws:iam::999999999999:role/keyrotor-org-reader",
            ),
            (vars::ACCOUNT_CONCURRENCY, "25"),
            (vars::MEMBER_EXTERNAL_ID, "keyrotor-prod"),
        ])
        .expect("valid");
        let a = &c.accounts;
        assert_eq!(a.mode, AccountsMode::Organization);
        let ids = |v: &[&str]| {
            v.iter()
                .map(|s| s.parse().unwrap())
                .collect::<Vec<OrgNodeId>>()
        };
        assert_eq!(a.scope.include_ous, ids(&["r-ab12", "ou-ab12-abcd1234"]));
        assert_eq!(a.scope.exclude_ous, ids(&["ou-ab12-sandbox1"]));
        assert_eq!(a.scope.exclude_accounts.len(), 2);
        assert!(a.scope.include_management);
        assert_eq!(a.concurrency, 25);
        assert_eq!(a.external_id.as_deref(), Some("keyrotor-prod"));
        assert!(a.org_role_arn.is_some());

        let listed = config(&[(vars::ACCOUNTS, "111111111111, 222222222222")]).expect("valid");
        let AccountsMode::Listed(ids) = listed.accounts.mode else {
            panic!("a list of IDs is the listed mode");
        };
        assert_eq!(
            ids.iter().map(|id| id.as_str()).collect::<Vec<_>>(),
            ["111111111111", "222222222222"]
        );
    }

    #[test]
    fn default_warning_days_follow_the_rotation_age() {
        let c = config(&[(vars::ROTATE_AFTER_DAYS, "30")]).expect("valid");
        assert_eq!(c.policy.warn_days, [20, 25, 29]);
        let c = config(&[(vars::ROTATE_AFTER_DAYS, "3")]).expect("valid");
        assert_eq!(c.policy.warn_days, [2]);
        let c = config(&[(vars::ROTATE_AFTER_DAYS, "1")]).expect("valid");
        assert!(c.policy.warn_days.is_empty());
    }

    #[test]
    fn notify_requires_a_sender() {
        let err = config(&[])
            .expect("valid")
            .require_from_address()
            .expect_err("no sender");
        assert_eq!(err.var, vars::FROM_ADDRESS);
    }

    #[test]
    fn allow_list_matches_whole_domains_only() {
        let c = config(&[(vars::ALLOWED_EMAIL_DOMAINS, "example.com")]).expect("valid");
        let ok = EmailAddress::parse("a@EXAMPLE.com").expect("valid");
        let sub = EmailAddress::parse("a@evil-example.com").expect("valid");
        assert!(c.allows_recipient(&ok));
        assert!(!c.allows_recipient(&sub));
    }

    #[test]
    fn destinations_need_their_keys_and_secrets_and_stay_under_the_path() {
        let with = |pairs: &[(&str, &str)]| {
            Config::from_lookup(|name| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            })
        };
        let ssm = r#"{"alice": [{"type": "ssm", "parameter": "/keyrotor/alice"}]}"#;
        let github = r#"{"alice": [{"type": "github", "repository": "acme/app"}]}"#;
        let arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:keyrotor/github-AbCdEf";
        let key = (vars::DELIVERY_KMS_KEY_ID, "alias/keyrotor-delivery");
        let err = |pairs: &[(&str, &str)]| with(pairs).expect_err("refused").var;
        assert_eq!(err(&[(vars::DESTINATIONS, ssm)]), vars::DELIVERY_KMS_KEY_ID);
        let unsettled = with(&[(vars::DESTINATIONS, github), key]).expect("create-key's view");
        assert_eq!(
            unsettled
                .delivery
                .require_settings()
                .expect_err("deliver-key's")
                .var,
            vars::GITHUB_TOKEN_SECRET_ARN
        );
        assert_eq!(
            err(&[
                (vars::DESTINATIONS, ssm),
                key,
                (vars::PARAMETER_PATH, "/ci/")
            ]),
            vars::DESTINATIONS
        );
        assert_eq!(err(&[(vars::PARAMETER_PATH, "ci")]), vars::PARAMETER_PATH);
        assert_eq!(
            err(&[(vars::GITHUB_TOKEN_SECRET_ARN, "keyrotor/github")]),
            vars::GITHUB_TOKEN_SECRET_ARN
        );
        assert_eq!(
            err(&[(vars::GITHUB_API_URL, "http://github.example.com")]),
            vars::GITHUB_API_URL
        );
        assert_eq!(
            err(&[(vars::DESTINATIONS, "{not json")]),
            vars::DESTINATIONS
        );
        let ok = with(&[
            (vars::DESTINATIONS, github),
            key,
            (vars::GITHUB_TOKEN_SECRET_ARN, arn),
            (vars::GITHUB_API_URL, "http://127.0.0.1:8999/"),
        ])
        .expect("valid");
        assert_eq!(ok.delivery.github_api_url, "http://127.0.0.1:8999");
        assert_eq!(ok.delivery.destinations.of("ALICE").len(), 1);
        let none = with(&[]).expect("no destinations");
        assert!(none.delivery.destinations.is_empty());
        assert_eq!(none.delivery.github_api_url, "https://api.github.com");
    }
}
