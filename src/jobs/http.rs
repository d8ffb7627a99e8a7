//! `http`: one HTTP request whose status decides success.
//!
//! Header values may name environment variables of the daemon as `${NAME}`, so tokens stay
//! out of pipeline files.

use std::{collections::BTreeMap, time::Instant};

use reqwest::{Method, Url};
use serde::Deserialize;
use serde_json::Value;

use super::{Job, JobContext, JobError, JobResult, parse_params};

/// Bytes of the response body copied into the attempt log.
const BODY_EXCERPT: usize = 2048;

pub struct Http;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    #[serde(default = "get")]
    method: String,
    url: String,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    /// A string is sent as is; a table or array is sent as JSON.
    body: Option<Value>,
    /// One status or a list; default: any 2xx.
    expect_status: Option<ExpectStatus>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ExpectStatus {
    One(u16),
    Many(Vec<u16>),
}

fn get() -> String {
    "GET".to_owned()
}

impl Params {
    fn check(&self) -> Result<(Method, Url), String> {
        let method = Method::from_bytes(self.method.to_uppercase().as_bytes())
            .map_err(|_| format!("`{}` is not an HTTP method", self.method))?;
        let url = Url::parse(&self.url).map_err(|e| format!("bad url `{}`: {e}", self.url))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("url `{}` must be http or https", self.url));
        }
        let statuses = match &self.expect_status {
            Some(ExpectStatus::One(s)) => vec![*s],
            Some(ExpectStatus::Many(s)) => s.clone(),
            None => vec![],
        };
        if let Some(bad) = statuses.iter().find(|s| !(100..=599).contains(*s)) {
            return Err(format!("expect_status {bad} is not an HTTP status"));
        }
        Ok((method, url))
    }

    fn accepts(&self, status: u16) -> bool {
        match &self.expect_status {
            Some(ExpectStatus::One(s)) => status == *s,
            Some(ExpectStatus::Many(list)) => list.contains(&status),
            None => (200..300).contains(&status),
        }
    }
}

/// A request error in words, with its cause: reqwest's own text ("error sending request for
/// url …") hides whether the connection was refused, timed out, the TLS handshake failed or
/// the host is unknown. The innermost message follows in parentheses.
pub fn describe_error(error: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut causes: Vec<String> = Vec::new();
    let mut io_kind = None;
    let mut tls: Option<String> = None;
    let mut source = error.source();
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            io_kind.get_or_insert(io.kind());
            // An io::Error's `source()` skips the error it wraps; TLS errors travel there.
            if let Some(t) = io
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            {
                tls.get_or_insert(t.to_string());
            }
        }
        if let Some(t) = cause.downcast_ref::<rustls::Error>() {
            tls.get_or_insert(t.to_string());
        }
        let text = cause.to_string();
        if !causes.contains(&text) {
            causes.push(text);
        }
        source = cause.source();
    }
    let all = causes.join(": ").to_lowercase();
    let host = error
        .url()
        .and_then(|u| u.host_str())
        .unwrap_or("the host")
        .to_owned();
    use std::io::ErrorKind as K;
    let what = if error.is_timeout() || io_kind == Some(K::TimedOut) {
        "timed out".to_owned()
    } else if let Some(tls) = tls {
        format!("TLS failure: {tls}")
    } else if all.contains("dns error") || all.contains("failed to lookup address") {
        format!("unknown host `{host}` (its name does not resolve)")
    } else {
        match io_kind {
            Some(K::ConnectionRefused) => format!("connection refused by {host}"),
            Some(K::ConnectionReset) => "connection reset by the server".to_owned(),
            Some(K::ConnectionAborted) => "connection aborted".to_owned(),
            Some(K::NetworkUnreachable) => "network unreachable".to_owned(),
            Some(K::HostUnreachable) => format!("{host} is unreachable"),
            Some(K::UnexpectedEof) => "the server closed the connection".to_owned(),
            _ if all.contains("certificate") || all.contains("tls") => {
                format!(
                    "TLS failure: {}",
                    causes.last().cloned().unwrap_or_default()
                )
            }
            _ if error.is_redirect() => "too many redirects".to_owned(),
            _ if error.is_connect() => format!("cannot connect to {host}"),
            _ if error.is_body() || error.is_decode() => "reading the response failed".to_owned(),
            _ => "request failed".to_owned(),
        }
    };
    match causes.last() {
        Some(detail) => format!("{what} ({detail})"),
        None => format!("{what} ({error})"),
    }
}

/// Replaces `${NAME}` with the environment variable NAME.
fn expand_env(text: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("unclosed `${{` in `{text}`"))?;
        let name = &after[..end];
        let value =
            std::env::var(name).map_err(|_| format!("environment variable {name} is not set"))?;
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[async_trait::async_trait]
impl Job for Http {
    fn kind(&self) -> &'static str {
        "http"
    }

    fn check_params(&self, params: &Value) -> Result<(), String> {
        parse_params::<Params>(params)?.check().map(|_| ())
    }

    async fn run(&self, ctx: &JobContext) -> JobResult {
        let p: Params = parse_params(&ctx.params_value()).map_err(JobError::Fatal)?;
        let (method, url) = p.check().map_err(JobError::Fatal)?;
        let mut request = ctx.http.request(method.clone(), url.clone());
        if let Some(timeout) = ctx.timeout {
            request = request.timeout(timeout);
        }
        for (name, value) in &p.headers {
            request = request.header(name, expand_env(value).map_err(JobError::Fatal)?);
        }
        request = match &p.body {
            Some(Value::String(text)) => request.body(text.clone()),
            Some(json) => request.json(json),
            None => request,
        };

        let started = Instant::now();
        let response = tokio::select! {
            r = request.send() => r.map_err(|e| JobError::Failed(format!("{method} {url}: {}", describe_error(&e))))?,
            _ = ctx.cancel.cancelled() => return Err(JobError::Cancelled),
        };
        let status = response.status();
        ctx.log.info(format!(
            "{method} {url} -> {status} in {} ms",
            started.elapsed().as_millis()
        ));
        let body = tokio::select! {
            b = response.bytes() => b.unwrap_or_default(),
            _ = ctx.cancel.cancelled() => return Err(JobError::Cancelled),
        };
        if !body.is_empty() {
            let excerpt = &body[..body.len().min(BODY_EXCERPT)];
            for line in String::from_utf8_lossy(excerpt).lines() {
                ctx.log.line(crate::db::entities::LogStream::Stdout, line);
            }
        }
        if p.accepts(status.as_u16()) {
            Ok(())
        } else {
            Err(JobError::Failed(format!(
                "{method} {url} returned {status}, expected {}",
                match &p.expect_status {
                    Some(ExpectStatus::One(s)) => s.to_string(),
                    Some(ExpectStatus::Many(s)) => s
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(" or "),
                    None => "2xx".to_owned(),
                }
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn params_are_checked() {
        assert!(
            Http.check_params(&json!({"url": "http://localhost/x"}))
                .is_ok()
        );
        assert!(
            Http.check_params(&json!({"url": "ftp://x"}))
                .unwrap_err()
                .contains("http or https")
        );
        assert!(
            Http.check_params(&json!({"url": "http://x", "method": "FETCH IT"}))
                .unwrap_err()
                .contains("not an HTTP method")
        );
        assert!(
            Http.check_params(&json!({"url": "http://x", "expect_status": 999}))
                .unwrap_err()
                .contains("not an HTTP status")
        );
        assert!(
            Http.check_params(&json!({"method": "GET"}))
                .unwrap_err()
                .contains("missing field `url`")
        );
    }

    #[test]
    fn expected_statuses() {
        let p: Params =
            parse_params(&json!({"url": "http://x", "expect_status": [200, 404]})).unwrap();
        assert!(p.accepts(404) && !p.accepts(500));
        let p: Params = parse_params(&json!({"url": "http://x"})).unwrap();
        assert!(p.accepts(204) && !p.accepts(301));
    }

    #[test]
    fn env_expansion() {
        assert_eq!(expand_env("plain").unwrap(), "plain");
        assert!(
            expand_env("Bearer ${PATRON_SURELY_UNSET_VAR}")
                .unwrap_err()
                .contains("not set")
        );
        let path = std::env::var("PATH").unwrap();
        assert_eq!(expand_env("x${PATH}y").unwrap(), format!("x{path}y"));
    }

    /// A client, with the crypto provider the binary installs at start-up.
    fn client() -> reqwest::Client {
        let _ = rustls::crypto::ring::default_provider().install_default();
        reqwest::Client::new()
    }

    /// A local port nothing listens on (bound, then released).
    fn closed_port() -> u16 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    }

    #[tokio::test]
    async fn a_refused_connection_says_so() {
        let url = format!("http://127.0.0.1:{}/x", closed_port());
        let err = client().get(&url).send().await.unwrap_err();
        let text = describe_error(&err);
        assert!(
            text.starts_with("connection refused by 127.0.0.1 ("),
            "{text} (reqwest says: {err})"
        );
    }

    #[tokio::test]
    async fn a_server_that_never_answers_times_out() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        // Accepts and holds the connection without answering.
        let hold = tokio::spawn(async move {
            let (socket, _) = listener.accept().await.unwrap();
            tokio::time::sleep(std::time::Duration::from_secs(30)).await;
            drop(socket);
        });
        let err = client()
            .get(format!("http://127.0.0.1:{port}/"))
            .timeout(std::time::Duration::from_millis(200))
            .send()
            .await
            .unwrap_err();
        hold.abort();
        let text = describe_error(&err);
        assert!(
            text.starts_with("timed out ("),
            "{text} (reqwest says: {err})"
        );
    }
}
