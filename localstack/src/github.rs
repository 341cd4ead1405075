//! The fake GitHub Actions secrets API and webhook receiver (`tools/fake_github.py`), and
//! the settings that point keyrotor's delivery at them: what the delivery suite and the
//! demo run deliver-key against (issue 29).

use std::process::Child;

use anyhow::{bail, Result};
use serde_json::Value;

use crate::moto::{helper_command, http, spawn_with_port};

/// The token the fake accepts (kept, as deployed, in a Secrets Manager secret).
pub const TOKEN: &str = "github_pat_keyrotor_local_0000000000";
/// The key webhook notices are signed with.
pub const WEBHOOK_KEY: &str = "keyrotor-local-webhook-signing-key";
/// The settings secrets, by name: a partial ARN (without the random suffix) finds them, so
/// the functions' environment can name them before they exist.
pub const TOKEN_SECRET: &str = "keyrotor-delivery/github-token";
pub const WEBHOOK_SECRET: &str = "keyrotor-delivery/webhook-key";
pub const DELIVERY_KEY_ALIAS: &str = "alias/keyrotor-delivery";
/// Where SSM destinations may be written (the template's DeliveryParameterPath).
pub const PARAMETER_PATH: &str = "/keyrotor/";

/// A running fake. Dropping it stops it.
pub struct FakeGitHub {
    child: Child,
    pub port: u16,
    /// Every request it got, one JSON line each.
    log: std::path::PathBuf,
}

impl FakeGitHub {
    pub fn start() -> Result<Self> {
        let log = crate::stack::StackOptions::default()
            .log_dir
            .join(format!("fake-github-{}.jsonl", std::process::id()));
        let mut command = helper_command("fake_github.py", "fake-github")?;
        command.args([
            "--port",
            "0",
            "--token",
            TOKEN,
            "--webhook-key",
            WEBHOOK_KEY,
            "--log",
            &log.to_string_lossy(),
        ]);
        let (child, port) = spawn_with_port(command, "the fake GitHub")?;
        Ok(FakeGitHub { child, port, log })
    }

    /// Its API's base URL, as `KEYROTOR_GITHUB_API_URL`.
    pub fn api_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Its webhook receiver (`/hook/down` answers 503).
    pub fn hook_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/hook{path}", self.port)
    }

    /// What it holds: `secrets` (place/name → value, opened, and times), `notices`
    /// (verified), `refused`, `requests`.
    pub fn state(&self) -> Result<Value> {
        state_at(self.port)
    }

    pub fn reset(&self) -> Result<()> {
        http(self.port, "POST", "/_reset", "").map(drop)
    }

    /// Every request it got so far, as logged (for the leak scan).
    pub fn request_log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The functions' delivery settings for `destinations` (the document's JSON).
    pub fn settings(&self, destinations: &Value) -> Vec<(String, String)> {
        let arn =
            |name: &str| format!("arn:aws:secretsmanager:us-east-1:123456789012:secret:{name}");
        [
            ("KEYROTOR_DESTINATIONS", destinations.to_string()),
            (
                "KEYROTOR_DELIVERY_KMS_KEY_ID",
                DELIVERY_KEY_ALIAS.to_owned(),
            ),
            ("KEYROTOR_PARAMETER_PATH", PARAMETER_PATH.to_owned()),
            ("KEYROTOR_GITHUB_TOKEN_SECRET_ARN", arn(TOKEN_SECRET)),
            ("KEYROTOR_GITHUB_API_URL", self.api_url()),
            ("KEYROTOR_WEBHOOK_KEY_SECRET_ARN", arn(WEBHOOK_SECRET)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }
}

/// What the fake on `port` holds (see [`FakeGitHub::state`]): for a program that has only
/// the port, as a CI job has only its repository.
pub fn state_at(port: u16) -> Result<Value> {
    let (status, text) = http(port, "GET", "/_state", "")?;
    if status != 200 {
        bail!("the fake GitHub answered {status}: {text}");
    }
    Ok(serde_json::from_str(&text)?)
}

impl Drop for FakeGitHub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
