//! Delivery of the new key on the local stack (issue 29): the real per-user machine with its
//! DeliverKey step, the real deliver-key and create-key binaries, KMS and SSM on moto, and
//! a fake GitHub that opens what it gets with libsodium (`tools/fake_github.py`, PyNaCl),
//! beside a webhook receiver that checks the signature. A program reads its key from the
//! SSM destination and signs STS requests with it, so the cutover sees it move.
//! deliver-key's refusals (bad token, rate limits) are its in-process tests'.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use keyrotor_localstack::account::SeededKey;
use keyrotor_localstack::github::{self, FakeGitHub};
use keyrotor_localstack::stack::{on_shared_stack, LocalStack, StackOptions};
use keyrotor_tests::on_stack::{active_on, rotate_beside, seed_due_on};
use serde_json::{json, Value};

/// Up to 20 s of overlap, ended 2 s after the old key's last use once the new key is used.
const OVERLAP_SECONDS: i64 = 20;

fn fake() -> &'static FakeGitHub {
    static FAKE: OnceLock<FakeGitHub> = OnceLock::new();
    FAKE.get_or_init(|| FakeGitHub::start().expect("the fake GitHub starts"))
}

/// `ci-app` reads its key from SSM, and its CI from GitHub environment secrets; its team's
/// automation gets a notice. `ci-broken`'s places do not take the key.
fn destinations() -> Value {
    json!({
        "ci-app": [
            {"type": "ssm", "parameter": "/keyrotor/ci-app/aws"},
            {"type": "github", "repository": "acme/deploy", "environment": "production"},
            {"type": "webhook", "url": fake().hook_url("")}
        ],
        "ci-broken": [
            {"type": "github", "repository": "acme/missing-repo"},
            {"type": "webhook", "url": fake().hook_url("/down")}
        ]
    })
}

fn delivery_stack() -> StackOptions {
    let mut options = StackOptions::default();
    options.function_env.extend(
        [
            ("KEYROTOR_OVERLAP_SECONDS", OVERLAP_SECONDS.to_string()),
            ("KEYROTOR_CUTOVER_SETTLE_SECONDS", "2".to_owned()),
        ]
        .map(|(k, v)| (k.to_owned(), v)),
    );
    options
        .function_env
        .extend(fake().settings(&destinations()));
    options
}

async fn prepare(stack: &LocalStack, user: &str) -> SeededKey {
    fake().reset().expect("reset the fake");
    stack
        .account
        .prepare_delivery(&[
            (github::TOKEN_SECRET, github::TOKEN),
            (github::WEBHOOK_SECRET, github::WEBHOOK_KEY),
        ])
        .await
        .expect("delivery key and settings");
    seed_due_on(stack, user).await
}

/// The name of `user`'s secret and its current value.
async fn stored(stack: &LocalStack, user: &str) -> (String, Value) {
    let name = stack.account.secret_of(user).await.expect("secret");
    let value = stack.account.secret_value(&name).await.expect("value");
    (name, value)
}

fn outcomes(out: &Value) -> Vec<(String, String, String)> {
    out["created"]["delivery"]["destinations"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|l| {
            (
                l["destination"].as_str().unwrap_or_default().to_owned(),
                l["outcome"].as_str().unwrap_or_default().to_owned(),
                l["why"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// Nothing but the destinations holds the secret, and those only as they demand: not the
/// execution's history, the functions' log, a mail, or what went over the wire to GitHub
/// and the webhook (sealed boxes only).
async fn no_leak(stack: &LocalStack, execution: &str, secrets: &[&str]) {
    let history =
        serde_json::to_string(&stack.history(execution).await.expect("history")).expect("json");
    let log = std::fs::read_to_string(&stack.functions_log).expect("functions log");
    let wire = fake().request_log();
    let mails = stack.moto.sent_emails().expect("mails");
    let notices = fake().state().expect("state")["notices"].to_string();
    for secret in secrets {
        assert!(!history.contains(secret), "a secret in the history");
        assert!(!log.contains(secret), "a secret in the functions' log");
        assert!(
            !wire.contains(secret),
            "a secret in the clear to GitHub or a webhook"
        );
        assert!(!notices.contains(secret), "a secret in a webhook notice");
        assert!(
            mails.iter().all(|m| !m.body.contains(secret)),
            "a secret in a mail"
        );
    }
    assert!(!log.contains(github::TOKEN), "the GitHub token in the log");
    assert!(
        !history.contains(github::TOKEN),
        "the GitHub token in the history"
    );
}

#[test]
fn on_the_emulator_the_ci_secrets_get_the_new_key_and_the_old_one_goes_once_it_is_used() {
    on_shared_stack(delivery_stack, |stack| async move {
        let user = "ci-app";
        let old = prepare(stack, user).await;
        let parameter = "/keyrotor/ci-app/aws";
        let arn = stack
            .account
            .caller_arn(&old.id, &old.secret)
            .await
            .expect("the old key works");
        // The program: signs with whatever key its SSM parameter holds (the old key until
        // keyrotor delivers the new one), every 300 ms, until the old key is deactivated.
        let program = async {
            let deadline = Instant::now() + Duration::from_secs(150);
            let mut first_new_use = None;
            loop {
                let held = stack.account.parameter_value(parameter).await.expect("ssm");
                let (id, secret) = match &held {
                    Some(v) if v["AccessKeyId"] != old.id.as_str() => {
                        let id = v["AccessKeyId"].as_str().expect("id").to_owned();
                        let secret = v["SecretAccessKey"].as_str().expect("secret").to_owned();
                        first_new_use.get_or_insert_with(chrono::Utc::now);
                        (id, secret)
                    }
                    _ => (old.id.clone(), old.secret.clone()),
                };
                let caller = stack.account.caller_arn(&id, &secret).await;
                assert_eq!(caller.ok().as_ref(), Some(&arn), "the program's key broke");
                if first_new_use.is_some() && !active_on(stack, user, &old.id).await {
                    return (id, secret, first_new_use);
                }
                assert!(
                    Instant::now() < deadline,
                    "the old key was never deactivated"
                );
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        };
        let started = chrono::Utc::now();
        let (execution, out, (new_id, new_secret, first_new_use)) =
            rotate_beside(stack, user, program).await;

        // Delivered everywhere, the webhook with a notice only.
        let lines = outcomes(&out);
        assert_eq!(lines.len(), 3, "{out:#}");
        assert!(lines.iter().all(|(_, o, _)| o == "delivered"), "{lines:?}");
        assert_eq!(out["created"]["delivery"]["delivered"], 3);
        assert!(
            out["created"].get("handoff").is_none(),
            "the handoff goes no further"
        );

        // Early cutover, once the program used the new key from SSM.
        assert_eq!(out["deactivated"]["why"], "idle", "{out:#}");
        let at: chrono::DateTime<chrono::Utc> =
            serde_json::from_value(out["deactivated"]["deactivatedAt"].clone()).expect("time");
        assert!(
            at < started + chrono::Duration::seconds(OVERLAP_SECONDS),
            "before the cap"
        );
        assert!(first_new_use.is_some_and(|t| t < at));
        assert_eq!(out["deleted"]["outcome"], "deleted", "{out:#}");

        // What every destination holds is the key in the user's secret.
        let (secret_name, stored) = stored(stack, user).await;
        assert_eq!(stored["AccessKeyId"], new_id.as_str());
        assert_eq!(stored["SecretAccessKey"], new_secret.as_str());
        let ssm = stack.account.parameter_value(parameter).await.expect("ssm");
        assert_eq!(
            ssm.as_ref().map(|v| &v["SecretAccessKey"]),
            Some(&json!(new_secret))
        );
        let state = fake().state().expect("fake state");
        let held = &state["secrets"];
        let place = "acme/deploy/environments/production";
        assert_eq!(
            held[format!("{place}/AWS_ACCESS_KEY_ID")]["value"],
            new_id.as_str()
        );
        assert_eq!(
            held[format!("{place}/AWS_SECRET_ACCESS_KEY")]["value"],
            new_secret.as_str()
        );
        let notices = state["notices"].as_array().cloned().unwrap_or_default();
        assert_eq!(notices.len(), 1, "{state:#}");
        let notice = &notices[0]["notice"];
        assert_eq!(notice["user"], user);
        assert_eq!(notice["accessKeyId"], new_id.as_str());
        assert!(notice["secretArn"]
            .as_str()
            .is_some_and(|a| a.contains(&secret_name)));
        assert_eq!(state["refused"], json!([]), "every notice was signed right");

        // The owner's mail says where the key went.
        let mails = stack.moto.sent_emails().expect("mails");
        let new_key_mail = mails
            .iter()
            .find(|m| {
                m.subject.contains("New access key")
                    && m.to.contains(&format!("{user}@example.com"))
            })
            .expect("the new key's mail");
        assert!(
            new_key_mail
                .body
                .contains("github:acme/deploy (environment production): delivered"),
            "{}",
            new_key_mail.body
        );
        no_leak(stack, &execution, &[&new_secret, &old.secret]).await;
    });
}

#[test]
fn on_the_emulator_a_destination_that_fails_leaves_the_key_in_the_secret_and_tells_the_admin() {
    on_shared_stack(delivery_stack, |stack| async move {
        let user = "ci-broken";
        let old = prepare(stack, user).await;
        let started = chrono::Utc::now();
        // A failed destination never fails the rotation (rotate_beside asserts it succeeded).
        let (execution, out, ()) = rotate_beside(stack, user, async {}).await;
        let lines = outcomes(&out);
        assert_eq!(lines.len(), 2, "{out:#}");
        assert!(lines.iter().all(|(_, o, _)| o == "failed"), "{lines:?}");
        assert!(lines[0].2.contains("404"), "{lines:?}");
        assert!(lines[1].2.contains("503"), "{lines:?}");
        // Nobody used the new key: the window ran to its cap.
        assert_eq!(out["deactivated"]["why"], "cap", "{out:#}");
        let at: chrono::DateTime<chrono::Utc> =
            serde_json::from_value(out["deactivated"]["deactivatedAt"].clone()).expect("time");
        assert!(
            at >= started + chrono::Duration::seconds(OVERLAP_SECONDS - 2),
            "{at}"
        );
        // Nothing lost: the new key is in the secret and works.
        let (_, stored) = stored(stack, user).await;
        let new_id = stored["AccessKeyId"].as_str().expect("id").to_owned();
        let new_secret = stored["SecretAccessKey"]
            .as_str()
            .expect("secret")
            .to_owned();
        assert!(active_on(stack, user, &new_id).await);
        stack
            .account
            .caller_arn(&new_id, &new_secret)
            .await
            .expect("the new key works");
        // The admin got the owner's mail too, with what failed and what to do.
        let mails = stack.moto.sent_emails().expect("mails");
        let to_admin = mails
            .iter()
            .find(|m| {
                m.subject.contains("New access key")
                    && m.to
                        .iter()
                        .any(|t| t == keyrotor_localstack::stack::ADMIN_ADDRESS)
            })
            .expect("the admin's copy");
        assert!(to_admin.body.contains("NOT delivered"), "{}", to_admin.body);
        assert!(to_admin.body.contains("by hand"), "{}", to_admin.body);
        let state = fake().state().expect("fake state");
        assert_eq!(state["secrets"], json!({}), "nothing was written");
        no_leak(stack, &execution, &[&new_secret, &old.secret]).await;
    });
}

// ---------------------------------------------------------------- in-process

mod in_process {
    //! The same per-user machine in-process (`keyrotor_tests::asl`), with deliver-key on the
    //! in-memory account's KMS and SSM, and faults in the calls it makes.

    use keyrotor_core::config::vars;
    use keyrotor_localstack::account::TestUser;
    use keyrotor_localstack::stack::{Machine, ADMIN_ADDRESS, KMS_KEY_ID};
    use keyrotor_tests::asl::Execution;
    use keyrotor_tests::fake::{FakeAccount, Fault, FaultMode, Faulty};
    use keyrotor_tests::in_process::{config, leaks, Account, Functions};
    use serde_json::json;

    const USER: &str = "ci";
    const PARAMETER: &str = "/keyrotor/ci/aws";

    /// The functions on a fresh in-memory account, `USER`'s key delivered to SSM.
    fn delivering() -> (Account, Functions) {
        let account: Account = Faulty::new(FakeAccount::new(Some(KMS_KEY_ID)));
        let destinations = json!({USER: [{"type": "ssm", "parameter": PARAMETER}]}).to_string();
        let f = Functions::on(
            &account,
            &config(&[
                (vars::DESTINATIONS, &destinations),
                (vars::DELIVERY_KMS_KEY_ID, "alias/keyrotor-delivery"),
            ]),
        );
        (account, f)
    }

    /// `USER` rotated with every call of `action` from the first failing as `mode`, `times`
    /// times (`None`: every time).
    async fn rotate_with(
        action: &'static str,
        mode: FaultMode,
        times: Option<usize>,
    ) -> (Account, Execution) {
        let (account, f) = delivering();
        account.inner.seed(
            &TestUser::new(USER)
                .tag("Email", "ci@example.com")
                .key(95, true),
        );
        account.inject(Fault {
            action,
            mode,
            nth: 1,
            times,
        });
        let run = f
            .run(Machine::RotateUser, USER, json!({"user": USER}))
            .await;
        (account, run)
    }

    fn mail_to(account: &Account, to: &str) -> Vec<keyrotor_core::ports::Email> {
        account
            .inner
            .mails()
            .into_iter()
            .filter(|m| m.to.iter().any(|a| a.as_str() == to))
            .collect()
    }

    #[tokio::test]
    async fn a_parameter_that_keeps_failing_is_reported_and_the_rotation_goes_on() {
        let (account, run) = rotate_with("ssm:PutParameter", FaultMode::FailBefore, None).await;
        assert!(run.succeeded(), "{run:#?}");
        let delivery = &run.output["created"]["delivery"];
        assert_eq!(delivery["failed"], 1, "{delivery:#}");
        assert_eq!(delivery["destinations"][0]["outcome"], "failed");
        assert_eq!(
            run.output["deleted"]["outcome"], "deleted",
            "nothing lost, all done"
        );
        assert!(account.inner.parameters().is_empty());
        let admin = mail_to(&account, ADMIN_ADDRESS);
        assert!(
            admin
                .iter()
                .any(|m| m.text.contains("ssm:/keyrotor/ci/aws: NOT delivered")),
            "{admin:#?}"
        );
        assert!(!mail_to(&account, "ci@example.com").is_empty());
        assert_eq!(leaks(&account, &[run], []), 0);
    }

    #[tokio::test]
    async fn a_lost_answer_is_written_again_and_the_parameter_holds_the_new_key() {
        let (account, run) =
            rotate_with("ssm:PutParameter", FaultMode::LoseResponse, Some(1)).await;
        assert!(run.succeeded(), "{run:#?}");
        assert_eq!(run.output["created"]["delivery"]["delivered"], 1);
        let held = account.inner.parameters();
        let (value, description) = &held[PARAMETER];
        let value: serde_json::Value = serde_json::from_str(value).expect("json");
        let new = run.output["created"]["newKeyId"].as_str().expect("new key");
        assert_eq!(value["AccessKeyId"], new);
        assert!(description.contains(new), "{description}");
        assert!(run.output["created"].get("handoff").is_none());
        // A delivery that worked copies no admin.
        assert!(mail_to(&account, ADMIN_ADDRESS).is_empty());
        assert_eq!(leaks(&account, &[run], []), 0);
    }

    /// Whoever may start an execution (an operator, or anyone the account lets) cannot have
    /// the key sent somewhere of their choosing: an input naming a destination is refused
    /// before anything is read, and nothing is sealed or written.
    #[tokio::test]
    async fn an_execution_input_cannot_name_a_destination() {
        let (account, f) = delivering();
        account.inner.seed(
            &TestUser::new(USER)
                .tag("Email", "ci@example.com")
                .key(95, true),
        );
        for input in [
            json!({"user": USER, "destinations": [{"type": "ssm", "parameter": "/keyrotor/mine"}]}),
            json!({"user": USER, "delivery": {"webhook": "https://evil.example.com"}}),
        ] {
            let run = f.run(Machine::RotateUser, "injected", input.clone()).await;
            assert!(!run.succeeded(), "{input}: {run:#?}");
            assert!(
                run.entered.iter().any(|s| s == "AssessFailed"),
                "{:?}",
                run.entered
            );
        }
        let seen = account.seen();
        for action in [
            "kms:Encrypt",
            "kms:Decrypt",
            "ssm:PutParameter",
            "iam:CreateAccessKey",
        ] {
            assert!(!seen.contains(action), "{action} was called: {seen:?}");
        }
        assert!(account.inner.parameters().is_empty());
    }

    #[tokio::test]
    async fn when_deliver_key_itself_fails_the_rotation_goes_on_and_says_so() {
        let (account, run) = rotate_with("kms:Decrypt", FaultMode::FailBefore, None).await;
        assert!(run.succeeded(), "{run:#?}");
        assert!(
            run.entered.iter().any(|s| s == "DeliveryNotDone"),
            "{:?}",
            run.entered
        );
        assert!(run.output["created"]["delivery"]["error"]["Error"].is_string());
        assert_eq!(run.output["deleted"]["outcome"], "deleted");
        let admin = mail_to(&account, ADMIN_ADDRESS);
        assert!(
            admin
                .iter()
                .any(|m| m.text.contains("could not deliver the new key")),
            "{admin:#?}"
        );
        assert_eq!(leaks(&account, &[run], []), 0);
    }
}
