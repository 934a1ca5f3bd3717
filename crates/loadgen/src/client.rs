//! The HTTP side: one keep-alive pooled HTTP/1.1 client per node, requests
//! spread round-robin over the nodes, and answers reduced to what the
//! scenarios count. Nothing the server answers is trusted: a body that does
//! not parse is an error to count, never a panic.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{HeaderValue, ETAG, IF_NONE_MATCH, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::LoadtestError;

/// No request may hang the run: one slower than this counts as a transport
/// error (`transport:timeout`).
pub const REQUEST_TIMEOUT_SECONDS: u64 = 60;
/// Connecting to a local server takes microseconds; a second means it is gone.
const CONNECT_TIMEOUT_SECONDS: u64 = 5;
/// Seat maps of the largest venue (200,000 seats) are about 30 MB; a body
/// larger than this is a server bug, counted and dropped.
const BODY_SIZE_MAX_BYTES: usize = 64 * 1024 * 1024;

/// One node: its base URL and its own connection pool.
struct Node {
    base_url: String,
    client: reqwest::Client,
}

/// Cheap to clone; every worker holds one and takes the node of its index.
#[derive(Clone)]
pub struct Http {
    nodes: Arc<Vec<Node>>,
    next: Arc<AtomicUsize>,
}

/// What came back, reduced to what the load generator looks at.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub etag: Option<String>,
    /// `Retry-After` in seconds (429 and 503 answers).
    pub retry_after_seconds: Option<u64>,
    pub body: Vec<u8>,
    pub latency: Duration,
}

impl Answer {
    /// The body as JSON, or `None` when it is not JSON.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The problem `code` of an error answer, or `http_<status>` when the
    /// body carries none.
    pub fn code(&self) -> String {
        self.json()
            .as_ref()
            .and_then(|body| body.get("code"))
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| format!("http_{}", self.status.as_u16()))
    }
}

/// A request that got no HTTP answer at all.
#[derive(Debug)]
pub struct TransportError {
    /// `transport:timeout`, `transport:connect`, `transport:body`, …
    pub code: &'static str,
    pub message: String,
}

/// A request to send: method, path, optional token, body and headers.
pub struct Call<'a> {
    pub method: Method,
    pub path: &'a str,
    pub token: Option<&'a str>,
    pub body: Option<&'a Value>,
    pub idempotency_key: Option<&'a str>,
    pub if_none_match: Option<&'a str>,
    /// `X-Admission-Token`: the waiting room's pass for `POST /v1/holds`.
    pub admission_token: Option<&'a str>,
}

impl<'a> Call<'a> {
    pub fn get(path: &'a str) -> Call<'a> {
        Call {
            method: Method::GET,
            path,
            token: None,
            body: None,
            idempotency_key: None,
            if_none_match: None,
            admission_token: None,
        }
    }

    pub fn post(path: &'a str, body: &'a Value) -> Call<'a> {
        Call {
            method: Method::POST,
            path,
            token: None,
            body: Some(body),
            idempotency_key: None,
            if_none_match: None,
            admission_token: None,
        }
    }

    pub fn token(mut self, token: &'a str) -> Call<'a> {
        self.token = Some(token);
        self
    }
}

impl Http {
    /// One pooled client per URL, each keeping up to `connections` idle
    /// keep-alive connections so that C workers reuse C sockets.
    pub fn new(urls: &[String], connections: usize) -> Result<Http, LoadtestError> {
        if urls.is_empty() {
            return Err(LoadtestError::Config("no server URL".into()));
        }
        let nodes = urls
            .iter()
            .map(|url| {
                let client = reqwest::Client::builder()
                    .http1_only()
                    .pool_max_idle_per_host(connections)
                    .pool_idle_timeout(Duration::from_secs(90))
                    .tcp_nodelay(true)
                    .connect_timeout(Duration::from_secs(CONNECT_TIMEOUT_SECONDS))
                    .timeout(Duration::from_secs(REQUEST_TIMEOUT_SECONDS))
                    .build()
                    .map_err(|error| {
                        LoadtestError::Config(format!("cannot build an HTTP client: {error}"))
                    })?;
                Ok(Node {
                    base_url: url.trim_end_matches('/').to_string(),
                    client,
                })
            })
            .collect::<Result<Vec<Node>, LoadtestError>>()?;
        Ok(Http {
            nodes: Arc::new(nodes),
            next: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// The node for worker `index`: connections spread round-robin.
    pub fn node_for(&self, index: usize) -> usize {
        index % self.nodes.len()
    }

    /// Any node, in turn (for setup requests that are not per worker).
    pub fn next_node(&self) -> usize {
        self.next.fetch_add(1, Ordering::Relaxed) % self.nodes.len()
    }

    pub async fn send(&self, node: usize, call: Call<'_>) -> Result<Answer, TransportError> {
        let node = &self.nodes[node % self.nodes.len()];
        let url = format!("{}{}", node.base_url, call.path);
        let mut request = node.client.request(call.method, url);
        if let Some(token) = call.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = call.body {
            request = request.json(body);
        }
        if let Some(key) = call.idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        if let Some(admission) = call.admission_token {
            request = request.header("X-Admission-Token", admission);
        }
        if let Some(etag) = call.if_none_match {
            if let Ok(value) = HeaderValue::from_str(etag) {
                request = request.header(IF_NONE_MATCH, value);
            }
        }
        let started = Instant::now();
        let response = request.send().await.map_err(transport_error)?;
        let status = response.status();
        let etag = response
            .headers()
            .get(ETAG)
            .and_then(|value| value.to_str().ok())
            .map(str::to_string);
        let retry_after_seconds = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse::<u64>().ok());
        let body = read_body(response).await?;
        Ok(Answer {
            status,
            etag,
            retry_after_seconds,
            body,
            latency: started.elapsed(),
        })
    }
}

async fn read_body(mut response: reqwest::Response) -> Result<Vec<u8>, TransportError> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(transport_error)? {
        if body.len() + chunk.len() > BODY_SIZE_MAX_BYTES {
            return Err(TransportError {
                code: "transport:body_too_large",
                message: format!("a body above {BODY_SIZE_MAX_BYTES} bytes"),
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn transport_error(error: reqwest::Error) -> TransportError {
    let code = if error.is_timeout() {
        "transport:timeout"
    } else if error.is_connect() {
        "transport:connect"
    } else if error.is_body() || error.is_decode() {
        "transport:body"
    } else {
        "transport:other"
    };
    TransportError {
        code,
        message: error.to_string(),
    }
}

/// Whether a URL's host is this machine (`localhost`, 127.0.0.0/8, `::1`).
pub fn is_loopback_url(url: &str) -> bool {
    let Ok(parsed) = reqwest::Url::parse(url) else {
        return false;
    };
    let Some(host) = parsed.host_str() else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    match host.parse::<std::net::IpAddr>() {
        Ok(address) => address.is_loopback(),
        Err(_) => host.eq_ignore_ascii_case("localhost"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_this_machine_counts_as_loopback() {
        assert!(is_loopback_url("http://127.0.0.1:8080"));
        assert!(is_loopback_url("http://127.3.4.5/"));
        assert!(is_loopback_url("http://localhost:1"));
        assert!(is_loopback_url("http://[::1]:8080"));
        assert!(!is_loopback_url("http://10.0.0.1:8080"));
        assert!(!is_loopback_url("http://example.com"));
        assert!(!is_loopback_url("not a url"));
    }
}
