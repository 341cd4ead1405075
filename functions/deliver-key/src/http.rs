//! The one HTTPS client `deliver-key` talks to GitHub and to webhooks with: hyper and
//! rustls (the ones the AWS SDK links), the system's root certificates, HTTP/1.1, a time
//! limit per request and a size limit on what is read back. Behind [`HttpPort`], so the
//! destinations' logic is tested in-process against fakes.

use std::future::Future;
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// One request. Header values may hold a token: a request is never logged.
#[derive(Clone, PartialEq, Eq)]
pub struct Request {
    pub method: &'static str,
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Option<Vec<u8>>,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL of a webhook and the headers may hold credentials.
        f.debug_struct("Request")
            .field("method", &self.method)
            .finish_non_exhaustive()
    }
}

/// A response: its status, the headers keyrotor reads, and at most [`MAX_BODY`] bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A request that got no response: refused, timed out, not HTTP. Retryable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreachable(pub String);

pub const MAX_BODY: usize = 64 * 1024;
pub const TIMEOUT: Duration = Duration::from_secs(10);

pub trait HttpPort: Sync {
    fn send(&self, request: Request) -> impl Future<Output = Result<Response, Unreachable>> + Send;
}

/// The client: HTTPS with the system's roots; plain HTTP only where a destination's URL
/// allows it (loopback, checked by the configuration).
/// Without the system's root certificates every request fails (and says why), so the
/// destinations are reported failed rather than the function failing to start.
#[derive(Clone)]
pub struct Https {
    client: Result<Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>, String>,
}

impl Https {
    pub fn new() -> Self {
        let client = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .map(|builder| {
                let connector = builder.https_or_http().enable_http1().build();
                Client::builder(TokioExecutor::new()).build(connector)
            })
            .map_err(|e| format!("no root certificates to check servers with: {e}"));
        Https { client }
    }
}

impl Default for Https {
    fn default() -> Self {
        Https::new()
    }
}

impl HttpPort for Https {
    async fn send(&self, request: Request) -> Result<Response, Unreachable> {
        let mut builder = hyper::Request::builder()
            .method(request.method)
            .uri(&request.url);
        for (name, value) in &request.headers {
            builder = builder.header(*name, value);
        }
        let body = Full::new(Bytes::from(request.body.unwrap_or_default()));
        let built = builder
            .body(body)
            .map_err(|e| Unreachable(format!("the request could not be built: {e}")))?;
        let client = self.client.as_ref().map_err(|e| Unreachable(e.clone()))?;
        let sent = tokio::time::timeout(TIMEOUT, async {
            let response = client
                .request(built)
                .await
                .map_err(|e| Unreachable(connection_error(&e)))?;
            let status = response.status().as_u16();
            let headers = response
                .headers()
                .iter()
                .filter_map(|(n, v)| Some((n.as_str().to_owned(), v.to_str().ok()?.to_owned())))
                .collect();
            let body = Limited::new(response.into_body(), MAX_BODY)
                .collect()
                .await
                .map_err(|_| Unreachable("the response body was cut off or too long".into()))?
                .to_bytes()
                .to_vec();
            Ok(Response {
                status,
                headers,
                body,
            })
        })
        .await;
        sent.unwrap_or_else(|_| Err(Unreachable(format!("no answer within {TIMEOUT:?}"))))
    }
}

/// What went wrong with a connection, without the URL (a webhook's may hold a token).
fn connection_error(err: &hyper_util::client::legacy::Error) -> String {
    if err.is_connect() {
        "the connection failed".into()
    } else {
        "the request failed before an answer".into()
    }
}
