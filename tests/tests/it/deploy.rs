//! The SAM templates deployed on the emulator, as `sam deploy` would deploy them
//! (`tools/deploy_local.py`: package, the SAM transform, moto's CloudFormation), and what
//! the stack made checked against the code: every function gets exactly the variables its
//! configuration reads, every function's deployed role (its policies read back from IAM)
//! allows every action the function declares, every state machine's definition has every
//! placeholder resolved to a deployed function, and the daily schedules are on or off as
//! `ScheduleEnabled` and `Accounts` say. Mutated templates (a variable dropped, an action
//! removed from a role, a substitution renamed) fail with the resource named.
//!
//! Then the pipeline runs through the deployed stack ([`DeployedStack`]): each function from
//! its deployed package with its deployed environment and its own role's session, every call
//! checked against that role by action (moto cannot evaluate Resource and Condition here;
//! the policy tests do).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Mutex;

use aws_config::SdkConfig;
use aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput;
use aws_sdk_sfn::types::ExecutionStatus;
use keyrotor_aws::FromConfig;
use keyrotor_core::config::Config;
use keyrotor_localstack::account::user_with_aged_key;
use keyrotor_localstack::deployed::{deploy_template, Decision, DeployedStack};
use keyrotor_localstack::moto::MotoServer;
use keyrotor_localstack::workspace_root;
use keyrotor_tests::events::{health_event_arn, health_exposure};
use serde_json::json;

const FROM: &str = "FromAddress=keyrotor@example.com";
const KEY_ADMIN: &str = "KeyAdminRole=deploy/keyrotor-deployer";
const ORG: &str = "o-abcdefghij";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Deploys `template` as `stack` with `parameters`; the tool's output, or its error.
fn deploy(
    moto: &MotoServer,
    template: &Path,
    stack: &str,
    account: &str,
    parameters: &[&str],
) -> Result<String, String> {
    deploy_template(&moto.endpoint(), template, stack, account, parameters)
}

/// What the test knows of one of keyrotor's functions, from its own crate.
struct Function {
    /// Its `AWS_ACTIONS`.
    actions: &'static [&'static str],
    /// Whether it holds member accounts to the organization's scope (`CHECKS_SCOPE`).
    checks_scope: bool,
    /// Its cold start (`Deps::from_config`) with a configuration.
    cold_start: fn(Config, &SdkConfig) -> Result<(), String>,
}

macro_rules! function {
    ($krate:ident) => {
        Function {
            actions: $krate::AWS_ACTIONS,
            checks_scope: <$krate::Deps as FromConfig>::CHECKS_SCOPE,
            cold_start: |config, sdk| {
                $krate::Deps::from_config(config, sdk)
                    .map(drop)
                    .map_err(|e| e.to_string())
            },
        }
    };
}

/// keyrotor's function of that name (as deployed, without the stack's prefix).
fn function(name: &str) -> Option<Function> {
    Some(match name {
        "list-users" => function!(list_users),
        "assess-key-age" => function!(assess_key_age),
        "start-rotations" => function!(start_rotations),
        "respond-to-exposure" => function!(respond_to_exposure),
        "create-key" => function!(create_key),
        "deactivate-key" => function!(deactivate_key),
        "notify" => function!(notify),
        "delete-key" => function!(delete_key),
        "deliver-key" => function!(deliver_key),
        "list-accounts" => function!(list_accounts),
        "scan-accounts" => function!(scan_accounts),
        _ => return None,
    })
}

/// The AWS actions `name` calls: its `AWS_ACTIONS` (`iam:GetGroup` only with an exempt group
/// configured, `secretsmanager:GetSecretValue` only with delivery's settings secrets), and
/// with many accounts the member role it assumes and the organization's scope it reads.
fn needed_actions(
    name: &str,
    many_accounts: bool,
    exempt_group: bool,
    delivery_secrets: bool,
) -> Option<BTreeSet<&'static str>> {
    let function = function(name)?;
    // STS GetCallerIdentity needs no permission (create-key makes it with the new key).
    let mut needed: BTreeSet<&str> = function
        .actions
        .iter()
        .copied()
        .filter(|a| *a != "sts:GetCallerIdentity")
        .filter(|a| exempt_group || *a != "iam:GetGroup")
        .filter(|a| delivery_secrets || *a != "secretsmanager:GetSecretValue")
        .collect();
    let member = [
        "list-users",
        "assess-key-age",
        "create-key",
        "deliver-key",
        "deactivate-key",
        "notify",
        "delete-key",
    ];
    if many_accounts && member.contains(&name) {
        needed.insert("sts:AssumeRole");
    }
    if many_accounts && function.checks_scope {
        needed.extend(keyrotor_aws::member::SCOPE_ACTIONS);
    }
    Some(needed)
}

/// The deployed roles' missing actions, from the `ROLE_ACTIONS` line of the tool's output.
fn missing_actions(
    stack: &str,
    output: &str,
    many_accounts: bool,
    exempt_group: bool,
    delivery_secrets: bool,
) -> Vec<String> {
    let Some(line) = output.lines().find_map(|l| l.strip_prefix("ROLE_ACTIONS ")) else {
        return vec![format!("{stack}: the deployment printed no ROLE_ACTIONS")];
    };
    let granted: BTreeMap<String, BTreeSet<String>> =
        serde_json::from_str(line).expect("ROLE_ACTIONS is JSON");
    let mut problems = Vec::new();
    for (function, actions) in &granted {
        let Some(needed) = needed_actions(function, many_accounts, exempt_group, delivery_secrets)
        else {
            problems.push(format!(
                "{stack}-{function}: not one of keyrotor's functions"
            ));
            continue;
        };
        let missing: Vec<&&str> = needed.iter().filter(|a| !actions.contains(**a)).collect();
        if !missing.is_empty() {
            problems.push(format!(
                "{stack}-{function}: its deployed role does not allow {missing:?}"
            ));
        }
    }
    problems
}

/// What is wrong with what `stack` made: a line per problem, each naming the resource.
async fn problems(sdk: &SdkConfig, stack: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let lambda = aws_sdk_lambda::Client::new(sdk);
    let mut functions = BTreeMap::new();
    let listed = lambda.list_functions().send().await.expect("ListFunctions");
    for f in listed.functions() {
        let name = f.function_name().unwrap_or_default();
        let Some(function) = name.strip_prefix(&format!("{stack}-")) else {
            continue;
        };
        let config = lambda
            .get_function_configuration()
            .function_name(name)
            .send()
            .await
            .expect("GetFunctionConfiguration");
        let env: BTreeMap<String, String> = config
            .environment()
            .and_then(|e| e.variables())
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .collect();
        functions.insert(
            function.to_owned(),
            f.function_arn().unwrap_or_default().to_owned(),
        );
        // Every variable the configuration reads is given; none it does not read is.
        let asked = Mutex::new(BTreeSet::new());
        let parsed = Config::from_lookup(|var| {
            asked.lock().expect("lock").insert(var.to_owned());
            env.get(var).cloned()
        });
        let asked = asked.into_inner().expect("lock");
        let unread: Vec<&String> = env
            .keys()
            .filter(|k| k.starts_with("KEYROTOR_") && !asked.contains(*k))
            .collect();
        if !unread.is_empty() {
            problems.push(format!("{name}: variables nothing reads: {unread:?}"));
        }
        match parsed {
            Err(e) => problems.push(format!("{name}: {e}")),
            Ok(config) => {
                if let Err(e) = cold_start(function, config) {
                    problems.push(format!("{name}: its cold start fails: {e}"));
                }
            }
        }
    }
    if functions.is_empty() {
        problems.push(format!("{stack}: no functions were deployed"));
    }

    let sfn = aws_sdk_sfn::Client::new(sdk);
    let machines = sfn
        .list_state_machines()
        .send()
        .await
        .expect("ListStateMachines");
    for machine in machines.state_machines() {
        if !machine.name().starts_with(&format!("{stack}-")) {
            continue;
        }
        let described = sfn
            .describe_state_machine()
            .state_machine_arn(machine.state_machine_arn())
            .send()
            .await
            .expect("DescribeStateMachine");
        let definition = described.definition();
        if let Some(at) = definition.find("${") {
            let end = definition[at..]
                .find('}')
                .map_or(definition.len(), |e| at + e + 1);
            problems.push(format!(
                "{}: placeholder {} left unresolved",
                machine.name(),
                &definition[at..end]
            ));
        }
        // CloudFormation leaves the context object's `$$` as written.
        if let Some(asl) = asl_of(machine.name()) {
            let context = |text: &str| text.matches("\"$$.").count();
            if context(definition) != context(&asl) {
                problems.push(format!(
                    "{}: {} of the ASL's {} context paths ($$.) survive",
                    machine.name(),
                    context(definition),
                    context(&asl)
                ));
            }
        }
        let parsed: serde_json::Value = match serde_json::from_str(definition) {
            Ok(v) => v,
            Err(e) => {
                problems.push(format!("{}: definition is not JSON: {e}", machine.name()));
                continue;
            }
        };
        let mut resources = Vec::new();
        collect_resources(&parsed, &mut resources);
        let deployed: BTreeSet<&String> = functions.values().collect();
        for resource in resources {
            let is_function = resource.contains(":lambda:") && resource.contains(":function:");
            if is_function && !deployed.contains(&resource) {
                problems.push(format!(
                    "{}: invokes {resource}, not a function of the stack",
                    machine.name()
                ));
            }
        }
    }
    problems
}

/// The ASL file the deployed state machine `name` (`<stack>-keyrotor-<machine>`) is made of.
fn asl_of(name: &str) -> Option<String> {
    let file = match name.rsplit_once("-keyrotor-")?.1 {
        "scan" => "scan.asl.json",
        "rotate" | "respond" => "rotate-user.asl.json",
        "organization" => "organization.asl.json",
        _ => return None,
    };
    std::fs::read_to_string(workspace_root().join("statemachine").join(file)).ok()
}

/// Every Task's `Resource` and `Parameters.FunctionName` in a definition.
fn collect_resources(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("Resource" | "FunctionName", serde_json::Value::String(s)) => {
                        out.push(s.clone());
                    }
                    _ => collect_resources(v, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| collect_resources(v, out)),
        _ => {}
    }
}

/// The function's own cold start (its `Deps::from_config`) with the deployed configuration.
fn cold_start(name: &str, config: Config) -> Result<(), String> {
    let function =
        function(name).ok_or_else(|| format!("{name} is not one of keyrotor's functions"))?;
    (function.cold_start)(config, &keyrotor_aws::testing::unreachable_sdk_config())
}

/// The daily schedules' rules of `stack`: name to state.
async fn schedules(sdk: &SdkConfig, stack: &str) -> BTreeMap<String, String> {
    let events = aws_sdk_eventbridge::Client::new(sdk);
    let rules = events
        .list_rules()
        .name_prefix(format!("{stack}-"))
        .send()
        .await
        .expect("ListRules");
    rules
        .rules()
        .iter()
        .filter(|r| r.schedule_expression().is_some())
        .map(|r| {
            (
                r.name()
                    .unwrap_or_default()
                    .trim_start_matches(&format!("{stack}-"))
                    .to_owned(),
                r.state().map(|s| s.as_str().to_owned()).unwrap_or_default(),
            )
        })
        .collect()
}

/// A deployment: its stack name, `Accounts`, `ScheduleEnabled`, and the states its daily
/// schedules must have.
type Case = (
    &'static str,
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);

const DESTINATIONS: &str = r#"Destinations={"ci":[{"type":"ssm","parameter":"/keyrotor/ci/aws"},{"type":"github","repository":"acme/deploy"},{"type":"webhook","url":"https://hooks.example.com/keyrotor"}]}"#;
const GITHUB_TOKEN: &str =
    "GitHubTokenSecretArn=arn:aws:secretsmanager:us-east-1:123456789012:secret:keyrotor/github-AbCdEf";
const WEBHOOK_KEY: &str =
    "WebhookKeySecretArn=arn:aws:secretsmanager:us-east-1:123456789012:secret:keyrotor/webhook-AbCdEf";

#[test]
fn the_templates_deploy_and_give_each_function_what_its_configuration_reads() {
    let moto = MotoServer::start().expect("moto");
    let sdk = moto.sdk_config();
    let template = workspace_root().join("infra/template.yaml");
    runtime().block_on(async {
        let cases: [Case; 4] = [
            (
                "own-on",
                "self",
                "true",
                &[("keyrotor-daily-scan", "ENABLED")],
            ),
            (
                "own-off",
                "self",
                "false",
                &[("keyrotor-daily-scan", "DISABLED")],
            ),
            (
                "org-on",
                "organization",
                "true",
                &[
                    ("keyrotor-daily-organization-scan", "ENABLED"),
                    ("keyrotor-daily-scan", "DISABLED"),
                ],
            ),
            (
                "org-off",
                "organization",
                "false",
                &[
                    ("keyrotor-daily-organization-scan", "DISABLED"),
                    ("keyrotor-daily-scan", "DISABLED"),
                ],
            ),
        ];
        for (stack, accounts, schedule, expected) in cases {
            let accounts = format!("Accounts={accounts}");
            let schedule = format!("ScheduleEnabled={schedule}");
            let organization = format!("OrganizationId={ORG}");
            let many = stack.starts_with("org");
            let mut parameters = vec![FROM, KEY_ADMIN, accounts.as_str(), schedule.as_str()];
            if many {
                // And an exempt group, whose reads the roles then grant, and destinations
                // with their settings secrets, which deliver-key's configuration then checks.
                parameters.extend([
                    organization.as_str(),
                    "ExemptGroup=break-glass",
                    DESTINATIONS,
                    GITHUB_TOKEN,
                    WEBHOOK_KEY,
                ]);
            }
            let out = deploy(&moto, &template, stack, "123456789012", &parameters)
                .unwrap_or_else(|e| panic!("{stack}: {e}"));
            assert!(out.contains("STACK "), "{out}");
            let mut found = problems(&sdk, stack).await;
            found.extend(missing_actions(stack, &out, many, many, many));
            assert!(found.is_empty(), "{stack}: {found:#?}");
            let expected: BTreeMap<String, String> = expected
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            assert_eq!(schedules(&sdk, stack).await, expected, "{stack}");
        }

        // The member accounts' template, as a plain stack in a member account.
        let member = workspace_root().join("infra/member-account.yaml");
        let out = deploy(
            &moto,
            &member,
            "keyrotor-member",
            "222222222222",
            &[
                "ToolingAccountId=123456789012",
                &format!("OrganizationId={ORG}"),
                "HubStackName=org-on",
            ],
        )
        .unwrap_or_else(|e| panic!("member stack: {e}"));
        assert!(out.contains("STACK "), "{out}");
    });
}

#[test]
fn a_role_missing_an_action_fails_the_deployed_pipeline_naming_both() {
    runtime().block_on(async {
        let path = mutated(
            "Action: [iam:UpdateAccessKey, iam:GetAccessKeyLastUsed]",
            "Action: [iam:GetAccessKeyLastUsed]",
            "run-no-update-access-key",
        );
        let deployed = DeployedStack::deploy_from(&path, "short", &LIVE).await;
        let _ = std::fs::remove_file(&path);
        let stack = deployed.expect("deployed");
        let key = user_with_aged_key(
            &stack.moto,
            &stack.account,
            "erin",
            &[("Email", "erin@example.com")],
            3,
        )
        .await
        .expect("seeded");
        let forced = stack
            .start(
                "keyrotor-respond",
                "erin-now",
                &json!({"user": "erin", "force": true}),
            )
            .await
            .expect("starts");
        let done = stack.wait_for(&forced, TIMEOUT).await.expect("ends");
        assert_ne!(
            done.status(),
            &ExecutionStatus::Succeeded,
            "without the action"
        );
        let role = role_of(&stack, "deactivate-key").await;
        let decisions = stack.decisions().expect("decisions");
        assert!(
            decisions
                .iter()
                .any(|d| !d.allowed && d.role == role && d.action == "iam:UpdateAccessKey"),
            "the refusal names {role} and iam:UpdateAccessKey: {decisions:#?}"
        );
        assert!(
            stack.functions_log().contains("iam:UpdateAccessKey"),
            "the function's error names the action"
        );
        // The old key still works: it was never deactivated, whatever became of the new one.
        let keys = stack.account.keys("erin").await.expect("keys");
        assert!(
            keys.contains(&(key.id.clone(), "Active".to_owned())),
            "erin's key is untouched: {keys:?}"
        );
    });
}

/// A template with `from` replaced by `to` (exactly once), written under target/.
fn mutated(from: &str, to: &str, name: &str) -> std::path::PathBuf {
    let text = std::fs::read_to_string(workspace_root().join("infra/template.yaml"))
        .expect("the template");
    assert_eq!(
        text.matches(from).count(),
        1,
        "{from:?} is in the template once"
    );
    let dir = workspace_root().join("infra");
    // Next to the original, so that CodeUri and DefinitionUri resolve the same way.
    let path = dir.join(format!(".mutated-{name}-{}.yaml", std::process::id()));
    std::fs::write(&path, text.replacen(from, to, 1)).expect("written");
    path
}

#[test]
fn a_mutated_template_fails_with_the_resource_named() {
    let moto = MotoServer::start().expect("moto");
    let sdk = moto.sdk_config();
    runtime().block_on(async {
        let mutations = [
            (
                "        KEYROTOR_FROM_ADDRESS: !Ref FromAddress\n",
                "",
                "no-sender",
                ("notify", "KEYROTOR_FROM_ADDRESS"),
            ),
            (
                "Action: [iam:UpdateAccessKey, iam:GetAccessKeyLastUsed]",
                "Action: [iam:GetAccessKeyLastUsed]",
                "no-update-access-key",
                ("deactivate-key", "iam:UpdateAccessKey"),
            ),
            (
                "keyrotor-rotate\n      Type: STANDARD\n      DefinitionUri: ../statemachine/rotate-user.asl.json\n      DefinitionSubstitutions:\n        AssessKeyAgeFunctionArn: !GetAtt AssessKeyAgeFunction.Arn\n        CreateKeyFunctionArn:",
                "keyrotor-rotate\n      Type: STANDARD\n      DefinitionUri: ../statemachine/rotate-user.asl.json\n      DefinitionSubstitutions:\n        AssessKeyAgeFunctionArn: !GetAtt AssessKeyAgeFunction.Arn\n        CreateKeyFunctionArm:",
                "renamed-substitution",
                ("keyrotor-rotate", "${CreateKeyFunctionArn}"),
            ),
        ];
        for (from, to, name, (resource, detail)) in mutations {
            let path = mutated(from, to, name);
            let stack = format!("mut-{name}");
            let result = deploy(&moto, &path, &stack, "123456789012", &[FROM, KEY_ADMIN]);
            let _ = std::fs::remove_file(&path);
            let found = match result {
                Err(e) => vec![e],
                Ok(out) => {
                    let mut found = problems(&sdk, &stack).await;
                    found.extend(missing_actions(&stack, &out, false, false, false));
                    found
                }
            };
            assert!(
                found
                    .iter()
                    .any(|p| p.contains(resource) && p.contains(detail)),
                "{name}: a failure names {resource} and {detail}: {found:#?}"
            );
        }
    });
}

/// The parameters of the stack the pipeline runs on: live (not a dry run), a deletion two
/// seconds after deactivation, no overlap window and no retirement (the seeded keys were
/// never used), so a rotation runs to deletion in seconds.
const LIVE: [&str; 7] = [
    FROM,
    KEY_ADMIN,
    "DryRun=false",
    "DeletionDelaySeconds=2",
    "OverlapSeconds=0",
    "UnusedDays=0",
    "WarnDays=none",
];

const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// The execution ended well; otherwise the failure with the functions' last log lines.
fn succeeded(stack: &DeployedStack, what: &str, done: &DescribeExecutionOutput) {
    assert_eq!(
        done.status(),
        &ExecutionStatus::Succeeded,
        "{what}: {:?} {:?}\n{}",
        done.error(),
        done.cause(),
        stack.functions_log_tail(40)
    );
}

/// Waits for every execution of the stack's `machine` and checks each succeeded; their
/// outputs.
async fn all_succeed(stack: &DeployedStack, machine: &str) -> Vec<serde_json::Value> {
    let listed = stack
        .account
        .sfn
        .list_executions()
        .state_machine_arn(stack.machine_arn(machine))
        .send()
        .await
        .expect("ListExecutions");
    let mut outputs = Vec::new();
    for execution in listed.executions() {
        let done = stack
            .wait_for(execution.execution_arn(), TIMEOUT)
            .await
            .expect("ends");
        succeeded(stack, execution.name(), &done);
        outputs.push(serde_json::from_str(done.output().unwrap_or("null")).expect("JSON output"));
    }
    outputs
}

/// The user's only key is a new one, active; `old` is gone.
async fn rotated(stack: &DeployedStack, user: &str, old: &str) {
    let keys = stack.account.keys(user).await.expect("keys");
    assert_eq!(keys.len(), 1, "{user}: {keys:?}");
    assert_ne!(keys[0].0, old, "{user}: the old key is deleted");
    assert_eq!(keys[0].1, "Active", "{user}: {keys:?}");
    let secret = stack.account.secret_of(user).await.expect("name");
    let stored = stack.account.secret_value(&secret).await.expect("stored");
    assert_eq!(stored["AccessKeyId"], keys[0].0.as_str(), "{user}");
}

/// The role the stack's `function` was deployed with.
async fn role_of(stack: &DeployedStack, function: &str) -> String {
    let config = aws_sdk_lambda::Client::new(&stack.moto.sdk_config())
        .get_function_configuration()
        .function_name(format!("{}-{function}", stack.name))
        .send()
        .await
        .expect("GetFunctionConfiguration");
    config.role().unwrap_or_default().to_owned()
}

#[test]
fn the_deployed_stack_runs_the_pipeline_under_its_own_roles() {
    runtime().block_on(async {
        let stack = DeployedStack::deploy("live", &LIVE)
            .await
            .expect("deployed");
        let moto = &stack.moto;
        let account = &stack.account;
        let email = |user: &str| format!("{user}@example.com");
        let mut old = BTreeMap::new();
        for (user, age) in [("alice", 100), ("bob", 10), ("carol", 3), ("dave", 3)] {
            let key = user_with_aged_key(moto, account, user, &[("Email", &email(user))], age)
                .await
                .expect("seeded");
            old.insert(user, key.id);
        }

        // The scan, as the deployed schedule starts it: its rule's target and input.
        let rule = format!("{}-keyrotor-daily-scan", stack.name);
        let targets = account
            .events
            .list_targets_by_rule()
            .rule(&rule)
            .send()
            .await
            .expect("ListTargetsByRule");
        let target = targets
            .targets()
            .first()
            .expect("the schedule has a target");
        assert_eq!(target.arn(), stack.machine_arn("keyrotor-scan"), "{rule}");
        let scan = account
            .sfn
            .start_execution()
            .state_machine_arn(target.arn())
            .name("scheduled")
            .input(target.input().unwrap_or("{}"))
            .send()
            .await
            .expect("the scan starts");
        let done = stack
            .wait_for(scan.execution_arn(), TIMEOUT)
            .await
            .expect("ends");
        succeeded(&stack, "the scan", &done);
        let outputs = all_succeed(&stack, "keyrotor-rotate").await;
        assert!(
            outputs.iter().any(|o| o["assessment"]["user"] == "alice"
                && o["deleted"]["outcome"] == "deleted"),
            "alice was rotated through deletion: {outputs:#?}"
        );
        rotated(&stack, "alice", &old["alice"]).await;
        let mails = moto.sent_emails().expect("mails");
        assert!(
            mails.iter().any(|m| m.to == [email("alice")]),
            "alice was told: {mails:#?} {outputs:#?}"
        );
        let bob = account.keys("bob").await.expect("keys");
        assert_eq!(
            bob,
            vec![(old["bob"].clone(), "Active".to_owned())],
            "bob's key is young"
        );

        // A responder forcing a rotation of a young key, on the responder machine.
        let forced = stack
            .start(
                "keyrotor-respond",
                "carol-now",
                &json!({"user": "carol", "force": true}),
            )
            .await
            .expect("starts");
        let done = stack.wait_for(&forced, TIMEOUT).await.expect("ends");
        succeeded(&stack, "the forced rotation", &done);
        rotated(&stack, "carol", &old["carol"]).await;

        // AWS Health's report of dave's exposed key, through the deployed rule.
        let reported = chrono::Utc::now();
        stack
            .proxy
            .record_health(json!({ health_event_arn(&old["dave"]): {
                "eventTypeCode": "AWS_RISK_CREDENTIALS_EXPOSED",
                "startTime": reported.timestamp(),
                "exposedUrl": "https://github.com/example/leak",
                "entities": [old["dave"]],
            }}))
            .expect("AWS Health's record");
        let event = health_exposure(&old["dave"], reported, "https://github.com/example/leak");
        let put = account
            .events
            .put_events()
            .entries(
                aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                    .source("aws.health")
                    .detail_type("AWS Health Event")
                    .resources(old["dave"].clone())
                    .detail(event["detail"].to_string())
                    .build(),
            )
            .send()
            .await
            .expect("PutEvents");
        assert_eq!(put.failed_entry_count(), 0, "{put:?}");
        let deadline = std::time::Instant::now() + TIMEOUT;
        loop {
            let listed = account
                .sfn
                .list_executions()
                .state_machine_arn(stack.machine_arn("keyrotor-respond"))
                .send()
                .await
                .expect("ListExecutions");
            let exposed = format!("exposed-{}-", old["dave"]);
            if listed
                .executions()
                .iter()
                .any(|e| e.name().starts_with(&exposed))
            {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the report started no rotation\n{}",
                stack.functions_log_tail(40)
            );
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        }
        let responses = all_succeed(&stack, "keyrotor-respond").await;
        rotated(&stack, "dave", &old["dave"]).await;

        // No new key's secret in the functions' logs or the executions' outputs.
        let secrets = stack.issued_secrets().expect("issued secrets");
        assert_eq!(secrets.len(), 3, "alice, carol and dave got new keys");
        let log = stack.functions_log();
        let outputs = format!("{outputs:?}{responses:?}");
        for secret in &secrets {
            assert!(
                !log.contains(secret.as_str()),
                "a secret in the functions' log"
            );
            assert!(!outputs.contains(secret.as_str()), "a secret in an output");
        }

        // Every call of a function was made with its own role's session, and allowed.
        let decisions = stack.decisions().expect("decisions");
        let denied: Vec<&Decision> = decisions.iter().filter(|d| !d.allowed).collect();
        assert!(
            denied.is_empty(),
            "calls the deployed roles refused: {denied:#?}"
        );
        for (function, action) in [
            ("list-users", "iam:ListUsers"),
            ("assess-key-age", "iam:ListAccessKeys"),
            ("start-rotations", "states:StartExecution"),
            ("create-key", "iam:CreateAccessKey"),
            ("create-key", "secretsmanager:PutSecretValue"),
            ("deactivate-key", "iam:UpdateAccessKey"),
            ("notify", "ses:SendEmail"),
            ("delete-key", "iam:DeleteAccessKey"),
            ("respond-to-exposure", "states:StartExecution"),
        ] {
            let role = role_of(&stack, function).await;
            assert!(
                decisions
                    .iter()
                    .any(|d| d.role == role && d.action == action),
                "{function} called {action} with its role {role}: {decisions:#?}"
            );
        }

        // And enforcement refuses: list-users' role may not make a key.
        let role = role_of(&stack, "list-users").await;
        let session = aws_sdk_sts::Client::new(&moto.sdk_config())
            .assume_role()
            .role_arn(&role)
            .role_session_name("probe")
            .send()
            .await
            .expect("AssumeRole");
        let credentials = session.credentials().expect("credentials");
        let as_list_users = moto
            .sdk_config()
            .into_builder()
            .credentials_provider(
                aws_credential_types::provider::SharedCredentialsProvider::new(
                    aws_credential_types::Credentials::new(
                        credentials.access_key_id(),
                        credentials.secret_access_key(),
                        Some(credentials.session_token().to_owned()),
                        None,
                        "list-users-role",
                    ),
                ),
            )
            .build();
        let refused = aws_sdk_iam::Client::new(&as_list_users)
            .create_access_key()
            .user_name("bob")
            .send()
            .await;
        let message = format!(
            "{:?}",
            refused.expect_err("list-users' role cannot make keys")
        );
        assert!(message.contains("AccessDenied"), "{message}");
        assert_eq!(account.keys("bob").await.expect("keys").len(), 1);
    });
}
