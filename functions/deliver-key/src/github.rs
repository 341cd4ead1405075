//! GitHub Actions secrets: the repository's (or environment's) public key, then each
//! secret sealed to it (libsodium's sealed box, as GitHub documents) and PUT.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, Utc};
use crypto_box::aead::OsRng;
use crypto_box::PublicKey;
use serde::Deserialize;

use crate::http::{HttpPort, Request, Response};
use crate::Attempt;

/// The API version keyrotor speaks (GitHub's `X-GitHub-Api-Version`).
pub const API_VERSION: &str = "2022-11-28";

/// Where one destination's secrets live: `<api>/repos/<owner>/<repo>/actions/secrets` or
/// `<api>/repos/<owner>/<repo>/environments/<env>/secrets`.
pub fn secrets_url(api: &str, repository: &str, environment: Option<&str>) -> String {
    match environment {
        None => format!("{api}/repos/{repository}/actions/secrets"),
        Some(env) => format!("{api}/repos/{repository}/environments/{env}/secrets"),
    }
}

#[derive(Deserialize)]
struct PublicKeyAnswer {
    key_id: String,
    key: String,
}

#[derive(Deserialize)]
struct SecretAnswer {
    updated_at: DateTime<Utc>,
}

#[derive(Deserialize)]
struct Message {
    message: Option<String>,
}

pub struct Client<'a, W> {
    pub http: &'a W,
    pub token: &'a str,
    pub url: String,
}

impl<W: HttpPort> Client<'_, W> {
    fn request(&self, method: &'static str, path: &str, body: Option<Vec<u8>>) -> Request {
        let mut headers = vec![
            ("accept", "application/vnd.github+json".to_owned()),
            ("authorization", format!("Bearer {}", self.token)),
            ("x-github-api-version", API_VERSION.to_owned()),
            ("user-agent", "keyrotor".to_owned()),
        ];
        if body.is_some() {
            headers.push(("content-type", "application/json".to_owned()));
        }
        Request {
            method,
            url: format!("{}{path}", self.url),
            headers,
            body,
        }
    }

    async fn call(
        &self,
        method: &'static str,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Response, Attempt> {
        let response = self
            .http
            .send(self.request(method, path, body))
            .await
            .map_err(|e| Attempt::Retry(e.0))?;
        match response.status {
            200..=299 => Ok(response),
            _ => Err(refusal(&response)),
        }
    }

    /// When both secrets were last written, if both exist (404: not yet).
    pub async fn updated(&self, names: [&str; 2]) -> Result<Option<DateTime<Utc>>, Attempt> {
        let mut oldest: Option<DateTime<Utc>> = None;
        for name in names {
            let response = match self.call("GET", &format!("/{name}"), None).await {
                Ok(r) => r,
                Err(Attempt::NotFound(_)) => return Ok(None),
                Err(other) => return Err(other),
            };
            let answer: SecretAnswer = serde_json::from_slice(&response.body).map_err(|_| {
                Attempt::Fail(format!("GitHub's answer for {name} is not a secret"))
            })?;
            oldest = Some(oldest.map_or(answer.updated_at, |o| o.min(answer.updated_at)));
        }
        Ok(oldest)
    }

    /// Seals each value to the public key and writes it, in the order given.
    pub async fn put(&self, secrets: [(&str, &str); 2]) -> Result<(), Attempt> {
        let key = self.call("GET", "/public-key", None).await?;
        let key: PublicKeyAnswer = serde_json::from_slice(&key.body)
            .map_err(|_| Attempt::Fail("GitHub's public key answer does not parse".into()))?;
        let bytes = STANDARD
            .decode(&key.key)
            .ok()
            .and_then(|b| PublicKey::from_slice(&b).ok())
            .ok_or_else(|| Attempt::Fail("GitHub's public key is not a 32-byte key".into()))?;
        for (index, (name, value)) in secrets.into_iter().enumerate() {
            let sealed = bytes
                .seal(&mut OsRng, value.as_bytes())
                .map_err(|_| Attempt::Fail("sealing failed".into()))?;
            let body = serde_json::json!({
                "encrypted_value": STANDARD.encode(sealed),
                "key_id": key.key_id,
            });
            let written = self
                .call(
                    "PUT",
                    &format!("/{name}"),
                    Some(body.to_string().into_bytes()),
                )
                .await;
            if let Err(err) = written {
                return Err(match index {
                    0 => err,
                    _ => err.map(|why| format!("{why}; {} was written already", secrets[0].0)),
                });
            }
        }
        Ok(())
    }
}

/// What GitHub's refusal means for keyrotor.
fn refusal(response: &Response) -> Attempt {
    let message = serde_json::from_slice::<Message>(&response.body)
        .ok()
        .and_then(|m| m.message)
        .map(|m| {
            let clean: String = m.chars().filter(|c| !c.is_control()).take(200).collect();
            format!(": {clean}")
        })
        .unwrap_or_default();
    let status = response.status;
    let limited = status == 429
        || (status == 403
            && (response.header("x-ratelimit-remaining") == Some("0")
                || response.header("retry-after").is_some()));
    if limited {
        let wait = response
            .header("retry-after")
            .and_then(|s| s.trim().parse::<u64>().ok())
            .or_else(|| {
                let reset = response
                    .header("x-ratelimit-reset")?
                    .trim()
                    .parse::<i64>()
                    .ok()?;
                u64::try_from(reset - Utc::now().timestamp()).ok()
            })
            .unwrap_or(60);
        return Attempt::RateLimited {
            wait_secs: wait,
            why: format!("GitHub rate limit ({status}){message}"),
        };
    }
    match status {
        401 => Attempt::Fail(format!("GitHub refused the token (401){message}")),
        403 => Attempt::Fail(format!(
            "the token may not write this repository's secrets (403){message}"
        )),
        404 => Attempt::NotFound(format!(
            "no such repository or environment, or the token cannot see it (404){message}"
        )),
        500..=599 => Attempt::Retry(format!("GitHub answered {status}{message}")),
        _ => Attempt::Fail(format!("GitHub answered {status}{message}")),
    }
}
