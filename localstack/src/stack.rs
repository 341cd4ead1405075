//! The whole local stack: moto (IAM, STS, Secrets Manager, SES, and Step Functions really
//! executing the ASL), `cargo lambda watch` serving the real function binaries, the thin
//! Lambda gateway between them, and the two state machines created from
//! `statemachine/scan.asl.json` and `statemachine/rotate-user.asl.json`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput;
use aws_sdk_sfn::types::ExecutionStatus;

use crate::account::Account;
use crate::moto::{helper_command, http, spawn_with_port, MotoServer};
use crate::proxy::FaultProxy;
use crate::workspace_root;

pub const REGION: &str = "us-east-1";
pub const ACCOUNT_ID: &str = "123456789012";
pub const FROM_ADDRESS: &str = "keyrotor@example.com";
pub const ADMIN_ADDRESS: &str = "security@example.com";
/// The exemption group the functions are configured with by default.
pub const EXEMPT_GROUP: &str = "break-glass";
/// keyrotor's KMS key for the users' secrets, as the template passes it (moto's Secrets
/// Manager records the key without calling KMS).
pub const KMS_KEY_ID: &str =
    "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-4000-8000-00000000c0de";
/// keyrotor's own roles, the only principals its secrets' policies let change them.
pub const TRUSTED_ROLE_ARNS: &str = "arn:aws:iam::123456789012:role/keyrotor-create-key,arn:aws:iam::123456789012:role/keyrotor-deactivate-key";

/// The settings every local function and operator shell shares, beyond the defaults.
pub fn local_settings() -> Vec<(String, String)> {
    [
        ("KEYROTOR_EXEMPT_GROUP", EXEMPT_GROUP),
        ("KEYROTOR_KMS_KEY_ID", KMS_KEY_ID),
        ("KEYROTOR_TRUSTED_ROLE_ARNS", TRUSTED_ROLE_ARNS),
        // No overlap window by default: most suites test a rotation from start to deletion
        // in seconds. The window's tests and the demo give theirs (WINDOW_SETTINGS).
        ("KEYROTOR_OVERLAP_SECONDS", "0"),
        ("KEYROTOR_CUTOVER_POLL_SECONDS", "1"),
        ("KEYROTOR_CUTOVER_SETTLE_SECONDS", "2"),
        // No retirement by default: the suites' seeded keys were never used, and are to be
        // rotated. The retirement's tests and the demo switch it on.
        ("KEYROTOR_UNUSED_DAYS", "0"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// Each function's ASL placeholder and package name (the placeholders of the machines).
pub const FUNCTIONS: [(&str, &str); 10] = [
    ("ListUsersFunctionArn", "list-users"),
    ("AssessKeyAgeFunctionArn", "assess-key-age"),
    ("CreateKeyFunctionArn", "create-key"),
    ("DeactivateKeyFunctionArn", "deactivate-key"),
    ("NotifyFunctionArn", "notify"),
    ("DeleteKeyFunctionArn", "delete-key"),
    ("DeliverKeyFunctionArn", "deliver-key"),
    ("StartRotationsFunctionArn", "start-rotations"),
    ("ListAccountsFunctionArn", "list-accounts"),
    ("ScanAccountsFunctionArn", "scan-accounts"),
];

/// The functions only the organization machine calls. They refuse to start in the `self`
/// mode (the default here), so whatever warms every function up leaves them out.
pub const ORGANIZATION_FUNCTIONS: [&str; 2] = ["list-accounts", "scan-accounts"];

/// How long the organization machine waits between rounds locally (60 s deployed).
pub const LOCAL_ACCOUNT_POLL_SECONDS: u64 = 1;

/// keyrotor's state machine definitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Machine {
    /// The paged scan of one account, which the schedule starts (or, for each member
    /// account, the organization scan): `statemachine/scan.asl.json`.
    Scan,
    /// One user: warn, rotate, wait, delete: `statemachine/rotate-user.asl.json`.
    RotateUser,
    /// Many accounts: one account scan per account of the organization, a few at a time:
    /// `statemachine/organization.asl.json`.
    Organization,
}

impl Machine {
    pub const ALL: [Machine; 3] = [Machine::Scan, Machine::RotateUser, Machine::Organization];

    /// The definition's file name under `statemachine/`.
    pub fn file_name(self) -> &'static str {
        match self {
            Machine::Scan => "scan.asl.json",
            Machine::RotateUser => "rotate-user.asl.json",
            Machine::Organization => "organization.asl.json",
        }
    }

    pub fn asl_path(self) -> PathBuf {
        workspace_root().join("statemachine").join(self.file_name())
    }

    /// The definition with the local value of each of its placeholders.
    pub fn local_definition(self, allow_force: bool) -> Result<String> {
        let asl = std::fs::read_to_string(self.asl_path())?;
        substitute(&asl, &local_substitutions(allow_force))
    }
}

/// The local value of every placeholder of either machine: function ARNs in the emulated
/// account, and whether the per-user machine accepts forced rotations (locally one machine
/// serves operator and responder alike). The deletion delay reaches the Wait through
/// `deactivate-key`'s `deleteAfter`, not through a placeholder.
pub fn local_substitutions(allow_force: bool) -> BTreeMap<String, String> {
    let mut subs: BTreeMap<String, String> = FUNCTIONS
        .iter()
        .map(|(placeholder, name)| {
            (
                (*placeholder).to_owned(),
                format!("arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{name}"),
            )
        })
        .collect();
    subs.insert("AllowForce".into(), allow_force.to_string());
    subs.insert(
        "AccountPollSeconds".into(),
        LOCAL_ACCOUNT_POLL_SECONDS.to_string(),
    );
    subs
}

/// Replaces every `${Name}` in `definition`; a placeholder without a value is an error.
pub fn substitute(definition: &str, subs: &BTreeMap<String, String>) -> Result<String> {
    let mut out = String::with_capacity(definition.len());
    let mut rest = definition;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..]
            .find('}')
            .context("unterminated placeholder")?
            + start;
        let name = &rest[start + 2..end];
        let value = subs
            .get(name)
            .with_context(|| format!("no value for placeholder ${{{name}}}"))?;
        out.push_str(value);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// How to configure the stack.
#[derive(Debug, Clone)]
pub struct StackOptions {
    /// The per-user (rotate-user) machine's name.
    pub state_machine_name: String,
    /// The scan machine's name.
    pub scan_state_machine_name: String,
    /// The organization machine's name.
    pub organization_state_machine_name: String,
    /// The functions' `KEYROTOR_DELETION_DELAY_SECONDS` (the Wait before deletion waits
    /// until the deletion time `deactivate-key` gives).
    pub deletion_delay_secs: u64,
    /// The state machine's `${AllowForce}`: whether it starts forced rotations.
    pub allow_force: bool,
    /// More `KEYROTOR_*` settings for the functions.
    pub function_env: Vec<(String, String)>,
    /// Where `cargo lambda watch` writes the functions' logs.
    pub log_dir: PathBuf,
    /// Serve the functions built with this cargo profile (`cargo lambda watch --profile`;
    /// build them first with `cargo build --profile P`) instead of debug builds.
    pub cargo_profile: Option<&'static str>,
}

impl Default for StackOptions {
    fn default() -> Self {
        StackOptions {
            state_machine_name: "keyrotor-rotate".into(),
            scan_state_machine_name: "keyrotor-scan".into(),
            organization_state_machine_name: "keyrotor-organization".into(),
            deletion_delay_secs: 3,
            allow_force: true,
            function_env: local_settings(),
            log_dir: workspace_root().join("target/keyrotor-local"),
            cargo_profile: None,
        }
    }
}

/// An execution's output as JSON (`null` when it has none, as a failed one).
pub fn execution_output(done: &DescribeExecutionOutput) -> Result<serde_json::Value> {
    Ok(serde_json::from_str(done.output().unwrap_or("null"))?)
}

/// A running local stack. Dropping it stops everything it started.
pub struct LocalStack {
    // Field order is drop order: the gateway (and with it cargo lambda watch) first.
    gateway: Child,
    gateway_port: u16,
    pub proxy: FaultProxy,
    pub moto: MotoServer,
    pub account: Account,
    /// The per-user machine: what the scan starts, and where ad hoc rotations run.
    pub state_machine_arn: String,
    /// The scan machine (the schedule's).
    pub scan_state_machine_arn: String,
    /// The organization machine (the schedule's in the organization mode).
    pub organization_state_machine_arn: String,
    pub functions_log: PathBuf,
    /// The functions' `KEYROTOR_*` settings, which an operator's shell shares (as one
    /// configured for the deployment would).
    settings: Vec<(String, String)>,
}

impl LocalStack {
    pub async fn start(options: StackOptions) -> Result<Self> {
        let moto = MotoServer::start()?;
        moto.enable_state_machine_execution()?;
        let state_machine_arn = machine_arn(&options.state_machine_name);
        let scan_state_machine_arn = machine_arn(&options.scan_state_machine_name);
        let organization_state_machine_arn = machine_arn(&options.organization_state_machine_name);
        std::fs::create_dir_all(&options.log_dir)?;
        let functions_log = options
            .log_dir
            .join(format!("functions-{}.log", moto.port()));
        // The functions reach moto through the fault proxy, which also counts their calls.
        let proxy = FaultProxy::start(moto.port())?;
        let (gateway, gateway_port) = start_gateway(
            &proxy.endpoint(),
            &options,
            [&state_machine_arn, &scan_state_machine_arn],
            &functions_log,
        )?;
        point_moto_at_gateway(&moto, gateway_port)?;
        let account = Account::new(&moto.sdk_config());
        let stack = LocalStack {
            gateway,
            gateway_port,
            proxy,
            moto,
            account,
            state_machine_arn,
            scan_state_machine_arn,
            organization_state_machine_arn,
            functions_log,
            settings: options.function_env.clone(),
        };
        stack.prepare_account(&options).await?;
        Ok(stack)
    }

    /// After a reset: the verified sender, the rule that routes keyrotor's events to a
    /// queue, and the state machines again.
    pub async fn prepare_account(&self, options: &StackOptions) -> Result<()> {
        self.account.verify_sender(FROM_ADDRESS).await?;
        self.account.route_events_to_queue().await?;
        for (machine, name, arn) in [
            (
                Machine::RotateUser,
                &options.state_machine_name,
                &self.state_machine_arn,
            ),
            (
                Machine::Scan,
                &options.scan_state_machine_name,
                &self.scan_state_machine_arn,
            ),
            (
                Machine::Organization,
                &options.organization_state_machine_name,
                &self.organization_state_machine_arn,
            ),
        ] {
            let definition = machine.local_definition(options.allow_force)?;
            let out = self
                .account
                .sfn
                .create_state_machine()
                .name(name)
                .definition(definition)
                .role_arn(format!(
                    "arn:aws:iam::{ACCOUNT_ID}:role/keyrotor-state-machine"
                ))
                .send()
                .await
                .with_context(|| format!("creating state machine {name} from the ASL"))?;
            if out.state_machine_arn() != arn {
                bail!(
                    "state machine ARN {} is not the expected {arn}",
                    out.state_machine_arn()
                );
            }
        }
        Ok(())
    }

    /// Starts a scan (an execution of the scan machine); returns its ARN.
    pub async fn start_scan(&self, name: &str, input: &serde_json::Value) -> Result<String> {
        self.start_execution_on(&self.scan_state_machine_arn, name, input)
            .await
    }

    /// Starts a scan and waits until it has ended.
    pub async fn run_scan(
        &self,
        name: &str,
        input: &serde_json::Value,
        timeout: Duration,
    ) -> Result<DescribeExecutionOutput> {
        let arn = self.start_scan(name, input).await?;
        self.wait_for(&arn, timeout).await
    }

    /// Starts a per-user execution; returns its ARN.
    pub async fn start_execution(&self, name: &str, input: &serde_json::Value) -> Result<String> {
        self.start_execution_on(&self.state_machine_arn, name, input)
            .await
    }

    /// Starts an execution of `state_machine` (another machine made from the ASL).
    pub async fn start_execution_on(
        &self,
        state_machine: &str,
        name: &str,
        input: &serde_json::Value,
    ) -> Result<String> {
        start_execution(&self.account.sfn, state_machine, name, input).await
    }

    /// Starts a per-user execution and waits until it has ended.
    pub async fn run(
        &self,
        name: &str,
        input: &serde_json::Value,
        timeout: Duration,
    ) -> Result<DescribeExecutionOutput> {
        let arn = self.start_execution(name, input).await?;
        self.wait_for(&arn, timeout).await
    }

    /// Waits until the execution is no longer running.
    pub async fn wait_for(
        &self,
        execution_arn: &str,
        timeout: Duration,
    ) -> Result<DescribeExecutionOutput> {
        wait_for_execution(&self.account.sfn, execution_arn, timeout).await
    }

    /// Every per-user execution, newest first.
    pub async fn executions(&self) -> Result<Vec<aws_sdk_sfn::types::ExecutionListItem>> {
        self.executions_of(&self.state_machine_arn).await
    }

    /// Every execution of both machines: scans, then per-user executions.
    pub async fn all_executions(&self) -> Result<Vec<aws_sdk_sfn::types::ExecutionListItem>> {
        let mut all = self.executions_of(&self.scan_state_machine_arn).await?;
        all.extend(self.executions().await?);
        Ok(all)
    }

    /// Every execution of `state_machine`, newest first, all pages.
    pub async fn executions_of(
        &self,
        state_machine: &str,
    ) -> Result<Vec<aws_sdk_sfn::types::ExecutionListItem>> {
        Ok(self
            .account
            .sfn
            .list_executions()
            .state_machine_arn(state_machine)
            .max_results(1000)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await?)
    }

    /// Waits until no per-user execution is running.
    pub async fn wait_all(&self, timeout: Duration) -> Result<()> {
        self.wait_all_of(&self.state_machine_arn, timeout).await
    }

    /// Waits until no execution of `state_machine` is running.
    pub async fn wait_all_of(&self, state_machine: &str, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let running = self
                .executions_of(state_machine)
                .await?
                .iter()
                .filter(|e| e.status() == &ExecutionStatus::Running)
                .count();
            if running == 0 {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("{running} executions still running after {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// The execution's full history as JSON text (for counting and leak scans).
    pub async fn history(&self, execution_arn: &str) -> Result<Vec<serde_json::Value>> {
        let mut events = Vec::new();
        let mut token = None;
        loop {
            let out = self
                .account
                .sfn
                .get_execution_history()
                .execution_arn(execution_arn)
                .set_next_token(token.take())
                .max_results(1000)
                .send()
                .await?;
            for e in out.events() {
                events.push(event_json(e));
            }
            match out.next_token() {
                Some(t) => token = Some(t.to_owned()),
                None => return Ok(events),
            }
        }
    }

    /// A `keyrotor` command (the operator's CLI at `binary`) pointed at this stack, as an
    /// operator's shell would be: endpoint, region, credentials, and the same policy
    /// settings as the functions.
    pub fn operator_command(&self, binary: &std::path::Path) -> Command {
        let mut command = Command::new(binary);
        command
            .env("AWS_ENDPOINT_URL", self.moto.endpoint())
            .env("AWS_REGION", REGION)
            .env("AWS_ACCESS_KEY_ID", "AKIAKEYROTOROPERATOR")
            .env("AWS_SECRET_ACCESS_KEY", "operator-secret")
            .envs(self.settings.iter().cloned())
            .env_remove("KEYROTOR_STATE_MACHINE_ARN")
            .env_remove("KEYROTOR_SCAN_STATE_MACHINE_ARN")
            .env_remove("KEYROTOR_ORGANIZATION_STATE_MACHINE_ARN")
            .env_remove("AWS_PROFILE");
        command
    }

    /// Records AWS Health's own events for the fake Health API ([`FaultProxy::record_health`]).
    pub fn record_health(&self, events: serde_json::Value) -> Result<()> {
        self.proxy.record_health(events)
    }

    /// Replaces the fault proxy's rules (see `tools/fault_proxy.py`); `[]` removes all.
    pub fn set_faults(&self, rules: serde_json::Value) -> Result<()> {
        self.proxy.set_faults(rules)
    }

    /// How long the functions' log is now: where [`LocalStack::metrics_since`] starts.
    pub fn functions_log_len(&self) -> u64 {
        std::fs::metadata(&self.functions_log).map_or(0, |m| m.len())
    }

    /// The metric lines (CloudWatch embedded metric format) the functions wrote to their log
    /// after `offset`, as CloudWatch would read them.
    pub fn metrics_since(&self, offset: u64) -> Result<Vec<keyrotor_core::metrics::Parsed>> {
        let log = std::fs::read(&self.functions_log)
            .with_context(|| format!("reading {}", self.functions_log.display()))?;
        let start = usize::try_from(offset).unwrap_or(usize::MAX).min(log.len());
        Ok(String::from_utf8_lossy(&log[start..])
            .lines()
            .filter_map(keyrotor_core::metrics::parse_line)
            .collect())
    }

    /// The functions' AWS calls per operation, and the faults injected, since the last reset.
    pub fn proxy_stats(&self) -> Result<serde_json::Value> {
        self.proxy.stats()
    }

    /// Clears the fault proxy's rules and counts.
    pub fn reset_proxy(&self) -> Result<()> {
        self.proxy.reset()
    }

    /// Restarts the functions with `options`' settings (their environment; the state
    /// machine stays as it is).
    pub fn restart_functions(&mut self, options: &StackOptions) -> Result<()> {
        self.stop_gateway();
        let (gateway, port) = start_gateway(
            &self.proxy.endpoint(),
            options,
            [&self.state_machine_arn, &self.scan_state_machine_arn],
            &self.functions_log,
        )?;
        self.gateway = gateway;
        self.gateway_port = port;
        point_moto_at_gateway(&self.moto, port)
    }

    /// Invokes `function` through the gateway, as the state machine would; returns the
    /// HTTP status and the body (a function error carries its `errorType`).
    pub fn invoke(&self, function: &str, payload: &serde_json::Value) -> Result<(u16, String)> {
        http(
            self.gateway_port,
            "POST",
            &format!("/2015-03-31/functions/{function}/invocations"),
            &payload.to_string(),
        )
    }

    fn stop_gateway(&mut self) {
        stop_gateway(&mut self.gateway);
    }

    /// Invocations per function so far, as the gateway counted them.
    pub fn invocations(&self) -> Result<BTreeMap<String, u64>> {
        let (_, body) = http(self.gateway_port, "GET", "/_gateway/stats", "")?;
        let v: serde_json::Value = serde_json::from_str(&body)?;
        Ok(serde_json::from_value(v["invocations"].clone())?)
    }
}

/// Starts an execution named `name` of `state_machine`; returns its ARN.
pub(crate) async fn start_execution(
    sfn: &aws_sdk_sfn::Client,
    state_machine: &str,
    name: &str,
    input: &serde_json::Value,
) -> Result<String> {
    let out = sfn
        .start_execution()
        .state_machine_arn(state_machine)
        .name(name)
        .input(input.to_string())
        .send()
        .await
        .with_context(|| format!("starting execution {name} of {state_machine}"))?;
    Ok(out.execution_arn().to_owned())
}

/// Waits until the execution is no longer running.
pub async fn wait_for_execution(
    sfn: &aws_sdk_sfn::Client,
    execution_arn: &str,
    timeout: Duration,
) -> Result<DescribeExecutionOutput> {
    let deadline = Instant::now() + timeout;
    loop {
        let out = sfn
            .describe_execution()
            .execution_arn(execution_arn)
            .send()
            .await?;
        if out.status() != &ExecutionStatus::Running {
            return Ok(out);
        }
        if Instant::now() > deadline {
            bail!("execution {execution_arn} still running after {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Stops the Lambda gateway; SIGTERM lets it stop what it serves (cargo lambda watch's
/// process group, or a deployed stack's function processes) first.
pub(crate) fn stop_gateway(gateway: &mut Child) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(gateway.id().to_string())
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = gateway.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = gateway.kill();
    let _ = gateway.wait();
}

fn machine_arn(name: &str) -> String {
    format!("arn:aws:states:{REGION}:{ACCOUNT_ID}:stateMachine:{name}")
}

/// The history event as JSON: type, time (seconds), the state it enters or leaves, and
/// every input/output/error/cause text it carries.
fn event_json(e: &aws_sdk_sfn::types::HistoryEvent) -> serde_json::Value {
    let state = e
        .state_entered_event_details()
        .map(|d| d.name())
        .or_else(|| e.state_exited_event_details().map(|d| d.name()));
    serde_json::json!({
        "id": e.id(),
        "type": e.r#type().as_str(),
        "at": e.timestamp().as_secs_f64(),
        "state": state,
        "detail": format!("{e:?}"),
    })
}

/// The functions' environment in the local stack: the AWS endpoint (the fault proxy),
/// region, credentials, the per-user and scan machines, and the `KEYROTOR_*` settings of
/// `options`.
pub fn function_environment(
    endpoint: &str,
    options: &StackOptions,
    [state_machine_arn, scan_state_machine_arn]: [&str; 2],
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = [
        ("AWS_ENDPOINT_URL", endpoint),
        ("AWS_REGION", REGION),
        ("AWS_ACCESS_KEY_ID", "AKIAKEYROTORLOCAL000"),
        ("AWS_SECRET_ACCESS_KEY", "keyrotor-local-function-secret"),
        ("KEYROTOR_FROM_ADDRESS", FROM_ADDRESS),
        ("KEYROTOR_ADMIN_ADDRESS", ADMIN_ADDRESS),
        ("KEYROTOR_STATE_MACHINE_ARN", state_machine_arn),
        ("KEYROTOR_SCAN_STATE_MACHINE_ARN", scan_state_machine_arn),
        // moto knows every key at once; a short budget keeps failing-STS scenarios quick.
        ("KEYROTOR_VERIFY_TIMEOUT_SECONDS", "3"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    env.push((
        "KEYROTOR_DELETION_DELAY_SECONDS".into(),
        options.deletion_delay_secs.to_string(),
    ));
    env.extend(options.function_env.iter().cloned());
    env
}

fn start_gateway(
    endpoint: &str,
    options: &StackOptions,
    machines: [&str; 2],
    log: &PathBuf,
) -> Result<(Child, u16)> {
    let root = workspace_root();
    let cargo_lambda = root.join(".venv/bin/cargo-lambda");
    if !cargo_lambda.exists() {
        bail!("{} is missing; run `make venv`", cargo_lambda.display());
    }
    let mut command = helper_command("lambda_gateway.py", "gateway")?;
    command
        .args(["--port", "0", "--upstream-log"])
        .arg(log)
        .arg("--")
        .arg(&cargo_lambda)
        .args([
            "lambda",
            "watch",
            "--ignore-changes",
            "--quiet",
            "--concurrency",
            "4",
        ])
        .args(["-A", "127.0.0.1", "-P", "{port}"])
        .args(options.cargo_profile.iter().flat_map(|p| ["--profile", p]))
        .env_remove("AWS_PROFILE")
        .envs(function_environment(endpoint, options, machines));
    spawn_with_port(command, "the Lambda gateway")
}

impl Drop for LocalStack {
    fn drop(&mut self) {
        self.stop_gateway();
    }
}

/// Tells moto's Step Functions to invoke Lambda at the gateway.
pub(crate) fn point_moto_at_gateway(moto: &MotoServer, gateway_port: u16) -> Result<()> {
    let (status, body) = moto.request(
        "POST",
        "/_keyrotor/lambda-port",
        &format!("{{\"port\": {gateway_port}}}"),
    )?;
    if status != 200 {
        bail!("could not point moto at the Lambda gateway: {status} {body}");
    }
    Ok(())
}

static RUNTIME: std::sync::LazyLock<tokio::runtime::Runtime> = std::sync::LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("tokio runtime: {e}"))
});
static SHARED: std::sync::OnceLock<LocalStack> = std::sync::OnceLock::new();
static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs `test` on the test binary's one local stack (started on first use with
/// `options`), after resetting the account. Tests take turns; the stack lives as long as
/// the test process and its helpers exit with it.
pub fn on_shared_stack<F, Fut>(options: fn() -> StackOptions, test: F)
where
    F: FnOnce(&'static LocalStack) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let _turn = TURN.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    RUNTIME.block_on(async {
        let stack = match SHARED.get() {
            Some(stack) => {
                stack
                    .moto
                    .reset()
                    .unwrap_or_else(|e| panic!("reset: {e:#}"));
                stack
                    .moto
                    .set_clock_offset(0)
                    .unwrap_or_else(|e| panic!("clock: {e:#}"));
                stack
                    .prepare_account(&options())
                    .await
                    .unwrap_or_else(|e| panic!("prepare: {e:#}"));
                stack
            }
            None => {
                let stack = LocalStack::start(options())
                    .await
                    .unwrap_or_else(|e| panic!("local stack: {e:#}"));
                SHARED.get_or_init(|| stack)
            }
        };
        test(stack).await;
    });
}
