//! Measuring one function binary the way Lambda runs it: a minimal Lambda Runtime API on
//! loopback (`/2018-06-01/runtime/invocation/next`, `.../response`, `.../error`), so the
//! benchmark can time a process from its start to its first request for an event (ready),
//! hand it one real event, and read its peak resident memory (`VmHWM`) once it answered.
//! Linux only (`/proc`). The function's own log goes to
//! `target/keyrotor-local/probe-<function>-<pid>.log`.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

const NEXT: &str = "/2018-06-01/runtime/invocation/next";
const REQUEST_ID: &str = "keyrotor-bench-0001";
/// Longest a probe waits for the function at any step.
const PATIENCE: Duration = Duration::from_secs(120);

/// What one probe measured.
#[derive(Debug, Clone)]
pub struct Probe {
    /// From spawning the process to its first request for an event.
    pub ready: Duration,
    /// From handing over the event to receiving the response (absent: ready only).
    pub invocation: Option<Invocation>,
}

#[derive(Debug, Clone)]
pub struct Invocation {
    pub duration: Duration,
    /// Peak resident set size of the process after the invocation (`VmHWM`), bytes.
    pub peak_rss: u64,
    /// The function's response.
    pub response: serde_json::Value,
}

/// Runs `binary` once under a fresh Runtime API with `env` (plus the variables Lambda
/// sets). With `event`, delivers it and waits for the answer; without, stops the process
/// as soon as it is ready. An error answer from the function is an error here.
pub async fn probe(
    binary: &std::path::Path,
    function_name: &str,
    env: &[(String, String)],
    event: Option<&serde_json::Value>,
) -> Result<Probe> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let api = listener.local_addr()?;
    let mut command = Command::new(binary);
    command
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", api.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", function_name)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env(
            "AWS_LAMBDA_LOG_GROUP_NAME",
            format!("/aws/lambda/{function_name}"),
        )
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(crate::moto::log_file(&format!("probe-{function_name}"))?);
    let started = Instant::now();
    let child = command
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    let mut child = KillOnDrop(child);
    let outcome = tokio::time::timeout(PATIENCE, serve(&listener, &mut child, started, event))
        .await
        .with_context(|| format!("{function_name} did not finish within {PATIENCE:?}"))?;
    outcome.with_context(|| format!("probing {function_name}"))
}

async fn serve(
    listener: &TcpListener,
    child: &mut KillOnDrop,
    started: Instant,
    event: Option<&serde_json::Value>,
) -> Result<Probe> {
    let mut connection = tokio::select! {
        accepted = Connection::accept(listener) => accepted?,
        status = exited(child) => bail!("the function exited ({status}) before asking for an event"),
    };
    let mut ready = None;
    let mut delivered_at = None;
    loop {
        let request = tokio::select! {
            request = connection.read_request() => request?,
            status = exited(child) => bail!("the function exited ({status}) before answering"),
        };
        let Some(request) = request else {
            // The client closed this connection; its next request comes on a new one.
            connection = tokio::select! {
                accepted = Connection::accept(listener) => accepted?,
                status = exited(child) => bail!("the function exited ({status})"),
            };
            continue;
        };
        match (request.method.as_str(), request.path.as_str()) {
            ("GET", NEXT) if ready.is_none() => {
                let at = started.elapsed();
                ready = Some(at);
                let Some(event) = event else {
                    return Ok(Probe {
                        ready: at,
                        invocation: None,
                    });
                };
                let body = event.to_string();
                let deadline = chrono::Utc::now().timestamp_millis() + 900_000;
                let headers = format!(
                    "Lambda-Runtime-Aws-Request-Id: {REQUEST_ID}\r\n\
                     Lambda-Runtime-Deadline-Ms: {deadline}\r\n\
                     Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:123456789012:function:bench\r\n\
                     Lambda-Runtime-Trace-Id: Root=1-00000000-000000000000000000000000\r\n"
                );
                delivered_at = Some(Instant::now());
                connection.reply(200, &headers, &body).await?;
            }
            ("POST", path) if path.ends_with("/init/error") => {
                bail!(
                    "the function failed to start: {}",
                    String::from_utf8_lossy(&request.body)
                );
            }
            ("POST", path) if path.ends_with("/response") || path.ends_with("/error") => {
                let duration = delivered_at.map(|t| t.elapsed()).unwrap_or_default();
                connection.reply(202, "", "{}").await?;
                let peak_rss = peak_rss(child.0.id())?;
                let body: serde_json::Value = serde_json::from_slice(&request.body)
                    .with_context(|| "the function's answer is not JSON")?;
                if path.ends_with("/error") {
                    bail!("the function answered with an error: {body}");
                }
                return Ok(Probe {
                    ready: ready.unwrap_or_default(),
                    invocation: Some(Invocation {
                        duration,
                        peak_rss,
                        response: body,
                    }),
                });
            }
            (method, path) => bail!("unexpected Runtime API request {method} {path}"),
        }
    }
}

/// Resolves once the process has exited, with its exit status.
async fn exited(child: &mut KillOnDrop) -> String {
    loop {
        if let Ok(Some(status)) = child.0.try_wait() {
            return status.to_string();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The process's peak resident set size so far, from `/proc/<pid>/status`.
pub fn peak_rss(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .context("no VmHWM in /proc/<pid>/status")?;
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .context("unreadable VmHWM")?;
    Ok(kib * 1024)
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Request {
    method: String,
    path: String,
    body: Vec<u8>,
}

struct Connection {
    stream: BufReader<TcpStream>,
}

impl Connection {
    async fn accept(listener: &TcpListener) -> Result<Self> {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        Ok(Connection {
            stream: BufReader::new(stream),
        })
    }

    /// One HTTP/1.1 request (Content-Length or chunked body); `None` at end of stream.
    async fn read_request(&mut self) -> Result<Option<Request>> {
        let mut line = String::new();
        if self.stream.read_line(&mut line).await? == 0 {
            return Ok(None);
        }
        let mut parts = line.split_whitespace();
        let (Some(method), Some(path)) = (parts.next(), parts.next()) else {
            bail!("malformed request line {line:?}");
        };
        let (method, path) = (method.to_owned(), path.to_owned());
        let mut length = 0usize;
        let mut chunked = false;
        loop {
            let mut header = String::new();
            if self.stream.read_line(&mut header).await? == 0 {
                bail!("connection closed inside the headers");
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                let value = value.trim();
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.parse().context("bad Content-Length")?;
                } else if name.eq_ignore_ascii_case("transfer-encoding") {
                    chunked = value.eq_ignore_ascii_case("chunked");
                }
            }
        }
        let body = if chunked {
            self.read_chunked().await?
        } else {
            let mut body = vec![0; length];
            self.stream.read_exact(&mut body).await?;
            body
        };
        Ok(Some(Request { method, path, body }))
    }

    async fn read_chunked(&mut self) -> Result<Vec<u8>> {
        let mut body = Vec::new();
        loop {
            let mut size = String::new();
            self.stream.read_line(&mut size).await?;
            let size = usize::from_str_radix(size.trim().split(';').next().unwrap_or(""), 16)
                .context("bad chunk size")?;
            let mut chunk = vec![0; size + 2];
            self.stream.read_exact(&mut chunk).await?;
            if size == 0 {
                return Ok(body);
            }
            body.extend_from_slice(&chunk[..size]);
        }
    }

    async fn reply(&mut self, status: u16, headers: &str, body: &str) -> Result<()> {
        let reason = if status == 200 { "OK" } else { "Accepted" };
        let text = format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{headers}\r\n{body}",
            body.len()
        );
        self.stream.get_mut().write_all(text.as_bytes()).await?;
        Ok(())
    }
}
