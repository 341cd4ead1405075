//! `infra/template.yaml` deployed on the emulator and run as deployed (issue 27): the stack
//! made by `tools/deploy_local.py` (package, SAM transform, moto's CloudFormation), its
//! functions served by the Lambda gateway from their deployed packages, each with its
//! deployed environment and its own role's session (`tools/lambda_host.py`), and moto
//! checking every call made with a role session against that role's policies, by action
//! (`tools/moto_deployed.py`). Nothing of the hand-built [`crate::stack::LocalStack`] is
//! used but the emulator, the fault proxy (AWS Health's fake) and the gateway.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput;
use serde::Deserialize;

use crate::account::Account;
use crate::moto::{helper_command, python, spawn_with_port, MotoServer};
use crate::proxy::FaultProxy;
use crate::stack::{
    point_moto_at_gateway, start_execution, stop_gateway, wait_for_execution, ACCOUNT_ID, REGION,
};
use crate::workspace_root;

/// Runs `tools/deploy_local.py` on `template` against the emulator at `endpoint`: its output,
/// or (when the stack could not be made) its output and error.
pub fn deploy_template(
    endpoint: &str,
    template: &Path,
    stack: &str,
    account: &str,
    parameters: &[&str],
) -> Result<String, String> {
    let python = python().map_err(|e| format!("{e:#}"))?;
    let mut command = Command::new(python);
    command
        .current_dir(workspace_root())
        .arg(workspace_root().join("tools/deploy_local.py"))
        .args(["--endpoint", endpoint, "--stack-name", stack])
        .args(["--account", account])
        .arg("--template")
        .arg(template)
        // This machine's builds, which it can run (`make package`'s are for Lambda's).
        .args(["--host-build", "--role-actions"])
        .env("AWS_DEFAULT_REGION", REGION);
    for parameter in parameters {
        command.args(["--parameter", parameter]);
    }
    let out = command
        .output()
        .map_err(|e| format!("deploy_local.py: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if out.status.success() {
        Ok(stdout)
    } else {
        Err(format!("{stdout}{stderr}"))
    }
}

/// One decision moto's enforcement made on a role session's call.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Decision {
    pub role: String,
    pub action: String,
    pub allowed: bool,
}

/// A deployed stack, running. Dropping it stops everything it started.
pub struct DeployedStack {
    // Field order is drop order: the gateway (and with it the functions) first.
    gateway: Child,
    pub proxy: FaultProxy,
    pub moto: MotoServer,
    pub account: Account,
    /// The stack's name, every resource's prefix.
    pub name: String,
    /// Where the functions write their logs.
    pub functions_log: PathBuf,
}

impl DeployedStack {
    /// Deploys `infra/template.yaml` as `name` with `parameters` (`Key=Value`), serves its
    /// functions as deployed, and switches IAM enforcement of their sessions on.
    pub async fn deploy(name: &str, parameters: &[&str]) -> Result<Self> {
        Self::deploy_from(
            &workspace_root().join("infra/template.yaml"),
            name,
            parameters,
        )
        .await
    }

    /// [`DeployedStack::deploy`] of another template (a mutated one, next to the original).
    pub async fn deploy_from(template: &Path, name: &str, parameters: &[&str]) -> Result<Self> {
        let moto = MotoServer::start()?;
        moto.enable_state_machine_execution()?;
        let account = Account::new(&moto.sdk_config());
        // What the deployment's owner does before `sam deploy`: verify the sender in SES.
        if let Some(from) = parameters
            .iter()
            .find_map(|p| p.strip_prefix("FromAddress="))
        {
            account.verify_sender(from).await?;
        }
        deploy_template(&moto.endpoint(), template, name, ACCOUNT_ID, parameters)
            .map_err(|e| anyhow::anyhow!("deploying {name}: {e}"))?;
        let proxy = FaultProxy::start(moto.port())?;
        let log_dir = workspace_root().join("target/keyrotor-local");
        std::fs::create_dir_all(&log_dir)?;
        let functions_log = log_dir.join(format!("deployed-{name}-{}.log", moto.port()));
        let mut command = helper_command("lambda_gateway.py", "gateway")?;
        command
            .args(["--port", "0", "--deployed-stack", name])
            .args(["--aws-endpoint", &moto.endpoint()])
            .args(["--function-endpoint", &proxy.endpoint()])
            .args(["--account", ACCOUNT_ID, "--upstream-log"])
            .arg(&functions_log)
            .env("AWS_DEFAULT_REGION", REGION)
            .env_remove("AWS_PROFILE");
        let (gateway, port) = spawn_with_port(command, "the deployed functions' gateway")?;
        point_moto_at_gateway(&moto, port)?;
        let stack = DeployedStack {
            gateway,
            proxy,
            moto,
            account,
            name: name.to_owned(),
            functions_log,
        };
        stack.enforce(true)?;
        Ok(stack)
    }

    /// The ARN of the stack's state machine `machine` (its name without the stack's prefix).
    pub fn machine_arn(&self, machine: &str) -> String {
        format!(
            "arn:aws:states:{REGION}:{ACCOUNT_ID}:stateMachine:{}-{machine}",
            self.name
        )
    }

    /// Switches enforcement of role sessions on or off; either clears the decisions.
    pub fn enforce(&self, on: bool) -> Result<()> {
        let (status, body) =
            self.moto
                .request("POST", "/_keyrotor/enforce", &format!("{{\"on\": {on}}}"))?;
        if status != 200 {
            bail!("switching enforcement: {status} {body}");
        }
        Ok(())
    }

    /// Every decision enforcement made since it was switched on.
    pub fn decisions(&self) -> Result<Vec<Decision>> {
        let (status, body) = self.moto.request("GET", "/_keyrotor/enforce", "")?;
        if status != 200 {
            bail!("reading enforcement's decisions: {status} {body}");
        }
        let mut answer: serde_json::Value = serde_json::from_str(&body)?;
        serde_json::from_value(answer["decisions"].take()).context("decisions")
    }

    /// Starts an execution of the stack's `machine`; returns its ARN.
    pub async fn start(
        &self,
        machine: &str,
        name: &str,
        input: &serde_json::Value,
    ) -> Result<String> {
        start_execution(&self.account.sfn, &self.machine_arn(machine), name, input).await
    }

    /// Waits until the execution is no longer running.
    pub async fn wait_for(
        &self,
        execution_arn: &str,
        timeout: Duration,
    ) -> Result<DescribeExecutionOutput> {
        wait_for_execution(&self.account.sfn, execution_arn, timeout).await
    }

    /// The secret of every key CreateAccessKey gave the functions (the fault proxy saw
    /// them go by), for leak scans.
    pub fn issued_secrets(&self) -> Result<Vec<String>> {
        let mut stats = self.proxy.stats()?;
        serde_json::from_value(stats["issuedSecrets"].take()).context("issuedSecrets")
    }

    /// Everything the functions logged.
    pub fn functions_log(&self) -> String {
        std::fs::read_to_string(&self.functions_log).unwrap_or_default()
    }

    /// What the functions logged, for a failing test's message.
    pub fn functions_log_tail(&self, lines: usize) -> String {
        let text = self.functions_log();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for DeployedStack {
    fn drop(&mut self) {
        stop_gateway(&mut self.gateway);
    }
}
