//! Message texts. Plain text and HTML say the same; every value placed in HTML is escaped.

use keyrotor_core::delivery::DeliveryOutcome;
use keyrotor_core::domain::cutover::{human, seconds, Why, MAX_EXTENSION};
use keyrotor_core::domain::planner::deletion_delay;
use keyrotor_core::domain::Policy;
use keyrotor_core::email::EmailAddress;
use keyrotor_core::error::{Error, ErrorType};
use keyrotor_core::events::DetailType;
use keyrotor_core::html::escape;
use keyrotor_core::naming;
use keyrotor_core::payload::{Cause, NotificationKind, NotifyInput};
use keyrotor_core::ports::Email;

/// Limits free text that came from elsewhere (a caught error's cause) to a sane length.
fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(max).collect();
        out.push('…');
        out
    }
}

/// The caught error's name and cause, clipped.
fn push_error(lines: &mut Vec<String>, input: &NotifyInput) {
    if let Some(err) = &input.error {
        lines.push(format!("Error: {}", clip(&err.error, 200)));
        if let Some(cause) = &err.cause {
            lines.push(format!("Cause: {}", clip(cause, 1000)));
        }
    }
}

/// Why a rotation was forced and, for an exposed key, what to do about it: look for its use
/// since the exposure in CloudTrail, and leave AWS's quarantine policy to a person.
fn push_cause(lines: &mut Vec<String>, cause: &Cause) {
    let Some(exposure) = &cause.exposure else {
        if let Some(reason) = &cause.reason {
            lines.push(format!("Why: a responder forced this rotation: {reason}."));
        }
        return;
    };
    let key = &exposure.access_key_id;
    if !cause.confirmed {
        // Issue 26, M9: a report AWS did not confirm may be anyone's text; none of it
        // (its time, its place) is quoted, and the reader is told to look at AWS's own.
        let why = cause
            .unconfirmed
            .as_ref()
            .map_or("AWS was not asked", |why| why.as_str());
        lines.push(format!(
            "Why: a report said to come from {} names the access key {key} as exposed. keyrotor could not confirm it with AWS ({why}), so it quotes none of it: look for AWS's own report in AWS Health (or the AWS Support case) of this account.",
            exposure.reporter.name()
        ));
        lines.push(format!(
            "If the key did leak, anyone may have used it. Check CloudTrail, in every region you use, for requests signed with {key}:"
        ));
        lines.push(format!(
            "    aws cloudtrail lookup-events --lookup-attributes AttributeKey=AccessKeyId,AttributeValue={key}"
        ));
        return;
    }
    let when = exposure.reported_at.format("%Y-%m-%d %H:%M UTC");
    let place = exposure.found_at.as_ref().map_or_else(
        || "It did not say where.".to_owned(),
        |at| format!("It was found at: {at}"),
    );
    lines.push(format!(
        "Why: {} reported the access key {key} as exposed in a public place on {when} (confirmed with AWS). {place}",
        exposure.reporter.name()
    ));
    lines.push(format!(
        "Anyone may have used it since. Check CloudTrail, in every region you use, for requests signed with {key} since {when}:"
    ));
    lines.push(format!(
        "    aws cloudtrail lookup-events --lookup-attributes AttributeKey=AccessKeyId,AttributeValue={key} --start-time {}",
        exposure.reported_at.format("%Y-%m-%dT%H:%M:%SZ")
    ));
    lines.push("AWS attaches a quarantine policy (AWSCompromisedKeyQuarantineV3 or a later version) to a user whose key it finds exposed. It stays until a person removes it after that review: keyrotor never removes policies.".to_owned());
}

/// Why the old key was deactivated when it was, in words, for a rotation that had a
/// window (`None` when it had none: the rotated mail says all).
fn why_deactivated(input: &NotifyInput, key: &str) -> Option<String> {
    let window = input.window.as_ref()?;
    let until = window.until.format("%Y-%m-%d %H:%M UTC");
    let since = window.since.format("%Y-%m-%d %H:%M UTC");
    let used = |t: Option<chrono::DateTime<chrono::Utc>>| {
        t.map_or_else(
            || "never".to_owned(),
            |t| t.format("%Y-%m-%d %H:%M UTC").to_string(),
        )
    };
    Some(match input.why {
        Some(Why::Idle) => format!(
            "Both keys worked from {since}. The new key is in use (last used {}), and nothing has used the old key {key} since {}, so keyrotor deactivated it before the window's end ({until}).",
            used(input.new_key_last_used),
            used(input.old_key_last_used)
        ),
        Some(Why::Cap) => format!(
            "Both keys worked from {since} until the window's end, {until}. The old key {key} was last used {}: a program still on it fails now. Move it to the new key.",
            used(input.old_key_last_used)
        ),
        Some(Why::Owner) => format!(
            "As asked (tag {}), keyrotor deactivated the old key {key} before the window's end ({until}).",
            naming::USER_TAG_CUTOVER
        ),
        Some(Why::Forced) => format!(
            "The rotation was forced during the overlap window (open since {since}): the old key {key} was deactivated at once."
        ),
        Some(Why::Immediate | Why::Unused) | None => return None,
    })
}

/// What `deliver-key` did with the new key, destination by destination, and what is left
/// to the owner by hand.
fn push_delivery(lines: &mut Vec<String>, input: &NotifyInput) {
    let Some(report) = &input.delivery else {
        return;
    };
    if let Some(err) = &report.error {
        lines.push(format!(
            "keyrotor could not deliver the new key to the places declared for this user (deliver-key failed: {}). Copy it by hand to every place that uses it.",
            clip(&err.error, 200)
        ));
        return;
    }
    if report.destinations.is_empty() {
        return;
    }
    lines.push("Where keyrotor delivered the new key:".to_owned());
    for line in &report.destinations {
        let detail = match (line.outcome, &line.why, line.at) {
            (DeliveryOutcome::Failed, why, _) => format!(
                "NOT delivered ({}). Copy the key there by hand.",
                clip(why.as_deref().unwrap_or("no reason given"), 300)
            ),
            (DeliveryOutcome::Delivered, _, Some(at)) => {
                format!("delivered {}", at.format("%Y-%m-%d %H:%M UTC"))
            }
            (outcome, _, _) => outcome.to_string(),
        };
        lines.push(format!("    {}: {detail}", line.destination));
    }
    lines.push(
        "Any other program that uses the old key still needs the new one by hand.".to_owned(),
    );
}

/// For an unused key: a program in CI or on AWS compute needs no long-lived key at all.
fn push_roles_advice(lines: &mut Vec<String>) {
    lines.push("If the key was for CI or a workload, a role removes the need for one: OIDC federation for CI (GitHub Actions, GitLab, ...), IAM Roles Anywhere for servers outside AWS, instance profiles or task roles on AWS compute.".to_owned());
}

/// Builds the e-mail for `input`. `owner_missing` explains, in admin copies of owner
/// messages, why the owner could not be reached.
pub fn render(
    input: &NotifyInput,
    secret_name: &str,
    policy: &Policy,
    to: Vec<EmailAddress>,
    owner_missing: Option<&str>,
) -> Email {
    let user = input.user.as_ref().map_or("", |u| u.as_str());
    let key = input.key_id.as_ref().map_or("(unknown)", |k| k.as_str());
    let read_cmd = format!(
        "aws secretsmanager get-secret-value --secret-id '{secret_name}' --query SecretString --output text"
    );
    let delay_days = deletion_delay(policy).num_days();
    let mut lines: Vec<String> = Vec::new();
    let subject = match input.kind {
        NotificationKind::Warning => {
            let age = input
                .age_days
                .map_or_else(String::new, |a| format!(" is {a} days old and"));
            let when = input
                .rotate_on
                .map_or_else(|| "soon".to_owned(), |d| format!("on {d}"));
            if input.retired {
                lines.push(format!("The access key {key} of IAM user {user}{age} has not been used for {} days or more (or never), and will be retired {when}: deactivated, with no new key, and deleted {delay_days} days later.", policy.unused_days));
                lines.push("Still need it? Use it before then (a key in use is rotated instead: its replacement goes to the user's Secrets Manager secret), or ask your administrator for a new key later.".to_owned());
                push_roles_advice(&mut lines);
                format!("[keyrotor] Unused access key {key} of {user} will be retired {when}")
            } else {
                lines.push(format!("The access key {key} of IAM user {user}{age} will be rotated automatically {when}."));
                lines.push(format!(
                    "The new key will be stored in the Secrets Manager secret {secret_name}."
                ));
                lines.push(format!(
                    "The old key is then deactivated, and deleted {delay_days} days later. Prepare the applications that use it to read the new key:"
                ));
                lines.push(format!("    {read_cmd}"));
                format!("[keyrotor] Access key {key} of {user} will be rotated {when}")
            }
        }
        NotificationKind::NewKey => {
            let new = input
                .new_key_id
                .as_ref()
                .map_or("(unknown)", |k| k.as_str());
            let until = input.window.as_ref().map_or_else(
                || "the end of the overlap window".to_owned(),
                |w| w.until.format("%Y-%m-%d %H:%M UTC").to_string(),
            );
            lines.push(format!(
                "A new access key {new} of IAM user {user} is ready, in the Secrets Manager secret {secret_name}. Read it with:"
            ));
            lines.push(format!("    {read_cmd}"));
            push_delivery(&mut lines, input);
            lines.push(format!(
                "Both keys work for now. Switch every program that uses the old key {key} to the new key by {until}. The old key is deactivated then, or earlier: once the new key is in use and nothing has used the old key for {}. It is deleted {delay_days} days after it is deactivated.",
                human(seconds(policy.cutover_settle_secs))
            ));
            lines.push(format!(
                "Moved everything already? Tag the user {}={new} and keyrotor deactivates the old key at its next look. Need more time? Tag {}={new} for {} more days (or {new}:<days>), once.",
                naming::USER_TAG_CUTOVER,
                naming::USER_TAG_EXTEND,
                MAX_EXTENSION.num_days()
            ));
            format!("[keyrotor] New access key for {user}: switch to {new} by {until}")
        }
        NotificationKind::Rotated => {
            let new = input
                .new_key_id
                .as_ref()
                .map_or("(unknown)", |k| k.as_str());
            lines.push(format!(
                "The access key {key} of IAM user {user} has been rotated."
            ));
            lines.push(format!(
                "New key: {new}, stored in the Secrets Manager secret {secret_name}. Read it with:"
            ));
            lines.push(format!("    {read_cmd}"));
            push_delivery(&mut lines, input);
            if let Some(why) = why_deactivated(input, key) {
                lines.push(why);
            }
            let after = input.delete_after.map_or_else(
                || format!("in {delay_days} days"),
                |d| format!("after {}", d.format("%Y-%m-%d %H:%M UTC")),
            );
            let exposed = input.cause.as_ref().is_some_and(|c| c.exposure.is_some());
            lines.push(if exposed {
                format!("The old key {key} is now inactive and will be deleted {after}. Do not reactivate it: it was exposed. Move every application to the new key.")
            } else {
                format!("The old key {key} is now inactive and will be deleted {after}. If something broke, reactivating it stops the deletion.")
            });
            format!("[keyrotor] Access key of {user} rotated: new key {new}")
        }
        NotificationKind::Retired => {
            let used = input.old_key_last_used.map_or_else(
                || "was never used".to_owned(),
                |t| format!("was last used {}", t.format("%Y-%m-%d %H:%M UTC")),
            );
            let after = input.delete_after.map_or_else(
                || format!("in {delay_days} days"),
                |d| format!("after {}", d.format("%Y-%m-%d %H:%M UTC")),
            );
            lines.push(format!("The access key {key} of IAM user {user} {used}, so keyrotor retired it instead of rotating it: it is now inactive, no new key was made, and it will be deleted {after}."));
            lines.push(format!("Still need a key? Reactivating {key} before then keeps it (keyrotor then leaves it to you and your administrator); or ask your administrator for a new key."));
            push_roles_advice(&mut lines);
            format!("[keyrotor] Unused access key {key} of {user} retired")
        }
        NotificationKind::Deleted if input.retired => {
            lines.push(format!("The retired access key {key} of IAM user {user} stayed inactive and unused, and has been deleted. The user has no key from keyrotor; ask your administrator if you need one."));
            format!("[keyrotor] Retired access key {key} of {user} deleted")
        }
        NotificationKind::Deleted => {
            lines.push(format!("The old access key {key} of IAM user {user} was inactive and unused since its rotation, and has been deleted."));
            lines.push(format!(
                "The current key is in the Secrets Manager secret {secret_name}."
            ));
            format!("[keyrotor] Old access key {key} of {user} deleted")
        }
        NotificationKind::Kept => {
            lines.push(format!(
                "The old access key {key} of IAM user {user} was NOT deleted."
            ));
            format!("[keyrotor] Old access key {key} of {user} kept: needs attention")
        }
        NotificationKind::Blocked if input.cause.as_ref().is_some_and(|c| c.exposure.is_some()) => {
            // A report AWS denied, or could not confirm against an exempt user (M9).
            lines.push(format!("A report names the access key {key} of IAM user {user} as exposed, but keyrotor did not act on it and changed nothing (the reason below)."));
            lines.push(format!("What to do: look for AWS's own report in AWS Health (or the AWS Support case) of this account. If the key did leak, a responder forces its rotation: keyrotor rotate --key {key} --force --reason \"…\". If it did not, find who sent the report: it did not come from AWS."));
            format!("[keyrotor] Report of an exposed key of {user} not acted on: action needed")
        }
        NotificationKind::Blocked => {
            lines.push(format!("The access key {key} of IAM user {user} is due for rotation, but keyrotor could not rotate it safely and changed nothing."));
            lines.push("Leave the user with one active key (keyrotor then rotates it on its next run), or exempt the user.".to_owned());
            format!("[keyrotor] Rotation of {user}'s access key blocked: action needed")
        }
        NotificationKind::Contained => {
            lines.push(format!("The access key {key} of IAM user {user} was reported exposed, and keyrotor could not replace it safely now, so it deactivated it at once, without a new key: a leaked key is worse than an outage. Every program still using {key} fails from now on."));
            lines.push("What to do: look for the key's use since the exposure in CloudTrail; resolve what kept keyrotor from replacing it (the reason below: another active key of the user, a rotation still waiting to delete its old key, or a secret keyrotor cannot trust), then force a rotation for the user, or create a key by hand, and move the programs to it.".to_owned());
            format!("[keyrotor] Leaked access key {key} of {user} deactivated, no replacement: action needed")
        }
        NotificationKind::Undelivered => {
            lines.push(format!(
                "keyrotor could not send a message to the owner of IAM user {user}."
            ));
            push_error(&mut lines, input);
            lines.push(format!(
                "The rotation went on regardless: a message that cannot be sent never stops it. Tell the owner yourself; the current key is in {}.",
                if secret_name.is_empty() {
                    "the user's Secrets Manager secret (named after the user's unique ID)".to_owned()
                } else {
                    format!("the Secrets Manager secret {secret_name}")
                }
            ));
            format!("[keyrotor] Message to the owner of {user} not delivered")
        }
        NotificationKind::Failure => {
            // Only a scan, or a leak response whose key has no owner here, names no user.
            let what = if user.is_empty() {
                "A keyrotor execution".to_owned()
            } else {
                format!("A keyrotor execution for IAM user {user}")
            };
            match &input.step {
                Some(step) => lines.push(format!("{what} failed at its step {}.", step.as_str())),
                None => lines.push(format!("{what} failed.")),
            }
            push_error(&mut lines, input);
            let unreachable = input
                .error
                .as_ref()
                .is_some_and(|e| e.error == ErrorType::AccountUnreachable.as_str());
            lines.push(if unreachable {
                "keyrotor cannot work in this account until its member roles are there and trust it: deploy infra/member-account.yaml to the account (add it to keyrotor's StackSet, or check the instance's status and region), then redrive this execution; every step is safe to repeat.".to_owned()
            } else if user.is_empty() {
                "Fix the cause, then redrive the execution or start a new one; every step is safe to repeat.".to_owned()
            } else {
                "Fix the cause, then redrive the execution or start a new one for this user; every step is safe to repeat.".to_owned()
            });
            if unreachable {
                "[keyrotor] Account unreachable".to_owned()
            } else if user.is_empty() {
                "[keyrotor] Execution failed".to_owned()
            } else {
                format!("[keyrotor] Execution for {user} failed")
            }
        }
    };
    if let Some(cause) = &input.cause {
        push_cause(&mut lines, cause);
    }
    if let Some(reason) = &input.reason {
        lines.push(format!("Reason: {}", clip(reason, 1000)));
    }
    if let Some(execution) = &input.execution {
        lines.push(format!("Execution: {}", clip(execution, 300)));
    }
    if let Some(why) = owner_missing {
        lines.push(format!(
            "You receive this as the keyrotor admin because the owner could not be reached: {why}."
        ));
    }
    assemble(to, in_account(subject, input, &mut lines), &lines)
}

/// A message about a member account names it: its ID in the subject, ID and name in the
/// text. The name is the organization's record, but the account's own administrators may
/// set it (`account:PutAccountName`), so it is given as theirs, after the ID that counts
/// (issue 26, L6).
fn in_account(subject: String, input: &NotifyInput, lines: &mut Vec<String>) -> String {
    match &input.account {
        None => subject,
        Some(account) => {
            lines.push(match &account.name {
                Some(name) => format!(
                    "AWS account: {} (named {name} by its own administrators)",
                    account.id
                ),
                None => format!("AWS account: {}", account.id),
            });
            subject.replacen("[keyrotor]", &format!("[keyrotor {}]", account.id), 1)
        }
    }
}

/// The mail of `lines`: paragraphs in the text part and in the escaped HTML part, where a
/// line indented by four spaces is a command (`<pre>`).
fn assemble(to: Vec<EmailAddress>, subject: String, lines: &[String]) -> Email {
    let text = format!("{}\n\n-- keyrotor\n", lines.join("\n\n"));
    let html_body: String = lines
        .iter()
        .map(|l| match l.strip_prefix("    ") {
            Some(code) => format!("<pre>{}</pre>", escape(code)),
            None => format!("<p>{}</p>", escape(l)),
        })
        .collect();
    let html = format!("<html><body>{html_body}<p>-- keyrotor</p></body></html>");
    Email {
        to,
        subject,
        text,
        html,
    }
}

/// The admin's notice that `types` could not be put on the event bus: what other
/// automation missed, and why (the error names the call and AWS's code, never a secret).
pub fn render_unpublished(
    input: &NotifyInput,
    user: &str,
    types: &[DetailType],
    error: &Error,
    admin: EmailAddress,
) -> Email {
    let names: Vec<&str> = types.iter().map(|t| t.as_str()).collect();
    let about = if user.is_empty() {
        "a keyrotor scan".to_owned()
    } else {
        format!("IAM user {user}")
    };
    let mut lines = vec![
        format!(
            "keyrotor could not put its event(s) {} about {about} on the default EventBridge bus.",
            names.join(", ")
        ),
        format!("Error: {}", clip(&error.to_string(), 500)),
        "The rotation went on regardless: an event that cannot be published never stops it. Automation that waits for these events (a rule that tells the team owning the user, say) did not run: tell them yourself.".to_owned(),
    ];
    if let Some(execution) = &input.execution {
        lines.push(format!("Execution: {}", clip(execution, 300)));
    }
    let subject = in_account(
        format!("[keyrotor] Events about {about} not published"),
        input,
        &mut lines,
    );
    assemble(vec![admin], subject, &lines)
}

#[cfg(test)]
mod tests {
    use keyrotor_aws::testing::test_config;
    use keyrotor_core::payload::parse;
    use serde_json::json;

    use super::*;

    fn email(event: serde_json::Value) -> Email {
        let input: NotifyInput = parse(event).expect("valid input");
        let to = vec![EmailAddress::parse("alice@example.com").expect("valid")];
        render(
            &input,
            "iam-access-key/alice",
            &test_config().policy,
            to,
            None,
        )
    }

    #[test]
    fn rotated_message_names_keys_secret_and_command() {
        let e = email(
            json!({"kind": "rotated", "user": "alice", "keyId": "AKIAOLD0000000000001", "newKeyId": "AKIANEW0000000000002"}),
        );
        assert!(e.subject.contains("AKIANEW0000000000002"));
        for part in [&e.text, &e.html] {
            assert!(part.contains("AKIAOLD0000000000001"));
            assert!(part.contains("iam-access-key/alice"));
            assert!(part.contains("get-secret-value"));
        }
    }

    #[test]
    fn an_unreachable_account_is_told_with_what_to_deploy() {
        let e = email(json!({
            "kind": "failure", "step": "ListFirstPage", "scan": true,
            "error": {"Error": "AccountUnreachable", "Cause": "account 222222222222 is unreachable: cannot assume arn:aws:iam::222222222222:role/keyrotor/list-users (AccessDenied)"},
            "account": {"id": "222222222222"}
        }));
        assert_eq!(e.subject, "[keyrotor 222222222222] Account unreachable");
        assert!(
            e.text.contains("role/keyrotor/list-users")
                && e.text.contains("infra/member-account.yaml"),
            "{}",
            e.text
        );
    }

    #[test]
    fn a_member_accounts_messages_name_the_account() {
        let e = email(json!({
            "kind": "failure", "user": "alice", "step": "CreateKey",
            "error": {"Error": "AccountUnreachable", "Cause": "account 222222222222 is unreachable"},
            "account": {"id": "222222222222", "name": "payments-prod"}
        }));
        assert!(
            e.subject.starts_with("[keyrotor 222222222222] "),
            "{}",
            e.subject
        );
        assert!(
            e.text.contains(
                "AWS account: 222222222222 (named payments-prod by its own administrators)"
            ),
            "{}",
            e.text
        );
        let own = email(json!({"kind": "failure", "user": "alice"}));
        assert!(own.subject.starts_with("[keyrotor] ") && !own.text.contains("AWS account"));
    }

    #[test]
    fn warning_states_age_and_date() {
        let e = email(
            json!({"kind": "warning", "user": "alice", "keyId": "AKIAOLD0000000000001", "ageDays": 80, "rotateOn": "2026-12-05"}),
        );
        assert!(e.text.contains("80 days old"));
        assert!(e.subject.contains("2026-12-05"));
    }

    #[test]
    fn an_unused_key_is_warned_of_retirement_then_told_it_was_retired_and_deleted() {
        let warned = email(
            json!({"kind": "warning", "user": "alice", "keyId": "AKIAOLD0000000000001", "ageDays": 80, "rotateOn": "2026-12-05", "retired": true}),
        );
        assert!(
            warned.subject.contains("will be retired on 2026-12-05"),
            "{}",
            warned.subject
        );
        assert!(
            warned.text.contains("Use it before then"),
            "{}",
            warned.text
        );
        assert!(
            !warned.text.contains("get-secret-value"),
            "no new key to read: {}",
            warned.text
        );

        let retired = email(
            json!({"kind": "retired", "user": "alice", "keyId": "AKIAOLD0000000000001", "deleteAfter": "2026-12-10T12:00:00Z", "oldKeyLastUsed": "2026-09-01T08:30:00Z", "why": "unused"}),
        );
        assert!(
            retired
                .subject
                .contains("Unused access key AKIAOLD0000000000001 of alice retired"),
            "{}",
            retired.subject
        );
        for said in [
            "was last used 2026-09-01 08:30 UTC",
            "no new key was made",
            "deleted after 2026-12-10 12:00 UTC",
            "Reactivating AKIAOLD0000000000001",
            "IAM Roles Anywhere",
        ] {
            assert!(retired.text.contains(said), "{said}: {}", retired.text);
        }
        let never =
            email(json!({"kind": "retired", "user": "alice", "keyId": "AKIAOLD0000000000001"}));
        assert!(never.text.contains("was never used"), "{}", never.text);

        let deleted = email(
            json!({"kind": "deleted", "user": "alice", "keyId": "AKIAOLD0000000000001", "retired": true}),
        );
        assert!(
            deleted.subject.contains("Retired access key"),
            "{}",
            deleted.subject
        );
        assert!(
            !deleted.text.contains("since its rotation"),
            "{}",
            deleted.text
        );
    }

    #[test]
    fn html_escapes_untrusted_text() {
        let e = email(
            json!({"kind": "failure", "user": "alice", "error": {"Error": "X", "Cause": "<script>alert(1)</script>"}}),
        );
        assert!(!e.html.contains("<script>"));
        assert!(e.html.contains("&lt;script&gt;"));
    }

    #[test]
    fn a_rotation_after_an_exposure_says_why_and_what_to_do() {
        let exposure = json!({
            "accessKeyId": "AKIAOLD0000000000001",
            "reporter": "awsHealth",
            "reportedAt": "2026-11-30T09:15:00Z",
            "foundAt": "https://github.com/example/<repo>"
        });
        let e = email(json!({
            "kind": "rotated", "user": "alice", "keyId": "AKIAOLD0000000000001",
            "newKeyId": "AKIANEW0000000000002",
            "cause": {"reason": "AWS Health reported the key as exposed", "exposure": exposure, "confirmed": true}
        }));
        for part in [&e.text, &e.html] {
            assert!(
                part.contains("AWS Health reported the access key AKIAOLD0000000000001 as exposed")
            );
            assert!(part.contains("2026-11-30 09:15 UTC"));
            assert!(part
                .contains("AttributeValue=AKIAOLD0000000000001 --start-time 2026-11-30T09:15:00Z"));
            assert!(part.contains("AWSCompromisedKeyQuarantineV3"));
            assert!(part.contains("keyrotor never removes policies"));
            assert!(part.contains("Do not reactivate it"));
            assert!(!part.contains("reactivating it stops the deletion"));
        }
        assert!(e
            .text
            .contains("found at: https://github.com/example/<repo>"));
        assert!(e.html.contains("https://github.com/example/&lt;repo&gt;"));

        // Not confirmed with AWS (issue 26, M9): none of the report's text, time or place.
        let e = email(json!({
            "kind": "rotated", "user": "alice", "keyId": "AKIAOLD0000000000001",
            "newKeyId": "AKIANEW0000000000002",
            "cause": {"reason": "AWS Health reported the key as exposed", "exposure": exposure,
                      "unconfirmed": "the report names no AWS Health event"}
        }));
        for part in [&e.text, &e.html] {
            assert!(part.contains("keyrotor could not confirm it with AWS (the report names no AWS Health event), so it quotes none of it"), "{part}");
            assert!(!part.contains("github.com"), "{part}");
            assert!(!part.contains("2026-11-30"), "{part}");
            assert!(part.contains("AttributeValue=AKIAOLD0000000000001"));
        }

        // Blocked (a report AWS denied): says that nothing was done, and what a person does.
        let e = email(json!({
            "kind": "blocked", "user": "alice", "keyId": "AKIAOLD0000000000001",
            "reason": "the report of AKIAOLD0000000000001 is not AWS's",
            "cause": {"exposure": exposure, "unconfirmed": "AWS Health has no such event"}
        }));
        assert!(e.subject.contains("not acted on"), "{}", e.subject);
        assert!(
            e.text
                .contains("keyrotor rotate --key AKIAOLD0000000000001 --force"),
            "{}",
            e.text
        );
        assert!(
            !e.text.contains("github.com") && !e.text.contains("exempt the user"),
            "{}",
            e.text
        );

        // Forced by hand: the responder's reason, and no leak advice.
        let e = email(json!({
            "kind": "rotated", "user": "alice", "keyId": "AKIAOLD0000000000001",
            "newKeyId": "AKIANEW0000000000002", "cause": {"reason": "laptop stolen"}
        }));
        assert!(e
            .text
            .contains("a responder forced this rotation: laptop stolen."));
        assert!(!e.text.contains("CloudTrail"));
    }
}
