//! HTTPS sinks: a generic JSON webhook ([`Webhook`]) and Splunk's HTTP Event
//! Collector ([`SplunkHec`]).
//!
//! Both are *acknowledging* sinks ([`Delivery::Acknowledged`]): the engine moves
//! the durable cursor only after the receiver answered a 2xx to the batch. Any
//! other answer is an error, and the batch is sent again from the cursor, with
//! the same ULIDs:
//!
//! - connection errors, timeouts, `5xx` and `429 Too Many Requests` are
//!   [`ForwardError::Http`] / [`ForwardError::Io`]: retried with the engine's
//!   doubling backoff;
//! - any other `4xx` means the request itself is wrong (URL, token, a header the
//!   receiver wants): [`ForwardError::Rejected`], logged as a configuration error
//!   and retried at the slowest pace. Events are never dropped.
//!
//! # Webhook body
//!
//! `POST <url>`, `Content-Type: application/json`, a JSON array of event objects
//! in the JSON Lines export schema (`audit/SCHEMA.md`: `"type":"event"`, every
//! body field, `prev_hash`, `hash`, and the canonical `body`), in sequence order,
//! each signed checkpoint right after the event it signs as a `"type":"checkpoint"`
//! object (`seq`, `hash`, `time`, `signature`: the witness line). Receivers that
//! index events only should filter on `type`.
//!
//! # Splunk HEC body
//!
//! `POST <url>/services/collector/event` with `Authorization: Splunk <token>` and
//! newline-separated objects, the batch format Splunk documents for the
//! `/services/collector/event` endpoint ("Format events for HTTP Event
//! Collector"):
//!
//! ```text
//! {"time":1740830400.123,"host":"ca-1","source":"rampart-ca","sourcetype":"rampart:audit","event":{…}}
//! ```
//!
//! `time` is the event's time in epoch seconds with millisecond precision; `event`
//! is the same object the webhook sends. The token is read from a file (mode
//! 0600 or stricter), never from the config text, kept zeroized, and shown as
//! `[redacted]` in `Debug`.
//!
//! # TLS
//!
//! HTTPS only. [`HttpTrust::Pinned`] trusts only the CA certificate(s) in a PEM
//! file (the receiver's own CA); [`HttpTrust::System`] trusts the system bundle
//! (Debian: `/etc/ssl/certs/ca-certificates.crt`). The HTTP client is built on the
//! forwarder's thread at connect (never inside an async runtime) and dropped there.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use zeroize::Zeroizing;

use super::{Delivery, ForwardError, Record, Sink};
use crate::export::{jsonl_checkpoint, jsonl_event_line};

/// Where the system's CA bundle lives on Debian and Ubuntu.
pub const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Which certificates an HTTPS sink trusts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HttpTrust {
    /// Only the CA certificate(s) in this PEM file.
    Pinned(PathBuf),
    /// The system bundle at this path (normally [`SYSTEM_CA_BUNDLE`]).
    System(PathBuf),
}

/// Options shared by the HTTPS sinks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpOptions {
    /// Which certificates to trust.
    pub trust: HttpTrust,
    /// Extra request headers (name, value), e.g. an API key a webhook wants.
    /// Values are never logged (only the names show in `Debug`).
    pub headers: Vec<(String, String)>,
    /// Connection timeout (default 5 s).
    pub connect_timeout: Duration,
    /// Whole-request timeout (default 30 s).
    pub timeout: Duration,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            trust: HttpTrust::System(PathBuf::from(SYSTEM_CA_BUNDLE)),
            headers: Vec::new(),
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(30),
        }
    }
}

/// A Splunk HEC token: zeroized on drop, redacted in `Debug`, no `Clone`.
pub struct HecToken(Zeroizing<String>);

impl fmt::Debug for HecToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HecToken([redacted])")
    }
}

impl HecToken {
    /// Read a token from `path`: the file must be a regular file of mode 0600 or
    /// stricter (no group or other bits), holding one line of printable ASCII.
    pub fn from_file(path: &Path) -> Result<HecToken, ForwardError> {
        let bad =
            |m: String| ForwardError::Config(format!("HEC token file {}: {m}", path.display()));
        let meta = std::fs::metadata(path).map_err(|e| bad(e.to_string()))?;
        if !meta.is_file() {
            return Err(bad("not a regular file".into()));
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(bad(format!(
                    "mode {mode:o} lets others read the token; chmod 600 it"
                )));
            }
        }
        if meta.len() > 4096 {
            return Err(bad("longer than 4096 bytes".into()));
        }
        let mut text = Zeroizing::new(String::new());
        std::fs::File::open(path)
            .and_then(|mut f| f.read_to_string(&mut text))
            .map_err(|e| bad(e.to_string()))?;
        HecToken::new(text.trim()).map_err(|e| match e {
            ForwardError::Config(m) => bad(m),
            other => other,
        })
    }

    /// A token from its text (for tests and callers that hold it already).
    pub fn new(token: &str) -> Result<HecToken, ForwardError> {
        if token.is_empty() || !token.chars().all(|c| c.is_ascii_graphic()) {
            return Err(ForwardError::Config(
                "the HEC token must be one non-empty line of printable ASCII".into(),
            ));
        }
        Ok(HecToken(Zeroizing::new(token.to_owned())))
    }

    fn header_value(&self) -> Result<reqwest::header::HeaderValue, ForwardError> {
        let v = Zeroizing::new(format!("Splunk {}", self.0.as_str()));
        let mut hv = reqwest::header::HeaderValue::from_str(&v).map_err(|_| {
            ForwardError::Config("the HEC token is not a valid header value".into())
        })?;
        hv.set_sensitive(true);
        Ok(hv)
    }
}

/// A URL for logs: scheme, host, port and path, never user info or a query
/// (either may carry a secret).
fn display_url(url: &reqwest::Url) -> String {
    let host = url.host_str().unwrap_or("?");
    match url.port() {
        Some(p) => format!("{}://{host}:{p}{}", url.scheme(), url.path()),
        None => format!("{}://{host}{}", url.scheme(), url.path()),
    }
}

fn parse_https(url: &str) -> Result<reqwest::Url, ForwardError> {
    let u = reqwest::Url::parse(url).map_err(|e| ForwardError::Config(format!("url: {e}")))?;
    if u.scheme() != "https" {
        return Err(ForwardError::Config(
            "url must be https:// (events are sensitive)".into(),
        ));
    }
    if u.host_str().is_none() {
        return Err(ForwardError::Config("url has no host".into()));
    }
    Ok(u)
}

fn tls_config(trust: &HttpTrust) -> Result<rustls::ClientConfig, ForwardError> {
    let path = match trust {
        HttpTrust::Pinned(p) | HttpTrust::System(p) => p,
    };
    let pem = std::fs::read(path)
        .map_err(|e| ForwardError::Config(format!("CA file {}: {e}", path.display())))?;
    let mut roots = rustls::RootCertStore::empty();
    let mut bad = 0usize;
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| ForwardError::Config(format!("CA certificate: {e}")))?;
        match (trust, roots.add(cert)) {
            (_, Ok(())) => {}
            // A system bundle may hold certificates webpki cannot parse; skip those.
            (HttpTrust::System(_), Err(_)) => bad += 1,
            (HttpTrust::Pinned(_), Err(e)) => {
                return Err(ForwardError::Config(format!("CA certificate: {e}")))
            }
        }
    }
    if roots.is_empty() {
        return Err(ForwardError::Config(format!(
            "{} holds no usable PEM certificate",
            path.display()
        )));
    }
    if bad > 0 {
        tracing::debug!(skipped = bad, bundle = %path.display(), "unusable CA certificates skipped");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ForwardError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

fn transport_err(e: &reqwest::Error) -> ForwardError {
    // reqwest's own message leaves out its causes (the TLS reason among them).
    let text = rampart_api::report::one_line(e);
    if text.contains("certificate") || text.contains("tls") || text.contains("TLS") {
        ForwardError::Tls(text)
    } else {
        ForwardError::Io(std::io::Error::other(text))
    }
}

/// The HTTP plumbing both sinks share: TLS config, lazy client, POST + status.
struct HttpCore {
    url: reqwest::Url,
    headers: reqwest::header::HeaderMap,
    tls: rustls::ClientConfig,
    opts: HttpOptions,
    client: Option<reqwest::blocking::Client>,
}

impl HttpCore {
    fn new(url: reqwest::Url, opts: HttpOptions) -> Result<HttpCore, ForwardError> {
        let tls = tls_config(&opts.trust)?;
        let mut headers = reqwest::header::HeaderMap::new();
        for (k, v) in &opts.headers {
            let name = reqwest::header::HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| ForwardError::Config(format!("header name {k:?} is not valid")))?;
            let mut value = reqwest::header::HeaderValue::from_str(v)
                .map_err(|_| ForwardError::Config(format!("header {k:?}: value is not valid")))?;
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        Ok(HttpCore {
            url,
            headers,
            tls,
            opts,
            client: None,
        })
    }

    fn connect(&mut self) -> Result<(), ForwardError> {
        self.client = None;
        let client = reqwest::blocking::Client::builder()
            .use_preconfigured_tls(self.tls.clone())
            .tls_built_in_root_certs(false)
            .connect_timeout(self.opts.connect_timeout)
            .timeout(self.opts.timeout)
            .default_headers(self.headers.clone())
            .user_agent(concat!("rampart-audit/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                ForwardError::Config(format!(
                    "HTTP client: {}",
                    rampart_api::report::one_line(&e)
                ))
            })?;
        self.client = Some(client);
        Ok(())
    }

    fn post(
        &mut self,
        content_type: &'static str,
        auth: Option<reqwest::header::HeaderValue>,
        body: Vec<u8>,
    ) -> Result<Delivery, ForwardError> {
        let client = self.client.as_ref().ok_or(ForwardError::Closed)?;
        let mut rb = client
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body);
        if let Some(a) = auth {
            rb = rb.header(reqwest::header::AUTHORIZATION, a);
        }
        let resp = rb.send().map_err(|e| transport_err(&e))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(Delivery::Acknowledged);
        }
        // Keep a short, single-line excerpt of the answer for the log.
        let mut text = String::new();
        let _ = resp.take(512).read_to_string(&mut text);
        let detail: String = text
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect::<String>()
            .trim()
            .to_owned();
        let code = status.as_u16();
        if status.is_client_error() && code != 429 {
            Err(ForwardError::Rejected {
                status: code,
                detail,
            })
        } else {
            Err(ForwardError::Http {
                status: code,
                detail,
            })
        }
    }
}

impl fmt::Debug for HttpCore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.headers.keys().map(|k| k.as_str()).collect();
        f.debug_struct("HttpCore")
            .field("url", &display_url(&self.url))
            .field("trust", &self.opts.trust)
            .field("header_names", &names)
            .field("connected", &self.client.is_some())
            .finish_non_exhaustive()
    }
}

/// Push one event object (the JSON Lines export line) for each record, chaining
/// `prev_hash` through the batch, and after an event its checkpoint object (the
/// JSON Lines checkpoint line), if it has one. `each` gets the object's time (the
/// event's, which is also its checkpoint's) and the object.
fn event_objects(
    batch: &[Record],
    mut prev: [u8; 32],
    mut each: impl FnMut(&DateTime<Utc>, &str),
) -> Result<[u8; 32], ForwardError> {
    for r in batch {
        if !r.checkpoint_only {
            let line = jsonl_event_line(&r.body, &prev, &r.event.hash)?;
            each(&r.event.time, &line);
        }
        if let Some(cp) = &r.checkpoint {
            each(&cp.time, &jsonl_checkpoint(cp)?);
        }
        prev = r.event.hash;
    }
    Ok(prev)
}

/// A generic HTTPS webhook: `POST` a JSON array of events per batch.
#[derive(Debug)]
pub struct Webhook {
    core: HttpCore,
    prev_hash: [u8; 32],
}

impl Webhook {
    /// A sink posting to `url` (must be `https://`). Reads the CA file now.
    pub fn new(url: &str, opts: HttpOptions) -> Result<Webhook, ForwardError> {
        Ok(Webhook {
            core: HttpCore::new(parse_https(url)?, opts)?,
            prev_hash: [0; 32],
        })
    }

    /// The JSON body for `batch`, whose first event follows `prev_hash`.
    pub fn encode(batch: &[Record], prev_hash: [u8; 32]) -> Result<Vec<u8>, ForwardError> {
        let mut out = Vec::with_capacity(batch.len() * 1024 + 2);
        out.push(b'[');
        event_objects(batch, prev_hash, |_, line| {
            if out.len() > 1 {
                out.push(b',');
            }
            out.extend_from_slice(line.as_bytes());
        })?;
        out.push(b']');
        Ok(out)
    }
}

impl Sink for Webhook {
    fn destination(&self) -> String {
        format!("webhook {}", display_url(&self.core.url))
    }
    fn connect(&mut self) -> Result<(), ForwardError> {
        self.core.connect()
    }
    fn send(&mut self, batch: &[Record]) -> Result<Delivery, ForwardError> {
        let body = Webhook::encode(batch, self.prev_hash)?;
        self.core.post("application/json", None, body)
    }
    fn check(&mut self) -> Result<(), ForwardError> {
        Ok(())
    }
    fn close(&mut self, _timeout: Duration) -> Result<bool, ForwardError> {
        // Every batch was acknowledged before the cursor moved; nothing in flight.
        self.core.client = None;
        Ok(true)
    }
    fn disconnect(&mut self) {
        self.core.client = None;
    }
    fn wants_prev_hash(&self) -> bool {
        true
    }
    fn set_prev_hash(&mut self, prev_hash: [u8; 32]) {
        self.prev_hash = prev_hash;
    }
}

/// The path of HEC's JSON event endpoint.
pub const HEC_EVENT_PATH: &str = "/services/collector/event";

/// Splunk HTTP Event Collector: newline-separated event objects per batch.
#[derive(Debug)]
pub struct SplunkHec {
    core: HttpCore,
    token: HecToken,
    host: String,
    prev_hash: [u8; 32],
}

impl SplunkHec {
    /// A sink for the HEC at `base_url` (`https://splunk:8088`; the event
    /// endpoint path is appended unless present), authenticating with `token`,
    /// reporting `host` as the event host.
    pub fn new(
        base_url: &str,
        token: HecToken,
        host: &str,
        opts: HttpOptions,
    ) -> Result<SplunkHec, ForwardError> {
        let mut url = parse_https(base_url)?;
        if !url.path().ends_with(HEC_EVENT_PATH) {
            let path = format!("{}{HEC_EVENT_PATH}", url.path().trim_end_matches('/'));
            url.set_path(&path);
        }
        Ok(SplunkHec {
            core: HttpCore::new(url, opts)?,
            token,
            host: host.to_owned(),
            prev_hash: [0; 32],
        })
    }

    /// The HEC body for `batch` (reporting `host`), whose first event follows
    /// `prev_hash`.
    pub fn encode(
        batch: &[Record],
        prev_hash: [u8; 32],
        host: &str,
    ) -> Result<Vec<u8>, ForwardError> {
        let host =
            serde_json::to_string(host).map_err(|e| ForwardError::Config(format!("host: {e}")))?;
        let mut out = Vec::with_capacity(batch.len() * 1200);
        event_objects(batch, prev_hash, |time, line| {
            let ms = time.timestamp_millis();
            let time = format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000));
            if !out.is_empty() {
                out.push(b'\n');
            }
            out.extend_from_slice(
                format!(
                    "{{\"time\":{time},\"host\":{host},\"source\":\"rampart-ca\",\
                     \"sourcetype\":\"rampart:audit\",\"event\":{line}}}"
                )
                .as_bytes(),
            );
        })?;
        Ok(out)
    }
}

impl Sink for SplunkHec {
    fn destination(&self) -> String {
        format!("splunk-hec {}", display_url(&self.core.url))
    }
    fn connect(&mut self) -> Result<(), ForwardError> {
        self.core.connect()
    }
    fn send(&mut self, batch: &[Record]) -> Result<Delivery, ForwardError> {
        let body = SplunkHec::encode(batch, self.prev_hash, &self.host)?;
        let auth = self.token.header_value()?;
        self.core.post("application/json", Some(auth), body)
    }
    fn check(&mut self) -> Result<(), ForwardError> {
        Ok(())
    }
    fn close(&mut self, _timeout: Duration) -> Result<bool, ForwardError> {
        self.core.client = None;
        Ok(true)
    }
    fn disconnect(&mut self) {
        self.core.client = None;
    }
    fn wants_prev_hash(&self) -> bool {
        true
    }
    fn set_prev_hash(&mut self, prev_hash: [u8; 32]) {
        self.prev_hash = prev_hash;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_is_redacted_and_validated() {
        let t = HecToken::new("abcd-1234-SECRET").unwrap();
        assert_eq!(format!("{t:?}"), "HecToken([redacted])");
        assert!(HecToken::new("").is_err());
        assert!(HecToken::new("two words").is_err());
        assert!(HecToken::new("line\nbreak").is_err());
        let hv = t.header_value().unwrap();
        assert!(hv.is_sensitive());
        assert!(!format!("{hv:?}").contains("SECRET"));
    }

    #[test]
    fn token_file_mode_is_enforced() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("hec.token");
        std::fs::write(&p, "tok-SECRET\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = HecToken::from_file(&p).unwrap_err().to_string();
        assert!(e.contains("chmod 600"), "{e}");
        assert!(!e.contains("SECRET"), "{e}");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        let t = HecToken::from_file(&p).unwrap();
        assert_eq!(t.0.as_str(), "tok-SECRET");
    }

    #[test]
    fn urls_are_https_and_displayed_without_secrets() {
        assert!(parse_https("http://example.com/x").is_err());
        assert!(parse_https("not a url").is_err());
        let u = parse_https("https://user:pw@example.com:8443/hook?key=SECRET").unwrap();
        assert_eq!(display_url(&u), "https://example.com:8443/hook");
    }
}
