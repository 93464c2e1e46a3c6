//! A raw HTTPS client pinned to the CA's certificate, for requests the typed
//! `rampart_api::Client` cannot send: malformed JSON, oversized bodies, unknown
//! fields.

use std::time::Duration;

use rampart_api::Fingerprint;

/// What the CA answered.
#[derive(Debug, Clone)]
pub struct RawResponse {
    /// HTTP status.
    pub status: u16,
    /// `Content-Type` header, if any.
    pub content_type: Option<String>,
    /// Body text (lossy UTF-8).
    pub body: String,
}

impl RawResponse {
    /// The body as the API's error shape, or `None` if it is not one.
    pub fn error_body(&self) -> Option<rampart_api::ErrorBody> {
        serde_json::from_str(&self.body).ok()
    }
}

/// Blocking raw client for one CA.
#[derive(Debug, Clone)]
pub struct RawHttp {
    base: String,
    http: reqwest::blocking::Client,
}

impl RawHttp {
    /// A client for `base` trusting only the certificate `pin`.
    pub fn new(base: &str, pin: Fingerprint) -> RawHttp {
        Self::from_address(base, pin, None)
    }

    /// Like [`RawHttp::new`], with connections made from `source` (any
    /// 127.0.0.0/8 address reaches a loopback CA, so a test can be several
    /// clients at once).
    pub fn from_address(base: &str, pin: Fingerprint, source: Option<std::net::IpAddr>) -> RawHttp {
        let tls = rampart_api::client::pinned_tls_config(pin).expect("TLS set-up");
        let http = reqwest::blocking::Client::builder()
            .use_preconfigured_tls(tls)
            .local_address(source)
            .timeout(Duration::from_secs(30))
            .build()
            .expect("build HTTP client");
        RawHttp {
            base: base.trim_end_matches('/').to_owned(),
            http,
        }
    }

    /// `POST path` with `body` as `application/json` (whether or not it is JSON),
    /// with an optional bearer token.
    pub fn post(&self, path: &str, body: Vec<u8>, bearer: Option<&str>) -> RawResponse {
        self.try_post(path, body, bearer)
            .unwrap_or_else(|e| panic!("request to {path} failed at the transport level: {e}"))
    }

    /// `GET path`.
    pub fn get(&self, path: &str) -> RawResponse {
        Self::finish(self.http.get(format!("{}{path}", self.base)), path)
    }

    fn finish(rb: reqwest::blocking::RequestBuilder, path: &str) -> RawResponse {
        Self::try_finish(rb)
            .unwrap_or_else(|e| panic!("request to {path} failed at the transport level: {e}"))
    }

    /// Like [`RawHttp::post`], but a transport failure is returned, not a panic.
    pub fn try_post(
        &self,
        path: &str,
        body: Vec<u8>,
        bearer: Option<&str>,
    ) -> Result<RawResponse, String> {
        let mut rb = self
            .http
            .post(format!("{}{path}", self.base))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        if let Some(t) = bearer {
            rb = rb.header(reqwest::header::AUTHORIZATION, rampart_api::bearer(t));
        }
        Self::try_finish(rb)
    }

    fn try_finish(rb: reqwest::blocking::RequestBuilder) -> Result<RawResponse, String> {
        let resp = rb.send().map_err(|e| format!("{e:?}"))?;
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = resp.text().unwrap_or_default();
        Ok(RawResponse {
            status,
            content_type,
            body,
        })
    }
}
