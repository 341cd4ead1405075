//! What keyrotor tells other automation, in-process: the events `notify` puts on the bus
//! for each outcome (IDs, names and dates, never a secret value), and a bus that refuses
//! them, which never stops a rotation and is reported to the admin. The same events on the
//! emulator's EventBridge, routed to a queue, are in `end_to_end.rs`.
//!
//! And what infra/template.yaml builds on them: the dashboard and the alarms use only
//! metrics the code writes (and show every one), and notify's role may put keyrotor's
//! events on the default bus and nothing else (the emulator enforces no IAM policy).

use std::collections::{BTreeMap, BTreeSet};

use keyrotor_core::events::DetailType;
use keyrotor_core::metrics::{Metric, Outcome, NAMESPACE, OUTCOME_DIMENSION};
use keyrotor_core::naming;
use keyrotor_core::ports::SecretsPort;
use keyrotor_localstack::account::{SeededKey, TestUser};
use keyrotor_localstack::stack::{Machine, ADMIN_ADDRESS, KMS_KEY_ID};
use keyrotor_tests::asl::Execution;
use keyrotor_tests::fake::{FakeAccount, Fault, FaultMode, Faulty};
use keyrotor_tests::in_process::{config, leaks, Account, Functions};
use keyrotor_tests::policy::template::{Stack, Template};
use keyrotor_tests::policy::{Decision, Policy, Principal, Request};
use serde_json::{json, Value};

fn account() -> Account {
    Faulty::new(FakeAccount::new(Some(KMS_KEY_ID)))
}

/// Seeds alice with a 95-day-old key and runs her rotation (execution `r1`) to its end.
async fn rotate_alice(account: &Account) -> (Vec<SeededKey>, Execution) {
    let f = Functions::on(account, &config(&[]));
    let seeded = account.inner.seed(
        &TestUser::new("alice")
            .tag("Email", "alice@example.com")
            .key(95, true),
    );
    let run = f
        .run(Machine::RotateUser, "r1", json!({"user": "alice"}))
        .await;
    assert!(run.succeeded(), "{:?}", run.status);
    (seeded, run)
}

fn types(account: &Account) -> Vec<DetailType> {
    account
        .inner
        .events()
        .iter()
        .map(|e| e.detail_type)
        .collect()
}

#[tokio::test]
async fn a_rotation_announces_the_new_key_its_secret_and_version_then_the_deletion() {
    let account = account();
    let (seeded, run) = rotate_alice(&account).await;

    assert_eq!(
        types(&account),
        [
            DetailType::KeyRotated,
            DetailType::OldKeyDeactivated,
            DetailType::OldKeyDeleted
        ]
    );
    let keys = account.inner.keys("alice");
    assert_eq!(keys.len(), 1);
    let new_key = &keys[0].0;
    let id = account.inner.user_id("alice").expect("seeded");
    let secret_name = naming::secret_name("iam-access-key/", &id);
    let secret = account
        .inner
        .describe(&secret_name)
        .await
        .expect("describe")
        .expect("the secret exists");
    let events = account.inner.events();
    let rotated = &events[0].detail;
    assert_eq!(rotated["user"], "alice");
    assert_eq!(rotated["newKeyId"], new_key.as_str());
    assert_eq!(rotated["oldKeyId"], seeded[0].id.as_str());
    assert_eq!(rotated["secretArn"], secret.arn.as_str());
    assert_eq!(rotated["secretName"], secret_name.as_str());
    assert_eq!(
        rotated["secretVersionId"].as_str(),
        naming::version_id_for_key(new_key).as_deref()
    );
    assert_eq!(rotated["forced"], false);
    assert!(rotated["execution"]
        .as_str()
        .is_some_and(|e| e.ends_with(":r1")));
    assert_eq!(events[1].detail["keyId"], seeded[0].id.as_str());
    assert!(events[1].detail["deleteAfter"].is_string());
    assert_eq!(events[2].detail["keyId"], seeded[0].id.as_str());
    assert_eq!(leaks(&account, &[run], []), 0, "a secret value leaked");
}

#[tokio::test]
async fn warnings_blocked_users_and_failures_are_announced_with_why() {
    let account = account();
    let f = Functions::on(&account, &config(&[]));
    account.inner.seed(
        &TestUser::new("warned")
            .tag("Email", "w@example.com")
            .key(80, true),
    );
    account
        .inner
        .seed(&TestUser::new("two").key(120, true).key(100, true));
    for user in ["warned", "two", "nobody"] {
        f.run(Machine::RotateUser, user, json!({ "user": user }))
            .await;
    }
    let events = account.inner.events();
    let of = |t: DetailType| {
        events
            .iter()
            .find(|e| e.detail_type == t)
            .unwrap_or_else(|| panic!("no {t:?} in {events:?}"))
    };
    let warned = &of(DetailType::Warned).detail;
    assert_eq!(warned["user"], "warned");
    assert_eq!(warned["ageDays"], 80);
    assert!(warned["rotateOn"].is_string());
    let blocked = &of(DetailType::RotationBlocked).detail;
    assert_eq!(blocked["user"], "two");
    assert!(blocked["reason"].as_str().is_some_and(|r| !r.is_empty()));
    let failed = &of(DetailType::RotationFailed).detail;
    assert_eq!(failed["user"], "nobody");
    assert_eq!(failed["step"], "Assess");
    assert_eq!(failed["errorType"], "NotFound");
    assert_eq!(events.len(), 3, "{events:?}");
}

#[tokio::test]
async fn a_bus_that_refuses_events_never_stops_a_rotation_and_the_admin_is_told() {
    let account = account();
    account.inject(Fault {
        action: "events:PutEvents",
        mode: FaultMode::FailBefore,
        nth: 1,
        times: None,
    });
    let (seeded, run) = rotate_alice(&account).await;
    let keys = account.inner.keys("alice");
    assert_eq!(keys.len(), 1, "rotated and the old key deleted");
    assert_ne!(keys[0].0, seeded[0].id);
    assert!(account.inner.events().is_empty());
    for report in ["notified", "notifiedDeleted"] {
        let error = &run.output[report]["eventsError"];
        assert!(
            error
                .as_str()
                .is_some_and(|e| e.contains("events:PutEvents")),
            "{report}: {error}"
        );
        assert_eq!(run.output[report]["events"], json!([]), "{report}");
    }

    let mails = account.inner.mails();
    let notices: Vec<_> = mails
        .iter()
        .filter(|m| {
            m.subject
                .contains("Events about IAM user alice not published")
        })
        .collect();
    assert_eq!(
        notices.len(),
        2,
        "one for the rotation, one for the deletion"
    );
    assert!(notices
        .iter()
        .all(|m| m.to.iter().all(|a| a.to_string() == ADMIN_ADDRESS)));
    assert!(notices[0].text.contains("KeyRotated, OldKeyDeactivated"));
    assert!(notices[1].text.contains("OldKeyDeleted"));
    // The owner still got both mails.
    for subject in ["rotated: new key", "deleted"] {
        assert!(
            mails.iter().any(|m| m.subject.contains(subject)
                && m.to.iter().any(|a| a.to_string() == "alice@example.com")),
            "{subject}"
        );
    }
    assert_eq!(leaks(&account, &[run], []), 0, "a secret value leaked");
}

const ACCOUNT: &str = "123456789012";
const REGION: &str = "us-east-1";

/// The template, and a stack in ACCOUNT/REGION that gives every `!Ref` and `!GetAtt` the
/// dashboard and the alarms use.
fn template() -> (Template, Stack) {
    let path = keyrotor_localstack::workspace_root().join("infra/template.yaml");
    let template = Template::load(&path).expect("infra/template.yaml parses");
    let machine =
        |name: &str| format!("arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:prod-{name}");
    let mut attributes = BTreeMap::from([
        ("AWS::StackName".to_owned(), "prod".to_owned()),
        (
            "NotifyLogs.Arn".into(),
            format!("arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/prod-notify"),
        ),
        ("FromAddress".into(), "keyrotor@example.com".into()),
        ("ScanStateMachine".into(), machine("keyrotor-scan")),
        ("RotateUserStateMachine".into(), machine("keyrotor-rotate")),
        ("ResponderStateMachine".into(), machine("keyrotor-respond")),
        (
            "OrganizationStateMachine".into(),
            machine("keyrotor-organization"),
        ),
        (
            "AlarmTopic".into(),
            format!("arn:aws:sns:{REGION}:{ACCOUNT}:prod-keyrotor-alarms"),
        ),
    ]);
    for function in template.resources_of_type("AWS::Serverless::Function") {
        attributes.insert(function.clone(), format!("prod-{function}"));
    }
    for alarm in template.resources_of_type("AWS::CloudWatch::Alarm") {
        attributes.insert(
            format!("{alarm}.Arn"),
            format!("arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:prod-{alarm}"),
        );
    }
    let stack = Stack {
        partition: "aws".into(),
        region: REGION.into(),
        account_id: ACCOUNT.into(),
        attributes,
        conditions: Default::default(),
    };
    (template, stack)
}

/// A resource's properties, resolved for `stack`.
fn properties(template: &Template, stack: &Stack, logical: &str) -> Value {
    template
        .resolve(&["Resources", logical, "Properties"], stack)
        .unwrap_or_else(|e| panic!("{logical} resolves: {e:#}"))
}

/// A metric a dashboard widget or an alarm uses: namespace, name, dimensions.
type Used = (String, String, Vec<(String, String)>);

/// Every metric a dashboard widget or an alarm uses.
fn metrics_used(template: &Template, stack: &Stack) -> Vec<Used> {
    let mut used = Vec::new();
    let body = template
        .resolve(
            &["Resources", "Dashboard", "Properties", "DashboardBody"],
            stack,
        )
        .expect("the dashboard resolves");
    let body: Value =
        serde_json::from_str(body.as_str().expect("a string")).expect("the dashboard body is JSON");
    let widgets = body["widgets"].as_array().expect("widgets");
    for widget in widgets.iter().filter(|w| w["type"] == "metric") {
        for metric in widget["properties"]["metrics"].as_array().expect("metrics") {
            let parts: Vec<&str> = metric
                .as_array()
                .expect("a metric is an array")
                .iter()
                .filter_map(Value::as_str)
                .collect();
            assert!(
                parts.len() >= 2 && parts.len().is_multiple_of(2),
                "{metric}"
            );
            let dimensions = parts[2..]
                .chunks(2)
                .map(|d| (d[0].to_owned(), d[1].to_owned()))
                .collect();
            used.push((parts[0].to_owned(), parts[1].to_owned(), dimensions));
        }
    }
    for alarm in template.resources_of_type("AWS::CloudWatch::Alarm") {
        let props = properties(template, stack, &alarm);
        let stats: Vec<&Value> = match props["Metrics"].as_array() {
            Some(queries) => queries
                .iter()
                .filter_map(|q| q.get("MetricStat").map(|s| &s["Metric"]))
                .collect(),
            None => vec![&props],
        };
        for stat in stats {
            let dimensions = stat["Dimensions"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|d| {
                    (
                        d["Name"].as_str().unwrap_or_default().to_owned(),
                        d["Value"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect();
            used.push((
                stat["Namespace"].as_str().expect("Namespace").to_owned(),
                stat["MetricName"].as_str().expect("MetricName").to_owned(),
                dimensions,
            ));
        }
    }
    used
}

#[test]
fn the_dashboard_and_alarms_use_only_metrics_the_code_writes_and_show_every_one() {
    let (template, stack) = template();
    let used = metrics_used(&template, &stack);
    let written: BTreeSet<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
    let outcomes: BTreeSet<&str> = [
        Outcome::Rotated,
        Outcome::Deleted,
        Outcome::Kept,
        Outcome::Failed,
    ]
    .iter()
    .map(|o| o.as_str())
    .collect();
    // AWS's own metrics, by the names AWS documents for them.
    let states = [
        "ExecutionsStarted",
        "ExecutionsSucceeded",
        "ExecutionsFailed",
        "ExecutionsAborted",
        "ExecutionThrottled",
        "ExecutionsTimedOut",
    ];
    let mut shown = BTreeSet::new();
    for (namespace, name, dimensions) in &used {
        match namespace.as_str() {
            NAMESPACE => {
                assert!(
                    written.contains(name.as_str()),
                    "{name} is written by no function"
                );
                shown.insert(name.as_str());
                for (dimension, value) in dimensions {
                    assert_eq!(dimension, OUTCOME_DIMENSION, "{name}");
                    assert!(outcomes.contains(value.as_str()), "{name}: outcome {value}");
                }
            }
            "AWS/States" => {
                assert!(states.contains(&name.as_str()), "AWS/States has no {name}");
                assert!(
                    dimensions.iter().all(|(d, v)| d == "StateMachineArn"
                        && v.contains(":stateMachine:prod-keyrotor-")),
                    "{name}: {dimensions:?}"
                );
            }
            "AWS/Lambda" => assert_eq!(name, "Errors"),
            other => panic!("unexpected namespace {other}"),
        }
    }
    assert_eq!(
        shown, written,
        "every metric the code writes is on the dashboard or an alarm"
    );
    let alarmed: BTreeSet<&str> = used
        .iter()
        .filter(|(n, _, _)| n == NAMESPACE)
        .map(|(_, m, _)| m.as_str())
        .collect();
    assert!(alarmed.contains("NonCompliantKeys"));
}

#[test]
fn the_missed_scan_alarm_counts_a_silent_day_against_the_schedule() {
    let (template, stack) = template();
    let alarm = properties(&template, &stack, "NoSuccessfulScanAlarm");
    // AWS/States: a namespace no principal of the account can write to (PutMetricData
    // refuses AWS/ namespaces), so no one can keep this alarm quiet with made-up successes.
    assert_eq!(alarm["Namespace"], "AWS/States");
    assert_eq!(alarm["MetricName"], "ExecutionsSucceeded");
    assert_eq!(
        alarm["Dimensions"][0]["Value"],
        stack.attributes["ScanStateMachine"]
    );
    // 26 hourly periods with no success, missing data included: a schedule that stopped
    // sends no data at all.
    let hours = alarm["Period"].as_u64().expect("period")
        * alarm["EvaluationPeriods"].as_u64().expect("periods")
        / 3600;
    assert_eq!(hours, 26);
    assert_eq!(alarm["DatapointsToAlarm"], alarm["EvaluationPeriods"]);
    assert_eq!(alarm["TreatMissingData"], "breaching");
    assert_eq!(alarm["ComparisonOperator"], "LessThanThreshold");
}

/// Anyone with `cloudwatch:PutMetricData` (PowerUserAccess, for one) can write to the
/// `keyrotor` namespace. The compliance alarm reads the day's Maximum against zero: made-up
/// datapoints can raise it, never bring a real non-compliant count back under the threshold.
#[test]
fn made_up_metric_data_can_raise_the_compliance_alarm_but_never_silence_it() {
    let (template, stack) = template();
    let alarm = properties(&template, &stack, "NonCompliantKeysAlarm");
    assert_eq!(alarm["Namespace"], NAMESPACE);
    assert_eq!(alarm["MetricName"], Metric::NonCompliantKeys.name());
    assert_eq!(alarm["Statistic"], "Maximum");
    assert_eq!(alarm["ComparisonOperator"], "GreaterThanThreshold");
    assert_eq!(alarm["Threshold"], 0);
    assert!(
        alarm["Dimensions"].is_null(),
        "no dimension a writer could pick apart"
    );
}

/// notify's role policy, as an identity policy applies to its holder (`Principal` `*`).
fn notify_policy(template: &Template, stack: &Stack) -> Policy {
    let document = template
        .resolve(
            &["Resources", "NotifyRole", "Properties", "Policies"],
            stack,
        )
        .expect("NotifyRole resolves")[0]["PolicyDocument"]
        .clone();
    Policy::for_holder(document)
}

#[test]
fn notify_may_put_keyrotors_events_on_the_default_bus_and_nothing_else() {
    let (template, stack) = template();
    let policy = notify_policy(&template, &stack);
    let notify = Principal::role_session(ACCOUNT, "/", "prod-NotifyRole", "AROANOTIFY", "notify");
    let bus = |name: &str| format!("arn:aws:events:{REGION}:{ACCOUNT}:event-bus/{name}");
    let put = |resource: &str, source: &str| {
        policy
            .evaluate(
                &Request::new(&notify, "events:PutEvents", resource).with("events:source", source),
            )
            .expect("evaluates")
    };
    assert_eq!(put(&bus("default"), "keyrotor"), Decision::Allow);
    // Events that would pass for another service's, or on another bus (another team's
    // pipeline), are not notify's to put.
    for (resource, source) in [
        (bus("default"), "aws.health"),
        (bus("default"), "com.example.deploy"),
        (bus("ci-pipeline"), "keyrotor"),
        (
            format!("arn:aws:events:{REGION}:210987654321:event-bus/default"),
            "keyrotor",
        ),
    ] {
        assert_eq!(
            put(&resource, source),
            Decision::ImplicitDeny,
            "{resource} {source}"
        );
    }
}
