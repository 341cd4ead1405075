//! Configuration, read once at cold start from `KEYROTOR_*` environment variables and
//! validated there, so that a bad value fails the start with a clear message instead of
//! misbehaving on some later event.

use std::fmt;

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
    /// How long `create-key` keeps trying a new key against STS (IAM propagation).
    pub verify_timeout_secs: u64,
    pub assess_strategy: AssessStrategy,
    /// The IAM roles that may change users' secrets: keyrotor's `create-key` and
    /// `deactivate-key` roles, and an optional break-glass role. Every secret's resource
    /// policy denies any change to every other principal.
    pub trusted_role_arns: Vec<String>,
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
    pub const VERIFY_TIMEOUT_SECONDS: &str = "KEYROTOR_VERIFY_TIMEOUT_SECONDS";
    pub const ASSESS_STRATEGY: &str = "KEYROTOR_ASSESS_STRATEGY";
    pub const MAX_EXEMPTION_DAYS: &str = "KEYROTOR_MAX_EXEMPTION_DAYS";
    pub const TRUSTED_ROLE_ARNS: &str = "KEYROTOR_TRUSTED_ROLE_ARNS";
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

        let dry_run = match get(vars::DRY_RUN).map(|v| v.to_ascii_lowercase()) {
            None => false,
            Some(v) if v == "true" || v == "1" || v == "yes" => true,
            Some(v) if v == "false" || v == "0" || v == "no" => false,
            Some(v) => {
                return Err(ConfigError::new(
                    vars::DRY_RUN,
                    format!("{v:?} is not true or false"),
                ))
            }
        };

        let state_machine_arn = get(vars::STATE_MACHINE_ARN);
        if let Some(arn) = &state_machine_arn {
            let ok = arn.starts_with("arn:")
                && arn.contains(":states:")
                && arn.contains(":stateMachine:");
            if !ok {
                return Err(ConfigError::new(
                    vars::STATE_MACHINE_ARN,
                    format!("{arn:?} is not a Step Functions state machine ARN"),
                ));
            }
        }

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
                    let ok = arn.starts_with("arn:")
                        && arn.split(':').nth(2) == Some("iam")
                        && arn
                            .split(':')
                            .nth(5)
                            .is_some_and(|r| r.starts_with("role/"))
                        && !arn.contains(['*', '?', '"', '\\'])
                        && arn.len() <= 2048;
                    ok.then(|| arn.to_owned()).ok_or_else(|| {
                        ConfigError::new(
                            vars::TRUSTED_ROLE_ARNS,
                            format!("{arn:?} is not an IAM role ARN"),
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()?,
        };

        Ok(Config {
            verify_timeout_secs,
            trusted_role_arns,
            assess_strategy,
            policy: Policy {
                rotate_after_days,
                warn_days,
                deletion_delay_secs,
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

    /// Whether an owner's address may receive mail (the allow-list, if any, names its domain).
    pub fn allows_recipient(&self, address: &EmailAddress) -> bool {
        self.allowed_email_domains.is_empty()
            || self
                .allowed_email_domains
                .iter()
                .any(|d| d == address.domain())
    }
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
        ])
        .expect("valid");
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
            (vars::SECRET_PREFIX, "bad prefix"),
            (vars::EMAIL_TAG, "aws:reserved"),
            (vars::EXEMPT_TAG, "bad\ttag"),
            (vars::EXEMPT_GROUP, "group with spaces"),
            (vars::FROM_ADDRESS, "not-an-address"),
            (vars::ADMIN_ADDRESS, "a@b@c"),
            (vars::ALLOWED_EMAIL_DOMAINS, "example.com,bad domain"),
            (vars::DRY_RUN, "maybe"),
            (vars::STATE_MACHINE_ARN, "keyrotor"),
            (vars::VERIFY_TIMEOUT_SECONDS, "0"),
            (vars::VERIFY_TIMEOUT_SECONDS, "forever"),
            (vars::ASSESS_STRATEGY, "guess"),
        ];
        for (var, value) in cases {
            let err =
                config(&[(var, value)]).expect_err(&format!("{var}={value} must be rejected"));
            assert_eq!(err.var, *var);
            assert!(err.to_string().contains(var), "{err}");
        }
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
}
