//! The people around keyrotor, end to end: executions of the real state machine calling the
//! real function binaries, with other principals acting on the account before and during
//! them. A squatter who creates a user's secret first, a responder forcing the rotation of
//! an exempt user's leaked key, an owner who rolls a rotation back, someone who breaks one
//! user's secret to halt the scan, an owner whose address SES refuses, and an operator who
//! tries to force a rotation where forcing is not allowed. See docs/SECURITY.md.

use std::future::Future;
use std::time::{Duration, Instant};

use aws_sdk_secretsmanager::types::Tag;
use aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput;
use aws_sdk_sfn::types::ExecutionStatus;
use keyrotor_core::naming;
use keyrotor_core::ownership::{previous_resource_policy, resource_policy, Expected};
use keyrotor_localstack::account::{aged_key, user_with_aged_key, Account};
use keyrotor_localstack::stack::{
    execution_output, on_shared_stack, LocalStack, Machine, StackOptions, ACCOUNT_ID,
    ADMIN_ADDRESS, KMS_KEY_ID, TRUSTED_ROLE_ARNS,
};
use keyrotor_tests::events::of_type;
use serde_json::{json, Value};

const TIMEOUT: Duration = Duration::from_secs(300);

/// Long enough to act on a deactivated key before its deletion, short enough for a test.
fn options() -> StackOptions {
    StackOptions {
        deletion_delay_secs: 8,
        ..StackOptions::default()
    }
}

fn on_stack<F, Fut>(test: F)
where
    F: FnOnce(&'static LocalStack) -> Fut,
    Fut: Future<Output = ()>,
{
    on_shared_stack(options, test);
}

async fn run(stack: &LocalStack, name: &str, input: Value) -> DescribeExecutionOutput {
    stack
        .run(name, &input, TIMEOUT)
        .await
        .expect("execution ends")
}

/// Runs the scan the schedule would start.
async fn run_scan(stack: &LocalStack, name: &str) -> DescribeExecutionOutput {
    stack
        .run_scan(name, &json!({}), TIMEOUT)
        .await
        .expect("scan ends")
}

fn output(done: &DescribeExecutionOutput) -> Value {
    execution_output(done).expect("JSON output")
}

fn assert_succeeded(done: &DescribeExecutionOutput) {
    assert_eq!(
        done.status(),
        &ExecutionStatus::Succeeded,
        "{}: {:?} {:?}",
        done.name().unwrap_or_default(),
        done.error(),
        done.cause()
    );
}

fn active(keys: &[(String, String)]) -> Vec<&str> {
    keys.iter()
        .filter(|(_, status)| status == "Active")
        .map(|(id, _)| id.as_str())
        .collect()
}

/// Creates `name` as a principal with ordinary Secrets Manager rights would.
async fn squat(a: &Account, name: &str, kms: Option<&str>, tags: &[(&str, &str)]) -> String {
    let out = a
        .secrets
        .create_secret()
        .name(name)
        .set_kms_key_id(kms.map(str::to_owned))
        .set_tags(Some(
            tags.iter()
                .map(|(k, v)| Tag::builder().key(*k).value(*v).build())
                .collect(),
        ))
        .send()
        .await
        .expect("create the squatted secret");
    out.arn().expect("arn").to_owned()
}

async fn resource_policy_of(a: &Account, name: &str) -> Option<Value> {
    let out = a
        .secrets
        .get_resource_policy()
        .secret_id(name)
        .send()
        .await
        .expect("policy");
    out.resource_policy()
        .map(|p| serde_json::from_str(p).expect("JSON policy"))
}

#[test]
fn a_secret_created_by_someone_else_is_never_written_and_the_user_is_reported() {
    on_stack(|stack| async move {
        let a = &stack.account;
        let m = &stack.moto;
        let mut seeded = Vec::new();
        for user in ["victim-untagged", "victim-valued", "owner-empty"] {
            let email = format!("{user}@example.com");
            let key = user_with_aged_key(m, a, user, &[("Email", &email)], 95)
                .await
                .expect("seed");
            seeded.push((user, key, a.secret_of(user).await.expect("secret name")));
        }
        let theirs = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
            "Principal": {"AWS": format!("arn:aws:iam::{ACCOUNT_ID}:user/mallory")},
            "Action": "secretsmanager:GetSecretValue", "Resource": "*"}]});
        // 1. Untagged, under the AWS managed key, readable by its creator.
        let arn = squat(a, &seeded[0].2, None, &[]).await;
        a.secrets
            .put_resource_policy()
            .secret_id(&arn)
            .resource_policy(theirs.to_string())
            .send()
            .await
            .expect("squatter's policy");
        // 2. Tagged for the victim, with keyrotor's key, holding a value of the squatter's.
        let victim_id = a.user_id("victim-valued").await.expect("id");
        let arn = squat(
            a,
            &seeded[1].2,
            Some(KMS_KEY_ID),
            &[(naming::TAG_USER_ID, victim_id.as_str())],
        )
        .await;
        a.secrets
            .put_secret_value()
            .secret_id(&arn)
            .secret_string("{}")
            .send()
            .await
            .expect("squatter's value");
        // 3. keyrotor's key and tag, nothing in it: what keyrotor leaves when it stops right
        //    after CreateSecret. It holds nothing, so keyrotor takes it over.
        let owner_id = a.user_id("owner-empty").await.expect("id");
        squat(
            a,
            &seeded[2].2,
            Some(KMS_KEY_ID),
            &[(naming::TAG_USER_ID, owner_id.as_str())],
        )
        .await;

        for (user, key, secret) in &seeded[..2] {
            let done = run(stack, &format!("squatted-{user}"), json!({"user": user})).await;
            assert_succeeded(&done);
            let out = output(&done);
            assert_eq!(out["assessment"]["action"], "blocked", "{user}: {out}");
            assert!(
                out["assessment"]["reason"]
                    .as_str()
                    .is_some_and(|r| r.contains(secret.as_str())),
                "{user}: {out}"
            );
            assert_eq!(
                a.keys(user).await.expect("keys"),
                [(key.id.clone(), "Active".to_owned())],
                "{user}: no key created, the old one untouched"
            );
            let versions = a.secret_versions(secret).await.expect("versions");
            assert!(
                versions.iter().all(|(v, _)| !v.starts_with("keyrotor-")),
                "{user}: keyrotor wrote nothing: {versions:?}"
            );
        }
        let mails = m.sent_emails().expect("mails");
        for (user, _, _) in &seeded[..2] {
            assert!(
                mails.iter().any(|e| e.to == [ADMIN_ADDRESS]
                    && e.subject.contains("blocked")
                    && e.subject.contains(user)),
                "the admin hears of {user}: {mails:?}"
            );
        }

        let (user, key, secret) = &seeded[2];
        let done = run(stack, "adopted", json!({"user": user})).await;
        assert_succeeded(&done);
        let keys = a.keys(user).await.expect("keys");
        assert_eq!(keys.len(), 1, "{keys:?}");
        assert_ne!(keys[0].0, key.id);
        let stored = a.secret_value(secret).await.expect("value");
        assert_eq!(stored["AccessKeyId"], keys[0].0.as_str());
        let expected = keyrotors_policy(a, secret, user, &owner_id, resource_policy).await;
        assert_eq!(resource_policy_of(a, secret).await, Some(expected));
    });
}

/// The policy `write` makes for `user`'s secret `secret` on this stack: keyrotor's current
/// one, or its previous one.
async fn keyrotors_policy(
    a: &Account,
    secret: &str,
    user: &str,
    owner_id: &str,
    write: fn(&str, &Expected<'_>) -> Value,
) -> Value {
    let roles: Vec<String> = TRUSTED_ROLE_ARNS.split(',').map(str::to_owned).collect();
    let arn = a
        .secrets
        .describe_secret()
        .secret_id(secret)
        .send()
        .await
        .expect("describe")
        .arn()
        .expect("arn")
        .to_owned();
    let user_arn = format!("arn:aws:iam::{ACCOUNT_ID}:user/{user}");
    write(
        &arn,
        &Expected {
            user_id: owner_id,
            user_arn: &user_arn,
            kms_key_id: Some(KMS_KEY_ID),
            trusted_role_arns: &roles,
        },
    )
}

/// A deployment from before the policy was locked (issue 26, H1) has secrets under
/// keyrotor's previous policy, which let keyrotor's roles rewrite it: the next rotation
/// recognises the secret as keyrotor's and puts the locked policy on it before the new key.
#[test]
fn a_secret_under_keyrotors_previous_policy_is_locked_at_its_next_rotation() {
    on_stack(|stack| async move {
        let a = &stack.account;
        let user = "upgraded";
        let key = user_with_aged_key(&stack.moto, a, user, &[("Email", "u@example.com")], 95)
            .await
            .expect("seed");
        let secret = a.secret_of(user).await.expect("secret name");
        let owner_id = a.user_id(user).await.expect("id");
        let arn = squat(
            a,
            &secret,
            Some(KMS_KEY_ID),
            &[(naming::TAG_USER_ID, owner_id.as_str())],
        )
        .await;
        let previous =
            keyrotors_policy(a, &secret, user, &owner_id, previous_resource_policy).await;
        a.secrets
            .put_resource_policy()
            .secret_id(&arn)
            .resource_policy(previous.to_string())
            .send()
            .await
            .expect("the previous policy");

        let done = run(stack, "upgraded", json!({"user": user})).await;
        assert_succeeded(&done);
        let keys = a.keys(user).await.expect("keys");
        assert_eq!(keys.len(), 1, "{keys:?}");
        assert_ne!(keys[0].0, key.id, "rotated");
        let locked = keyrotors_policy(a, &secret, user, &owner_id, resource_policy).await;
        assert_ne!(locked, previous);
        assert_eq!(resource_policy_of(a, &secret).await, Some(locked));
    });
}

#[test]
fn a_forced_rotation_of_an_exempt_user_deactivates_and_deletes_the_leaked_key() {
    on_stack(|stack| async move {
        let a = &stack.account;
        let leaked = user_with_aged_key(
            &stack.moto,
            a,
            "exempt-leaker",
            &[
                ("key-rotation:exempt", "true"),
                ("Email", "leaker@example.com"),
            ],
            30,
        )
        .await
        .expect("seed");
        let plain = run(stack, "leak-check", json!({"user": "exempt-leaker"})).await;
        assert_eq!(output(&plain)["assessment"]["action"], "exempt");

        let forced = run(
            stack,
            "leak-response",
            json!({"user": "exempt-leaker", "force": true}),
        )
        .await;
        assert_succeeded(&forced);
        let out = output(&forced);
        assert_eq!(out["deactivated"]["alreadyInactive"], false, "{out}");
        assert_eq!(out["deleted"]["outcome"], "deleted", "{out}");
        let keys = a.keys("exempt-leaker").await.expect("keys");
        assert_eq!(keys.len(), 1, "the leaked key is gone: {keys:?}");
        assert_ne!(keys[0].0, leaked.id);
        let secret = a.secret_of("exempt-leaker").await.expect("name");
        let stored = a.secret_value(&secret).await.expect("value");
        assert_eq!(stored["AccessKeyId"], keys[0].0.as_str());
    });
}

#[test]
fn an_owners_rollback_stands_until_a_rotation_is_forced() {
    on_stack(|stack| async move {
        let a = &stack.account;
        let old = user_with_aged_key(
            &stack.moto,
            a,
            "roller",
            &[("Email", "roller@example.com")],
            95,
        )
        .await
        .expect("seed");
        let arn = stack
            .start_execution("rotate-roller", &json!({"user": "roller"}))
            .await
            .expect("start");
        // The owner reactivates the old key as soon as keyrotor has deactivated it.
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let keys = a.keys("roller").await.expect("keys");
            if keys.iter().any(|(id, s)| *id == old.id && s == "Inactive") {
                break;
            }
            assert!(Instant::now() < deadline, "never deactivated: {keys:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        a.set_key_status("roller", &old.id, true)
            .await
            .expect("reactivate");
        let done = stack.wait_for(&arn, TIMEOUT).await.expect("ends");
        assert_succeeded(&done);
        assert_eq!(output(&done)["deleted"]["outcome"], "keptReactivated");
        // Other automation hears it too: the old key stays, and why.
        let received = a.received_events().await.expect("events");
        let kept = of_type(&received, "OldKeyKept");
        assert_eq!(kept.len(), 1, "{received:?}");
        assert_eq!(kept[0]["detail"]["user"], "roller");
        assert_eq!(kept[0]["detail"]["keyId"], old.id.as_str());
        assert!(kept[0]["detail"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("reactivated")));

        // The next run inside the resume window (a rerun, the next scan's execution, a
        // non-forced rotate) must not deactivate the key again.
        for name in ["rerun-roller", "scan-roller"] {
            let again = run(stack, name, json!({"user": "roller"})).await;
            assert_succeeded(&again);
            let out = output(&again);
            assert_eq!(out["assessment"]["action"], "blocked", "{out}");
            assert!(out.get("deactivated").is_none(), "{out}");
            let keys = a.keys("roller").await.expect("keys");
            assert_eq!(active(&keys).len(), 2, "both keys stay active: {keys:?}");
        }
        let scan = run_scan(stack, "scan-after-rollback").await;
        assert_succeeded(&scan);
        stack.wait_all(TIMEOUT).await.expect("per-user executions");
        let keys = a.keys("roller").await.expect("keys");
        assert_eq!(active(&keys).len(), 2, "the scan leaves both: {keys:?}");

        // A responder may override the owner.
        let forced = run(
            stack,
            "force-roller",
            json!({"user": "roller", "force": true}),
        )
        .await;
        assert_succeeded(&forced);
        let keys = a.keys("roller").await.expect("keys");
        assert_eq!(keys.len(), 1, "{keys:?}");
        assert_ne!(keys[0].0, old.id);
    });
}

#[test]
fn one_users_broken_secret_does_not_stop_the_scan() {
    on_stack(|stack| async move {
        let a = &stack.account;
        let m = &stack.moto;
        let mut seeded = Vec::new();
        for user in ["scan-good-1", "scan-good-2", "scan-deleted", "scan-foreign"] {
            let key = user_with_aged_key(m, a, user, &[], 100)
                .await
                .expect("seed");
            if !user.starts_with("scan-good") {
                // An inactive leftover makes the scan read the user's secret itself.
                let leftover = aged_key(m, a, user, 300).await.expect("leftover");
                a.set_key_status(user, &leftover.id, false)
                    .await
                    .expect("inactive");
            }
            seeded.push((user, key));
        }
        // A secret scheduled for deletion, and one tagged for another user.
        let deleted = a.secret_of("scan-deleted").await.expect("name");
        squat(a, &deleted, Some(KMS_KEY_ID), &[]).await;
        a.secrets
            .delete_secret()
            .secret_id(&deleted)
            .recovery_window_in_days(7)
            .send()
            .await
            .expect("schedule deletion");
        let foreign = a.secret_of("scan-foreign").await.expect("name");
        let other_id = a.user_id("scan-good-1").await.expect("id");
        squat(
            a,
            &foreign,
            Some(KMS_KEY_ID),
            &[(naming::TAG_USER_ID, other_id.as_str())],
        )
        .await;

        let scan = run_scan(stack, "scan-with-broken-secrets").await;
        assert_succeeded(&scan);
        stack.wait_all(TIMEOUT).await.expect("per-user executions");
        let totals = &output(&scan)["totals"];
        assert_eq!(totals["seen"], 4, "{totals}");
        assert_eq!(totals["rotate"], 2, "{totals}");
        assert_eq!(totals["blocked"], 2, "{totals}");
        for exec in stack.executions().await.expect("executions") {
            assert_eq!(
                exec.status(),
                &ExecutionStatus::Succeeded,
                "{}",
                exec.name()
            );
        }
        for (user, key) in &seeded {
            let keys = a.keys(user).await.expect("keys");
            if user.starts_with("scan-good") {
                assert_eq!(keys.len(), 1, "{user} rotated: {keys:?}");
                assert_ne!(keys[0].0, key.id, "{user}");
            } else {
                assert_eq!(active(&keys), [key.id.as_str()], "{user} untouched");
                assert_eq!(keys.len(), 2, "{user}: the leftover is not deleted either");
            }
        }
        let mails = m.sent_emails().expect("mails");
        for user in ["scan-deleted", "scan-foreign"] {
            assert!(
                mails
                    .iter()
                    .any(|e| e.subject.contains("blocked") && e.subject.contains(user)),
                "{user} reported: {mails:?}"
            );
        }
    });
}

#[test]
fn an_owner_mail_that_fails_does_not_stop_the_rotation() {
    on_stack(|stack| async move {
        let a = &stack.account;
        let old = user_with_aged_key(
            &stack.moto,
            a,
            "unmailable",
            &[("Email", "unmailable@example.com")],
            95,
        )
        .await
        .expect("seed");
        // SES refuses the owner's address (in the sandbox: any unverified one).
        stack
            .set_faults(
                json!([{"operation": "ses:SendEmail", "match": "unmailable@example.com",
                "mode": "fail_before", "kind": "reject", "times": -1}]),
            )
            .expect("faults");
        let done = run(stack, "unmailable", json!({"user": "unmailable"})).await;
        stack.set_faults(json!([])).expect("clear");
        assert_succeeded(&done);
        let out = output(&done);
        assert_eq!(out["deleted"]["outcome"], "deleted", "{out}");
        assert!(out["mailError"].is_object(), "{out}");
        let keys = a.keys("unmailable").await.expect("keys");
        assert_eq!(keys.len(), 1);
        assert_ne!(keys[0].0, old.id);
        let mails = stack.moto.sent_emails().expect("mails");
        let undelivered = mails
            .iter()
            .filter(|e| e.to == [ADMIN_ADDRESS] && e.subject.contains("not delivered"))
            .count();
        assert_eq!(
            undelivered, 2,
            "rotated and deleted, each reported: {mails:?}"
        );
    });
}

#[test]
fn a_state_machine_without_allow_force_refuses_forced_rotations() {
    on_stack(|stack| async move {
        let a = &stack.account;
        let key = user_with_aged_key(&stack.moto, a, "operator-target", &[], 95)
            .await
            .expect("seed");
        let definition = Machine::RotateUser
            .local_definition(false)
            .expect("substituted");
        let machine = a
            .sfn
            .create_state_machine()
            .name("keyrotor-operators")
            .definition(definition)
            .role_arn(format!(
                "arn:aws:iam::{ACCOUNT_ID}:role/keyrotor-state-machine"
            ))
            .send()
            .await
            .expect("machine")
            .state_machine_arn()
            .to_owned();
        let start = |name: &'static str, input: Value| {
            let machine = machine.clone();
            async move {
                let arn = stack
                    .start_execution_on(&machine, name, &input)
                    .await
                    .expect("start");
                stack.wait_for(&arn, TIMEOUT).await.expect("ends")
            }
        };
        let forced = start(
            "forced-by-operator",
            json!({"user": "operator-target", "force": true}),
        )
        .await;
        assert_eq!(forced.status(), &ExecutionStatus::Failed);
        assert_eq!(forced.error(), Some("ForceNotAllowed"));
        // A leak response by key ID is forced too: refused before anything is read, and
        // without "force" the assessment rejects it.
        let by_key = start(
            "by-key-by-operator",
            json!({"accessKeyId": key.id, "force": true}),
        )
        .await;
        assert_eq!(by_key.error(), Some("ForceNotAllowed"));
        let unforced = start("unforced-key-by-operator", json!({"accessKeyId": key.id})).await;
        assert_eq!(unforced.status(), &ExecutionStatus::Failed);
        assert_eq!(unforced.error(), Some("InvalidInput"));
        assert_eq!(
            a.keys("operator-target").await.expect("keys"),
            [(key.id.clone(), "Active".to_owned())],
            "nothing changed"
        );
        // Not forced, the same machine rotates as usual.
        let plain = start("plain-by-operator", json!({"user": "operator-target"})).await;
        assert_succeeded(&plain);
        let keys = a.keys("operator-target").await.expect("keys");
        assert_eq!(keys.len(), 1);
        assert_ne!(keys[0].0, key.id);
    });
}

/// H2 of the second review: execution names are predictable, and a name taken by anyone
/// used to count as "already started" whatever that execution's input. An operator who
/// starts today's execution for a user first, as a dry run, no longer hides the user: the
/// scan starts everyone else, then fails (the admin is told, the failed-scans alarm fires),
/// and the user's key is still reported, not silently left.
#[test]
fn a_pre_started_dry_run_under_todays_name_fails_the_scan_loudly() {
    on_stack(|stack| async move {
        let a = &stack.account;
        let m = &stack.moto;
        let hidden = user_with_aged_key(m, a, "pre-empted", &[("Email", "p@example.com")], 95)
            .await
            .expect("seed");
        let bystander = user_with_aged_key(m, a, "bystander", &[("Email", "b@example.com")], 95)
            .await
            .expect("seed");
        let today = chrono::Utc::now().date_naive();
        let name = naming::execution_name(today, None, "pre-empted", false);
        let impostor = stack
            .start_execution(&name, &json!({"user": "pre-empted", "dryRun": true}))
            .await
            .expect("the operator's early start");
        let done = stack.wait_for(&impostor, TIMEOUT).await.expect("ends");
        assert_succeeded(&done);

        let scan = run_scan(stack, "scan-pre-empted").await;
        assert_eq!(scan.status(), &ExecutionStatus::Failed, "{scan:?}");
        assert_eq!(scan.error(), Some("Blocked"), "{:?}", scan.cause());
        stack.wait_all(TIMEOUT).await.expect("executions end");
        let keys = a.keys("bystander").await.expect("keys");
        assert_eq!(keys.len(), 1, "{keys:?}");
        assert_ne!(keys[0].0, bystander.id, "everyone else is rotated");
        assert_eq!(
            a.keys("pre-empted").await.expect("keys"),
            [(hidden.id.clone(), "Active".to_owned())],
            "the pre-empted user was not acted on"
        );
        let mails = m.sent_emails().expect("mails");
        assert!(
            mails.iter().any(|e| e.to == [ADMIN_ADDRESS]
                && e.subject.contains("failed")
                && e.body.contains("another input")),
            "the admin hears of it: {:?}",
            mails.iter().map(|e| &e.subject).collect::<Vec<_>>()
        );
    });
}

/// Found end to end by the second review: an owner who reactivated the old key within about
/// a second of its deactivation, followed by a non-forced run for that user, saw keyrotor
/// deactivate it again (the record was too young to count as a rollback), and the first
/// run then deleted it. Now a step about to deactivate a key recorded deactivated moments
/// ago waits until the record has settled and reads again: the reactivation stands.
#[test]
fn an_owners_reactivation_at_once_is_not_undone_by_a_second_run() {
    on_stack(|stack| async move {
        let a = &stack.account;
        let user = "quick-roller";
        let old = user_with_aged_key(&stack.moto, a, user, &[("Email", "q@example.com")], 95)
            .await
            .expect("seed");
        let first = stack
            .start_execution("rotate-quick-roller", &json!({"user": user}))
            .await
            .expect("start");
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let keys = a.keys(user).await.expect("keys");
            if keys.iter().any(|(id, s)| *id == old.id && s == "Inactive") {
                break;
            }
            assert!(Instant::now() < deadline, "never deactivated: {keys:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        a.set_key_status(user, &old.id, true)
            .await
            .expect("reactivate");
        let second = run(stack, "again-quick-roller", json!({"user": user})).await;
        let out = output(&second);
        assert!(
            out.get("deactivated")
                .is_none_or(|d| d["outcome"] != "deactivated"),
            "the second run deactivated the key again: {out}"
        );
        let keys = a.keys(user).await.expect("keys");
        assert!(
            keys.iter().any(|(id, s)| *id == old.id && s == "Active"),
            "the reactivated key stays active: {keys:?}"
        );
        let done = stack.wait_for(&first, TIMEOUT).await.expect("ends");
        assert_succeeded(&done);
        assert_eq!(output(&done)["deleted"]["outcome"], "keptReactivated");
        let keys = a.keys(user).await.expect("keys");
        assert_eq!(active(&keys).len(), 2, "nothing deleted: {keys:?}");
    });
}

/// M3 of the second review: a squatter who creates a user's secret first, empty, with
/// keyrotor's key, tags and exact policy, and plants keyrotor's record tags, made keyrotor
/// trust the records: a fake "owner rollback" blocked the user every day, and a
/// deactivation dated in the future hid the user from rotation for good. Records now count
/// only once keyrotor has written a value there (nobody else can encrypt with its key), and
/// never from the future: both users are rotated as usual.
#[test]
fn a_squatters_planted_records_in_an_empty_secret_steer_nothing() {
    on_stack(|stack| async move {
        let a = &stack.account;
        let m = &stack.moto;
        let rolled = user_with_aged_key(m, a, "fake-rollback", &[("Email", "f@example.com")], 95)
            .await
            .expect("seed");
        let hidden = user_with_aged_key(m, a, "hidden-user", &[("Email", "h@example.com")], 95)
            .await
            .expect("seed");
        let leftover = aged_key(m, a, "hidden-user", 200)
            .await
            .expect("second key");
        a.set_key_status("hidden-user", &leftover.id, false)
            .await
            .expect("inactive leftover");
        for (user, key, at) in [
            ("fake-rollback", &rolled.id, "2026-01-01T00:00:00Z"),
            ("hidden-user", &leftover.id, "2099-01-01T00:00:00Z"),
        ] {
            let secret = a.secret_of(user).await.expect("secret name");
            let owner_id = a.user_id(user).await.expect("id");
            let arn = squat(
                a,
                &secret,
                Some(KMS_KEY_ID),
                &[
                    (naming::TAG_USER_ID, owner_id.as_str()),
                    (naming::TAG_DEACTIVATED_KEY, key.as_str()),
                    (naming::TAG_DEACTIVATED_AT, at),
                ],
            )
            .await;
            let ours = keyrotors_policy(a, &secret, user, &owner_id, resource_policy).await;
            a.secrets
                .put_resource_policy()
                .secret_id(&arn)
                .resource_policy(ours.to_string())
                .send()
                .await
                .expect("keyrotor's exact policy, written by the squatter");
        }
        for (user, old) in [("fake-rollback", &rolled.id), ("hidden-user", &hidden.id)] {
            let done = run(
                stack,
                &format!("squatted-records-{user}"),
                json!({"user": user}),
            )
            .await;
            assert_succeeded(&done);
            let out = output(&done);
            assert_eq!(out["assessment"]["action"], "rotate", "{user}: {out}");
            let keys = a.keys(user).await.expect("keys");
            assert_eq!(keys.len(), 1, "{user}: {keys:?}");
            assert_ne!(&keys[0].0, old, "{user}: rotated");
        }
    });
}
