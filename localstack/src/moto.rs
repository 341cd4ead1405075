//! A moto server owned by the test process: started by `tools/moto_launcher.py` on a free
//! loopback port, stopped by PID when dropped (and by itself if this process dies).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;

use crate::workspace_root;

/// A user for [`MotoServer::seed_users`].
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SeedUser {
    pub name: String,
    pub tags: std::collections::BTreeMap<String, String>,
    /// The age of the user's one access key; `None`: no key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_age_days: Option<i64>,
    /// Groups (which must exist) the user belongs to.
    pub groups: Vec<String>,
}

/// The Python interpreter of the project's venv, created by `make venv` when missing.
pub fn python() -> Result<PathBuf> {
    let root = workspace_root();
    let python = root.join(".venv/bin/python");
    let ready = python.exists()
        && Command::new(&python)
            .args(["-c", "import moto, time_machine, samtranslator"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    if !ready {
        let status = Command::new("make")
            .arg("-C")
            .arg(&root)
            .arg("venv")
            .status()
            .context("running `make venv` to install moto")?;
        if !status.success() {
            bail!("`make venv` failed; run it by hand to see why");
        }
    }
    Ok(python)
}

/// A log file under `target/keyrotor-local/` for a helper process's output.
pub fn log_file(name: &str) -> Result<std::fs::File> {
    let dir = workspace_root().join("target/keyrotor-local");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("{name}-{}.log", std::process::id()));
    Ok(std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?)
}

/// A command running one of the project's Python helpers (`tools/<script>`) with the venv's
/// interpreter, its stderr going to `target/keyrotor-local/<log>-<pid>.log`.
pub fn helper_command(script: &str, log: &str) -> Result<Command> {
    let mut command = Command::new(python()?);
    command
        .current_dir(workspace_root())
        .arg(workspace_root().join("tools").join(script))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log_file(log)?);
    Ok(command)
}

/// Spawns a helper that prints `PORT <n>` once it listens; returns it and the port.
pub fn spawn_with_port(mut command: Command, what: &str) -> Result<(Child, u16)> {
    let mut child = command
        .spawn()
        .with_context(|| format!("starting {what}"))?;
    let stdout = child.stdout.take().context("helper stdout")?;
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .with_context(|| format!("reading the port of {what}"))?;
    match line.trim().strip_prefix("PORT ").map(str::parse::<u16>) {
        Some(Ok(port)) => Ok((child, port)),
        _ => {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{what} did not start (it printed {line:?}); see target/keyrotor-local/")
        }
    }
}

/// One HTTP/1.0 request to a helper on loopback; returns status and body.
pub fn http(port: u16, method: &str, path: &str, body: &str) -> Result<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    write!(
        stream,
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .context("malformed HTTP response")?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("no HTTP status")?;
    Ok((status, body.to_owned()))
}

/// A running moto server.
pub struct MotoServer {
    child: Child,
    port: u16,
}

impl MotoServer {
    /// Starts a server on a free loopback port and waits until it answers.
    pub fn start() -> Result<Self> {
        Self::start_with_env(&[])
    }

    /// Like [`MotoServer::start`], with extra environment variables for moto (e.g.
    /// `MOTO_PORT`, where moto's Step Functions sends Lambda invocations).
    pub fn start_with_env(env: &[(&str, String)]) -> Result<Self> {
        let mut command = helper_command("moto_launcher.py", "moto")?;
        command.args(["--host", "127.0.0.1", "--port", "0"]);
        for (k, v) in env {
            command.env(k, v);
        }
        let (child, port) = spawn_with_port(command, "moto_launcher.py")?;
        let server = MotoServer { child, port };
        server.wait_ready(Duration::from_secs(60))?;
        Ok(server)
    }

    fn wait_ready(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.request("GET", "/_keyrotor/clock", "").is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "moto did not answer on port {} within {timeout:?}",
                    self.port
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// One HTTP/1.0 request to the server (moto's management API); returns status and body.
    pub fn request(&self, method: &str, path: &str, body: &str) -> Result<(u16, String)> {
        http(self.port, method, path, body)
    }

    fn post_ok(&self, path: &str, body: &str) -> Result<String> {
        let (status, text) = self.request("POST", path, body)?;
        if !(200..300).contains(&status) {
            bail!("POST {path} answered {status}: {text}");
        }
        Ok(text)
    }

    /// Clears every service's state (moto keeps its configuration).
    pub fn reset(&self) -> Result<()> {
        self.post_ok("/moto-api/reset", "").map(drop)
    }

    /// Shifts moto's clock by `seconds` from real time (negative: the past; 0: now).
    pub fn set_clock_offset(&self, seconds: i64) -> Result<()> {
        self.post_ok(
            "/_keyrotor/clock",
            &format!("{{\"offsetSeconds\": {seconds}}}"),
        )
        .map(drop)
    }

    /// Drops the account's IAM credential report, as if it were too old to keep: the next
    /// reader has to generate a new one, as a daily scan does.
    pub fn expire_credential_report(&self) -> Result<()> {
        self.post_ok("/_keyrotor/credential-report/expire", "")
            .map(drop)
    }

    /// Creates many users at once, straight in moto's IAM backend (`tools/moto_launcher.py`
    /// says how): the benchmark's set-up. Tests seed through the API. Returns each new
    /// access key's ID by user name.
    pub fn seed_users(
        &self,
        account: &str,
        users: &[SeedUser],
    ) -> Result<std::collections::BTreeMap<String, String>> {
        let body = serde_json::json!({"account": account, "users": users});
        let answer = self.post_ok("/_keyrotor/seed-users", &body.to_string())?;
        let mut answer: serde_json::Value = serde_json::from_str(&answer)?;
        serde_json::from_value(answer["keys"].take()).context("seed-users answered without keys")
    }

    /// Turns on real execution of state machines.
    pub fn enable_state_machine_execution(&self) -> Result<()> {
        self.post_ok(
            "/moto-api/config",
            r#"{"stepfunctions": {"execute_state_machine": true}}"#,
        )
        .map(drop)
    }

    /// The e-mails moto "sent", in every account (`/_keyrotor/ses-messages`).
    pub fn sent_emails(&self) -> Result<Vec<SentEmail>> {
        let (status, text) = self.request("GET", "/_keyrotor/ses-messages", "")?;
        if status != 200 {
            bail!("ses-messages answered {status}");
        }
        let data: serde_json::Value = serde_json::from_str(&text).context("ses-messages")?;
        let messages = data["messages"].as_array().cloned().unwrap_or_default();
        Ok(messages
            .iter()
            .map(|m| SentEmail {
                source: m["source"].as_str().unwrap_or_default().to_owned(),
                to: m
                    .pointer("/destinations/ToAddresses")
                    .and_then(|a| a.as_array())
                    .map(|a| {
                        a.iter()
                            .filter_map(|x| x.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default(),
                subject: m["subject"].as_str().unwrap_or_default().to_owned(),
                body: m["body"].as_str().unwrap_or_default().to_owned(),
            })
            .collect())
    }

    /// SDK configuration for this server: fixed test credentials, us-east-1.
    pub fn sdk_config(&self) -> SdkConfig {
        SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(self.endpoint())
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                "AKIAKEYROTORTESTS000",
                "keyrotor-test-admin-secret",
                None,
                None,
                "keyrotor-tests",
            )))
            .build()
    }
}

/// An e-mail as moto recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentEmail {
    pub source: String,
    pub to: Vec<String>,
    pub subject: String,
    pub body: String,
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
