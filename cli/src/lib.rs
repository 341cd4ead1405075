//! The `keyrotor` command: start scans and ad hoc rotations, follow them, see their status,
//! rerun or redrive them, and report on every key straight from IAM. Built on the standard
//! AWS configuration (profile, region, `AWS_ENDPOINT_URL`), so the same commands work against
//! a real account and the local stack.

mod follow;
mod html;
mod report;
mod status;
mod window;

use std::io::IsTerminal;

use anyhow::{anyhow, bail, Context, Result};
use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_sfn::Client as Sfn;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use clap::{Parser, Subcommand, ValueEnum};
use keyrotor_core::accounts::AccountId;
use keyrotor_core::payload::{KeyId, Text, UserName};
use keyrotor_core::ports::UsersPort;
use serde_json::{json, Value};

/// Exit code of `report` when a key that is not exempt is past the rotation age.
pub const EXIT_NON_COMPLIANT: i32 = 3;
/// Exit code of any failure.
pub const EXIT_ERROR: i32 = 1;

#[derive(Debug, Parser)]
#[command(
    name = "keyrotor",
    version,
    about = "Start, follow, rerun and audit keyrotor's IAM access key rotations.",
    long_about = "Start, follow, rerun and audit keyrotor's IAM access key rotations.\n\n\
        Uses the standard AWS configuration: AWS_PROFILE, AWS_REGION, credentials, and \
        AWS_ENDPOINT_URL (the local stack sets this). keyrotor has two state machines, found \
        by flag, variable, or the one state machine in the account whose name ends so: the \
        scan (--scan-state-machine, KEYROTOR_SCAN_STATE_MACHINE_ARN, \"keyrotor-scan\") and \
        the per-user rotation (--state-machine, KEYROTOR_STATE_MACHINE_ARN, \
        \"keyrotor-rotate\"). Forced rotations start on the responder state machine, a \
        per-user machine that accepts them: --responder-state-machine, \
        KEYROTOR_RESPONDER_STATE_MACHINE_ARN, or the one whose name ends in \"keyrotor-respond\"."
)]
pub struct Cli {
    /// ARN of keyrotor's per-user state machine, where rotations run (default: discovered
    /// by name).
    #[arg(
        long,
        global = true,
        env = "KEYROTOR_STATE_MACHINE_ARN",
        value_name = "ARN"
    )]
    pub state_machine: Option<String>,
    /// ARN of keyrotor's scan state machine, the one the schedule starts (default:
    /// discovered by name).
    #[arg(
        long,
        global = true,
        env = "KEYROTOR_SCAN_STATE_MACHINE_ARN",
        value_name = "ARN"
    )]
    pub scan_state_machine: Option<String>,
    /// ARN of the responder state machine, the one that accepts forced rotations (default:
    /// discovered by name; without one, forced rotations start on the main machine).
    #[arg(
        long,
        global = true,
        env = "KEYROTOR_RESPONDER_STATE_MACHINE_ARN",
        value_name = "ARN"
    )]
    pub responder_state_machine: Option<String>,
    /// ARN of the organization scan's state machine, when keyrotor runs for many accounts
    /// (default: discovered by name).
    #[arg(
        long,
        global = true,
        env = "KEYROTOR_ORGANIZATION_STATE_MACHINE_ARN",
        value_name = "ARN"
    )]
    pub organization_state_machine: Option<String>,
    /// Output for people (aligned text, colour on a terminal) or scripts (JSON).
    #[arg(long, global = true, value_enum, default_value_t = Output::Text)]
    pub output: Output,
    /// The member account to act on, when keyrotor runs for many accounts: `scan` and
    /// `rotate` start executions there, `status` shows only its executions, `report` reads it
    /// through its read-only role `keyrotor/report`.
    #[arg(long, global = true, value_name = "ACCOUNT_ID", value_parser = parse_account)]
    pub account: Option<AccountId>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Table,
    Json,
    Csv,
    /// One self-contained page for auditors: the age chart, the non-compliant keys first,
    /// the policy, when and where it was made.
    Html,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start a scan of every user now, as the daily schedule would.
    Scan {
        /// Report what would be done; change nothing, send nothing.
        #[arg(long)]
        dry_run: bool,
        /// Follow the scan and the per-user executions it starts until they finish.
        #[arg(long)]
        wait: bool,
    },
    /// Start a per-user execution for each USER now, or (with --key) a forced rotation of
    /// one leaked access key, whoever owns it.
    Rotate {
        /// IAM user names.
        #[arg(required_unless_present = "key", value_name = "USER")]
        users: Vec<String>,
        /// Rotate exactly this access key (a leak): the execution finds its owner, replaces
        /// it, and leaves the user's other key alone. Requires --force.
        #[arg(
            long,
            value_name = "ACCESS_KEY_ID",
            requires = "force",
            conflicts_with = "users"
        )]
        key: Option<String>,
        /// Rotate whatever the key's age, exemption or an owner's rollback (never beyond two
        /// keys). Starts on the responder state machine, which only responders may start.
        #[arg(long)]
        force: bool,
        /// Why the rotation is forced: said in the mails to the owner and the admin.
        #[arg(long, value_name = "TEXT", requires = "force")]
        reason: Option<String>,
        /// Report what would be done; change nothing, send nothing.
        #[arg(long)]
        dry_run: bool,
        /// Follow the executions until they finish (a rotation waits out the deletion delay).
        #[arg(long)]
        wait: bool,
    },
    /// Recent executions: per user, the stage reached, with the execution ARN.
    Status {
        /// Only executions for this user.
        #[arg(long, value_name = "USER")]
        user: Option<String>,
        /// How many days back to look.
        #[arg(long, default_value_t = 7, value_name = "DAYS", value_parser = clap::value_parser!(u32).range(1..=90))]
        since: u32,
    },
    /// End USER's overlap window now: their programs have moved to the new key, so the old
    /// key is deactivated at the watching execution's next look. Tags the user
    /// `keyrotor:cutover=<new key>`, as the owner may themselves.
    Cutover {
        #[arg(value_name = "USER")]
        user: String,
    },
    /// Give USER's overlap window more time, once: the old key stays active DAYS longer
    /// (1 to 7) at the most. Tags the user `keyrotor:extend=<new key>:<days>`.
    Extend {
        #[arg(value_name = "USER")]
        user: String,
        #[arg(long, default_value_t = 7, value_name = "DAYS", value_parser = clap::value_parser!(u32).range(1..=7))]
        days: u32,
    },
    /// Start a new execution with the same input as execution ARN.
    Rerun {
        #[arg(value_name = "ARN")]
        arn: String,
        /// Follow the new execution until it finishes.
        #[arg(long)]
        wait: bool,
    },
    /// Redrive a failed execution from the step that failed (Step Functions redrive).
    Redrive {
        #[arg(value_name = "ARN")]
        arn: String,
    },
    /// Every user's keys straight from IAM (read-only): status, age, last use, what the
    /// policy does next and when. Exits 3 when a key that is not exempt is past the
    /// rotation age, so it can gate a compliance check.
    Report {
        /// A table for people, JSON or CSV for tools (`--output json` implies json), or one
        /// HTML page for auditors (`> keys.html`).
        #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
        format: ReportFormat,
        /// Every account the latest organization scan covered, each through its
        /// `keyrotor/report` role: one line per account. Exits 3 also when an account is
        /// unreachable.
        #[arg(long, conflicts_with = "account")]
        organization: bool,
    },
}

fn parse_account(value: &str) -> Result<AccountId, String> {
    value.parse()
}

/// The command's context: SDK configuration and how to print.
pub struct Ctx {
    /// `--account`: the member account the command acts on.
    account: Option<AccountId>,
    pub sdk: SdkConfig,
    pub sfn: Sfn,
    pub output: Output,
    pub colour: bool,
    state_machine: Option<String>,
    scan_state_machine: Option<String>,
    responder_state_machine: Option<String>,
    organization_state_machine: Option<String>,
    /// Who the credentials are (STS GetCallerIdentity); `None` skips the lookup (tests).
    sts: Option<aws_sdk_sts::Client>,
    /// What the command acts on, once known: said on stderr, and a field of JSON output.
    target: std::sync::Mutex<Option<Target>>,
}

/// Where a command acts: the account, region and state machine, and as whom.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    pub account: Option<String>,
    pub region: Option<String>,
    /// The state machines it starts, follows or reads (status reads two).
    pub state_machines: Vec<String>,
    /// The caller's ARN (for an SSO sign-in, the `AWSReservedSSO_…` role session).
    pub identity: Option<String>,
    /// The member account the command acts in (`--account`), through keyrotor's account.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub member_account: Option<String>,
}

impl Target {
    /// One line for people: `account 123456789012, region eu-west-1, state machine ARN
    /// (as ARN)`.
    pub fn describe(&self) -> String {
        let mut parts = vec![
            format!("account {}", self.account.as_deref().unwrap_or("unknown")),
            format!("region {}", self.region.as_deref().unwrap_or("unknown")),
        ];
        match self.state_machines.as_slice() {
            [] => {}
            [one] => parts.push(format!("state machine {one}")),
            many => parts.push(format!("state machines {}", many.join(" and "))),
        }
        if let Some(member) = &self.member_account {
            parts.push(format!("member account {member}"));
        }
        let mut line = parts.join(", ");
        if let Some(identity) = &self.identity {
            line.push_str(&format!(" (as {identity})"));
        }
        line
    }
}

/// The account of an ARN (its fifth part), if it names one.
fn arn_account(arn: &str) -> Option<&str> {
    arn.split(':')
        .nth(4)
        .filter(|a| a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()))
}

/// How each of keyrotor's state machines is found when no ARN is given: the one machine
/// whose name ends in its suffix (the template names them `<stack>-keyrotor-…`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MachineKind {
    Scan,
    Rotate,
    Respond,
    Organization,
}

impl MachineKind {
    fn suffix(self) -> &'static str {
        match self {
            MachineKind::Scan => "keyrotor-scan",
            MachineKind::Rotate => "keyrotor-rotate",
            MachineKind::Respond => "keyrotor-respond",
            MachineKind::Organization => "keyrotor-organization",
        }
    }

    fn flag(self) -> &'static str {
        match self {
            MachineKind::Scan => "--scan-state-machine ARN or set KEYROTOR_SCAN_STATE_MACHINE_ARN",
            MachineKind::Rotate => "--state-machine ARN or set KEYROTOR_STATE_MACHINE_ARN",
            MachineKind::Respond => {
                "--responder-state-machine ARN or set KEYROTOR_RESPONDER_STATE_MACHINE_ARN"
            }
            MachineKind::Organization => {
                "--organization-state-machine ARN or set KEYROTOR_ORGANIZATION_STATE_MACHINE_ARN"
            }
        }
    }
}

impl Ctx {
    pub fn new(
        sdk: SdkConfig,
        output: Output,
        colour: bool,
        state_machine: Option<String>,
    ) -> Self {
        Ctx {
            sfn: Sfn::new(&sdk),
            sts: Some(aws_sdk_sts::Client::new(&sdk)),
            sdk,
            output,
            colour,
            state_machine,
            scan_state_machine: None,
            responder_state_machine: None,
            organization_state_machine: None,
            target: std::sync::Mutex::new(None),
            account: None,
        }
    }

    /// The same context acting on a member account (`--account`).
    pub fn with_account(mut self, account: Option<AccountId>) -> Self {
        self.account = account;
        self
    }

    /// The member account the command acts on (`--account`), if any.
    pub fn account(&self) -> Option<&AccountId> {
        self.account.as_ref()
    }

    /// The same context without the caller-identity lookup (tests with mocked clients).
    pub fn without_identity(mut self) -> Self {
        self.sts = None;
        self
    }

    /// Says where the command acts: the account (the caller's, else the state machine's),
    /// the region and `state_machines`, and as whom. On stderr for people; JSON output
    /// carries it as `context`. A caller that cannot be identified is no error here: the
    /// command's own calls then fail with the reason.
    pub async fn acting_on<'a>(&self, state_machines: impl IntoIterator<Item = &'a str>) {
        let state_machines: Vec<&str> = state_machines.into_iter().collect();
        let identity = match &self.sts {
            Some(sts) => sts.get_caller_identity().send().await.ok(),
            None => None,
        };
        let target = Target {
            account: identity
                .as_ref()
                .and_then(|i| i.account().map(str::to_owned))
                .or_else(|| {
                    state_machines
                        .iter()
                        .find_map(|m| arn_account(m))
                        .map(str::to_owned)
                }),
            region: self.sdk.region().map(ToString::to_string),
            state_machines: state_machines.iter().map(|m| (*m).to_owned()).collect(),
            identity: identity.and_then(|i| i.arn().map(str::to_owned)),
            member_account: self.account.as_ref().map(ToString::to_string),
        };
        if self.output == Output::Text {
            eprintln!("keyrotor: {}", target.describe());
        }
        *self.target.lock().unwrap_or_else(|p| p.into_inner()) = Some(target);
    }

    /// What the command acts on (`None` before [`Ctx::acting_on`]).
    pub fn target(&self) -> Option<Target> {
        self.target
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// What the command acts on, as JSON (`null` before [`Ctx::acting_on`]).
    pub fn target_json(&self) -> Value {
        serde_json::to_value(self.target()).unwrap_or(Value::Null)
    }

    /// The same context with the scan machine given (`--scan-state-machine`).
    pub fn with_scan(mut self, arn: Option<String>) -> Self {
        self.scan_state_machine = arn;
        self
    }

    /// The same context with the responder machine given (`--responder-state-machine`).
    pub fn with_responder(mut self, arn: Option<String>) -> Self {
        self.responder_state_machine = arn;
        self
    }

    /// The same context with the organization machine given (`--organization-state-machine`).
    pub fn with_organization(mut self, arn: Option<String>) -> Self {
        self.organization_state_machine = arn;
        self
    }

    /// The organization scan's machine: as given, or the single one whose name ends in
    /// `keyrotor-organization`.
    pub async fn organization_state_machine(&self) -> Result<String> {
        self.machine(
            MachineKind::Organization,
            self.organization_state_machine.as_deref(),
        )
        .await?
        .ok_or_else(|| no_machine(MachineKind::Organization))
    }

    /// The same context with another Step Functions client (tests).
    pub fn with_sfn(mut self, sfn: Sfn) -> Self {
        self.sfn = sfn;
        self
    }

    /// The per-user state machine, where rotations run: as given, or the single one whose
    /// name ends in `keyrotor-rotate`.
    pub async fn state_machine(&self) -> Result<String> {
        self.machine(MachineKind::Rotate, self.state_machine.as_deref())
            .await?
            .ok_or_else(|| no_machine(MachineKind::Rotate))
    }

    /// The scan state machine: as given, or the single one whose name ends in
    /// `keyrotor-scan`.
    pub async fn scan_state_machine(&self) -> Result<String> {
        self.machine(MachineKind::Scan, self.scan_state_machine.as_deref())
            .await?
            .ok_or_else(|| no_machine(MachineKind::Scan))
    }

    /// The responder state machine, which accepts forced rotations: as given, or the single
    /// one whose name ends in `keyrotor-respond`; `None` if there is none.
    pub async fn responder_state_machine(&self) -> Result<Option<String>> {
        self.machine(
            MachineKind::Respond,
            self.responder_state_machine.as_deref(),
        )
        .await
    }

    /// The machine of `kind`: `given`, checked, or the single one named so; `None` if there
    /// is none.
    async fn machine(&self, kind: MachineKind, given: Option<&str>) -> Result<Option<String>> {
        if let Some(arn) = given {
            return checked_arn(arn).map(Some);
        }
        let found = self
            .machines_named(|name| name.ends_with(kind.suffix()))
            .await?;
        match found.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(one.clone())),
            many => bail!(
                "several state machines are named like keyrotor's {} ({}): pass {}",
                kind.suffix(),
                many.join(", "),
                kind.flag()
            ),
        }
    }

    /// ARNs of the account's state machines whose lower-cased name passes `wanted`.
    async fn machines_named(&self, wanted: impl Fn(&str) -> bool) -> Result<Vec<String>> {
        let mut found = Vec::new();
        let mut token = None;
        loop {
            let out = self
                .sfn
                .list_state_machines()
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| aws_error("listing state machines", e))?;
            found.extend(
                out.state_machines()
                    .iter()
                    .filter(|m| wanted(&m.name().to_ascii_lowercase()))
                    .map(|m| m.state_machine_arn().to_owned()),
            );
            match out.next_token() {
                Some(t) => token = Some(t.to_owned()),
                None => return Ok(found),
            }
        }
    }

    pub fn paint(&self, text: &str, colour: Colour) -> String {
        if self.colour {
            format!("\x1b[{}m{text}\x1b[0m", colour as u8)
        } else {
            text.to_owned()
        }
    }

    /// Prints `value` as JSON (for `--output json`), or `text` for people. JSON output is
    /// always an object with the `context` the command acts in: an object gains the field,
    /// a list becomes `{"context", "executions"}`.
    pub fn emit(&self, value: &Value, text: impl FnOnce() -> String) {
        match self.output {
            Output::Json => println!(
                "{}",
                serde_json::to_string_pretty(&self.in_context(value.clone())).unwrap_or_default()
            ),
            Output::Text => print!("{}", text()),
        }
    }

    /// An execution's input, naming the member account of `--account` if given.
    pub fn in_account(&self, mut input: Value) -> Value {
        if let Some(account) = &self.account {
            input["account"] = json!({ "id": account });
        }
        input
    }

    /// `value` with the command's `context` (see [`Ctx::emit`]).
    pub fn in_context(&self, value: Value) -> Value {
        match value {
            Value::Object(mut map) => {
                map.insert("context".into(), self.target_json());
                Value::Object(map)
            }
            other => json!({"context": self.target_json(), "executions": other}),
        }
    }
}

fn no_machine(kind: MachineKind) -> anyhow::Error {
    anyhow!(
        "no state machine named like keyrotor's {} found: pass {}",
        kind.suffix(),
        kind.flag()
    )
}

#[derive(Debug, Clone, Copy)]
#[repr(u8)]
pub enum Colour {
    Red = 31,
    Green = 32,
    Yellow = 33,
    Dim = 2,
}

/// Runs a parsed command; returns the process exit code.
pub async fn run(cli: Cli) -> Result<i32> {
    let sdk = aws_config::load_defaults(BehaviorVersion::latest()).await;
    if sdk.region().is_none() {
        bail!("no AWS region configured: set AWS_REGION or a profile with a region");
    }
    let colour = cli.output == Output::Text
        && std::io::stdout().is_terminal()
        && std::env::var_os("NO_COLOR").is_none();
    let ctx = Ctx::new(sdk, cli.output, colour, cli.state_machine)
        .with_scan(cli.scan_state_machine)
        .with_responder(cli.responder_state_machine)
        .with_organization(cli.organization_state_machine)
        .with_account(cli.account);
    match cli.command {
        Command::Scan { dry_run, wait } => scan(&ctx, dry_run, wait).await,
        Command::Rotate {
            users,
            key,
            force,
            reason,
            dry_run,
            wait,
        } => {
            let reason = reason
                .map(|r| Text::try_from(r).map_err(|e| anyhow!("--reason: {e}")))
                .transpose()?;
            let request = RotateRequest {
                force,
                reason,
                dry_run,
                wait,
            };
            match key {
                Some(key) => rotate_key(&ctx, &key, request).await,
                None => rotate(&ctx, &users, request).await,
            }
        }
        Command::Status { user, since } => status::status(&ctx, user.as_deref(), since).await,
        Command::Cutover { user } => window::request(&ctx, &user, window::Request::Cutover).await,
        Command::Extend { user, days } => {
            window::request(&ctx, &user, window::Request::Extend(days)).await
        }
        Command::Rerun { arn, wait } => rerun(&ctx, &arn, wait).await,
        Command::Redrive { arn } => redrive(&ctx, &arn).await,
        Command::Report {
            format,
            organization,
        } => {
            let format = if ctx.output == Output::Json {
                ReportFormat::Json
            } else {
                format
            };
            if organization {
                report::organization(&ctx).await
            } else {
                report::report(&ctx, format).await
            }
        }
    }
}

fn stamp() -> String {
    chrono::Utc::now().format("%Y%m%dT%H%M%S").to_string()
}

/// Only the characters Step Functions allows in names.
fn safe(s: &str, max: usize) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(max)
        .collect()
}

async fn start(ctx: &Ctx, machine: &str, name: &str, input: &Value) -> Result<String> {
    let out = ctx
        .sfn
        .start_execution()
        .state_machine_arn(machine)
        .name(name)
        .input(input.to_string())
        .send()
        .await
        .map_err(|e| aws_error("starting an execution", e))?;
    Ok(out.execution_arn().to_owned())
}

async fn scan(ctx: &Ctx, dry_run: bool, wait: bool) -> Result<i32> {
    let machine = ctx.scan_state_machine().await?;
    ctx.acting_on([machine.as_str()]).await;
    // With --account, a scan of that member account, as the organization scan starts one.
    let input = ctx.in_account(if dry_run {
        json!({"dryRun": true})
    } else {
        json!({})
    });
    let name = format!(
        "{}-scan-{}{}",
        if dry_run { "dryrun" } else { "manual" },
        ctx.account().map(|a| format!("{a}-")).unwrap_or_default(),
        stamp()
    );
    let arn = start(ctx, &machine, &name, &input).await?;
    if !wait {
        ctx.emit(
            &json!({"executionArn": arn, "name": name, "input": input}),
            || {
                format!(
                    "started scan {name}\n  {arn}\n  follow it with: keyrotor status --since 1\n"
                )
            },
        );
        return Ok(0);
    }
    let scan = follow::follow(ctx, std::slice::from_ref(&arn)).await?;
    let per_user = ctx.state_machine().await?;
    let started = follow::started_by_scan(ctx, &per_user, &scan[0]).await?;
    let users = if started.is_empty() {
        Vec::new()
    } else {
        follow::follow(ctx, &started).await?
    };
    let mut all = scan;
    all.extend(users);
    follow::summarise(ctx, &all);
    Ok(if all.iter().all(|e| e.succeeded()) {
        0
    } else {
        EXIT_ERROR
    })
}

/// The flags of `keyrotor rotate`.
struct RotateRequest {
    force: bool,
    reason: Option<Text>,
    dry_run: bool,
    wait: bool,
}

impl RotateRequest {
    /// The execution input beyond whom it is about: `force`, `reason`, `dryRun`.
    fn input(&self, mut input: Value) -> Value {
        if self.force {
            input["force"] = json!(true);
        }
        if let Some(reason) = &self.reason {
            input["reason"] = json!(reason);
        }
        if self.dry_run {
            input["dryRun"] = json!(true);
        }
        input
    }
}

async fn rotate(ctx: &Ctx, users: &[String], request: RotateRequest) -> Result<i32> {
    let names = users
        .iter()
        .map(|u| UserName::try_from(u.clone()).map_err(|e| anyhow!(e)))
        .collect::<Result<Vec<_>>>()?;
    let iam = aws_sdk_iam::Client::new(&ctx.sdk);
    // The users of a member account are looked up by the execution there (its Assess step
    // fails NotFound for a name the account does not have).
    let check: &[UserName] = if ctx.account().is_some() { &[] } else { &names };
    for user in check {
        match iam.get_user().user_name(user.as_str()).send().await {
            Ok(_) => {}
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_no_such_entity_exception()) =>
            {
                bail!("unknown user {user}: no IAM user of that name")
            }
            Err(e) => return Err(aws_error("looking up the user", e)),
        }
    }
    let machine = if request.force {
        forcing_machine(ctx).await?
    } else {
        ctx.state_machine().await?
    };
    ctx.acting_on([machine.as_str()]).await;
    let mut started = Vec::new();
    for user in &names {
        let input = request.input(ctx.in_account(json!({"user": user.as_str()})));
        // At most 80 characters: adhoc-, the account, 27 or 40 of the name, time, hash.
        let name = match ctx.account() {
            Some(account) => format!(
                "adhoc-{account}-{}-{}-{}",
                safe(user.as_str(), 27),
                stamp(),
                &short_hash(user.as_str())
            ),
            None => format!(
                "adhoc-{}-{}-{}",
                safe(user.as_str(), 40),
                stamp(),
                &short_hash(user.as_str())
            ),
        };
        let arn = start(ctx, &machine, &name, &input).await?;
        started.push((user.to_string(), name, arn));
    }
    follow_started(ctx, started, request.wait).await
}

/// `keyrotor rotate --key ID --force`: a forced rotation of one key on the responder
/// machine, whose first step resolves the owner. The owner is looked up here too, so that
/// a mistyped key fails at once with a clear message instead of in an execution.
async fn rotate_key(ctx: &Ctx, key: &str, request: RotateRequest) -> Result<i32> {
    let key = KeyId::try_from(key.to_owned()).map_err(|e| anyhow!("--key: {e}"))?;
    // The adapter the functions use: a key IAM does not know is `None`. In a member
    // account the execution's first step finds the owner there.
    let owner = match ctx.account() {
        Some(account) => format!("(key {key} in {account})"),
        None => keyrotor_aws::Iam::from_sdk(&ctx.sdk)
            .key_owner(key.as_str())
            .await
            .context("looking up the key's owner")?
            .ok_or_else(|| {
                anyhow!("unknown key {key}: no IAM user of this account has that access key")
            })?,
    };
    let machine = forcing_machine(ctx).await?;
    ctx.acting_on([machine.as_str()]).await;
    let input = request.input(ctx.in_account(json!({"accessKeyId": key.as_str()})));
    let name = format!("adhoc-key-{key}-{}", stamp());
    let arn = start(ctx, &machine, &name, &input).await?;
    follow_started(ctx, vec![(owner, name, arn)], request.wait).await
}

/// Prints the executions `rotate` started, or follows them to their end.
async fn follow_started(
    ctx: &Ctx,
    started: Vec<(String, String, String)>,
    wait: bool,
) -> Result<i32> {
    if !wait {
        let value = json!(started
            .iter()
            .map(|(u, n, a)| json!({"user": u, "name": n, "executionArn": a}))
            .collect::<Vec<_>>());
        ctx.emit(&value, || {
            let mut s = String::new();
            for (user, _, arn) in &started {
                s.push_str(&format!("started rotation of {user}\n  {arn}\n"));
            }
            s
        });
        return Ok(0);
    }
    let arns: Vec<String> = started.iter().map(|(_, _, a)| a.clone()).collect();
    let done = follow::follow(ctx, &arns).await?;
    follow::summarise(ctx, &done);
    Ok(if done.iter().all(|e| e.succeeded()) {
        0
    } else {
        EXIT_ERROR
    })
}

fn checked_arn(arn: &str) -> Result<String> {
    if !(arn.starts_with("arn:") && arn.contains(":stateMachine:")) {
        bail!("{arn:?} is not a state machine ARN");
    }
    Ok(arn.to_owned())
}

/// Where a forced rotation starts: the responder machine, or (without one, as on the local
/// stack) the main machine, saying so.
async fn forcing_machine(ctx: &Ctx) -> Result<String> {
    if let Some(arn) = ctx.responder_state_machine().await? {
        return Ok(arn);
    }
    let machine = ctx.state_machine().await?;
    eprintln!(
        "note: no responder state machine found; starting the forced rotation on {machine}, \
         which refuses it (ForceNotAllowed) unless it was deployed to allow forcing"
    );
    Ok(machine)
}

fn short_hash(s: &str) -> String {
    // FNV-1a: a stable tag that keeps names of different users apart after `safe()`.
    let mut h: u32 = 0x811c_9dc5;
    for b in s.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    format!("{h:08x}")
}

async fn rerun(ctx: &Ctx, arn: &str, wait: bool) -> Result<i32> {
    let old = describe(ctx, arn).await?;
    ctx.acting_on([old.state_machine_arn()]).await;
    let input = old.input().unwrap_or("{}");
    let value: Value = serde_json::from_str(input).context("the execution's input is not JSON")?;
    let name = format!("rerun-{}-{}", safe(old.name().unwrap_or("x"), 50), stamp());
    let new_arn = start(ctx, old.state_machine_arn(), &name, &value).await?;
    if !wait {
        ctx.emit(
            &json!({"executionArn": new_arn, "name": name, "input": value, "rerunOf": arn}),
            || {
                format!(
                    "started {name} with the input of {}\n  {new_arn}\n",
                    old.name().unwrap_or(arn)
                )
            },
        );
        return Ok(0);
    }
    let done = follow::follow(ctx, &[new_arn]).await?;
    follow::summarise(ctx, &done);
    Ok(if done.iter().all(|e| e.succeeded()) {
        0
    } else {
        EXIT_ERROR
    })
}

/// `keyrotor redrive ARN`.
pub async fn redrive(ctx: &Ctx, arn: &str) -> Result<i32> {
    let machine = machine_of_execution(require_execution_arn(arn)?);
    ctx.acting_on(machine.as_deref()).await;
    let out = ctx
        .sfn
        .redrive_execution()
        .execution_arn(require_execution_arn(arn)?)
        .send()
        .await
        .map_err(|e| aws_error("redriving the execution", e))?;
    let at = keyrotor_aws::to_utc(out.redrive_date());
    ctx.emit(&json!({"executionArn": arn, "redriveDate": at}), || {
        format!("redriven from the failed step: {arn}\n")
    });
    Ok(0)
}

/// The state machine of an execution ARN (`…:execution:MACHINE:NAME`).
fn machine_of_execution(arn: &str) -> Option<String> {
    let (prefix, rest) = arn.split_once(":execution:")?;
    let (machine, _) = rest.split_once(':')?;
    Some(format!("{prefix}:stateMachine:{machine}"))
}

fn require_execution_arn(arn: &str) -> Result<&str> {
    if arn.starts_with("arn:") && arn.contains(":execution:") {
        Ok(arn)
    } else {
        bail!("{arn:?} is not an execution ARN")
    }
}

pub(crate) async fn describe(
    ctx: &Ctx,
    arn: &str,
) -> Result<aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput> {
    ctx.sfn
        .describe_execution()
        .execution_arn(require_execution_arn(arn)?)
        .send()
        .await
        .map_err(|e| aws_error("describing the execution", e))
}

/// One line for an SDK error: what failed and why, without debug dumps.
pub fn aws_error<E>(what: &str, err: SdkError<E, HttpResponse>) -> anyhow::Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    if let SdkError::ServiceError(ctx) = &err {
        let code = ctx.err().code().unwrap_or("Unknown");
        let message = ctx.err().message().unwrap_or("");
        return match code {
            "AccessDenied" | "AccessDeniedException" | "UnauthorizedOperation" => {
                anyhow!("access denied while {what}: {message}")
            }
            "ExecutionDoesNotExist" => anyhow!("unknown execution: {message}"),
            "StateMachineDoesNotExist" => anyhow!("unknown state machine: {message}"),
            "ExpiredToken"
            | "ExpiredTokenException"
            | "InvalidClientTokenId"
            | "UnrecognizedClientException" => {
                anyhow!("the AWS credentials were rejected ({code}): {message}")
            }
            _ => anyhow!("{what} failed: {code}: {message}"),
        };
    }
    let chain = aws_smithy_types::error::display::DisplayErrorContext(&err).to_string();
    if chain.contains("SSO") {
        let profile = std::env::var("AWS_PROFILE").unwrap_or_else(|_| "default".into());
        return anyhow!(
            "the IAM Identity Center (SSO) sign-in of profile {profile} has expired or is \
             missing: run `aws sso login --profile {profile}`"
        );
    }
    if chain.contains("credentials") || chain.contains("Credentials") {
        return anyhow!("no AWS credentials found: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY");
    }
    anyhow!(
        "{what} failed: could not reach AWS ({})",
        chain.lines().last().unwrap_or("no detail")
    )
}

/// The error as one line: the message and its causes.
pub fn one_line(err: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
    }
    parts.join(": ").replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use aws_sdk_sfn::operation::redrive_execution::RedriveExecutionOutput;
    use aws_smithy_mocks::{mock, mock_client};
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;

    use super::*;

    const ARN: &str = "arn:aws:states:us-east-1:123456789012:execution:keyrotor:adhoc-alice";

    fn ctx(sfn: Sfn) -> Ctx {
        let sdk = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .build();
        Ctx::new(sdk, Output::Json, false, None)
            .with_sfn(sfn)
            .without_identity()
    }

    #[test]
    fn an_execution_names_its_state_machine_and_account() {
        assert_eq!(
            machine_of_execution(ARN).as_deref(),
            Some("arn:aws:states:us-east-1:123456789012:stateMachine:keyrotor")
        );
        assert_eq!(arn_account(ARN), Some("123456789012"));
        assert_eq!(arn_account("arn:aws:states:us-east-1::x"), None);
        let target = Target {
            account: Some("123456789012".into()),
            region: Some("eu-west-1".into()),
            state_machines: vec!["arn:m".into()],
            identity: None,
            member_account: None,
        };
        assert_eq!(
            target.describe(),
            "account 123456789012, region eu-west-1, state machine arn:m"
        );
        let member = Target {
            member_account: Some("222222222222".into()),
            ..target
        };
        assert_eq!(
            member.describe(),
            "account 123456789012, region eu-west-1, state machine arn:m, member account 222222222222"
        );
    }

    // moto has no RedriveExecution: the call is checked against mocked responses.
    #[tokio::test]
    async fn redrive_sends_the_execution_arn() {
        let rule = mock!(Sfn::redrive_execution)
            .match_requests(|r| r.execution_arn() == Some(ARN))
            .then_output(|| {
                RedriveExecutionOutput::builder()
                    .redrive_date(aws_smithy_types::DateTime::from_secs(1_764_000_000))
                    .build()
                    .expect("output")
            });
        let code = redrive(&ctx(mock_client!(aws_sdk_sfn, [&rule])), ARN)
            .await
            .expect("redriven");
        assert_eq!(code, 0);
        assert_eq!(rule.num_calls(), 1);
    }

    #[tokio::test]
    async fn redrive_of_a_running_execution_is_one_clear_line() {
        let rule = mock!(Sfn::redrive_execution).then_http_response(|| {
            let body = r#"{"__type":"ExecutionNotRedrivable","message":"Execution is RUNNING and cannot be redriven"}"#;
            let mut r = HttpResponse::new(StatusCode::try_from(400).expect("status"), SdkBody::from(body));
            r.headers_mut().insert("x-amzn-errortype", "ExecutionNotRedrivable");
            r
        });
        let err = redrive(&ctx(mock_client!(aws_sdk_sfn, [&rule])), ARN)
            .await
            .expect_err("not redrivable");
        let line = one_line(&err);
        assert_eq!(line, "redriving the execution failed: ExecutionNotRedrivable: Execution is RUNNING and cannot be redriven");
    }

    #[tokio::test]
    async fn redrive_rejects_what_is_not_an_execution_arn() {
        let rule = mock!(Sfn::redrive_execution).then_output(|| {
            RedriveExecutionOutput::builder()
                .redrive_date(aws_smithy_types::DateTime::from_secs(1))
                .build()
                .expect("output")
        });
        let err = redrive(&ctx(mock_client!(aws_sdk_sfn, [&rule])), "adhoc-alice")
            .await
            .expect_err("not an ARN");
        assert!(one_line(&err).contains("is not an execution ARN"));
        assert_eq!(rule.num_calls(), 0);
    }
}
