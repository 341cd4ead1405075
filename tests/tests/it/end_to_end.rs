//! End to end: executions of the real state machine (moto interpreting the ASL) calling the
//! real function binaries (served by `cargo lambda watch` through the local gateway), with
//! the account read back afterwards. One stack per test binary; tests take turns on it and
//! start from a reset account.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use aws_sdk_sfn::types::ExecutionStatus;
use keyrotor_core::metrics::{Metric, Outcome, Summary};
use keyrotor_core::naming;
use keyrotor_localstack::account::{user_with_aged_key, SeededKey, TestUser};
use keyrotor_localstack::stack::{
    execution_output, on_shared_stack, LocalStack, StackOptions, ADMIN_ADDRESS, EXEMPT_GROUP,
    FROM_ADDRESS,
};
use keyrotor_tests::events::{
    health_event_arn, health_exposure, of_type, trusted_advisor_exposure, users_a_leak_can_hit,
};
use keyrotor_tests::invariants::{check_user, UserCase};
use serde_json::{json, Value};

const TIMEOUT: Duration = Duration::from_secs(300);
const EXEMPT_TAG: &str = "key-rotation:exempt";

fn on_stack<F, Fut>(test: F)
where
    F: FnOnce(&'static LocalStack) -> Fut,
    Fut: Future<Output = ()>,
{
    on_shared_stack(StackOptions::default, test);
}

async fn run(
    stack: &LocalStack,
    name: &str,
    input: Value,
) -> aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput {
    stack
        .run(name, &input, TIMEOUT)
        .await
        .expect("execution ends")
}

/// Runs the scan the schedule would start.
async fn run_scan(
    stack: &LocalStack,
    name: &str,
) -> aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput {
    stack
        .run_scan(name, &json!({}), TIMEOUT)
        .await
        .expect("scan ends")
}

fn output(done: &aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput) -> Value {
    execution_output(done).expect("JSON output")
}

/// Every secret value the account holds, for leak checks.
async fn secret_values(stack: &LocalStack) -> Vec<String> {
    let listed = stack
        .account
        .secrets
        .list_secrets()
        .send()
        .await
        .expect("list");
    let mut values = Vec::new();
    for s in listed.secret_list() {
        let name = s.name().unwrap_or_default();
        if let Ok(v) = stack.account.secret_value(name).await {
            values.push(v["SecretAccessKey"].as_str().unwrap_or_default().to_owned());
        }
    }
    values
}

/// Checks that no execution history, function log line, e-mail or event (`received`, as
/// the queue delivered them) holds a secret; returns how many history events were searched.
async fn assert_no_leak(stack: &LocalStack, secrets: &[String], received: &[Value]) -> usize {
    assert!(
        !secrets.is_empty() && secrets.iter().all(|s| s.len() >= 20),
        "real secrets to look for"
    );
    let mut events = 0;
    for e in stack.all_executions().await.expect("executions") {
        let history = stack.history(e.execution_arn()).await.expect("history");
        events += history.len();
        let text = serde_json::to_string(&history).expect("json");
        let desc = stack
            .account
            .sfn
            .describe_execution()
            .execution_arn(e.execution_arn())
            .send()
            .await
            .expect("describe");
        for s in secrets {
            assert!(
                !text.contains(s.as_str()),
                "secret in the history of {}",
                e.name()
            );
            assert!(
                !format!("{desc:?}").contains(s.as_str()),
                "secret in the output of {}",
                e.name()
            );
        }
    }
    let log = std::fs::read_to_string(&stack.functions_log).expect("function log");
    let mails = stack.moto.sent_emails().expect("emails");
    let delivered = serde_json::to_string(&received).expect("json");
    for s in secrets {
        assert!(!log.contains(s.as_str()), "secret in the function log");
        assert!(!delivered.contains(s.as_str()), "secret in an event");
        assert!(
            mails
                .iter()
                .all(|m| !m.body.contains(s.as_str()) && !m.subject.contains(s.as_str())),
            "secret in an e-mail"
        );
    }
    events
}

#[test]
fn a_scheduled_scan_handles_every_kind_of_user_and_a_rerun_changes_nothing() {
    on_stack(|stack| async move {
        let (m, a) = (&stack.moto, &stack.account);
        let mut seeded: BTreeMap<String, SeededKey> = BTreeMap::new();
        let mail = |u: &str| format!("{}@example.com", u.replace(['+', '=', ',', '@'], "."));
        let owner = |u: &str| TestUser::new(u).tag("Email", &mail(u));
        let mut plan: Vec<TestUser> = Vec::new();
        for i in 1..=5 {
            plan.push(
                TestUser::new(&format!("fresh-{i}"))
                    .tag("Email", &mail("fresh"))
                    .key(10, true),
            );
        }
        for (user, age) in [
            ("warn80-a", 80),
            ("warn80-b", 80),
            ("warn80-c", 80),
            ("warn85", 85),
            ("not-a-warning-day", 81),
        ] {
            plan.push(owner(user).key(age, true));
        }
        let rotate: Vec<String> = (1..=6)
            .map(|i| format!("rotate-{i}"))
            .chain(
                [
                    "svc+deploy=ci",
                    "a.b@corp",
                    "x-y_z",
                    "comma,user",
                    "nomail",
                    "exempt-past",
                ]
                .map(String::from),
            )
            .collect();
        for user in &rotate {
            let mut u = if user == "nomail" {
                TestUser::new(user)
            } else {
                owner(user)
            };
            if user == "exempt-past" {
                u = u.tag(EXEMPT_TAG, "2020-01-01");
            }
            plan.push(u.key(95, true));
        }
        // Two active keys: the older one is the one on record.
        for user in ["two-active-1", "two-active-2"] {
            plan.push(owner(user).key(120, true).key(30, true));
        }
        plan.push(
            TestUser::new("exempt-true")
                .tag(EXEMPT_TAG, "true")
                .key(150, true),
        );
        let in_100_days = (chrono::Utc::now() + chrono::Duration::days(100))
            .date_naive()
            .to_string();
        plan.push(
            TestUser::new("exempt-date")
                .tag(EXEMPT_TAG, &in_100_days)
                .key(150, true),
        );
        plan.push(
            TestUser::new("exempt-group")
                .group(EXEMPT_GROUP)
                .key(150, true),
        );
        // An inactive leftover beside the active key that is due.
        for user in ["leftover-1", "leftover-2"] {
            plan.push(owner(user).key(200, false).key(100, true));
        }
        plan.push(TestUser::new("keyless"));
        plan.push(TestUser::new("inactive-only").key(200, false));
        for user in &plan {
            let keys = a.seed(m, user).await.expect("seed");
            // The key the test follows: the active one (the oldest, if two).
            let key = user
                .keys
                .iter()
                .zip(keys)
                .find(|((_, active), _)| *active)
                .map(|(_, key)| key);
            if let Some(key) = key {
                seeded.insert(user.name.clone(), key);
            }
        }
        let rotating: Vec<String> = rotate
            .iter()
            .cloned()
            .chain(["leftover-1".into(), "leftover-2".into()])
            .collect();

        let log_start = stack.functions_log_len();
        let scan = run_scan(stack, "scan-1").await;
        assert_eq!(
            scan.status(),
            &ExecutionStatus::Succeeded,
            "{:?}",
            scan.error()
        );
        let totals = output(&scan)["totals"].clone();
        assert_eq!(totals["seen"], 31, "{totals}");
        assert_eq!(totals["rotate"], rotating.len(), "{totals}");
        assert_eq!(totals["warn"], 4, "{totals}");
        assert_eq!(totals["blocked"], 2, "{totals}");
        assert_eq!(totals["exempt"], 3, "{totals}");
        assert_eq!(totals["started"], rotating.len() + 4 + 2, "{totals}");
        stack
            .wait_all(TIMEOUT)
            .await
            .expect("per-user executions finish");

        let executions = stack.executions().await.expect("list");
        let failed: Vec<_> = executions
            .iter()
            .filter(|e| e.status() != &ExecutionStatus::Succeeded)
            .map(|e| e.name().to_owned())
            .collect();
        assert!(failed.is_empty(), "failed executions: {failed:?}");

        for user in &rotating {
            let keys = a.keys(user).await.expect("keys");
            assert_eq!(keys.len(), 1, "{user}: {keys:?}");
            assert_ne!(keys[0].0, seeded[user].id, "{user} has a new key");
            assert_eq!(keys[0].1, "Active");
            let secret_name = a.secret_of(user).await.expect("secret name");
            let stored = a.secret_value(&secret_name).await.expect("secret");
            assert_eq!(stored["AccessKeyId"], keys[0].0.as_str(), "{user}");
            let arn = a
                .caller_arn(
                    &keys[0].0,
                    stored["SecretAccessKey"].as_str().expect("value"),
                )
                .await
                .expect("sts");
            assert!(arn.ends_with(&format!(":user/{user}")), "{arn}");
        }
        for user in ["two-active-1", "two-active-2"] {
            assert_eq!(
                a.keys(user).await.expect("keys").len(),
                2,
                "{user} untouched"
            );
        }
        for user in [
            "exempt-true",
            "exempt-date",
            "exempt-group",
            "fresh-1",
            "warn80-a",
            "warn85",
            "not-a-warning-day",
        ] {
            assert_eq!(
                a.keys(user).await.expect("keys"),
                [(seeded[user].id.clone(), "Active".to_owned())],
                "{user} untouched"
            );
            assert!(
                !a.secret_exists(&a.secret_of(user).await.expect("id")).await,
                "{user} has no secret"
            );
        }

        let mails = m.sent_emails().expect("emails");
        let count = |to: &str, subject: &str| {
            mails
                .iter()
                .filter(|e| e.to.iter().any(|t| t == to) && e.subject.contains(subject))
                .count()
        };
        for user in ["warn80-a", "warn80-b", "warn80-c", "warn85"] {
            assert_eq!(
                count(&mail(user), "will be rotated"),
                1,
                "{user} warned once"
            );
        }
        assert_eq!(count(&mail("not-a-warning-day"), "will be rotated"), 0);
        for user in rotating.iter().filter(|u| *u != "nomail") {
            assert_eq!(count(&mail(user), "rotated: new key"), 1, "{user}");
            assert_eq!(count(&mail(user), "deleted"), 1, "{user}");
        }
        assert_eq!(
            count(ADMIN_ADDRESS, "Access key of nomail rotated"),
            1,
            "no Email tag: admin told"
        );
        for user in ["two-active-1", "two-active-2"] {
            assert_eq!(count(&mail(user), "blocked"), 1, "{user}");
            assert_eq!(
                count(ADMIN_ADDRESS, &format!("{user}'s access key blocked")),
                1,
                "{user}"
            );
        }
        assert!(mails.iter().all(|e| e.source == FROM_ADDRESS));

        // The metric lines the functions wrote add up to the scan's summary, and count
        // each rotation's outcomes.
        let metrics = Summary::of(&stack.metrics_since(log_start).expect("function log"));
        for (metric, total) in [
            (Metric::UsersSeen, "seen"),
            (Metric::KeysDue, "rotate"),
            (Metric::Warned, "warn"),
            (Metric::Blocked, "blocked"),
            (Metric::Exempt, "exempt"),
            (Metric::NonCompliantKeys, "nonCompliant"),
        ] {
            assert_eq!(
                Some(metrics.sum(metric)),
                totals[total].as_f64(),
                "{metric:?} against totals.{total}: {totals}"
            );
        }
        // Every user due (with an expired exemption too), the leftovers' active keys and the
        // older of each pair of active keys; the exempt users' keys are not counted.
        assert_eq!(totals["nonCompliant"], rotating.len() + 2, "{totals}");
        assert_eq!(metrics.sum(Metric::RotationsStarted), rotating.len() as f64);
        assert_eq!(
            metrics.max(Metric::OldestKeyAgeDays),
            Some(150.0),
            "the exempt users' keys are the oldest active ones"
        );
        assert_eq!(metrics.count(Outcome::Rotated), rotating.len());
        assert_eq!(metrics.count(Outcome::Deleted), rotating.len());
        assert_eq!(metrics.count(Outcome::Failed), 0);

        // The events, as a rule on the default bus delivered them to a queue: one per
        // outcome, naming the new key, its secret and version.
        let received = a.received_events().await.expect("events");
        for (detail_type, count) in [
            ("KeyRotated", rotating.len()),
            ("OldKeyDeactivated", rotating.len()),
            ("OldKeyDeleted", rotating.len()),
            ("Warned", 4),
            ("RotationBlocked", 2),
            ("RotationFailed", 0),
        ] {
            assert_eq!(
                of_type(&received, detail_type).len(),
                count,
                "{detail_type}"
            );
        }
        for event in of_type(&received, "KeyRotated") {
            let d = &event["detail"];
            let user = d["user"].as_str().expect("user");
            let keys = a.keys(user).await.expect("keys");
            assert_eq!(d["newKeyId"], keys[0].0.as_str(), "{user}");
            assert_eq!(d["oldKeyId"], seeded[user].id.as_str(), "{user}");
            let secret = a.secret_of(user).await.expect("secret name");
            assert_eq!(d["secretName"], secret.as_str(), "{user}");
            assert!(
                d["secretArn"]
                    .as_str()
                    .is_some_and(|arn| arn.contains(&format!(":secret:{secret}"))),
                "{d}"
            );
            let versions = a.secret_versions(&secret).await.expect("versions");
            assert!(
                versions.iter().any(|(id, stages)| Some(id.as_str())
                    == d["secretVersionId"].as_str()
                    && stages.iter().any(|s| s == "AWSCURRENT")),
                "{d} in {versions:?}"
            );
        }

        let secrets = secret_values(stack).await;
        let events = assert_no_leak(stack, &secrets, &received).await;
        println!(
            "scan: {} executions, {events} history events and {} keyrotor events searched for {} secrets: 0 hits",
            executions.len(),
            received.len(),
            secrets.len()
        );

        // Rerun: the scan again (a new execution the same day) and a finished per-user run.
        let before = a.snapshot().await.expect("snapshot");
        let mails_before = mails.len();
        let rescan = run_scan(stack, "scan-2").await;
        assert_eq!(rescan.status(), &ExecutionStatus::Succeeded);
        let totals = output(&rescan)["totals"].clone();
        assert_eq!(totals["started"], 0, "{totals}");
        let again = run(stack, "rerun-rotate-1", json!({"user": "rotate-1"})).await;
        assert_eq!(again.status(), &ExecutionStatus::Succeeded);
        assert_eq!(output(&again)["assessment"]["action"], "none");
        stack.wait_all(TIMEOUT).await.expect("all done");
        assert_eq!(
            a.snapshot().await.expect("snapshot"),
            before,
            "a rerun changes nothing"
        );
        assert_eq!(
            m.sent_emails().expect("emails").len(),
            mails_before,
            "and sends nothing"
        );
    });
}

#[test]
fn a_forced_ad_hoc_execution_rotates_a_fresh_key() {
    on_stack(|stack| async move {
        let old = user_with_aged_key(
            &stack.moto,
            &stack.account,
            "leaky",
            &[("Email", "leaky@example.com")],
            3,
        )
        .await
        .expect("seed");
        let plain = run(stack, "leaky-check", json!({"user": "leaky"})).await;
        assert_eq!(output(&plain)["assessment"]["action"], "none");
        let forced = run(stack, "leaky-now", json!({"user": "leaky", "force": true})).await;
        assert_eq!(
            forced.status(),
            &ExecutionStatus::Succeeded,
            "{:?}",
            forced.error()
        );
        let keys = stack.account.keys("leaky").await.expect("keys");
        assert_eq!(keys.len(), 1);
        assert_ne!(keys[0].0, old.id);
        let history = stack
            .history(forced.execution_arn())
            .await
            .expect("history");
        let transitions = history
            .iter()
            .filter(|e| {
                e["type"]
                    .as_str()
                    .is_some_and(|t| t.ends_with("StateEntered"))
            })
            .count();
        println!(
            "forced rotation: {transitions} state transitions, {} history events",
            history.len()
        );
        let received = stack.account.received_events().await.expect("events");
        assert_no_leak(stack, &secret_values(stack).await, &received).await;
    });
}

#[test]
fn a_failed_execution_is_finished_by_a_new_run_without_a_second_key() {
    on_stack(|stack| async move {
        let a = &stack.account;
        let old = user_with_aged_key(
            &stack.moto,
            a,
            "frank",
            &[("Email", "frank@example.com")],
            95,
        )
        .await
        .expect("seed");
        // IAM refuses to delete the old key: the rotation stops after deactivation (a
        // failed mail would not stop it; it is reported and the rotation goes on).
        stack
            .set_faults(json!([{"operation": "iam:DeleteAccessKey", "match": old.id,
                "mode": "fail_before", "kind": "reject", "times": -1}]))
            .expect("fault");
        let failed = run(stack, "frank-1", json!({"user": "frank"})).await;
        stack.set_faults(json!([])).expect("fixed");
        assert_eq!(failed.status(), &ExecutionStatus::Failed);
        assert_eq!(failed.error(), Some("ServiceError"), "{:?}", failed.cause());
        let keys = a.keys("frank").await.expect("keys");
        assert_eq!(keys.len(), 2);
        assert_eq!(
            keys[0],
            (old.id.clone(), "Inactive".to_owned()),
            "deactivated before the failure"
        );
        let new_id = keys[1].0.clone();

        let finished = run(stack, "frank-2", json!({"user": "frank"})).await;
        assert_eq!(
            finished.status(),
            &ExecutionStatus::Succeeded,
            "{:?}",
            finished.error()
        );
        let out = output(&finished);
        assert_eq!(out["assessment"]["action"], "finish", "{out}");
        assert_eq!(
            a.keys("frank").await.expect("keys"),
            [(new_id.clone(), "Active".to_owned())],
            "no second key"
        );
        assert_eq!(
            a.secret_versions(&a.secret_of("frank").await.expect("id"))
                .await
                .expect("versions")
                .len(),
            1
        );
        // The failure is announced with its step and error type; the run that finished the
        // rotation announces the new key (its secret named as on any rotation) and the
        // deletion.
        let received = a.received_events().await.expect("events");
        let failed = of_type(&received, "RotationFailed");
        assert_eq!(failed.len(), 1, "{received:?}");
        assert_eq!(failed[0]["detail"]["user"], "frank");
        assert_eq!(failed[0]["detail"]["step"], "DeleteOldKey");
        assert_eq!(failed[0]["detail"]["errorType"], "ServiceError");
        let rotated = of_type(&received, "KeyRotated");
        assert!(
            rotated.len() == 2
                && rotated
                    .iter()
                    .all(|e| e["detail"]["newKeyId"] == new_id.as_str()
                        && e["detail"]["secretArn"].is_string()),
            "{rotated:?}"
        );
        assert_eq!(of_type(&received, "OldKeyDeleted").len(), 1);
        let mails = stack.moto.sent_emails().expect("emails");
        assert!(mails
            .iter()
            .any(|e| e.subject.contains("Execution for frank failed")
                && e.body.contains("failed at its step DeleteOldKey")));
        assert!(mails
            .iter()
            .any(|e| e.subject.contains("rotated: new key") && e.to == ["frank@example.com"]));
        assert!(mails
            .iter()
            .any(|e| e.subject.contains("deleted") && e.to == ["frank@example.com"]));
    });
}

/// AWS's report of an exposed key, delivered to the real respond-to-exposure binary as
/// EventBridge would: for an exempt user, a user on a warning day and a user with an
/// inactive leftover key, one forced rotation each, mails that say why, and a second
/// delivery that starts nothing. A report of a key no user here has changes nothing.
#[test]
fn an_exposure_report_rotates_the_leaked_key_of_any_user_once() {
    on_stack(|stack| async move {
        let reported_at = chrono::Utc::now() - chrono::Duration::minutes(30);
        // Every user first: seeding ages keys by moving the emulator's clock, which would
        // backdate a key a running rotation creates meanwhile.
        let mut seeded_users = Vec::new();
        for user in users_a_leak_can_hit() {
            let seeded = stack.account.seed(&stack.moto, &user).await.expect("seed");
            seeded_users.push((user.name.clone(), seeded));
        }
        // M9: a forged report (AWS Health does not know it; the fake Health API behind the
        // fault proxy answers through the real SDK) changes nothing, even for the exempt user.
        let (exempt, exempt_keys) = &seeded_users[0];
        let forged_at = reported_at - chrono::Duration::minutes(5);
        let forged = health_exposure(&exempt_keys[0].id, forged_at, "https://phish.example/x");
        stack
            .record_health(json!({ health_event_arn(&exempt_keys[0].id): null }))
            .expect("AWS Health knows no such event");
        let (status, body) = stack
            .invoke("respond-to-exposure", &forged)
            .expect("invoke");
        assert_eq!(status, 200, "{body}");
        let answer: Value = serde_json::from_str(&body).expect("JSON");
        let arn = naming::execution_arn(
            &stack.state_machine_arn,
            answer["executionName"].as_str().expect("name"),
        );
        let done = stack.wait_for(&arn, TIMEOUT).await.expect("ended");
        let out = output(&done);
        assert_eq!(out["assessment"]["action"], "blocked", "{exempt}: {out}");
        let keys = stack.account.keys(exempt).await.expect("keys");
        assert!(
            keys.iter().all(|(_, status)| status == "Active"),
            "{exempt}: untouched: {keys:?}"
        );

        // The real reports: AWS Health has each one, with AWS's own place.
        let mut cases = Vec::new();
        for (name, seeded) in seeded_users {
            let exposed = seeded[0].id.clone();
            stack
                .record_health(json!({ health_event_arn(&exposed): {
                    "eventTypeCode": "AWS_RISK_CREDENTIALS_EXPOSED",
                    "startTime": reported_at.timestamp(),
                    "exposedUrl": "https://github.com/example/leak",
                    "entities": [exposed],
                }}))
                .expect("AWS Health's record");
            let event = health_exposure(&exposed, reported_at, "https://github.com/example/leak");
            let (status, body) = stack.invoke("respond-to-exposure", &event).expect("invoke");
            assert_eq!(status, 200, "{body}");
            let answer: Value = serde_json::from_str(&body).expect("JSON");
            assert_eq!(answer["started"], true, "{answer}");
            cases.push((name, seeded, exposed, event, answer));
        }
        stack.wait_all(TIMEOUT).await.expect("executions end");

        for (user, seeded, exposed, event, answer) in &cases {
            let name = answer["executionName"].as_str().expect("name");
            let arn = naming::execution_arn(&stack.state_machine_arn, name);
            let done = stack.wait_for(&arn, TIMEOUT).await.expect("ended");
            assert_eq!(
                done.status(),
                &ExecutionStatus::Succeeded,
                "{user}: {:?}",
                done.cause()
            );
            let out = output(&done);
            assert_eq!(out["assessment"]["user"], user.as_str());
            assert_eq!(out["assessment"]["oldKeyId"], exposed.as_str());
            assert_eq!(out["deleted"]["outcome"], "deleted", "{user}: {out}");
            let case = UserCase {
                user,
                seeded,
                secret_name: stack.account.secret_of(user).await.expect("secret"),
                expect_rotated: true,
            };
            check_user(&stack.account, &case)
                .await
                .unwrap_or_else(|e| panic!("{e:#}"));

            // The same report delivered again starts nothing.
            let (status, body) = stack.invoke("respond-to-exposure", event).expect("invoke");
            assert_eq!(status, 200, "{body}");
            let again: Value = serde_json::from_str(&body).expect("JSON");
            assert_eq!(again["started"], false, "{again}");
            assert_eq!(again["executionName"], answer["executionName"]);
        }
        assert_eq!(
            stack.executions().await.expect("list").len(),
            cases.len() + 1
        );

        let mails = stack.moto.sent_emails().expect("mails");
        for (user, _, exposed, _, _) in &cases {
            for to in [format!("{user}@example.com"), ADMIN_ADDRESS.to_owned()] {
                let told = mails.iter().any(|m| {
                    m.to.contains(&to)
                        && m.subject.contains("rotated")
                        && m.body.contains(&format!(
                            "AWS Health reported the access key {exposed} as exposed"
                        ))
                        && m.body.contains("(confirmed with AWS)")
                        && m.body.contains("lookup-events")
                });
                assert!(
                    told,
                    "{user}: no rotation mail to {to} saying why: {mails:#?}"
                );
            }
        }

        // A later report (Trusted Advisor) of a key keyrotor replaced and deleted: its
        // records say so (ListSecrets by tag on the emulator), and the execution ends
        // `none`, with no failure and no alarm.
        let (user, _, exposed, _, _) = &cases[0];
        let later = trusted_advisor_exposure(exposed, user, chrono::Utc::now());
        let (_, body) = stack.invoke("respond-to-exposure", &later).expect("invoke");
        let answer: Value = serde_json::from_str(&body).expect("JSON");
        let arn = naming::execution_arn(
            &stack.state_machine_arn,
            answer["executionName"].as_str().expect("name"),
        );
        let done = stack.wait_for(&arn, TIMEOUT).await.expect("ended");
        assert_eq!(
            done.status(),
            &ExecutionStatus::Succeeded,
            "{:?}",
            done.cause()
        );
        assert_eq!(output(&done)["assessment"]["action"], "none");

        // A key no user of this account has: the execution fails, the admin is told.
        let stranger = health_exposure("AKIAIOSFODNN7EXAMPLE", reported_at, "https://x.example");
        let (_, body) = stack
            .invoke("respond-to-exposure", &stranger)
            .expect("invoke");
        let answer: Value = serde_json::from_str(&body).expect("JSON");
        let arn = naming::execution_arn(
            &stack.state_machine_arn,
            answer["executionName"].as_str().expect("name"),
        );
        let done = stack.wait_for(&arn, TIMEOUT).await.expect("ended");
        assert_eq!(done.status(), &ExecutionStatus::Failed);
        assert_eq!(done.error(), Some("NotFound"), "{:?}", done.cause());
        let received = stack.account.received_events().await.expect("events");
        assert_no_leak(stack, &secret_values(stack).await, &received).await;
    });
}

/// EventBridge refuses every PutEvents (at the fault proxy): the rotation runs to its end
/// all the same, the owner gets both mails, and the admin is told which events are missing.
/// Then a failed scan: its own event type.
#[test]
fn a_bus_that_refuses_keyrotors_events_never_stops_a_rotation() {
    on_stack(|stack| async move {
        let a = &stack.account;
        let old = user_with_aged_key(&stack.moto, a, "gina", &[("Email", "gina@example.com")], 95)
            .await
            .expect("seed");
        stack
            .set_faults(
                json!([{"operation": "events:PutEvents", "mode": "fail_before",
                "kind": "500", "times": -1}]),
            )
            .expect("fault");
        let done = run(stack, "gina-1", json!({"user": "gina"})).await;
        let calls = stack.proxy_stats().expect("stats");
        stack.set_faults(json!([])).expect("fixed");
        assert_eq!(
            done.status(),
            &ExecutionStatus::Succeeded,
            "{:?}",
            done.error()
        );
        assert!(
            calls["calls"]["events:PutEvents"]
                .as_u64()
                .is_some_and(|n| n >= 2),
            "{calls}"
        );
        let keys = a.keys("gina").await.expect("keys");
        assert_eq!(keys.len(), 1);
        assert_ne!(keys[0].0, old.id);
        let out = output(&done);
        assert!(out["notified"]["eventsError"].is_string(), "{out}");
        assert!(a.received_events().await.expect("events").is_empty());
        let mails = stack.moto.sent_emails().expect("emails");
        let notices: Vec<_> = mails
            .iter()
            .filter(|e| {
                e.subject
                    .contains("Events about IAM user gina not published")
            })
            .collect();
        assert_eq!(notices.len(), 2, "rotated and deleted: {mails:?}");
        assert!(notices.iter().all(|e| e.to == [ADMIN_ADDRESS]));
        for subject in ["rotated: new key", "deleted"] {
            assert!(mails
                .iter()
                .any(|e| e.subject.contains(subject) && e.to == ["gina@example.com"]));
        }

        // With the bus back, a scan that IAM refuses to list users for is announced as a
        // scan's failure, naming the step.
        stack
            .set_faults(json!([{"operation": "iam:ListUsers", "mode": "fail_before",
                "kind": "reject", "times": -1}]))
            .expect("fault");
        let scan = run_scan(stack, "scan-refused").await;
        stack.set_faults(json!([])).expect("fixed");
        assert_eq!(scan.status(), &ExecutionStatus::Failed);
        let received = a.received_events().await.expect("events");
        let failed = of_type(&received, "ScanFailed");
        assert_eq!(failed.len(), 1, "{received:?}");
        assert_eq!(failed[0]["detail"]["step"], "ListFirstPage");
        assert_eq!(failed[0]["detail"]["errorType"], "ServiceError");
        assert!(failed[0]["detail"]["user"].is_null());
        assert!(of_type(&received, "RotationFailed").is_empty());
    });
}
