//! Leaked keys, in-process: AWS's report of an exposed key goes through the real
//! `respond-to-exposure` handler, and the execution it starts runs the real per-user state
//! machine (forcing allowed, as on the responder machine) against the in-memory account. The
//! users are the ones a leak can hit where a scheduled rotation would do nothing: an exempt
//! user, a user on a warning day, a user with an inactive leftover key. The same run on the
//! emulator, through the real binaries, is in `end_to_end.rs`.

use chrono::{Duration, Utc};
use keyrotor_localstack::account::{SeededKey, TestUser};
use keyrotor_localstack::stack::{Machine, ADMIN_ADDRESS, KMS_KEY_ID};
use keyrotor_tests::asl::Execution;
use keyrotor_tests::events::{
    health_event_arn, health_exposure, trusted_advisor_exposure, users_a_leak_can_hit,
};
use keyrotor_tests::fake::{FakeAccount, Faulty};
use keyrotor_tests::in_process::{config, leaks, Account, Functions};
use keyrotor_tests::invariants::{judge, UserCase};
use serde_json::Value;

/// Delivers `event` to respond-to-exposure, then runs the execution it started, if any.
async fn deliver(f: &Functions, account: &Account, event: Value) -> Option<Execution> {
    let deps = respond_to_exposure::Deps::new(config(&[]), account.clone()).expect("deps");
    let out = respond_to_exposure::handle(event, &deps)
        .await
        .expect("a report of an exposed key is accepted");
    if !out.started {
        return None;
    }
    let (_, name, input) = account
        .inner
        .started()
        .into_iter()
        .find(|(_, name, _)| *name == out.execution_name)
        .expect("the execution was started");
    assert!(name.starts_with(&format!("exposed-{}-", out.access_key_id)));
    let input: Value = serde_json::from_str(&input).expect("JSON input");
    Some(f.run(Machine::RotateUser, &name, input).await)
}

/// Seeds [`users_a_leak_can_hit`]: each user's name, seeded keys, and the exposed key.
fn seed(account: &Account) -> Vec<(String, Vec<SeededKey>, String)> {
    users_a_leak_can_hit()
        .into_iter()
        .map(|user| {
            let seeded = account.inner.seed(&user);
            let exposed = seeded[0].id.clone();
            (user.name, seeded, exposed)
        })
        .collect()
}

fn secret_name(account: &Account, user: &str) -> String {
    let id = account.inner.user_id(user).expect("seeded");
    keyrotor_core::naming::secret_name("iam-access-key/", &id)
}

#[tokio::test]
async fn an_exposure_report_rotates_the_key_once_for_any_user() {
    let account = Faulty::new(FakeAccount::new(Some(KMS_KEY_ID)));
    let f = Functions::on(&account, &config(&[]));
    let reported_at = Utc::now() - Duration::minutes(20);
    let mut runs = Vec::new();
    let mut seeded_secrets = Vec::new();
    for (name, seeded, exposed) in seed(&account) {
        let user = name.as_str();
        seeded_secrets.extend(seeded.iter().map(|k| k.secret.clone()));
        // AWS Health's own record of the report: the place and time the mails quote are
        // AWS's, never the event's (whose text anyone able to deliver one can write).
        account.inner.record_health_exposure(
            &health_event_arn(&exposed),
            &exposed,
            reported_at,
            "https://github.com/example/leak",
        );
        let event = health_exposure(&exposed, reported_at, "https://phish.example/login");
        let run = deliver(&f, &account, event.clone())
            .await
            .expect("the first report starts an execution");
        assert!(run.succeeded(), "{user}: {run:#?}");
        for state in [
            "ByKey",
            "CreateKey",
            "DeactivateOldKey",
            "NotifyRotated",
            "DeleteOldKey",
        ] {
            assert!(
                run.entered.iter().any(|s| s == state),
                "{user}: {:?}",
                run.entered
            );
        }
        assert_eq!(run.output["assessment"]["user"], user);
        assert_eq!(run.output["assessment"]["oldKeyId"], exposed.as_str());
        let case = UserCase {
            user,
            seeded: &seeded,
            secret_name: secret_name(&account, user),
            expect_rotated: true,
        };
        let snapshot = account.inner.snapshot(user, &case.secret_name, &seeded);
        judge(&case, &snapshot).unwrap_or_else(|e| panic!("{e:#}"));

        // Owner and admin were told why, and what to do.
        let owner = format!("{user}@example.com");
        for to in [owner.as_str(), ADMIN_ADDRESS] {
            let rotated = account.inner.mails().into_iter().find(|m| {
                m.to.iter().any(|a| a.to_string() == to)
                    && m.subject.contains("rotated")
                    && m.text.contains(&exposed)
            });
            let rotated = rotated.unwrap_or_else(|| panic!("{user}: no rotation mail to {to}"));
            assert!(
                rotated.text.contains(&format!(
                    "AWS Health reported the access key {exposed} as exposed"
                )),
                "{}",
                rotated.text
            );
            assert!(rotated.text.contains("https://github.com/example/leak"));
            assert!(rotated.text.contains("(confirmed with AWS)"));
            assert!(!rotated.text.contains("phish.example"), "{}", rotated.text);
            assert!(rotated.text.contains("keyrotor never removes policies"));
        }

        // The same report again starts nothing. A later report of the key (Trusted Advisor
        // this time) finds it deleted by keyrotor, as its own records say: nothing to do,
        // no failure, no mail, no alarm (issue 26: it used to fail NotFound and tell the
        // admin). (A report while the key still waits, inactive, for deletion succeeds and
        // changes nothing: end_to_end.rs, and the planner's tests.)
        let calls = account.inner.calls().len();
        let mails = account.inner.mails().len();
        assert!(deliver(&f, &account, event).await.is_none());
        let later = trusted_advisor_exposure(&exposed, user, Utc::now());
        let again = deliver(&f, &account, later).await.expect("a new report");
        assert!(again.succeeded(), "{again:#?}");
        assert_eq!(again.output["assessment"]["action"], "none", "{again:#?}");
        assert_eq!(again.output["assessment"]["user"], user, "{again:#?}");
        assert_eq!(account.inner.mails().len(), mails, "{user}: no mail");
        let writes: Vec<_> = account.inner.calls()[calls..]
            .iter()
            .filter(|c| !is_read(c))
            .copied()
            .collect();
        // The duplicate's StartExecution finds the execution of that name and starts none.
        assert_eq!(
            writes,
            ["states:StartExecution", "states:StartExecution"],
            "{user}"
        );
        assert!(judge(
            &case,
            &account.inner.snapshot(user, &case.secret_name, &seeded)
        )
        .is_ok());
        runs.push(run);
        runs.push(again);
    }
    assert_eq!(
        leaks(&account, &runs, seeded_secrets),
        0,
        "a secret value leaked"
    );
}

fn is_read(action: &str) -> bool {
    let name = action.split(':').nth(1).unwrap_or_default();
    ["Get", "List", "Describe"]
        .iter()
        .any(|p| name.starts_with(p))
}

#[tokio::test]
async fn a_key_that_is_not_a_user_key_here_fails_the_execution_and_changes_nothing() {
    let account = Faulty::new(FakeAccount::new(Some(KMS_KEY_ID)));
    let f = Functions::on(&account, &config(&[]));
    account.inner.seed(&TestUser::new("alice").key(10, true));
    let event = health_exposure("AKIAIOSFODNN7EXAMPLE", Utc::now(), "https://gist.example/x");
    let run = deliver(&f, &account, event).await.expect("started");
    assert!(!run.succeeded());
    assert!(
        format!("{:?}", run.status).contains("NotFound"),
        "{:?}",
        run.status
    );
    let writes: Vec<_> = account
        .inner
        .calls()
        .into_iter()
        .filter(|c| !is_read(c))
        .collect();
    assert_eq!(
        writes,
        ["states:StartExecution", "events:PutEvents", "ses:SendEmail"],
        "only the admin's failure mail and its event"
    );
    let mail = &account.inner.mails()[0];
    assert_eq!(
        mail.to.iter().map(ToString::to_string).collect::<Vec<_>>(),
        [ADMIN_ADDRESS]
    );
    assert!(
        mail.text
            .contains("not (or no longer) an access key of an IAM user in this account"),
        "{}",
        mail.text
    );
}

/// H2 of the second review, for the leak response: its execution name follows from the
/// report, so anyone may take it first with an input of their own (a dry run, another
/// key). respond-to-exposure no longer takes that for its own start: it fails, so that
/// the rule's delivery is retried and the function's errors alarm fires, and the key is
/// not silently left unanswered.
#[tokio::test]
async fn a_leak_responses_name_taken_with_another_input_fails_loudly() {
    use keyrotor_core::ports::ExecutionsPort;
    let account = Faulty::new(FakeAccount::new(Some(KMS_KEY_ID)));
    let seeded = account.inner.seed(&TestUser::new("alice").key(10, true));
    let event = health_exposure(&seeded[0].id, Utc::now(), "https://gist.example/x");
    let name = keyrotor_core::exposure::parse_event(&event)
        .expect("a report")
        .execution_name();
    let deps = respond_to_exposure::Deps::new(config(&[]), account.clone()).expect("deps");
    account
        .inner
        .start(
            &deps.state_machine_arn,
            &name,
            serde_json::json!({"user": "alice", "dryRun": true}).to_string(),
        )
        .await
        .expect("someone's early start");
    let err = respond_to_exposure::handle(event, &deps)
        .await
        .expect_err("not keyrotor's execution");
    assert_eq!(
        err.error_type(),
        keyrotor_core::ErrorType::Conflict,
        "{err}"
    );
    assert!(err.to_string().contains("another input"), "{err}");
    assert_eq!(account.inner.started().len(), 1, "nothing else started");
    assert!(account.inner.keys("alice")[0].1, "unchanged");
}

/// M2 of the second review: where no replacement can follow now, a reported leak used to
/// leave the exposed key Active (reported only). It is now deactivated at once, with no
/// new key, and owner and admin are told why and what to do. Two such cases: the user's
/// other key is active (a third does not fit, and keyrotor never deactivates a key it did
/// not replace), and the user's secret is someone else's (nothing is written there).
#[tokio::test]
async fn a_leaked_key_no_replacement_can_follow_is_deactivated_all_the_same() {
    use keyrotor_core::ports::SecretsPort;
    let account = Faulty::new(FakeAccount::new(Some(KMS_KEY_ID)));
    let f = Functions::on(&account, &config(&[]));
    let two = account.inner.seed(
        &TestUser::new("two-keys")
            .tag("Email", "two-keys@example.com")
            .key(30, true)
            .key(5, true),
    );
    let squatted = account.inner.seed(
        &TestUser::new("squatted")
            .tag("Email", "squatted@example.com")
            .key(30, true),
    );
    let secret = secret_name(&account, "squatted");
    let id = account.inner.user_id("squatted").expect("seeded");
    let arn = account
        .inner
        .create(&secret, "squatted", &id)
        .await
        .expect("the squatter's secret");
    account
        .inner
        .put_key(&arn, "AKIAIOSFODNN7EXAMPLE", "theirs")
        .await
        .expect("a value of theirs, under no policy of keyrotor's");

    for (user, leaked, other) in [
        ("two-keys", &two[0].id, Some(&two[1].id)),
        ("squatted", &squatted[0].id, None),
    ] {
        let event = health_exposure(leaked, Utc::now(), "https://gist.example/x");
        let run = deliver(&f, &account, event).await.expect("started");
        assert!(run.succeeded(), "{user}: {run:#?}");
        assert_eq!(
            run.output["assessment"]["action"], "contain",
            "{user}: {run:#?}"
        );
        assert!(
            run.entered.iter().any(|s| s == "ContainExposedKey"),
            "{user}: {:?}",
            run.entered
        );
        let keys = account.inner.keys(user);
        assert!(
            keys.iter().any(|(id, active)| id == leaked && !active),
            "{user}: the leaked key is inactive: {keys:?}"
        );
        if let Some(other) = other {
            assert!(
                keys.iter().any(|(id, active)| id == other && *active),
                "{user}: the other key is untouched: {keys:?}"
            );
        }
        for to in [format!("{user}@example.com"), ADMIN_ADDRESS.to_owned()] {
            let mail = account.inner.mails().into_iter().find(|m| {
                m.to.iter().any(|a| a.to_string() == to) && m.subject.contains(leaked.as_str())
            });
            let mail = mail.unwrap_or_else(|| panic!("{user}: no mail to {to}"));
            assert!(mail.subject.contains("no replacement"), "{}", mail.subject);
            assert!(
                mail.text.contains("cannot be replaced now"),
                "{}",
                mail.text
            );
        }
    }
    assert!(account.inner.issued_secrets().is_empty(), "no key was made");
    let tags = account.inner.secret_tags(&secret);
    assert!(
        !tags.contains_key(keyrotor_core::naming::TAG_DEACTIVATED_KEY),
        "nothing written into the squatter's secret: {tags:?}"
    );
}

/// M9 of the second review: whoever may invoke respond-to-exposure, target its rules or
/// start the responder machine can write a report of any key. AWS Health decides:
/// - a report AWS Health does not know (the account can ask) changes nothing, for anyone;
/// - a report that cannot be confirmed (no support plan with the Health API, the usual
///   case) leaves an exempt or break-glass user's key to a person, and contains or rotates
///   anyone else's, as a scheduled rotation could;
/// - no mail quotes an unconfirmed report's text (its place, its time).
#[tokio::test]
async fn a_report_aws_does_not_confirm_never_takes_an_exempt_users_key() {
    let account = Faulty::new(FakeAccount::new(Some(KMS_KEY_ID)));
    let f = Functions::on(&account, &config(&[]));
    let seeded = seed(&account);
    let forged_url = "https://phish.example/login-to-keep-your-key";
    for (user, _, exposed) in &seeded {
        let denied = health_exposure(exposed, Utc::now() - Duration::minutes(10), forged_url);
        account.inner.deny_health_event(&health_event_arn(exposed));
        let run = deliver(&f, &account, denied).await.expect("started");
        assert!(run.succeeded(), "{user}: {run:#?}");
        assert_eq!(
            run.output["assessment"]["action"], "blocked",
            "{user}: {run:#?}"
        );
        let reason = run.output["assessment"]["reason"]
            .as_str()
            .unwrap_or_default();
        assert!(reason.contains("not AWS's"), "{user}: {reason}");
        let keys = account.inner.keys(user);
        assert!(
            keys.iter().any(|(id, active)| id == exposed && *active),
            "{user}: {keys:?}"
        );
    }
    assert!(account.inner.issued_secrets().is_empty(), "no key was made");

    // AWS Health knows the event, but for another key: changes nothing either.
    // (Each report at its own time: the execution is named after the key and the time.)
    let later = Utc::now() - Duration::minutes(5);
    for (user, _, exposed) in &seeded {
        let arn = health_event_arn(exposed);
        account
            .inner
            .record_health_exposure(&arn, "AKIAI44QH8DHBEXAMPLE", later, "x");
        let run = deliver(&f, &account, health_exposure(exposed, later, forged_url))
            .await
            .expect("started");
        assert_eq!(
            run.output["assessment"]["action"], "blocked",
            "{user}: {run:#?}"
        );
    }

    // Cannot be confirmed (Trusted Advisor's reports cannot be asked about): the exempt
    // user's key stays for a person to decide.
    let mails = account.inner.mails().len();
    let (exempt, _, exempt_key) = &seeded[0];
    assert_eq!(exempt, "leak-exempt");
    let unconfirmed = trusted_advisor_exposure(exempt_key, exempt, Utc::now());
    let run = deliver(&f, &account, unconfirmed).await.expect("started");
    assert_eq!(run.output["assessment"]["action"], "blocked", "{run:#?}");
    let reason = run.output["assessment"]["reason"]
        .as_str()
        .unwrap_or_default();
    assert!(reason.contains("a person decides"), "{reason}");
    assert!(account.inner.keys(exempt).iter().all(|(_, active)| *active));

    // A user a scheduled rotation may touch: the unconfirmed report is acted on, and the
    // mails say it was not confirmed and quote none of it.
    let (warned, _, warned_key) = &seeded[1];
    let unconfirmed = trusted_advisor_exposure(warned_key, warned, Utc::now());
    let run = deliver(&f, &account, unconfirmed).await.expect("started");
    assert!(run.succeeded(), "{run:#?}");
    assert_eq!(run.output["assessment"]["oldKeyId"], warned_key.as_str());
    let keys = account.inner.keys(warned);
    assert!(
        !keys.iter().any(|(id, active)| id == warned_key && *active),
        "the reported key is out of use: {keys:?}"
    );
    let sent = account.inner.mails();
    assert!(sent.len() > mails);
    for mail in &sent {
        assert!(
            !mail.text.contains("phish.example") && !mail.html.contains("phish.example"),
            "{}",
            mail.text
        );
        assert!(
            !mail.text.contains("www.github.com/example/repo"),
            "{}",
            mail.text
        );
    }
    let rotated = sent
        .iter()
        .find(|m| m.subject.contains("rotated"))
        .expect("a rotated mail");
    assert!(
        rotated.text.contains("could not confirm it with AWS"),
        "{}",
        rotated.text
    );
}
