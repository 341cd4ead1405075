//! The counting, fault-injecting proxy in front of moto (`tools/fault_proxy.py`): the
//! functions' AWS endpoint in the local stack, so that tests and the benchmark can count
//! every AWS call by operation and inject faults into chosen ones.

use std::process::Child;

use anyhow::{bail, Result};

use crate::moto::{helper_command, http, spawn_with_port};

/// A running proxy. Dropping it stops it.
pub struct FaultProxy {
    child: Child,
    port: u16,
}

impl FaultProxy {
    /// Starts a proxy forwarding to moto on `upstream_port`.
    pub fn start(upstream_port: u16) -> Result<Self> {
        let mut command = helper_command("fault_proxy.py", "fault-proxy")?;
        command.args(["--port", "0", "--upstream-port", &upstream_port.to_string()]);
        let (child, port) = spawn_with_port(command, "the fault proxy")?;
        Ok(FaultProxy { child, port })
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Replaces the rules (see `tools/fault_proxy.py`); `[]` removes all.
    pub fn set_faults(&self, rules: serde_json::Value) -> Result<()> {
        let body = serde_json::json!({ "rules": rules }).to_string();
        self.request("POST", "/_faults", &body).map(drop)
    }

    /// Delays every AWS call by `latency` from now on (until [`FaultProxy::reset`]): the
    /// benchmark's model of real AWS, which answers in tens of milliseconds, not moto's few.
    pub fn set_latency(&self, latency: std::time::Duration) -> Result<()> {
        let body = serde_json::json!({ "ms": latency.as_secs_f64() * 1000.0 }).to_string();
        self.request("POST", "/_faults/latency", &body).map(drop)
    }

    /// The AWS calls per operation, and the faults injected, since the last reset.
    pub fn stats(&self) -> Result<serde_json::Value> {
        self.request("GET", "/_faults/stats", "")
    }

    /// The calls per operation since the last reset, e.g. `"iam:ListAccessKeys" => 12`.
    pub fn calls(&self) -> Result<std::collections::BTreeMap<String, u64>> {
        Ok(serde_json::from_value(self.stats()?["calls"].clone())?)
    }

    /// The bytes of moto's replies per operation since the last reset.
    pub fn response_bytes(&self) -> Result<std::collections::BTreeMap<String, u64>> {
        Ok(serde_json::from_value(self.stats()?["bytes"].clone())?)
    }

    /// Records what the fake AWS Health API answers about event ARNs (`tools/fake_health.py`):
    /// `{"<arn>": {"eventTypeCode", "startTime" (epoch seconds), "exposedUrl", "entities"}}`,
    /// or `null` for an event AWS Health does not have. Unrecorded ARNs answer
    /// SubscriptionRequiredException; no reset clears these.
    pub fn record_health(&self, events: serde_json::Value) -> Result<()> {
        let body = serde_json::json!({ "events": events }).to_string();
        self.request("POST", "/_faults/health", &body).map(drop)
    }

    /// Clears the rules, the counts and the latency.
    pub fn reset(&self) -> Result<()> {
        self.request("POST", "/_faults/reset", "").map(drop)
    }

    fn request(&self, method: &str, path: &str, body: &str) -> Result<serde_json::Value> {
        let (status, text) = http(self.port, method, path, body)?;
        if status != 200 {
            bail!("{method} {path} on the fault proxy answered {status}: {text}");
        }
        Ok(serde_json::from_str(&text)?)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
