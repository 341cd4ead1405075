//! `notify`: tells owners and admins what happened, by SES, in text and HTML, and tells
//! other automation: an event on the default EventBridge bus and, for a rotation's
//! outcome, a metric line (`keyrotor_core::events`, `keyrotor_core::metrics`).
//!
//! The owner's address comes from a user tag (`KEYROTOR_EMAIL_TAG`), which anyone allowed
//! to tag users can write, so it must parse as one address and, if an allow-list is set,
//! belong to an allowed domain; otherwise the admin gets the message instead. Messages name
//! key IDs, dates, the secret and the command to read it: never a secret value, and no
//! text from tags beyond a validated address. Owner and admin each get their own message.
//!
//! The event goes out first, so a mail that cannot be sent never holds it back. An event
//! that cannot be published is reported to the admin and never fails the step: a report is
//! never a gate.

mod message;

use std::borrow::Cow;

use aws_config::SdkConfig;
use chrono::Utc;
use keyrotor_aws::FromConfig;
use keyrotor_aws::{Accounts, EventBus, Iam, Mailer};
use keyrotor_core::accounts::AccountsMode;
use keyrotor_core::config::{Config, ConfigError};
use keyrotor_core::delivery::DeliveryReport;
use keyrotor_core::domain::cutover::Usage;
use keyrotor_core::email::EmailAddress;
use keyrotor_core::events::{self, DetailType, Event};
use keyrotor_core::metrics::{Emf, Outcome};
use keyrotor_core::payload::{parse, AccountRef, NotificationKind, NotifyInput, NotifyOutput};
use keyrotor_core::ports::{EventsPort, MailerPort, UsersPort};
use keyrotor_core::{naming, Error, Result};
use tracing::{info, warn};

pub use message::{render, render_unpublished};

/// Who gets the message, and why the owner does not, if not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipients {
    pub to: Vec<EmailAddress>,
    pub owner_missing: Option<String>,
}

/// What `notify` needs: its settings and IAM (the owner's tags), SES and EventBridge,
/// nothing else. Built once per cold start from the SDK configuration; tests build it
/// around an in-memory account.
pub struct Deps<U = Iam, M = Mailer, E = EventBus> {
    pub config: Config,
    /// The sender, required: checked when the dependencies are built (the cold start).
    pub from: EmailAddress,
    pub iam: U,
    pub mailer: M,
    pub events: E,
}

impl<U, M, E> Deps<U, M, E> {
    pub fn new(config: Config, iam: U, mailer: M, events: E) -> Result<Self, ConfigError> {
        Ok(Deps {
            from: config.require_from_address()?.clone(),
            config,
            iam,
            mailer,
            events,
        })
    }
}

impl FromConfig for Deps {
    const CHECKS_SCOPE: bool = true;

    fn from_config(config: Config, sdk: &SdkConfig) -> Result<Self, ConfigError> {
        Deps::new(
            config,
            Iam::from_sdk(sdk),
            Mailer::from_sdk(sdk),
            EventBus::from_sdk(sdk),
        )
    }

    /// In a member account, only the owner's tags are read there: mails and events leave
    /// from keyrotor's own account.
    fn in_member(&self, config: Config, member: &SdkConfig) -> Result<Self, ConfigError> {
        Deps::new(
            config,
            Iam::from_sdk(member),
            self.mailer.clone(),
            self.events.clone(),
        )
    }
}

/// Every AWS API action this function calls: its role grants exactly these (checked by
/// `tools/check_infra.py`), and a test holds the calls the code makes to them.
pub const AWS_ACTIONS: &[&str] = &[
    "events:PutEvents",
    "iam:GetUser",
    "iam:ListUserTags",
    "ses:SendEmail",
];

/// Sends the message `event` asks for, with `deps` of the account it is about. With many
/// accounts, the event's `account` is taken as given: the Lambda entry point,
/// [`handle_in_account`], first replaces it with what the organization says.
pub async fn handle<U: UsersPort, M: MailerPort, E: EventsPort>(
    event: serde_json::Value,
    deps: &Deps<U, M, E>,
) -> Result<NotifyOutput> {
    let mut input: NotifyInput = parse(event)?;
    if deps.config.accounts.mode == AccountsMode::OwnAccount {
        // No member accounts here: an account (its name, its admin) in the input is
        // whoever started the execution's text, and is neither shown nor followed.
        input.account = None;
    }
    let dry_run = input.dry_run || deps.config.dry_run;
    let (config, account_admin) = account_config(&deps.config, input.account.as_ref());
    let config = config.as_ref();
    let account_admin = account_admin.as_ref();
    let user = match (&input.user, input.kind) {
        (Some(user), _) => user.as_str(),
        // A failure of a whole scan is about no user in particular.
        (None, kind) if kind.is_for_admin_only() => "",
        (None, _) => return Err(Error::InvalidInput("user is required".into())),
    };

    // The user as IAM spells them, their secret, and their tags. A failure report must go
    // out even when the user is the problem (gone, or never existed).
    // An admin's notice about a member account reads nothing there (see
    // `handle_in_account`): it names the user as the execution gave it.
    let (user, secret_name, tags) = if user.is_empty() {
        (String::new(), String::new(), Default::default())
    } else if input.account.is_some() && input.kind.is_for_admin_only() {
        (user.to_owned(), String::new(), Default::default())
    } else {
        match deps.iam.user(user).await {
            Ok(identity) => {
                let tags = deps.iam.user_tags(&identity.name).await?;
                let secret = naming::secret_name(&deps.config.secret_prefix, &identity.id);
                (identity.name, secret, tags)
            }
            Err(Error::UserNotFound(_)) if input.kind.is_for_admin_only() => {
                (user.to_owned(), String::new(), Default::default())
            }
            Err(e) => return Err(e),
        }
    };
    let user = user.as_str();

    // Other automation hears of it first; a dry run tells nobody.
    let report = outcome_events(&input, user, &secret_name);
    let (published, events_error) = if dry_run || report.is_empty() {
        (Vec::new(), None)
    } else {
        if let Some(outcome) = outcome_of(&input) {
            Emf::rotation(Utc::now(), outcome, input.started_at).emit();
        }
        match deps.events.publish(&report).await {
            Ok(()) => (report.iter().map(|e| e.detail_type).collect(), None),
            Err(e) => {
                warn!(user, error = %e, "events not published; telling the admin");
                let types: Vec<DetailType> = report.iter().map(|e| e.detail_type).collect();
                tell_admin_unpublished(deps, config, account_admin, &input, user, &types, &e).await;
                (Vec::new(), Some(e.to_string()))
            }
        }
    };

    let mut recipients = recipients(
        config,
        input.kind,
        tags.get(&config.email_tag).map(String::as_str),
        input.cause.is_some()
            || input
                .delivery
                .as_ref()
                .is_some_and(DeliveryReport::needs_admin),
    );
    // The member account's own admin gets a copy of whatever keyrotor's admin gets.
    if let Some(extra) = account_admin {
        if recipients
            .to
            .iter()
            .any(|to| Some(to) == config.admin_address.as_ref())
            && !recipients.to.contains(extra)
        {
            recipients.to.push(extra.clone());
        }
    }
    let output = |message_ids: Vec<String>, skipped: Option<String>| NotifyOutput {
        kind: input.kind,
        sent: !message_ids.is_empty(),
        recipients: recipients.to.iter().map(ToString::to_string).collect(),
        message_ids,
        skipped,
        events: published.clone(),
        events_error: events_error.clone(),
        dry_run,
    };
    if recipients.to.is_empty() {
        let why = recipients.owner_missing.clone().unwrap_or_default();
        warn!(user, kind = ?input.kind, reason = %why, "nobody to notify");
        return Ok(output(
            Vec::new(),
            Some(format!(
                "no recipient: {why}, and no admin address is configured"
            )),
        ));
    }
    if dry_run {
        info!(user, kind = ?input.kind, "dry run: e-mail not sent");
        return Ok(output(Vec::new(), Some("dry run".into())));
    }
    let mut message_ids = Vec::with_capacity(recipients.to.len());
    for to in &recipients.to {
        // Only the admin's copy says why the owner could not be reached.
        let owner_missing = recipients
            .owner_missing
            .as_deref()
            .filter(|_| Some(to) == config.admin_address.as_ref() || Some(to) == account_admin);
        let email = render(
            &input,
            &secret_name,
            &config.policy,
            vec![to.clone()],
            owner_missing,
        );
        message_ids.push(deps.mailer.send(&deps.from, &email).await?);
    }
    Ok(output(message_ids, None))
}

/// Runs [`handle`] with the dependencies of the account `event` is about. A message to the
/// owner reads the owner's tags in the member account the execution works in, through
/// notify's member role there. An admin's notice (a failure, an undelivered mail) needs
/// nothing from that account, so it goes out from keyrotor's own account even when the
/// member account is unreachable, which is when it matters most.
///
/// The account's name and admin address are the organization's, read here, never the
/// event's: an execution's input is the text of whoever started it (issue 26, M6). Where the
/// organization cannot say (the account is out of scope, or Organizations fails), the
/// notice names the account by ID alone and goes to keyrotor's admin only.
pub async fn handle_in_account(
    mut event: serde_json::Value,
    accounts: &Accounts<Deps>,
) -> Result<NotifyOutput> {
    let input: NotifyInput = parse(event.clone())?;
    if let Some(account) = &input.account {
        let trusted = match accounts.member(&account.id).await {
            Ok(Some(member)) => AccountRef::from_member(&member),
            Ok(None) => AccountRef::id_only(account.id.clone()),
            Err(e) => {
                warn!(account = %account.id, error = %e, "the account's admin is not known: keyrotor's admin alone is told");
                AccountRef::id_only(account.id.clone())
            }
        };
        if let Some(object) = event.as_object_mut() {
            let value = serde_json::to_value(trusted)
                .map_err(|e| Error::Internal(format!("account not serializable: {e}")))?;
            object.insert("account".to_owned(), value);
        }
    }
    let member = input
        .account
        .as_ref()
        .filter(|_| !input.kind.is_for_admin_only())
        .map(|a| &a.id);
    let deps = accounts.deps(member).await?;
    handle(event, &deps).await
}

/// The rotation outcome a message reports, for the metrics: none for warnings, blocked
/// users, undelivered mail, scans and retirements (no rotation: the scan counts them, and
/// `OldKeyDeactivated` with `why: unused` reports each; the retired key's deletion counts
/// as a deletion).
fn outcome_of(input: &NotifyInput) -> Option<Outcome> {
    match input.kind {
        NotificationKind::Rotated => Some(Outcome::Rotated),
        NotificationKind::Deleted => Some(Outcome::Deleted),
        NotificationKind::Kept => Some(Outcome::Kept),
        NotificationKind::Failure if !input.scan => Some(Outcome::Failed),
        _ => None,
    }
}

/// The events that report what `input` reports (an undelivered mail reports none).
fn outcome_events(input: &NotifyInput, user: &str, secret_name: &str) -> Vec<Event> {
    let context = events::Context {
        user: (!user.is_empty()).then(|| user.to_owned()),
        execution: input.execution.clone(),
        forced: input.cause.is_some(),
        account: input.account.as_ref().map(|a| a.id.to_string()),
    };
    let key = input.key_id.as_ref().map(|k| k.as_str());
    let reason = input.reason.as_deref().unwrap_or_default();
    match (input.kind, key) {
        (NotificationKind::Warning, _) => {
            vec![events::warned(
                &context,
                key,
                input.age_days,
                input.rotate_on,
                input.retired,
            )]
        }
        (NotificationKind::NewKey | NotificationKind::Rotated, Some(old)) => {
            let Some(new) = &input.new_key_id else {
                return Vec::new();
            };
            let new_key = events::NewKey {
                old_key_id: old,
                new_key_id: new.as_str(),
                secret_name,
                secret_arn: input.secret_arn.as_ref().map(|a| a.as_str()),
                delivery: input.delivery.as_ref(),
            };
            if input.kind == NotificationKind::NewKey {
                return vec![events::key_rotated(&context, &new_key)];
            }
            let cutover = events::Cutover {
                why: input.why,
                window: input.window.as_ref(),
                usage: Usage {
                    old_key_last_used: input.old_key_last_used,
                    new_key_last_used: input.new_key_last_used,
                },
            };
            let deactivated =
                events::old_key_deactivated(&context, old, input.delete_after, cutover);
            // With a window, KeyRotated went out when it opened.
            if input.window.is_some() {
                vec![deactivated]
            } else {
                vec![events::key_rotated(&context, &new_key), deactivated]
            }
        }
        (NotificationKind::Retired, Some(old)) => {
            // `why` is `null` when the run found the key retired already (a rerun or a
            // second execution): the event repeats the deactivation without deciding it.
            let retired = events::Cutover {
                why: input.why,
                window: None,
                usage: Usage {
                    old_key_last_used: input.old_key_last_used,
                    new_key_last_used: None,
                },
            };
            vec![events::old_key_deactivated(
                &context,
                old,
                input.delete_after,
                retired,
            )]
        }
        (NotificationKind::Contained, Some(old)) => {
            let contained = events::Cutover {
                why: Some(keyrotor_core::domain::cutover::Why::Forced),
                window: None,
                usage: Usage::default(),
            };
            vec![events::old_key_deactivated(&context, old, None, contained)]
        }
        (NotificationKind::Deleted, Some(old)) => vec![events::deleted(&context, old)],
        (NotificationKind::Kept, Some(old)) => vec![events::kept(&context, old, reason)],
        (NotificationKind::Blocked, _) => vec![events::blocked(&context, key, reason)],
        (NotificationKind::Failure, _) => {
            // Step Functions' error name: short, but it came through the execution.
            let error_type: String = input
                .error
                .as_ref()
                .map_or("Unknown", |e| e.error.as_str())
                .chars()
                .take(100)
                .collect();
            vec![events::failed(
                &context,
                input.scan,
                input.step.as_ref().map(|s| s.as_str()),
                &error_type,
            )]
        }
        _ => Vec::new(),
    }
}

/// Tells the admin that events could not be published, as a failed owner mail is told. A
/// notice that cannot be sent either is logged: the step still succeeds.
async fn tell_admin_unpublished<U, M: MailerPort, E>(
    deps: &Deps<U, M, E>,
    config: &Config,
    account_admin: Option<&EmailAddress>,
    input: &NotifyInput,
    user: &str,
    types: &[DetailType],
    error: &Error,
) {
    let Some(admin) = config.admin_address.clone() else {
        warn!(
            user,
            "no admin address: the unpublished events are only logged"
        );
        return;
    };
    for admin in std::iter::once(admin).chain(account_admin.cloned()) {
        let email = render_unpublished(input, user, types, error, admin);
        if let Err(e) = deps.mailer.send(&deps.from, &email).await {
            warn!(user, error = %e, "the admin could not be told of the unpublished events");
        }
    }
}

/// The configuration for a message about `account`, and who gets a copy of the admin's
/// notices: the address of the account's `keyrotor:admin-address` tag, when that is one
/// address the allowed domains accept. `KEYROTOR_ADMIN_ADDRESS` always gets them; the
/// account's admin gets a copy, or takes its place where none is configured. The account's
/// admin address is the one [`handle_in_account`] read from the organization, never an
/// execution's input (issue 26, M6).
fn account_config<'a>(
    config: &'a Config,
    account: Option<&AccountRef>,
) -> (Cow<'a, Config>, Option<EmailAddress>) {
    // In keyrotor's own account there are no member accounts: an `account` in the input is
    // made up by whoever started the execution, and redirects nothing (issue 26, M6).
    if config.accounts.mode == AccountsMode::OwnAccount {
        return (Cow::Borrowed(config), None);
    }
    let tagged = account
        .and_then(|a| a.admin_address.as_ref())
        .and_then(|a| EmailAddress::parse(a.as_str()).ok())
        .filter(|a| config.allows_recipient(a));
    match (tagged, &config.admin_address) {
        (Some(tagged), Some(admin)) if tagged == *admin => (Cow::Borrowed(config), None),
        (Some(tagged), Some(_)) => (Cow::Borrowed(config), Some(tagged)),
        (Some(tagged), None) => {
            let mut config = config.clone();
            config.admin_address = Some(tagged);
            (Cow::Owned(config), None)
        }
        (None, _) => (Cow::Borrowed(config), None),
    }
}

/// Chooses recipients: owner messages go to the owner, or to the admin when the owner has
/// no acceptable address; blocked and kept keys go to both, and so does every message about
/// a forced rotation (`forced`: it has a cause, such as a leak); failures to the admin.
pub fn recipients(
    config: &Config,
    kind: NotificationKind,
    owner_tag: Option<&str>,
    admin_copy: bool,
) -> Recipients {
    let owner = match owner_tag.map(EmailAddress::parse) {
        None => Err(format!("the user has no {} tag", config.email_tag)),
        // The tag's text is not quoted: anyone who may tag the user wrote it.
        Some(Err(_)) => Err(format!(
            "the {} tag does not hold one address SES accepts",
            config.email_tag
        )),
        Some(Ok(address)) if !config.allows_recipient(&address) => {
            Err(format!("{address} is outside the allowed e-mail domains"))
        }
        Some(Ok(address)) => Ok(address),
    };
    let admin = config.admin_address.clone();
    let (to, owner_missing) = match (kind, owner) {
        (NotificationKind::Failure | NotificationKind::Undelivered, _) => {
            (admin.into_iter().collect(), None)
        }
        (_, Ok(owner))
            if admin_copy
                || matches!(
                    kind,
                    NotificationKind::Blocked
                        | NotificationKind::Kept
                        | NotificationKind::Contained
                ) =>
        {
            let mut to = vec![owner];
            to.extend(admin.filter(|a| !to.contains(a)));
            (to, None)
        }
        (_, Ok(owner)) => (vec![owner], None),
        (_, Err(why)) => (admin.into_iter().collect(), Some(why)),
    };
    Recipients { to, owner_missing }
}

#[cfg(test)]
mod tests {
    use keyrotor_aws::testing::{test_config, unreachable_sdk_config};
    use keyrotor_core::{Config, ErrorType};
    use serde_json::json;

    use super::*;

    #[tokio::test]
    async fn malformed_inputs_are_rejected_before_any_aws_call() {
        keyrotor_aws::assert_rejected!(
            handle,
            [
                json!({}),
                json!({"kind": "warning"}),
                json!({"kind": "party", "user": "alice"}),
                json!({"kind": "warning", "user": "alice", "keyId": "nope"}),
                json!({"kind": "warning", "user": "alice", "rotateOn": "soon"}),
                json!({"kind": "failure", "user": "alice", "error": "boom"}),
                json!({"kind": "warning", "user": "alice", "to": "eve@evil.example"}),
            ]
        );
    }

    #[test]
    fn a_missing_sender_stops_the_cold_start() {
        let config = Config::from_lookup(|_| None).expect("defaults");
        let err = Deps::from_config(config, &unreachable_sdk_config())
            .err()
            .expect("no sender");
        assert_eq!(err.var, "KEYROTOR_FROM_ADDRESS");
        assert_eq!(Error::from(err).error_type(), ErrorType::ConfigurationError);
    }

    fn config_with_domains(domains: &str) -> Config {
        let base = test_config();
        Config::from_lookup(|name| match name {
            "KEYROTOR_ACCOUNTS" => Some("organization".to_owned()),
            "KEYROTOR_ALLOWED_EMAIL_DOMAINS" => Some(domains.to_owned()),
            "KEYROTOR_FROM_ADDRESS" => base.from_address.as_ref().map(ToString::to_string),
            "KEYROTOR_ADMIN_ADDRESS" => base.admin_address.as_ref().map(ToString::to_string),
            _ => None,
        })
        .expect("valid")
    }

    /// M6 of the second review: in keyrotor's own account (the default mode) an execution's
    /// input named an account whose admin address and name notify followed, so whoever
    /// could start an execution redirected the admin's mail, with text of their own, from
    /// the organization's verified sender.
    #[test]
    fn in_its_own_account_notify_follows_no_account_of_the_input() {
        let config = test_config();
        assert_eq!(config.accounts.mode, AccountsMode::OwnAccount);
        let account: AccountRef = serde_json::from_value(json!({
            "id": "000000000000",
            "name": "see https://phish.example",
            "adminAddress": "victim@anywhere.example",
        }))
        .expect("valid");
        let (chosen, copy) = account_config(&config, Some(&account));
        assert_eq!(
            chosen.admin_address, config.admin_address,
            "the configured admin, not the input's"
        );
        assert_eq!(copy, None, "and no copy to the input's");
    }

    #[test]
    fn a_member_accounts_admin_gets_a_copy_of_the_admins_notices_if_its_tag_is_allowed() {
        let config = config_with_domains("example.com");
        let account = |address: Option<&str>| -> AccountRef {
            serde_json::from_value(json!({
                "id": "222222222222",
                "adminAddress": address,
            }))
            .expect("valid")
        };
        let chosen = |config: &Config, address: Option<&str>| {
            let (config, copy) = account_config(config, Some(&account(address)));
            let show = |a: Option<&EmailAddress>| a.map(ToString::to_string);
            (show(config.admin_address.as_ref()), show(copy.as_ref()))
        };
        // keyrotor's admin always gets the notice; the account's admin a copy.
        assert_eq!(
            chosen(&config, Some("prod-sec@example.com")),
            (
                Some("security@example.com".to_owned()),
                Some("prod-sec@example.com".to_owned())
            )
        );
        assert_eq!(
            chosen(&config, Some("security@example.com")),
            (Some("security@example.com".to_owned()), None),
            "the same address once"
        );
        // Not one address, or outside the allowed domains: keyrotor's admin alone.
        for refused in [
            Some("a@example.com, b@example.com"),
            Some("x@evil.example"),
            None,
        ] {
            assert_eq!(
                chosen(&config, refused),
                (Some("security@example.com".to_owned()), None),
                "{refused:?}"
            );
        }
        // With no admin configured, the account's admin takes the admin's place.
        let mut unconfigured = config.clone();
        unconfigured.admin_address = None;
        assert_eq!(
            chosen(&unconfigured, Some("prod-sec@example.com")),
            (Some("prod-sec@example.com".to_owned()), None)
        );
        assert!(matches!(
            account_config(&config, None),
            (Cow::Borrowed(_), None)
        ));
    }

    #[test]
    fn owner_messages_go_to_the_owner_and_fall_back_to_the_admin() {
        let config = config_with_domains("example.com");
        let to = |kind, tag| {
            recipients(&config, kind, tag, false)
                .to
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            to(NotificationKind::Warning, Some("alice@example.com")),
            ["alice@example.com"]
        );
        assert_eq!(
            to(NotificationKind::Warning, None),
            ["security@example.com"]
        );
        assert_eq!(
            to(NotificationKind::Rotated, Some("eve@evil.example")),
            ["security@example.com"]
        );
        assert_eq!(
            to(
                NotificationKind::Rotated,
                Some("a@example.com, eve@evil.example")
            ),
            ["security@example.com"]
        );
        assert_eq!(
            to(NotificationKind::Blocked, Some("alice@example.com")),
            ["alice@example.com", "security@example.com"]
        );
        assert_eq!(
            to(NotificationKind::Failure, Some("alice@example.com")),
            ["security@example.com"]
        );
        let why = recipients(
            &config,
            NotificationKind::Warning,
            Some("eve@evil.example"),
            false,
        )
        .owner_missing;
        assert!(why.is_some_and(|w| w.contains("allowed")));
        // A forced rotation (a leak) is the admin's business too.
        let forced = recipients(
            &config,
            NotificationKind::Rotated,
            Some("alice@example.com"),
            true,
        );
        let forced: Vec<String> = forced.to.iter().map(ToString::to_string).collect();
        assert_eq!(forced, ["alice@example.com", "security@example.com"]);
    }
}
