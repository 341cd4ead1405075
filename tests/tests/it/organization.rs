//! Many accounts, end to end: an organization of nested OUs on moto, the real organization,
//! scan and per-user machines, and the real function binaries working in each member account
//! through their member roles. One member account refuses keyrotor's role (injected at the
//! fault proxy: moto checks no trust policy), one OU is excluded, one account is tagged out.
//! Executions started by hand are held to the same scope, and their mail to the admins the
//! organization names, whatever their input says.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_sfn::types::ExecutionStatus;
use keyrotor_localstack::account::Account;
use keyrotor_localstack::moto::{SeedUser, SentEmail};
use keyrotor_localstack::organization::{member_account, LocalOrganization, EXAMPLE_OUS};
use keyrotor_localstack::stack::{
    execution_output, local_settings, LocalStack, StackOptions, ACCOUNT_ID, ADMIN_ADDRESS,
};
use keyrotor_tests::events::of_type;
use serde_json::json;

const TIMEOUT: Duration = Duration::from_secs(300);
const USER: &str = "deploy";
/// Where prod's `deploy` user reads its key (in prod).
const PARAMETER: &str = "/keyrotor/deploy/aws";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn seed(age_days: i64, email: &str) -> SeedUser {
    SeedUser {
        name: USER.into(),
        tags: [("Email".to_owned(), email.to_owned())].into(),
        key_age_days: Some(age_days),
        groups: Vec::new(),
    }
}

/// The mails about member account `id` (their subjects name it).
fn about<'a>(mails: &'a [SentEmail], id: &str) -> Vec<&'a SentEmail> {
    let prefix = format!("[keyrotor {id}]");
    mails
        .iter()
        .filter(|m| m.subject.starts_with(&prefix))
        .collect()
}

/// The user's keys in `account`: (ID, status).
async fn keys(account: &Account) -> Vec<(String, String)> {
    account.keys(USER).await.expect("keys")
}

#[test]
fn an_organization_scan_rotates_in_each_member_account_and_reports_the_unreachable_one() {
    runtime().block_on(async {
        let mut stack = LocalStack::start(StackOptions::default())
            .await
            .expect("local stack");
        let admin = stack.moto.sdk_config();
        // root ─ Workloads ─ Prod ─ Payments, and Sandbox ─ Experiments (excluded).
        let org = LocalOrganization::create(
            &admin,
            &EXAMPLE_OUS,
            &[
                (
                    "prod",
                    Some("Prod"),
                    &[("keyrotor:admin-address", "prod-sec@example.com")],
                ),
                ("payments", Some("Payments"), &[]),
                ("dev", Some("Workloads"), &[]),
                ("locked", Some("Workloads"), &[]),
                (
                    "opted-out",
                    Some("Workloads"),
                    &[("keyrotor:exclude", "true")],
                ),
                ("lab", Some("Experiments"), &[]),
            ],
        )
        .await
        .expect("organization");
        let id = |name: &str| org.id(name).to_owned();

        // The same user name in every account, keys of different ages.
        let ages = [
            ("prod", 120),
            ("payments", 100),
            ("dev", 85),
            ("locked", 130),
            ("opted-out", 140),
            ("lab", 150),
        ];
        let mut members = BTreeMap::new();
        let mut seeded_keys = BTreeMap::new();
        for (name, age) in ages {
            let keys = stack
                .moto
                .seed_users(
                    &id(name),
                    &[seed(age, &format!("{name}-owner@example.com"))],
                )
                .expect("seed");
            seeded_keys.insert(name, keys[USER].clone());
            members.insert(
                name,
                member_account(&admin, &id(name))
                    .await
                    .expect("member view"),
            );
        }

        // The functions, now in the organization mode with the Sandbox OU excluded. prod's
        // user reads its key from an SSM parameter in prod (delivered through deliver-key's
        // member role there); the same name in payments, and in keyrotor's own account,
        // has its own entry or none, and gets nothing of prod's.
        let mut env = local_settings();
        env.push(("KEYROTOR_ACCOUNTS".into(), "organization".into()));
        env.push(("KEYROTOR_EXCLUDE_OUS".into(), id("Sandbox")));
        let destinations = json!({
            format!("{}/{USER}", id("prod")): [{"type": "ssm", "parameter": PARAMETER}],
            USER: [{"type": "ssm", "parameter": "/keyrotor/own/deploy"}]
        });
        env.push(("KEYROTOR_DESTINATIONS".into(), destinations.to_string()));
        env.push((
            "KEYROTOR_DELIVERY_KMS_KEY_ID".into(),
            keyrotor_localstack::github::DELIVERY_KEY_ALIAS.into(),
        ));
        env.push(("KEYROTOR_PARAMETER_PATH".into(), "/keyrotor/".into()));
        stack
            .account
            .prepare_delivery(&[])
            .await
            .expect("the delivery key");
        let options = StackOptions {
            function_env: env,
            ..StackOptions::default()
        };
        stack.restart_functions(&options).expect("restart");
        // The locked account's member roles refuse keyrotor (or are missing): AccessDenied.
        stack
            .set_faults(json!([{
                "operation": "sts:AssumeRole",
                "match": id("locked"),
                "mode": "fail_before",
                "kind": "denied",
                "times": -1
            }]))
            .expect("faults");

        let org_scan = stack
            .start_execution_on(
                &stack.organization_state_machine_arn,
                "org-scan",
                &json!({}),
            )
            .await
            .expect("start");
        let done = stack.wait_for(&org_scan, TIMEOUT).await.expect("ends");
        assert_eq!(done.status(), &ExecutionStatus::Succeeded, "{done:?}");
        stack
            .wait_all_of(&stack.scan_state_machine_arn, TIMEOUT)
            .await
            .expect("scans end");
        stack.wait_all(TIMEOUT).await.expect("rotations end");
        let summary = execution_output(&done).expect("output");

        // The summary: four accounts scanned, one of them unreachable, and what was left out.
        assert_eq!(summary["kind"], "organization");
        assert_eq!(summary["accounts"], 4, "{summary:#}");
        assert_eq!(summary["succeeded"], 3, "{summary:#}");
        assert_eq!(summary["unreachable"], json!([id("locked")]), "{summary:#}");
        assert_eq!(summary["failed"], json!([]), "{summary:#}");
        assert_eq!(summary["prunedOus"], json!([id("Sandbox")]), "{summary:#}");
        let skipped: BTreeMap<String, String> = summary["skipped"]
            .as_array()
            .expect("skipped")
            .iter()
            .map(|s| {
                (
                    s["id"].as_str().unwrap_or("").to_owned(),
                    s["reason"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect();
        assert_eq!(
            skipped,
            BTreeMap::from([
                (ACCOUNT_ID.to_owned(), "managementAccount".to_owned()),
                (id("opted-out"), "excludedByTag".to_owned()),
            ])
        );

        // One account scan per scanned account, named after it; the locked one failed as
        // unreachable, the others succeeded.
        let scans = stack
            .executions_of(&stack.scan_state_machine_arn)
            .await
            .expect("scans");
        let day = chrono::Utc::now().format("%Y%m%d").to_string();
        let mut by_name: BTreeMap<String, ExecutionStatus> = scans
            .iter()
            .map(|e| (e.name().to_owned(), e.status().clone()))
            .collect();
        for name in ["prod", "payments", "dev"] {
            let scan = format!("account-{}-{day}", id(name));
            assert_eq!(
                by_name.remove(&scan),
                Some(ExecutionStatus::Succeeded),
                "{scan}"
            );
        }
        let locked = format!("account-{}-{day}", id("locked"));
        assert_eq!(by_name.remove(&locked), Some(ExecutionStatus::Failed));
        assert!(
            by_name.is_empty(),
            "no other account was scanned: {by_name:?}"
        );
        let locked_arn = scans
            .iter()
            .find(|e| e.name() == locked)
            .map(|e| e.execution_arn().to_owned())
            .expect("locked scan");
        let locked_done = stack.wait_for(&locked_arn, TIMEOUT).await.expect("ended");
        assert_eq!(locked_done.error(), Some("AccountUnreachable"));

        // Isolation: each rotation happened in its own account, and each secret is there.
        for name in ["prod", "payments"] {
            let keys = keys(&members[name]).await;
            assert_eq!(
                keys.len(),
                1,
                "{name}: the old key deleted after the grace period: {keys:?}"
            );
            assert_ne!(keys[0].0, seeded_keys[name], "{name}: a new key");
            assert_eq!(keys[0].1, "Active");
            let secrets = members[name].secret_names().await.expect("secrets");
            assert_eq!(secrets.len(), 1, "{name}: {secrets:?}");
            let value = members[name]
                .secret_value(&secrets[0])
                .await
                .expect("value");
            assert_eq!(value["AccessKeyId"], keys[0].0.as_str(), "{name}");
        }
        // prod's new key is in its parameter, in prod; nowhere else.
        let prod_key = keys(&members["prod"]).await[0].0.clone();
        let held = members["prod"]
            .parameter_value(PARAMETER)
            .await
            .expect("ssm")
            .expect("delivered in prod");
        assert_eq!(held["AccessKeyId"], prod_key.as_str());
        for elsewhere in [&members["payments"], &stack.account] {
            assert_eq!(
                elsewhere.parameter_value(PARAMETER).await.expect("ssm"),
                None
            );
        }
        assert_eq!(
            stack
                .account
                .parameter_value("/keyrotor/own/deploy")
                .await
                .expect("ssm"),
            None,
            "no user of keyrotor's own account was rotated"
        );
        // Warned, unreachable, tagged out and in the excluded OU: the same key, no secret.
        for name in ["dev", "locked", "opted-out", "lab"] {
            let keys = keys(&members[name]).await;
            assert_eq!(
                keys,
                [(seeded_keys[name].clone(), "Active".to_owned())],
                "{name}"
            );
            assert!(
                members[name]
                    .secret_names()
                    .await
                    .expect("secrets")
                    .is_empty(),
                "{name}"
            );
        }
        // Nothing was rotated in keyrotor's own (the management) account.
        assert!(stack
            .account
            .secret_names()
            .await
            .expect("own secrets")
            .is_empty());

        // Per-user executions carry the account in their names: same user, two accounts.
        let rotations = stack.executions().await.expect("executions");
        for name in ["prod", "payments", "dev"] {
            assert!(
                rotations
                    .iter()
                    .any(|e| e.name().contains(&format!("-{}-{USER}-", id(name)))),
                "{name}: {:?}",
                rotations.iter().map(|e| e.name()).collect::<Vec<_>>()
            );
        }

        // Mails name the account; prod's admin notices would go to its tagged address; the
        // unreachable account is reported to the admin with the role and the StackSet hint.
        let mails = stack.moto.sent_emails().expect("mails");
        let scan_mails = |name: &str| about(&mails, &id(name));
        assert!(scan_mails("prod")
            .iter()
            .any(|m| m.to == ["prod-owner@example.com"]));
        assert!(scan_mails("payments")
            .iter()
            .any(|m| m.body.contains("payments")));
        assert!(scan_mails("dev")
            .iter()
            .any(|m| m.to == ["dev-owner@example.com"]));
        let unreachable = scan_mails("locked");
        assert_eq!(unreachable.len(), 1, "{unreachable:#?}");
        assert_eq!(unreachable[0].to, [ADMIN_ADDRESS]);
        let role = format!("arn:aws:iam::{}:role/keyrotor/list-users", id("locked"));
        assert!(
            unreachable[0].body.contains(&role) && unreachable[0].body.contains("StackSet"),
            "{}",
            unreachable[0].body
        );

        // Events say in which account.
        let events = stack.account.received_events().await.expect("events");
        let rotated = of_type(&events, "KeyRotated");
        let accounts: Vec<&str> = rotated
            .iter()
            .filter_map(|e| e["detail"]["account"].as_str())
            .collect();
        let mut expected = vec![org.id("prod"), org.id("payments")];
        expected.sort_unstable();
        let mut accounts = accounts;
        accounts.sort_unstable();
        assert_eq!(accounts, expected);

        // The operator's command: per account, and the whole organization.
        let keyrotor = |args: &[&str]| {
            let binary = keyrotor_localstack::workspace_root().join("target/debug/keyrotor");
            let out = stack
                .operator_command(&binary)
                .args(args)
                .output()
                .unwrap_or_else(|e| {
                    panic!("{} (make test builds it first): {e}", binary.display())
                });
            let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
            let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
            (out.status.code(), stdout, stderr)
        };
        let (code, out, err) = keyrotor(&["--account", &id("dev"), "report", "--output", "json"]);
        assert_eq!(code, Some(0), "{out}{err}");
        let report: serde_json::Value = serde_json::from_str(&out).expect("JSON");
        assert_eq!(report["keys"][0]["user"], USER, "{report:#}");
        assert_eq!(
            report["keys"][0]["keyId"],
            seeded_keys["dev"].as_str(),
            "dev's own key"
        );
        let (code, out, err) = keyrotor(&["report", "--organization", "--output", "json"]);
        assert_eq!(code, Some(3), "an account is unreachable: {out}{err}");
        let organization: serde_json::Value = serde_json::from_str(&out).expect("JSON");
        assert_eq!(organization["unreachableAccounts"], 1, "{organization:#}");
        // The one overdue key is the locked account's, which keyrotor could not reach (the
        // operator's reader role can: moto, unlike the proxy in front of the functions,
        // refuses nobody).
        assert_eq!(organization["overdueKeys"], 1, "{organization:#}");
        let locked_report = organization["accounts"]
            .as_array()
            .and_then(|a| a.iter().find(|a| a["id"] == id("locked").as_str()))
            .expect("locked account");
        assert_eq!(locked_report["overdueKeys"], 1, "{locked_report:#}");
        assert!(
            locked_report["unreachable"].is_string(),
            "{locked_report:#}"
        );
        let listed: Vec<&str> = organization["accounts"]
            .as_array()
            .expect("accounts")
            .iter()
            .filter_map(|a| a["id"].as_str())
            .collect();
        let mut scanned = vec![
            org.id("prod"),
            org.id("payments"),
            org.id("dev"),
            org.id("locked"),
        ];
        scanned.sort_unstable();
        assert_eq!(listed, scanned);
        let (code, out, err) = keyrotor(&["--account", &id("prod"), "status", "--output", "json"]);
        assert_eq!(code, Some(0), "{out}{err}");
        let status: serde_json::Value = serde_json::from_str(&out).expect("JSON");
        let rows = status["executions"].as_array().expect("executions");
        assert!(
            !rows.is_empty() && rows.iter().all(|r| r["account"] == id("prod").as_str()),
            "{status:#}"
        );
        let (code, out, err) =
            keyrotor(&["--account", &id("dev"), "rotate", USER, "--output", "json"]);
        assert_eq!(code, Some(0), "{out}{err}");
        let started: serde_json::Value = serde_json::from_str(&out).expect("JSON");
        let arn = started["executions"][0]["executionArn"]
            .as_str()
            .expect("ARN");
        assert!(
            arn.contains(&format!("adhoc-{}-{USER}-", id("dev"))),
            "{arn}"
        );
        let adhoc = stack.wait_for(arn, TIMEOUT).await.expect("ends");
        // A scan of one member account, by hand: its users only.
        let (code, out, err) = keyrotor(&[
            "--account",
            &id("payments"),
            "scan",
            "--dry-run",
            "--output",
            "json",
        ]);
        assert_eq!(code, Some(0), "{out}{err}");
        let scan: serde_json::Value = serde_json::from_str(&out).expect("JSON");
        let scan_arn = scan["executionArn"].as_str().expect("ARN");
        let scanned = stack.wait_for(scan_arn, TIMEOUT).await.expect("ends");
        let totals = execution_output(&scanned).expect("output");
        assert_eq!(
            totals["account"]["id"],
            id("payments").as_str(),
            "{totals:#}"
        );
        assert_eq!(
            totals["totals"]["seen"], 1,
            "payments has one user: {totals:#}"
        );
        assert_eq!(adhoc.status(), &ExecutionStatus::Succeeded, "{adhoc:?}");
        let assessed = execution_output(&adhoc).expect("output");
        assert_eq!(
            assessed["assessment"]["account"]["id"],
            id("dev").as_str(),
            "{assessed:#}"
        );

        // The calls of the organization's own functions, as the proxy counted them, are
        // those they declare (the listed mode's DescribeAccount aside).
        let stats = stack.proxy_stats().expect("stats");
        let called: std::collections::BTreeSet<&str> = stats["calls"]
            .as_object()
            .expect("calls")
            .keys()
            .map(String::as_str)
            .collect();
        let organizations: Vec<&str> = called
            .iter()
            .copied()
            .filter(|op| op.starts_with("organizations:"))
            .collect();
        // list-accounts' walk, and the scope check of list-users, assess-key-age and notify
        // (which also describes the account).
        let mut declared: Vec<&str> = list_accounts::AWS_ACTIONS
            .iter()
            .chain(keyrotor_aws::member::SCOPE_ACTIONS)
            .copied()
            .collect();
        declared.sort_unstable();
        declared.dedup();
        assert_eq!(organizations, declared);
        for action in scan_accounts::AWS_ACTIONS {
            assert!(called.contains(action), "{action}: {called:?}");
        }

        // The organization scan's history grows with its rounds, not with the users.
        let history = stack.history(&org_scan).await.expect("history");
        eprintln!(
            "organization scan: {} history events for 4 accounts",
            history.len()
        );
        assert!(history.len() < 400, "{}", history.len());

        // M5 and M6 of the second review, tried as an operator would: executions started by
        // hand for accounts the scan leaves out (an excluded OU, the exclusion tag), and one
        // for an account in scope, each with an admin address and a name of the starter's
        // own in its input.
        let forged = |account: &str, user: &str| {
            json!({
                "user": user,
                "account": {
                    "id": account,
                    "name": "see https://phish.example",
                    "adminAddress": "victim@elsewhere.example"
                }
            })
        };
        let mails_before = stack.moto.sent_emails().expect("mails").len();
        for (name, user) in [("lab", USER), ("opted-out", USER), ("prod", "ghost")] {
            let before = keys(&members[name]).await;
            let arn = stack
                .start_execution_on(
                    &stack.state_machine_arn,
                    &format!("by-hand-{name}"),
                    &forged(&id(name), user),
                )
                .await
                .expect("start");
            let done = stack.wait_for(&arn, TIMEOUT).await.expect("ends");
            assert_eq!(done.status(), &ExecutionStatus::Failed, "{name}: {done:?}");
            assert_eq!(
                keys(&members[name]).await,
                before,
                "{name}: nothing changed"
            );
        }
        let mails = stack.moto.sent_emails().expect("mails");
        let by_hand = &mails[mails_before..];
        for mail in by_hand {
            assert!(
                !mail.to.iter().any(|to| to.contains("victim"))
                    && !mail.body.contains("phish")
                    && !mail.subject.contains("phish"),
                "{mail:#?}"
            );
        }
        for (name, limit) in [
            ("lab", "KEYROTOR_EXCLUDE_OUS"),
            ("opted-out", "keyrotor:exclude=true"),
        ] {
            let mails = about(by_hand, &id(name));
            assert_eq!(mails.len(), 1, "{name}: {mails:#?}");
            assert_eq!(mails[0].to, [ADMIN_ADDRESS], "{name}");
            assert!(mails[0].body.contains(limit), "{name}: {}", mails[0].body);
        }
        // In scope (ghost is no user there): keyrotor's admin is told, and prod's own admin,
        // whose address only the organization's tag gives, gets a copy.
        let mut told: Vec<&str> = about(by_hand, &id("prod"))
            .into_iter()
            .flat_map(|m| m.to.iter().map(String::as_str))
            .collect();
        told.sort_unstable();
        assert_eq!(told, ["prod-sec@example.com", ADMIN_ADDRESS]);
    });
}
